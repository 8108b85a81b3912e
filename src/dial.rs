//! The real dial: one non-blocking socket per attempt, configured, bound and connected.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use socket2::{Domain, Socket, TcpKeepalive};
use tokio::net::TcpStream;

use crate::plan::Pair;
use crate::sys;

/// Options applied to every attempt's socket before it connects.
#[derive(Debug, Clone, Default)]
pub(crate) struct SocketOptions {
    pub(crate) nodelay: bool,
    pub(crate) keepalive_time: Option<Duration>,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_retries: Option<u32>,
    pub(crate) send_buffer_size: Option<usize>,
    pub(crate) recv_buffer_size: Option<usize>,
    pub(crate) interface: Option<String>,
    pub(crate) mark: Option<u32>,
    pub(crate) tcp_user_timeout: Option<Duration>,
    pub(crate) fast_icmp_errors: bool,
    pub(crate) reuse_address: bool,
    /// The IPv4 TOS or IPv6 Traffic Class byte, ECN bits clear.
    pub(crate) traffic_class: Option<u8>,
    pub(crate) mptcp: bool,
    pub(crate) hook: Option<SocketHook>,
}

/// The caller's function that sees each attempt's socket last before `bind`/`connect`:
/// the socket, the local address it will bind (if any) and the remote one.
pub(crate) type HookFn =
    dyn Fn(&Socket, Option<SocketAddr>, SocketAddr) -> io::Result<()> + Send + Sync;

/// [`HookFn`] behind an `Arc`: cloning the options clones a pointer.
#[derive(Clone)]
pub(crate) struct SocketHook(pub(crate) std::sync::Arc<HookFn>);

impl std::fmt::Debug for SocketHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SocketHook(..)")
    }
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

    /// Why a just-started attempt could not open a Multipath TCP socket and used plain TCP, if
    /// it asked for one and fell back (read once, right after [`Dial::dial`]).
    fn mptcp_fallback(_future: &mut Self::Future) -> Option<io::Error> {
        None
    }
}

/// Dials with real TCP sockets.
#[derive(Debug, Clone)]
pub(crate) struct TcpDial {
    /// Shared with the connector: nothing is copied per connect.
    pub(crate) options: std::sync::Arc<SocketOptions>,
}

impl Dial for TcpDial {
    type Stream = TcpStream;
    type Future = Dialing;

    fn dial(&self, pair: Pair) -> Dialing {
        // Set up and start the connect synchronously, so that a setup error fails this attempt
        // at its start instant, and nothing but the handshake is left to wait for.
        let recverr = sys::sets_recverr(pair.remote, &self.options);
        let mut mptcp_fallback = None;
        match start(pair, &self.options, recverr, &mut mptcp_fallback) {
            Ok(stream) => Dialing {
                stream: Some(stream),
                error: None,
                clear_recverr: recverr,
                mptcp_fallback,
            },
            Err(error) => Dialing {
                stream: None,
                error: Some(error),
                clear_recverr: false,
                mptcp_fallback,
            },
        }
    }

