//! The race through a handshake, on loopback with real sockets: a server that accepts TCP and
//! then never answers (what a path-MTU blackhole or a wedged TLS stack looks like from the
//! client) loses to the next address, which finishes its handshake.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use connect_by_list::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use connect_by_list::rustls::{ClientConfig, RootCertStore, ServerConfig};
use connect_by_list::{Connector, Outcome, Peer, TlsHandshake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn provider() -> Arc<connect_by_list::rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `app.test`, as server and client configurations, both
/// offering ALPN `h2` and `http/1.1`.
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

/// A TLS server that finishes every handshake.
async fn tls_server(config: ServerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut stream) = acceptor.accept(stream).await {
                    let mut buf = [0; 1];
                    let _ = stream.read(&mut buf).await;
                }
            });
        }
    });
    addr
}

/// Accepts TCP and then says nothing, holding every connection open.
async fn stalling_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// Accepts TCP and closes at once.
async fn closing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    addr
}

fn connector() -> Connector {
    Connector::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A TCP-only race "wins" with the server that then stalls; the TLS race moves on after one
/// attempt delay and wins with the server that finishes TLS, closing the stalled attempt. The
/// failure this guards against waits out the 10 s deadline; the bound is 2 s.
#[tokio::test]
async fn the_tls_race_leaves_a_stalled_server_behind() {
    let (server_config, client_config) = configs();
    let stalled = stalling_server().await;
    let live = tls_server(server_config).await;
    let tcp_only = connector().connect([stalled, live]).await.unwrap();
    assert_eq!(tcp_only.peer_addr(), stalled, "TCP alone picks the staller");

    // A connector of its own: history would otherwise put the TCP race's winner first.
    let tls = TlsHandshake::new(Arc::new(client_config))
        .server_name(ServerName::try_from("app.test").unwrap());
    let connection = connector()
        .connect_with([stalled, live], tls)
        .await
        .unwrap();
    assert_eq!(connection.peer_addr(), live);
    let report = connection.report();
    let attempts = report.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].remote(), stalled);
    assert_eq!(attempts[0].outcome(), Outcome::Lost);
    assert!(
        attempts[0].connected().is_some(),
        "the staller's TCP connected"
    );
    assert_eq!(attempts[1].outcome(), Outcome::Connected);
    assert!(attempts[1].started() >= Duration::from_millis(250));
    assert!(attempts[1].connected() <= Some(attempts[1].ended()));
    assert!(
        report.elapsed() < Duration::from_secs(2),
        "{:?}",
        report.elapsed()
    );
    let (_, session) = connection.stream().get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    assert!(session.protocol_version().is_some());
    let local = connection.local_addr().unwrap();
    assert!(local.ip().is_loopback() && local.port() != 0);
}

/// A server that closes during the handshake fails its attempt at once (a handshake failure,
/// with its error), and the next attempt starts then, not after the attempt delay.
#[tokio::test]
async fn a_failed_tls_handshake_moves_the_race_on_at_once() {
    let (server_config, client_config) = configs();
    let closing = closing_server().await;
    let live = tls_server(server_config).await;
    let tls = TlsHandshake::new(Arc::new(client_config))
        .server_name(ServerName::try_from("app.test").unwrap());
    let connection = connector()
        .connect_with([closing, live], tls)
        .await
        .unwrap();
    let attempts = connection.report().attempts();
    assert_eq!(attempts[0].outcome(), Outcome::HandshakeFailed);
    assert!(attempts[0].error().is_some());
    assert_eq!(attempts[1].started(), attempts[0].ended());
    assert!(attempts[1].started() < Duration::from_millis(250));
}

/// Any handshake: the first server to greet wins; one that accepts and says nothing is closed.
#[tokio::test]
async fn any_handshake_can_be_raced() {
    let stalled = stalling_server().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let greeter = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(b"hello").await;
            tokio::spawn(async move {
                let mut buf = [0; 1];
                let _ = stream.read(&mut buf).await;
            });
        }
    });
    let greeting = |mut stream: TcpStream, peer: Peer| async move {
        let mut hello = [0; 5];
        stream.read_exact(&mut hello).await?;
        Ok((stream, peer))
    };
    let connection = connector()
        .connect_with([stalled, greeter], greeting)
        .await
        .unwrap();
    let (_, peer) = connection.stream();
    assert_eq!(peer.remote(), greeter);
    assert_eq!(peer.host(), None);
    assert_eq!(connection.report().attempts()[0].outcome(), Outcome::Lost);
}
