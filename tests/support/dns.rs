//! A DNS server for the tests: UDP, one question per query (RFC 1035 §4.1), answers from a
//! zone the test writes as a function, and a log of every question it was asked.
//!
//! It runs on a thread of its own, in this process's network namespace ([`DnsServer::start`],
//! for loopback) or in a lab host's ([`DnsServer::start_in`]), so the system resolver of a
//! program run under `ip netns exec` can be pointed at it. It writes A, AAAA and HTTPS
//! (RFC 9460) records itself; no DNS library is needed, so every test can use it.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Record types (QTYPE values).
pub const A: u16 = 1;
pub const AAAA: u16 = 28;
pub const HTTPS: u16 = 65;

/// One question the server was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// Lowercase, without the final dot.
    pub name: String,
    pub qtype: u16,
}

/// What the zone answers to a question.
#[derive(Clone, Debug)]
pub enum Reply {
    /// No reply at all, as a resolver that drops the query.
    Drop,
    /// NXDOMAIN: the name does not exist.
    NoSuchName,
    /// NOERROR with these records (none: the name has no record of this type).
    Records(Vec<Rdata>),
    /// This reply, sent after a pause; the server answers other queries meanwhile.
    After(Duration, Box<Reply>),
}

/// A record's data; the answer carries the question's name and class IN, TTL 60 s.
#[derive(Clone, Debug)]
pub enum Rdata {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Https(Https),
}

/// An HTTPS record (RFC 9460 §2.2): priority, target name and SvcParams, written in
/// ascending key order as §2.2 requires.
#[derive(Clone, Debug)]
pub struct Https {
    priority: u16,
    target: String,
    params: BTreeMap<u16, Vec<u8>>,
}

impl Https {
    /// A record with this `SvcPriority` (0: AliasMode) and target name (`"."` for the owner).
    pub fn new(priority: u16, target: &str) -> Https {
        Https {
            priority,
            target: target.to_owned(),
            params: BTreeMap::new(),
        }
    }

    /// `alpn` (key 1).
    pub fn alpn(mut self, ids: &[&str]) -> Https {
        let mut value = Vec::new();
        for id in ids {
            value.push(u8::try_from(id.len()).expect("an ALPN id under 256 bytes"));
            value.extend_from_slice(id.as_bytes());
        }
        self.params.insert(1, value);
        self
    }

    /// `no-default-alpn` (key 2).
    pub fn no_default_alpn(mut self) -> Https {
        self.params.insert(2, Vec::new());
        self
    }

    /// `port` (key 3).
    pub fn port(mut self, port: u16) -> Https {
        self.params.insert(3, port.to_be_bytes().to_vec());
        self
    }

    /// `ipv4hint` (key 4).
    pub fn ipv4hint(mut self, ips: &[Ipv4Addr]) -> Https {
        self.params
            .insert(4, ips.iter().flat_map(|ip| ip.octets()).collect());
        self
    }

    /// `ipv6hint` (key 6).
    pub fn ipv6hint(mut self, ips: &[Ipv6Addr]) -> Https {
        self.params
            .insert(6, ips.iter().flat_map(|ip| ip.octets()).collect());
        self
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.priority.to_be_bytes());
        encode_name(&self.target, out);
        for (key, value) in &self.params {
            out.extend_from_slice(&key.to_be_bytes());
            let len = u16::try_from(value.len()).expect("a SvcParam value under 64 KB");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(value);
        }
    }
}

impl Rdata {
    fn qtype(&self) -> u16 {
        match self {
            Rdata::A(_) => A,
            Rdata::Aaaa(_) => AAAA,
            Rdata::Https(_) => HTTPS,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Rdata::A(ip) => out.extend_from_slice(&ip.octets()),
            Rdata::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
            Rdata::Https(https) => https.encode(out),
        }
    }
}

/// A name in wire form, uncompressed; `"."` and `""` are the root.
fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(u8::try_from(label.len()).expect("a label under 64 bytes"));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

type Zone = dyn Fn(&Question) -> Reply + Send + Sync;

/// A running server; dropping it stops it and joins its threads.
pub struct DnsServer {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<Question>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// A server on `addr` (UDP; port 0 picks one) in this process's network namespace.
    pub fn start(
        addr: SocketAddr,
        zone: impl Fn(&Question) -> Reply + Send + Sync + 'static,
    ) -> DnsServer {
        DnsServer::start_with(addr, Arc::new(zone), std::thread::spawn)
    }

