//! Local source addresses in a network-namespace lab: a client with two
//! links to one server, policy routing per source, and nftables faults.
//!
//! * Every listed local address is paired with the destination and the
//!   pairs are raced (`Builder::local_addrs`), in the caller's order when
//!   RFC 6724 source selection ties: a working first pair wins alone, a
//!   broken first pair is followed by the next one after one attempt delay.
//! * `Builder::interface` sends every attempt out of that device.
//! * `Builder::local_addrs_from_interfaces` plans only the pairs that can
//!   work.
//!
//! Needs root, iproute2 and nftables; skips otherwise. Documentation
//! addresses only, inside namespaces the tests make.
// Network namespaces, nftables and /proc are Linux's.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use connect_by_list::{ConnectError, Connector, Outcome, Report, SkipReason};
use support::netns::{Host, Lab, Server};

/// Only a guard against hanging forever, never an expectation.
const GUARD: Duration = Duration::from_secs(10);
/// The server's port.
const PORT: u16 = 8080;

// Link A: client 192.0.2.10 / 2001:db8:a::10, server 192.0.2.1 / 2001:db8:a::1.
const A4: &str = "192.0.2.10";
const A6: &str = "2001:db8:a::10";
const SA4: &str = "192.0.2.1";
const SA6: &str = "2001:db8:a::1";
// Link B: client 198.51.100.10, server 198.51.100.1; IPv6 set per test.
const B4: &str = "198.51.100.10";
const SB4: &str = "198.51.100.1";
// The service, on the server's loopback: reachable over either link.
const R4: &str = "203.0.113.1";
const R6: &str = "2001:db8:c::1";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn sock(ip_text: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(ip_text), port)
}

/// A client `c` and a server `s` joined by two links (A and B), the service
/// address `R4`/`R6` on the server's `lo`, and `ip` commands (policy
/// routing) run on the client.
struct Multihomed {
    lab: Lab,
    c: Host,
    s: Host,
    /// The client's interfaces on links A and B.
    c_if: [String; 2],
    /// The server's interfaces on links A and B.
    s_if: [String; 2],
}

impl Multihomed {
    /// `b6` is (client, server) IPv6 on link B, as /64s.
    fn new(b6: (&str, &str)) -> Option<Multihomed> {
        let mut lab = Lab::with_nft()?;
        let c = lab.host("c");
        let s = lab.host("s");
        let (ca, sa) = lab.link(
            &c,
            &[&format!("{A4}/24"), &format!("{A6}/64")],
            &s,
            &[&format!("{SA4}/24"), &format!("{SA6}/64")],
        );
        let (cb, sb) = lab.link(
            &c,
            &[&format!("{B4}/24"), &format!("{}/64", b6.0)],
            &s,
            &[&format!("{SB4}/24"), &format!("{}/64", b6.1)],
        );
        let net = Multihomed {
            lab,
            c,
            s,
            c_if: [ca, cb],
            s_if: [sa, sb],
        };
        net.on_server(&format!("ip addr add {R4}/32 dev lo"));
        net.on_server(&format!("ip -6 addr add {R6}/128 dev lo"));
        Some(net)
    }

    /// Runs a command (split on spaces) in the client namespace.
    fn on_client(&self, command: &str) -> String {
        let args: Vec<&str> = command.split_whitespace().collect();
        self.lab.run(&self.c, &args)
    }

    fn on_server(&self, command: &str) -> String {
        let args: Vec<&str> = command.split_whitespace().collect();
        self.lab.run(&self.s, &args)
    }

    /// Policy routing on the client: packets from `from` to `dest` use
    /// `table`, where `route` says how (`via X dev Y`, or `unreachable`).
    fn source_route(&self, from: &str, table: u32, dest: &str, route: &str) {
        let family = if from.contains(':') { "-6" } else { "-4" };
        self.on_client(&format!("ip {family} rule add from {from} table {table}"));
        let command = if route == "unreachable" {
            format!("ip {family} route add unreachable {dest} table {table}")
        } else {
            format!("ip {family} route add {dest} {route} table {table}")
        };
        self.on_client(&command);
    }

