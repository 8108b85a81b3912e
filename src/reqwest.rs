//! reqwest integration (features `reqwest` for 0.13, `reqwest012` for 0.12): a
//! `reqwest::dns::Resolve` that resolves and orders addresses the way this crate does. The guide
//! is on [`ReqwestResolver`], where readers of the rendered docs find it.

use std::fmt;
use std::net::SocketAddr;

use crate::connector::Connector;
use crate::filter::{AddressFilter, Denied};
use crate::resolve::{Resolve, SystemResolver};
use crate::target::Target;

/// A `reqwest::dns::Resolve` that resolves, filters and orders a name's addresses as a
/// [`Connector`] would. Give it to `reqwest::ClientBuilder::dns_resolver`.
///
/// # With reqwest
///
/// reqwest's public API cannot replace its TCP connect; the deepest hook it offers is the name
/// resolver. `ReqwestResolver` plugs in there: made from a [`Connector`], it resolves a name the
/// way the connector would (IPv6 and IPv4 asked at once through its [`Resolve`]), drops what
/// its [`AddressFilter`](crate::AddressFilter) denies (SSRF defence for names, DNS rebinding
/// included), ranks by RFC 6724, puts the last winner first (its history) and interleaves the
/// families, and hands reqwest the addresses in that order, so that reqwest's own connect
/// starts from the best address.
///
/// ```no_run
/// # #[cfg(feature = "reqwest")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use connect_by_list::{AddressFilter, Connector, ReqwestResolver};
///
/// let connector = Connector::builder()
///     .address_filter(AddressFilter::deny_non_public())
///     .build()?;
/// let client = reqwest::Client::builder()
///     .dns_resolver(ReqwestResolver::from(connector))
///     .build()?;
/// let response = client.get("http://example.com/").send().await?;
/// println!("{} from {:?}", response.status(), response.remote_addr());
/// # Ok(())
/// # }
/// ```
///
/// # Versions
///
/// The feature `reqwest` implements reqwest 0.13's `dns::Resolve`, the feature `reqwest012`
/// reqwest 0.12's (both may be on). reqwest 0.12's `dns_resolver` takes an `Arc`:
///
/// ```no_run
/// # #[cfg(feature = "reqwest012")]
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// # use reqwest012 as reqwest;
/// use connect_by_list::ReqwestResolver;
/// use std::sync::Arc;
///
/// let client = reqwest::Client::builder()
///     .dns_resolver(Arc::new(ReqwestResolver::system()))
///     .build()?;
/// # drop(client);
/// # Ok(())
/// # }
/// ```
///
/// # What it cannot do
///
/// reqwest still connects by itself (with hyper-util's `HttpConnector`), so:
///
/// - it races at most two attempts, one per family (the first address's family, then the
///   other when that has not connected within 300 ms), and within a family tries one address
///   after another;
/// - its only deadline is its own `connect_timeout`, which hyper-util also divides among a
///   family's addresses, so a silent address uses up its share before the next is tried;
/// - no report of the attempts;
/// - a URL with an IP literal (`http://192.0.2.7/`, `http://[2001:db8::7]/`) never reaches a
///   resolver, so this one changes nothing for it, and its address filter does not see it
///   (with the `reqwest` feature, check such URLs, and redirects to them, with
///   [`AddressFilter::check_url`](crate::AddressFilter::check_url) and
///   [`AddressFilter::redirect_policy`](crate::AddressFilter::redirect_policy));
/// - the connector's local addresses and socket options do not apply (reqwest opens the
///   sockets), and what reqwest's connect learns does not feed the connector's history;
/// - names set with `ClientBuilder::resolve` bypass it too.
///
/// When nothing is left to try, reqwest's error has the connector's
/// [`ConnectError`](crate::ConnectError) in its source chain, with every name failure; when
/// the filter denied every address, the message lists them (without a port: reqwest adds its
/// own).
///
/// For full control (every address raced under one deadline, the report of every attempt in
/// each response's extensions), use hyper-util's client with a [`Connector`] (feature `hyper`),
/// wrapped with hyper-rustls for TLS: see the crate root's "With hyper".
///
/// A resolver of your own works too, here one that answers every name with 127.0.0.1:
///
/// ```
/// use connect_by_list::{Family, ReqwestResolver, Resolve, Resolving};
/// use std::net::{IpAddr, Ipv4Addr};
///
/// #[derive(Debug)]
/// struct Loopback;
///
/// impl Resolve for Loopback {
///     fn resolve(&self, _name: &str, family: Family) -> Resolving {
///         let answer = match family {
///             Family::V4 => vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
///             Family::V6 => vec![],
///         };
///         Box::pin(async move { Ok(answer) })
///     }
/// }
///
/// # #[cfg(feature = "reqwest")]
/// # {
/// let client = reqwest::Client::builder()
///     .dns_resolver(ReqwestResolver::new(Loopback))
///     .build()?;
/// # drop(client);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ReqwestResolver {
    connector: Connector,
}

