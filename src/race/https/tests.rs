//! Happy Eyeballs v3 with HTTPS records, on Tokio's paused clock: a scripted resolver answers
//! A, AAAA and HTTPS after exact delays, scripted dials connect or refuse; every instant is exact.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use crate::config::Config;
// The race tests' exact rows: (remote, started ms, ended ms, outcome).
use crate::dial::Dial;
use crate::error::{ConnectError, ConnectErrorKind};
use crate::plan::Pair;
use crate::race::tests::{row, timeline};
use crate::race::{Race, Won};
use crate::report::Outcome;
use crate::resolve::{Family, Resolve, Resolving, ResolvingHttps};
use crate::svcb::ClientSupport;
use crate::target::IntoTargets;
use crate::HttpsRecord;

use ConnectErrorKind::AllFailed;
use Outcome::{Connected, HandshakeFailed, Lost, Refused};

const MS: Duration = Duration::from_millis(1);

/// A scripted answer: after how long, and what (`None`: never).
type Scripted<T> = (Duration, Option<io::Result<T>>);

type AddressScripts = HashMap<(String, Family), Scripted<Vec<IpAddr>>>;

#[derive(Debug, Default)]
struct Resolver {
    addresses: Mutex<AddressScripts>,
    https: Mutex<HashMap<String, Scripted<Vec<HttpsRecord>>>>,
    /// The HTTPS query names asked, in order.
    asked: Arc<Mutex<Vec<String>>>,
    /// The address lookups asked, in order.
    asked_addresses: Arc<Mutex<Vec<(String, Family)>>>,
    /// Held by every HTTPS lookup until it is dropped: counts the lookups alive.
    live: Arc<()>,
}

impl Resolver {
    fn answer(self, name: &str, family: Family, after: Duration, ips: &[&str]) -> Self {
        let ips = ips.iter().map(|ip| ip.parse().expect("test ip")).collect();
        if let Ok(mut addresses) = self.addresses.lock() {
            addresses.insert((name.to_owned(), family), (after, Some(Ok(ips))));
        }
        self
    }

    fn https(self, name: &str, after: Duration, records: Vec<HttpsRecord>) -> Self {
        if let Ok(mut https) = self.https.lock() {
            https.insert(name.to_owned(), (after, Some(Ok(records))));
        }
        self
    }
}

async fn scripted<T>(answer: Option<Scripted<T>>) -> io::Result<T> {
    match answer {
        Some((after, Some(answer))) => {
            tokio::time::sleep(after).await;
            answer
        }
        _ => std::future::pending().await,
    }
}

impl Resolve for Resolver {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        if let Ok(mut asked) = self.asked_addresses.lock() {
            asked.push((name.to_owned(), family));
        }
        let answer = self
            .addresses
            .lock()
            .ok()
            .and_then(|mut answers| answers.remove(&(name.to_owned(), family)));
        Box::pin(scripted(answer))
    }

    fn resolve_https(&self, name: &str) -> ResolvingHttps {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(name.to_owned());
        }
        let answer = self
            .https
            .lock()
            .ok()
            .and_then(|mut answers| answers.remove(name));
        let live = Arc::clone(&self.live);
        Box::pin(async move {
            let _live = live;
            scripted(answer).await
        })
    }
}

/// Dials that connect or refuse after a delay, per remote; any other remote hangs.
#[derive(Clone, Debug, Default)]
struct Dials {
    scripts: Arc<HashMap<SocketAddr, (Duration, bool)>>,
    /// How many dials were made.
    made: Arc<AtomicUsize>,
}

impl Dials {
    fn new(scripts: &[(&str, Duration, bool)]) -> Dials {
        let scripts = scripts
            .iter()
            .map(|(remote, after, connects)| {
                (remote.parse().expect("test address"), (*after, *connects))
            })
            .collect();
        Dials {
            scripts: Arc::new(scripts),
            made: Arc::default(),
        }
    }
}

impl Dial for Dials {
    type Stream = SocketAddr;
    type Future = Pin<Box<dyn Future<Output = io::Result<SocketAddr>> + Send>>;

    fn dial(&self, pair: Pair) -> Self::Future {
        self.made.fetch_add(1, Ordering::SeqCst);
        let script = self.scripts.get(&pair.remote).copied();
        Box::pin(async move {
            match script {
                Some((after, connects)) => {
                    tokio::time::sleep(after).await;
                    if connects {
                        Ok(pair.remote)
                    } else {
                        Err(io::Error::from(io::ErrorKind::ConnectionRefused))
                    }
                }
                None => std::future::pending().await,
            }
        })
    }
}

fn race<M>(dials: &Dials, resolver: Resolver, targets: impl IntoTargets<M>) -> Race<Dials> {
    race_with(dials, resolver, targets, ClientSupport::default())
}

fn race_with<M>(
    dials: &Dials,
    resolver: Resolver,
    targets: impl IntoTargets<M>,
    client: ClientSupport,
) -> Race<Dials> {
    race_on(dials, resolver, targets, client, |_| {})
}

