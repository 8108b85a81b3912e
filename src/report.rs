//! The story of one connect: every attempt, when it ran and how it ended.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::resolve::Family;

/// How one attempt ended.
///
/// ```
/// use connect_by_list::{Connector, Outcome};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A loopback port that nothing listens on (a listener's, closed again), then a live one.
/// let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
/// let live = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let connector = Connector::builder().sort_addresses(false).build()?;
/// let connection = connector.connect([closed, live.local_addr()?]).await?;
/// let attempts = connection.report().attempts();
/// let outcomes: Vec<Outcome> = attempts.iter().map(|attempt| attempt.outcome()).collect();
/// assert_eq!(outcomes, [Outcome::Refused, Outcome::Connected]);
/// assert_eq!(Outcome::Refused.as_str(), "refused");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It connected and won the race.
    Connected,
    /// The peer answered with a reset (nothing listens there).
    Refused,
    /// The network said the host or network cannot be reached (ICMP unreachable, no route).
    Unreachable,
    /// Its own per-attempt timeout, or the kernel's SYN retries, ran out.
    TimedOut,
    /// Another attempt connected first; this one was closed.
    Lost,
    /// The connect's deadline passed, or the connect future was dropped, while it was in flight.
    Cancelled,
    /// It connected, but the handshake the race ran on it (TLS, say) failed.
    HandshakeFailed,
    /// Any other error (socket setup, bind, an option the system refused, …).
    Error,
}

impl Outcome {
    /// A short lowercase name: `connected`, `refused`, `unreachable`, `timed_out`, `lost`,
    /// `cancelled`, `handshake_failed` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Refused => "refused",
            Outcome::Unreachable => "unreachable",
            Outcome::TimedOut => "timed_out",
            Outcome::Lost => "lost",
            Outcome::Cancelled => "cancelled",
            Outcome::HandshakeFailed => "handshake_failed",
            Outcome::Error => "error",
        }
    }

    /// Classifies a failed connect's error.
    pub(crate) fn of_error(error: &io::Error) -> Outcome {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => Outcome::Refused,
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                Outcome::Unreachable
            }
            io::ErrorKind::TimedOut => Outcome::TimedOut,
            // An ICMPv6 "administratively prohibited" answer surfaces as EACCES from connect.
            _ if is_admin_prohibited(error) => Outcome::Unreachable,
            _ => Outcome::Error,
        }
    }
}

#[cfg(unix)]
fn is_admin_prohibited(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::EACCES)
}

#[cfg(not(unix))]
fn is_admin_prohibited(_: &io::Error) -> bool {
    false
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::TimedOut => "timed out",
            Outcome::HandshakeFailed => "handshake failed",
            other => other.as_str(),
        })
    }
}

/// One connection attempt: its addresses, when it ran, how it ended.
///
/// ```
/// use connect_by_list::Connector;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A loopback port that nothing listens on (a listener's, closed again), then a live one.
/// let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
/// let live = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let connector = Connector::builder().sort_addresses(false).build()?;
/// let connection = connector.connect([closed, live.local_addr()?]).await?;
/// let refused = &connection.report().attempts()[0];
/// assert_eq!(refused.remote(), closed);
/// assert!(refused.ended() >= refused.started());
/// println!("{refused}"); // 127.0.0.1:… refused at 0.1ms
/// let kind = refused.error().map(std::io::Error::kind);
/// assert_eq!(kind, Some(std::io::ErrorKind::ConnectionRefused));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Attempt {
    pub(crate) host: Option<Arc<str>>,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) remote: SocketAddr,
    pub(crate) started: Duration,
    pub(crate) connected: Option<Duration>,
    pub(crate) ended: Duration,
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<Arc<io::Error>>,
    pub(crate) mptcp_fallback: Option<Arc<io::Error>>,
    pub(crate) nat64: Option<crate::Synthesized>,
    pub(crate) https: Option<crate::HttpsVia>,
}

impl Attempt {
    /// The HTTPS record this attempt's address and port came from (Happy Eyeballs v3), or
    /// `None` when it came from the name's A/AAAA answer as usual (or is an IP literal).
    pub fn https(&self) -> Option<&crate::HttpsVia> {
        self.https.as_ref()
    }

