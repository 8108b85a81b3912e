//! Lookups shared between connects, the bounded pool for resolvers that block a thread, and the
//! answer cache, on Tokio's paused clock with a scripted resolver whose IPv6 (AAAA) lookups never
//! answer, as against a DNS server that drops AAAA queries.
//!
//! Connects go to a loopback listener; nothing else is sent anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connect_by_list::{ConnectErrorKind, Connector, Family, Resolve, Resolving};
use tokio::time::Instant;

const RESOLUTION_DELAY: Duration = Duration::from_millis(50);
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// How one (name, family) lookup goes.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// Answers with 127.0.0.1 (IPv4) or nothing (IPv6) after this long.
    After(Duration),
    /// Never answers.
    Never,
}

/// What the scripted resolver saw: each lookup's start and end (or cancellation), in order.
#[derive(Debug, Default)]
struct Log {
    started: Vec<(String, Family, Instant)>,
    ended: Vec<(String, Family, Instant)>,
    cancelled: Vec<(String, Family, Instant)>,
    running: usize,
    most_running: usize,
}

#[derive(Debug, Clone)]
struct Scripted {
    scripts: Arc<HashMap<(String, Family), Script>>,
    blocks: bool,
    log: Arc<Mutex<Log>>,
}

impl Scripted {
    fn new(blocks: bool, scripts: &[(&str, Family, Script)]) -> Scripted {
        let scripts = scripts
            .iter()
            .map(|(name, family, script)| ((name.to_string(), *family), *script))
            .collect();
        Scripted {
            scripts: Arc::new(scripts),
            blocks,
            log: Arc::default(),
        }
    }

    /// A name whose A lookup answers after `a` and whose AAAA lookup never does.
    fn aaaa_dropped(blocks: bool, name: &str, a: Duration) -> Scripted {
        Scripted::new(
            blocks,
            &[
                (name, Family::V4, Script::After(a)),
                (name, Family::V6, Script::Never),
            ],
        )
    }

    fn asked(&self, name: &str, family: Family) -> usize {
        let log = self.log.lock().unwrap();
        log.started
            .iter()
            .filter(|(n, f, _)| n == name && *f == family)
            .count()
    }
}

/// Logs the end of a lookup, or its cancellation when dropped before the end.
struct Running {
    key: (String, Family),
    log: Arc<Mutex<Log>>,
    done: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut log = self.log.lock().unwrap();
        log.running -= 1;
        let (name, family) = self.key.clone();
        let entry = (name, family, Instant::now());
        if self.done {
            log.ended.push(entry);
        } else {
            log.cancelled.push(entry);
        }
    }
}

impl Resolve for Scripted {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let script = self.scripts.get(&(name.to_owned(), family)).copied();
        let running = {
            let mut log = self.log.lock().unwrap();
            log.started.push((name.to_owned(), family, Instant::now()));
            log.running += 1;
            log.most_running = log.most_running.max(log.running);
            Running {
                key: (name.to_owned(), family),
                log: self.log.clone(),
                done: false,
            }
        };
        Box::pin(async move {
            // The whole guard lives in the future (not just the field set below).
            let mut running = running;
            match script {
                Some(Script::After(delay)) => tokio::time::sleep(delay).await,
                Some(Script::Never) | None => std::future::pending::<()>().await,
            }
            running.done = true;
            Ok(match family {
                Family::V4 => vec![LOCALHOST],
                Family::V6 => vec![],
            })
        })
    }

    fn blocks_a_thread(&self) -> bool {
        self.blocks
    }
}

/// A loopback listener that accepts and drops every connection.
async fn listener() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    addr
}

/// History off: these tests are about lookups, and a remembered IPv4 winner would start as soon
/// as its A answer is in (RFC 8305 §5), moving every later connect's start.
fn connector(resolver: &Scripted) -> connect_by_list::Builder {
    Connector::builder()
        .resolver(resolver.clone())
        .history_capacity(0)
}

/// Asserts that a connect went to `peer` over IPv4, its one attempt starting at `started`.
fn connected_at(connection: &connect_by_list::Connection, peer: SocketAddr, started: Duration) {
    assert_eq!(connection.peer_addr(), peer);
    let attempts = connection.report().attempts();
    assert_eq!(attempts.len(), 1, "{}", connection.report().timeline());
    assert_eq!(attempts[0].started(), started);
}

