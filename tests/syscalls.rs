//! The system calls one connect makes, counted with `strace` against Tokio's
//! `TcpStream::connect` and hyper-util's `HttpConnector` (the README's "System calls" and "Route
//! lookups").
//!
//! The outer test re-executes this test binary under `strace -f`, running only the inner test,
//! once per contender and destination. The inner test makes one connect to warm up (one-time
//! setup stays out of the count), then the measured connect between two `getppid` calls that
//! serve as markers in the trace. Only socket-level calls are traced (`epoll_wait` and the like
//! depend on timing, not on the connect). The listeners live in the outer, untraced process.
//! Only loopback is dialed.
//!
//! Needs `strace` (and ptrace); skips otherwise, or fails where `CONNECT_BY_LIST_LAB=required`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};

/// Set (to `<contender>|<addr>[,<addr>]`) only for the re-executed inner test.
const INNER_ENV: &str = "CBL_SYSCALLS_INNER";
const INNER_TEST: &str = "inner_one_connect";
/// The calls traced: everything a connect does to a socket, and the marker.
const TRACED: &str =
    "socket,bind,connect,setsockopt,getsockopt,getsockname,getpeername,ioctl,fcntl,epoll_ctl,close,getppid";

/// A listener that accepts and keeps every connection, on its own thread.
fn listen(addr: &str) -> SocketAddr {
    let listener = TcpListener::bind(addr).unwrap();
    let local = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            held.push(stream);
        }
    });
    local
}

/// The system calls (name, arguments as strace shows them) the inner test's measured connect
/// made, for `contender` to `addrs`.
fn trace(contender: &str, addrs: &[SocketAddr]) -> Vec<(String, String)> {
    let exe = std::env::current_exe().unwrap();
    let out = std::env::temp_dir().join(format!(
        "cbl-syscalls-{}-{contender}-{}.trace",
        std::process::id(),
        addrs.len()
    ));
    let spec = format!(
        "{contender}|{}",
        addrs
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let output = Command::new("strace")
        .args(["-f", "-qq", "-e", &format!("trace={TRACED}"), "-o"])
        .arg(&out)
        .arg(&exe)
        .args(["--exact", INNER_TEST, "--ignored", "--test-threads=1"])
        .env(INNER_ENV, &spec)
        .stdin(Stdio::null())
        .output()
        .expect("run strace");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    assert!(
        output.status.success(),
        "strace of the inner test for {spec} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // "<pid> name(args) = result": the calls between the two markers.
    let calls: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let call = line.split_once(' ').map_or(line, |(_, rest)| rest).trim();
            let (name, args) = call.split_once('(')?;
            Some((name.to_owned(), args.to_owned()))
        })
        .collect();
    let markers: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| name == "getppid")
        .map(|(at, _)| at)
        .collect();
    assert_eq!(
        markers.len(),
        2,
        "two markers in the trace of {spec}:\n{text}"
    );
    let mut measured = calls[markers[0] + 1..markers[1]].to_vec();
    if cfg!(debug_assertions) {
        // Tokio's `TcpStream::from_std` checks, in builds with debug assertions only, that the
        // socket is nonblocking: an `fcntl(F_GETFL)` right before the socket is registered. A
        // release build (what users ship, and what the README's numbers are) does not make it.
        if let Some(at) = measured.windows(2).position(|pair| {
            pair[0].0 == "fcntl"
                && pair[0].1.contains("F_GETFL")
                && pair[1].0 == "epoll_ctl"
                && pair[1].1.contains("EPOLL_CTL_ADD")
        }) {
            measured.remove(at);
        }
    }
    measured
}

fn names(calls: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for (name, _) in calls {
        *count.entry(name.clone()).or_insert(0) += 1;
    }
    count
}

/// The `socket` calls of a type, e.g. `SOCK_STREAM` (attempts) or `SOCK_DGRAM` (route probes).
fn sockets(calls: &[(String, String)], kind: &str) -> usize {
    calls
        .iter()
        .filter(|(name, args)| name == "socket" && args.contains(kind))
        .count()
}

