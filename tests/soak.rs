//! Soak: thousands of races in one process over loopback faults, with random deadlines and the
//! connect future dropped at random moments; afterwards every socket and every task is gone.
//!
//! Alone in its own test binary, so that no other test's sockets move the file descriptor count.
//! Only loopback is dialed; names go through the test's own resolver.
//!
//! `SOAK_SEED` picks another seed, `SOAK_RACES` another number of races (default 3000).
// Counts open sockets in /proc/self/fd and connecting ones in /proc/net/tcp: Linux's.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use connect_by_list::{
    ConnectError, ConnectErrorKind, Connection, Connector, Family, Outcome, Report, Resolve,
    Resolving,
};
use support::loopback::{Blackhole, Refused, SynSent};

/// Races run unless the time budget ends first.
const RACES: usize = 3000;
/// No new race starts after this long (the suite's time budget, not an expectation).
const BUDGET: Duration = Duration::from_secs(20);
/// Races in flight at once.
const CONCURRENCY: usize = 48;

/// xorshift64*: tiny, deterministic, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Answers `v4.soak.test` with 127.0.0.1 and `v6.soak.test` with ::1 after a pseudo-random delay
/// (0-15 ms on Tokio's clock); one lookup in ten fails and one in ten is empty.
#[derive(Debug, Default)]
struct SoakResolver {
    calls: AtomicU64,
}

impl Resolve for SoakResolver {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let mut rng = Rng::new(
            (self.calls.fetch_add(1, Ordering::Relaxed) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let delay = rng.millis(0, 15);
        let ip: Option<IpAddr> = match (name, family) {
            ("v4.soak.test", Family::V4) => Some(Ipv4Addr::LOCALHOST.into()),
            ("v6.soak.test", Family::V6) => Some(Ipv6Addr::LOCALHOST.into()),
            _ => None,
        };
        let answer = match rng.below(10) {
            0 => Err(io::Error::new(io::ErrorKind::NotFound, "scripted failure")),
            1 => Ok(Vec::new()),
            _ => Ok(ip.into_iter().collect()),
        };
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            answer
        })
    }
}

/// What each loopback address does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Refused,
    Blackhole,
    Live,
}

/// The loopback fixtures, made before the baseline is taken and kept to the end.
struct Fixtures {
    _refused: Vec<Refused>,
    _blackholes: Vec<Blackhole>,
    /// Every fixture address with what it does.
    addrs: Vec<(SocketAddr, Kind)>,
}

impl Fixtures {
    async fn new() -> Fixtures {
        let mut ips: Vec<IpAddr> = vec![Ipv4Addr::LOCALHOST.into()];
        if support::skip::ipv6_loopback("the soak's IPv6 half (it runs on IPv4 only)") {
            ips.push(Ipv6Addr::LOCALHOST.into());
        }
        let mut refused = Vec::new();
        let mut blackholes = Vec::new();
        let mut addrs = Vec::new();
        for ip in ips {
            for _ in 0..2 {
                let r = Refused::new(ip).expect("refused port");
                addrs.push((r.addr(), Kind::Refused));
                refused.push(r);
                let b = Blackhole::new(ip).expect("blackhole");
                addrs.push((b.addr(), Kind::Blackhole));
                blackholes.push(b);
            }
            addrs.push((accept_and_close(ip).await, Kind::Live));
        }
        Fixtures {
            _refused: refused,
            _blackholes: blackholes,
            addrs,
        }
    }

    fn kind(&self, addr: SocketAddr) -> Kind {
        self.addrs
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, kind)| *kind)
            .unwrap_or_else(|| panic!("{addr} is not a fixture"))
    }

    fn blackholes(&self) -> Vec<SocketAddr> {
        self.addrs
            .iter()
            .filter(|(_, kind)| *kind == Kind::Blackhole)
            .map(|(addr, _)| *addr)
            .collect()
    }
}

/// A listener that accepts every connection and closes it at once (so the winners' server
/// sides do not pile up as open descriptors).
async fn accept_and_close(ip: IpAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .expect("listener");
    let addr = listener.local_addr().expect("listener address");
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => drop(stream),
                Err(error) => eprintln!("accept: {error}"),
            }
        }
    });
    addr
}

/// One race: its connector, targets, and when (if ever) its future is dropped.
struct Race {
    connector: Connector,
    targets: Vec<String>,
    /// Drop the connect future after this long (`tokio::time::timeout`).
    drop_after: Option<Duration>,
    /// Abort the spawned task after this long instead (drop from outside the future).
    abort_after: Option<Duration>,
}

