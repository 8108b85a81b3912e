//! Connect a Tokio [`TcpStream`](tokio::net::TcpStream) to the first reachable of a list of
//! endpoints, as fast as the network allows.
//!
//! Give it host names and IP addresses with ports. It resolves every name (IPv6 and IPv4 at
//! once), orders every address, and races staggered attempts (Happy Eyeballs, RFC 8305) under
//! one deadline: the first attempt starts at once, each next one after the attempt delay or as
//! soon as an attempt fails, and the first to connect wins. Every losing socket is closed the
//! moment one wins, and the [`Report`] tells what happened to every attempt.
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
//! println!("{} won: {}", connection.peer_addr(), connection.report());
//! # drop(stream);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod config;
mod connector;
mod dial;
mod error;
mod filter;
mod history;
mod local;
mod plan;
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

#[doc(hidden)]
#[path = "bench_support.rs"]
pub mod __bench;

pub use config::{Builder, ConfigError};
pub use connector::{connect, Connecting, Connection, Connector};
pub use error::{ConnectError, ErrorKind};
pub use filter::{AddressFilter, Denied, InvalidPrefix, IpPrefix};
pub use race::{Planned, PlannedAttempt};
pub use rank::{InvalidPolicy, Policy, PolicyTable};
pub use report::{Attempt, Outcome, Report, ResolveFailure, SkipReason, Skipped, Timeline};
#[cfg(feature = "reqwest")]
pub use reqwest_bridge::ReqwestResolver;
pub use resolve::{Family, Resolve, Resolving, SystemResolver};
#[cfg(feature = "hyper")]
pub use service::{ConnectInfo, HttpStream, UriConnecting, UriConnector};
pub use target::{Host, IntoTarget, IntoTargets, InvalidTarget, Target};
