//! Ordering of candidate destinations by RFC 6724, "Default Address
//! Selection for Internet Protocol Version 6 (IPv6)".
//!
//! The connector races addresses in the order this module gives them, so
//! the order is what decides which family and which path is tried first.
//! The rules follow RFC 6724 §6 with the deviations that Go's resolver
//! made after field experience (see [`Rank`]).
//!
//! What the rules need to know about the host (which source address the
//! kernel would use for each destination) comes from the route probe in
//! `local`; this module is pure and tested against the worked examples of
//! RFC 6724 §10.

use std::cmp::{Ordering, Reverse};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::prefix::{in_v6, mask_v6};

// RFC 6724 §3.1 reuses the multicast scope values of RFC 4291 §2.7, so a
// multicast address's scope nibble is its scope with no translation.
const SCOPE_LINK_LOCAL: u8 = 0x2;
const SCOPE_SITE_LOCAL: u8 = 0x5;
const SCOPE_GLOBAL: u8 = 0xe;

/// One row of an RFC 6724 §2.1 policy table.
///
/// IPv4 addresses are looked up in their IPv4-mapped form (RFC 6724 §2.1
/// and §6), so a row meant for IPv4 `10.0.0.0/8` is written
/// `::ffff:10.0.0.0/104`.
///
/// ```
/// use connect_by_list::{Policy, PolicyTable};
///
/// // Prefer a private IPv4 network (10.0.0.0/8) over everything else.
/// let mut rows = PolicyTable::rfc6724().rows().to_vec();
/// rows.push(Policy {
///     prefix: "::ffff:10.0.0.0".parse().unwrap(),
///     prefix_len: 104,
///     precedence: 60,
///     label: 4,
/// });
/// let table = PolicyTable::new(rows)?;
/// assert_eq!(table.lookup("10.1.2.3".parse().unwrap()).precedence, 60);
/// # Ok::<(), connect_by_list::InvalidPolicy>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    /// The prefix. Bits past `prefix_len` must be zero.
    pub prefix: Ipv6Addr,
    /// Length of the prefix in bits, at most 128.
    pub prefix_len: u8,
    /// `Precedence(A)`: destinations with a higher precedence are tried
    /// first (RFC 6724 §6 rule 6).
    pub precedence: u8,
    /// `Label(A)`: a source and a destination with the same label are
    /// preferred together (RFC 6724 §5 rule 6, §6 rule 5).
    pub label: u8,
}

impl Policy {
    const fn row(prefix: Ipv6Addr, prefix_len: u8, precedence: u8, label: u8) -> Self {
        Self {
            prefix,
            prefix_len,
            precedence,
            label,
        }
    }

    fn contains(&self, addr: Ipv6Addr) -> bool {
        in_v6(u128::from(self.prefix), self.prefix_len, u128::from(addr))
    }
}

impl fmt::Display for Policy {
    /// Formats the row the way gai.conf and RFC 6724 tables read:
    /// `prefix/len precedence P label L`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} precedence {} label {}",
            self.prefix, self.prefix_len, self.precedence, self.label
        )
    }
}

/// The row every table has, added by [`PolicyTable::new`] when missing,
/// so that every address matches some row.
const DEFAULT_ROW: Policy = Policy::row(Ipv6Addr::UNSPECIFIED, 0, 40, 1);

const fn v6(a: u16, b: u16) -> Ipv6Addr {
    Ipv6Addr::new(a, b, 0, 0, 0, 0, 0, 0)
}

const MAPPED_V4: Ipv6Addr = Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0);

/// RFC 6724 §2.1.
const RFC6724_ROWS: [Policy; 9] = [
    Policy::row(Ipv6Addr::LOCALHOST, 128, 50, 0),
    DEFAULT_ROW,
    Policy::row(MAPPED_V4, 96, 35, 4),
    Policy::row(v6(0x2002, 0), 16, 30, 2),
    Policy::row(v6(0x2001, 0), 32, 5, 5),
    Policy::row(v6(0xfc00, 0), 7, 3, 13),
    Policy::row(Ipv6Addr::UNSPECIFIED, 96, 1, 3),
    Policy::row(v6(0xfec0, 0), 10, 1, 11),
    Policy::row(v6(0x3ffe, 0), 16, 1, 12),
];

