//! `Builder`: every setting of a [`Connector`], with its default; `build()` checks them all.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigError};
use crate::connector::Connector;
use crate::dial::{SocketHook, SocketOptions};
use crate::filter::AddressFilter;
use crate::local::LocalAddrs;
use crate::nat64::Nat64;
use crate::rank::PolicyTable;
use crate::resolve::{IpFamily, Resolve};

impl Connector {
    /// Starts configuring a connector.
    pub fn builder() -> Builder {
        Builder::default()
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
    /// [`ConnectErrorKind::TimedOut`](crate::ConnectErrorKind::TimedOut). Must be more than zero.
    ///
    /// It is the connect's own deadline: it covers a handshake raced with the connect
    /// ([`Connector::connect_with`](crate::Connector::connect_with), `HttpsConnector`'s TLS),
    /// but not one done by a wrapper around the connector (hyper-rustls), nor the request that
    /// follows. For a deadline on a whole hyper request, see "With hyper" in the
    /// [crate docs](crate).
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

    /// The most attempts one connect makes; further addresses are listed in
    /// [`Report::not_tried`](crate::Report::not_tried). From 1 to 10,000.
    ///
    /// Default is 100.
    pub fn max_attempts(mut self, max: usize) -> Builder {
        self.config.max_attempts = max;
        self
    }

    /// The most addresses taken from one name's answer, per family; a huge DNS answer cannot make
    /// a connect run for ever. From 1 to 10,000.
    ///
    /// Default is 32.
    pub fn max_addresses_per_name(mut self, max: usize) -> Builder {
        self.config.max_addresses_per_name = max;
        self
    }

    /// The resolver for host names.
    ///
    /// Default is [`SystemResolver`](crate::SystemResolver) (`getaddrinfo`).
    pub fn resolver(mut self, resolver: impl Resolve) -> Builder {
        self.config.resolver = Arc::new(resolver);
        self
    }

    /// Which address families to use. With one family only, the other family's lookup is never
    /// sent, and its addresses, IP literals included, are skipped with
    /// [`SkipReason::OtherFamily`](crate::SkipReason::OtherFamily) in the report (like curl's
    /// `-4` and `-6`). An IPv4-mapped address (`::ffff:192.0.2.1`) counts as IPv4, as it is dialed.
    ///
    /// ```
    /// use connect_by_list::{Connector, IpFamily};
    ///
    /// let ipv6_only = Connector::builder().ip_family(IpFamily::V6Only).build()?;
    /// # Ok::<(), connect_by_list::ConfigError>(())
    /// ```
    ///
    /// Default is [`IpFamily::Any`].
    pub fn ip_family(mut self, family: IpFamily) -> Builder {
        self.config.ip_family = family;
        self
    }

    /// How IPv4 destinations are reached from a host with no IPv4 route (an IPv6-only network
    /// with NAT64; RFC 8305 §7). For each IPv4 address to which the kernel has no route, an
    /// IPv6 address is synthesized under each NAT64 prefix (RFC 6052) and tried in its place,
    /// ranked and raced like any other; the report names the IPv4 address and the prefix
    /// ([`Attempt::nat64`](crate::Attempt::nat64)). The address filter judges it by the IPv4
    /// address it stands for.
    ///
    /// - [`Nat64::Discover`]: the prefixes are learned from the resolver's AAAA answer for
    ///   `ipv4only.arpa` (RFC 7050), only when some connect needs them, by one lookup at a time
    ///   per connector and its clones; kept 10 minutes (30 seconds when none was found), and
    ///   learned again sooner when a synthesized attempt finds no route to its prefix. While
    ///   they are being learned, the connect tries its other addresses; when none is found the
    ///   IPv4 address is tried as it is.
    /// - [`Nat64::Prefix`]: this prefix, nothing discovered.
    /// - [`Nat64::Off`]: IPv4 addresses are always tried as they are.
    ///
    /// A host with an IPv4 route to the destination never synthesizes, nor discovers.
    ///
    /// ```
    /// use connect_by_list::{Connector, Nat64};
    ///
    /// let connector = Connector::builder()
    ///     .nat64(Nat64::Prefix("64:ff9b::/96".parse()?))
    ///     .build()?;
    /// let never = Connector::builder().nat64(Nat64::Off).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Default is [`Nat64::Discover`].
    pub fn nat64(mut self, nat64: Nat64) -> Builder {
        self.config.nat64 = nat64;
        self
    }

    /// At most this many lookups of a resolver that blocks a thread ([`SystemResolver`], whose
    /// `getaddrinfo` cannot be cancelled) run at once, per connector and its clones; the others
    /// wait their turn in order, each connect's deadline still bounding its wait. A lookup that
    /// an earlier connect started is joined, not repeated, so the bound counts distinct
    /// (name, family) pairs. A cancellable resolver, such as `HickoryResolver` (feature
    /// `hickory`), blocks no thread and is not bounded (see [`Resolve::blocks_a_thread`]). At
    /// least 1.
    ///
    /// Default is 64, which leaves most of Tokio's blocking pool (512 threads unless the
    /// runtime says otherwise) to the application.
    ///
    /// [`SystemResolver`]: crate::SystemResolver
    pub fn max_concurrent_lookups(mut self, max: usize) -> Builder {
        self.config.max_concurrent_lookups = max;
        self
    }

    /// Reuses each successful answer (an empty one included) for this long, per connector and
    /// its clones, for at most 1,024 (name, family) pairs. `getaddrinfo` gives no TTL, so this
    /// one applies to every record, and the system may cache already (nscd, systemd-resolved);
    /// leave it off with `HickoryResolver` (feature `hickory`), which caches each answer
    /// for its own TTL. More than zero and at most a day.
    ///
    /// Default is off: every connect asks the resolver (joining a lookup already out).
    pub fn dns_cache_ttl(mut self, ttl: Duration) -> Builder {
        self.config.dns_cache_ttl = Some(ttl);
        self
    }

    /// The RFC 6724 policy table that orders destinations (and picks among local addresses):
    /// for example [`PolicyTable::prefer_ipv4`], or the updated table of
    /// [`PolicyTable::rfc6724_update`].
    ///
    /// Default is [`PolicyTable::rfc6724`], the table of RFC 6724 §2.1.
    pub fn policy_table(mut self, table: PolicyTable) -> Builder {
        self.config.policy_table = Arc::new(table);
        self
    }

    /// Whether every connect (and [`Connector::plan`](crate::Connector::plan)) is to an HTTPS
    /// service: then each name's HTTPS records (RFC 9460) are asked for beside AAAA and A and
    /// shape the race as Happy Eyeballs v3 says (services by priority, their ports, address
    /// hints; see the crate's README). A TLS race (`connect_tls`, `HttpsConnector`) asks for
    /// them whatever this says. Needs a resolver that can ask (`HickoryResolver`); with the
    /// system resolver nothing is asked and nothing waits.
    ///
    /// Default is off.
    pub fn https_records(mut self, on: bool) -> Builder {
        self.config.https_records = on;
        self
    }

    /// Whether to order addresses by RFC 6724. Off: they are tried in the caller's order
    /// (targets as given, each name's addresses as the resolver gave them); families still
    /// interleave (RFC 8305 §4).
    ///
    /// Default is on.
    pub fn sort_addresses(mut self, sort: bool) -> Builder {
        self.config.sort_addresses = sort;
        self
    }

    /// Which destination addresses may be connected to, checked after resolution for every
    /// address, IP literals included: see [`AddressFilter::deny_non_public`] against SSRF. A
    /// refused address is listed in [`Report::skipped`](crate::Report::skipped); when every
    /// address is refused the connect fails with [`ConnectErrorKind::Denied`](crate::ConnectErrorKind::Denied)
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
        self.socket().nodelay = nodelay;
        self
    }

