//! hyper integration (feature `hyper`): a [`Connector`] is a `tower_service::Service<http::Uri>`.
//! The guide is in the docs readers see: the crate root, [`ConnectInfo`] and [`UriConnector`].

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection as HyperConnection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tower_service::Service;

use crate::connector::{Connecting, Connection, Connector};
use crate::error::ConnectError;
use crate::report::Report;
use crate::target::{InvalidTarget, Target};

/// Connects hyper to the first reachable address of a URI's host.
///
/// The same as `Service<Uri>` for [`Connector`], with a choice of which URI schemes it takes:
/// `http` and `https` by default, any scheme with [`UriConnector::allow_any_scheme`]. That policy
/// is about URIs, not about connecting, so it lives here and not in the [`Connector`]'s settings.
///
/// # Which URIs
///
/// Both this and a plain [`Connector`] use the URI's scheme, host and port, nothing else. The
/// host is a name (resolved by the connector's [`Resolve`](crate::Resolve)r), an IPv4 literal,
/// or a bracketed IPv6 literal (`http://[2001:db8::7]:8080/`). The port is the URI's, or 80 for
/// `http` and 443 for `https` (with any scheme allowed, also 80 for `ws` and 443 for `wss`;
/// other schemes must name their port, and `host:port` without a scheme, the form of a
/// `CONNECT` request, is taken too).
///
/// A URI with no host, no scheme, port 0, or a scheme other than `http` and `https` (unless
/// allowed) fails with [`ConnectErrorKind::InvalidTarget`](crate::ConnectErrorKind::InvalidTarget) before
/// anything is resolved or opened, and the error names the part of the URI at fault. Errors
/// show the scheme, host and port only: user info, path and query may hold secrets.
///
/// ```
/// use connect_by_list::{Connector, ConnectErrorKind, UriConnector};
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut plain = Connector::new();
/// let error = plain.call("ftp://files.example/".parse().unwrap()).await.unwrap_err();
/// assert_eq!(error.kind(), ConnectErrorKind::InvalidTarget);
/// assert!(error.to_string().contains("not http or https"), "{error}");
///
/// // Any scheme, as long as the port is known:
/// let mut any = UriConnector::new(Connector::new()).allow_any_scheme(true);
/// let error = any.call("redis://cache.example/".parse().unwrap()).await.unwrap_err();
/// assert!(error.to_string().contains("no default port"), "{error}");
/// # }
/// ```
///
/// ```
/// use connect_by_list::{Connector, UriConnector};
///
/// // For a client that also speaks, say, `ws://` and `redis://` URIs through hyper or tower.
/// let connector = UriConnector::new(Connector::new()).allow_any_scheme(true);
/// # drop(connector);
/// ```
#[derive(Clone, Debug)]
pub struct UriConnector {
    connector: Connector,
    any_scheme: bool,
}

impl UriConnector {
    /// Wraps a connector; it takes `http` and `https` URIs only.
    pub fn new(connector: Connector) -> UriConnector {
        UriConnector {
            connector,
            any_scheme: false,
        }
    }

    /// Whether URIs of any scheme are taken, not only `http` and `https`. A URI whose scheme has
    /// no default port (80 for `http` and `ws`, 443 for `https` and `wss`) must then name its
    /// port, and a URI without a scheme is taken when it names its port (`host:port`, the form
    /// of a `CONNECT` request).
    ///
    /// Default is false: `http` and `https` only.
    pub fn allow_any_scheme(mut self, allow: bool) -> UriConnector {
        self.any_scheme = allow;
        self
    }

    /// The connector it connects with.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }
}

impl From<Connector> for UriConnector {
    fn from(connector: Connector) -> UriConnector {
        UriConnector::new(connector)
    }
}

impl Service<Uri> for UriConnector {
    type Response = HttpStream;
    type Error = ConnectError;
    type Future = UriConnecting;

    /// Always ready: every call makes its own sockets.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> UriConnecting {
        connect_uri(&self.connector, &uri, self.any_scheme)
    }
}

/// Connects to the host of an `http` or `https` URI: what hyper-util's client calls for every
/// new connection. [`UriConnector`] takes other schemes too.
///
/// ```no_run
/// use connect_by_list::{ConnectInfo, Connector};
/// use http_body_util::Empty;
/// use hyper::body::Bytes;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client: Client<Connector, Empty<Bytes>> =
///     Client::builder(TokioExecutor::new()).build(Connector::new());
/// let response = client.get("http://example.com/".parse()?).await?;
/// let info = response.extensions().get::<ConnectInfo>();
/// println!("{} over {:?}", response.status(), info.map(ConnectInfo::remote_addr));
/// # Ok(())
/// # }
/// ```
impl Service<Uri> for Connector {
    type Response = HttpStream;
    type Error = ConnectError;
    type Future = UriConnecting;

