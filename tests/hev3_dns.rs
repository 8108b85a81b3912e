//! Happy Eyeballs v3 end to end: a DNS server on loopback serves A and HTTPS records to
//! hickory's resolver; hyper's client over `HttpsConnector` reaches the port the HTTPS record
//! names (the URI's port is closed), and HTTP/2 is negotiated or not as the record's ALPN says.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use connect_by_list::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use connect_by_list::rustls::{ClientConfig, RootCertStore, ServerConfig};
use connect_by_list::{ConnectInfo, Connector, HickoryResolver, HttpsConnector};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::svcb::{Alpn, IpHint, SvcParamKey, SvcParamValue, SVCB};
use hickory_resolver::proto::rr::rdata::{A, HTTPS};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Version;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::UdpSocket;

fn provider() -> Arc<connect_by_list::rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate for `app.test`; server and client both offer `h2` and `http/1.1`.
fn configs() -> (ServerConfig, ClientConfig) {
    let certified = rcgen::generate_simple_self_signed(vec!["app.test".to_string()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (server, client)
}

/// The zone: `app.test` has A 127.0.0.1 and no AAAA; `_{h2_port}._https.app.test` sends
/// clients to `live` with ALPN `h2` only, `_{h1_port}._https.app.test` to `live` with
/// `http/1.1` only (both `no-default-alpn`, both with an ipv4hint of 127.0.0.1).
fn answer(query: &Message, h2_port: u16, h1_port: u16, live: u16) -> Message {
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
    let https = |alpn: &str| {
        RData::HTTPS(HTTPS(SVCB::new(
            1,
            Name::root(),
            vec![
                (
                    SvcParamKey::Alpn,
                    SvcParamValue::Alpn(Alpn(vec![alpn.into()])),
                ),
                (SvcParamKey::NoDefaultAlpn, SvcParamValue::NoDefaultAlpn),
                (SvcParamKey::Port, SvcParamValue::Port(live)),
                (
                    SvcParamKey::Ipv4Hint,
                    SvcParamValue::Ipv4Hint(IpHint(vec![A(Ipv4Addr::LOCALHOST)])),
                ),
            ],
        )))
    };
    let h2_name = format!("_{h2_port}._https.app.test.");
    let h1_name = format!("_{h1_port}._https.app.test.");
    let rdata = match (name.as_str(), question.query_type()) {
        ("app.test.", RecordType::A) => Some(RData::A(A(Ipv4Addr::LOCALHOST))),
        ("app.test.", _) => None,
        (name, RecordType::HTTPS) if name == h2_name => Some(https("h2")),
        (name, RecordType::HTTPS) if name == h1_name => Some(https("http/1.1")),
        _ => return reply.set_response_code(ResponseCode::NXDomain).clone(),
    };
    if let Some(rdata) = rdata {
        reply.add_answer(Record::from_rdata(question.name().clone(), 60, rdata));
    }
    reply.set_response_code(ResponseCode::NoError).clone()
}

/// A DNS server on 127.0.0.1 (UDP) answering from the zone; counts the HTTPS queries.
async fn dns_server(
    h2_port: u16,
    h1_port: u16,
    live: u16,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let https_queries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = https_queries.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            if query.queries().first().map(|q| q.query_type()) == Some(RecordType::HTTPS) {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let Ok(bytes) = answer(&query, h2_port, h1_port, live).to_vec() else {
                continue;
            };
            let _ = socket.send_to(&bytes, peer).await;
        }
    });
    (addr, https_queries)
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
    let (dns, https_queries) = dns_server(h2_port, h1_port, live.port()).await;
    let connector = Connector::builder()
        .resolver(resolver(dns))
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
    assert_eq!(https_queries.load(std::sync::atomic::Ordering::SeqCst), 2);
}