/// One connect to a live loopback address costs Tokio's calls plus one `setsockopt` over IPv4
/// (`TCP_NODELAY`, on by default), and plus four over IPv6 (`IPV6_V6ONLY`, `TCP_NODELAY`, and
/// `IPV6_RECVERR` set for the connect and cleared after it); hyper-util's `HttpConnector`, with
/// its defaults, costs Tokio's plus three. A lone address and a loopback pair (`::1` and
/// `127.0.0.1`, like `localhost`) open no route-probe (UDP) socket.
#[test]
fn system_calls_of_one_connect_against_tokio_and_hyper_util() {
    match Command::new("strace").arg("-V").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            support::skip::cannot_run(&format!(
                "`strace -V` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
            return;
        }
        Err(e) => {
            support::skip::cannot_run(&format!("no `strace` here: {e}"));
            return;
        }
    }
    let v4 = listen("127.0.0.1:0");
    // The positive control for the checks that no route is probed: a probe is seen.
    let probed = trace("cbl_local", &[v4]);
    eprintln!(
        "from a listed 127.0.0.1: {} calls {:?}",
        probed.len(),
        names(&probed)
    );
    assert_eq!(
        sockets(&probed, "SOCK_DGRAM"),
        1,
        "the route probe: {probed:?}"
    );
    let mut families = vec![("IPv4", v4)];
    if support::skip::ipv6_loopback("the IPv6 half") {
        families.push(("IPv6", listen("[::1]:0")));
    }
    for (family, addr) in &families {
        let tokio = trace("tokio", &[*addr]);
        let ours = trace("cbl", &[*addr]);
        let hyper = trace("hyper", &[*addr]);
        eprintln!(
            "{family} {addr}: {} calls for Tokio {:?}; {} for connect-by-list {:?}; {} for \
             hyper-util {:?}",
            tokio.len(),
            names(&tokio),
            ours.len(),
            names(&ours),
            hyper.len(),
            names(&hyper)
        );
        let more = if *family == "IPv4" { 1 } else { 4 };
        assert_eq!(
            ours.len(),
            tokio.len() + more,
            "{family}: connect-by-list {ours:?}\nTokio {tokio:?}"
        );
        let mut extra = names(&ours);
        for (name, count) in names(&tokio) {
            *extra.entry(name).or_insert(0) -= count;
        }
        extra.retain(|_, count| *count != 0);
        assert_eq!(
            extra,
            BTreeMap::from([("setsockopt".to_owned(), more)]),
            "{family}: what connect-by-list adds"
        );
        assert_eq!(sockets(&ours, "SOCK_STREAM"), 1, "{family}: {ours:?}");
        // hyper-util: `TCP_NODELAY` (set to its default, off) and nonblocking mode set with
        // two `fcntl`s.
        assert_eq!(
            hyper.len(),
            tokio.len() + 3,
            "{family}: hyper-util {hyper:?}\nTokio {tokio:?}"
        );
        assert_eq!(
            sockets(&ours, "SOCK_DGRAM"),
            0,
            "{family}: a lone address probes no route"
        );
    }
    if let [(_, v4), (_, v6)] = families[..] {
        let pair = trace("cbl", &[v6, v4]);
        eprintln!(
            "::1 and 127.0.0.1 together: {} calls {:?}",
            pair.len(),
            names(&pair)
        );
        assert!(
            sockets(&pair, "SOCK_STREAM") >= 1,
            "an attempt's socket: {pair:?}"
        );
        assert_eq!(
            sockets(&pair, "SOCK_DGRAM"),
            0,
            "loopback destinations probe no route: {pair:?}"
        );
    }
}

/// Runs only when re-executed by the test above, under strace.
#[test]
#[ignore = "run by system_calls_of_one_connect_against_tokio_and_hyper_util under strace"]
fn inner_one_connect() {
    let spec = std::env::var(INNER_ENV).unwrap_or_else(|_| {
        panic!(
            "{INNER_TEST} runs only under system_calls_of_one_connect_against_tokio_and_hyper_util"
        )
    });
    let (contender, addrs) = spec.split_once('|').expect("<contender>|<addrs>");
    let addrs: Vec<SocketAddr> = addrs.split(',').map(|a| a.parse().unwrap()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // No history: the measured connect plans from the addresses, as the first one does.
        let connector = connect_by_list::Connector::builder()
            .history_capacity(0)
            .build()
            .unwrap();
        // A listed local address is paired with each destination by a route probe, loopback
        // or not.
        let from_loopback = connect_by_list::Connector::builder()
            .history_capacity(0)
            .local_addrs([std::net::Ipv4Addr::LOCALHOST.into()])
            .build()
            .unwrap();
        let http = hyper_util::client::legacy::connect::HttpConnector::new();
        let connect = || {
            let connector = connector.clone();
            let from_loopback = from_loopback.clone();
            let mut http = http.clone();
            let addrs = addrs.clone();
            let contender = contender.to_owned();
            async move {
                match contender.as_str() {
                    "tokio" => drop(tokio::net::TcpStream::connect(addrs[0]).await.unwrap()),
                    "cbl" => drop(connector.connect(addrs).await.unwrap()),
                    "cbl_local" => drop(from_loopback.connect(addrs).await.unwrap()),
                    "hyper" => {
                        use tower_service::Service as _;
                        let uri: http::Uri = format!("http://{}/", addrs[0]).parse().unwrap();
                        drop(http.call(uri).await.unwrap());
                    }
                    other => panic!("unknown contender {other:?}"),
                }
            }
        };
        connect().await;
        // SAFETY: getppid has no preconditions; it marks the start and end in the trace.
        unsafe { libc::syscall(libc::SYS_getppid) };
        connect().await;
        unsafe { libc::syscall(libc::SYS_getppid) };
    });
}
