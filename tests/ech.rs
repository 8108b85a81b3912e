//! Encrypted Client Hello from HTTPS records, on loopback (Linux: the HPKE suites come from
//! rustls's aws-lc-rs provider, a Linux-only dev-dependency here).
//!
//! - The ClientHello on the wire carries only the ECH config's public name; the holder of the
//!   config's key opens the inner hello and finds the real name and the record's ALPN.
//! - A server that does not do ECH, authenticated as the public name, rejects it without
//!   retry configs: the attempt reconnects once, without ECH, and wins (draft-ietf-tls-esni
//!   §6.1.6).
//! - A rejection the public name's certificate does not authenticate is not retried.
//! - Without `TlsHandshake::ech`, a record that lists `ech` as mandatory is skipped.
//! - An HTTPS answer that comes after racing began (past the resolution delay) still puts ECH
//!   on the attempt already connected: its handshake waits for the answer (HEv3 §6.1).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use connect_by_list::rustls::pki_types::pem::PemObject;
use connect_by_list::rustls::pki_types::CertificateDer;
use connect_by_list::rustls::{RootCertStore, ServerConfig};
use connect_by_list::{
    Connector, Family, HttpsRecord, Outcome, Resolve, Resolving, ResolvingHttps, TlsHandshake,
};
use support::ech::{ech_client_config, ClientHello, EchKey, ALL_SUPPORTED_SUITES};
use tokio::net::TcpListener;

/// RFC 9460's key number for `ech`.
const ECH_KEY: u16 = 5;

/// `secret.test` is 127.0.0.1; its HTTPS record (asked as `_PORT._https.secret.test`) sends
/// clients to `port` with ALPN `http/1.1` and the ECH config list `ech`, `ech` mandatory.
#[derive(Debug)]
struct Zone {
    port: u16,
    ech: Vec<u8>,
    /// How long the HTTPS answer takes (the addresses come at once).
    https_after: std::time::Duration,
}

impl Zone {
    fn new(port: u16, ech: &[u8]) -> Zone {
        Zone {
            port,
            ech: ech.to_vec(),
            https_after: std::time::Duration::ZERO,
        }
    }
}

impl Resolve for Zone {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let answer = match (name, family) {
            ("secret.test", Family::V4) => vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            _ => Vec::new(),
        };
        Box::pin(async move { Ok(answer) })
    }

    fn resolve_https(&self, name: &str) -> ResolvingHttps {
        let records = if name.ends_with("._https.secret.test") {
            vec![HttpsRecord::new(1, ".")
                .with_alpn(["http/1.1"])
                .with_port(self.port)
                .with_ech(self.ech.clone())
                .with_mandatory([ECH_KEY])]
        } else {
            Vec::new()
        };
        let after = self.https_after;
        Box::pin(async move {
            tokio::time::sleep(after).await;
            Ok(records)
        })
    }
}

/// A port nothing listens on: the origin's, so that only the record's endpoint can connect.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A certificate for `names`: the server's configuration, the client's plain one (ring) and
/// the roots that trust it.
fn tls_for(names: &[&str]) -> (ServerConfig, TlsHandshake, Arc<RootCertStore>) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let (server, client, pem) = support::tls::configs(&names, &[b"http/1.1"], &[b"http/1.1"]);
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .unwrap();
    (server, TlsHandshake::new(Arc::new(client)), Arc::new(roots))
}

/// `plain` with ECH on (aws-lc-rs's HPKE suites, configurations trusting `roots` and offering
/// `http/1.1`), and a connector that resolves through `zone`.
fn with_ech(
    plain: TlsHandshake,
    roots: Arc<RootCertStore>,
    zone: Zone,
) -> (TlsHandshake, Connector) {
    let tls = plain.ech(
        ALL_SUPPORTED_SUITES,
        ech_client_config(roots, &[b"http/1.1"]),
    );
    let connector = Connector::builder().resolver(zone).build().unwrap();
    (tls, connector)
}

