//! hyper-util's client over a `Connector`, end to end against hyper servers on loopback, plain
//! and through hyper-rustls.
#![cfg(feature = "hyper")]

mod support;

use std::convert::Infallible;
use std::error::Error as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use connect_by_list::{
    ConnectError, ConnectErrorKind, ConnectInfo, Connector, HttpStream, Outcome, UriConnecting,
    UriConnector,
};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower_service::Service;

use support::names::Names;

/// The `ConnectInfo` the connector put in a response's extensions.
fn connect_info<B>(response: &Response<B>) -> ConnectInfo {
    response
        .extensions()
        .get::<ConnectInfo>()
        .cloned()
        .expect("ConnectInfo in the response's extensions")
}

const LIVE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Loopback too on Linux, but nothing listens there: a connect to it is refused at once.
const REFUSED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Answers every request with the peer address the server saw.
async fn answer(peer: SocketAddr) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from(format!(
        "peer={peer}"
    )))))
}

/// A plain HTTP/1 server on `listener`, for as long as the test runs.
fn serve(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_: Request<Incoming>| answer(peer));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn listen(ip: IpAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

async fn live_server() -> SocketAddr {
    let (listener, addr) = listen(LIVE).await.expect("bind 127.0.0.1");
    serve(listener);
    addr
}

fn client<C>(connector: C) -> Client<C, Empty<Bytes>>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    Client::builder(TokioExecutor::new()).build(connector)
}

async fn body(response: Response<Incoming>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("UTF-8 body")
}

fn uri(text: String) -> Uri {
    text.parse().expect("test URI")
}

/// The connection's addresses and the race's report reach the response's extensions.
#[tokio::test]
async fn get_carries_local_and_peer_address_and_the_report() {
    let server = live_server().await;
    let client = client(Connector::new());

    let response = client
        .get(uri(format!("http://{server}/")))
        .await
        .expect("GET succeeds");
    assert_eq!(response.status(), 200);
    let info = connect_info(&response);
    assert_eq!(body(response).await, format!("peer={}", info.local_addr()));
    assert_eq!(info.remote_addr(), server);
    let winner = info.report().winner().expect("a winner");
    assert_eq!(winner.remote(), server);
    assert_eq!(info.report().attempts().len(), 1);
}

/// A name whose first address is refused: the report shows the failover to the live one.
#[tokio::test]
async fn report_shows_the_failover_from_a_refused_address() {
    let server = live_server().await;
    let connector = Connector::builder()
        .resolver(Names::one("app.test", &[REFUSED, LIVE]))
        .build()
        .expect("connector");

    let response = client(connector)
        .get(uri(format!("http://app.test:{}/", server.port())))
        .await
        .expect("GET succeeds");
    assert_eq!(response.status(), 200);
    let info = connect_info(&response);
    assert_eq!(info.remote_addr(), server);
    let attempts = info.report().attempts();
    assert_eq!(attempts.len(), 2, "{}", info.report());
    assert_eq!(
        attempts[0].remote(),
        SocketAddr::new(REFUSED, server.port())
    );
    assert_eq!(attempts[0].outcome(), Outcome::Refused);
    assert_eq!(attempts[0].host(), Some("app.test"));
    assert_eq!(attempts[1].remote(), server);
    assert_eq!(attempts[1].outcome(), Outcome::Connected);
}

/// `http://[::1]:port/` reaches an IPv6 server; skipped where IPv6 loopback is missing.
#[tokio::test]
async fn bracketed_ipv6_literal() {
    let (listener, server) = match listen("::1".parse().expect("::1")).await {
        Ok(bound) => bound,
        Err(e) => {
            support::skip::cannot_run(&format!(
                "no IPv6 loopback on this machine: bind [::1]:0: {e}"
            ));
            return;
        }
    };
    serve(listener);
    let response = client(Connector::new())
        .get(uri(format!("http://{server}/")))
        .await
        .expect("GET succeeds");
    let info = connect_info(&response);
    assert_eq!(info.remote_addr(), server);
    assert_eq!(body(response).await, format!("peer={}", info.local_addr()));
}

