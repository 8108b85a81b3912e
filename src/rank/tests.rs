//! RFC 6724 ranking: the rules one by one, the worked examples of §10, and the policy tables.
use super::*;
use crate::prefix::mask_v6;
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a literal address in a test")
}

fn v6_addr(text: &str) -> Ipv6Addr {
    text.parse().expect("a literal IPv6 address in a test")
}

fn dest(addr: &str, source: &str) -> Destination {
    Destination {
        addr: ip(addr),
        source: Some(ip(source)),
    }
}

fn sorted(dests: &[Destination], table: &PolicyTable) -> Vec<IpAddr> {
    let mut dests = dests.to_vec();
    sort_destinations(&mut dests, table);
    dests.iter().map(|d| d.addr).collect()
}

/// Sorts `list` given in the order shown and reversed, so that rule 10
/// cannot be what produced the expected order.
fn assert_sorts(list: &[Destination], want: &[&str], table: &PolicyTable) {
    let want: Vec<IpAddr> = want.iter().map(|a| ip(a)).collect();
    assert_eq!(sorted(list, table), want, "from {list:?}");
    let reversed: Vec<Destination> = list.iter().rev().copied().collect();
    assert_eq!(sorted(&reversed, table), want, "from {reversed:?}");
}

/// RFC 6724 §10.2, the worked examples of destination address
/// selection, with `Source(D)` injected as the RFC's result gives it.
/// Examples 5 and 6 depend on rules 3 and 4, which this module skips;
/// for them the test pins down the order the remaining rules give.
#[test]
fn rfc6724_10_2_destination_examples() {
    let table = PolicyTable::rfc6724();
    // 1: prefer matching scope.
    assert_sorts(
        &[
            dest("2001:db8:1::1", "2001:db8:1::2"),
            dest("198.51.100.121", "169.254.13.78"),
        ],
        &["2001:db8:1::1", "198.51.100.121"],
        &table,
    );
    // 2: prefer matching scope.
    assert_sorts(
        &[
            dest("2001:db8:1::1", "fe80::1"),
            dest("198.51.100.121", "198.51.100.117"),
        ],
        &["198.51.100.121", "2001:db8:1::1"],
        &table,
    );
    // 3: prefer higher precedence.
    assert_sorts(
        &[
            dest("2001:db8:1::1", "2001:db8:1::2"),
            dest("10.1.2.3", "10.1.2.4"),
        ],
        &["2001:db8:1::1", "10.1.2.3"],
        &table,
    );
    // 4: prefer smaller scope.
    assert_sorts(
        &[
            dest("2001:db8:1::1", "2001:db8:1::2"),
            dest("fe80::1", "fe80::2"),
        ],
        &["fe80::1", "2001:db8:1::1"],
        &table,
    );
    // 5: "prefer home address": the RFC puts 2001:db8:1::1 (from the
    // home address 2001:db8:3::1) before fe80::1 (from the care-of
    // address fe80::2) by rule 4. Without rule 4, rule 8 decides.
    assert_sorts(
        &[
            dest("2001:db8:1::1", "2001:db8:3::1"),
            dest("fe80::1", "fe80::2"),
        ],
        &["fe80::1", "2001:db8:1::1"],
        &table,
    );
    // 6: "avoid deprecated addresses": the RFC puts 2001:db8:1::1
    // first because fe80::2 is deprecated (rule 3). Without rule 3,
    // rule 8 decides.
    assert_sorts(
        &[
            dest("2001:db8:1::1", "2001:db8:1::2"),
            dest("fe80::1", "fe80::2"),
        ],
        &["fe80::1", "2001:db8:1::1"],
        &table,
    );
    // 7: longest matching prefix (64 bits shared against 40).
    assert_sorts(
        &[
            dest("2001:db8:1::1", "2001:db8:1::2"),
            dest("2001:db8:3ffe::1", "2001:db8:3f44::2"),
        ],
        &["2001:db8:1::1", "2001:db8:3ffe::1"],
        &table,
    );
    // 8: prefer matching label, over rule 6's precedence.
    assert_sorts(
        &[
            dest("2002:c633:6401::1", "2002:c633:6401::2"),
            dest("2001:db8:1::1", "2002:c633:6401::2"),
        ],
        &["2002:c633:6401::1", "2001:db8:1::1"],
        &table,
    );
    // 9: prefer higher precedence.
    assert_sorts(
        &[
            dest("2002:c633:6401::1", "2002:c633:6401::2"),
            dest("2001:db8:1::1", "2001:db8:1::2"),
        ],
        &["2001:db8:1::1", "2002:c633:6401::1"],
        &table,
    );
}