    /// A server on `addr` (UDP; port 0 picks one) inside a lab host's network namespace.
    #[cfg(target_os = "linux")]
    pub fn start_in(
        host: &super::netns::Host,
        addr: SocketAddr,
        zone: impl Fn(&Question) -> Reply + Send + Sync + 'static,
    ) -> DnsServer {
        DnsServer::start_with(addr, Arc::new(zone), |serve| host.spawn(serve))
    }

    fn start_with(
        addr: SocketAddr,
        zone: Arc<Zone>,
        spawn: impl FnOnce(Box<dyn FnOnce() + Send>) -> JoinHandle<()>,
    ) -> DnsServer {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = spawn(Box::new({
            let (asked, stop) = (asked.clone(), stop.clone());
            move || {
                let socket = match UdpSocket::bind(addr) {
                    Ok(socket) => socket,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                // Short, so that a stop is seen soon.
                let _ = socket.set_read_timeout(Some(Duration::from_millis(20)));
                let _ = ready_tx.send(socket.local_addr());
                serve(&socket, &*zone, &asked, &stop);
            }
        }));
        let addr = match ready_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(error)) => panic!("DNS server on {addr}: {error}"),
            Err(_) => match thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => panic!("DNS server on {addr} ended before it was ready"),
            },
        };
        DnsServer {
            addr,
            asked,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every question asked so far, in order of arrival.
    pub fn asked(&self) -> Vec<Question> {
        self.asked.lock().expect("the log").clone()
    }

    /// How many questions of this type were asked so far, for any name.
    pub fn asked_of_type(&self, qtype: u16) -> usize {
        self.asked().iter().filter(|q| q.qtype == qtype).count()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(socket: &UdpSocket, zone: &Zone, asked: &Mutex<Vec<Question>>, stop: &AtomicBool) {
    let mut later: Vec<JoinHandle<()>> = Vec::new();
    let mut buffer = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) {
        let Ok((len, from)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let query = &buffer[..len];
        let Some(question) = parse(query) else {
            continue;
        };
        asked.lock().expect("the log").push(question.clone());
        let mut reply = zone(&question);
        let mut pause = Duration::ZERO;
        while let Reply::After(more, inner) = reply {
            pause += more;
            reply = *inner;
        }
        let Some(bytes) = encode(query, &reply) else {
            continue;
        };
        if pause.is_zero() {
            let _ = socket.send_to(&bytes, from);
        } else if let Ok(socket) = socket.try_clone() {
            // A thread made here is in this thread's network namespace too.
            later.push(std::thread::spawn(move || {
                std::thread::sleep(pause);
                let _ = socket.send_to(&bytes, from);
            }));
        }
    }
    for thread in later {
        let _ = thread.join();
    }
}

/// The question of a standard query with exactly one, or `None` (then it gets no reply).
fn parse(query: &[u8]) -> Option<Question> {
    let header = query.get(..12)?;
    let is_query = header[2] & 0x80 == 0;
    if !is_query || u16::from_be_bytes([header[4], header[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // A query's one name is never compressed.
        if len & 0xC0 != 0 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    query.get(at + 2..at + 4)?; // QCLASS
    Some(Question {
        name: labels.join("."),
        qtype,
    })
}

/// The reply to `query` (whose question [`parse`] read), or `None` for [`Reply::Drop`].
fn encode(query: &[u8], reply: &Reply) -> Option<Vec<u8>> {
    let (rcode, records): (u8, &[Rdata]) = match reply {
        Reply::Drop => return None,
        Reply::NoSuchName => (3, &[]),
        Reply::Records(records) => (0, records),
        Reply::After(..) => unreachable!("pauses are taken off before"),
    };
    // The question section: from byte 12 through the name, QTYPE and QCLASS.
    let mut end = 12;
    while query[end] != 0 {
        end += 1 + usize::from(query[end]);
    }
    let question = &query[12..end + 5];
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&query[..2]); // the query's id
                                        // A response, its opcode, authoritative, recursion desired as asked; recursion available.
    out.push(0x80 | (query[2] & 0x78) | 0x04 | (query[2] & 0x01));
    out.push(0x80 | rcode);
    let answers = u16::try_from(records.len()).expect("fewer than 64 K records");
    for count in [1, answers, 0, 0] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    out.extend_from_slice(question);
    for record in records {
        // The name by pointer to the question's, the type, class IN, TTL 60 s.
        out.extend_from_slice(&[0xC0, 0x0C]);
        out.extend_from_slice(&record.qtype().to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        let mut rdata = Vec::new();
        record.encode(&mut rdata);
        let len = u16::try_from(rdata.len()).expect("RDATA under 64 KB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}
