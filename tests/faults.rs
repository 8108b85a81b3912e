//! Faults on a real kernel: the connector raced against every fault the network-namespace lab
//! (tests/support/netns.rs) can make, for IPv4 and IPv6 destinations.
//!
//! One client host `c` and one server host `s` on a link, documentation addresses only. The server
//! has one address per fault and family, each with its nftables rule on port 80, and one dual-stack
//! listener on `[::]:80`, so a failure always comes from the fault, never from a closed port.
//!
//! Nothing here asserts a wall-clock duration. "At once" is proven by the report's offsets (the
//! race starts the next attempt in the very instant it sees a failure, with the attempt delay set
//! far above the connect's deadline) and by counting SYNs at the fault rule. Deadlines are at most
//! 2 s; the cases of one test run concurrently inside one lab to share its setup.
//!
//! Needs root, iproute2 and nftables; skips with a message otherwise.
// Network namespaces, nftables and /proc are Linux's.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use connect_by_list::{ConnectErrorKind, Connector, Family, Outcome, Report};
use support::names::Names;
use support::netns::{Fault, Host, Lab, Server};

const PORT: u16 = 80;
/// Longer than any connect here may take: failover that happens before it happened on an error.
const NEVER: Duration = Duration::from_secs(5);
/// The deadline of every connect that is expected to connect.
const DEADLINE: Duration = Duration::from_secs(2);
/// An attempt that failed on its first SYN took less than this; one that needed the kernel's
/// first SYN retransmit (1 s after the SYN) could not.
const FAILED_AT_ONCE: Duration = Duration::from_millis(100);
/// The kernel retransmits an unanswered SYN after its initial RTO, 1 s, counted in ticks of up
/// to 10 ms: an attempt that waited for it took at least this.
const SYN_RETRANSMIT: Duration = Duration::from_millis(980);

/// What each server address does to a SYN on port 80.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Live,
    Fault(Fault),
    /// Host unreachable, for the connects without `fast_icmp_errors` (their own address, so that
    /// each address's SYN count belongs to one connect).
    SlowHostUnreachable,
}

/// Every role, in the order the server's addresses are numbered.
const ROLES: [Role; 9] = [
    Role::Live,
    Role::Fault(Fault::Blackhole),
    Role::Fault(Fault::Reset),
    Role::Fault(Fault::HostUnreachable),
    Role::Fault(Fault::PortUnreachable),
    Role::Fault(Fault::AdminProhibited),
    Role::Fault(Fault::NoRoute),
    Role::Fault(Fault::DropFirstSyn),
    Role::SlowHostUnreachable,
];

/// The server's address for `role` in `family`: 192.0.2.10+i and 2001:db8::1:10+i. Every IPv6
/// address shares its first 111 bits with the client's 2001:db8::1, so RFC 6724 rule 9 (longest
/// matching prefix) ties them all and the caller's order stands.
fn addr(role: Role, family: Family) -> SocketAddr {
    let i = ROLES.iter().position(|r| *r == role).expect("a role") as u8 + 10;
    let ip: IpAddr = match family {
        Family::V4 => format!("192.0.2.{i}").parse().unwrap(),
        Family::V6 => format!("2001:db8::1:{i}").parse().unwrap(),
    };
    SocketAddr::new(ip, PORT)
}

fn fault(fault: Fault, family: Family) -> SocketAddr {
    addr(Role::Fault(fault), family)
}

fn live(family: Family) -> SocketAddr {
    addr(Role::Live, family)
}

/// The lab: client `c` (192.0.2.1, 2001:db8::1), server `s` with every role's address in both
/// families, each fault's rule loaded, and the listener. `None` to skip.
struct Setup {
    lab: Lab,
    c: Host,
    s: Host,
    _server: Server,
}

fn setup() -> Option<Setup> {
    let mut lab = Lab::with_nft()?;
    let c = lab.host("c");
    let s = lab.host("s");
    let server_addrs: Vec<String> = ROLES
        .iter()
        .flat_map(|role| {
            [
                format!("{}/24", addr(*role, Family::V4).ip()),
                format!("{}/64", addr(*role, Family::V6).ip()),
            ]
        })
        .collect();
    let server_addrs: Vec<&str> = server_addrs.iter().map(String::as_str).collect();
    lab.link(&c, &["192.0.2.1/24", "2001:db8::1/64"], &s, &server_addrs);
    for role in ROLES {
        let f = match role {
            Role::Live => continue,
            Role::Fault(f) => f,
            Role::SlowHostUnreachable => Fault::HostUnreachable,
        };
        for family in [Family::V4, Family::V6] {
            lab.fault(&s, addr(role, family), f);
        }
    }
    let server = s.listen(SocketAddr::new("::".parse().unwrap(), PORT));
    Some(Setup {
        lab,
        c,
        s,
        _server: server,
    })
}