/// A failed connect reaches the caller as hyper-util's error whose source is the
/// `ConnectError`, every attempt in it.
#[tokio::test]
async fn a_failed_connect_keeps_every_attempt() {
    let (listener, closed) = listen(LIVE).await.expect("bind");
    drop(listener);
    let connector = Connector::builder()
        .resolver(Names::one("closed.test", &[REFUSED, LIVE]))
        .build()
        .expect("connector");

    let error = client(connector)
        .get(uri(format!("http://closed.test:{}/", closed.port())))
        .await
        .expect_err("nothing listens");
    assert!(error.is_connect(), "{error:?}");
    let connect = error
        .source()
        .and_then(|source| source.downcast_ref::<ConnectError>())
        .expect("the source is the ConnectError");
    assert_eq!(connect.kind(), ConnectErrorKind::AllFailed);
    let attempts = connect.report().attempts();
    assert_eq!(attempts.len(), 2, "{connect}");
    assert!(attempts
        .iter()
        .all(|attempt| attempt.outcome() == Outcome::Refused));
}

/// URIs the connector cannot use are refused before anything is opened, naming the bad part.
#[tokio::test]
async fn uris_without_host_or_with_another_scheme_are_refused() {
    let mut connector = Connector::new();

    let error = connector
        .call(Uri::from_static("/only/a/path"))
        .await
        .expect_err("no host");
    assert_eq!(error.kind(), ConnectErrorKind::InvalidTarget);
    assert!(error.to_string().contains("URI has no host"), "{error}");
    assert!(error.report().attempts().is_empty());

    let error = connector
        .call(Uri::from_static("ftp://127.0.0.1:21/file"))
        .await
        .expect_err("ftp");
    assert_eq!(error.kind(), ConnectErrorKind::InvalidTarget);
    assert!(
        error
            .to_string()
            .contains("URI scheme \"ftp\" is not http or https"),
        "{error}"
    );
    assert_eq!(
        error.invalid_target().map(|invalid| invalid.input()),
        Some("\"ftp://127.0.0.1:21\"")
    );

    // Through the client, the same error is the source of hyper-util's.
    let error = client(Connector::new())
        .get(Uri::from_static("ftp://127.0.0.1:21/file"))
        .await
        .expect_err("ftp");
    let connect = error
        .source()
        .and_then(|source| source.downcast_ref::<ConnectError>())
        .expect("the source is the ConnectError");
    assert_eq!(connect.kind(), ConnectErrorKind::InvalidTarget);
}

/// `UriConnector::allow_any_scheme` takes a scheme that `Connector` refuses.
#[tokio::test]
async fn any_scheme_when_allowed() {
    let server = live_server().await;
    let target = uri(format!("redis://{server}"));
    let mut strict = UriConnector::new(Connector::new());
    assert!(strict.call(target.clone()).await.is_err());
    let mut any = strict.allow_any_scheme(true);
    let stream = any.call(target).await.expect("connects");
    assert_eq!(stream.info().remote_addr(), server);
    assert_eq!(stream.get_ref().peer_addr().ok(), Some(server));
}

mod tls {
    use super::*;
    use rustls::{ClientConfig, ServerConfig};
    use tokio_rustls::TlsAcceptor;

    /// A self-signed certificate for `name`, as server and client configurations (no ALPN).
    fn configs(name: &str) -> (ServerConfig, ClientConfig) {
        let (server, client, _) = super::support::tls::configs(&[name.to_owned()], &[], &[]);
        (server, client)
    }

    fn serve_tls(listener: TcpListener, config: ServerConfig) {
        let acceptor = TlsAcceptor::from(Arc::new(config));
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service =
                        hyper::service::service_fn(move |_: Request<Incoming>| answer(peer));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    }

