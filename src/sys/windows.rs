//! Windows.
//!
//! A dead address is slow to fail on Windows in two ways, and each has a per-socket remedy:
//!
//! - ICMP errors are ignored while connecting: an unreachable host or a rejecting firewall
//!   leaves the connect to its SYN retries (about 21 s with the defaults). With
//!   `TCP_FAIL_CONNECT_ON_ICMP_ERROR` (Windows 10 2004 and later) the connect fails on the
//!   first ICMP error instead. Set with `fast_icmp_errors`; on older systems the option is
//!   refused and the attempt goes on without it.
//! - A refused connect (the peer answers the SYN with a reset) is retried: the stack sends
//!   the SYN again before it reports `WSAECONNREFUSED`, about 2 s later even on loopback
//!   (curl issue 14144, libuv pull request 2896). `SIO_TCP_INITIAL_RTO` with
//!   `TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS` turns the retries off. libuv and curl do that
//!   for loopback destinations only, and so does this crate (with `fast_icmp_errors`): on a
//!   real network a lost SYN must be sent again, or a slow but live peer would be given up on
//!   its first packet loss. Elsewhere the race's attempt delay already starts the next
//!   attempt while a refused one is still being retried.
//!
//! `TCP_MAXRT`/`TCP_MAXRTMS` (a per-socket cap on the whole connect) are not used: the race's
//! own deadlines (`timeout`, `attempt_timeout`) close an attempt when they pass.
//!
//! None of this is measured here (no Windows machine in CI); it is type-checked for
//! `x86_64-pc-windows-msvc`, and the figures are the cited ones.

use std::io;
use std::net::SocketAddr;
use std::os::windows::io::AsRawSocket;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;
use windows_sys::Win32::Networking::WinSock::{
    setsockopt, WSAGetLastError, WSAIoctl, IPPROTO_TCP, SIO_TCP_INITIAL_RTO, SOCKET, SOCKET_ERROR,
    TCP_FAIL_CONNECT_ON_ICMP_ERROR, TCP_INITIAL_RTO_DEFAULT_RTT,
    TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS, TCP_INITIAL_RTO_PARAMETERS,
};

use crate::dial::SocketOptions;

/// Windows has no per-socket interface binding (`IP_UNICAST_IF` picks the interface for
/// sending only), so `Builder::build` refuses `interface`.
pub(crate) const INTERFACE_BINDING: bool = false;

/// A TCP socket, then made non-blocking.
pub(crate) fn nonblocking_stream(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Nothing set on Windows needs clearing once connected.
pub(crate) fn sets_recverr(_: SocketAddr, _: &SocketOptions) -> bool {
    false
}

/// With `fast_icmp_errors`: `TCP_FAIL_CONNECT_ON_ICMP_ERROR`, and for a loopback destination no
/// SYN retransmissions. Both best effort: a system that refuses them still connects, only more
/// slowly when the address is dead.
pub(crate) fn apply(
    socket: &Socket,
    remote: SocketAddr,
    options: &SocketOptions,
    _: bool,
) -> io::Result<()> {
    if !options.fast_icmp_errors {
        return Ok(());
    }
    let raw = socket.as_raw_socket() as SOCKET;
    if let Err(error) = fail_connect_on_icmp_error(raw) {
        tracing::debug!(%error, "TCP_FAIL_CONNECT_ON_ICMP_ERROR refused (before Windows 10 2004?)");
    }
    if remote.ip().is_loopback() {
        if let Err(error) = no_syn_retransmissions(raw) {
            tracing::debug!(%error, "SIO_TCP_INITIAL_RTO refused");
        }
    }
    Ok(())
}

/// Nothing was set that must be undone: `TCP_FAIL_CONNECT_ON_ICMP_ERROR` acts only while
/// connecting.
pub(crate) fn clear_recverr(_: &TcpStream) {}

fn fail_connect_on_icmp_error(socket: SOCKET) -> io::Result<()> {
    let on: u32 = 1;
    // SAFETY: a valid socket, and a DWORD option value with its exact size.
    let status = unsafe {
        setsockopt(
            socket,
            IPPROTO_TCP,
            TCP_FAIL_CONNECT_ON_ICMP_ERROR,
            (&on as *const u32).cast(),
            std::mem::size_of::<u32>() as i32,
        )
    };
    check(status)
}

fn no_syn_retransmissions(socket: SOCKET) -> io::Result<()> {
    let parameters = TCP_INITIAL_RTO_PARAMETERS {
        Rtt: TCP_INITIAL_RTO_DEFAULT_RTT as u16,
        // mstcpip.h defines it as `(USHORT)-2` and assigns it to this UCHAR field, which keeps
        // the low byte (254); the same here.
        MaxSynRetransmissions: TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS as u8,
    };
    let mut returned: u32 = 0;
    // SAFETY: a valid socket; the input buffer is the documented struct with its exact size;
    // no output buffer, no overlapped I/O, so the call completes before it returns.
    let status = unsafe {
        WSAIoctl(
            socket,
            SIO_TCP_INITIAL_RTO,
            (&parameters as *const TCP_INITIAL_RTO_PARAMETERS).cast(),
            std::mem::size_of::<TCP_INITIAL_RTO_PARAMETERS>() as u32,
            std::ptr::null_mut(),
            0,
            &mut returned,
            std::ptr::null_mut(),
            None,
        )
    };
    check(status)
}

fn check(status: i32) -> io::Result<()> {
    if status == SOCKET_ERROR {
        // SAFETY: reads the calling thread's last Winsock error, nothing else.
        Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }))
    } else {
        Ok(())
    }
}
