//! HTTPS resource records (RFC 9460, DNS type 65) and how they shape a connect, as the Happy
//! Eyeballs v3 draft (draft-ietf-happy-happyeyeballs-v3) uses them.
//!
//! Everything here is pure: the records are read from their wire form (or built by a resolver),
//! judged against what the client can speak, and turned into groups of services, lowest
//! `SvcPriority` first. No lookups and no sockets.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// At most this many records of one answer are read; the rest are skipped with a reason.
pub(crate) const MAX_RECORDS: usize = 16;
/// At most this many `ipv4hint` and this many `ipv6hint` addresses are kept from one record.
pub(crate) const MAX_HINTS: usize = 8;
/// At most this many AliasMode records are followed from one query name.
pub(crate) const MAX_ALIAS_HOPS: usize = 8;

/// The SvcParamKeys of RFC 9460 §14.3.2 that this client reads.
mod key {
    pub(super) const MANDATORY: u16 = 0;
    pub(super) const ALPN: u16 = 1;
    pub(super) const NO_DEFAULT_ALPN: u16 = 2;
    pub(super) const PORT: u16 = 3;
    pub(super) const IPV4HINT: u16 = 4;
    pub(super) const ECH: u16 = 5;
    pub(super) const IPV6HINT: u16 = 6;
    /// "Invalid key" (RFC 9460 §14.3.2): a record that carries it is malformed.
    pub(super) const INVALID: u16 = 65535;
}

/// The SvcParamKey's presentation name (RFC 9460 §14.3.2), `keyNNNNN` for the rest.
fn key_name(key: u16) -> String {
    match key {
        key::MANDATORY => "mandatory".into(),
        key::ALPN => "alpn".into(),
        key::NO_DEFAULT_ALPN => "no-default-alpn".into(),
        key::PORT => "port".into(),
        key::IPV4HINT => "ipv4hint".into(),
        key::ECH => "ech".into(),
        key::IPV6HINT => "ipv6hint".into(),
        other => format!("key{other}"),
    }
}

/// One HTTPS record (RFC 9460): AliasMode (`SvcPriority` 0, a name to look up instead) or
/// ServiceMode (a priority, a target name and the parameters to reach it with).
///
/// Read one from its wire form with [`HttpsRecord::from_rdata`], or build one (a resolver that
/// has the records in another form, or a test):
///
/// ```
/// use connect_by_list::HttpsRecord;
///
/// let record = HttpsRecord::new(1, ".")
///     .with_alpn(["h2", "http/1.1"])
///     .with_port(8443)
///     .with_ipv4_hints(["192.0.2.1".parse()?]);
/// assert!(!record.is_alias());
/// assert_eq!(record.target(), None); // "." : the name the record was found at
/// assert_eq!(record.port(), Some(8443));
/// assert_eq!(record.to_string(), "1 . alpn=h2,http/1.1 port=8443 ipv4hint=192.0.2.1");
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpsRecord {
    priority: u16,
    /// Lowercase, without the final dot; empty for ".".
    target: String,
    alpn: Vec<Vec<u8>>,
    no_default_alpn: bool,
    port: Option<u16>,
    ipv4_hints: Vec<Ipv4Addr>,
    ipv6_hints: Vec<Ipv6Addr>,
    ech: Option<Arc<[u8]>>,
    mandatory: Vec<u16>,
    /// Every SvcParamKey present, ascending (known or not).
    keys: Vec<u16>,
}

