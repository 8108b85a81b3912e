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
pub trait IntoTarget {
    /// Converts, or says what is wrong with the input.
    fn into_target(self) -> Result<Target, InvalidTarget>;
}

/// A list of endpoints: one [`IntoTarget`] value, or an array, slice or `Vec` of them.
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
/// # Ok::<(), connect_by_list::InvalidTarget>(())
/// ```
pub trait IntoTargets {
    /// Converts, or says which input is wrong and why. An empty list is an error.
    fn into_targets(self) -> Result<Vec<Target>, InvalidTarget>;
}

impl IntoTarget for Target {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        Ok(self)
    }
}

impl IntoTarget for &Target {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        Ok(self.clone())
    }
}

impl IntoTarget for SocketAddr {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        check_port(self.port()).map_err(|reason| InvalidTarget::new(self.to_string(), reason))?;
        Ok(Target::from(self))
    }
}

impl IntoTarget for SocketAddrV4 {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        SocketAddr::V4(self).into_target()
    }
}

impl IntoTarget for SocketAddrV6 {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        SocketAddr::V6(self).into_target()
    }
}

impl IntoTarget for (IpAddr, u16) {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        SocketAddr::from(self).into_target()
    }
}

impl IntoTarget for (Ipv4Addr, u16) {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        SocketAddr::from(self).into_target()
    }
}

impl IntoTarget for (Ipv6Addr, u16) {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        SocketAddr::from(self).into_target()
    }
}

impl IntoTarget for &str {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        self.parse()
    }
}

impl IntoTarget for String {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        self.parse()
    }
}

impl IntoTarget for &String {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        self.parse()
    }
}

impl IntoTarget for (&str, u16) {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        Target::new(self.0, self.1)
    }
}

impl IntoTarget for (String, u16) {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        Target::new(&self.0, self.1)
    }
}

impl IntoTarget for &(String, u16) {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        Target::new(&self.0, self.1)
    }
}

impl IntoTarget for &(&str, u16) {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        Target::new(self.0, self.1)
    }
}

impl IntoTarget for &(IpAddr, u16) {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        (*self).into_target()
    }
}

impl IntoTarget for (&String, u16) {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        Target::new(self.0, self.1)
    }
}

/// Every single endpoint is also a list of one.
macro_rules! one_is_a_list {
    ($($t:ty),* $(,)?) => {$(
        impl IntoTargets for $t {
            fn into_targets(self) -> Result<Vec<Target>, InvalidTarget> {
                Ok(vec![self.into_target()?])
            }
        }
    )*};
}

one_is_a_list!(
    Target,
    &Target,
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16),
    &str,
    String,
    &String,
    (&str, u16),
    (String, u16),
    (&String, u16),
);

fn collect<T: IntoTarget>(
    items: impl IntoIterator<Item = T>,
) -> Result<Vec<Target>, InvalidTarget> {
    let targets = items
        .into_iter()
        .map(IntoTarget::into_target)
        .collect::<Result<Vec<_>, _>>()?;
    if targets.is_empty() {
        return Err(InvalidTarget::empty_list());
    }
    Ok(targets)
}

impl<T: IntoTarget> IntoTargets for Vec<T> {
    fn into_targets(self) -> Result<Vec<Target>, InvalidTarget> {
        collect(self)
    }
}

impl<T: IntoTarget, const N: usize> IntoTargets for [T; N] {
    fn into_targets(self) -> Result<Vec<Target>, InvalidTarget> {
        collect(self)
    }
}

impl<'a, T> IntoTargets for &'a [T]
where
    &'a T: IntoTarget,
{
    fn into_targets(self) -> Result<Vec<Target>, InvalidTarget> {
        collect(self)
    }
}

impl<'a, T> IntoTargets for &'a Vec<T>
where
    &'a T: IntoTarget,
{
    fn into_targets(self) -> Result<Vec<Target>, InvalidTarget> {
        collect(self)
    }
}

impl IntoTarget for &SocketAddr {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        (*self).into_target()
    }
}

impl IntoTarget for &&str {
    fn into_target(self) -> Result<Target, InvalidTarget> {
        (*self).into_target()
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
}