/// RFC 6724 §10.3: the default table with IPv4 raised above `::/0`.
const PREFER_IPV4_ROWS: [Policy; 9] = [
    Policy::row(Ipv6Addr::LOCALHOST, 128, 50, 0),
    DEFAULT_ROW,
    Policy::row(MAPPED_V4, 96, 100, 4),
    Policy::row(v6(0x2002, 0), 16, 30, 2),
    Policy::row(v6(0x2001, 0), 32, 5, 5),
    Policy::row(v6(0xfc00, 0), 7, 3, 13),
    Policy::row(Ipv6Addr::UNSPECIFIED, 96, 1, 3),
    Policy::row(v6(0xfec0, 0), 10, 1, 11),
    Policy::row(v6(0x3ffe, 0), 16, 1, 12),
];

/// draft-ietf-6man-rfc6724-update-21, "Policy Table Update", without the
/// per-site known-local rows (those depend on the host's addresses).
const RFC6724_UPDATE_ROWS: [Policy; 9] = [
    Policy::row(Ipv6Addr::LOCALHOST, 128, 50, 0),
    DEFAULT_ROW,
    Policy::row(MAPPED_V4, 96, 20, 4),
    Policy::row(v6(0x2002, 0), 16, 5, 2),
    Policy::row(v6(0x2001, 0), 32, 5, 5),
    Policy::row(v6(0xfc00, 0), 7, 30, 13),
    Policy::row(Ipv6Addr::UNSPECIFIED, 96, 1, 3),
    Policy::row(v6(0xfec0, 0), 10, 1, 11),
    Policy::row(v6(0x3ffe, 0), 16, 1, 12),
];

/// RFC 6724 §2.1 policy table: (prefix, precedence, label) rows, longest
/// matching prefix wins.
///
/// The table always has a `::/0` row, so every address matches a row.
///
/// ```
/// use connect_by_list::{Connector, PolicyTable};
///
/// // IPv4 before IPv6, as `precedence ::ffff:0:0/96 100` in gai.conf does:
/// let connector = Connector::builder().policy_table(PolicyTable::prefer_ipv4()).build()?;
/// let table = PolicyTable::rfc6724();
/// assert!(
///     table.lookup("2001:db8::1".parse().unwrap()).precedence
///         > table.lookup("192.0.2.1".parse().unwrap()).precedence
/// );
/// # drop(connector);
/// # Ok::<(), connect_by_list::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyTable {
    /// Longest prefix first, then by prefix, so that [`Self::lookup`] can
    /// stop at the first match and equal tables compare equal whatever
    /// order their rows were given in.
    rows: Vec<Policy>,
}

impl PolicyTable {
    /// The default policy table of RFC 6724 §2.1, with IPv4 as
    /// `::ffff:0:0/96` (precedence 35, label 4): global IPv6 is preferred
    /// over IPv4, and IPv4 over ULAs (`fc00::/7`), 6to4 and Teredo.
    pub fn rfc6724() -> Self {
        Self::from_valid_rows(&RFC6724_ROWS)
    }

    /// The table proposed by draft-ietf-6man-rfc6724-update, revision 21
    /// (June 2025), section "Policy Table Update".
    ///
    /// Relative to [`Self::rfc6724`] it raises ULAs (`fc00::/7`) to
    /// precedence 30, above IPv4 (`::ffff:0:0/96`, lowered to 20), and
    /// lowers 6to4 (`2002::/16`) to 5, level with Teredo.
    ///
    /// The draft also has hosts insert a row for each "known-local" ULA
    /// /48 inside `fd00::/8` (precedence 45, label 14), learnt from the
    /// host's own addresses and router advertisements. Those rows are not
    /// here; add them with [`Self::new`], starting from this table's
    /// [`rows`](Self::rows).
    pub fn rfc6724_update() -> Self {
        Self::from_valid_rows(&RFC6724_UPDATE_ROWS)
    }

    /// The change RFC 6724 §10.3 describes to prefer IPv4: the default
    /// table with `::ffff:0:0/96` at precedence 100, above every IPv6 row
    /// (the change commonly made with `precedence ::ffff:0:0/96 100` in
    /// glibc's gai.conf).
    pub fn prefer_ipv4() -> Self {
        Self::from_valid_rows(&PREFER_IPV4_ROWS)
    }