impl ReqwestResolver {
    /// Resolves with `resolver`, with the connector's other defaults (see the example on
    /// [`ReqwestResolver`]).
    pub fn new(resolver: impl Resolve) -> ReqwestResolver {
        ReqwestResolver {
            connector: Connector::with_resolver(resolver),
        }
    }

    /// Resolves with the operating system's resolver ([`SystemResolver`]), with the connector's
    /// other defaults. The same as `ReqwestResolver::default()`.
    ///
    /// ```
    /// let resolver = connect_by_list::ReqwestResolver::system();
    /// # drop(resolver);
    /// ```
    pub fn system() -> ReqwestResolver {
        ReqwestResolver::new(SystemResolver)
    }
}

impl From<Connector> for ReqwestResolver {
    /// Resolves with the connector's resolver, caps, address filter, ranking and history.
    fn from(connector: Connector) -> ReqwestResolver {
        ReqwestResolver { connector }
    }
}

impl Default for ReqwestResolver {
    fn default() -> ReqwestResolver {
        ReqwestResolver::system()
    }
}

impl fmt::Debug for ReqwestResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestResolver")
            .field("connector", &self.connector)
            .finish()
    }
}

impl ReqwestResolver {
    /// `name`'s addresses in the order to try them, with port 0: reqwest puts in the URL's port,
    /// or its scheme's. The one body behind both reqwest versions' `Resolve`.
    async fn ordered(
        connector: Connector,
        name: String,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        // Any port will do: the plan's order does not depend on it, and reqwest sets its own.
        let target = Target::new(&name, 1).map_err(crate::ConnectError::from_invalid_target)?;
        let planned = connector.order(target).await.map_err(|error| {
            if error.kind() == crate::ConnectErrorKind::Denied {
                Box::new(AllDenied { name, error }) as Box<dyn std::error::Error + Send + Sync>
            } else {
                Box::new(error)
            }
        })?;
        let mut seen = std::collections::HashSet::new();
        Ok(planned
            .attempts()
            .iter()
            .map(|attempt| SocketAddr::new(attempt.remote().ip(), 0))
            .filter(|addr| seen.insert(*addr))
            .collect())
    }
}

/// Implements one reqwest version's `dns::Resolve` with [`ReqwestResolver::ordered`].
macro_rules! resolve_for {
    ($reqwest:ident, $feature:literal) => {
        #[cfg(feature = $feature)]
        impl ::$reqwest::dns::Resolve for ReqwestResolver {
            /// Resolves `name` into addresses in the order to try them, with port 0: reqwest
            /// puts in the URL's port, or its scheme's. When nothing is left to try, the error
            /// is the connector's [`ConnectError`](crate::ConnectError), with every name failure,
            /// or (when the filter denied every address) an error that lists them and has the
            /// `ConnectError` as its source.
            fn resolve(&self, name: ::$reqwest::dns::Name) -> ::$reqwest::dns::Resolving {
                let connector = self.connector.clone();
                let name = name.as_str().to_owned();
                Box::pin(async move {
                    let ordered = ReqwestResolver::ordered(connector, name).await?;
                    let addrs: ::$reqwest::dns::Addrs = Box::new(ordered.into_iter());
                    Ok(addrs)
                })
            }
        }
    };
}

resolve_for!(reqwest, "reqwest");
resolve_for!(reqwest012, "reqwest012");

/// Every address of a name was denied by the address filter. Shown with addresses alone: the
/// bridge orders addresses for reqwest, which adds the port itself, so the port the plan was
/// made with means nothing to the reader. The [`ConnectError`](crate::ConnectError) is its
/// source.
#[derive(Debug)]
struct AllDenied {
    name: String,
    error: crate::ConnectError,
}

