//! reqwest integration (feature `reqwest`): a `reqwest::dns::Resolve` that resolves and orders
//! addresses the way this crate does.
//!
//! # With reqwest
//!
//! reqwest's public API cannot replace its TCP connect; the deepest hook it offers is the name
//! resolver. [`ReqwestResolver`] plugs in there: made from a [`Connector`](crate::Connector), it
//! resolves a name the way the connector would (IPv6 and IPv4 asked at once through its
//! [`Resolve`]), drops what its [`AddressFilter`](crate::AddressFilter) denies (SSRF defence for
//! names, DNS rebinding included), ranks by RFC 6724, puts the last winner first (its history)
//! and interleaves the families, and hands reqwest the addresses in that order, so that reqwest's
//! own connect starts from the best address.
//!
//! ```no_run
//! use connect_by_list::ReqwestResolver;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let connector = connect_by_list::Connector::builder()
//!     .address_filter(connect_by_list::AddressFilter::deny_non_public())
//!     .build()?;
//! let client = reqwest::Client::builder()
//!     .dns_resolver(ReqwestResolver::from(connector))
//!     .build()?;
//! let response = client.get("http://example.com/").send().await?;
//! println!("{} from {:?}", response.status(), response.remote_addr());
//! # Ok(())
//! # }
//! ```
//!
//! What this cannot do, because reqwest still connects itself (with hyper-util's
//! `HttpConnector`):
//!
//! - reqwest races at most two attempts, one per family (the first address's family, then the
//!   other when that has not connected within 300 ms), and within a family tries one address
//!   after another;
//! - its only deadline is its own `connect_timeout`, which hyper-util also divides among a
//!   family's addresses, so a silent address uses up its share before the next is tried;
//! - no report of the attempts;
//! - a URL with an IP literal (`http://192.0.2.7/`, `http://[2001:db8::7]/`) never reaches a
//!   resolver, so this one changes nothing for it, and its address filter does not see it
//!   (check such URLs, and redirects to them, with [`AddressFilter::check_url`] and
//!   [`AddressFilter::redirect_policy`]: see the recipe there);
//! - the connector's local addresses and socket options do not apply (reqwest opens the
//!   sockets), and what reqwest's connect learns does not feed the connector's history;
//! - names set with `ClientBuilder::resolve` bypass it too.
//!
//! For full control (every address raced under one deadline, the report of every attempt in each
//! response's extensions), use hyper-util's client with a [`Connector`](crate::Connector) (feature
//! `hyper`), wrapped with hyper-rustls for TLS:
//!
//! ```no_run
//! # #[cfg(feature = "hyper")]
//! # async fn run(tls: rustls::ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use connect_by_list::{ConnectInfo, Connector};
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use std::time::Duration;
//!
//! let connector = Connector::builder().timeout(Duration::from_secs(5)).build()?;
//! // `tls` holds the trust roots, for example from rustls-native-certs or webpki-roots.
//! let https = hyper_rustls::HttpsConnectorBuilder::new()
//!     .with_tls_config(tls)
//!     .https_or_http()
//!     .enable_http1()
//!     .wrap_connector(connector);
//! let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
//! let response = client.get("https://example.com/".parse()?).await?;
//! if let Some(info) = response.extensions().get::<ConnectInfo>() {
//!     print!("{} over {}:\n{}", response.status(), info.remote_addr(), info.report().timeline());
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::net::SocketAddr;

use ::reqwest::dns::{Addrs, Name, Resolve as ReqwestResolve, Resolving as ReqwestResolving};

use crate::connector::Connector;
use crate::filter::{AddressFilter, Denied};
use crate::resolve::{Resolve, SystemResolver};
use crate::target::Target;

/// A `reqwest::dns::Resolve` that resolves, filters and orders a name's addresses as a
/// [`Connector`] would. Give it to `reqwest::ClientBuilder::dns_resolver`.
///
/// It starts reqwest's connect from the best address, but reqwest still connects by itself: it
/// races at most two attempts (one per family), has no deadline but its own `connect_timeout`
/// (divided among a family's addresses), reports no attempts, and never asks a resolver about a
/// URL whose host is an IP literal. For all of that, use hyper-util's client with a
/// [`Connector`] (feature `hyper`).
///
/// ```
/// use connect_by_list::{Family, ReqwestResolver, Resolve, Resolving};
/// use std::net::{IpAddr, Ipv4Addr};
///
/// /// Answers every name with 127.0.0.1.
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
/// let client = reqwest::Client::builder()
///     .dns_resolver(ReqwestResolver::new(Loopback))
///     .build()?;
/// # drop(client);
/// # Ok::<(), reqwest::Error>(())
/// ```
#[derive(Clone)]
pub struct ReqwestResolver {
    connector: Connector,
}

impl ReqwestResolver {
    /// Resolves with `resolver`, with the connector's other defaults.
    pub fn new(resolver: impl Resolve) -> ReqwestResolver {
        ReqwestResolver {
            connector: Connector::with_resolver(resolver),
        }
    }

    /// Resolves with the operating system's resolver ([`SystemResolver`]), with the connector's
    /// other defaults.
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

impl ReqwestResolve for ReqwestResolver {
    /// Resolves `name` into addresses in the order to try them, with port 0: reqwest puts in the
    /// URL's port, or its scheme's. When nothing is left to try, the error is the connector's
    /// [`ConnectError`](crate::ConnectError), with every name failure and denied address.
    fn resolve(&self, name: Name) -> ReqwestResolving {
        let connector = self.connector.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            // Any port will do: the plan's order does not depend on it, and reqwest sets its own.
            let target = Target::new(&name, 1).map_err(crate::ConnectError::from_invalid_target)?;
            let planned = connector.order(target).await?;
            let mut seen = std::collections::HashSet::new();
            let ordered: Vec<SocketAddr> = planned
                .attempts()
                .iter()
                .map(|attempt| SocketAddr::new(attempt.remote().ip(), 0))
                .filter(|addr| seen.insert(*addr))
                .collect();
            let addrs: Addrs = Box::new(ordered.into_iter());
            Ok(addrs)
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{Family, Resolving};
    use crate::{AddressFilter, Connector};
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
        assert!(error.contains("denied"), "{error}");
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