    /// With [`Builder::mptcp`](crate::Builder::mptcp) on: why this attempt could not open a
    /// Multipath TCP socket and used plain TCP instead: the failed step and the kernel's error
    /// (`open an MPTCP socket: …` when MPTCP is not built in or `net.mptcp.enabled=0`; `set
    /// TCP_USER_TIMEOUT: …` for an option MPTCP sockets lack). `None` when it did open one, or
    /// when MPTCP was
    /// not asked for. (A peer without MPTCP is another matter: the kernel falls back on that
    /// connection by itself, and the socket stays an MPTCP one.)
    pub fn mptcp_fallback(&self) -> Option<&io::Error> {
        self.mptcp_fallback.as_deref()
    }

    /// The host name this address came from, or `None` for an IP literal.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The local address: the one the socket was bound to, or for the winner the one the kernel
    /// chose. `None` when the kernel chose and the attempt did not win.
    pub fn local(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The remote address tried.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// For an IPv6 address synthesized from an IPv4 one on an IPv6-only network (see
    /// [`Builder::nat64`](crate::Builder::nat64)): the IPv4 address it stands for and the NAT64
    /// prefix; `None` for any other attempt.
    pub fn nat64(&self) -> Option<&crate::Synthesized> {
        self.nat64.as_ref()
    }

    /// When the attempt started, from the start of the connect.
    pub fn started(&self) -> Duration {
        self.started
    }

    /// When its TCP connect completed, from the start of the connect; `None` if it never did.
    /// Without a handshake the winner's is its end; with one, the handshake ran from here to
    /// [`Attempt::ended`].
    pub fn connected(&self) -> Option<Duration> {
        self.connected
    }

    /// When the attempt ended, from the start of the connect.
    pub fn ended(&self) -> Duration {
        self.ended
    }

    /// How long it ran.
    pub fn duration(&self) -> Duration {
        self.ended.saturating_sub(self.started)
    }

    /// How it ended.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Its error, for every outcome but [`Outcome::Connected`] and [`Outcome::Lost`]. A socket
    /// setup error names the step that failed ("bind to 192.0.2.10:0: …"), with the system's
    /// error as its source and its kind; [`Attempt::raw_os_error`] finds the code.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_deref()
    }

    /// The operating system's error code behind [`Attempt::error`], also when the error is
    /// labelled with the setup step that failed.
    pub fn raw_os_error(&self) -> Option<i32> {
        let error = self.error.as_deref()?;
        if let Some(code) = error.raw_os_error() {
            return Some(code);
        }
        let mut source = error.get_ref().and_then(|inner| inner.source());
        while let Some(cause) = source {
            if let Some(code) = cause
                .downcast_ref::<io::Error>()
                .and_then(io::Error::raw_os_error)
            {
                return Some(code);
            }
            source = cause.source();
        }
        None
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.remote)?;
        if let Some(nat64) = &self.nat64 {
            write!(f, " ({nat64})")?;
        }
        if let Some(local) = self.local {
            write!(f, " from {local}")?;
        }
        if let Some(via) = &self.https {
            write!(f, " [{via}]")?;
        }
        write!(f, " {} at {}", self.outcome, Millis(self.ended))?;
        match (&self.error, self.outcome) {
            (Some(error), Outcome::Error | Outcome::HandshakeFailed) => write!(f, " ({error})"),
            _ => Ok(()),
        }
    }
}

/// A host name that did not resolve for one address family, or at all.
///
/// ```
/// use connect_by_list::{Connector, Family, Resolve, Resolving};
///
/// /// Knows no name at all.
/// #[derive(Debug)]
/// struct Nothing;
///
/// impl Resolve for Nothing {
///     fn resolve(&self, _name: &str, _family: Family) -> Resolving {
///         Box::pin(async { Err(std::io::Error::new(std::io::ErrorKind::NotFound, "unknown")) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let connector = Connector::builder().resolver(Nothing).build()?;
/// let error = connector.connect("db.example:5432").await.unwrap_err();
/// let failure = &error.report().resolve_failures()[0];
/// assert_eq!(failure.host(), "db.example");
/// assert_eq!(failure.error().kind(), std::io::ErrorKind::NotFound);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ResolveFailure {
    pub(crate) host: Arc<str>,
    pub(crate) error: Arc<io::Error>,
}

impl ResolveFailure {
    /// The name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// What the resolver said.
    pub fn error(&self) -> &io::Error {
        &self.error
    }
}

impl fmt::Display for ResolveFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} did not resolve ({})", self.host, self.error)
    }
}