    /// `nft list` of the server's table `inet t`, as counter values by comment.
    fn counters(&self) -> HashMap<String, u64> {
        let listing = self.on_server("nft list table inet t");
        listing
            .lines()
            .filter_map(|line| {
                let packets = line.split("counter packets ").nth(1)?;
                let packets: u64 = packets.split_whitespace().next()?.parse().ok()?;
                let comment = line.split("comment \"").nth(1)?.split('"').next()?;
                Some((comment.to_owned(), packets))
            })
            .collect()
    }

    fn listen(&self, addr: &str) -> Server {
        self.s.listen(sock(addr, PORT))
    }
}

/// Server-side nftables: count SYNs to the service per incoming link, and
/// drop those from `dropped` (a client source) when they arrive over link A.
fn server_rules(net: &Multihomed, dropped: &[&str]) -> String {
    let [sa, sb] = &net.s_if;
    let syn = "tcp flags & (syn | ack) == syn";
    let mut rules = format!(
        "        iifname \"{sa}\" tcp dport {PORT} {syn} counter comment \"syn-a\"\n\
         \x20       iifname \"{sb}\" tcp dport {PORT} {syn} counter comment \"syn-b\"\n"
    );
    for source in dropped {
        let family = if source.contains(':') { "ip6" } else { "ip" };
        rules.push_str(&format!(
            "        iifname \"{sa}\" {family} saddr {source} tcp dport {PORT} counter drop comment \"drop-{source}\"\n"
        ));
    }
    format!(
        "table inet t {{\n    chain input {{\n        type filter hook input priority filter; policy accept;\n{rules}    }}\n}}\n"
    )
}

/// What a connect in the lab gave back (the stream stays in its namespace).
#[derive(Debug)]
struct Connected {
    report: Report,
    local: SocketAddr,
    peer: SocketAddr,
}

/// Connects from inside `host` with `connector`.
fn connect_in(
    host: &Host,
    connector: Connector,
    remote: SocketAddr,
) -> Result<Connected, ConnectError> {
    host.block_on(move || async move {
        let connection = tokio::time::timeout(GUARD, connector.connect(remote))
            .await
            .unwrap_or_else(|_| panic!("connect to {remote} still pending after {GUARD:?}"))?;
        Ok(Connected {
            local: connection.local_addr().expect("local address"),
            peer: connection.peer_addr(),
            report: connection.report().clone(),
        })
    })
}

fn listed(locals: [&str; 2], delay: Duration) -> Connector {
    Connector::builder()
        .local_addrs(locals.map(ip))
        .attempt_delay(delay)
        .timeout(GUARD)
        .build()
        .unwrap()
}

fn local_ip(attempt: &connect_by_list::Attempt) -> IpAddr {
    attempt
        .local()
        .unwrap_or_else(|| panic!("attempt without a local address: {attempt}"))
        .ip()
}