/// A race with the test's configuration, changed by `tweak`.
fn race_on<M>(
    dials: &Dials,
    resolver: Resolver,
    targets: impl IntoTargets<M>,
    client: ClientSupport,
    tweak: impl FnOnce(&mut Config),
) -> Race<Dials> {
    let mut config = test_config(resolver);
    tweak(&mut config);
    let targets = targets.into_targets().expect("valid test targets");
    let mut race = Race::new(dials.clone(), Arc::new(config), targets, None);
    race.ask_https_records(client);
    race
}

/// The tests' configuration: caller's order, no NAT64, a 10 s deadline, `resolver`.
fn test_config(resolver: Resolver) -> Config {
    Config {
        sort_addresses: false,
        // No route lookups: the documentation addresses stay as they are on any host.
        nat64: crate::Nat64::Off,
        // A race that would wait forever fails instead of hanging the test.
        timeout: Some(Duration::from_secs(10)),
        resolver: Arc::new(resolver),
        ..Config::default()
    }
}

async fn run(mut race: Race<Dials>) -> Result<Won<SocketAddr>, ConnectError> {
    std::future::poll_fn(|cx| race.poll_race(cx)).await
}

/// HEv3 §4: the HTTPS answer is in before any address: the race starts with the first address
/// (AAAA, 20 ms), not before, and the HTTPS query was asked for the name itself on port 443.
#[tokio::test(start_paused = true)]
async fn https_before_the_addresses_starts_on_the_first_address() {
    let resolver = Resolver::default()
        .https("svc.example", 5 * MS, vec![HttpsRecord::new(1, ".")])
        .answer("svc.example", Family::V6, 20 * MS, &["2001:db8::1"])
        .answer("svc.example", Family::V4, 20 * MS, &["192.0.2.1"]);
    let asked = resolver.asked.clone();
    let dials = Dials::new(&[("[2001:db8::1]:443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("[2001:db8::1]:443", 20, 21, Connected)]
    );
    assert_eq!(*asked.lock().unwrap(), ["svc.example"]);
}

/// HEv3 §4: AAAA at 0 ms, HTTPS at 30 ms (inside the 50 ms resolution delay): the race waits
/// for the HTTPS answer and starts at 30 ms; a port other than 443 asks `_PORT._https.NAME`.
#[tokio::test(start_paused = true)]
async fn https_after_the_addresses_is_waited_for() {
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .answer("svc.example", Family::V4, Duration::ZERO, &[])
        .https(
            "_8443._https.svc.example",
            30 * MS,
            vec![HttpsRecord::new(1, ".")],
        );
    let asked = resolver.asked.clone();
    let dials = Dials::new(&[("[2001:db8::1]:8443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:8443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("[2001:db8::1]:8443", 30, 31, Connected)]
    );
    assert_eq!(*asked.lock().unwrap(), ["_8443._https.svc.example"]);
}

/// HEv3 §4: an HTTPS answer that never comes holds the race back by the resolution delay
/// (50 ms after the first address) and no more; the addresses are then used as without it.
#[tokio::test(start_paused = true)]
async fn https_never_answering_costs_the_resolution_delay_only() {
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, 10 * MS, &["2001:db8::1"])
        .answer("svc.example", Family::V4, 10 * MS, &["192.0.2.1"]);
    let dials = Dials::new(&[("[2001:db8::1]:443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("[2001:db8::1]:443", 60, 61, Connected)]
    );
}

/// HEv3 §4: hints count as addresses: with the HTTPS answer in at 0 ms and no A yet, the
/// first hint is tried at once; when the A answer comes (100 ms) it replaces the untried hint,
/// so the second attempt (250 ms) goes to the real address, and the stale hint never.
#[tokio::test(start_paused = true)]
async fn hints_count_until_real_answers_replace_them() {
    let record = HttpsRecord::new(1, ".")
        .with_ipv4_hints(["192.0.2.98".parse().unwrap(), "192.0.2.99".parse().unwrap()]);
    let resolver = Resolver::default()
        .https("svc.example", Duration::ZERO, vec![record])
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("svc.example", Family::V4, 100 * MS, &["192.0.2.1"]);
    let dials = Dials::new(&[("192.0.2.1:443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("192.0.2.98:443", 0, 251, Lost),
            row("192.0.2.1:443", 250, 251, Connected),
        ]
    );
    assert!(
        won.report.not_tried().is_empty(),
        "{:?}",
        won.report.not_tried()
    );
}

/// RFC 9460 §2.4.3 and HEv3: services are tried by priority, lowest first, each at its own
/// port (a `port` override), and the origin's own addresses last; the service on another
/// name is looked up for its addresses.
#[tokio::test(start_paused = true)]
async fn priority_groups_and_port_overrides_go_in_order() {
    let resolver = Resolver::default()
        .https(
            "svc.example",
            Duration::ZERO,
            vec![
                HttpsRecord::new(2, ".").with_port(8443),
                HttpsRecord::new(1, "pool.example"),
            ],
        )
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .answer("pool.example", Family::V6, 5 * MS, &[])
        .answer("pool.example", Family::V4, 5 * MS, &["192.0.2.2"]);
    let dials = Dials::new(&[
        ("192.0.2.2:443", MS, false),
        ("192.0.2.1:8443", MS, false),
        ("192.0.2.1:443", MS, true),
    ]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("192.0.2.2:443", 5, 6, Refused),
            row("192.0.2.1:8443", 6, 7, Refused),
            row("192.0.2.1:443", 7, 8, Connected),
        ]
    );
    // The origin's name stays each attempt's host (TLS checks it), whichever name resolved.
    assert!(won
        .report
        .attempts()
        .iter()
        .all(|a| a.host() == Some("svc.example")));
}

/// RFC 9460 §7.1: a record that offers only h3 (no-default-alpn) is skipped: its hint is never
/// dialed, and the next record is used.
#[tokio::test(start_paused = true)]
async fn an_h3_only_record_is_skipped() {
    let h3_only = HttpsRecord::new(1, ".")
        .with_alpn(["h3"])
        .with_no_default_alpn()
        .with_port(9443)
        .with_ipv4_hints(["192.0.2.7".parse().unwrap()]);
    let resolver = Resolver::default()
        .https(
            "svc.example",
            Duration::ZERO,
            vec![h3_only, HttpsRecord::new(2, ".")],
        )
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("svc.example", Family::V4, 10 * MS, &["192.0.2.1"]);
    let dials = Dials::new(&[("192.0.2.1:443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.1:443", 10, 11, Connected)]
    );
    let skipped: Vec<String> = won
        .report
        .skipped_https_records()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        skipped,
        [
            "svc.example HTTPS 1 . alpn=h3 no-default-alpn port=9443 ipv4hint=192.0.2.7: \
          alpn h3 offers nothing this client speaks over TCP"
        ]
    );
}

/// RFC 9460 §2.4.2: AliasMode is followed (here two hops) to the ServiceMode records, whose "."
/// target is the alias target's own addresses.
#[tokio::test(start_paused = true)]
async fn an_alias_chain_is_followed() {
    let resolver = Resolver::default()
        .https(
            "svc.example",
            Duration::ZERO,
            vec![HttpsRecord::new(0, "cdn.example")],
        )
        .https(
            "cdn.example",
            2 * MS,
            vec![HttpsRecord::new(0, "edge.example")],
        )
        .https("edge.example", 2 * MS, vec![HttpsRecord::new(1, ".")])
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .answer("edge.example", Family::V6, MS, &[])
        .answer("edge.example", Family::V4, MS, &["192.0.2.3"]);
    let asked = Arc::clone(&resolver.asked);
    let dials = Dials::new(&[("192.0.2.3:443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.3:443", 5, 6, Connected)]
    );
    assert_eq!(
        *asked.lock().unwrap(),
        ["svc.example", "cdn.example", "edge.example"]
    );
}

/// RFC 9460 §2.4.2: an alias loop is caught at once; the connect goes on with the origin's
/// addresses as if there were no HTTPS records (no wait for the resolution delay).
#[tokio::test(start_paused = true)]
async fn an_alias_loop_falls_back_to_the_origin() {
    let resolver = Resolver::default()
        .https(
            "svc.example",
            Duration::ZERO,
            vec![HttpsRecord::new(0, "a.example")],
        )
        .https(
            "a.example",
            3 * MS,
            vec![HttpsRecord::new(0, "SVC.example.")],
        )
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"]);
    let asked = Arc::clone(&resolver.asked);
    let dials = Dials::new(&[("192.0.2.1:443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.1:443", 3, 4, Connected)]
    );
    assert_eq!(*asked.lock().unwrap(), ["svc.example", "a.example"]);
    let skipped = won.report.skipped_https_records();
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (skipped[0].name(), skipped[0].record(), skipped[0].reason()),
        (
            "a.example",
            "0 svc.example",
            "AliasMode loop back to svc.example"
        )
    );
}

/// Without the mark, no HTTPS query is made at all (a plain TCP connect).
#[tokio::test(start_paused = true)]
async fn no_https_query_unless_asked() {
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"]);
    let asked = Arc::clone(&resolver.asked);
    let dials = Dials::new(&[("192.0.2.1:443", MS, true)]);
    let config = Config {
        sort_addresses: false,
        resolver: Arc::new(resolver),
        ..Config::default()
    };
    let targets = "svc.example:443".into_targets().expect("valid");
    let race = Race::new(dials.clone(), Arc::new(config), targets, None);
    let won = run(race).await.expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.1:443", 0, 1, Connected)]
    );
    // Seen present in the other tests: the same resolver records every HTTPS query.
    assert!(asked.lock().unwrap().is_empty());
}

/// The HTTPS record of each attempt, as `(port, ALPN, ECH)`; `None` for a plain A/AAAA one.
type Shaped = Option<(u16, Vec<String>, Option<Vec<u8>>)>;

fn shaped(report: &crate::Report) -> Vec<Shaped> {
    report
        .attempts()
        .iter()
        .map(|attempt| {
            attempt.https().map(|via| {
                let alpn = via.alpn().iter();
                let alpn = alpn.map(|id| String::from_utf8_lossy(id).into_owned());
                (via.port(), alpn.collect(), via.ech().map(<[u8]>::to_vec))
            })
        })
        .collect()
}

fn alpn(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

/// RFC 8305 §6 (kept by HEv3), with an HTTPS answer that comes after racing began:
/// > If an address is added to the list, it should be sorted into the list of addresses not
/// > yet attempted according to the rules above
///
/// The answer (100 ms) is past the resolution delay (racing began at 50 ms) while the first
/// attempt hangs: that attempt goes on, and the record's endpoint (its port, its ALPN) is the
/// next attempt, at 300 ms, one attempt delay after the first, as any late address would be.
#[tokio::test(start_paused = true)]
async fn a_late_answer_is_tried_next_on_the_attempt_delay() {
    let record = HttpsRecord::new(1, ".")
        .with_alpn(["h2"])
        .with_no_default_alpn()
        .with_port(8443);
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .answer("svc.example", Family::V4, Duration::ZERO, &[])
        .https("svc.example", 100 * MS, vec![record]);
    let dials = Dials::new(&[("[2001:db8::1]:8443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("[2001:db8::1]:443", 50, 301, Lost),
            row("[2001:db8::1]:8443", 300, 301, Connected),
        ]
    );
    assert_eq!(
        shaped(&won.report),
        [None, Some((8443, alpn(&["h2"]), None))]
    );
    assert_eq!(won.pair.remote.to_string(), "[2001:db8::1]:8443");
}

/// RFC 9460 §5.1:
/// > If a SVCB record is consistent with an active or in-progress connection C, the client
/// > MAY prefer that record and use C as its connection.
///
/// A late answer whose service names an address already attempted (a hint, same port) does
/// not dial it again; the attempt in flight goes on, and the record's other hint is next.
#[tokio::test(start_paused = true)]
async fn a_late_answer_does_not_redial_an_attempted_address() {
    let record = HttpsRecord::new(1, "pool.example").with_ipv6_hints([
        "2001:db8::1".parse().expect("test ip"),
        "2001:db8::2".parse().expect("test ip"),
    ]);
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .answer("svc.example", Family::V4, Duration::ZERO, &[])
        .https("svc.example", 100 * MS, vec![record]);
    let dials = Dials::new(&[("[2001:db8::2]:443", MS, true)]);
    let made = Arc::clone(&dials.made);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("[2001:db8::1]:443", 50, 301, Lost),
            row("[2001:db8::2]:443", 300, 301, Connected),
        ]
    );
    assert_eq!(made.load(Ordering::SeqCst), 2);
    let via = won.report.attempts()[1].https().expect("from the record");
    assert_eq!((via.target(), via.is_hint()), ("pool.example", true));
    assert!(won.report.not_tried().is_empty(), "{:?}", won.report);
}

/// RFC 9460 §7.1 and HEv3: an origin address not yet attempted when a late answer comes is
/// covered by the record on the origin at its port, so its attempt offers the record's ALPN
/// (and carries its ECH config list), as if the answer had come in time.
#[tokio::test(start_paused = true)]
async fn a_late_answer_gives_an_untried_origin_address_its_alpn() {
    let record = HttpsRecord::new(1, ".")
        .with_alpn(["h2"])
        .with_no_default_alpn()
        .with_ech(vec![0xfe, 0x0d]);
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .https("svc.example", 100 * MS, vec![record]);
    let dials = Dials::new(&[("192.0.2.1:443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("[2001:db8::1]:443", 50, 301, Lost),
            row("192.0.2.1:443", 300, 301, Connected),
        ]
    );
    // The first attempt started without the record and keeps its plain ClientHello.
    assert_eq!(
        shaped(&won.report),
        [None, Some((443, alpn(&["h2"]), Some(vec![0xfe, 0x0d])))]
    );
}

/// HEv3 §4 ("never slow a connect beyond the resolution delay", issue 17): the only attempt is
/// refused at 60 ms while the HTTPS answer is still out (it would come at 200 ms): the connect
/// fails then, not when the answer comes. The lookup is dropped with the connect, so its answer
/// reaches nothing: no dial, no panic, and polling again opens nothing.
#[tokio::test(start_paused = true)]
async fn a_late_answer_after_the_connect_failed_changes_nothing() {
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .answer("svc.example", Family::V4, Duration::ZERO, &[])
        .https(
            "svc.example",
            200 * MS,
            vec![HttpsRecord::new(1, ".").with_port(8443)],
        );
    let live = Arc::clone(&resolver.live);
    let dials = Dials::new(&[("[2001:db8::1]:443", 10 * MS, false)]);
    let made = Arc::clone(&dials.made);
    let mut race = race(&dials, resolver, "svc.example:443");
    std::future::poll_fn(|cx| {
        assert!(race.poll_race(cx).is_pending());
        Poll::Ready(())
    })
    .await;
    // Held by the resolver, this test, and the lookup.
    assert_eq!(Arc::strong_count(&live), 3, "the HTTPS lookup is out");
    let error = std::future::poll_fn(|cx| race.poll_race(cx))
        .await
        .expect_err("the only address is refused");
    assert_eq!(error.kind(), AllFailed);
    assert_eq!(
        timeline(error.report()),
        [row("[2001:db8::1]:443", 50, 60, Refused)]
    );
    assert_eq!(error.report().elapsed(), 60 * MS);
    assert_eq!(Arc::strong_count(&live), 2, "the HTTPS lookup is dropped");
    tokio::time::sleep(200 * MS).await;
    let again = std::future::poll_fn(|cx| race.poll_race(cx)).await;
    assert_eq!(
        again.expect_err("finished").kind(),
        ConnectErrorKind::PolledAfterCompletion
    );
    assert_eq!(made.load(Ordering::SeqCst), 1);
}

/// RFC 9460 §7.1.1 (`no-default-alpn` without `alpn` is not self-consistent): a late answer
/// whose only record is unusable is reported as a timely one would be, and changes nothing:
/// the origin's next address is tried as it is, the record's port and hint never.
#[tokio::test(start_paused = true)]
async fn a_late_malformed_answer_is_reported_and_changes_nothing() {
    let record = HttpsRecord::new(1, ".")
        .with_no_default_alpn()
        .with_port(8443)
        .with_ipv4_hints(["192.0.2.9".parse().expect("test ip")]);
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .https("svc.example", 100 * MS, vec![record]);
    let dials = Dials::new(&[("192.0.2.1:443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("[2001:db8::1]:443", 50, 301, Lost),
            row("192.0.2.1:443", 300, 301, Connected),
        ]
    );
    assert_eq!(shaped(&won.report), [None, None]);
    let skipped: Vec<String> = won
        .report
        .skipped_https_records()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        skipped,
        [
            "svc.example HTTPS 1 . no-default-alpn port=8443 ipv4hint=192.0.2.9: \
          no-default-alpn without alpn"
        ]
    );
}

/// RFC 8305 §6 with HEv3's groups: a late answer (here reached through an AliasMode hop,
/// 100 ms then 110 ms) sorts its service before the origin's address not yet attempted, which
/// goes last, as the origin's addresses do in a timely answer.
#[tokio::test(start_paused = true)]
async fn a_late_answer_goes_before_the_origins_untried_addresses() {
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &["2001:db8::1"])
        .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .https(
            "svc.example",
            100 * MS,
            vec![HttpsRecord::new(0, "cdn.example")],
        )
        .https(
            "cdn.example",
            10 * MS,
            vec![HttpsRecord::new(1, ".").with_ipv4_hints(["192.0.2.5".parse().expect("ip")])],
        );
    let asked = Arc::clone(&resolver.asked);
    let dials = Dials::new(&[("192.0.2.1:443", MS, true)]);
    let won = run(race(&dials, resolver, "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("[2001:db8::1]:443", 50, 551, Lost),
            row("192.0.2.5:443", 300, 551, Lost),
            row("192.0.2.1:443", 550, 551, Connected),
        ]
    );
    assert_eq!(*asked.lock().unwrap(), ["svc.example", "cdn.example"]);
    let via = won.report.attempts()[1].https().expect("from the record");
    assert_eq!((via.target(), via.is_hint()), ("cdn.example", true));
    assert!(won.report.attempts()[2].https().is_none());
}

/// RFC 9848: with a handshake that can use ECH, a name whose every record has `ech` is not
/// connected to at its own addresses without it: the service (port 8443) is refused, and the
/// origin's port 443 is never dialed. The same records for a client without ECH keep the
/// origin as the last resort (the contrast: that fallback is there to be left out).
#[tokio::test(start_paused = true)]
async fn with_ech_every_record_having_ech_leaves_out_the_fallback() {
    let zone = || {
        Resolver::default()
            .https(
                "svc.example",
                Duration::ZERO,
                vec![HttpsRecord::new(1, ".")
                    .with_port(8443)
                    .with_ech(vec![0xfe, 0x0d])],
            )
            .answer("svc.example", Family::V6, Duration::ZERO, &[])
            .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
    };
    let script = [("192.0.2.1:8443", MS, false), ("192.0.2.1:443", MS, true)];

    let dials = Dials::new(&script);
    let without = run(race(&dials, zone(), "svc.example:443"))
        .await
        .expect("the fallback connects");
    assert_eq!(
        timeline(&without.report),
        [
            row("192.0.2.1:8443", 0, 1, Refused),
            row("192.0.2.1:443", 1, 2, Connected),
        ]
    );

    let dials = Dials::new(&script);
    let with_ech = ClientSupport {
        ech: true,
        ..ClientSupport::default()
    };
    let error = run(race_with(&dials, zone(), "svc.example:443", with_ech))
        .await
        .expect_err("no fallback without ECH");
    assert_eq!(error.kind(), AllFailed);
    assert_eq!(
        timeline(error.report()),
        [row("192.0.2.1:8443", 0, 1, Refused)]
    );
    assert_eq!(dials.made.load(Ordering::SeqCst), 1);
    // The fallback left out is reported, as a late answer's would be.
    let skipped: Vec<_> = error
        .report()
        .skipped()
        .iter()
        .map(|skipped| (skipped.remote().to_string(), skipped.reason().as_str()))
        .collect();
    assert_eq!(skipped, [("192.0.2.1:443".to_owned(), "without_ech")]);
}

/// NAT64 prefixes discovered (RFC 7050) on a host where IPv4 has no route.
fn discovering_nat64_on_an_ipv6_only_host(config: &mut Config) {
    config.nat64 = crate::Nat64::Discover;
    config.route_probe = ipv6_only_routes;
}

/// An IPv6-only host: IPv4 has no route.
fn ipv6_only_routes(_: Option<SocketAddr>, remote: SocketAddr) -> crate::local::Route {
    match remote {
        SocketAddr::V4(_) => crate::local::Route::None,
        SocketAddr::V6(_) => crate::local::Route::Via("2001:db8::100".parse().expect("ip")),
    }
}

/// HEv3 §8 (NAT64): an address an HTTPS record placed goes through the same synthesis as any
/// other. On an IPv6-only host under 64:ff9b::/96, the record's IPv4 hint (port 8443) is tried
/// as `[64:ff9b::c000:201]:8443`, and the name's own A answer, placed at the record's port
/// when it replaces the hint, likewise; nothing is dialed over IPv4.
#[tokio::test(start_paused = true)]
async fn addresses_from_a_record_are_synthesized_on_an_ipv6_only_host() {
    let record = HttpsRecord::new(1, ".")
        .with_port(8443)
        .with_ipv4_hints(["192.0.2.1".parse().unwrap()]);
    let resolver = Resolver::default()
        .https("svc.example", Duration::ZERO, vec![record])
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("svc.example", Family::V4, 100 * MS, &["192.0.2.2"]);
    let dials = Dials::new(&[
        ("[64:ff9b::c000:201]:8443", 200 * MS, false),
        ("[64:ff9b::c000:202]:8443", MS, true),
    ]);
    let won = run(race_on(
        &dials,
        resolver,
        "svc.example:443",
        ClientSupport::default(),
        |config| {
            config.nat64 = crate::Nat64::Prefix(crate::Nat64Prefix::WELL_KNOWN);
            config.route_probe = ipv6_only_routes;
        },
    ))
    .await
    .expect("connects over NAT64");
    assert_eq!(
        timeline(&won.report),
        [
            row("[64:ff9b::c000:201]:8443", 0, 200, Refused),
            row("[64:ff9b::c000:202]:8443", 200, 201, Connected),
        ]
    );
    let winner = won.report.winner().expect("a winner");
    assert_eq!(
        winner.nat64().map(|s| s.ipv4().to_string()).as_deref(),
        Some("192.0.2.2")
    );
    assert_eq!(winner.https().map(|via| via.port()), Some(8443));
}

/// `Builder::ip_family(V6Only)` holds for what a record brings: its IPv4 hint is skipped as
/// of the other family (and reported), and its service name is asked for AAAA only.
#[tokio::test(start_paused = true)]
async fn a_record_does_not_bring_in_a_family_the_connect_does_not_use() {
    let record = HttpsRecord::new(1, "pool.example")
        .with_ipv4_hints(["192.0.2.9".parse().unwrap()])
        .with_ipv6_hints(["2001:db8::9".parse().unwrap()]);
    let resolver = Resolver::default()
        .https("svc.example", Duration::ZERO, vec![record])
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("pool.example", Family::V6, 100 * MS, &[])
        .answer("pool.example", Family::V4, 100 * MS, &["192.0.2.10"]);
    let asked = resolver.asked_addresses.clone();
    let dials = Dials::new(&[("[2001:db8::9]:443", MS, true)]);
    let won = run(race_on(
        &dials,
        resolver,
        "svc.example:443",
        ClientSupport::default(),
        |config| config.ip_family = crate::IpFamily::V6Only,
    ))
    .await
    .expect("connects over IPv6");
    assert_eq!(
        timeline(&won.report),
        [row("[2001:db8::9]:443", 0, 1, Connected)]
    );
    let skipped: Vec<_> = won
        .report
        .skipped()
        .iter()
        .map(|skipped| (skipped.remote().to_string(), skipped.reason().as_str()))
        .collect();
    assert_eq!(skipped, [("192.0.2.9:443".to_owned(), "other_family")]);
    let asked = asked.lock().unwrap().clone();
    assert!(
        asked.contains(&("pool.example".to_owned(), Family::V6)),
        "{asked:?}"
    );
    assert!(
        !asked.iter().any(|(_, family)| *family == Family::V4),
        "{asked:?}"
    );
}

fn with_ech() -> ClientSupport {
    ClientSupport {
        ech: true,
        ..ClientSupport::default()
    }
}

/// `svc.example` has these IPv4 addresses (and no IPv6) at once; its HTTPS record (target
/// ".", with an ECH list) comes at `https_at`.
fn ech_zone(ipv4: &[&str], https_at: Duration) -> Resolver {
    Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("svc.example", Family::V4, Duration::ZERO, ipv4)
        .https(
            "svc.example",
            https_at,
            vec![HttpsRecord::new(1, ".").with_ech(vec![0xfe, 0x0d])],
        )
}

/// HEv3 §6.1: a handshake that may use ECH does not start before the HTTPS answer. The answer
/// is late (200 ms; racing began at 50 ms, the resolution delay): the attempt connects at
/// 51 ms and is held, then takes the record (ALPN h2, its ECH list) and wins at 200 ms. The
/// same race without ECH wins at 51 ms with no record: the hold is ECH's alone.
#[tokio::test(start_paused = true)]
async fn with_ech_the_handshake_waits_for_a_late_https_answer() {
    let zone = || {
        Resolver::default()
            .answer("svc.example", Family::V6, Duration::ZERO, &[])
            .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
            .https(
                "svc.example",
                200 * MS,
                vec![HttpsRecord::new(1, ".")
                    .with_alpn(["h2"])
                    .with_ech(vec![0xfe, 0x0d])],
            )
    };
    let script = [("192.0.2.1:443", MS, true)];

    let dials = Dials::new(&script);
    let plain = run(race(&dials, zone(), "svc.example:443"))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&plain.report),
        [row("192.0.2.1:443", 50, 51, Connected)]
    );
    assert!(plain.report.winner().unwrap().https().is_none());

    let dials = Dials::new(&script);
    let held = run(race_with(&dials, zone(), "svc.example:443", with_ech()))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&held.report),
        [row("192.0.2.1:443", 50, 200, Connected)]
    );
    let winner = held.report.winner().unwrap();
    assert_eq!(winner.connected(), Some(51 * MS));
    let via = winner.https().expect("the late record");
    // h2 from the record, and HTTP/1.1 as HTTPS's default (no `no-default-alpn`).
    assert_eq!(via.alpn(), [b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(via.ech(), Some(&[0xfe, 0x0d][..]));
}

/// RFC 9848 with a late answer: every record has ECH and sends clients to port 8443. The
/// attempt held at port 443 is not handshaken with (it fails when the answer comes, 100 ms);
/// the record's endpoints are tried next; the name's second address at port 443 is skipped
/// as `without_ech`, never dialed.
#[tokio::test(start_paused = true)]
async fn with_ech_no_endpoint_outside_records_that_all_have_ech() {
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer(
            "svc.example",
            Family::V4,
            Duration::ZERO,
            &["192.0.2.1", "192.0.2.2"],
        )
        .https(
            "svc.example",
            100 * MS,
            vec![HttpsRecord::new(1, ".")
                .with_port(8443)
                .with_ech(vec![0xfe, 0x0d])],
        );
    let dials = Dials::new(&[
        ("192.0.2.1:443", MS, true),
        ("192.0.2.1:8443", MS, false),
        ("192.0.2.2:8443", MS, false),
        ("192.0.2.2:443", MS, true),
    ]);
    let error = run(race_with(&dials, resolver, "svc.example:443", with_ech()))
        .await
        .expect_err("nothing with ECH connects");
    assert_eq!(
        timeline(error.report()),
        [
            row("192.0.2.1:443", 50, 100, HandshakeFailed),
            row("192.0.2.1:8443", 100, 101, Refused),
            row("192.0.2.2:8443", 101, 102, Refused),
        ]
    );
    let why = error.report().attempts()[0].error().unwrap().to_string();
    assert!(
        why.contains("every HTTPS record of the name has ECH"),
        "{why}"
    );
    let skipped: Vec<_> = error
        .report()
        .skipped()
        .iter()
        .map(|skipped| (skipped.remote().to_string(), skipped.reason().as_str()))
        .collect();
    assert_eq!(skipped, [("192.0.2.2:443".to_owned(), "without_ech")]);
    assert_eq!(dials.made.load(Ordering::SeqCst), 3);
}

/// While an attempt is connected and held for its HTTPS answer (ECH), the attempt delay does
/// not start another: it would only be held too. The answer comes at 1,000 ms; the first
/// attempt, connected at 51 ms, wins then, and the second address is never dialed (without the
/// hold it would have started at 300 ms).
#[tokio::test(start_paused = true)]
async fn with_ech_a_held_attempt_starts_no_other() {
    let resolver = ech_zone(&["192.0.2.1", "192.0.2.2"], 1000 * MS);
    let dials = Dials::new(&[("192.0.2.1:443", MS, true), ("192.0.2.2:443", MS, true)]);
    let won = run(race_with(&dials, resolver, "svc.example:443", with_ech()))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [row("192.0.2.1:443", 50, 1000, Connected)]
    );
    assert_eq!(dials.made.load(Ordering::SeqCst), 1);
    assert!(won.report.winner().unwrap().https().is_some());
}

