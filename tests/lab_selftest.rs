//! Checks the network-namespace lab itself (tests/support/netns.rs): that
//! threads really run inside their host, that traffic flows between hosts,
//! and what a Linux connect returns under each fault. Needs root and
//! iproute2 (nftables for the fault tests); skips otherwise.
// Network namespaces, nftables and /proc are Linux's.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod support;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use support::netns::{Fault, Host, Lab};
use tokio::net::TcpStream;

const C4: &str = "192.0.2.1/24";
const C6: &str = "2001:db8::1/64";
const S4: &str = "192.0.2.2/24";
const S6: &str = "2001:db8::2/64";

/// Only a guard against hanging forever, never an expectation.
const GUARD: Duration = Duration::from_secs(20);

/// Client `c` and server `s` on one link, both families; `None` to skip.
fn pair(need_nft: bool) -> Option<(Lab, Host, Host)> {
    let mut lab = if need_nft {
        Lab::with_nft()?
    } else {
        Lab::new()?
    };
    let c = lab.host("c");
    let s = lab.host("s");
    lab.link(&c, &[C4, C6], &s, &[S4, S6]);
    Some((lab, c, s))
}

fn server_addrs(port: u16) -> [SocketAddr; 2] {
    [
        format!("192.0.2.2:{port}").parse().unwrap(),
        format!("[2001:db8::2]:{port}").parse().unwrap(),
    ]
}

/// A nonblocking connect through socket2 (like the crate's own), optionally
/// with IP_RECVERR / IPV6_RECVERR set first. Returns the result and how long
/// it took.
async fn connect_raw(addr: SocketAddr, recverr: bool) -> (io::Result<TcpStream>, Duration) {
    let start = Instant::now();
    let result = async {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_nonblocking(true)?;
        if recverr {
            let (level, name) = if addr.is_ipv4() {
                (libc::IPPROTO_IP, libc::IP_RECVERR)
            } else {
                (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
            };
            let one: libc::c_int = 1;
            // SAFETY: valid fd, pointer and length of a c_int.
            let rc = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    level,
                    name,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let stream = TcpStream::from_std(std::net::TcpStream::from(sock))?;
        stream.writable().await?;
        match stream.take_error()? {
            Some(e) => Err(e),
            None => Ok(stream),
        }
    }
    .await;
    (result, start.elapsed())
}

/// Connect from `c` to each address; returns (addr, result errno or 0, time).
fn connect_all(
    c: &Host,
    addrs: Vec<SocketAddr>,
    recverr: bool,
) -> Vec<(SocketAddr, Option<i32>, Duration)> {
    c.block_on(move || async move {
        let mut out = Vec::new();
        for addr in addrs {
            let (r, took) = tokio::time::timeout(GUARD, connect_raw(addr, recverr))
                .await
                .unwrap_or_else(|_| panic!("connect to {addr} still pending after {GUARD:?}"));
            let errno = match r {
                Ok(_) => None,
                Err(e) => Some(e.raw_os_error().expect("an OS error")),
            };
            out.push((addr, errno, took));
        }
        out
    })
}

fn errno_name(errno: Option<i32>) -> String {
    match errno {
        None => "connected".into(),
        Some(e) => format!("{} ({e})", io::Error::from_raw_os_error(e)),
    }
}

/// Put `fault` on both server addresses, connect from the client without
/// and with RECVERR, and check the errno per family.
///
/// With RECVERR an ICMP error must end the connect at its first SYN (the
/// rule saw exactly one SYN): checked by counting, not by timing. Without it,
/// IPv6 needs the SYN retransmit (the lab delivers the ICMP while connect()
/// still holds the socket lock, see the module docs of support::netns):
/// printed only.
fn fault_case(fault: Fault, port: u16, want_v4: Option<i32>, want_v6: Option<i32>) {
    let Some((lab, c, s)) = pair(true) else {
        return;
    };
    let _servers: Vec<_> = server_addrs(port).iter().map(|a| s.listen(*a)).collect();
    for addr in server_addrs(port) {
        lab.fault(&s, addr, fault);
    }
    for recverr in [false, true] {
        for addr in server_addrs(port) {
            let syns_before = lab.fault_hits(&s, addr);
            let (_, errno, took) = connect_all(&c, vec![addr], recverr)[0];
            let syns = lab.fault_hits(&s, addr) - syns_before;
            eprintln!(
                "{fault:?} {addr} recverr={recverr}: {} after {took:?}, {syns} SYN(s)",
                errno_name(errno)
            );
            let want = if addr.is_ipv4() { want_v4 } else { want_v6 };
            assert_eq!(
                errno,
                want,
                "{fault:?} to {addr} (recverr={recverr}): got {}, want {}",
                errno_name(errno),
                errno_name(want)
            );
            // IPv4 TCP queues ICMP errors even without IP_RECVERR.
            if recverr || addr.is_ipv4() {
                assert_eq!(syns, 1, "{fault:?} to {addr}: failed at the first SYN");
            }
        }
    }
}

#[test]
fn lab_threads_and_sockets_live_in_their_host() {
    let Some((_lab, c, s)) = pair(false) else {
        return;
    };
    let root = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
    let (c_ns, s_ns) = (c.netns_inode(), s.netns_inode());
    assert!(root != c_ns && c_ns != s_ns);

    let (thread_ns, socket_ns) = c.block_on(|| async {
        let thread_ns = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        // Binding to the client's lab address works only inside its namespace
        // (and sends nothing).
        let listener = tokio::net::TcpListener::bind("192.0.2.1:0").await.unwrap();
        // Tokio's blocking pool (lookup_host, fs) is spawned from this thread
        // and inherits its namespace.
        let blocking_ns = tokio::task::spawn_blocking(|| {
            std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
        })
        .await
        .unwrap();
        assert_eq!(blocking_ns, thread_ns);
        (thread_ns, socket_netns_inode(listener.as_raw_fd()))
    });
    assert_eq!(thread_ns, c_ns, "block_on thread is in the client's netns");
    assert_eq!(socket_ns, c_ns, "its sockets are in the client's netns");
    let server = s.listen("[2001:db8::2]:0".parse().unwrap());
    assert_eq!(server.local_addr().ip().to_string(), "2001:db8::2");
    // The test's own thread never moved.
    assert_eq!(
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
        root
    );
    // Settings the lab relies on.
    assert_eq!(c.sysctl("net/ipv6/conf/default/accept_dad"), "0");
    assert_eq!(c.sysctl("net/ipv4/icmp_ratelimit"), "0");
    assert_eq!(s.sysctl("net/ipv6/icmp/ratelimit"), "0");
}

/// The netns of a socket, by SIOCGSKNS.
fn socket_netns_inode(fd: i32) -> u64 {
    const SIOCGSKNS: libc::c_ulong = 0x894C;
    // SAFETY: SIOCGSKNS takes no argument and returns a new fd or -1.
    let ns_fd = unsafe { libc::ioctl(fd, SIOCGSKNS as _) };
    assert!(ns_fd >= 0, "SIOCGSKNS: {}", io::Error::last_os_error());
    // SAFETY: a fresh fd we own.
    let ns = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(ns_fd) });
    ns.metadata().unwrap().ino()
}

