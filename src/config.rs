//! Every setting, its default and its bounds, validated once when the connector is built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use std::net::{IpAddr, SocketAddr};

use crate::connector::Connector;
use crate::filter::AddressFilter;
use crate::local::{self, LocalAddrs, RouteProbe};
use crate::plan::Ranking;
use crate::rank::PolicyTable;
use crate::resolve::{Resolve, SystemResolver};

/// RFC 8305 §5: the connection attempt delay MUST NOT be less than 10 ms.
pub(crate) const MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(10);
/// Longer waits than this are almost surely a unit mistake, and keep deadline sums far from
/// overflowing `Instant`.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Linux's limit on an interface name, without the NUL (`IFNAMSIZ - 1`).
const MAX_INTERFACE_NAME: usize = 15;

/// The resolved settings a [`Connector`] shares between its clones.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) attempt_delay: Duration,
    pub(crate) resolution_delay: Duration,
    pub(crate) first_family_count: usize,
    pub(crate) timeout: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) max_attempts: usize,
    pub(crate) max_addresses_per_name: usize,
    pub(crate) resolver: Arc<dyn Resolve>,
    pub(crate) ranking: Ranking,
    pub(crate) filter: AddressFilter,
    pub(crate) local_addrs: LocalAddrs,
    pub(crate) route_probe: RouteProbe,
    pub(crate) history_capacity: usize,
    pub(crate) history_ttl: Duration,
    pub(crate) socket: SocketOptions,
}

/// Options applied to every attempt's socket before it connects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SocketOptions {
    pub(crate) nodelay: bool,
    pub(crate) keepalive_time: Option<Duration>,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_retries: Option<u32>,
    pub(crate) send_buffer_size: Option<usize>,
    pub(crate) recv_buffer_size: Option<usize>,
    pub(crate) interface: Option<String>,
    pub(crate) mark: Option<u32>,
    pub(crate) tcp_user_timeout: Option<Duration>,
    pub(crate) fast_icmp_errors: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            attempt_delay: Duration::from_millis(250),
            resolution_delay: Duration::from_millis(50),
            first_family_count: 1,
            timeout: None,
            attempt_timeout: None,
            max_attempts: 100,
            max_addresses_per_name: 32,
            resolver: Arc::new(SystemResolver),
            ranking: Ranking::Rfc6724(PolicyTable::shared_default()),
            filter: AddressFilter::allow_all(),
            local_addrs: LocalAddrs::Kernel,
            route_probe: local::probe_route,
            history_capacity: 256,
            history_ttl: Duration::from_secs(600),
            socket: SocketOptions {
                nodelay: true,
                fast_icmp_errors: true,
                ..SocketOptions::default()
            },
        }
    }
}

/// Builds a [`Connector`]. Made by [`Connector::builder`]; every setting has a default, and
/// [`Builder::build`] refuses values outside their bounds with a [`ConfigError`] that names them.
///
/// ```
/// use connect_by_list::Connector;
/// use std::time::Duration;
///
/// let connector = Connector::builder()
///     .attempt_delay(Duration::from_millis(150))
///     .timeout(Duration::from_secs(5))
///     .build()?;
///
/// let error = Connector::builder().attempt_delay(Duration::from_millis(1)).build().unwrap_err();
/// assert_eq!(error.setting(), "attempt_delay");
/// # Ok::<(), connect_by_list::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a Builder does nothing until build() is called"]
pub struct Builder {
    config: Config,
}

impl Builder {
    /// How long to wait after starting an attempt before starting the next one while it is still
    /// in flight (RFC 8305 §5, "Connection Attempt Delay"). A failed attempt starts the next one
    /// at once. Must be at least 10 ms, as RFC 8305 requires, and at most an hour.
    ///
    /// Default is 250 ms.
    pub fn attempt_delay(mut self, delay: Duration) -> Builder {
        self.config.attempt_delay = delay;
        self
    }

    /// How long to wait for a name's IPv6 (AAAA) answer once its IPv4 (A) answer is in, before
    /// starting with IPv4 (RFC 8305 §3, "Resolution Delay"). At most an hour.
    ///
    /// Default is 50 ms.
    pub fn resolution_delay(mut self, delay: Duration) -> Builder {
        self.config.resolution_delay = delay;
        self
    }