/// Asserts that `want` is preferred to `other` as a source for
/// `dest`, whichever is given first.
fn assert_source(dest: &str, want: &str, other: &str) {
    let table = PolicyTable::rfc6724();
    assert_eq!(
        compare_sources(ip(want), ip(other), ip(dest), &table),
        Ordering::Less,
        "{want} over {other} for {dest}"
    );
    assert_eq!(
        compare_sources(ip(other), ip(want), ip(dest), &table),
        Ordering::Greater,
        "{want} over {other} for {dest}"
    );
}

/// RFC 6724 §10.1, the worked examples of source address selection.
/// Examples 6 and 8 depend on rules 4 and 7, which this module skips;
/// for them the test pins down what the remaining rules give.
#[test]
fn rfc6724_10_1_source_examples() {
    // 1: prefer appropriate scope: the global candidate, the only one
    // whose scope reaches the destination's.
    assert_source("2001:db8:1::1", "2001:db8:3::1", "fe80::1");
    // 2: prefer appropriate scope (site-local multicast destination).
    assert_source("ff05::1", "2001:db8:3::1", "fe80::1");
    // 3: prefer same address, even though it is deprecated.
    assert_source("2001:db8:1::1", "2001:db8:1::1", "2001:db8:2::1");
    // 4: prefer appropriate scope, even though fe80::2 is deprecated.
    assert_source("fe80::1", "fe80::2", "2001:db8:1::1");
    // 5: longest matching prefix.
    assert_source("2001:db8:1::1", "2001:db8:1::2", "2001:db8:3::2");
    // 6: "prefer home address": the RFC picks the home address
    // 2001:db8:3::2 over the care-of address 2001:db8:1::2 by rule 4.
    // Without rule 4, rule 8 picks the longer match.
    assert_source("2001:db8:1::1", "2001:db8:1::2", "2001:db8:3::2");
    // 7: prefer matching label (a 6to4 source for a 6to4 destination).
    assert_source(
        "2002:c633:6401::1",
        "2002:c633:6401::d5e3:7953:13eb:22e8",
        "2001:db8:1::2",
    );
    // 8: "prefer temporary address": the RFC picks the temporary
    // 2001:db8:1::d5e3:7953:13eb:22e8 over the public 2001:db8:1::2
    // by rule 7. Without rule 7 they tie: both share the whole /64
    // with the destination, and rule 8 counts no further.
    let table = PolicyTable::rfc6724();
    assert_eq!(
        compare_sources(
            ip("2001:db8:1::2"),
            ip("2001:db8:1::d5e3:7953:13eb:22e8"),
            ip("2001:db8:1::d5e3:0:0:1"),
            &table
        ),
        Ordering::Equal
    );
}

