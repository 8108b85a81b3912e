//! Connect a Tokio [`TcpStream`](tokio::net::TcpStream) to the first reachable of a list of
//! endpoints, as fast as the network allows, and find out exactly what happened.
//!
//! Give it host names and IP addresses with ports. Like Windows' `WSAConnectByList` it considers
//! every destination address and every local source address and tries the pairs with the best
//! chance first; unlike it, it races staggered attempts (Happy Eyeballs, RFC 8305) under one
//! deadline that interrupts connects in flight, closes every losing socket the moment one wins,
//! and reports every attempt.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // One line, for code that just wants a stream:
//!     let stream = connect_by_list::connect(["example.com:80", "example.net:80"]).await?;
//!     println!("connected to {}", stream.peer_addr()?);
//!
//!     // Configured, with the story of the race:
//!     let connector = connect_by_list::Connector::builder()
//!         .attempt_delay(Duration::from_millis(250))
//!         .timeout(Duration::from_secs(5))
//!         .build()?;
//!     let connection = connector.connect(["example.com:80", "example.net:80"]).await?;
//!     println!("{} from {}", connection.peer_addr(), connection.local_addr()?);
//!     print!("{}", connection.report().timeline());
//!     Ok(())
//! }
//! ```
//!
//! # Targets, and why their order is not priority
//!
//! Targets ([`IntoTargets`]) are `SocketAddr`s, `"host:port"`, `"[v6]:port"`, `(host, port)`,
//! [`Target`]s, or any array, `Vec`, slice or iterator of them: `connect(hosts.iter())` over a
//! `Vec<String>` needs no `collect()`.
//!
//! The list is a set of ways to reach one service, not a ranking: every address of every
//! target is ranked together by RFC 6724 (and the last race's winner goes first), so the
//! first-listed target is not necessarily tried first. [`Builder::sort_addresses`]`(false)`
//! keeps the caller's order (families still interleave). [`Connector::plan`] shows the order
//! without connecting; here RFC 6724 puts `[::1]` before `127.0.0.1` (no packet is sent):
//!
//! ```
//! use connect_by_list::Connector;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let targets = ["127.0.0.1:8080", "[::1]:8080"];
//! let remotes = |plan: connect_by_list::Planned| {
//!     plan.attempts().iter().map(|attempt| attempt.remote().to_string()).collect::<Vec<_>>()
//! };
//!
//! let ranked = Connector::new().plan(targets).await?;
//! assert_eq!(remotes(ranked), ["[::1]:8080", "127.0.0.1:8080"]);
//!
//! let as_given = Connector::builder().sort_addresses(false).build()?;
//! assert_eq!(remotes(as_given.plan(targets).await?), ["127.0.0.1:8080", "[::1]:8080"]);
//! # Ok(())
//! # }
//! ```
//!
//! # The path of one connect
//!
//! 1. **Targets** ([`IntoTargets`]): `SocketAddr`s, `"host:port"`, `"[v6]:port"`, `(host, port)`,
//!    or lists or iterators of them. Bad input fails with [`ConnectErrorKind::InvalidTarget`] before anything is
//!    resolved or opened, naming the bad part.
//! 2. **Resolution** ([`Resolve`], default [`SystemResolver`]): each name's IPv6 and IPv4
//!    addresses are asked for at once. The race starts as soon as an IPv6 address is known, or
//!    after the resolution delay (50 ms) once only IPv4 is (RFC 8305 §3); later answers join the
//!    addresses not yet tried. A name that does not resolve is reported and the others go on.
//! 3. **Filter** ([`AddressFilter`]): every address, IP literals included, is checked after
//!    resolution, so DNS rebinding and literal tricks (`[::ffff:127.0.0.1]`) cannot pass;
//!    [`AddressFilter::deny_non_public`] is a ready SSRF policy.
//! 4. **Pairs**: with [`Builder::local_addrs`] or [`Builder::local_addrs_from_interfaces`],
//!    every destination is paired with every local address that can reach it, best first by
//!    RFC 6724 §5; otherwise the kernel picks the source.
//! 5. **Ranking** ([`PolicyTable`]): RFC 6724 §6 destination ordering over all targets
//!    together, with the source address the kernel would use for each, looked up when there is
//!    more than one address to order (a loopback destination's source is the loopback; no
//!    lookup). Longest-prefix matching applies only between IPv6 addresses, so IPv4 round-robin
//!    survives. Then the last race's winner first (history, RFC 8305 §5); then families
//!    interleaved (RFC 8305 §4). [`Connector::plan`] shows the result without connecting.
//! 6. **Race**: attempt 1 at once; each next one when the attempt delay (250 ms) has passed since
//!    the last start, or at once when an attempt fails; earlier attempts keep running. The first
//!    to connect wins; the others are closed, also one that connects in the same instant. The
//!    deadline ([`Builder::timeout`]) covers everything from resolution on.
//! 7. **Result**: a [`Connection`] (stream, both addresses, [`Report`]; a local address the
//!    kernel chose is read from the socket when first asked for) or a [`ConnectError`]
//!    (kind, one-line summary of every attempt, the report, and each attempt's own
//!    [`io::Error`](std::io::Error)); it converts into `io::Error` with a fitting kind.
//!
//! # Errors
//!
//! A [`ConnectError`] has a kind ([`ConnectErrorKind`]: `InvalidTarget`, `NoAddresses`, `Denied` by
//! the [`AddressFilter`], `AllFailed`, `TimedOut`), a one-line `Display` that names every
//! attempt, and the [`Report`] with each attempt's own error. It is `Clone`, and converts into
//! an [`io::Error`](std::io::Error) of a fitting kind (`ConnectionRefused`, `TimedOut`, …), so
//! `?` works in functions that return `io::Result`. `ConnectErrorKind` is this crate's own kind, not
//! `std::io::ErrorKind`.
//!
//! # With hyper
//!
//! With the `hyper` feature, a [`Connector`] is a `tower_service::Service<http::Uri>`, the
//! connector that hyper-util's legacy client and TLS wrappers such as hyper-rustls take. Each
//! response carries a `ConnectInfo` (local and remote address, and the race's report) in its
//! extensions; the guide, HTTPS included, is on `ConnectInfo`, and which URIs are taken is on
//! `UriConnector`. See also `examples/hyper_client.rs`. Under hyper-util's proxy connectors
//! (`Tunnel`, `SocksV5`) it races the proxy's addresses; `LocalDns` resolves the target through
//! it for SOCKS (`examples/proxy.rs`).
//!
//! ```no_run
//! # #[cfg(feature = "hyper")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use connect_by_list::{ConnectInfo, Connector};
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use std::time::Duration;
//!
//! let connector = Connector::builder().timeout(Duration::from_secs(5)).build()?;
//! let client: Client<Connector, Empty<Bytes>> =
//!     Client::builder(TokioExecutor::new()).build(connector);
//! let response = client.get("http://example.com/".parse()?).await?;
//! if let Some(info) = response.extensions().get::<ConnectInfo>() {
//!     print!("{} via {}\n{}", response.status(), info.remote_addr(), info.report().timeline());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`Builder::timeout`] is the connect's own deadline: resolution and the race (with a
//! handshake raced in it, as `HttpsConnector`'s TLS), not a TLS handshake done by a wrapper such
//! as hyper-rustls, nor the request. For a deadline on a whole request, put tower's
//! `Timeout` around the client. Its future is `!Unpin`; `map_future(Box::pin)` makes it
//! `Unpin` where that is needed (polling by `&mut`, as `select!` does):
//!
//! ```no_run
//! # #[cfg(feature = "hyper")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use connect_by_list::Connector;
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use std::time::Duration;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! let connector = Connector::builder().timeout(Duration::from_secs(3)).build()?;
//! let client: Client<Connector, Empty<Bytes>> =
//!     Client::builder(TokioExecutor::new()).build(connector);
//! let client = ServiceBuilder::new()
//!     .map_future(Box::pin)
//!     .timeout(Duration::from_secs(10)) // the whole request, connect included
//!     .service(client);
//! let request = http::Request::get("http://example.com/").body(Empty::<Bytes>::new())?;
//! let response = client.oneshot(request).await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```
//!
//! # With reqwest
//!
//! reqwest cannot hand its TCP connect to another library. With the `reqwest` feature
//! (reqwest 0.13) or `reqwest012` (reqwest 0.12), `ReqwestResolver` plugs into
//! `ClientBuilder::dns_resolver` and gives reqwest the connector's resolution, filter and
//! order; reqwest still connects by itself (two attempts at most, no global deadline, no
//! report). The guide and its limits are on `ReqwestResolver`; see also `examples/reqwest.rs`.
//! For SSRF defence, `AddressFilter::check_url` and `AddressFilter::redirect_policy` cover what
//! reqwest never asks a resolver about (IP-literal URLs, redirects to them).
//!
//! # Logging
//!
//! Through [`tracing`](https://docs.rs/tracing): each connect is a DEBUG span `connect` with an
//! `id` and its `targets` (the first four, then how many more), and ends with one DEBUG event,
//! `connected` (`winner`, `elapsed`, `attempts`) or `connect failed` (`kind`, `elapsed`,
//! `attempts`, `error`). As with hyper-util and reqwest, nothing is logged at INFO per connect.
//!
//! # Features
//!
//! | feature | gives | for |
//! |---|---|---|
//! | `hyper` | `Service<http::Uri>` for hyper-util's legacy client, `ConnectInfo` | hyper 1, hyper-util 0.1 (0.1.10 or later) |
//! | `reqwest` | `ReqwestResolver` | reqwest 0.13 |
//! | `reqwest012` | `ReqwestResolver` | reqwest 0.12 |
//! | `hickory` | `HickoryResolver`, a cancellable, non-blocking [`Resolve`] | hickory-resolver 0.25 |
//! | `rustls` | `Connector::connect_tls` and `TlsHandshake` (TLS raced with the connect); with `hyper`, `HttpsConnector` | tokio-rustls 0.26 (rustls 0.23) |
//!
//! # Platforms
//!
//! Portable where Tokio and socket2 are; CI type-checks Windows, macOS and FreeBSD and builds
//! on the MSRV (Rust 1.85). [`Builder::interface`] uses `SO_BINDTODEVICE` on Linux and Android
//! and `IP_BOUND_IF`/`IPV6_BOUND_IF` on macOS, iOS, illumos and Solaris; [`Builder::mark`]
//! (`SO_MARK`), [`Builder::tcp_user_timeout`] and [`Builder::mptcp`] are Linux (and Android,
//! but for `mptcp`) only; [`Builder::reuse_address`] and [`Builder::traffic_class`] are refused
//! on Windows. What a platform cannot honour, [`Builder::build`] refuses by name. A listed local
//! address is bound with `IP_BIND_ADDRESS_NO_PORT` on Linux. [`Builder::fast_icmp_errors`] sets
//! `IPV6_RECVERR` on Linux and `TCP_FAIL_CONNECT_ON_ICMP_ERROR` on Windows (and turns SYN
//! retries to loopback off there). Time comes from `tokio::time`, so tests can pause it.
#![cfg_attr(docsrs, feature(doc_cfg))]

