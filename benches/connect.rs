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
//! (and `IPV6_RECVERR` on IPv6 sockets; these are IPv4), `HttpConnector` sets `TCP_NODELAY` (off)
//! and makes the socket non-blocking with two `fcntl` calls, Tokio sets nothing.
//!
//! Criterion times one contender after the other, so on a machine whose speed drifts the
//! ratios between them drift too; `benches/paired.rs` times them interleaved, for the ratios.
//!
//! TIME_WAIT: see `support`: every client stream is closed with `SO_LINGER 0`, for all three.
//!
//! Run: `cargo bench --bench connect` (add `-- one_live` etc. to pick a group).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/support/loopback.rs"]
mod loopback;
mod support;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use support::{batch, hyper_util, ours, runtime, tokio_connect, OneLive, RefusedThenLive, BATCH};

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

fn one_live(c: &mut Criterion) {
    let rt = runtime();
    let at = OneLive::new();
    let mut group = c.benchmark_group("connect/one_live");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    group.bench_function("connect-by-list", |b| {
        b.to_async(&rt).iter(|| ours(&at.connector, &at.one))
    });
    group.bench_function("tokio TcpStream::connect", |b| {
        b.to_async(&rt).iter(|| tokio_connect(&at.one))
    });
    group.bench_function("hyper-util HttpConnector", |b| {
        b.to_async(&rt).iter(|| hyper_util(&at.http, &at.uri))
    });
    group.finish();
}

fn refused_then_live(c: &mut Criterion) {
    let rt = runtime();
    let at = RefusedThenLive::new();
    let mut group = c.benchmark_group("connect/refused_then_live");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    group.bench_function("connect-by-list", |b| {
        b.to_async(&rt).iter(|| ours(&at.no_history, &at.addrs))
    });
    group.bench_function("connect-by-list, history on (skips the refused)", |b| {
        b.to_async(&rt).iter(|| ours(&at.with_history, &at.addrs))
    });
    group.bench_function("tokio TcpStream::connect", |b| {
        b.to_async(&rt).iter(|| tokio_connect(&at.addrs))
    });
    group.bench_function("hyper-util HttpConnector", |b| {
        b.to_async(&rt).iter(|| hyper_util(&at.http, &at.uri))
    });
    group.finish();
}

fn concurrent(c: &mut Criterion) {
    let rt = runtime();
    let at = OneLive::new();
    let mut group = c.benchmark_group("connect/1000_concurrent");
    configure(&mut group);
    group.sample_size(20);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("connect-by-list", |b| {
        b.to_async(&rt)
            .iter(|| batch(|| ours(&at.connector, &at.one)))
    });
    group.bench_function("tokio TcpStream::connect", |b| {
        b.to_async(&rt).iter(|| batch(|| tokio_connect(&at.one)))
    });
    group.bench_function("hyper-util HttpConnector", |b| {
        b.to_async(&rt)
            .iter(|| batch(|| hyper_util(&at.http, &at.uri)))
    });
    group.finish();
}

criterion_group!(benches, one_live, refused_then_live, concurrent);
criterion_main!(benches);