/// RFC 6724 §10.3: the examples for the table that prefers IPv4.
/// The first two keep their §10.2 order; the third flips.
#[test]
fn rfc6724_10_3_prefer_ipv4_examples() {
    let table = PolicyTable::prefer_ipv4();
    assert_sorts(
        &[
            dest("2001:db8::1", "2001:db8::2"),
            dest("198.51.100.121", "169.254.13.78"),
        ],
        &["2001:db8::1", "198.51.100.121"],
        &table,
    );
    assert_sorts(
        &[
            dest("2001:db8::1", "fe80::1"),
            dest("198.51.100.121", "198.51.100.117"),
        ],
        &["198.51.100.121", "2001:db8::1"],
        &table,
    );
    assert_sorts(
        &[
            dest("2001:db8::1", "2001:db8::2"),
            dest("10.1.2.3", "10.1.2.4"),
        ],
        &["10.1.2.3", "2001:db8::1"],
        &table,
    );
}

/// RFC 6724 §10.3 (and §6 rule 6): `prefer_ipv4` flips a native IPv6
/// destination and an IPv4 one that the default table orders IPv6
/// first, with a source on each side.
#[test]
fn prefer_ipv4_flips_a_native_pair() {
    let pair = [
        dest("2001:db8:1::1", "2001:db8:1::2"),
        dest("192.0.2.1", "192.0.2.2"),
    ];
    assert_sorts(
        &pair,
        &["2001:db8:1::1", "192.0.2.1"],
        &PolicyTable::rfc6724(),
    );
    assert_sorts(
        &pair,
        &["192.0.2.1", "2001:db8:1::1"],
        &PolicyTable::prefer_ipv4(),
    );
}

/// RFC 6724 §10.4: a custom table (a `fe80::/10` row at precedence
/// 33) puts global destinations before link-local ones; example 1.
#[test]
fn rfc6724_10_4_custom_table_example() {
    let rows = RFC6724_ROWS
        .iter()
        .copied()
        .chain([Policy::row(v6(0xfe80, 0), 10, 33, 1)]);
    let table = PolicyTable::new(rows).expect("a valid table");
    assert_sorts(
        &[
            dest("2001:db8::1", "2001:db8::2"),
            dest("fe80::1", "fe80::2"),
        ],
        &["2001:db8::1", "fe80::1"],
        &table,
    );
}

/// draft-ietf-6man-rfc6724-update-21, "Policy Table Update": with a
/// ULA source, a ULA destination goes before an IPv4 one, where
/// RFC 6724 §2.1's table put IPv4 first; global IPv6 stays first.
#[test]
fn rfc6724_update_puts_ula_above_ipv4() {
    let pair = [
        dest("10.1.2.3", "10.1.2.4"),
        dest("fd00:1:2:3::1", "fd00:1:2:3::2"),
    ];
    assert_sorts(
        &pair,
        &["10.1.2.3", "fd00:1:2:3::1"],
        &PolicyTable::rfc6724(),
    );
    assert_sorts(
        &pair,
        &["fd00:1:2:3::1", "10.1.2.3"],
        &PolicyTable::rfc6724_update(),
    );
    assert_sorts(
        &[
            dest("fd00:1:2:3::1", "fd00:1:2:3::2"),
            dest("2001:db8:1::1", "2001:db8:1::2"),
        ],
        &["2001:db8:1::1", "fd00:1:2:3::1"],
        &PolicyTable::rfc6724_update(),
    );
}

/// draft-ietf-6man-rfc6724-update-21, known-local ULAs: a /48 row at
/// precedence 45, label 14, added through `PolicyTable::new`, puts
/// that ULA ahead of global IPv6.
#[test]
fn rfc6724_update_known_local_row() {
    let known_local = Policy::row(v6(0xfd12, 0x3456), 48, 45, 14);
    let table = PolicyTable::new(
        PolicyTable::rfc6724_update()
            .rows()
            .iter()
            .copied()
            .chain([known_local]),
    )
    .expect("a valid table");
    assert_sorts(
        &[
            dest("2001:db8:1::1", "2001:db8:1::2"),
            dest("fd12:3456:0:1::1", "fd12:3456:0:1::2"),
        ],
        &["fd12:3456:0:1::1", "2001:db8:1::1"],
        &table,
    );
}