// The README's Rust examples compile as doctests (they use every feature).
#[cfg(all(doctest, feature = "hyper", feature = "reqwest"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod builder;
mod config;
mod connector;
mod dial;
mod error;
mod filter;
mod handshake;
#[cfg(feature = "hickory")]
mod hickory;
mod history;
#[cfg(all(feature = "hyper", feature = "rustls"))]
mod https;
mod local;
mod lookups;
mod nat64;
mod plan;
mod prefix;
#[cfg(feature = "hyper")]
mod proxy;
mod race;
mod rank;
mod report;
#[cfg(any(feature = "reqwest", feature = "reqwest012"))]
#[path = "reqwest.rs"]
mod reqwest_bridge;
mod resolve;
#[cfg(feature = "hyper")]
mod service;
mod svcb;
mod sys;
mod target;
#[cfg(feature = "rustls")]
mod tls;

#[doc(hidden)]
#[path = "bench_support.rs"]
pub mod __bench;

pub use builder::Builder;
pub use config::ConfigError;
pub use connector::{connect, Connecting, Connection, Connector};
pub use error::{ConnectError, ConnectErrorKind};
pub use filter::{AddressFilter, Denied, InvalidPrefix, IpPrefix};
pub use handshake::{Handshake, Peer};
#[cfg(feature = "hickory")]
pub use hickory::HickoryResolver;
#[cfg(all(feature = "hyper", feature = "rustls"))]
pub use https::{HttpsConnecting, HttpsConnector, MaybeTls};
pub use nat64::{Nat64, Nat64Prefix, Synthesized};
#[cfg(feature = "hyper")]
pub use proxy::{BoxError, LocalDns, LocalDnsConnecting};
pub use race::{Planned, PlannedAttempt};
pub use rank::{InvalidPolicy, Policy, PolicyTable};
pub use report::{
    Attempt, Outcome, Report, ResolveFailure, SkipReason, Skipped, Timeline, Unanswered,
};
#[cfg(any(feature = "reqwest", feature = "reqwest012"))]
pub use reqwest_bridge::ReqwestResolver;
pub use resolve::{Family, IpFamily, Resolve, Resolving, ResolvingHttps, SystemResolver};
#[cfg(feature = "hyper")]
pub use service::{ConnectInfo, HttpStream, UriConnecting, UriConnector};
/// The socket type [`Builder::on_socket`] hands to its function, re-exported so that the
/// versions match.
pub use socket2;
pub use svcb::{HttpsRecord, HttpsVia, MalformedRecord, SkippedRecord};
pub use target::{Host, IntoTarget, IntoTargets, InvalidTarget, Target};
#[cfg(feature = "rustls")]
pub use tls::{TlsConnecting, TlsHandshake};
#[cfg(feature = "rustls")]
pub use tokio_rustls::rustls;
