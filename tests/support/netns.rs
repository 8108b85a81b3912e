//! A small Linux network-namespace lab for integration tests.
//!
//! A test builds hosts (network namespaces) joined by veth pairs, puts
//! nftables fault rules on them, and runs Tokio code *inside* a host without
//! re-executing the test binary: [`Host::block_on`] starts a fresh thread,
//! moves that one thread into the namespace with `setns(2)` and runs a
//! current-thread runtime there. Every socket that thread (and any thread it
//! spawns, e.g. Tokio's blocking pool) creates belongs to the host's
//! namespace; the rest of the test process stays in the root namespace.
//!
//! Rules of the road:
//! * Traffic only flows between namespaces the lab made. Never open a socket
//!   towards a lab address from the test's own thread (root namespace):
//!   always go through [`Host::block_on`] / [`Host::listen`].
//! * Use documentation ranges only: 192.0.2.0/24, 198.51.100.0/24,
//!   203.0.113.0/24, 2001:db8::/32.
//! * [`Lab::new`] returns `None` when the machine can't host a lab (not
//!   root, no `ip`, no netns support); tests then return early. The skip goes
//!   through [`super::skip::cannot_run`]: a visible `SKIPPED <test>: <why>`
//!   line, or, with `CONNECT_BY_LIST_LAB=required` (as `.ci/run` sets), a
//!   panic with the reason, so no lab test reports `ok` without running
//!   where the lab is required. Tests that need nftables start with
//!   [`Lab::with_nft`] instead.
//! * Names are `cbl-<pid>-<lab#>-<host>`, so parallel tests (threads or
//!   nextest processes) never collide. Dropping the [`Lab`] (also while
//!   unwinding from a panic) deletes its namespaces, and with them the veths.
//!   Namespaces left by a killed test process are reaped by the next
//!   [`Lab::new`].
//!
//! Linux behaviour the lab exposes (kernel 6.18, measured by
//! tests/lab_selftest.rs):
//! * An ICMP error answering a SYN ends the connect with a hard error,
//!   `IP_RECVERR` or not, *if the socket is not locked* when it arrives. In
//!   the lab it always is: veth delivery is synchronous, so the whole
//!   SYN -> reject -> ICMP round trip runs inside the client's `connect()`
//!   call, which holds the socket lock, and the kernel only records a soft
//!   error (`TcpExtLockDroppedIcmps`). Then IPv4 still wakes the connect at
//!   once (IPv4 TCP always queues the ICMP on the socket's error queue, so
//!   poll reports `EPOLLERR` and `SO_ERROR` returns the soft error), but IPv6
//!   does so only with `IPV6_RECVERR` set; without it the connect stays
//!   pending until the SYN retransmit (1 s) gets a second ICMP, now a hard
//!   error. Same errno either way. TCP resets are not affected (they are
//!   backlogged, not dropped).
//! * The kernel rate-limits ICMP errors per peer (IPv4: burst 6, then one a
//!   second); hosts get `icmp_ratelimit=0` so every rejected SYN is answered.
//! * The first IPv6 packet right after a veth comes up can be lost (see
//!   `wait_link_ready`); [`Lab::link`] returns only once both ends are ready.
//!
//! ```ignore
//! let Some(mut lab) = Lab::new() else { return };
//! let c = lab.host("c");
//! let s = lab.host("s");
//! lab.link(&c, &["192.0.2.1/24", "2001:db8::1/64"], &s, &["192.0.2.2/24", "2001:db8::2/64"]);
//! let server = s.listen("192.0.2.2:80".parse().unwrap());
//! lab.fault(&s, "192.0.2.2:81".parse().unwrap(), Fault::Reset);
//! let addr = server.local_addr();
//! c.block_on(move || async move { tokio::net::TcpStream::connect(addr).await.map(drop) }).unwrap();
//! ```
#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::fs::File;
use std::future::Future;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Where `ip netns add` puts its bind mounts.
const NETNS_DIR: &str = "/var/run/netns";
/// Every namespace the lab makes starts with this.
const PREFIX: &str = "cbl-";

