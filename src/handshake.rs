//! A handshake raced with the connect: TLS, or any protocol's greeting, run on each attempt's
//! stream as soon as it connects; the first attempt to finish its handshake wins.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::dial::{Dial, TcpDial};

/// Runs on each attempt's [`TcpStream`] as soon as it connects, inside the race (see
/// [`Connector::connect_with`](crate::Connector::connect_with)).
///
/// An attempt succeeds only when its handshake does, so a path that carries a SYN but not a
/// certificate (an IPv6 path-MTU blackhole, a middlebox that accepts TCP and then stalls) loses
/// to one that carries both, as draft-ietf-happy-happyeyeballs-v3 recommends. Every closure
/// `Fn(TcpStream, Peer) -> impl Future<Output = io::Result<T>>` is one.
///
/// ```no_run
/// use connect_by_list::{Connector, Peer};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tokio::net::TcpStream;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // The first server to answer a PING with +PONG wins; the others are closed.
/// let ping = |mut stream: TcpStream, _peer: Peer| async move {
///     stream.write_all(b"PING\r\n").await?;
///     let mut reply = [0; 7];
///     stream.read_exact(&mut reply).await?;
///     if &reply != b"+PONG\r\n" {
///         return Err(std::io::Error::other("not a PONG"));
///     }
///     Ok(stream)
/// };
/// let connection = Connector::new()
///     .connect_with(["cache1.example:6379", "cache2.example:6379"], ping)
///     .await?;
/// println!("{} answered first", connection.peer_addr());
/// # Ok(())
/// # }
/// ```
pub trait Handshake: Send + Sync + 'static {
    /// What a finished handshake yields (a TLS stream, say).
    type Output: Send + 'static;
    /// The handshake in flight; dropped (closing its stream) when another attempt wins or the
    /// deadline passes.
    type Future: Future<Output = io::Result<Self::Output>> + Send + 'static;

    /// Starts the handshake on a stream that has just connected to `peer`.
    fn handshake(&self, stream: TcpStream, peer: Peer) -> Self::Future;

    /// Whether this handshake is HTTPS's, and the ALPN protocols it offers over TCP. When it
    /// is, each name's HTTPS records (RFC 9460) are asked for beside AAAA and A and shape the
    /// race (Happy Eyeballs v3): services by priority, their ports and address hints. Asked
    /// once per connect, before the race begins.
    ///
    /// Default is `None` (no HTTPS query). `TlsHandshake` says `Some`, with its ALPN list
    /// (`http/1.1` when the list is empty).
    fn https_alpn(&self) -> Option<Vec<Vec<u8>>> {
        None
    }

    /// Whether this handshake can use an HTTPS record's `ech` config list (Encrypted Client
    /// Hello). When it can, records that list `ech` as `mandatory` are used instead of skipped.
    ///
    /// Default is false. `TlsHandshake` says true once `TlsHandshake::ech` is set.
    fn https_ech(&self) -> bool {
        false
    }
}

impl<F, Fut, T> Handshake for F
where
    F: Fn(TcpStream, Peer) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    type Output = T;
    type Future = Fut;

    fn handshake(&self, stream: TcpStream, peer: Peer) -> Fut {
        self(stream, peer)
    }
}

/// Who an attempt connected to: what a handshake may need to know (the host name for TLS's
/// server name, say).
#[derive(Clone, Debug)]
pub struct Peer {
    pub(crate) host: Option<Arc<str>>,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) remote: SocketAddr,
    pub(crate) https: Option<crate::HttpsVia>,
    /// How the attempt was dialled, for [`Peer::reconnect`]; `None` outside a real race.
    pub(crate) redial: Option<Redial>,
}

/// How a race's attempt dials again ([`Peer::reconnect`]), and where the last new connection's
/// local address is left for the race to report.
#[derive(Clone, Debug)]
pub(crate) struct Redial {
    pub(crate) dial: TcpDial,
    pub(crate) local: Arc<std::sync::Mutex<Option<SocketAddr>>>,
}

/// Peers are equal when they name the same attempt's endpoints (how they dial is not compared).
impl PartialEq for Peer {
    fn eq(&self, other: &Peer) -> bool {
        self.host == other.host
            && self.local == other.local
            && self.remote == other.remote
            && self.https == other.https
    }
}

impl Eq for Peer {}

impl Peer {
    /// The HTTPS record the address came from, with the ALPN protocols to offer on this
    /// attempt and the record's ECH config list; `None` when no HTTPS record shaped it.
    pub fn https(&self) -> Option<&crate::HttpsVia> {
        self.https.as_ref()
    }

    /// The host name the address came from, or `None` for an IP literal.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The local address the attempt was bound to, or `None` when the kernel chose.
    pub fn local(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The remote address connected to.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Opens a new connection over the same pair (the same local address, the same socket
    /// options), for a handshake that must start again on a fresh transport: the ECH retry
    /// rule, for one. It runs inside the attempt, so the deadline and the attempt timeout still
    /// cover it; the first stream is the caller's to drop.
    ///
    /// Fails at once (with [`io::ErrorKind::Unsupported`]) for a peer that did not come from
    /// a connector's race.
    pub fn reconnect(&self) -> impl Future<Output = io::Result<TcpStream>> + Send + 'static {
        let pair = crate::plan::Pair {
            local: self.local,
            remote: self.remote,
        };
        let dialing = self
            .redial
            .as_ref()
            .map(|redial| (redial.dial.dial(pair), redial.local.clone()));
        async move {
            let Some((dialing, local)) = dialing else {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this peer did not come from a race: nothing to reconnect with",
                ));
            };
            let stream = dialing.await?;
            // The connection the race hands out is this one now: its local address is reported.
            if let Ok(address) = stream.local_addr() {
                *local
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(address);
            }
            Ok(stream)
        }
    }
}
