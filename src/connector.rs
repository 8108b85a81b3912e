//! `Connector`: the cheap handle that users keep, its `connect` future and its result.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::Config;
use crate::dial::TcpDial;
use crate::error::ConnectError;
use crate::handshake::{Handshake, Peer};
use crate::history::History;
use crate::race::{Planned, Race};
use crate::report::Report;
use crate::target::IntoTargets;

/// Connects to the first reachable of a list of endpoints.
///
/// A cheap handle: clones share one configuration, and it is `Clone + Send + Sync`, so keep one
/// and use it from every task. Build one with [`Connector::builder`], or take the defaults with
/// [`Connector::new`].
///
/// ```no_run
/// use connect_by_list::Connector;
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let connector = Connector::builder().timeout(Duration::from_secs(5)).build()?;
/// let connection = connector.connect(["db1.example:5432", "db2.example:5432"]).await?;
/// println!("connected to {} in {:?}", connection.peer_addr(), connection.report().elapsed());
/// for attempt in connection.report().attempts() {
///     println!("  {attempt}");
/// }
/// let stream: tokio::net::TcpStream = connection.into_stream();
/// # drop(stream);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Connector {
    config: Arc<Config>,
    history: Option<Arc<History>>,
}

impl Default for Connector {
    fn default() -> Connector {
        Connector::new()
    }
}

impl Connector {
    /// A connector with every default (see [`Builder`](crate::Builder)).
    pub fn new() -> Connector {
        Connector::from_config(Config::default())
    }

    /// The defaults, with this resolver (infallible: the defaults are valid).
    #[cfg(any(feature = "reqwest", feature = "reqwest012"))]
    pub(crate) fn with_resolver(resolver: impl crate::Resolve) -> Connector {
        Connector::from_config(Config {
            resolver: Arc::new(resolver),
            ..Config::default()
        })
    }

    /// Resolves, filters and ranks like a connect, without connecting and without looking up
    /// routes that ranking does not need: the order alone.
    #[cfg(any(feature = "reqwest", feature = "reqwest012"))]
    pub(crate) async fn order(&self, target: crate::Target) -> Result<Planned, ConnectError> {
        let mut race = self.race(vec![target]);
        std::future::poll_fn(|cx| race.poll_plan(cx, false)).await
    }

    /// A race over real sockets with this connector's settings and history; it starts when
    /// first polled.
    fn race(&self, targets: Vec<crate::Target>) -> Race<TcpDial> {
        Race::new(
            self.dial(),
            self.config.clone(),
            targets,
            self.history.clone(),
        )
    }

    fn dial(&self) -> TcpDial {
        TcpDial {
            options: self.config.socket.clone(),
        }
    }

    pub(crate) fn from_config(mut config: Config) -> Connector {
        // Shared lookups, the blocking pool and the cache stand in for the resolver.
        config.resolver = crate::lookups::Lookups::over(&config);
        // NAT64 discovery asks through the same layer, so it joins a lookup already out.
        let discovery = crate::nat64::Discovery::new(config.nat64.clone(), config.resolver.clone());
        config.nat64_discovery = Some(Arc::new(discovery));
        let history = (config.history_capacity > 0)
            .then(|| Arc::new(History::new(config.history_capacity, config.history_ttl)));
        Connector {
            config: Arc::new(config),
            history,
        }
    }

    /// Connects to the first reachable of `targets`.
    ///
    /// Names are resolved (both families at once), every address is ranked, and attempts are
    /// raced: the first starts at once, each next one after the attempt delay or as soon as an
    /// attempt fails, while earlier ones keep running. The first to connect wins and every other
    /// socket is closed. Invalid targets fail before anything is resolved or opened.
    ///
    /// Nothing happens until the returned future is polled; dropping it closes every socket it
    /// opened.
    pub fn connect<M>(&self, targets: impl IntoTargets<M>) -> Connecting {
        // Fields are computed only when the span is enabled (DEBUG), so a connect with
        // tracing off pays for neither the id nor the list.
        let (state, span) = match targets.into_targets() {
            Ok(targets) => {
                let listed = crate::target::Listed(&targets);
                let span = tracing::debug_span!("connect", id = next_id(), targets = %listed);
                (State::Racing(Box::new(self.race(targets))), span)
            }
            Err(invalid) => {
                let span = tracing::debug_span!("connect", id = next_id(), targets = "invalid");
                (State::Invalid(invalid), span)
            }
        };
        Connecting { state, span }
    }

