//! The system resolver end to end, inside a network namespace: a made-up
//! name answered by a hosts file for both families, ranked by RFC 6724
//! (IPv6 first) and raced by Happy Eyeballs.
//!
//! `ip netns exec NS cmd` bind-mounts every file of `/etc/netns/NS/` over
//! its namesake in `/etc` for that command. The lab runs code in a
//! namespace on a thread (`setns(2)` of the network namespace only, not the
//! mount namespace), so the outer test re-executes this test binary under
//! `ip netns exec`, running only the inner test, which resolves through the
//! namespace's own `/etc/hosts`. Nothing can leak: the client namespace has
//! no route off its one link, its `nsswitch.conf` says `hosts: files`, and
//! the name is in its hosts file for both families.
//!
//! Needs root, iproute2 and nftables; skips otherwise.
// Network namespaces, nftables and /proc are Linux's.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use connect_by_list::{Connector, Family, PolicyTable, Resolve, SystemResolver};
use support::netns::{Fault, Lab, NetnsEtc};

/// Set (to `<blackholed port>,<live port>`) only for the re-executed inner test.
const INNER_ENV: &str = "CBL_RESOLVE_NETNS_INNER";
/// The inner test's name, for `--exact`.
const INNER_TEST: &str = "inner_system_resolver_in_namespace";
/// Only a guard against hanging forever, never an expectation.
const GUARD: Duration = Duration::from_secs(20);

const NAME: &str = "svc.test";
const C4: &str = "192.0.2.1";
const C6: &str = "2001:db8::1";
const S4: &str = "192.0.2.2";
const S6: &str = "2001:db8::2";
/// The connector's default attempt delay, which `Connector::new()` uses.
const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The machine's nsswitch.conf with the `hosts:` line replaced by `files`
/// alone, so that the inner process never asks DNS (or anything else).
fn nsswitch_files_only() -> String {
    let current = std::fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let mut out: String = current
        .lines()
        .filter(|line| !line.trim_start().starts_with("hosts:"))
        .map(|line| format!("{line}\n"))
        .collect();
    out.push_str("hosts: files\n");
    out
}

/// Runs the inner test under `ip netns exec <ns>`; returns its stdout, or
/// panics with its output when it fails or hangs.
fn run_inner(ns: &str, ports: (u16, u16)) -> String {
    let exe = std::env::current_exe().expect("the test binary's path");
    let run = support::netns::run_in(
        ns,
        &exe,
        &[
            "--exact",
            INNER_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ],
        &[(INNER_ENV, format!("{},{}", ports.0, ports.1))],
        GUARD,
    );
    let (stdout, stderr) = (run.stdout, run.stderr);
    match run.status {
        Some(status) if status.success() => stdout,
        Some(status) => panic!("inner test failed ({status}):\n{stdout}\n{stderr}"),
        None => panic!("inner test still running after {GUARD:?}:\n{stdout}\n{stderr}"),
    }
}

/// The `CBL|<kind>|...` records of the inner test's output with this kind,
/// split on `|` (kind removed). A record may follow libtest's `test ... `
/// on its line.
fn records<'a>(output: &'a str, kind: &str) -> Vec<Vec<&'a str>> {
    output
        .lines()
        .filter_map(|line| line.find("CBL|").map(|at| &line[at + 4..]))
        .filter_map(|record| {
            let mut fields = record.split('|');
            (fields.next() == Some(kind)).then(|| fields.collect())
        })
        .collect()
}

fn micros(text: &str) -> Duration {
    Duration::from_micros(text.parse().expect("microseconds"))
}