impl HttpsRecord {
    /// A record with this `SvcPriority` (0 is AliasMode) and target name (`"."` or `""`: the
    /// name the record was found at), and no parameters.
    pub fn new(priority: u16, target: &str) -> HttpsRecord {
        HttpsRecord {
            priority,
            target: normalize(target),
            alpn: Vec::new(),
            no_default_alpn: false,
            port: None,
            ipv4_hints: Vec::new(),
            ipv6_hints: Vec::new(),
            ech: None,
            mandatory: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Sets `alpn`: the protocols the service offers, in its order of preference.
    pub fn with_alpn<I, P>(mut self, protocols: I) -> HttpsRecord
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self.mark(key::ALPN);
        self
    }

    /// Sets `no-default-alpn`: the service does not speak the scheme's default protocol
    /// (`http/1.1` for HTTPS) unless `alpn` lists it.
    pub fn with_no_default_alpn(mut self) -> HttpsRecord {
        self.no_default_alpn = true;
        self.mark(key::NO_DEFAULT_ALPN);
        self
    }

    /// Sets `port`: the service listens there instead of the target's port.
    pub fn with_port(mut self, port: u16) -> HttpsRecord {
        self.port = Some(port);
        self.mark(key::PORT);
        self
    }

    /// Sets `ipv4hint`; only the first 8 are kept.
    pub fn with_ipv4_hints(mut self, hints: impl IntoIterator<Item = Ipv4Addr>) -> HttpsRecord {
        self.ipv4_hints = hints.into_iter().take(MAX_HINTS).collect();
        self.mark(key::IPV4HINT);
        self
    }

    /// Sets `ipv6hint`; only the first 8 are kept.
    pub fn with_ipv6_hints(mut self, hints: impl IntoIterator<Item = Ipv6Addr>) -> HttpsRecord {
        self.ipv6_hints = hints.into_iter().take(MAX_HINTS).collect();
        self.mark(key::IPV6HINT);
        self
    }

    /// Sets `ech`: the service's `ECHConfigList`, as its bytes.
    pub fn with_ech(mut self, config_list: impl Into<Arc<[u8]>>) -> HttpsRecord {
        self.ech = Some(config_list.into());
        self.mark(key::ECH);
        self
    }

    /// Sets `mandatory`: the SvcParamKeys (by number) a client must understand to use the
    /// record (RFC 9460 §8).
    pub fn with_mandatory(mut self, keys: impl IntoIterator<Item = u16>) -> HttpsRecord {
        self.mandatory = keys.into_iter().collect();
        self.mandatory.sort_unstable();
        self.mandatory.dedup();
        self.mark(key::MANDATORY);
        self
    }

    fn mark(&mut self, key: u16) {
        if let Err(at) = self.keys.binary_search(&key) {
            self.keys.insert(at, key);
        }
    }

    /// Reads a record from its RDATA in wire form (RFC 9460 §2.2): `SvcPriority`, an
    /// uncompressed `TargetName`, then the SvcParams in increasing key order.
    ///
    /// A record that breaks the format is refused with the reason; an AliasMode record's
    /// parameters are ignored, as RFC 9460 §2.4.2 says; hints past the first 8 of each family
    /// are dropped.
    ///
    /// ```
    /// use connect_by_list::HttpsRecord;
    ///
    /// // SvcPriority 1, TargetName ".", alpn=h2
    /// let record = HttpsRecord::from_rdata(&[0, 1, 0, 0, 1, 0, 3, 2, b'h', b'2'])?;
    /// assert_eq!(record.alpn(), [b"h2".to_vec()]);
    /// assert!(HttpsRecord::from_rdata(&[0, 1]).is_err()); // no TargetName
    /// # Ok::<(), connect_by_list::MalformedRecord>(())
    /// ```
    pub fn from_rdata(rdata: &[u8]) -> Result<HttpsRecord, MalformedRecord> {
        let mut reader = Reader { rest: rdata };
        let priority = reader.u16("SvcPriority")?;
        let target = reader.name()?;
        let mut record = HttpsRecord::new(priority, &target);
        if priority == 0 {
            // RFC 9460 §2.4.2: recipients MUST ignore the SvcParams of an AliasMode record.
            return Ok(record);
        }
        let mut last: Option<u16> = None;
        while !reader.rest.is_empty() {
            let key = reader.u16("SvcParamKey")?;
            let length = reader.u16("SvcParamValue length")?;
            let value = reader.take(usize::from(length), "SvcParamValue")?;
            if key == key::INVALID {
                return Err(MalformedRecord::new("carries the invalid key 65535"));
            }
            if last.is_some_and(|last| key <= last) {
                return Err(MalformedRecord::new(format!(
                    "{} is out of order or repeated (keys must increase)",
                    key_name(key)
                )));
            }
            last = Some(key);
            record.read_param(key, value)?;
            record.keys.push(key);
        }
        // RFC 9460 §8: every key `mandatory` lists must be present.
        if let Some(absent) = record
            .mandatory
            .iter()
            .find(|key| record.keys.binary_search(key).is_err())
        {
            return Err(MalformedRecord::new(format!(
                "mandatory lists {} but the record does not have it",
                key_name(*absent)
            )));
        }
        Ok(record)
    }

    fn read_param(&mut self, key: u16, value: &[u8]) -> Result<(), MalformedRecord> {
        let bad = |what: &str| MalformedRecord::new(format!("{}: {what}", key_name(key)));
        match key {
            key::MANDATORY => {
                if value.is_empty() || value.len() % 2 != 0 {
                    return Err(bad("not a non-empty list of keys"));
                }
                let keys: Vec<u16> = value
                    .chunks_exact(2)
                    .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                    .collect();
                if keys.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(bad("keys out of order or repeated"));
                }
                if keys.contains(&key::MANDATORY) {
                    return Err(bad("lists itself"));
                }
                self.mandatory = keys;
            }
            key::ALPN => {
                let mut reader = Reader { rest: value };
                let mut protocols = Vec::new();
                while !reader.rest.is_empty() {
                    let length = reader.u8("alpn-id length")?;
                    if length == 0 {
                        return Err(bad("an empty protocol id"));
                    }
                    protocols.push(reader.take(usize::from(length), "alpn-id")?.to_vec());
                }
                if protocols.is_empty() {
                    return Err(bad("empty"));
                }
                self.alpn = protocols;
            }
            key::NO_DEFAULT_ALPN => {
                if !value.is_empty() {
                    return Err(bad("has a value"));
                }
                self.no_default_alpn = true;
            }
            key::PORT => {
                let [high, low] = value else {
                    return Err(bad("not two bytes"));
                };
                self.port = Some(u16::from_be_bytes([*high, *low]));
            }
            key::IPV4HINT => {
                if value.is_empty() || value.len() % 4 != 0 {
                    return Err(bad("not a non-empty list of IPv4 addresses"));
                }
                self.ipv4_hints = value
                    .chunks_exact(4)
                    .take(MAX_HINTS)
                    .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]))
                    .collect();
            }
            key::IPV6HINT => {
                if value.is_empty() || value.len() % 16 != 0 {
                    return Err(bad("not a non-empty list of IPv6 addresses"));
                }
                self.ipv6_hints = value
                    .chunks_exact(16)
                    .take(MAX_HINTS)
                    .map(|a| {
                        let mut octets = [0; 16];
                        octets.copy_from_slice(a);
                        Ipv6Addr::from(octets)
                    })
                    .collect();
            }
            key::ECH => {
                if value.is_empty() {
                    return Err(bad("empty"));
                }
                self.ech = Some(Arc::from(value));
            }
            // Unknown keys are kept by number only: `mandatory` may name them.
            _ => {}
        }
        Ok(())
    }

    /// The `SvcPriority`: 0 for AliasMode, otherwise lower is preferred.
    pub fn priority(&self) -> u16 {
        self.priority
    }

    /// Whether this is an AliasMode record (`SvcPriority` 0).
    pub fn is_alias(&self) -> bool {
        self.priority == 0
    }

    /// The target name, lowercase and without the final dot; `None` for ".", which means the
    /// name the record was found at (ServiceMode) or "no such service" (AliasMode).
    pub fn target(&self) -> Option<&str> {
        (!self.target.is_empty()).then_some(self.target.as_str())
    }

    /// The `alpn` protocol ids, as given.
    pub fn alpn(&self) -> &[Vec<u8>] {
        &self.alpn
    }

    /// Whether `no-default-alpn` is set.
    pub fn no_default_alpn(&self) -> bool {
        self.no_default_alpn
    }

    /// The `port`, if set.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The `ipv4hint` addresses (at most 8).
    pub fn ipv4_hints(&self) -> &[Ipv4Addr] {
        &self.ipv4_hints
    }

    /// The `ipv6hint` addresses (at most 8).
    pub fn ipv6_hints(&self) -> &[Ipv6Addr] {
        &self.ipv6_hints
    }

    /// The `ech` config list, if set.
    pub fn ech(&self) -> Option<&[u8]> {
        self.ech.as_deref()
    }

    /// The keys `mandatory` lists, ascending.
    pub fn mandatory(&self) -> &[u16] {
        &self.mandatory
    }
}

