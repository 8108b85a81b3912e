//! Which destination addresses may be connected to: the SSRF defence.
//!
//! The connector runs [`AddressFilter::check`] on every candidate address after resolution, IP
//! literals included, so a name that resolves (or re-resolves, as in DNS rebinding) to an internal
//! address is refused just like a literal one. Everything here is pure computation on addresses.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

use crate::nat64::Nat64Prefix;
use crate::prefix::{in_v4, in_v6, max_len, network_of};

// ---------------------------------------------------------------------------------------------
// IpPrefix
// ---------------------------------------------------------------------------------------------

/// An IP prefix like `10.0.0.0/8` or `fc00::/7`: an address and how many leading bits count.
///
/// The address is always the first of the range: a prefix with host bits set (`10.0.0.1/8`) is
/// refused rather than silently widened, because a typo in a security rule should be loud.
/// Text without `/len` is a single address (`/32` or `/128`).
///
/// ```
/// use connect_by_list::IpPrefix;
///
/// let net: IpPrefix = "10.0.0.0/8".parse()?;
/// assert!(net.contains("10.200.0.1".parse()?));
/// assert!(!net.contains("11.0.0.0".parse()?));
/// assert_eq!(net.to_string(), "10.0.0.0/8");
///
/// let err = "10.0.0.0/33".parse::<IpPrefix>().unwrap_err();
/// assert_eq!(err.to_string(), "10.0.0.0/33: prefix length 33 is over 32");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// The prefix of `len` leading bits starting at `addr`.
    ///
    /// Fails if `len` is over the address width (32 or 128) or if `addr` has bits set past `len`.
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv6Addr};
    /// use connect_by_list::IpPrefix;
    ///
    /// let ula = IpPrefix::new(IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 7)?;
    /// assert_eq!(ula.to_string(), "fc00::/7");
    /// assert!(IpPrefix::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 129).is_err());
    /// # Ok::<(), connect_by_list::InvalidPrefix>(())
    /// ```
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, InvalidPrefix> {
        Self::checked(addr, len)
            .map_err(|reason| InvalidPrefix::new(format!("{addr}/{len}"), reason))
    }

    /// The validation shared by [`IpPrefix::new`] and parsing; the caller adds the input text.
    fn checked(addr: IpAddr, len: u8) -> Result<Self, String> {
        let max = max_len(addr);
        if len > max {
            return Err(format!("prefix length {len} is over {max}"));
        }
        let network = network_of(addr, len);
        if network != addr {
            return Err(format!("host bits are set; the network is {network}/{len}"));
        }
        Ok(IpPrefix { addr, len })
    }

    /// The first address of the prefix.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// How many leading bits of [`addr`](IpPrefix::addr) are fixed: 0 to 32 for IPv4, 0 to 128
    /// for IPv6.
    // A prefix length, not a container size, so an `is_empty` would mean nothing.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` is inside this prefix.
    ///
    /// Strictly per family: `10.0.0.0/8` does not contain `::ffff:10.0.0.1`. (The
    /// [`AddressFilter`] does look through such IPv6 forms; this plain test does not.)
    ///
    /// ```
    /// use connect_by_list::IpPrefix;
    ///
    /// let doc: IpPrefix = "2001:db8::/32".parse()?;
    /// assert!(doc.contains("2001:db8:ffff::1".parse()?));
    /// assert!(!doc.contains("192.0.2.1".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => in_v4(net.to_bits(), self.len, a.to_bits()),
            (IpAddr::V6(net), IpAddr::V6(a)) => in_v6(net.to_bits(), self.len, a.to_bits()),
            _ => false,
        }
    }
}

/// A single address as a full-length prefix (`/32` or `/128`).
impl From<IpAddr> for IpPrefix {
    fn from(addr: IpAddr) -> Self {
        IpPrefix {
            addr,
            len: max_len(addr),
        }
    }
}

/// A single IPv4 address as a `/32` prefix.
impl From<Ipv4Addr> for IpPrefix {
    fn from(addr: Ipv4Addr) -> Self {
        IpPrefix::from(IpAddr::V4(addr))
    }
}