    /// Connects like [`Connector::connect`], and runs `handshake` on each attempt's stream as
    /// soon as it connects, inside the race: the first attempt to finish its handshake wins, and
    /// every other attempt, connected or not, is closed at that moment.
    ///
    /// - Staggering goes on while an attempt handshakes: a connected attempt still counts as in
    ///   flight, and the next one starts on the same schedule (the attempt delay after the last
    ///   start, or at once when an attempt fails).
    /// - A failed handshake frees its slot at once, like a refused connect; it is reported as
    ///   [`Outcome::HandshakeFailed`](crate::Outcome::HandshakeFailed) with its error.
    /// - The deadline ([`Builder::timeout`](crate::Builder::timeout)) and the per-attempt timeout
    ///   cover the handshake too.
    /// - History learns the handshake's winner, with its TCP connect time.
    /// - Each attempt's [`connected`](crate::Attempt::connected) instant is reported beside its
    ///   end.
    ///
    /// See [`Handshake`] for an example.
    pub fn connect_with<M, H: Handshake>(
        &self,
        targets: impl IntoTargets<M>,
        handshake: H,
    ) -> Connecting<H::Output> {
        let (state, span) = match targets.into_targets() {
            Ok(targets) => {
                let listed = crate::target::Listed(&targets);
                let span = tracing::debug_span!("connect", id = next_id(), targets = %listed);
                let https_alpn = handshake.https_alpn();
                let ech = handshake.https_ech();
                let mut race = Race::with_handshake(
                    self.dial(),
                    Raced {
                        handshake,
                        dial: self.dial(),
                    },
                    self.config.clone(),
                    targets,
                    self.history.clone(),
                );
                if let Some(alpn) = https_alpn {
                    // HEv3: an HTTPS target's records are asked for beside AAAA and A.
                    race.ask_https_records(crate::svcb::ClientSupport { alpn, ech });
                }
                (State::Racing(Box::new(race)), span)
            }
            Err(invalid) => {
                let span = tracing::debug_span!("connect", id = next_id(), targets = "invalid");
                (State::Invalid(invalid), span)
            }
        };
        Connecting { state, span }
    }

    /// Resolves and ranks `targets` as [`Connector::connect`] would, and returns the attempts it
    /// would make, in order, with the source address the kernel would use for each; nothing is
    /// connected. Waits for every name's answers (or the deadline). For "why did it try that
    /// first?".
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), connect_by_list::ConnectError> {
    /// let plan = connect_by_list::Connector::new().plan(["example.com:443"]).await?;
    /// for attempt in plan.attempts() {
    ///     println!("{} (source {:?})", attempt.remote(), attempt.source());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn plan<M>(&self, targets: impl IntoTargets<M>) -> Result<Planned, ConnectError> {
        let targets = targets
            .into_targets()
            .map_err(ConnectError::from_invalid_target)?;
        let mut race = self.race(targets);
        std::future::poll_fn(|cx| race.poll_plan(cx, true)).await
    }
}

impl<S> Connecting<S> {
    /// A connect that fails, when polled, with this invalid target (for targets that are
    /// found invalid before there is a list, as a URI's).
    #[cfg(feature = "hyper")]
    pub(crate) fn invalid(invalid: crate::target::InvalidTarget) -> Connecting<S> {
        Connecting {
            state: State::Invalid(invalid),
            span: tracing::debug_span!("connect", id = next_id(), targets = "invalid"),
        }
    }
}