/// An address that was known but never attempted, and why.
///
/// ```
/// use connect_by_list::{AddressFilter, Connector, SkipReason};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let filter = AddressFilter::allow_all().deny("127.0.0.2/32".parse()?);
/// let connector = Connector::builder().address_filter(filter).build()?;
/// // Planned only: nothing is sent.
/// let plan = connector.plan(["127.0.0.1:8080", "127.0.0.2:8080"]).await?;
/// let skipped = &plan.report().skipped()[0];
/// assert_eq!(skipped.remote().to_string(), "127.0.0.2:8080");
/// assert!(matches!(skipped.reason(), SkipReason::Denied(_)));
/// assert_eq!(skipped.reason().as_str(), "denied");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Skipped {
    pub(crate) host: Option<Arc<str>>,
    pub(crate) remote: SocketAddr,
    pub(crate) reason: SkipReason,
}

impl Skipped {
    /// The host name this address came from, or `None` for an IP literal.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Why it was not attempted.
    pub fn reason(&self) -> &SkipReason {
        &self.reason
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            SkipReason::Denied(denied) => {
                write!(f, "{} denied ({})", self.remote, denied.reason())
            }
            SkipReason::NoUsableLocal(why) => {
                write!(
                    f,
                    "{} skipped: no local address can reach it ({why})",
                    self.remote
                )
            }
            SkipReason::OtherFamily(family) => {
                write!(
                    f,
                    "{} skipped: {family} is not used (ip_family)",
                    self.remote
                )
            }
            SkipReason::WithoutEch => write!(
                f,
                "{} skipped: every HTTPS record of the name has ECH, and this endpoint is none of theirs",
                self.remote
            ),
        }
    }
}

/// Why an address was not attempted.
///
/// ```
/// use connect_by_list::SkipReason;
///
/// fn explain(reason: &SkipReason) -> String {
///     match reason {
///         SkipReason::Denied(denied) => format!("refused by the filter: {}", denied.reason()),
///         SkipReason::NoUsableLocal(why) => format!("no local address reaches it: {why}"),
///         other => other.as_str().to_owned(),
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The [`AddressFilter`](crate::AddressFilter) refused it.
    Denied(crate::Denied),
    /// None of the configured local addresses can reach it; says why for each.
    NoUsableLocal(String),
    /// Its family is not used ([`Builder::ip_family`](crate::Builder::ip_family)).
    OtherFamily(crate::Family),
    /// With a handshake that uses ECH (`TlsHandshake::ech`), every HTTPS record of the name
    /// has an ECH config, and this endpoint is none of the records': connecting there would
    /// send the name in the clear, which the records ask not to do (RFC 9848).
    WithoutEch,
}

impl SkipReason {
    /// A short lowercase name: `denied`, `no_usable_local`, `other_family` or `without_ech`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::Denied(_) => "denied",
            SkipReason::NoUsableLocal(_) => "no_usable_local",
            SkipReason::OtherFamily(_) => "other_family",
            SkipReason::WithoutEch => "without_ech",
        }
    }
}

/// Everything that happened during one connect, in the order it happened.
///
/// Carried by a successful [`Connection`](crate::Connection) and by every
/// [`ConnectError`](crate::ConnectError). Cheap to clone.
///
/// ```
/// use connect_by_list::Connector;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A loopback port that nothing listens on (a listener's, closed again), then a live one.
/// let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
/// let live = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let connector = Connector::builder().sort_addresses(false).build()?;
/// let connection = connector.connect([closed, live.local_addr()?]).await?;
/// let report = connection.report();
/// assert_eq!(report.attempts().len(), 2);
/// assert_eq!(report.winner().map(|won| won.remote()), Some(live.local_addr()?));
/// println!("{report}"); // one line: every attempt
/// println!("took {:?}", report.elapsed());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) resolve_failures: Vec<ResolveFailure>,
    pub(crate) skipped: Vec<Skipped>,
    pub(crate) favoured: Option<SocketAddr>,
    pub(crate) elapsed: Duration,
    pub(crate) not_tried: Vec<SocketAddr>,
    pub(crate) unanswered: Vec<Unanswered>,
    pub(crate) skipped_https_records: Vec<crate::SkippedRecord>,
}

impl Report {
    /// HTTPS records (Happy Eyeballs v3) that were not used, each with its reason: records
    /// that offer nothing over TCP (`h3` only), carry a `mandatory` key this client does not
    /// support, sit beside an AliasMode record or past the cap of 16, and alias loops or
    /// chains longer than 8.
    pub fn skipped_https_records(&self) -> &[crate::SkippedRecord] {
        &self.skipped_https_records
    }

