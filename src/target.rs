//! What a caller asks to connect to: parsing and the conversions into a list of targets.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;
use std::sync::Arc;

/// Longest host name DNS can carry (RFC 1035 §2.3.4, without the final dot).
const MAX_NAME_LEN: usize = 253;
/// Longest label of a host name (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// The host part of a [`Target`]: an IP address, or a name still to be resolved.
///
/// ```
/// use connect_by_list::{Host, Target};
///
/// let named: Target = "db1.example:5432".parse()?;
/// assert!(matches!(named.host(), Host::Name(name) if &**name == "db1.example"));
/// let literal: Target = "[::1]:5432".parse()?;
/// assert_eq!(literal.host(), &Host::Ip("::1".parse().unwrap()));
/// assert_eq!(literal.host().to_string(), "[::1]");
/// # Ok::<(), connect_by_list::InvalidTarget>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal; it skips resolution.
    Ip(IpAddr),
    /// A host name, resolved when the connect runs.
    Name(Arc<str>),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// One endpoint a caller may connect to: a host (IP or name) and a port.
///
/// Made from a [`SocketAddr`], from `"host:port"` / `"[v6]:port"` text, or from `(host, port)`.
///
/// ```
/// use connect_by_list::{Host, Target};
///
/// let target: Target = "db1.example:5432".parse()?;
/// assert_eq!(target.port(), 5432);
/// assert!(matches!(target.host(), Host::Name(name) if &**name == "db1.example"));
/// assert!("db1.example".parse::<Target>().is_err()); // no port
/// # Ok::<(), connect_by_list::InvalidTarget>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    host: Host,
    port: u16,
    /// The interface of an IPv6 link-local literal (`[fe80::1%2]`); 0 for none.
    scope_id: u32,
}

impl Target {
    /// A target from a host (IP literal or name, IPv6 with or without brackets) and a port.
    ///
    /// ```
    /// use connect_by_list::Target;
    ///
    /// assert_eq!(Target::new("::1", 80)?.to_string(), "[::1]:80");
    /// assert!(Target::new("", 80).is_err());
    /// # Ok::<(), connect_by_list::InvalidTarget>(())
    /// ```
    pub fn new(host: &str, port: u16) -> Result<Target, InvalidTarget> {
        let input = || format!("({host:?}, {port})");
        check_port(port).map_err(|reason| InvalidTarget::new(input(), reason))?;
        let (host, scope_id) =
            parse_host(host).map_err(|reason| InvalidTarget::new(input(), reason))?;
        Ok(Target {
            host,
            port,
            scope_id,
        })
    }

    /// The host part.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The IPv6 scope (interface) id of a link-local literal such as `[fe80::1%2]:80`, or 0.
    pub fn scope_id(&self) -> u32 {
        self.scope_id
    }

    /// The socket address (with its scope id), when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(IpAddr::V6(ip)) => Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                self.port,
                0,
                self.scope_id,
            ))),
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.scope_id) {
            (Host::Ip(IpAddr::V6(ip)), scope) if scope != 0 => {
                write!(f, "[{ip}%{scope}]:{}", self.port)
            }
            (host, _) => write!(f, "{host}:{}", self.port),
        }
    }
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Target {
        let scope_id = match addr {
            SocketAddr::V6(v6) => v6.scope_id(),
            SocketAddr::V4(_) => 0,
        };
        Target {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
            scope_id,
        }
    }
}

impl FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(input: &str) -> Result<Target, InvalidTarget> {
        parse_target(input).map_err(|reason| InvalidTarget::new(format!("{input:?}"), reason))
    }
}

