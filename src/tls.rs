//! TLS raced with the connect: the first attempt to finish its TLS handshake wins.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rustls_pki_types::{EchConfigListBytes, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::{EchConfig, EchMode};
use tokio_rustls::rustls::crypto::hpke::Hpke;
use tokio_rustls::rustls::{ClientConfig, PeerIncompatible};
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
///
/// With [`TlsHandshake::ech`], an attempt whose HTTPS record carries an `ech` config list sends
/// an Encrypted Client Hello (see there).
#[derive(Clone)]
pub struct TlsHandshake {
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
    ech: Option<Arc<Ech>>,
}

impl std::fmt::Debug for TlsHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsHandshake")
            .field("server_name", &self.server_name)
            .field("ech", &self.ech.is_some())
            .finish_non_exhaustive()
    }
}

/// Makes a client configuration for one ECH mode: the caller's own roots and provider, built
/// with `ConfigBuilder::with_ech(mode)`.
type MakeConfig =
    dyn Fn(EchMode) -> Result<ClientConfig, tokio_rustls::rustls::Error> + Send + Sync;

/// What ECH needs: the HPKE suites of the crypto provider, and a way to make a configuration
/// per ECH config list (rustls fixes the ECH mode when a configuration is built).
struct Ech {
    suites: &'static [&'static dyn Hpke],
    make: Box<MakeConfig>,
    /// Configurations made for the last few config lists (a list is the same for every
    /// attempt to a service, and usually for every connect until its DNS TTL ends).
    made: Mutex<Vec<Made>>,
}

/// A configuration made for one ECH config list.
type Made = (Arc<[u8]>, Arc<ClientConfig>);

/// How many ECH configurations a `TlsHandshake` keeps made.
const ECH_CONFIGS_KEPT: usize = 8;

impl Ech {
    /// The configuration for `list` (made once, then kept), offering `alpn`.
    fn config(
        &self,
        list: &[u8],
        alpn: &[Vec<u8>],
    ) -> Result<Arc<ClientConfig>, tokio_rustls::rustls::Error> {
        let kept = {
            let made = self
                .made
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            made.iter()
                .find(|(made_for, _)| **made_for == *list)
                .map(|(_, config)| config.clone())
        };
        let config = match kept {
            Some(config) => config,
            None => {
                let ech = EchConfig::new(EchConfigListBytes::from(list), self.suites)?;
                let config = Arc::new((self.make)(EchMode::Enable(ech))?);
                let mut made = self
                    .made
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if made.len() == ECH_CONFIGS_KEPT {
                    made.remove(0);
                }
                made.push((Arc::from(list), config.clone()));
                config
            }
        };
        if config.alpn_protocols == alpn {
            return Ok(config);
        }
        let mut config = (*config).clone();
        config.alpn_protocols = alpn.to_vec();
        Ok(Arc::new(config))
    }
}

impl TlsHandshake {
    /// A handshake with this client configuration (its roots, ALPN protocols, crypto provider);
    /// the server name is each attempt's host.
    pub fn new(config: Arc<tokio_rustls::rustls::ClientConfig>) -> TlsHandshake {
        TlsHandshake {
            connector: TlsConnector::from(config),
            server_name: None,
            ech: None,
        }
    }

