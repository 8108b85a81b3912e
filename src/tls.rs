//! TLS raced with the connect: the first attempt to finish its TLS handshake wins.

use std::io;
use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{Connect, TlsConnector};

use crate::connector::{Connecting, Connector};
use crate::handshake::{Handshake, Peer};
use crate::target::IntoTargets;

/// A rustls client handshake, run on each attempt inside the race (see
/// [`Connector::connect_with`]): an IPv6 path that completes TCP but drops the server's
/// certificate flight (a path-MTU blackhole) loses to an IPv4 path that finishes TLS.
///
/// The server name is the one given, or else each attempt's host name (or its IP address for a
/// literal). The negotiated protocol (ALPN) and TLS version are on the stream:
/// `stream.get_ref().1.alpn_protocol()`, `.protocol_version()`.
#[derive(Clone)]
pub struct TlsHandshake {
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsHandshake")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsHandshake {
    /// A handshake with this client configuration (its roots, ALPN protocols, crypto provider);
    /// the server name is each attempt's host.
    pub fn new(config: Arc<tokio_rustls::rustls::ClientConfig>) -> TlsHandshake {
        TlsHandshake {
            connector: TlsConnector::from(config),
            server_name: None,
        }
    }

    /// Verifies every attempt against this server name (and sends it as SNI), whatever host
    /// the address came from.
    pub fn server_name(mut self, name: ServerName<'static>) -> TlsHandshake {
        self.server_name = Some(name);
        self
    }

    fn name_for(&self, peer: &Peer) -> io::Result<ServerName<'static>> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        match peer.host() {
            Some(host) => ServerName::try_from(host.to_owned()).map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{host:?} is not a TLS server name: {error}"),
                )
            }),
            None => Ok(ServerName::IpAddress(peer.remote().ip().into())),
        }
    }
}

impl Handshake for TlsHandshake {
    type Output = TlsStream<TcpStream>;
    type Future = TlsConnecting;

    fn handshake(&self, stream: TcpStream, peer: Peer) -> TlsConnecting {
        let name = self.name_for(&peer);
        // HEv3: an attempt shaped by an HTTPS record offers the ALPN protocols both sides share.
        let shared = peer.https().map(|via| via.alpn());
        let offered = &self.connector.config().alpn_protocols;
        let connector = match shared {
            Some(shared) if shared != offered.as_slice() => {
                let mut config = (**self.connector.config()).clone();
                config.alpn_protocols = shared.to_vec();
                TlsConnector::from(Arc::new(config))
            }
            _ => self.connector.clone(),
        };
        match name {
            Ok(name) => TlsConnecting(Inner::Connecting(connector.connect(name, stream))),
            Err(error) => TlsConnecting(Inner::Invalid(Some(error))),
        }
    }

    /// TLS raced by this crate is taken as HTTPS: its names' HTTPS records are asked for.
    fn https_alpn(&self) -> Option<Vec<Vec<u8>>> {
        let offered = &self.connector.config().alpn_protocols;
        Some(if offered.is_empty() {
            vec![b"http/1.1".to_vec()]
        } else {
            offered.clone()
        })
    }
}

/// One TLS handshake in flight (the future of [`TlsHandshake`]).
#[must_use = "futures do nothing unless polled"]
pub struct TlsConnecting(Inner);

// The race boxes the whole handshake future once; boxing the big variant too would allocate twice.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Connecting(Connect<TcpStream>),
    /// A server name that could not be used, answered on the first poll.
    Invalid(Option<io::Error>),
}

impl std::fmt::Debug for TlsConnecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnecting")
    }
}

impl std::future::Future for TlsConnecting {
    type Output = io::Result<TlsStream<TcpStream>>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Inner::Connecting(connect) => std::pin::Pin::new(connect).poll(cx),
            Inner::Invalid(error) => std::task::Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| io::Error::other("polled again")))),
        }
    }
}

impl Connector {
    /// Connects and finishes a TLS handshake, racing the handshake as part of each attempt:
    /// [`Connector::connect_with`] with a [`TlsHandshake`]. The server name is each attempt's
    /// host name (or IP address); use `connect_with(targets, TlsHandshake::new(config)
    /// .server_name(name))` to fix one.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config: std::sync::Arc<connect_by_list::rustls::ClientConfig> = unimplemented!();
    /// let connection = connect_by_list::Connector::new()
    ///     .connect_tls("example.com:443", config)
    ///     .await?;
    /// let (_, session) = connection.stream().get_ref();
    /// println!("{:?} over {:?}", session.alpn_protocol(), session.protocol_version());
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect_tls<M>(
        &self,
        targets: impl IntoTargets<M>,
        config: Arc<tokio_rustls::rustls::ClientConfig>,
    ) -> Connecting<TlsStream<TcpStream>> {
        self.connect_with(targets, TlsHandshake::new(config))
    }
}
