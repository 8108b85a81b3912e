//! Why a connect failed, with every attempt's own error.

use std::error::Error;
use std::fmt;
use std::io;

use crate::report::{Millis, Outcome, Report};
use crate::target::InvalidTarget;

/// What kind of failure a [`ConnectError`] is.
///
/// This crate's own kind, not [`io::ErrorKind`] (to which [`ConnectError::io_kind`] maps it).
///
/// ```
/// use connect_by_list::{Connector, ConnectErrorKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let error = Connector::new().connect("no-port-here").await.unwrap_err();
/// assert_eq!(error.kind(), ConnectErrorKind::InvalidTarget);
/// assert_eq!(error.io_kind(), std::io::ErrorKind::InvalidInput);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// A target could not be understood; nothing was resolved or opened.
    InvalidTarget,
    /// Nothing to try: no name resolved to a usable address.
    NoAddresses,
    /// Every address was refused by the [`AddressFilter`](crate::AddressFilter); nothing was
    /// sent.
    Denied,
    /// Every address was tried and none connected.
    AllFailed,
    /// The connect's deadline passed first; attempts in flight were cancelled.
    TimedOut,
    /// The connect future was polled again after it had answered: it opens nothing more, and
    /// answers every further poll with this.
    PolledAfterCompletion,
}

/// A connect that did not produce a stream: its kind, and the report of every attempt.
///
/// `Display` gives one line that names every attempt; [`ConnectError::report`] has the details,
/// each attempt with its own [`io::Error`]. Converts into an [`io::Error`] of a fitting kind
/// (`InvalidInput`, `NotFound`, `ConnectionRefused`, `TimedOut`, …) that still carries this error
/// (see [`io::Error::get_ref`]).
///
/// Cheap to clone (the attempts' errors are shared), so one failure can be handed to several
/// waiters or kept while the original is returned.
///
/// ```
/// use connect_by_list::{Connector, ConnectErrorKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A port that nothing listens on: a listener's, closed again.
/// let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = socket.local_addr().unwrap();
/// drop(socket);
///
/// let error = Connector::new().connect(addr).await.unwrap_err();
/// assert_eq!(error.kind(), ConnectErrorKind::AllFailed);
/// println!("{error}"); // could not connect: all 1 attempt(s) failed: 127.0.0.1:… refused …
/// for attempt in error.report().attempts() {
///     println!("{} {}: {:?}", attempt.remote(), attempt.outcome(), attempt.error());
/// }
/// let io: std::io::Error = error.clone().into();
/// assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectError {
    // Boxed: a `Result<_, ConnectError>` stays one pointer wide on the error side.
    inner: Box<Inner>,
}

#[derive(Clone, Debug)]
struct Inner {
    kind: ConnectErrorKind,
    report: Report,
    invalid: Option<InvalidTarget>,
}

impl ConnectError {
    pub(crate) fn new(kind: ConnectErrorKind, report: Report) -> ConnectError {
        ConnectError {
            inner: Box::new(Inner {
                kind,
                report,
                invalid: None,
            }),
        }
    }

    pub(crate) fn from_invalid_target(invalid: InvalidTarget) -> ConnectError {
        ConnectError {
            inner: Box::new(Inner {
                kind: ConnectErrorKind::InvalidTarget,
                report: Report::default(),
                invalid: Some(invalid),
            }),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ConnectErrorKind {
        self.inner.kind
    }

    /// Every attempt, in the order they started, and every name that did not resolve.
    pub fn report(&self) -> &Report {
        &self.inner.report
    }

    /// The target that could not be understood, for [`ConnectErrorKind::InvalidTarget`].
    pub fn invalid_target(&self) -> Option<&InvalidTarget> {
        self.inner.invalid.as_ref()
    }

    /// The [`io::ErrorKind`] this error converts to: `InvalidInput` for a bad target, `TimedOut`
    /// at the deadline, `PermissionDenied` when the filter refused everything, the last resolver
    /// error when nothing resolved, else the kind of the last attempt's error (so all refused
    /// gives `ConnectionRefused`).
    pub fn io_kind(&self) -> io::ErrorKind {
        match self.inner.kind {
            ConnectErrorKind::InvalidTarget => io::ErrorKind::InvalidInput,
            ConnectErrorKind::TimedOut => io::ErrorKind::TimedOut,
            ConnectErrorKind::PolledAfterCompletion => io::ErrorKind::Other,
            ConnectErrorKind::Denied => io::ErrorKind::PermissionDenied,
            ConnectErrorKind::NoAddresses => self
                .report()
                .resolve_failures()
                .last()
                .map_or(io::ErrorKind::NotFound, |failure| failure.error().kind()),
            ConnectErrorKind::AllFailed => self
                .report()
                .attempts()
                .iter()
                .rev()
                .find_map(|attempt| attempt.error().map(io::Error::kind))
                .unwrap_or(io::ErrorKind::Other),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tried = self.inner.report.attempts().len();
        match self.inner.kind {
            ConnectErrorKind::InvalidTarget => {
                return match &self.inner.invalid {
                    Some(invalid) => invalid.fmt(f),
                    None => f.write_str("invalid target"),
                };
            }
            ConnectErrorKind::NoAddresses => f.write_str("no address to connect to")?,
            ConnectErrorKind::PolledAfterCompletion => {
                f.write_str("the connect was polled again after it had answered")?
            }
            ConnectErrorKind::Denied => {
                f.write_str("every address was denied by the address filter")?
            }
            ConnectErrorKind::AllFailed => {
                write!(f, "could not connect: all {tried} attempt(s) failed")?
            }
            ConnectErrorKind::TimedOut => write!(
                f,
                "connect timed out after {} ({tried} attempt(s))",
                Millis(self.inner.report.elapsed())
            )?,
        }
        let report = &self.inner.report;
        if tried > 0 || !report.resolve_failures().is_empty() || !report.skipped().is_empty() {
            write!(f, ": {}", self.inner.report)?;
        }
        Ok(())
    }
}

impl Error for ConnectError {
    /// The invalid target, or the error of the last attempt that failed on its own (not lost or
    /// cancelled). Every attempt's error is in [`ConnectError::report`].
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        if let Some(invalid) = &self.inner.invalid {
            return Some(invalid);
        }
        self.inner
            .report
            .attempts()
            .iter()
            .rev()
            .filter(|attempt| attempt.outcome() != Outcome::Cancelled)
            .find_map(|attempt| attempt.error())
            .map(|error| error as &(dyn Error + 'static))
    }
}

impl From<ConnectError> for io::Error {
    fn from(error: ConnectError) -> io::Error {
        io::Error::new(error.io_kind(), error)
    }
}
