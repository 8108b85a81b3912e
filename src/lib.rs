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
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // One line, for code that just wants a stream:
//! let stream = connect_by_list::connect(["db1.example:5432", "db2.example:5432"]).await?;
//!
//! // Configured, with the story of the race:
//! use std::time::Duration;
//! let connector = connect_by_list::Connector::builder()
//!     .attempt_delay(Duration::from_millis(250))
//!     .timeout(Duration::from_secs(5))
//!     .build()?;
//! let connection = connector.connect(["db1.example:5432", "[2001:db8::7]:5432"]).await?;
//! println!("{} from {}", connection.peer_addr(), connection.local_addr()?);
//! print!("{}", connection.report().timeline());
//! # drop(stream);
//! # Ok(())
//! # }
//! ```
//!
//! # The path of one connect
//!
//! 1. **Targets** ([`IntoTargets`]): `SocketAddr`s, `"host:port"`, `"[v6]:port"`, `(host, port)`,
//!    or lists of them. Bad input fails with [`ErrorKind::InvalidTarget`] before anything is
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
//! # With hyper and reqwest
//!
//! With the `hyper` feature, a [`Connector`] is a `tower_service::Service<http::Uri>`, the
//! connector that hyper-util's legacy client and TLS wrappers such as hyper-rustls take; each
//! response carries a `ConnectInfo` (local and remote address, and the race's report) in its
//! extensions. See `ConnectInfo` and `examples/hyper_client.rs`.
//!
//! reqwest cannot hand its TCP connect to another library. With the `reqwest` feature,
//! `ReqwestResolver` plugs into `ClientBuilder::dns_resolver` and gives reqwest the connector's
//! resolution, filter and order; reqwest still connects by itself (two attempts at most, no
//! global deadline, no report). See `ReqwestResolver` and `examples/reqwest.rs`.
//!
//! # Features
//!
//! - `hyper`: `Service<Uri>` for hyper-util's client.
//! - `reqwest`: the `reqwest::dns::Resolve` bridge.
//! - `hickory`: `HickoryResolver`, a cancellable, non-blocking [`Resolve`] on hickory-resolver.
//!
//! # Platforms
//!
//! Portable where Tokio and socket2 are. [`Builder::interface`] (`SO_BINDTODEVICE`),
//! [`Builder::mark`] (`SO_MARK`) and [`Builder::tcp_user_timeout`] are Linux and Android only
//! and refused by [`Builder::build`] elsewhere; [`Builder::fast_icmp_errors`]
//! (`IPV6_RECVERR`) acts on Linux only. Time comes from `tokio::time`, so tests can pause it.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

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
mod race;
mod rank;
mod report;
#[cfg(feature = "reqwest")]
#[path = "reqwest.rs"]
mod reqwest_bridge;
mod resolve;
#[cfg(feature = "hyper")]
mod service;
mod target;
#[cfg(feature = "rustls")]
mod tls;

#[doc(hidden)]
#[path = "bench_support.rs"]
pub mod __bench;

pub use builder::Builder;
pub use config::ConfigError;
pub use connector::{connect, Connecting, Connection, Connector};
pub use error::{ConnectError, ErrorKind};
pub use filter::{AddressFilter, Denied, InvalidPrefix, IpPrefix};
pub use handshake::{Handshake, Peer};
#[cfg(feature = "hickory")]
pub use hickory::HickoryResolver;
#[cfg(all(feature = "hyper", feature = "rustls"))]
pub use https::{HttpsConnecting, HttpsConnector, MaybeTls};
pub use nat64::{Nat64, Nat64Prefix, Synthesized};
pub use race::{Planned, PlannedAttempt};
pub use rank::{InvalidPolicy, Policy, PolicyTable};
pub use report::{
    Attempt, Outcome, Report, ResolveFailure, SkipReason, Skipped, Timeline, Unanswered,
};
#[cfg(feature = "reqwest")]
pub use reqwest_bridge::ReqwestResolver;
pub use resolve::{Family, IpFamily, Resolve, Resolving, SystemResolver};
#[cfg(feature = "hyper")]
pub use service::{ConnectInfo, HttpStream, UriConnecting, UriConnector};
pub use target::{Host, IntoTarget, IntoTargets, InvalidTarget, Target};
#[cfg(feature = "rustls")]
pub use tls::{TlsConnecting, TlsHandshake};
#[cfg(feature = "rustls")]
pub use tokio_rustls::rustls;