    /// Encrypted Client Hello (ECH) from HTTPS records: an attempt whose record carries an
    /// `ech` config list sends the real server name (and ALPN) encrypted to the server's key,
    /// with only the config's public name in the clear.
    ///
    /// - `suites` are the HPKE suites of the crypto provider. rustls's `aws-lc-rs` provider has
    ///   them (`rustls::crypto::aws_lc_rs::hpke::ALL_SUPPORTED_SUITES`); its `ring` provider has
    ///   none, so ECH needs aws-lc-rs (or another provider with HPKE).
    /// - `config` builds a client configuration for an ECH mode, the way the one given to
    ///   [`TlsHandshake::new`] was built but with `.with_ech(mode)` (rustls fixes the mode when
    ///   a configuration is built). It is called once per config list; the result is kept.
    ///
    /// With ECH, records whose `mandatory` list names `ech` are used instead of skipped. A
    /// config list the suites cannot use (an unknown version or suite) is treated as absent
    /// and the attempt connects without ECH (logged at DEBUG).
    ///
    /// With ECH the race also follows two rules that keep the name from leaking:
    /// - an attempt that connects while its name's HTTPS answer is still out (racing begins
    ///   at the resolution delay without it) holds its handshake, not its TCP connect, until
    ///   the answer comes or the lookup fails (Happy Eyeballs v3 §6.1), then offers the
    ///   record's ECH; so a dropped HTTPS query can cost up to the resolver's own timeout,
    ///   within the connect's deadline;
    /// - when every usable record of a name has `ech`, the name's own addresses are not tried
    ///   as a last resort (RFC 9848), and are reported as `SkipReason::WithoutEch`. (A record
    ///   counts as having ECH whether or not `suites` can use its list; one they cannot use
    ///   is then connected to without ECH, as above.)
    ///
    /// **The retry rule** (draft-ietf-tls-esni §6.1.6). If the server rejects ECH, rustls
    /// first authenticates the server as the config's public name; only then:
    /// - with `retry_configs` the client can use: one new connection to the same address (same
    ///   local address and socket options, inside the same deadline and attempt timeout), with
    ///   ECH under those configs; a second rejection fails the attempt;
    /// - without them (ECH securely disabled): one new connection without ECH.
    ///
    /// A rejection that the public name's certificate does not authenticate fails the attempt
    /// with that certificate error, and nothing is retried.
    ///
    /// ```no_run
    /// # #[cfg(target_os = "linux")] // rustls with `aws_lc_rs`: a Linux-only dev-dependency here
    /// # {
    /// use std::sync::Arc;
    /// use connect_by_list::rustls::{self, ClientConfig, RootCertStore};
    /// use connect_by_list::{Connector, TlsHandshake};
    ///
    /// # async fn run(roots: Arc<RootCertStore>) -> Result<(), Box<dyn std::error::Error>> {
    /// let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    /// let plain = ClientConfig::builder_with_provider(provider.clone())
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(roots.clone())
    ///     .with_no_client_auth();
    /// let tls = TlsHandshake::new(Arc::new(plain)).ech(
    ///     rustls::crypto::aws_lc_rs::hpke::ALL_SUPPORTED_SUITES,
    ///     move |mode| {
    ///         Ok(ClientConfig::builder_with_provider(provider.clone())
    ///             .with_ech(mode)?
    ///             .with_root_certificates(roots.clone())
    ///             .with_no_client_auth())
    ///     },
    /// );
    /// let connection = Connector::builder()
    ///     .resolver(connect_by_list::HickoryResolver::from_system_conf()?)
    ///     .build()?
    ///     .connect_with("example.com:443", tls)
    ///     .await?;
    /// println!("{:?}", connection.stream().get_ref().1.ech_status());
    /// # Ok(())
    /// # }
    /// # }
    /// ```
    pub fn ech<F>(mut self, suites: &'static [&'static dyn Hpke], config: F) -> TlsHandshake
    where
        F: Fn(EchMode) -> Result<ClientConfig, tokio_rustls::rustls::Error> + Send + Sync + 'static,
    {
        self.ech = Some(Arc::new(Ech {
            suites,
            make: Box::new(config),
            made: Mutex::new(Vec::new()),
        }));
        self
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

/// The ALPN protocols an attempt offers: its HTTPS record's (those both sides share), or the
/// configuration's.
fn alpn_for<'a>(peer: &'a Peer, config: &'a ClientConfig) -> &'a [Vec<u8>] {
    match peer.https() {
        Some(via) => via.alpn(),
        None => &config.alpn_protocols,
    }
}

impl TlsHandshake {
    /// The connector without ECH, offering `alpn`.
    fn plain(&self, alpn: &[Vec<u8>]) -> TlsConnector {
        if alpn == self.connector.config().alpn_protocols.as_slice() {
            return self.connector.clone();
        }
        let mut config = (**self.connector.config()).clone();
        config.alpn_protocols = alpn.to_vec();
        TlsConnector::from(Arc::new(config))
    }
}

impl Handshake for TlsHandshake {
    type Output = TlsStream<TcpStream>;
    type Future = TlsConnecting;

    fn handshake(&self, stream: TcpStream, peer: Peer) -> TlsConnecting {
        let name = match self.name_for(&peer) {
            Ok(name) => name,
            Err(error) => return TlsConnecting(Inner::Invalid(Some(error))),
        };
        // HEv3: an attempt shaped by an HTTPS record offers the ALPN protocols both sides share.
        let alpn = alpn_for(&peer, self.connector.config());
        let list = peer.https().and_then(|via| via.ech());
        if let (Some(ech), Some(list)) = (&self.ech, list) {
            match ech.config(list, alpn) {
                Ok(config) => {
                    let connect = TlsConnector::from(config).connect(name.clone(), stream);
                    let retry = Retry {
                        tls: self.clone(),
                        peer,
                        name,
                    };
                    return TlsConnecting(Inner::Ech(connect, Some(Box::new(retry))));
                }
                Err(error) => tracing::debug!(
                    remote = %peer.remote(),
                    %error,
                    "the HTTPS record's ECH configs cannot be used; connecting without ECH"
                ),
            }
        }
        TlsConnecting(Inner::Connecting(self.plain(alpn).connect(name, stream)))
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

    fn https_ech(&self) -> bool {
        self.ech.is_some()
    }
}

/// What the ECH retry rule needs, kept while an ECH handshake is in flight.
struct Retry {
    tls: TlsHandshake,
    peer: Peer,
    name: ServerName<'static>,
}

/// A server's authenticated rejection of ECH, and what it offered for the retry.
#[derive(Debug, PartialEq, Eq)]
enum Rejection {
    /// Its `retry_configs`, as an `ECHConfigList`.
    RetryConfigs(Vec<u8>),
    /// No `retry_configs`: ECH is off there, and the retry goes without it.
    NoRetryConfigs,
}

/// The rejection `error` is, if it is one (rustls reports one only after the server proved it
/// is the config's public name).
fn rejection(error: &io::Error) -> Option<Rejection> {
    let error = error
        .get_ref()?
        .downcast_ref::<tokio_rustls::rustls::Error>()?;
    match error {
        tokio_rustls::rustls::Error::PeerIncompatible(
            PeerIncompatible::ServerRejectedEncryptedClientHello(configs),
        ) => Some(match configs.as_ref().filter(|c| !c.is_empty()) {
            Some(configs) => {
                // rustls hands the configs out parsed, and takes them back only as an
                // ECHConfigList; its own codec writes one.
                use tokio_rustls::rustls::internal::msgs::codec::Codec;
                Rejection::RetryConfigs(configs.get_encoding())
            }
            None => Rejection::NoRetryConfigs,
        }),
        _ => None,
    }
}

impl Retry {
    /// The handshake on a new connection to the same address after a rejection: with the
    /// server's configs if it gave usable ones, else without ECH.
    fn start(
        self,
        rejection: Rejection,
    ) -> Pin<Box<dyn Future<Output = io::Result<TlsStream<TcpStream>>> + Send + Sync>> {
        let alpn = alpn_for(&self.peer, self.tls.connector.config()).to_vec();
        let retry_configs = match rejection {
            Rejection::RetryConfigs(list) => Some(list),
            Rejection::NoRetryConfigs => None,
        };
        let with_configs = retry_configs.and_then(|list| {
            let ech = self.tls.ech.as_ref()?;
            match ech.config(&list, &alpn) {
                Ok(config) => Some(config),
                Err(error) => {
                    tracing::debug!(%error, "the server's ECH retry configs cannot be used");
                    None
                }
            }
        });
        let remote = self.peer.remote();
        let reconnect = self.peer.reconnect();
        Box::pin(async move {
            let stream = reconnect.await.map_err(|error| {
                RetryFailed::wrap(
                    format!("ECH rejected; the new connection to {remote} for the retry failed"),
                    error,
                )
            })?;
            match with_configs {
                Some(config) => {
                    tracing::debug!(%remote, "ECH rejected; retrying with the server's retry configs");
                    TlsConnector::from(config)
                        .connect(self.name, stream)
                        .await
                        .map_err(|error| {
                            RetryFailed::wrap(
                                "ECH rejected, and the retry with the server's retry configs failed"
                                    .to_owned(),
                                error,
                            )
                        })
                }
                None => {
                    tracing::debug!(%remote, "ECH rejected without usable retry configs; retrying without ECH");
                    self.tls
                        .plain(&alpn)
                        .connect(self.name, stream)
                        .await
                        .map_err(|error| {
                            RetryFailed::wrap(
                                "ECH rejected, and the retry without ECH failed".to_owned(),
                                error,
                            )
                        })
                }
            }
        })
    }
}

/// An ECH retry that failed: what was being done, with the retry's own error (the rustls
/// error, say) as its source.
#[derive(Debug)]
struct RetryFailed {
    what: String,
    error: io::Error,
}

impl RetryFailed {
    fn wrap(what: String, error: io::Error) -> io::Error {
        io::Error::new(error.kind(), RetryFailed { what, error })
    }
}

impl std::fmt::Display for RetryFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.error)
    }
}