/// A single IPv6 address as a `/128` prefix.
impl From<Ipv6Addr> for IpPrefix {
    fn from(addr: Ipv6Addr) -> Self {
        IpPrefix::from(IpAddr::V6(addr))
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = InvalidPrefix;

    /// Parses `addr/len` or a bare `addr`. Only the strict dotted-quad and standard IPv6 forms
    /// are accepted (no `127.1`, no octal, no zone index), as in [`IpAddr`]'s own parser.
    fn from_str(input: &str) -> Result<Self, InvalidPrefix> {
        parse_prefix(input).map_err(|reason| InvalidPrefix::new(input.to_owned(), reason))
    }
}

fn parse_prefix(input: &str) -> Result<IpPrefix, String> {
    if input.is_empty() {
        return Err("empty prefix".to_owned());
    }
    let (addr_text, len_text) = match input.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (input, None),
    };
    if addr_text.is_empty() {
        return Err("missing address before '/'".to_owned());
    }
    if let Some(zone) = addr_text.find('%').and_then(|at| addr_text.get(at..)) {
        // A zone names an interface of this host; a filter rule cannot be scoped to one.
        return Err(format!("zone index `{zone}` is not allowed in a prefix"));
    }
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("`{addr_text}` is not an IP address"))?;
    let Some(len_text) = len_text else {
        return Ok(IpPrefix::from(addr));
    };
    if len_text.is_empty() {
        return Err("missing prefix length after '/'".to_owned());
    }
    // Digits only: `u8::from_str` would also take a leading '+'.
    if !len_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("prefix length `{len_text}` is not a number"));
    }
    let max = max_len(addr);
    match len_text.parse::<u8>() {
        Ok(len) => IpPrefix::checked(addr, len),
        // All digits, so the only failure left is a number too large for u8.
        Err(_) => Err(format!("prefix length {len_text} is over {max}")),
    }
}

/// A prefix that could not be understood: the input, and what is wrong with it.
///
/// ```
/// use connect_by_list::IpPrefix;
///
/// let err = "10.0.0/8".parse::<IpPrefix>().unwrap_err();
/// assert_eq!(err.input(), "10.0.0/8");
/// assert_eq!(err.reason(), "`10.0.0` is not an IP address");
/// assert_eq!(err.to_string(), "10.0.0/8: `10.0.0` is not an IP address");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidPrefix {
    input: String,
    reason: String,
}

impl InvalidPrefix {
    pub(crate) fn new(input: String, reason: String) -> Self {
        InvalidPrefix { input, reason }
    }

    /// The text that was parsed, or `addr/len` for [`IpPrefix::new`].
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it, naming the bad part.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for InvalidPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.input.is_empty() {
            // "<nothing>: empty prefix" would read as a formatting bug.
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.input, self.reason)
        }
    }
}

impl Error for InvalidPrefix {}

// ---------------------------------------------------------------------------------------------
// The built-in policy: special-purpose ranges
// ---------------------------------------------------------------------------------------------