/// Labs made by this process, for unique names.
static LABS: AtomicUsize = AtomicUsize::new(0);

/// Set on every host.
///
/// * DAD off, so an IPv6 address is usable (bindable, not "tentative") at
///   once. `all` alone is not enough: DAD is skipped only when both `all`
///   and the device's value (copied from `default` at creation) are 0.
/// * rp_filter off: IPv4 `all`/`default` are copied from the root namespace,
///   which may have strict reverse-path filtering that drops asymmetric
///   routes.
/// * ICMP rate limits off, so a rule that rejects many SYNs in a row answers
///   every one (default: one error per second per peer after a burst of 6 on
///   IPv4; on IPv6 one per 100 ms, shifted right by 2 for a /64; the rest
///   are silently not sent and the client waits for its SYN retransmit).
const HOST_SYSCTLS: &[(&str, &str)] = &[
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
    ("net/ipv4/conf/all/rp_filter", "0"),
    ("net/ipv4/conf/default/rp_filter", "0"),
    ("net/ipv4/icmp_ratelimit", "0"),
    ("net/ipv6/icmp/ratelimit", "0"),
];

/// Set on every host where the kernel has them per namespace: the ICMP
/// token bucket shared by all peers (default 1000/s, burst 50).
const HOST_SYSCTLS_IF_PRESENT: &[(&str, &str)] = &[
    ("net/ipv4/icmp_msgs_per_sec", "100000"),
    ("net/ipv4/icmp_msgs_burst", "100000"),
];

/// Set on routers, in addition to [`HOST_SYSCTLS`].
const ROUTER_SYSCTLS: &[(&str, &str)] = &[
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv6/conf/all/forwarding", "1"),
    ("net/ipv6/conf/default/forwarding", "1"),
];

/// A set of network namespaces and the links between them; deleted on drop.
#[derive(Debug)]
pub struct Lab {
    /// `cbl-<pid>-<lab#>`.
    prefix: String,
    /// Every namespace made, in order.
    namespaces: Vec<String>,
    /// veth pairs made, for interface names.
    links: usize,
}

impl Lab {
    /// A new, empty lab; `None` when this machine can't run one, after
    /// printing `SKIPPED <test>: <why>`, or a panic with the reason when the
    /// lab is required (see [`super::skip`]). Installs nothing.
    pub fn new() -> Option<Lab> {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        if uid != 0 {
            skip(&format!("it needs root, this is uid {uid}"));
            return None;
        }
        if let Err(e) = cmd_output(Command::new("ip").arg("-V"), None) {
            skip(&format!("`ip` (iproute2) unusable: {e}"));
            return None;
        }
        reap_stale();
        let prefix = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let probe = format!("{prefix}-probe");
        if let Err(e) = ip(&["netns", "add", &probe]) {
            skip(&format!("cannot create a network namespace: {e}"));
            return None;
        }
        let _ = ip(&["netns", "del", &probe]);
        Some(Lab {
            prefix,
            namespaces: Vec::new(),
            links: 0,
        })
    }

    /// A new lab for tests that load fault rules: as [`Lab::new`], and also `None` (or a panic
    /// where the lab is required) when `nft` is missing.
    pub fn with_nft() -> Option<Lab> {
        let lab = Lab::new()?;
        if let Err(e) = cmd_output(Command::new("nft").arg("--version"), None) {
            skip(&format!("`nft` (nftables) unusable: {e}"));
            return None;
        }
        Some(lab)
    }