/// Both orders of two listed sources, one of which (`broken`) has its SYNs
/// dropped at the server: the caller's order decides (the two tie under
/// RFC 6724 §5), a working first pair wins alone, a broken first pair is
/// raced by the second after one attempt delay.
fn race_both_orders(net: &Multihomed, broken: &str, working: &str, remote: &str) {
    let remote = sock(remote, PORT);

    // The plan: both pairs, in the caller's order.
    for order in [[working, broken], [broken, working]] {
        let connector = listed(order, Duration::from_secs(2));
        let planned = net
            .c
            .block_on(move || async move { connector.plan(remote).await })
            .unwrap_or_else(|e| panic!("plan: {e}"));
        let pairs: Vec<(Option<IpAddr>, SocketAddr, Option<IpAddr>)> = planned
            .attempts()
            .iter()
            .map(|a| (a.local().map(|l| l.ip()), a.remote(), a.source()))
            .collect();
        let want: Vec<(Option<IpAddr>, SocketAddr, Option<IpAddr>)> = order
            .iter()
            .map(|local| (Some(ip(local)), remote, Some(ip(local))))
            .collect();
        assert_eq!(pairs, want, "plan from {order:?}");
    }

    // Working pair first: it connects in one round trip, long before the
    // attempt delay (2 s, to leave no doubt) would start the second pair.
    let got = connect_in(
        &net.c,
        listed([working, broken], Duration::from_secs(2)),
        remote,
    )
    .unwrap_or_else(|e| panic!("working pair first: {e}"));
    let attempts = got.report.attempts();
    assert_eq!(
        attempts.len(),
        1,
        "the first pair should win before the second starts:\n{}",
        got.report.timeline()
    );
    assert_eq!(attempts[0].outcome(), Outcome::Connected);
    assert_eq!(attempts[0].remote(), remote);
    assert_eq!(local_ip(&attempts[0]), ip(working));
    assert_eq!(got.local.ip(), ip(working));
    assert_eq!(got.peer, remote);
    assert_eq!(
        got.report.not_tried().len(),
        1,
        "the broken pair was planned too"
    );
    assert_eq!(
        net.counters()[&format!("drop-{broken}")],
        0,
        "nothing went out from the broken source"
    );

    // Broken pair first: it stays pending (SYNs dropped); the working pair
    // starts one attempt delay later and wins; the broken one loses.
    let delay = Duration::from_millis(100);
    let got = connect_in(&net.c, listed([broken, working], delay), remote)
        .unwrap_or_else(|e| panic!("broken pair first: {e}"));
    let attempts = got.report.attempts();
    let table = got.report.timeline();
    eprintln!("broken {broken} first:\n{table}");
    assert_eq!(attempts.len(), 2, "both pairs:\n{table}");
    let (first, second) = (&attempts[0], &attempts[1]);
    assert_eq!(local_ip(first), ip(broken), "{table}");
    assert_eq!(local_ip(second), ip(working), "{table}");
    assert!(first.remote() == remote && second.remote() == remote);
    assert_eq!(first.outcome(), Outcome::Lost, "{table}");
    assert_eq!(second.outcome(), Outcome::Connected, "{table}");
    assert!(
        second.started().saturating_sub(first.started()) >= delay,
        "the second pair must wait one attempt delay ({delay:?}):\n{table}"
    );
    assert!(
        first.ended() >= second.ended(),
        "closed when the winner won"
    );
    assert_eq!(got.report.winner().map(local_ip), Some(ip(working)));
    assert_eq!(got.local.ip(), ip(working));
    assert!(got.report.skipped().is_empty() && got.report.not_tried().is_empty());
    let counters = net.counters();
    assert!(
        counters[&format!("drop-{broken}")] >= 1,
        "the broken pair's SYN reached the server over link A: {counters:?}"
    );
}

/// Two IPv4 sources, each routed over its own link; SYNs from A dropped.
#[test]
fn every_local_source_is_raced_ipv4() {
    let Some(net) = Multihomed::new(("2001:db8:b::10", "2001:db8:b::1")) else {
        return;
    };
    let [ca, cb] = &net.c_if;
    net.source_route(A4, 100, R4, &format!("via {SA4} dev {ca}"));
    net.source_route(B4, 200, R4, &format!("via {SB4} dev {cb}"));
    net.lab.nft(&net.s, &server_rules(&net, &[A4]));
    let _server = net.listen(R4);
    race_both_orders(&net, A4, B4, R4);
}

/// The same with two IPv6 sources: 2001:db8:a::10 and 2001:db8:b::10 share
/// 45 bits with 2001:db8:c::1, so RFC 6724 §5 ties and the caller decides.
#[test]
fn every_local_source_is_raced_ipv6() {
    let Some(net) = Multihomed::new(("2001:db8:b::10", "2001:db8:b::1")) else {
        return;
    };
    let [ca, cb] = &net.c_if;
    net.source_route(A6, 100, R6, &format!("via {SA6} dev {ca}"));
    net.source_route(
        "2001:db8:b::10",
        200,
        R6,
        &format!("via 2001:db8:b::1 dev {cb}"),
    );
    net.lab.nft(&net.s, &server_rules(&net, &[A6]));
    let _server = net.listen(R6);
    race_both_orders(&net, A6, "2001:db8:b::10", R6);
}

