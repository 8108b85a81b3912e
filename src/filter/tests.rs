//! The address filter's tables and rules.
use super::*;
use crate::prefix::{mask_v4, mask_v6};
use proptest::prelude::*;

fn ip(text: &str) -> IpAddr {
    match text.parse() {
        Ok(ip) => ip,
        Err(e) => panic!("test address {text:?}: {e}"),
    }
}

fn prefix(text: &str) -> IpPrefix {
    match text.parse() {
        Ok(p) => p,
        Err(e) => panic!("test prefix {text:?}: {e}"),
    }
}

/// The reason `filter` refuses `addr`, panicking if it is allowed.
fn reason_of(filter: &AddressFilter, addr: &str) -> String {
    match filter.check(ip(addr)) {
        Ok(()) => panic!("{addr} was allowed"),
        Err(denied) => {
            assert_eq!(denied.addr(), ip(addr));
            denied.reason().to_owned()
        }
    }
}

fn assert_allowed(filter: &AddressFilter, addr: &str) {
    if let Err(denied) = filter.check(ip(addr)) {
        panic!("{denied}");
    }
}

fn parse_error(text: &str) -> String {
    match text.parse::<IpPrefix>() {
        Ok(p) => panic!("{text:?} parsed as {p}"),
        Err(e) => e.to_string(),
    }
}

/// (first, last, reason) of every built-in IPv4 range, checked at both edges.
#[rustfmt::skip]
const V4_RANGES: &[(&str, &str, &str)] = &[
    ("0.0.0.0",         "0.0.0.0",         "unspecified (0.0.0.0)"),
    ("0.0.0.1",         "0.255.255.255",   "this network (0.0.0.0/8)"),
    ("10.0.0.0",        "10.255.255.255",  "private (RFC 1918)"),
    ("100.64.0.0",      "100.127.255.255", "shared address space / carrier-grade NAT (100.64.0.0/10)"),
    ("127.0.0.0",       "127.255.255.255", "loopback"),
    ("169.254.0.0",     "169.254.255.255", "cloud metadata / link-local (169.254.0.0/16)"),
    ("172.16.0.0",      "172.31.255.255",  "private (RFC 1918)"),
    ("192.0.0.0",       "192.0.0.255",     "IETF protocol assignments (192.0.0.0/24)"),
    ("192.0.2.0",       "192.0.2.255",     "documentation (192.0.2.0/24)"),
    ("192.88.99.0",     "192.88.99.255",   "deprecated 6to4 relay anycast (192.88.99.0/24)"),
    ("192.168.0.0",     "192.168.255.255", "private (RFC 1918)"),
    ("198.18.0.0",      "198.19.255.255",  "benchmarking (198.18.0.0/15)"),
    ("198.51.100.0",    "198.51.100.255",  "documentation (198.51.100.0/24)"),
    ("203.0.113.0",     "203.0.113.255",   "documentation (203.0.113.0/24)"),
    ("224.0.0.0",       "239.255.255.255", "multicast (224.0.0.0/4)"),
    ("240.0.0.0",       "255.255.255.254", "reserved (240.0.0.0/4)"),
    ("255.255.255.255", "255.255.255.255", "limited broadcast (255.255.255.255)"),
];

/// The public neighbours just outside each IPv4 range above.
const V4_NEIGHBOURS: &[&str] = &[
    "1.0.0.0",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "191.255.255.255",
    "192.0.1.0",
    "192.0.1.255",
    "192.0.3.0",
    "192.88.98.255",
    "192.88.100.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "198.51.99.255",
    "198.51.101.0",
    "203.0.112.255",
    "203.0.114.0",
    "223.255.255.255",
    // Registry entries marked globally reachable: AS112 and AMT.
    "192.31.196.1",
    "192.175.48.1",
    "192.52.193.1",
];

const OUTSIDE: &str = "reserved (outside global unicast 2000::/3)";

