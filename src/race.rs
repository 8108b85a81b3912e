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
use crate::plan::{Candidate, Plan};
use crate::report::{Attempt, Millis, Outcome, Report, ResolveFailure};
use crate::resolve::Family;
use crate::target::{Host, Target};

/// What a won race hands back.
#[derive(Debug)]
pub(crate) struct Won<S> {
    pub(crate) stream: S,
    pub(crate) pair: Pair,
    pub(crate) report: Report,
}

/// A stream whose local address can be read, for the report.
pub(crate) trait LocalAddr {
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

impl LocalAddr for tokio::net::TcpStream {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpStream::local_addr(self)
    }
}

/// One family's answer for one name: (target index, family, answer).
type Answer = (usize, Family, io::Result<Vec<IpAddr>>);
type Lookup = Pin<Box<dyn Future<Output = Answer> + Send>>;

pin_project_lite::pin_project! {
    /// One attempt in flight, with its own timeout if one is set. Polls the dial before the timer,
    /// so a connect that completes in the same instant as the timeout still counts.
    struct InFlight<F> {
        index: usize,
        #[pin]
        dial: F,
        #[pin]
        timer: Option<Sleep>,
        limit: Duration,
    }
}

impl<F, S> Future for InFlight<F>
where
    F: Future<Output = io::Result<S>>,
{
    type Output = (usize, io::Result<S>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.dial.poll(cx) {
            return Poll::Ready((*this.index, result));
        }
        if let Some(timer) = this.timer.as_pin_mut() {
            if timer.poll(cx).is_ready() {
                let message = format!("attempt timed out after {}", Millis(*this.limit));
                let error = io::Error::new(io::ErrorKind::TimedOut, message);
                return Poll::Ready((*this.index, Err(error)));
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
    begun: bool,
    start: Instant,
    deadline: Option<Pin<Box<Sleep>>>,
    lookups: FuturesUnordered<Lookup>,
    names: Vec<NameState>,
    v6_lookups_pending: usize,
    /// Armed when an IPv4 answer is in and an IPv6 one is still awaited (RFC 8305 §3).
    resolution_timer: Option<Pin<Box<Sleep>>>,
    racing: bool,
    plan: Plan,
    in_flight: FuturesUnordered<InFlight<D::Future>>,
    /// The report indices of the attempts in `in_flight`.
    running: Vec<usize>,
    next_timer: Pin<Box<Sleep>>,
    next_timer_armed: bool,
    start_next: bool,
    attempts: Vec<Attempt>,
    resolve_failures: Vec<ResolveFailure>,
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

impl<D> Race<D>
where
    D: Dial,
    D::Stream: LocalAddr,
{
    pub(crate) fn new(dial: D, config: Arc<Config>, targets: Vec<Target>, plan: Plan) -> Self {
        let now = Instant::now();
        Race {
            dial,
            targets,
            begun: false,
            start: now,
            deadline: None,
            lookups: FuturesUnordered::new(),
            names: Vec::new(),
            v6_lookups_pending: 0,
            resolution_timer: None,
            racing: false,
            plan,
            in_flight: FuturesUnordered::new(),
            running: Vec::new(),
            next_timer: Box::pin(tokio::time::sleep_until(now)),
            next_timer_armed: false,
            start_next: false,
            attempts: Vec::new(),
            resolve_failures: Vec::new(),
            not_tried: 0,
            config,
        }
    }

    fn offset(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start)
    }

    /// Starts the clock, the deadline and every lookup; IP literals go straight into the plan.
    fn begin(&mut self) {
        self.begun = true;
        self.start = Instant::now();
        self.deadline = self
            .config
            .timeout
            .and_then(|timeout| self.start.checked_add(timeout))
            .map(|at| Box::pin(tokio::time::sleep_until(at)));
        self.names = (0..self.targets.len())
            .map(|_| NameState::default())
            .collect();
        let mut literals = Vec::new();
        for (index, target) in self.targets.iter().enumerate() {
            match target.host() {
                Host::Ip(ip) => literals.push(self.candidate(index, 0, None, *ip)),
                Host::Name(name) => {
                    self.names[index].pending = 2;
                    for family in [Family::V6, Family::V4] {
                        let lookup = self.config.resolver.resolve(name, family);
                        self.lookups
                            .push(Box::pin(async move { (index, family, lookup.await) }));
                    }
                    self.v6_lookups_pending += 1;
                }
            }
        }
        self.plan.add(literals);
    }

    fn candidate(
        &self,
        target: usize,
        position: usize,
        host: Option<Arc<str>>,
        ip: IpAddr,
    ) -> Candidate {
        let remote = SocketAddr::new(ip, self.targets[target].port());
        Candidate {
            pair: Pair {
                local: None,
                remote,
            },
            host,
            order: (target, position),
            source: None,
            routable: true,
        }
    }

    fn on_answer(&mut self, (index, family, answer): Answer) {
        if family == Family::V6 {
            self.v6_lookups_pending -= 1;
        }
        let Host::Name(name) = self.targets[index].host().clone() else {
            return;
        };
        let state = &mut self.names[index];
        state.pending -= 1;
        match answer {
            Ok(mut addrs) => {
                addrs.retain(|ip| Family::of(*ip) == family);
                let cap = self.config.max_addresses_per_name;
                if addrs.len() > cap {
                    self.not_tried += addrs.len() - cap;
                    addrs.truncate(cap);
                }
                tracing::debug!(host = %name, %family, addresses = ?addrs, "resolved");
                state.found += addrs.len();
                let offset = if family == Family::V6 { 0 } else { cap };
                let candidates: Vec<Candidate> = addrs
                    .into_iter()
                    .enumerate()
                    .map(|(i, ip)| self.candidate(index, offset + i, Some(name.clone()), ip))
                    .collect();
                self.plan.add(candidates);
            }
            Err(error) => {
                tracing::debug!(host = %name, %family, %error, "lookup failed");
                state.first_error.get_or_insert(error);
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
            .map(|timeout| tokio::time::sleep(timeout));
        self.running.push(index);
        self.in_flight.push(InFlight {
            index,
            dial: self.dial.dial(pair),
            timer,
            limit,
        });
        let next_at = now + self.config.attempt_delay;
        self.next_timer.as_mut().reset(next_at);
        self.next_timer_armed = true;
    }

    fn end(&mut self, index: usize, outcome: Outcome, error: Option<io::Error>, now: Instant) {
        let ended = self.offset(now);
        self.running.retain(|&running| running != index);
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
        let open = self.running.clone();
        self.in_flight.clear();
        for index in open {
            self.end(index, outcome, error(), now);
        }
    }

    fn report(&mut self, now: Instant) -> Report {
        Report {
            attempts: std::mem::take(&mut self.attempts),
            resolve_failures: std::mem::take(&mut self.resolve_failures),
            elapsed: self.offset(now),
            not_tried: self.not_tried + self.plan.untried(),
        }
    }

    fn win(&mut self, index: usize, stream: D::Stream, now: Instant) -> Won<D::Stream> {
        self.end(index, Outcome::Connected, None, now);
        let mut pair = Pair {
            local: None,
            remote: self.attempts[index].remote,
        };
        if let Ok(local) = stream.local_addr() {
            self.attempts[index].local = Some(local);
            pair.local = Some(local);
        }
        self.end_in_flight(Outcome::Lost, || None, now);
        Won {
            stream,
            pair,
            report: self.report(now),
        }
    }

    fn fail(&mut self, kind: ErrorKind, now: Instant) -> ConnectError {
        ConnectError::new(kind, self.report(now))
    }

    /// Drives the race one step; see the module docs for the rules.
    pub(crate) fn poll_race(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Won<D::Stream>, ConnectError>> {
        if !self.begun {
            self.begin();
        }
        loop {
            // One reading of the clock per turn: an attempt that starts because another failed
            // starts at the very instant the other ended.
            let now = Instant::now();
            while let Poll::Ready(Some(answer)) = self.lookups.poll_next_unpin(cx) {
                self.on_answer(answer);
            }
            // Attempts before timers: a connect ready in the same instant as a timer still wins.
            while let Poll::Ready(Some((index, result))) = self.in_flight.poll_next_unpin(cx) {
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
                if !self.start_next
                    && self.next_timer_armed
                    && self.next_timer.as_mut().poll(cx).is_ready()
                {
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
                && self.lookups.is_empty()
                && (self.plan.is_done() || !self.racing)
            {
                let kind = if self.attempts.is_empty() {
                    ErrorKind::NoAddresses
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
}

#[cfg(test)]
mod tests;