    /// A new host: a namespace with `lo` up and [`HOST_SYSCTLS`] set.
    /// `name` is short, `[A-Za-z0-9_]`, unique within this lab.
    pub fn host(&mut self, name: &str) -> Host {
        assert!(
            !name.is_empty()
                && name.len() <= 8
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "host name {name:?}: use 1-8 of [A-Za-z0-9_]"
        );
        let ns = format!("{}-{name}", self.prefix);
        assert!(
            !self.namespaces.contains(&ns),
            "host {name:?} already exists"
        );
        ip(&["netns", "add", &ns]).unwrap_or_else(|e| panic!("{e}"));
        self.namespaces.push(ns.clone());
        let host = Host {
            ns,
            label: name.to_owned(),
        };
        ip(&["-n", &host.ns, "link", "set", "lo", "up"]).unwrap_or_else(|e| panic!("{e}"));
        host.set_sysctls(HOST_SYSCTLS);
        host.write_sysctls(HOST_SYSCTLS_IF_PRESENT, false);
        host
    }

    /// A host that forwards IPv4 and IPv6 (put fault rules on it with
    /// [`Lab::fault`]; they apply to the forward hook too).
    pub fn router(&mut self, name: &str) -> Host {
        let host = self.host(name);
        host.set_sysctls(ROUTER_SYSCTLS);
        host
    }

    /// A veth pair between `a` and `b`, brought up, with addresses in CIDR
    /// form on each side (`"192.0.2.1/24"`, `"2001:db8::1/64"`; IPv6 ones get
    /// `nodad`). Returns the interface names `(in a, in b)`: `v<n>-<peer>`.
    pub fn link(
        &mut self,
        a: &Host,
        a_addrs: &[&str],
        b: &Host,
        b_addrs: &[&str],
    ) -> (String, String) {
        self.links += 1;
        // Created directly inside the namespaces, so names need only be
        // unique per namespace; IFNAMSIZ allows 15 bytes.
        let a_if = format!("v{}-{}", self.links, b.label);
        let b_if = format!("v{}-{}", self.links, a.label);
        assert!(a_if.len() <= 15 && b_if.len() <= 15);
        ip(&[
            "link", "add", &a_if, "netns", &a.ns, "type", "veth", "peer", "name", &b_if, "netns",
            &b.ns,
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        for (host, ifname, addrs) in [(a, &a_if, a_addrs), (b, &b_if, b_addrs)] {
            for addr in addrs {
                let r = if addr.contains(':') {
                    ip(&[
                        "-n", &host.ns, "-6", "addr", "add", addr, "dev", ifname, "nodad",
                    ])
                } else {
                    ip(&["-n", &host.ns, "addr", "add", addr, "dev", ifname])
                };
                r.unwrap_or_else(|e| panic!("{e}"));
            }
            ip(&["-n", &host.ns, "link", "set", ifname, "up"]).unwrap_or_else(|e| panic!("{e}"));
        }
        wait_link_ready(a, &a_if, a_addrs);
        wait_link_ready(b, &b_if, b_addrs);
        (a_if, b_if)
    }

    /// `ip route add <dest> via <via>` in `host` (`dest` may be `default`;
    /// the family follows `via`).
    pub fn route(&self, host: &Host, dest: &str, via: &str) {
        let family = if via.contains(':') { "-6" } else { "-4" };
        ip(&["-n", &host.ns, family, "route", "add", dest, "via", via])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Load an nftables ruleset (`nft -f -`) in `host`; panics with nft's
    /// error and the ruleset on failure.
    pub fn nft(&self, host: &Host, ruleset: &str) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.ns, "nft", "-f", "-"]);
        if let Err(e) = cmd_output(&mut cmd, Some(ruleset)) {
            panic!("{e}\nruleset:\n{ruleset}");
        }
    }

    /// Add `fault` for TCP to `target` (port 0: every port) in `host`, on
    /// both its input and forward hooks, so it works on the server itself or
    /// on a router in front of it. Faults accumulate; see [`Lab::clear_faults`].
    pub fn fault(&self, host: &Host, target: SocketAddr, fault: Fault) {
        self.nft(host, &fault.ruleset(target));
    }

    /// Remove every nftables rule in `host`.
    pub fn clear_faults(&self, host: &Host) {
        self.nft(host, "flush ruleset\n");
    }