/// RFC 8305 §3 with a shared lookup: 1,000 connects at once, from clones of one connector, to a
/// name whose AAAA query is never answered, make one AAAA lookup and one A lookup between them.
/// Each waits the resolution delay after the A answer (1 ms) and connects over IPv4.
#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_connects_share_one_lookup_per_family() {
    let peer = listener().await;
    let resolver = Scripted::aaaa_dropped(true, "svc.test", ms(1));
    let connector = connector(&resolver).build().unwrap();
    let target = format!("svc.test:{}", peer.port());
    let connects: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(connector.clone().connect(target.clone())))
        .collect();
    for connect in connects {
        let connection = connect.await.unwrap().expect("connected over IPv4");
        connected_at(&connection, peer, ms(1) + RESOLUTION_DELAY);
    }
    assert_eq!(resolver.asked("svc.test", Family::V6), 1);
    assert_eq!(resolver.asked("svc.test", Family::V4), 1);
}

/// The AAAA lookup that never answers is still out after each connect has ended: the next
/// connect joins it instead of starting another (the system resolver could not cancel the first
/// one anyway). The A lookup answers each time, and is asked again each time (no cache).
#[tokio::test(start_paused = true)]
async fn five_sequential_connects_make_one_aaaa_lookup() {
    let peer = listener().await;
    let resolver = Scripted::aaaa_dropped(true, "svc.test", ms(1));
    let connector = connector(&resolver).build().unwrap();
    for _ in 0..5 {
        let connection = connector
            .connect(format!("svc.test:{}", peer.port()))
            .await
            .expect("connected over IPv4");
        connected_at(&connection, peer, ms(1) + RESOLUTION_DELAY);
    }
    assert_eq!(resolver.asked("svc.test", Family::V6), 1);
    assert_eq!(resolver.asked("svc.test", Family::V4), 5);
    assert!(resolver.log.lock().unwrap().cancelled.is_empty());
}

/// A cancellable resolver (as hickory's is) is cancelled when no connect waits for its lookup
/// any more, so each sequential connect asks again; concurrent connects still share one lookup.
#[tokio::test(start_paused = true)]
async fn a_cancellable_lookup_ends_with_its_last_waiter() {
    let peer = listener().await;
    let resolver = Scripted::aaaa_dropped(false, "svc.test", ms(1));
    let connector = connector(&resolver).build().unwrap();
    let target = format!("svc.test:{}", peer.port());
    let connects: Vec<_> = (0..100)
        .map(|_| tokio::spawn(connector.connect(target.clone())))
        .collect();
    for connect in connects {
        let connection = connect.await.unwrap().expect("connected over IPv4");
        connected_at(&connection, peer, ms(1) + RESOLUTION_DELAY);
    }
    assert_eq!(resolver.asked("svc.test", Family::V6), 1);
    assert_eq!(resolver.asked("svc.test", Family::V4), 1);
    for _ in 0..4 {
        let connection = connector.connect(target.as_str()).await.unwrap();
        connected_at(&connection, peer, ms(1) + RESOLUTION_DELAY);
    }
    assert_eq!(resolver.asked("svc.test", Family::V6), 5);
    let log = resolver.log.lock().unwrap();
    let cancelled: Vec<_> = log.cancelled.iter().map(|(_, f, _)| *f).collect();
    assert_eq!(cancelled, [Family::V6; 5], "each AAAA lookup dropped");
}