/// What a built-in rule says about the addresses it covers.
#[derive(Clone, Copy, Debug)]
enum Verdict {
    Deny(&'static str),
    /// Globally reachable, or decided by the IPv4 address it carries (checked separately).
    Pass,
}

#[derive(Clone, Copy, Debug)]
struct Rule4 {
    net: u32,
    len: u8,
    verdict: Verdict,
}

#[derive(Clone, Copy, Debug)]
struct Rule6 {
    net: u128,
    len: u8,
    verdict: Verdict,
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

#[allow(clippy::too_many_arguments)] // one argument per IPv6 group reads like the address
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16) -> u128 {
    Ipv6Addr::new(a, b, c, d, e, f, g, h).to_bits()
}

const fn deny4(net: u32, len: u8, reason: &'static str) -> Rule4 {
    Rule4 {
        net,
        len,
        verdict: Verdict::Deny(reason),
    }
}

const fn deny6(net: u128, len: u8, reason: &'static str) -> Rule6 {
    Rule6 {
        net,
        len,
        verdict: Verdict::Deny(reason),
    }
}

const fn pass6(net: u128, len: u8) -> Rule6 {
    Rule6 {
        net,
        len,
        verdict: Verdict::Pass,
    }
}

const PRIVATE: &str = "private (RFC 1918)";

/// IPv4 ranges refused by [`AddressFilter::deny_non_public`], first match wins. Built from the
/// IANA IPv4 Special-Purpose Address Registry (entries not globally reachable) plus multicast.
/// Anything not listed is allowed, including the registry's globally reachable entries
/// (AS112 192.31.196.0/24 and 192.175.48.0/24, AMT 192.52.193.0/24).
#[rustfmt::skip] // one rule a line reads as the table it is
const V4_RULES: &[Rule4] = &[
    // Connecting to 0.0.0.0 reaches this host on common stacks: a classic SSRF bypass.
    deny4(v4(0, 0, 0, 0),         32, "unspecified (0.0.0.0)"),
    deny4(v4(0, 0, 0, 0),          8, "this network (0.0.0.0/8)"),
    deny4(v4(10, 0, 0, 0),         8, PRIVATE),
    deny4(v4(100, 64, 0, 0),      10, "shared address space / carrier-grade NAT (100.64.0.0/10)"),
    deny4(v4(127, 0, 0, 0),        8, "loopback"),
    deny4(v4(169, 254, 0, 0),     16, "cloud metadata / link-local (169.254.0.0/16)"),
    deny4(v4(172, 16, 0, 0),      12, PRIVATE),
    // Whole /24, including the PCP (.9) and TURN (.10) anycast addresses the registry marks
    // global: their nearest instance is by design infrastructure on the local network.
    deny4(v4(192, 0, 0, 0),       24, "IETF protocol assignments (192.0.0.0/24)"),
    deny4(v4(192, 0, 2, 0),       24, "documentation (192.0.2.0/24)"),
    // Deprecated by RFC 7526; what answers there is whichever relay is nearest.
    deny4(v4(192, 88, 99, 0),     24, "deprecated 6to4 relay anycast (192.88.99.0/24)"),
    deny4(v4(192, 168, 0, 0),     16, PRIVATE),
    deny4(v4(198, 18, 0, 0),      15, "benchmarking (198.18.0.0/15)"),
    deny4(v4(198, 51, 100, 0),    24, "documentation (198.51.100.0/24)"),
    deny4(v4(203, 0, 113, 0),     24, "documentation (203.0.113.0/24)"),
    deny4(v4(224, 0, 0, 0),        4, "multicast (224.0.0.0/4)"),
    // Before 240/4 so the broadcast address gets its own reason.
    deny4(v4(255, 255, 255, 255), 32, "limited broadcast (255.255.255.255)"),
    deny4(v4(240, 0, 0, 0),        4, "reserved (240.0.0.0/4)"),
];

const NAT64: u128 = v6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
const NAT64_LOCAL: u128 = v6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0);
const TEREDO: u128 = v6(0x2001, 0, 0, 0, 0, 0, 0, 0);
const SIX_TO_FOUR: u128 = v6(0x2002, 0, 0, 0, 0, 0, 0, 0);