    /// Every attempt that started, in the order they started.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The attempt that connected, if one did.
    pub fn winner(&self) -> Option<&Attempt> {
        self.attempts
            .iter()
            .find(|attempt| attempt.outcome == Outcome::Connected)
    }

    /// Names that did not resolve, with the resolver's error.
    pub fn resolve_failures(&self) -> &[ResolveFailure] {
        &self.resolve_failures
    }

    /// Addresses that were never attempted: denied by the address filter, or out of reach of
    /// every configured local address.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The address tried first because it won the last race to the same targets (see
    /// [`Builder::history_capacity`](crate::Builder::history_capacity)), if one was.
    pub fn favoured(&self) -> Option<SocketAddr> {
        self.favoured
    }

    /// How long the whole connect took.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Addresses that were known but never tried: left over when the race ended, cut by
    /// [`Builder::max_attempts`](crate::Builder::max_attempts), or beyond
    /// [`Builder::max_addresses_per_name`](crate::Builder::max_addresses_per_name).
    pub fn not_tried(&self) -> &[SocketAddr] {
        &self.not_tried
    }

    /// Lookups that had not answered when the connect ended (a slow or silent AAAA, say): why
    /// a family was never tried.
    pub fn unanswered_lookups(&self) -> &[Unanswered] {
        &self.unanswered
    }

    /// A multi-line table of the attempts, one row each, with a bar showing when each ran: for
    /// logs and terminals.
    ///
    /// ```text
    ///   #  remote           local            start      end  outcome    0ms                301.4ms
    ///   1  127.0.0.1:35915  -                  0ms  301.4ms  lost      |████████████████████████|
    ///   2  127.0.0.1:40103  -                250ms  250.1ms  refused   |                    █   |
    ///   3  127.0.0.1:43371  127.0.0.1:52102  250.1ms  301.4ms  connected |                    ████| <- won
    /// ```
    pub fn timeline(&self) -> Timeline<'_> {
        Timeline { report: self }
    }
}

/// The table that [`Report::timeline`] shows.
///
/// ```
/// use connect_by_list::Connector;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A loopback port that nothing listens on (a listener's, closed again), then a live one.
/// let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
/// let live = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let connector = Connector::builder().sort_addresses(false).build()?;
/// let connection = connector.connect([closed, live.local_addr()?]).await?;
/// let table = connection.report().timeline().to_string();
/// assert!(table.contains("refused") && table.contains("<- won"), "{table}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Timeline<'a> {
    report: &'a Report,
}

impl fmt::Display for Timeline<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const BAR: usize = 24;
        let report = self.report;
        let total = report
            .attempts
            .iter()
            .map(|attempt| attempt.ended)
            .chain([report.elapsed])
            .max()
            .unwrap_or_default();
        let column = |at: Duration| -> usize {
            if total.is_zero() {
                return 0;
            }
            let at = at.as_nanos().min(total.as_nanos());
            usize::try_from(at * (BAR as u128 - 1) / total.as_nanos()).unwrap_or(BAR - 1)
        };
        let rows: Vec<[String; 5]> = report
            .attempts
            .iter()
            .map(|attempt| {
                [
                    attempt.remote.to_string(),
                    attempt
                        .local
                        .map_or_else(|| "-".into(), |local| local.to_string()),
                    Millis(attempt.started).to_string(),
                    Millis(attempt.ended).to_string(),
                    attempt.outcome.as_str().to_string(),
                ]
            })
            .collect();
        let width = |i: usize, title: &str| {
            rows.iter()
                .map(|row| row[i].len())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let titles = ["remote", "local", "start", "end", "outcome"].map(String::from);
        let w: Vec<usize> = titles
            .iter()
            .enumerate()
            .map(|(i, t)| width(i, t))
            .collect();
        // One line of the table: number, the five cells, then what follows them.
        let line = |f: &mut fmt::Formatter<'_>, number: &str, cells: &[String; 5], tail: &str| {
            write!(
                f,
                "{number:>3}  {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:<w4$} {tail}",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3],
                w4 = w[4],
            )
        };
        let scale = format!("0ms{:>pad$}", Millis(total).to_string(), pad = BAR - 1);
        if !rows.is_empty() {
            line(f, "#", &titles, &format!(" {scale}"))?;
            writeln!(f)?;
        }
        for (number, (attempt, row)) in report.attempts.iter().zip(&rows).enumerate() {
            let (from, to) = (column(attempt.started), column(attempt.ended));
            let bar: String = (0..BAR)
                .map(|i| if (from..=to).contains(&i) { '█' } else { ' ' })
                .collect();
            line(f, &(number + 1).to_string(), row, &format!("|{bar}|"))?;
            match (&attempt.error, attempt.outcome) {
                (_, Outcome::Connected) => write!(f, " <- won")?,
                (Some(error), outcome) if outcome != Outcome::Cancelled => write!(f, " {error}")?,
                _ => {}
            }
            writeln!(f)?;
        }
        for failure in &report.resolve_failures {
            writeln!(f, "     {failure}")?;
        }
        for skipped in &report.skipped {
            writeln!(f, "     {skipped}")?;
        }
        if !report.not_tried.is_empty() {
            writeln!(f, "     not tried: {}", NotTried(&report.not_tried))?;
        }
        for lookup in &report.unanswered {
            writeln!(f, "     {lookup}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    /// One line: each attempt, then each name that did not resolve, separated by `; `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut separator = |f: &mut fmt::Formatter<'_>| {
            let text = if first { "" } else { "; " };
            first = false;
            f.write_str(text)
        };
        for attempt in &self.attempts {
            separator(f)?;
            write!(f, "{attempt}")?;
        }
        for failure in &self.resolve_failures {
            separator(f)?;
            write!(f, "{failure}")?;
        }
        for skipped in &self.skipped {
            separator(f)?;
            write!(f, "{skipped}")?;
        }
        if !self.not_tried.is_empty() {
            separator(f)?;
            write!(f, "not tried: {}", NotTried(&self.not_tried))?;
        }
        for lookup in &self.unanswered {
            separator(f)?;
            write!(f, "{lookup}")?;
        }
        Ok(())
    }
}