    /// A table of the given rows.
    ///
    /// When no row has a prefix length of 0, the RFC 6724 default row
    /// `::/0` with precedence 40 and label 1 is added, so that every
    /// address still matches a row.
    ///
    /// # Errors
    ///
    /// [`InvalidPolicy`], naming the first bad row, when a row's
    /// `prefix_len` is over 128, when its prefix has bits set past
    /// `prefix_len`, or when two rows have the same prefix and length.
    pub fn new(rows: impl IntoIterator<Item = Policy>) -> Result<Self, InvalidPolicy> {
        let mut kept = Vec::new();
        let mut seen: HashMap<(Ipv6Addr, u8), usize> = HashMap::new();
        for (index, row) in rows.into_iter().enumerate() {
            let problem = if row.prefix_len > 128 {
                Some(Problem::PrefixTooLong)
            } else if u128::from(row.prefix) & !mask_v6(row.prefix_len) != 0 {
                Some(Problem::HostBitsSet)
            } else {
                seen.insert((row.prefix, row.prefix_len), index)
                    .map(|first| Problem::Duplicate { first })
            };
            if let Some(problem) = problem {
                return Err(InvalidPolicy {
                    index,
                    row,
                    problem,
                });
            }
            kept.push(row);
        }
        if !kept.iter().any(|row| row.prefix_len == 0) {
            kept.push(DEFAULT_ROW);
        }
        Ok(Self::from_valid_rows(&kept))
    }

    fn from_valid_rows(rows: &[Policy]) -> Self {
        let mut rows = rows.to_vec();
        rows.sort_by(|a, b| {
            b.prefix_len
                .cmp(&a.prefix_len)
                .then_with(|| a.prefix.cmp(&b.prefix))
        });
        Self { rows }
    }

    /// The rows, longest prefix first (the order [`Self::lookup`] tries
    /// them in), then by prefix. This includes the `::/0` row that
    /// [`Self::new`] may have added.
    pub fn rows(&self) -> &[Policy] {
        &self.rows
    }

    /// The row with the longest prefix that contains `addr`.
    ///
    /// An IPv4 address is looked up as its IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`), as RFC 6724 §6 requires; an IPv4-mapped address
    /// given as IPv6 therefore gets the same row as its IPv4 form.
    pub fn lookup(&self, addr: IpAddr) -> Policy {
        let addr = match addr {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        self.rows
            .iter()
            .find(|row| row.contains(addr))
            .copied()
            .unwrap_or(DEFAULT_ROW)
    }
}

impl Default for PolicyTable {
    /// [`PolicyTable::rfc6724`].
    fn default() -> Self {
        Self::rfc6724()
    }
}

impl PolicyTable {
    /// [`PolicyTable::rfc6724`], built once and shared: every connector with the default
    /// ranking, and every connect that ranks nothing but local sources, points to this one.
    pub(crate) fn shared_default() -> std::sync::Arc<PolicyTable> {
        static TABLE: std::sync::OnceLock<std::sync::Arc<PolicyTable>> = std::sync::OnceLock::new();
        TABLE.get_or_init(Default::default).clone()
    }
}

/// A row that [`PolicyTable::new`] refused.
///
/// Its [`Display`](fmt::Display) names the row (its position among the
/// rows given, counting from 0, and its contents) and what is wrong with
/// it.
///
/// ```
/// use connect_by_list::{Policy, PolicyTable};
///
/// let too_long = Policy { prefix: "::".parse().unwrap(), prefix_len: 129, precedence: 1, label: 1 };
/// let error = PolicyTable::new([too_long]).unwrap_err();
/// println!("{error}"); // names row 0 and what is wrong with it
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidPolicy {
    index: usize,
    row: Policy,
    problem: Problem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    PrefixTooLong,
    HostBitsSet,
    Duplicate { first: usize },
}

impl fmt::Display for InvalidPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy row {} ({}): ", self.index, self.row)?;
        match self.problem {
            Problem::PrefixTooLong => {
                write!(f, "prefix length {} is over 128 bits", self.row.prefix_len)
            }
            Problem::HostBitsSet => {
                let masked =
                    Ipv6Addr::from(u128::from(self.row.prefix) & mask_v6(self.row.prefix_len));
                write!(
                    f,
                    "the prefix has bits set past /{len} (did you mean {masked}/{len}?)",
                    len = self.row.prefix_len
                )
            }
            Problem::Duplicate { first } => {
                write!(f, "the same prefix is already in row {first}")
            }
        }
    }
}

impl std::error::Error for InvalidPolicy {}