/// IPv6 ranges for [`AddressFilter::deny_non_public`], first match wins, from the IANA IPv6
/// Special-Purpose Address Registry and the IPv6 Address Space registry. The last rule refuses
/// everything outside 2000::/3, the only space IANA hands out as global unicast. The `Pass`
/// entries for forms that carry an IPv4 address only say "nothing more to object to here": the
/// carried IPv4 address has been checked by then.
#[rustfmt::skip] // one rule a line reads as the table it is
const V6_RULES: &[Rule6] = &[
    deny6(0, 128, "unspecified (::)"),
    deny6(1, 128, "loopback"),
    pass6(v6(0, 0, 0, 0, 0, 0xffff, 0, 0), 96), // IPv4-mapped
    // Deprecated by RFC 4291 and not routed; refused even when the IPv4 address is public.
    deny6(0, 96, "IPv4-compatible (deprecated, ::/96)"),
    pass6(NAT64, 96),
    pass6(NAT64_LOCAL, 48),
    deny6(v6(0x100, 0, 0, 0, 0, 0, 0, 0),      64, "discard-only (100::/64)"),
    pass6(TEREDO, 32),
    deny6(v6(0x2001, 2, 0, 0, 0, 0, 0, 0),     48, "benchmarking (2001:2::/48)"),
    pass6(v6(0x2001, 3, 0, 0, 0, 0, 0, 0),     32), // AMT
    pass6(v6(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48), // AS112-v6
    deny6(v6(0x2001, 0x10, 0, 0, 0, 0, 0, 0),  28, "deprecated ORCHID (2001:10::/28)"),
    pass6(v6(0x2001, 0x20, 0, 0, 0, 0, 0, 0),  28), // ORCHIDv2
    pass6(v6(0x2001, 0x30, 0, 0, 0, 0, 0, 0),  28), // drone remote ID entity tags
    // The rest of 2001::/23, including the PCP, TURN and SRP anycast addresses 2001:1::1-3:
    // like their IPv4 twins in 192.0.0.0/24 they are answered by on-site infrastructure.
    deny6(TEREDO,                              23, "IETF protocol assignments (2001::/23)"),
    deny6(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation (2001:db8::/32)"),
    pass6(SIX_TO_FOUR, 16),
    deny6(v6(0x3fff, 0, 0, 0, 0, 0, 0, 0),     20, "documentation (3fff::/20)"),
    pass6(v6(0x2000, 0, 0, 0, 0, 0, 0, 0),      3),
    deny6(v6(0x5f00, 0, 0, 0, 0, 0, 0, 0),     16, "SRv6 segment identifiers (5f00::/16)"),
    deny6(v6(0xfc00, 0, 0, 0, 0, 0, 0, 0),      7, "unique local (fc00::/7)"),
    deny6(v6(0xfe80, 0, 0, 0, 0, 0, 0, 0),     10, "link-local (fe80::/10)"),
    deny6(v6(0xfec0, 0, 0, 0, 0, 0, 0, 0),     10, "site-local (deprecated, fec0::/10)"),
    deny6(v6(0xff00, 0, 0, 0, 0, 0, 0, 0),      8, "multicast (ff00::/8)"),
    deny6(0,                                    0, "reserved (outside global unicast 2000::/3)"),
];

fn builtin_v4(addr: Ipv4Addr) -> Option<&'static str> {
    let bits = addr.to_bits();
    let rule = V4_RULES.iter().find(|r| in_v4(r.net, r.len, bits))?;
    match rule.verdict {
        Verdict::Deny(reason) => Some(reason),
        Verdict::Pass => None,
    }
}

fn builtin_v6(addr: Ipv6Addr) -> Option<&'static str> {
    let bits = addr.to_bits();
    let rule = V6_RULES.iter().find(|r| in_v6(r.net, r.len, bits))?;
    match rule.verdict {
        Verdict::Deny(reason) => Some(reason),
        Verdict::Pass => None,
    }
}

/// An IPv4 address carried inside an IPv6 one, and the name of the form that carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Embedded {
    form: &'static str,
    v4: Ipv4Addr,
}

/// Every IPv4 address that traffic to `addr` may end up delivered to. Teredo carries two, so
/// the answer has room for both: the client, where the data goes, first, then its server, to
/// which a peer sends the bubbles that open the client's NAT.
fn embedded_v4(addr: Ipv6Addr) -> [Option<Embedded>; 2] {
    let bits = addr.to_bits();
    // Truncating casts pick out the bits that RFC 4291, 6052, 3056 and 4380 place the IPv4
    // address in.
    let low32 = Ipv4Addr::from_bits(bits as u32);
    let one = |form| [Some(Embedded { form, v4: low32 }), None];
    if bits >> 32 == 0xffff {
        one("IPv4-mapped")
    } else if bits >> 32 == 0 && bits > 1 {
        // :: and ::1 are the IPv6 unspecified and loopback addresses, not IPv4-compatible ones.
        one("IPv4-compatible")
    } else if in_v6(NAT64, 96, bits) {
        one("NAT64")
    } else if in_v6(NAT64_LOCAL, 48, bits) {
        // RFC 6052 allows other layouts under a local-use prefix; the /96 one, with the IPv4
        // address last, is the one deployed and the only one we can read without knowing the
        // network's choice.
        one("NAT64 local-use")
    } else if in_v6(SIX_TO_FOUR, 16, bits) {
        let v4 = Ipv4Addr::from_bits((bits >> 80) as u32);
        [Some(Embedded { form: "6to4", v4 }), None]
    } else if in_v6(TEREDO, 32, bits) {
        // The client address is stored inverted so NATs do not rewrite it.
        let client = Ipv4Addr::from_bits(!(bits as u32));
        let server = Ipv4Addr::from_bits((bits >> 64) as u32);
        [
            Some(Embedded {
                form: "Teredo client",
                v4: client,
            }),
            Some(Embedded {
                form: "Teredo server",
                v4: server,
            }),
        ]
    } else {
        [None, None]
    }
}