/// A lookup still out when the connect ended.
#[derive(Clone, Debug)]
pub struct Unanswered {
    pub(crate) host: Arc<str>,
    pub(crate) family: Family,
    pub(crate) waited: Duration,
}

impl Unanswered {
    /// The name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Which family's lookup (AAAA for IPv6, A for IPv4).
    pub fn family(&self) -> Family {
        self.family
    }

    /// How long the connect had waited for it when it ended.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl fmt::Display for Unanswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let record = match self.family {
            Family::V6 => "AAAA",
            Family::V4 => "A",
        };
        write!(
            f,
            "{} {record} lookup unanswered after {}",
            self.host,
            Millis(self.waited)
        )
    }
}

/// Names the addresses not tried when they are few, else counts them.
struct NotTried<'a>(&'a [SocketAddr]);

impl fmt::Display for NotTried<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMED: usize = 4;
        if self.0.len() > NAMED {
            return write!(f, "{} addresses", self.0.len());
        }
        for (i, addr) in self.0.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{addr}")?;
        }
        Ok(())
    }
}

/// Shows a duration as milliseconds with up to one decimal: `250ms`, `0.3ms`, `1500ms`.
pub(crate) struct Millis(pub(crate) Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = self.0.as_micros().saturating_add(50) / 100;
        if tenths % 10 == 0 {
            write!(f, "{}ms", tenths / 10)
        } else {
            write!(f, "{}.{}ms", tenths / 10, tenths % 10)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_reads_well() {
        let show = |micros| Millis(Duration::from_micros(micros)).to_string();
        assert_eq!(show(250_000), "250ms");
        assert_eq!(show(260), "0.3ms");
        assert_eq!(show(1_500_040), "1500ms");
        assert_eq!(show(0), "0ms");
    }

    #[test]
    fn errors_are_classified() {
        let of = |kind: io::ErrorKind| Outcome::of_error(&io::Error::from(kind));
        assert_eq!(of(io::ErrorKind::ConnectionRefused), Outcome::Refused);
        assert_eq!(of(io::ErrorKind::HostUnreachable), Outcome::Unreachable);
        assert_eq!(of(io::ErrorKind::NetworkUnreachable), Outcome::Unreachable);
        assert_eq!(of(io::ErrorKind::TimedOut), Outcome::TimedOut);
        assert_eq!(of(io::ErrorKind::AddrNotAvailable), Outcome::Error);
        #[cfg(unix)]
        assert_eq!(
            Outcome::of_error(&io::Error::from_raw_os_error(libc::EACCES)),
            Outcome::Unreachable
        );
    }
}