    /// How many addresses of the preferred family to try before the first of the other family
    /// (RFC 8305 §4, "First Address Family Count"). At least 1.
    ///
    /// Default is 1.
    pub fn first_family_count(mut self, count: usize) -> Builder {
        self.config.first_family_count = count;
        self
    }

    /// One deadline for the whole connect, resolution included. When it passes, every attempt in
    /// flight is abandoned at once and the connect fails with
    /// [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut). Must be more than zero.
    ///
    /// Default is no deadline: attempts end when the kernel gives up (about two minutes for a
    /// silent host on Linux). Most callers want one.
    pub fn timeout(mut self, timeout: Duration) -> Builder {
        self.config.timeout = Some(timeout);
        self
    }

    /// A limit for each attempt on its own; an attempt that reaches it ends as
    /// [`Outcome::TimedOut`](crate::Outcome::TimedOut) and the next one starts. Must be more than
    /// zero.
    ///
    /// Default is none: an attempt runs until it connects, fails, loses, or the deadline passes.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Builder {
        self.config.attempt_timeout = Some(timeout);
        self
    }

    /// The most attempts one connect makes; further addresses are counted in
    /// [`Report::not_tried`](crate::Report::not_tried). At least 1.
    ///
    /// Default is 100.
    pub fn max_attempts(mut self, max: usize) -> Builder {
        self.config.max_attempts = max;
        self
    }

    /// The most addresses taken from one name's answer, per family; a huge DNS answer cannot make
    /// a connect run for ever. At least 1.
    ///
    /// Default is 32.
    pub fn max_addresses_per_name(mut self, max: usize) -> Builder {
        self.config.max_addresses_per_name = max;
        self
    }

    /// The resolver for host names.
    ///
    /// Default is [`SystemResolver`] (`getaddrinfo`).
    pub fn resolver(mut self, resolver: impl Resolve) -> Builder {
        self.config.resolver = Arc::new(resolver);
        self
    }

    /// The RFC 6724 policy table that orders destinations (and picks among local addresses):
    /// for example [`PolicyTable::prefer_ipv4`], or the updated table of
    /// [`PolicyTable::rfc6724_update`].
    ///
    /// Default is [`PolicyTable::rfc6724`], the table of RFC 6724 §2.1.
    pub fn policy_table(mut self, table: PolicyTable) -> Builder {
        self.config.ranking = Ranking::Rfc6724(Arc::new(table));
        self
    }

    /// Whether to order addresses by RFC 6724. Off: they are tried in the caller's order
    /// (targets as given, each name's addresses as the resolver gave them); families still
    /// interleave (RFC 8305 §4).
    ///
    /// Default is on.
    pub fn sort_addresses(mut self, sort: bool) -> Builder {
        self.config.ranking = match (sort, &self.config.ranking) {
            (true, Ranking::Rfc6724(table)) => Ranking::Rfc6724(table.clone()),
            (true, Ranking::InputOrder) => Ranking::Rfc6724(PolicyTable::shared_default()),
            (false, _) => Ranking::InputOrder,
        };
        self
    }

    /// Which destination addresses may be connected to, checked after resolution for every
    /// address, IP literals included: see [`AddressFilter::deny_non_public`] against SSRF. A
    /// refused address is listed in [`Report::skipped`](crate::Report::skipped); when every
    /// address is refused the connect fails with [`ErrorKind::Denied`](crate::ErrorKind::Denied)
    /// and nothing is sent.
    ///
    /// Default is [`AddressFilter::allow_all`].
    pub fn address_filter(mut self, filter: AddressFilter) -> Builder {
        self.config.filter = filter;
        self
    }

    /// The local addresses to connect from. Every destination is paired with every listed
    /// address of its family that can reach it (a loopback source only reaches loopback, a
    /// link-local one only its link, and the kernel must have a route from it), best first by
    /// RFC 6724 §5 source selection; the pairs are raced like any other attempts. A listed
    /// address that cannot be bound fails its own attempts, each with its error. An unspecified
    /// address (`0.0.0.0`, `::`) lets the kernel pick the source in that family. A destination
    /// that no listed address can reach is listed in [`Report::skipped`](crate::Report::skipped).
    /// Must not be empty.
    ///
    /// Default is none: the kernel picks one source per destination.
    pub fn local_addrs(mut self, addrs: impl IntoIterator<Item = IpAddr>) -> Builder {
        let mut list: Vec<SocketAddr> = Vec::new();
        for ip in addrs {
            let addr = SocketAddr::new(ip, 0);
            if !list.contains(&addr) {
                list.push(addr);
            }
        }
        self.config.local_addrs = LocalAddrs::List(list.into());
        self
    }

    /// Connects from every address of every interface that is up (read again at each connect),
    /// paired with each destination as [`Builder::local_addrs`] does: for multi-homed hosts where
    /// one path may be broken. Loopback and link-local sources pair only with destinations they
    /// can reach; IPv6 addresses the system marks deprecated or tentative are left out.
    ///
    /// Default is off: the kernel picks one source per destination.
    pub fn local_addrs_from_interfaces(mut self) -> Builder {
        self.config.local_addrs = LocalAddrs::AllInterfaces;
        self
    }

    /// How many target lists the connector remembers the last race of (RFC 8305 §5): the next
    /// connect to the same targets tries the last winner first, still racing the rest, with an
    /// attempt delay of twice its last connect time (clamped to 100 ms and the configured
    /// delay). Shared by the connector's clones; the least recently used entry goes first when
    /// full. 0 turns history off.
    ///
    /// Default is 256.
    pub fn history_capacity(mut self, entries: usize) -> Builder {
        self.config.history_capacity = entries;
        self
    }

    /// How long a remembered winner stays in front, counted from when it first won (not from
    /// its latest win), so that a family that lost once, say IPv6 during an outage, is tried
    /// first again after this long. More than zero.
    ///
    /// Default is 10 minutes.
    pub fn history_ttl(mut self, ttl: Duration) -> Builder {
        self.config.history_ttl = ttl;
        self
    }

    /// Sets `TCP_NODELAY` on the connected socket (Nagle's algorithm off).
    ///
    /// Default is on.
    pub fn nodelay(mut self, nodelay: bool) -> Builder {
        self.config.socket.nodelay = nodelay;
        self
    }

    /// Turns TCP keepalive on, with this idle time before the first probe.
    ///
    /// Default is off.
    pub fn keepalive(mut self, idle: Duration) -> Builder {
        self.config.socket.keepalive_time = Some(idle);
        self
    }

    /// The time between keepalive probes; needs [`Builder::keepalive`].
    ///
    /// Default is the system's (75 s on Linux).
    pub fn keepalive_interval(mut self, interval: Duration) -> Builder {
        self.config.socket.keepalive_interval = Some(interval);
        self
    }

    /// How many unanswered keepalive probes close the connection; needs
    /// [`Builder::keepalive`]. Not on Windows, where the system fixes it.
    ///
    /// Default is the system's (9 on Linux).
    pub fn keepalive_retries(mut self, retries: u32) -> Builder {
        self.config.socket.keepalive_retries = Some(retries);
        self
    }

    /// `SO_SNDBUF`, in bytes. More than zero.
    ///
    /// Default is the system's.
    pub fn send_buffer_size(mut self, bytes: usize) -> Builder {
        self.config.socket.send_buffer_size = Some(bytes);
        self
    }

    /// `SO_RCVBUF`, in bytes. More than zero.
    ///
    /// Default is the system's.
    pub fn recv_buffer_size(mut self, bytes: usize) -> Builder {
        self.config.socket.recv_buffer_size = Some(bytes);
        self
    }

    /// Binds every attempt to this network interface: `SO_BINDTODEVICE` on Linux and Android
    /// (needs `CAP_NET_RAW` on older kernels); `IP_BOUND_IF`/`IPV6_BOUND_IF` on macOS, iOS,
    /// tvOS, watchOS, visionOS, illumos and Solaris, with the name turned into an index at each
    /// attempt (an attempt fails with [`std::io::ErrorKind::NotFound`] if no interface has the
    /// name). Elsewhere (Windows, the BSDs) [`Builder::build`] refuses it. At most 15 bytes.
    ///
    /// Default is none.
    pub fn interface(mut self, name: impl Into<String>) -> Builder {
        self.config.socket.interface = Some(name.into());
        self
    }

    /// Marks every attempt's packets (`SO_MARK`), for policy routing. Linux and Android only:
    /// elsewhere [`Builder::build`] refuses it. Needs `CAP_NET_ADMIN`.
    ///
    /// Default is none.
    pub fn mark(mut self, mark: u32) -> Builder {
        self.config.socket.mark = Some(mark);
        self
    }

    /// `TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged before the connection is
    /// closed. Linux and Android only: elsewhere [`Builder::build`] refuses it. More than zero.
    ///
    /// Default is the system's.
    pub fn tcp_user_timeout(mut self, timeout: Duration) -> Builder {
        self.config.socket.tcp_user_timeout = Some(timeout);
        self
    }

    /// Lets an attempt fail as soon as the network says the address is dead, so that the race
    /// moves on:
    ///
    /// - Linux and Android: `IPV6_RECVERR` while an IPv6 attempt connects, so that an ICMPv6
    ///   "unreachable" answer to its SYN fails the attempt at once instead of after the
    ///   kernel's SYN retransmit (a second or more); it is cleared once connected. IPv4 attempts
    ///   need no option for this on Linux 5.8 and later (the kernel queues the error either
    ///   way), so none is set.
    /// - Windows: `TCP_FAIL_CONNECT_ON_ICMP_ERROR` (Windows 10 2004 and later; without it ICMP
    ///   errors are ignored while connecting), and for loopback destinations no SYN
    ///   retransmissions (`SIO_TCP_INITIAL_RTO`), so that a refused loopback connect fails at
    ///   once instead of after about 2 s of retries, as libuv and curl do. Both best effort.
    /// - Elsewhere it does nothing.
    ///
    /// Default is on.
    pub fn fast_icmp_errors(mut self, on: bool) -> Builder {
        self.config.socket.fast_icmp_errors = on;
        self
    }

    /// Checks every setting and makes the connector.
    pub fn build(self) -> Result<Connector, ConfigError> {
        self.config.validate()?;
        Ok(Connector::from_config(self.config))
    }
}

