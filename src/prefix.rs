//! Prefix arithmetic shared by ranking (RFC 6724 longest matching prefix, policy rows) and the
//! address filter (its rules and `IpPrefix`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The length of a full address of `addr`'s family.
pub(crate) fn max_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with every bit past `len` cleared.
pub(crate) fn network_of(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & mask_v4(len))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & mask_v6(len))),
    }
}

/// The netmask of a `len`-bit IPv4 prefix; lengths past 32 saturate to all ones.
pub(crate) const fn mask_v4(len: u8) -> u32 {
    // `checked_shl` turns the shift by 32 of a /0 into `None`, which is the empty mask.
    match u32::MAX.checked_shl(32u32.saturating_sub(len as u32)) {
        Some(mask) => mask,
        None => 0,
    }
}

/// The netmask of a `len`-bit IPv6 prefix; lengths past 128 saturate to all ones.
pub(crate) const fn mask_v6(len: u8) -> u128 {
    match u128::MAX.checked_shl(128u32.saturating_sub(len as u32)) {
        Some(mask) => mask,
        None => 0,
    }
}

pub(crate) const fn in_v4(net: u32, len: u8, addr: u32) -> bool {
    (net ^ addr) & mask_v4(len) == 0
}

pub(crate) const fn in_v6(net: u128, len: u8, addr: u128) -> bool {
    (net ^ addr) & mask_v6(len) == 0
}