fn parse_target(input: &str) -> Result<Target, String> {
    if input.is_empty() {
        return Err("empty target (expected host:port)".into());
    }
    if let Some(rest) = input.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("'[' without a closing ']' (expected [IPv6]:port)")?;
        let port = after
            .strip_prefix(':')
            .ok_or("missing port after ']' (expected [IPv6]:port)")?;
        let (ip, scope_id) = parse_ipv6_literal(host)?;
        return Ok(Target {
            host: Host::Ip(IpAddr::V6(ip)),
            port: parse_port(port)?,
            scope_id,
        });
    }
    let (host, port) = input
        .rsplit_once(':')
        .ok_or("missing port (expected host:port)")?;
    if host.contains(':') {
        return Err(format!(
            "IPv6 address without brackets (write [{host}]:{port})"
        ));
    }
    let (host, scope_id) = parse_host(host)?;
    Ok(Target {
        host,
        port: parse_port(port)?,
        scope_id,
    })
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err("missing port (expected host:port)".into());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    let number: u16 = port
        .parse()
        .map_err(|_| format!("port {port} is out of range (1-65535)"))?;
    check_port(number)?;
    Ok(number)
}

fn check_port(port: u16) -> Result<(), String> {
    if port == 0 {
        return Err("port 0 cannot be connected to (use 1-65535)".into());
    }
    Ok(())
}

/// Parses an IPv6 literal with an optional zone: `fe80::1%2` or `fe80::1%eth0` (by name on Unix).
fn parse_ipv6_literal(text: &str) -> Result<(Ipv6Addr, u32), String> {
    let (address, zone) = match text.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (text, None),
    };
    let ip: Ipv6Addr = address
        .parse()
        .map_err(|_| format!("{address:?} is not a valid IPv6 address"))?;
    let scope_id = match zone {
        None => 0,
        Some("") => return Err(format!("empty IPv6 zone after '%' in {text:?}")),
        Some(zone) => match zone.parse::<u32>() {
            Ok(index) => index,
            Err(_) => interface_index(zone)?,
        },
    };
    Ok((ip, scope_id))
}

#[cfg(unix)]
fn interface_index(name: &str) -> Result<u32, String> {
    let unknown = || format!("IPv6 zone {name:?} is not an interface of this host");
    let c_name = std::ffi::CString::new(name).map_err(|_| unknown())?;
    // SAFETY: a valid NUL-terminated string; the call only reads it.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(unknown()),
        index => Ok(index),
    }
}

#[cfg(not(unix))]
fn interface_index(name: &str) -> Result<u32, String> {
    Err(format!(
        "IPv6 zone {name:?}: give the interface by number (fe80::1%12) on this system"
    ))
}

/// Parses a bare host: an IPv4 or IPv6 literal (with its scope id), or a DNS name.
fn parse_host(host: &str) -> Result<(Host, u32), String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return parse_ipv6_literal(inner).map(|(ip, scope)| (Host::Ip(IpAddr::V6(ip)), scope));
    }
    if host.contains(':') {
        return parse_ipv6_literal(host).map(|(ip, scope)| (Host::Ip(IpAddr::V6(ip)), scope));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok((Host::Ip(IpAddr::V4(ip)), 0));
    }
    check_name(host)?;
    Ok((Host::Name(Arc::from(host)), 0))
}

fn check_name(name: &str) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.len() > MAX_NAME_LEN {
        return Err(format!(
            "host name is {} bytes long, over DNS's {MAX_NAME_LEN}",
            bare.len()
        ));
    }
    if let Some(bad) = bare
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "host {name:?} has the character {bad:?} (names take letters, digits, '-', '_' and '.'; IDNs in punycode)"
        ));
    }
    let labels: Vec<&str> = bare.split('.').collect();
    if labels.iter().any(|label| label.is_empty()) {
        return Err(format!("host {name:?} has an empty label"));
    }
    if let Some(long) = labels.iter().find(|label| label.len() > MAX_LABEL_LEN) {
        return Err(format!(
            "label {long:?} of host {name:?} is over {MAX_LABEL_LEN} bytes"
        ));
    }
    // getaddrinfo reads "127.1", "0x7f.1" or "2130706433" as IPv4 addresses. Such text is almost
    // always a mistake or a filter-evasion trick, so (as URL parsers do) a name whose last label
    // is numeric is refused instead of being handed to the resolver.
    if let Some(last) = labels.last() {
        let is_number = last.bytes().all(|b| b.is_ascii_digit())
            || last
                .strip_prefix("0x")
                .or_else(|| last.strip_prefix("0X"))
                .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_number {
            return Err(format!(
                "{name:?} is neither a dotted-quad IPv4 address nor a host name"
            ));
        }
    }
    Ok(())
}