/// How one connect ended: the peer that won and the report, or the error's kind and report.
type Ended = Result<(SocketAddr, Report), (ConnectErrorKind, Report)>;

/// One connect to make from the client.
struct Case {
    label: String,
    connector: Connector,
    targets: Vec<String>,
}

impl Case {
    fn new(label: impl Into<String>, connector: Connector, targets: Vec<SocketAddr>) -> Case {
        Case {
            label: label.into(),
            connector,
            targets: targets.iter().map(SocketAddr::to_string).collect(),
        }
    }
}

/// Runs every case at once inside the client host; returns each one's end, keyed by label.
fn run_all(c: &Host, cases: Vec<Case>) -> HashMap<String, Ended> {
    c.block_on(move || async move {
        let mut tasks = tokio::task::JoinSet::new();
        for case in cases {
            tasks.spawn(async move {
                let ended = match case.connector.connect(case.targets).await {
                    Ok(connection) => {
                        let peer = connection.peer_addr();
                        let (_stream, report) = connection.into_parts();
                        Ok((peer, report))
                    }
                    Err(error) => Err((error.kind(), error.report().clone())),
                };
                (case.label, ended)
            });
        }
        let mut all = HashMap::new();
        while let Some(done) = tasks.join_next().await {
            let (label, ended) = done.expect("a case panicked");
            all.insert(label, ended);
        }
        all
    })
}

fn outcomes(report: &Report) -> Vec<Outcome> {
    report.attempts().iter().map(|a| a.outcome()).collect()
}

fn remotes(report: &Report) -> Vec<SocketAddr> {
    report.attempts().iter().map(|a| a.remote()).collect()
}

fn connected<'a>(all: &'a HashMap<String, Ended>, label: &str) -> (SocketAddr, &'a Report) {
    match &all[label] {
        Ok((peer, report)) => (*peer, report),
        Err((kind, report)) => panic!("{label}: failed ({kind:?}):\n{}", report.timeline()),
    }
}

fn failed<'a>(all: &'a HashMap<String, Ended>, label: &str) -> (ConnectErrorKind, &'a Report) {
    match &all[label] {
        Ok((peer, report)) => panic!("{label}: connected to {peer}:\n{}", report.timeline()),
        Err((kind, report)) => (*kind, report),
    }
}

fn connector() -> connect_by_list::Builder {
    // No history: every case must race from its own plan, not from an earlier case's winner.
    Connector::builder().history_capacity(0).timeout(DEADLINE)
}

/// The errno a Linux connect gets for each ICMP or reset fault (see the table in
/// tests/support/netns.rs), and the outcome the report must classify it as.
fn expected_failure(f: Fault, family: Family) -> (i32, Outcome) {
    match (f, family) {
        (Fault::Reset | Fault::PortUnreachable, _) => (libc::ECONNREFUSED, Outcome::Refused),
        (Fault::HostUnreachable, _) => (libc::EHOSTUNREACH, Outcome::Unreachable),
        (Fault::AdminProhibited, Family::V4) => (libc::EHOSTUNREACH, Outcome::Unreachable),
        (Fault::AdminProhibited, Family::V6) => (libc::EACCES, Outcome::Unreachable),
        (Fault::NoRoute, _) => (libc::ENETUNREACH, Outcome::Unreachable),
        (other, _) => panic!("{other:?} does not fail a connect at once"),
    }
}

const FAILING_AT_ONCE: [Fault; 5] = [
    Fault::Reset,
    Fault::HostUnreachable,
    Fault::PortUnreachable,
    Fault::AdminProhibited,
    Fault::NoRoute,
];

