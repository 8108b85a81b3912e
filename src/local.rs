//! Local source addresses: which ones to pair with each destination, and whether a pair can work.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;

/// Which local addresses the attempts go out from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum LocalAddrs {
    /// The kernel picks the source for each destination (no bind).
    #[default]
    Kernel,
    /// Every listed address is paired with every destination of its family. Shared, not copied,
    /// by each connect.
    List(Arc<[SocketAddr]>),
    /// Every address of every interface that is up, enumerated at each connect.
    AllInterfaces,
}

impl LocalAddrs {
    /// The local addresses for one connect; `None` when the kernel chooses.
    pub(crate) fn resolve(&self) -> io::Result<Option<Arc<[SocketAddr]>>> {
        match self {
            LocalAddrs::Kernel => Ok(None),
            LocalAddrs::List(list) => Ok(Some(list.clone())),
            LocalAddrs::AllInterfaces => interface_addrs().map(|addrs| Some(addrs.into())),
        }
    }
}

/// Every usable address of every interface that is up: loopback included (it pairs only with
/// loopback destinations), IPv6 link-local with its interface as scope id, and IPv6 addresses
/// that Linux marks deprecated, tentative or failed left out.
fn interface_addrs() -> io::Result<Vec<SocketAddr>> {
    let unusable = unusable_ipv6();
    let mut addrs = Vec::new();
    for interface in if_addrs::get_if_addrs()? {
        if !interface.is_oper_up() && !interface.is_loopback() {
            continue;
        }
        let addr = match interface.ip() {
            IpAddr::V6(ip) if unusable.contains(&ip) => continue,
            IpAddr::V6(ip) if is_link_local(IpAddr::V6(ip)) => {
                SocketAddr::V6(SocketAddrV6::new(ip, 0, 0, interface.index.unwrap_or(0)))
            }
            ip => SocketAddr::new(ip, 0),
        };
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    Ok(addrs)
}

/// IPv6 addresses that must not be used as a source: deprecated (`IFA_F_DEPRECATED`), still in
/// duplicate address detection (`IFA_F_TENTATIVE`), or that failed it (`IFA_F_DADFAILED`).
#[cfg(target_os = "linux")]
fn unusable_ipv6() -> Vec<Ipv6Addr> {
    const TENTATIVE: u32 = 0x40;
    const DEPRECATED: u32 = 0x20;
    const DADFAILED: u32 = 0x08;
    // The calling thread's network namespace, which `getifaddrs` lists: `/proc/net` is the
    // namespace of the process's main thread, and differs for a thread moved with `setns(2)`.
    // `/proc/thread-self` needs Linux 3.17.
    let Some(table) = ["/proc/thread-self/net/if_inet6", "/proc/net/if_inet6"]
        .into_iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
    else {
        return Vec::new();
    };
    table
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let hex = fields.next()?;
            let flags = u32::from_str_radix(fields.nth(3)?, 16).ok()?;
            let bits = u128::from_str_radix(hex, 16).ok()?;
            (flags & (TENTATIVE | DEPRECATED | DADFAILED) != 0).then_some(Ipv6Addr::from(bits))
        })
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn unusable_ipv6() -> Vec<Ipv6Addr> {
    Vec::new()
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// What the kernel says of sending from a local address to a destination.
#[derive(Debug)]
pub(crate) enum Route {
    /// There is a route, with this source address.
    Via(IpAddr),
    /// The kernel has no route there (from that source).
    None,
    /// The local address cannot be bound (not on this host, no permission, …): its pairs are
    /// still tried, so that each attempt reports the error.
    BindFails,
}

/// How routes are looked up; injectable so that tests need no real routes.
pub(crate) type RouteProbe = fn(Option<SocketAddr>, SocketAddr) -> Route;

/// Port substituted when a probed destination has port 0: some systems refuse to connect a
/// datagram socket to port 0. 9 is "discard"; nothing is sent anyway.
const PROBE_PORT: u16 = 9;

/// Asks the kernel for the route from `local` (or from the source it would pick: RFC 6724's
/// `Source(D)`) to `remote`: a UDP socket, bound to `local` if given, is connected to `remote`
/// (a route lookup; nothing is sent) and its address read back. A few system calls; nothing
/// waits on the network.
///
/// An IPv4-mapped `remote` is probed as its IPv4 address, as it will be dialed. For an IPv6
/// link-local `remote` the scope id chooses the interface; without one there is no route.
pub(crate) fn probe_route(local: Option<SocketAddr>, remote: SocketAddr) -> Route {
    let mut remote = canonical(remote);
    if remote.port() == 0 {
        remote.set_port(PROBE_PORT);
    }
    let domain = socket2::Domain::for_address(remote);
    let Ok(socket) = socket2::Socket::new(domain, socket2::Type::DGRAM, None) else {
        return Route::None;
    };
    if let Some(local) = local {
        // Port 0: the probe must not collide with the port an attempt may bind. A link-local
        // address keeps its scope id, without which it does not bind.
        let mut from = local;
        from.set_port(0);
        if socket.bind(&from.into()).is_err() {
            return Route::BindFails;
        }
    }
    // Unbound otherwise: connect binds it, so an explicit bind would be a system call for
    // nothing.
    let source = socket
        .connect(&remote.into())
        .and_then(|()| socket.local_addr());
    match source.ok().and_then(|source| source.as_socket()) {
        Some(source) => Route::Via(source.ip()),
        None => Route::None,
    }
}

/// The address as it will be dialed: an IPv4-mapped IPv6 address is its IPv4 address (sockets
/// here are never dual-stack). Any other address is kept whole, IPv6 scope id included.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// Why a local address cannot reach a destination, before asking the kernel; `None` if it may.
pub(crate) fn unsuitable(local: SocketAddr, remote: SocketAddr) -> Option<&'static str> {
    let (source, dest) = (local.ip(), remote.ip());
    if source.is_ipv4() != dest.is_ipv4() {
        return Some("other address family");
    }
    if source.is_unspecified() {
        return None;
    }
    if source.is_loopback() && !dest.is_loopback() {
        return Some("loopback source for a non-loopback destination");
    }
    if is_link_local(source) && !is_link_local(dest) && !dest.is_loopback() {
        return Some("link-local source for a destination beyond the link");
    }
    if let (SocketAddr::V6(local), SocketAddr::V6(remote)) = (local, remote) {
        let (from, to) = (local.scope_id(), remote.scope_id());
        if is_link_local(source) && from != 0 && to != 0 && from != to {
            return Some("link-local source on another link");
        }
    }
    None
}

