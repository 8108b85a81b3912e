//! The race on Tokio's paused clock, with scripted dials and a scripted resolver: every instant is
//! exact.

use super::*;
use crate::filter::AddressFilter;
use crate::resolve::{Resolve, Resolving};
use crate::target::IntoTargets;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use Outcome::{Cancelled, Lost};

const MS: Duration = Duration::from_millis(1);

/// What a scripted dial does.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// Never answers (a blackhole).
    Hang,
    /// Refused after this long.
    Refuse(Duration),
    /// Connects after this long.
    Connect(Duration),
    /// Fails at once, as a socket setup error would.
    SetupError,
}

/// Counts what the scripted dials did, shared with the test.
#[derive(Debug, Default)]
struct Tally {
    dials: AtomicUsize,
    /// Dial futures dropped before they finished (cancelled or lost).
    abandoned: AtomicUsize,
    /// Streams dropped (closed) after connecting.
    closed: AtomicUsize,
}

#[derive(Debug)]
struct Stream {
    remote: SocketAddr,
    tally: Arc<Tally>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.tally.closed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Marks a dial future abandoned if it is dropped before it finished.
struct Watch {
    tally: Arc<Tally>,
    done: bool,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.done {
            self.tally.abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[derive(Clone, Debug)]
struct ScriptedDial {
    scripts: Arc<HashMap<SocketAddr, Script>>,
    /// Scripts for one (local, remote) pair, before the remote's own.
    by_pair: Arc<HashMap<(IpAddr, SocketAddr), Script>>,
    tally: Arc<Tally>,
}

impl ScriptedDial {
    fn new(scripts: &[(&str, Script)]) -> ScriptedDial {
        let scripts = scripts
            .iter()
            .map(|(addr, script)| (addr.parse().expect("test address"), *script))
            .collect();
        ScriptedDial {
            scripts: Arc::new(scripts),
            by_pair: Arc::default(),
            tally: Arc::default(),
        }
    }

    fn from(mut self, local: &str, remote: &str, script: Script) -> ScriptedDial {
        let key = (
            local.parse().expect("test ip"),
            remote.parse().expect("test address"),
        );
        Arc::make_mut(&mut self.by_pair).insert(key, script);
        self
    }
}

impl Dial for ScriptedDial {
    type Stream = Stream;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream>> + Send>>;

    fn dial(&self, pair: Pair) -> Self::Future {
        self.tally.dials.fetch_add(1, Ordering::SeqCst);
        let script = pair
            .local
            .and_then(|local| self.by_pair.get(&(local.ip(), pair.remote)))
            .or_else(|| self.scripts.get(&pair.remote))
            .copied()
            .unwrap_or(Script::Hang);
        let tally = self.tally.clone();
        Box::pin(async move {
            let mut watch = Watch {
                tally: tally.clone(),
                done: false,
            };
            let result = match script {
                Script::Hang => std::future::pending().await,
                Script::Refuse(after) => {
                    tokio::time::sleep(after).await;
                    Err(io::Error::from(io::ErrorKind::ConnectionRefused))
                }
                Script::Connect(after) => {
                    tokio::time::sleep(after).await;
                    Ok(Stream {
                        remote: pair.remote,
                        tally,
                    })
                }
                Script::SetupError => Err(io::Error::other("setup failed")),
            };
            watch.done = true;
            result
        })
    }
}

/// After how long, and what; `None` never answers.
type ScriptedAnswer = (Duration, Option<io::Result<Vec<IpAddr>>>);

/// Answers each name per family after a scripted delay.
#[derive(Debug, Default)]
struct ScriptedResolver {
    answers: Mutex<HashMap<(String, Family), ScriptedAnswer>>,
}

impl ScriptedResolver {
    fn answer(self, name: &str, family: Family, after: Duration, ips: &[&str]) -> Self {
        let ips = ips.iter().map(|ip| ip.parse().expect("test ip")).collect();
        self.set(name, family, after, Some(Ok(ips)))
    }

    fn never(self, name: &str, family: Family) -> Self {
        self.set(name, family, Duration::ZERO, None)
    }

    fn fail(self, name: &str, family: Family, after: Duration) -> Self {
        let error = io::Error::new(io::ErrorKind::NotFound, format!("{name}: unknown name"));
        self.set(name, family, after, Some(Err(error)))
    }

    fn set(
        self,
        name: &str,
        family: Family,
        after: Duration,
        answer: Option<io::Result<Vec<IpAddr>>>,
    ) -> Self {
        if let Ok(mut answers) = self.answers.lock() {
            answers.insert((name.to_owned(), family), (after, answer));
        }
        self
    }
}

impl Resolve for ScriptedResolver {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let scripted = self
            .answers
            .lock()
            .ok()
            .and_then(|mut answers| answers.remove(&(name.to_owned(), family)));
        Box::pin(async move {
            match scripted {
                Some((after, Some(answer))) => {
                    tokio::time::sleep(after).await;
                    answer
                }
                _ => std::future::pending().await,
            }
        })
    }
}

/// Caller's order (the ranking has tests of its own) and no route lookups (NAT64, which would
/// probe IPv4 routes, has tests of its own at the end).
fn config() -> Config {
    Config {
        sort_addresses: false,
        nat64: crate::Nat64::Off,
        ..Config::default()
    }
}

fn race<M>(
    dial: &ScriptedDial,
    config: Config,
    targets: impl IntoTargets<M>,
) -> Race<ScriptedDial> {
    remembering(dial, config, targets, None)
}

fn remembering<M>(
    dial: &ScriptedDial,
    config: Config,
    targets: impl IntoTargets<M>,
    history: Option<Arc<History>>,
) -> Race<ScriptedDial> {
    let targets = targets.into_targets().expect("valid test targets");
    Race::new(dial.clone(), Arc::new(config), targets, history)
}

async fn run(mut race: Race<ScriptedDial>) -> Result<Won<Stream>, ConnectError> {
    std::future::poll_fn(|cx| race.poll_race(cx)).await
}

/// (remote, started ms, ended ms, outcome) for each attempt.
pub(super) fn timeline(report: &Report) -> Vec<(String, u128, u128, Outcome)> {
    report
        .attempts()
        .iter()
        .map(|a| {
            (
                a.remote().to_string(),
                a.started().as_millis(),
                a.ended().as_millis(),
                a.outcome(),
            )
        })
        .collect()
}

pub(super) fn row(
    remote: &str,
    started: u128,
    ended: u128,
    outcome: Outcome,
) -> (String, u128, u128, Outcome) {
    (remote.to_string(), started, ended, outcome)
}

/// RFC 8305 §5: the first attempt starts at once; when it connects, it wins alone.
#[tokio::test(start_paused = true)]
async fn first_attempt_wins_alone() {
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(20 * MS))]);
    let won = run(race(&dial, config(), ["192.0.2.1:80", "192.0.2.2:80"]))
        .await
        .expect("connects");
    assert_eq!(won.stream.remote.to_string(), "192.0.2.1:80");
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.1:80", 0, 20, Outcome::Connected)]
    );
    assert_eq!(won.report.elapsed(), 20 * MS);
    assert_eq!(won.report.not_tried().len(), 1);
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 1);
}

/// RFC 8305 §5: while attempt 1 hangs, attempt 2 starts exactly one attempt delay later, and
/// attempt 1 keeps running until attempt 2 wins; then it is closed.
#[tokio::test(start_paused = true)]
async fn a_hang_starts_the_next_attempt_at_exactly_the_delay() {
    let dial = ScriptedDial::new(&[
        ("[2001:db8::1]:80", Script::Hang),
        ("192.0.2.1:80", Script::Connect(40 * MS)),
    ]);
    let won = run(race(&dial, config(), ["[2001:db8::1]:80", "192.0.2.1:80"]))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("[2001:db8::1]:80", 0, 290, Outcome::Lost),
            row("192.0.2.1:80", 250, 290, Outcome::Connected),
        ]
    );
    assert_eq!(dial.tally.abandoned.load(Ordering::SeqCst), 1);
}

/// A configured attempt delay is used to the millisecond.
#[tokio::test(start_paused = true)]
async fn the_configured_attempt_delay_is_exact() {
    let dial = ScriptedDial::new(&[("192.0.2.3:80", Script::Connect(MS))]);
    let mut config = config();
    config.attempt_delay = 100 * MS;
    let won = run(race(
        &dial,
        config,
        ["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"],
    ))
    .await
    .expect("connects");
    let starts: Vec<u128> = timeline(&won.report).iter().map(|r| r.1).collect();
    assert_eq!(starts, [0, 100, 200]);
    assert_eq!(won.report.elapsed(), 201 * MS);
}

/// RFC 8305 §5: a failed attempt starts the next one at once, without waiting for the delay.
#[tokio::test(start_paused = true)]
async fn a_failure_starts_the_next_attempt_at_once() {
    let dial = ScriptedDial::new(&[
        ("192.0.2.1:80", Script::Refuse(30 * MS)),
        ("192.0.2.2:80", Script::Connect(10 * MS)),
    ]);
    let won = run(race(&dial, config(), ["192.0.2.1:80", "192.0.2.2:80"]))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("192.0.2.1:80", 0, 30, Outcome::Refused),
            row("192.0.2.2:80", 30, 40, Outcome::Connected),
        ]
    );
}

/// A failure while an earlier attempt still hangs also starts the next one at once.
#[tokio::test(start_paused = true)]
async fn a_failure_during_a_hang_starts_the_next_at_once() {
    let dial = ScriptedDial::new(&[
        ("192.0.2.1:80", Script::Hang),
        ("192.0.2.2:80", Script::Refuse(10 * MS)),
        ("192.0.2.3:80", Script::Connect(5 * MS)),
    ]);
    let won = run(race(
        &dial,
        config(),
        ["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"],
    ))
    .await
    .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("192.0.2.1:80", 0, 265, Outcome::Lost),
            row("192.0.2.2:80", 250, 260, Outcome::Refused),
            row("192.0.2.3:80", 260, 265, Outcome::Connected),
        ]
    );
}

