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

use std::net::SocketAddr;

use connect_by_list::ReqwestResolver;
use reqwest::dns::Resolve as _;

#[path = "support/http.rs"]
mod http_support;

use http_support::{start_server, BoxError, MadeUpName, NOBODY};

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
