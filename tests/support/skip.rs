//! What a test does when this machine cannot run it: skip where that is allowed, fail where it is
//! not.
//!
//! With `CONNECT_BY_LIST_LAB=required` in the environment (`.ci/run` sets it; CI runs as root,
//! with iproute2, nftables and IPv6 loopback), a test that cannot build its network namespaces,
//! or finds no IPv6 loopback, panics with the reason: it fails instead of reporting `ok` for
//! checks it never made. Without it the test returns early, and the skip is visible: a line
//! `SKIPPED <test>: <why>` written to the process's real stderr, which libtest does not capture,
//! so `cargo test` shows it without `--nocapture`.
#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;

/// The environment variable that makes skipping a failure.
pub const VAR: &str = "CONNECT_BY_LIST_LAB";
/// Its one accepted value besides unset (or empty, or `optional`).
pub const REQUIRED: &str = "required";

/// Whether every test must run here (`CONNECT_BY_LIST_LAB=required`). Any value other than
/// `required`, `optional` or empty panics, naming it, so a typo cannot turn the requirement off.
pub fn required() -> bool {
    match std::env::var(VAR) {
        Ok(value) if value == REQUIRED => true,
        Ok(value) if value.is_empty() || value == "optional" => false,
        Ok(value) => panic!("{VAR}={value:?}: expected `{REQUIRED}`, `optional` or unset"),
        Err(std::env::VarError::NotPresent) => false,
        Err(std::env::VarError::NotUnicode(value)) => {
            panic!("{VAR}={value:?}: expected `{REQUIRED}`, `optional` or unset")
        }
    }
}

/// This test (or part of it) cannot run here, because of `why`. Panics with `why` when
/// [`required`]; otherwise prints `SKIPPED <test>: <why>` where `cargo test` shows it and
/// returns, and the caller skips.
pub fn cannot_run(why: &str) {
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("a test")
        .to_owned();
    if required() {
        panic!("{test} cannot run here, and {VAR}={REQUIRED}: {why}");
    }
    // `eprintln!` would be captured (and hidden) by libtest for a passing test; a write to the
    // stderr handle itself is not.
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: {why} (set {VAR}={REQUIRED} to make this a failure)"
    );
}

/// Whether this machine has IPv6 loopback (`::1` can be bound). When it has not, says so through
/// [`cannot_run`] (a failure where the environment is required), with `what` naming what is
/// skipped.
pub fn ipv6_loopback(what: &str) -> bool {
    let have = std::net::TcpListener::bind("[::1]:0").is_ok();
    if !have {
        cannot_run(&format!("no IPv6 loopback on this machine: {what}"));
    }
    have
}