/// A socket setup error fails that attempt only, at its start; the race goes on at once.
#[tokio::test(start_paused = true)]
async fn a_setup_error_fails_one_attempt_only() {
    let dial = ScriptedDial::new(&[
        ("[2001:db8::1]:80", Script::SetupError),
        ("[2001:db8::2]:80", Script::SetupError),
        ("192.0.2.1:80", Script::Connect(7 * MS)),
    ]);
    let won = run(race(
        &dial,
        config(),
        ["[2001:db8::1]:80", "[2001:db8::2]:80", "192.0.2.1:80"],
    ))
    .await
    .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("[2001:db8::1]:80", 0, 0, Outcome::Error),
            row("192.0.2.1:80", 0, 7, Outcome::Connected),
        ]
    );
    let first = &won.report.attempts()[0];
    assert_eq!(
        first.error().map(|e| e.to_string()).as_deref(),
        Some("setup failed")
    );
}

/// When every attempt fails, the error carries every attempt's own error, in start order.
#[tokio::test(start_paused = true)]
async fn all_failing_reports_every_error_in_order() {
    let dial = ScriptedDial::new(&[
        ("192.0.2.1:80", Script::Refuse(10 * MS)),
        ("[2001:db8::1]:80", Script::SetupError),
        ("192.0.2.2:80", Script::Refuse(20 * MS)),
    ]);
    let error = run(race(
        &dial,
        config(),
        ["192.0.2.1:80", "[2001:db8::1]:80", "192.0.2.2:80"],
    ))
    .await
    .expect_err("nothing connects");
    assert_eq!(error.kind(), ConnectErrorKind::AllFailed);
    assert_eq!(
        timeline(error.report()),
        [
            row("192.0.2.1:80", 0, 10, Outcome::Refused),
            row("[2001:db8::1]:80", 10, 10, Outcome::Error),
            row("192.0.2.2:80", 10, 30, Outcome::Refused),
        ]
    );
    assert!(error
        .report()
        .attempts()
        .iter()
        .all(|a| a.error().is_some()));
    assert_eq!(
        error.to_string(),
        "could not connect: all 3 attempt(s) failed: 192.0.2.1:80 refused at 10ms; \
         [2001:db8::1]:80 error at 10ms (setup failed); 192.0.2.2:80 refused at 30ms"
    );
    assert_eq!(error.io_kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(error.report().elapsed(), 30 * MS);
}

/// The deadline ends the connect at exactly its instant, cancelling every attempt in flight.
#[tokio::test(start_paused = true)]
async fn the_deadline_cancels_everything_at_exactly_its_instant() {
    let dial = ScriptedDial::new(&[]);
    let mut config = config();
    config.timeout = Some(600 * MS);
    let start = Instant::now();
    let error = run(race(
        &dial,
        config,
        ["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"],
    ))
    .await
    .expect_err("everything hangs");
    assert_eq!(start.elapsed(), 600 * MS);
    assert_eq!(error.kind(), ConnectErrorKind::TimedOut);
    assert_eq!(error.io_kind(), io::ErrorKind::TimedOut);
    assert_eq!(
        timeline(error.report()),
        [
            row("192.0.2.1:80", 0, 600, Outcome::Cancelled),
            row("192.0.2.2:80", 250, 600, Outcome::Cancelled),
            row("192.0.2.3:80", 500, 600, Outcome::Cancelled),
        ]
    );
    assert_eq!(dial.tally.abandoned.load(Ordering::SeqCst), 3);
}

/// A connect that completes in the same instant as the deadline still wins (attempts are
/// polled before the timer).
#[tokio::test(start_paused = true)]
async fn a_connect_at_the_deadline_instant_wins() {
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(100 * MS))]);
    let mut config = config();
    config.timeout = Some(100 * MS);
    let won = run(race(&dial, config, ["192.0.2.1:80"]))
        .await
        .expect("connects in the deadline's instant");
    assert_eq!(won.report.elapsed(), 100 * MS);
}

/// The per-attempt timeout ends a hanging attempt, and the next starts at once.
#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_ends_one_attempt() {
    let dial = ScriptedDial::new(&[("192.0.2.2:80", Script::Connect(10 * MS))]);
    let mut config = config();
    config.attempt_timeout = Some(100 * MS);
    let won = run(race(&dial, config, ["192.0.2.1:80", "192.0.2.2:80"]))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("192.0.2.1:80", 0, 100, Outcome::TimedOut),
            row("192.0.2.2:80", 100, 110, Outcome::Connected),
        ]
    );
}

/// Two attempts that connect in the same instant: the older wins (attempts are polled oldest
/// first), the younger is closed without being polled again.
#[tokio::test(start_paused = true)]
async fn of_two_successes_in_one_instant_the_older_wins() {
    let dial = ScriptedDial::new(&[
        ("192.0.2.1:80", Script::Connect(300 * MS)),
        ("192.0.2.2:80", Script::Connect(50 * MS)),
    ]);
    let won = run(race(&dial, config(), ["192.0.2.1:80", "192.0.2.2:80"]))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("192.0.2.1:80", 0, 300, Outcome::Connected),
            row("192.0.2.2:80", 250, 300, Lost),
        ]
    );
    assert_eq!(won.stream.remote.to_string(), "192.0.2.1:80");
    assert_eq!(won.report.elapsed(), 300 * MS);
    // The younger was dropped while its connect was ready but not yet taken.
    assert_eq!(dial.tally.abandoned.load(Ordering::SeqCst), 1);
    assert_eq!(dial.tally.closed.load(Ordering::SeqCst), 0);
    drop(won);
    assert_eq!(dial.tally.closed.load(Ordering::SeqCst), 1);
}

/// Dropping the connect mid-race cancels every dial it started.
#[tokio::test(start_paused = true)]
async fn dropping_the_race_cancels_every_dial() {
    let dial = ScriptedDial::new(&[]);
    let race = race(
        &dial,
        config(),
        ["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"],
    );
    let outcome = tokio::time::timeout(600 * MS, run(race)).await;
    assert!(outcome.is_err(), "still racing at 600 ms");
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 3);
    assert_eq!(dial.tally.abandoned.load(Ordering::SeqCst), 3);
}

/// The attempt cap stops the race; what was left is counted as not tried.
#[tokio::test(start_paused = true)]
async fn the_attempt_cap_holds() {
    let dial = ScriptedDial::new(&[
        ("192.0.2.1:80", Script::Refuse(MS)),
        ("192.0.2.2:80", Script::Refuse(MS)),
    ]);
    let mut config = config();
    config.max_attempts = 2;
    let error = run(race(
        &dial,
        config,
        ["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"],
    ))
    .await
    .expect_err("the live one is past the cap");
    assert_eq!(
        timeline(error.report()),
        [
            row("192.0.2.1:80", 0, 1, Outcome::Refused),
            row("192.0.2.2:80", 1, 2, Outcome::Refused),
        ]
    );
    assert_eq!(error.report().elapsed(), 2 * MS);
    assert_eq!(error.report().not_tried(), [addr("192.0.2.3:80")]);
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 2);
}

/// Once the cap is reached, the race ends when the last attempt does: it does not wait for a
/// lookup that could only add addresses it may not try, and no timer stays armed.
#[tokio::test(start_paused = true)]
async fn the_cap_ends_the_race_without_waiting_for_lookups() {
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .never("db.example", Family::V6);
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Refuse(10 * MS))]);
    let mut config = with_resolver(resolver);
    config.max_attempts = 1;
    let answer = tokio::time::timeout(
        Duration::from_secs(3600),
        run(race(&dial, config, "db.example:80")),
    )
    .await
    .expect("the race ends by itself, not at the test's limit");
    let error = answer.expect_err("the one allowed attempt is refused");
    assert_eq!(error.kind(), ConnectErrorKind::AllFailed);
    // The resolution delay (50 ms) for the AAAA that never comes, then 10 ms to the refusal.
    assert_eq!(
        timeline(error.report()),
        [row("192.0.2.1:80", 50, 60, Outcome::Refused)]
    );
    assert_eq!(error.report().elapsed(), 60 * MS);
    let unanswered = error.report().unanswered_lookups();
    assert_eq!(unanswered.len(), 1);
    assert_eq!(
        (unanswered[0].host(), unanswered[0].family()),
        ("db.example", Family::V6)
    );
    assert_eq!(unanswered[0].waited(), 60 * MS);
}

/// Families alternate in the race (RFC 8305 §4), starting with the first address's family.
#[tokio::test(start_paused = true)]
async fn families_alternate() {
    let dial = ScriptedDial::new(&[]);
    let mut config = config();
    config.timeout = Some(1000 * MS);
    let error = run(race(
        &dial,
        config,
        [
            "[2001:db8::1]:80",
            "[2001:db8::2]:80",
            "192.0.2.1:80",
            "192.0.2.2:80",
        ],
    ))
    .await
    .expect_err("everything hangs");
    assert_eq!(
        timeline(error.report()),
        [
            row("[2001:db8::1]:80", 0, 1000, Cancelled),
            row("192.0.2.1:80", 250, 1000, Cancelled),
            row("[2001:db8::2]:80", 500, 1000, Cancelled),
            row("192.0.2.2:80", 750, 1000, Cancelled),
        ]
    );
}

fn with_resolver(resolver: ScriptedResolver) -> Config {
    let mut config = config();
    config.resolver = Arc::new(resolver);
    config
}