    /// hyper-rustls wraps the connector; the race, its failover and its report come through TLS.
    #[tokio::test]
    async fn https_through_hyper_rustls() {
        let (server_config, client_config) = configs("app.test");
        let (listener, server) = listen(LIVE).await.expect("bind");
        serve_tls(listener, server_config);
        let connector = Connector::builder()
            .resolver(Names::one("app.test", &[REFUSED, LIVE]))
            .build()
            .expect("connector");
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_config)
            .https_only()
            .enable_http1()
            .wrap_connector(connector);

        let response = client(https)
            .get(uri(format!("https://app.test:{}/", server.port())))
            .await
            .expect("GET over TLS succeeds");
        assert_eq!(response.status(), 200);
        let info = connect_info(&response);
        assert_eq!(info.remote_addr(), server);
        assert_eq!(body(response).await, format!("peer={}", info.local_addr()));
        let outcomes: Vec<Outcome> = info
            .report()
            .attempts()
            .iter()
            .map(|attempt| attempt.outcome())
            .collect();
        assert_eq!(outcomes, [Outcome::Refused, Outcome::Connected]);
    }

    /// hyper-rustls hands the connector's error on as the source of hyper-util's.
    #[tokio::test]
    async fn https_connect_errors_keep_the_report() {
        let (_, client_config) = configs("app.test");
        let (listener, closed) = listen(LIVE).await.expect("bind");
        drop(listener);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_config)
            .https_only()
            .enable_http1()
            .wrap_connector(Connector::new());
        let error = client(https)
            .get(uri(format!("https://{closed}/")))
            .await
            .expect_err("nothing listens");
        let connect = error
            .source()
            .and_then(|source| source.downcast_ref::<ConnectError>())
            .expect("the source is the ConnectError");
        assert_eq!(connect.report().attempts().len(), 1);
        assert_eq!(connect.report().attempts()[0].outcome(), Outcome::Refused);
    }
}

/// What hyper-util's client and TLS wrappers need, checked at compile time.
#[allow(dead_code)]
fn the_types_fit_hyper_util() {
    fn connect<C: Connect + Clone + Send + Sync + 'static>() {}
    fn send_unpin<T: Send + Unpin + 'static>() {}
    fn clone_send_sync<T: Clone + Send + Sync + 'static>() {}

    connect::<Connector>();
    connect::<UriConnector>();
    connect::<hyper_rustls::HttpsConnector<Connector>>();
    clone_send_sync::<Connector>();
    clone_send_sync::<UriConnector>();
    clone_send_sync::<ConnectInfo>();
    send_unpin::<UriConnecting>();
    send_unpin::<HttpStream>();
    send_unpin::<<Connector as Service<Uri>>::Future>();
}

/// The README's recipe: a deadline on a whole request is tower's `Timeout` around the client
/// (boxed with `map_future(Box::pin)`, since its future is `!Unpin`); `Builder::timeout` bounds
/// the connect alone. Against a server that accepts and never answers, the connect (deadline
/// 200 ms) succeeds at once and the request fails at its own deadline (600 ms), with tower's
/// `Elapsed`, not a `ConnectError`.
#[tokio::test]
async fn a_whole_request_deadline_is_towers_timeout_around_the_client() {
    use std::time::{Duration, Instant};
    use tower::{ServiceBuilder, ServiceExt};

    let (listener, addr) = listen(LIVE).await.expect("bind 127.0.0.1");
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut silent = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            silent.push(stream);
        }
    });

    let connector = Connector::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .expect("valid settings");
    let client = ServiceBuilder::new()
        .map_future(Box::pin)
        .timeout(Duration::from_millis(600))
        .service(client(connector));
    let request = Request::get(format!("http://{addr}/"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let start = Instant::now();
    let mut call = client.oneshot(request);
    // Boxed, the future is `Unpin`: it can be polled by `&mut`, as `select!` does.
    let error = (&mut call).await.expect_err("the server never answers");
    let took = start.elapsed();
    assert!(
        error.is::<tower::timeout::error::Elapsed>(),
        "tower's deadline, not the connect's: {error}"
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The connect's 200 ms did not cut the request short; the request's 600 ms ended it.
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}