/// `Builder::interface` (SO_BINDTODEVICE) with two listed sources: every SYN
/// leaves through link B, also the one from link A's address (which link
/// A's policy route would otherwise carry), and link B's source wins.
#[test]
fn interface_binding_sends_every_attempt_through_that_device() {
    let Some(net) = Multihomed::new(("2001:db8:b::10", "2001:db8:b::1")) else {
        return;
    };
    let [ca, cb] = &net.c_if;
    net.source_route(A4, 100, R4, &format!("via {SA4} dev {ca}"));
    net.source_route(B4, 200, R4, &format!("via {SB4} dev {cb}"));
    net.lab.nft(&net.s, &server_rules(&net, &[]));
    let _server = net.listen(R4);
    let remote = sock(R4, PORT);

    // Without the binding, A (listed first) wins over link A.
    let got = connect_in(&net.c, listed([A4, B4], Duration::from_millis(100)), remote)
        .unwrap_or_else(|e| panic!("unbound: {e}"));
    assert_eq!(got.local.ip(), ip(A4), "{}", got.report.timeline());
    let before = net.counters();
    assert_eq!((before["syn-a"], before["syn-b"]), (1, 0), "{before:?}");

    let bound = Connector::builder()
        .local_addrs([ip(A4), ip(B4)])
        .interface(cb.clone())
        .attempt_delay(Duration::from_millis(100))
        .timeout(GUARD)
        .build()
        .unwrap();
    let got = connect_in(&net.c, bound, remote).unwrap_or_else(|e| panic!("bound: {e}"));
    let table = got.report.timeline();
    eprintln!("bound to {cb}:\n{table}");
    assert_eq!(got.local.ip(), ip(B4), "link B's source wins:\n{table}");
    assert_eq!(got.peer, remote);
    let attempts = got.report.attempts();
    assert_eq!(local_ip(&attempts[0]), ip(A4), "{table}");
    assert_ne!(attempts[0].outcome(), Outcome::Connected, "{table}");
    assert_eq!(got.report.winner().map(local_ip), Some(ip(B4)), "{table}");
    let after = net.counters();
    assert_eq!(
        after["syn-a"], before["syn-a"],
        "no SYN may leave through link A once bound to {cb}: {after:?}\n{table}"
    );
    // Both attempts' SYNs came in over link B: A's too (its SYN-ACK goes
    // back over link A, where the bound socket does not see it, so it
    // stays pending and loses).
    assert!(
        after["syn-b"] - before["syn-b"] >= 2,
        "{before:?} -> {after:?}\n{table}"
    );
}

/// The pairs a connector with `local_addrs_from_interfaces` plans for
/// `targets`, planned inside `host`, with what it skipped.
fn plan_in(host: &Host, targets: Vec<SocketAddr>) -> (Vec<(IpAddr, SocketAddr)>, Report) {
    let connector = Connector::builder()
        .local_addrs_from_interfaces()
        .timeout(GUARD)
        .build()
        .unwrap();
    let planned = host
        .block_on(move || async move { connector.plan(targets).await })
        .unwrap_or_else(|e| panic!("plan: {e}"));
    let pairs: Vec<(IpAddr, SocketAddr)> = planned
        .attempts()
        .iter()
        .map(|a| (a.local().expect("a local address").ip(), a.remote()))
        .collect();
    (pairs, planned.report().clone())
}

fn show(pairs: &[(IpAddr, SocketAddr)]) -> String {
    pairs
        .iter()
        .map(|(local, remote)| format!("\n  {local} -> {remote}"))
        .collect()
}