/// RFC 8305 §3: an AAAA answer starts the race at once, with IPv6.
#[tokio::test(start_paused = true)]
async fn an_aaaa_answer_starts_the_race_at_once() {
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .never("db.example", Family::V4);
    let dial = ScriptedDial::new(&[("[2001:db8::1]:80", Script::Connect(MS))]);
    let won = run(race(&dial, with_resolver(resolver), "db.example:80"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("[2001:db8::1]:80", 0, 1, Outcome::Connected)]
    );
    assert_eq!(won.report.attempts()[0].host(), Some("db.example"));
}

/// RFC 8305 §3: A first, AAAA 30 ms later (inside the resolution delay): the race starts at
/// 30 ms, with IPv6.
#[tokio::test(start_paused = true)]
async fn a_first_then_aaaa_within_the_resolution_delay_starts_with_ipv6() {
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .answer("db.example", Family::V6, 30 * MS, &["2001:db8::1"]);
    let dial = ScriptedDial::new(&[("[2001:db8::1]:80", Script::Connect(MS))]);
    let won = run(race(&dial, with_resolver(resolver), "db.example:80"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("[2001:db8::1]:80", 30, 31, Outcome::Connected)]
    );
}

/// RFC 8305 §3: A first and AAAA never: IPv4 starts at exactly the 50 ms resolution delay.
#[tokio::test(start_paused = true)]
async fn a_first_and_no_aaaa_starts_ipv4_at_exactly_the_resolution_delay() {
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V4, 5 * MS, &["192.0.2.1"])
        .never("db.example", Family::V6);
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(MS))]);
    let won = run(race(&dial, with_resolver(resolver), "db.example:80"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.1:80", 55, 56, Outcome::Connected)]
    );
}

/// RFC 8305 §3: a negative AAAA answer does not hold IPv4 back.
#[tokio::test(start_paused = true)]
async fn an_empty_aaaa_answer_does_not_delay_ipv4() {
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V6, 2 * MS, &[])
        .answer("db.example", Family::V4, 10 * MS, &["192.0.2.1"]);
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(MS))]);
    let won = run(race(&dial, with_resolver(resolver), "db.example:80"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.1:80", 10, 11, Outcome::Connected)]
    );
}

/// RFC 8305 §3: an AAAA answer after the race started joins the untried part of the plan, and
/// is taken next (families alternate).
#[tokio::test(start_paused = true)]
async fn a_late_aaaa_joins_the_untried_part() {
    let resolver = ScriptedResolver::default()
        .answer(
            "db.example",
            Family::V4,
            Duration::ZERO,
            &["192.0.2.1", "192.0.2.2"],
        )
        .answer("db.example", Family::V6, 100 * MS, &["2001:db8::1"]);
    let dial = ScriptedDial::new(&[("[2001:db8::1]:80", Script::Connect(MS))]);
    let won = run(race(&dial, with_resolver(resolver), "db.example:80"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("192.0.2.1:80", 50, 301, Outcome::Lost),
            row("[2001:db8::1]:80", 300, 301, Outcome::Connected),
        ]
    );
    assert_eq!(won.report.not_tried().len(), 1);
}

/// A late answer while nothing is in flight and the plan ran dry starts an attempt at once.
#[tokio::test(start_paused = true)]
async fn a_late_answer_after_every_attempt_failed_starts_at_once() {
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .answer("db.example", Family::V6, 80 * MS, &["2001:db8::1"]);
    let dial = ScriptedDial::new(&[
        ("192.0.2.1:80", Script::Refuse(MS)),
        ("[2001:db8::1]:80", Script::Connect(MS)),
    ]);
    let won = run(race(&dial, with_resolver(resolver), "db.example:80"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("192.0.2.1:80", 50, 51, Outcome::Refused),
            row("[2001:db8::1]:80", 80, 81, Outcome::Connected),
        ]
    );
}

/// A name that does not resolve is reported, and the other targets go on.
#[tokio::test(start_paused = true)]
async fn a_name_that_does_not_resolve_is_reported_and_the_rest_go_on() {
    let resolver = ScriptedResolver::default()
        .fail("gone.example", Family::V6, MS)
        .fail("gone.example", Family::V4, MS)
        .answer("db.example", Family::V6, 5 * MS, &[])
        .answer("db.example", Family::V4, 5 * MS, &["192.0.2.1"]);
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(MS))]);
    let won = run(race(
        &dial,
        with_resolver(resolver),
        ["gone.example:80", "db.example:80"],
    ))
    .await
    .expect("connects");
    let failures = won.report.resolve_failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].host(), "gone.example");
    assert_eq!(failures[0].error().kind(), io::ErrorKind::NotFound);
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.1:80", 5, 6, Outcome::Connected)]
    );
}

/// When nothing resolves, the connect fails with every name's reason and no attempt.
#[tokio::test(start_paused = true)]
async fn nothing_resolving_fails_with_every_reason() {
    let resolver = ScriptedResolver::default()
        .fail("a.example", Family::V6, MS)
        .fail("a.example", Family::V4, MS)
        .answer("b.example", Family::V6, MS, &[])
        .answer("b.example", Family::V4, 2 * MS, &[]);
    let dial = ScriptedDial::new(&[]);
    let error = run(race(
        &dial,
        with_resolver(resolver),
        ["a.example:80", "b.example:80"],
    ))
    .await
    .expect_err("nothing resolves");
    assert_eq!(error.kind(), ConnectErrorKind::NoAddresses);
    assert_eq!(error.report().elapsed(), 2 * MS);
    let hosts: Vec<&str> = error
        .report()
        .resolve_failures()
        .iter()
        .map(|f| f.host())
        .collect();
    assert_eq!(hosts, ["a.example", "b.example"]);
    assert_eq!(
        error.to_string(),
        "no address to connect to: a.example did not resolve (a.example: unknown name); \
         b.example did not resolve (no IPv4 or IPv6 address)"
    );
}

/// The deadline covers resolution too.
#[tokio::test(start_paused = true)]
async fn the_deadline_covers_resolution() {
    let resolver = ScriptedResolver::default()
        .never("slow.example", Family::V6)
        .never("slow.example", Family::V4);
    let mut config = with_resolver(resolver);
    config.timeout = Some(700 * MS);
    let dial = ScriptedDial::new(&[]);
    let error = run(race(&dial, config, "slow.example:80"))
        .await
        .expect_err("never resolves");
    assert_eq!(error.kind(), ConnectErrorKind::TimedOut);
    assert_eq!(error.report().elapsed(), 700 * MS);
    assert!(error.report().attempts().is_empty());
}

/// A huge answer is cut to the per-name cap, and the rest is counted as not tried.
#[tokio::test(start_paused = true)]
async fn a_huge_answer_is_capped() {
    let many: Vec<String> = (0..1000).map(|i| format!("2001:db8::{i:x}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let resolver = ScriptedResolver::default()
        .answer("big.example", Family::V6, Duration::ZERO, &refs)
        .answer("big.example", Family::V4, Duration::ZERO, &[]);
    let mut config = with_resolver(resolver);
    config.max_addresses_per_name = 4;
    config.timeout = Some(2000 * MS);
    let dial = ScriptedDial::new(&[]);
    let error = run(race(&dial, config, "big.example:80"))
        .await
        .expect_err("every dial hangs");
    assert_eq!(error.report().attempts().len(), 4);
    assert_eq!(error.report().not_tried().len(), 996);
}

/// A route table for tests: every destination is reachable from a documentation source of its
/// family, except 2001:db8:dead::/48, which has no route; 192.0.2.99 is not on this host.
fn scripted_routes(local: Option<SocketAddr>, remote: SocketAddr) -> crate::local::Route {
    use crate::local::Route;
    if let Some(local) = local {
        if local.ip().to_string() == "192.0.2.99" {
            return Route::BindFails;
        }
    }
    match remote.ip() {
        IpAddr::V6(v6) if v6.segments()[..3] == [0x2001, 0xdb8, 0xdead] => Route::None,
        IpAddr::V6(_) => Route::Via(local.map_or("2001:db8::100".parse().expect("ip"), |l| l.ip())),
        IpAddr::V4(_) => Route::Via(local.map_or("192.0.2.100".parse().expect("ip"), |l| l.ip())),
    }
}

fn ranked() -> Config {
    Config {
        route_probe: scripted_routes,
        ..Config::default()
    }
}

fn order(report: &Report) -> Vec<String> {
    report
        .attempts()
        .iter()
        .map(|a| a.remote().to_string())
        .collect()
}

/// RFC 6724 §6 rule 6: native IPv6 goes before IPv4, whatever order the caller gave.
#[tokio::test(start_paused = true)]
async fn ranking_puts_ipv6_first() {
    let dial = ScriptedDial::new(&[]);
    let mut config = ranked();
    config.timeout = Some(600 * MS);
    let error = run(race(
        &dial,
        config,
        ["192.0.2.1:80", "192.0.2.2:80", "[2001:db8::1]:80"],
    ))
    .await
    .expect_err("all hang");
    assert_eq!(
        timeline(error.report()),
        [
            row("[2001:db8::1]:80", 0, 600, Cancelled),
            row("192.0.2.1:80", 250, 600, Cancelled),
            row("192.0.2.2:80", 500, 600, Cancelled),
        ]
    );
}

/// With sorting off, the caller's order is kept exactly, even where RFC 6724 would put IPv6
/// first; with it on (the same route lookups), IPv6 goes first.
#[tokio::test(start_paused = true)]
async fn sorting_off_keeps_the_callers_order() {
    for (sort, first, second) in [
        (false, "192.0.2.1:80", "[2001:db8::1]:80"),
        (true, "[2001:db8::1]:80", "192.0.2.1:80"),
    ] {
        let dial = ScriptedDial::new(&[]);
        let mut config = ranked();
        config.sort_addresses = sort;
        config.timeout = Some(600 * MS);
        let error = run(race(&dial, config, ["192.0.2.1:80", "[2001:db8::1]:80"]))
            .await
            .expect_err("all hang");
        assert_eq!(
            timeline(error.report()),
            [
                row(first, 0, 600, Cancelled),
                row(second, 250, 600, Cancelled)
            ],
            "sort_addresses({sort})"
        );
    }
}

/// RFC 6724 §6 rule 1: a destination without a route goes last.
#[tokio::test(start_paused = true)]
async fn ranking_puts_unroutable_destinations_last() {
    let dial = ScriptedDial::new(&[]);
    let mut config = ranked();
    config.timeout = Some(600 * MS);
    let error = run(race(
        &dial,
        config,
        ["[2001:db8:dead::1]:80", "192.0.2.1:80"],
    ))
    .await
    .expect_err("all hang");
    assert_eq!(
        timeline(error.report()),
        [
            row("192.0.2.1:80", 0, 600, Cancelled),
            row("[2001:db8:dead::1]:80", 250, 600, Cancelled),
        ]
    );
}

/// Denied addresses are never dialed and appear in the report; the others are raced.
#[tokio::test(start_paused = true)]
async fn the_filter_skips_denied_addresses() {
    let dial = ScriptedDial::new(&[("192.0.2.200:80", Script::Connect(MS))]);
    let mut config = config();
    config.filter = AddressFilter::allow_all().deny("192.0.2.0/25".parse().expect("prefix"));
    let won = run(race(&dial, config, ["192.0.2.1:80", "192.0.2.200:80"]))
        .await
        .expect("the allowed one connects");
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.200:80", 0, 1, Outcome::Connected)]
    );
    let skipped = won.report.skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].remote().to_string(), "192.0.2.1:80");
    assert!(matches!(skipped[0].reason(), SkipReason::Denied(_)));
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 1);
}

