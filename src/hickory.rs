//! A [`Resolve`] implementation on hickory-resolver (the `hickory` feature).

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::svcb::{
    Alpn, EchConfigList, IpHint, Mandatory, SvcParamValue, SVCB,
};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};

use crate::{Family, HttpsRecord, Resolve, Resolving, ResolvingHttps};

/// hickory-resolver's asynchronous DNS client as the connector's resolver: AAAA and A queries
/// sent by Tokio tasks, no thread blocked.
///
/// Unlike [`SystemResolver`](crate::SystemResolver), a lookup is cancellable: when the connect is
/// dropped or its deadline passes, the query is abandoned instead of finishing on a blocking
/// thread. It does not use `getaddrinfo`, so it does not read nsswitch (no mDNS, LDAP, systemd
/// or other NSS modules); it reads the hosts file only where hickory's options say so
/// (`ResolverOpts::use_hosts_file`, on by default), and otherwise asks the configured name
/// servers, with the search domains and `ndots` of its configuration. It caches answers for
/// their TTL, shared by the clones of one `HickoryResolver`.
///
/// Lookups must run inside a Tokio runtime, as every connect does.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use connect_by_list::{Connector, HickoryResolver};
///
/// // The name servers and search domains of /etc/resolv.conf:
/// let connector = Connector::builder()
///     .resolver(HickoryResolver::from_system_conf()?)
///     .build()?;
/// let connection = connector.connect(["example.com:443"]).await?;
/// # drop(connection);
/// # Ok(())
/// # }
/// ```
///
/// With a resolver configured in code, hand it to [`HickoryResolver::new`]:
///
/// ```no_run
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use connect_by_list::{Connector, HickoryResolver};
/// use hickory_resolver::config::ResolverConfig;
/// use hickory_resolver::name_server::TokioConnectionProvider;
/// use hickory_resolver::TokioResolver;
///
/// let resolver = TokioResolver::builder_with_config(
///     ResolverConfig::cloudflare(),
///     TokioConnectionProvider::default(),
/// )
/// .build();
/// let connector = Connector::builder()
///     .resolver(HickoryResolver::new(resolver))
///     .build()?;
/// # drop(connector);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HickoryResolver {
    resolver: Arc<TokioResolver>,
}

impl HickoryResolver {
    /// Wraps a configured hickory resolver.
    pub fn new(resolver: TokioResolver) -> Self {
        HickoryResolver {
            resolver: Arc::new(resolver),
        }
    }

    /// A resolver with the system's DNS configuration: on Unix the name servers, search domains
    /// and options of `/etc/resolv.conf`, on Windows those of the registry.
    ///
    /// Fails when the configuration cannot be read or parsed.
    pub fn from_system_conf() -> io::Result<Self> {
        let builder = TokioResolver::builder_tokio().map_err(|error| {
            io::Error::new(
                io_kind(&error),
                format!("cannot read the system DNS configuration: {error}"),
            )
        })?;
        Ok(HickoryResolver::new(builder.build()))
    }

    /// The hickory resolver.
    pub fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }
}

impl From<TokioResolver> for HickoryResolver {
    fn from(resolver: TokioResolver) -> Self {
        HickoryResolver::new(resolver)
    }
}

impl fmt::Debug for HickoryResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HickoryResolver")
            .field("name_servers", &self.resolver.config().name_servers())
            .field("search", &self.resolver.config().search())
            .finish_non_exhaustive()
    }
}