enum State<S> {
    /// Answers its first poll with this error.
    Invalid(crate::target::InvalidTarget),
    Racing(Box<dyn RaceTo<S>>),
    /// It has answered; every further poll answers
    /// [`ConnectErrorKind::PolledAfterCompletion`](crate::ConnectErrorKind::PolledAfterCompletion).
    Done,
}

/// A race that ends in a [`Connection`]: plain TCP, or through a handshake.
trait RaceTo<S>: Send + std::fmt::Debug {
    fn poll_connection(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Connection<S>, ConnectError>>;
}

impl RaceTo<TcpStream> for Race<TcpDial> {
    fn poll_connection(&mut self, cx: &mut Context<'_>) -> Poll<Result<Connection, ConnectError>> {
        self.poll_race(cx).map(|result| {
            result.map(|won| Connection {
                stream: won.stream,
                local: OnceLock::new(),
                read_local: TcpStream::local_addr,
                peer: won.pair.remote,
                report: OnceLock::new(),
                raw_report: Mutex::new(Some(won.report)),
            })
        })
    }
}

impl<H: Handshake> RaceTo<H::Output> for Race<TcpDial, Raced<H>> {
    fn poll_connection(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Connection<H::Output>, ConnectError>> {
        self.poll_race(cx).map(|result| {
            result.map(|won| {
                let (stream, local) = won.stream;
                Connection {
                    stream,
                    // Read before the handshake took the stream.
                    local: OnceLock::from(local.map_err(|error| error.kind())),
                    read_local: |_| Err(io::Error::other("read before the handshake")),
                    peer: won.pair.remote,
                    report: OnceLock::new(),
                    raw_report: Mutex::new(Some(won.report)),
                }
            })
        })
    }
}

/// The future of [`Connector::connect`] (a [`Connection`] of a [`TcpStream`]) and of
/// [`Connector::connect_with`] (a `Connection` of what the handshake made), or a
/// [`ConnectError`].
///
/// `Send` and `Unpin`. Dropping it closes every socket it opened.
///
/// A named type, so it can be kept in a struct, or raced by `&mut` without boxing:
///
/// ```
/// use connect_by_list::{Connecting, Connector};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let mut connecting: Connecting = Connector::new().connect(listener.local_addr()?);
/// tokio::select! {
///     result = &mut connecting => println!("connected to {}", result?.peer_addr()),
///     _ = tokio::time::sleep(Duration::from_secs(5)) => println!("still connecting"),
/// }
/// # Ok(())
/// # }
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Connecting<S = TcpStream> {
    state: State<S>,
    span: tracing::Span,
}

impl<S> std::fmt::Debug for Connecting<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            State::Invalid(error) => f.debug_tuple("Connecting").field(error).finish(),
            State::Racing(race) => f.debug_tuple("Connecting").field(race).finish(),
            State::Done => f.write_str("Connecting(done)"),
        }
    }
}

impl<S> Future for Connecting<S> {
    type Output = Result<Connection<S>, ConnectError>;

    /// Polled again after it answered, it opens nothing and answers
    /// [`ConnectErrorKind::PolledAfterCompletion`](crate::ConnectErrorKind::PolledAfterCompletion) every time
    /// (see also [`FusedFuture::is_terminated`](futures_util::future::FusedFuture)).
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let answer = match &mut this.state {
            State::Invalid(invalid) => {
                Poll::Ready(Err(ConnectError::from_invalid_target(invalid.clone())))
            }
            State::Racing(race) => race.poll_connection(cx),
            State::Done => Poll::Ready(Err(ConnectError::new(
                crate::ConnectErrorKind::PolledAfterCompletion,
                Report::default(),
            ))),
        };
        if let Poll::Ready(result) = &answer {
            summarize(result);
        }
        if answer.is_ready() {
            // The race (and whatever it still held) is dropped now.
            this.state = State::Done;
        }
        answer
    }
}