/// When every address is denied, nothing is dialed and the error says so.
#[tokio::test(start_paused = true)]
async fn everything_denied_fails_as_denied() {
    let dial = ScriptedDial::new(&[]);
    let mut config = config();
    config.filter = AddressFilter::deny_non_public();
    let error = run(race(
        &dial,
        config,
        ["127.0.0.1:80", "[::ffff:127.0.0.1]:80", "[::1]:80"],
    ))
    .await
    .expect_err("all denied");
    assert_eq!(error.kind(), ConnectErrorKind::Denied);
    assert_eq!(error.io_kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(error.report().skipped().len(), 3);
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 0);
    let text = error.to_string();
    assert!(
        text.starts_with(
            "every address was denied by the address filter: 127.0.0.1:80 denied (loopback)"
        ),
        "{text}"
    );
}

fn with_locals(locals: &[&str]) -> Config {
    let mut config = ranked();
    config.local_addrs = crate::local::LocalAddrs::List(
        locals
            .iter()
            .map(|l| SocketAddr::new(l.parse().expect("ip"), 0))
            .collect(),
    );
    config
}

fn locals_of(report: &Report) -> Vec<String> {
    report
        .attempts()
        .iter()
        .map(|a| a.local().map(|l| l.ip().to_string()).unwrap_or_default())
        .collect()
}

/// Every local address is paired with the destination; when the first pair's path drops SYNs,
/// the second pair starts one attempt delay later and wins.
#[tokio::test(start_paused = true)]
async fn a_broken_source_is_raced_past() {
    let dial = ScriptedDial::new(&[])
        .from("192.0.2.10", "198.51.100.1:80", Script::Hang)
        .from("192.0.2.20", "198.51.100.1:80", Script::Connect(3 * MS));
    let won = run(race(
        &dial,
        with_locals(&["192.0.2.10", "192.0.2.20"]),
        "198.51.100.1:80",
    ))
    .await
    .expect("the second source works");
    assert_eq!(locals_of(&won.report), ["192.0.2.10", "192.0.2.20"]);
    assert_eq!(
        timeline(&won.report),
        [
            row("198.51.100.1:80", 0, 253, Outcome::Lost),
            row("198.51.100.1:80", 250, 253, Outcome::Connected),
        ]
    );
}

/// When the working source ranks first, the connect takes one round trip.
#[tokio::test(start_paused = true)]
async fn a_working_first_source_connects_at_once() {
    let dial = ScriptedDial::new(&[])
        .from("192.0.2.20", "198.51.100.1:80", Script::Hang)
        .from("192.0.2.10", "198.51.100.1:80", Script::Connect(3 * MS));
    let won = run(race(
        &dial,
        with_locals(&["192.0.2.10", "192.0.2.20"]),
        "198.51.100.1:80",
    ))
    .await
    .expect("connects");
    assert_eq!(locals_of(&won.report), ["192.0.2.10"]);
    assert_eq!(won.report.elapsed(), 3 * MS);
}

/// A remote that no listed local address can reach is reported, not silently dropped; a local
/// address that cannot be bound still gets its attempts, which report the error.
#[tokio::test(start_paused = true)]
async fn unreachable_pairs_are_reported() {
    let dial = ScriptedDial::new(&[])
        .from("192.0.2.99", "198.51.100.1:80", Script::SetupError)
        .from("192.0.2.10", "198.51.100.1:80", Script::Connect(MS));
    let won = run(race(
        &dial,
        with_locals(&["192.0.2.99", "192.0.2.10"]),
        ["[2001:db8::1]:80", "198.51.100.1:80"],
    ))
    .await
    .expect("connects");
    let skipped = won.report.skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].remote().to_string(), "[2001:db8::1]:80");
    assert_eq!(
        skipped[0].to_string(),
        "[2001:db8::1]:80 skipped: no local address can reach it (no local address of its family (IPv6))"
    );
    assert_eq!(locals_of(&won.report), ["192.0.2.99", "192.0.2.10"]);
    assert_eq!(won.report.attempts()[0].outcome(), Outcome::Error);
}

/// RFC 8305 §5 history: with IPv6 blackholed, the first connect pays one attempt delay, the
/// second tries the IPv4 winner first and takes its connect time alone; after the history
/// expires, IPv6 is tried first again (and found again when it has recovered).
#[tokio::test(start_paused = true)]
async fn history_makes_the_second_connect_as_fast_as_ipv4() {
    let history = Arc::new(History::new(16, Duration::from_secs(600)));
    let targets = ["[2001:db8::1]:80", "192.0.2.1:80"];
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(20 * MS))]);
    let first = run(remembering(&dial, ranked(), targets, Some(history.clone())))
        .await
        .expect("IPv4 connects");
    assert_eq!(first.report.elapsed(), 270 * MS);
    assert_eq!(first.report.favoured(), None);
    let second = run(remembering(&dial, ranked(), targets, Some(history.clone())))
        .await
        .expect("IPv4 connects");
    assert_eq!(second.report.elapsed(), 20 * MS);
    assert_eq!(
        second.report.favoured().map(|a| a.to_string()).as_deref(),
        Some("192.0.2.1:80")
    );
    assert_eq!(order(&second.report), ["192.0.2.1:80"]);

    // IPv6 recovers; while the lesson holds, IPv4 still goes first but IPv6 follows after the
    // learned delay (twice 20 ms, clamped to 100 ms).
    let recovered = ScriptedDial::new(&[
        ("[2001:db8::1]:80", Script::Connect(5 * MS)),
        ("192.0.2.1:80", Script::Hang),
    ]);
    let third = run(remembering(
        &recovered,
        ranked(),
        targets,
        Some(history.clone()),
    ))
    .await
    .expect("IPv6 connects");
    assert_eq!(
        timeline(&third.report),
        [
            row("192.0.2.1:80", 0, 105, Outcome::Lost),
            row("[2001:db8::1]:80", 100, 105, Outcome::Connected),
        ]
    );
    // IPv6 won: it is the favourite now, which is also its natural place.
    let fourth = run(remembering(&recovered, ranked(), targets, Some(history)))
        .await
        .expect("IPv6 connects");
    assert_eq!(order(&fourth.report), ["[2001:db8::1]:80"]);
    assert_eq!(fourth.report.elapsed(), 5 * MS);
}

/// A TCP-only winner is no lesson for a race through a handshake (a path can carry TCP and not
/// TLS): the same targets keep separate lessons. IPv4 wins a TCP-only connect; the next connect,
/// through a handshake, is not steered by it (IPv6 first, nothing favoured); a TCP-only connect
/// after it still is (the lesson is there to be used).
#[tokio::test(start_paused = true)]
async fn tcp_and_handshake_races_keep_separate_lessons() {
    let history = Arc::new(History::new(16, Duration::from_secs(600)));
    let targets = ["[2001:db8::1]:80", "192.0.2.1:80"];
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(20 * MS))]);
    run(remembering(&dial, ranked(), targets, Some(history.clone())))
        .await
        .expect("IPv4 connects");

    let handshake = ScriptedHandshake::new(&[("192.0.2.1:80", Greeting::Finish(MS))]);
    let mut through = Race::with_handshake(
        dial.clone(),
        handshake,
        Arc::new(ranked()),
        targets.into_targets().expect("valid"),
        Some(history.clone()),
    );
    let won = std::future::poll_fn(|cx| through.poll_race(cx))
        .await
        .expect("IPv4 connects");
    assert_eq!(won.report.favoured(), None);
    assert_eq!(order(&won.report), ["[2001:db8::1]:80", "192.0.2.1:80"]);

    let again = run(remembering(&dial, ranked(), targets, Some(history)))
        .await
        .expect("IPv4 connects");
    assert_eq!(
        again.report.favoured().map(|a| a.to_string()).as_deref(),
        Some("192.0.2.1:80")
    );
}

