//! `connect --https-rr` end to end: hickory reads the system's DNS configuration, so the
//! example runs under `ip netns exec` in a client namespace whose `resolv.conf` points at a DNS
//! server this test runs in the server namespace (`support::dns`). That server answers A and
//! AAAA for `app.test` (each after [`ANSWER_DELAY`]) and, at once, an HTTPS record for
//! `_PORT._https.app.test` (RFC 9460 §9.1: the target's port is not 443) that sends clients to
//! another port, with `alpn=h2`, `no-default-alpn` and an `ipv4hint`. TLS servers listen on both
//! ports; they prefer HTTP/1.1, so `h2` is negotiated only when the record narrows the offer.
//! Nothing can leak: the client namespace has no route off its one link.
//!
//! Needs root and iproute2 (skips otherwise, fails where `CONNECT_BY_LIST_LAB=required`), and
//! the `connect` example built with `hickory` and `rustls` (`cargo test --all-features`).
#![cfg(all(target_os = "linux", feature = "hickory", feature = "rustls"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support::dns::{self, DnsServer, Https, Question, Rdata, Reply};
use support::example;
use support::netns::{run_in, Lab, NetnsEtc};

const NAME: &str = "app.test";
const C4: &str = "192.0.2.1/24";
const C6: &str = "2001:db8::1/64";
const S4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const S6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// How long the server holds back its A and AAAA answers; the HTTPS answer goes at once. An
/// attempt on the record's `ipv4hint` can start before this; one on a real address cannot.
const ANSWER_DELAY: Duration = Duration::from_millis(1500);
/// Longer than any connect here takes, so the first attempt is the only one: its winning is
/// the plan's doing, not a fallback's.
const ATTEMPT_DELAY: &str = "5000";
/// Only a guard against hanging forever, never an expectation.
const GUARD: Duration = Duration::from_secs(30);

/// The zone: `app.test` A [`S4`] and AAAA [`S6`], both after [`ANSWER_DELAY`]; HTTPS at
/// `_{target_port}._https.app.test`: priority 1, target ".", the record's port, ALPN `h2` only,
/// `ipv4hint` [`S4`]. Any other name does not exist.
fn dns_server(host: &support::netns::Host, target_port: u16, record_port: u16) -> DnsServer {
    let owner = format!("_{target_port}._https.{NAME}");
    let record = Https::new(1, ".")
        .alpn(&["h2"])
        .no_default_alpn()
        .port(record_port)
        .ipv4hint(&[S4]);
    let later = |records| Reply::After(ANSWER_DELAY, Box::new(Reply::Records(records)));
    DnsServer::start_in(host, SocketAddr::from((S4, 53)), move |question| {
        match (question.name.as_str(), question.qtype) {
            (NAME, dns::A) => later(vec![Rdata::A(S4)]),
            (NAME, dns::AAAA) => later(vec![Rdata::Aaaa(S6)]),
            (NAME, _) => Reply::Records(Vec::new()),
            (name, dns::HTTPS) if name == owner => {
                Reply::Records(vec![Rdata::Https(record.clone())])
            }
            _ => Reply::NoSuchName,
        }
    })
}

/// The test's certificate in a PEM file for `--ca`, removed on drop.
struct CaFile(PathBuf);

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The one JSON object the example printed; panics with its output unless it exited 0.
fn run_example(ns: &str, args: &[&str]) -> Value {
    let run = run_in(ns, &example(), args, &[], GUARD);
    let shown = format!(
        "connect {}:\n{}\n{}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    match run.status {
        Some(status) if status.success() => {}
        Some(status) => panic!("exited {status}: {shown}"),
        None => panic!("still running after {GUARD:?}: {shown}"),
    }
    println!("{shown}");
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {shown}"))
}