/// A handshake that never finishes on one remote and finishes at once elsewhere.
struct HangsOn(SocketAddr);

impl crate::race::Handshake<SocketAddr> for HangsOn {
    type Output = SocketAddr;
    type Future = Pin<Box<dyn Future<Output = io::Result<SocketAddr>> + Send>>;

    fn handshake(&self, stream: SocketAddr, peer: crate::Peer) -> Self::Future {
        if peer.remote() == self.0 {
            Box::pin(std::future::pending())
        } else {
            Box::pin(std::future::ready(Ok(stream)))
        }
    }
}

/// The attempt delay restarts when the hold ends: the answer comes at 1,000 ms, the first
/// attempt's handshake then stalls (a blackhole after TCP), and the second address starts one
/// attempt delay later, at 1,250 ms, and wins.
#[tokio::test(start_paused = true)]
async fn with_ech_the_attempt_delay_restarts_when_the_hold_ends() {
    let resolver = ech_zone(&["192.0.2.1", "192.0.2.2"], 1000 * MS);
    let dials = Dials::new(&[("192.0.2.1:443", MS, true), ("192.0.2.2:443", MS, true)]);
    let config = test_config(resolver);
    let targets = "svc.example:443".into_targets().expect("valid target");
    let stalls = HangsOn("192.0.2.1:443".parse().unwrap());
    let mut race = Race::with_handshake(dials.clone(), stalls, Arc::new(config), targets, None);
    race.ask_https_records(with_ech());
    let won = std::future::poll_fn(|cx| race.poll_race(cx))
        .await
        .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("192.0.2.1:443", 50, 1251, Lost),
            row("192.0.2.2:443", 1250, 1251, Connected),
        ]
    );
}