impl fmt::Display for AllDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "every address of {} was denied by the address filter",
            self.name
        )?;
        let mut separator = ": ";
        for skipped in self.error.report().skipped() {
            let ip = skipped.remote().ip();
            match skipped.reason() {
                crate::SkipReason::Denied(denied) => {
                    write!(f, "{separator}{ip} ({})", denied.reason())?
                }
                other => write!(f, "{separator}{ip} ({})", other.as_str())?,
            }
            separator = "; ";
        }
        Ok(())
    }
}

impl std::error::Error for AllDenied {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// SSRF checks for what reqwest does without a resolver: IP-literal URLs and redirects.
///
/// reqwest connects to an IP-literal host without asking any resolver, and follows redirects by
/// itself, so [`ReqwestResolver`] alone lets `http://127.0.0.1/` through, and a redirect to
/// `http://[::ffff:169.254.169.254]/` too. The complete recipe: the same filter in the
/// connector given to the resolver (names, DNS rebinding), in [`AddressFilter::check_url`]
/// before each request (literals), and in [`AddressFilter::redirect_policy`] (literals in
/// redirects; names there go through the resolver again). And no proxy, or the proxy's address
/// is what reqwest connects to, and the proxy then reaches the target unchecked.
///
/// ```no_run
/// use connect_by_list::{AddressFilter, Connector, ReqwestResolver};
///
/// # async fn run(untrusted: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let filter = AddressFilter::deny_non_public();
/// let connector = Connector::builder().address_filter(filter.clone()).build()?;
/// let client = reqwest::Client::builder()
///     .dns_resolver(ReqwestResolver::from(connector))
///     .redirect(filter.redirect_policy())
///     .no_proxy()
///     .build()?;
/// let url = reqwest::Url::parse(untrusted)?;
/// filter.check_url(&url)?; // "127.0.0.1 is denied: loopback"
/// let response = client.get(url).send().await?;
/// # drop(response);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "reqwest")]
impl AddressFilter {
    /// Judges a URL before reqwest connects to it: an IP-literal host is checked like a
    /// resolved address, and refused with the same reason; a name passes (the connector's
    /// resolver in [`ReqwestResolver`] checks what it resolves to); so does a URL without a
    /// host, which reqwest refuses by itself. reqwest's URL parser has already written every
    /// IPv4 form (`http://2130706433/`, `http://0x7f.1/`) as dotted decimal.
    ///
    /// ```
    /// use connect_by_list::AddressFilter;
    ///
    /// let filter = AddressFilter::deny_non_public();
    /// let url = reqwest::Url::parse("http://2130706433:8080/admin")?;
    /// assert_eq!(filter.check_url(&url).unwrap_err().to_string(), "127.0.0.1 is denied: loopback");
    /// assert!(filter.check_url(&reqwest::Url::parse("https://example.com/")?).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_url(&self, url: &::reqwest::Url) -> Result<(), Denied> {
        match url.host_str() {
            Some(host) => self.check_host(host),
            None => Ok(()),
        }
    }

    /// A reqwest redirect policy that refuses, with the [`Denied`] reason as the error's
    /// source, a redirect to a URL that [`AddressFilter::check_url`] refuses, before anything
    /// is connected to it; other redirects are followed as reqwest's default policy does (at
    /// most 10). Redirects to names are left to the resolver, which checks each address.
    pub fn redirect_policy(&self) -> ::reqwest::redirect::Policy {
        let filter = self.clone();
        let default = ::reqwest::redirect::Policy::default();
        ::reqwest::redirect::Policy::custom(move |attempt| match filter.check_url(attempt.url()) {
            Ok(()) => default.redirect(attempt),
            Err(denied) => attempt.error(denied),
        })
    }
}

#[cfg(all(test, feature = "reqwest"))]
mod tests {
    use super::*;
    use crate::resolve::{Family, Resolving};
    use crate::{AddressFilter, Connector};
    use ::reqwest::dns::{Name, Resolve as ReqwestResolve};
    use std::collections::HashMap;
    use std::io;