impl Config {
    fn validate(&self) -> Result<(), ConfigError> {
        let ms = |d: Duration| crate::report::Millis(d).to_string();
        if self.attempt_delay < MIN_ATTEMPT_DELAY {
            return Err(ConfigError::new(
                "attempt_delay",
                format!(
                    "{} is under the 10ms minimum of RFC 8305 §5",
                    ms(self.attempt_delay)
                ),
            ));
        }
        for (setting, value) in [
            ("attempt_delay", self.attempt_delay),
            ("resolution_delay", self.resolution_delay),
        ] {
            if value > MAX_DELAY {
                return Err(ConfigError::new(
                    setting,
                    format!("{value:?} is over the one-hour limit"),
                ));
            }
        }
        let positive = [
            ("timeout", self.timeout),
            ("attempt_timeout", self.attempt_timeout),
            ("keepalive", self.socket.keepalive_time),
            ("keepalive_interval", self.socket.keepalive_interval),
            ("tcp_user_timeout", self.socket.tcp_user_timeout),
            ("history_ttl", Some(self.history_ttl)),
        ];
        for (setting, value) in positive {
            if value == Some(Duration::ZERO) {
                return Err(ConfigError::new(setting, "must be more than zero"));
            }
        }
        for (setting, value) in [
            ("first_family_count", self.first_family_count),
            ("max_attempts", self.max_attempts),
            ("max_addresses_per_name", self.max_addresses_per_name),
        ] {
            if value == 0 {
                return Err(ConfigError::new(setting, "must be at least 1"));
            }
        }
        if matches!(&self.local_addrs, LocalAddrs::List(list) if list.is_empty()) {
            return Err(ConfigError::new(
                "local_addrs",
                "the list is empty (leave it unset to let the kernel choose)",
            ));
        }
        for (setting, value) in [
            ("send_buffer_size", self.socket.send_buffer_size),
            ("recv_buffer_size", self.socket.recv_buffer_size),
        ] {
            if value == Some(0) {
                return Err(ConfigError::new(setting, "must be more than zero"));
            }
        }
        let keepalive_detail =
            self.socket.keepalive_interval.is_some() || self.socket.keepalive_retries.is_some();
        if keepalive_detail && self.socket.keepalive_time.is_none() {
            return Err(ConfigError::new(
                "keepalive_interval",
                "keepalive_interval and keepalive_retries need keepalive(idle) to be set",
            ));
        }
        if let Some(name) = &self.socket.interface {
            if name.is_empty() || name.len() > MAX_INTERFACE_NAME || name.contains('\0') {
                return Err(ConfigError::new(
                    "interface",
                    format!("{name:?} is not an interface name (1 to 15 bytes, no NUL)"),
                ));
            }
        }
        if self.socket.interface.is_some() && !crate::sys::INTERFACE_BINDING {
            return Err(ConfigError::new(
                "interface",
                "has no per-socket equivalent on this system (Linux, Android, macOS, iOS, \
                 illumos and Solaris have one)",
            ));
        }
        let linux_only = [
            ("mark", self.socket.mark.is_some()),
            ("tcp_user_timeout", self.socket.tcp_user_timeout.is_some()),
        ];
        for (setting, set) in linux_only {
            if set && !cfg!(any(target_os = "linux", target_os = "android")) {
                return Err(ConfigError::new(
                    setting,
                    "is only available on Linux and Android",
                ));
            }
        }
        #[cfg(windows)]
        if self.socket.keepalive_retries.is_some() {
            return Err(ConfigError::new(
                "keepalive_retries",
                "is fixed by the system on Windows",
            ));
        }
        Ok(())
    }
}