#[test]
fn lab_plain_connect_both_families() {
    let Some((_lab, c, s)) = pair(false) else {
        return;
    };
    let servers: Vec<_> = server_addrs(0).iter().map(|a| s.listen(*a)).collect();
    let addrs: Vec<_> = servers.iter().map(|s| s.local_addr()).collect();
    let (locals, peers) = c.block_on(move || async move {
        let mut locals = Vec::new();
        let mut peers = Vec::new();
        for addr in addrs {
            let stream = tokio::time::timeout(GUARD, TcpStream::connect(addr))
                .await
                .expect("guard")
                .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
            locals.push(stream.local_addr().unwrap());
            peers.push(stream.peer_addr().unwrap());
        }
        (locals, peers)
    });
    assert_eq!(locals[0].ip().to_string(), "192.0.2.1");
    assert_eq!(locals[1].ip().to_string(), "2001:db8::1");
    assert_eq!(peers[0], servers[0].local_addr());
    assert_eq!(peers[1], servers[1].local_addr());
    // accept() runs on the server's thread after the handshake; wait for it
    // (bounded), it is not a timing assertion.
    for server in &servers {
        let deadline = Instant::now() + GUARD;
        while server.accepted() < 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(server.accepted(), 1);
    }
}

#[test]
fn lab_fault_reset_refuses() {
    fault_case(
        Fault::Reset,
        81,
        Some(libc::ECONNREFUSED),
        Some(libc::ECONNREFUSED),
    );
}

#[test]
fn lab_fault_port_unreachable_refuses() {
    fault_case(
        Fault::PortUnreachable,
        82,
        Some(libc::ECONNREFUSED),
        Some(libc::ECONNREFUSED),
    );
}

#[test]
fn lab_fault_host_unreachable() {
    fault_case(
        Fault::HostUnreachable,
        83,
        Some(libc::EHOSTUNREACH),
        Some(libc::EHOSTUNREACH),
    );
}

#[test]
fn lab_fault_admin_prohibited() {
    fault_case(
        Fault::AdminProhibited,
        84,
        Some(libc::EHOSTUNREACH),
        Some(libc::EACCES),
    );
}

#[test]
fn lab_fault_no_route() {
    fault_case(
        Fault::NoRoute,
        85,
        Some(libc::ENETUNREACH),
        Some(libc::ENETUNREACH),
    );
}