    /// Always ready: every call makes its own sockets.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> UriConnecting {
        connect_uri(self, &uri, false)
    }
}

pub(crate) fn connect_uri(connector: &Connector, uri: &Uri, any_scheme: bool) -> UriConnecting {
    let connecting = match target_of(uri, any_scheme) {
        Ok(target) => connector.connect(target),
        Err(invalid) => Connecting::invalid(invalid),
    };
    UriConnecting { connecting }
}

/// The target a URI names: its host, and its port or its scheme's default.
pub(crate) fn target_of(uri: &Uri, any_scheme: bool) -> Result<Target, InvalidTarget> {
    let refuse = |reason: String| InvalidTarget::new(format!("{:?}", shown(uri)), reason);
    let host = match uri.host() {
        Some("") => return Err(refuse("URI has an empty host".into())),
        Some(host) => host,
        None => {
            return Err(refuse(
                "URI has no host (expected an absolute URI such as http://host/)".into(),
            ))
        }
    };
    let scheme = uri.scheme_str();
    let default_port = match scheme.map(str::to_ascii_lowercase).as_deref() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        Some("ws") if any_scheme => Some(80),
        Some("wss") if any_scheme => Some(443),
        Some(_) if any_scheme => None,
        None if any_scheme => None,
        Some(other) => {
            return Err(refuse(format!(
                "URI scheme {other:?} is not http or https (UriConnector::allow_any_scheme takes others)"
            )))
        }
        None => {
            return Err(refuse(
                "URI has no scheme (expected http:// or https://)".into(),
            ))
        }
    };
    let port = match (uri.port_u16(), default_port) {
        (Some(0), _) => {
            return Err(refuse(
                "URI port 0 cannot be connected to (use 1-65535)".into(),
            ))
        }
        (Some(port), _) | (None, Some(port)) => port,
        (None, None) => {
            return Err(refuse(match scheme {
                Some(scheme) => {
                    format!("URI has no port, and scheme {scheme:?} has no default port")
                }
                None => "URI has no port, and no scheme to take a default port from".into(),
            }))
        }
    };
    Target::new(host, port).map_err(|invalid| refuse(format!("URI host: {}", invalid.reason())))
}

/// The URI as errors show it: scheme, host and port. User info, path and query are left out: the
/// connect does not use them, and they may hold secrets that should not reach logs.
pub(crate) fn shown(uri: &Uri) -> String {
    let mut text = String::new();
    if let Some(scheme) = uri.scheme_str() {
        text.push_str(scheme);
        text.push_str("://");
    }
    match uri.host() {
        Some(host) => {
            text.push_str(host);
            if let Some(port) = uri.port() {
                text.push(':');
                text.push_str(port.as_str());
            }
        }
        None => text.push_str(uri.path()),
    }
    text
}

/// The future of `Service<Uri>::call` on a [`Connector`] or [`UriConnector`]: an [`HttpStream`],
/// or a [`ConnectError`] with every attempt.
///
/// `Send` and `Unpin`, as hyper-util's client requires. Dropping it closes every socket it opened.
///
/// ```
/// use connect_by_list::{Connector, UriConnecting};
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let uri = format!("http://{}/", listener.local_addr()?).parse()?;
/// let connecting: UriConnecting = Connector::new().call(uri);
/// let stream = connecting.await?;
/// assert_eq!(stream.info().remote_addr(), listener.local_addr()?);
/// # Ok(())
/// # }
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct UriConnecting {
    /// The connect, or a target already found invalid (which it answers with).
    connecting: Connecting,
}

impl fmt::Debug for UriConnecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UriConnecting")
            .field(&self.connecting)
            .finish()
    }
}

impl Future for UriConnecting {
    type Output = Result<HttpStream, ConnectError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.connecting)
            .poll(cx)
            .map(|result| result.map(HttpStream::new))
    }
}