/// A process-wide number for each connect's span, so that its events can be told apart.
fn next_id() -> u64 {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The one event that ends a connect's span: DEBUG, as hyper-util and reqwest log their
/// connects (nothing at INFO per connect); what failed is the caller's to log.
fn summarize<S>(result: &Result<Connection<S>, ConnectError>) {
    use crate::report::Millis;
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    match result {
        Ok(connection) => {
            // The raw report: the winner's local address is read from the socket only on ask.
            let raw = connection
                .raw_report
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (elapsed, attempts) = raw.as_ref().map_or((Default::default(), 0), |report| {
                (report.elapsed(), report.attempts().len())
            });
            tracing::debug!(
                winner = %connection.peer,
                elapsed = %Millis(elapsed),
                attempts,
                "connected"
            );
        }
        Err(error) => tracing::debug!(
            kind = ?error.kind(),
            elapsed = %Millis(error.report().elapsed()),
            attempts = error.report().attempts().len(),
            %error,
            "connect failed"
        ),
    }
}

impl<S> futures_util::future::FusedFuture for Connecting<S> {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

/// A connected stream with its addresses and the report of the race that made it: a
/// [`TcpStream`] from [`Connector::connect`], or what the handshake made (a TLS stream, say)
/// from [`Connector::connect_with`].
///
/// The local address (with the port the kernel chose, bound or not) of a plain TCP connection
/// is read from the socket (one system call) the first time
/// [`local_addr`](Connection::local_addr), [`report`](Connection::report) or
/// [`into_parts`](Connection::into_parts) asks for it, not on every connect; a handshake's is
/// read before the handshake starts.
///
/// ```
/// use connect_by_list::{Connector, Outcome};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let connection = Connector::new().connect(listener.local_addr()?).await?;
/// assert_eq!(connection.peer_addr(), listener.local_addr()?);
/// assert_eq!(connection.report().winner().map(|won| won.outcome()), Some(Outcome::Connected));
/// let (stream, report) = connection.into_parts();
/// assert_eq!(stream.local_addr()?, report.attempts()[0].local().unwrap());
/// # Ok(())
/// # }
/// ```
pub struct Connection<S = TcpStream> {
    stream: S,
    /// The local address, once read (or the error reading it gave).
    local: OnceLock<Result<SocketAddr, io::ErrorKind>>,
    /// Reads it from the stream, when first asked.
    read_local: fn(&S) -> io::Result<SocketAddr>,
    peer: SocketAddr,
    /// The report with the winner's local address in it, made on first ask from `raw_report`.
    report: OnceLock<Report>,
    raw_report: Mutex<Option<Report>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Connection<S> {
    /// Shows what is known without asking the socket: the local address and the winner's in the
    /// report appear once something has read them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let raw = self
            .raw_report
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Connection")
            .field("stream", &self.stream)
            .field("peer", &self.peer)
            .field("local", &self.local.get())
            .field("report", &self.report.get().or(raw.as_ref()))
            .finish()
    }
}

impl<S> Connection<S> {
    /// The remote address connected to.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local address of the stream, with the port the kernel chose: read from the socket
    /// the first time it is asked for (here, or by [`report`](Connection::report) or
    /// [`into_parts`](Connection::into_parts)), then kept.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let local = self
            .local
            .get_or_init(|| (self.read_local)(&self.stream).map_err(|error| error.kind()));
        local.map_err(|kind| io::Error::new(kind, "could not read the connection's local address"))
    }

    /// Every attempt of the race, the winner included.
    pub fn report(&self) -> &Report {
        self.report.get_or_init(|| {
            let raw = self
                .raw_report
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            self.completed(raw.unwrap_or_default())
        })
    }

    /// The race's report with the winner's local address in it.
    fn completed(&self, mut report: Report) -> Report {
        let winner = report
            .attempts
            .iter_mut()
            .rev()
            .find(|attempt| attempt.outcome == crate::Outcome::Connected);
        if let Some(winner) = winner {
            // Also over a bound address, whose port was 0 until the kernel chose one. Should the
            // system not tell (it does for a connected socket), the bound address stays.
            if let Ok(local) = self.local_addr() {
                winner.local = Some(local);
            }
        }
        report
    }

    /// The stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Takes the stream, dropping the report.
    pub fn into_stream(self) -> S {
        self.stream
    }

    /// The same connection around another stream (a wrapper of this one, say).
    pub fn map_stream<T>(self, wrap: impl FnOnce(S) -> T) -> Connection<T> {
        // A lazily read local address is read now: the new stream cannot be asked.
        let local = self.local_addr().map_err(|error| error.kind());
        let raw = self
            .raw_report
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        Connection {
            stream: wrap(self.stream),
            local: OnceLock::from(local),
            read_local: |_| Err(io::Error::other("read when the stream was wrapped")),
            peer: self.peer,
            report: self.report,
            raw_report: Mutex::new(raw),
        }
    }

    /// Takes the stream and the report.
    pub fn into_parts(mut self) -> (S, Report) {
        let report = match self.report.take() {
            Some(report) => report,
            None => {
                let raw = self
                    .raw_report
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner);
                let raw = raw.take().unwrap_or_default();
                self.completed(raw)
            }
        };
        (self.stream, report)
    }
}

