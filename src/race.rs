//! The race: resolution as answers arrive, staggered attempts, one deadline, losers closed.
//!
//! Generic over the dial and the handshake and free of sockets, so that its tests drive it with
//! scripted dials and handshakes on Tokio's paused clock.
//!
//! Each poll takes in what happened (answers, attempts that connected, finished their handshake
//! or failed), then applies the rules in order, each a small method named after the rule:
//! the deadline first (nothing starts at or after it), then when racing may begin (RFC 8305 §3),
//! then whether the next attempt may start (RFC 8305 §5), then whether anything is left to wait
//! for. One `Sleep` waits for the earliest of the race's timers.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::config::Config;
use crate::dial::Dial;
use crate::error::{ConnectError, ConnectErrorKind};
use crate::handshake::Peer;
use crate::history::{self, History, Lesson};
use crate::local::{self, Route};
use crate::nat64::{self, Discovery, Held, Synthesis};
use crate::plan::{Candidate, Pair, Pairing, Placement, Plan};
use crate::report::{
    Attempt, Millis, Outcome, Report, ResolveFailure, SkipReason, Skipped, Unanswered,
};
use crate::resolve::Family;
use crate::target::{Host, Target};

/// What a won race hands back.
#[derive(Debug)]
pub(crate) struct Won<T> {
    pub(crate) stream: T,
    pub(crate) pair: Pair,
    pub(crate) report: Report,
}

/// Runs on each attempt's connected stream (TLS, or any protocol's greeting): an attempt wins
/// only when its handshake finishes, so a path that carries a SYN but not a certificate (a
/// path-MTU blackhole) loses to one that carries both (draft-ietf-happy-happyeyeballs-v3).
pub(crate) trait Handshake<S> {
    /// What a finished handshake yields.
    type Output: Send + 'static;
    /// The handshake in flight; dropping it must close the stream. `Unpin`, like a dial.
    type Future: Future<Output = io::Result<Self::Output>> + Send + Unpin + 'static;

    /// Starts the handshake on a stream that has just connected to `peer`.
    fn handshake(&self, stream: S, peer: Peer) -> Self::Future;

    /// Whether an attempt's success includes a handshake: history keeps those lessons apart
    /// from TCP-only ones.
    const HANDSHAKES: bool = true;
}

/// No handshake: the connected stream wins as it is, in the poll that saw it connect.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NoHandshake;

impl<S: Send + 'static> Handshake<S> for NoHandshake {
    type Output = S;
    type Future = std::future::Ready<io::Result<S>>;

    fn handshake(&self, stream: S, _: Peer) -> Self::Future {
        std::future::ready(Ok(stream))
    }

    const HANDSHAKES: bool = false;
}

/// One family's answer for one name: (target index, family, answer).
type Answer = (usize, Family, io::Result<Vec<IpAddr>>);
type Lookup = Pin<Box<dyn Future<Output = Answer> + Send>>;

/// The race's timers. One `Sleep` serves them all: it waits for the earliest armed one (or an
/// attempt's own timeout, if sooner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// The connect's deadline ([`Builder::timeout`](crate::Builder::timeout)).
    Deadline,
    /// RFC 8305 §3: the most to wait for an awaited family's answer once other addresses are in.
    Resolution,
    /// RFC 8305 §5: when the next attempt may start while the last one is still in flight.
    NextAttempt,
}

/// When each [`Timer`] fires (`None`: not armed), and the one sleep.
#[derive(Default)]
struct Timers {
    at: [Option<Instant>; 3],
    sleep: Option<Pin<Box<Sleep>>>,
    /// The instant `sleep` is set for.
    sleeping_until: Option<Instant>,
}

impl Timers {
    fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer as usize] = Some(at);
    }

    fn clear(&mut self, timer: Timer) {
        self.at[timer as usize] = None;
    }

    fn is_set(&self, timer: Timer) -> bool {
        self.at[timer as usize].is_some()
    }

    fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.at[timer as usize].is_some_and(|at| at <= now)
    }

    /// Sleeps until the earliest armed timer or `also`, whichever is sooner. `Ready(at)` when
    /// that instant has come; `Pending` also when nothing is armed (then there is no sleep).
    fn poll(&mut self, cx: &mut Context<'_>, also: Option<Instant>) -> Poll<Instant> {
        let Some(at) = self.at.iter().chain([&also]).flatten().min().copied() else {
            return Poll::Pending;
        };
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if self.sleeping_until != Some(at) {
                    sleep.as_mut().reset(at);
                }
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        self.sleeping_until = Some(at);
        sleep.as_mut().poll(cx).map(|()| at)
    }
}

/// The lookups of one connect's names.
#[derive(Default)]
struct Lookups {
    /// Made on the first name: IP literals alone cost no lookup set.
    out: Option<FuturesUnordered<Lookup>>,
    /// One per target (empty when no target is a name).
    names: Vec<NameState>,
    /// How many lookups of each family are still out (indexed by [`slot`]).
    pending: [usize; 2],
}

/// Where a name stands: which of its two lookups are still out, and what came back.
#[derive(Debug, Default)]
struct NameState {
    waiting: [bool; 2],
    found: usize,
    first_error: Option<io::Error>,
}

impl Lookups {
    /// Whether any lookup is still out.
    fn any_out(&self) -> bool {
        self.pending != [0, 0]
    }

    fn pending(&self, family: Family) -> usize {
        self.pending[slot(family)]
    }
}

/// Where a family's counts are kept.
fn slot(family: Family) -> usize {
    match family {
        Family::V6 => 0,
        Family::V4 => 1,
    }
}

/// What an earlier race to the same targets taught, and whether it is used (RFC 8305 §5).
#[derive(Default)]
struct Memory {
    history: Option<Arc<History>>,
    /// This target list's key in the history, computed when the race begins.
    key: Option<history::Key>,
    /// The last winner, until the first attempt shows whether it is in this connect's plan.
    /// Boxed: inline it would take the race state past the allocator's fast size classes.
    lesson: Option<Box<Lesson>>,
}