impl Resolve for HickoryResolver {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let resolver = Arc::clone(&self.resolver);
        let name = name.to_owned();
        Box::pin(async move {
            let answer = match family {
                Family::V6 => resolver
                    .ipv6_lookup(name.as_str())
                    .await
                    .map(|lookup| lookup.iter().map(|aaaa| IpAddr::V6(aaaa.0)).collect()),
                Family::V4 => resolver
                    .ipv4_lookup(name.as_str())
                    .await
                    .map(|lookup| lookup.iter().map(|a| IpAddr::V4(a.0)).collect()),
            };
            answer.or_else(|error| no_records_or_error(&name, family, error))
        })
    }

    fn resolve_https(&self, name: &str) -> ResolvingHttps {
        let resolver = Arc::clone(&self.resolver);
        let name = name.to_owned();
        Box::pin(async move {
            match resolver.lookup(name.as_str(), RecordType::HTTPS).await {
                Ok(lookup) => Ok(lookup
                    .iter()
                    .filter_map(|rdata| match rdata {
                        RData::HTTPS(https) => Some(https_record(&https.0)),
                        _ => None,
                    })
                    .collect()),
                Err(error) if error.is_no_records_found() => Ok(Vec::new()),
                Err(error) => Err(io::Error::new(
                    io_kind(&error),
                    format!("{name} HTTPS: {error}"),
                )),
            }
        })
    }
}

/// hickory's parsed record in this crate's form (hickory has checked the wire format).
fn https_record(svcb: &SVCB) -> HttpsRecord {
    let target = svcb.target_name().to_ascii();
    let mut record = HttpsRecord::new(svcb.svc_priority(), &target);
    for (_, value) in svcb.svc_params() {
        record = match value {
            SvcParamValue::Mandatory(Mandatory(keys)) => {
                record.with_mandatory(keys.iter().map(|key| u16::from(*key)))
            }
            SvcParamValue::Alpn(Alpn(ids)) => record.with_alpn(ids),
            SvcParamValue::NoDefaultAlpn => record.with_no_default_alpn(),
            SvcParamValue::Port(port) => record.with_port(*port),
            SvcParamValue::Ipv4Hint(IpHint(hints)) => {
                record.with_ipv4_hints(hints.iter().map(|a| a.0))
            }
            SvcParamValue::Ipv6Hint(IpHint(hints)) => {
                record.with_ipv6_hints(hints.iter().map(|aaaa| aaaa.0))
            }
            SvcParamValue::EchConfigList(EchConfigList(list)) => record.with_ech(list.clone()),
            SvcParamValue::Unknown(_) => record,
        };
    }
    record
}

/// The `io::ErrorKind` of a hickory error: timeouts and I/O errors keep theirs.
fn io_kind(error: &ResolveError) -> io::ErrorKind {
    match error.proto().map(|proto| proto.kind()) {
        Some(ProtoErrorKind::Timeout) => io::ErrorKind::TimedOut,
        Some(ProtoErrorKind::Io(io)) => io.kind(),
        _ => io::ErrorKind::Other,
    }
}