/// History entries expire: after the TTL the natural order comes back.
#[tokio::test(start_paused = true)]
async fn history_expires() {
    let history = Arc::new(History::new(16, Duration::from_secs(60)));
    let targets = ["[2001:db8::1]:80", "192.0.2.1:80"];
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(20 * MS))]);
    run(remembering(&dial, ranked(), targets, Some(history.clone())))
        .await
        .expect("IPv4 connects");
    tokio::time::advance(Duration::from_secs(60)).await;
    let later = run(remembering(&dial, ranked(), targets, Some(history)))
        .await
        .expect("IPv4 connects");
    assert_eq!(later.report.favoured(), None);
    assert_eq!(later.report.elapsed(), 270 * MS);
}

/// A lone pair leaves history alone: there is nothing to choose between, now or next time. A
/// name, even with one address, is remembered (its answers may grow).
#[tokio::test(start_paused = true)]
async fn a_lone_pair_is_not_remembered() {
    let history = Arc::new(History::new(16, Duration::from_secs(60)));
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(MS))]);
    run(remembering(
        &dial,
        config(),
        ["192.0.2.1:80"],
        Some(history.clone()),
    ))
    .await
    .expect("connects");
    assert_eq!(history.len(), 0);
    let resolver = ScriptedResolver::default()
        .answer("one.test", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .fail("one.test", Family::V6, Duration::ZERO);
    run(remembering(
        &dial,
        with_resolver(resolver),
        "one.test:80",
        Some(history.clone()),
    ))
    .await
    .expect("connects");
    assert_eq!(history.len(), 1);
    run(remembering(
        &dial,
        ranked(),
        ["192.0.2.1:80", "192.0.2.2:80"],
        Some(history.clone()),
    ))
    .await
    .expect("connects");
    assert_eq!(history.len(), 2);
}

/// Polled again after it answered, a race opens nothing more and answers, every time, that it
/// has finished: never a `Pending` that nothing would wake.
#[tokio::test(start_paused = true)]
async fn polling_a_finished_race_opens_nothing() {
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(MS))]);
    let mut race = race(&dial, config(), ["192.0.2.1:80", "192.0.2.2:80"]);
    let won = std::future::poll_fn(|cx| race.poll_race(cx)).await;
    assert!(won.is_ok());
    for _ in 0..2 {
        let again = std::future::poll_fn(|cx| race.poll_race(cx))
            .await
            .expect_err("a finished race has nothing more to give");
        assert_eq!(again.kind(), ConnectErrorKind::PolledAfterCompletion);
        assert!(again.report().attempts().is_empty());
    }
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 1);
}

/// No attempt starts at or after the deadline: with the attempt delay at 250 ms and the
/// deadline at 500 ms, the third attempt's turn comes in the deadline's own instant, and the
/// deadline wins.
#[tokio::test(start_paused = true)]
async fn nothing_starts_at_the_deadline() {
    let dial = ScriptedDial::new(&[]);
    let mut config = config();
    config.timeout = Some(500 * MS);
    let error = run(race(
        &dial,
        config,
        ["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"],
    ))
    .await
    .expect_err("everything hangs");
    assert_eq!(error.kind(), ConnectErrorKind::TimedOut);
    assert_eq!(
        timeline(error.report()),
        [
            row("192.0.2.1:80", 0, 500, Cancelled),
            row("192.0.2.2:80", 250, 500, Cancelled),
        ]
    );
    assert_eq!(error.report().not_tried(), [addr("192.0.2.3:80")]);
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 2);
}

/// A failure in the deadline's instant frees a slot, but the deadline comes first: nothing new
/// starts.
#[tokio::test(start_paused = true)]
async fn a_failure_at_the_deadline_starts_nothing() {
    let dial = ScriptedDial::new(&[("192.0.2.2:80", Script::Refuse(250 * MS))]);
    let mut config = config();
    config.timeout = Some(500 * MS);
    let error = run(race(
        &dial,
        config,
        ["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"],
    ))
    .await
    .expect_err("the deadline passes");
    assert_eq!(error.kind(), ConnectErrorKind::TimedOut);
    assert_eq!(
        timeline(error.report()),
        [
            row("192.0.2.1:80", 0, 500, Cancelled),
            row("192.0.2.2:80", 250, 500, Outcome::Refused),
        ]
    );
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 2);
}

/// A DNS answer in the deadline's instant starts nothing either.
#[tokio::test(start_paused = true)]
async fn an_answer_at_the_deadline_starts_nothing() {
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V6, 500 * MS, &["2001:db8::1"])
        .answer("db.example", Family::V4, 500 * MS, &["192.0.2.1"]);
    let dial = ScriptedDial::new(&[]);
    let mut config = with_resolver(resolver);
    config.timeout = Some(500 * MS);
    let error = run(race(&dial, config, "db.example:80"))
        .await
        .expect_err("the deadline passes");
    assert_eq!(error.kind(), ConnectErrorKind::TimedOut);
    assert!(error.report().attempts().is_empty());
    assert_eq!(error.report().elapsed(), 500 * MS);
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 0);
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

/// What the first connect to `db.example:80` teaches: IPv6 hangs, IPv4 (192.0.2.1) wins in
/// 10 ms after one attempt delay.
async fn learn_ipv4(history: &Arc<History>, dial: &ScriptedDial) {
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .answer("db.example", Family::V4, Duration::ZERO, &["192.0.2.1"]);
    let first = run(remembering(
        dial,
        with_resolver(resolver),
        "db.example:80",
        Some(history.clone()),
    ))
    .await
    .expect("IPv4 connects");
    assert_eq!(
        timeline(&first.report),
        [
            row("[2001:db8::1]:80", 0, 260, Lost),
            row("192.0.2.1:80", 250, 260, Outcome::Connected),
        ]
    );
    assert_eq!(first.report.favoured(), None);
}

/// The next connect to `db.example:80` (after `learn_ipv4`), with these answers.
async fn connect_again(
    history: Arc<History>,
    dial: &ScriptedDial,
    resolver: ScriptedResolver,
    expect: &str,
) -> Won<Stream> {
    let config = with_resolver(resolver);
    run(remembering(dial, config, "db.example:80", Some(history)))
        .await
        .expect(expect)
}

/// RFC 8305 §5 history for a name: the remembered IPv4 winner goes first even when the AAAA
/// answer comes first (the race waits for the A answer, as it would for AAAA, up to the
/// resolution delay).
#[tokio::test(start_paused = true)]
async fn history_favours_a_names_ipv4_winner_when_aaaa_comes_first() {
    let history = Arc::new(History::new(16, Duration::from_secs(600)));
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(10 * MS))]);
    learn_ipv4(&history, &dial).await;
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .answer("db.example", Family::V4, 30 * MS, &["192.0.2.1"]);
    let second = connect_again(history, &dial, resolver, "IPv4 connects").await;
    assert_eq!(
        timeline(&second.report),
        [row("192.0.2.1:80", 30, 40, Outcome::Connected)]
    );
    assert_eq!(second.report.favoured(), Some(addr("192.0.2.1:80")));
}

/// RFC 8305 §5 history for a name: when the A answer with the remembered winner comes first,
/// it starts at once, without the resolution delay.
#[tokio::test(start_paused = true)]
async fn history_starts_a_names_ipv4_winner_without_the_resolution_delay() {
    let history = Arc::new(History::new(16, Duration::from_secs(600)));
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(10 * MS))]);
    learn_ipv4(&history, &dial).await;
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .answer("db.example", Family::V6, 20 * MS, &["2001:db8::1"]);
    let second = connect_again(history, &dial, resolver, "IPv4 connects").await;
    assert_eq!(
        timeline(&second.report),
        [row("192.0.2.1:80", 0, 10, Outcome::Connected)]
    );
    assert_eq!(second.report.favoured(), Some(addr("192.0.2.1:80")));
}

/// When the remembered winner's family never answers, the race waits for it no longer than the
/// resolution delay, then goes on without a favourite.
#[tokio::test(start_paused = true)]
async fn history_waits_for_a_silent_winners_family_only_the_resolution_delay() {
    let history = Arc::new(History::new(16, Duration::from_secs(600)));
    let dial = ScriptedDial::new(&[
        ("192.0.2.1:80", Script::Connect(10 * MS)),
        ("[2001:db8::1]:80", Script::Connect(5 * MS)),
    ]);
    learn_ipv4(
        &history,
        &ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(10 * MS))]),
    )
    .await;
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .never("db.example", Family::V4);
    let second = connect_again(history, &dial, resolver, "IPv6 connects").await;
    assert_eq!(
        timeline(&second.report),
        [row("[2001:db8::1]:80", 50, 55, Outcome::Connected)]
    );
    assert_eq!(second.report.favoured(), None);
}

/// When the remembered winner is not among this connect's addresses, neither it nor its learned
/// attempt delay applies, and the report names no favourite.
#[tokio::test(start_paused = true)]
async fn history_without_its_winner_changes_nothing() {
    let history = Arc::new(History::new(16, Duration::from_secs(600)));
    learn_ipv4(
        &history,
        &ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(10 * MS))]),
    )
    .await;
    let resolver = ScriptedResolver::default()
        .answer("db.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .answer("db.example", Family::V4, Duration::ZERO, &["192.0.2.9"]);
    let dial = ScriptedDial::new(&[("192.0.2.9:80", Script::Connect(10 * MS))]);
    let second = connect_again(history, &dial, resolver, "IPv4 connects").await;
    // The configured 250 ms attempt delay, not the learned 100 ms.
    assert_eq!(
        timeline(&second.report),
        [
            row("[2001:db8::1]:80", 0, 260, Lost),
            row("192.0.2.9:80", 250, 260, Outcome::Connected),
        ]
    );
    assert_eq!(second.report.favoured(), None);
}

/// What a scripted handshake does once its attempt has connected.
#[derive(Clone, Copy, Debug)]
enum Greeting {
    /// Never finishes (a path-MTU blackhole: the server's big flight never arrives).
    Hang,
    /// Fails after this long.
    Fail(Duration),
    /// Finishes after this long.
    Finish(Duration),
}

