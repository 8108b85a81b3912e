//! The API's promises that the compiler checks: what is `Send`, `Sync`, `Clone`, `Unpin`, and
//! what converts into what. hyper-util's client needs these exact bounds.
#![allow(clippy::unwrap_used)]

use std::future::Future;

use connect_by_list::{
    AddressFilter, Builder, ConnectError, Connecting, Connection, Connector, PolicyTable, Report,
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

/// Polling a finished invalid-target connect again answers the same error instead of panicking.
#[tokio::test]
async fn polling_again_after_an_error_does_not_panic() {
    let mut connecting = Connector::new().connect("no-port");
    let first = (&mut connecting).await.unwrap_err();
    let again = (&mut connecting).await.unwrap_err();
    assert_eq!(first.to_string(), again.to_string());
}