    /// Packets that matched the lab's fault rules for `target` in `host` so
    /// far (all faults on it, both hooks).
    pub fn fault_hits(&self, host: &Host, target: SocketAddr) -> u64 {
        let listing = self.run(host, &["nft", "list", "table", "inet", "lab"]);
        let needle = format!("comment \"{target}\"");
        listing
            .lines()
            .filter(|l| l.contains(&needle))
            .filter_map(|l| {
                let rest = &l[l.find("counter packets ")? + "counter packets ".len()..];
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum()
    }

    /// `ip netns exec <host> <args...>`; returns stdout, panics with stderr
    /// on failure.
    pub fn run(&self, host: &Host, args: &[&str]) -> String {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.ns]).args(args);
        cmd_output(&mut cmd, None).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("lab teardown: {e}");
            }
        }
    }
}

/// One network namespace of a [`Lab`].
#[derive(Debug, Clone)]
pub struct Host {
    ns: String,
    label: String,
}

impl Host {
    /// The namespace name (what `ip netns exec` takes).
    pub fn name(&self) -> &str {
        &self.ns
    }

    /// The short name given to [`Lab::host`].
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Inode of the namespace: equal to `stat -L /proc/<tid>/ns/net` of any
    /// thread inside it.
    pub fn netns_inode(&self) -> u64 {
        std::fs::metadata(self.ns_path())
            .unwrap_or_else(|e| panic!("stat {}: {e}", self.ns_path()))
            .ino()
    }

    /// Run `f` on a new thread inside this namespace, with a current-thread
    /// Tokio runtime (all drivers on); returns its output and re-raises its
    /// panics. Sockets made by `f`'s future live in this namespace.
    pub fn block_on<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let thread = self.spawn(move || runtime().block_on(f()));
        match thread.join() {
            Ok(t) => t,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// A plain thread inside this namespace running `f`.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let path = self.ns_path();
        // Opened here so a missing namespace fails in the caller's thread.
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        std::thread::Builder::new()
            .name(format!("netns-{}", self.label))
            .spawn(move || {
                // Network namespaces are per thread: this moves only the
                // current thread (and threads it spawns later).
                // SAFETY: `file` is an open namespace fd for the whole call.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    panic!("setns({path}): {}", io::Error::last_os_error());
                }
                drop(file);
                f()
            })
            .expect("spawn netns thread")
    }

    /// A TCP listener on `addr` (port 0 picks one) in this namespace, on its
    /// own thread. It accepts connections and holds them open, writing
    /// nothing, until the returned [`Server`] is dropped. Panics if the bind
    /// fails.
    pub fn listen(&self, addr: SocketAddr) -> Server {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let thread = self.spawn(move || {
            runtime().block_on(async move {
                let listener = match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(listener.local_addr());
                let mut held = Vec::new();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        conn = listener.accept() => {
                            if let Ok((stream, _)) = conn {
                                counter.fetch_add(1, Ordering::SeqCst);
                                held.push(stream);
                            }
                        }
                    }
                }
            });
        });
        let local_addr = match ready_rx.recv() {
            Ok(Ok(local)) => local,
            Ok(Err(e)) => panic!("listen on {addr} in {}: {e}", self.ns),
            Err(_) => match thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => panic!("listener thread in {} ended early", self.ns),
            },
        };
        Server {
            local_addr,
            accepted,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn ns_path(&self) -> String {
        format!("{NETNS_DIR}/{}", self.ns)
    }

    /// Write sysctls (paths under /proc/sys, `/`-separated, e.g.
    /// `net/ipv4/icmp_ratelimit`) in this namespace; panics on failure.
    pub fn set_sysctls(&self, settings: &[(&str, &str)]) {
        self.write_sysctls(settings, true);
    }

    /// /proc/sys/net resolves against the opening thread's netns, so this
    /// writes from a thread inside the namespace.
    fn write_sysctls(&self, settings: &[(&str, &str)], required: bool) {
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(k, v)| (format!("/proc/sys/{k}"), (*v).to_owned()))
            .collect();
        self.spawn(move || {
            for (path, value) in settings {
                match std::fs::write(&path, &value) {
                    Err(e) if required || e.kind() != io::ErrorKind::NotFound => {
                        panic!("write {value} to {path}: {e}")
                    }
                    _ => {}
                }
            }
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    }

    /// Read one sysctl (path under /proc/sys) in this namespace.
    pub fn sysctl(&self, key: &str) -> String {
        let path = format!("/proc/sys/{key}");
        self.spawn(move || std::fs::read_to_string(&path).map(|s| s.trim().to_owned()))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .unwrap_or_else(|e| panic!("read {key}: {e}"))
    }
}

/// A listener started by [`Host::listen`]; dropping it closes the listener
/// and every connection it accepted, and joins its thread.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections accepted so far. Accepting runs on the server's thread
    /// after the client's connect has completed, so this can lag behind.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() && !std::thread::panicking() {
                eprintln!("lab server on {} panicked", self.local_addr);
            }
        }
    }
}

