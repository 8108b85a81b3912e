//! Real sockets on loopback: a blackhole, a refused port and a live listener raced for real,
//! on 127.0.0.1 and on ::1 where this machine has it. Only loopback is ever dialed.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use connect_by_list::{ConnectErrorKind, Connector, Outcome};
#[cfg(target_os = "linux")]
use support::loopback::SynSent;
use support::loopback::{live, Blackhole, Refused};

fn outcomes(report: &connect_by_list::Report) -> Vec<Outcome> {
    report.attempts().iter().map(|a| a.outcome()).collect()
}

async fn blackhole_refused_live(ip: IpAddr) {
    let blackhole = Blackhole::new(ip).expect("blackhole");
    let refused = Refused::new(ip).expect("refused port");
    let live = live(ip).await.expect("listener");
    let connector = Connector::builder()
        .attempt_delay(Duration::from_millis(50))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("valid settings");
    let mut connecting = connector.connect([blackhole.addr(), refused.addr(), live]);
    // Positive control for the check below: the blackhole's attempt is in the kernel's table while
    // it holds the race (the refused port's attempt starts only after the 50 ms attempt delay).
    assert!(
        tokio::time::timeout(Duration::from_millis(10), &mut connecting)
            .await
            .is_err(),
        "the blackhole holds the race for one attempt delay"
    );
    #[cfg(target_os = "linux")]
    let in_flight = SynSent::seen(blackhole.addr().port(), 1);
    let connection = connecting.await.expect("the live listener wins");
    assert_eq!(connection.peer_addr(), live);
    assert_eq!(
        connection.local_addr().expect("local address"),
        connection.stream().local_addr().unwrap()
    );
    let report = connection.report();
    assert_eq!(
        outcomes(report),
        [Outcome::Lost, Outcome::Refused, Outcome::Connected]
    );
    let remotes: Vec<_> = report.attempts().iter().map(|a| a.remote()).collect();
    assert_eq!(remotes, [blackhole.addr(), refused.addr(), live]);
    assert_eq!(
        report.attempts()[1].error().map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert_eq!(report.winner().map(|a| a.remote()), Some(live));
    // The refused attempt moved the race on at once: the live one started when it ended.
    assert_eq!(report.attempts()[2].started(), report.attempts()[1].ended());
    // The losing attempt's socket is gone from the kernel, not waiting to be collected.
    #[cfg(target_os = "linux")]
    in_flight.gone();
    // Nodelay is on by default.
    assert!(connection.stream().nodelay().unwrap());
}

#[tokio::test]
async fn blackhole_refused_and_live_on_ipv4() {
    blackhole_refused_live(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
}

#[tokio::test]
async fn blackhole_refused_and_live_on_ipv6() {
    if !support::skip::ipv6_loopback("the race on ::1") {
        return;
    }
    blackhole_refused_live(IpAddr::V6(Ipv6Addr::LOCALHOST)).await;
}

#[tokio::test]
async fn the_deadline_interrupts_connects_in_flight() {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let holes = [Blackhole::new(ip).unwrap(), Blackhole::new(ip).unwrap()];
    let connector = Connector::builder()
        .attempt_delay(Duration::from_millis(20))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut connecting = connector.connect([holes[0].addr(), holes[1].addr()]);
    // Both attempts are in flight (the second started after 20 ms) long before the deadline.
    assert!(
        tokio::time::timeout(Duration::from_millis(60), &mut connecting)
            .await
            .is_err(),
        "nothing answers before the deadline"
    );
    #[cfg(target_os = "linux")]
    let in_flight = holes
        .each_ref()
        .map(|hole| SynSent::seen(hole.addr().port(), 1));
    let error = connecting.await.expect_err("nothing answers");
    assert_eq!(error.kind(), ConnectErrorKind::TimedOut);
    assert_eq!(
        outcomes(error.report()),
        [Outcome::Cancelled, Outcome::Cancelled]
    );
    #[cfg(target_os = "linux")]
    for sockets in in_flight {
        sockets.gone();
    }
    let io: std::io::Error = error.into();
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
}

/// Reads the kernel's socket table (`/proc/net/tcp`), so Linux only.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn dropping_the_connect_closes_every_socket() {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let holes = [Blackhole::new(ip).unwrap(), Blackhole::new(ip).unwrap()];
    let connector = Connector::builder()
        .attempt_delay(Duration::from_millis(10))
        .build()
        .unwrap();
    let mut connecting = connector.connect([holes[0].addr(), holes[1].addr()]);
    let outcome = tokio::time::timeout(Duration::from_millis(100), &mut connecting).await;
    assert!(outcome.is_err(), "blackholes never answer");
    let in_flight = holes
        .each_ref()
        .map(|hole| SynSent::seen(hole.addr().port(), 1));
    drop(connecting);
    for sockets in in_flight {
        sockets.gone();
    }
}

#[tokio::test]
async fn the_one_line_form_connects() {
    let live = live(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.unwrap();
    let refused = Refused::new(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let stream = connect_by_list::connect([refused.addr(), live])
        .await
        .expect("connects");
    assert_eq!(stream.peer_addr().unwrap(), live);
    let text = [refused.addr().to_string(), live.to_string()];
    let stream = connect_by_list::connect(&text[..]).await.expect("connects");
    assert_eq!(stream.peer_addr().unwrap(), live);
}

#[tokio::test]
async fn bad_targets_fail_before_anything_is_opened() {
    for (targets, bad) in [
        (vec!["127.0.0.1:80", "db1"], "\"db1\""),
        (vec!["127.0.0.1:99999"], "\"127.0.0.1:99999\""),
        (vec![":80"], "\":80\""),
        (vec![], "[]"),
    ] {
        let error = connect_by_list::connect(targets)
            .await
            .expect_err("invalid");
        assert_eq!(error.kind(), ConnectErrorKind::InvalidTarget);
        assert_eq!(error.invalid_target().map(|t| t.input()), Some(bad));
        assert!(error.report().attempts().is_empty());
        assert!(error
            .to_string()
            .starts_with(&format!("invalid target {bad}: ")));
        assert_eq!(
            std::io::Error::from(error).kind(),
            std::io::ErrorKind::InvalidInput
        );
    }
}

#[tokio::test]
async fn every_attempt_of_a_failed_connect_is_in_the_error() {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let refused = [Refused::new(ip).unwrap(), Refused::new(ip).unwrap()];
    let error = Connector::new()
        .connect([refused[0].addr(), refused[1].addr()])
        .await
        .expect_err("both refused");
    assert_eq!(error.kind(), ConnectErrorKind::AllFailed);
    assert_eq!(
        outcomes(error.report()),
        [Outcome::Refused, Outcome::Refused]
    );
    let text = error.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    for r in &refused {
        assert!(text.contains(&format!("{} refused", r.addr())), "{text}");
    }
    let source = std::error::Error::source(&error).expect("the last attempt's error");
    assert!(source.to_string().contains("refused"), "{source}");
    assert_eq!(
        std::io::Error::from(error).kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn socket_options_reach_the_socket() {
    let live = live(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.unwrap();
    let connector = Connector::builder()
        .nodelay(false)
        .keepalive(Duration::from_secs(30))
        .keepalive_interval(Duration::from_secs(5))
        .keepalive_retries(4)
        .send_buffer_size(64 * 1024)
        .tcp_user_timeout(Duration::from_secs(7))
        .build()
        .unwrap();
    let connection = connector.connect(live).await.expect("connects");
    let socket = socket2::SockRef::from(connection.stream());
    assert!(!socket.tcp_nodelay().unwrap());
    assert!(socket.keepalive().unwrap());
    assert_eq!(
        socket.tcp_keepalive_time().unwrap(),
        Duration::from_secs(30)
    );
    assert_eq!(
        socket.tcp_keepalive_interval().unwrap(),
        Duration::from_secs(5)
    );
    assert_eq!(socket.tcp_keepalive_retries().unwrap(), 4);
    assert!(socket.send_buffer_size().unwrap() >= 64 * 1024);
    assert_eq!(
        socket.tcp_user_timeout().unwrap(),
        Some(Duration::from_secs(7))
    );
}

/// `fast_icmp_errors` (on by default) sets `IPV6_RECVERR` only while an IPv6 attempt connects:
/// the stream returned has it off again (on an established connection it would turn soft ICMP
/// errors into hard ones), and an IPv4 one never carries `IP_RECVERR`. (That it is on during the
/// connect, tests/faults.rs shows by its effect.)
#[cfg(target_os = "linux")]
#[tokio::test]
async fn recverr_is_off_on_the_returned_stream() {
    use std::os::fd::{AsRawFd, RawFd};
    fn option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid fd, and a pointer and length of a c_int.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
        value
    }
    // The positive control: the same reading sees the option on a socket that has it.
    for (domain, level, name) in [
        (socket2::Domain::IPV4, libc::IPPROTO_IP, libc::IP_RECVERR),
        (
            socket2::Domain::IPV6,
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVERR,
        ),
    ] {
        let Ok(socket) = socket2::Socket::new(domain, socket2::Type::STREAM, None) else {
            continue;
        };
        let one: libc::c_int = 1;
        // SAFETY: a valid fd, and a pointer and length of a c_int.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
        assert_eq!(option(socket.as_raw_fd(), level, name), 1);
    }
    let v4 = live(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.unwrap();
    let connection = Connector::new().connect(v4).await.expect("connects");
    let fd = connection.stream().as_raw_fd();
    assert_eq!(option(fd, libc::IPPROTO_IP, libc::IP_RECVERR), 0);
    if !support::skip::ipv6_loopback("the IPV6_RECVERR half") {
        return;
    }
    let v6 = live(IpAddr::V6(Ipv6Addr::LOCALHOST)).await.unwrap();
    let connection = Connector::new().connect(v6).await.expect("connects");
    let fd = connection.stream().as_raw_fd();
    assert_eq!(option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVERR), 0);
}

/// A socket setup error (here: an interface that does not exist) fails each attempt on its own,
/// with its own error, and the race goes through every address instead of stopping at the first.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_setup_error_fails_each_attempt_not_the_race() {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let live = live(ip).await.unwrap();
    let refused = Refused::new(ip).unwrap();
    let connector = Connector::builder().interface("nosuchif0").build().unwrap();
    let error = connector
        .connect([refused.addr(), live])
        .await
        .expect_err("no interface");
    assert_eq!(outcomes(error.report()), [Outcome::Error, Outcome::Error]);
    for attempt in error.report().attempts() {
        let code = attempt.raw_os_error();
        // ENODEV without privileges to look, EPERM where SO_BINDTODEVICE is not allowed.
        assert!(
            matches!(code, Some(libc::ENODEV) | Some(libc::EPERM)),
            "{code:?}"
        );
        let message = attempt.error().map(ToString::to_string).unwrap_or_default();
        assert!(
            message.starts_with("bind to device \"nosuchif0\": "),
            "{message}"
        );
    }
}

/// The winner's local address, chosen by the kernel, is read when first asked for, not during
/// the connect; whichever way it is asked for, it is the one the server saw.
#[tokio::test]
async fn the_winners_local_address_is_in_the_report_whichever_way_it_is_read() {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let connector = Connector::new();

    // The report first: it reads the address and `local_addr` answers the same.
    let connection = connector.connect(addr).await.unwrap();
    let (_server, seen) = listener.accept().await.unwrap();
    let winner = connection.report().winner().unwrap();
    assert_eq!(winner.local(), Some(seen));
    assert_eq!(connection.local_addr().expect("local address"), seen);

    // `local_addr` first, then the report taken apart.
    let connection = connector.connect(addr).await.unwrap();
    let (_server, seen) = listener.accept().await.unwrap();
    assert_eq!(connection.local_addr().expect("local address"), seen);
    let (stream, report) = connection.into_parts();
    assert_eq!(report.winner().unwrap().local(), Some(seen));
    assert_eq!(stream.local_addr().unwrap(), seen);

    // Nothing asked for before the report is taken apart.
    let connection = connector.connect(addr).await.unwrap();
    let (_server, seen) = listener.accept().await.unwrap();
    let (_stream, report) = connection.into_parts();
    assert_eq!(report.winner().unwrap().local(), Some(seen));
    assert!(report.timeline().to_string().contains(&seen.to_string()));

    // Bound to a listed local address: the port the kernel picked, not the 0 it was bound with.
    let bound = Connector::builder()
        .local_addrs([IpAddr::V4(Ipv4Addr::LOCALHOST)])
        .build()
        .unwrap();
    let connection = bound.connect(addr).await.unwrap();
    let (_server, seen) = listener.accept().await.unwrap();
    assert_ne!(seen.port(), 0);
    assert_eq!(connection.report().winner().unwrap().local(), Some(seen));
    assert_eq!(connection.local_addr().expect("local address"), seen);
    let connection = bound.connect(addr).await.unwrap();
    let (_server, seen) = listener.accept().await.unwrap();
    let (_stream, report) = connection.into_parts();
    assert_eq!(report.winner().unwrap().local(), Some(seen));
}