// ---------------------------------------------------------------------------------------------
// AddressFilter
// ---------------------------------------------------------------------------------------------

type Predicate = dyn Fn(IpAddr) -> bool + Send + Sync;

#[derive(Clone, Default)]
struct Rules {
    non_public: bool,
    allow: Vec<IpPrefix>,
    deny: Vec<IpPrefix>,
    // `Arc` rather than `Box` so that `Rules` is `Clone` and `Arc::make_mut` can copy it when a
    // shared filter is extended.
    predicates: Vec<Arc<Predicate>>,
    /// The network's NAT64 prefixes besides the well-known one (configured or discovered): an
    /// address under one is judged by the IPv4 address it stands for.
    nat64: Vec<Nat64Prefix>,
}

/// Decides which destination addresses may be connected to.
///
/// [`AddressFilter::deny_non_public`] is the ready SSRF policy; [`AddressFilter::allow_all`]
/// (the default) refuses nothing until rules are added. Rules are added by chaining:
///
/// ```
/// use std::net::IpAddr;
/// use connect_by_list::AddressFilter;
///
/// let filter = AddressFilter::deny_non_public()
///     .allow("10.1.2.3/32".parse()?)            // one internal service is fine
///     .deny("198.41.0.0/16".parse()?)           // and one public range is not
///     .deny_if(|ip: IpAddr| ip == IpAddr::from([1, 1, 1, 1]));
///
/// assert!(filter.check("10.1.2.3".parse()?).is_ok());
/// assert!(filter.check("8.8.8.8".parse()?).is_ok());
///
/// let denied = filter.check("169.254.169.254".parse()?).unwrap_err();
/// assert_eq!(
///     denied.to_string(),
///     "169.254.169.254 is denied: cloud metadata / link-local (169.254.0.0/16)"
/// );
/// let denied = filter.check("::ffff:127.0.0.1".parse()?).unwrap_err();
/// assert_eq!(denied.reason(), "IPv4-mapped 127.0.0.1: loopback");
/// assert_eq!(filter.check("1.1.1.1".parse()?).unwrap_err().reason(), "custom rule");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # How an address is judged
///
/// For the address as given, in this order:
///
/// 1. an [`allow`](AddressFilter::allow) prefix that contains it accepts it, ending the check;
/// 2. a [`deny`](AddressFilter::deny) prefix that contains it refuses it;
/// 3. a [`deny_if`](AddressFilter::deny_if) predicate that returns `true` refuses it;
/// 4. for an IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:0:0/96`, IPv4-compatible
///    `::/96`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo `2001::/32`),
///    each carried IPv4 address is judged by steps 1–5 as if it had been given, and a refusal
///    is reported with the form that hid it: `"6to4 127.0.0.1: loopback"`;
/// 5. with [`deny_non_public`](AddressFilter::deny_non_public), the built-in ranges.
///
/// So allow and deny prefixes see both the IPv6 form and the IPv4 address inside it: allowing
/// `10.1.2.3/32` also allows `::ffff:10.1.2.3`, denying `10.0.0.0/8` also denies
/// `64:ff9b::a00:1`, and predicates are called with both. An allow prefix that contains the
/// IPv6 form itself (say `64:ff9b::/96`) accepts it without looking inside.
///
/// The filter knows addresses, not hosts: this machine's own public addresses, or a public
/// address that a firewall routes inward, look public. Add them with
/// [`deny`](AddressFilter::deny) if services listen there.
///
/// Cloning is cheap (the rules sit behind an [`Arc`]) and the filter is `Send + Sync`.
#[derive(Clone, Default)]
pub struct AddressFilter {
    rules: Arc<Rules>,
}