/// A per-family answer without records is an empty list when the name exists (NOERROR), and
/// [`io::ErrorKind::NotFound`] when it does not (NXDOMAIN); anything else is a failed lookup.
fn no_records_or_error(name: &str, family: Family, error: ResolveError) -> io::Result<Vec<IpAddr>> {
    let kind = match error.proto().map(|proto| proto.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => match *response_code {
            ResponseCode::NoError => return Ok(Vec::new()),
            ResponseCode::NXDomain => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{name}: no such name (NXDOMAIN)"),
                ))
            }
            // SERVFAIL, REFUSED and the like come as "no records" too; they are failures.
            code => {
                return Err(io::Error::other(format!(
                    "{name}: {family} lookup failed: the name server answered {code}"
                )))
            }
        },
        _ => io_kind(&error),
    };
    Err(io::Error::new(
        kind,
        format!("{name}: {family} lookup failed: {error}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Connector;
    use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
    use hickory_resolver::name_server::TokioConnectionProvider;
    use hickory_resolver::proto::op::{Message, MessageType};
    use hickory_resolver::proto::rr::rdata::svcb::SvcParamKey;
    use hickory_resolver::proto::rr::rdata::{A, AAAA, HTTPS};
    use hickory_resolver::proto::rr::{RData, Record, RecordType};
    use hickory_resolver::proto::xfer::Protocol;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::time::{Duration, Instant};
    use tokio::net::UdpSocket;

    const SVC_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const SVC_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const V4_ONLY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    /// The answer of the fake zone: `svc.test.` has AAAA and A, `v4only.test.` only A, the
    /// `broken.test.` server fails, every other name does not exist.
    fn answer(query: &Message) -> Message {
        let mut reply = Message::new();
        reply
            .set_id(query.id())
            .set_message_type(MessageType::Response)
            .set_op_code(query.op_code())
            .set_recursion_desired(query.recursion_desired())
            .set_recursion_available(true)
            .set_authoritative(true);
        let Some(question) = query.queries().first() else {
            return reply.set_response_code(ResponseCode::FormErr).clone();
        };
        reply.add_query(question.clone());
        let name = question.name().to_ascii().to_ascii_lowercase();
        let rdata = match (name.as_str(), question.query_type()) {
            ("svc.test.", RecordType::AAAA) => Some(RData::AAAA(AAAA(SVC_V6))),
            ("svc.test.", RecordType::A) => Some(RData::A(A(SVC_V4))),
            ("v4only.test.", RecordType::A) => Some(RData::A(A(V4_ONLY))),
            ("_8443._https.svc.test.", RecordType::HTTPS) => Some(RData::HTTPS(HTTPS(SVCB::new(
                1,
                hickory_resolver::proto::rr::Name::root(),
                vec![
                    (
                        SvcParamKey::Alpn,
                        SvcParamValue::Alpn(Alpn(vec!["h2".into()])),
                    ),
                    (SvcParamKey::Port, SvcParamValue::Port(9443)),
                    (
                        SvcParamKey::Ipv4Hint,
                        SvcParamValue::Ipv4Hint(IpHint(vec![A(V4_ONLY)])),
                    ),
                ],
            )))),
            ("svc.test." | "v4only.test.", _) => None,
            ("broken.test.", _) => {
                return reply.set_response_code(ResponseCode::ServFail).clone();
            }
            _ => {
                return reply.set_response_code(ResponseCode::NXDomain).clone();
            }
        };
        if let Some(rdata) = rdata {
            reply.add_answer(Record::from_rdata(question.name().clone(), 60, rdata));
        }
        reply.set_response_code(ResponseCode::NoError).clone()
    }

    /// A DNS server on 127.0.0.1 (UDP) that answers from the fake zone until the runtime ends.
    async fn fake_dns_server() -> SocketAddr {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the fake DNS server");
        let addr = socket.local_addr().expect("fake DNS server address");
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let Ok(bytes) = answer(&query).to_vec() else {
                    continue;
                };
                let _ = socket.send_to(&bytes, peer).await;
            }
        });
        addr
    }

    /// A resolver whose only name server is the fake one: never the system configuration, so
    /// no query leaves the machine.
    async fn test_resolver() -> HickoryResolver {
        let server = fake_dns_server().await;
        let mut config = ResolverConfig::new();
        config.add_name_server(NameServerConfig::new(server, Protocol::Udp));
        let mut options = ResolverOpts::default();
        options.use_hosts_file = ResolveHosts::Never;
        options.timeout = Duration::from_secs(1);
        options.attempts = 1;
        let mut builder =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
        *builder.options_mut() = options;
        HickoryResolver::new(builder.build())
    }

    /// HTTPS records come over DNS from a server on loopback, as this crate's `HttpsRecord`;
    /// a name with none answers an empty list, not an error.
    #[tokio::test]
    async fn https_records_are_asked_and_converted() {
        let resolver = test_resolver().await;
        let records = resolver
            .resolve_https("_8443._https.svc.test")
            .await
            .expect("HTTPS");
        assert_eq!(
            records,
            [HttpsRecord::new(1, ".")
                .with_alpn(["h2"])
                .with_port(9443)
                .with_ipv4_hints([V4_ONLY])]
        );
        let none = resolver.resolve_https("v4only.test").await;
        assert_eq!(none.expect("no HTTPS records is not an error"), []);
    }

    #[tokio::test]
    async fn each_family_gets_its_records() {
        let resolver = test_resolver().await;
        let v6 = resolver
            .resolve("svc.test", Family::V6)
            .await
            .expect("AAAA");
        assert_eq!(v6, [IpAddr::V6(SVC_V6)]);
        let v4 = resolver.resolve("svc.test", Family::V4).await.expect("A");
        assert_eq!(v4, [IpAddr::V4(SVC_V4)]);
    }

    #[tokio::test]
    async fn both_families_at_once() {
        let resolver = test_resolver().await;
        let (v6, v4) = tokio::join!(
            resolver.resolve("svc.test.", Family::V6),
            resolver.resolve("svc.test.", Family::V4),
        );
        assert_eq!(v6.expect("AAAA"), [IpAddr::V6(SVC_V6)]);
        assert_eq!(v4.expect("A"), [IpAddr::V4(SVC_V4)]);
    }

    #[tokio::test]
    async fn a_missing_family_is_an_empty_answer() {
        let resolver = test_resolver().await;
        let v6 = resolver.resolve("v4only.test", Family::V6).await;
        assert_eq!(v6.expect("no AAAA is not an error"), Vec::<IpAddr>::new());
        let v4 = resolver.resolve("v4only.test", Family::V4).await;
        assert_eq!(v4.expect("A"), [IpAddr::V4(V4_ONLY)]);
    }

    #[tokio::test]
    async fn an_unknown_name_is_not_found() {
        let resolver = test_resolver().await;
        for family in [Family::V6, Family::V4] {
            let error = resolver
                .resolve("nowhere.test", family)
                .await
                .expect_err("NXDOMAIN");
            assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
            assert!(error.to_string().contains("nowhere.test"), "{error}");
        }
    }

    #[tokio::test]
    async fn a_server_failure_is_an_error() {
        let resolver = test_resolver().await;
        let error = resolver
            .resolve("broken.test", Family::V4)
            .await
            .expect_err("SERVFAIL");
        assert_ne!(error.kind(), io::ErrorKind::NotFound, "{error}");
        assert!(error.to_string().contains("broken.test"), "{error}");
    }

    #[tokio::test]
    async fn plan_has_both_addresses_ipv6_first() {
        let started = Instant::now();
        let resolver = test_resolver().await;
        let expected = [
            SocketAddr::new(IpAddr::V6(SVC_V6), 80),
            SocketAddr::new(IpAddr::V4(SVC_V4), 80),
        ];
        // Resolves and ranks only: nothing is connected to these documentation addresses.
        // Unsorted, the resolver's order stands and IPv6 goes first (RFC 8305 §4).
        let connector = Connector::builder()
            .resolver(resolver.clone())
            .sort_addresses(false)
            .build()
            .expect("valid configuration");
        let plan = connector.plan(["svc.test:80"]).await.expect("plan");
        let remotes: Vec<SocketAddr> = plan.attempts().iter().map(|a| a.remote()).collect();
        assert_eq!(remotes, expected, "{plan:?}");
        assert!(plan.attempts().iter().all(|a| a.host() == Some("svc.test")));
        assert!(plan.report().resolve_failures().is_empty(), "{plan:?}");

        // RFC 6724 ranking depends on this machine's routes (with only a ULA IPv6 source, IPv4
        // wins by rule 5), so only the set is fixed.
        let connector = Connector::builder()
            .resolver(resolver)
            .build()
            .expect("valid configuration");
        let plan = connector.plan(["svc.test:80"]).await.expect("plan");
        let mut remotes: Vec<SocketAddr> = plan.attempts().iter().map(|a| a.remote()).collect();
        remotes.sort_by_key(|remote| remote.is_ipv4());
        assert_eq!(remotes, expected, "{plan:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn debug_shows_the_name_servers() {
        let mut config = ResolverConfig::new();
        config.add_name_server(NameServerConfig::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 5353)),
            Protocol::Udp,
        ));
        let resolver = HickoryResolver::from(
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default()).build(),
        );
        let text = format!("{:?}", resolver.clone());
        assert!(text.contains("127.0.0.1:5353"), "{text}");
    }
}