    /// Turns TCP keepalive on, with this idle time before the first probe. Whole seconds, at
    /// most 32,767 s (what systems take).
    ///
    /// Default is off.
    pub fn keepalive(mut self, idle: Duration) -> Builder {
        self.socket().keepalive_time = Some(idle);
        self
    }

    /// The time between keepalive probes; needs [`Builder::keepalive`]. Whole seconds, at most
    /// 32,767 s.
    ///
    /// Default is the system's (75 s on Linux).
    pub fn keepalive_interval(mut self, interval: Duration) -> Builder {
        self.socket().keepalive_interval = Some(interval);
        self
    }

    /// How many unanswered keepalive probes close the connection; needs
    /// [`Builder::keepalive`]. From 1 to 127. Not on Windows, where the system fixes it.
    ///
    /// Default is the system's (9 on Linux).
    pub fn keepalive_retries(mut self, retries: u32) -> Builder {
        self.socket().keepalive_retries = Some(retries);
        self
    }

    /// `SO_SNDBUF`, in bytes. More than zero.
    ///
    /// Default is the system's.
    pub fn send_buffer_size(mut self, bytes: usize) -> Builder {
        self.socket().send_buffer_size = Some(bytes);
        self
    }

    /// `SO_RCVBUF`, in bytes. More than zero.
    ///
    /// Default is the system's.
    pub fn recv_buffer_size(mut self, bytes: usize) -> Builder {
        self.socket().recv_buffer_size = Some(bytes);
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
        self.socket().interface = Some(name.into());
        self
    }