/// The unspecified address of a family, for "this family, any source".
pub(crate) fn unspecified_of(remote: SocketAddr) -> IpAddr {
    match remote {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(route: Route) -> Option<IpAddr> {
        match route {
            Route::Via(source) => Some(source),
            Route::None | Route::BindFails => None,
        }
    }

    /// RFC 6724 §6, `Source(D)` as the kernel picks it (its §5): probing
    /// IPv4 loopback gives IPv4 loopback. Only loopback is ever probed.
    #[test]
    fn probe_ipv4_loopback() {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let probe = |remote| source(probe_route(None, remote));
        assert_eq!(probe(SocketAddr::new(loopback, 80)), Some(loopback));
        // Port 0 is replaced rather than refused.
        assert_eq!(probe(SocketAddr::new(loopback, 0)), Some(loopback));
        // IPv4-mapped destinations are probed as IPv4.
        let mapped = SocketAddr::new(IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()), 80);
        assert_eq!(probe(mapped), Some(loopback));
        // From a bound local address.
        let from = SocketAddr::new(loopback, 0);
        let route = probe_route(Some(from), SocketAddr::new(loopback, 80));
        assert_eq!(source(route), Some(loopback));
    }

    /// RFC 6724 §6, `Source(D)` as the kernel picks it: probing `::1`
    /// gives `::1` where the host has IPv6 loopback.
    #[test]
    fn probe_ipv6_loopback() {
        let loopback = IpAddr::V6(Ipv6Addr::LOCALHOST);
        // Binding ::1 tells whether IPv6 loopback exists at all.
        if let Err(e) = std::net::UdpSocket::bind(SocketAddr::new(loopback, 0)) {
            // As tests/support/skip.rs: a failure where every test must run, else a skip that
            // libtest shows (a write to the stderr handle is not captured).
            let why = format!("no IPv6 loopback on this host: bind [::1]:0: {e}");
            assert!(
                std::env::var("CONNECT_BY_LIST_LAB").as_deref() != Ok("required"),
                "probe_ipv6_loopback cannot run here, and CONNECT_BY_LIST_LAB=required: {why}"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED probe_ipv6_loopback: {why} (set CONNECT_BY_LIST_LAB=required to make \
                 this a failure)"
            );
            return;
        }
        let route = probe_route(None, SocketAddr::new(loopback, 80));
        assert_eq!(source(route), Some(loopback));
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn pairs_that_cannot_work_are_named() {
        let cases = [
            (
                "127.0.0.1:0",
                "192.0.2.1:80",
                Some("loopback source for a non-loopback destination"),
            ),
            ("127.0.0.1:0", "127.0.0.2:80", None),
            ("[::1]:0", "192.0.2.1:80", Some("other address family")),
            (
                "[fe80::1%2]:0",
                "[2001:db8::1]:80",
                Some("link-local source for a destination beyond the link"),
            ),
            (
                "[fe80::1%2]:0",
                "[fe80::2%3]:80",
                Some("link-local source on another link"),
            ),
            ("[fe80::1%2]:0", "[fe80::2%2]:80", None),
            (
                "169.254.1.1:0",
                "192.0.2.1:80",
                Some("link-local source for a destination beyond the link"),
            ),
            ("0.0.0.0:0", "192.0.2.1:80", None),
            ("192.0.2.10:0", "198.51.100.1:80", None),
        ];
        for (local, remote, reason) in cases {
            assert_eq!(
                unsuitable(addr(local), addr(remote)),
                reason,
                "{local} -> {remote}"
            );
        }
    }

    #[test]
    fn loopback_routes_are_probed() {
        let route = probe_route(Some(addr("127.0.0.1:0")), addr("127.0.0.1:80"));
        assert!(
            matches!(route, Route::Via(ip) if ip.is_loopback()),
            "{route:?}"
        );
        let route = probe_route(None, addr("127.0.0.1:80"));
        assert!(
            matches!(route, Route::Via(ip) if ip.is_loopback()),
            "{route:?}"
        );
        // 127.0.0.1 is on this host, 192.0.2.77 is not (documentation range): binding it fails.
        let route = probe_route(Some(addr("192.0.2.77:0")), addr("127.0.0.1:80"));
        assert!(matches!(route, Route::BindFails), "{route:?}");
    }

    #[test]
    fn interfaces_include_loopback_and_exclude_nothing_up() {
        let addrs = interface_addrs().expect("getifaddrs works here");
        assert!(
            addrs
                .iter()
                .any(|a| a.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{addrs:?}"
        );
    }
}