/// A name in the namespace's hosts file with an IPv6 and an IPv4 address:
/// the system resolver finds both, RFC 6724 puts IPv6 first, and Happy
/// Eyeballs falls back to IPv4 after one attempt delay when IPv6 is
/// blackholed, and connects over IPv6 alone when it is live.
#[test]
fn system_resolver_resolves_both_families_and_ranks_ipv6_first() {
    let Some(mut lab) = Lab::with_nft() else {
        return;
    };
    let c = lab.host("c");
    let s = lab.host("s");
    lab.link(
        &c,
        &[&format!("{C4}/24"), &format!("{C6}/64")],
        &s,
        &[&format!("{S4}/24"), &format!("{S6}/64")],
    );
    let routes = lab.run(&c, &["ip", "-4", "route", "show"]);
    assert!(!routes.contains("default"), "no way off the link: {routes}");

    // Port `dead`: IPv4 listens, IPv6 is blackholed (SYNs dropped).
    // Port `live`: both listen.
    let dead4 = s.listen(format!("{S4}:0").parse().unwrap());
    let dead = dead4.local_addr().port();
    lab.fault(
        &s,
        SocketAddr::new(S6.parse().unwrap(), dead),
        Fault::Blackhole,
    );
    let live4 = s.listen(format!("{S4}:0").parse().unwrap());
    let live = live4.local_addr().port();
    let live6 = s.listen(SocketAddr::new(S6.parse().unwrap(), live));

    // IPv4 first in the file, so that IPv6 coming first is the ranking's doing.
    let hosts = format!("{S4} {NAME}\n{S6} {NAME}\n");
    let _etc = NetnsEtc::new(
        c.name(),
        &[("hosts", hosts), ("nsswitch.conf", nsswitch_files_only())],
    );
    let output = run_inner(c.name(), (dead, live));
    eprintln!("{output}");
    assert_eq!(records(&output, "done").len(), 1, "{output}");

    // getaddrinfo per family, through the namespace's hosts file.
    let resolved = records(&output, "resolve");
    assert_eq!(
        resolved,
        [vec!["v6", S6], vec!["v4", S4]],
        "one address per family: {output}"
    );

    // The plan: IPv6 first, each with the source the kernel would use.
    let dead6 = format!("[{S6}]:{dead}");
    let dead4_text = format!("{S4}:{dead}");
    assert_eq!(
        records(&output, "plan"),
        [
            vec![NAME, "-", dead6.as_str(), C6],
            vec![NAME, "-", dead4_text.as_str(), C4],
        ],
        "{output}"
    );
    // The ranking decides it: with IPv4 preferred in the policy table, IPv4 goes first.
    assert_eq!(
        records(&output, "plan_prefer_ipv4"),
        [
            vec![NAME, "-", dead4_text.as_str(), C4],
            vec![NAME, "-", dead6.as_str(), C6],
        ],
        "{output}"
    );

    // IPv6 blackholed: tried first, IPv4 starts one attempt delay later and wins.
    let attempts = records(&output, "attempt_dead");
    assert_eq!(attempts.len(), 2, "{output}");
    let (v6, v4) = (&attempts[0], &attempts[1]);
    assert_eq!(
        (v6[0], v6[1], v6[3]),
        (NAME, dead6.as_str(), "lost"),
        "{output}"
    );
    assert_eq!(
        (v4[0], v4[1], v4[3]),
        (NAME, dead4_text.as_str(), "connected"),
        "{output}"
    );
    assert_eq!(
        v4[2].parse::<SocketAddr>().unwrap().ip(),
        C4.parse::<IpAddr>().unwrap()
    );
    assert!(
        micros(v4[4]).saturating_sub(micros(v6[4])) >= DEFAULT_ATTEMPT_DELAY,
        "IPv4 waits one attempt delay: {output}"
    );
    assert!(lab.fault_hits(&s, SocketAddr::new(S6.parse().unwrap(), dead)) >= 1);
    let won = records(&output, "won_dead");
    assert_eq!(won.len(), 1, "{output}");
    assert_eq!(won[0][0], dead4_text, "{output}");

    // Both live: IPv6 wins alone; the IPv4 address was known but not needed.
    let attempts = records(&output, "attempt_live");
    let live6_text = format!("[{S6}]:{live}");
    assert_eq!(attempts.len(), 1, "{output}");
    assert_eq!(
        (attempts[0][0], attempts[0][1], attempts[0][3]),
        (NAME, live6_text.as_str(), "connected"),
        "{output}"
    );
    assert_eq!(
        attempts[0][2].parse::<SocketAddr>().unwrap().ip(),
        C6.parse::<IpAddr>().unwrap()
    );
    // The IPv4 address is usually known but not needed (`not_tried` 1), or
    // still being looked up when IPv6 won: the race starts on the AAAA answer
    // (RFC 8305 §3) and does not wait for the A answer.
    let won = records(&output, "won_live");
    assert_eq!(won.len(), 1, "{output}");
    assert_eq!(won[0][0], live6_text, "{output}");
    assert!(["0", "1"].contains(&won[0][1]), "{output}");
    drop((dead4, live4, live6));
}