/// A destination with what ranking needs to know about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Destination {
    /// The destination address.
    pub(crate) addr: IpAddr,
    /// The source address the host would use to reach `addr`
    /// (`Source(D)` in RFC 6724 §6), or `None` when it has no route there:
    /// such a destination is unusable and goes last (rule 1).
    pub(crate) source: Option<IpAddr>,
}

/// Scope of an address, per RFC 6724 §3.1 (IPv6) and §3.2 (IPv4).
///
/// IPv4 loopback (`127/8`) and link-local (`169.254/16`) addresses are
/// link-local (2); every other IPv4 address, private ones included, is
/// global (0xe). An IPv6 multicast address has the scope in its scope
/// field; `fe80::/10` and the loopback `::1` are link-local (RFC 4007 §4
/// treats loopback as link-local); deprecated `fec0::/10` is
/// site-local (5); everything else, ULAs included, is global. An
/// IPv4-mapped IPv6 address has its IPv4 address's scope.
pub(crate) fn scope(addr: IpAddr) -> u8 {
    match addr.to_canonical() {
        IpAddr::V4(v4) => {
            if v4.is_loopback() || v4.is_link_local() {
                SCOPE_LINK_LOCAL
            } else {
                SCOPE_GLOBAL
            }
        }
        IpAddr::V6(v6) => {
            let [first, second, ..] = v6.octets();
            if first == 0xff {
                second & 0x0f
            } else if v6.is_loopback() || v6.is_unicast_link_local() {
                SCOPE_LINK_LOCAL
            } else if first == 0xfe && second & 0xc0 == 0xc0 {
                SCOPE_SITE_LOCAL
            } else {
                SCOPE_GLOBAL
            }
        }
    }
}

/// `CommonPrefixLen(S, D)` of RFC 6724 §2.2: the number of leading bits
/// `source` and `dest` share, counting no further than the source's
/// prefix. 0 across families.
fn common_prefix_len(source: IpAddr, dest: IpAddr) -> u8 {
    match (source.to_canonical(), dest.to_canonical()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // The IPv4 prefix length of the source is not known here; the
            // whole address stands in for it, as Go does.
            (u32::from(s) ^ u32::from(d)).leading_zeros() as u8
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            // §2.2 stops at the end of the source's prefix, i.e. before the
            // interface identifier. The socket API does not tell the prefix
            // length, but IPv6 unicast prefixes are /64 in practice (RFC 4291
            // §2.5.1 fixes 64-bit interface identifiers), so stop at 64 as Go
            // does. Counting further would rank destinations by how their
            // interface identifiers (random, for privacy addresses) happen to
            // resemble ours, which says nothing about the path.
            (u128::from(s) ^ u128::from(d)).leading_zeros().min(64) as u8
        }
        _ => 0,
    }
}

/// What rules 1 to 8 of RFC 6724 §6 look at, as one key whose derived
/// (lexicographic) order is their order: each rule compares one property
/// of DA with the same property of DB, so each is a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RankHead {
    /// Rule 1: avoid unusable destinations.
    unusable: bool,
    /// Rule 2: prefer matching scope.
    scope_mismatch: bool,
    // Rule 3 (avoid deprecated sources) and rule 4 (prefer home
    // addresses) would come here; the sockets API tells neither, so they
    // never decide.
    /// Rule 5: prefer matching label.
    label_mismatch: bool,
    /// Rule 6: prefer higher precedence.
    precedence: Reverse<u8>,
    // Rule 7 (prefer native transport) would come here. Whether a route
    // runs through a tunnel is invisible from a socket; the policy table
    // already ranks the transition prefixes (6to4 `2002::/16`, Teredo
    // `2001::/32`) low and gives them their own labels, which covers the
    // cases the rule was written for.
    /// Rule 8: prefer smaller scope.
    scope: u8,
}

