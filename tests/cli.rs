//! The command-line example, run as a user would, against loopback endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::example;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Output;

use serde_json::Value;
use support::loopback::{Blackhole, Refused};

fn run(args: &[&str]) -> Output {
    std::process::Command::new(example())
        .args(args)
        .output()
        .expect("the example runs")
}

fn json(output: &Output) -> Value {
    let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8");
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one line on stdout: {stdout}"
    );
    serde_json::from_str(&stdout).expect("one JSON object")
}

#[tokio::test]
async fn json_output_describes_every_attempt() {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let blackhole = Blackhole::new(ip).unwrap();
    let refused = Refused::new(ip).unwrap();
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    let live = listener.local_addr().unwrap().to_string();
    let (b, r) = (blackhole.addr().to_string(), refused.addr().to_string());
    let output = run(&[
        "--json",
        "--attempt-delay",
        "30",
        "--timeout",
        "5000",
        &b,
        &r,
        &live,
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json(&output);
    assert_eq!(report["ok"], true);
    assert_eq!(report["peer"], live.as_str());
    assert!(report["local"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(report["error"].is_null());
    assert!(report["elapsed_ms"].as_f64().unwrap() >= 30.0);
    let attempts = report["attempts"].as_array().unwrap();
    let outcome = |i: usize| attempts[i]["outcome"].as_str().unwrap();
    assert_eq!(
        (outcome(0), outcome(1), outcome(2)),
        ("lost", "refused", "connected")
    );
    assert_eq!(attempts[0]["remote"], b.as_str());
    // Starts are in order, and each ends after it starts.
    assert!(attempts[0]["start_ms"].as_f64() <= attempts[1]["start_ms"].as_f64());
    assert!(attempts[1]["start_ms"].as_f64() <= attempts[2]["start_ms"].as_f64());
    assert!(attempts[0]["error"].is_null());
    assert!(attempts[1]["error"].as_str().unwrap().contains("refused"));
    assert_eq!(attempts[2]["local"], report["local"]);
    for attempt in attempts {
        assert!(attempt["end_ms"].as_f64() >= attempt["start_ms"].as_f64());
    }
}

#[tokio::test]
async fn json_output_on_failure_exits_1() {
    let refused = Refused::new(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let output = run(&["--json", &refused.addr().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["ok"], false);
    assert!(report["peer"].is_null());
    assert!(report["error"].as_str().unwrap().contains("refused"));
    assert_eq!(report["attempts"][0]["outcome"], "refused");
}

#[test]
fn bad_arguments_exit_2_and_name_the_bad_part() {
    for (args, named) in [
        (vec!["db1"], "\"db1\": missing port"),
        (vec!["127.0.0.1:0"], "port 0"),
        (
            vec!["--timeout", "soon", "a.example:1"],
            "--timeout \"soon\"",
        ),
        (
            vec!["--attempt-delay", "5", "127.0.0.1:9"],
            "attempt_delay: 5ms",
        ),
        (
            vec!["--frobnicate", "a.example:1"],
            "unknown option --frobnicate",
        ),
        (vec!["--json"], "no TARGET"),
        (
            vec!["-4", "-6", "127.0.0.1:9"],
            "-4 and -6 do not go together",
        ),
    ] {
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

#[test]
fn plan_lists_attempts_in_order_with_sources_and_connects_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let v4 = format!("127.0.0.1:{port}");
    let v6 = format!("[::1]:{port}");
    let output = run(&["--plan", "--json", &v4, &v6]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let plan = json(&output);
    let rows = plan["plan"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    // RFC 6724 rule 6: ::1 (precedence 50) before IPv4 (35), whatever the order given.
    if support::skip::ipv6_loopback("the check that ::1 is planned first") {
        assert_eq!(rows[0]["remote"], v6.as_str());
        assert_eq!(rows[0]["source"], "::1");
    }
    assert!(rows
        .iter()
        .any(|r| r["remote"] == v4.as_str() && r["source"] == "127.0.0.1"));
    assert!(rows.iter().all(|r| r["local"].is_null()));
    // Nothing connected to the listener.
    assert!(listener.accept().is_err());
    // The positive control: a connect, not a plan, is seen by the same check.
    let output = run(&["--json", &v4]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    listener.set_nonblocking(false).unwrap();
    assert!(listener.accept().is_ok(), "the connect reached it");
}

#[test]
fn deny_private_refuses_a_hidden_loopback_before_sending_anything() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let hidden = format!(
        "[::ffff:127.0.0.1]:{}",
        listener.local_addr().unwrap().port()
    );
    let output = run(&["--deny-private", "--json", &hidden]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert!(report["attempts"].as_array().unwrap().is_empty());
    assert_eq!(report["skipped"][0]["reason"], "denied");
    assert!(report["error"]
        .as_str()
        .unwrap()
        .contains("IPv4-mapped 127.0.0.1: loopback"));
    assert!(
        listener.accept().is_err(),
        "no connection reached the listener"
    );
    // The positive control: without the policy the same target connects, and the same check sees
    // the connection.
    let output = run(&["--json", &hidden]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    listener.set_nonblocking(false).unwrap();
    assert!(listener.accept().is_ok(), "the allowed connect reached it");
}

#[tokio::test]
async fn repeat_summarizes_every_run() {
    let live = support::loopback::live(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap()
        .to_string();
    let refused = Refused::new(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let output = run(&[
        "--repeat",
        "5",
        "--json",
        &refused.addr().to_string(),
        &live,
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let summary = json(&output);
    assert_eq!(summary["runs"], 5);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["peers"][live.as_str()], 5);
    let at = |key: &str| summary[key].as_f64().unwrap();
    assert!(at("min_ms") <= at("median_ms"));
    assert!(at("median_ms") <= at("p99_ms"));
    assert!(at("p99_ms") <= at("max_ms"));
}

#[tokio::test]
async fn local_addresses_show_in_every_attempt() {
    let live = support::loopback::live(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap()
        .to_string();
    let output = run(&["--local", "127.0.0.1", "--json", &live]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json(&output);
    let local = report["attempts"][0]["local"].as_str().unwrap();
    assert!(local.starts_with("127.0.0.1:"), "{local}");
    let output = run(&["--local", "nowhere", &live]);
    assert_eq!(output.status.code(), Some(2));
}

/// `--local all` pairs the destination with the addresses of the interfaces that are up: a
/// loopback destination gets the loopback source first (RFC 6724 §5 rule 2, same scope), then
/// any other IPv4 address of this machine, each as its own pair; the connect goes from the first.
#[test]
fn local_all_plans_from_interface_addresses() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let live = listener.local_addr().unwrap().to_string();
    let output = run(&["--plan", "--json", "--local", "all", &live]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let plan = json(&output);
    let rows = plan["plan"].as_array().unwrap();
    assert_eq!(rows[0]["local"], "127.0.0.1:0", "{plan}");
    for row in rows {
        assert_eq!(row["remote"], live.as_str(), "{plan}");
        let local: std::net::SocketAddr = row["local"].as_str().unwrap().parse().unwrap();
        assert!(local.is_ipv4(), "{plan}");
        assert_eq!(row["source"], local.ip().to_string().as_str(), "{plan}");
    }
    let output = run(&["--json", "--local", "all", &live]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json(&output);
    let local = report["local"].as_str().unwrap();
    assert!(local.starts_with("127.0.0.1:"), "{report}");
}

/// `-4` and `-6`: the other family's addresses are skipped with a reason, literals included.
/// Both literals are in the plan without either flag.
#[test]
fn one_family_flags_skip_the_other_family() {
    let (v4, v6) = ("127.0.0.1:9", "[::1]:9");
    let plan = json(&run(&["--plan", "--json", v4, v6]));
    let remotes: Vec<&str> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["remote"].as_str().unwrap())
        .collect();
    assert!(remotes.contains(&v4) && remotes.contains(&v6), "{plan}");
    for (flag, kept, skipped) in [("-4", v4, v6), ("-6", v6, v4)] {
        let output = run(&["--plan", "--json", flag, v4, v6]);
        assert_eq!(output.status.code(), Some(0), "{flag}: {output:?}");
        let plan = json(&output);
        let rows = plan["plan"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{flag}: {plan}");
        assert_eq!(rows[0]["remote"], kept, "{flag}: {plan}");
        // Loopback has a route: nothing is synthesized for it.
        assert!(rows[0]["nat64"].is_null(), "{flag}: {plan}");
        let skips = plan["skipped"].as_array().unwrap();
        assert_eq!(skips.len(), 1, "{flag}: {plan}");
        assert_eq!(skips[0]["remote"], skipped, "{flag}: {plan}");
        assert_eq!(skips[0]["reason"], "other_family", "{flag}: {plan}");
    }
}