/// RFC 6724 §6 rule 9, as Go restricts it: not applied between two
/// IPv4 destinations, so a round-robin set keeps its order even when
/// one of them shares more leading bits with the source.
#[test]
fn rule_9_is_not_applied_between_ipv4() {
    let table = PolicyTable::rfc6724();
    let list = [
        dest("192.0.2.10", "198.51.100.7"),
        dest("203.0.113.5", "198.51.100.7"),
        dest("198.51.100.20", "198.51.100.7"),
    ];
    assert_eq!(
        sorted(&list, &table),
        [ip("192.0.2.10"), ip("203.0.113.5"), ip("198.51.100.20")]
    );
    assert_eq!(
        compare_destinations(&list[0], &list[2], &table),
        Ordering::Equal
    );
    // The same when the IPv4 addresses come IPv4-mapped.
    let mapped = [
        dest("::ffff:192.0.2.10", "::ffff:198.51.100.7"),
        dest("::ffff:198.51.100.20", "::ffff:198.51.100.7"),
    ];
    assert_eq!(
        compare_destinations(&mapped[0], &mapped[1], &table),
        Ordering::Equal
    );
}

/// RFC 6724 §6 rule 9: applied between two IPv6 destinations, and
/// §2.2's common prefix stops at the /64 boundary.
#[test]
fn rule_9_is_applied_between_ipv6() {
    let table = PolicyTable::rfc6724();
    let far = dest("2001:db8:3ffe::1", "2001:db8:3f44::2");
    let near = dest("2001:db8:1::1", "2001:db8:1::2");
    assert_eq!(compare_destinations(&near, &far, &table), Ordering::Less);
    assert_eq!(
        sorted(&[far, near], &table),
        [ip("2001:db8:1::1"), ip("2001:db8:3ffe::1")]
    );
    // 64 bits shared either way; the interface identifiers do not count.
    let a = dest("2001:db8:1:0:8000::1", "2001:db8:1::2");
    let b = dest("2001:db8:1::1", "2001:db8:1::2");
    assert_eq!(compare_destinations(&a, &b, &table), Ordering::Equal);
    assert_eq!(
        sorted(&[a, b], &table),
        [ip("2001:db8:1:0:8000::1"), ip("2001:db8:1::1")]
    );
}

/// RFC 6724 §6 rule 1: a destination without a source goes last, and
/// among those rules 6 and 8 still apply.
#[test]
fn rule_1_unusable_go_last() {
    let table = PolicyTable::rfc6724();
    let unroutable_v4 = Destination {
        addr: ip("192.0.2.1"),
        source: None,
    };
    let unroutable_v6 = Destination {
        addr: ip("2001:db8::1"),
        source: None,
    };
    let routable = dest("10.1.2.3", "10.1.2.4");
    assert_eq!(
        sorted(&[unroutable_v4, unroutable_v6, routable], &table),
        [ip("10.1.2.3"), ip("2001:db8::1"), ip("192.0.2.1")]
    );
}

/// RFC 6724 §6 rule 10 with the sort: the degenerate case a custom
/// table can make, where an IPv4 and two IPv6 destinations tie on
/// rules 1 to 8 and rule 9 orders only the IPv6 pair. The sort must
/// not panic and must agree with the comparison on every pair.
#[test]
fn mixed_family_tie_sorts_consistently() {
    let rows = RFC6724_ROWS.iter().map(|row| {
        if row.prefix == MAPPED_V4 {
            Policy::row(MAPPED_V4, 96, 40, 4)
        } else {
            *row
        }
    });
    let table = PolicyTable::new(rows).expect("a valid table");
    let mut list = [
        dest("2001:db8:3ffe::1", "2001:db8:3f44::2"),
        dest("10.1.2.3", "10.1.2.4"),
        dest("2001:db8:1::1", "2001:db8:1::2"),
    ];
    sort_destinations(&mut list, &table);
    assert_eq!(
        list.map(|d| d.addr),
        [ip("2001:db8:1::1"), ip("10.1.2.3"), ip("2001:db8:3ffe::1")]
    );
    assert_consistent(&list, &table);
}

