//! The ordered list of attempts: every usable (local, remote) pair, ranked, families
//! interleaved, duplicates removed, capped; late answers join the part not yet tried.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::filter::AddressFilter;
use crate::local::{self, Route, RouteProbe};
use crate::rank::{self, Destination, PolicyTable};
use crate::report::{SkipReason, Skipped};
use crate::resolve::Family;

/// One attempt's target: where from (if bound) and where to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Pair {
    pub(crate) local: Option<SocketAddr>,
    pub(crate) remote: SocketAddr,
}

/// Where an endpoint goes in the plan: its HTTPS priority group and the record it came from
/// (the default, group 0 and no record, for addresses no HTTPS record shaped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) group: u32,
    pub(crate) via: Option<crate::svcb::HttpsVia>,
}

/// One (local, remote) pair the connect may try, with what ranking needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) pair: Pair,
    /// The name it came from; `None` for an IP literal.
    pub(crate) host: Option<Arc<str>>,
    /// The caller's order: target index, position in the resolver's answer, then the rank of
    /// the local address among those that can reach this destination. Ties in rank keep it
    /// (RFC 6724 rule 10).
    pub(crate) order: (usize, usize, usize),
    /// The destination with the source address it would use (`None`: no route).
    pub(crate) dest: Destination,
    /// Whether `dest.source` came from the kernel; route lookups wait until there is more than
    /// one candidate to order, so a single address costs none.
    pub(crate) probed: bool,
    /// Its HTTPS record's priority group (HEv3): lower groups are tried first, ranking and
    /// interleaving apply within each. 0 when no HTTPS record shapes the connect.
    pub(crate) group: u32,
    /// The HTTPS record's service it came from, if any.
    pub(crate) via: Option<crate::svcb::HttpsVia>,
}

impl Candidate {
    pub(crate) fn family(&self) -> Family {
        Family::of(self.pair.remote.ip())
    }
}

/// How the untried candidates are ordered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ranking {
    /// The caller's order: targets as given, each name's addresses as the resolver gave them.
    InputOrder,
    /// RFC 6724 §6 destination ordering with this policy table.
    Rfc6724(Arc<PolicyTable>),
}

/// The candidates not yet tried, in the order the race takes them.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The first candidate, while it is the only one ever added: a lone address (the most
    /// common connect) is taken from here with no dedup list, no sort and no queue. A second
    /// candidate sends it down the general path.
    /// (Once taken, it stays here as `Lone::Taken`, and enters `seen` only when another
    /// candidate comes.) One field for both keeps the race state small: a lone connect's
    /// whole state stays in one small allocation.
    lone: Lone,
    /// Candidates added since the last sort, in no order.
    incoming: Vec<Candidate>,
    /// How many of `incoming` are IPv6 and IPv4 (indexed by `slot`): `has` is asked on every
    /// poll while answers come in, and must not scan thousands of candidates each time.
    incoming_count: [usize; 2],
    /// The sorted candidates of each family (indexed by `slot`), best LAST, so that taking one
    /// is a pop: a plan of 10,000 drains in n log n.
    queues: [Vec<Candidate>; 2],
    /// Whether the queues are up to date: nothing added, no earlier place learned and no
    /// favourite named since the last sort. Sorting waits until a candidate is taken, so that
    /// a burst of answers costs one sort.
    sorted: bool,
    /// Every pair ever added, with the earliest place in the caller's order it was given at: a
    /// pair that two names (or a name and a literal) share ranks by its first place, whichever
    /// answer came first.
    seen: Seen,
    ranking: Ranking,
    /// A pair to try before everything else (the last winner, from history).
    favourite: Option<Pair>,
    /// Looks up the source address of unprobed candidates when ranking needs it.
    probe: Option<RouteProbe>,
    /// Probe even a lone candidate (for showing the plan).
    probe_always: bool,
    first_family_count: usize,
    max_attempts: usize,
    taken: usize,
    preferred: Option<Family>,
    last: Option<Family>,
    /// HEv3 priority groups: the family of each group's best untried candidate at the last
    /// sort, lowest group first; empty while every candidate is in group 0.
    group_leaders: Vec<(u32, Family)>,
    /// The group being taken, and how many were taken from it.
    current_group: Option<(u32, usize)>,
}

