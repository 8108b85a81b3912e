//! The socket options of issue 15, each seen on a real socket: `reuse_address` and
//! `traffic_class` through `getsockopt` on the connected stream, `mptcp` through `SO_PROTOCOL`
//! (and its fallback in a namespace where MPTCP is turned off), `IP_BIND_ADDRESS_NO_PORT` in a
//! namespace whose ephemeral range holds two ports, and the `on_socket` hook failing one attempt
//! while another wins. Loopback only, inside or outside the namespaces the tests make.
//!
//! Linux only: the options are read back with Linux `getsockopt` calls, and the namespaces are Linux's.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connect_by_list::{Connector, Outcome};
use support::netns::Lab;

/// Only a guard against hanging forever, never an expectation.
const GUARD: Duration = Duration::from_secs(10);

/// An `int` socket option of a connected stream.
fn int_option(stream: &tokio::net::TcpStream, level: libc::c_int, name: libc::c_int) -> i32 {
    use std::os::fd::AsRawFd;
    let mut value: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket, and a c_int buffer with its exact size.
    let status = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(status, 0, "getsockopt: {}", io::Error::last_os_error());
    value
}

async fn listener(ip: &str) -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap()
}

/// `reuse_address` and `traffic_class` are on the connected socket (IP_TOS on IPv4,
/// IPV6_TCLASS on IPv6), and absent from a default connector's socket (the control).
#[tokio::test]
async fn reuse_address_and_traffic_class_reach_the_socket() {
    let mut families = vec!["127.0.0.1"];
    if support::skip::ipv6_loopback("the IPV6_TCLASS half") {
        families.push("::1");
    }
    for ip in families {
        let server = listener(ip).await;
        let addr = server.local_addr().unwrap();
        let (level, name) = if addr.is_ipv4() {
            (libc::IPPROTO_IP, libc::IP_TOS)
        } else {
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS)
        };

        let plain = Connector::new().connect(addr).await.unwrap().into_stream();
        assert_eq!(int_option(&plain, libc::SOL_SOCKET, libc::SO_REUSEADDR), 0);
        assert_eq!(int_option(&plain, level, name), 0, "{addr}: default class");

        let connector = Connector::builder()
            .reuse_address(true)
            .traffic_class(0xb8) // DSCP EF (46)
            .build()
            .unwrap();
        let stream = connector.connect(addr).await.unwrap().into_stream();
        assert_eq!(int_option(&stream, libc::SOL_SOCKET, libc::SO_REUSEADDR), 1);
        assert_eq!(int_option(&stream, level, name), 0xb8, "{addr}: class set");
    }
}