/// With `dns_cache_ttl`, an answer is reused for that long: five connects within it make one A
/// lookup (and each later one starts right after the resolution delay, the A answer being
/// known at once); after it, the name is asked again.
#[tokio::test(start_paused = true)]
async fn cached_answers_are_reused_until_their_ttl() {
    let peer = listener().await;
    let resolver = Scripted::aaaa_dropped(true, "svc.test", ms(1));
    let connector = connector(&resolver)
        .dns_cache_ttl(Duration::from_secs(10))
        .build()
        .unwrap();
    let target = format!("svc.test:{}", peer.port());
    let connection = connector.connect(target.as_str()).await.unwrap();
    connected_at(&connection, peer, ms(1) + RESOLUTION_DELAY);
    for _ in 0..4 {
        let connection = connector.connect(target.as_str()).await.unwrap();
        connected_at(&connection, peer, RESOLUTION_DELAY);
    }
    assert_eq!(resolver.asked("svc.test", Family::V4), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let connection = connector.connect(target.as_str()).await.unwrap();
    connected_at(&connection, peer, ms(1) + RESOLUTION_DELAY);
    assert_eq!(resolver.asked("svc.test", Family::V4), 2);
    assert_eq!(resolver.asked("svc.test", Family::V6), 1);
}

/// At most `max_concurrent_lookups` blocking lookups run at once; the next starts at the instant
/// one ends. Three names, six lookups, a bound of 3: IPv4 lookups take 20 ms, IPv6 ones 30 ms.
#[tokio::test(start_paused = true)]
async fn the_pool_bound_holds_and_the_next_lookup_starts_when_one_ends() {
    let peer = listener().await;
    let names = ["n1.test", "n2.test", "n3.test"];
    let scripts: Vec<_> = names
        .iter()
        .flat_map(|name| {
            [
                (*name, Family::V4, Script::After(ms(20))),
                (*name, Family::V6, Script::After(ms(30))),
            ]
        })
        .collect();
    let resolver = Scripted::new(true, &scripts);
    let connector = connector(&resolver)
        .max_concurrent_lookups(3)
        .build()
        .unwrap();
    let began = Instant::now();
    let connects: Vec<_> = names
        .iter()
        .map(|name| tokio::spawn(connector.connect(format!("{name}:{}", peer.port()))))
        .collect();
    for connect in connects {
        connect.await.unwrap().expect("connected over IPv4");
    }
    let log = resolver.log.lock().unwrap();
    assert_eq!(log.most_running, 3);
    let mut starts: Vec<Duration> = log.started.iter().map(|(_, _, at)| *at - began).collect();
    starts.sort();
    assert_eq!(starts, [ms(0), ms(0), ms(0), ms(20), ms(30), ms(30)]);
    let ends: Vec<Duration> = log.ended.iter().map(|(_, _, at)| *at - began).collect();
    for start in starts.iter().filter(|start| !start.is_zero()) {
        assert!(
            ends.contains(start),
            "{start:?} is no lookup's end: {ends:?}"
        );
    }
}

/// A connect waiting in the pool's queue is still bounded by its deadline: with one lookup
/// allowed and a slow name's lookup holding it, a connect to another name fails at exactly its
/// timeout without its lookups ever starting. The queued lookups leave the queue with their
/// connects: when the slow lookup ends, the next connect's lookup starts at once.
#[tokio::test(start_paused = true)]
async fn a_deadline_ends_a_connect_waiting_in_the_pool_queue() {
    let peer = listener().await;
    let resolver = Scripted::new(
        true,
        &[
            (
                "slow.test",
                Family::V6,
                Script::After(Duration::from_secs(1)),
            ),
            (
                "slow.test",
                Family::V4,
                Script::After(Duration::from_secs(1)),
            ),
            ("other.test", Family::V6, Script::After(ms(0))),
            ("other.test", Family::V4, Script::After(ms(0))),
        ],
    );
    let connector = connector(&resolver)
        .max_concurrent_lookups(1)
        .timeout(ms(100))
        .build()
        .unwrap();
    let began = Instant::now();
    let slow = tokio::spawn(connector.connect(format!("slow.test:{}", peer.port())));
    tokio::task::yield_now().await;
    let other = connector
        .connect(format!("other.test:{}", peer.port()))
        .await
        .expect_err("the deadline passes in the queue");
    assert_eq!(other.kind(), ConnectErrorKind::TimedOut);
    assert_eq!(began.elapsed(), ms(100));
    assert_eq!(other.report().elapsed(), ms(100));
    let slow = slow
        .await
        .unwrap()
        .expect_err("the slow name times out too");
    assert_eq!(slow.kind(), ConnectErrorKind::TimedOut);
    assert_eq!(resolver.asked("slow.test", Family::V6), 1);
    assert_eq!(resolver.asked("slow.test", Family::V4), 0);
    assert_eq!(resolver.asked("other.test", Family::V6), 0);
    assert_eq!(resolver.asked("other.test", Family::V4), 0);

    // The slow IPv6 lookup, started, runs on to its end at 1 s; then the pool is free.
    tokio::time::sleep_until(began + Duration::from_secs(1)).await;
    let connection = connector
        .connect(format!("other.test:{}", peer.port()))
        .await
        .expect("connected once the pool is free");
    assert_eq!(connection.peer_addr(), peer);
    let log = resolver.log.lock().unwrap();
    let slow_end = log
        .ended
        .iter()
        .find(|(name, _, _)| name == "slow.test")
        .map(|(_, _, at)| *at - began);
    assert_eq!(slow_end, Some(Duration::from_secs(1)));
    let other_starts: Vec<Duration> = log
        .started
        .iter()
        .filter(|(name, _, _)| name == "other.test")
        .map(|(_, _, at)| *at - began)
        .collect();
    assert_eq!(other_starts, [Duration::from_secs(1); 2]);
}