/// In presentation form (RFC 9460 §2.1), without owner, TTL and class; `ech` shown by length.
impl fmt::Display for HttpsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.priority, self.target().unwrap_or("."))?;
        for &key in &self.keys {
            match key {
                key::MANDATORY => {
                    let names: Vec<String> = self.mandatory.iter().map(|k| key_name(*k)).collect();
                    write!(f, " mandatory={}", names.join(","))?;
                }
                key::ALPN => {
                    let ids: Vec<_> = self
                        .alpn
                        .iter()
                        .map(|id| String::from_utf8_lossy(id).into_owned())
                        .collect();
                    write!(f, " alpn={}", ids.join(","))?;
                }
                key::NO_DEFAULT_ALPN => f.write_str(" no-default-alpn")?,
                key::PORT => write!(f, " port={}", self.port.unwrap_or_default())?,
                key::IPV4HINT => {
                    let hints: Vec<_> = self.ipv4_hints.iter().map(|h| h.to_string()).collect();
                    write!(f, " ipv4hint={}", hints.join(","))?;
                }
                key::IPV6HINT => {
                    let hints: Vec<_> = self.ipv6_hints.iter().map(|h| h.to_string()).collect();
                    write!(f, " ipv6hint={}", hints.join(","))?;
                }
                key::ECH => write!(f, " ech=({} bytes)", self.ech().map_or(0, <[u8]>::len))?,
                other => write!(f, " {}", key_name(other))?,
            }
        }
        Ok(())
    }
}

