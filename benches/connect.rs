//! Loopback connects, side by side: connect-by-list's `Connector::connect`, Tokio's
//! `TcpStream::connect`, and hyper-util's `HttpConnector` (the connector reqwest uses), called
//! through its `tower_service::Service<Uri>` as hyper-util's client calls it.
//!
//! Groups (each compares the three):
//! - `connect/one_live`: one live address.
//! - `connect/refused_then_live`: a refused address first, a live one second (the crate with its
//!   connect history off, so that it meets the refused address every time; the default, history
//!   on, is listed as a fourth line).
//! - `connect/1000_concurrent`: 1,000 connects at once to one live listener, time per batch.
//!
//! Every connect goes to 127.0.0.1 only. Each contender gets each address in the form it takes:
//! the crate and `TcpStream::connect` a `SocketAddr` (a slice of two for the refused case),
//! `HttpConnector` an `http://127.0.0.1:PORT` URI (an IP literal, so it skips its resolver) or, for
//! the two-address case, a name that a custom resolver answers with both addresses.
//!
//! Each contender runs with its defaults, which is what users get: the crate sets `TCP_NODELAY`
//! and `IP_RECVERR` on each socket, `HttpConnector` sets `TCP_NODELAY` (off), Tokio sets nothing.
//!
//! TIME_WAIT: see `support`: every client stream is closed with `SO_LINGER 0`, for all three.
//!
//! Run: `cargo bench --bench connect` (add `-- one_live` etc. to pick a group).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/support/loopback.rs"]
mod loopback;
mod support;

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::time::Duration;

use connect_by_list::Connector;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use futures_util::future::join_all;
use hyper_util::client::legacy::connect::HttpConnector;
use support::{hyper_util, live_listener, ours, runtime, tokio_connect, ListResolver};

/// Connects per iteration of the concurrent group.
const BATCH: usize = 1000;

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

fn one_live(c: &mut Criterion) {
    let rt = runtime();
    let live = live_listener();
    let connector = Connector::new();
    let http = HttpConnector::new();
    let uri: http::Uri = format!("http://{live}/").parse().unwrap();
    let one = [live];

    let mut group = c.benchmark_group("connect/one_live");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    group.bench_function("connect-by-list", |b| {
        b.to_async(&rt).iter(|| ours(&connector, &one))
    });
    group.bench_function("tokio TcpStream::connect", |b| {
        b.to_async(&rt).iter(|| tokio_connect(&one))
    });
    group.bench_function("hyper-util HttpConnector", |b| {
        b.to_async(&rt).iter(|| hyper_util(&http, &uri))
    });
    group.finish();
}

fn refused_then_live(c: &mut Criterion) {
    let rt = runtime();
    let refused = loopback::Refused::new(Ipv4Addr::LOCALHOST.into()).unwrap();
    let live = live_listener();
    let addrs = [refused.addr(), live];
    // History off: with it (the default) every connect after the first goes straight to the
    // address that won last time and never meets the refused one, which is the point of history
    // but not what this group measures. The default is listed too, as its own line.
    let connector = Connector::builder().history_capacity(0).build().unwrap();
    let with_history = Connector::new();
    let http = HttpConnector::new_with_resolver(ListResolver(addrs.to_vec()));
    // No port in the URI: HttpConnector then keeps the ports the resolver gave.
    let uri: http::Uri = "http://refused-then-live.invalid/".parse().unwrap();

    let mut group = c.benchmark_group("connect/refused_then_live");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    group.bench_function("connect-by-list", |b| {
        b.to_async(&rt).iter(|| ours(&connector, &addrs))
    });
    group.bench_function("connect-by-list, history on (skips the refused)", |b| {
        b.to_async(&rt).iter(|| ours(&with_history, &addrs))
    });
    group.bench_function("tokio TcpStream::connect", |b| {
        b.to_async(&rt).iter(|| tokio_connect(&addrs))
    });
    group.bench_function("hyper-util HttpConnector", |b| {
        b.to_async(&rt).iter(|| hyper_util(&http, &uri))
    });
    group.finish();
}

/// Runs `BATCH` connect futures at once on this task and waits for all.
async fn batch<F: Future<Output = ()>>(make: impl Fn() -> F) {
    let all: Vec<Pin<Box<F>>> = (0..BATCH).map(|_| Box::pin(make())).collect();
    join_all(all).await;
}

fn concurrent(c: &mut Criterion) {
    let rt = runtime();
    let live = live_listener();
    let connector = Connector::new();
    let http = HttpConnector::new();
    let uri: http::Uri = format!("http://{live}/").parse().unwrap();
    let one = [live];

    let mut group = c.benchmark_group("connect/1000_concurrent");
    configure(&mut group);
    group.sample_size(20);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("connect-by-list", |b| {
        b.to_async(&rt).iter(|| batch(|| ours(&connector, &one)))
    });
    group.bench_function("tokio TcpStream::connect", |b| {
        b.to_async(&rt).iter(|| batch(|| tokio_connect(&one)))
    });
    group.bench_function("hyper-util HttpConnector", |b| {
        b.to_async(&rt).iter(|| batch(|| hyper_util(&http, &uri)))
    });
    group.finish();
}

criterion_group!(benches, one_live, refused_then_live, concurrent);
criterion_main!(benches);