/// Runs only when re-executed by the test above, inside the client
/// namespace with its own `/etc/hosts`; prints `CBL|...` lines. Ignored, so
/// that a plain `cargo test` lists it as such instead of reporting `ok` for
/// a run that checked nothing; started directly, it fails.
#[tokio::test]
#[ignore = "run by system_resolver_resolves_both_families_and_ranks_ipv6_first inside its namespace"]
async fn inner_system_resolver_in_namespace() {
    let ports = std::env::var(INNER_ENV).unwrap_or_else(|_| {
        panic!(
            "{INNER_TEST} runs only inside the namespace that \
             system_resolver_resolves_both_families_and_ranks_ipv6_first makes ({INNER_ENV} unset)"
        )
    });
    let (dead, live) = ports.split_once(',').expect("two ports");
    let (dead, live): (u16, u16) = (dead.parse().unwrap(), live.parse().unwrap());
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(
        hosts.contains(NAME),
        "not the namespace's hosts file: {hosts}"
    );
    // A line of its own: libtest has written `test ... ` without a newline.
    let mut out = String::from("\n");

    for family in [Family::V6, Family::V4] {
        let answer = SystemResolver.resolve(NAME, family).await.unwrap();
        for addr in answer {
            let tag = if family == Family::V6 { "v6" } else { "v4" };
            writeln!(out, "CBL|resolve|{tag}|{addr}").unwrap();
        }
    }

    let target = format!("{NAME}:{dead}");
    let show_plan = |kind: &str, planned: &connect_by_list::Planned, out: &mut String| {
        for attempt in planned.attempts() {
            let local = attempt.local().map_or("-".to_owned(), |l| l.to_string());
            let source = attempt.source().map_or("-".to_owned(), |s| s.to_string());
            let host = attempt.host().unwrap_or("-");
            writeln!(
                out,
                "CBL|{kind}|{host}|{local}|{}|{source}",
                attempt.remote()
            )
            .unwrap();
        }
    };
    let planned = Connector::new().plan(target.as_str()).await.unwrap();
    show_plan("plan", &planned, &mut out);
    let prefer_v4 = Connector::builder()
        .policy_table(PolicyTable::prefer_ipv4())
        .build()
        .unwrap();
    let planned = prefer_v4.plan(target.as_str()).await.unwrap();
    show_plan("plan_prefer_ipv4", &planned, &mut out);

    for (case, port) in [("dead", dead), ("live", live)] {
        let connecting = Connector::new().connect(format!("{NAME}:{port}"));
        let connection = tokio::time::timeout(GUARD, connecting)
            .await
            .unwrap_or_else(|_| panic!("{case}: still connecting after {GUARD:?}"))
            .unwrap_or_else(|e| panic!("{case}: {e}\n{}", e.report().timeline()));
        let report = connection.report();
        eprintln!("{case}:\n{}", report.timeline());
        for attempt in report.attempts() {
            let local = attempt.local().map_or("-".to_owned(), |l| l.to_string());
            writeln!(
                out,
                "CBL|attempt_{case}|{}|{}|{local}|{}|{}|{}",
                attempt.host().unwrap_or("-"),
                attempt.remote(),
                attempt.outcome().as_str(),
                attempt.started().as_micros(),
                attempt.ended().as_micros(),
            )
            .unwrap();
        }
        writeln!(
            out,
            "CBL|won_{case}|{}|{}",
            connection.peer_addr(),
            report.not_tried().len()
        )
        .unwrap();
    }
    out.push_str("CBL|done\n");
    print!("{out}");
}