/// A network fault for TCP to one address (and port), rendered as an
/// nftables rule in table `inet lab` (see [`Fault::ruleset`]).
///
/// What a Linux client's `connect` gets (`io::ErrorKind` in brackets). The
/// ICMP kinds on IPv6 take one SYN retransmit (~1 s) unless the socket has
/// `IPV6_RECVERR` (see the module docs); everything else is immediate.
///
/// | fault             | IPv4                                  | IPv6                        |
/// |-------------------|---------------------------------------|-----------------------------|
/// | `Blackhole`       | pending (SYN retransmits for ~2 min)  | same                        |
/// | `Reset`           | `ECONNREFUSED` (ConnectionRefused)    | same                        |
/// | `PortUnreachable` | `ECONNREFUSED` (ConnectionRefused)    | same                        |
/// | `HostUnreachable` | `EHOSTUNREACH` (HostUnreachable)      | same                        |
/// | `AdminProhibited` | `EHOSTUNREACH` (HostUnreachable)      | `EACCES` (PermissionDenied) |
/// | `NoRoute`         | `ENETUNREACH` (NetworkUnreachable)    | same                        |
/// | `DropFirstSyn`    | connects after the 1 s SYN retransmit | same                        |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Drop every packet: the connect stays pending.
    Blackhole,
    /// Answer with a TCP RST.
    Reset,
    /// ICMP host unreachable / ICMPv6 address unreachable.
    HostUnreachable,
    /// ICMP(v6) port unreachable.
    PortUnreachable,
    /// ICMP communication administratively prohibited (v4 code 13, v6 code 1).
    AdminProhibited,
    /// ICMP net unreachable / ICMPv6 no route to destination.
    NoRoute,
    /// Drop the first SYN of each connection (keyed on source address and
    /// port, remembered 60 s, so a connection reusing a source port within
    /// that time is not delayed); the retransmitted SYN gets through.
    DropFirstSyn,
}

impl Fault {
    /// Every fault, in declaration order.
    pub const ALL: [Fault; 7] = [
        Fault::Blackhole,
        Fault::Reset,
        Fault::HostUnreachable,
        Fault::PortUnreachable,
        Fault::AdminProhibited,
        Fault::NoRoute,
        Fault::DropFirstSyn,
    ];

    /// The nftables match for TCP to `target`, e.g.
    /// `ip daddr 192.0.2.2 tcp dport 80` (port 0: `meta l4proto tcp`).
    pub fn match_expr(target: SocketAddr) -> String {
        let family = if target.is_ipv4() { "ip" } else { "ip6" };
        let port = match target.port() {
            0 => "meta l4proto tcp".to_owned(),
            port => format!("tcp dport {port}"),
        };
        format!("{family} daddr {} {port}", target.ip())
    }

