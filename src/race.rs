//! The race: resolution as answers arrive, staggered attempts, one deadline, losers closed.
//!
//! Generic over the dial and free of sockets, so that its tests drive it with scripted dials on
//! Tokio's paused clock.

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
use crate::dial::{Dial, Pair};
use crate::error::{ConnectError, ErrorKind};
use crate::history::{self, History};
use crate::plan::{Candidate, Pairing, Plan, Ranking};
use crate::report::{Attempt, Millis, Outcome, Report, ResolveFailure, SkipReason, Skipped};
use crate::resolve::Family;
use crate::target::{Host, Target};

/// What a won race hands back.
#[derive(Debug)]
pub(crate) struct Won<S> {
    pub(crate) stream: S,
    pub(crate) pair: Pair,
    pub(crate) report: Report,
}

/// One family's answer for one name: (target index, family, answer).
type Answer = (usize, Family, io::Result<Vec<IpAddr>>);
type Lookup = Pin<Box<dyn Future<Output = Answer> + Send>>;

/// One attempt in flight, with its own timeout if one is set.
struct InFlight<F> {
    /// Its index in the report.
    index: usize,
    dial: F,
    timer: Option<Pin<Box<Sleep>>>,
    limit: Duration,
}

impl<F, S> InFlight<F>
where
    F: Future<Output = io::Result<S>> + Unpin,
{
    /// Polls the dial before the timer, so a connect that completes in the same instant as the
    /// timeout still counts.
    fn poll_ended(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<S>> {
        if let Poll::Ready(result) = Pin::new(&mut self.dial).poll(cx) {
            return Poll::Ready(result);
        }
        if let Some(timer) = &mut self.timer {
            if timer.as_mut().poll(cx).is_ready() {
                let message = format!("attempt timed out after {}", Millis(self.limit));
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, message)));
            }
        }
        Poll::Pending
    }
}

/// Where a name stands: how many of its two lookups are still out, and what came back.
#[derive(Debug, Default)]
struct NameState {
    pending: u8,
    found: usize,
    first_error: Option<io::Error>,
}

/// The race for one connect. Starts its clock and its lookups on the first poll.
pub(crate) struct Race<D: Dial> {
    dial: D,
    config: Arc<Config>,
    targets: Vec<Target>,
    /// Set once the race has answered: polled again, it opens nothing more.
    finished: bool,
    /// When the race began (its first poll); `None` before.
    start: Option<Instant>,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Made on the first name to resolve: IP literals alone cost no lookup set.
    lookups: Option<FuturesUnordered<Lookup>>,
    names: Vec<NameState>,
    v6_lookups_pending: usize,
    /// Armed when an IPv4 answer is in and an IPv6 one is still awaited (RFC 8305 §3).
    resolution_timer: Option<Pin<Box<Sleep>>>,
    racing: bool,
    plan: Plan,
    /// Made when the race begins: the local addresses are read then.
    pairing: Option<Pairing>,
    history: Option<Arc<History>>,
    /// This target list's key in the history, computed when the race begins.
    history_key: Option<history::Key>,
    /// The configured delay, or the one history suggests for its favourite.
    attempt_delay: Duration,
    favoured: Option<SocketAddr>,
    /// The attempts in flight, oldest first. A plain `Vec`, polled whole on every wake: there
    /// are few (the attempt delay staggers them), and a lone attempt needs no task set around it.
    in_flight: Vec<InFlight<D::Future>>,
    /// When the next attempt may start; made on the first launch that can have a successor, so
    /// a lone address costs no timer.
    next_timer: Option<Pin<Box<Sleep>>>,
    next_timer_armed: bool,
    start_next: bool,
    attempts: Vec<Attempt>,
    resolve_failures: Vec<ResolveFailure>,
    skipped: Vec<Skipped>,
    not_tried: usize,
}