/// `mptcp(true)` opens an `IPPROTO_MPTCP` socket where the kernel has MPTCP (this one, inside
/// a fresh namespace with `net.mptcp.enabled=1`), and in a namespace with `net.mptcp.enabled=0`
/// falls back to plain TCP on every attempt, each saying why in the report.
#[test]
fn mptcp_is_used_where_enabled_and_falls_back_per_attempt_where_not() {
    let Some(mut lab) = Lab::new() else {
        return;
    };
    let on = lab.host("mpon");
    if on.sysctl("net/mptcp/enabled") != "1" {
        support::skip::cannot_run("this kernel has no MPTCP enabled in a new namespace");
        return;
    }
    let off = lab.host("mpoff");
    off.set_sysctls(&[("net/mptcp/enabled", "0")]);

    on.block_on(|| async {
        let server = listener("127.0.0.1").await;
        let addr = server.local_addr().unwrap();
        let plain = Connector::new().connect(addr).await.unwrap();
        assert_eq!(
            int_option(plain.stream(), libc::SOL_SOCKET, libc::SO_PROTOCOL),
            libc::IPPROTO_TCP,
            "the control: MPTCP not asked for"
        );
        let connector = Connector::builder().mptcp(true).build().unwrap();
        let connection = connector.connect(addr).await.unwrap();
        assert_eq!(
            int_option(connection.stream(), libc::SOL_SOCKET, libc::SO_PROTOCOL),
            libc::IPPROTO_MPTCP
        );
        let winner = connection.report().winner().unwrap();
        assert!(winner.mptcp_fallback().is_none(), "{winner:?}");

        // Every other option on an MPTCP socket too, with a listed local address (so
        // IP_BIND_ADDRESS_NO_PORT): the kernel takes them all.
        let every = || {
            Connector::builder()
                .mptcp(true)
                .local_addrs([IpAddr::V4(Ipv4Addr::LOCALHOST)])
                .reuse_address(true)
                .traffic_class(0x20)
                .keepalive(Duration::from_secs(30))
                .keepalive_interval(Duration::from_secs(5))
                .keepalive_retries(3)
                .send_buffer_size(1 << 16)
                .recv_buffer_size(1 << 16)
        };
        let connection = every().build().unwrap().connect(addr).await.unwrap();
        let stream = connection.stream();
        assert_eq!(
            int_option(stream, libc::SOL_SOCKET, libc::SO_PROTOCOL),
            libc::IPPROTO_MPTCP
        );
        assert_eq!(int_option(stream, libc::IPPROTO_IP, libc::IP_TOS), 0x20);
        assert_eq!(int_option(stream, libc::SOL_SOCKET, libc::SO_REUSEADDR), 1);

        // An option the kernel has for TCP but not for MPTCP sockets (TCP_USER_TIMEOUT, on
        // 6.18) sends the attempt to plain TCP, saying which option; where it has it, MPTCP.
        let connector = every()
            .tcp_user_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let connection = connector.connect(addr).await.unwrap();
        let protocol = int_option(connection.stream(), libc::SOL_SOCKET, libc::SO_PROTOCOL);
        match connection.report().winner().unwrap().mptcp_fallback() {
            Some(why) => {
                assert!(
                    why.to_string().starts_with("set TCP_USER_TIMEOUT: "),
                    "{why}"
                );
                assert_eq!(protocol, libc::IPPROTO_TCP);
            }
            None => assert_eq!(protocol, libc::IPPROTO_MPTCP),
        }
    });

    off.block_on(|| async {
        let first = listener("127.0.0.1").await;
        let second = listener("127.0.0.1").await;
        // The first target refuses (its listener is gone), so two attempts run.
        let refused = first.local_addr().unwrap();
        drop(first);
        let addr = second.local_addr().unwrap();
        let connector = Connector::builder().mptcp(true).build().unwrap();
        let connection = tokio::time::timeout(GUARD, connector.connect([refused, addr]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            int_option(connection.stream(), libc::SOL_SOCKET, libc::SO_PROTOCOL),
            libc::IPPROTO_TCP
        );
        let attempts = connection.report().attempts();
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        assert_eq!(attempts[0].outcome(), Outcome::Refused);
        for attempt in attempts {
            let why = attempt.mptcp_fallback().expect("each attempt fell back");
            assert!(
                why.to_string().starts_with("open an MPTCP socket: "),
                "{why}"
            );
            let system = why.get_ref().and_then(|e| e.source()).unwrap();
            let system = system.downcast_ref::<io::Error>().unwrap();
            assert_eq!(system.raw_os_error(), Some(libc::ENOPROTOOPT), "{why}");
        }
    });
}

/// What a hook saw: the local address it was given, and a second thing.
type Seen<T> = (Option<SocketAddr>, T);

/// The hook runs after the built-in options and before bind and connect, with the attempt's
/// pair; its error fails that attempt only, labelled like any setup step, and the next
/// attempt wins.
#[tokio::test]
async fn a_failing_socket_hook_fails_its_attempt_and_another_wins() {
    let first = listener("127.0.0.1").await;
    let second = listener("127.0.0.1").await;
    let (first, second) = (first.local_addr().unwrap(), second.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen<SocketAddr>>>> = Arc::default();
    let log = Arc::clone(&seen);
    let connector = Connector::builder()
        .traffic_class(0x20)
        .sort_addresses(false)
        .on_socket(move |socket, local, remote| {
            log.lock().unwrap().push((local, remote));
            // After the built-in options: they are already set.
            assert!(socket.tcp_nodelay()?);
            assert_eq!(socket.tos_v4()?, 0x20);
            // Before connect: no peer yet.
            assert!(socket.peer_addr().is_err());
            if remote == first {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "policy says no",
                ));
            }
            Ok(())
        })
        .build()
        .unwrap();
    let connection = tokio::time::timeout(GUARD, connector.connect([first, second]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connection.peer_addr(), second);
    assert_eq!(*seen.lock().unwrap(), vec![(None, first), (None, second)]);
    let attempts = connection.report().attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].outcome(), Outcome::Error);
    // It failed at its start: the next attempt started at once, not an attempt delay later.
    assert_eq!(attempts[1].started(), attempts[0].ended());
    assert!(attempts[1].started() < Duration::from_millis(250));
    let error = attempts[0].error().unwrap();
    assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(error.to_string(), "socket hook (on_socket): policy says no");
    assert_eq!(attempts[1].outcome(), Outcome::Connected);
    drop(connection);

    // With a local address, the hook sees it, and nothing is bound yet (port 0, unbound).
    let local: IpAddr = Ipv4Addr::LOCALHOST.into();
    let seen: Arc<Mutex<Vec<Seen<u16>>>> = Arc::default();
    let log = Arc::clone(&seen);
    let connector = Connector::builder()
        .local_addrs([local])
        .on_socket(move |socket, local, _| {
            let bound = socket
                .local_addr()?
                .as_socket()
                .map_or(u16::MAX, |a| a.port());
            log.lock().unwrap().push((local, bound));
            Ok(())
        })
        .build()
        .unwrap();
    connector.connect(second).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(Some(SocketAddr::new(local, 0)), 0)]
    );
}

