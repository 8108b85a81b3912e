//! The real dial: one non-blocking socket per attempt, configured, bound and connected.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};
use tokio::net::{TcpSocket, TcpStream};

use crate::config::SocketOptions;

/// One attempt's target: where from (if bound) and where to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Pair {
    pub(crate) local: Option<SocketAddr>,
    pub(crate) remote: SocketAddr,
}

/// Opens a stream for one pair. The race is generic over it, so its tests can script dials.
pub(crate) trait Dial {
    /// What a successful dial yields.
    type Stream: Send + 'static;
    /// The dial in flight; dropping it must close whatever it opened.
    type Future: Future<Output = io::Result<Self::Stream>> + Send + 'static;

    /// Starts one attempt.
    fn dial(&self, pair: Pair) -> Self::Future;
}

/// A boxed dial future.
pub(crate) type Dialing = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// Dials with real TCP sockets.
#[derive(Debug, Clone)]
pub(crate) struct TcpDial {
    /// Shared with the connector: nothing is copied per connect.
    pub(crate) config: std::sync::Arc<crate::config::Config>,
}

impl Dial for TcpDial {
    type Stream = TcpStream;
    type Future = Dialing;

    fn dial(&self, pair: Pair) -> Dialing {
        // Set up synchronously so that a setup error fails this attempt at its start instant,
        // and nothing but the connect itself is left to wait for.
        match open(pair, &self.config.socket) {
            Ok(socket) => {
                let fast_icmp_errors = self.config.socket.fast_icmp_errors;
                Box::pin(async move {
                    let stream = socket.connect(pair.remote).await?;
                    if fast_icmp_errors {
                        sys::after_connect(&stream, pair.remote);
                    }
                    Ok(stream)
                })
            }
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }
}

/// Creates, configures and binds the socket for one attempt. Any error here fails this attempt
/// only; the socket is closed when it is dropped on the way out.
fn open(pair: Pair, options: &SocketOptions) -> io::Result<TcpSocket> {
    let domain = Domain::for_address(pair.remote);
    // socket2 creates it close-on-exec; where the system can, non-blocking in the same call.
    let socket = sys::nonblocking_stream(domain)?;
    if domain == Domain::IPV6 {
        // An IPv6 socket must not quietly reach IPv4 peers: families are raced apart.
        socket.set_only_v6(true)?;
    }
    socket.set_tcp_nodelay(options.nodelay)?;
    if let Some(idle) = options.keepalive_time {
        let mut keepalive = TcpKeepalive::new().with_time(idle);
        if let Some(interval) = options.keepalive_interval {
            keepalive = keepalive.with_interval(interval);
        }
        #[cfg(not(windows))]
        if let Some(retries) = options.keepalive_retries {
            keepalive = keepalive.with_retries(retries);
        }
        socket.set_tcp_keepalive(&keepalive)?;
    }
    if let Some(bytes) = options.send_buffer_size {
        socket.set_send_buffer_size(bytes)?;
    }
    if let Some(bytes) = options.recv_buffer_size {
        socket.set_recv_buffer_size(bytes)?;
    }
    sys::apply(&socket, domain, options)?;
    if let Some(local) = pair.local {
        socket.bind(&local.into())?;
    }
    Ok(TcpSocket::from_std_stream(socket.into()))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod sys {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A non-blocking TCP socket in one system call (`SOCK_NONBLOCK`).
    pub(super) fn nonblocking_stream(domain: Domain) -> io::Result<Socket> {
        Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP))
    }

    /// The Linux-only options.
    pub(super) fn apply(
        socket: &Socket,
        domain: Domain,
        options: &SocketOptions,
    ) -> io::Result<()> {
        if let Some(name) = &options.interface {
            socket.bind_device(Some(name.as_bytes()))?;
        }
        if let Some(mark) = options.mark {
            socket.set_mark(mark)?;
        }
        if let Some(timeout) = options.tcp_user_timeout {
            socket.set_tcp_user_timeout(Some(timeout))?;
        }
        if options.fast_icmp_errors {
            set_recverr(socket.as_raw_fd(), domain == Domain::IPV6, true)?;
        }
        Ok(())
    }

    /// Turns `*_RECVERR` off again once connected: on an established connection it would make
    /// a passing ICMP error (a route flapping) fatal, where TCP would otherwise ride it out.
    pub(super) fn after_connect(stream: &TcpStream, remote: SocketAddr) {
        if let Err(error) = set_recverr(stream.as_raw_fd(), remote.is_ipv6(), false) {
            tracing::debug!(%error, "could not clear RECVERR on the connected socket");
        }
    }

    /// With `*_RECVERR` on, Linux treats an ICMP unreachable answer to a SYN as a hard error and
    /// fails the connect at once; without it the error is "soft" and the kernel keeps
    /// retransmitting the SYN for seconds.
    fn set_recverr(fd: std::os::fd::RawFd, ipv6: bool, on: bool) -> io::Result<()> {
        let (level, name) = if ipv6 {
            (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
        } else {
            (libc::IPPROTO_IP, libc::IP_RECVERR)
        };
        let on: libc::c_int = on.into();
        // SAFETY: a valid socket, and a c_int option value with its exact size.
        let status = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
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
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod sys {
    use super::*;

    /// A TCP socket, then made non-blocking.
    pub(super) fn nonblocking_stream(domain: Domain) -> io::Result<Socket> {
        let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    }

    /// The Linux-only options are refused when the connector is built, so nothing is left here.
    pub(super) fn apply(_: &Socket, _: Domain, _: &SocketOptions) -> io::Result<()> {
        Ok(())
    }

    /// Nothing was set that must be undone.
    pub(super) fn after_connect(_: &TcpStream, _: SocketAddr) {}
}