fn assert_consistent(list: &[Destination], table: &PolicyTable) {
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            assert_ne!(
                compare_destinations(a, b, table),
                Ordering::Greater,
                "{a:?} before {b:?}"
            );
        }
    }
}

/// RFC 6724 §2.1: the default table's rows, looked up by longest
/// match, with IPv4 (plain or mapped) under `::ffff:0:0/96`.
#[test]
fn rfc6724_2_1_lookup() {
    let table = PolicyTable::default();
    assert_eq!(table, PolicyTable::rfc6724());
    let cases = [
        ("::1", 50, 0),
        ("2001:db8::1", 40, 1),
        ("127.0.0.1", 35, 4),
        ("::ffff:192.0.2.1", 35, 4),
        ("2002:c633:6401::1", 30, 2),
        ("2001::1", 5, 5),
        ("2001:0:1::1", 5, 5),
        ("fd00::1", 3, 13),
        ("fc00::1", 3, 13),
        ("::192.0.2.1", 1, 3),
        ("fec0::1", 1, 11),
        ("3ffe::1", 1, 12),
        ("fe80::1", 40, 1),
        ("::", 1, 3),
    ];
    for (addr, precedence, label) in cases {
        let row = table.lookup(ip(addr));
        assert_eq!(
            (row.precedence, row.label),
            (precedence, label),
            "{addr} matched {row}"
        );
    }
    assert_eq!(table.lookup(ip("192.0.2.1")).prefix, v6_addr("::ffff:0:0"));
}

/// RFC 6724 §2.1 and §10.3: the built-in tables are valid as
/// `PolicyTable::new` sees them, and list their rows longest first.
#[test]
fn builtin_tables_are_valid() {
    for table in [
        PolicyTable::rfc6724(),
        PolicyTable::rfc6724_update(),
        PolicyTable::prefer_ipv4(),
    ] {
        assert_eq!(table.rows().len(), 9);
        assert_eq!(
            PolicyTable::new(table.rows().iter().copied()),
            Ok(table.clone())
        );
        assert!(table
            .rows()
            .windows(2)
            .all(|w| w[0].prefix_len >= w[1].prefix_len));
    }
    let prefer_v4 = PolicyTable::prefer_ipv4();
    assert_eq!(prefer_v4.lookup(ip("192.0.2.1")).precedence, 100);
    let update = PolicyTable::rfc6724_update();
    assert_eq!(update.lookup(ip("192.0.2.1")).precedence, 20);
    assert_eq!(update.lookup(ip("fd00::1")).precedence, 30);
    assert_eq!(update.lookup(ip("2002::1")).precedence, 5);
}

/// RFC 6724 §2.1: a table without `::/0` gets the default row, so
/// lookups still match; row order does not matter.
#[test]
fn new_adds_default_row() {
    let only = Policy::row(v6(0x2001, 0xdb8), 32, 7, 9);
    let table = PolicyTable::new([only]).expect("a valid table");
    assert_eq!(table.rows(), [only, DEFAULT_ROW]);
    assert_eq!(table.lookup(ip("2001:db8::1")), only);
    assert_eq!(table.lookup(ip("192.0.2.1")), DEFAULT_ROW);
    let empty = PolicyTable::new([]).expect("a valid table");
    assert_eq!(empty.rows(), [DEFAULT_ROW]);
    let reversed = PolicyTable::new(RFC6724_ROWS.iter().rev().copied());
    assert_eq!(reversed, Ok(PolicyTable::rfc6724()));
}

