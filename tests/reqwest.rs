//! reqwest with the resolver bridge, end to end against a hyper server on loopback.
#![cfg(feature = "reqwest")]

mod support;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;

use connect_by_list::{Family, ReqwestResolver};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::dns::Resolve as _;
use tokio::net::TcpListener;

use support::names::Names;

const LIVE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Loopback too on Linux, but nothing listens there: a connect to it is refused at once.
const REFUSED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A plain HTTP/1 server that answers with the peer address it saw.
async fn live_server() -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::new(LIVE, 0))
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_: Request<Incoming>| async move {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                        "peer={peer}"
                    )))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A made-up name maps to a refused address and then the live one: reqwest, starting from the
/// bridge's order, fails over to the live one.
#[tokio::test]
async fn reqwest_reaches_the_live_address_of_a_name() {
    let server = live_server().await;
    let table = Names::one("app.test", &[REFUSED, LIVE]);
    let asked = table.asked.clone();
    let client = reqwest::Client::builder()
        .dns_resolver(ReqwestResolver::new(table))
        .no_proxy()
        .build()
        .expect("client");

    let response = client
        .get(format!("http://app.test:{}/", server.port()))
        .send()
        .await
        .expect("GET succeeds");
    assert_eq!(response.status(), 200);
    assert_eq!(response.remote_addr(), Some(server));
    let body = response.text().await.expect("body");
    assert!(body.starts_with("peer=127.0.0.1:"), "{body}");
    // Both families were asked for, once each.
    assert_eq!(asked[Family::V6 as usize].load(Ordering::SeqCst), 1);
    assert_eq!(asked[Family::V4 as usize].load(Ordering::SeqCst), 1);
}

/// The bridge hands reqwest every address, families interleaved IPv6 first, with port 0 for
/// reqwest to fill in.
#[tokio::test]
async fn the_bridge_orders_and_leaves_the_port_to_reqwest() {
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let bridge = ReqwestResolver::new(Names::one("app.test", &[REFUSED, LIVE, v6]));
    let addrs: Vec<SocketAddr> = bridge
        .resolve("app.test".parse().expect("name"))
        .await
        .expect("resolves")
        .collect();
    let port0 = |ip| SocketAddr::new(ip, 0);
    assert_eq!(addrs, [port0(v6), port0(REFUSED), port0(LIVE)]);
}

/// A name without addresses fails as a DNS error of reqwest's, with the name in it.
#[tokio::test]
async fn a_name_without_addresses_is_a_dns_error() {
    let client = reqwest::Client::builder()
        .dns_resolver(ReqwestResolver::new(Names::default()))
        .no_proxy()
        .build()
        .expect("client");
    let error = client
        .get("http://nowhere.test/")
        .send()
        .await
        .expect_err("no address");
    assert!(error.is_connect(), "{error:?}");
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    while let Some(error) = source {
        chain.push_str(&format!("{error}; "));
        source = error.source();
    }
    assert!(
        chain.contains("nowhere.test did not resolve (no IPv4 or IPv6 address)"),
        "{chain}"
    );
}