/// A held name does not hold back a target that would not be held: with an IP literal after
/// the name, the literal starts on the attempt delay (300 ms) while the name's first attempt
/// waits for its HTTPS answer (due at 1,000 ms), and wins.
#[tokio::test(start_paused = true)]
async fn with_ech_a_held_name_does_not_hold_back_a_literal() {
    let resolver = ech_zone(&["192.0.2.1"], 1000 * MS);
    let dials = Dials::new(&[("192.0.2.1:443", MS, true), ("192.0.2.9:443", MS, true)]);
    let won = run(race_with(
        &dials,
        resolver,
        ["svc.example:443", "192.0.2.9:443"],
        with_ech(),
    ))
    .await
    .expect("connects");
    assert_eq!(
        timeline(&won.report),
        [
            row("192.0.2.1:443", 50, 301, Lost),
            row("192.0.2.9:443", 300, 301, Connected),
        ]
    );
}

/// A late answer reaches the name's IPv4 addresses still waiting for the NAT64 prefix: on an
/// IPv6-only host the A answer (0 ms) is held for the HTTPS answer until racing begins (50 ms),
/// then waits for the prefix (asked at 50 ms, answered 200 ms later); the HTTPS answer comes
/// in between (100 ms). When the prefix comes, the synthesized address goes in as the record
/// places it: with the record's ALPN, not as a plain address.
#[tokio::test(start_paused = true)]
async fn a_late_answer_reaches_addresses_waiting_for_the_nat64_prefix() {
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .answer(
            "ipv4only.arpa",
            Family::V6,
            200 * MS,
            &["64:ff9b::c000:aa", "64:ff9b::c000:ab"],
        )
        .https(
            "svc.example",
            100 * MS,
            vec![HttpsRecord::new(1, ".").with_alpn(["h2"])],
        );
    let dials = Dials::new(&[("[64:ff9b::c000:201]:443", MS, true)]);
    let won = run(race_on(
        &dials,
        resolver,
        "svc.example:443",
        ClientSupport::default(),
        discovering_nat64_on_an_ipv6_only_host,
    ))
    .await
    .expect("connects over NAT64");
    assert_eq!(
        timeline(&won.report),
        [row("[64:ff9b::c000:201]:443", 250, 251, Connected)]
    );
    let winner = won.report.winner().unwrap();
    assert!(winner.nat64().is_some());
    let via = winner.https().expect("the late record");
    assert_eq!(via.alpn(), [b"h2".to_vec(), b"http/1.1".to_vec()]);
}