/// Every fault loads, per port and for all ports (port 0), both families.
#[test]
fn lab_every_ruleset_loads() {
    let Some((lab, _c, s)) = pair(true) else {
        return;
    };
    for (i, fault) in Fault::ALL.into_iter().enumerate() {
        for addr in server_addrs(100 + i as u16)
            .into_iter()
            .chain(server_addrs(0))
        {
            lab.fault(&s, addr, fault);
            assert_eq!(lab.fault_hits(&s, addr), 0);
        }
    }
    let listing = lab.run(&s, &["nft", "list", "table", "inet", "lab"]);
    assert_eq!(
        listing.matches("comment").count(),
        4 * Fault::ALL.len() * 2,
        "{listing}"
    );
    lab.clear_faults(&s);
    assert!(!lab.run(&s, &["nft", "list", "ruleset"]).contains("table"));
}

#[test]
fn lab_fault_blackhole_stays_pending() {
    let Some((lab, c, s)) = pair(true) else {
        return;
    };
    let servers: Vec<_> = server_addrs(86).iter().map(|a| s.listen(*a)).collect();
    for server in &servers {
        lab.fault(&s, server.local_addr(), Fault::Blackhole);
    }
    let addrs: Vec<_> = servers.iter().map(|s| s.local_addr()).collect();
    let pending = c.block_on(move || async move {
        let mut pending = Vec::new();
        for addr in addrs {
            let r =
                tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await;
            pending.push(r.is_err());
        }
        pending
    });
    assert_eq!(pending, [true, true]);
    for server in &servers {
        assert!(
            lab.fault_hits(&s, server.local_addr()) >= 1,
            "the SYN reached the rule"
        );
        assert_eq!(server.accepted(), 0);
    }
    // The positive control: without the rule, the same count sees each connection.
    lab.clear_faults(&s);
    let addrs: Vec<_> = servers.iter().map(|s| s.local_addr()).collect();
    c.block_on(move || async move {
        for addr in addrs {
            tokio::time::timeout(GUARD, TcpStream::connect(addr))
                .await
                .expect("guard")
                .unwrap_or_else(|e| panic!("connect {addr} without the rule: {e}"));
        }
    });
    for server in &servers {
        // accept() runs on the server's thread after the handshake (bounded wait, no timing).
        let deadline = Instant::now() + GUARD;
        while server.accepted() < 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(server.accepted(), 1, "{}", server.local_addr());
    }
}