/// Everything the report will tell: attempts, resolver failures, skipped and cut addresses.
#[derive(Default)]
struct Ledger {
    attempts: Vec<Attempt>,
    resolve_failures: Vec<ResolveFailure>,
    skipped: Vec<Skipped>,
    /// Addresses beyond [`Builder::max_addresses_per_name`](crate::Builder::max_addresses_per_name).
    cut: Vec<SocketAddr>,
    /// The last winner, when it went first.
    favoured: Option<SocketAddr>,
    /// HEv3: HTTPS records not used, with why.
    skipped_https_records: Vec<crate::SkippedRecord>,
}

/// One attempt in flight: dialing, then handshaking.
struct InFlight<S, F, H> {
    /// Its index in the report.
    index: usize,
    /// The target its address came from.
    target: usize,
    phase: Phase<S, F, H>,
    /// When its own timeout ends it, if one is set.
    expires: Option<Instant>,
}

enum Phase<S, F, H> {
    Dialing(F),
    /// Connected, with the handshake held until the name's HTTPS answer is in (HEv3 §6.1:
    /// a handshake that may use ECH does not start before the records that carry its keys).
    Held(Option<S>),
    Handshaking(H),
}

/// Where the race is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not polled yet: nothing started.
    New,
    /// Lookups out; no attempt may start yet (RFC 8305 §3).
    Resolving,
    /// Attempts may start.
    Racing,
    /// It answered; polled again it opens nothing.
    Finished,
}

/// The race for one connect. Starts its clock and its lookups on the first poll.
pub(crate) struct Race<D: Dial, H: Handshake<D::Stream> = NoHandshake> {
    dial: D,
    handshake: H,
    config: Arc<Config>,
    targets: Vec<Target>,
    stage: Stage,
    /// When the race began (its first poll).
    start: Option<Instant>,
    timers: Timers,
    lookups: Lookups,
    plan: Plan,
    /// Made when the race begins: the local addresses are read then.
    pairing: Option<Pairing>,
    memory: Memory,
    /// The configured delay, or the one history suggests when its favourite goes first.
    attempt_delay: Duration,
    /// The attempts in flight, oldest first. A plain `Vec`, polled whole on every wake: there
    /// are few (the attempt delay staggers them), and a lone attempt needs no task set around it.
    in_flight: Vec<InFlight<D::Stream, D::Future, H::Future>>,
    /// The next attempt may start now: the race has just begun, an attempt ended, or the
    /// attempt delay passed since the last start.
    may_start: bool,
    /// The attempt delay passed while an attempt was held for its HTTPS answer (ECH): the
    /// next attempt waits one attempt delay from the hold's end instead.
    delay_after_hold: bool,
    ledger: Ledger,
    /// RFC 8305 §7: IPv4 addresses with no route become IPv6 ones under the NAT64 prefixes.
    nat64: Synthesis,
    /// HEv3: the HTTPS records' side, when the target is HTTPS.
    https: Option<Box<https::HttpsRace>>,
}

impl<D: Dial, H: Handshake<D::Stream>> std::fmt::Debug for Race<D, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Race")
            .field("targets", &self.targets)
            .field("stage", &self.stage)
            .field("attempts", &self.ledger.attempts)
            .field("in_flight", &self.in_flight.len())
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl<D: Dial> Race<D> {
    pub(crate) fn new(
        dial: D,
        config: Arc<Config>,
        targets: Vec<Target>,
        history: Option<Arc<History>>,
    ) -> Self {
        Race::with_handshake(dial, NoHandshake, config, targets, history)
    }
}

impl<D: Dial, H: Handshake<D::Stream>> Race<D, H> {
    pub(crate) fn with_handshake(
        dial: D,
        handshake: H,
        config: Arc<Config>,
        targets: Vec<Target>,
        history: Option<Arc<History>>,
    ) -> Self {
        let ranking = config.ranking();
        let probe = config.sort_addresses.then_some(config.route_probe);
        let plan = Plan::new(
            config.first_family_count,
            config.max_attempts,
            ranking,
            probe,
        );
        let discovery = config.nat64_discovery.clone().unwrap_or_else(|| {
            Arc::new(Discovery::new(
                config.nat64.clone(),
                config.resolver.clone(),
            ))
        });
        Race {
            nat64: Synthesis::new(discovery),
            dial,
            handshake,
            targets,
            stage: Stage::New,
            start: None,
            timers: Timers::default(),
            lookups: Lookups::default(),
            plan,
            pairing: None,
            memory: Memory {
                history,
                ..Memory::default()
            },
            attempt_delay: config.attempt_delay,
            in_flight: Vec::new(),
            may_start: false,
            delay_after_hold: false,
            ledger: Ledger::default(),
            https: config
                .https_records
                .then(|| Box::new(https::HttpsRace::new(Default::default()))),
            config,
        }
    }