/// An HTTPS answer that never comes does not stall the NAT64 discovery its addresses need:
/// racing begins at the resolution delay (50 ms) and lets the held A answer in, which starts the
/// discovery; it is polled at once, so the prefix (200 ms later) brings the attempt at 250 ms.
/// (It used to be started but not polled until something else woke the race: here, never,
/// and the connect hung to its deadline.)
#[tokio::test(start_paused = true)]
async fn an_https_answer_that_never_comes_does_not_stall_the_nat64_discovery() {
    let resolver = Resolver::default()
        .answer("svc.example", Family::V6, Duration::ZERO, &[])
        .answer("svc.example", Family::V4, Duration::ZERO, &["192.0.2.1"])
        .answer(
            "ipv4only.arpa",
            Family::V6,
            200 * MS,
            &["64:ff9b::c000:aa", "64:ff9b::c000:ab"],
        );
    let dials = Dials::new(&[("[64:ff9b::c000:201]:443", MS, true)]);
    let won = run(race_on(
        &dials,
        resolver,
        "svc.example:443",
        ClientSupport::default(),
        discovering_nat64_on_an_ipv6_only_host,
    ))
    .await
    .expect("connects over NAT64");
    assert_eq!(
        timeline(&won.report),
        [row("[64:ff9b::c000:201]:443", 250, 251, Connected)]
    );
}