/// The plan's first candidate while it is the only one ever added.
#[derive(Debug)]
enum Lone {
    Empty,
    /// Added, not yet taken.
    Waiting(Candidate),
    /// Taken: its pair and place, for `seen` once another candidate comes.
    Taken(Pair, Order),
}

impl Lone {
    fn is_empty(&self) -> bool {
        matches!(self, Lone::Empty)
    }

    fn waiting(&self) -> Option<&Candidate> {
        match self {
            Lone::Waiting(lone) => Some(lone),
            _ => None,
        }
    }

    fn take_waiting(&mut self) -> Option<Candidate> {
        match std::mem::replace(self, Lone::Empty) {
            Lone::Waiting(lone) => Some(lone),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl Plan {
    /// An empty plan.
    pub(crate) fn new(
        first_family_count: usize,
        max_attempts: usize,
        ranking: Ranking,
        probe: Option<RouteProbe>,
    ) -> Plan {
        Plan {
            lone: Lone::Empty,
            incoming: Vec::new(),
            incoming_count: [0, 0],
            queues: [Vec::new(), Vec::new()],
            sorted: true,
            seen: Seen::default(),
            ranking,
            favourite: None,
            probe,
            probe_always: false,
            first_family_count,
            max_attempts,
            taken: 0,
            preferred: None,
            last: None,
            group_leaders: Vec::new(),
            current_group: None,
        }
    }

    /// Looks up every candidate's source, even when there is only one: for showing the plan.
    pub(crate) fn probe_always(&mut self, probe: RouteProbe) {
        self.probe = Some(probe);
        self.probe_always = true;
        self.sorted = false;
        // A lone candidate is probed like any other, on the general path.
        if let Some(lone) = self.lone.take_waiting() {
            self.add_general(lone);
        }
    }

    /// Puts this pair first whenever it is in the plan (RFC 8305 §5: what won last time).
    pub(crate) fn favour(&mut self, pair: Pair) {
        self.favourite = Some(pair);
        self.sorted = false;
    }

    /// Adds candidates to the untried part; a pair seen before is dropped, keeping the earlier
    /// of its two places in the caller's order.
    pub(crate) fn add(&mut self, candidates: impl IntoIterator<Item = Candidate>) {
        for candidate in candidates {
            let pristine = self.taken == 0 && self.lone.is_empty() && self.seen.is_empty();
            if pristine && !self.probe_always {
                self.lone = Lone::Waiting(candidate);
                continue;
            }
            match std::mem::replace(&mut self.lone, Lone::Empty) {
                Lone::Waiting(lone) => self.add_general(lone),
                Lone::Taken(pair, order) => {
                    self.seen.record(pair, order);
                }
                Lone::Empty => {}
            }
            self.add_general(candidate);
        }
    }

    fn add_general(&mut self, candidate: Candidate) {
        match self.seen.record(candidate.pair, candidate.order) {
            Recorded::New => {
                self.incoming_count[slot(candidate.family())] += 1;
                self.incoming.push(candidate);
                self.sorted = false;
            }
            Recorded::Earlier => self.sorted = false,
            Recorded::NotEarlier => {}
        }
    }

    fn sort(&mut self) {
        let mut untried = std::mem::take(&mut self.incoming);
        self.incoming_count = [0, 0];
        for queue in &mut self.queues {
            untried.append(queue);
        }
        if let Some(probe) = self.probe {
            if untried.len() > 1 || self.probe_always {
                for candidate in untried.iter_mut().filter(|c| !c.probed) {
                    let remote = candidate.pair.remote;
                    candidate.dest.source = if remote.ip().is_loopback() && !self.probe_always {
                        // A loopback destination is reached from the loopback: its source
                        // matches it in scope, label and prefix, which is all ranking reads.
                        // (Should the system lack that address, the attempt fails at once and
                        // the next starts.) Saves a socket and three system calls per address,
                        // as for "localhost".
                        Some(remote.ip())
                    } else {
                        match probe(None, remote) {
                            Route::Via(source) => Some(source),
                            Route::None | Route::BindFails => None,
                        }
                    };
                    candidate.probed = true;
                }
            }
        }
        for candidate in &mut untried {
            if let Some(first) = self.seen.get(&candidate.pair) {
                candidate.order = first;
            }
        }
        untried.sort_by_key(|candidate| candidate.order);
        if let Ranking::Rfc6724(table) = &self.ranking {
            rank::sort_by_rfc6724(&mut untried, |candidate| &candidate.dest, table);
        }
        if let Some(favourite) = self.favourite {
            if let Some(at) = untried.iter().position(|c| c.pair == favourite) {
                let candidate = untried.remove(at);
                untried.insert(0, candidate);
            }
        }
        self.sort_groups(&mut untried);
        self.sorted = true;
        let Some(best) = untried.first().map(Candidate::family) else {
            return;
        };
        // RFC 8305 §4: the family of the first address sorted is the one that goes first.
        self.preferred.get_or_insert(best);
        if untried.iter().all(|candidate| candidate.family() == best) {
            // One family (a lone address, or "localhost" over IPv4): the sorted list, reversed,
            // is its queue, with no copy into another allocation. (Both queues were emptied
            // into `untried` above.)
            untried.reverse();
            self.queues[slot(best)] = untried;
            return;
        }
        for candidate in untried.into_iter().rev() {
            self.queues[slot(candidate.family())].push(candidate);
        }
    }

    /// Takes the next candidate to try, interleaving families as RFC 8305 §4 says: the first
    /// `first_family_count` from the preferred family (the best candidate's), then one of each
    /// family in turn, taking the best untried candidate of the family whose turn it is, or of the
    /// other family when that one has none left. `None` when nothing is left or the cap is reached.
    pub(crate) fn next(&mut self) -> Option<Candidate> {
        if self.taken >= self.max_attempts || self.untried() == 0 {
            return None;
        }
        if let Some(lone) = self.lone.take_waiting() {
            self.taken += 1;
            self.preferred = Some(lone.family());
            self.last = self.preferred;
            // Remembered, so that the same pair coming again (a late answer) is not tried twice.
            self.lone = Lone::Taken(lone.pair, lone.order);
            return Some(lone);
        }
        if !self.sorted {
            self.sort();
        }
        if !self.group_leaders.is_empty() {
            return self.next_in_group();
        }
        let preferred = self.preferred?;
        let wanted = match self.last {
            Some(last) if self.taken >= self.first_family_count => last.other(),
            _ => preferred,
        };
        let candidate = match self.queues[slot(wanted)].pop() {
            Some(candidate) => candidate,
            None => self.queues[slot(wanted.other())].pop()?,
        };
        self.taken += 1;
        self.last = Some(candidate.family());
        Some(candidate)
    }

    /// HEv3: puts lower priority groups first, keeping the ranked order within each (the sort
    /// is stable), and notes each group's leading family. Nothing to do in group 0 alone.
    fn sort_groups(&mut self, untried: &mut [Candidate]) {
        self.group_leaders.clear();
        if untried.iter().all(|candidate| candidate.group == 0) {
            return;
        }
        untried.sort_by_key(|candidate| candidate.group);
        for candidate in untried.iter() {
            if self.group_leaders.last().map(|(group, _)| *group) != Some(candidate.group) {
                self.group_leaders
                    .push((candidate.group, candidate.family()));
            }
        }
    }

    /// [`next`](Self::next) with priority groups: the lowest group left goes first, and within
    /// it families interleave as RFC 8305 §4 says, starting from the group's best candidate.
    fn next_in_group(&mut self) -> Option<Candidate> {
        let top = |queue: &Vec<Candidate>| queue.last().map(|candidate| candidate.group);
        let group = self.queues.iter().filter_map(top).min()?;
        let taken_in_group = match self.current_group {
            Some((current, taken)) if current == group => taken,
            _ => 0,
        };
        let leader = self
            .group_leaders
            .iter()
            .find(|(leading, _)| *leading == group)
            .map(|(_, family)| *family);
        let wanted = match (self.last, leader) {
            (Some(last), _) if taken_in_group >= self.first_family_count => last.other(),
            (_, Some(leader)) => leader,
            (last, None) => last.map_or(Family::V6, Family::other),
        };
        let family = if top(&self.queues[slot(wanted)]) == Some(group) {
            wanted
        } else {
            wanted.other()
        };
        let candidate = self.queues[slot(family)].pop()?;
        self.taken += 1;
        self.last = Some(family);
        self.current_group = Some((group, taken_in_group + 1));
        Some(candidate)
    }

    /// Takes out the untried candidates `drop` picks (HTTPS hints that real answers replace),
    /// and forgets their pairs, so that the same pair may come again from the real answer.
    pub(crate) fn remove_untried(&mut self, drop: impl Fn(&Candidate) -> bool) {
        let mut removed = Vec::new();
        if self.lone.waiting().is_some_and(&drop) {
            removed.extend(self.lone.take_waiting().map(|lone| lone.pair));
        }
        for queue in std::iter::once(&mut self.incoming).chain(self.queues.iter_mut()) {
            queue.retain(|candidate| {
                let keep = !drop(candidate);
                if !keep {
                    removed.push(candidate.pair);
                }
                keep
            });
        }
        self.incoming_count = [Family::V6, Family::V4].map(|family| {
            self.incoming
                .iter()
                .filter(|candidate| candidate.family() == family)
                .count()
        });
        for pair in removed {
            self.seen.forget(&pair);
        }
    }

    /// Lets `update` change the untried candidates (an HTTPS answer that came after attempts
    /// started gives the origin's addresses their group and record); they are sorted again
    /// before the next is taken. A pair already taken is out of its reach.
    pub(crate) fn update_untried(&mut self, mut update: impl FnMut(&mut Candidate)) {
        let queued = self.queues.iter_mut().flatten();
        let lone = match &mut self.lone {
            Lone::Waiting(lone) => Some(lone),
            _ => None,
        };
        for candidate in lone.into_iter().chain(&mut self.incoming).chain(queued) {
            update(candidate);
        }
        self.sorted = false;
    }

    /// Whether an untried candidate of this family is waiting.
    pub(crate) fn has(&self, family: Family) -> bool {
        self.lone
            .waiting()
            .is_some_and(|lone| lone.family() == family)
            || self.incoming_count[slot(family)] > 0
            || !self.queues[slot(family)].is_empty()
    }

    /// Forgets the favourite: it was not the first attempt, so it gets no place of honour later.
    pub(crate) fn unfavour(&mut self) {
        self.favourite = None;
    }

    /// Whether this pair was ever added (tried or not).
    pub(crate) fn contains(&self, pair: Pair) -> bool {
        let lone = match &self.lone {
            Lone::Waiting(lone) => lone.pair == pair,
            Lone::Taken(taken, _) => *taken == pair,
            Lone::Empty => false,
        };
        lone || self.seen.get(&pair).is_some()
    }

    /// The attempt cap is reached: nothing more will be taken, whatever is added.
    pub(crate) fn is_capped(&self) -> bool {
        self.taken >= self.max_attempts
    }

    /// The remote addresses not taken (sorted ones first, each family best first); no route
    /// lookups.
    pub(crate) fn untried_remotes(&self) -> Vec<SocketAddr> {
        let queued = self.queues.iter().flat_map(|queue| queue.iter().rev());
        self.lone
            .waiting()
            .into_iter()
            .chain(queued)
            .chain(&self.incoming)
            .map(|candidate| candidate.pair.remote)
            .collect()
    }

    /// How many candidates are waiting.
    pub(crate) fn untried(&self) -> usize {
        usize::from(self.lone.waiting().is_some())
            + self.incoming.len()
            + self.queues[0].len()
            + self.queues[1].len()
    }

    /// Everything left, in the order `next` would take it (ignoring the attempt cap).
    pub(crate) fn drain(&mut self) -> Vec<Candidate> {
        self.max_attempts = usize::MAX;
        std::iter::from_fn(|| self.next()).collect()
    }
}

/// A candidate's place in the caller's order (see [`Candidate::order`]).
type Order = (usize, usize, usize);

/// Every pair added to a plan, with the earliest place it was given at. A list searched in turn
/// while short, as for nearly every connect (no hashing, one small allocation); a hash map once
/// it passes `FEW` pairs, so that 10,000 addresses still dedup in linear time.
#[derive(Debug, Default)]
struct Seen {
    few: Vec<(Pair, Order)>,
    /// Boxed: the map is rare, and inline it would make every race's state larger (48 bytes
    /// against 8), past the allocator's fast size classes for a lone connect.
    #[allow(clippy::box_collection)]
    many: Option<Box<HashMap<Pair, Order>>>,
}

/// More pairs than this move `Seen` to its hash map.
const FEW: usize = 16;

/// What [`Seen::record`] found.
enum Recorded {
    New,
    /// Seen before, at a later place: its place is now this one.
    Earlier,
    NotEarlier,
}

impl Seen {
    fn forget(&mut self, pair: &Pair) {
        self.few.retain(|(seen, _)| seen != pair);
        if let Some(many) = &mut self.many {
            many.remove(pair);
        }
    }

    fn is_empty(&self) -> bool {
        self.few.is_empty() && self.many.as_ref().is_none_or(|many| many.is_empty())
    }

    fn get(&self, pair: &Pair) -> Option<Order> {
        match &self.many {
            Some(many) => many.get(pair).copied(),
            None => self
                .few
                .iter()
                .find(|(seen, _)| seen == pair)
                .map(|(_, order)| *order),
        }
    }

    fn record(&mut self, pair: Pair, order: Order) -> Recorded {
        let room = self.few.len() < FEW;
        let hashed = self.many.is_some();
        let slot = match &mut self.many {
            Some(many) => many.get_mut(&pair),
            None => self
                .few
                .iter_mut()
                .find(|(seen, _)| *seen == pair)
                .map(|(_, order)| order),
        };
        match slot {
            Some(earliest) if order < *earliest => {
                *earliest = order;
                Recorded::Earlier
            }
            Some(_) => Recorded::NotEarlier,
            None if !hashed && room => {
                self.few.push((pair, order));
                Recorded::New
            }
            None => {
                let few = &mut self.few;
                let many = self
                    .many
                    .get_or_insert_with(|| Box::new(few.drain(..).collect()));
                many.insert(pair, order);
                Recorded::New
            }
        }
    }
}

/// Where a family's candidates are kept.
fn slot(family: Family) -> usize {
    match family {
        Family::V6 => 0,
        Family::V4 => 1,
    }
}

/// Turns one resolved address into the pairs to try: the address filter first, then each local
/// address that can reach it, best first by RFC 6724 §5 source selection.
#[derive(Debug)]
pub(crate) struct Pairing {
    pub(crate) locals: Option<Arc<[SocketAddr]>>,
    pub(crate) filter: AddressFilter,
    /// Route lookups for listed local addresses (the plan looks up kernel-chosen sources).
    pub(crate) probe: RouteProbe,
    pub(crate) table: Arc<PolicyTable>,
}

impl Pairing {
    /// The candidates for `remote`, or why it has none.
    pub(crate) fn expand(
        &self,
        remote: SocketAddr,
        host: Option<Arc<str>>,
        order: (usize, usize),
    ) -> Result<Expansion, Skipped> {
        let skip = |reason| Skipped {
            host: host.clone(),
            remote,
            reason,
        };
        if let Err(denied) = self.filter.check(remote.ip()) {
            return Err(skip(SkipReason::Denied(denied)));
        }
        // An IPv4-mapped address is an IPv4 destination; sockets here are never dual-stack. The
        // filter saw it as given, so its reason names the form that hid the address.
        let remote = local::canonical(remote);
        let candidate =
            |local: Option<SocketAddr>, rank: usize, dest: Destination, probed| Candidate {
                pair: Pair { local, remote },
                host: host.clone(),
                order: (order.0, order.1, rank),
                dest,
                probed,
                group: 0,
                via: None,
            };
        let Some(locals) = &self.locals else {
            // Taken as routable from an address of its own family until the plan looks it up.
            let dest = Destination {
                addr: remote.ip(),
                source: Some(local::unspecified_of(remote)),
            };
            return Ok(Expansion::One(Some(candidate(None, 0, dest, false))));
        };
        let mut usable: Vec<(SocketAddr, IpAddr)> = Vec::new();
        let mut reasons: Vec<String> = Vec::new();
        // Locals of the other family are no reason worth reporting: they never could.
        let same_family = locals.iter().filter(|l| l.is_ipv4() == remote.is_ipv4());
        for &local in same_family {
            if let Some(reason) = local::unsuitable(local, remote) {
                reasons.push(format!("{}: {reason}", local.ip()));
                continue;
            }
            match (self.probe)(Some(local), remote) {
                Route::None => reasons.push(format!("{}: no route", local.ip())),
                Route::Via(source) => usable.push((local, source)),
                // Not on this host: still tried, so each attempt reports the bind error.
                Route::BindFails => usable.push((local, local.ip())),
            }
        }
        if usable.is_empty() {
            if reasons.is_empty() {
                reasons.push(format!(
                    "no local address of its family ({})",
                    Family::of(remote.ip())
                ));
            }
            return Err(skip(SkipReason::NoUsableLocal(reasons.join("; "))));
        }
        usable.sort_by(|a, b| rank::compare_sources(a.1, b.1, remote.ip(), &self.table));
        let dest = Destination {
            addr: remote.ip(),
            source: Some(usable[0].1),
        };
        Ok(Expansion::Many(
            usable
                .into_iter()
                .enumerate()
                .map(|(rank, (local, _))| candidate(Some(local), rank, dest, true))
                .collect::<Vec<_>>()
                .into_iter(),
        ))
    }
}

/// The candidates for one address: a lone one when the kernel picks the source (no allocation),
/// or one per usable local address.
#[derive(Debug)]
pub(crate) enum Expansion {
    One(Option<Candidate>),
    Many(std::vec::IntoIter<Candidate>),
}

impl Iterator for Expansion {
    type Item = Candidate;

    fn next(&mut self) -> Option<Candidate> {
        match self {
            Expansion::One(one) => one.take(),
            Expansion::Many(many) => many.next(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::SocketAddr;

    pub(crate) fn candidate(remote: &str, order: (usize, usize)) -> Candidate {
        let remote: SocketAddr = remote.parse().expect("test address");
        Candidate {
            pair: Pair {
                local: None,
                remote,
            },
            host: None,
            order: (order.0, order.1, 0),
            dest: Destination {
                addr: remote.ip(),
                source: Some(local::unspecified_of(remote)),
            },
            probed: true,
            group: 0,
            via: None,
        }
    }

    fn plan(first_family_count: usize, max: usize, remotes: &[&str]) -> Vec<String> {
        let mut plan = Plan::new(first_family_count, max, Ranking::InputOrder, None);
        plan.add(
            remotes
                .iter()
                .enumerate()
                .map(|(i, remote)| candidate(remote, (0, i))),
        );
        plan.drain()
            .into_iter()
            .map(|c| c.pair.remote.to_string())
            .collect()
    }

    fn grouped(remote: &str, order: usize, group: u32) -> Candidate {
        Candidate {
            group,
            ..candidate(remote, (0, order))
        }
    }

    fn take_all(plan: &mut Plan) -> Vec<String> {
        plan.drain()
            .into_iter()
            .map(|c| c.pair.remote.to_string())
            .collect()
    }

    /// HEv3 (draft-ietf-happy-happyeyeballs-v3 §5): ServiceMode priority groups are tried
    /// lowest first, whatever the caller's order; families interleave within each group,
    /// starting from the group's best candidate.
    #[test]
    fn priority_groups_go_in_order_and_interleave_inside() {
        let mut plan = Plan::new(1, 100, Ranking::InputOrder, None);
        plan.add([
            grouped("192.0.2.30:1", 0, 3),
            grouped("192.0.2.20:1", 1, 2),
            grouped("[2001:db8::10]:1", 2, 1),
            grouped("[2001:db8::11]:1", 3, 1),
            grouped("192.0.2.10:1", 4, 1),
            grouped("192.0.2.11:1", 5, 1),
            grouped("[2001:db8::20]:1", 6, 2),
        ]);
        assert_eq!(
            take_all(&mut plan),
            [
                "[2001:db8::10]:1",
                "192.0.2.10:1",
                "[2001:db8::11]:1",
                "192.0.2.11:1",
                // Group 2 starts from its own best (IPv4 here), not from where group 1 ended.
                "192.0.2.20:1",
                "[2001:db8::20]:1",
                "192.0.2.30:1",
            ]
        );
    }

    /// HEv3: groups come before RFC 6724's order, which still orders each group.
    #[test]
    fn ranking_orders_each_group_but_not_across_groups() {
        let source = |remote: SocketAddr| -> IpAddr {
            if remote.is_ipv4() {
                "192.0.2.1".parse().unwrap()
            } else {
                "2001:db8::1".parse().unwrap()
            }
        };
        let mut plan = Plan::new(
            1,
            100,
            Ranking::Rfc6724(Arc::new(PolicyTable::default())),
            None,
        );
        let ranked = |remote: &str, order: usize, group: u32| {
            let mut candidate = grouped(remote, order, group);
            candidate.dest.source = Some(source(candidate.pair.remote));
            candidate
        };
        plan.add([
            ranked("192.0.2.10:1", 0, 1),
            ranked("[2001:db8::10]:1", 1, 1),
            ranked("198.51.100.20:1", 2, 2),
            ranked("[2001:db8::20]:1", 3, 2),
        ]);
        // In each group RFC 6724 puts IPv6 (precedence 40) before IPv4 (35).
        assert_eq!(
            take_all(&mut plan),
            [
                "[2001:db8::10]:1",
                "192.0.2.10:1",
                "[2001:db8::20]:1",
                "198.51.100.20:1",
            ]
        );
    }

    /// A late answer for a lower group goes before what is left of higher ones; the last
    /// winner (history) goes first within its own group only.
    #[test]
    fn late_lower_groups_and_the_favourite_keep_group_order() {
        let mut plan = Plan::new(1, 100, Ranking::InputOrder, None);
        plan.add([
            grouped("192.0.2.20:1", 0, 2),
            grouped("192.0.2.21:1", 1, 2),
            grouped("192.0.2.22:1", 2, 2),
        ]);
        plan.favour(Pair {
            local: None,
            remote: "192.0.2.22:1".parse().unwrap(),
        });
        let first = plan.next().map(|c| c.pair.remote.to_string());
        assert_eq!(first.as_deref(), Some("192.0.2.22:1"));
        plan.add([grouped("192.0.2.10:1", 3, 1)]);
        assert_eq!(
            take_all(&mut plan),
            ["192.0.2.10:1", "192.0.2.20:1", "192.0.2.21:1"]
        );
    }

    /// RFC 8305 §4: families alternate, starting with the first address's family.
    #[test]
    fn families_interleave_from_the_first_address() {
        let order = plan(
            1,
            100,
            &[
                "[::1]:1",
                "[::2]:1",
                "[::3]:1",
                "127.0.0.1:1",
                "127.0.0.2:1",
            ],
        );
        assert_eq!(
            order,
            [
                "[::1]:1",
                "127.0.0.1:1",
                "[::2]:1",
                "127.0.0.2:1",
                "[::3]:1"
            ]
        );
        let order = plan(1, 100, &["127.0.0.1:1", "127.0.0.2:1", "[::1]:1"]);
        assert_eq!(order, ["127.0.0.1:1", "[::1]:1", "127.0.0.2:1"]);
    }

    /// RFC 8305 §4: with a First Address Family Count of 2, two preferred addresses come first.
    #[test]
    fn first_family_count_two() {
        let order = plan(
            2,
            100,
            &[
                "[::1]:1",
                "[::2]:1",
                "[::3]:1",
                "127.0.0.1:1",
                "127.0.0.2:1",
            ],
        );
        assert_eq!(
            order,
            [
                "[::1]:1",
                "[::2]:1",
                "127.0.0.1:1",
                "[::3]:1",
                "127.0.0.2:1"
            ]
        );
    }

    #[test]
    fn duplicates_are_dropped_and_the_cap_holds() {
        let order = plan(1, 100, &["127.0.0.1:1", "127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(order, ["127.0.0.1:1", "127.0.0.1:2"]);
        let mut capped = Plan::new(1, 2, Ranking::InputOrder, None);
        capped.add((0..5).map(|i| candidate(&format!("127.0.0.{}:1", i + 1), (0, i))));
        assert!(capped.next().is_some() && capped.next().is_some());
        assert!(capped.next().is_none());
        assert_eq!(capped.untried(), 3);
        assert!(capped.is_capped());
    }

    #[test]
    fn late_answers_join_the_untried_part_in_order() {
        let mut plan = Plan::new(1, 100, Ranking::InputOrder, None);
        plan.add([candidate("127.0.0.3:1", (1, 0))]);
        let first = plan.next().map(|c| c.pair.remote.to_string());
        assert_eq!(first.as_deref(), Some("127.0.0.3:1"));
        plan.add([
            candidate("127.0.0.4:1", (2, 0)),
            candidate("127.0.0.1:1", (0, 0)),
        ]);
        let rest: Vec<String> = plan
            .drain()
            .into_iter()
            .map(|c| c.pair.remote.to_string())
            .collect();
        assert_eq!(rest, ["127.0.0.1:1", "127.0.0.4:1"]);
    }

    /// A lone candidate, taken before anything else came, is still remembered: the same pair
    /// arriving later (from another name) is not tried again, whether alone or with others.
    #[test]
    fn a_taken_lone_candidate_is_not_tried_again() {
        let mut plan = Plan::new(1, 100, Ranking::InputOrder, None);
        plan.add([candidate("127.0.0.3:1", (1, 0))]);
        assert!(plan.next().is_some());
        plan.add([candidate("127.0.0.3:1", (0, 0))]);
        assert_eq!(plan.untried(), 0);
        assert!(plan.next().is_none());

        let mut plan = Plan::new(1, 100, Ranking::InputOrder, None);
        plan.add([candidate("127.0.0.3:1", (1, 0))]);
        assert!(plan.next().is_some());
        plan.add([
            candidate("127.0.0.4:1", (2, 0)),
            candidate("127.0.0.3:1", (0, 0)),
        ]);
        let rest: Vec<String> = plan
            .drain()
            .into_iter()
            .map(|c| c.pair.remote.to_string())
            .collect();
        assert_eq!(rest, ["127.0.0.4:1"]);
    }

    fn any_remote() -> impl Strategy<Value = String> {
        prop_oneof![
            (1u8..4, 1u16..3).prop_map(|(host, port)| format!("127.0.0.{host}:{port}")),
            (1u8..4, 1u16..3).prop_map(|(host, port)| format!("[::{host}]:{port}")),
        ]
    }

    proptest! {
        /// The plan is a permutation of the deduplicated candidates; each family keeps its
        /// relative order; families alternate while both have candidates left.
        #[test]
        fn plan_properties(
            remotes in proptest::collection::vec(any_remote(), 0..24),
            first_family_count in 1usize..4,
        ) {
            let refs: Vec<&str> = remotes.iter().map(String::as_str).collect();
            let order = plan(first_family_count, 1000, &refs);
            let mut unique: Vec<String> = Vec::new();
            for remote in &remotes {
                if !unique.contains(remote) {
                    unique.push(remote.clone());
                }
            }
            let mut sorted_order = order.clone();
            sorted_order.sort();
            let mut sorted_unique = unique.clone();
            sorted_unique.sort();
            prop_assert_eq!(sorted_order, sorted_unique);
            for v6 in [true, false] {
                let in_plan: Vec<&String> = order.iter().filter(|r| r.starts_with('[') == v6).collect();
                let in_input: Vec<&String> = unique.iter().filter(|r| r.starts_with('[') == v6).collect();
                prop_assert_eq!(in_plan, in_input);
            }
            if let Some(first) = unique.first() {
                let preferred_v6 = first.starts_with('[');
                let preferred = unique.iter().filter(|r| r.starts_with('[') == preferred_v6).count();
                let other = unique.len() - preferred;
                // The expected family sequence: the first-family run, then alternation, then
                // whatever is left of the longer family.
                let (mut p, mut o) = (preferred, other);
                let mut expected = Vec::new();
                let run = first_family_count.min(p);
                expected.extend(std::iter::repeat_n(preferred_v6, run));
                p -= run;
                let mut turn_other = true;
                while p + o > 0 {
                    if (turn_other && o > 0) || p == 0 {
                        expected.push(!preferred_v6);
                        o -= 1;
                    } else {
                        expected.push(preferred_v6);
                        p -= 1;
                    }
                    turn_other = !turn_other;
                }
                let families: Vec<bool> = order.iter().map(|r| r.starts_with('[')).collect();
                prop_assert_eq!(families, expected);
            }
        }
    }
}
