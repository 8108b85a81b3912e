//! IPv6-only networks: NAT64 prefixes (RFC 6052), their discovery (RFC 7050), and the
//! synthesis of IPv6 addresses for IPv4 destinations (RFC 8305 §7).
//!
//! The pure parts (embedding, extraction, reading prefixes out of `ipv4only.arpa` answers) do no
//! I/O. [`Discovery`] is the one piece with state: a connector's learned prefixes, shared by its
//! clones, learned by at most one lookup at a time and kept for a bounded time.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::future::{FutureExt, Shared, WeakShared};
use tokio::time::Instant;

use crate::filter::{InvalidPrefix, IpPrefix};
use crate::prefix::mask_v6;
use crate::resolve::{Family, Resolve};

/// The name whose AAAA answers reveal the network's NAT64 prefixes (RFC 7050 §2).
pub(crate) const DISCOVERY_NAME: &str = "ipv4only.arpa";
/// The two well-known IPv4 addresses of `ipv4only.arpa` (RFC 7050 §2.2).
const WELL_KNOWN_V4: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 0, 170), Ipv4Addr::new(192, 0, 0, 171)];
/// The prefix lengths RFC 6052 §2.2 allows, longest first.
const LENGTHS: [u8; 6] = [96, 64, 56, 48, 40, 32];
/// How long discovered prefixes are used before they are asked for again. The system resolver
/// gives no TTL; RFC 7050 §3.1 asks that the prefix be re-learned periodically, and a network
/// change (a new prefix) shows up sooner as failed synthesized attempts, which forget it at once.
pub(crate) const FOUND_TTL: Duration = Duration::from_secs(600);
/// How long "no prefix here" (or a failed lookup) is kept: short, so a network that gains NAT64
/// is noticed soon, long enough that every IPv4 connect does not send a query.
pub(crate) const NOT_FOUND_TTL: Duration = Duration::from_secs(30);

/// A NAT64 prefix (RFC 6052 §2.2): the IPv6 prefix, 32, 40, 48, 56, 64 or 96 bits long, under
/// which a network's translator stands for the IPv4 Internet. `64:ff9b::/96` is the well-known
/// one.
///
/// ```
/// use connect_by_list::Nat64Prefix;
/// use std::net::Ipv4Addr;
///
/// let prefix: Nat64Prefix = "2001:db8:122:344::/64".parse()?;
/// let v6 = prefix.embed(Ipv4Addr::new(192, 0, 2, 33));
/// assert_eq!(v6.to_string(), "2001:db8:122:344:c0:2:2100:0");
/// assert_eq!(prefix.extract(v6), Some(Ipv4Addr::new(192, 0, 2, 33)));
/// assert_eq!(Nat64Prefix::WELL_KNOWN.to_string(), "64:ff9b::/96");
///
/// let error = "2001:db8::/33".parse::<Nat64Prefix>().unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "2001:db8::/33: a NAT64 prefix is 32, 40, 48, 56, 64 or 96 bits long (RFC 6052), not 33"
/// );
/// # Ok::<(), connect_by_list::InvalidPrefix>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Nat64Prefix {
    bits: u128,
    len: u8,
}

impl Nat64Prefix {
    /// `64:ff9b::/96`, the well-known prefix (RFC 6052 §2.1).
    pub const WELL_KNOWN: Nat64Prefix = Nat64Prefix {
        bits: 0x0064_ff9b << 96,
        len: 96,
    };