/// RFC 6724 §2.1 rows as `PolicyTable::new` validates them: a bad
/// row is refused and named.
#[test]
fn new_rejects_bad_rows() {
    let too_long = Policy::row(Ipv6Addr::LOCALHOST, 129, 1, 1);
    let err = PolicyTable::new([DEFAULT_ROW, too_long]).expect_err("prefix_len 129");
    assert_eq!(
        err.to_string(),
        "policy row 1 (::1/129 precedence 1 label 1): prefix length 129 is over 128 bits"
    );

    let host_bits = Policy::row(v6_addr("2001:db8::1"), 32, 1, 1);
    let err = PolicyTable::new([host_bits]).expect_err("host bits");
    assert_eq!(
        err.to_string(),
        "policy row 0 (2001:db8::1/32 precedence 1 label 1): \
         the prefix has bits set past /32 (did you mean 2001:db8::/32?)"
    );

    let again = Policy::row(v6(0x2002, 0), 16, 9, 9);
    let err = PolicyTable::new(RFC6724_ROWS.iter().copied().chain([again])).expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "policy row 9 (2002::/16 precedence 9 label 9): the same prefix is already in row 3"
    );
    let _: &dyn std::error::Error = &err;
}

/// RFC 6724 §3.1 and §3.2: scopes of IPv6 and IPv4 addresses.
#[test]
fn rfc6724_3_scopes() {
    let cases = [
        ("127.0.0.1", SCOPE_LINK_LOCAL),
        ("127.255.0.9", SCOPE_LINK_LOCAL),
        ("169.254.13.78", SCOPE_LINK_LOCAL),
        ("10.1.2.3", SCOPE_GLOBAL),
        ("192.168.1.1", SCOPE_GLOBAL),
        ("198.51.100.121", SCOPE_GLOBAL),
        ("224.0.0.1", SCOPE_GLOBAL),
        ("::ffff:127.0.0.1", SCOPE_LINK_LOCAL),
        ("::ffff:169.254.1.1", SCOPE_LINK_LOCAL),
        ("::ffff:10.1.2.3", SCOPE_GLOBAL),
        ("::1", SCOPE_LINK_LOCAL),
        ("fe80::1", SCOPE_LINK_LOCAL),
        ("febf::1", SCOPE_LINK_LOCAL),
        ("fec0::1", SCOPE_SITE_LOCAL),
        ("feff::1", SCOPE_SITE_LOCAL),
        ("fd00::1", SCOPE_GLOBAL),
        ("2001:db8::1", SCOPE_GLOBAL),
        ("ff01::1", 0x1),
        ("ff02::1", SCOPE_LINK_LOCAL),
        ("ff04::1", 0x4),
        ("ff05::1", SCOPE_SITE_LOCAL),
        ("ff08::1", 0x8),
        ("ff0e::1", SCOPE_GLOBAL),
    ];
    for (addr, want) in cases {
        assert_eq!(scope(ip(addr)), want, "{addr}");
    }
}

/// RFC 6724 §2.2: CommonPrefixLen, counted to 64 bits for IPv6, over
/// the whole IPv4 address, 0 across families.
#[test]
fn rfc6724_2_2_common_prefix_len() {
    let cases = [
        ("fe80::1", "fe80::2", 64),
        ("fe81::1", "fe80::2", 15),
        ("2001:db8:3f44::2", "2001:db8:3ffe::1", 40),
        ("10.1.2.4", "10.1.2.4", 32),
        ("10.1.2.4", "10.1.2.7", 30),
        ("::ffff:10.1.2.4", "10.1.2.7", 30),
        ("10.1.2.4", "2001:db8::1", 0),
    ];
    for (a, b, want) in cases {
        assert_eq!(common_prefix_len(ip(a), ip(b)), want, "{a} {b}");
    }
}

