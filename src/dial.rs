//! The real dial: one non-blocking socket per attempt, configured, bound and connected.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use socket2::{Domain, Socket, TcpKeepalive};
use tokio::net::TcpStream;

use crate::config::SocketOptions;
use crate::sys;

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
    /// The dial in flight; dropping it must close whatever it opened. `Unpin`, so that the race
    /// keeps its attempts in a plain `Vec`.
    type Future: Future<Output = io::Result<Self::Stream>> + Send + Unpin + 'static;

    /// Starts one attempt.
    fn dial(&self, pair: Pair) -> Self::Future;
}

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
        // Set up and start the connect synchronously, so that a setup error fails this attempt
        // at its start instant, and nothing but the handshake is left to wait for.
        let recverr = sys::sets_recverr(pair.remote, &self.config.socket);
        match start(pair, &self.config.socket, recverr) {
            Ok(stream) => Dialing {
                stream: Some(stream),
                error: None,
                clear_recverr: recverr,
            },
            Err(error) => Dialing {
                stream: None,
                error: Some(error),
                clear_recverr: false,
            },
        }
    }
}

/// One connect in flight: the socket, registered with Tokio, waiting to become writable. What
/// `tokio::net::TcpSocket::connect` does, as a plain struct instead of a boxed `async` block.
#[derive(Debug)]
pub(crate) struct Dialing {
    stream: Option<TcpStream>,
    /// The setup error, handed out on the first poll.
    error: Option<io::Error>,
    /// The socket carries `IPV6_RECVERR` for the connect, to be cleared once connected.
    clear_recverr: bool,
}

impl Future for Dialing {
    type Output = io::Result<TcpStream>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        let this = self.get_mut();
        let Some(stream) = &this.stream else {
            return Poll::Ready(Err(this.error.take().unwrap_or_else(polled_again)));
        };
        // Writable means the handshake ended, one way or the other; the socket error tells which.
        ready!(stream.poll_write_ready(cx))?;
        let failed = match stream.take_error() {
            Ok(None) => None,
            Ok(Some(error)) | Err(error) => Some(error),
        };
        if let Some(error) = failed {
            // Closed now, and a later poll cannot hand it out as connected.
            this.stream = None;
            return Poll::Ready(Err(error));
        }
        if this.clear_recverr {
            sys::clear_recverr(stream);
        }
        Poll::Ready(this.stream.take().ok_or_else(polled_again))
    }
}

/// What a finished dial answers if polled once more.
fn polled_again() -> io::Error {
    io::Error::other("polled again")
}

/// Opens the socket for one attempt and starts its connect. Any error here fails this attempt
/// only; the socket is closed when it is dropped on the way out.
fn start(pair: Pair, options: &SocketOptions, recverr: bool) -> io::Result<TcpStream> {
    let socket = open(pair, options, recverr)?;
    match socket.connect(&pair.remote.into()) {
        Ok(()) => {}
        Err(error) if connect_in_progress(&error) => {}
        Err(error) => return Err(error),
    }
    TcpStream::from_std(socket.into())
}

/// A non-blocking connect that has begun and will end later: `EINPROGRESS` on Unix (where
/// `EAGAIN` means it never began, as when ephemeral ports run out), `WSAEWOULDBLOCK` on Windows.
#[cfg(unix)]
fn connect_in_progress(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::EINPROGRESS)
}

/// See the Unix version.
#[cfg(not(unix))]
fn connect_in_progress(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::WouldBlock
}

/// Creates, configures and binds the socket for one attempt. Any error here fails this attempt
/// only; the socket is closed when it is dropped on the way out.
fn open(pair: Pair, options: &SocketOptions, recverr: bool) -> io::Result<Socket> {
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
    sys::apply(&socket, pair.remote, options, recverr)?;
    if let Some(local) = pair.local {
        socket.bind(&local.into())?;
    }
    Ok(socket)
}