/// Where a connection made by a [`Connector`] for hyper goes, and how the race that made it ran.
///
/// # With hyper
///
/// Hand a [`Connector`] to hyper-util's legacy client where it would take its own
/// `HttpConnector`. Every new connection is then raced over every address of the URI's host,
/// under the connector's one deadline ([`Builder::timeout`](crate::Builder::timeout), which
/// bounds the connect, not the request). The client puts a `ConnectInfo` in the extensions of
/// every response: the local and remote address of the connection it came over, and the
/// [`Report`] of the race that made that connection (a response over a reused, pooled
/// connection carries that connection's report). This crate cannot make hyper-util's own
/// `HttpInfo`, whose fields are private; this carries the same addresses and the report.
///
/// ```no_run
/// use connect_by_list::{ConnectError, ConnectInfo, Connector};
/// use http_body_util::Empty;
/// use hyper::body::Bytes;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let connector = Connector::builder().timeout(Duration::from_secs(5)).build()?;
/// let client: Client<Connector, Empty<Bytes>> =
///     Client::builder(TokioExecutor::new()).build(connector);
///
/// match client.get("http://example.com/".parse()?).await {
///     Ok(response) => {
///         if let Some(info) = response.extensions().get::<ConnectInfo>() {
///             println!("{} over {}", response.status(), info.remote_addr());
///             print!("{}", info.report().timeline());
///         }
///     }
///     // A connect that failed keeps every attempt: the client error's source is the
///     // `ConnectError`.
///     Err(error) => {
///         let source = std::error::Error::source(&error);
///         match source.and_then(|source| source.downcast_ref::<ConnectError>()) {
///             Some(connect) => print!("{}", connect.report().timeline()),
///             None => println!("request failed: {error}"),
///         }
///     }
/// }
/// # Ok(())
/// # }
/// ```
///
/// # HTTPS
///
/// Wrap the connector with a TLS connector such as hyper-rustls's
/// `HttpsConnectorBuilder::wrap_connector` (or hyper-tls's `HttpsConnector::new_with_connector`).
/// The TCP part, and so the race and the report, stay this crate's, and `ConnectInfo` still
/// reaches the response:
///
/// ```no_run
/// use connect_by_list::{ConnectInfo, Connector};
/// use http_body_util::Empty;
/// use hyper::body::Bytes;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
///
/// # async fn run(tls: rustls::ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
/// // `tls` holds the trust roots, for example from rustls-native-certs or webpki-roots.
/// let https = hyper_rustls::HttpsConnectorBuilder::new()
///     .with_tls_config(tls)
///     .https_or_http()
///     .enable_http1()
///     .wrap_connector(Connector::new());
/// let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
/// let response = client.get("https://example.com/".parse()?).await?;
/// let info = response.extensions().get::<ConnectInfo>();
/// println!("{} over {:?}", response.status(), info.map(ConnectInfo::remote_addr));
/// # Ok(())
/// # }
/// ```
///
/// In code that only has the response:
///
/// ```
/// use connect_by_list::ConnectInfo;
///
/// fn show<B>(response: &http::Response<B>) {
///     if let Some(info) = response.extensions().get::<ConnectInfo>() {
///         println!("from {} to {}", info.local_addr(), info.remote_addr());
///         println!("{}", info.report());
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectInfo {
    local: SocketAddr,
    remote: SocketAddr,
    report: Arc<Report>,
}

impl ConnectInfo {
    /// The local address of the connection (the unspecified address of the peer's family,
    /// port 0, should the system fail to tell it, which it does not for a connected socket).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The remote address connected to: the address of the race's winner.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Every attempt of the race that made the connection, the winner included.
    pub fn report(&self) -> &Report {
        &self.report
    }
}

/// A connected stream for hyper: what `Service<Uri>` on a [`Connector`] gives (a
/// [`TcpStream`]), or on an `HttpsConnector` (TCP or TLS, by the URI's scheme).
///
/// It implements hyper's `Read` and `Write` (and Tokio's `AsyncRead` and `AsyncWrite`, for use
/// outside hyper), and hyper-util's `Connection`, whose `Connected` carries a [`ConnectInfo`] as
/// its extra, and says whether TLS negotiated HTTP/2.
///
/// ```
/// use connect_by_list::Connector;
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let uri = format!("http://{}/", listener.local_addr()?).parse()?;
/// let stream = Connector::new().call(uri).await?;
/// println!("{}", stream.info().report());
/// let tcp: tokio::net::TcpStream = stream.into_inner();
/// assert_eq!(tcp.peer_addr()?, listener.local_addr()?);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct HttpStream<S = TcpStream> {
    io: TokioIo<S>,
    info: ConnectInfo,
    negotiated_h2: bool,
}

impl<S> HttpStream<S> {
    /// A stream for hyper from a won race; `negotiated_h2` when TLS chose `h2` by ALPN.
    pub(crate) fn from_connection(connection: Connection<S>, negotiated_h2: bool) -> Self {
        let remote = connection.peer_addr();
        // hyper's `Connected` wants an address; a connected socket always has one, and should the
        // system not tell, `ConnectInfo::local_addr` documents the unspecified one it shows.
        let local = connection
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(crate::local::unspecified_of(remote), 0));
        let (stream, report) = connection.into_parts();
        HttpStream {
            io: TokioIo::new(stream),
            info: ConnectInfo {
                local,
                remote,
                report: Arc::new(report),
            },
            negotiated_h2,
        }
    }

    /// The addresses and the report of the race.
    pub fn info(&self) -> &ConnectInfo {
        &self.info
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        self.io.inner()
    }

    /// Takes the stream, dropping the report.
    pub fn into_inner(self) -> S {
        self.io.into_inner()
    }
}