/// The RFC 6724 §6 ranking of one destination, rules 1 to 9: the lesser
/// rank is tried first. Rule 10 (keep the original order) is left to the
/// stable sort in [`sort_by_rfc6724`].
///
/// - Rule 1, avoid unusable destinations: one without a source goes last.
/// - Rule 2, prefer matching scope: `Scope(D) = Scope(Source(D))`.
/// - Rule 3, avoid deprecated addresses, and rule 4, prefer home
///   addresses: skipped, the sockets API does not say whether a source is
///   deprecated or a Mobile IPv6 home address.
/// - Rule 5, prefer matching label: `Label(Source(D)) = Label(D)`.
/// - Rule 6, prefer higher precedence.
/// - Rule 7, prefer native transport: skipped; tunnels cannot be seen from
///   a socket, and the policy table's low precedence and distinct labels
///   for 6to4 and Teredo stand in for it.
/// - Rule 8, prefer smaller scope.
/// - Rule 9, longest matching prefix: only when both destinations are IPv6,
///   with the common prefix counted to 64 bits at most (see below).
///
/// Rule 9 deviates from the RFC as Go's resolver does (golang/go#13283,
/// golang/go#18518). Applied to IPv4 it reorders a DNS round-robin set by
/// how many leading bits each address happens to share with the host's
/// address (for a host in 10/8, a server in 11/8 beats one in 54/8), which
/// for IPv4 says nothing about distance, and it gives every host of a
/// network the same favourite server, defeating the round robin. Between
/// IPv6 addresses, whose prefixes follow the routing hierarchy far better,
/// it is kept.
///
/// IPv4 addresses, and IPv4-mapped IPv6 addresses (treated as their IPv4
/// address), are looked up in `table` as `::ffff:a.b.c.d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rank {
    head: RankHead,
    /// Rule 9: `CommonPrefixLen(Source(D), D)`, present only when D is
    /// IPv6 and has a source, the only case in which the rule applies.
    common_prefix: Option<u8>,
}

impl Rank {
    fn of(dest: &Destination, table: &PolicyTable) -> Self {
        let addr = dest.addr.to_canonical();
        let policy = table.lookup(addr);
        let addr_scope = scope(addr);
        match dest.source.map(|source| source.to_canonical()) {
            // Rules 2, 5 and 9 compare D with Source(D) and cannot be
            // evaluated without one; rule 1 already ranks these last, and
            // among themselves rules 6 and 8 still apply.
            None => Self {
                head: RankHead {
                    unusable: true,
                    scope_mismatch: false,
                    label_mismatch: false,
                    precedence: Reverse(policy.precedence),
                    scope: addr_scope,
                },
                common_prefix: None,
            },
            Some(source) => Self {
                head: RankHead {
                    unusable: false,
                    scope_mismatch: scope(source) != addr_scope,
                    label_mismatch: table.lookup(source).label != policy.label,
                    precedence: Reverse(policy.precedence),
                    scope: addr_scope,
                },
                common_prefix: addr.is_ipv6().then(|| common_prefix_len(source, addr)),
            },
        }
    }

    #[cfg(test)]
    fn compare(&self, other: &Self) -> Ordering {
        self.head
            .cmp(&other.head)
            .then_with(|| match (self.common_prefix, other.common_prefix) {
                (Some(mine), Some(theirs)) => theirs.cmp(&mine),
                _ => Ordering::Equal,
            })
    }
}

/// Two destinations compared by their [`Rank`]: the pairwise reference that
/// the tests hold [`sort_by_rfc6724`] to.
#[cfg(test)]
fn compare_destinations(a: &Destination, b: &Destination, table: &PolicyTable) -> Ordering {
    Rank::of(a, table).compare(&Rank::of(b, table))
}

/// Sorts bare destinations, for the tests.
#[cfg(test)]
fn sort_destinations(dests: &mut [Destination], table: &PolicyTable) {
    sort_by_rfc6724(dests, |dest| dest, table);
}