/// An HTTPS record's RDATA that breaks RFC 9460's format; the record is ignored.
///
/// ```
/// use connect_by_list::HttpsRecord;
///
/// let error = HttpsRecord::from_rdata(&[0, 1, 0, 0, 3, 0, 1, 0]).unwrap_err();
/// assert_eq!(error.to_string(), "malformed HTTPS record: port: not two bytes");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedRecord {
    reason: String,
}

impl MalformedRecord {
    fn new(reason: impl Into<String>) -> MalformedRecord {
        MalformedRecord {
            reason: reason.into(),
        }
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for MalformedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed HTTPS record: {}", self.reason)
    }
}

impl std::error::Error for MalformedRecord {}

/// Reads RDATA front to back; every read checks its length.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], MalformedRecord> {
        if self.rest.len() < n {
            return Err(MalformedRecord::new(format!("{what} is cut short")));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8, MalformedRecord> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, MalformedRecord> {
        let bytes = self.take(2, what)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    /// An uncompressed domain name (RFC 9460 §2.2 forbids compression here).
    fn name(&mut self) -> Result<String, MalformedRecord> {
        let mut name = String::new();
        let mut wire_length = 0usize;
        loop {
            let length = self.u8("TargetName")?;
            wire_length += 1 + usize::from(length);
            if wire_length > 255 {
                return Err(MalformedRecord::new("TargetName is longer than 255 octets"));
            }
            if length == 0 {
                return Ok(name);
            }
            if length > 63 {
                return Err(MalformedRecord::new(
                    "TargetName is compressed or has a label longer than 63 octets",
                ));
            }
            let label = self.take(usize::from(length), "TargetName")?;
            if !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            {
                return Err(MalformedRecord::new(
                    "TargetName has a label that is not letters, digits, '-' or '_'",
                ));
            }
            if !name.is_empty() {
                name.push('.');
            }
            name.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
        }
    }
}

/// Lowercase, without the final dot, empty for the root.
pub(crate) fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The name to ask HTTPS records of for `host:port` (RFC 9460 §9.1): the host itself for port
/// 443, `_PORT._https.HOST` for any other.
pub(crate) fn query_name(host: &str, port: u16) -> String {
    let host = host.trim_end_matches('.');
    if port == 443 {
        host.to_owned()
    } else {
        format!("_{port}._https.{host}")
    }
}

/// The name a ServiceMode record's "." stands for: the owner name, except that the
/// `_PORT._https.` prefix of RFC 9460 §9.1 is taken off, since that name has no addresses of
/// its own; the addresses are the origin host's.
fn effective_owner(owner: &str) -> String {
    let owner = normalize(owner);
    if let Some(rest) = owner.strip_prefix('_') {
        if let Some((port, host)) = rest.split_once("._https.") {
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                return host.to_owned();
            }
        }
    }
    owner
}