    /// Scripted answers per (name, family); a missing entry is an error.
    #[derive(Debug, Default)]
    struct Script(HashMap<(&'static str, Family), Vec<&'static str>>);

    impl Resolve for Script {
        fn resolve(&self, name: &str, family: Family) -> Resolving {
            let answer = self
                .0
                .iter()
                .find(|((n, f), _)| *n == name && *f == family)
                .map(|(_, ips)| ips.iter().map(|ip| ip.parse().expect("test IP")).collect());
            Box::pin(async move {
                answer.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"))
            })
        }
    }

    /// The caller's order, so that no route is looked up; ranking has tests of its own.
    fn bridge(script: Script, filter: AddressFilter) -> ReqwestResolver {
        let connector = Connector::builder()
            .resolver(script)
            .sort_addresses(false)
            .address_filter(filter)
            .build()
            .expect("valid settings");
        ReqwestResolver::from(connector)
    }

    fn order(bridge: &ReqwestResolver, name: &'static str) -> Result<Vec<String>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let name: Name = name.parse().expect("a name");
        runtime
            .block_on(ReqwestResolve::resolve(bridge, name))
            .map(|addrs| {
                addrs
                    .map(|addr| {
                        assert_eq!(addr.port(), 0);
                        addr.ip().to_string()
                    })
                    .collect()
            })
            .map_err(|error| error.to_string())
    }

    /// RFC 8305 §4: families alternate, the preferred one (the first address's) first.
    #[test]
    fn families_interleave() {
        let script = Script(HashMap::from([
            (("a.test", Family::V6), vec!["2001:db8::1", "2001:db8::2"]),
            (
                ("a.test", Family::V4),
                vec!["192.0.2.1", "192.0.2.2", "192.0.2.3"],
            ),
        ]));
        assert_eq!(
            order(&bridge(script, AddressFilter::allow_all()), "a.test"),
            Ok(vec![
                "2001:db8::1".into(),
                "192.0.2.1".into(),
                "2001:db8::2".into(),
                "192.0.2.2".into(),
                "192.0.2.3".into()
            ])
        );
    }

    #[test]
    fn one_family_failing_is_no_failure() {
        let script = Script(HashMap::from([(
            ("a.test", Family::V4),
            vec!["192.0.2.1", "192.0.2.1", "2001:db8::9"],
        )]));
        assert_eq!(
            order(&bridge(script, AddressFilter::allow_all()), "a.test"),
            Ok(vec!["192.0.2.1".into()])
        );
    }

    /// The connector's address filter applies to names: a rebinding answer never reaches reqwest.
    #[test]
    fn the_address_filter_applies() {
        let script = Script(HashMap::from([
            (("a.test", Family::V6), vec!["::1"]),
            (("a.test", Family::V4), vec!["127.0.0.1", "8.8.8.8"]),
        ]));
        let filter = AddressFilter::deny_non_public();
        assert_eq!(
            order(&bridge(script, filter.clone()), "a.test"),
            Ok(vec!["8.8.8.8".into()])
        );
        let script = Script(HashMap::from([
            (("b.test", Family::V6), vec![]),
            (("b.test", Family::V4), vec!["169.254.169.254"]),
        ]));
        let error = order(&bridge(script, filter), "b.test").expect_err("denied");
        // The address alone: the port the plan was made with is no port reqwest will use.
        assert!(
            error.starts_with(
                "every address of b.test was denied by the address filter: 169.254.169.254 ("
            ),
            "{error}"
        );
        assert!(!error.contains(":1"), "{error}");
        // The connector's own error, the source, is still there with its report (and the
        // placeholder port the message above leaves out).
        let script = Script(HashMap::from([
            (("b.test", Family::V6), vec![]),
            (("b.test", Family::V4), vec!["169.254.169.254"]),
        ]));
        let bridge = bridge(script, AddressFilter::deny_non_public());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let name: Name = "b.test".parse().expect("a name");
        let error = match runtime.block_on(ReqwestResolve::resolve(&bridge, name)) {
            Ok(_) => panic!("b.test resolved"),
            Err(error) => error,
        };
        let source = std::error::Error::source(&*error)
            .and_then(|source| source.downcast_ref::<crate::ConnectError>())
            .expect("the ConnectError is the source");
        assert_eq!(source.kind(), crate::ConnectErrorKind::Denied);
        assert!(
            source.to_string().contains("169.254.169.254:1 denied"),
            "{source}"
        );
    }

    #[test]
    fn failures_say_what_went_wrong() {
        let script = Script(HashMap::from([
            (("empty.test", Family::V6), vec![]),
            (("empty.test", Family::V4), vec![]),
        ]));
        let bridge = bridge(script, AddressFilter::allow_all());
        let error = order(&bridge, "empty.test").expect_err("no address");
        assert!(
            error.contains("empty.test did not resolve (no IPv4 or IPv6 address)"),
            "{error}"
        );
        let error = order(&bridge, "gone.test").expect_err("no answer");
        assert!(error.contains("gone.test did not resolve"), "{error}");
    }
}
