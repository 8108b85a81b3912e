//! Every setting, its default and its bounds, validated once when the connector is built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::dial::SocketOptions;
use crate::filter::AddressFilter;
use crate::local::{self, LocalAddrs, RouteProbe};
use crate::nat64::{Discovery, Nat64};
use crate::plan::Ranking;
use crate::rank::PolicyTable;
use crate::resolve::{IpFamily, Resolve, SystemResolver};

/// RFC 8305 §5: the connection attempt delay MUST NOT be less than 10 ms.
pub(crate) const MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(10);
/// Longer waits than this are almost surely a unit mistake, and keep deadline sums far from
/// overflowing `Instant`.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(3600);
/// The most attempts one connect may be set to make: far past any real list, and small enough
/// that every count and position in a race stays far from overflowing.
pub(crate) const MAX_ATTEMPTS: usize = 10_000;
/// The most addresses that may be taken from one name's answer per family.
pub(crate) const MAX_ADDRESSES_PER_NAME: usize = 10_000;
/// The longest keepalive idle time or interval Linux takes (`MAX_TCP_KEEPIDLE`,
/// `MAX_TCP_KEEPINTVL`: 32,767 s); systems count both in whole seconds.
pub(crate) const MAX_KEEPALIVE: Duration = Duration::from_secs(32_767);
/// The most keepalive probes Linux takes (`MAX_TCP_KEEPCNT`).
pub(crate) const MAX_KEEPALIVE_RETRIES: u32 = 127;
/// Leaves most of Tokio's blocking pool (512 threads by default) to the application.
pub(crate) const DEFAULT_CONCURRENT_LOOKUPS: usize = 64;
/// getaddrinfo gives no TTL; a longer cache than this would outlive most DNS records.
pub(crate) const MAX_DNS_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
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
    pub(crate) max_concurrent_lookups: usize,
    pub(crate) dns_cache_ttl: Option<Duration>,
    /// Orders destinations when `sort_addresses` is on, and picks among listed local addresses
    /// whether or not it is.
    pub(crate) policy_table: Arc<PolicyTable>,
    pub(crate) sort_addresses: bool,
    pub(crate) filter: AddressFilter,
    pub(crate) local_addrs: LocalAddrs,
    pub(crate) route_probe: RouteProbe,
    pub(crate) history_capacity: usize,
    pub(crate) history_ttl: Duration,
    /// Shared with every dial: nothing is copied per connect.
    pub(crate) socket: Arc<SocketOptions>,
    pub(crate) ip_family: IpFamily,
    pub(crate) nat64: Nat64,
    /// The connector's NAT64 prefixes, shared by its clones; made by `Connector::from_config`
    /// (a race without one, as in tests, makes its own).
    pub(crate) nat64_discovery: Option<Arc<Discovery>>,
    /// HEv3: every connect asks for its names' HTTPS records (TLS handshakes do regardless).
    pub(crate) https_records: bool,
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
            max_concurrent_lookups: DEFAULT_CONCURRENT_LOOKUPS,
            dns_cache_ttl: None,
            policy_table: PolicyTable::shared_default(),
            sort_addresses: true,
            filter: AddressFilter::allow_all(),
            local_addrs: LocalAddrs::Kernel,
            route_probe: local::probe_route,
            history_capacity: 256,
            https_records: false,
            history_ttl: Duration::from_secs(600),
            socket: Arc::new(SocketOptions {
                nodelay: true,
                fast_icmp_errors: true,
                ..SocketOptions::default()
            }),
            ip_family: IpFamily::Any,
            nat64: Nat64::Discover,
            nat64_discovery: None,
        }
    }
}

impl Config {
    /// How the race orders destinations: by RFC 6724 with the policy table, or as given.
    pub(crate) fn ranking(&self) -> Ranking {
        if self.sort_addresses {
            Ranking::Rfc6724(self.policy_table.clone())
        } else {
            Ranking::InputOrder
        }
    }