    fn mptcp_fallback(future: &mut Dialing) -> Option<io::Error> {
        future.mptcp_fallback.take()
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
    /// Why the Multipath TCP socket asked for could not be opened (plain TCP was used).
    mptcp_fallback: Option<io::Error>,
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
fn start(
    pair: Pair,
    options: &SocketOptions,
    recverr: bool,
    mptcp_fallback: &mut Option<io::Error>,
) -> io::Result<TcpStream> {
    let socket = open(pair, options, recverr, mptcp_fallback)?;
    match socket.connect(&pair.remote.into()) {
        Ok(()) => {}
        Err(error) if connect_in_progress(&error) => {}
        Err(error) => return Err(error),
    }
    TcpStream::from_std(socket.into()).map_err(step("register with the runtime"))
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
/// only; the socket is closed when it is dropped on the way out. Each step's error says which
/// step failed ("bind to 192.0.2.10:0: …"), keeping the system's error as its source and kind.
fn open(
    pair: Pair,
    options: &SocketOptions,
    recverr: bool,
    mptcp_fallback: &mut Option<io::Error>,
) -> io::Result<Socket> {
    let domain = Domain::for_address(pair.remote);
    let mut mptcp = None;
    if options.mptcp {
        match open_mptcp(pair, domain, options, recverr) {
            Ok(socket) => mptcp = Some(socket),
            Err(error) if mptcp_unavailable(&error) => *mptcp_fallback = Some(error),
            Err(error) => return Err(error),
        }
    }
    let socket = match mptcp {
        Some(socket) => socket,
        None => {
            // socket2 creates it close-on-exec; where the system can, non-blocking in the same
            // call.
            let socket = sys::nonblocking_stream(domain).map_err(step("open a TCP socket"))?;
            configure(&socket, pair, domain, options, recverr)?;
            socket
        }
    };
    if let Some(SocketHook(hook)) = &options.hook {
        hook(&socket, pair.local, pair.remote).map_err(step("socket hook (on_socket)"))?;
    }
    if let Some(local) = pair.local {
        socket
            .bind(&local.into())
            .map_err(|error| SetupError::wrap(format!("bind to {local}"), error))?;
    }
    Ok(socket)
}

/// A Multipath TCP socket with every built-in option set. An error that says the kernel has no
/// MPTCP, or none of an option for it ([`mptcp_unavailable`]), sends the attempt to plain TCP.
fn open_mptcp(
    pair: Pair,
    domain: Domain,
    options: &SocketOptions,
    recverr: bool,
) -> io::Result<Socket> {
    let socket = mptcp_stream(domain).map_err(step("open an MPTCP socket"))?;
    configure(&socket, pair, domain, options, recverr)?;
    Ok(socket)
}

/// The built-in options, in order; the caller's hook comes after them.
fn configure(
    socket: &Socket,
    pair: Pair,
    domain: Domain,
    options: &SocketOptions,
    recverr: bool,
) -> io::Result<()> {
    if domain == Domain::IPV6 {
        // An IPv6 socket must not quietly reach IPv4 peers: families are raced apart.
        socket.set_only_v6(true).map_err(step("set IPV6_V6ONLY"))?;
    }
    socket
        .set_tcp_nodelay(options.nodelay)
        .map_err(step("set TCP_NODELAY"))?;
    if let Some(idle) = options.keepalive_time {
        let mut keepalive = TcpKeepalive::new().with_time(idle);
        if let Some(interval) = options.keepalive_interval {
            keepalive = keepalive.with_interval(interval);
        }
        #[cfg(not(windows))]
        if let Some(retries) = options.keepalive_retries {
            keepalive = keepalive.with_retries(retries);
        }
        socket
            .set_tcp_keepalive(&keepalive)
            .map_err(step("set TCP keepalive"))?;
    }
    if let Some(bytes) = options.send_buffer_size {
        socket
            .set_send_buffer_size(bytes)
            .map_err(step("set SO_SNDBUF"))?;
    }
    if let Some(bytes) = options.recv_buffer_size {
        socket
            .set_recv_buffer_size(bytes)
            .map_err(step("set SO_RCVBUF"))?;
    }
    if options.reuse_address {
        socket
            .set_reuse_address(true)
            .map_err(step("set SO_REUSEADDR"))?;
    }
    if let Some(class) = options.traffic_class {
        set_traffic_class(socket, domain, class)?;
    }
    sys::apply(socket, pair.remote, options, recverr)?;
    if pair.local.is_some_and(|local| local.port() == 0) {
        bind_address_no_port(socket)?;
    }
    Ok(())
}

/// `IP_TOS` on IPv4 sockets, `IPV6_TCLASS` on IPv6 ones (refused on Windows by `build()`).
#[cfg(not(windows))]
fn set_traffic_class(socket: &Socket, domain: Domain, class: u8) -> io::Result<()> {
    if domain == Domain::IPV6 {
        socket
            .set_tclass_v6(class.into())
            .map_err(step("set IPV6_TCLASS"))
    } else {
        socket.set_tos_v4(class.into()).map_err(step("set IP_TOS"))
    }
}

/// `build()` refuses `traffic_class` on Windows, so nothing is set here.
#[cfg(windows)]
fn set_traffic_class(_: &Socket, _: Domain, _: u8) -> io::Result<()> {
    Ok(())
}

/// `IP_BIND_ADDRESS_NO_PORT` before binding a local address with port 0: the port is then
/// chosen at `connect()`, per 4-tuple, instead of reserved at `bind()` for every destination, so
/// one source address is not limited to one ephemeral port range in total (Linux 4.2 and later;
/// the option applies to IPv6 sockets too).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_address_no_port(socket: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket, and a c_int option value with its exact size.
    let status = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(SetupError::wrap(
            "set IP_BIND_ADDRESS_NO_PORT".into(),
            io::Error::last_os_error(),
        ))
    }
}

/// Other systems have no such option; `bind` reserves the port.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_address_no_port(_: &Socket) -> io::Result<()> {
    Ok(())
}