fn random_connector(rng: &mut Rng, resolver: &Arc<SoakResolver>, history: bool) -> Connector {
    let mut builder = Connector::builder()
        .attempt_delay(rng.millis(10, 40))
        .first_family_count(1 + rng.below(2) as usize)
        .resolver(Shared(resolver.clone()));
    if rng.percent(70) {
        builder = builder.timeout(rng.millis(1, 100));
    }
    if rng.percent(20) {
        builder = builder.attempt_timeout(rng.millis(1, 50));
    }
    if !history {
        builder = builder.history_capacity(0);
    }
    builder.build().expect("valid settings")
}

/// One resolver shared by every connector.
#[derive(Debug)]
struct Shared(Arc<SoakResolver>);

impl Resolve for Shared {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        self.0.resolve(name, family)
    }
}

fn random_race(
    rng: &mut Rng,
    fixtures: &Fixtures,
    shared: &[Connector],
    resolver: &Arc<SoakResolver>,
) -> Race {
    let connector = if rng.percent(50) {
        shared[rng.below(shared.len() as u64) as usize].clone()
    } else {
        random_connector(rng, resolver, false)
    };
    let count = 1 + rng.below(4) as usize;
    let targets = (0..count)
        .map(|_| {
            let (addr, _) = fixtures.addrs[rng.below(fixtures.addrs.len() as u64) as usize];
            if rng.percent(20) {
                let name = if addr.is_ipv4() { "v4" } else { "v6" };
                format!("{name}.soak.test:{}", addr.port())
            } else {
                addr.to_string()
            }
        })
        .collect();
    let mut drop_after = rng.percent(50).then(|| rng.millis(0, 120));
    let abort_after = (drop_after.is_none() && rng.percent(30)).then(|| rng.millis(0, 120));
    // A race with no deadline over blackholes alone would never end: always bound it.
    if drop_after.is_none() && abort_after.is_none() {
        drop_after = Some(rng.millis(50, 150));
    }
    Race {
        connector,
        targets,
        drop_after,
        abort_after,
    }
}

/// How a race ended, for the tally.
#[derive(Debug)]
enum Ended {
    Connected,
    Failed(ConnectErrorKind),
    Dropped,
    Aborted,
}

/// Every attempt outcome seen in a report, for the summary.
static OUTCOMES: std::sync::Mutex<BTreeMap<&'static str, usize>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Checks what the report must say whatever the timing, and names the ending.
fn check(fixtures: &Fixtures, result: &Result<Connection, ConnectError>) -> Ended {
    let (report, ended): (&Report, Ended) = match result {
        Ok(connection) => (connection.report(), Ended::Connected),
        Err(error) => (error.report(), Ended::Failed(error.kind())),
    };
    let attempts = report.attempts();
    for pair in attempts.windows(2) {
        assert!(pair[1].started() >= pair[0].started(), "{report}");
    }
    for attempt in attempts {
        assert!(attempt.ended() >= attempt.started(), "{report}");
        assert!(attempt.ended() <= report.elapsed(), "{report}");
        let allowed: &[Outcome] = match fixtures.kind(attempt.remote()) {
            // A reset seen in the same poll as a winner, or after the deadline, is not waited for.
            Kind::Refused => &[Outcome::Refused, Outcome::Lost, Outcome::Cancelled],
            Kind::Blackhole => &[Outcome::Lost, Outcome::Cancelled, Outcome::TimedOut],
            Kind::Live => &[
                Outcome::Connected,
                Outcome::Lost,
                Outcome::Cancelled,
                Outcome::TimedOut,
            ],
        };
        assert!(
            allowed.contains(&attempt.outcome()),
            "{} to a {:?} address:\n{}",
            attempt.outcome(),
            fixtures.kind(attempt.remote()),
            report.timeline()
        );
        let has_error = attempt.error().is_some();
        let should = !matches!(attempt.outcome(), Outcome::Connected | Outcome::Lost);
        assert_eq!(has_error, should, "{attempt}");
    }
    let count = |outcome| attempts.iter().filter(|a| a.outcome() == outcome).count();
    if let Ok(mut seen) = OUTCOMES.lock() {
        for attempt in attempts {
            *seen.entry(attempt.outcome().as_str()).or_default() += 1;
        }
    }
    match result {
        Ok(connection) => {
            assert_eq!(count(Outcome::Connected), 1, "{report}");
            assert_eq!(count(Outcome::Cancelled), 0, "{report}");
            let winner = report.winner().expect("a winner");
            assert_eq!(winner.remote(), connection.peer_addr());
            assert_eq!(fixtures.kind(connection.peer_addr()), Kind::Live);
            assert_eq!(
                connection.stream().peer_addr().unwrap(),
                connection.peer_addr()
            );
        }
        Err(error) => {
            assert_eq!(count(Outcome::Connected), 0, "{report}");
            assert_eq!(count(Outcome::Lost), 0, "{report}");
            match error.kind() {
                ConnectErrorKind::AllFailed => {
                    assert!(!attempts.is_empty());
                    assert_eq!(count(Outcome::Cancelled), 0, "{report}");
                }
                ConnectErrorKind::NoAddresses => assert!(attempts.is_empty(), "{report}"),
                ConnectErrorKind::TimedOut => {}
                other => panic!("unexpected {other:?}: {error}"),
            }
        }
    }
    ended
}