/// A setting that [`Builder::build`] refused: which one, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    reason: String,
}

impl ConfigError {
    fn new(setting: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            setting,
            reason: reason.into(),
        }
    }

    /// The name of the setting, as its [`Builder`] method is named.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// Why it was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.setting, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for std::io::Error {
    fn from(error: ConfigError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(builder: Builder) -> ConfigError {
        builder.build().expect_err("the builder should refuse this")
    }

    #[test]
    fn defaults_build() {
        assert!(Builder::default().build().is_ok());
    }

    /// `interface` builds where the system can bind a socket to an interface (Linux, Android,
    /// Apple's systems, illumos, Solaris), and is refused by name where it cannot.
    #[test]
    fn interface_is_refused_only_where_no_equivalent_exists() {
        let built = Builder::default().interface("lo").build();
        if cfg!(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "illumos",
            target_os = "solaris",
        )) {
            assert!(built.is_ok(), "{:?}", built.err());
        } else {
            let error = built.expect_err("no interface binding here");
            assert_eq!(error.setting(), "interface");
            assert!(
                error.reason().contains("no per-socket equivalent"),
                "{error}"
            );
        }
    }

    /// RFC 8305 §5: the attempt delay is never under 10 ms.
    #[test]
    fn attempt_delay_respects_rfc8305_minimum() {
        let error = refused(Builder::default().attempt_delay(Duration::from_millis(9)));
        assert_eq!(error.setting(), "attempt_delay");
        assert_eq!(
            error.to_string(),
            "invalid attempt_delay: 9ms is under the 10ms minimum of RFC 8305 §5"
        );
        assert!(Builder::default()
            .attempt_delay(Duration::from_millis(10))
            .build()
            .is_ok());
    }

    #[test]
    fn every_bound_names_its_setting() {
        let cases: Vec<(Builder, &str)> = vec![
            (
                Builder::default().attempt_delay(Duration::from_secs(3601)),
                "attempt_delay",
            ),
            (
                Builder::default().resolution_delay(Duration::from_secs(3601)),
                "resolution_delay",
            ),
            (Builder::default().timeout(Duration::ZERO), "timeout"),
            (
                Builder::default().attempt_timeout(Duration::ZERO),
                "attempt_timeout",
            ),
            (
                Builder::default().first_family_count(0),
                "first_family_count",
            ),
            (Builder::default().max_attempts(0), "max_attempts"),
            (
                Builder::default().max_addresses_per_name(0),
                "max_addresses_per_name",
            ),
            (Builder::default().send_buffer_size(0), "send_buffer_size"),
            (Builder::default().recv_buffer_size(0), "recv_buffer_size"),
            (
                Builder::default().keepalive_retries(3),
                "keepalive_interval",
            ),
            (Builder::default().interface(""), "interface"),
            (
                Builder::default().interface("a-very-long-interface"),
                "interface",
            ),
            (
                Builder::default().tcp_user_timeout(Duration::ZERO),
                "tcp_user_timeout",
            ),
            (Builder::default().local_addrs([]), "local_addrs"),
            (
                Builder::default().history_ttl(Duration::ZERO),
                "history_ttl",
            ),
        ];
        for (builder, setting) in cases {
            assert_eq!(refused(builder).setting(), setting);
        }
    }
}