fn v4_addr() -> impl Strategy<Value = Ipv4Addr> {
    let bases = [
        [10, 1, 0, 0],
        [127, 0, 0, 0],
        [169, 254, 0, 0],
        [192, 0, 2, 0],
        [198, 51, 100, 0],
    ];
    prop_oneof![
        any::<u32>().prop_map(Ipv4Addr::from),
        (prop::sample::select(bases.to_vec()), any::<u16>()).prop_map(|(base, low)| {
            Ipv4Addr::from(u32::from(Ipv4Addr::from(base)) | u32::from(low))
        }),
    ]
}

fn v6_only_addr() -> impl Strategy<Value = Ipv6Addr> {
    let bases = [
        "2001:db8:1::",
        "2001:db8:3ffe::",
        "2002:c633:6401::",
        "2001::",
        "fd00:1:2:3::",
        "fe80::",
        "fec0::",
        "ff02::",
        "ff05::",
        "::",
    ]
    .map(|text| u128::from(v6_addr(text)));
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        (prop::sample::select(bases.to_vec()), any::<u128>()).prop_map(|(base, noise)| {
            // Vary the interface identifier and the low bits of the
            // prefix, so that rule 9's counting is exercised.
            Ipv6Addr::from(base ^ (noise & ((1 << 72) - 1)))
        }),
        Just(Ipv6Addr::LOCALHOST),
    ]
}

fn any_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v4_addr().prop_map(IpAddr::V4),
        v4_addr().prop_map(|v4| IpAddr::V6(v4.to_ipv6_mapped())),
        v6_only_addr().prop_map(IpAddr::V6),
    ]
}

fn any_destination() -> impl Strategy<Value = Destination> {
    (any_addr(), prop::option::weighted(0.8, any_addr()))
        .prop_map(|(addr, source)| Destination { addr, source })
}

fn builtin_table() -> impl Strategy<Value = PolicyTable> {
    prop_oneof![
        Just(PolicyTable::rfc6724()),
        Just(PolicyTable::rfc6724_update()),
        Just(PolicyTable::prefer_ipv4()),
    ]
}

/// Tables whose few precedence and label values make ties common,
/// including IPv4/IPv6 ties on rules 1 to 8.
fn tied_table() -> impl Strategy<Value = PolicyTable> {
    let row = (v6_only_addr(), 0_u8..=128, 0_u8..3, 0_u8..3).prop_map(
        |(prefix, len, precedence, label)| {
            let prefix = Ipv6Addr::from(u128::from(prefix) & mask_v6(len));
            Policy::row(prefix, len, precedence, label)
        },
    );
    let mapped_row = (0_u8..3, 0_u8..3)
        .prop_map(|(precedence, label)| Policy::row(MAPPED_V4, 96, precedence, label));
    (prop::collection::vec(row, 0..6), mapped_row).prop_map(|(mut rows, mapped)| {
        rows.push(mapped);
        let mut unique: Vec<Policy> = Vec::new();
        for row in rows {
            if !unique
                .iter()
                .any(|u| u.prefix == row.prefix && u.prefix_len == row.prefix_len)
            {
                unique.push(row);
            }
        }
        PolicyTable::new(unique).unwrap_or_default()
    })
}

fn combine(first: Ordering, second: Ordering) -> Option<Ordering> {
    match (first, second) {
        (Ordering::Equal, other) | (other, Ordering::Equal) => Some(other),
        (x, y) if x == y => Some(x),
        _ => None,
    }
}

