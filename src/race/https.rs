//! Happy Eyeballs v3 (draft-ietf-happy-happyeyeballs-v3): HTTPS records asked beside AAAA and A,
//! and what their answer does to the race. Kept apart from the RFC 8305 rules; the race calls in
//! at a few named points (asking, answers, whether racing may begin).
//!
//! - Each name target's HTTPS records are asked (`_PORT._https.NAME` off port 443) when the race
//!   begins; AliasMode answers are followed, bounded and loop-free.
//! - While that answer is out, the name's A and AAAA answers are held back: racing starts once
//!   there is an address and either the HTTPS answer came or the resolution delay passed since
//!   the first address (HEv3 §4).
//! - A usable answer puts each service's addresses in the plan with its priority as the group
//!   (lowest first), at the service's port; `ipv4hint`/`ipv6hint` stand in until the target's
//!   real answer of that family replaces them; the origin's own addresses come last.
//! - A late answer (racing began without it) counts as RFC 8305 §6 says of any answer that
//!   comes during the race: attempts started go on, and its services are sorted into what is
//!   not yet attempted by the same rules. A pair already attempted is not dialed again; an
//!   origin address not yet attempted at a service's port on the origin takes that record
//!   (group, ALPN, ECH), the others go last. Skips are reported as for a timely answer.
//! - A late answer still out keeps the attempt timer running (what it adds starts on the
//!   attempt delay's schedule) but never holds the race open: once everything known has
//!   failed the connect ends, so an HTTPS query costs at most the resolution delay, spent
//!   before racing began.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::{slot, Dial, Handshake, Race};
use crate::plan::Placement;
use crate::resolve::Family;
use crate::svcb::{self, AliasChain, Answer, ClientSupport, HttpsVia, Service, FALLBACK_GROUP};
use crate::target::Host;

type HttpsLookup =
    Pin<Box<dyn Future<Output = (usize, io::Result<Vec<crate::HttpsRecord>>)> + Send>>;

/// The HTTPS side of one race.
pub(super) struct HttpsRace {
    client: ClientSupport,
    out: FuturesUnordered<HttpsLookup>,
    /// One per target; `None` for IP literals.
    targets: Vec<Option<TargetHttps>>,
    /// Service target names other than their origin, looked up for A and AAAA; their lookups'
    /// index in the race is `targets.len() + ` their index here.
    extra: Vec<ExtraName>,
}

impl std::fmt::Debug for HttpsRace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsRace")
            .field("out", &self.out.len())
            .finish_non_exhaustive()
    }
}

struct TargetHttps {
    /// The origin name, normalized.
    origin: String,
    chain: AliasChain,
    state: State,
    /// The origin's addresses that came while the HTTPS answer was out: (position, address).
    held: Vec<(usize, IpAddr)>,
    /// Whether the origin's answer of each family is in.
    answered: [bool; 2],
}

enum State {
    /// The HTTPS answer (or the next alias's) is out.
    Asking,
    /// The answer is still out but racing began without it (the resolution delay passed): the
    /// origin's addresses go in as without records, and are kept here, in the caller's order,
    /// for the answer to shape what of them is not yet attempted.
    Late(Vec<(usize, IpAddr)>),
    /// No usable records (none, an error): the name is connected to as without.
    Plain,
    /// The usable services, lowest priority first.
    Services(Vec<Arc<Service>>),
}

struct ExtraName {
    name: Arc<str>,
    answered: [bool; 2],
    /// How many addresses it brought so far (their positions in the caller's order).
    found: usize,
}

impl HttpsRace {
    pub(super) fn new(client: ClientSupport) -> HttpsRace {
        HttpsRace {
            client,
            out: FuturesUnordered::new(),
            targets: Vec::new(),
            extra: Vec::new(),
        }
    }
}

/// Positions of hints and of service target names' addresses in the caller's order: after the
/// origin's own answers (their positions stay below this).
const LATER: usize = 1 << 20;

impl<D: Dial, H: Handshake<D::Stream>> Race<D, H> {
    /// Asks for HTTPS records of every name target, beside AAAA and A, when the target is HTTPS
    /// (HEv3). Called before the first poll.
    pub(crate) fn ask_https_records(&mut self, client: ClientSupport) {
        self.https = Some(Box::new(HttpsRace::new(client)));
    }