#[tokio::test]
async fn the_wire_carries_the_public_name_and_the_key_holder_reads_the_real_one() {
    let key = EchKey::new(7, "public.test");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_, plain, roots) = tls_for(&["secret.test"]);
    let (tls, connector) = with_ech(plain, roots, Zone::new(port, &key.list));
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        ClientHello::read(&mut stream).await
        // Dropped: the handshake fails, which is not what this test is about.
    });
    let result = connector
        .connect_with(("secret.test", closed_port()), tls)
        .await;
    let (outer, raw) = server.await.unwrap();

    assert_eq!(outer.server_name.as_deref(), Some("public.test"));
    assert_eq!(outer.ech_type, Some(0), "an outer ECH extension");
    assert!(
        !raw.windows(b"secret.test".len())
            .any(|w| w == b"secret.test"),
        "the real name is not on the wire"
    );
    let inner = ClientHello::parse(&key.open(&outer));
    assert_eq!(inner.server_name.as_deref(), Some("secret.test"));
    assert_eq!(inner.ech_type, Some(1), "the inner hello says it is one");
    // The record's ALPN is offered (rustls copies it to the outer hello and points the inner
    // one at it).
    assert!(
        raw.windows(b"http/1.1".len()).any(|w| w == b"http/1.1"),
        "the record's ALPN is offered"
    );

    // The record was used (its mandatory `ech` understood), and the attempt says so.
    let error = result.unwrap_err();
    let first = &error.report().attempts()[0];
    assert_eq!(first.remote().port(), port);
    assert_eq!(first.https().unwrap().ech(), Some(key.list.as_slice()));
    assert!(error.report().skipped_https_records().is_empty());
}

/// The server's SNI for each connection, in order.
type Names = Arc<Mutex<Vec<String>>>;
/// The client's address of each connection, in order.
type Clients = Arc<Mutex<Vec<std::net::SocketAddr>>>;

