//! Faults on loopback that need no privileges: a refused port, a blackhole, a live listener.
#![allow(dead_code, unreachable_pub)]
//! Shared by the tests and the examples (they include this file by path).

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Socket, Type};

/// A port where nothing listens: a bound socket that never calls listen, so the port stays
/// reserved and every SYN to it is answered with a reset.
#[derive(Debug)]
pub struct Refused {
    _socket: Socket,
    addr: SocketAddr,
}

impl Refused {
    pub fn new(ip: IpAddr) -> io::Result<Refused> {
        let socket = Socket::new(
            Domain::for_address(SocketAddr::new(ip, 0)),
            Type::STREAM,
            None,
        )?;
        socket.bind(&SocketAddr::new(ip, 0).into())?;
        let addr = local(&socket)?;
        Ok(Refused {
            _socket: socket,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A port whose SYNs are dropped: a listener with `listen(0)` whose one backlog slot is taken by
/// a connection that is never accepted. Connects to it hang until their deadline.
#[derive(Debug)]
pub struct Blackhole {
    _listener: Socket,
    _filler: std::net::TcpStream,
    addr: SocketAddr,
}

impl Blackhole {
    pub fn new(ip: IpAddr) -> io::Result<Blackhole> {
        let listener = Socket::new(
            Domain::for_address(SocketAddr::new(ip, 0)),
            Type::STREAM,
            None,
        )?;
        listener.bind(&SocketAddr::new(ip, 0).into())?;
        listener.listen(0)?;
        let addr = local(&listener)?;
        let filler = std::net::TcpStream::connect(addr)?;
        Ok(Blackhole {
            _listener: listener,
            _filler: filler,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn local(socket: &Socket) -> io::Result<SocketAddr> {
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))
}

/// Whether this machine has IPv6 loopback (`::1` can be bound).
pub fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// How many sockets of this network namespace are in SYN_SENT towards `port` (any process), read
/// from `/proc/net/tcp` and `/proc/net/tcp6`; panics when the table cannot be read (`tcp6` may be
/// missing where IPv6 is off). A count of 0 proves nothing by itself: to check that sockets are
/// gone, see them first with [`SynSent::seen`].
#[cfg(target_os = "linux")]
pub fn syn_sent_to(port: u16) -> usize {
    const SYN_SENT: &str = "02";
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound && table.ends_with('6') => continue,
            Err(e) => panic!("read {table}: {e}"),
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(state)) = (fields.get(2), fields.get(3)) else {
                panic!("{table}: not a socket line: {line:?}");
            };
            let remote_port = remote
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok())
                .unwrap_or_else(|| panic!("{table}: no remote port in {line:?}"));
            if remote_port == port && *state == SYN_SENT {
                count += 1;
            }
        }
    }
    count
}

/// Sockets seen in SYN_SENT towards one port, so that a later check that they are gone from the
/// kernel has its positive control: the same reading of the same table with the same filter
/// first found them, so an unreadable `/proc` or a wrong filter cannot pass as "gone".
#[cfg(target_os = "linux")]
#[derive(Debug)]
#[must_use = "check that the sockets are gone with `gone`"]
pub struct SynSent {
    port: u16,
    seen: usize,
}

#[cfg(target_os = "linux")]
impl SynSent {
    /// Panics unless exactly `count` (at least 1) sockets are in SYN_SENT towards `port` now.
    #[track_caller]
    pub fn seen(port: u16, count: usize) -> SynSent {
        assert!(count >= 1, "a positive control must see something");
        let now = syn_sent_to(port);
        assert_eq!(
            now, count,
            "sockets in SYN_SENT towards :{port} before the check that they are gone"
        );
        SynSent { port, seen: now }
    }

    /// Panics unless every socket seen is gone: none in SYN_SENT towards the port now.
    #[track_caller]
    pub fn gone(self) {
        let now = syn_sent_to(self.port);
        assert_eq!(
            now, 0,
            "{now} socket(s) still in SYN_SENT towards :{} ({} seen before)",
            self.port, self.seen
        );
    }
}

/// A listener on `ip` that accepts every connection and keeps it open until the process ends.
pub async fn live(ip: IpAddr) -> io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    Ok(addr)
}
