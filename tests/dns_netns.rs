//! The system resolver against a real DNS server that answers A queries and drops AAAA ones, as
//! some broken middleboxes and resolvers do, inside network namespaces.
//!
//! The server (`support::dns`) runs in the server namespace.
//! The client namespace's `resolv.conf` points at it and its `nsswitch.conf` says `hosts: dns`;
//! `ip netns exec` applies those files (see `NetnsEtc`), so the outer test re-executes this test
//! binary (and runs the `connect` example) under it. Nothing can leak: the client namespace has
//! no route off its one link.
//!
//! `options timeout:1 attempts:2`: glibc then gives up on the unanswered AAAA query after two
//! tries of 1 s (2.0 s measured), sending it twice; with its defaults (5 s, two tries) the same
//! lookup holds its thread for 10 s.
//! Set `CBL_DNS_NETNS_OPTIONS` to other `options` (empty for glibc's defaults) to measure those.
//!
//! Needs root and iproute2; skips otherwise.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::example;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use connect_by_list::{Connector, Family, Resolve, SystemResolver};
use support::dns::{self, DnsServer, Rdata, Reply};
use support::netns::{run_in, Host, Lab, NetnsEtc, Run};

/// Set (to `<mode>,<port>`) only for the re-executed inner test.
const INNER_ENV: &str = "CBL_DNS_NETNS_INNER";
const INNER_TEST: &str = "inner_connects_through_a_server_that_drops_aaaa";
/// Only a guard against hanging forever, never an expectation.
const GUARD: Duration = Duration::from_secs(30);

const NAME: &str = "svc.test";
const C4: &str = "192.0.2.1";
const S4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The connector's default resolution delay (RFC 8305 §3), which `Connector::new()` uses.
const RESOLUTION_DELAY: Duration = Duration::from_millis(50);
/// What a connect may take beyond the resolution delay: the A lookup (a thread and a round trip
/// over a veth), a loopback-fast TCP handshake, and a loaded machine's scheduling. Waiting for
/// the AAAA lookup instead would take a second or more.
const SLACK: Duration = Duration::from_millis(50);

/// A DNS server on UDP port 53 of a namespace: answers `A svc.test` with [`S4`], drops every
/// AAAA query unanswered, answers anything else with no record (NXDOMAIN for other names).
fn dns_server(host: &Host) -> DnsServer {
    DnsServer::start_in(host, SocketAddr::from((S4, 53)), |question| {
        match (question.name == NAME, question.qtype) {
            (_, dns::AAAA) => Reply::Drop,
            (true, dns::A) => Reply::Records(vec![Rdata::A(S4)]),
            (true, _) => Reply::Records(Vec::new()),
            (false, _) => Reply::NoSuchName,
        }
    })
}

/// The queries the server saw so far: (A, AAAA, other types).
fn counts(dns: &DnsServer) -> (usize, usize, usize) {
    let asked = dns.asked();
    let (a, aaaa) = (dns.asked_of_type(dns::A), dns.asked_of_type(dns::AAAA));
    (a, aaaa, asked.len() - a - aaaa)
}

fn succeeded(what: &str, run: &Run) -> String {
    match run.status {
        Some(status) if status.success() => run.stdout.clone(),
        Some(status) => panic!("{what} failed ({status}):\n{}\n{}", run.stdout, run.stderr),
        None => panic!(
            "{what} still running after {GUARD:?}:\n{}\n{}",
            run.stdout, run.stderr
        ),
    }
}

/// The `CBL|<kind>|...` records of the inner test's output with this kind, split on `|`.
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

