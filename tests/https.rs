//! hyper-util's client over `HttpsConnector`, against local HTTPS servers: the TLS handshake is
//! raced (a server that accepts TCP and stalls loses to one that finishes TLS), ALPN picks
//! HTTP/1.1 or HTTP/2, and every response carries the race's report.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use connect_by_list::rustls::{ClientConfig, ServerConfig};
use connect_by_list::{ConnectErrorKind, ConnectInfo, Connector, HttpsConnector};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Version;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

mod support;
use support::names::Names;

/// A certificate for `app.test`; the server offers `server_alpn`, the client `h2, http/1.1`.
fn configs(server_alpn: &[&[u8]]) -> (ServerConfig, ClientConfig) {
    let client_alpn: &[&[u8]] = &[b"h2", b"http/1.1"];
    let (server, client, _) = support::tls::configs(&["app.test".into()], server_alpn, client_alpn);
    (server, client)
}

/// Accepts TCP on `at` and then says nothing, holding every connection open.
#[cfg(target_os = "linux")]
async fn stalling_server(at: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind(at).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// A client whose resolver answers `app.test` with the addresses of `addrs`, tried in order.
fn client(addrs: &[SocketAddr], tls: ClientConfig) -> Client<HttpsConnector, Empty<Bytes>> {
    let ips: Vec<std::net::IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    let connector = Connector::builder()
        .resolver(Names::one("app.test", &ips))
        .sort_addresses(false)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Client::builder(TokioExecutor::new()).build(HttpsConnector::new(connector, Arc::new(tls)))
}

async fn get(
    client: &Client<HttpsConnector, Empty<Bytes>>,
    uri: &str,
) -> (Version, ConnectInfo, Bytes) {
    let response = client.get(uri.parse().unwrap()).await.unwrap();
    let version = response.version();
    let info = response.extensions().get::<ConnectInfo>().unwrap().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (version, info, body)
}

/// ALPN: a server offering only HTTP/1.1 gets HTTP/1.1; one offering `h2` gets HTTP/2, and
/// hyper is told (`negotiated_h2`).
#[tokio::test]
async fn alpn_chooses_http1_or_http2() {
    for (alpn, want) in [
        (&[&b"http/1.1"[..]][..], Version::HTTP_11),
        (&[&b"h2"[..], &b"http/1.1"[..]][..], Version::HTTP_2),
    ] {
        let (server, tls) = configs(alpn);
        let addr = support::tls::https_server(server, "127.0.0.1:0").await;
        let client = client(&[addr], tls);
        let uri = format!("https://app.test:{}/", addr.port());
        let (version, info, body) = get(&client, &uri).await;
        assert_eq!(version, want);
        assert_eq!(&body[..], b"hello");
        assert_eq!(info.remote_addr(), addr);
        let winner = info.report().winner().unwrap();
        assert!(winner.connected().unwrap() <= winner.ended());
    }
}

/// A server that accepts TCP and stalls TLS (127.0.0.1) loses to the next address (127.0.0.2,
/// same port) after one attempt delay, and the request gets its answer; the failure this guards
/// against waits out the 10 s deadline (the bound is 2 s).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_stalled_tls_server_is_raced_past() {
    let (server, tls) = configs(&[b"http/1.1"]);
    let live = support::tls::https_server(server, "127.0.0.2:0").await;
    let stalled = stalling_server(SocketAddr::from(([127, 0, 0, 1], live.port()))).await;
    let client = client(&[stalled, live], tls);
    let started = std::time::Instant::now();
    let (_, info, body) = get(&client, &format!("https://app.test:{}/", live.port())).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(&body[..], b"hello");
    assert_eq!(info.remote_addr(), live);
    let attempts = info.report().attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].remote(), stalled);
    assert_eq!(attempts[0].outcome(), connect_by_list::Outcome::Lost);
    assert!(attempts[0].connected().is_some(), "its TCP connected");
    assert_eq!(attempts[1].outcome(), connect_by_list::Outcome::Connected);
    assert!(attempts[1].started() >= Duration::from_millis(250));
}

/// `http` URIs go over plain TCP, unless the connector is `https_only`.
#[tokio::test]
async fn http_uris_are_plain_unless_https_only() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        TokioIo::new(stream),
                        hyper::service::service_fn(support::tls::hello),
                    )
                    .await;
            });
        }
    });
    let (_, tls) = configs(&[b"http/1.1"]);
    let plain = client(&[addr], tls.clone());
    let (version, _, body) = get(&plain, &format!("http://app.test:{}/", addr.port())).await;
    assert_eq!((version, &body[..]), (Version::HTTP_11, &b"hello"[..]));

    let strict = HttpsConnector::new(Connector::new(), Arc::new(tls)).https_only(true);
    let mut service = strict;
    let error =
        tower_service::Service::call(&mut service, format!("http://{addr}/").parse().unwrap())
            .await
            .unwrap_err();
    assert_eq!(error.kind(), ConnectErrorKind::InvalidTarget);
    assert!(error.to_string().contains("https_only"), "{error}");
}
