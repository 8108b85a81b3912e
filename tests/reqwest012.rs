//! The resolver bridge with reqwest 0.12 (feature `reqwest012`), end to end against a hyper
//! server on loopback: the same bridge as for reqwest 0.13, behind the older version's trait.
#![cfg(feature = "reqwest012")]

mod support;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use connect_by_list::{AddressFilter, Connector, ReqwestResolver};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use support::names::Names;

const LIVE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Loopback too on Linux, but nothing listens there: a connect to it is refused at once.
const REFUSED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A plain HTTP/1 server that answers "ok".
async fn live_server() -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::new(LIVE, 0))
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A made-up name maps to a refused address and then the live one: reqwest 0.12, starting from
/// the bridge's order, reaches the live one.
#[tokio::test]
async fn reqwest_0_12_reaches_the_live_address_of_a_name() {
    let server = live_server().await;
    let client = reqwest012::Client::builder()
        .dns_resolver(std::sync::Arc::new(ReqwestResolver::new(Names::one(
            "app.test",
            &[REFUSED, LIVE],
        ))))
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
}

/// The connector's filter applies as with 0.13, and the error names the denied address without
/// a port.
#[tokio::test]
async fn reqwest_0_12_sees_the_filter() {
    let connector = Connector::builder()
        .resolver(Names::one("app.test", &[LIVE]))
        .address_filter(AddressFilter::deny_non_public())
        .build()
        .expect("valid settings");
    let client = reqwest012::Client::builder()
        .dns_resolver(std::sync::Arc::new(ReqwestResolver::from(connector)))
        .no_proxy()
        .build()
        .expect("client");
    let error = client
        .get("http://app.test:9/")
        .send()
        .await
        .expect_err("denied");
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    while let Some(error) = source {
        chain.push(error.to_string());
        source = error.source();
    }
    let chain = chain.join(" / ");
    assert!(
        chain.contains("every address of app.test was denied by the address filter: 127.0.0.1 ("),
        "{chain}"
    );
}
