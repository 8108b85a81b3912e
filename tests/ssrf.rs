//! SSRF defence for reqwest users, against servers on loopback: `AddressFilter::check_url`
//! judges IP-literal URLs (which reqwest never hands to a resolver), and
//! `AddressFilter::redirect_policy` refuses a redirect to a denied literal before anything
//! connects to it. Each absence is checked after the same path was seen to connect without the
//! defence.
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use connect_by_list::{AddressFilter, Connector, Denied, IpPrefix, ReqwestResolver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Where the client may go: the redirecting server.
const FRONT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Where the redirect points: loopback as well, which the filter denies.
const INNER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A one-request-per-connection HTTP/1.1 server: `answer(path)` gives the response head; the
/// returned counter counts accepted connections.
async fn server(
    ip: IpAddr,
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                let response = answer(&path);
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, accepted)
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn redirect(to: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
}

/// Loopback denied (`deny_non_public`), except the front server's one address.
fn filter() -> AddressFilter {
    AddressFilter::deny_non_public().allow(IpPrefix::new(FRONT, 32).unwrap())
}

fn client(policy: reqwest::redirect::Policy) -> reqwest::Client {
    let connector = Connector::builder()
        .address_filter(filter())
        .build()
        .unwrap();
    reqwest::Client::builder()
        .dns_resolver(ReqwestResolver::from(connector))
        .redirect(policy)
        .no_proxy()
        .build()
        .unwrap()
}

/// The `Denied` somewhere in an error's chain of sources.
fn denied_in(error: &reqwest::Error) -> Denied {
    let mut source = error.source();
    while let Some(error) = source {
        if let Some(denied) = error.downcast_ref::<Denied>() {
            return denied.clone();
        }
        source = error.source();
    }
    panic!("no Denied in {error:?}");
}

/// A redirect to a denied literal, `http://127.0.0.2:PORT/` or its IPv4-mapped form
/// `http://[::ffff:127.0.0.2]:PORT/`: reqwest's default policy follows it and the inner server
/// is reached (the control); the filter's policy refuses it, with the filter's reason, and the
/// inner server sees no connection.
#[tokio::test]
async fn a_redirect_to_a_denied_literal_is_refused_before_connecting() {
    let (inner, inner_accepted) = server(INNER, |_| ok("inner")).await;
    let port = inner.port();
    let (front, front_accepted) = server(FRONT, move |path| match path {
        "/plain" => redirect(&format!("http://127.0.0.2:{port}/")),
        "/mapped" => redirect(&format!("http://[::ffff:127.0.0.2]:{port}/")),
        _ => ok("front"),
    })
    .await;

    // The control: without the policy, each redirect reaches the inner server.
    let unguarded = client(reqwest::redirect::Policy::default());
    for (n, path) in ["/plain", "/mapped"].into_iter().enumerate() {
        let body = unguarded
            .get(format!("http://{front}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "inner", "{path}");
        assert_eq!(inner_accepted.load(Ordering::SeqCst), n + 1, "{path}");
    }

    let guarded = client(filter().redirect_policy());
    for (path, reason) in [
        ("/plain", "loopback"),
        ("/mapped", "IPv4-mapped 127.0.0.2: loopback"),
    ] {
        let before = front_accepted.load(Ordering::SeqCst);
        let error = guarded
            .get(format!("http://{front}{path}"))
            .send()
            .await
            .expect_err("the redirect is refused");
        assert!(error.is_redirect(), "{error:?}");
        let denied = denied_in(&error);
        assert!(denied.reason().starts_with(reason), "{path}: {denied}");
        // The front server answered this request; the inner one saw nothing more.
        assert_eq!(front_accepted.load(Ordering::SeqCst), before + 1);
        assert_eq!(inner_accepted.load(Ordering::SeqCst), 2, "{path}");
    }

    // A redirect the filter allows is still followed.
    let (back, _) = server(FRONT, |_| ok("allowed")).await;
    let (hop, _) = server(FRONT, move |_| redirect(&format!("http://{back}/"))).await;
    let body = guarded
        .get(format!("http://{hop}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "allowed");
}

/// reqwest never asks a resolver about an IP-literal URL, so the connector's filter in
/// `ReqwestResolver` does not see it: the request reaches the server (the control).
/// `check_url` refuses it first, with the reason, in every spelling reqwest's parser accepts.
#[tokio::test]
async fn check_url_judges_literal_hosts_the_resolver_never_sees() {
    let (inner, inner_accepted) = server(INNER, |_| ok("inner")).await;
    let port = inner.port();
    let url = reqwest::Url::parse(&format!("http://127.0.0.2:{port}/")).unwrap();

    let body = client(reqwest::redirect::Policy::default())
        .get(url.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "inner", "the resolver's filter never saw the literal");
    assert_eq!(inner_accepted.load(Ordering::SeqCst), 1);

    let filter = filter();
    let denied = filter.check_url(&url).expect_err("a loopback literal");
    assert_eq!(denied.addr(), INNER);
    assert!(denied.reason().starts_with("loopback"), "{denied}");
    for spelling in [
        "http://2130706434/",
        "http://0x7f.0.0.2/",
        "http://127.2/",
        "http://[::ffff:127.0.0.2]/",
        "http://[::ffff:7f00:2]/",
        "https://[::1]:8443/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
    ] {
        let url = reqwest::Url::parse(spelling).unwrap();
        let denied = filter
            .check_url(&url)
            .expect_err(&format!("{spelling} is not public"));
        assert!(!denied.reason().is_empty(), "{spelling}");
    }
    for allowed in [
        format!("http://{FRONT}:{port}/"),
        "http://example.com/".to_owned(),
        "http://93.184.215.14/".to_owned(),
    ] {
        let url = reqwest::Url::parse(&allowed).unwrap();
        assert_eq!(filter.check_url(&url), Ok(()), "{allowed}");
    }
}
