//! Happy Eyeballs v3 with HTTPS records, on Tokio's paused clock: a scripted resolver answers
//! A, AAAA and HTTPS after exact delays, scripted dials connect or refuse; every instant is exact.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
// The race tests' exact rows: (remote, started ms, ended ms, outcome).
use crate::dial::Dial;
use crate::error::ConnectError;
use crate::plan::Pair;
use crate::race::tests::{row, timeline};
use crate::race::{Race, Won};
use crate::report::Outcome;
use crate::resolve::{Family, Resolve, Resolving, ResolvingHttps};
use crate::svcb::ClientSupport;
use crate::target::IntoTargets;
use crate::HttpsRecord;

use Outcome::{Connected, Lost, Refused};

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
        Box::pin(scripted(answer))
    }
}

/// Dials that connect or refuse after a delay, per remote; any other remote hangs.
#[derive(Clone, Debug, Default)]
struct Dials(Arc<HashMap<SocketAddr, (Duration, bool)>>);

impl Dials {
    fn new(scripts: &[(&str, Duration, bool)]) -> Dials {
        let scripts = scripts
            .iter()
            .map(|(remote, after, connects)| {
                (remote.parse().expect("test address"), (*after, *connects))
            })
            .collect();
        Dials(Arc::new(scripts))
    }
}

impl Dial for Dials {
    type Stream = SocketAddr;
    type Future = Pin<Box<dyn Future<Output = io::Result<SocketAddr>> + Send>>;

    fn dial(&self, pair: Pair) -> Self::Future {
        let script = self.0.get(&pair.remote).copied();
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
    let config = Config {
        sort_addresses: false,
        resolver: Arc::new(resolver),
        ..Config::default()
    };
    let targets = targets.into_targets().expect("valid test targets");
    let mut race = Race::new(dials.clone(), Arc::new(config), targets, None);
    race.ask_https_records(ClientSupport::default());
    race
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