impl AddressFilter {
    /// A filter that allows every address until rules are added. Same as `Default`.
    ///
    /// ```
    /// use connect_by_list::AddressFilter;
    ///
    /// assert!(AddressFilter::allow_all().check("127.0.0.1".parse()?).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allow_all() -> Self {
        AddressFilter::default()
    }

    /// The ready SSRF policy: deny everything that is not a globally reachable unicast address.
    ///
    /// Refused, with the [`reason`](Denied::reason) given:
    ///
    /// | range | reason |
    /// |---|---|
    /// | `0.0.0.0/32` | unspecified (0.0.0.0) |
    /// | `0.0.0.0/8` | this network (0.0.0.0/8) |
    /// | `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16` | private (RFC 1918) |
    /// | `100.64.0.0/10` | shared address space / carrier-grade NAT (100.64.0.0/10) |
    /// | `127.0.0.0/8` | loopback |
    /// | `169.254.0.0/16` | cloud metadata / link-local (169.254.0.0/16) |
    /// | `192.0.0.0/24` | IETF protocol assignments (192.0.0.0/24) |
    /// | `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24` | documentation (…) |
    /// | `192.88.99.0/24` | deprecated 6to4 relay anycast (192.88.99.0/24) |
    /// | `198.18.0.0/15` | benchmarking (198.18.0.0/15) |
    /// | `224.0.0.0/4` | multicast (224.0.0.0/4) |
    /// | `255.255.255.255/32` | limited broadcast (255.255.255.255) |
    /// | `240.0.0.0/4` | reserved (240.0.0.0/4) |
    /// | `::/128` | unspecified (::) |
    /// | `::1/128` | loopback |
    /// | `::/96` | IPv4-compatible (deprecated, ::/96), after its IPv4 address is checked |
    /// | `100::/64` | discard-only (100::/64) |
    /// | `2001:2::/48` | benchmarking (2001:2::/48) |
    /// | `2001:10::/28` | deprecated ORCHID (2001:10::/28) |
    /// | `2001::/23` except Teredo and the global entries below | IETF protocol assignments (2001::/23) |
    /// | `2001:db8::/32`, `3fff::/20` | documentation (…) |
    /// | `5f00::/16` | SRv6 segment identifiers (5f00::/16) |
    /// | `fc00::/7` | unique local (fc00::/7) |
    /// | `fe80::/10` | link-local (fe80::/10) |
    /// | `fec0::/10` | site-local (deprecated, fec0::/10) |
    /// | `ff00::/8` | multicast (ff00::/8) |
    /// | anything else outside `2000::/3` | reserved (outside global unicast 2000::/3) |
    ///
    /// IPv4 addresses inside IPv6 ones are checked by the IPv4 rules (see [`AddressFilter`]):
    /// `::ffff:127.0.0.1` is refused as `"IPv4-mapped 127.0.0.1: loopback"`, and a Teredo
    /// address is refused if either its client or its server is.
    ///
    /// Allowed within `2001::/23`, as the IANA registry marks them globally reachable: AMT
    /// `2001:3::/32`, AS112 `2001:4:112::/48`, ORCHIDv2 `2001:20::/28`, drone entity tags
    /// `2001:30::/28`. Not allowed, although the registry marks them global: the PCP, TURN and
    /// SRP anycast addresses `192.0.0.9`, `192.0.0.10` and `2001:1::1`–`2001:1::3`, which are
    /// answered by whatever instance is nearest, by design a box on the local network; add
    /// them with [`allow`](AddressFilter::allow) if needed.
    ///
    /// ```
    /// use connect_by_list::AddressFilter;
    ///
    /// let filter = AddressFilter::deny_non_public();
    /// assert!(filter.check("8.8.8.8".parse()?).is_ok());
    /// assert!(filter.check("2606:4700:4700::1111".parse()?).is_ok());
    /// assert_eq!(filter.check("10.0.0.1".parse()?).unwrap_err().reason(), "private (RFC 1918)");
    /// assert_eq!(
    ///     filter.check("64:ff9b::a9fe:a9fe".parse()?).unwrap_err().reason(),
    ///     "NAT64 169.254.169.254: cloud metadata / link-local (169.254.0.0/16)"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deny_non_public() -> Self {
        AddressFilter {
            rules: Arc::new(Rules {
                non_public: true,
                ..Rules::default()
            }),
        }
    }

    /// Also refuse every address in `prefix` (and IPv4 addresses carried in IPv6 forms).
    ///
    /// ```
    /// use connect_by_list::AddressFilter;
    ///
    /// let filter = AddressFilter::allow_all().deny("93.184.0.0/16".parse()?);
    /// let denied = filter.check("93.184.1.1".parse()?).unwrap_err();
    /// assert_eq!(denied.reason(), "denied prefix 93.184.0.0/16");
    /// assert!(filter.check("::ffff:93.184.1.1".parse()?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deny(mut self, prefix: IpPrefix) -> Self {
        Arc::make_mut(&mut self.rules).deny.push(prefix);
        self
    }

    /// Accept every address in `prefix` whatever else says: an exception that wins over every
    /// deny, built-in or added, for example one internal service.
    ///
    /// Matched against the address as given and against IPv4 addresses carried in IPv6 forms
    /// (see [`AddressFilter`]).
    ///
    /// ```
    /// use connect_by_list::AddressFilter;
    ///
    /// let filter = AddressFilter::deny_non_public().allow("10.1.2.3/32".parse()?);
    /// assert!(filter.check("10.1.2.3".parse()?).is_ok());
    /// assert!(filter.check("::ffff:10.1.2.3".parse()?).is_ok());
    /// assert!(filter.check("10.1.2.4".parse()?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allow(mut self, prefix: IpPrefix) -> Self {
        Arc::make_mut(&mut self.rules).allow.push(prefix);
        self
    }

    /// Also refuse every address for which `f` returns `true`; the reason is `"custom rule"`.
    ///
    /// `f` is called with the address as given and with each IPv4 address carried in an IPv6
    /// form, so it sees `127.0.0.1` for `::ffff:127.0.0.1`. It should be quick and must not
    /// panic: it runs inside every connect.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use connect_by_list::AddressFilter;
    ///
    /// let filter = AddressFilter::allow_all().deny_if(|ip: IpAddr| ip.is_ipv6());
    /// assert!(filter.check("8.8.8.8".parse()?).is_ok());
    /// assert_eq!(filter.check("2001:4860::1".parse()?).unwrap_err().reason(), "custom rule");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deny_if(mut self, f: impl Fn(IpAddr) -> bool + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.rules).predicates.push(Arc::new(f));
        self
    }

    /// `Ok` if `addr` may be connected to, else why not.
    ///
    /// ```
    /// use connect_by_list::AddressFilter;
    ///
    /// let denied = AddressFilter::deny_non_public().check("127.0.0.1".parse()?).unwrap_err();
    /// assert_eq!(denied.to_string(), "127.0.0.1 is denied: loopback");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, addr: IpAddr) -> Result<(), Denied> {
        match self.refusal(addr) {
            None => Ok(()),
            Some(reason) => Err(Denied { addr, reason }),
        }
    }

    /// Judges a URL's host as a URL parser gives it (`url::Url::host_str`, `http::Uri::host`):
    /// an IP literal (`127.0.0.1`, `[::ffff:169.254.169.254]`, brackets optional) is checked
    /// like a resolved address, with the same reason; a name passes, since the connector's
    /// resolver checks every address it resolves to. For clients that never ask a resolver
    /// about literals, as reqwest does not.
    ///
    /// Pass the host a WHATWG URL parser produced: it writes every IPv4 form
    /// (`2130706433`, `0x7f.1`) as dotted decimal, so none passes here as a name.
    ///
    /// ```
    /// use connect_by_list::AddressFilter;
    ///
    /// let filter = AddressFilter::deny_non_public();
    /// let denied = filter.check_host("[::ffff:169.254.169.254]").unwrap_err();
    /// assert_eq!(
    ///     denied.to_string(),
    ///     "::ffff:169.254.169.254 is denied: \
    ///      IPv4-mapped 169.254.169.254: cloud metadata / link-local (169.254.0.0/16)"
    /// );
    /// assert!(filter.check_host("example.com").is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_host(&self, host: &str) -> Result<(), Denied> {
        let literal = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host);
        match literal.parse::<IpAddr>() {
            Ok(addr) => self.check(addr),
            Err(_) => Ok(()),
        }
    }

    /// Why `addr` is refused, or `None` if it is not. Recurses once, for carried IPv4 addresses
    /// (which carry nothing further).
    fn refusal(&self, addr: IpAddr) -> Option<Cow<'static, str>> {
        let rules = &*self.rules;
        if rules.allow.iter().any(|p| p.contains(addr)) {
            return None;
        }
        if let Some(prefix) = rules.deny.iter().find(|p| p.contains(addr)) {
            return Some(Cow::Owned(format!("denied prefix {prefix}")));
        }
        if rules.predicates.iter().any(|f| f(addr)) {
            return Some(Cow::Borrowed("custom rule"));
        }
        if let IpAddr::V6(v6) = addr {
            // Before the built-in IPv6 ranges, and with or without them: added rules about IPv4
            // addresses must not be dodged by writing the address in an IPv6 form.
            for Embedded { form, v4 } in embedded_v4(v6).into_iter().flatten() {
                if let Some(reason) = self.refusal(IpAddr::V4(v4)) {
                    return Some(Cow::Owned(format!("{form} {v4}: {reason}")));
                }
            }
            if let Some((prefix, v4)) = rules
                .nat64
                .iter()
                .find_map(|prefix| Some((prefix, prefix.extract(v6)?)))
            {
                // The network's own translator: the IPv4 address it reaches is what counts,
                // whatever range the prefix itself sits in.
                return self
                    .refusal(IpAddr::V4(v4))
                    .map(|reason| Cow::Owned(format!("NAT64 {prefix} {v4}: {reason}")));
            }
        }
        if !rules.non_public {
            return None;
        }
        let reason = match addr {
            IpAddr::V4(v4) => builtin_v4(v4),
            IpAddr::V6(v6) => builtin_v6(v6),
        };
        reason.map(Cow::Borrowed)
    }
}

