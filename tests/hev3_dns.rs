//! Happy Eyeballs v3 end to end: a DNS server on loopback serves A and HTTPS records to
//! hickory's resolver; hyper's client over `HttpsConnector` reaches the port the HTTPS record
//! names (the URI's port is closed), and HTTP/2 is negotiated or not as the record's ALPN says.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use connect_by_list::rustls::{ClientConfig, ServerConfig};
use connect_by_list::{ConnectInfo, Connector, HickoryResolver, HttpsConnector};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Version;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::dns::{self, DnsServer, Https, Rdata, Reply};

/// A certificate for `app.test`; server and client both offer `h2` and `http/1.1`.
fn configs() -> (ServerConfig, ClientConfig) {
    let both: &[&[u8]] = &[b"h2", b"http/1.1"];
    let (server, client, _) = support::tls::configs(&["app.test".to_string()], both, both);
    (server, client)
}

/// A DNS server on 127.0.0.1 with this zone: `app.test` has A 127.0.0.1 and no AAAA;
/// `_{h2_port}._https.app.test` sends clients to `live` with ALPN `h2` only,
/// `_{h1_port}._https.app.test` to `live` with `http/1.1` only (both `no-default-alpn`, both
/// with an ipv4hint of 127.0.0.1).
fn dns_server(h2_port: u16, h1_port: u16, live: u16) -> DnsServer {
    let https = move |alpn: &str| {
        Reply::Records(vec![Rdata::Https(
            Https::new(1, ".")
                .alpn(&[alpn])
                .no_default_alpn()
                .port(live)
                .ipv4hint(&[Ipv4Addr::LOCALHOST]),
        )])
    };
    let (h2_name, h1_name) = (
        format!("_{h2_port}._https.app.test"),
        format!("_{h1_port}._https.app.test"),
    );
    DnsServer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        move |question| match (question.name.as_str(), question.qtype) {
            ("app.test", dns::A) => Reply::Records(vec![Rdata::A(Ipv4Addr::LOCALHOST)]),
            ("app.test", _) => Reply::Records(Vec::new()),
            (name, dns::HTTPS) if name == h2_name => https("h2"),
            (name, dns::HTTPS) if name == h1_name => https("http/1.1"),
            _ => Reply::NoSuchName,
        },
    )
}

/// hickory asking only the loopback server: no query leaves the machine.
fn resolver(server: SocketAddr) -> HickoryResolver {
    let mut config = ResolverConfig::new();
    config.add_name_server(NameServerConfig::new(server, Protocol::Udp));
    let mut options = ResolverOpts::default();
    options.use_hosts_file = ResolveHosts::Never;
    options.timeout = Duration::from_secs(2);
    options.attempts = 1;
    let mut builder =
        TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
    *builder.options_mut() = options;
    HickoryResolver::new(builder.build())
}

/// A loopback port nothing listens on (a listener's, closed again).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// RFC 9460 §7.2 and §7.1 through hyper: the URI's port is closed, the HTTPS record's `port`
/// is the live server, so the 200 proves the record was asked for and used; the record's ALPN
/// (only `h2`, or only `http/1.1`) is what the TLS handshake offers, so hyper speaks HTTP/2 or
/// HTTP/1.1 as the record says, though client and server both could do either.
#[tokio::test]
async fn hyper_reaches_the_records_port_with_the_records_alpn() {
    let (server_tls, client_tls) = configs();
    let live = support::tls::https_server(server_tls, "127.0.0.1:0").await;
    let (h2_port, h1_port) = (closed_port(), closed_port());
    let dns = dns_server(h2_port, h1_port, live.port());
    let connector = Connector::builder()
        .resolver(resolver(dns.addr()))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let client: Client<HttpsConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .build(HttpsConnector::new(connector, Arc::new(client_tls)));
    for (port, want) in [(h2_port, Version::HTTP_2), (h1_port, Version::HTTP_11)] {
        let uri = format!("https://app.test:{port}/");
        let response = client.get(uri.parse().unwrap()).await.unwrap();
        assert_eq!(response.version(), want, "{uri}");
        let info = response.extensions().get::<ConnectInfo>().unwrap().clone();
        assert_eq!(info.remote_addr(), live, "{uri}");
        let winner = info.report().winner().unwrap();
        let via = winner
            .https()
            .expect("the winner came from the HTTPS record");
        assert_eq!(via.priority(), 1);
        assert_eq!(via.port(), live.port());
        assert_eq!(via.target(), "app.test");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
    }
    assert_eq!(dns.asked_of_type(dns::HTTPS), 2, "{:?}", dns.asked());
}