/// Counts one finished task: a race's ending, or an abort.
fn record(
    done: Result<Option<Ended>, tokio::task::JoinError>,
    tally: &mut BTreeMap<String, usize>,
) {
    let ended = match done {
        Ok(Some(ended)) => ended,
        Ok(None) => return,
        Err(join) if join.is_cancelled() => Ended::Aborted,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    };
    let name = match ended {
        Ended::Failed(kind) => format!("Failed({kind:?})"),
        other => format!("{other:?}"),
    };
    *tally.entry(name).or_default() += 1;
}

async fn run_one(race: Race, fixtures: Arc<Fixtures>) -> Ended {
    let connecting = race.connector.connect(race.targets);
    let result = match race.drop_after {
        Some(after) => match tokio::time::timeout(after, connecting).await {
            Ok(result) => result,
            Err(_) => return Ended::Dropped,
        },
        None => connecting.await,
    };
    check(&fixtures, &result)
    // The stream, if any, is closed here.
}

/// Thousands of races with random targets (refused, blackholed and live loopback ports, IP
/// literals and names with a slow, sometimes failing resolver), random attempt delays, deadlines
/// and attempt timeouts, and random drops of the connect future (by `tokio::time::timeout`
/// around it, or by aborting its task). Every report must be coherent; afterwards the open file
/// descriptors and Tokio's alive tasks are back to their starting counts and no socket is left in
/// SYN_SENT towards a blackhole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_races_leak_no_socket_and_no_task() {
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_5eed_u64);
    let races = std::env::var("SOAK_RACES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(RACES);
    let mut rng = Rng::new(seed);
    let fixtures = Arc::new(Fixtures::new().await);
    let resolver = Arc::new(SoakResolver::default());
    let shared: Vec<Connector> = (0..8)
        .map(|_| random_connector(&mut rng, &resolver, true))
        .collect();

    let fds_before = open_fds();
    let tasks_before = alive_tasks();
    let started = std::time::Instant::now();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut peak_fds = fds_before;
    let mut tasks = tokio::task::JoinSet::new();
    let mut launched = 0;
    while launched < races && started.elapsed() < BUDGET {
        while tasks.len() >= CONCURRENCY {
            let done = tasks.join_next().await.expect("a task");
            record(done, &mut tally);
        }
        let race = random_race(&mut rng, &fixtures, &shared, &resolver);
        let abort_after = race.abort_after;
        let fixtures = fixtures.clone();
        let handle = tasks.spawn(async move { Some(run_one(race, fixtures).await) });
        if let Some(after) = abort_after {
            // The aborting task itself reports nothing.
            tasks.spawn(async move {
                tokio::time::sleep(after).await;
                handle.abort();
                None
            });
        }
        launched += 1;
        if launched % 100 == 0 {
            peak_fds = peak_fds.max(open_fds());
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(done, &mut tally);
    }
    let elapsed = started.elapsed();

    // The listeners close what they accept on their own task: wait (bounded) for the last ones.
    let settle = std::time::Instant::now();
    while (open_fds() != fds_before || alive_tasks() != tasks_before)
        && settle.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (fds_after, tasks_after) = (open_fds(), alive_tasks());
    let outcomes = OUTCOMES.lock().map(|seen| seen.clone()).unwrap_or_default();
    eprintln!(
        "soak: seed {seed:#x}, {launched} races in {elapsed:?} (budget {BUDGET:?}); {tally:?}; \
         attempt outcomes in reports {outcomes:?}; open fds {fds_before} before, peak >= {peak_fds}, {fds_after} after; \
         alive tasks {tasks_before} before, {tasks_after} after"
    );
    assert!(
        launched >= races.min(1000),
        "only {launched} races fit in the budget"
    );
    assert_eq!(fds_after, fds_before, "file descriptors leaked");
    assert_eq!(tasks_after, tasks_before, "tasks outlived their connect");
    for blackhole in fixtures.blackholes() {
        // Positive control: a connect of the test's own to the blackhole is seen in SYN_SENT, and
        // it is the only one there (the races left none); once it is closed, none is.
        let probe = socket2::Socket::new(
            socket2::Domain::for_address(blackhole),
            socket2::Type::STREAM,
            None,
        )
        .unwrap();
        probe.set_nonblocking(true).unwrap();
        match probe.connect(&blackhole.into()) {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            other => {
                panic!("a connect to the blackhole {blackhole} did not stay in progress: {other:?}")
            }
        }
        let in_flight = SynSent::seen(blackhole.port(), 1);
        drop(probe);
        in_flight.gone();
    }
}