impl std::error::Error for RetryFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

// The handshake future stays `Send` and `Sync`, as tokio-rustls's own is, with ECH's retry in it.
const _: fn() = || {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<TlsConnecting>();
};

/// One TLS handshake in flight (the future of [`TlsHandshake`]).
#[must_use = "futures do nothing unless polled"]
pub struct TlsConnecting(Inner);

// The race boxes the whole handshake future once; boxing the big variant too would allocate twice.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Connecting(Connect<TcpStream>),
    /// A handshake with ECH, and what a retry needs (taken when it starts).
    Ech(Connect<TcpStream>, Option<Box<Retry>>),
    /// The one retry after ECH was rejected.
    Retrying(Pin<Box<dyn Future<Output = io::Result<TlsStream<TcpStream>>> + Send + Sync>>),
    /// A server name that could not be used, answered on the first poll.
    Invalid(Option<io::Error>),
}

impl std::fmt::Debug for TlsConnecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnecting")
    }
}

impl Future for TlsConnecting {
    type Output = io::Result<TlsStream<TcpStream>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().0;
        loop {
            match inner {
                Inner::Connecting(connect) => return Pin::new(connect).poll(cx),
                Inner::Ech(connect, retry) => {
                    let error = match std::task::ready!(Pin::new(connect).poll(cx)) {
                        Ok(stream) => return Poll::Ready(Ok(stream)),
                        Err(error) => error,
                    };
                    let (Some(rejection), Some(retry)) = (rejection(&error), retry.take()) else {
                        return Poll::Ready(Err(error));
                    };
                    *inner = Inner::Retrying(retry.start(rejection));
                }
                Inner::Retrying(retrying) => return retrying.as_mut().poll(cx),
                Inner::Invalid(error) => {
                    return Poll::Ready(Err(error
                        .take()
                        .unwrap_or_else(|| io::Error::other("polled again"))))
                }
            }
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    //! The ECH retry with the server's retry configs. No TLS server at hand sends them (rustls
    //! has no server-side ECH), so this drives the retry directly: the rejection is read back
    //! into a config list, and the retry's new connection carries ECH under it.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rustls::crypto::aws_lc_rs::hpke::{
        ALL_SUPPORTED_SUITES, DH_KEM_X25519_HKDF_SHA256_AES_128,
    };
    use rustls::internal::msgs::codec::{Codec, Reader};
    use rustls::internal::msgs::handshake::EchConfigPayload;
    use tokio::io::AsyncReadExt;

