//! reqwest integration (feature `reqwest`): a `reqwest::dns::Resolve` that resolves and orders
//! addresses the way this crate does.
//!
//! # With reqwest
//!
//! reqwest's public API cannot replace its TCP connect; the deepest hook it offers is the name
//! resolver. [`ReqwestResolver`] plugs in there: it asks for a name's IPv6 and IPv4 addresses at
//! once, through this crate's [`Resolve`] trait (the system resolver by default, or your own),
//! and hands reqwest every address in this crate's order, so that reqwest's own connect starts
//! from the best address.
//!
//! ```no_run
//! use connect_by_list::ReqwestResolver;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = reqwest::Client::builder()
//!     .dns_resolver(ReqwestResolver::system())
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
//!   resolver, so this one changes nothing for it;
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
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ::reqwest::dns::{Addrs, Name, Resolve as ReqwestResolve, Resolving as ReqwestResolving};

use crate::resolve::{Family, Resolve, SystemResolver};
use crate::target::{Host, Target};

/// The most addresses taken from one name's answer, per family, as the connector's default.
const MAX_ADDRESSES_PER_NAME: usize = 32;

/// A `reqwest::dns::Resolve` that resolves both families at once and orders the addresses as this
/// crate does. Give it to `reqwest::ClientBuilder::dns_resolver`.
///
/// It starts reqwest's connect from the best address, but reqwest still connects by itself: it
/// races at most two attempts (one per family), has no deadline but its own `connect_timeout`
/// (divided among a family's addresses), reports no attempts, and never asks a resolver about a
/// URL whose host is an IP literal. For all of that, use hyper-util's client with a
/// [`Connector`](crate::Connector) (feature `hyper`).
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
    resolver: Arc<dyn Resolve>,
    max_addresses_per_name: usize,
}

impl ReqwestResolver {
    /// Resolves with `resolver`.
    pub fn new(resolver: impl Resolve) -> ReqwestResolver {
        ReqwestResolver {
            resolver: Arc::new(resolver),
            max_addresses_per_name: MAX_ADDRESSES_PER_NAME,
        }
    }

    /// Resolves with the operating system's resolver ([`SystemResolver`]).
    pub fn system() -> ReqwestResolver {
        ReqwestResolver::new(SystemResolver)
    }

    /// The most addresses taken from one name's answer, per family. Values under 1 count as 1.
    ///
    /// Default is 32, as for the connector.
    pub fn max_addresses_per_name(mut self, max: usize) -> ReqwestResolver {
        self.max_addresses_per_name = max.max(1);
        self
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
            .field("resolver", &self.resolver)
            .field("max_addresses_per_name", &self.max_addresses_per_name)
            .finish()
    }
}