    /// The prefix `addr/len`: `len` must be one of RFC 6052's lengths, `addr` must have no bits
    /// set past it, and for lengths under 96 bits 64 to 71 (the "u" octet) are inside the suffix.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Nat64Prefix, InvalidPrefix> {
        let input = || format!("{addr}/{len}");
        if !LENGTHS.contains(&len) {
            return Err(InvalidPrefix::new(
                input(),
                format!(
                    "a NAT64 prefix is 32, 40, 48, 56, 64 or 96 bits long (RFC 6052), not {len}"
                ),
            ));
        }
        let bits = addr.to_bits();
        if bits & !mask_v6(len) != 0 {
            return Err(InvalidPrefix::new(
                input(),
                format!("host bits set past the /{len}"),
            ));
        }
        if len == 96 && (bits >> 56) as u8 != 0 {
            // RFC 6052 §2.2: bits 64 to 71 must be zero, for the /96 too.
            return Err(InvalidPrefix::new(
                input(),
                "bits 64 to 71 (the \"u\" octet) must be zero (RFC 6052 §2.2)".to_owned(),
            ));
        }
        Ok(Nat64Prefix { bits, len })
    }

    /// The prefix's first address.
    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from_bits(self.bits)
    }

    /// How many leading bits count: 32, 40, 48, 56, 64 or 96.
    #[allow(clippy::len_without_is_empty)] // a prefix length, not a collection's
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` is under this prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        (addr.to_bits() ^ self.bits) & mask_v6(self.len) == 0
    }

    /// The IPv6 address that stands for `v4` under this prefix (RFC 6052 §2.2): the IPv4 bits
    /// follow the prefix, skipping bits 64 to 71, and the suffix is zero.
    pub fn embed(&self, v4: Ipv4Addr) -> Ipv6Addr {
        let v4 = u128::from(v4.to_bits());
        let bits = if self.len == 96 {
            self.bits | v4
        } else {
            // The IPv4 address is split around the u octet: `before` bits up to bit 64, the
            // rest from bit 72.
            let before = u32::from(64 - self.len);
            let after = 32 - before;
            let high = v4 >> after;
            let low = v4 & ((1 << after) - 1);
            self.bits | (high << 64) | (low << (56 - after))
        };
        Ipv6Addr::from_bits(bits)
    }

    /// The IPv4 address `addr` stands for, when it is under this prefix (RFC 6052 §2.2).
    pub fn extract(&self, addr: Ipv6Addr) -> Option<Ipv4Addr> {
        if !self.contains(addr) {
            return None;
        }
        let bits = addr.to_bits();
        let v4 = if self.len == 96 {
            bits as u32
        } else {
            let before = u32::from(64 - self.len);
            let after = 32 - before;
            let high = (bits >> 64) & ((1u128 << before) - 1);
            let low = (bits >> (56 - after)) & ((1u128 << after) - 1);
            ((high << after) | low) as u32
        };
        Some(Ipv4Addr::from_bits(v4))
    }

    /// Whether the u octet (bits 64 to 71) of `addr` is zero, as RFC 6052 §2.2 requires of
    /// every address built under a prefix shorter than /96.
    fn u_octet_is_zero(addr: Ipv6Addr) -> bool {
        (addr.to_bits() >> 56) as u8 == 0
    }
}

impl fmt::Display for Nat64Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl TryFrom<IpPrefix> for Nat64Prefix {
    type Error = InvalidPrefix;

    fn try_from(prefix: IpPrefix) -> Result<Nat64Prefix, InvalidPrefix> {
        match prefix.addr() {
            IpAddr::V6(addr) => Nat64Prefix::new(addr, prefix.len()),
            IpAddr::V4(_) => Err(InvalidPrefix::new(
                prefix.to_string(),
                "a NAT64 prefix is an IPv6 prefix".to_owned(),
            )),
        }
    }
}

impl FromStr for Nat64Prefix {
    type Err = InvalidPrefix;

    /// Parses `addr/len`, as [`IpPrefix`] does, then checks it is a NAT64 prefix.
    fn from_str(input: &str) -> Result<Nat64Prefix, InvalidPrefix> {
        let prefix: IpPrefix = input.parse()?;
        Nat64Prefix::try_from(prefix)
            .map_err(|error| InvalidPrefix::new(input.to_owned(), error.reason().to_owned()))
    }
}

/// How IPv4 destinations are reached from a host with no IPv4 route: see
/// [`Builder::nat64`](crate::Builder::nat64).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Nat64 {
    /// Learn the network's prefixes from the resolver (RFC 7050), when an IPv4 destination has no
    /// route, and synthesize IPv6 addresses under them.
    #[default]
    Discover,
    /// Synthesize under this prefix; nothing is discovered.
    Prefix(Nat64Prefix),
    /// Never synthesize: IPv4 destinations are tried as they are.
    Off,
}

/// An attempt's IPv6 address stands for an IPv4 one: which, and under which NAT64 prefix
/// (RFC 6052). See [`Attempt::nat64`](crate::Attempt::nat64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Synthesized {
    pub(crate) ipv4: Ipv4Addr,
    pub(crate) prefix: Nat64Prefix,
}

impl Synthesized {
    /// The IPv4 address the dialed IPv6 address stands for.
    pub fn ipv4(&self) -> Ipv4Addr {
        self.ipv4
    }

    /// The NAT64 prefix it was built under.
    pub fn prefix(&self) -> Nat64Prefix {
        self.prefix
    }
}

impl fmt::Display for Synthesized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NAT64 {} via {}", self.ipv4, self.prefix)
    }
}

/// The NAT64 prefixes revealed by AAAA answers for `ipv4only.arpa` (RFC 7050 §3): each answer is
/// searched for 192.0.0.170 and 192.0.0.171 at the place every prefix length would put them.
/// Only an exact reading counts: the u octet zero and the suffix after the IPv4 bits zero (RFC
/// 6052 §2.2), which also makes the place unique (a longer prefix puts the IPv4 address's last,
/// non-zero, octet where a shorter one's suffix must be zero). In the order first found, without
/// repeats.
pub(crate) fn prefixes_from(answers: &[IpAddr]) -> Vec<Nat64Prefix> {
    let mut prefixes = Vec::new();
    for answer in answers {
        let IpAddr::V6(v6) = *answer else {
            continue;
        };
        for len in LENGTHS {
            if len < 96 && !Nat64Prefix::u_octet_is_zero(v6) {
                continue;
            }
            let prefix = Nat64Prefix {
                bits: v6.to_bits() & mask_v6(len),
                len,
            };
            let Some(v4) = prefix.extract(v6) else {
                continue;
            };
            if WELL_KNOWN_V4.contains(&v4) && prefix.embed(v4) == v6 && !prefixes.contains(&prefix)
            {
                prefixes.push(prefix);
            }
        }
    }
    prefixes
}

/// What discovery learned: the prefixes (none when the network has no NAT64, or the lookup
/// failed: then the IPv4 address is tried as it is).
pub(crate) type Learned = Arc<[Nat64Prefix]>;
type Discovering = Pin<Box<dyn Future<Output = Learned> + Send>>;
type Flight = Shared<Discovering>;

/// One connector's NAT64 prefixes: configured, or learned by RFC 7050 discovery, shared by its
/// clones (as [`crate::lookups`] shares lookups): at most one discovery is out at a time, and its
/// answer is kept for [`FOUND_TTL`] (or [`NOT_FOUND_TTL`] when it found nothing).
pub(crate) struct Discovery {
    setting: Nat64,
    resolver: Arc<dyn Resolve>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    known: Option<(Learned, Instant)>,
    /// The discovery out, joined while some connect waits for it.
    flight: Option<(u64, WeakShared<Discovering>)>,
    next_id: u64,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("setting", &self.setting)
            .finish_non_exhaustive()
    }
}

/// Where a connect stands with the prefixes.
pub(crate) enum Prefixes {
    /// Known now (perhaps none: then IPv4 is tried as it is).
    Known(Learned),
    /// Being discovered: wait for this.
    Discovering(Flight),
}

impl Discovery {
    pub(crate) fn new(setting: Nat64, resolver: Arc<dyn Resolve>) -> Discovery {
        Discovery {
            setting,
            resolver,
            state: Arc::default(),
        }
    }

    /// Whether IPv4 destinations without a route are synthesized at all.
    pub(crate) fn is_on(&self) -> bool {
        self.setting != Nat64::Off
    }

    /// The prefixes to synthesize under, or the discovery to wait for (started, or joined, now).
    pub(crate) fn prefixes(&self, now: Instant) -> Prefixes {
        match self.setting {
            Nat64::Off => return Prefixes::Known(Arc::from([])),
            Nat64::Prefix(prefix) => return Prefixes::Known(Arc::from([prefix])),
            Nat64::Discover => {}
        }
        let mut state = lock(&self.state);
        if let Some((learned, until)) = &state.known {
            if now < *until {
                return Prefixes::Known(learned.clone());
            }
        }
        if let Some(flight) = state.flight.as_ref().and_then(|(_, weak)| weak.upgrade()) {
            return Prefixes::Discovering(flight);
        }
        let id = state.next_id;
        state.next_id += 1;
        let lookup = self.resolver.resolve(DISCOVERY_NAME, Family::V6);
        let shared = Arc::downgrade(&self.state);
        let future: Discovering = Box::pin(async move {
            let (learned, ttl): (Learned, _) = match lookup.await {
                Ok(answers) => {
                    let prefixes = prefixes_from(&answers);
                    tracing::debug!(?answers, ?prefixes, "NAT64 prefix discovery (RFC 7050)");
                    let ttl = if prefixes.is_empty() {
                        NOT_FOUND_TTL
                    } else {
                        FOUND_TTL
                    };
                    (prefixes.into(), ttl)
                }
                Err(error) => {
                    tracing::debug!(%error, "NAT64 prefix discovery failed");
                    (Arc::from([]), NOT_FOUND_TTL)
                }
            };
            remember(&shared, id, &learned, ttl);
            learned
        });
        let flight = future.shared();
        if let Some(weak) = flight.downgrade() {
            state.flight = Some((id, weak));
        }
        Prefixes::Discovering(flight)
    }

    /// A synthesized attempt under `prefix` failed in a way that says the prefix may be gone
    /// (no route to it): a discovered prefix is forgotten, so that the next connect asks again.
    pub(crate) fn prefix_failed(&self, prefix: Nat64Prefix) {
        if self.setting != Nat64::Discover {
            return;
        }
        let mut state = lock(&self.state);
        let holds = |(learned, _): &(Learned, Instant)| learned.contains(&prefix);
        if state.known.as_ref().is_some_and(holds) {
            tracing::debug!(%prefix, "NAT64 prefix unreachable; it will be discovered again");
            state.known = None;
        }
    }
}

/// One connect's side of NAT64: the discovery it waits for, the IPv4 addresses held until then,
/// and the addresses it synthesized (for the report).
pub(crate) struct Synthesis {
    pub(crate) discovery: Arc<Discovery>,
    flight: Option<Flight>,
    /// IPv4 addresses with no route, waiting for the prefixes.
    pub(crate) held: Vec<Held>,
    /// Each synthesized remote address, and what it stands for.
    made: Vec<(std::net::SocketAddr, Synthesized)>,
}

/// An IPv4 address waiting for discovery: where it came from, as the race's `consider` takes it.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) target: usize,
    pub(crate) position: usize,
    pub(crate) host: Option<Arc<str>>,
    pub(crate) remote: std::net::SocketAddr,
    pub(crate) placement: crate::plan::Placement,
}

impl Synthesis {
    pub(crate) fn new(discovery: Arc<Discovery>) -> Synthesis {
        Synthesis {
            discovery,
            flight: None,
            held: Vec::new(),
            made: Vec::new(),
        }
    }

    /// Holds `held` until the prefixes are known, or hands it back with them when they are.
    pub(crate) fn prefixes_or_hold(&mut self, held: Held) -> Option<(Held, Learned)> {
        if self.flight.is_none() {
            match self.discovery.prefixes(Instant::now()) {
                Prefixes::Known(learned) => return Some((held, learned)),
                Prefixes::Discovering(flight) => self.flight = Some(flight),
            }
        }
        self.held.push(held);
        None
    }

    /// Whether this connect waits for a discovery.
    pub(crate) fn is_discovering(&self) -> bool {
        self.flight.is_some()
    }

    /// The discovery's answer, once, when it has come.
    pub(crate) fn poll_learned(&mut self, cx: &mut std::task::Context<'_>) -> Option<Learned> {
        let flight = self.flight.as_mut()?;
        let std::task::Poll::Ready(learned) = Pin::new(flight).poll(cx) else {
            return None;
        };
        self.flight = None;
        Some(learned)
    }

    /// Stops waiting (the connect is over): a discovery no other connect waits for is dropped.
    pub(crate) fn stop(&mut self) {
        self.flight = None;
    }

    /// Builds `remote`'s IPv6 address under `prefix` and remembers what it stands for.
    pub(crate) fn synthesize(
        &mut self,
        remote: std::net::SocketAddr,
        ipv4: Ipv4Addr,
        prefix: Nat64Prefix,
    ) -> std::net::SocketAddr {
        let addr = std::net::SocketAddr::new(IpAddr::V6(prefix.embed(ipv4)), remote.port());
        if !self.made.iter().any(|(made, _)| *made == addr) {
            self.made.push((addr, Synthesized { ipv4, prefix }));
        }
        addr
    }

    /// What `remote` stands for, if this connect synthesized it.
    pub(crate) fn of(&self, remote: std::net::SocketAddr) -> Option<Synthesized> {
        self.made
            .iter()
            .find(|(made, _)| *made == remote)
            .map(|(_, synthesized)| *synthesized)
    }
}

/// Keeps a finished discovery's answer, unless a later discovery has taken its place.
fn remember(state: &Weak<Mutex<State>>, id: u64, learned: &Learned, ttl: Duration) {
    let Some(state) = state.upgrade() else {
        return;
    };
    let mut state = lock(&state);
    if state.flight.as_ref().is_some_and(|(out, _)| *out == id) {
        state.flight = None;
    }
    state.known = Some((learned.clone(), Instant::now() + ttl));
}

/// Whether an attempt's error says its NAT64 prefix may no longer be routed.
pub(crate) fn suggests_prefix_changed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(text: &str) -> Ipv6Addr {
        text.parse().expect("test address")
    }

    fn prefix(text: &str) -> Nat64Prefix {
        text.parse().expect("test prefix")
    }

    /// RFC 6052 §2.4, the example table: 192.0.2.33 under each prefix length.
    #[test]
    fn rfc6052_examples() {
        let v4 = Ipv4Addr::new(192, 0, 2, 33);
        let table = [
            ("2001:db8::/32", "2001:db8:c000:221::"),
            ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
            ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
            ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
            ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
            ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
            ("64:ff9b::/96", "64:ff9b::192.0.2.33"),
        ];
        for (net, synthesized) in table {
            let net = prefix(net);
            assert_eq!(net.embed(v4), v6(synthesized), "{net}");
            assert_eq!(net.extract(v6(synthesized)), Some(v4), "{net}");
        }
    }

    /// Every length round-trips every IPv4 address shape, and the u octet stays zero.
    #[test]
    fn embedding_round_trips_at_every_length() {
        let base = v6("2001:db8:aaaa:bbbb::");
        for len in LENGTHS {
            let net = Nat64Prefix::new(Ipv6Addr::from_bits(base.to_bits() & mask_v6(len)), len)
                .expect("valid prefix");
            for v4 in [
                Ipv4Addr::new(0, 0, 0, 0),
                Ipv4Addr::new(255, 255, 255, 255),
                Ipv4Addr::new(192, 0, 0, 170),
                Ipv4Addr::new(1, 2, 3, 4),
            ] {
                let addr = net.embed(v4);
                assert!(net.contains(addr), "{net} {v4}");
                assert_eq!(net.extract(addr), Some(v4), "{net} {v4}");
                if len < 96 {
                    assert!(Nat64Prefix::u_octet_is_zero(addr), "{net} {v4}: {addr}");
                }
            }
        }
        assert_eq!(prefix("64:ff9b::/96").extract(v6("2001:db8::1")), None);
    }

    #[test]
    fn bad_prefixes_are_refused_by_name() {
        let reason = |text: &str| text.parse::<Nat64Prefix>().unwrap_err().to_string();
        assert_eq!(
            reason("2001:db8::/33"),
            "2001:db8::/33: a NAT64 prefix is 32, 40, 48, 56, 64 or 96 bits long (RFC 6052), not 33"
        );
        assert_eq!(
            reason("192.0.2.0/24"),
            "192.0.2.0/24: a NAT64 prefix is an IPv6 prefix"
        );
        assert_eq!(
            reason("2001:db8:0:0:ff00::/96"),
            "2001:db8:0:0:ff00::/96: bits 64 to 71 (the \"u\" octet) must be zero (RFC 6052 §2.2)"
        );
        assert!(reason("2001:db8::1/64").contains("host bits"));
        assert_eq!(prefix("64:ff9b::/96"), Nat64Prefix::WELL_KNOWN);
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().expect("test ip")).collect()
    }

    /// RFC 7050 §3: the prefix is where the well-known address sits in the answer.
    #[test]
    fn discovery_from_two_well_known_addresses() {
        let found = prefixes_from(&ips(&["64:ff9b::c000:aa", "64:ff9b::c000:ab"]));
        assert_eq!(found, [Nat64Prefix::WELL_KNOWN]);
        // A /64 network-specific prefix: the address straddles the u octet.
        let net = prefix("2001:db8:1:2::/64");
        let answers = [
            IpAddr::V6(net.embed(WELL_KNOWN_V4[0])),
            IpAddr::V6(net.embed(WELL_KNOWN_V4[1])),
        ];
        assert_eq!(prefixes_from(&answers), [net]);
    }

    #[test]
    fn discovery_from_one_well_known_address() {
        for text in ["2001:db8::/32", "2001:db8:100::/40", "2001:db8:122::/48"] {
            let net = prefix(text);
            let answers = [IpAddr::V6(net.embed(WELL_KNOWN_V4[1]))];
            assert_eq!(prefixes_from(&answers), [net], "{net}");
        }
    }

    /// Answers that hold no well-known address reveal nothing (no NAT64, or a resolver that
    /// answered something else).
    #[test]
    fn discovery_with_no_well_known_address() {
        assert!(prefixes_from(&[]).is_empty());
        assert!(prefixes_from(&ips(&["2001:db8::1", "64:ff9b::c000:201"])).is_empty());
        // The right IPv4 bits, but a non-zero suffix: not a synthesized address.
        assert!(prefixes_from(&ips(&["2001:db8:c000:aa::1"])).is_empty());
        assert!(prefixes_from(&ips(&["192.0.0.170"])).is_empty());
    }

    /// Two networks' prefixes (a host with two translators) are both kept, in answer order.
    #[test]
    fn discovery_of_two_prefixes() {
        let other = prefix("2001:db8:64::/96");
        let answers = ips(&["2001:db8:64::c000:aa", "64:ff9b::c000:aa"]);
        assert_eq!(prefixes_from(&answers), [other, Nat64Prefix::WELL_KNOWN]);
    }

    /// A well-known address read at every length: only the exact reading (zero suffix) counts,
    /// so each answer names one prefix, never a shorter one that happens to hold the same bits.
    #[test]
    fn discovery_reads_each_answer_at_one_length() {
        for len in LENGTHS {
            let base = v6("2001:db8:c000:aa::");
            let net = Nat64Prefix::new(Ipv6Addr::from_bits(base.to_bits() & mask_v6(len)), len)
                .expect("valid prefix");
            let answer = [IpAddr::V6(net.embed(WELL_KNOWN_V4[0]))];
            assert_eq!(prefixes_from(&answer), [net], "{net}");
        }
    }
}