/// What the client can use of a record: its protocols over TCP (in its own order of
/// preference) and whether its TLS can do Encrypted Client Hello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientSupport {
    pub(crate) alpn: Vec<Vec<u8>>,
    pub(crate) ech: bool,
}

impl Default for ClientSupport {
    /// HTTP/2 and HTTP/1.1 over TLS over TCP, no ECH.
    fn default() -> Self {
        ClientSupport {
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            ech: false,
        }
    }
}

/// HTTPS's default protocol (RFC 9460 §9.1): offered unless `no-default-alpn` says otherwise.
const DEFAULT_ALPN: &[u8] = b"http/1.1";

/// One ServiceMode record the client can use: where to connect and what to offer there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Service {
    pub(crate) priority: u16,
    /// The name whose A and AAAA records hold its addresses.
    pub(crate) target: Arc<str>,
    /// The record's `port`, or the target's.
    pub(crate) port: u16,
    /// The protocols both sides speak over TCP, in the client's order.
    pub(crate) alpn: Vec<Vec<u8>>,
    pub(crate) ech: Option<Arc<[u8]>>,
    pub(crate) ipv4_hints: Vec<Ipv4Addr>,
    pub(crate) ipv6_hints: Vec<Ipv6Addr>,
}

/// The plan group of the origin's own addresses when HTTPS records name services: after every
/// service (RFC 9460 §3, HTTPS is "SVCB-optional": the origin is the last resort).
pub(crate) const FALLBACK_GROUP: u32 = 1 << 16;

/// The HTTPS record an attempt's address and port came from (Happy Eyeballs v3): see
/// [`Attempt::https`](crate::Attempt::https) and [`Peer::https`](crate::Peer::https).
///
/// ```
/// use connect_by_list::Connector;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// # let tls: std::sync::Arc<connect_by_list::rustls::ClientConfig> = todo!();
/// let connection = Connector::new().connect_tls("example.com:443", tls).await?;
/// for attempt in connection.report().attempts() {
///     match attempt.https() {
///         Some(via) => println!("{}: {via}", attempt.remote()),
///         None => println!("{}: A/AAAA of the name", attempt.remote()),
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpsVia {
    pub(crate) service: Arc<Service>,
    /// From `ipv4hint`/`ipv6hint`, until the target's real answer of its family replaces it.
    pub(crate) hint: bool,
}

impl HttpsVia {
    /// The record's `SvcPriority` (its group: lower ones are tried first).
    pub fn priority(&self) -> u16 {
        self.service.priority
    }

    /// The name whose addresses these are: the record's target name, or the origin's for ".".
    pub fn target(&self) -> &str {
        &self.service.target
    }

    /// The port connected to: the record's `port`, or the target's.
    pub fn port(&self) -> u16 {
        self.service.port
    }

    /// The ALPN protocols the client and the record share over TCP, in the client's order:
    /// what the TLS handshake offers on this attempt.
    pub fn alpn(&self) -> &[Vec<u8>] {
        &self.service.alpn
    }

    /// The record's `ech` config list (an `ECHConfigList`), for a handshake that can use
    /// Encrypted Client Hello.
    pub fn ech(&self) -> Option<&[u8]> {
        self.service.ech.as_deref()
    }