    /// When the race begins: one HTTPS query per name target.
    pub(super) fn ask_https(&mut self) {
        let Some(https) = self.https.as_deref_mut() else {
            return;
        };
        for (index, target) in self.targets.iter().enumerate() {
            let Host::Name(name) = target.host() else {
                https.targets.push(None);
                continue;
            };
            let query = svcb::query_name(name, target.port());
            https.targets.push(Some(TargetHttps {
                origin: svcb::normalize(name),
                chain: AliasChain::new(&query),
                state: State::Asking,
                held: Vec::new(),
                answered: [false; 2],
            }));
            let lookup = self.config.resolver.resolve_https(&query);
            https
                .out
                .push(Box::pin(async move { (index, lookup.await) }));
        }
    }

    /// Takes in every HTTPS answer that has come; whether there was any.
    pub(super) fn take_https_answers(&mut self, cx: &mut Context<'_>) -> bool {
        let mut took = false;
        loop {
            let Some(https) = self.https.as_deref_mut() else {
                return took;
            };
            let Poll::Ready(Some((index, answer))) = https.out.poll_next_unpin(cx) else {
                return took;
            };
            took = true;
            self.on_https_answer(index, answer);
        }
    }

    fn on_https_answer(&mut self, index: usize, answer: io::Result<Vec<crate::HttpsRecord>>) {
        let port = self.targets[index].port();
        let Some(https) = self.https.as_deref_mut() else {
            return;
        };
        let Some(target) = https.targets[index].as_mut() else {
            return;
        };
        if !matches!(target.state, State::Asking | State::Late(_)) {
            return;
        }
        let records = match answer {
            Ok(records) => records,
            Err(error) => {
                if error.kind() != io::ErrorKind::Unsupported {
                    tracing::debug!(host = %target.origin, %error, "HTTPS lookup failed");
                }
                return self.https_plain(index);
            }
        };
        let owner = target.chain.current().to_owned();
        let (answer, skipped) = svcb::read_answer(&owner, &records, port, &https.client);
        for skip in &skipped {
            tracing::debug!(host = %owner, record = %skip.record, reason = %skip.reason, "HTTPS record not used");
        }
        self.ledger.skipped_https_records.extend(skipped);
        match answer {
            Answer::Alias(next) => match target.chain.follow(&next) {
                Ok(next) => {
                    let lookup = self.config.resolver.resolve_https(next);
                    https
                        .out
                        .push(Box::pin(async move { (index, lookup.await) }));
                }
                Err(stop) => {
                    tracing::debug!(host = %owner, %stop, "HTTPS alias not followed");
                    self.ledger.skipped_https_records.push(svcb::SkippedRecord {
                        name: owner.clone(),
                        record: format!("0 {next}"),
                        reason: stop.to_string(),
                    });
                    self.https_plain(index);
                }
            },
            Answer::Services(services) if services.is_empty() => self.https_plain(index),
            Answer::Services(services) => {
                let services = services.into_iter().map(Arc::new).collect();
                self.shape(index, services);
            }
        }
    }

    /// A usable answer: hints and held addresses go into the plan by group; service target
    /// names other than the origin are looked up. A late answer (racing began without it)
    /// shapes what is not yet attempted the same way: attempts made go on, and a pair already
    /// attempted is not added again (the plan remembers every pair).
    fn shape(&mut self, index: usize, services: Vec<Arc<Service>>) {
        let Some(https) = self.https.as_deref_mut() else {
            return;
        };
        let Some(target) = https.targets[index].as_mut() else {
            return;
        };
        let origin = target.origin.clone();
        let answered = target.answered;
        let state = std::mem::replace(&mut target.state, State::Services(services.clone()));
        let (held, late) = match state {
            State::Late(known) => {
                tracing::debug!(host = %origin, "HTTPS answer came after attempts started: shaping the rest");
                self.cover_untried(index, &origin, &services);
                (known, true)
            }
            _ => (std::mem::take(&mut target.held), false),
        };
        let mut hints = Vec::new();
        for service in &services {
            let known = if *service.target == *origin {
                answered
            } else {
                self.extra_name(&service.target)
            };
            for (family, ips) in [
                (
                    Family::V6,
                    service
                        .ipv6_hints
                        .iter()
                        .map(|ip| IpAddr::V6(*ip))
                        .collect::<Vec<_>>(),
                ),
                (
                    Family::V4,
                    service
                        .ipv4_hints
                        .iter()
                        .map(|ip| IpAddr::V4(*ip))
                        .collect(),
                ),
            ] {
                if !known[slot(family)] {
                    hints.extend(ips.into_iter().map(|ip| (service.clone(), ip)));
                }
            }
        }
        for (i, (service, ip)) in hints.into_iter().enumerate() {
            self.add_service_address(index, LATER + i, ip, &service, true);
        }
        for (position, ip) in held {
            if late {
                // At the target's port they are in the plan already (or were attempted).
                self.add_at_origin_services(index, position, ip);
            } else {
                self.add_origin_address(index, position, ip);
            }
        }
    }