/// Handshakes by remote address; the stream is held until the handshake ends, so dropping it
/// closes the attempt's "socket".
#[derive(Clone, Debug)]
struct ScriptedHandshake {
    scripts: Arc<HashMap<SocketAddr, Greeting>>,
}

impl ScriptedHandshake {
    fn new(scripts: &[(&str, Greeting)]) -> ScriptedHandshake {
        let scripts = scripts
            .iter()
            .map(|(a, g)| (a.parse().expect("test address"), *g))
            .collect();
        ScriptedHandshake {
            scripts: Arc::new(scripts),
        }
    }
}

impl Handshake<Stream> for ScriptedHandshake {
    type Output = Stream;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream>> + Send>>;

    fn handshake(&self, stream: Stream, peer: Peer) -> Self::Future {
        let greeting = self
            .scripts
            .get(&peer.remote)
            .copied()
            .unwrap_or(Greeting::Hang);
        Box::pin(async move {
            match greeting {
                Greeting::Hang => std::future::pending().await,
                Greeting::Fail(after) => {
                    tokio::time::sleep(after).await;
                    drop(stream);
                    Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "bad certificate",
                    ))
                }
                Greeting::Finish(after) => {
                    tokio::time::sleep(after).await;
                    Ok(stream)
                }
            }
        })
    }
}

fn handshaking<M>(
    dial: &ScriptedDial,
    handshake: ScriptedHandshake,
    config: Config,
    targets: impl IntoTargets<M>,
) -> Race<ScriptedDial, ScriptedHandshake> {
    let targets = targets.into_targets().expect("valid test targets");
    Race::with_handshake(dial.clone(), handshake, Arc::new(config), targets, None)
}

/// (remote, started, connected, ended, outcome) for each attempt, in ms.
fn phases(report: &Report) -> Vec<(String, u128, Option<u128>, u128, Outcome)> {
    report
        .attempts()
        .iter()
        .map(|a| {
            (
                a.remote().to_string(),
                a.started().as_millis(),
                a.connected().map(|c| c.as_millis()),
                a.ended().as_millis(),
                a.outcome(),
            )
        })
        .collect()
}

/// draft-ietf-happy-happyeyeballs-v3: the race includes the security handshake. Attempt 1
/// connects at 1 ms and its handshake never finishes (a path-MTU blackhole); staggering goes on
/// while it handshakes, so attempt 2 starts at exactly the attempt delay and wins when its
/// handshake ends; attempt 1's connected stream is closed at that moment.
#[tokio::test(start_paused = true)]
async fn a_handshake_blackhole_loses_to_the_next_attempt() {
    let dial = ScriptedDial::new(&[
        ("[2001:db8::1]:443", Script::Connect(MS)),
        ("192.0.2.1:443", Script::Connect(2 * MS)),
    ]);
    let handshake = ScriptedHandshake::new(&[
        ("[2001:db8::1]:443", Greeting::Hang),
        ("192.0.2.1:443", Greeting::Finish(3 * MS)),
    ]);
    let won = run_with(handshaking(
        &dial,
        handshake,
        config(),
        ["[2001:db8::1]:443", "192.0.2.1:443"],
    ))
    .await
    .expect("IPv4 finishes its handshake");
    assert_eq!(
        phases(&won.report),
        [
            ("[2001:db8::1]:443".into(), 0, Some(1), 255, Lost),
            (
                "192.0.2.1:443".into(),
                250,
                Some(252),
                255,
                Outcome::Connected
            ),
        ]
    );
    assert_eq!(won.stream.remote.to_string(), "192.0.2.1:443");
    // The blackholed attempt's stream was closed at the win; the winner's is still open.
    assert_eq!(dial.tally.closed.load(Ordering::SeqCst), 1);
    drop(won);
    assert_eq!(dial.tally.closed.load(Ordering::SeqCst), 2);
}

/// A failed handshake frees its slot at once, like a refused connect, and is reported as such
/// with its error.
#[tokio::test(start_paused = true)]
async fn a_failed_handshake_starts_the_next_attempt_at_once() {
    let dial = ScriptedDial::new(&[
        ("192.0.2.1:443", Script::Connect(MS)),
        ("192.0.2.2:443", Script::Connect(MS)),
    ]);
    let handshake = ScriptedHandshake::new(&[
        ("192.0.2.1:443", Greeting::Fail(10 * MS)),
        ("192.0.2.2:443", Greeting::Finish(MS)),
    ]);
    let won = run_with(handshaking(
        &dial,
        handshake,
        config(),
        ["192.0.2.1:443", "192.0.2.2:443"],
    ))
    .await
    .expect("the second finishes");
    assert_eq!(
        phases(&won.report),
        [
            (
                "192.0.2.1:443".into(),
                0,
                Some(1),
                11,
                Outcome::HandshakeFailed
            ),
            ("192.0.2.2:443".into(), 11, Some(12), 13, Outcome::Connected),
        ]
    );
    let failed = &won.report.attempts()[0];
    assert_eq!(
        failed.error().map(|e| e.to_string()).as_deref(),
        Some("bad certificate")
    );
}

/// The deadline interrupts a handshake in flight: the attempt is cancelled, its stream closed,
/// and the report keeps its connect instant.
#[tokio::test(start_paused = true)]
async fn the_deadline_interrupts_a_handshake() {
    let dial = ScriptedDial::new(&[("192.0.2.1:443", Script::Connect(MS))]);
    let mut config = config();
    config.timeout = Some(100 * MS);
    let error = run_with(handshaking(
        &dial,
        ScriptedHandshake::new(&[]),
        config,
        ["192.0.2.1:443"],
    ))
    .await
    .expect_err("the handshake never finishes");
    assert_eq!(error.kind(), ConnectErrorKind::TimedOut);
    assert_eq!(
        phases(error.report()),
        [("192.0.2.1:443".into(), 0, Some(1), 100, Cancelled)]
    );
    assert_eq!(dial.tally.closed.load(Ordering::SeqCst), 1);
}

/// The per-attempt timeout covers the handshake too, and frees the slot.
#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_covers_the_handshake() {
    let dial = ScriptedDial::new(&[
        ("192.0.2.1:443", Script::Connect(MS)),
        ("192.0.2.2:443", Script::Connect(MS)),
    ]);
    let handshake = ScriptedHandshake::new(&[("192.0.2.2:443", Greeting::Finish(MS))]);
    let mut config = config();
    config.attempt_timeout = Some(100 * MS);
    config.attempt_delay = 200 * MS;
    let won = run_with(handshaking(
        &dial,
        handshake,
        config,
        ["192.0.2.1:443", "192.0.2.2:443"],
    ))
    .await
    .expect("the second finishes");
    assert_eq!(
        phases(&won.report),
        [
            ("192.0.2.1:443".into(), 0, Some(1), 100, Outcome::TimedOut),
            (
                "192.0.2.2:443".into(),
                100,
                Some(101),
                102,
                Outcome::Connected
            ),
        ]
    );
}

/// History learns the handshake's winner, with its TCP connect time (what the attempt delay
/// races), not its handshake time: the next connect tries it first with a delay of 100 ms.
#[tokio::test(start_paused = true)]
async fn history_learns_the_handshake_winner_with_its_connect_time() {
    let history = Arc::new(History::new(16, Duration::from_secs(600)));
    let targets = ["[2001:db8::1]:443", "192.0.2.1:443"];
    let dial = ScriptedDial::new(&[
        ("[2001:db8::1]:443", Script::Connect(MS)),
        ("192.0.2.1:443", Script::Connect(5 * MS)),
    ]);
    let handshake = ScriptedHandshake::new(&[("192.0.2.1:443", Greeting::Finish(400 * MS))]);
    let race = |history: &Arc<History>| {
        let targets = targets.into_targets().expect("valid test targets");
        Race::with_handshake(
            dial.clone(),
            handshake.clone(),
            Arc::new(config()),
            targets,
            Some(history.clone()),
        )
    };
    let first = run_with(race(&history)).await.expect("IPv4 finishes");
    assert_eq!(first.report.elapsed(), 655 * MS);
    let second = run_with(race(&history)).await.expect("IPv4 finishes");
    // IPv4 first; IPv6 after the learned delay (twice 5 ms, raised to 100 ms), not 250 ms.
    assert_eq!(
        phases(&second.report),
        [
            ("192.0.2.1:443".into(), 0, Some(5), 405, Outcome::Connected),
            ("[2001:db8::1]:443".into(), 100, Some(101), 405, Lost),
        ]
    );
    assert_eq!(second.report.favoured(), Some(addr("192.0.2.1:443")));
}

async fn run_with(
    mut race: Race<ScriptedDial, ScriptedHandshake>,
) -> Result<Won<Stream>, ConnectError> {
    std::future::poll_fn(|cx| race.poll_race(cx)).await
}

// ---------------------------------------------------------------------------------------------
// NAT64 (RFC 8305 §7, RFC 7050) and the family switch
// ---------------------------------------------------------------------------------------------

/// After how long, and what (`Err`: the lookup fails); `None` never answers.
type CountedAnswer = (Duration, Option<Result<Vec<IpAddr>, ()>>);

/// Answers names from a fixed table after a delay (every time, unlike `ScriptedResolver`), and
/// counts every lookup by (name, family).
#[derive(Debug, Default)]
struct CountingResolver {
    answers: HashMap<(String, Family), CountedAnswer>,
    asked: Mutex<Vec<(String, Family)>>,
}

impl CountingResolver {
    fn answer(mut self, name: &str, family: Family, after: Duration, ips: &[&str]) -> Self {
        let ips = ips.iter().map(|ip| ip.parse().expect("test ip")).collect();
        self.answers
            .insert((name.to_owned(), family), (after, Some(Ok(ips))));
        self
    }

    fn fail(mut self, name: &str, family: Family, after: Duration) -> Self {
        self.answers
            .insert((name.to_owned(), family), (after, Some(Err(()))));
        self
    }