/// (first, last, reason) of every built-in IPv6 range without a carried IPv4 address.
#[rustfmt::skip]
const V6_RANGES: &[(&str, &str, &str)] = &[
    ("::",           "::",                                    "unspecified (::)"),
    ("::1",          "::1",                                   "loopback"),
    ("100::",        "100::ffff:ffff:ffff:ffff",              "discard-only (100::/64)"),
    ("2001:2::",     "2001:2:0:ffff:ffff:ffff:ffff:ffff",     "benchmarking (2001:2::/48)"),
    ("2001:10::",    "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", "deprecated ORCHID (2001:10::/28)"),
    ("2001:1::",     "2001:1:ffff:ffff:ffff:ffff:ffff:ffff",  "IETF protocol assignments (2001::/23)"),
    ("2001:4::",     "2001:4:111:ffff:ffff:ffff:ffff:ffff",   "IETF protocol assignments (2001::/23)"),
    ("2001:4:113::", "2001:f:ffff:ffff:ffff:ffff:ffff:ffff",  "IETF protocol assignments (2001::/23)"),
    ("2001:40::",    "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments (2001::/23)"),
    ("2001:db8::",   "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation (2001:db8::/32)"),
    ("3fff::",       "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation (3fff::/20)"),
    ("5f00::",       "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "SRv6 segment identifiers (5f00::/16)"),
    ("fc00::",       "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique local (fc00::/7)"),
    ("fe80::",       "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local (fe80::/10)"),
    ("fec0::",       "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local (deprecated, fec0::/10)"),
    ("ff00::",       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast (ff00::/8)"),
    ("::1:0:0:0",    "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", OUTSIDE),
    ("4000::",       "5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", OUTSIDE),
    ("5f01::",       "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", OUTSIDE),
    ("fe00::",       "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", OUTSIDE),
];

/// Public IPv6 addresses at the edges of the ranges above and of the global carve-outs.
const V6_NEIGHBOURS: &[&str] = &[
    "2000::",
    "2001:200::",
    "2001:3::",
    "2001:3:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:4:112::",
    "2001:4:112:ffff:ffff:ffff:ffff:ffff",
    "2001:20::",
    "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:30::",
    "2001:3f:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db9::",
    "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "2003::",
    "2620:4f:8000::1", // AS112 direct delegation
    "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "3fff:1000::",
    "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
];

#[test]
fn every_ipv4_range_is_denied_at_both_edges() {
    let filter = AddressFilter::deny_non_public();
    for &(first, last, reason) in V4_RANGES {
        assert_eq!(reason_of(&filter, first), reason, "{first}");
        assert_eq!(reason_of(&filter, last), reason, "{last}");
    }
    assert_eq!(
        reason_of(&filter, "169.254.169.254"),
        "cloud metadata / link-local (169.254.0.0/16)"
    );
    // The registry's global PCP and TURN anycast addresses are refused on purpose.
    assert_eq!(
        reason_of(&filter, "192.0.0.9"),
        "IETF protocol assignments (192.0.0.0/24)"
    );
    assert_eq!(
        reason_of(&filter, "192.0.0.10"),
        "IETF protocol assignments (192.0.0.0/24)"
    );
}

#[test]
fn public_ipv4_neighbours_are_allowed() {
    let filter = AddressFilter::deny_non_public();
    for addr in V4_NEIGHBOURS.iter().chain(&["8.8.8.8", "1.1.1.1"]) {
        assert_allowed(&filter, addr);
    }
}

#[test]
fn every_ipv6_range_is_denied_at_both_edges() {
    let filter = AddressFilter::deny_non_public();
    for &(first, last, reason) in V6_RANGES {
        assert_eq!(reason_of(&filter, first), reason, "{first}");
        assert_eq!(reason_of(&filter, last), reason, "{last}");
    }
    for anycast in ["2001:1::1", "2001:1::2", "2001:1::3"] {
        assert_eq!(
            reason_of(&filter, anycast),
            "IETF protocol assignments (2001::/23)"
        );
    }
}

#[test]
fn public_ipv6_neighbours_are_allowed() {
    let filter = AddressFilter::deny_non_public();
    let famous = ["2606:4700:4700::1111", "2001:4860:4860::8888"];
    for addr in V6_NEIGHBOURS.iter().chain(&famous) {
        assert_allowed(&filter, addr);
    }
}

#[test]
fn ipv4_mapped_and_compatible_are_looked_through() {
    let filter = AddressFilter::deny_non_public();
    assert_eq!(
        reason_of(&filter, "::ffff:127.0.0.1"),
        "IPv4-mapped 127.0.0.1: loopback"
    );
    assert_eq!(
        reason_of(&filter, "::ffff:0.0.0.0"),
        "IPv4-mapped 0.0.0.0: unspecified (0.0.0.0)"
    );
    assert_eq!(
        reason_of(&filter, "::ffff:255.255.255.255"),
        "IPv4-mapped 255.255.255.255: limited broadcast (255.255.255.255)"
    );
    assert_allowed(&filter, "::ffff:8.8.8.8");

    assert_eq!(
        reason_of(&filter, "::127.0.0.1"),
        "IPv4-compatible 127.0.0.1: loopback"
    );
    assert_eq!(
        reason_of(&filter, "::2"),
        "IPv4-compatible 0.0.0.2: this network (0.0.0.0/8)"
    );
    assert_eq!(
        reason_of(&filter, "::255.255.255.255"),
        "IPv4-compatible 255.255.255.255: limited broadcast (255.255.255.255)"
    );
    // Deprecated and unrouted: refused even around a public address.
    assert_eq!(
        reason_of(&filter, "::8.8.8.8"),
        "IPv4-compatible (deprecated, ::/96)"
    );
}

#[test]
fn nat64_is_looked_through() {
    let filter = AddressFilter::deny_non_public();
    assert_eq!(
        reason_of(&filter, "64:ff9b::a9fe:a9fe"),
        "NAT64 169.254.169.254: cloud metadata / link-local (169.254.0.0/16)"
    );
    assert_eq!(
        reason_of(&filter, "64:ff9b::"),
        "NAT64 0.0.0.0: unspecified (0.0.0.0)"
    );
    assert_eq!(
        reason_of(&filter, "64:ff9b::ffff:ffff"),
        "NAT64 255.255.255.255: limited broadcast (255.255.255.255)"
    );
    assert_allowed(&filter, "64:ff9b::808:808");
    // Just past the /96 the address is no NAT64 form, and outside 2000::/3.
    assert_eq!(
        reason_of(&filter, "64:ff9b::1:0:0"),
        "reserved (outside global unicast 2000::/3)"
    );

    assert_eq!(
        reason_of(&filter, "64:ff9b:1::a00:1"),
        "NAT64 local-use 10.0.0.1: private (RFC 1918)"
    );
    assert_eq!(
        reason_of(&filter, "64:ff9b:1:ffff:ffff:ffff:7f00:1"),
        "NAT64 local-use 127.0.0.1: loopback"
    );
    assert_allowed(&filter, "64:ff9b:1::808:808");
    assert_allowed(&filter, "64:ff9b:1:ffff:ffff:ffff:808:808");
}

#[test]
fn six_to_four_is_looked_through() {
    let filter = AddressFilter::deny_non_public();
    assert_eq!(
        reason_of(&filter, "2002:7f00:0001::1"),
        "6to4 127.0.0.1: loopback"
    );
    assert_eq!(
        reason_of(&filter, "2002:c0a8:0101:5::9"),
        "6to4 192.168.1.1: private (RFC 1918)"
    );
    assert_eq!(
        reason_of(&filter, "2002::"),
        "6to4 0.0.0.0: unspecified (0.0.0.0)"
    );
    assert_eq!(
        reason_of(&filter, "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        "6to4 255.255.255.255: limited broadcast (255.255.255.255)"
    );
    assert_allowed(&filter, "2002:0808:0808::1");
}

/// A Teredo address: server IPv4, then flags and port, then the client IPv4 inverted.
fn teredo(server: Ipv4Addr, client: Ipv4Addr) -> String {
    let bits = TEREDO
        | (u128::from(server.to_bits()) << 64)
        | (0x8000_1f90_u128 << 32)
        | u128::from(!client.to_bits());
    Ipv6Addr::from_bits(bits).to_string()
}

#[test]
fn teredo_is_looked_through() {
    let filter = AddressFilter::deny_non_public();
    let public = Ipv4Addr::new(8, 8, 8, 8);
    let private = Ipv4Addr::new(10, 0, 0, 1);
    // The client 10.0.0.1 is stored inverted, as f5ff:fffe.
    let hidden = teredo(public, private);
    assert_eq!(hidden, "2001:0:808:808:8000:1f90:f5ff:fffe");
    assert_eq!(
        reason_of(&filter, &hidden),
        "Teredo client 10.0.0.1: private (RFC 1918)"
    );
    assert_eq!(
        reason_of(&filter, &teredo(Ipv4Addr::LOCALHOST, public)),
        "Teredo server 127.0.0.1: loopback"
    );
    assert_allowed(&filter, &teredo(public, Ipv4Addr::new(1, 1, 1, 1)));
    // The edges of 2001::/32 carry client 255.255.255.255 and 0.0.0.0.
    assert_eq!(
        reason_of(&filter, "2001::"),
        "Teredo client 255.255.255.255: limited broadcast (255.255.255.255)"
    );
    assert_eq!(
        reason_of(&filter, "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"),
        "Teredo client 0.0.0.0: unspecified (0.0.0.0)"
    );
}

#[test]
fn allow_beats_every_deny() {
    let filter = AddressFilter::deny_non_public()
        .deny(prefix("10.0.0.0/8"))
        .deny_if(|ip| ip == IpAddr::from([10, 1, 2, 3]))
        .allow(prefix("10.1.2.3/32"))
        .allow(prefix("169.254.169.254"))
        .allow(prefix("fd00:1::/32"));
    assert_allowed(&filter, "10.1.2.3");
    assert_allowed(&filter, "169.254.169.254");
    assert_allowed(&filter, "fd00:1::5");
    // Checked against the carried IPv4 address too.
    assert_allowed(&filter, "::ffff:10.1.2.3");
    assert_allowed(&filter, "64:ff9b::a01:203");
    assert_allowed(&filter, "2002:a01:203::1");
    // Only the allowed addresses.
    assert_eq!(reason_of(&filter, "10.1.2.4"), "denied prefix 10.0.0.0/8");
    assert_eq!(
        reason_of(&filter, "169.254.169.253"),
        "cloud metadata / link-local (169.254.0.0/16)"
    );
    assert_eq!(reason_of(&filter, "fd00:2::5"), "unique local (fc00::/7)");
    // A Teredo address needs both of its IPv4 addresses accepted.
    let allowed_client = teredo(Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(10, 1, 2, 3));
    assert_allowed(&filter, &allowed_client);
    let private_server = teredo(Ipv4Addr::new(10, 9, 9, 9), Ipv4Addr::new(10, 1, 2, 3));
    assert_eq!(
        reason_of(&filter, &private_server),
        "Teredo server 10.9.9.9: denied prefix 10.0.0.0/8"
    );
    // An allow prefix that contains the IPv6 form itself accepts it without looking inside.
    let nat64 = AddressFilter::deny_non_public().allow(prefix("64:ff9b::/96"));
    assert_allowed(&nat64, "64:ff9b::7f00:1");
}

#[test]
fn deny_prefixes_apply_to_both_families_and_carried_addresses() {
    let filter = AddressFilter::allow_all()
        .deny(prefix("93.184.0.0/16"))
        .deny(prefix("2606:2800::/32"));
    assert_eq!(
        reason_of(&filter, "93.184.216.34"),
        "denied prefix 93.184.0.0/16"
    );
    assert_eq!(
        reason_of(&filter, "::ffff:93.184.216.34"),
        "IPv4-mapped 93.184.216.34: denied prefix 93.184.0.0/16"
    );
    assert_eq!(
        reason_of(&filter, "2606:2800::1"),
        "denied prefix 2606:2800::/32"
    );
    assert_allowed(&filter, "93.185.0.0");
    assert_allowed(&filter, "2606:2801::1");
    // Without the built-in policy, special ranges pass.
    assert_allowed(&filter, "127.0.0.1");
    assert_allowed(&filter, "::ffff:127.0.0.1");
}

#[test]
fn deny_if_sees_given_and_carried_addresses() {
    let filter = AddressFilter::allow_all().deny_if(|ip| ip == IpAddr::from([1, 1, 1, 1]));
    assert_eq!(reason_of(&filter, "1.1.1.1"), "custom rule");
    assert_eq!(
        reason_of(&filter, "::ffff:1.1.1.1"),
        "IPv4-mapped 1.1.1.1: custom rule"
    );
    assert_eq!(
        reason_of(&filter, "2002:101:101::"),
        "6to4 1.1.1.1: custom rule"
    );
    assert_allowed(&filter, "1.0.0.1");

    let v6_only = AddressFilter::deny_non_public().deny_if(|ip| ip.is_ipv6());
    assert_eq!(reason_of(&v6_only, "2606:4700:4700::1111"), "custom rule");
    assert_allowed(&v6_only, "1.1.1.1");
}

#[test]
fn denied_displays_address_and_reason() {
    let filter = AddressFilter::deny_non_public();
    let denied = match filter.check(ip("127.0.0.1")) {
        Err(denied) => denied,
        Ok(()) => panic!("loopback allowed"),
    };
    assert_eq!(denied.to_string(), "127.0.0.1 is denied: loopback");
    let denied = match filter.check(ip("::ffff:127.0.0.1")) {
        Err(denied) => denied,
        Ok(()) => panic!("mapped loopback allowed"),
    };
    assert_eq!(
        denied.to_string(),
        "::ffff:127.0.0.1 is denied: IPv4-mapped 127.0.0.1: loopback"
    );
    let error: &dyn Error = &denied;
    assert!(error.source().is_none());
}

#[test]
fn filters_clone_cheaply_and_cross_threads() {
    fn send_sync<T: Send + Sync + Clone + fmt::Debug>() {}
    send_sync::<AddressFilter>();
    send_sync::<Denied>();
    send_sync::<IpPrefix>();
    send_sync::<InvalidPrefix>();

    let base = AddressFilter::deny_non_public();
    let copy = base.clone();
    assert!(Arc::ptr_eq(&base.rules, &copy.rules));
    // Extending a shared filter copies its rules and leaves the original alone.
    let extended = copy.allow(prefix("127.0.0.1/32"));
    assert_allowed(&extended, "127.0.0.1");
    assert!(base.check(ip("127.0.0.1")).is_err());

    let debug = format!(
        "{:?}",
        extended.deny(prefix("10.0.0.0/8")).deny_if(|_| false)
    );
    assert_eq!(
        debug,
        "AddressFilter { deny_non_public: true, allow: [127.0.0.1/32], deny: [10.0.0.0/8], \
         custom_rules: 1 }"
    );
    assert!(!AddressFilter::default().rules.non_public);
}

#[test]
fn prefixes_parse_and_display() {
    let cases = [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
        ("fc00::/7", "fc00::/7"),
        ("192.0.2.7", "192.0.2.7/32"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("10.0.0.0/08", "10.0.0.0/8"),
    ];
    for (input, shown) in cases {
        assert_eq!(prefix(input).to_string(), shown);
        assert_eq!(prefix(shown), prefix(input));
    }
    let net = prefix("172.16.0.0/12");
    assert_eq!(net.addr(), ip("172.16.0.0"));
    assert_eq!(net.len(), 12);
    assert!(net.contains(ip("172.31.255.255")));
    assert!(!net.contains(ip("172.32.0.0")));
    assert!(!net.contains(ip("::ffff:172.16.0.1")));
    assert!(prefix("::/0").contains(ip("ffff::1")));
    assert!(!prefix("::/0").contains(ip("1.2.3.4")));
    assert_eq!(IpPrefix::from(Ipv4Addr::LOCALHOST), prefix("127.0.0.1/32"));
    assert_eq!(IpPrefix::from(Ipv6Addr::LOCALHOST), prefix("::1/128"));
}

#[test]
fn prefix_errors_name_the_bad_part() {
    assert_eq!(
        parse_error("10.0.0.0/33"),
        "10.0.0.0/33: prefix length 33 is over 32"
    );
    assert_eq!(
        parse_error("::/129"),
        "::/129: prefix length 129 is over 128"
    );
    assert_eq!(
        parse_error("10.0.0.0/300"),
        "10.0.0.0/300: prefix length 300 is over 32"
    );
    assert_eq!(
        parse_error("10.0.0/8"),
        "10.0.0/8: `10.0.0` is not an IP address"
    );
    assert_eq!(parse_error("127.1"), "127.1: `127.1` is not an IP address");
    assert_eq!(
        parse_error("010.0.0.0/8"),
        "010.0.0.0/8: `010.0.0.0` is not an IP address"
    );
    assert_eq!(
        parse_error(" 10.0.0.0/8"),
        " 10.0.0.0/8: ` 10.0.0.0` is not an IP address"
    );
    assert_eq!(
        parse_error("10.0.0.0/x"),
        "10.0.0.0/x: prefix length `x` is not a number"
    );
    assert_eq!(
        parse_error("10.0.0.0/+8"),
        "10.0.0.0/+8: prefix length `+8` is not a number"
    );
    assert_eq!(
        parse_error("10.0.0.0/8/9"),
        "10.0.0.0/8/9: prefix length `8/9` is not a number"
    );
    assert_eq!(
        parse_error("10.0.0.0/-1"),
        "10.0.0.0/-1: prefix length `-1` is not a number"
    );
    assert_eq!(
        parse_error("10.0.0.0/"),
        "10.0.0.0/: missing prefix length after '/'"
    );
    assert_eq!(parse_error("/8"), "/8: missing address before '/'");
    assert_eq!(parse_error(""), "empty prefix");
    assert_eq!(
        parse_error("10.0.0.1/8"),
        "10.0.0.1/8: host bits are set; the network is 10.0.0.0/8"
    );
    assert_eq!(
        parse_error("fe80::1%eth0/64"),
        "fe80::1%eth0/64: zone index `%eth0` is not allowed in a prefix"
    );
    let err = match IpPrefix::new(ip("10.0.0.0"), 33) {
        Err(e) => e,
        Ok(p) => panic!("accepted {p}"),
    };
    assert_eq!(err.to_string(), "10.0.0.0/33: prefix length 33 is over 32");
    assert_eq!(err.input(), "10.0.0.0/33");
    assert_eq!(err.reason(), "prefix length 33 is over 32");
    assert!(IpPrefix::new(ip("fc00::"), 5).is_err());
    assert_eq!(IpPrefix::new(ip("fc00::"), 7), Ok(prefix("fc00::/7")));
}

#[test]
fn built_in_tables_are_well_formed() {
    for rule in V4_RULES {
        assert!(rule.len <= 32, "{rule:?}");
        assert_eq!(rule.net & !mask_v4(rule.len), 0, "host bits in {rule:?}");
    }
    for rule in V6_RULES {
        assert!(rule.len <= 128, "{rule:?}");
        assert_eq!(rule.net & !mask_v6(rule.len), 0, "host bits in {rule:?}");
    }
}

proptest! {
    #[test]
    fn check_never_panics(bits in any::<u128>(), v4 in any::<u32>()) {
        let filters = [
            AddressFilter::deny_non_public(),
            AddressFilter::deny_non_public()
                .allow(prefix("10.0.0.0/8"))
                .deny(prefix("2000::/3"))
                .deny_if(|ip| ip.is_ipv4()),
        ];
        for filter in &filters {
            let _ = filter.check(IpAddr::V6(Ipv6Addr::from_bits(bits)));
            let _ = filter.check(IpAddr::V4(Ipv4Addr::from_bits(v4)));
        }
    }

    #[test]
    fn allow_all_allows_everything(bits in any::<u128>(), v4 in any::<u32>()) {
        let filter = AddressFilter::allow_all();
        prop_assert!(filter.check(IpAddr::V6(Ipv6Addr::from_bits(bits))).is_ok());
        prop_assert!(filter.check(IpAddr::V4(Ipv4Addr::from_bits(v4))).is_ok());
    }

    #[test]
    fn carried_ipv4_is_judged_like_plain_ipv4(v4 in any::<u32>()) {
        let filter = AddressFilter::deny_non_public();
        let plain = Ipv4Addr::from_bits(v4);
        let verdict = filter.check(IpAddr::V4(plain)).map_err(|d| d.reason().to_owned());
        let forms = [
            ("IPv4-mapped", plain.to_ipv6_mapped()),
            ("NAT64", Ipv6Addr::from_bits(NAT64 | u128::from(v4))),
            ("6to4", Ipv6Addr::from_bits(SIX_TO_FOUR | (u128::from(v4) << 80))),
        ];
        for (form, wrapped) in forms {
            let wrapped_verdict = filter.check(IpAddr::V6(wrapped)).map_err(|d| d.reason().to_owned());
            match &verdict {
                Ok(()) => prop_assert_eq!(wrapped_verdict, Ok(())),
                Err(reason) => prop_assert_eq!(wrapped_verdict, Err(format!("{form} {plain}: {reason}"))),
            }
        }
    }

    #[test]
    fn std_classified_specials_are_denied(bits in any::<u128>(), v4 in any::<u32>()) {
        let filter = AddressFilter::deny_non_public();
        let a = Ipv4Addr::from_bits(v4);
        if a.is_private() || a.is_loopback() || a.is_link_local() || a.is_multicast()
            || a.is_broadcast() || a.is_documentation() || a.is_unspecified()
        {
            prop_assert!(filter.check(IpAddr::V4(a)).is_err());
        }
        let b = Ipv6Addr::from_bits(bits);
        if b.is_loopback() || b.is_unspecified() || b.is_multicast() || b.is_unique_local()
            || b.is_unicast_link_local() || (bits >> 125) != 1
        {
            prop_assert!(filter.check(IpAddr::V6(b)).is_err() || b.to_ipv4_mapped().is_some()
                || in_v6(NAT64, 96, bits) || in_v6(NAT64_LOCAL, 48, bits));
        }
    }

    #[test]
    fn prefix_display_round_trips(bits in any::<u128>(), len in 0u8..=128) {
        let addr = Ipv6Addr::from_bits(bits & mask_v6(len));
        let net = IpPrefix::new(IpAddr::V6(addr), len);
        prop_assert!(net.is_ok());
        if let Ok(net) = net {
            prop_assert_eq!(net.to_string().parse::<IpPrefix>(), Ok(net));
        }
    }

    #[test]
    fn prefix_parsing_never_panics(text in "\\PC{0,40}") {
        let _ = text.parse::<IpPrefix>();
    }
}

/// A network-specific NAT64 prefix, once the filter knows it (configured or discovered), is
/// looked through like `64:ff9b::/96`: the IPv4 address it stands for decides, at every length.
#[test]
fn known_nat64_prefixes_are_looked_through() {
    use crate::nat64::Nat64Prefix;
    let lengths = [
        "2001:db8::/32",
        "2001:db8:100::/40",
        "2001:db8:122::/48",
        "2001:db8:122:300::/56",
        "2001:db8:122:344::/64",
        "2001:db8:122:344::/96",
    ];
    for text in lengths {
        let nat64: Nat64Prefix = text.parse().expect("test prefix");
        let synthesized = |v4: [u8; 4]| nat64.embed(v4.into()).to_string();
        let unaware = AddressFilter::deny_non_public().deny(prefix("10.0.0.0/8"));
        // Unknown, the prefix is only an IPv6 range: documentation here, whatever it carries.
        assert_eq!(
            reason_of(&unaware, &synthesized([8, 8, 8, 8])),
            "documentation (2001:db8::/32)"
        );
        let filter = unaware.knowing_nat64(&[nat64]);
        assert_allowed(&filter, &synthesized([8, 8, 8, 8]));
        assert_eq!(
            reason_of(&filter, &synthesized([127, 0, 0, 1])),
            format!("NAT64 {text} 127.0.0.1: loopback")
        );
        assert_eq!(
            reason_of(&filter, &synthesized([169, 254, 169, 254])),
            format!("NAT64 {text} 169.254.169.254: cloud metadata / link-local (169.254.0.0/16)")
        );
        assert_eq!(
            reason_of(&filter, &synthesized([10, 1, 2, 3])),
            format!("NAT64 {text} 10.1.2.3: denied prefix 10.0.0.0/8")
        );
    }
    // Added rules about IPv4 addresses hold under a known prefix with no built-in policy too.
    let nat64: Nat64Prefix = "2001:db8:64::/96".parse().expect("test prefix");
    let filter = AddressFilter::allow_all()
        .deny(prefix("192.0.2.0/24"))
        .knowing_nat64(&[nat64]);
    assert_eq!(
        reason_of(&filter, "2001:db8:64::c000:201"),
        "NAT64 2001:db8:64::/96 192.0.2.1: denied prefix 192.0.2.0/24"
    );
    assert_allowed(&filter, "2001:db8:64::c633:6401");
}