    /// Whether the address is an `ipv4hint`/`ipv6hint` (the target's own answer was not in yet).
    pub fn is_hint(&self) -> bool {
        self.hint
    }
}

/// `HTTPS 1 svc.example port 8443 alpn h2,http/1.1`, with ` hint` for a hinted address.
impl fmt::Display for HttpsVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alpn: Vec<_> = self
            .service
            .alpn
            .iter()
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .collect();
        write!(
            f,
            "HTTPS {} {} port {} alpn {}",
            self.service.priority,
            self.service.target,
            self.service.port,
            alpn.join(",")
        )?;
        if self.hint {
            f.write_str(" hint")?;
        }
        Ok(())
    }
}

/// An HTTPS record a connect did not use, and why (an `h3`-only record, an unknown
/// `mandatory` key, an alias loop, ...): see [`Report::skipped_https_records`](crate::Report::skipped_https_records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedRecord {
    pub(crate) name: String,
    /// The record in presentation form.
    pub(crate) record: String,
    pub(crate) reason: String,
}

impl SkippedRecord {
    /// The name the record was found at (the HTTPS query name, or an alias target).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The record, in presentation form (`1 . alpn=h3 no-default-alpn`).
    pub fn record(&self) -> &str {
        &self.record
    }

    /// Why it was not used.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// `NAME HTTPS RECORD: REASON`.
impl fmt::Display for SkippedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} HTTPS {}: {}", self.name, self.record, self.reason)
    }
}

/// What one HTTPS answer says to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Ask the HTTPS records of this name instead (AliasMode).
    Alias(String),
    /// The usable services, lowest priority first (equal priorities keep the answer's order;
    /// ranking orders their addresses). Empty: connect to the origin as if there were no
    /// records (RFC 9460 §3, HTTPS is "SVCB-optional").
    Services(Vec<Service>),
}

/// The records of one answer, judged: what to do, and each record left out with its reason.
pub(crate) fn read_answer(
    owner: &str,
    records: &[HttpsRecord],
    default_port: u16,
    client: &ClientSupport,
) -> (Answer, Vec<SkippedRecord>) {
    let mut skipped = Vec::new();
    let skip = |record: &HttpsRecord, reason: &str| SkippedRecord {
        name: normalize(owner),
        record: record.to_string(),
        reason: reason.to_owned(),
    };
    let (read, dropped) = records.split_at(records.len().min(MAX_RECORDS));
    skipped.extend(
        dropped
            .iter()
            .map(|record| skip(record, "more than 16 records in the answer")),
    );
    // RFC 9460 §2.4.2: beside an AliasMode record, ServiceMode records are ignored.
    if let Some(at) = read.iter().position(HttpsRecord::is_alias) {
        let alias = &read[at];
        for (_, record) in read.iter().enumerate().filter(|(i, _)| *i != at) {
            let reason = if record.is_alias() {
                "a second AliasMode record"
            } else {
                "ServiceMode beside an AliasMode record"
            };
            skipped.push(skip(record, reason));
        }
        // "." as an AliasMode target: the service does not exist here (RFC 9460 §2.5.1).
        return match alias.target() {
            Some(target) => (Answer::Alias(target.to_owned()), skipped),
            None => {
                skipped.push(skip(alias, "AliasMode to \".\": no service"));
                (Answer::Services(Vec::new()), skipped)
            }
        };
    }
    let mut services = Vec::new();
    for record in read {
        match service(owner, record, default_port, client) {
            Ok(service) => services.push(service),
            Err(reason) => skipped.push(skip(record, &reason)),
        }
    }
    services.sort_by_key(|service| service.priority);
    shuffle_equal_priorities(&mut services);
    (Answer::Services(services), skipped)
}