/// Reads from the stream, so a `Connection` can be used without [`Connection::into_stream`].
impl<S: AsyncRead + Unpin> AsyncRead for Connection<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

/// Writes to the stream, so a `Connection` can be used without [`Connection::into_stream`].
impl<S: AsyncWrite + Unpin> AsyncWrite for Connection<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Connects to the first reachable of `targets` with the default settings (no deadline, 250 ms
/// attempt delay): the one-line form of [`Connector::connect`], for code that just wants a stream.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let stream = connect_by_list::connect(["db1.example:5432", "[2001:db8::7]:5432"]).await?;
/// # drop(stream);
/// # Ok(())
/// # }
/// ```
pub fn connect<M>(
    targets: impl IntoTargets<M>,
) -> impl Future<Output = Result<TcpStream, ConnectError>> + Send + Unpin {
    static DEFAULT: OnceLock<Connector> = OnceLock::new();
    let connecting = DEFAULT.get_or_init(Connector::new).connect(targets);
    IntoStream { connecting }
}

/// Maps a [`Connecting`] to its stream alone.
struct IntoStream {
    connecting: Connecting,
}

impl Future for IntoStream {
    type Output = Result<TcpStream, ConnectError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.connecting)
            .poll(cx)
            .map(|result| result.map(Connection::into_stream))
    }
}

/// What the race gets from a user's handshake: its output and the stream's local address, read
/// before the handshake took the stream (a TLS stream cannot be asked later).
pub(crate) type Handshaken<T> = (T, io::Result<SocketAddr>);

/// A user's [`Handshake`] as the race runs it: boxed, so that the race keeps its attempts in a
/// plain `Vec` of `Unpin` futures.
#[derive(Debug)]
pub(crate) struct Raced<H> {
    pub(crate) handshake: H,
    /// For [`Peer::reconnect`].
    pub(crate) dial: TcpDial,
}

impl<H: Handshake> crate::race::Handshake<TcpStream> for Raced<H> {
    type Output = Handshaken<H::Output>;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Output>> + Send>>;

    fn handshake(&self, stream: TcpStream, mut peer: Peer) -> Self::Future {
        let local = stream.local_addr();
        let reconnected = Arc::new(Mutex::new(None));
        peer.redial = Some(crate::handshake::Redial {
            dial: self.dial.clone(),
            local: reconnected.clone(),
        });
        let handshake = self.handshake.handshake(stream, peer);
        Box::pin(async move {
            let output = handshake.await?;
            // A handshake that reconnected (the ECH retry) hands out the new connection.
            let moved = reconnected
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            Ok((output, moved.map_or(local, Ok)))
        })
    }
}
