//! Proxies (feature `hyper`): hyper-util's `Tunnel` (HTTP `CONNECT`), `SocksV4` and `SocksV5`
//! wrap any `Service<Uri>`, so a [`Connector`] under them races the *proxy's* addresses; and
//! [`LocalDns`], for proxies that take addresses, resolves the *target* through the connector.
//!
//! What the connector's [`AddressFilter`](crate::AddressFilter) sees behind a proxy: the
//! proxy's addresses only. The proxy reaches the target by itself, so the filter cannot stop
//! it from reaching a private address, unless the target is resolved locally: wrap the proxy
//! connector in [`LocalDns`], and the target's host goes through the connector's resolver and
//! filter first, and the proxy is handed an address (SOCKS5 and SOCKS4 take one; HTTP
//! `CONNECT` takes one too, but proxies commonly apply their own rules to it).
//!
//! ```no_run
//! use connect_by_list::{Connector, LocalDns, UriConnector};
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//! use hyper_util::client::legacy::connect::proxy::SocksV5;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let connector = Connector::builder()
//!     .address_filter(connect_by_list::AddressFilter::deny_non_public())
//!     .build()?;
//! // The proxy's URI has a scheme of its own: let the connector take it (with its port).
//! let to_proxy = UriConnector::new(connector.clone()).allow_any_scheme(true);
//! let socks = SocksV5::new("socks5://proxy.example:1080".parse()?, to_proxy);
//! let client: Client<_, Empty<Bytes>> =
//!     Client::builder(TokioExecutor::new()).build(LocalDns::new(connector, socks));
//! let response = client.get("http://example.com/".parse()?).await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::uri::{Authority, Uri};
use tower_service::Service;

use crate::connector::Connector;
use crate::error::ConnectError;
use crate::service::target_of;

/// A `Service<Uri>` that resolves each URI's host through a [`Connector`] (its resolver,
/// address filter, ranking and history) and calls the inner service with that URI, its host
/// replaced by the first address the connector would try and its port written out: for proxy
/// protocols that take an address instead of a name (hyper-util's `SocksV5`, `SocksV4`), so
/// that the filter sees the target's addresses, not only the proxy's. A URI whose every address
/// is denied, or whose name does not resolve, fails with the connector's [`ConnectError`] and
/// the inner service is not called. The proxy makes one connection to the one address it is
/// given: the race across the target's addresses is lost; the connector under the proxy still
/// races the proxy's.
///
/// Any scheme is taken; one without a default port (80 for `http` and `ws`, 443 for `https` and
/// `wss`) must name its port. The port is always written out, since hyper-util's SOCKS
/// connectors take 443 for a URI without one, whatever its scheme.
#[derive(Clone, Debug)]
pub struct LocalDns<S> {
    connector: Connector,
    inner: S,
}

impl<S> LocalDns<S> {
    /// Resolves with `connector`, then calls `inner` (the proxy connector).
    pub fn new(connector: Connector, inner: S) -> LocalDns<S> {
        LocalDns { connector, inner }
    }

    /// The proxy connector inside.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

/// The error of a [`LocalDns`] call: the connector's, when resolving failed or was refused, or
/// the inner service's.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// What [`LocalDns`] returns: resolution, then the inner service's future.
pub struct LocalDnsConnecting<R> {
    future: Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>,
}

impl<R> fmt::Debug for LocalDnsConnecting<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalDnsConnecting(..)")
    }
}

impl<R> Future for LocalDnsConnecting<R> {
    type Output = Result<R, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<S> Service<Uri> for LocalDns<S>
where
    S: Service<Uri> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = LocalDnsConnecting<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        // The service that was made ready goes into the future; a clone stays for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let connector = self.connector.clone();
        let future = async move {
            let target = target_of(&uri, true).map_err(ConnectError::from_invalid_target)?;
            let planned = connector.plan(target).await?;
            let Some(first) = planned.attempts().first() else {
                return Err(BoxError::from(format!("{uri}: no address to try")));
            };
            let uri = with_address(uri, first.remote())?;
            inner.call(uri).await.map_err(Into::into)
        };
        LocalDnsConnecting {
            future: Box::pin(future),
        }
    }
}

/// `uri` with `addr` as its host and port (no user info: SOCKS and CONNECT send none).
fn with_address(uri: Uri, addr: SocketAddr) -> Result<Uri, BoxError> {
    // A scope id has no place in a URI host: the proxy could not take it anyway.
    let addr = match addr {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => {
            return Err(format!("{addr}: a scoped IPv6 address cannot be given to a proxy").into())
        }
        addr => addr,
    };
    let mut parts = uri.into_parts();
    parts.authority = Some(Authority::try_from(addr.to_string())?);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    Ok(Uri::from_parts(parts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_replaces_the_host_and_the_port_is_written_out() {
        let cases = [
            (
                "http://example.com/a?b",
                "192.0.2.7:80",
                "http://192.0.2.7:80/a?b",
            ),
            (
                "https://u@example.com",
                "[2001:db8::7]:443",
                "https://[2001:db8::7]:443/",
            ),
            (
                "socks5://x:1080/",
                "192.0.2.7:1080",
                "socks5://192.0.2.7:1080/",
            ),
        ];
        for (uri, addr, expected) in cases {
            let uri: Uri = uri.parse().expect("test URI");
            let addr: SocketAddr = addr.parse().expect("test address");
            let got = with_address(uri, addr).expect("an address fits");
            assert_eq!(got.to_string(), expected);
        }
        let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().expect("test address"),
            80,
            0,
            2,
        ));
        let error = with_address("http://x/".parse().expect("test URI"), scoped)
            .expect_err("no scope in a URI");
        assert!(error.to_string().contains("scoped"), "{error}");
    }
}