    /// The settings of the shared lookups (`lookups.rs`).
    pub(crate) fn validate_lookups(&self) -> Result<(), ConfigError> {
        let max = self.max_concurrent_lookups;
        if max == 0 {
            return Err(ConfigError::new(
                "max_concurrent_lookups",
                "must be at least 1",
            ));
        }
        if max > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ConfigError::new(
                "max_concurrent_lookups",
                format!("{max} is more than a semaphore can count"),
            ));
        }
        match self.dns_cache_ttl {
            Some(Duration::ZERO) => Err(ConfigError::new(
                "dns_cache_ttl",
                "must be more than zero (leave it unset for no cache)",
            )),
            Some(ttl) if ttl > MAX_DNS_CACHE_TTL => Err(ConfigError::new(
                "dns_cache_ttl",
                format!("{ttl:?} is over the one-day limit"),
            )),
            _ => Ok(()),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
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
        for (setting, value, cap) in [
            ("max_attempts", self.max_attempts, MAX_ATTEMPTS),
            (
                "max_addresses_per_name",
                self.max_addresses_per_name,
                MAX_ADDRESSES_PER_NAME,
            ),
        ] {
            if value > cap {
                return Err(ConfigError::new(
                    setting,
                    format!("{value} is over the limit of {cap}"),
                ));
            }
        }
        for (setting, value) in [
            ("keepalive", self.socket.keepalive_time),
            ("keepalive_interval", self.socket.keepalive_interval),
        ] {
            let Some(value) = value else { continue };
            if value.subsec_nanos() != 0 {
                return Err(ConfigError::new(
                    setting,
                    format!(
                        "{value:?} is not a whole number of seconds, which is what systems take"
                    ),
                ));
            }
            if value > MAX_KEEPALIVE {
                return Err(ConfigError::new(
                    setting,
                    format!("{value:?} is over the 32767s the kernel takes"),
                ));
            }
        }
        if let Some(retries) = self.socket.keepalive_retries {
            if retries == 0 || retries > MAX_KEEPALIVE_RETRIES {
                return Err(ConfigError::new(
                    "keepalive_retries",
                    format!(
                        "{retries} is not from 1 to {MAX_KEEPALIVE_RETRIES}, what the kernel takes"
                    ),
                ));
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

impl Config {
    /// `reuse_address`, `traffic_class` and `mptcp`, refused by name where the system lacks them.
    pub(crate) fn validate_socket_extras(&self) -> Result<(), ConfigError> {
        let socket = &self.socket;
        if let Some(class) = socket.traffic_class {
            if class & 0b11 != 0 {
                return Err(ConfigError::new(
                    "traffic_class",
                    format!(
                        "{class:#04x} sets the two ECN bits, which TCP manages itself \
                         (give the DSCP shifted left by two)"
                    ),
                ));
            }
        }
        let windows = cfg!(windows);
        let unavailable = [
            (
                "reuse_address",
                socket.reuse_address && windows,
                "on Windows",
            ),
            (
                "traffic_class",
                socket.traffic_class.is_some() && windows,
                "on Windows (DSCP is set through its QoS API)",
            ),
            (
                "mptcp",
                socket.mptcp && !cfg!(target_os = "linux"),
                "outside Linux",
            ),
        ];
        for (setting, refused, where_) in unavailable {
            if refused {
                return Err(ConfigError::new(
                    setting,
                    format!("is not available {where_}"),
                ));
            }
        }
        Ok(())
    }
}

/// A setting that [`Builder::build`](crate::Builder::build) refused: which one, and why.
///
/// ```
/// let error = connect_by_list::Connector::builder().max_attempts(0).build().unwrap_err();
/// assert_eq!(error.setting(), "max_attempts");
/// println!("{error}");
/// ```
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

    /// The name of the setting, as its [`Builder`](crate::Builder) method is named.
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