    /// An `ECHConfigList` with one config for `public_name` under a fresh X25519 key.
    fn config_list(config_id: u8, public_name: &str) -> Vec<u8> {
        let (public, _) = DH_KEM_X25519_HKDF_SHA256_AES_128
            .generate_key_pair()
            .unwrap();
        let key = public.0.len() as u16;
        let mut contents = vec![config_id, 0x00, 0x20];
        contents.extend_from_slice(&key.to_be_bytes());
        contents.extend_from_slice(&public.0);
        contents.extend_from_slice(&[0, 4, 0, 1, 0, 1, 0]);
        contents.push(public_name.len() as u8);
        contents.extend_from_slice(public_name.as_bytes());
        contents.extend_from_slice(&[0, 0]);
        let mut config = vec![0xfe, 0x0d];
        config.extend_from_slice(&(contents.len() as u16).to_be_bytes());
        config.extend_from_slice(&contents);
        let mut list = (config.len() as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&config);
        list
    }

    /// A handshake with ECH on aws-lc-rs (trusting nothing); `made` counts the configurations
    /// it builds.
    fn ech_handshake(made: Arc<std::sync::atomic::AtomicUsize>) -> TlsHandshake {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = Arc::new(tokio_rustls::rustls::RootCertStore::empty());
        let plain = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        TlsHandshake::new(Arc::new(plain)).ech(ALL_SUPPORTED_SUITES, move |mode| {
            made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(ClientConfig::builder_with_provider(provider.clone())
                .with_ech(mode)?
                .with_root_certificates(roots.clone())
                .with_no_client_auth())
        })
    }