impl<D: Dial> std::fmt::Debug for Race<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Race")
            .field("targets", &self.targets)
            .field("attempts", &self.attempts)
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
        let probe = match config.ranking {
            Ranking::Rfc6724(_) => Some(config.route_probe),
            Ranking::InputOrder => None,
        };
        let plan = Plan::new(
            config.first_family_count,
            config.max_attempts,
            config.ranking.clone(),
            probe,
        );
        Race {
            dial,
            targets,
            finished: false,
            start: None,
            deadline: None,
            lookups: None,
            names: Vec::new(),
            v6_lookups_pending: 0,
            resolution_timer: None,
            racing: false,
            plan,
            pairing: None,
            history,
            history_key: None,
            attempt_delay: config.attempt_delay,
            favoured: None,
            in_flight: Vec::new(),
            next_timer: None,
            next_timer_armed: false,
            start_next: false,
            attempts: Vec::new(),
            resolve_failures: Vec::new(),
            skipped: Vec::new(),
            not_tried: 0,
            config,
        }
    }

    /// Whether a lookup is still out.
    fn lookups_pending(&self) -> bool {
        self.lookups
            .as_ref()
            .is_some_and(|lookups| !lookups.is_empty())
    }

    /// Takes in every answer that has come.
    fn poll_lookups(&mut self, cx: &mut Context<'_>) {
        while let Some(Poll::Ready(Some(answer))) = self
            .lookups
            .as_mut()
            .map(|lookups| lookups.poll_next_unpin(cx))
        {
            self.on_answer(answer);
        }
    }

    fn offset(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start.unwrap_or(now))
    }

    /// Starts the clock, the deadline and every lookup; IP literals go straight into the plan.
    /// `show_sources` asks for route lookups even where the ranking needs none.
    fn begin(&mut self, show_sources: bool, now: Instant) {
        self.start = Some(now);
        self.deadline = self
            .config
            .timeout
            .and_then(|timeout| now.checked_add(timeout))
            .map(|at| Box::pin(tokio::time::sleep_until(at)));
        let locals = self.config.local_addrs.resolve().unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot list the local interfaces; the kernel picks sources");
            None
        });
        if show_sources {
            self.plan.probe_always(self.config.route_probe);
        }
        let table = match &self.config.ranking {
            Ranking::Rfc6724(table) => table.clone(),
            // Ranking is off, yet listed local addresses still need a table to choose by.
            Ranking::InputOrder => crate::rank::PolicyTable::shared_default(),
        };
        self.pairing = Some(Pairing {
            locals,
            filter: self.config.filter.clone(),
            probe: self.config.route_probe,
            table,
        });
        // Only names have a state; a list of IP literals allocates none.
        if self
            .targets
            .iter()
            .any(|t| matches!(t.host(), Host::Name(_)))
        {
            self.names = (0..self.targets.len())
                .map(|_| NameState::default())
                .collect();
        }
        for (index, target) in self.targets.iter().enumerate() {
            match target.host() {
                Host::Ip(_) => {}
                Host::Name(name) => {
                    self.names[index].pending = 2;
                    let lookups = self.lookups.get_or_insert_with(FuturesUnordered::new);
                    for family in [Family::V6, Family::V4] {
                        let lookup = self.config.resolver.resolve(name, family);
                        lookups.push(Box::pin(async move { (index, family, lookup.await) }));
                    }
                    self.v6_lookups_pending += 1;
                }
            }
        }
        for index in 0..self.targets.len() {
            if let Host::Ip(ip) = *self.targets[index].host() {
                self.consider(index, 0, None, ip);
            }
        }
        // With one pair to try and no name to bring more, history has nothing to choose between:
        // it is neither asked nor taught.
        let lone = self.lookups.is_none() && self.plan.untried() <= 1;
        self.history_key = match &self.history {
            Some(history) if !lone => Some(history.key(&self.targets)),
            _ => None,
        };
        let lesson = match (&self.history, self.history_key) {
            (Some(history), Some(key)) => history.recall(key, now),
            _ => None,
        };
        if let Some(lesson) = lesson {
            tracing::debug!(winner = %lesson.winner.remote, "last race's winner goes first");
            self.plan.favour(lesson.winner);
            self.favoured = Some(lesson.winner.remote);
            self.attempt_delay = lesson.attempt_delay(self.config.attempt_delay);
        }
    }

    /// Pairs one address with the local addresses that can reach it and adds the pairs to the
    /// plan, or records why it has none.
    fn consider(&mut self, target: usize, position: usize, host: Option<Arc<str>>, ip: IpAddr) {
        // A literal keeps its scope id (`[fe80::1%2]`); names' answers carry none.
        let remote = match self.targets[target].socket_addr() {
            Some(literal) if literal.ip() == ip => literal,
            _ => SocketAddr::new(ip, self.targets[target].port()),
        };
        let Some(pairing) = &self.pairing else {
            return;
        };
        match pairing.expand(remote, host, (target, position)) {
            Ok(candidates) => self.plan.add(candidates),
            Err(skipped) => {
                tracing::debug!(%skipped, "not attempted");
                self.skipped.push(skipped);
            }
        }
    }

    fn on_answer(&mut self, (index, family, answer): Answer) {
        if family == Family::V6 {
            self.v6_lookups_pending -= 1;
        }
        let Host::Name(name) = self.targets[index].host().clone() else {
            return;
        };
        self.names[index].pending -= 1;
        match answer {
            Ok(mut addrs) => {
                addrs.retain(|ip| Family::of(*ip) == family);
                let cap = self.config.max_addresses_per_name;
                if addrs.len() > cap {
                    self.not_tried += addrs.len() - cap;
                    addrs.truncate(cap);
                }
                tracing::debug!(host = %name, %family, addresses = ?addrs, "resolved");
                self.names[index].found += addrs.len();
                // IPv4 positions come after every IPv6 one, whichever answer came first, so the
                // caller's order (rule 10) does not depend on timing.
                let offset = if family == Family::V6 { 0 } else { cap };
                for (i, ip) in addrs.into_iter().enumerate() {
                    self.consider(index, offset + i, Some(name.clone()), ip);
                }
            }
            Err(error) => {
                tracing::debug!(host = %name, %family, %error, "lookup failed");
                self.names[index].first_error.get_or_insert(error);
            }
        }
        let state = &mut self.names[index];
        if state.pending == 0 && state.found == 0 {
            let error = state.first_error.take().unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "no IPv4 or IPv6 address")
            });
            self.resolve_failures.push(ResolveFailure {
                host: name,
                error: Arc::new(error),
            });
        }
    }

    /// RFC 8305 §3: start as soon as an IPv6 address is known; with only IPv4 known, wait up to
    /// the resolution delay for the IPv6 answers still out.
    fn ready_to_race(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        if self.plan.untried() == 0 {
            return false;
        }
        if self.plan.has(Family::V6) || self.v6_lookups_pending == 0 {
            return true;
        }
        let delay = self.config.resolution_delay;
        let timer = self.resolution_timer.get_or_insert_with(|| {
            let at = now + delay;
            Box::pin(tokio::time::sleep_until(at))
        });
        timer.as_mut().poll(cx).is_ready()
    }

    fn launch(&mut self, candidate: Candidate, now: Instant) {
        let index = self.attempts.len();
        let started = self.offset(now);
        let pair = candidate.pair;
        tracing::debug!(attempt = index + 1, remote = %pair.remote, local = ?pair.local, "attempt started");
        if self.attempts.capacity() == 0 {
            // Room for one to begin with: most connects make one attempt, and a race in flight
            // should hold no more than it needs (the second attempt grows both lists to four).
            self.attempts.reserve_exact(1);
            self.in_flight.reserve_exact(1);
        }
        self.attempts.push(Attempt {
            host: candidate.host,
            local: pair.local,
            remote: pair.remote,
            started,
            ended: started,
            outcome: Outcome::Cancelled,
            error: None,
        });
        let limit = self.config.attempt_timeout.unwrap_or_default();
        let timer = self
            .config
            .attempt_timeout
            .map(|timeout| match now.checked_add(timeout) {
                Some(at) => Box::pin(tokio::time::sleep_until(at)),
                // Past what the clock can hold: Tokio's `sleep` caps it.
                None => Box::pin(tokio::time::sleep(timeout)),
            });
        self.in_flight.push(InFlight {
            index,
            dial: self.dial.dial(pair),
            timer,
            limit,
        });
        // The timer for the next attempt, when there can be one: the last attempt (nothing left
        // in the plan and no lookup out that could add to it) leaves it unarmed.
        let more_may_come = !self.plan.is_done() || self.lookups_pending();
        if more_may_come {
            let next_at = now + self.attempt_delay;
            match &mut self.next_timer {
                Some(timer) => timer.as_mut().reset(next_at),
                None => self.next_timer = Some(Box::pin(tokio::time::sleep_until(next_at))),
            }
        }
        self.next_timer_armed = more_may_come;
    }

    fn end(&mut self, index: usize, outcome: Outcome, error: Option<io::Error>, now: Instant) {
        let ended = self.offset(now);
        if let Some(attempt) = self.attempts.get_mut(index) {
            attempt.ended = ended;
            attempt.outcome = outcome;
            attempt.error = error.map(Arc::new);
            tracing::debug!(
                attempt = index + 1,
                remote = %attempt.remote,
                outcome = outcome.as_str(),
                error = attempt.error.as_ref().map(tracing::field::display),
                "attempt ended"
            );
        }
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
        Report {
            attempts: std::mem::take(&mut self.attempts),
            resolve_failures: std::mem::take(&mut self.resolve_failures),
            skipped: std::mem::take(&mut self.skipped),
            favoured: self.favoured,
            elapsed: self.offset(now),
            not_tried: self.not_tried + self.plan.untried(),
        }
    }

    fn win(&mut self, index: usize, stream: D::Stream, now: Instant) -> Won<D::Stream> {
        self.end(index, Outcome::Connected, None, now);
        let attempt = &self.attempts[index];
        let dialed = Pair {
            local: attempt.local,
            remote: attempt.remote,
        };
        if let (Some(history), Some(key)) = (&self.history, self.history_key) {
            history.learn(key, dialed, attempt.duration(), now);
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

    fn fail(&mut self, kind: ErrorKind, now: Instant) -> ConnectError {
        ConnectError::new(kind, self.report(now))
    }

    /// Drives the race: the rules are in the crate docs ("The path of one connect").
    pub(crate) fn poll_race(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Won<D::Stream>, ConnectError>> {
        if self.finished {
            return Poll::Pending;
        }
        // One reading of the clock per poll: an attempt that starts because another failed
        // starts at the very instant the other ended, and the clock costs once.
        let now = Instant::now();
        if self.start.is_none() {
            self.begin(false, now);
        }
        let answer = self.step(cx, now);
        if answer.is_ready() {
            self.finished = true;
            // Lookups still out (a slow AAAA after IPv4 won) are dropped now, not when the
            // caller gets round to dropping this future.
            self.lookups = None;
        }
        answer
    }

    fn step(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Poll<Result<Won<D::Stream>, ConnectError>> {
        loop {
            self.poll_lookups(cx);
            // Attempts before timers: a connect ready in the same instant as a timer still wins.
            // Oldest first, so of two connected in the same instant the earlier attempt wins.
            let mut i = 0;
            while i < self.in_flight.len() {
                let Poll::Ready(result) = self.in_flight[i].poll_ended(cx) else {
                    i += 1;
                    continue;
                };
                let index = self.in_flight.remove(i).index;
                match result {
                    Ok(stream) => return Poll::Ready(Ok(self.win(index, stream, now))),
                    Err(error) => {
                        let outcome = Outcome::of_error(&error);
                        self.end(index, outcome, Some(error), now);
                        // A failure frees the slot at once (RFC 8305 §5).
                        self.start_next = true;
                    }
                }
            }
            if !self.racing && self.ready_to_race(cx, now) {
                self.racing = true;
                self.start_next = true;
                self.resolution_timer = None;
            }
            if self.racing {
                let timer_fired = match (&mut self.next_timer, self.next_timer_armed) {
                    (Some(timer), true) => timer.as_mut().poll(cx).is_ready(),
                    _ => false,
                };
                if !self.start_next && timer_fired {
                    self.next_timer_armed = false;
                    self.start_next = true;
                }
                if self.start_next {
                    if let Some(candidate) = self.plan.next() {
                        self.start_next = false;
                        self.launch(candidate, now);
                        // Poll the new attempt now: its setup may already have failed.
                        continue;
                    }
                }
            }
            if self.in_flight.is_empty()
                && !self.lookups_pending()
                && (self.plan.is_done() || !self.racing)
            {
                let kind = if self.attempts.is_empty() {
                    nothing_to_try(&self.skipped)
                } else {
                    ErrorKind::AllFailed
                };
                return Poll::Ready(Err(self.fail(kind, now)));
            }
            if let Some(deadline) = self.deadline.as_mut() {
                if deadline.as_mut().poll(cx).is_ready() {
                    let timeout = self.config.timeout.unwrap_or_default();
                    let deadline_passed = || {
                        let message = format!("the connect's {} deadline passed", Millis(timeout));
                        Some(io::Error::new(io::ErrorKind::TimedOut, message))
                    };
                    self.end_in_flight(Outcome::Cancelled, deadline_passed, now);
                    return Poll::Ready(Err(self.fail(ErrorKind::TimedOut, now)));
                }
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
        if self.start.is_none() {
            self.begin(show_sources, now);
        }
        self.poll_lookups(cx);
        let deadline_passed = match self.deadline.as_mut() {
            Some(deadline) => deadline.as_mut().poll(cx).is_ready(),
            None => false,
        };
        if self.lookups_pending() && !deadline_passed {
            return Poll::Pending;
        }
        let candidates = self.plan.drain();
        let report = self.report(now);
        if candidates.is_empty() {
            let kind = if deadline_passed {
                ErrorKind::TimedOut
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
            })
            .collect();
        Poll::Ready(Ok(Planned { attempts, report }))
    }
}

/// Why a connect had nothing to try: the filter refused every address it was given (so the
/// caller can tell an SSRF refusal from a name that did not resolve), or there was nothing.
fn nothing_to_try(skipped: &[Skipped]) -> ErrorKind {
    let denied = |skipped: &Skipped| matches!(skipped.reason, SkipReason::Denied(_));
    if !skipped.is_empty() && skipped.iter().all(denied) {
        ErrorKind::Denied
    } else {
        ErrorKind::NoAddresses
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

    /// The source address: the bound local address, or the one the kernel would pick to reach
    /// `remote` (RFC 6724's `Source(D)`, which ranking used); `None` when it has no route there.
    pub fn source(&self) -> Option<IpAddr> {
        self.source
    }
}

#[cfg(test)]
mod tests;