    /// A late answer: the origin's addresses not yet attempted join the group of the first
    /// service on the origin at their port and take its record (ALPN, ECH), as they would
    /// have had the answer come in time; the rest go last, after every service.
    fn cover_untried(&mut self, index: usize, origin: &str, services: &[Arc<Service>]) {
        let place = |port: u16| -> Placement {
            let covering = services
                .iter()
                .find(|service| *service.target == *origin && service.port == port);
            match covering {
                Some(service) => Placement {
                    group: u32::from(service.priority),
                    via: Some(HttpsVia {
                        service: service.clone(),
                        hint: false,
                    }),
                },
                None => Placement {
                    group: FALLBACK_GROUP,
                    via: None,
                },
            }
        };
        self.plan.update_untried(|candidate| {
            if candidate.order.0 != index || candidate.via.is_some() {
                return;
            }
            let Placement { group, via } = place(candidate.pair.remote.port());
            candidate.group = group;
            candidate.via = via;
        });
        // The same for the name's IPv4 addresses still waiting for the NAT64 prefix: when it
        // comes they go in as the record places them, not as they came before it.
        for held in &mut self.nat64.held {
            if held.target == index && held.placement.via.is_none() {
                held.placement = place(held.remote.port());
            }
        }
    }

    /// The index of an extra name's lookups (started on first use), and what of it is in.
    fn extra_name(&mut self, name: &Arc<str>) -> [bool; 2] {
        let Some(https) = self.https.as_deref_mut() else {
            return [true; 2];
        };
        if let Some(extra) = https.extra.iter().find(|extra| extra.name == *name) {
            return extra.answered;
        }
        let index = self.targets.len() + https.extra.len();
        https.extra.push(ExtraName {
            name: name.clone(),
            answered: [false; 2],
            found: 0,
        });
        let out = self.lookups.out.get_or_insert_with(FuturesUnordered::new);
        // Only the families the connect uses are asked (`Builder::ip_family`); hints of the
        // other family still go in, to be skipped with that reason in the report.
        for family in [Family::V6, Family::V4]
            .into_iter()
            .filter(|family| self.config.ip_family.allows(*family))
        {
            let lookup = self.config.resolver.resolve(name, family);
            out.push(Box::pin(async move { (index, family, lookup.await) }));
            self.lookups.pending[slot(family)] += 1;
        }
        [false; 2]
    }

    /// No usable records: the held addresses go in as if HTTPS had never been asked.
    fn https_plain(&mut self, index: usize) {
        let Some(target) = self
            .https
            .as_deref_mut()
            .and_then(|https| https.targets[index].as_mut())
        else {
            return;
        };
        target.state = State::Plain;
        let held = std::mem::take(&mut target.held);
        let Host::Name(name) = self.targets[index].host().clone() else {
            return;
        };
        for (position, ip) in held {
            self.consider(index, position, Some(name.clone()), ip);
        }
    }

    /// Whether the HTTPS side takes this name's A/AAAA answers (else they go in as usual); it
    /// takes them also while a late answer is out, to keep them for it.
    pub(super) fn https_takes(&self, index: usize) -> bool {
        self.https
            .as_deref()
            .and_then(|https| https.targets.get(index)?.as_ref())
            .is_some_and(|target| !matches!(target.state, State::Plain))
    }

    /// An origin answer of one family, for a name the HTTPS side takes: held while the HTTPS
    /// answer is out, else placed by service (replacing that family's hints).
    pub(super) fn on_origin_answer(
        &mut self,
        index: usize,
        family: Family,
        addrs: Vec<(usize, IpAddr)>,
    ) {
        let Some(target) = self
            .https
            .as_deref_mut()
            .and_then(|https| https.targets[index].as_mut())
        else {
            return;
        };
        target.answered[slot(family)] = true;
        match &mut target.state {
            State::Asking => return target.held.extend(addrs),
            State::Late(known) => {
                known.extend(addrs.iter().copied());
                let Host::Name(name) = self.targets[index].host().clone() else {
                    return;
                };
                for (position, ip) in addrs {
                    self.consider(index, position, Some(name.clone()), ip);
                }
                return;
            }
            State::Plain | State::Services(_) => {}
        }
        let origin = target.origin.clone();
        self.replace_hints(&origin, family);
        for (position, ip) in addrs {
            self.add_origin_address(index, position, ip);
        }
    }