#[test]
fn lab_fault_drop_first_syn_connects_on_retransmit() {
    let Some((lab, c, s)) = pair(true) else {
        return;
    };
    let servers: Vec<_> = server_addrs(87).iter().map(|a| s.listen(*a)).collect();
    for server in &servers {
        lab.fault(&s, server.local_addr(), Fault::DropFirstSyn);
    }
    let addrs: Vec<_> = servers.iter().map(|s| s.local_addr()).collect();
    // Both families at once, two connections each: each connection loses
    // exactly its own first SYN.
    let results = c.block_on(move || async move {
        let mut tasks = Vec::new();
        for addr in addrs.iter().chain(addrs.iter()).copied() {
            tasks.push(tokio::spawn(async move {
                let start = Instant::now();
                let r = tokio::time::timeout(GUARD, TcpStream::connect(addr))
                    .await
                    .expect("guard");
                (addr, r.map(|_| ()), start.elapsed())
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for (addr, r, took) in &results {
        eprintln!("DropFirstSyn {addr}: {r:?} after {took:?}");
        assert!(r.is_ok(), "{addr}: {r:?}");
    }
    for server in &servers {
        assert_eq!(
            lab.fault_hits(&s, server.local_addr()),
            2,
            "one dropped SYN per connection"
        );
    }
}

/// With the lab's ratelimit=0 every rejected SYN gets its ICMP error, so N
/// concurrent connects (with RECVERR, so each ends at its first error) send
/// exactly N SYNs. Under Linux's defaults (IPv4: 1 s per peer after a burst
/// of 6; IPv6: 100 ms, shifted right by 2 for a /64 route) most errors are
/// silently not sent, and those connects are still pending when their first
/// SYN retransmit is due.
#[test]
fn lab_icmp_ratelimit_zero_answers_every_syn() {
    const N: usize = 20;
    let Some((lab, c, s)) = pair(true) else {
        return;
    };
    for (port, default_limits) in [(88, true), (89, false)] {
        if default_limits {
            s.set_sysctls(&[
                ("net/ipv4/icmp_ratelimit", "1000"),
                ("net/ipv6/icmp/ratelimit", "100"),
            ]);
        } else {
            s.set_sysctls(&[
                ("net/ipv4/icmp_ratelimit", "0"),
                ("net/ipv6/icmp/ratelimit", "0"),
            ]);
        }
        // Under default limits, stop before the 1 s SYN retransmit.
        let bound = if default_limits {
            Duration::from_millis(500)
        } else {
            GUARD
        };
        let addrs = server_addrs(port);
        for addr in addrs {
            lab.fault(&s, addr, Fault::PortUnreachable);
        }
        let results = c.block_on(move || async move {
            let mut tasks = Vec::new();
            for addr in addrs {
                for _ in 0..N {
                    tasks.push(tokio::spawn(async move {
                        let r = tokio::time::timeout(bound, connect_raw(addr, true)).await;
                        (addr, r.map(|(r, _)| r.map(|_| ()).map_err(|e| e.kind())))
                    }));
                }
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        for addr in addrs {
            let mine = || results.iter().filter(|(a, _)| *a == addr);
            let refused = mine()
                .filter(|(_, r)| *r == Ok(Err(io::ErrorKind::ConnectionRefused)))
                .count();
            let pending = mine().filter(|(_, r)| r.is_err()).count();
            let syns = lab.fault_hits(&s, addr);
            eprintln!(
                "ICMP ratelimit {}: {addr}: {refused}/{N} refused, {pending} pending after {bound:?}, {syns} SYNs seen",
                if default_limits { "kernel default" } else { "0 (lab)" }
            );
            if !default_limits {
                assert_eq!(refused, N);
                assert_eq!(syns, N as u64, "every SYN answered, none retransmitted");
            } else if addr.is_ipv4() {
                // One token a second after a burst of 6: the gotcha the lab's
                // ratelimit=0 avoids. (IPv6 refills every 25 ms for a /64, so
                // its count depends on how fast the SYNs went out.)
                assert!(
                    refused < N,
                    "kernel default ICMP rate limit suppressed some errors"
                );
            }
        }
    }
}

/// C - R - S with separate subnets: routing through a router host, and a
/// fault on the router's forward hook (the ICMP then comes from the router).
#[test]
fn lab_router_forwards_and_faults() {
    let Some(mut lab) = Lab::with_nft() else {
        return;
    };
    let c = lab.host("c");
    let r = lab.router("r");
    let s = lab.host("s");
    lab.link(
        &c,
        &["192.0.2.1/24", "2001:db8:1::1/64"],
        &r,
        &["192.0.2.254/24", "2001:db8:1::fe/64"],
    );
    lab.link(
        &r,
        &["198.51.100.254/24", "2001:db8:2::fe/64"],
        &s,
        &["198.51.100.2/24", "2001:db8:2::2/64"],
    );
    lab.route(&c, "default", "192.0.2.254");
    lab.route(&c, "default", "2001:db8:1::fe");
    lab.route(&s, "default", "198.51.100.254");
    lab.route(&s, "default", "2001:db8:2::fe");
    let addrs: Vec<SocketAddr> = vec![
        "198.51.100.2:90".parse().unwrap(),
        "[2001:db8:2::2]:90".parse().unwrap(),
    ];
    let _servers: Vec<_> = addrs.iter().map(|a| s.listen(*a)).collect();
    for (addr, errno, took) in connect_all(&c, addrs.clone(), false) {
        eprintln!("routed {addr}: {} after {took:?}", errno_name(errno));
        assert_eq!(errno, None);
    }
    for addr in &addrs {
        lab.fault(&r, *addr, Fault::HostUnreachable);
    }
    for (addr, errno, took) in connect_all(&c, addrs.clone(), false) {
        eprintln!(
            "routed HostUnreachable at router {addr}: {} after {took:?}",
            errno_name(errno)
        );
        assert_eq!(errno, Some(libc::EHOSTUNREACH));
    }
    lab.clear_faults(&r);
    assert_eq!(
        connect_all(&c, addrs, false)
            .iter()
            .filter(|r| r.1.is_none())
            .count(),
        2
    );
}

#[test]
fn lab_teardown_on_panic() {
    let Some(probe) = Lab::new() else { return };
    drop(probe);
    let names = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = names.clone();
    let result = std::panic::catch_unwind(move || {
        let mut lab = Lab::new().unwrap();
        let a = lab.host("a");
        let b = lab.host("b");
        lab.link(&a, &["203.0.113.1/24"], &b, &["203.0.113.2/24"]);
        seen.lock()
            .unwrap()
            .extend([a.name().to_owned(), b.name().to_owned()]);
        a.block_on(|| async { panic!("boom inside the namespace") });
    });
    assert!(result.is_err(), "the panic propagated out of block_on");
    let names = names.lock().unwrap();
    assert_eq!(names.len(), 2);
    for name in names.iter() {
        assert!(
            !std::path::Path::new("/var/run/netns").join(name).exists(),
            "{name} deleted by Lab's Drop while unwinding"
        );
    }
}
