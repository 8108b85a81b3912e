//! Proxies over a `Connector`, end to end on loopback: hyper-util's `Tunnel` (HTTP CONNECT) and
//! `SocksV5` wrap the connector, which races the proxy's addresses; the proxies are written
//! here. `LocalDns` resolves the target through the connector, so that its address filter sees
//! the target's address and the SOCKS5 proxy is handed an address, not a name.
#![cfg(feature = "hyper")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use connect_by_list::{
    AddressFilter, ConnectInfo, Connector, IpPrefix, LocalDns, Outcome, UriConnector,
};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::names::Names;

const LIVE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Loopback too on Linux; nothing listens there on the proxy's port, so a connect is refused.
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A hyper server on `ip` answering every request with `name`.
async fn server(ip: IpAddr, name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_: Request<Incoming>| async move {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(name))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// What a proxy was asked for: `name host:port` or `address ip:port`.
type Asked = Arc<Mutex<Vec<String>>>;

/// Which proxy protocol the test proxy speaks.
#[derive(Clone, Copy)]
enum Protocol {
    Connect,
    Socks5,
}

/// A proxy on `ip` speaking `protocol`, which resolves names from `names` itself (the proxy's
/// own DNS), connects to the target, and relays. Records each request.
async fn proxy(
    ip: IpAddr,
    protocol: Protocol,
    names: HashMap<&'static str, IpAddr>,
) -> (SocketAddr, Asked) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let asked: Asked = Arc::default();
    let log = Arc::clone(&asked);
    let names = Arc::new(names);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (log, names) = (Arc::clone(&log), Arc::clone(&names));
            tokio::spawn(async move {
                let _ = relay(client, protocol, &log, &names).await;
            });
        }
    });
    (addr, asked)
}

async fn relay(
    mut client: TcpStream,
    protocol: Protocol,
    log: &Mutex<Vec<String>>,
    names: &HashMap<&'static str, IpAddr>,
) -> std::io::Result<()> {
    let target = match protocol {
        Protocol::Connect => {
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(client.read_u8().await?);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let authority = head.split(' ').nth(1).unwrap_or_default().to_owned();
            let (host, port) = authority.rsplit_once(':').unwrap();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port: u16 = port.parse().unwrap();
            let target = match host.parse::<IpAddr>() {
                Ok(ip) => {
                    log.lock()
                        .unwrap()
                        .push(format!("address {}", SocketAddr::new(ip, port)));
                    SocketAddr::new(ip, port)
                }
                Err(_) => {
                    log.lock().unwrap().push(format!("name {host}:{port}"));
                    SocketAddr::new(names[host], port)
                }
            };
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
            target
        }
        Protocol::Socks5 => {
            let mut greeting = [0u8; 2];
            client.read_exact(&mut greeting).await?;
            let mut methods = vec![0u8; greeting[1].into()];
            client.read_exact(&mut methods).await?;
            assert_eq!(greeting[0], 5);
            assert!(methods.contains(&0), "no-auth offered");
            client.write_all(&[5, 0]).await?;
            let mut request = [0u8; 4];
            client.read_exact(&mut request).await?;
            assert_eq!(request[..3], [5, 1, 0], "a CONNECT request");
            let target = match request[3] {
                1 => {
                    let mut ip = [0u8; 4];
                    client.read_exact(&mut ip).await?;
                    let port = client.read_u16().await?;
                    let addr = SocketAddr::new(IpAddr::from(ip), port);
                    log.lock().unwrap().push(format!("address {addr}"));
                    addr
                }
                4 => {
                    let mut ip = [0u8; 16];
                    client.read_exact(&mut ip).await?;
                    let port = client.read_u16().await?;
                    let addr = SocketAddr::new(IpAddr::from(ip), port);
                    log.lock().unwrap().push(format!("address {addr}"));
                    addr
                }
                3 => {
                    let len = client.read_u8().await?;
                    let mut name = vec![0u8; len.into()];
                    client.read_exact(&mut name).await?;
                    let port = client.read_u16().await?;
                    let name = String::from_utf8(name).unwrap();
                    log.lock().unwrap().push(format!("name {name}:{port}"));
                    SocketAddr::new(names[name.as_str()], port)
                }
                other => panic!("address type {other}"),
            };
            client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            target
        }
    };
    let mut upstream = TcpStream::connect(target).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// GETs `uri` through `connector`; the body and the `ConnectInfo` of the connection.
async fn get<C>(connector: C, uri: String) -> Result<(String, Option<ConnectInfo>), String>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client: Client<C, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let uri: Uri = uri.parse().unwrap();
    let response = client
        .get(uri)
        .await
        .map_err(|error| format!("{error:?}"))?;
    let info = response.extensions().get::<ConnectInfo>().cloned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((String::from_utf8(body.to_vec()).unwrap(), info))
}