/// A TLS server that does not do ECH: it notes each hello's server name, then finishes the
/// handshake with `config` and holds the stream open.
async fn server_without_ech(config: ServerConfig) -> (u16, Names, Clients) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let names = Names::default();
    let clients = Clients::default();
    let (seen, met) = (names.clone(), clients.clone());
    let config = Arc::new(config);
    tokio::spawn(async move {
        while let Ok((stream, client)) = listener.accept().await {
            met.lock().unwrap().push(client);
            let (seen, config) = (seen.clone(), config.clone());
            tokio::spawn(async move {
                let acceptor = tokio_rustls::LazyConfigAcceptor::new(
                    connect_by_list::rustls::server::Acceptor::default(),
                    stream,
                );
                let Ok(start) = acceptor.await else { return };
                let name = start.client_hello().server_name().unwrap_or("").to_owned();
                seen.lock().unwrap().push(name);
                if let Ok(stream) = start.into_stream(config).await {
                    let _open = stream;
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    (port, names, clients)
}

#[tokio::test]
async fn a_rejection_without_retry_configs_reconnects_once_without_ech() {
    let key = EchKey::new(3, "public.test");
    // The server's certificate covers the public name, so the rejection is authenticated.
    let (server, plain, roots) = tls_for(&["public.test", "secret.test"]);
    let (port, names, clients) = server_without_ech(server).await;
    let (tls, connector) = with_ech(plain, roots, Zone::new(port, &key.list));
    let connection = connector
        .connect_with(("secret.test", closed_port()), tls)
        .await
        .unwrap();

    // First the ECH hello (public name outside), then one retry that names the real server.
    assert_eq!(*names.lock().unwrap(), ["public.test", "secret.test"]);
    // The connection handed out is the retry's: its local address is the second client's.
    let clients = clients.lock().unwrap().clone();
    assert_eq!(clients.len(), 2);
    assert_ne!(clients[0], clients[1]);
    assert_eq!(connection.local_addr().unwrap(), clients[1]);
    let session = connection.stream().get_ref().1;
    assert_eq!(
        session.ech_status(),
        connect_by_list::rustls::client::EchStatus::NotOffered
    );
    assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
    // The retry is inside the one attempt: the race made one attempt, and it won.
    let attempts = connection.report().attempts();
    assert_eq!(attempts.len(), 1, "{}", connection.report());
    assert_eq!(attempts[0].outcome(), Outcome::Connected);
    assert_eq!(connection.peer_addr().port(), port);
}

#[tokio::test]
async fn a_rejection_the_public_name_does_not_authenticate_is_not_retried() {
    let key = EchKey::new(4, "public.test");
    // Only the real name is on the certificate: the outer handshake to "public.test" fails
    // verification, so the client cannot trust the rejection and must not fall back.
    let (server, plain, roots) = tls_for(&["secret.test"]);
    let (port, names, clients) = server_without_ech(server).await;
    let (tls, connector) = with_ech(plain, roots, Zone::new(port, &key.list));
    let error = connector
        .connect_with(("secret.test", closed_port()), tls)
        .await
        .unwrap_err();

    assert_eq!(*names.lock().unwrap(), ["public.test"], "no second hello");
    assert_eq!(clients.lock().unwrap().len(), 1, "no second connection");
    let first = &error.report().attempts()[0];
    assert_eq!(first.remote().port(), port);
    assert_eq!(first.outcome(), Outcome::HandshakeFailed);
    let why = first.error().unwrap().to_string();
    assert!(why.contains("certificate"), "{why}");
}

#[tokio::test]
async fn without_ech_a_record_with_mandatory_ech_is_skipped() {
    let key = EchKey::new(5, "public.test");
    let (server, plain, _) = tls_for(&["public.test", "secret.test"]);
    let (port, names, _) = server_without_ech(server).await;
    let connector = Connector::builder()
        .resolver(Zone::new(port, &key.list))
        .build()
        .unwrap();
    let closed = closed_port();
    let error = connector
        .connect_with(("secret.test", closed), plain)
        .await
        .unwrap_err();

    let skipped = error.report().skipped_https_records();
    assert_eq!(skipped.len(), 1, "{}", error.report());
    assert!(
        skipped[0].reason().contains("ech"),
        "{}",
        skipped[0].reason()
    );
    // Only the origin's (closed) port was tried; the record's server saw nothing.
    let ports: Vec<u16> = error
        .report()
        .attempts()
        .iter()
        .map(|a| a.remote().port())
        .collect();
    assert_eq!(ports, [closed]);
    assert!(names.lock().unwrap().is_empty());
    // The server does note a hello when one comes (so the empty list above means none came).
    let plain_again = tls_for(&["secret.test"]).1;
    let _ = Connector::new()
        .connect_with(("127.0.0.1", port), plain_again)
        .await;
    assert_eq!(names.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_late_https_answer_still_hides_the_name_of_the_attempt_already_connected() {
    let key = EchKey::new(6, "public.test");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_, plain, roots) = tls_for(&["secret.test"]);
    // The record names the target's own port, so the attempt racing starts (at the resolution
    // delay, 50 ms, without the answer) is the one the record covers.
    let zone = Zone {
        https_after: std::time::Duration::from_millis(1000),
        ..Zone::new(port, &key.list)
    };
    let (tls, connector) = with_ech(plain, roots, zone);
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let accepted = std::time::Instant::now();
        let hello = ClientHello::read(&mut stream).await;
        (hello, accepted.elapsed())
    });
    let started = std::time::Instant::now();
    let result = connector.connect_with(("secret.test", port), tls).await;
    let ((outer, raw), waited) = server.await.unwrap();

    // Connected well before the answer, the hello waited for it and carries ECH.
    assert!(
        waited >= std::time::Duration::from_millis(500),
        "{waited:?}"
    );
    assert_eq!(outer.server_name.as_deref(), Some("public.test"));
    assert!(!raw
        .windows(b"secret.test".len())
        .any(|w| w == b"secret.test"));
    assert_eq!(
        ClientHello::parse(&key.open(&outer)).server_name.as_deref(),
        Some("secret.test")
    );
    let error = result.unwrap_err();
    let first = &error.report().attempts()[0];
    assert!(first.started() < std::time::Duration::from_millis(500));
    assert!(first.https().is_some_and(|via| via.ech().is_some()));
    assert!(started.elapsed() >= std::time::Duration::from_millis(1000));
}