/// Every fault alone in front of a live address, for IPv4 and IPv6 destinations.
///
/// - Reset and every ICMP unreachable (host, port, admin-prohibited, no-route) end their attempt
///   at once: with an attempt delay of 5 s and a 2 s deadline the live address second still wins,
///   it started in the very instant the failed attempt ended (so failover ran on the error, not
///   on the timer), the failure is classified (Refused / Unreachable) with the kernel's errno, and
///   the fault rule saw exactly one SYN (no retransmit was needed).
/// - A blackhole holds its attempt until the attempt delay starts the next (which wins; the
///   blackhole is Lost), until the attempt timeout ends it (TimedOut, the next starts at that
///   instant), or until the deadline (Cancelled, the connect fails with TimedOut).
/// - A dropped first SYN: the connection completes on the kernel's retransmit (the rule dropped
///   exactly one SYN) and wins against a blackhole started after it.
/// - Without `fast_icmp_errors`, IPv6 host-unreachable does not fail before the SYN retransmit
///   (the lab delivers the ICMP while connect() holds the socket lock, so it is a soft error):
///   the attempt fails Unreachable a second after it started, on the second SYN. IPv4 queues the error
///   either way and fails at once, which is why the crate sets the option on IPv6 sockets only:
///   the IPv4 cases above run without it.
#[test]
fn every_fault_alone_on_both_families() {
    let Some(setup) = setup() else { return };
    let mut cases = Vec::new();
    for family in [Family::V4, Family::V6] {
        for f in FAILING_AT_ONCE {
            cases.push(Case::new(
                format!("{f:?} {family}"),
                connector().attempt_delay(NEVER).build().unwrap(),
                vec![fault(f, family), live(family)],
            ));
        }
        cases.push(Case::new(
            format!("Blackhole then live {family}"),
            connector()
                .attempt_delay(Duration::from_millis(30))
                .build()
                .unwrap(),
            vec![fault(Fault::Blackhole, family), live(family)],
        ));
        cases.push(Case::new(
            format!("Blackhole attempt timeout {family}"),
            connector()
                .attempt_delay(NEVER)
                .attempt_timeout(Duration::from_millis(150))
                .build()
                .unwrap(),
            vec![fault(Fault::Blackhole, family), live(family)],
        ));
        cases.push(Case::new(
            format!("Blackhole deadline {family}"),
            connector()
                .timeout(Duration::from_millis(200))
                .build()
                .unwrap(),
            vec![fault(Fault::Blackhole, family)],
        ));
        cases.push(Case::new(
            format!("DropFirstSyn {family}"),
            connector()
                .attempt_delay(Duration::from_millis(30))
                .build()
                .unwrap(),
            vec![
                fault(Fault::DropFirstSyn, family),
                fault(Fault::Blackhole, family),
            ],
        ));
        cases.push(Case::new(
            format!("slow ICMP {family}"),
            connector().fast_icmp_errors(false).build().unwrap(),
            vec![addr(Role::SlowHostUnreachable, family)],
        ));
    }
    // Counted before the cases run: every fault address sees only the SYNs counted below.
    let hits = |addr| setup.lab.fault_hits(&setup.s, addr);
    for role in ROLES.into_iter().filter(|role| *role != Role::Live) {
        for family in [Family::V4, Family::V6] {
            assert_eq!(hits(addr(role, family)), 0);
        }
    }
    let all = run_all(&setup.c, cases);
    for (label, ended) in &all {
        let report = match ended {
            Ok((_, report)) | Err((_, report)) => report,
        };
        eprintln!("{label}:\n{}", report.timeline());
    }

    for family in [Family::V4, Family::V6] {
        for f in FAILING_AT_ONCE {
            let label = format!("{f:?} {family}");
            let (peer, report) = connected(&all, &label);
            let (errno, outcome) = expected_failure(f, family);
            assert_eq!(peer, live(family), "{label}");
            assert_eq!(remotes(report), [fault(f, family), live(family)], "{label}");
            assert_eq!(
                outcomes(report),
                [outcome, Outcome::Connected],
                "{label}:\n{}",
                report.timeline()
            );
            let failed = &report.attempts()[0];
            assert_eq!(
                failed.error().and_then(io::Error::raw_os_error),
                Some(errno),
                "{label}: {:?}",
                failed.error()
            );
            // The next attempt started in the same instant the failure was seen: failover on the
            // error, not on the 5 s timer (which could not have fired before the 2 s deadline).
            assert_eq!(
                report.attempts()[1].started(),
                failed.ended(),
                "{label}:\n{}",
                report.timeline()
            );
            // The fault rule saw one SYN: the error ended the connect at its first SYN.
            assert_eq!(hits(fault(f, family)), 1, "{label}: SYNs at the rule");
            // And in far less than the 1 s a SYN retransmit takes (these cases share one
            // runtime; `an_icmp_error_ends_its_attempt_at_once` measures one at a time).
            let took = failed.ended() - failed.started();
            assert!(
                took < FAILED_AT_ONCE,
                "{label}: the failed attempt took {took:?}"
            );
        }

        let label = format!("Blackhole then live {family}");
        let (peer, report) = connected(&all, &label);
        assert_eq!(peer, live(family));
        assert_eq!(outcomes(report), [Outcome::Lost, Outcome::Connected]);
        assert!(
            report.attempts()[0].error().is_none(),
            "a lost attempt has no error"
        );
        // A blackhole moves the race on only when the attempt delay has passed (Tokio's timers
        // never fire early; this is a lower bound, not a tolerance).
        assert!(
            report.attempts()[1].started() >= Duration::from_millis(30),
            "{label}:\n{}",
            report.timeline()
        );

        let label = format!("Blackhole attempt timeout {family}");
        let (peer, report) = connected(&all, &label);
        assert_eq!(peer, live(family));
        assert_eq!(outcomes(report), [Outcome::TimedOut, Outcome::Connected]);
        assert_eq!(
            report.attempts()[1].started(),
            report.attempts()[0].ended(),
            "the attempt timeout starts the next attempt in the same instant"
        );
        assert_eq!(
            report.attempts()[0].error().map(io::Error::kind),
            Some(io::ErrorKind::TimedOut)
        );

        let label = format!("Blackhole deadline {family}");
        let (kind, report) = failed(&all, &label);
        assert_eq!(kind, ConnectErrorKind::TimedOut);
        assert_eq!(outcomes(report), [Outcome::Cancelled]);

        // Three connects reached each blackhole; none was answered, whatever it retransmitted.
        assert!(hits(fault(Fault::Blackhole, family)) >= 3);

        let label = format!("DropFirstSyn {family}");
        let (peer, report) = connected(&all, &label);
        assert_eq!(peer, fault(Fault::DropFirstSyn, family));
        assert_eq!(
            outcomes(report),
            [Outcome::Connected, Outcome::Lost],
            "{label}:\n{}",
            report.timeline()
        );
        // The rule drops only a connection's first SYN: the winner connected on the retransmit.
        assert_eq!(hits(fault(Fault::DropFirstSyn, family)), 1);
        // The blackhole started while the first attempt waited for its retransmit.
        assert!(report.attempts()[1].started() < report.attempts()[0].ended());

        let label = format!("slow ICMP {family}");
        let (kind, report) = failed(&all, &label);
        assert_eq!(kind, ConnectErrorKind::AllFailed, "{label}");
        assert_eq!(outcomes(report), [Outcome::Unreachable], "{label}");
        let attempt = &report.attempts()[0];
        let took = attempt.ended() - attempt.started();
        match family {
            // The first ICMP error was soft: the attempt failed only on the error answering the
            // SYN retransmit, one RTO (1 s, in kernel ticks) after the first SYN.
            Family::V6 => {
                assert!(took >= SYN_RETRANSMIT, "{label}: {took:?}");
                assert_eq!(hits(addr(Role::SlowHostUnreachable, family)), 2, "{label}");
            }
            // IPv4 queues the error either way: it failed on the first SYN.
            Family::V4 => {
                assert!(took < FAILED_AT_ONCE, "{label}: {took:?}");
                assert_eq!(hits(addr(Role::SlowHostUnreachable, family)), 1, "{label}");
            }
        }
    }
}