    /// Marks every attempt's packets (`SO_MARK`), for policy routing. Linux and Android only:
    /// elsewhere [`Builder::build`] refuses it. Needs `CAP_NET_ADMIN`.
    ///
    /// Default is none.
    pub fn mark(mut self, mark: u32) -> Builder {
        self.socket().mark = Some(mark);
        self
    }

    /// `TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged before the connection is
    /// closed. Linux and Android only: elsewhere [`Builder::build`] refuses it. More than zero.
    ///
    /// Default is the system's.
    pub fn tcp_user_timeout(mut self, timeout: Duration) -> Builder {
        self.socket().tcp_user_timeout = Some(timeout);
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
        self.socket().fast_icmp_errors = on;
        self
    }

    /// `SO_REUSEADDR` on every attempt's socket before it binds: a listed local address may then
    /// take a port that a closed connection still holds in `TIME_WAIT`. Not on Windows, where the
    /// option lets a socket take a port another one is using; [`Builder::build`] refuses it there.
    ///
    /// Default is off.
    pub fn reuse_address(mut self, on: bool) -> Builder {
        self.socket().reuse_address = on;
        self
    }

    /// The IPv4 TOS / IPv6 Traffic Class byte of every attempt's packets (`IP_TOS`,
    /// `IPV6_TCLASS`): the DSCP code point shifted left by two, so `0xb8` is EF (46) and `0x20`
    /// is CS1 (8). The two low bits are ECN's, which TCP sets itself, and must be zero. Not on
    /// Windows, which takes DSCP only through its QoS API; [`Builder::build`] refuses it there.
    ///
    /// Default is none: the system's (0).
    pub fn traffic_class(mut self, class: u8) -> Builder {
        self.socket().traffic_class = Some(class);
        self
    }

    /// Opens Multipath TCP sockets (`IPPROTO_MPTCP`, RFC 8684), so a connection can use several
    /// paths at once where the peer speaks MPTCP (and is plain TCP where it does not: the
    /// kernel falls back by itself). Where the kernel has no MPTCP (not built in, or
    /// `net.mptcp.enabled=0`), or no MPTCP version of an option set here (Linux 6.18 has no
    /// `TCP_USER_TIMEOUT` for MPTCP sockets), each attempt opens a plain TCP socket instead and
    /// says why in [`Attempt::mptcp_fallback`](crate::Attempt::mptcp_fallback). Linux only:
    /// elsewhere [`Builder::build`] refuses it.
    ///
    /// Default is off.
    pub fn mptcp(mut self, on: bool) -> Builder {
        self.socket().mptcp = on;
        self
    }

    /// A function that sees every attempt's socket after the built-in options are set and
    /// before it binds and connects, with the local address it will bind (`None`: the kernel
    /// picks) and the remote address: for options this crate does not offer, like Go's
    /// `Dialer.Control`. An error from it fails that attempt only, reported like any other
    /// setup failure (`socket hook (on_socket): …`, the error's kind kept); the race goes on.
    /// The socket is non-blocking and must stay so; it is closed if the attempt fails or loses.
    /// Called on the task that polls the connect, so it should be quick.
    ///
    /// ```
    /// use connect_by_list::Connector;
    ///
    /// let connector = Connector::builder()
    ///     .on_socket(|socket, _local, remote| {
    ///         if remote.is_ipv4() {
    ///             socket.set_ttl_v4(32)?;
    ///         }
    ///         Ok(())
    ///     })
    ///     .build()
    ///     .expect("valid settings");
    /// # drop(connector);
    /// ```
    ///
    /// Default is none (nothing is called).
    pub fn on_socket<F>(mut self, hook: F) -> Builder
    where
        F: Fn(&socket2::Socket, Option<SocketAddr>, SocketAddr) -> io::Result<()>
            + Send
            + Sync
            + 'static,
    {
        self.socket().hook = Some(SocketHook(Arc::new(hook)));
        self
    }

    /// The socket options, to change (copied first if a connector already shares them).
    fn socket(&mut self) -> &mut SocketOptions {
        Arc::make_mut(&mut self.config.socket)
    }

    /// Checks every setting and makes the connector.
    pub fn build(self) -> Result<Connector, ConfigError> {
        self.config.validate()?;
        self.config.validate_lookups()?;
        self.config.validate_socket_extras()?;
        Ok(Connector::from_config(self.config))
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
        assert!(Builder::default()
            .max_concurrent_lookups(1)
            .dns_cache_ttl(crate::config::MAX_DNS_CACHE_TTL)
            .build()
            .is_ok());
    }