    /// One of the origin's addresses, once the services are known: at each service on the
    /// origin name (its group and port), then as the last resort at the target's port.
    fn add_origin_address(&mut self, index: usize, position: usize, ip: IpAddr) {
        self.add_at_origin_services(index, position, ip);
        let Host::Name(name) = self.targets[index].host().clone() else {
            return;
        };
        let remote = SocketAddr::new(ip, self.targets[index].port());
        if self.ech_reliant(index) {
            tracing::debug!(%remote, "not attempted: every HTTPS record has ECH");
            self.ledger.skipped.push(crate::report::Skipped {
                host: Some(name),
                remote,
                reason: crate::report::SkipReason::WithoutEch,
            });
            return;
        }
        self.add_grouped(index, position, name, remote, FALLBACK_GROUP, None);
    }

    /// RFC 9848 (ECH in SVCB), client behaviour: when the handshake can use ECH and every
    /// usable record of the name has an `ech` config list, the origin's own addresses are not
    /// a last resort: connecting there without ECH would send the name in the clear, which
    /// the records were published to prevent (and an attacker who blocks the services would
    /// force it).
    fn ech_reliant(&self, index: usize) -> bool {
        let Some(https) = self.https.as_deref() else {
            return false;
        };
        if !https.client.ech {
            return false;
        }
        match https.targets[index].as_ref().map(|target| &target.state) {
            Some(State::Services(services)) => {
                !services.is_empty() && services.iter().all(|service| service.ech.is_some())
            }
            _ => false,
        }
    }

    /// HEv3 §6.1: a handshake that may use ECH (and so may rely on the records) does not
    /// start while the name's HTTPS answer is still out; the TCP connect goes ahead.
    pub(super) fn ech_holds(&self, index: usize) -> bool {
        let Some(https) = self.https.as_deref() else {
            return false;
        };
        https.client.ech
            && https
                .targets
                .get(index)
                .and_then(Option::as_ref)
                .is_some_and(|target| matches!(target.state, State::Asking | State::Late(_)))
    }

    /// An attempt whose handshake was held: now that the answer is in, it takes the record of
    /// the service at its address's port on the origin name (its ALPN and ECH), if it had none;
    /// an endpoint no record covers, when every record has ECH, is not handshaken with.
    pub(super) fn take_late_record(&mut self, attempt: usize, index: usize) -> io::Result<()> {
        let record = &self.ledger.attempts[attempt];
        if record.https.is_some() {
            return Ok(());
        }
        let port = record.remote.port();
        let covering = self
            .https
            .as_deref()
            .and_then(|https| https.targets.get(index)?.as_ref())
            .and_then(|target| match &target.state {
                State::Services(services) => services
                    .iter()
                    .find(|service| *service.target == *target.origin && service.port == port)
                    .cloned(),
                _ => None,
            });
        match covering {
            Some(service) => {
                self.ledger.attempts[attempt].https = Some(HttpsVia {
                    service,
                    hint: false,
                });
                Ok(())
            }
            None if self.ech_reliant(index) => Err(io::Error::other(
                "not handshaken: every HTTPS record of the name has ECH, and this endpoint is none of theirs",
            )),
            None => Ok(()),
        }
    }

    /// A candidate the race must not attempt: the origin's own endpoint when every record of
    /// the name has ECH (RFC 9848) and it is none of theirs.
    pub(super) fn needs_ech_elsewhere(&self, candidate: &crate::plan::Candidate) -> bool {
        candidate.via.is_none() && self.ech_reliant(candidate.order.0)
    }