/// Sorts `items` into the order to try them in, by the [`Destination`] that
/// `key` gives for each and its [`Rank`]. The order among equals is kept
/// (rule 10).
///
/// The result never has an item ranked below a later one, and the sort cannot panic, whatever the
/// table. That needs care: with rule 9 skipped between families, the
/// comparison is not transitive when a custom table lets an IPv4 and an
/// IPv6 destination tie on rules 1 to 8 (the built-in tables never do).
/// Then no order keeps all equals in place, and a comparison sort could
/// panic on the inconsistency. So the sort orders by rules 1 to 8 (a true
/// total order), and then within each tied run reorders only the IPv6
/// destinations by rule 9, among the positions they already hold.
pub(crate) fn sort_by_rfc6724<T>(
    items: &mut [T],
    key: impl Fn(&T) -> &Destination,
    table: &PolicyTable,
) {
    if items.len() < 2 {
        return;
    }
    if items.len() <= SMALL && items.iter().filter(|i| key(i).addr.is_ipv6()).count() < 2 {
        // Rule 9 needs two IPv6 destinations; without them a stable sort by rules 1 to 8 is the
        // whole order. Short lists (the usual connect, and "localhost") take it in place, with
        // no index arrays to allocate.
        items.sort_by(|a, b| {
            Rank::of(key(a), table)
                .head
                .cmp(&Rank::of(key(b), table).head)
        });
        return;
    }
    let ranks: Vec<Rank> = items
        .iter()
        .map(|item| Rank::of(key(item), table))
        .collect();
    // order[p] is the index in `items` of what goes to position p.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| ranks.get(i).map(|rank| rank.head));

    let mut start = 0;
    while let Some(&first) = order.get(start) {
        let head = ranks[first].head;
        let run = order[start..]
            .iter()
            .take_while(|&&i| ranks[i].head == head)
            .count();
        let slots: Vec<usize> = (start..start + run)
            .filter(|&p| ranks[order[p]].common_prefix.is_some())
            .collect();
        if slots.len() > 1 {
            let mut by_prefix: Vec<usize> = slots.iter().map(|&p| order[p]).collect();
            by_prefix.sort_by_key(|&i| Reverse(ranks[i].common_prefix));
            for (&p, i) in slots.iter().zip(by_prefix) {
                order[p] = i;
            }
        }
        // `run` counts at least the element at `start` itself.
        start += run;
    }
    permute(items, &order);
}

/// Lists up to this long, with at most one IPv6 destination, are sorted in place.
const SMALL: usize = 16;

/// Rearranges `items` so that position p holds what was at `order[p]`.
/// `order` must be a permutation of the positions.
fn permute<T>(items: &mut [T], order: &[usize]) {
    let mut placed = vec![false; items.len()];
    for start in 0..items.len() {
        // Each cycle of the permutation is rotated in place by swaps; the
        // element first at `start` travels along the cycle until it reaches
        // the position that wants it.
        let mut pos = start;
        while !placed[pos] {
            placed[pos] = true;
            let from = order[pos];
            if placed[from] {
                break;
            }
            items.swap(pos, from);
            pos = from;
        }
    }
}

/// RFC 6724 §5 source address selection between two candidate sources
/// `a` and `b` for `dest`; `Less` means `a` is preferred.
///
/// - Rule 1, prefer same address.
/// - Rule 2, prefer appropriate scope: the smaller scope that still
///   reaches `dest`'s scope, else the larger.
/// - Rule 3 (avoid deprecated), rule 4 (prefer home addresses), rules 5
///   and 5.5 (outgoing interface, next-hop's prefix) and rule 7 (prefer
///   temporary addresses): skipped, as they need the interface and
///   address flags that the kernel keeps to itself; it applies them when
///   it picks a source for a real connection.
/// - Rule 6, prefer matching label.
/// - Rule 8, longest matching prefix: for IPv6 counted to 64 bits at most
///   (the end of the usual /64 prefix, see [`Rank`]), for
///   IPv4 over the whole address.
///
/// IPv4-mapped IPv6 addresses are treated as their IPv4 address.
pub(crate) fn compare_sources(a: IpAddr, b: IpAddr, dest: IpAddr, table: &PolicyTable) -> Ordering {
    let (a, b, dest) = (a.to_canonical(), b.to_canonical(), dest.to_canonical());
    let (scope_a, scope_b, scope_dest) = (scope(a), scope(b), scope(dest));
    let label_dest = table.lookup(dest).label;
    prefer(a == dest, b == dest)
        .then_with(|| match scope_a.cmp(&scope_b) {
            Ordering::Less if scope_a < scope_dest => Ordering::Greater,
            Ordering::Less => Ordering::Less,
            Ordering::Greater if scope_b < scope_dest => Ordering::Less,
            Ordering::Greater => Ordering::Greater,
            Ordering::Equal => Ordering::Equal,
        })
        .then_with(|| {
            prefer(
                table.lookup(a).label == label_dest,
                table.lookup(b).label == label_dest,
            )
        })
        .then_with(|| common_prefix_len(b, dest).cmp(&common_prefix_len(a, dest)))
}

/// `Less` when only `a` has the wanted property, `Greater` when only `b`
/// has it.
fn prefer(a: bool, b: bool) -> Ordering {
    b.cmp(&a)
}

#[cfg(test)]
mod tests;
