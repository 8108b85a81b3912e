//! Crate internals for `benches/` only: not part of the API, may change in any release.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::plan::Pair;
use crate::plan::{Candidate, Plan, Ranking};
use crate::rank::{Destination, PolicyTable};

/// Plans `addrs` as the connector would (its default ranking, families interleaved, duplicates
/// dropped, no cap) and returns the order the race would take them in. No syscalls: every
/// destination counts as routable from a fixed source of its own family.
pub fn plan_order(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    const SOURCE_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const SOURCE_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let mut plan = Plan::new(
        1,
        addrs.len(),
        Ranking::Rfc6724(std::sync::Arc::new(PolicyTable::default())),
        None,
    );
    plan.add(addrs.iter().enumerate().map(|(i, &remote)| Candidate {
        pair: Pair {
            local: None,
            remote,
        },
        host: None,
        order: (0, i, 0),
        dest: Destination {
            addr: remote.ip(),
            source: Some(if remote.is_ipv4() {
                SOURCE_V4
            } else {
                SOURCE_V6
            }),
        },
        probed: true,
        group: 0,
        via: None,
    }));
    std::iter::from_fn(|| plan.next())
        .map(|candidate| candidate.pair.remote)
        .collect()
}