proptest! {
    /// RFC 6724 §6: the pairwise comparison is antisymmetric, with any
    /// table, as "prefer DA ... similarly, prefer DB" requires.
    #[test]
    fn destination_comparison_is_antisymmetric(
        a in any_destination(),
        b in any_destination(),
        table in prop_oneof![builtin_table(), tied_table()],
    ) {
        prop_assert_eq!(
            compare_destinations(&a, &b, &table),
            compare_destinations(&b, &a, &table).reverse()
        );
    }

    /// RFC 6724 §6: with the built-in tables no IPv4 and IPv6
    /// destination tie before rule 9, so the comparison is a total
    /// order (transitive, equality included).
    #[test]
    fn destination_comparison_is_transitive(
        a in any_destination(),
        b in any_destination(),
        c in any_destination(),
        table in builtin_table(),
    ) {
        let ab = compare_destinations(&a, &b, &table);
        let bc = compare_destinations(&b, &c, &table);
        if let Some(want) = combine(ab, bc) {
            prop_assert_eq!(compare_destinations(&a, &c, &table), want);
        }
    }

    /// RFC 6724 §6 rule 10: sorting is a permutation, agrees with the
    /// comparison, and keeps equal destinations in their given order.
    #[test]
    fn sort_is_stable_permutation(
        list in prop::collection::vec(any_destination(), 0..24),
        table in builtin_table(),
    ) {
        let mut tagged: Vec<(usize, Destination)> = list.into_iter().enumerate().collect();
        sort_by_rfc6724(&mut tagged, |(_, d)| d, &table);
        let mut indices: Vec<usize> = tagged.iter().map(|(i, _)| *i).collect();
        indices.sort_unstable();
        prop_assert_eq!(indices, (0..tagged.len()).collect::<Vec<_>>());
        for (p, (i, a)) in tagged.iter().enumerate() {
            for (j, b) in &tagged[p + 1..] {
                match compare_destinations(a, b, &table) {
                    Ordering::Less => {}
                    Ordering::Equal => prop_assert!(i < j, "{:?} moved past {:?}", b, a),
                    Ordering::Greater => prop_assert!(false, "{:?} before {:?}", a, b),
                }
            }
        }
    }

    /// RFC 6724 §6 with tables that make the comparison intransitive:
    /// the sort still returns a permutation that agrees with every
    /// pairwise comparison, and does not panic.
    #[test]
    fn sort_with_any_table_is_consistent(
        list in prop::collection::vec(any_destination(), 0..24),
        table in tied_table(),
    ) {
        let mut tagged: Vec<(usize, Destination)> = list.into_iter().enumerate().collect();
        sort_by_rfc6724(&mut tagged, |(_, d)| d, &table);
        let mut indices: Vec<usize> = tagged.iter().map(|(i, _)| *i).collect();
        indices.sort_unstable();
        prop_assert_eq!(indices, (0..tagged.len()).collect::<Vec<_>>());
        for (p, (_, a)) in tagged.iter().enumerate() {
            for (_, b) in &tagged[p + 1..] {
                prop_assert_ne!(compare_destinations(a, b, &table), Ordering::Greater);
            }
        }
    }

    /// RFC 6724 §5: the source comparison is antisymmetric.
    #[test]
    fn source_comparison_is_antisymmetric(
        a in any_addr(),
        b in any_addr(),
        d in any_addr(),
        table in builtin_table(),
    ) {
        prop_assert_eq!(
            compare_sources(a, b, d, &table),
            compare_sources(b, a, d, &table).reverse()
        );
    }

    /// RFC 6724 §2.1, §3.2 and §6: an IPv4 address and its IPv4-mapped
    /// form get the same row, scope and ranking.
    #[test]
    fn mapped_ipv4_is_ipv4(
        v4 in v4_addr(),
        source in v4_addr(),
        other in any_destination(),
        table in builtin_table(),
    ) {
        let plain = IpAddr::V4(v4);
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        prop_assert_eq!(table.lookup(plain), table.lookup(mapped));
        prop_assert_eq!(scope(plain), scope(mapped));
        let plain_dest = Destination { addr: plain, source: Some(IpAddr::V4(source)) };
        let mapped_dest = Destination {
            addr: mapped,
            source: Some(IpAddr::V6(source.to_ipv6_mapped())),
        };
        prop_assert_eq!(
            compare_destinations(&plain_dest, &other, &table),
            compare_destinations(&mapped_dest, &other, &table)
        );
    }
}
