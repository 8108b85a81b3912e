//! The ordered list of attempts: ranked candidates, families interleaved, duplicates removed,
//! capped; late answers join the part not yet tried.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use crate::dial::Pair;
use crate::resolve::Family;

/// One address the connect may try, with what ranking needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) pair: Pair,
    /// The name it came from; `None` for an IP literal.
    pub(crate) host: Option<Arc<str>>,
    /// The caller's order: target index, then position in the resolver's answer. Ties in rank
    /// keep it (RFC 6724 rule 10).
    pub(crate) order: (usize, usize),
    /// The source address the kernel would use for this destination; `None` when it has no
    /// route. Unknown (not probed) counts as routable.
    pub(crate) source: Option<IpAddr>,
    /// Whether the source probe found a route.
    pub(crate) routable: bool,
}

impl Candidate {
    pub(crate) fn family(&self) -> Family {
        Family::of(self.pair.remote.ip())
    }
}

/// Orders two candidates: `Less` means `a` is tried first.
pub(crate) type Rank = dyn Fn(&Candidate, &Candidate) -> Ordering + Send + Sync;

/// The candidates not yet tried, in the order the race takes them.
pub(crate) struct Plan {
    /// Sorted by `rank`, best first.
    untried: Vec<Candidate>,
    seen: HashSet<Pair>,
    rank: Box<Rank>,
    first_family_count: usize,
    max_attempts: usize,
    taken: usize,
    preferred: Option<Family>,
    last: Option<Family>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("untried", &self.untried)
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// An empty plan. `rank` orders candidates; ties must be broken by `Candidate::order`.
    pub(crate) fn new(first_family_count: usize, max_attempts: usize, rank: Box<Rank>) -> Plan {
        Plan {
            untried: Vec::new(),
            seen: HashSet::new(),
            rank,
            first_family_count,
            max_attempts,
            taken: 0,
            preferred: None,
            last: None,
        }
    }

    /// Adds candidates to the untried part, each at its rank; a pair seen before is dropped.
    pub(crate) fn add(&mut self, candidates: impl IntoIterator<Item = Candidate>) {
        for candidate in candidates {
            if !self.seen.insert(candidate.pair) {
                continue;
            }
            let at = self
                .untried
                .partition_point(|placed| (self.rank)(placed, &candidate) != Ordering::Greater);
            self.untried.insert(at, candidate);
        }
    }

    /// Takes the next candidate to try, interleaving families as RFC 8305 §4 says: the first
    /// `first_family_count` from the preferred family (the best candidate's), then one of each
    /// family in turn, taking the best untried candidate of the family whose turn it is, or of the
    /// other family when that one has none left. `None` when nothing is left or the cap is reached.
    pub(crate) fn next(&mut self) -> Option<Candidate> {
        if self.taken >= self.max_attempts || self.untried.is_empty() {
            return None;
        }
        let preferred = *self.preferred.get_or_insert(self.untried[0].family());
        let wanted = match self.last {
            Some(last) if self.taken >= self.first_family_count => last.other(),
            _ => preferred,
        };
        let at = self
            .untried
            .iter()
            .position(|candidate| candidate.family() == wanted)
            .unwrap_or(0);
        let candidate = self.untried.remove(at);
        self.taken += 1;
        self.last = Some(candidate.family());
        Some(candidate)
    }

    /// Whether an untried candidate of this family is waiting.
    pub(crate) fn has(&self, family: Family) -> bool {
        self.untried
            .iter()
            .any(|candidate| candidate.family() == family)
    }

    /// Nothing more will be taken: empty, or the attempt cap is reached.
    pub(crate) fn is_done(&self) -> bool {
        self.untried.is_empty() || self.taken >= self.max_attempts
    }

    /// How many candidates are waiting.
    pub(crate) fn untried(&self) -> usize {
        self.untried.len()
    }

    /// Everything in the order `next` would take it, for showing the plan; empties the plan.
    #[cfg(test)]
    pub(crate) fn drain(&mut self) -> Vec<Candidate> {
        std::iter::from_fn(|| self.next()).collect()
    }
}

/// The caller's order alone.
pub(crate) fn input_order(a: &Candidate, b: &Candidate) -> Ordering {
    a.order.cmp(&b.order)
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
            order,
            source: None,
            routable: true,
        }
    }

    fn plan(first_family_count: usize, max: usize, remotes: &[&str]) -> Vec<String> {
        let mut plan = Plan::new(first_family_count, max, Box::new(input_order));
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
        let mut capped = Plan::new(1, 2, Box::new(input_order));
        capped.add((0..5).map(|i| candidate(&format!("127.0.0.{}:1", i + 1), (0, i))));
        assert_eq!(capped.drain().len(), 2);
        assert_eq!(capped.untried(), 3);
        assert!(capped.is_done());
    }

    #[test]
    fn late_answers_join_the_untried_part_in_order() {
        let mut plan = Plan::new(1, 100, Box::new(input_order));
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