/// A non-blocking Multipath TCP socket (`IPPROTO_MPTCP`, Linux 5.6 and later).
#[cfg(target_os = "linux")]
fn mptcp_stream(domain: Domain) -> io::Result<Socket> {
    use socket2::{Protocol, Type};
    Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::MPTCP))
}

/// `build()` refuses `mptcp` elsewhere; this is never reached.
#[cfg(not(target_os = "linux"))]
fn mptcp_stream(_: Domain) -> io::Result<Socket> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// The kernel has no MPTCP to give: built without it (`EPROTONOSUPPORT`), turned off by
/// `net.mptcp.enabled=0` (`ENOPROTOOPT`), too old to know the protocol (`EINVAL`), or without
/// one of the asked-for options for MPTCP sockets (`ENOPROTOOPT`, `EOPNOTSUPP`: Linux 6.18 has
/// no `TCP_USER_TIMEOUT` for them). Looks through the step's label to the system's error.
#[cfg(unix)]
fn mptcp_unavailable(error: &io::Error) -> bool {
    let system = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<SetupError>())
        .map_or(error, |setup| &setup.error);
    matches!(
        system.raw_os_error(),
        Some(libc::EPROTONOSUPPORT | libc::ENOPROTOOPT | libc::EINVAL | libc::EOPNOTSUPP)
    ) || system.kind() == io::ErrorKind::Unsupported
}

/// See the Unix version.
#[cfg(not(unix))]
fn mptcp_unavailable(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::Unsupported
}

/// Labels a setup step's error with the step (see [`SetupError`]).
pub(crate) fn step(what: &'static str) -> impl FnOnce(io::Error) -> io::Error {
    move |error| SetupError::wrap(what.to_owned(), error)
}

/// A socket setup step that failed: which step, and the system's error (kept as the source and
/// as the `io::Error`'s kind, so the outcome and the caller's matching still see it).
#[derive(Debug)]
pub(crate) struct SetupError {
    step: String,
    error: io::Error,
}

impl SetupError {
    pub(crate) fn wrap(step: String, error: io::Error) -> io::Error {
        io::Error::new(error.kind(), SetupError { step, error })
    }
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.error)
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each setup step says what failed, and keeps the system's error as its kind and source.
    /// (Binding an address this host does not have sends nothing.)
    #[test]
    fn a_failed_bind_names_the_step_and_the_address() {
        let pair = Pair {
            local: Some("192.0.2.10:0".parse().expect("test address")),
            remote: "127.0.0.1:9".parse().expect("test address"),
        };
        let error =
            open(pair, &SocketOptions::default(), false, &mut None).expect_err("not our address");
        assert_eq!(error.kind(), io::ErrorKind::AddrNotAvailable);
        let message = error.to_string();
        assert!(message.starts_with("bind to 192.0.2.10:0: "), "{message:?}");
        let source = std::error::Error::source(error.get_ref().expect("a labelled error"))
            .expect("the system's error")
            .to_string();
        assert!(
            message.ends_with(&source),
            "{message:?} ends with {source:?}"
        );
    }
}