    /// One of the origin's addresses at each service on the origin name (its group and port).
    fn add_at_origin_services(&mut self, index: usize, position: usize, ip: IpAddr) {
        let services = match self
            .https
            .as_deref()
            .and_then(|https| https.targets[index].as_ref())
        {
            Some(TargetHttps {
                state: State::Services(services),
                origin,
                ..
            }) => services
                .iter()
                .filter(|service| *service.target == **origin)
                .cloned()
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        for service in &services {
            self.add_service_address(index, position, ip, service, false);
        }
    }

    /// An A or AAAA answer for a service target name that is not an origin.
    pub(super) fn on_service_answer(
        &mut self,
        extra: usize,
        family: Family,
        answer: io::Result<Vec<IpAddr>>,
    ) {
        let Some(https) = self.https.as_deref_mut() else {
            return;
        };
        let Some(name) = https.extra.get_mut(extra) else {
            return;
        };
        let mut addrs = match answer {
            Ok(addrs) => addrs,
            Err(error) => {
                // The hints stay: they are all there is.
                tracing::debug!(host = %name.name, %family, %error, "service target lookup failed");
                return;
            }
        };
        addrs.retain(|ip| Family::of(*ip) == family);
        addrs.truncate(self.config.max_addresses_per_name);
        name.answered[slot(family)] = true;
        let first = name.found;
        name.found += addrs.len();
        let service_name = name.name.clone();
        self.replace_hints(&service_name, family);
        let Some(https) = self.https.as_deref() else {
            return;
        };
        let users: Vec<(usize, Arc<Service>)> = https
            .targets
            .iter()
            .enumerate()
            .filter_map(|(index, target)| match target {
                Some(TargetHttps {
                    state: State::Services(services),
                    ..
                }) => Some((index, services)),
                _ => None,
            })
            .flat_map(|(index, services)| {
                services
                    .iter()
                    .filter(|service| service.target == service_name)
                    .map(move |service| (index, service.clone()))
            })
            .collect();
        for (index, service) in users {
            for (i, ip) in addrs.iter().enumerate() {
                let position = LATER + LATER * (1 + extra) + first + i;
                self.add_service_address(index, position, *ip, &service, false);
            }
        }
    }

    /// A real answer of `family` for `name` replaces the untried hints for it.
    fn replace_hints(&mut self, name: &str, family: Family) {
        let stale = |via: Option<&HttpsVia>| {
            via.is_some_and(|via| via.hint && *via.service.target == *name)
        };
        self.plan.remove_untried(|candidate| {
            candidate.family() == family && stale(candidate.via.as_ref())
        });
        // Hints still waiting for the NAT64 prefix (IPv4 ones) are replaced too.
        if family == Family::V4 {
            self.nat64
                .held
                .retain(|held| !stale(held.placement.via.as_ref()));
        }
    }

    fn add_service_address(
        &mut self,
        index: usize,
        position: usize,
        ip: IpAddr,
        service: &Arc<Service>,
        hint: bool,
    ) {
        let Host::Name(origin) = self.targets[index].host().clone() else {
            return;
        };
        // The origin's name stays the host: TLS checks it, whichever name had the address.
        let via = HttpsVia {
            service: service.clone(),
            hint,
        };
        let remote = SocketAddr::new(ip, service.port);
        let group = u32::from(service.priority);
        self.add_grouped(index, position, origin, remote, group, Some(via));
    }

    fn add_grouped(
        &mut self,
        index: usize,
        position: usize,
        host: Arc<str>,
        remote: SocketAddr,
        group: u32,
        via: Option<HttpsVia>,
    ) {
        // The same family check and NAT64 synthesis as any other address.
        self.place(
            index,
            position,
            Some(host),
            remote,
            Placement { group, via },
        );
    }

    /// Whether addresses are held back for an HTTPS answer still out.
    pub(super) fn https_holds(&self) -> bool {
        self.https.as_deref().is_some_and(|https| {
            https
                .targets
                .iter()
                .flatten()
                .any(|target| !target.held.is_empty())
        })
    }

    /// Whether an HTTPS answer racing waits for is still out (HEv3 §4).
    pub(super) fn https_pending(&self) -> bool {
        self.https.as_deref().is_some_and(|https| {
            https
                .targets
                .iter()
                .flatten()
                .any(|target| matches!(target.state, State::Asking))
        })
    }

    /// Whether an HTTPS answer that racing no longer waits for is still out. It may add
    /// attempts, so the attempt timer keeps running for it; it never holds the race open.
    pub(super) fn https_late(&self) -> bool {
        self.https.as_deref().is_some_and(|https| {
            https
                .targets
                .iter()
                .flatten()
                .any(|target| matches!(target.state, State::Late(_)))
        })
    }

    /// Racing begins: HTTPS answers still out are no longer waited for, and what they held
    /// goes in as without records; the answers are still taken when they come (late).
    pub(super) fn https_give_up(&mut self) {
        let asking: Vec<usize> = match self.https.as_deref() {
            Some(https) => (0..https.targets.len())
                .filter(|&index| {
                    https.targets[index]
                        .as_ref()
                        .is_some_and(|target| matches!(target.state, State::Asking))
                })
                .collect(),
            None => return,
        };
        for index in asking {
            tracing::debug!(host = %self.targets[index], "HTTPS answer not in by the resolution delay");
            let Some(target) = self
                .https
                .as_deref_mut()
                .and_then(|https| https.targets[index].as_mut())
            else {
                continue;
            };
            let held = std::mem::take(&mut target.held);
            target.state = State::Late(held.clone());
            let Host::Name(name) = self.targets[index].host().clone() else {
                continue;
            };
            for (position, ip) in held {
                self.consider(index, position, Some(name.clone()), ip);
            }
        }
    }
}

#[cfg(test)]
mod tests;