/// A target that could not be understood: which input, and what is wrong with it.
///
/// ```
/// let error = "db1.example".parse::<connect_by_list::Target>().unwrap_err();
/// assert_eq!(error.input(), "\"db1.example\"");
/// assert_eq!(error.reason(), "missing port (expected host:port)");
/// assert_eq!(
///     error.to_string(),
///     "invalid target \"db1.example\": missing port (expected host:port)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidTarget {
    input: String,
    reason: String,
}

impl InvalidTarget {
    pub(crate) fn new(input: String, reason: impl Into<String>) -> InvalidTarget {
        InvalidTarget {
            input,
            reason: reason.into(),
        }
    }

    pub(crate) fn empty_list() -> InvalidTarget {
        InvalidTarget::new("[]".into(), "the list of targets is empty")
    }

    /// The input as the caller gave it (quoted when it was text).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for InvalidTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid target {}: {}", self.input, self.reason)
    }
}

impl std::error::Error for InvalidTarget {}

/// One endpoint: anything that converts into a single [`Target`].
///
/// Implemented for [`Target`], [`SocketAddr`] (and its V4 and V6 forms), `(IpAddr, u16)` (and
/// its V4 and V6 forms), `"host:port"` text (`&str`, `String`), `(host, port)` with the host as
/// `&str` or `String`, and references to any of these. Sealed, as Tokio's `ToSocketAddrs` is:
/// the list may grow, but no other crate can add to it, so a new conversion never breaks a
/// caller.
///
/// ```
/// use connect_by_list::IntoTarget;
///
/// let target = ("db1.example", 5432).into_target()?;
/// assert_eq!(target.to_string(), "db1.example:5432");
/// # Ok::<(), connect_by_list::InvalidTarget>(())
/// ```
///
/// Other crates cannot implement it:
///
/// ```compile_fail,E0277
/// struct Mine;
///
/// impl connect_by_list::IntoTarget for Mine {
///     fn into_target(self) -> Result<connect_by_list::Target, connect_by_list::InvalidTarget> {
///         "example.com:443".parse()
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an endpoint connect-by-list understands",
    note = "an endpoint is a `SocketAddr`, `\"host:port\"` text, `(host, port)`, a `Target`, or a reference to one"
)]
pub trait IntoTarget: sealed::Endpoint {
    /// Converts, or says what is wrong with the input.
    fn into_target(self) -> Result<Target, InvalidTarget>;
}