/// The winning attempt: the only one with outcome `connected`.
fn winner(json: &Value) -> &Value {
    let won: Vec<&Value> = json["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("no attempts: {json}"))
        .iter()
        .filter(|a| a["outcome"] == "connected")
        .collect();
    assert_eq!(won.len(), 1, "{json}");
    won[0]
}

/// HTTPS questions among `asked`.
fn https_questions(asked: &[Question]) -> Vec<&str> {
    asked
        .iter()
        .filter(|q| q.qtype == dns::HTTPS)
        .map(|q| q.name.as_str())
        .collect()
}

/// RFC 9460 §9.1 and Happy Eyeballs v3 through the command line: with `--https-rr`, the
/// example asks for `_PORT._https.NAME`, connects to the record's port on the record's
/// `ipv4hint` before the A and AAAA answers come (HEv3 §4: hints count as addresses), reports
/// the record on the winning attempt, and TLS negotiates `h2` because the record's ALPN says
/// so; without `--https-rr`, the same command asks no HTTPS question, connects to the target's
/// own port and negotiates the server's preference, `http/1.1`; `--plan --https-rr` lists the
/// record's endpoints first.
#[test]
fn the_command_line_follows_the_https_record() {
    let Some(mut lab) = Lab::new() else {
        return;
    };
    let c = lab.host("c");
    let s = lab.host("s");
    lab.link(
        &c,
        &[C4, C6],
        &s,
        &[&format!("{S4}/24"), &format!("{S6}/64")],
    );
    for family in ["-4", "-6"] {
        let routes = lab.run(&c, &["ip", family, "route", "show"]);
        assert!(!routes.contains("default"), "no way off the link: {routes}");
    }

    // Two TLS servers, each on every address of the server host: the target's port and the
    // record's. Both prefer HTTP/1.1 and can speak HTTP/2.
    let names = [NAME.to_string()];
    let (server_config, _, pem) = support::tls::configs(&names, &[b"http/1.1", b"h2"], &[]);
    let (ports_tx, ports_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let servers = s.spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let target = support::tls::https_server(server_config.clone(), "[::]:0").await;
                let record = support::tls::https_server(server_config, "[::]:0").await;
                ports_tx.send((target.port(), record.port())).unwrap();
                // Until the test drops the sender (also when it panics).
                let _ = stop_rx.await;
            });
    });
    let (target_port, record_port) = ports_rx.recv().expect("the TLS servers started");
    let dns = dns_server(&s, target_port, record_port);
    let _etc = NetnsEtc::new(
        c.name(),
        &[
            ("resolv.conf", format!("nameserver {S4}\n")),
            ("nsswitch.conf", "hosts: dns\n".to_owned()),
        ],
    );
    let ca = CaFile(std::env::temp_dir().join(format!("cbl-https-rr-{}.pem", std::process::id())));
    std::fs::write(&ca.0, pem).unwrap();
    let ca_path = ca.0.to_str().unwrap().to_owned();
    let target = format!("{NAME}:{target_port}");
    let record_v4 = SocketAddr::from((S4, record_port)).to_string();
    let record_v6 = SocketAddr::from((S6, record_port)).to_string();
    let owner = format!("_{target_port}._https.{NAME}");
    let tls = [
        "--json",
        "--timeout",
        "10000",
        "--attempt-delay",
        ATTEMPT_DELAY,
        "--tls",
        "--ca",
        &ca_path,
        "--alpn",
        "h2,http/1.1",
    ];

    // With --https-rr: the record's port, on its hint, with its ALPN.
    let args: Vec<&str> = tls.iter().copied().chain(["--https-rr", &target]).collect();
    let json = run_example(c.name(), &args);
    assert_eq!(json["peer"], record_v4.as_str(), "{json}");
    assert_eq!(json["tls"]["alpn"], "h2", "{json}");
    let attempts = json["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{json}");
    let won = winner(&json);
    assert_eq!(won["remote"], record_v4.as_str(), "{json}");
    assert_eq!(won["from"], "hint", "{json}");
    assert_eq!(
        won["https"],
        json!({"priority": 1, "target": NAME, "port": record_port, "alpn": ["h2"], "ech": false}),
        "{json}"
    );
    // Waiting for an A or AAAA answer could not start before it came.
    let started = won["start_ms"].as_f64().unwrap();
    assert!(started < ANSWER_DELAY.as_secs_f64() * 1000.0, "{json}");
    let asked = dns.asked();
    println!("DNS questions: {asked:?}");
    let first_run = asked.len();
    let https = https_questions(&asked);
    assert!(!https.is_empty(), "no HTTPS question: {asked:?}");
    assert!(https.iter().all(|name| *name == owner), "{asked:?}");

    // Without it: no HTTPS question, the target's own port, the server's ALPN preference.
    let args: Vec<&str> = tls.iter().copied().chain([target.as_str()]).collect();
    let json = run_example(c.name(), &args);
    let asked = dns.asked();
    let contrast = &asked[first_run..];
    assert!(
        contrast.iter().any(|q| q.name == NAME),
        "the system resolver asked this server: {contrast:?}"
    );
    assert_eq!(
        https_questions(contrast),
        Vec::<&str>::new(),
        "{contrast:?}"
    );
    let peer: SocketAddr = json["peer"].as_str().unwrap().parse().unwrap();
    assert_eq!(peer.port(), target_port, "{json}");
    assert_eq!(json["tls"]["alpn"], "http/1.1", "{json}");
    let won = winner(&json);
    assert_eq!(won["https"], Value::Null, "{json}");
    let from = won["from"].as_str().unwrap();
    assert!(["A", "AAAA"].contains(&from), "{json}");

    // --plan --https-rr: the record's endpoints first (RFC 6724 inside the group: IPv6 first),
    // with the real answers in place of the hint, then the target's own.
    let plan_run = dns.asked().len();
    let json = run_example(c.name(), &["--plan", "--json", "--https-rr", &target]);
    let plan: Vec<Value> = json["plan"]
        .as_array()
        .unwrap_or_else(|| panic!("no plan: {json}"))
        .iter()
        .map(|row| json!([row["remote"], row["from"], row["https"]["port"]]))
        .collect();
    let target_v4 = SocketAddr::from((S4, target_port)).to_string();
    let target_v6 = SocketAddr::from((S6, target_port)).to_string();
    assert_eq!(
        plan,
        [
            json!([record_v6, "AAAA", record_port]),
            json!([record_v4, "A", record_port]),
            json!([target_v6, "AAAA", null]),
            json!([target_v4, "A", null]),
        ],
        "{json}"
    );
    assert_eq!(json["plan"][0]["https"]["priority"], 1, "{json}");
    assert_eq!(json["plan"][0]["https"]["alpn"], json!(["h2"]), "{json}");
    assert!(!https_questions(&dns.asked()[plan_run..]).is_empty());

    drop(stop_tx);
    servers.join().expect("the TLS servers");
}
