//! Linux, Android, the BSDs, Apple's systems, illumos and Solaris.
//!
//! - Interface binding: `SO_BINDTODEVICE` (by name) on Linux and Android; `IP_BOUND_IF` /
//!   `IPV6_BOUND_IF` (by index, from `if_nametoindex`) on macOS, iOS, tvOS, watchOS, visionOS,
//!   illumos and Solaris. FreeBSD, NetBSD and OpenBSD have no per-socket equivalent.
//! - Fast failure on ICMP errors: `IPV6_RECVERR` on Linux and Android (see `set_recverr`).
//!   The BSDs and Apple's systems have no per-socket option for it: what an ICMP error does to
//!   a connect there is the kernel's policy (FreeBSD's `net.inet.tcp.icmp_may_rst`, for one),
//!   not measured by this crate.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;

use crate::dial::{SetupError, SocketOptions};

/// Whether `Builder::interface` can be honoured here.
pub(crate) const INTERFACE_BINDING: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos",
    target_os = "illumos",
    target_os = "solaris",
));

/// A non-blocking TCP socket in one system call (`SOCK_NONBLOCK`).
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
))]
pub(crate) fn nonblocking_stream(domain: Domain) -> io::Result<Socket> {
    Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP))
}

/// A TCP socket, then made non-blocking (no `SOCK_NONBLOCK` here).
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
)))]
pub(crate) fn nonblocking_stream(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Whether an attempt to `remote` carries `IPV6_RECVERR` while it connects: with
/// `fast_icmp_errors`, on IPv6 sockets, on Linux and Android (see `set_recverr` for why IPv4
/// needs none). Nowhere else.
pub(crate) fn sets_recverr(remote: SocketAddr, options: &SocketOptions) -> bool {
    cfg!(any(target_os = "linux", target_os = "android"))
        && options.fast_icmp_errors
        && remote.is_ipv6()
}

/// The platform's options, before bind and connect; `IPV6_RECVERR` when `recverr`. The options
/// a platform lacks were refused by `Builder::build`, so whatever is set here can be honoured.
pub(crate) fn apply(
    socket: &Socket,
    remote: SocketAddr,
    options: &SocketOptions,
    recverr: bool,
) -> io::Result<()> {
    if let Some(name) = &options.interface {
        bind_to_interface(socket, remote, name)
            .map_err(|error| SetupError::wrap(format!("bind to device {name:?}"), error))?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use crate::dial::step;
        if let Some(mark) = options.mark {
            socket.set_mark(mark).map_err(step("set SO_MARK"))?;
        }
        if let Some(timeout) = options.tcp_user_timeout {
            socket
                .set_tcp_user_timeout(Some(timeout))
                .map_err(step("set TCP_USER_TIMEOUT"))?;
        }
        if recverr {
            set_recverr(socket, true).map_err(step("set IPV6_RECVERR"))?;
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = recverr;
    Ok(())
}

/// Turns `IPV6_RECVERR` off again once connected: on an established connection it would make a
/// passing ICMP error (a route flapping) fatal, where TCP would otherwise ride it out.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn clear_recverr(stream: &TcpStream) {
    if let Err(error) = set_recverr(&socket2::SockRef::from(stream), false) {
        tracing::debug!(%error, "could not clear IPV6_RECVERR on the connected socket");
    }
}

/// Nothing was set that must be undone.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn clear_recverr(_: &TcpStream) {}

/// `SO_BINDTODEVICE`, by name.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_to_interface(socket: &Socket, _: SocketAddr, name: &str) -> io::Result<()> {
    socket.bind_device(Some(name.as_bytes()))
}

/// `IP_BOUND_IF` or `IPV6_BOUND_IF`, by the interface's index, looked up at each attempt (an
/// interface that went away and came back has a new index).
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos",
    target_os = "illumos",
    target_os = "solaris",
))]
fn bind_to_interface(socket: &Socket, remote: SocketAddr, name: &str) -> io::Result<()> {
    let index = interface_index(name)?;
    if remote.is_ipv6() {
        socket.bind_device_by_index_v6(Some(index))
    } else {
        socket.bind_device_by_index_v4(Some(index))
    }
}

/// Refused by `Builder::build` here; never called.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos",
    target_os = "illumos",
    target_os = "solaris",
)))]
fn bind_to_interface(_: &Socket, _: SocketAddr, name: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("cannot bind to interface {name:?}: no per-socket interface binding here"),
    ))
}

/// The index of the interface called `name`, or an error that names it.
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos",
    target_os = "illumos",
    target_os = "solaris",
))]
fn interface_index(name: &str) -> io::Result<std::num::NonZeroU32> {
    let c_name = std::ffi::CString::new(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name contains a NUL byte",
        )
    })?;
    // SAFETY: a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    std::num::NonZeroU32::new(index).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface named {name:?}"),
        )
    })
}

/// With `IPV6_RECVERR` on, an ICMPv6 unreachable answer to a SYN that arrives while the kernel
/// still holds the socket (as a local firewall's answer does, inside `connect()`) fails the
/// connect at once; without it the error is "soft" and the kernel waits for the SYN
/// retransmit, a second later.
///
/// IPv4 needs nothing: since Linux 5.8 `tcp_v4_err` queues the ICMP error of a connecting
/// socket whatever `IP_RECVERR` says, and that wakes the connect with the error
/// (`tests/faults.rs` checks every kind on IPv4 sockets, which carry no option; kernel 6.18
/// here). So IPv4 sockets are spared the two system calls. Should a kernel gate that on
/// `IP_RECVERR`, as was proposed upstream in 2024, an ICMP error that arrives while `connect()`
/// still holds the socket (a local firewall's reject) would wait for the SYN retransmit again,
/// and the faults test would fail there.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_recverr(socket: &Socket, on: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;

    let on: libc::c_int = on.into();
    // SAFETY: a valid socket, and a c_int option value with its exact size.
    let status = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVERR,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