    fn rejected(configs: Option<Vec<EchConfigPayload>>) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            tokio_rustls::rustls::Error::PeerIncompatible(
                PeerIncompatible::ServerRejectedEncryptedClientHello(configs),
            ),
        )
    }

    #[test]
    fn a_rejection_gives_back_its_retry_configs_as_a_list() {
        let list = config_list(9, "retry.test");
        let parsed = Vec::<EchConfigPayload>::read(&mut Reader::init(&list)).unwrap();
        assert_eq!(
            rejection(&rejected(Some(parsed))),
            Some(Rejection::RetryConfigs(list))
        );
        assert_eq!(rejection(&rejected(None)), Some(Rejection::NoRetryConfigs));
        assert_eq!(
            rejection(&rejected(Some(Vec::new()))),
            Some(Rejection::NoRetryConfigs)
        );
        let other = io::Error::new(
            io::ErrorKind::InvalidData,
            tokio_rustls::rustls::Error::DecryptError,
        );
        assert_eq!(rejection(&other), None);
        assert_eq!(rejection(&io::Error::other("not TLS")), None);
    }

    /// One configuration is made per ECH config list and kept; each attempt's ALPN (its
    /// record's) is set on a copy, so two records sharing a list but not their ALPN get each
    /// their own.
    #[test]
    fn ech_configurations_are_made_once_per_list_and_take_each_attempts_alpn() {
        let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tls = ech_handshake(made.clone());
        let ech = tls.ech.as_ref().unwrap();
        let list = config_list(1, "public.test");
        let h2 = ech.config(&list, &[b"h2".to_vec()]).unwrap();
        let h1 = ech.config(&list, &[b"http/1.1".to_vec()]).unwrap();
        assert_eq!(h2.alpn_protocols, [b"h2".to_vec()]);
        assert_eq!(h1.alpn_protocols, [b"http/1.1".to_vec()]);
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Another list makes another; a list no suite can use is an error, not a panic.
        ech.config(&config_list(2, "other.test"), &[]).unwrap();
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(ech.config(&[0, 1, 2], &[]).is_err());
    }

    #[tokio::test]
    async fn the_retry_reconnects_once_with_the_servers_configs() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = ech_handshake(Arc::default());
        let peer = Peer {
            host: Some(Arc::from("secret.test")),
            local: None,
            remote: listener.local_addr().unwrap(),
            https: None,
            redial: Some(crate::handshake::Redial {
                dial: crate::dial::TcpDial {
                    options: Arc::default(),
                },
                local: Arc::default(),
            }),
        };
        let retry = Retry {
            tls,
            peer,
            name: ServerName::try_from("secret.test").unwrap(),
        };
        let retrying =
            tokio::spawn(retry.start(Rejection::RetryConfigs(config_list(9, "retry.test"))));
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut hello = vec![0; 16 * 1024];
        let n = stream.read(&mut hello).await.unwrap();
        let hello = &hello[..n];
        let has = |needle: &[u8]| hello.windows(needle.len()).any(|w| w == needle);
        assert!(
            has(b"retry.test"),
            "the retry configs' public name is outside"
        );
        assert!(!has(b"secret.test"), "the real name is not");
        assert!(has(&[0xfe, 0x0d]), "an ECH extension");
        drop(stream);
        let error = retrying.await.unwrap().unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("ECH rejected, and the retry with the server's retry configs failed"),
            "{error}"
        );
    }
}
