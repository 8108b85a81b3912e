//! reqwest with this crate's resolver bridge, against a hyper server this example starts on
//! loopback.
//!
//! ```text
//! cargo run --example reqwest --features reqwest
//! ```
//!
//! A resolver maps a made-up name to an address where nothing listens and to the live one. The
//! bridge asks for both families at once and hands reqwest the addresses in this crate's order;
//! reqwest connects by itself, tries the refused one, then the live one. reqwest reports no
//! attempts: for the race's report, use hyper-util's client (see the `hyper_client` example).
//!
//! Nothing leaves the machine: every address is loopback.

use std::convert::Infallible;
use std::error::Error;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use connect_by_list::{Family, ReqwestResolver, Resolve, Resolving};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::dns::Resolve as _;
use tokio::net::TcpListener;

type BoxError = Box<dyn Error + Send + Sync>;

/// 127.0.0.2 is loopback on Linux too, and nothing listens there: a connect is refused at once.
const NOBODY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = start_server().await?;
    println!("server listening on {server}");

    let bridge = ReqwestResolver::new(MadeUpName {
        name: "app.test",
        addresses: vec![NOBODY, server.ip()],
    });
    // What reqwest is handed: every address, in order, with port 0 for reqwest to fill in.
    let order: Vec<SocketAddr> = bridge.resolve("app.test".parse()?).await?.collect();
    println!("app.test resolves to {order:?}");

    let client = reqwest::Client::builder()
        .dns_resolver(bridge)
        .no_proxy()
        .build()?;
    let url = format!("http://app.test:{}/", server.port());
    let response = client.get(&url).send().await?;
    println!("GET {url} -> {}", response.status());
    if let Some(remote) = response.remote_addr() {
        println!("connected to {remote}");
    }
    println!("server says: {}", response.text().await?);
    Ok(())
}

/// Resolves one made-up name to fixed addresses, so that nothing asks a real resolver.
#[derive(Debug)]
struct MadeUpName {
    name: &'static str,
    addresses: Vec<IpAddr>,
}

impl Resolve for MadeUpName {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let answer: Vec<IpAddr> = if name == self.name {
            self.addresses
                .iter()
                .copied()
                .filter(|ip| Family::of(*ip) == family)
                .collect()
        } else {
            Vec::new()
        };
        Box::pin(async move { Ok(answer) })
    }
}

/// A hyper server on 127.0.0.1 that answers every request with the client address it saw.
async fn start_server() -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_: Request<Incoming>| async move {
                    let text = format!("hello, {peer}");
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    eprintln!("server: {error}");
                }
            });
        }
    });
    Ok(addr)
}