/// Five connects in a row from one connector to a name whose AAAA queries go unanswered: each
/// connects over IPv4 once the resolution delay has passed after the A answer, and the five
/// share one AAAA lookup, so the server sees as many AAAA queries as one lone lookup sends. Then
/// the `connect` example: it exits as soon as it has printed, not when the AAAA lookup ends.
#[test]
fn five_connects_share_one_aaaa_lookup_and_the_example_exits_at_once() {
    if std::env::var_os(INNER_ENV).is_some() {
        return;
    }
    let Some(mut lab) = Lab::new() else {
        return;
    };
    let c = lab.host("c");
    let s = lab.host("s");
    lab.link(&c, &[&format!("{C4}/24")], &s, &[&format!("{S4}/24")]);
    let routes = lab.run(&c, &["ip", "route", "show"]);
    assert!(!routes.contains("default"), "no way off the link: {routes}");
    let listener = s.listen(SocketAddr::from((S4, 0)));
    let port = listener.local_addr().port();
    let dns = dns_server(&s);
    let options = match std::env::var("CBL_DNS_NETNS_OPTIONS") {
        Ok(options) if options.trim().is_empty() => String::new(),
        Ok(options) => format!("options {options}\n"),
        Err(_) => "options timeout:1 attempts:2\n".to_owned(),
    };
    let _etc = NetnsEtc::new(
        c.name(),
        &[
            ("resolv.conf", format!("nameserver {S4}\n{options}")),
            ("nsswitch.conf", "hosts: dns\n".to_owned()),
        ],
    );
    let exe = std::env::current_exe().expect("the test binary's path");
    let inner = |mode: &str| {
        let args = ["--exact", INNER_TEST, "--nocapture", "--test-threads=1"];
        let env = [(INNER_ENV, format!("{mode},{port}"))];
        let run = run_in(c.name(), &exe, &args, &env, GUARD);
        let output = succeeded(mode, &run);
        eprintln!("{mode}: {output}");
        assert_eq!(records(&output, "done").len(), 1, "{output}");
        output
    };

    // One lone AAAA lookup, to its end: what one lookup sends.
    let output = inner("lone");
    let took = &records(&output, "lone")[0][0];
    let (a, lone, other) = counts(&dns);
    assert_eq!((a, other), (0, 0), "only the AAAA lookup asked");
    assert!(lone >= 1, "the server saw no AAAA query");

    // Five connects; the inner process ends when the shared AAAA lookup has.
    let output = inner("five");
    let (a, aaaa, _) = counts(&dns);
    let aaaa = aaaa - lone;
    println!(
        "AAAA queries: one lookup {lone} (it took {took}), five connects {aaaa}; A queries {a}"
    );
    assert_eq!(a, 5, "each connect asked for A (no cache)");
    assert_eq!(aaaa, lone, "the five connects shared one AAAA lookup");
    let connects = records(&output, "connect");
    assert_eq!(connects.len(), 5, "{output}");
    for (i, connect) in connects.iter().enumerate() {
        let (peer, took) = (
            connect[0],
            Duration::from_micros(connect[1].parse().unwrap()),
        );
        assert_eq!(peer, SocketAddr::from((S4, port)).to_string(), "{output}");
        if i == 0 {
            // The first waits the resolution delay for the AAAA answer that never comes.
            assert!(
                took >= RESOLUTION_DELAY && took < RESOLUTION_DELAY + SLACK,
                "the first connect took {took:?}: {output}"
            );
        } else {
            // The others remember the IPv4 winner: it starts as soon as its A answer is in,
            // without the resolution delay (RFC 8305 §5).
            assert!(took < SLACK, "connect {} took {took:?}: {output}", i + 1);
        }
    }

    // The example prints and exits; the AAAA lookup it started is left to its thread.
    let target = format!("{NAME}:{port}");
    let run = run_in(c.name(), &example(), &[&target], &[], GUARD);
    let output = succeeded("the connect example", &run);
    println!("connect example: {:?} wall\n{output}", run.wall);
    assert!(
        output.starts_with(&format!("connected to {S4}:{port}")),
        "{output}"
    );
    assert!(
        run.wall < Duration::from_secs(1),
        "the example took {:?} to exit:\n{output}",
        run.wall
    );
    drop(listener);
}

/// Runs only when re-executed by the test above, inside the client namespace with its own
/// `resolv.conf`; prints `CBL|...` lines.
#[tokio::test]
async fn inner_connects_through_a_server_that_drops_aaaa() {
    let Ok(setting) = std::env::var(INNER_ENV) else {
        return;
    };
    let (mode, port) = setting.split_once(',').expect("mode and port");
    let port: u16 = port.parse().unwrap();
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    assert!(
        resolv.contains(&S4.to_string()),
        "not the namespace's resolv.conf: {resolv}"
    );
    // A line of its own: libtest has written `test ... ` without a newline.
    let mut out = String::from("\n");
    match mode {
        "lone" => {
            let began = Instant::now();
            let answer = SystemResolver.resolve(NAME, Family::V6).await;
            writeln!(out, "CBL|lone|{:?}|{:?}", began.elapsed(), answer).unwrap();
        }
        "five" => {
            let connector = Connector::new();
            for _ in 0..5 {
                let began = Instant::now();
                let connection = connector
                    .connect(format!("{NAME}:{port}"))
                    .await
                    .unwrap_or_else(|e| panic!("{e}\n{}", e.report().timeline()));
                let took = began.elapsed();
                eprintln!("{}", connection.report().timeline());
                writeln!(
                    out,
                    "CBL|connect|{}|{}",
                    connection.peer_addr(),
                    took.as_micros()
                )
                .unwrap();
            }
        }
        other => panic!("unknown mode {other}"),
    }
    out.push_str("CBL|done\n");
    print!("{out}");
}
