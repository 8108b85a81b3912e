//! What the benchmarks share: a live loopback listener, the three contenders' connects, and a
//! fixed-answer resolver for `HttpConnector`.
//!
//! TIME_WAIT: tens of thousands of connects a second would fill the ephemeral port range
//! (32768–60999 by default) with TIME_WAIT sockets and make later iterations fail or slow down.
//! So every connected client stream, for all three contenders alike, gets `SO_LINGER 0` before it
//! is dropped (its close sends a reset and leaves no TIME_WAIT; the server side closes later, see
//! `live_listener`). That costs one `setsockopt` per iteration, the same for all three.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use connect_by_list::Connector;
use futures_util::future::join_all;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use socket2::{Domain, SockRef, Socket, Type};
use tokio::net::TcpStream;
use tower_service::Service;

/// Listen backlog for the live listener: room for a whole batch of concurrent connects (the
/// kernel caps it at `/proc/sys/net/core/somaxconn`, 4096 by default since Linux 5.4).
const BACKLOG: i32 = 4096;
/// Accepted streams the live listener keeps open: four batches of the concurrent group.
const KEPT: usize = 4000;

/// A live listener on 127.0.0.1 whose accept loop runs on its own thread, so accepting does not
/// take time from the runtime being measured. The thread ends with the process.
///
/// Accepted streams are kept open, the last `KEPT` of them, and dropped oldest first: by then
/// their client has long closed them with a reset, so the server's close sends nothing and leaves
/// no TIME_WAIT either. (Closing them at once instead races the client: a reset that arrives
/// before the client has seen its connect complete fails that connect with ECONNRESET.)
pub fn live_listener() -> SocketAddr {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    socket.listen(BACKLOG).unwrap();
    let listener: TcpListener = socket.into();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut kept = VecDeque::with_capacity(KEPT);
        for stream in listener.incoming().flatten() {
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back(stream);
        }
    });
    addr
}

/// Closes a client stream without leaving it in TIME_WAIT (see the module docs).
pub fn close(stream: &TcpStream) {
    SockRef::from(stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub async fn ours(connector: &Connector, addrs: &[SocketAddr]) {
    let connection = connector.connect(addrs).await.unwrap();
    close(connection.stream());
}

pub async fn tokio_connect(addrs: &[SocketAddr]) {
    let stream = TcpStream::connect(addrs).await.unwrap();
    close(&stream);
}

/// One connect the way hyper-util's legacy client makes it: clone the connector, wait for
/// `poll_ready`, `call`.
pub async fn hyper_util<R>(connector: &HttpConnector<R>, uri: &http::Uri)
where
    R: Clone,
    HttpConnector<R>: Service<http::Uri, Response = hyper_util::rt::TokioIo<TcpStream>>,
    <HttpConnector<R> as Service<http::Uri>>::Error: std::fmt::Debug,
{
    let mut connector = connector.clone();
    poll_fn(|cx| connector.poll_ready(cx)).await.unwrap();
    let io = connector.call(uri.clone()).await.unwrap();
    close(io.inner());
}

/// A resolver for `HttpConnector` that answers every name with a fixed list of addresses, in
/// order: the only way to hand it more than one address.
#[derive(Clone, Debug)]
pub struct ListResolver(pub Vec<SocketAddr>);

impl Service<Name> for ListResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = std::future::Ready<io::Result<Self::Response>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Name) -> Self::Future {
        std::future::ready(Ok(self.0.clone().into_iter()))
    }
}

/// Connects at once in the concurrent scenario.
pub const BATCH: usize = 1000;

/// Runs `BATCH` connect futures at once on this task and waits for all.
pub async fn batch<F: Future<Output = ()>>(make: impl Fn() -> F) {
    let all: Vec<Pin<Box<F>>> = (0..BATCH).map(|_| Box::pin(make())).collect();
    join_all(all).await;
}

/// One live listener and each contender set up to reach it: the crate and Tokio with its
/// address, `HttpConnector` with an `http://127.0.0.1:PORT` URI (an IP literal, so it skips its
/// resolver).
pub struct OneLive {
    pub one: [SocketAddr; 1],
    pub connector: Connector,
    pub http: HttpConnector,
    pub uri: http::Uri,
}

impl OneLive {
    pub fn new() -> OneLive {
        let live = live_listener();
        OneLive {
            one: [live],
            connector: Connector::new(),
            http: HttpConnector::new(),
            uri: format!("http://{live}/").parse().unwrap(),
        }
    }
}

/// A refused address, then a live one. The crate twice: with history off, so that it meets the
/// refused address every time (with history, the default, every connect after the first goes
/// straight to the last winner, which is the point of history but not what this measures), and
/// with the default. `HttpConnector` gets a name that a custom resolver answers with both
/// addresses, and no port in the URI, so that it keeps the resolver's ports.
pub struct RefusedThenLive {
    _refused: crate::loopback::Refused,
    pub addrs: [SocketAddr; 2],
    pub no_history: Connector,
    pub with_history: Connector,
    pub http: HttpConnector<ListResolver>,
    pub uri: http::Uri,
}

impl RefusedThenLive {
    pub fn new() -> RefusedThenLive {
        let refused = crate::loopback::Refused::new(Ipv4Addr::LOCALHOST.into()).unwrap();
        let addrs = [refused.addr(), live_listener()];
        RefusedThenLive {
            _refused: refused,
            addrs,
            no_history: Connector::builder().history_capacity(0).build().unwrap(),
            with_history: Connector::new(),
            http: HttpConnector::new_with_resolver(ListResolver(addrs.to_vec())),
            uri: "http://refused-then-live.invalid/".parse().unwrap(),
        }
    }
}

/// A TLS server on 127.0.0.1 (a certificate for that address), finishing every handshake on a
/// runtime of its own thread, and the client configuration that trusts it: the same for every
/// TLS contender (ring, TLS 1.3, no ALPN).
#[cfg(feature = "rustls")]
pub mod tls {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use connect_by_list::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use connect_by_list::rustls::{ClientConfig, RootCertStore, ServerConfig};
    use tokio::io::AsyncReadExt;

    pub fn server_and_client() -> (SocketAddr, Arc<ClientConfig>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((stream, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        if let Ok(mut stream) = acceptor.accept(stream).await {
                            // Held until the client closes it.
                            let mut byte = [0; 1];
                            let _ = stream.read(&mut byte).await;
                        }
                    });
                }
            });
        });
        (addr, Arc::new(client))
    }
}
