//! GETs a URL through a proxy, with a `Connector` racing the proxy's addresses under hyper-util's
//! proxy connectors, and shows how that race went.
//!
//! ```text
//! cargo run --example proxy --features hyper -- --connect http://proxy.example:3128 http://example.com/
//! cargo run --example proxy --features hyper -- --socks5 socks5://127.0.0.1:1080 http://example.com/
//! cargo run --example proxy --features hyper -- --socks5-local socks5://127.0.0.1:1080 http://example.com/
//! ```
//!
//! - `--connect`: HTTP CONNECT (`Tunnel`); the proxy resolves the target.
//! - `--socks5`: SOCKS5 (`SocksV5`); the proxy resolves the target.
//! - `--socks5-local`: SOCKS5 under `LocalDns`: the connector resolves the target (its resolver,
//!   address filter, ranking) and the proxy is handed an address. With `--deny-non-public` the
//!   filter refuses private and loopback targets then; without `LocalDns` it sees only the
//!   proxy's addresses.
//!
//! Nothing is sent unless you run it with a proxy and a URL.

use connect_by_list::{AddressFilter, ConnectInfo, Connector, LocalDns, UriConnector};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Uri;
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str =
    "usage: proxy (--connect | --socks5 | --socks5-local) PROXY_URI URL [--deny-non-public]";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let deny = args.iter().any(|a| a == "--deny-non-public");
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--deny-non-public")
        .collect();
    let [mode, proxy, url] = args[..] else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let proxy: Uri = proxy.parse()?;
    let url: Uri = url.parse()?;
    let filter = if deny {
        AddressFilter::deny_non_public()
    } else {
        AddressFilter::allow_all()
    };
    let connector = Connector::builder().address_filter(filter).build()?;
    // A proxy URI's scheme (socks5://) is not http: let the connector take any, with its port.
    let to_proxy = UriConnector::new(connector.clone()).allow_any_scheme(true);
    match mode {
        "--connect" => get(Tunnel::new(proxy, to_proxy), url).await,
        "--socks5" => get(SocksV5::new(proxy, to_proxy), url).await,
        "--socks5-local" => {
            let socks = SocksV5::new(proxy, to_proxy);
            get(LocalDns::new(connector, socks), url).await
        }
        other => Err(format!("{other}: {USAGE}").into()),
    }
}

async fn get<C>(connector: C, url: Uri) -> Result<(), BoxError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client: Client<C, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let response = client.get(url.clone()).await?;
    println!("GET {url} -> {}", response.status());
    if let Some(info) = response.extensions().get::<ConnectInfo>() {
        println!(
            "proxy at {}:\n{}",
            info.remote_addr(),
            info.report().timeline()
        );
    }
    let body = response.into_body().collect().await?.to_bytes();
    println!("{} bytes of body", body.len());
    Ok(())
}