impl HttpStream {
    fn new(connection: Connection) -> HttpStream {
        HttpStream::from_connection(connection, false)
    }
}

impl<S> HyperConnection for HttpStream<S> {
    fn connected(&self) -> Connected {
        let connected = Connected::new().extra(self.info.clone());
        if self.negotiated_h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Read for HttpStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Write for HttpStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Write::poll_write(Pin::new(&mut self.io), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Write::poll_flush(Pin::new(&mut self.io), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Write::poll_shutdown(Pin::new(&mut self.io), cx)
    }

    fn is_write_vectored(&self) -> bool {
        Write::is_write_vectored(&self.io)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Write::poll_write_vectored(Pin::new(&mut self.io), cx, bufs)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HttpStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.io.inner_mut()).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HttpStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.io.inner_mut()).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io.inner_mut()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io.inner_mut()).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.inner().is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.io.inner_mut()).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Result<String, String> {
        let uri: Uri = uri.parse().expect("test URI");
        target_of(&uri, false)
            .map(|target| target.to_string())
            .map_err(|invalid| invalid.to_string())
    }

    fn any_scheme(uri: &str) -> Result<String, String> {
        let uri: Uri = uri.parse().expect("test URI");
        target_of(&uri, true)
            .map(|target| target.to_string())
            .map_err(|invalid| invalid.to_string())
    }

    #[test]
    fn ports_come_from_the_uri_or_its_scheme() {
        assert_eq!(target("http://example.com/"), Ok("example.com:80".into()));
        assert_eq!(target("https://example.com/"), Ok("example.com:443".into()));
        assert_eq!(target("HTTPS://example.com"), Ok("example.com:443".into()));
        assert_eq!(
            target("http://example.com:8080/x"),
            Ok("example.com:8080".into())
        );
        assert_eq!(
            target("https://example.com:80"),
            Ok("example.com:80".into())
        );
        assert_eq!(target("http://127.0.0.1/"), Ok("127.0.0.1:80".into()));
        assert_eq!(target("https://[::1]/"), Ok("[::1]:443".into()));
        assert_eq!(
            target("http://[2001:db8::7]:81/"),
            Ok("[2001:db8::7]:81".into())
        );
        assert_eq!(
            target("http://user:pw@example.com/"),
            Ok("example.com:80".into())
        );
    }

    #[test]
    fn refusals_name_the_uri_part() {
        let refused = |uri: &str| target(uri).expect_err(uri);
        assert_eq!(
            refused("/only/a/path"),
            "invalid target \"/only/a/path\": URI has no host (expected an absolute URI such as http://host/)"
        );
        assert_eq!(
            refused("ftp://example.com/file"),
            "invalid target \"ftp://example.com\": URI scheme \"ftp\" is not http or https (UriConnector::allow_any_scheme takes others)"
        );
        assert!(refused("example.com:80").contains("URI has no scheme"));
        assert!(refused("http://example.com:0/").contains("URI port 0"));
        assert!(refused("http://a..b/").contains("URI host: host \"a..b\" has an empty label"));
        assert!(refused("http://127.1/").contains("URI host"));
    }

    #[test]
    fn errors_leave_out_user_info_path_and_query() {
        let error = target("ftp://user:secret@example.com:21/path?token=secret")
            .expect_err("ftp is refused");
        assert!(!error.contains("secret"), "{error}");
        assert!(error.contains("\"ftp://example.com:21\""), "{error}");
    }

    #[test]
    fn any_scheme_needs_a_port_where_the_scheme_has_none() {
        assert_eq!(any_scheme("ws://example.com/"), Ok("example.com:80".into()));
        assert_eq!(
            any_scheme("wss://example.com/"),
            Ok("example.com:443".into())
        );
        assert_eq!(any_scheme("redis://db:6379"), Ok("db:6379".into()));
        assert_eq!(
            any_scheme("example.com:8443"),
            Ok("example.com:8443".into())
        );
        assert!(any_scheme("redis://db/")
            .expect_err("no port")
            .contains("scheme \"redis\" has no default port"));
        assert!(any_scheme("/path")
            .expect_err("no host")
            .contains("no host"));
    }
}