    /// One nftables rule applying this fault to `target`, with a counter and
    /// the target as comment (for [`Lab::fault_hits`]).
    pub fn rule(self, target: SocketAddr) -> String {
        format!("{} comment \"{target}\"", self.rule_body(target))
    }

    fn rule_body(self, target: SocketAddr) -> String {
        let m = Self::match_expr(target);
        let (saddr, set) = if target.is_ipv4() {
            ("ip saddr", "@first_syn4")
        } else {
            ("ip6 saddr", "@first_syn6")
        };
        match self {
            Fault::Blackhole => format!("{m} counter drop"),
            Fault::Reset => format!("{m} counter reject with tcp reset"),
            Fault::HostUnreachable => {
                format!("{m} counter reject with icmpx type host-unreachable")
            }
            Fault::PortUnreachable => {
                format!("{m} counter reject with icmpx type port-unreachable")
            }
            Fault::AdminProhibited => {
                format!("{m} counter reject with icmpx type admin-prohibited")
            }
            Fault::NoRoute => format!("{m} counter reject with icmpx type no-route"),
            // A set lookup, then `add` to remember the connection: the first
            // SYN is dropped, its retransmits are not in the rule's scope.
            // (`ct state new` alone can't tell them apart: a dropped SYN's
            // conntrack entry is never confirmed, so the retransmit is `new`
            // again, and a ct mark set on it is lost with it.)
            Fault::DropFirstSyn => format!(
                "{m} tcp flags & (syn | ack) == syn {saddr} . tcp sport != {set} \
                 add {set} {{ {saddr} . tcp sport }} counter drop"
            ),
        }
    }

    /// A complete `nft -f` ruleset adding this fault's rule to the input and
    /// forward hooks of table `inet lab` (creating table, chains and sets if
    /// missing; loading several accumulates rules).
    pub fn ruleset(self, target: SocketAddr) -> String {
        let rule = self.rule(target);
        let mut s = String::new();
        let _ = write!(
            s,
            "table inet lab {{
    set first_syn4 {{ type ipv4_addr . inet_service; flags dynamic, timeout; timeout 60s; }}
    set first_syn6 {{ type ipv6_addr . inet_service; flags dynamic, timeout; timeout 60s; }}
    chain input {{
        type filter hook input priority filter; policy accept;
        {rule}
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        {rule}
    }}
}}
"
        );
        s
    }
}