/// Issue 15: with `IP_BIND_ADDRESS_NO_PORT`, one listed local address is not capped at one
/// ephemeral port per connection: in a namespace whose `ip_local_port_range` holds two ports,
/// four connections from that address to four listeners, held open together, all succeed
/// (the two ports are shared across destinations). The control, in the same namespace: plain
/// sockets bound to the same address with port 0 reserve a port each at `bind`, and the third
/// bind fails with `EADDRINUSE`.
#[test]
fn one_local_address_shares_two_ports_across_four_destinations() {
    let Some(mut lab) = Lab::new() else {
        return;
    };
    let host = lab.host("noport");
    host.set_sysctls(&[("net/ipv4/ip_local_port_range", "40000 40001")]);
    assert_eq!(host.sysctl("net/ipv4/ip_local_port_range"), "40000\t40001");

    host.block_on(|| async {
        let local: IpAddr = Ipv4Addr::LOCALHOST.into();
        // Listeners on fixed ports outside the two-port range.
        let mut listeners = Vec::new();
        for port in 7001..=7004 {
            listeners.push(tokio::net::TcpListener::bind((local, port)).await.unwrap());
        }

        // The control: a port reserved at bind time, two ports, the third bind fails.
        let mut reserved = Vec::new();
        for n in 1..=3 {
            let socket = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )
            .unwrap();
            let bound = socket.bind(&SocketAddr::new(local, 0).into());
            if n < 3 {
                bound.unwrap();
                reserved.push(socket);
            } else {
                let error = bound.expect_err("two ports, both reserved");
                assert_eq!(error.raw_os_error(), Some(libc::EADDRINUSE), "{error}");
            }
        }
        drop(reserved);

        let connector = Connector::builder().local_addrs([local]).build().unwrap();
        let mut held = Vec::new();
        for listener in &listeners {
            let addr = listener.local_addr().unwrap();
            let connection = tokio::time::timeout(GUARD, connector.connect(addr))
                .await
                .unwrap()
                .unwrap_or_else(|error| panic!("to {addr}: {error}"));
            let port = connection.local_addr().unwrap().port();
            assert!((40000..=40001).contains(&port), "{port}");
            held.push(connection);
        }
        assert_eq!(held.len(), 4);
        let mut ports: Vec<u16> = held
            .iter()
            .map(|c| c.local_addr().unwrap().port())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert!(ports.len() <= 2, "{ports:?}");
    });
}

/// Settings the system cannot honour, or values it would misread, are refused by name.
#[test]
fn bad_values_are_refused_by_name() {
    let error = Connector::builder()
        .traffic_class(0xb9)
        .build()
        .expect_err("ECN bits set");
    assert_eq!(error.setting(), "traffic_class");
    assert!(error.reason().contains("ECN"), "{error}");
    assert!(Connector::builder()
        .traffic_class(0xb8)
        .reuse_address(true)
        .mptcp(true)
        .build()
        .is_ok());
}
