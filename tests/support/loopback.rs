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

/// How many sockets of this network namespace are in SYN_SENT towards `port` (any process):
/// a losing attempt that was really closed leaves none behind.
#[cfg(target_os = "linux")]
pub fn syn_sent_to(port: u16) -> usize {
    const SYN_SENT: &str = "02";
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(state)) = (fields.get(2), fields.get(3)) else {
                continue;
            };
            let remote_port = remote
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            if remote_port == Some(port) && *state == SYN_SENT {
                count += 1;
            }
        }
    }
    count
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