    fn asked(&self, name: &str, family: Family) -> usize {
        let asked = self.asked.lock().expect("not poisoned");
        asked
            .iter()
            .filter(|(n, f)| n == name && *f == family)
            .count()
    }
}

impl Resolve for Arc<CountingResolver> {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push((name.to_owned(), family));
        }
        let scripted = self.answers.get(&(name.to_owned(), family)).cloned();
        let name = name.to_owned();
        Box::pin(async move {
            match scripted {
                Some((after, Some(answer))) => {
                    tokio::time::sleep(after).await;
                    answer.map_err(|()| {
                        io::Error::new(io::ErrorKind::NotFound, format!("{name}: no answer"))
                    })
                }
                _ => std::future::pending().await,
            }
        })
    }
}

/// An IPv6-only host: no route to any IPv4 address.
fn ipv6_only_routes(_: Option<SocketAddr>, remote: SocketAddr) -> crate::local::Route {
    match remote {
        SocketAddr::V4(_) => crate::local::Route::None,
        SocketAddr::V6(_) => crate::local::Route::Via("2001:db8::100".parse().expect("ip")),
    }
}

/// A dual-stack host: a route everywhere.
fn dual_stack_routes(_: Option<SocketAddr>, remote: SocketAddr) -> crate::local::Route {
    let source = match remote {
        SocketAddr::V4(_) => "192.0.2.100",
        SocketAddr::V6(_) => "2001:db8::100",
    };
    crate::local::Route::Via(source.parse().expect("ip"))
}

const WELL_KNOWN_ANSWER: [&str; 2] = ["64:ff9b::c000:aa", "64:ff9b::c000:ab"];

fn nat64_config(resolver: &Arc<CountingResolver>, routes: crate::local::RouteProbe) -> Config {
    Config {
        sort_addresses: false,
        resolver: Arc::new(resolver.clone()),
        route_probe: routes,
        ..Config::default()
    }
}

/// RFC 8305 §7.1:
/// > […] the client SHOULD synthesize IPv6 addresses for the IPv4 address literal […] using
/// > the NAT64 prefix discovered per RFC 7050.
///
/// An IPv4 literal with no IPv4 route waits for the discovery (30 ms), then its synthesized
/// address is the one attempt; the report names the IPv4 address and the prefix.
#[tokio::test(start_paused = true)]
async fn an_ipv4_literal_is_synthesized_on_an_ipv6_only_host() {
    let resolver = Arc::new(CountingResolver::default().answer(
        "ipv4only.arpa",
        Family::V6,
        30 * MS,
        &WELL_KNOWN_ANSWER,
    ));
    let dial = ScriptedDial::new(&[
        ("[64:ff9b::c000:201]:80", Script::Connect(MS)),
        ("192.0.2.1:80", Script::Connect(MS)),
    ]);
    let config = nat64_config(&resolver, ipv6_only_routes);
    let won = run(race(&dial, config, "192.0.2.1:80"))
        .await
        .expect("the synthesized address connects");
    assert_eq!(
        timeline(&won.report),
        [row("[64:ff9b::c000:201]:80", 30, 31, Outcome::Connected)]
    );
    let synthesized = won.report.attempts()[0].nat64().expect("a NAT64 attempt");
    assert_eq!(synthesized.ipv4(), std::net::Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(synthesized.prefix(), crate::Nat64Prefix::WELL_KNOWN);
    assert_eq!(
        won.report.attempts()[0].to_string(),
        "[64:ff9b::c000:201]:80 (NAT64 192.0.2.1 via 64:ff9b::/96) connected at 31ms"
    );
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 1);
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 1);
}

/// HEv3 §8.1: host- and link-scoped IPv4 addresses are not synthesized, even with no IPv4
/// route: a link-local literal (169.254/16) and one in 0/8 are tried as they are, and no
/// prefix is asked for. (The routable `192.0.2.1`, last, shows the same host does synthesize.)
#[tokio::test(start_paused = true)]
async fn scoped_ipv4_addresses_are_never_synthesized() {
    let resolver = Arc::new(CountingResolver::default().answer(
        "ipv4only.arpa",
        Family::V6,
        30 * MS,
        &WELL_KNOWN_ANSWER,
    ));
    let dial = ScriptedDial::new(&[
        ("169.254.1.1:80", Script::Refuse(MS)),
        ("0.1.2.3:80", Script::Refuse(MS)),
    ]);
    let config = nat64_config(&resolver, ipv6_only_routes);
    let error = run(race(
        &dial,
        config.clone(),
        ["169.254.1.1:80", "0.1.2.3:80"],
    ))
    .await
    .expect_err("both refuse");
    assert_eq!(
        timeline(error.report()),
        [
            row("169.254.1.1:80", 0, 1, Outcome::Refused),
            row("0.1.2.3:80", 1, 2, Outcome::Refused),
        ]
    );
    assert!(error
        .report()
        .attempts()
        .iter()
        .all(|a| a.nat64().is_none()));
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 0);

    let dial = ScriptedDial::new(&[("[64:ff9b::c000:201]:80", Script::Connect(MS))]);
    let won = run(race(&dial, config, "192.0.2.1:80"))
        .await
        .expect("the routable address is synthesized");
    assert!(won.report.attempts()[0].nat64().is_some());
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 1);
}

/// RFC 8305 §7.1 applies only where IPv4 has no route: a dual-stack host dials the IPv4
/// address at once and never asks for `ipv4only.arpa`.
#[tokio::test(start_paused = true)]
async fn a_dual_stack_host_never_synthesizes() {
    let resolver = Arc::new(CountingResolver::default().answer(
        "ipv4only.arpa",
        Family::V6,
        Duration::ZERO,
        &WELL_KNOWN_ANSWER,
    ));
    // The same connect on an IPv6-only host asks for the prefix: the count below can see it.
    let dial = ScriptedDial::new(&[("[64:ff9b::c000:201]:80", Script::Connect(MS))]);
    let config = nat64_config(&resolver, ipv6_only_routes);
    run(race(&dial, config, "192.0.2.1:80"))
        .await
        .expect("the synthesized address connects");
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 1);
    let resolver = Arc::new(CountingResolver::default().answer(
        "ipv4only.arpa",
        Family::V6,
        Duration::ZERO,
        &WELL_KNOWN_ANSWER,
    ));
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Connect(MS))]);
    let won = run(race(
        &dial,
        nat64_config(&resolver, dual_stack_routes),
        "192.0.2.1:80",
    ))
    .await
    .expect("IPv4 connects");
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.1:80", 0, 1, Outcome::Connected)]
    );
    assert!(won.report.attempts()[0].nat64().is_none());
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 0);
}

/// A discovery that never answers, or fails late, costs nothing to a connect that has an
/// address it can use: IPv6 starts at 0 ms and wins at 5 ms, as it would with NAT64 off. The
/// held IPv4 address is reported as not tried.
#[tokio::test(start_paused = true)]
async fn a_slow_or_failed_discovery_does_not_slow_a_connect_that_does_not_need_it() {
    let hangs = Arc::new(CountingResolver::default());
    let fails = Arc::new(CountingResolver::default().fail("ipv4only.arpa", Family::V6, 900 * MS));
    for resolver in [hangs, fails] {
        let dial = ScriptedDial::new(&[("[2001:db8::1]:80", Script::Connect(5 * MS))]);
        let config = nat64_config(&resolver, ipv6_only_routes);
        let won = run(race(&dial, config, ["192.0.2.1:80", "[2001:db8::1]:80"]))
            .await
            .expect("IPv6 connects");
        assert_eq!(
            timeline(&won.report),
            [row("[2001:db8::1]:80", 0, 5, Outcome::Connected)]
        );
        assert_eq!(won.report.elapsed(), 5 * MS);
        assert_eq!(won.report.not_tried(), [addr("192.0.2.1:80")]);
        // The discovery was asked for: it was slow, not skipped.
        assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 1);
    }
}

/// With no NAT64 prefix found (the lookup failed, or named none), the IPv4 address is tried as
/// it is, as soon as that is known, and reports its own error.
#[tokio::test(start_paused = true)]
async fn with_no_prefix_the_ipv4_address_is_tried_as_it_is() {
    let failed = Arc::new(CountingResolver::default().fail("ipv4only.arpa", Family::V6, 20 * MS));
    let none = Arc::new(CountingResolver::default().answer(
        "ipv4only.arpa",
        Family::V6,
        20 * MS,
        &["2001:db8::1"],
    ));
    for resolver in [failed, none] {
        let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Refuse(MS))]);
        let config = nat64_config(&resolver, ipv6_only_routes);
        let error = run(race(&dial, config, "192.0.2.1:80"))
            .await
            .expect_err("refused");
        assert_eq!(
            timeline(error.report()),
            [row("192.0.2.1:80", 20, 21, Outcome::Refused)]
        );
        assert!(error.report().attempts()[0].nat64().is_none());
    }
}

/// RFC 7050 §3: one discovery at a time per connector. Two connects at once share it; a later
/// one uses the cached prefix with no wait; after the cache's time (10 minutes) it is asked
/// again.
#[tokio::test(start_paused = true)]
async fn discovery_is_shared_and_cached() {
    let resolver = Arc::new(CountingResolver::default().answer(
        "ipv4only.arpa",
        Family::V6,
        30 * MS,
        &WELL_KNOWN_ANSWER,
    ));
    let mut config = nat64_config(&resolver, ipv6_only_routes);
    config.nat64_discovery = Some(Arc::new(Discovery::new(
        crate::Nat64::Discover,
        config.resolver.clone(),
    )));
    let dial = ScriptedDial::new(&[
        ("[64:ff9b::c000:201]:80", Script::Connect(MS)),
        ("[64:ff9b::c000:202]:80", Script::Connect(MS)),
    ]);
    let (one, two) = tokio::join!(
        run(race(&dial, config.clone(), "192.0.2.1:80")),
        run(race(&dial, config.clone(), "192.0.2.2:80")),
    );
    for won in [one, two] {
        assert_eq!(won.expect("connects").report.elapsed(), 31 * MS);
    }
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 1);
    let cached = run(race(&dial, config.clone(), "192.0.2.1:80"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&cached.report),
        [row("[64:ff9b::c000:201]:80", 0, 1, Outcome::Connected)]
    );
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 1);
    tokio::time::advance(crate::nat64::FOUND_TTL).await;
    let expired = run(race(&dial, config, "192.0.2.1:80"))
        .await
        .expect("connects");
    assert_eq!(expired.report.elapsed(), 31 * MS);
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 2);
}