/// HTTP CONNECT: the connector under `Tunnel` races the proxy's addresses (its name resolves
/// to a refused address, then the proxy's), and the proxy is asked for the target by name.
#[tokio::test]
async fn http_connect_proxy_addresses_are_raced_by_the_connector() {
    let origin = server(LIVE, "origin").await;
    let (proxy, asked) = proxy(
        LIVE,
        Protocol::Connect,
        HashMap::from([("origin.test", LIVE)]),
    )
    .await;
    let connector = Connector::builder()
        .resolver(Names::one("proxy.test", &[OTHER, LIVE]))
        .sort_addresses(false)
        .build()
        .unwrap();
    let proxy_uri: Uri = format!("http://proxy.test:{}", proxy.port())
        .parse()
        .unwrap();
    let tunnel = Tunnel::new(proxy_uri, connector);

    let (body, info) = get(tunnel, format!("http://origin.test:{}/", origin.port()))
        .await
        .unwrap();
    assert_eq!(body, "origin");
    assert_eq!(
        *asked.lock().unwrap(),
        vec![format!("name origin.test:{}", origin.port())]
    );
    let info = info.expect("the connector's ConnectInfo comes through the tunnel");
    assert_eq!(info.remote_addr(), proxy);
    let attempts = info.report().attempts();
    let tried: Vec<(SocketAddr, Outcome)> =
        attempts.iter().map(|a| (a.remote(), a.outcome())).collect();
    assert_eq!(
        tried,
        vec![
            (SocketAddr::new(OTHER, proxy.port()), Outcome::Refused),
            (proxy, Outcome::Connected),
        ]
    );
}

/// SOCKS5: by default the proxy gets the target's name and resolves it itself, so the
/// connector's filter never sees the target: a name the proxy maps to a denied address is
/// reached (the control). Under `LocalDns` the connector resolves it: an allowed target is
/// handed to the proxy as an address, and a denied one fails before the proxy is asked.
#[tokio::test]
async fn socks5_proxy_with_remote_and_local_resolution() {
    let origin = server(LIVE, "origin").await;
    let inner = server(OTHER, "inner").await;
    let (proxy, asked) = proxy(
        LIVE,
        Protocol::Socks5,
        HashMap::from([("origin.test", LIVE), ("inner.test", OTHER)]),
    )
    .await;
    let mut table = Names::one("origin.test", &[LIVE]);
    table.add("inner.test", &[OTHER]);
    let connector = Connector::builder()
        .resolver(table)
        .address_filter(AddressFilter::allow_all().deny(IpPrefix::new(OTHER, 32).unwrap()))
        .build()
        .unwrap();
    let proxy_uri: Uri = format!("socks5://{proxy}").parse().unwrap();
    let to_proxy = UriConnector::new(connector.clone()).allow_any_scheme(true);
    let socks = SocksV5::new(proxy_uri, to_proxy);

    // The proxy resolves: the filter sees only the proxy's address, and the denied target is
    // reached.
    let (body, info) = get(
        socks.clone(),
        format!("http://inner.test:{}/", inner.port()),
    )
    .await
    .unwrap();
    assert_eq!(body, "inner");
    assert_eq!(info.unwrap().remote_addr(), proxy);
    assert_eq!(
        *asked.lock().unwrap(),
        vec![format!("name inner.test:{}", inner.port())]
    );

    // The connector resolves: an address goes to the proxy.
    let local = LocalDns::new(connector.clone(), socks);
    let (body, info) = get(
        local.clone(),
        format!("http://origin.test:{}/", origin.port()),
    )
    .await
    .unwrap();
    assert_eq!(body, "origin");
    assert_eq!(info.unwrap().remote_addr(), proxy);
    assert_eq!(
        asked.lock().unwrap().last().unwrap(),
        &format!("address {origin}")
    );

    // ... and a denied one never reaches the proxy.
    let error = get(local, format!("http://inner.test:{}/", inner.port()))
        .await
        .expect_err("the target's address is denied");
    assert!(error.contains("denied"), "{error}");
    assert_eq!(
        asked.lock().unwrap().len(),
        2,
        "the proxy was not asked again"
    );
}
