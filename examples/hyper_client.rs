//! GETs through hyper over a `Connector`, from a hyper server this example starts on loopback,
//! and shows which address each connection used and how the race went.
//!
//! ```text
//! cargo run --example hyper_client --features hyper
//! ```
//!
//! 1. hyper-util's client over the connector: the status and the `ConnectInfo` of the response.
//! 2. A target list whose first address is a refused loopback port: the report shows the
//!    failover, and hyper speaks HTTP over the stream that won.
//! 3. The same failover through hyper-util's client: a resolver maps a made-up name to an address
//!    where nothing listens and to the live one.
//!
//! Nothing leaves the machine: every address is loopback.

use std::net::{Ipv4Addr, SocketAddr};

use connect_by_list::{ConnectInfo, Connector};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

#[path = "support/http.rs"]
mod http_support;

use http_support::{start_server, BoxError, MadeUpName, NOBODY};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = start_server().await?;
    println!("server listening on {server}\n");

    // 1. hyper-util's client, with the connector where it would take its own HttpConnector.
    let client: Client<Connector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(Connector::new());
    let response = client.get(format!("http://{server}/").parse()?).await?;
    println!("1. GET http://{server}/ -> {}", response.status());
    show(response).await?;

    // 2. A list of targets, the first a port where nothing listens.
    let refused = closed_port().await?;
    let connection = Connector::new().connect([refused, server]).await?;
    println!(
        "2. connect([{refused}, {server}]) -> {}",
        connection.peer_addr()
    );
    print!("{}", connection.report().timeline());
    let (mut sender, handshake) =
        hyper::client::conn::http1::handshake(TokioIo::new(connection.into_stream())).await?;
    tokio::spawn(handshake);
    let request = Request::get("/")
        .header(hyper::header::HOST, server.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    println!("   server says: {}\n", String::from_utf8_lossy(&body));

    // 3. One name, two addresses: the first refuses, the second answers.
    let connector = Connector::builder()
        .resolver(MadeUpName {
            name: "app.test",
            addresses: vec![NOBODY, server.ip()],
        })
        .build()?;
    let client: Client<Connector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let uri = format!("http://app.test:{}/", server.port());
    let response = client.get(uri.parse()?).await?;
    println!("3. GET {uri} -> {}", response.status());
    show(response).await?;
    Ok(())
}

/// Prints which connection a response came over, the race that made it, and the body.
async fn show(response: Response<Incoming>) -> Result<(), BoxError> {
    if let Some(info) = response.extensions().get::<ConnectInfo>() {
        println!(
            "   connected from {} to {} in {:?}",
            info.local_addr(),
            info.remote_addr(),
            info.report().elapsed()
        );
        print!("{}", info.report().timeline());
    }
    let body = response.into_body().collect().await?.to_bytes();
    println!("   server says: {}\n", String::from_utf8_lossy(&body));
    Ok(())
}

/// A loopback port where nothing listens (bound, then closed).
async fn closed_port() -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    Ok(listener.local_addr()?)
}