impl ReqwestResolve for ReqwestResolver {
    /// Resolves `name` into addresses in the order to try them, with port 0: reqwest puts in the
    /// URL's port, or its scheme's.
    fn resolve(&self, name: Name) -> ReqwestResolving {
        let resolver = self.resolver.clone();
        let max = self.max_addresses_per_name;
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let ordered = resolve_and_order(resolver.as_ref(), &name, max).await?;
            let addrs: Addrs = Box::new(ordered.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Resolves one name and orders its addresses for connecting: both families asked at once, each
/// answer cut to `max` addresses and rid of duplicates, then ranked and interleaved by family
/// (RFC 8305 §4), IPv6 first.
///
/// Stand-in for the core's own "resolve, rank and interleave one name", which will also apply
/// RFC 6724 ranking; this keeps each answer's order.
async fn resolve_and_order(
    resolver: &dyn Resolve,
    name: &str,
    max: usize,
) -> Result<Vec<IpAddr>, Box<dyn std::error::Error + Send + Sync>> {
    // The same checks as every other target; reqwest may also hand over an IP literal.
    let name = match Target::new(name, 1)?.host() {
        Host::Ip(ip) => return Ok(vec![*ip]),
        Host::Name(name) => name.clone(),
    };
    let (v6, v4) = futures_util::future::join(
        resolver.resolve(&name, Family::V6),
        resolver.resolve(&name, Family::V4),
    )
    .await;
    let keep = |answer: Vec<IpAddr>, family: Family| {
        let mut seen = std::collections::HashSet::new();
        answer
            .into_iter()
            .filter(|ip| Family::of(*ip) == family && seen.insert(*ip))
            .take(max)
            .collect::<Vec<_>>()
    };
    let (v6, v4) = match (v6, v4) {
        (Err(v6), Err(v4)) => {
            return Err(io::Error::new(
                v4.kind(),
                format!("{name} did not resolve (IPv6: {v6}; IPv4: {v4})"),
            )
            .into())
        }
        (Ok(v6), Ok(v4)) => (keep(v6, Family::V6), keep(v4, Family::V4)),
        // One family failing is no failure while the other has addresses.
        (Ok(v6), Err(v4_error)) => {
            let v6 = keep(v6, Family::V6);
            if v6.is_empty() {
                return Err(v4_error.into());
            }
            (v6, Vec::new())
        }
        (Err(v6_error), Ok(v4)) => {
            let v4 = keep(v4, Family::V4);
            if v4.is_empty() {
                return Err(v6_error.into());
            }
            (Vec::new(), v4)
        }
    };
    if v6.is_empty() && v4.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{name} has no IPv6 or IPv4 address"),
        )
        .into());
    }
    Ok(interleave(v6, v4))
}

/// Alternates between two lists, starting with `first`; what is left of the longer one follows.
fn interleave(first: Vec<IpAddr>, second: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut ordered = Vec::with_capacity(first.len() + second.len());
    let (mut first, mut second) = (first.into_iter(), second.into_iter());
    loop {
        match (first.next(), second.next()) {
            (None, None) => return ordered,
            (a, b) => ordered.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::Resolving;
    use std::collections::HashMap;

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

    fn order(script: &Script, name: &str, max: usize) -> Result<Vec<String>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime
            .block_on(resolve_and_order(script, name, max))
            .map(|ips| ips.iter().map(IpAddr::to_string).collect())
            .map_err(|error| error.to_string())
    }

    /// RFC 8305 §4: families alternate, the preferred one (IPv6) first.
    #[test]
    fn families_interleave_ipv6_first() {
        let script = Script(HashMap::from([
            (("a.test", Family::V6), vec!["2001:db8::1", "2001:db8::2"]),
            (
                ("a.test", Family::V4),
                vec!["192.0.2.1", "192.0.2.2", "192.0.2.3"],
            ),
        ]));
        assert_eq!(
            order(&script, "a.test", 32),
            Ok(vec![
                "2001:db8::1".into(),
                "192.0.2.1".into(),
                "2001:db8::2".into(),
                "192.0.2.2".into(),
                "192.0.2.3".into()
            ])
        );
        assert_eq!(
            order(&script, "a.test", 1),
            Ok(vec!["2001:db8::1".into(), "192.0.2.1".into()])
        );
    }

    #[test]
    fn one_family_failing_is_no_failure() {
        let script = Script(HashMap::from([(
            ("a.test", Family::V4),
            vec!["192.0.2.1", "192.0.2.1", "2001:db8::9"],
        )]));
        assert_eq!(order(&script, "a.test", 32), Ok(vec!["192.0.2.1".into()]));
    }

    #[test]
    fn failures_say_what_went_wrong() {
        let script = Script(HashMap::from([
            (("empty.test", Family::V6), vec![]),
            (("empty.test", Family::V4), vec![]),
        ]));
        let error = order(&script, "empty.test", 32).expect_err("no address");
        assert_eq!(error, "empty.test has no IPv6 or IPv4 address");
        let error = order(&script, "gone.test", 32).expect_err("no answer");
        assert!(error.contains("gone.test did not resolve"), "{error}");
        let error = order(&script, "a..test", 32).expect_err("bad name");
        assert!(error.contains("empty label"), "{error}");
    }
}