/// What [`Connector::connect`](crate::Connector::connect) and its kin take: one endpoint, or any
/// collection or iterator of endpoints.
///
/// One [`IntoTarget`] value is a list of one. Arrays, slices, `Vec`s and every other
/// [`IntoIterator`] whose items are [`IntoTarget`] are lists, iterators included, so a
/// `Vec<String>` of hosts goes in as `hosts.iter()`, or with ports added as
/// `hosts.iter().map(|host| (host.as_str(), 443))`, without a `collect()`.
///
/// The parameter `M` tells the two cases apart (one endpoint, or a list); the compiler infers it
/// and callers never name it. Code that passes targets on is generic over it:
/// `fn fetch<M>(targets: impl IntoTargets<M>)`. Sealed, as [`IntoTarget`] is.
///
/// ```
/// use connect_by_list::IntoTargets;
/// use std::net::SocketAddr;
///
/// let one = "example.com:443".into_targets()?;
/// let many = ["db1:5432", "db2:5432"].into_targets()?;
/// let mixed = vec![("db3", 5432), ("10.1.2.3", 5432)].into_targets()?;
/// let addr: SocketAddr = "[::1]:8080".parse().unwrap();
/// let literal = addr.into_targets()?;
/// assert_eq!((one.len(), many.len(), mixed.len(), literal.len()), (1, 2, 2, 1));
///
/// // Iterators, without collecting them first:
/// let hosts: Vec<String> = vec!["db1.example:5432".into(), "db2.example:5432".into()];
/// assert_eq!(hosts.iter().into_targets()?.len(), 2);
/// let names = ["db1.example", "db2.example"];
/// let with_port = names.iter().map(|name| (*name, 5432)).into_targets()?;
/// assert_eq!(with_port[1].to_string(), "db2.example:5432");
///
/// // Code that hands targets on is generic over the marker:
/// fn count<M>(targets: impl IntoTargets<M>) -> usize {
///     targets.into_targets().map_or(0, |targets| targets.len())
/// }
/// assert_eq!(count(hosts.iter().chain(["db3.example:5432".to_string()].iter())), 3);
/// # Ok::<(), connect_by_list::InvalidTarget>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither an endpoint nor a list of endpoints",
    note = "targets are a `SocketAddr`, `\"host:port\"` text, `(host, port)` or a `Target`, or any array, `Vec`, slice or iterator of them"
)]
pub trait IntoTargets<M>: sealed::Endpoints<M> {
    /// Converts, or says which input is wrong and why. An empty list is an error.
    fn into_targets(self) -> Result<Vec<Target>, InvalidTarget>;
}

/// Keeps the conversion traits closed to other crates, and holds the markers that tell one
/// endpoint from a list.
mod sealed {
    /// Implemented by exactly the types that are [`IntoTarget`](super::IntoTarget).
    pub trait Endpoint {}

    /// Implemented by exactly the types that are [`IntoTargets`](super::IntoTargets).
    pub trait Endpoints<M> {}

    /// The [`IntoTargets`](super::IntoTargets) marker of one endpoint.
    #[derive(Debug)]
    pub enum One {}

    /// The [`IntoTargets`](super::IntoTargets) marker of a list (any `IntoIterator`).
    #[derive(Debug)]
    pub enum List {}
}

impl<T: IntoTarget> sealed::Endpoints<sealed::One> for T {}

impl<T: IntoTarget> IntoTargets<sealed::One> for T {
    fn into_targets(self) -> Result<Vec<Target>, InvalidTarget> {
        Ok(vec![self.into_target()?])
    }
}

impl<I> sealed::Endpoints<sealed::List> for I
where
    I: IntoIterator,
    I::Item: IntoTarget,
{
}

impl<I> IntoTargets<sealed::List> for I
where
    I: IntoIterator,
    I::Item: IntoTarget,
{
    fn into_targets(self) -> Result<Vec<Target>, InvalidTarget> {
        let targets = self
            .into_iter()
            .map(IntoTarget::into_target)
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err(InvalidTarget::empty_list());
        }
        Ok(targets)
    }
}

/// Implements [`IntoTarget`] (and its seal) for one type, with the conversion as a closure.
macro_rules! endpoint {
    ($($t:ty => $convert:expr;)*) => {$(
        impl sealed::Endpoint for $t {}

        impl IntoTarget for $t {
            fn into_target(self) -> Result<Target, InvalidTarget> {
                let convert: fn($t) -> Result<Target, InvalidTarget> = $convert;
                convert(self)
            }
        }
    )*};
}

endpoint! {
    Target => Ok;
    SocketAddr => |addr| {
        check_port(addr.port()).map_err(|reason| InvalidTarget::new(addr.to_string(), reason))?;
        Ok(Target::from(addr))
    };
    SocketAddrV4 => |addr| SocketAddr::V4(addr).into_target();
    SocketAddrV6 => |addr| SocketAddr::V6(addr).into_target();
    (IpAddr, u16) => |pair| SocketAddr::from(pair).into_target();
    (Ipv4Addr, u16) => |pair| SocketAddr::from(pair).into_target();
    (Ipv6Addr, u16) => |pair| SocketAddr::from(pair).into_target();
    &str => |text| text.parse();
    String => |text| text.parse();
    (&str, u16) => |(host, port)| Target::new(host, port);
    (String, u16) => |(host, port)| Target::new(&host, port);
    (&String, u16) => |(host, port)| Target::new(host, port);
}