/// A name whose addresses are every fault in both families, with one live IPv4 address last.
///
/// The plan interleaves the families (IPv6 first by RFC 6724 precedence; within each family the
/// addresses tie and keep the resolver's order), so the live address is the last attempt. Each
/// blackhole holds the race for one attempt delay; every reset and ICMP error moves it on in the
/// same instant; the dropped first SYNs are still waiting for their retransmit when the live
/// address, started last, wins. Each failure's rule saw one SYN.
#[test]
fn a_name_mixing_every_fault_connects_to_its_live_address_last() {
    let Some(setup) = setup() else { return };
    let order = Fault::ALL;
    let mut addrs: Vec<IpAddr> = Vec::new();
    for family in [Family::V6, Family::V4] {
        addrs.extend(order.iter().map(|f| fault(*f, family).ip()));
    }
    addrs.push(live(Family::V4).ip());
    let connector = connector()
        .attempt_delay(Duration::from_millis(30))
        .resolver(Names::one("mixed.test", &addrs))
        .build()
        .unwrap();
    let all = run_all(
        &setup.c,
        vec![Case {
            label: "mixed".into(),
            connector,
            targets: vec![format!("mixed.test:{PORT}")],
        }],
    );
    let (peer, report) = connected(&all, "mixed");
    eprintln!("mixed.test:\n{}", report.timeline());
    assert_eq!(peer, live(Family::V4));

    let mut expected: Vec<(SocketAddr, Outcome)> = Vec::new();
    for f in order {
        for family in [Family::V6, Family::V4] {
            let outcome = match f {
                Fault::Blackhole | Fault::DropFirstSyn => Outcome::Lost,
                f => expected_failure(f, family).1,
            };
            expected.push((fault(f, family), outcome));
        }
    }
    expected.push((live(Family::V4), Outcome::Connected));
    let got: Vec<(SocketAddr, Outcome)> = report
        .attempts()
        .iter()
        .map(|a| (a.remote(), a.outcome()))
        .collect();
    assert_eq!(got, expected, "\n{}", report.timeline());
    assert!(report
        .attempts()
        .iter()
        .all(|a| a.host() == Some("mixed.test")));
    assert_eq!(report.not_tried().len(), 0);
    assert!(report.resolve_failures().is_empty());

    let attempts = report.attempts();
    for (i, pair) in attempts.windows(2).enumerate() {
        let (this, next) = (&pair[0], &pair[1]);
        assert!(next.started() >= this.started(), "attempts start in order");
        if matches!(this.outcome(), Outcome::Refused | Outcome::Unreachable) {
            // Failover on the error itself, in the instant it was seen.
            assert_eq!(
                next.started(),
                this.ended(),
                "attempt {} moved the race on at once:\n{}",
                i + 1,
                report.timeline()
            );
        }
    }
    // Every attempt that lost ended in the instant the winner connected.
    let won_at = report.winner().expect("a winner").ended();
    for attempt in attempts.iter().filter(|a| a.outcome() == Outcome::Lost) {
        assert_eq!(attempt.ended(), won_at);
        assert!(attempt.error().is_none());
    }
    // Each reset and ICMP error answered the first SYN of its attempt.
    for f in FAILING_AT_ONCE {
        for family in [Family::V4, Family::V6] {
            assert_eq!(
                setup.lab.fault_hits(&setup.s, fault(f, family)),
                1,
                "{f:?} {family}"
            );
        }
    }
}

