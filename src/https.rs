//! hyper over TLS with the handshake raced (features `hyper` and `rustls`): the connector that
//! takes `http` and `https` URIs and, for `https`, counts an attempt as won only when its TLS
//! handshake finishes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tower_service::Service;

use crate::connector::{Connecting, Connector};
use crate::error::ConnectError;
use crate::service::{shown, target_of, HttpStream};
use crate::target::InvalidTarget;
use crate::tls::TlsHandshake;

/// Connects hyper to `http` and `https` URIs, racing the TLS handshake for `https`.
///
/// Wrapping a [`Connector`] in hyper-rustls's `HttpsConnector` runs TLS after the race, on
/// whichever address connected first: an IPv6 path that completes TCP but drops the server's
/// certificate flight (a path-MTU blackhole) then wins the race and stalls the request. Here the
/// TLS handshake is part of each attempt, so that path loses to the next address one attempt
/// delay later. ALPN is what the `ClientConfig` offers; when the server picks `h2`, hyper is
/// told (`Connected::negotiated_h2`). Each response carries a [`ConnectInfo`](crate::ConnectInfo)
/// whose report gives every attempt's connect instant and handshake end.
///
/// ```no_run
/// use connect_by_list::{Connector, HttpsConnector};
/// use http_body_util::Empty;
/// use hyper::body::Bytes;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
///
/// # async fn run(tls: connect_by_list::rustls::ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
/// // `tls` holds the trust roots (rustls-native-certs or webpki-roots) and the ALPN list.
/// let https = HttpsConnector::new(Connector::new(), tls.into());
/// let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
/// let response = client.get("https://example.com/".parse()?).await?;
/// println!("{}", response.status());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct HttpsConnector {
    connector: Connector,
    tls: TlsHandshake,
    https_only: bool,
}

impl HttpsConnector {
    /// Connects with `connector`, and with this TLS configuration for `https` URIs (the
    /// server name is the URI's host).
    pub fn new(connector: Connector, tls: Arc<tokio_rustls::rustls::ClientConfig>) -> Self {
        HttpsConnector {
            connector,
            tls: TlsHandshake::new(tls),
            https_only: false,
        }
    }

    /// Encrypted Client Hello from HTTPS records on `https` URIs: see [`TlsHandshake::ech`],
    /// which takes the same arguments.
    pub fn ech<F>(
        mut self,
        suites: &'static [&'static dyn tokio_rustls::rustls::crypto::hpke::Hpke],
        config: F,
    ) -> Self
    where
        F: Fn(
                tokio_rustls::rustls::client::EchMode,
            )
                -> Result<tokio_rustls::rustls::ClientConfig, tokio_rustls::rustls::Error>
            + Send
            + Sync
            + 'static,
    {
        self.tls = self.tls.ech(suites, config);
        self
    }

    /// Refuses `http` URIs (with [`ConnectErrorKind::InvalidTarget`](crate::ConnectErrorKind::InvalidTarget))
    /// instead of connecting without TLS.
    ///
    /// Default is false: `http` URIs are connected over plain TCP.
    pub fn https_only(mut self, https_only: bool) -> Self {
        self.https_only = https_only;
        self
    }
}

impl Service<Uri> for HttpsConnector {
    type Response = HttpStream<MaybeTls>;
    type Error = ConnectError;
    type Future = HttpsConnecting;

    /// Always ready: every call makes its own sockets.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> HttpsConnecting {
        let https = uri
            .scheme_str()
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https"));
        let inner = match target_of(&uri, false) {
            Ok(target) if https => {
                Inner::Tls(self.connector.connect_with(target, self.tls.clone()))
            }
            Ok(_) if self.https_only => Inner::Plain(Connecting::invalid(InvalidTarget::new(
                format!("{:?}", shown(&uri)),
                "URI scheme is http, and this connector is https_only".to_owned(),
            ))),
            Ok(target) => Inner::Plain(self.connector.connect(target)),
            Err(invalid) => Inner::Plain(Connecting::invalid(invalid)),
        };
        HttpsConnecting(inner)
    }
}

/// The future of [`HttpsConnector`]'s `call`. `Send` and `Unpin`; dropping it closes every
/// socket it opened.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct HttpsConnecting(Inner);

#[derive(Debug)]
enum Inner {
    Plain(Connecting),
    Tls(Connecting<TlsStream<TcpStream>>),
}

impl Future for HttpsConnecting {
    type Output = Result<HttpStream<MaybeTls>, ConnectError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Inner::Plain(connecting) => Pin::new(connecting).poll(cx).map(|result| {
                result.map(|connection| {
                    let connection = connection.map_stream(MaybeTls::Plain);
                    HttpStream::from_connection(connection, false)
                })
            }),
            Inner::Tls(connecting) => Pin::new(connecting).poll(cx).map(|result| {
                result.map(|connection| {
                    let h2 = connection.stream().get_ref().1.alpn_protocol() == Some(b"h2");
                    let connection = connection.map_stream(|tls| MaybeTls::Tls(Box::new(tls)));
                    HttpStream::from_connection(connection, h2)
                })
            }),
        }
    }
}

/// A plain TCP stream (`http`) or a TLS one (`https`).
#[derive(Debug)]
pub enum MaybeTls {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            MaybeTls::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            MaybeTls::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(stream) => Pin::new(stream).poll_flush(cx),
            MaybeTls::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            MaybeTls::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