// A reference to an endpoint is one too (`&String`, `&&str`, `&SocketAddr`, `&(&str, u16)`, …),
// so slices, `&Vec`s and `.iter()` over any of them are lists.
impl<T: IntoTarget + Clone> sealed::Endpoint for &T {}

impl<T: IntoTarget + Clone> IntoTarget for &T {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        self.clone().into_target()
    }
}

/// A list of targets for logs, bounded: the first few, then how many more.
pub(crate) struct Listed<'a>(pub(crate) &'a [Target]);

impl Listed<'_> {
    /// Targets shown before the rest are counted.
    const SHOWN: usize = 4;
}

impl fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, target) in self.0.iter().take(Listed::SHOWN).enumerate() {
            let separator = if index == 0 { "" } else { ", " };
            write!(f, "{separator}{target}")?;
        }
        if let Some(more) = self
            .0
            .len()
            .checked_sub(Listed::SHOWN)
            .filter(|more| *more > 0)
        {
            write!(f, " (+{more} more)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(input: &str) -> String {
        match input.parse::<Target>() {
            Ok(target) => panic!("{input:?} parsed as {target}"),
            Err(error) => error.reason().to_owned(),
        }
    }

    #[test]
    fn parses_every_accepted_form() {
        let cases = [
            ("127.0.0.1:80", "127.0.0.1:80"),
            ("[::1]:443", "[::1]:443"),
            ("[2001:db8::7]:5432", "[2001:db8::7]:5432"),
            ("db1.example:5432", "db1.example:5432"),
            ("localhost:1", "localhost:1"),
            ("under_score.example.:65535", "under_score.example.:65535"),
        ];
        for (input, shown) in cases {
            let target: Target = input.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(target.to_string(), shown);
        }
        assert_eq!(
            Target::new("2001:db8::1", 80).map(|t| t.to_string()),
            Ok("[2001:db8::1]:80".to_string())
        );
        // IPv6 zones: by number, or by interface name.
        let scoped: Target = "[fe80::1%2]:80".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scoped.scope_id(), 2);
        assert_eq!(scoped.to_string(), "[fe80::1%2]:80");
        let lo: Target = "[fe80::1%lo]:80".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(lo.scope_id(), 0);
        let v6 = SocketAddrV6::new("fe80::1".parse().unwrap_or(Ipv6Addr::LOCALHOST), 80, 0, 3);
        let from_addr = Target::from(SocketAddr::V6(v6));
        assert_eq!(from_addr.socket_addr(), Some(SocketAddr::V6(v6)));
        assert_eq!(Target::new("fe80::1%3", 80), Ok(from_addr));
        assert_eq!(
            Target::new("[2001:db8::1]", 80).map(|t| t.to_string()),
            Ok("[2001:db8::1]:80".to_string())
        );
    }

    #[test]
    fn errors_name_the_bad_part() {
        assert!(reason("").contains("empty target"));
        assert!(reason("db1").contains("missing port"));
        assert!(reason("db1:").contains("missing port"));
        assert!(reason(":80").contains("empty host"));
        assert!(reason("db1:http").contains("\"http\" is not a number"));
        assert!(reason("db1:70000").contains("70000 is out of range"));
        assert!(reason("db1:0").contains("port 0"));
        assert!(reason("db1:-1").contains("not a number"));
        assert!(reason("::1:80").contains("without brackets"));
        assert!(reason("[::1]").contains("missing port"));
        assert!(reason("[::1:80").contains("closing ']'"));
        assert!(reason("[nope]:80").contains("not a valid IPv6"));
        assert!(reason("[fe80::1%nosuchif0]:80").contains("not an interface"));
        assert!(reason("[fe80::1%]:80").contains("empty IPv6 zone"));
        assert!(reason("a b:80").contains("' '"));
        assert!(reason("a..b:80").contains("empty label"));
        assert!(reason("127.1:80").contains("neither"));
        assert!(reason("0x7f.1:80").contains("neither"));
        assert!(reason("2130706433:80").contains("neither"));
        assert!(reason(&format!("{}:80", "a".repeat(64))).contains("over 63"));
        let long = vec!["abcdefghij"; 26].join(".");
        assert!(reason(&format!("{long}:80")).contains("over DNS"));
        assert!(reason("ex\u{e4}mple.com:80").contains("punycode"));
    }

    #[test]
    fn lists_convert_and_empty_lists_are_refused() {
        let empty: Vec<&str> = Vec::new();
        assert_eq!(empty.into_targets(), Err(InvalidTarget::empty_list()));
        let error = ["db1:1", "db2"].into_targets().unwrap_err();
        assert_eq!(error.input(), "\"db2\"");
        let owned = vec!["a.example:1".to_string()];
        assert_eq!(owned.as_slice().into_targets().map(|t| t.len()), Ok(1));
        assert_eq!((&owned).into_targets().map(|t| t.len()), Ok(1));
        let pairs = vec![
            ("a.example".to_string(), 1u16),
            ("b.example".to_string(), 2),
        ];
        assert_eq!(pairs.as_slice().into_targets().map(|t| t.len()), Ok(2));
        let borrowed = [("a.example", 1u16)];
        assert_eq!(borrowed[..].into_targets().map(|t| t.len()), Ok(1));
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(addr.into_targets().unwrap_err().reason().contains("port 0"));
    }

    #[test]
    fn iterators_are_lists_without_a_collect() {
        let hosts = vec!["a.example:1".to_string(), "b.example:2".to_string()];
        let shown = |targets: Vec<Target>| targets.iter().map(Target::to_string).collect();
        let both: Vec<String> = vec!["a.example:1".into(), "b.example:2".into()];
        assert_eq!(hosts.iter().into_targets().map(shown), Ok(both.clone()));
        assert_eq!(
            hosts.clone().into_iter().into_targets().map(shown),
            Ok(both)
        );
        let names = ["a.example", "b.example"];
        let ported = names.iter().map(|name| (*name, 443)).into_targets();
        assert_eq!(
            ported.map(shown),
            Ok(vec![
                "a.example:443".to_string(),
                "b.example:443".to_string()
            ])
        );
        let addrs = std::collections::BTreeSet::from([SocketAddr::from(([127, 0, 0, 1], 9))]);
        assert_eq!(addrs.iter().into_targets().map(|t| t.len()), Ok(1));
        let filtered = hosts
            .iter()
            .filter(|host| host.starts_with('b'))
            .into_targets();
        assert_eq!(filtered.map(shown), Ok(vec!["b.example:2".to_string()]));
        // An iterator with nothing left is an empty list, and a bad item is named.
        let none = hosts.iter().filter(|host| host.is_empty()).into_targets();
        assert_eq!(none, Err(InvalidTarget::empty_list()));
        let bad = names
            .iter()
            .map(|name| (*name, 0))
            .into_targets()
            .unwrap_err();
        assert_eq!(bad.input(), "(\"a.example\", 0)");
        // References to endpoints are endpoints.
        let target: Target = "c.example:3".parse().unwrap();
        assert_eq!((&&target).into_target(), Ok(target.clone()));
        assert_eq!((&("c.example", 3u16)).into_target(), Ok(target));
    }

    #[test]
    fn logged_lists_are_bounded() {
        let list = |n: u16| {
            (1..=n)
                .map(|port| ("a.example", port))
                .into_targets()
                .unwrap()
        };
        assert_eq!(Listed(&list(1)).to_string(), "a.example:1");
        assert_eq!(
            Listed(&list(4)).to_string(),
            "a.example:1, a.example:2, a.example:3, a.example:4"
        );
        assert_eq!(
            Listed(&list(1000)).to_string(),
            "a.example:1, a.example:2, a.example:3, a.example:4 (+996 more)"
        );
    }
}
