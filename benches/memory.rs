//! Heap memory per in-flight connect: connect-by-list's `Connector::connect` vs Tokio's
//! `TcpStream::connect` vs hyper-util's `HttpConnector`.
//!
//! Not a criterion bench (criterion measures time): a counting global allocator, and for each
//! contender 1,000 connects to a blackhole on 127.0.0.1 (a `listen(0)` listener whose one backlog
//! slot is taken, so every SYN is dropped and every connect stays in SYN_SENT). Each connect
//! future is boxed, put in a `FuturesUnordered` and polled until every one has been polled once
//! (each has then opened and registered its socket and sent its SYN); then the live heap and the
//! peak heap since the start are read, and everything is dropped, which closes every socket (this
//! is checked in `/proc/net/tcp`: no SYN_SENT socket to the blackhole is left).
//!
//! Reported per connect: the size of the future itself (it lives in whatever holds it: a task,
//! a box, an outer future's state), the heap it holds while in flight beyond that, and the peak.
//! The harness's own cost per future (the `FuturesUnordered` node, the wrapper) is measured with
//! a `pending()` future and subtracted. Kernel memory of the socket (the same for all three) is
//! not counted.
//!
//! Run: `cargo bench --bench memory`.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/support/loopback.rs"]
mod loopback;

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::{poll_fn, Future};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use connect_by_list::Connector;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

/// Connects in flight at once, per contender.
const IN_FLIGHT: usize = 1000;

/// Counts the bytes live on the heap, the peak, and the number of allocations.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as it is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            LIVE.fetch_sub(layout.size(), Relaxed);
            grew(new_size);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type Boxed = Pin<Box<dyn Future<Output = ()>>>;
/// Makes one more connect future of a contender.
type Make<'a> = Box<dyn FnMut() -> Boxed + 'a>;

/// A future that counts its first poll, so the harness knows when every connect has started.
struct Tracked {
    future: Boxed,
    polled: bool,
}

static FIRST_POLLS: AtomicUsize = AtomicUsize::new(0);

impl Future for Tracked {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.polled {
            self.polled = true;
            FIRST_POLLS.fetch_add(1, Relaxed);
        }
        self.future.as_mut().poll(cx)
    }
}

/// What one round measured, per connect.
struct Round {
    live: f64,
    peak: f64,
    allocations: f64,
    syn_sent: usize,
}

/// Starts `IN_FLIGHT` futures from `make`, polls each once, measures, drops them all.
async fn round(make: &mut dyn FnMut() -> Boxed, port: u16) -> Round {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let allocations = ALLOCATIONS.load(Relaxed);
    FIRST_POLLS.store(0, Relaxed);

    let mut set = FuturesUnordered::new();
    for _ in 0..IN_FLIGHT {
        set.push(Tracked {
            future: make(),
            polled: false,
        });
    }
    // Bounded: each pass polls at least one more future; the clock bounds it too.
    let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut finished = 0;
    while FIRST_POLLS.load(Relaxed) < IN_FLIGHT && tokio::time::Instant::now() < give_up {
        if let Poll::Ready(Some(())) = poll_fn(|cx| Poll::Ready(set.poll_next_unpin(cx))).await {
            finished += 1;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(finished, 0, "a connect to the blackhole finished");
    assert_eq!(
        FIRST_POLLS.load(Relaxed),
        IN_FLIGHT,
        "not every connect started"
    );
    let live = LIVE.load(Relaxed).saturating_sub(base);
    let peak = PEAK.load(Relaxed).saturating_sub(base);
    let allocations = ALLOCATIONS.load(Relaxed) - allocations;
    let syn_sent = if port == 0 {
        0
    } else {
        loopback::syn_sent_to(port)
    };
    drop(set);
    let n = IN_FLIGHT as f64;
    Round {
        live: live as f64 / n,
        peak: peak as f64 / n,
        allocations: allocations as f64 / n,
        syn_sent,
    }
}

/// Makes sure `IN_FLIGHT` sockets (plus slack) fit under the open-file limit, raising the soft
/// limit up to the hard one if needed.
fn ensure_fd_limit() {
    let needed = (IN_FLIGHT + 256) as libc::rlim_t;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid pointer to an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur < needed {
        let raised = libc::rlimit {
            rlim_cur: needed.min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        // SAFETY: a valid pointer to an rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
        println!(
            "open-file limit raised from {} to {}",
            limit.rlim_cur, raised.rlim_cur
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported, every contender runs.
    ensure_fd_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let blackhole = loopback::Blackhole::new(Ipv4Addr::LOCALHOST.into()).unwrap();
        let target: SocketAddr = blackhole.addr();
        let port = target.port();
        let connector = Connector::new();
        let http = HttpConnector::new();
        let uri: http::Uri = format!("http://{target}/").parse().unwrap();

        let sizes = [
            std::mem::size_of_val(&connector.connect(target)),
            std::mem::size_of_val(&tokio::net::TcpStream::connect(target)),
            std::mem::size_of_val(&http.clone().call(uri.clone())),
        ];
        let mut contenders: Vec<(&str, Make<'_>)> = vec![
            (
                "connect-by-list Connector::connect",
                Box::new(|| Box::pin(connector.connect(target).map(drop))),
            ),
            (
                "tokio TcpStream::connect",
                Box::new(|| Box::pin(tokio::net::TcpStream::connect(target).map(drop))),
            ),
            (
                "hyper-util HttpConnector::call",
                Box::new(|| {
                    // HttpConnector is always ready; its call clones what it needs.
                    let mut http = http.clone();
                    Box::pin(http.call(uri.clone()).map(drop))
                }),
            ),
        ];

        // The harness's own cost per future: the same boxing and set, with nothing inside.
        let mut nothing = || -> Boxed { Box::pin(std::future::pending::<()>()) };
        round(&mut nothing, 0).await;
        let harness = round(&mut nothing, 0).await;

        println!(
            "{IN_FLIGHT} connects in flight to a blackhole on {target}; heap bytes per connect \
             (harness overhead of {:.0} B live / {:.1} allocations subtracted)",
            harness.live, harness.allocations
        );
        println!(
            "{:<36} {:>12} {:>14} {:>14} {:>12} {:>9}",
            "contender", "future size", "heap in flight", "heap peak", "allocations", "SYN_SENT"
        );
        for ((name, make), size) in contenders.iter_mut().zip(sizes) {
            // A first round warms up what the runtime allocates once (I/O driver pages, timer
            // wheel levels); the second is the one reported.
            round(make.as_mut(), port).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let measured = round(make.as_mut(), port).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            // The control for the check that follows: the same reading of the kernel's table saw
            // every connect in flight.
            assert_eq!(
                measured.syn_sent, IN_FLIGHT,
                "{name}: connects in flight seen in SYN_SENT"
            );
            let left = loopback::syn_sent_to(port);
            assert_eq!(left, 0, "{name}: sockets left in SYN_SENT after the drop");
            println!(
                "{:<36} {:>10} B {:>12.0} B {:>12.0} B {:>12.1} {:>9}",
                name,
                size,
                measured.live - harness.live,
                measured.peak - harness.peak,
                measured.allocations - harness.allocations,
                measured.syn_sent,
            );
        }
        println!(
            "every socket seen in SYN_SENT while in flight ({IN_FLIGHT} each), and closed: none \
             left towards port {port}"
        );
    });
}
