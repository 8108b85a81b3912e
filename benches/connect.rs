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
//! TIME_WAIT: tens of thousands of connects a second would fill the ephemeral port range
//! (32768–60999 by default) with TIME_WAIT sockets and make later iterations fail or slow down.
//! So every connected client stream, for all three contenders alike, gets `SO_LINGER 0` before it
//! is dropped (its close sends a reset and leaves no TIME_WAIT; the server side closes later, see
//! `live_listener`). That costs one `setsockopt` per iteration, the same for all three.
//!
//! Run: `cargo bench --bench connect` (add `-- one_live` etc. to pick a group).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/support/loopback.rs"]
mod loopback;

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use connect_by_list::Connector;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use futures_util::future::join_all;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use socket2::{Domain, SockRef, Socket, Type};
use tokio::net::TcpStream;
use tower_service::Service;

/// Listen backlog for the live listener: room for a whole batch of concurrent connects (the
/// kernel caps it at `/proc/sys/net/core/somaxconn`, 4096 by default since Linux 5.4).
const BACKLOG: i32 = 4096;
/// Connects per iteration of the concurrent group.
const BATCH: usize = 1000;
/// Accepted streams the live listener keeps open: four batches.
const KEPT: usize = 4 * BATCH;

/// A live listener on 127.0.0.1 whose accept loop runs on its own thread, so accepting does not
/// take time from the runtime being measured. The thread ends with the process.
///
/// Accepted streams are kept open, the last `KEPT` of them, and dropped oldest first: by then
/// their client has long closed them with a reset, so the server's close sends nothing and leaves
/// no TIME_WAIT either. (Closing them at once instead races the client: a reset that arrives
/// before the client has seen its connect complete fails that connect with ECONNRESET.)
fn live_listener() -> SocketAddr {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    socket.listen(BACKLOG).unwrap();
    let listener: TcpListener = socket.into();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut kept = VecDeque::with_capacity(KEPT);
        for stream in listener.incoming().flatten() {
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back(stream);
        }
    });
    addr
}

/// Closes a client stream without leaving it in TIME_WAIT (see the module docs).
fn close(stream: &TcpStream) {
    SockRef::from(stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn ours(connector: &Connector, addrs: &[SocketAddr]) {
    let connection = connector.connect(addrs).await.unwrap();
    close(connection.stream());
}

async fn tokio_connect(addrs: &[SocketAddr]) {
    let stream = TcpStream::connect(addrs).await.unwrap();
    close(&stream);
}

/// One connect the way hyper-util's legacy client makes it: clone the connector, wait for
/// `poll_ready`, `call`.
async fn hyper_util<R>(connector: &HttpConnector<R>, uri: &http::Uri)
where
    R: Clone,
    HttpConnector<R>: Service<http::Uri, Response = hyper_util::rt::TokioIo<TcpStream>>,
    <HttpConnector<R> as Service<http::Uri>>::Error: std::fmt::Debug,
{
    let mut connector = connector.clone();
    poll_fn(|cx| connector.poll_ready(cx)).await.unwrap();
    let io = connector.call(uri.clone()).await.unwrap();
    close(io.inner());
}

/// A resolver for `HttpConnector` that answers every name with a fixed list of addresses, in
/// order: the only way to hand it more than one address.
#[derive(Clone, Debug)]
struct ListResolver(Vec<SocketAddr>);

impl Service<Name> for ListResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = std::future::Ready<io::Result<Self::Response>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Name) -> Self::Future {
        std::future::ready(Ok(self.0.clone().into_iter()))
    }
}

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