/// `local_addrs_from_interfaces` plans only pairs that can work: loopback
/// sources only for loopback destinations, no link-local source for a
/// global destination, no source of the other family, no deprecated
/// address, and no source the kernel has no route from; a destination that
/// no source reaches is skipped, with the reason for each source. Every
/// planned pair is then connected on its own, to show that it works.
#[test]
fn interface_addresses_pair_only_where_they_can_work() {
    // Link B's IPv6 prefix shares 60 bits with R6 (link A's: 45), so RFC 6724
    // §5 rule 8 puts B's IPv6 source first whatever the interface order.
    let b6 = "2001:db8:c:b::10";
    let Some(net) = Multihomed::new((b6, "2001:db8:c:b::1")) else {
        return;
    };
    let [ca, cb] = &net.c_if;
    // IPv4: R4 only from A (B's table says unreachable); IPv6: R6 from both.
    net.source_route(A4, 100, R4, &format!("via {SA4} dev {ca}"));
    net.source_route(B4, 200, R4, "unreachable");
    net.source_route(A6, 100, R6, &format!("via {SA6} dev {ca}"));
    net.source_route(b6, 200, R6, &format!("via 2001:db8:c:b::1 dev {cb}"));
    // A deprecated address (preferred lifetime 0) must not be used.
    let deprecated = "2001:db8:a::dead";
    net.on_client(&format!(
        "ip -6 addr add {deprecated}/64 dev {ca} nodad preferred_lft 0"
    ));
    let shown = net.on_client("ip -6 addr show");
    assert!(
        shown
            .lines()
            .any(|l| l.contains(deprecated) && l.contains("deprecated")),
        "{shown}"
    );
    let link_local: Vec<&str> = shown
        .lines()
        .filter_map(|l| l.trim().strip_prefix("inet6 fe80::")?.split('/').next())
        .collect();
    assert_eq!(link_local.len(), 2, "one fe80:: address per veth:\n{shown}");
    let _r4 = net.listen(R4);
    let _r6 = net.listen(R6);
    let _lo4 = net.c.listen(sock("127.0.0.1", PORT));
    let _lo6 = net.c.listen(sock("::1", PORT));

    // Global destinations, one of each family that no source can reach.
    let (unroutable4, unroutable6) = (sock("203.0.113.99", PORT), sock("2001:db8:ffff::1", PORT));
    let (global, report) = plan_in(
        &net.c,
        vec![sock(R4, PORT), sock(R6, PORT), unroutable4, unroutable6],
    );
    // RFC 6724: IPv6 first (precedence 40 over 35), B's source first for R6
    // (rule 8), then families interleave (RFC 8305 §4). No (B4, R4): the
    // kernel has no route from B4 there. No loopback, link-local, deprecated
    // or other-family source anywhere.
    let expected: Vec<(IpAddr, SocketAddr)> = vec![
        (ip(b6), sock(R6, PORT)),
        (ip(A4), sock(R4, PORT)),
        (ip(A6), sock(R6, PORT)),
    ];
    assert_eq!(global, expected, "plan:{}\n{report}", show(&global));
    let skipped = report.skipped();
    assert_eq!(
        skipped.iter().map(|s| s.remote()).collect::<Vec<_>>(),
        [unroutable4, unroutable6],
        "{report}"
    );
    let why = |at: usize| match skipped[at].reason() {
        SkipReason::NoUsableLocal(why) => why.clone(),
        other => panic!("{other:?}"),
    };
    let (why4, why6) = (why(0), why(1));
    for source in [A4, B4] {
        assert!(why4.contains(&format!("{source}: no route")), "{why4}");
    }
    assert!(
        why4.contains("127.0.0.1: loopback source for a non-loopback destination"),
        "{why4}"
    );
    for source in [A6, b6] {
        assert!(why6.contains(&format!("{source}: no route")), "{why6}");
    }
    assert!(
        why6.contains("::1: loopback source for a non-loopback destination"),
        "{why6}"
    );
    for host_part in &link_local {
        assert!(
            why6.contains(&format!(
                "fe80::{host_part}: link-local source for a destination beyond the link"
            )),
            "{why6}"
        );
    }
    assert!(
        !why6.contains(deprecated),
        "deprecated source considered: {why6}"
    );

    // Loopback destinations: every source of the family with a route (the
    // kernel routes any local source to loopback), but neither a link-local
    // one nor the deprecated one, and the destination's own address first
    // (RFC 6724 §5 rule 1).
    let (looped, report) = plan_in(&net.c, vec![sock("127.0.0.1", PORT), sock("::1", PORT)]);
    assert!(report.skipped().is_empty(), "{report}");
    for (dest, own, others) in [
        ("127.0.0.1", "127.0.0.1", vec![A4, B4]),
        ("::1", "::1", vec![A6, b6]),
    ] {
        let sources: Vec<IpAddr> = looped
            .iter()
            .filter(|(_, remote)| remote.ip() == ip(dest))
            .map(|(local, _)| *local)
            .collect();
        assert_eq!(sources.first(), Some(&ip(own)), "plan:{}", show(&looped));
        let mut rest: Vec<IpAddr> = sources[1..].to_vec();
        rest.sort();
        let mut want: Vec<IpAddr> = others.into_iter().map(ip).collect();
        want.sort();
        assert_eq!(rest, want, "plan:{}", show(&looped));
    }
    assert_eq!(looped.len(), 6, "plan:{}", show(&looped));

    // Every planned pair works: each connects on its own.
    for (local, remote) in global.into_iter().chain(looped) {
        let single = Connector::builder()
            .local_addrs([local])
            .timeout(GUARD)
            .build()
            .unwrap();
        let got = connect_in(&net.c, single, remote)
            .unwrap_or_else(|e| panic!("planned pair {local} -> {remote} failed: {e}"));
        assert_eq!((got.local.ip(), got.peer), (local, remote));
    }
}
