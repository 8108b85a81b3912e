//! The API's promises that the compiler checks: what is `Send`, `Sync`, `Clone`, `Unpin`, and
//! what converts into what. hyper-util's client needs these exact bounds.
#![allow(clippy::unwrap_used)]

use std::future::Future;

use connect_by_list::{
    AddressFilter, Builder, ConnectError, ConnectErrorKind, Connecting, Connection, Connector,
    PolicyTable, Report,
};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn clone<T: Clone>() {}
fn unpin<T: Unpin>() {}
fn static_<T: 'static>() {}
fn future_send<F: Future + Send>(_: &F) {}

#[test]
fn the_connector_and_its_future_have_the_bounds_clients_need() {
    send::<Connector>();
    sync::<Connector>();
    clone::<Connector>();
    static_::<Connector>();
    send::<Connecting>();
    unpin::<Connecting>();
    static_::<Connecting>();
    send::<Connection>();
    sync::<Connection>();
    send::<ConnectError>();
    sync::<ConnectError>();
    static_::<ConnectError>();
    clone::<ConnectError>();
    send::<Report>();
    sync::<Report>();
    clone::<Report>();
    send::<Builder>();
    clone::<Builder>();
    send::<AddressFilter>();
    sync::<AddressFilter>();
    clone::<PolicyTable>();
}

#[tokio::test]
async fn every_connect_future_is_send() {
    let connector = Connector::new();
    let connecting = connector.connect("127.0.0.1:9");
    future_send(&connecting);
    drop(connecting);
    let one_line = connect_by_list::connect("127.0.0.1:9");
    future_send(&one_line);
    drop(one_line);
    let plan = connector.plan("127.0.0.1:9");
    future_send(&plan);
    drop(plan);
    // Iterators go in as they are, here over a `Vec<String>` without a `collect()`.
    let hosts: Vec<String> = ["127.0.0.1:9", "[::1]:9"].map(String::from).to_vec();
    let listed = connector.connect(hosts.iter());
    future_send(&listed);
    drop(listed);
    let ported = connector.connect(["127.0.0.1", "::1"].iter().map(|host| (*host, 9)));
    future_send(&ported);
}

#[test]
fn errors_convert_into_the_usual_boxes() {
    fn takes_box(_: Box<dyn std::error::Error + Send + Sync>) {}
    fn takes_io(_: std::io::Error) {}
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = runtime
        .block_on(Connector::new().connect("nope"))
        .unwrap_err();
    takes_box(Box::new(error));
    let error = runtime
        .block_on(Connector::new().connect("nope"))
        .unwrap_err();
    let copy = error.clone();
    assert_eq!(copy.to_string(), error.to_string());
    assert_eq!(copy.kind(), error.kind());
    takes_io(error.into());
    let config_error = Connector::builder().max_attempts(0).build().unwrap_err();
    takes_box(Box::new(config_error.clone()));
    takes_io(config_error.into());
}

/// A finished connect polled again answers, every time, that it has finished (never a `Pending`
/// that nothing would wake), opens nothing, and says so through `FusedFuture`.
#[tokio::test]
async fn polling_again_after_the_answer_says_it_finished() {
    use futures_util::future::FusedFuture;
    let mut invalid = Connector::new().connect("no-port");
    assert!(!invalid.is_terminated());
    let first = (&mut invalid).await.unwrap_err();
    assert_eq!(first.kind(), ConnectErrorKind::InvalidTarget);
    assert!(invalid.is_terminated());
    for _ in 0..2 {
        let again = (&mut invalid).await.unwrap_err();
        assert_eq!(again.kind(), ConnectErrorKind::PolledAfterCompletion);
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut connecting = Connector::new().connect(listener.local_addr().unwrap());
    let connection = (&mut connecting).await.unwrap();
    assert!(connecting.is_terminated());
    let again = (&mut connecting).await.unwrap_err();
    assert_eq!(again.kind(), ConnectErrorKind::PolledAfterCompletion);
    assert!(
        again.report().attempts().is_empty(),
        "nothing new was opened"
    );
    drop(connection);
}

/// A `Connection` reads and writes like its stream, and tells its local address as Tokio does.
#[tokio::test]
async fn a_connection_reads_and_writes_and_tells_its_local_address() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, peer) = listener.accept().await.unwrap();
        let mut buf = [0; 4];
        stream.read_exact(&mut buf).await.unwrap();
        stream.write_all(b"pong").await.unwrap();
        (buf, peer)
    });
    let mut connection = Connector::new().connect(server_addr).await.unwrap();
    connection.write_all(b"ping").await.unwrap();
    let mut reply = [0; 4];
    connection.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"pong");
    let (got, peer) = server.await.unwrap();
    assert_eq!(&got, b"ping");
    let local: std::io::Result<std::net::SocketAddr> = connection.local_addr();
    assert_eq!(local.unwrap(), peer);
}