/// RFC 9460 §2.4.1: records of the same priority are shuffled before use, so that clients
/// spread over them evenly. (The race then ranks their addresses by RFC 6724 within the
/// priority's group; the shuffle decides among equals.)
fn shuffle_equal_priorities(services: &mut [Service]) {
    use std::hash::{BuildHasher, Hasher};
    // Each `RandomState` is keyed afresh (per process, stepped on every call): enough to spread
    // load, and no dependency for it.
    let random = std::collections::hash_map::RandomState::new();
    let mut start = 0;
    while start < services.len() {
        let priority = services[start].priority;
        let end = start
            + services[start..]
                .iter()
                .take_while(|service| service.priority == priority)
                .count();
        // Fisher-Yates over services[start..end].
        for last in (start + 1..end).rev() {
            let mut hasher = random.build_hasher();
            hasher.write_usize(last);
            let span = (last - start + 1) as u64;
            let pick = start + (hasher.finish() % span) as usize;
            services.swap(last, pick);
        }
        start = end;
    }
}

/// One ServiceMode record as a service this client can use, or why it cannot.
fn service(
    owner: &str,
    record: &HttpsRecord,
    default_port: u16,
    client: &ClientSupport,
) -> Result<Service, String> {
    // RFC 9460 §8: a record whose mandatory keys the client does not support is unusable.
    let understood = |key: &u16| match *key {
        key::ALPN | key::NO_DEFAULT_ALPN | key::PORT | key::IPV4HINT | key::IPV6HINT => true,
        key::ECH => client.ech,
        _ => false,
    };
    if let Some(key) = record.mandatory.iter().find(|key| !understood(key)) {
        return Err(format!("mandatory key {} not supported", key_name(*key)));
    }
    // RFC 9460 §7.1.1: no-default-alpn without alpn is not self-consistent.
    if record.no_default_alpn && record.alpn.is_empty() {
        return Err("no-default-alpn without alpn".to_owned());
    }
    let offered = |id: &Vec<u8>| {
        record.alpn.contains(id) || (!record.no_default_alpn && id.as_slice() == DEFAULT_ALPN)
    };
    let alpn: Vec<Vec<u8>> = client
        .alpn
        .iter()
        .filter(|id| offered(id))
        .cloned()
        .collect();
    if alpn.is_empty() {
        let ids: Vec<_> = record
            .alpn
            .iter()
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .collect();
        return Err(format!(
            "alpn {} offers nothing this client speaks over TCP",
            ids.join(",")
        ));
    }
    let target = match record.target() {
        Some(target) => target.to_owned(),
        None => effective_owner(owner),
    };
    Ok(Service {
        priority: record.priority,
        target: target.into(),
        port: record.port.unwrap_or(default_port),
        alpn,
        ech: record.ech.clone(),
        ipv4_hints: record.ipv4_hints.clone(),
        ipv6_hints: record.ipv6_hints.clone(),
    })
}

/// The names an AliasMode chain has visited, from the first query name: bounded, no loops.
#[derive(Clone, Debug)]
pub(crate) struct AliasChain {
    names: Vec<String>,
}

/// Why an AliasMode chain was not followed further; the connect goes on with the origin's A and
/// AAAA records, as with no HTTPS records at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AliasStop {
    /// The target was already visited.
    Loop(String),
    /// More than [`MAX_ALIAS_HOPS`] aliases.
    TooLong,
}

impl fmt::Display for AliasStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AliasStop::Loop(name) => write!(f, "AliasMode loop back to {name}"),
            AliasStop::TooLong => write!(f, "more than {MAX_ALIAS_HOPS} AliasMode records"),
        }
    }
}

impl AliasChain {
    /// A chain that starts at the first query name.
    pub(crate) fn new(query: &str) -> AliasChain {
        AliasChain {
            names: vec![normalize(query)],
        }
    }

    /// Steps to `target`: the next name to ask HTTPS records of.
    pub(crate) fn follow(&mut self, target: &str) -> Result<&str, AliasStop> {
        let target = normalize(target);
        if self.names.contains(&target) {
            return Err(AliasStop::Loop(target));
        }
        if self.names.len() > MAX_ALIAS_HOPS {
            return Err(AliasStop::TooLong);
        }
        self.names.push(target);
        Ok(self.names.last().map_or("", String::as_str))
    }

    /// The name whose records are being read.
    pub(crate) fn current(&self) -> &str {
        self.names.last().map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests;