/// Wait (bounded) until `ifname` in `host` can take traffic: operstate UP
/// and, with IPv6 addresses, the `ff00::/8` multicast route and each
/// address's solicited-node group in place.
///
/// Without this the first IPv6 connect after [`Lab::link`] often takes 1 s:
/// a veth's carrier-on is applied by the kernel's linkwatch, which may run
/// up to a second later; until then IPv6 is "not ready" on the device (no
/// multicast route, groups not joined), so the peer's first Neighbor
/// Solicitation is dropped (`Ip6InNoRoutes`), and the SYN waits for the
/// ND retransmit. Querying the link over netlink also makes recent kernels
/// process the pending linkwatch event at once, so this rarely loops.
fn wait_link_ready(host: &Host, ifname: &str, addrs: &[&str]) {
    let groups: Vec<String> = addrs
        .iter()
        .filter_map(|a| a.split('/').next()?.parse::<std::net::Ipv6Addr>().ok())
        .map(|a| {
            let o = a.octets();
            let group = std::net::Ipv6Addr::new(
                0xff02,
                0,
                0,
                0,
                0,
                1,
                0xff00 | u16::from(o[13]),
                u16::from_be_bytes([o[14], o[15]]),
            );
            format!("inet6 {group}")
        })
        .collect();
    let check = || -> Result<bool, String> {
        let link = ip(&["-n", &host.ns, "-o", "link", "show", "dev", ifname])?;
        if !link.contains("state UP") {
            return Ok(false);
        }
        if groups.is_empty() {
            return Ok(true);
        }
        let routes = ip(&[
            "-n", &host.ns, "-6", "route", "show", "table", "local", "dev", ifname,
        ])?;
        let maddr = ip(&["-n", &host.ns, "-6", "maddr", "show", "dev", ifname])?;
        Ok(routes.contains("multicast ff00::/8")
            && groups.iter().all(|g| maddr.lines().any(|l| l.trim() == g)))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match check() {
            Ok(true) => return,
            Ok(false) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(false) => panic!("{ifname} in {} not ready after 10 s", host.ns),
            Err(e) => panic!("{e}"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build tokio runtime")
}

fn skip(why: &str) {
    super::skip::cannot_run(&format!("no network-namespace lab: {why}"));
}

/// `ip <args>`; Err carries the command line and stderr.
fn ip(args: &[&str]) -> Result<String, String> {
    cmd_output(Command::new("ip").args(args), None)
}

fn cmd_output(cmd: &mut Command, stdin: Option<&str>) -> Result<String, String> {
    let line = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("{line}: {e}"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(input.as_bytes())
            .map_err(|e| format!("{line}: writing stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{line}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{line} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Delete `cbl-<pid>-...` namespaces whose process is gone (a test killed
/// before its `Lab` dropped, e.g. by a nextest timeout).
fn reap_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

/// Where `ip netns exec` looks for per-namespace configuration files.
const NETNS_ETC: &str = "/etc/netns";

/// `/etc/netns/<ns>/`, removed on drop (also when a test panics). `ip netns exec NS cmd`
/// bind-mounts each of its files over its namesake in `/etc` for `cmd`; a thread moved into a
/// namespace with `setns` (as [`Host::spawn`]) does not see them, so a test that needs them
/// (a namespace's own `resolv.conf`, `hosts` or `nsswitch.conf`) re-executes itself with
/// [`run_in`].
#[derive(Debug)]
pub struct NetnsEtc {
    dir: PathBuf,
    /// Whether `/etc/netns` itself was made here (then removed if empty).
    made_parent: bool,
}

impl NetnsEtc {
    /// Writes `files` (name, contents) into `/etc/netns/<ns>/`.
    pub fn new(ns: &str, files: &[(&str, String)]) -> NetnsEtc {
        reap_stale_etc();
        let parent = PathBuf::from(NETNS_ETC);
        let made_parent = !parent.exists();
        let dir = parent.join(ns);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let guard = NetnsEtc { dir, made_parent };
        for (name, contents) in files {
            let path = guard.dir.join(name);
            std::fs::write(&path, contents)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        guard
    }
}

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cleanup {}: {e}", self.dir.display());
        }
        if self.made_parent {
            // Fails harmlessly if another namespace's files are there.
            let _ = std::fs::remove_dir(NETNS_ETC);
        }
    }
}

/// Removes `/etc/netns/cbl-<pid>-...` left by a test process that was killed.
fn reap_stale_etc() {
    let Ok(entries) = std::fs::read_dir(NETNS_ETC) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("cbl-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// What [`run_in`] saw of a program run in a namespace.
#[derive(Debug)]
pub struct Run {
    /// `None` when it was still running at the guard and was killed.
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    /// From spawning `ip netns exec` to the program's exit (or kill).
    pub wall: std::time::Duration,
}

/// Runs `program args` under `ip netns exec <ns>` (so it sees `/etc/netns/<ns>/`, see
/// [`NetnsEtc`]) with `envs` added, killing it after `guard`.
pub fn run_in(
    ns: &str,
    program: &std::path::Path,
    args: &[&str],
    envs: &[(&str, String)],
    guard: std::time::Duration,
) -> Run {
    use std::io::Read as _;
    use std::time::Instant;
    let began = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ip netns exec");
    // Drain both pipes on their own threads so a chatty child cannot block.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if began.elapsed() >= guard {
            // `ip netns exec` execs the program: this kills the program itself.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let wall = began.elapsed();
    Run {
        status,
        stdout: stdout.join().expect("stdout drained"),
        stderr: stderr.join().expect("stderr drained"),
        wall,
    }
}