    fn offset(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start.unwrap_or(now))
    }

    /// Starts the clock, the deadline and every lookup; IP literals go straight into the plan.
    /// `show_sources` asks for route lookups even where the ranking needs none.
    fn begin(&mut self, show_sources: bool, now: Instant) {
        self.start = Some(now);
        self.stage = Stage::Resolving;
        if let Some(at) = self.config.timeout.and_then(|t| now.checked_add(t)) {
            self.timers.set(Timer::Deadline, at);
        }
        let locals = self.config.local_addrs.resolve().unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot list the local interfaces; the kernel picks sources");
            None
        });
        if show_sources {
            self.plan.probe_always(self.config.route_probe);
        }
        let filter = match self.config.nat64 {
            // The filter judges addresses under the network's prefix by their IPv4 address.
            nat64::Nat64::Prefix(prefix) => self.config.filter.knowing_nat64(&[prefix]),
            _ => self.config.filter.clone(),
        };
        self.pairing = Some(Pairing {
            locals,
            filter,
            probe: self.config.route_probe,
            // Also with ranking off: listed local addresses are chosen by it.
            table: self.config.policy_table.clone(),
        });
        self.ask_resolver();
        self.ask_https();
        for index in 0..self.targets.len() {
            if let Host::Ip(ip) = *self.targets[index].host() {
                self.consider(index, 0, None, ip);
            }
        }
        self.recall();
    }

    /// Asks for each name's IPv6 and IPv4 addresses at once (RFC 8305 §3).
    fn ask_resolver(&mut self) {
        let is_name = |target: &Target| matches!(target.host(), Host::Name(_));
        if !self.targets.iter().any(is_name) {
            // A list of IP literals allocates no lookup state.
            return;
        }
        self.lookups.names = self.targets.iter().map(|_| NameState::default()).collect();
        for (index, target) in self.targets.iter().enumerate() {
            let Host::Name(name) = target.host() else {
                continue;
            };
            let out = self.lookups.out.get_or_insert_with(FuturesUnordered::new);
            let families = [Family::V6, Family::V4];
            for family in families
                .into_iter()
                .filter(|f| self.config.ip_family.allows(*f))
            {
                let lookup = self.config.resolver.resolve(name, family);
                out.push(Box::pin(async move { (index, family, lookup.await) }));
                self.lookups.pending[slot(family)] += 1;
                self.lookups.names[index].waiting[slot(family)] = true;
            }
        }
    }

    /// Looks up what the last race to these targets taught (RFC 8305 §5). Whether it is used is
    /// decided at the first attempt: only if its winner is in this connect's plan by then.
    fn recall(&mut self) {
        // With one pair to try and no name to bring more, history has nothing to choose between:
        // it is neither asked nor taught.
        let lone = self.lookups.out.is_none() && self.plan.untried() <= 1;
        let Some(history) = self.memory.history.as_ref().filter(|_| !lone) else {
            return;
        };
        let key = history.key(&self.targets);
        let key = if H::HANDSHAKES {
            key.through_handshake()
        } else {
            key
        };
        self.memory.key = Some(key);
        let now = self.start.unwrap_or_else(Instant::now);
        self.memory.lesson = history.recall(key, now).map(Box::new);
        if let Some(lesson) = &self.memory.lesson {
            self.plan.favour(lesson.winner);
        }
    }

    /// Takes one address in: skipped if its family is not used, held for or synthesized under
    /// the NAT64 prefixes if IPv4 has no route to it, then paired.
    fn consider(&mut self, target: usize, position: usize, host: Option<Arc<str>>, ip: IpAddr) {
        // A literal keeps its scope id (`[fe80::1%2]`); names' answers carry none.
        let remote = match self.targets[target].socket_addr() {
            Some(literal) if literal.ip() == ip => literal,
            _ => SocketAddr::new(ip, self.targets[target].port()),
        };
        self.place(target, position, host, remote, Placement::default());
    }

    /// [`Race::consider`] for an endpoint already made (an HTTPS record's port, say), in its
    /// group: every address, from A, AAAA, a hint or a service's name, passes the same family
    /// check and NAT64 synthesis before it is paired.
    fn place(
        &mut self,
        target: usize,
        position: usize,
        host: Option<Arc<str>>,
        remote: SocketAddr,
        placement: Placement,
    ) {
        // Judged as dialed: an IPv4-mapped address is IPv4.
        let family = Family::of(local::canonical(remote).ip());
        if !self.config.ip_family.allows(family) {
            tracing::debug!(%remote, %family, "not attempted: family not used");
            self.ledger.skipped.push(Skipped {
                host,
                remote,
                reason: SkipReason::OtherFamily(family),
            });
            return;
        }
        if self.needs_nat64(remote) {
            let held = Held {
                target,
                position,
                host,
                remote,
                placement,
            };
            match self.nat64.prefixes_or_hold(held) {
                Some((held, prefixes)) => self.synthesize_or_keep(held, &prefixes),
                None => tracing::debug!(%remote, "no IPv4 route: waiting for the NAT64 prefix"),
            }
            return;
        }
        self.pair(target, position, host, remote, placement);
    }

    /// RFC 8305 §7.1: an IPv4 address the kernel has no route to, where NAT64 is not turned off
    /// and IPv6 is used. (Loopback always has a route; no probe is spent on it.) With listed
    /// local addresses, only when none of them is a routable IPv4 address: such a host is not
    /// IPv6-only, and its pairing reports why each source cannot reach the address.
    fn needs_nat64(&self, remote: SocketAddr) -> bool {
        let remote = local::canonical(remote);
        let has_ipv4 = |locals: &Arc<[SocketAddr]>| {
            locals.iter().any(|local| match local.ip() {
                IpAddr::V4(ip) => !ip.is_loopback() && !ip.is_link_local(),
                IpAddr::V6(_) => false,
            })
        };
        let listed_ipv4 = self
            .pairing
            .as_ref()
            .and_then(|pairing| pairing.locals.as_ref())
            .is_some_and(has_ipv4);
        remote.is_ipv4()
            && !host_or_link_scoped(remote.ip())
            && self.nat64.discovery.is_on()
            && self.config.ip_family.allows(Family::V6)
            && !listed_ipv4
            && matches!((self.config.route_probe)(None, remote), Route::None)
    }

    /// Pairs `held` under each prefix in its place, or as it is when there is none.
    fn synthesize_or_keep(&mut self, held: Held, prefixes: &[nat64::Nat64Prefix]) {
        let Held {
            target,
            position,
            host,
            remote,
            placement,
        } = held;
        let IpAddr::V4(ipv4) = local::canonical(remote).ip() else {
            return;
        };
        if prefixes.is_empty() {
            tracing::debug!(%remote, "no NAT64 prefix: tried as it is");
            self.pair(target, position, host, remote, placement);
            return;
        }
        for &prefix in prefixes {
            let synthesized = self.nat64.synthesize(remote, ipv4, prefix);
            tracing::debug!(%remote, %synthesized, %prefix, "NAT64 address synthesized");
            self.pair(
                target,
                position,
                host.clone(),
                synthesized,
                placement.clone(),
            );
        }
    }

    /// The NAT64 discovery this connect waits for has answered: the filter learns the
    /// prefixes, and the held IPv4 addresses go into the plan.
    /// Whether prefixes came (and so addresses may have joined the plan).
    fn take_nat64_prefixes(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(prefixes) = self.nat64.poll_learned(cx) else {
            return false;
        };
        if let Some(pairing) = &mut self.pairing {
            pairing.filter = pairing.filter.knowing_nat64(&prefixes);
        }
        for held in std::mem::take(&mut self.nat64.held) {
            self.synthesize_or_keep(held, &prefixes);
        }
        true
    }

    /// Pairs one address with the local addresses that can reach it and adds the pairs to the
    /// plan, or records why it has none.
    fn pair(
        &mut self,
        target: usize,
        position: usize,
        host: Option<Arc<str>>,
        remote: SocketAddr,
        placement: Placement,
    ) {
        let Some(pairing) = &self.pairing else {
            return;
        };
        match pairing.expand(remote, host, (target, position)) {
            Ok(candidates) if placement == Placement::default() => self.plan.add(candidates),
            Ok(candidates) => self.plan.add(candidates.map(|mut candidate| {
                candidate.group = placement.group;
                candidate.via = placement.via.clone();
                candidate
            })),
            Err(skipped) => {
                tracing::debug!(remote = %skipped.remote, reason = skipped.reason.as_str(), %skipped, "not attempted");
                self.ledger.skipped.push(skipped);
            }
        }
    }

    /// Takes in every answer that has come.
    fn take_answers(&mut self, cx: &mut Context<'_>) {
        loop {
            while let Some(Poll::Ready(Some(answer))) =
                self.lookups.out.as_mut().map(|out| out.poll_next_unpin(cx))
            {
                self.on_answer(answer);
            }
            // An HTTPS answer may start lookups of its services' names: poll them too.
            if !self.take_https_answers(cx) {
                break;
            }
        }
        // After the answers: an answer may have started the discovery, which must be polled
        // (and so started) now.
        self.take_nat64_prefixes(cx);
    }

    fn on_answer(&mut self, (index, family, answer): Answer) {
        self.lookups.pending[slot(family)] -= 1;
        if let Some(extra) = index.checked_sub(self.targets.len()) {
            return self.on_service_answer(extra, family, answer);
        }
        let Host::Name(name) = self.targets[index].host().clone() else {
            return;
        };
        self.lookups.names[index].waiting[slot(family)] = false;
        match answer {
            Ok(mut addrs) => {
                addrs.retain(|ip| Family::of(*ip) == family);
                let cap = self.config.max_addresses_per_name;
                if addrs.len() > cap {
                    let port = self.targets[index].port();
                    let cut = addrs.drain(cap..).map(|ip| SocketAddr::new(ip, port));
                    self.ledger.cut.extend(cut);
                }
                if addrs.is_empty() {
                    tracing::trace!(host = %name, %family, "no records of this family");
                } else {
                    tracing::debug!(host = %name, %family, addresses = ?addrs, "resolved");
                }
                self.lookups.names[index].found += addrs.len();
                // IPv4 positions come after every IPv6 one, whichever answer came first, so the
                // caller's order (rule 10) does not depend on timing. (`cap` is bounded by
                // `build()`, so this cannot overflow.)
                let offset = if family == Family::V6 { 0 } else { cap };
                if self.https_takes(index) {
                    let placed = addrs.into_iter().enumerate();
                    let placed = placed.map(|(i, ip)| (offset + i, ip)).collect();
                    self.on_origin_answer(index, family, placed);
                } else {
                    for (i, ip) in addrs.into_iter().enumerate() {
                        self.consider(index, offset + i, Some(name.clone()), ip);
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                // NODATA or NXDOMAIN: an answer, not a failure of the lookup.
                if self.https_takes(index) {
                    self.on_origin_answer(index, family, Vec::new());
                }
                tracing::trace!(host = %name, %family, %error, "no records of this family");
                self.lookups.names[index].first_error.get_or_insert(error);
            }
            Err(error) => {
                tracing::debug!(host = %name, %family, %error, "lookup failed");
                self.lookups.names[index].first_error.get_or_insert(error);
            }
        }
        let state = &mut self.lookups.names[index];
        if state.waiting == [false, false] && state.found == 0 {
            let error = state.first_error.take().unwrap_or_else(|| {
                let message = match self.config.ip_family {
                    crate::IpFamily::Any => "no IPv4 or IPv6 address",
                    crate::IpFamily::V4Only => "no IPv4 address (IPv6 not asked: ip_family)",
                    crate::IpFamily::V6Only => "no IPv6 address (IPv4 not asked: ip_family)",
                };
                io::Error::new(io::ErrorKind::NotFound, message)
            });
            self.ledger.resolve_failures.push(ResolveFailure {
                host: name,
                error: Arc::new(error),
            });
        }
    }

    /// Polls every attempt in flight, oldest first, so that of two that finish in the same
    /// instant the older wins. A finished handshake wins; a failure frees a slot (RFC 8305 §5).
    fn poll_attempts(&mut self, cx: &mut Context<'_>, now: Instant) -> Option<Won<H::Output>> {
        let mut i = 0;
        while i < self.in_flight.len() {
            let Poll::Ready(result) = self.poll_attempt(i, cx, now) else {
                i += 1;
                continue;
            };
            let index = self.in_flight.remove(i).index;
            match result {
                Ok(output) => return Some(self.win(index, output, now)),
                Err(error) => {
                    if let Some(synthesized) = self.ledger.attempts[index].nat64 {
                        if nat64::suggests_prefix_changed(&error) {
                            self.nat64.discovery.prefix_failed(synthesized.prefix);
                        }
                    }
                    let connected = self.ledger.attempts[index].connected.is_some();
                    let outcome = if connected {
                        Outcome::HandshakeFailed
                    } else {
                        Outcome::of_error(&error)
                    };
                    self.end(index, outcome, Some(error), now);
                    self.may_start = true;
                }
            }
        }
        None
    }

    /// Drives one attempt: its dial, then (in the same poll, once connected) its handshake.
    fn poll_attempt(
        &mut self,
        i: usize,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Poll<io::Result<H::Output>> {
        let connected_at = self.offset(now);
        let (index, target) = (self.in_flight[i].index, self.in_flight[i].target);
        loop {
            let holds = self.ech_holds(target);
            let stream = match &mut self.in_flight[i].phase {
                Phase::Dialing(dial) => {
                    let stream = match Pin::new(dial).poll(cx) {
                        Poll::Ready(Ok(stream)) => stream,
                        Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                        Poll::Pending => return Poll::Pending,
                    };
                    self.ledger.attempts[index].connected = Some(connected_at);
                    stream
                }
                Phase::Held(stream) => {
                    if holds {
                        // The HTTPS lookup wakes the race when it answers.
                        return Poll::Pending;
                    }
                    let Some(stream) = stream.take() else {
                        return Poll::Ready(Err(io::Error::other("held stream polled again")));
                    };
                    if let Err(error) = self.take_late_record(index, target) {
                        return Poll::Ready(Err(error));
                    }
                    stream
                }
                Phase::Handshaking(handshake) => return Pin::new(handshake).poll(cx),
            };
            if !holds && self.delay_after_hold && !self.any_held_but(i) {
                self.delay_after_hold = false;
                self.timers
                    .set(Timer::NextAttempt, now + self.attempt_delay);
            }
            if holds {
                tracing::debug!(
                    attempt = index + 1,
                    "connected; the handshake waits for the HTTPS answer (ECH)"
                );
                self.in_flight[i].phase = Phase::Held(Some(stream));
                continue;
            }
            let record = &self.ledger.attempts[index];
            let peer = Peer {
                host: record.host.clone(),
                local: record.local,
                remote: record.remote,
                https: record.https.clone(),
                redial: None,
            };
            self.in_flight[i].phase = Phase::Handshaking(self.handshake.handshake(stream, peer));
        }
    }

    /// Whether an attempt in flight is connected and held for its HTTPS answer (ECH).
    fn any_held(&self) -> bool {
        self.in_flight
            .iter()
            .any(|attempt| matches!(attempt.phase, Phase::Held(_)))
    }

    /// Whether every target would hold a new attempt's handshake too (its HTTPS answer is out
    /// and the handshake can use ECH); a target that would not (an IP literal, a name whose
    /// answer is in) is worth an attempt while another is held.
    fn every_target_held(&self) -> bool {
        (0..self.targets.len()).all(|index| self.ech_holds(index))
    }

    /// [`Race::any_held`], not counting attempt `i`.
    fn any_held_but(&self, i: usize) -> bool {
        self.in_flight
            .iter()
            .enumerate()
            .any(|(j, attempt)| j != i && matches!(attempt.phase, Phase::Held(_)))
    }

    /// Ends the attempts whose own timeout has come; each frees a slot.
    fn end_overdue_attempts(&mut self, now: Instant) {
        let Some(limit) = self.config.attempt_timeout else {
            return;
        };
        let mut i = 0;
        while i < self.in_flight.len() {
            if self.in_flight[i].expires.is_some_and(|at| at <= now) {
                let attempt = self.in_flight.remove(i);
                let message = format!("attempt timed out after {}", Millis(limit));
                let error = io::Error::new(io::ErrorKind::TimedOut, message);
                self.end(attempt.index, Outcome::TimedOut, Some(error), now);
                self.may_start = true;
            } else {
                i += 1;
            }
        }
    }

    /// The deadline: when it has come, every attempt in flight is cancelled and nothing new
    /// starts, not even in this same poll.
    fn deadline_passed(&mut self, now: Instant) -> bool {
        self.timers.is_due(Timer::Deadline, now)
    }

    /// RFC 8305 §3:
    /// > Once the client has received either the AAAA or the A response, it SHOULD start
    /// > connecting […] If the first response is an A response, the client SHOULD wait a short
    /// > time for the AAAA response (the "Resolution Delay").
    ///
    /// And RFC 8305 §5: what won last time goes first. When the last winner is an address of a
    /// family whose answer is still out, the race waits for it as it would for AAAA, at most the
    /// resolution delay; once it is in the plan the race starts at once, with no delay.
    ///
    /// HEv3 §4: with HTTPS records asked, also wait for their answer, at most the resolution
    /// delay since the first address (hints count as addresses).
    fn start_racing(&mut self, now: Instant) {
        let no_address = self.plan.untried() == 0 && !self.https_holds();
        if self.stage != Stage::Resolving || no_address {
            return;
        }
        if self.awaited_family().is_some() || self.https_pending() {
            if !self.timers.is_set(Timer::Resolution) {
                self.timers
                    .set(Timer::Resolution, now + self.config.resolution_delay);
            }
            if !self.timers.is_due(Timer::Resolution, now) {
                return;
            }
        }
        self.timers.clear(Timer::Resolution);
        self.https_give_up();
        self.stage = Stage::Racing;
        self.may_start = true;
    }

    /// The family whose answer is worth waiting for before the first attempt: the last winner's,
    /// while it is not in the plan and its family's lookups are out; else IPv6, while only IPv4
    /// is known and AAAA lookups are out.
    fn awaited_family(&self) -> Option<Family> {
        if let Some(lesson) = &self.memory.lesson {
            if self.plan.contains(lesson.winner) {
                return None;
            }
            let family = Family::of(lesson.winner.remote.ip());
            if self.lookups.pending(family) > 0 {
                return Some(family);
            }
        }
        let ipv6_may_come = !self.plan.has(Family::V6) && self.lookups.pending(Family::V6) > 0;
        ipv6_may_come.then_some(Family::V6)
    }

    /// RFC 8305 §5:
    /// > Starting a new connection attempt does not affect previous attempts […] One connection
    /// > attempt SHOULD be started at a time; the next one after the Connection Attempt Delay,
    /// > or as soon as an attempt fails.
    ///
    /// Returns whether an attempt was started (its setup may already have failed: poll again).
    fn start_next_attempt(&mut self, now: Instant) -> bool {
        if self.stage != Stage::Racing {
            return false;
        }
        if self.timers.is_due(Timer::NextAttempt, now) {
            self.timers.clear(Timer::NextAttempt);
            if self.any_held() && self.every_target_held() {
                // Connected and waiting for our own DNS, not for the network: another attempt
                // would only be held too. The delay restarts when the hold ends.
                self.delay_after_hold = true;
            } else {
                self.may_start = true;
            }
        }
        if !self.may_start {
            return false;
        }
        while let Some(candidate) = self.plan.next() {
            if self.needs_ech_elsewhere(&candidate) {
                tracing::debug!(remote = %candidate.pair.remote, "not attempted: every HTTPS record has ECH");
                self.ledger.skipped.push(Skipped {
                    host: candidate.host,
                    remote: candidate.pair.remote,
                    reason: SkipReason::WithoutEch,
                });
                continue;
            }
            self.may_start = false;
            self.launch(candidate, now);
            return true;
        }
        false
    }

    /// Whether another attempt can ever start: the cap is not reached, and something is left
    /// in the plan or a lookup that could add to it is out.
    fn more_may_start(&self) -> bool {
        !self.plan.is_capped()
            && (self.plan.untried() > 0
                || self.lookups.any_out()
                || self.nat64.is_discovering()
                || self.https_holds())
    }

    /// [`more_may_start`](Self::more_may_start), or a late HTTPS answer (HEv3) is still out: it
    /// may add attempts, which then start on the attempt delay's schedule, so the timer keeps
    /// running for it. It does not hold the race open: the resolution delay is all an HTTPS
    /// answer may cost, and it was spent before racing began.
    fn more_may_come(&self) -> bool {
        self.more_may_start() || (!self.plan.is_capped() && self.https_late())
    }

    /// Nothing is in flight and nothing more can start: the connect has failed.
    fn nothing_left(&self) -> bool {
        self.in_flight.is_empty() && !self.more_may_start()
    }

    fn launch(&mut self, candidate: Candidate, now: Instant) {
        // This start arms the attempt timer itself.
        self.delay_after_hold = false;
        let index = self.ledger.attempts.len();
        if index == 0 {
            self.first_attempt(&candidate);
        }
        let started = self.offset(now);
        let pair = candidate.pair;
        tracing::debug!(
            attempt = index + 1,
            remote = %pair.remote,
            host = candidate.host.as_deref().map(tracing::field::display),
            at = %Millis(started),
            local = pair.local.map(tracing::field::display),
            "attempt started"
        );
        if self.ledger.attempts.capacity() == 0 {
            // Room for one to begin with: most connects make one attempt, and a race in flight
            // should hold no more than it needs (the second attempt grows both lists to four).
            self.ledger.attempts.reserve_exact(1);
            self.in_flight.reserve_exact(1);
        }
        self.ledger.attempts.push(Attempt {
            host: candidate.host,
            local: pair.local,
            remote: pair.remote,
            started,
            connected: None,
            ended: started,
            outcome: Outcome::Cancelled,
            error: None,
            mptcp_fallback: None,
            nat64: self.nat64.of(pair.remote),
            https: candidate.via,
        });
        let mut dialing = self.dial.dial(pair);
        self.ledger.attempts[index].mptcp_fallback = D::mptcp_fallback(&mut dialing).map(Arc::new);
        // A timeout past what the clock can hold never ends the attempt, as the deadline's does
        // not (`begin`): it is no limit in practice, and no cap is made up for it here.
        let expires = self
            .config
            .attempt_timeout
            .and_then(|timeout| now.checked_add(timeout));
        self.in_flight.push(InFlight {
            index,
            target: candidate.order.0,
            phase: Phase::Dialing(dialing),
            expires,
        });
        if self.more_may_come() {
            self.timers
                .set(Timer::NextAttempt, now + self.attempt_delay);
        } else {
            // The last attempt: no timer stays armed for a successor that cannot come.
            self.timers.clear(Timer::NextAttempt);
        }
    }

    /// History applies only when its winner is this connect's first attempt: then it is
    /// reported as favoured and its learned attempt delay is used; otherwise neither.
    fn first_attempt(&mut self, candidate: &Candidate) {
        let Some(lesson) = self.memory.lesson.take() else {
            return;
        };
        if lesson.winner == candidate.pair {
            tracing::debug!(favoured = %lesson.winner.remote, "last race's winner goes first");
            self.ledger.favoured = Some(lesson.winner.remote);
            self.attempt_delay = lesson.attempt_delay(self.config.attempt_delay);
        } else {
            self.plan.unfavour();
        }
    }

    fn end(&mut self, index: usize, outcome: Outcome, error: Option<io::Error>, now: Instant) {
        let ended = self.offset(now);
        let attempt = &mut self.ledger.attempts[index];
        attempt.ended = ended;
        attempt.outcome = outcome;
        attempt.error = error.map(Arc::new);
        tracing::debug!(
            attempt = index + 1,
            remote = %attempt.remote,
            local = attempt.local.map(tracing::field::display),
            outcome = outcome.as_str(),
            elapsed = %Millis(attempt.duration()),
            error = attempt.error.as_ref().map(tracing::field::display),
            "attempt ended"
        );
    }

    /// Ends every attempt still in flight the same way and closes their sockets.
    fn end_in_flight(
        &mut self,
        outcome: Outcome,
        error: impl Fn() -> Option<io::Error>,
        now: Instant,
    ) {
        for attempt in std::mem::take(&mut self.in_flight) {
            // Dropped here: its socket closes.
            self.end(attempt.index, outcome, error(), now);
        }
    }

    fn report(&mut self, now: Instant) -> Report {
        let mut not_tried = std::mem::take(&mut self.ledger.cut);
        not_tried.extend(self.plan.untried_remotes());
        // Still waiting for the NAT64 prefix when the connect ended.
        not_tried.extend(self.nat64.held.drain(..).map(|held| held.remote));
        let elapsed = self.offset(now);
        let unanswered = self
            .lookups
            .names
            .iter()
            .zip(&self.targets)
            .flat_map(|(state, target)| {
                let Host::Name(name) = target.host() else {
                    return Vec::new();
                };
                [Family::V6, Family::V4]
                    .into_iter()
                    .filter(|family| state.waiting[slot(*family)])
                    .map(|family| Unanswered {
                        host: name.clone(),
                        family,
                        waited: elapsed,
                    })
                    .collect()
            })
            .collect();
        Report {
            attempts: std::mem::take(&mut self.ledger.attempts),
            resolve_failures: std::mem::take(&mut self.ledger.resolve_failures),
            skipped: std::mem::take(&mut self.ledger.skipped),
            favoured: self.ledger.favoured,
            elapsed,
            not_tried,
            unanswered,
            skipped_https_records: std::mem::take(&mut self.ledger.skipped_https_records),
        }
    }

    fn win(&mut self, index: usize, stream: H::Output, now: Instant) -> Won<H::Output> {
        self.end(index, Outcome::Connected, None, now);
        let attempt = &self.ledger.attempts[index];
        let dialed = Pair {
            local: attempt.local,
            remote: attempt.remote,
        };
        if let (Some(history), Some(key)) = (&self.memory.history, self.memory.key) {
            // The connect time, not the handshake's: it is what the attempt delay races.
            let connect_time = attempt
                .connected
                .unwrap_or(attempt.ended)
                .saturating_sub(attempt.started);
            history.learn(key, dialed, connect_time, now);
        }
        // The local address the kernel chose is not read here: `Connection` reads it when first
        // asked, so a caller who never looks pays no system call for it.
        self.end_in_flight(Outcome::Lost, || None, now);
        Won {
            stream,
            pair: dialed,
            report: self.report(now),
        }
    }

    fn time_out(&mut self, now: Instant) -> ConnectError {
        let timeout = self.config.timeout.unwrap_or_default();
        let deadline_passed = || {
            let message = format!("the connect's {} deadline passed", Millis(timeout));
            Some(io::Error::new(io::ErrorKind::TimedOut, message))
        };
        self.end_in_flight(Outcome::Cancelled, deadline_passed, now);
        ConnectError::new(ConnectErrorKind::TimedOut, self.report(now))
    }

    fn fail(&mut self, now: Instant) -> ConnectError {
        let kind = if self.ledger.attempts.is_empty() {
            nothing_to_try(&self.ledger.skipped)
        } else {
            ConnectErrorKind::AllFailed
        };
        ConnectError::new(kind, self.report(now))
    }

    /// The earliest own timeout of an attempt in flight.
    fn next_attempt_expiry(&self) -> Option<Instant> {
        self.in_flight.iter().filter_map(|a| a.expires).min()
    }

    /// Drives the race: the rules are in the crate docs ("The path of one connect").
    pub(crate) fn poll_race(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Won<H::Output>, ConnectError>> {
        if self.stage == Stage::Finished {
            return Poll::Ready(Err(ConnectError::new(
                ConnectErrorKind::PolledAfterCompletion,
                Report::default(),
            )));
        }
        // One reading of the clock per pass: an attempt that starts because another failed
        // starts at the very instant the other ended, and the clock costs once.
        let mut now = Instant::now();
        if self.stage == Stage::New {
            self.begin(false, now);
        }
        loop {
            if let Poll::Ready(answer) = self.step(cx, now) {
                self.stage = Stage::Finished;
                // Lookups still out (a slow AAAA after IPv4 won) are dropped now, not when the
                // caller gets round to dropping this future.
                self.lookups.out = None;
                self.nat64.stop();
                self.https = None;
                self.timers = Timers::default();
                return Poll::Ready(answer);
            }
            if !self.more_may_come() {
                // Nothing more can start: no timer but the deadline (for attempts in flight).
                self.timers.clear(Timer::NextAttempt);
                self.timers.clear(Timer::Resolution);
            }
            match self.timers.poll(cx, self.next_attempt_expiry()) {
                Poll::Pending => return Poll::Pending,
                // A timer's instant has come: take the rules again at that instant.
                Poll::Ready(at) => now = Instant::now().max(at),
            }
        }
    }

    /// One pass of the rules at `now`; `Pending` when the race waits for something.
    fn step(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Poll<Result<Won<H::Output>, ConnectError>> {
        loop {
            self.take_answers(cx);
            // Attempts before timers: one that finishes in the same instant as a timer still wins.
            if let Some(won) = self.poll_attempts(cx, now) {
                return Poll::Ready(Ok(won));
            }
            self.end_overdue_attempts(now);
            if self.deadline_passed(now) {
                return Poll::Ready(Err(self.time_out(now)));
            }
            self.start_racing(now);
            if self.start_next_attempt(now) {
                // Poll the new attempt now: its setup may already have failed.
                continue;
            }
            // The rules above may have started a NAT64 discovery (racing began and let held
            // addresses in): it is polled, and so started and woken for, before the race waits.
            if self.take_nat64_prefixes(cx) {
                continue;
            }
            if self.nothing_left() {
                return Poll::Ready(Err(self.fail(now)));
            }
            return Poll::Pending;
        }
    }

    /// Resolves and ranks like a connect, then hands back the plan instead of dialing: every
    /// name's answers (or the deadline) are awaited first.
    pub(crate) fn poll_plan(
        &mut self,
        cx: &mut Context<'_>,
        show_sources: bool,
    ) -> Poll<Result<Planned, ConnectError>> {
        let now = Instant::now();
        if self.stage == Stage::New {
            self.begin(show_sources, now);
        }
        self.take_answers(cx);
        let deadline_passed = self.timers.poll(cx, None).is_ready();
        if (self.lookups.any_out() || self.nat64.is_discovering() || self.https_pending())
            && !deadline_passed
        {
            return Poll::Pending;
        }
        self.https_give_up();
        self.stage = Stage::Finished;
        self.nat64.stop();
        let candidates = self.plan.drain();
        let report = self.report(now);
        if candidates.is_empty() {
            let kind = if deadline_passed {
                ConnectErrorKind::TimedOut
            } else {
                nothing_to_try(&report.skipped)
            };
            return Poll::Ready(Err(ConnectError::new(kind, report)));
        }
        let attempts = candidates
            .into_iter()
            .map(|candidate| PlannedAttempt {
                source: match candidate.pair.local {
                    Some(local) if !local.ip().is_unspecified() => Some(local.ip()),
                    _ => candidate.dest.source,
                },
                host: candidate.host,
                local: candidate.pair.local,
                remote: candidate.pair.remote,
                nat64: self.nat64.of(candidate.pair.remote),
                https: candidate.via,
            })
            .collect();
        Poll::Ready(Ok(Planned { attempts, report }))
    }
}

/// Why a connect had nothing to try: the filter refused every address it was given (so the
/// caller can tell an SSRF refusal from a name that did not resolve), or there was nothing.
fn nothing_to_try(skipped: &[Skipped]) -> ConnectErrorKind {
    let denied = |skipped: &Skipped| matches!(skipped.reason, SkipReason::Denied(_));
    if !skipped.is_empty() && skipped.iter().all(denied) {
        ConnectErrorKind::Denied
    } else {
        ConnectErrorKind::NoAddresses
    }
}

/// The attempts a connect would make, in order, without making them: see
/// [`Connector::plan`](crate::Connector::plan).
///
/// ```
/// use connect_by_list::Connector;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), connect_by_list::ConnectError> {
/// // Loopback literals: ranked without a route lookup, nothing sent.
/// let plan = Connector::new().plan(["127.0.0.1:8080", "[::1]:8080"]).await?;
/// for attempt in plan.attempts() {
///     println!("{} from {:?}", attempt.remote(), attempt.source());
/// }
/// assert_eq!(plan.attempts().len(), 2);
/// assert!(plan.report().skipped().is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Planned {
    attempts: Vec<PlannedAttempt>,
    report: Report,
}

impl Planned {
    /// Every attempt in the order the race would start them (the attempt cap aside).
    pub fn attempts(&self) -> &[PlannedAttempt] {
        &self.attempts
    }

    /// Names that did not resolve and addresses that would not be attempted.
    pub fn report(&self) -> &Report {
        &self.report
    }
}

/// One attempt of a [`Planned`] connect.
///
/// ```
/// use connect_by_list::Connector;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), connect_by_list::ConnectError> {
/// let plan = Connector::new().plan("127.0.0.1:8080").await?;
/// let first = &plan.attempts()[0];
/// assert_eq!(first.remote().to_string(), "127.0.0.1:8080");
/// assert_eq!(first.host(), None); // an IP literal, not a name
/// assert_eq!(first.local(), None); // the kernel picks the source
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedAttempt {
    host: Option<Arc<str>>,
    local: Option<SocketAddr>,
    remote: SocketAddr,
    source: Option<IpAddr>,
    nat64: Option<crate::Synthesized>,
    https: Option<crate::HttpsVia>,
}

impl PlannedAttempt {
    /// The host name the address came from, or `None` for an IP literal.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The local address the attempt would bind, or `None` when the kernel picks.
    pub fn local(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The remote address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// For an IPv6 address synthesized from an IPv4 one (see
    /// [`Builder::nat64`](crate::Builder::nat64)): the IPv4 address and the NAT64 prefix.
    pub fn nat64(&self) -> Option<&crate::Synthesized> {
        self.nat64.as_ref()
    }

    /// The source address: the bound local address, or the one the kernel would pick to reach
    /// `remote` (RFC 6724's `Source(D)`, which ranking used); `None` when it has no route there.
    pub fn source(&self) -> Option<IpAddr> {
        self.source
    }

    /// The HTTPS record the address and port come from (Happy Eyeballs v3), or `None` when
    /// they come from the name's A/AAAA answer as usual (or an IP literal).
    pub fn https(&self) -> Option<&crate::HttpsVia> {
        self.https.as_ref()
    }
}

/// HEv3 §8.1: IPv4 addresses scoped to the host or the link (`0.0.0.0/8`, `127.0.0.0/8`,
/// `169.254.0.0/16`, `255.255.255.255`) are never synthesized: a NAT64 cannot reach what they
/// name, and the kernel's answer for them (a route or none) is final.
fn host_or_link_scoped(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            ip.octets()[0] == 0 || ip.is_loopback() || ip.is_link_local() || ip.is_broadcast()
        }
        IpAddr::V6(_) => false,
    }
}

mod https;
#[cfg(test)]
mod tests;
