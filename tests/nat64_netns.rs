//! IPv6-only networks end to end (RFC 8305 §7, RFC 7050, RFC 6052), inside network namespaces.
//!
//! The client namespace has IPv6 only: no IPv4 address but loopback, no IPv4 route. Its hosts
//! file gives `ipv4only.arpa` the AAAA records a DNS64 resolver would give (the NAT64 prefix
//! with 192.0.0.170 and 192.0.0.171 inside). The server namespace owns the address synthesized
//! for the documentation address 192.0.2.1 under that prefix, and the client routes the prefix
//! to it: the server stands in for the translator. `connect 192.0.2.1:PORT` must reach it over
//! the synthesized IPv6 address, in one attempt, with no IPv4 attempt; with NAT64 turned off the
//! same connect makes its one IPv4 attempt, which finds no route.
//!
//! The `connect` example runs under `ip netns exec` (so the system resolver reads the
//! namespace's own `/etc/hosts` and `nsswitch.conf`), printing JSON. Nothing can leak: the
//! client has no route but to its one link, and resolves from its hosts file only.
//!
//! Needs root and iproute2; skips otherwise (and fails where the lab is required).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use connect_by_list::Nat64Prefix;
use serde_json::Value;
use support::netns::{run_in, Lab, NetnsEtc, Run};

/// Only a guard against hanging forever, never an expectation.
const GUARD: Duration = Duration::from_secs(20);
const C6: &str = "2001:db8::1";
const S6: &str = "2001:db8::2";
/// The IPv4 destination the client is given: a documentation address, reached only through
/// its synthesized IPv6 address inside the lab.
const DEST4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// RFC 7050 §2.2: the well-known IPv4 addresses of `ipv4only.arpa`.
const WELL_KNOWN: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 0, 170), Ipv4Addr::new(192, 0, 0, 171)];

fn example() -> PathBuf {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop();
    if path.ends_with("deps") {
        path.pop();
    }
    path.push("examples");
    path.push("connect");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test`, which builds examples",
        path.display()
    );
    path
}

fn finished(what: &str, run: &Run) -> String {
    match run.status {
        Some(_) => run.stdout.clone(),
        None => panic!(
            "{what} still running after {GUARD:?}:\n{}\n{}",
            run.stdout, run.stderr
        ),
    }
}

fn json(what: &str, run: &Run) -> Value {
    let output = finished(what, run);
    serde_json::from_str(output.trim())
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{output}\n{}", run.stderr))
}

/// Builds the lab for `prefix`, runs the example's plan and connect in the client, and checks
/// both show (and use) the synthesized address alone.
fn connects_through(prefix: Nat64Prefix) {
    let Some(mut lab) = Lab::new() else {
        return;
    };
    let c = lab.host("c");
    let s = lab.host("s");
    lab.link(&c, &[&format!("{C6}/64")], &s, &[&format!("{S6}/64")]);
    let synthesized: Ipv6Addr = prefix.embed(DEST4);
    lab.run(
        &s,
        &[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{synthesized}/128"),
            "dev",
            "lo",
        ],
    );
    lab.route(&c, &prefix.to_string(), S6);
    // The client is IPv6-only: no IPv4 address off loopback, no IPv4 route anywhere but lo.
    let addrs = lab.run(&c, &["ip", "-4", "addr", "show"]);
    assert!(!addrs.contains("192.0.2"), "the client has IPv4: {addrs}");
    let routes = lab.run(&c, &["ip", "-4", "route", "show"]);
    assert!(
        routes.trim().is_empty(),
        "the client has IPv4 routes: {routes}"
    );
    let server = s.listen(SocketAddr::new(synthesized.into(), 0));
    let port = server.local_addr().port();
    let hosts: String = WELL_KNOWN
        .iter()
        .map(|v4| format!("{} ipv4only.arpa\n", prefix.embed(*v4)))
        .collect();
    let _etc = NetnsEtc::new(
        c.name(),
        &[
            ("hosts", hosts),
            ("nsswitch.conf", "hosts: files\n".to_owned()),
            // Every line of the hosts file for a name, not the first only.
            ("host.conf", "multi on\n".to_owned()),
        ],
    );
    let target = format!("{DEST4}:{port}");
    let dialed = SocketAddr::new(synthesized.into(), port).to_string();
    let nat64 = serde_json::json!({"ipv4": DEST4.to_string(), "prefix": prefix.to_string()});

    // The plan shows the synthesized address, and what it stands for, in place of the IPv4 one.
    let run = run_in(c.name(), &example(), &["--plan", &target], &[], GUARD);
    let text = finished("connect --plan", &run);
    println!("connect --plan {target}:\n{text}");
    assert!(text.contains(&dialed), "{text}\n{}", run.stderr);
    assert!(
        text.contains(&format!("NAT64 {DEST4} via {prefix}")),
        "{text}"
    );
    let run = run_in(
        c.name(),
        &example(),
        &["--plan", "--json", &target],
        &[],
        GUARD,
    );
    let plan = json("connect --plan --json", &run);
    let rows = plan["plan"].as_array().expect("plan rows");
    assert_eq!(rows.len(), 1, "{plan}");
    assert_eq!(rows[0]["remote"], dialed.as_str(), "{plan}");
    assert_eq!(rows[0]["nat64"], nat64, "{plan}");

    // The connect: one attempt, to the synthesized address; no IPv4 attempt.
    let run = run_in(c.name(), &example(), &["--json", &target], &[], GUARD);
    let report = json("connect --json", &run);
    println!("connect --json {target}: {report}");
    assert_eq!(report["ok"], true, "{report}\n{}", run.stderr);
    assert_eq!(report["peer"], dialed.as_str(), "{report}");
    let attempts = report["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{report}");
    assert_eq!(attempts[0]["remote"], dialed.as_str(), "{report}");
    assert_eq!(attempts[0]["nat64"], nat64, "{report}");
    assert_eq!(server.accepted(), 1);

    // NAT64 off: the IPv4 attempt is made (the thing the test above saw absent), and fails
    // for want of a route.
    let run = run_in(
        c.name(),
        &example(),
        &["--json", "--no-nat64", &target],
        &[],
        GUARD,
    );
    let report = json("connect --json --no-nat64", &run);
    println!("connect --json --no-nat64 {target}: {report}");
    assert_eq!(report["ok"], false, "{report}");
    let attempts = report["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{report}");
    assert_eq!(attempts[0]["remote"], target.as_str(), "{report}");
    assert_eq!(attempts[0]["nat64"], Value::Null, "{report}");
    assert_eq!(server.accepted(), 1);
}

/// RFC 8305 §7.1 with the well-known prefix `64:ff9b::/96` (RFC 6052 §2.1), learned from
/// `ipv4only.arpa` (RFC 7050): 192.0.2.1 is reached as `64:ff9b::c000:201`.
#[test]
fn an_ipv4_literal_connects_over_the_well_known_prefix() {
    assert_eq!(
        Nat64Prefix::WELL_KNOWN.embed(DEST4).to_string(),
        "64:ff9b::c000:201"
    );
    connects_through(Nat64Prefix::WELL_KNOWN);
}

/// The same with a network-specific /64 prefix (RFC 6052 §2.2): the IPv4 address is split
/// around the reserved "u" octet, in the discovered answers and in the synthesized address.
#[test]
fn an_ipv4_literal_connects_over_a_network_specific_64_prefix() {
    let prefix: Nat64Prefix = "2001:db8:64::/64".parse().unwrap();
    assert_eq!(prefix.embed(DEST4).to_string(), "2001:db8:64:0:c0:2:100:0");
    connects_through(prefix);
}