/// How long an attempt answered by an ICMP error takes, one connect at a time (nothing else
/// running in the client's runtime): every ICMP fault on both families, `fast_icmp_errors` on (the
/// default), five connects each, each attempt's end minus its start from the report.
///
/// Asserted: each ended on its first SYN (one SYN at the rule per connect), with its errno, in
/// under 100 ms, which the kernel's first SYN retransmit (1 s) could never meet; the measured
/// times are printed (on this lab's veth links, medians of 0.1 to 0.2 ms).
#[test]
fn an_icmp_error_ends_its_attempt_at_once() {
    const RUNS: usize = 5;
    const ICMP: [Fault; 4] = [
        Fault::HostUnreachable,
        Fault::PortUnreachable,
        Fault::AdminProhibited,
        Fault::NoRoute,
    ];
    let Some(setup) = setup() else { return };
    let mut cases = Vec::new();
    for family in [Family::V4, Family::V6] {
        for f in ICMP {
            cases.push((f, family));
        }
    }
    let measured = setup.c.block_on(move || async move {
        let connector = connector().attempt_delay(NEVER).build().unwrap();
        let mut measured = Vec::new();
        for (f, family) in cases {
            for _ in 0..RUNS {
                let connection = connector
                    .connect([fault(f, family), live(family)])
                    .await
                    .unwrap_or_else(|e| panic!("{f:?} {family}: {e}"));
                let failed = connection.report().attempts()[0].clone();
                measured.push((f, family, failed));
            }
        }
        measured
    });
    for f in ICMP {
        for family in [Family::V4, Family::V6] {
            let label = format!("{f:?} {family}");
            let mut took: Vec<Duration> = Vec::new();
            for (_, _, failed) in measured.iter().filter(|m| (m.0, m.1) == (f, family)) {
                let (errno, outcome) = expected_failure(f, family);
                assert_eq!(failed.remote(), fault(f, family), "{label}");
                assert_eq!(failed.outcome(), outcome, "{label}");
                assert_eq!(
                    failed.error().and_then(io::Error::raw_os_error),
                    Some(errno),
                    "{label}"
                );
                took.push(failed.ended() - failed.started());
            }
            took.sort_unstable();
            eprintln!(
                "{label}: an attempt answered by ICMP took min {:?}, median {:?}, max {:?}",
                took[0],
                took[RUNS / 2],
                took[RUNS - 1]
            );
            assert!(
                took[RUNS - 1] < FAILED_AT_ONCE,
                "{label}: {took:?}, not at once"
            );
            assert_eq!(
                setup.lab.fault_hits(&setup.s, fault(f, family)),
                RUNS as u64,
                "{label}: one SYN per connect"
            );
        }
    }
}