/// Fails every dial with "network unreachable", as a NAT64 prefix that is no longer routed does.
#[derive(Clone, Debug)]
struct UnreachableDial;

impl Dial for UnreachableDial {
    type Stream = Stream;
    type Future = std::future::Ready<io::Result<Stream>>;

    fn dial(&self, _: Pair) -> Self::Future {
        std::future::ready(Err(io::Error::from(io::ErrorKind::NetworkUnreachable)))
    }
}

/// A synthesized attempt that finds no route to its prefix makes the connector forget the
/// prefix: the next connect discovers it again instead of using the cached one.
#[tokio::test(start_paused = true)]
async fn an_unreachable_prefix_is_discovered_again() {
    let resolver = Arc::new(CountingResolver::default().answer(
        "ipv4only.arpa",
        Family::V6,
        30 * MS,
        &WELL_KNOWN_ANSWER,
    ));
    let mut config = nat64_config(&resolver, ipv6_only_routes);
    config.nat64_discovery = Some(Arc::new(Discovery::new(
        crate::Nat64::Discover,
        config.resolver.clone(),
    )));
    let config = Arc::new(config);
    let targets = || "192.0.2.1:80".into_targets().expect("valid");
    let mut first = Race::new(UnreachableDial, config.clone(), targets(), None);
    let error = std::future::poll_fn(|cx| first.poll_race(cx))
        .await
        .expect_err("unreachable");
    assert_eq!(error.report().attempts()[0].outcome(), Outcome::Unreachable);
    assert!(error.report().attempts()[0].nat64().is_some());
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 1);
    let mut second = Race::new(UnreachableDial, config, targets(), None);
    let error = std::future::poll_fn(|cx| second.poll_race(cx))
        .await
        .expect_err("unreachable");
    // Waited for a fresh discovery: 30 ms, not 0.
    assert_eq!(error.report().elapsed(), 30 * MS);
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 2);
}

/// The family switch: with IPv6 only, the A lookup is never sent and an IPv4 literal (an
/// IPv4-mapped one too) is skipped with its reason, even where NAT64 would synthesize; with
/// IPv4 only, the same for AAAA and IPv6, and nothing is synthesized (that would be IPv6) even
/// with no IPv4 route: the IPv4 address is dialed as it is.
#[tokio::test(start_paused = true)]
async fn one_family_only() {
    for (family, winner) in [
        (crate::IpFamily::V6Only, "[2001:db8::1]:80"),
        (crate::IpFamily::V4Only, "192.0.2.1:80"),
    ] {
        let resolver = Arc::new(
            CountingResolver::default()
                .answer("db.example", Family::V6, MS, &["2001:db8::1"])
                .answer("db.example", Family::V4, MS, &["192.0.2.1"])
                .answer("ipv4only.arpa", Family::V6, MS, &WELL_KNOWN_ANSWER),
        );
        let dial = ScriptedDial::new(&[
            ("[2001:db8::1]:80", Script::Connect(MS)),
            ("192.0.2.1:80", Script::Connect(MS)),
        ]);
        let mut config = nat64_config(&resolver, ipv6_only_routes);
        config.ip_family = family;
        let other_literal = match family {
            crate::IpFamily::V6Only => "[::ffff:192.0.2.9]:80",
            _ => "[2001:db8::9]:80",
        };
        let won = run(race(&dial, config, ["db.example:80", other_literal]))
            .await
            .expect("connects");
        assert_eq!(
            timeline(&won.report),
            [row(winner, 1, 2, Outcome::Connected)]
        );
        let excluded = match family {
            crate::IpFamily::V6Only => Family::V4,
            _ => Family::V6,
        };
        assert_eq!(resolver.asked("db.example", excluded), 0);
        assert_eq!(resolver.asked("db.example", excluded.other()), 1);
        assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 0);
        let skipped = won.report.skipped();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].remote(), addr(other_literal));
        assert_eq!(skipped[0].reason(), &SkipReason::OtherFamily(excluded));
    }
}

/// The address filter judges a synthesized address by the IPv4 address it stands for, under
/// a configured network-specific prefix too: a synthesized 192.168.0.1 is refused under
/// `deny_non_public`, nothing is dialed, and the refusal names the IPv4 address and prefix.
#[tokio::test(start_paused = true)]
async fn synthesized_addresses_are_filtered_by_their_ipv4_address() {
    let resolver = Arc::new(CountingResolver::default());
    let prefix: crate::Nat64Prefix = "2001:db8:122:344::/64".parse().expect("prefix");
    let dial = ScriptedDial::new(&[]);
    let mut config = nat64_config(&resolver, ipv6_only_routes);
    config.nat64 = crate::Nat64::Prefix(prefix);
    config.filter = AddressFilter::deny_non_public();
    // Loopback and link-local addresses are never synthesized (HEv3 §8.1), so the filter is
    // shown on a private 192.168.0.1, which an IPv6-only host has no route to. Nothing is sent:
    // the dial is scripted, and the address is refused before it.
    let error = run(race(&dial, config, "192.168.0.1:80"))
        .await
        .expect_err("denied");
    assert_eq!(error.kind(), ConnectErrorKind::Denied);
    let skipped = &error.report().skipped()[0];
    assert_eq!(
        skipped.remote().to_string(),
        "[2001:db8:122:344:c0:a800:100:0]:80"
    );
    assert_eq!(
        skipped.to_string(),
        "[2001:db8:122:344:c0:a800:100:0]:80 denied (NAT64 2001:db8:122:344::/64 \
         192.168.0.1: private (RFC 1918))"
    );
    assert_eq!(dial.tally.dials.load(Ordering::SeqCst), 0);
    // Configured, the prefix is not discovered.
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 0);
}

/// RFC 8305 §7.1 also covers names with A records only when the network's DNS64 did not
/// synthesize for them: the A answer's address, with no IPv4 route, is synthesized too.
#[tokio::test(start_paused = true)]
async fn a_name_with_a_records_only_is_synthesized() {
    let resolver = Arc::new(
        CountingResolver::default()
            .answer("v4only.example", Family::V6, MS, &[])
            .answer("v4only.example", Family::V4, MS, &["192.0.2.1"])
            .answer("ipv4only.arpa", Family::V6, 10 * MS, &WELL_KNOWN_ANSWER),
    );
    let dial = ScriptedDial::new(&[("[64:ff9b::c000:201]:80", Script::Connect(MS))]);
    let config = nat64_config(&resolver, ipv6_only_routes);
    let won = run(race(&dial, config, "v4only.example:80"))
        .await
        .expect("the synthesized address connects");
    // The A answer at 1 ms asks for the prefix, which comes 10 ms later.
    assert_eq!(
        timeline(&won.report),
        [row("[64:ff9b::c000:201]:80", 11, 12, Outcome::Connected)]
    );
    let attempt = &won.report.attempts()[0];
    assert_eq!(attempt.host(), Some("v4only.example"));
    assert_eq!(
        attempt.nat64().map(|s| s.ipv4().to_string()).as_deref(),
        Some("192.0.2.1")
    );
}

/// "No NAT64 here" is remembered for 30 seconds: connects in that time try IPv4 as it is at
/// once, without asking again; after it, the next connect asks.
#[tokio::test(start_paused = true)]
async fn no_prefix_is_remembered_for_a_short_time() {
    let resolver =
        Arc::new(CountingResolver::default().answer("ipv4only.arpa", Family::V6, 20 * MS, &[]));
    let mut config = nat64_config(&resolver, ipv6_only_routes);
    config.nat64_discovery = Some(Arc::new(Discovery::new(
        crate::Nat64::Discover,
        config.resolver.clone(),
    )));
    let dial = ScriptedDial::new(&[("192.0.2.1:80", Script::Refuse(MS))]);
    let started = |report: &Report| report.attempts()[0].started();
    let first = run(race(&dial, config.clone(), "192.0.2.1:80"))
        .await
        .expect_err("refused");
    assert_eq!(started(first.report()), 20 * MS);
    tokio::time::advance(crate::nat64::NOT_FOUND_TTL - 100 * MS).await;
    let second = run(race(&dial, config.clone(), "192.0.2.1:80"))
        .await
        .expect_err("refused");
    assert_eq!(started(second.report()), Duration::ZERO);
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 1);
    tokio::time::advance(100 * MS).await;
    let third = run(race(&dial, config, "192.0.2.1:80"))
        .await
        .expect_err("refused");
    assert_eq!(started(third.report()), 20 * MS);
    assert_eq!(resolver.asked("ipv4only.arpa", Family::V6), 2);
}

/// The race's state is one allocation per connect. Past 1,016 bytes it leaves glibc's fast
/// (tcache) sizes, and malloc's own work per connect triples; at 1,224 bytes that cost a
/// loopback connect about 1 % (README, Performance).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[test]
fn the_race_state_stays_in_the_allocators_fast_sizes() {
    let size = std::mem::size_of::<Race<crate::dial::TcpDial>>();
    assert!(size <= 1016, "the race state is {size} bytes");
}