impl AddressFilter {
    /// This filter, also judging addresses under these NAT64 prefixes by the IPv4 address they
    /// stand for (as it does for `64:ff9b::/96`). A cheap clone when it knows them all already.
    pub(crate) fn knowing_nat64(&self, prefixes: &[Nat64Prefix]) -> AddressFilter {
        let mut filter = self.clone();
        for prefix in prefixes {
            if *prefix != Nat64Prefix::WELL_KNOWN && !filter.rules.nat64.contains(prefix) {
                Arc::make_mut(&mut filter.rules).nat64.push(*prefix);
            }
        }
        filter
    }
}

impl fmt::Debug for AddressFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// A prefix shown as `10.0.0.0/8` rather than in the derived struct form, to keep it short.
        struct Shown<'a>(&'a IpPrefix);
        impl fmt::Debug for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self.0, f)
            }
        }
        struct Prefixes<'a>(&'a [IpPrefix]);
        impl fmt::Debug for Prefixes<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.iter().map(Shown)).finish()
            }
        }
        let rules = &*self.rules;
        f.debug_struct("AddressFilter")
            .field("deny_non_public", &rules.non_public)
            .field("allow", &Prefixes(&rules.allow))
            .field("deny", &Prefixes(&rules.deny))
            // Closures have no useful Debug; how many there are is what can be shown.
            .field("custom_rules", &rules.predicates.len())
            .finish()
    }
}

/// Why an address was refused: the address as given, and a reason such as `"loopback"` or
/// `"IPv4-mapped 127.0.0.1: loopback"`.
///
/// ```
/// use connect_by_list::AddressFilter;
///
/// let denied = AddressFilter::deny_non_public().check("::1".parse()?).unwrap_err();
/// assert_eq!(denied.addr(), "::1".parse::<std::net::IpAddr>()?);
/// assert_eq!(denied.reason(), "loopback");
/// assert_eq!(denied.to_string(), "::1 is denied: loopback");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    addr: IpAddr,
    reason: Cow<'static, str>,
}

impl Denied {
    /// The refused address, as it was checked (not the IPv4 address found inside it).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Why it was refused, e.g. `"private (RFC 1918)"`, `"denied prefix 203.0.113.0/24"`,
    /// `"custom rule"`, or for a carried IPv4 address `"6to4 10.0.0.1: private (RFC 1918)"`.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is denied: {}", self.addr, self.reason)
    }
}

impl Error for Denied {}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests;
