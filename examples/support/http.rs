//! What the HTTP examples share: a made-up name's resolver and a hyper server on loopback.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::error::Error;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use connect_by_list::{Family, Resolve, Resolving};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub type BoxError = Box<dyn Error + Send + Sync>;

/// 127.0.0.2 is loopback on Linux too, and nothing listens there: a connect is refused at once.
/// (Where it is not configured, the attempt is overtaken by the next one after the attempt delay.)
pub const NOBODY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Resolves one made-up name to fixed addresses, so that nothing asks a real resolver.
#[derive(Debug)]
pub struct MadeUpName {
    pub name: &'static str,
    pub addresses: Vec<IpAddr>,
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
pub async fn start_server() -> Result<SocketAddr, BoxError> {
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