    /// The defaults the README's configuration table states (the ranking ones are checked by
    /// the ranking tests).
    #[test]
    fn the_defaults_are_the_documented_ones() {
        let config = Config::default();
        assert_eq!(config.attempt_delay, Duration::from_millis(250));
        assert_eq!(config.resolution_delay, Duration::from_millis(50));
        assert_eq!(config.first_family_count, 1);
        assert_eq!(config.timeout, None);
        assert_eq!(config.attempt_timeout, None);
        assert_eq!(config.max_attempts, 100);
        assert_eq!(config.max_addresses_per_name, 32);
        assert!(matches!(config.local_addrs, LocalAddrs::Kernel));
        assert_eq!(config.history_capacity, 256);
        assert_eq!(config.history_ttl, Duration::from_secs(600));
        assert!(config.sort_addresses);
        assert_eq!(config.max_concurrent_lookups, 64);
        assert_eq!(config.dns_cache_ttl, None);
        let socket = &config.socket;
        assert!(socket.nodelay && socket.fast_icmp_errors);
        assert_eq!(socket.keepalive_time, None);
        assert_eq!(socket.keepalive_interval, None);
        assert_eq!(socket.keepalive_retries, None);
        assert_eq!(socket.send_buffer_size, None);
        assert_eq!(socket.recv_buffer_size, None);
        assert_eq!(socket.interface, None);
        assert_eq!(socket.mark, None);
        assert_eq!(socket.tcp_user_timeout, None);
        assert!(!socket.reuse_address && !socket.mptcp);
        assert_eq!(socket.traffic_class, None);
        assert!(socket.hook.is_none());
    }

    #[test]
    fn lookup_settings_are_bounded() {
        let max_ttl = crate::config::MAX_DNS_CACHE_TTL;
        let cases: Vec<(Builder, &str)> = vec![
            (
                Builder::default().max_concurrent_lookups(0),
                "max_concurrent_lookups",
            ),
            (
                Builder::default().max_concurrent_lookups(usize::MAX),
                "max_concurrent_lookups",
            ),
            (
                Builder::default().dns_cache_ttl(Duration::ZERO),
                "dns_cache_ttl",
            ),
            (
                Builder::default().dns_cache_ttl(max_ttl + Duration::from_secs(1)),
                "dns_cache_ttl",
            ),
        ];
        for (builder, setting) in cases {
            assert_eq!(refused(builder).setting(), setting);
        }
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
            (
                Builder::default().max_attempts(crate::config::MAX_ATTEMPTS + 1),
                "max_attempts",
            ),
            (
                Builder::default().max_addresses_per_name(usize::MAX),
                "max_addresses_per_name",
            ),
            (
                Builder::default().keepalive(Duration::from_millis(1500)),
                "keepalive",
            ),
            (
                Builder::default().keepalive(Duration::from_secs(32_768)),
                "keepalive",
            ),
            (
                Builder::default()
                    .keepalive(Duration::from_secs(60))
                    .keepalive_interval(Duration::from_millis(500)),
                "keepalive_interval",
            ),
            (
                Builder::default()
                    .keepalive(Duration::from_secs(60))
                    .keepalive_retries(0),
                "keepalive_retries",
            ),
            (
                Builder::default()
                    .keepalive(Duration::from_secs(60))
                    .keepalive_retries(128),
                "keepalive_retries",
            ),
        ];
        for (builder, setting) in cases {
            assert_eq!(refused(builder).setting(), setting);
        }
    }

    /// Values every socket takes pass: the limits themselves.
    #[test]
    fn the_limits_themselves_pass() {
        let builder = Builder::default()
            .max_attempts(crate::config::MAX_ATTEMPTS)
            .max_addresses_per_name(crate::config::MAX_ADDRESSES_PER_NAME)
            .keepalive(Duration::from_secs(32_767))
            .keepalive_interval(Duration::from_secs(1));
        #[cfg(not(windows))]
        let builder = builder.keepalive_retries(127);
        assert!(builder.build().is_ok());
    }

    /// The policy table and the sort switch are two settings: neither call undoes the other,
    /// in either order.
    #[test]
    fn ranking_settings_do_not_depend_on_call_order() {
        let table = PolicyTable::prefer_ipv4();
        let orders = [
            Builder::default()
                .sort_addresses(false)
                .policy_table(table.clone()),
            Builder::default()
                .policy_table(table.clone())
                .sort_addresses(false),
        ];
        for builder in orders {
            assert!(!builder.config.sort_addresses);
            assert_eq!(*builder.config.policy_table, table);
            assert_eq!(builder.config.ranking(), crate::plan::Ranking::InputOrder);
        }
        let on = Builder::default()
            .sort_addresses(false)
            .policy_table(table.clone())
            .sort_addresses(true);
        assert_eq!(
            on.config.ranking(),
            crate::plan::Ranking::Rfc6724(Arc::new(table))
        );
    }
}
