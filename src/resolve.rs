//! Names become addresses: the resolver trait and the system resolver.
//!
//! The connector asks for each family separately (AAAA and A at once), so that the race can start
//! on the first useful answer instead of waiting for the slower one (RFC 8305 §3).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;

/// An address family.
///
/// ```
/// use connect_by_list::Family;
///
/// assert_eq!(Family::of("2001:db8::1".parse().unwrap()), Family::V6);
/// assert_eq!(Family::V6.other(), Family::V4);
/// assert_eq!(Family::V4.to_string(), "IPv4");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv6 (AAAA records).
    V6,
    /// IPv4 (A records).
    V4,
}

impl Family {
    /// The family of an address, by its form: an IPv4-mapped IPv6 address is IPv6 here, as a
    /// resolver's AAAA answer it came in. (The connector dials such an address as IPv4, since
    /// its sockets are never dual-stack.)
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The other family.
    pub fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// Which address families a connector uses: see [`Builder::ip_family`](crate::Builder::ip_family).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpFamily {
    /// Both: IPv6 and IPv4, raced (RFC 8305).
    #[default]
    Any,
    /// IPv4 only: no AAAA lookup is sent, and IPv6 addresses are skipped.
    V4Only,
    /// IPv6 only: no A lookup is sent, and IPv4 addresses (IPv4-mapped ones included) are
    /// skipped; nothing is synthesized for them.
    V6Only,
}

impl IpFamily {
    /// Whether addresses of `family` are used.
    pub fn allows(self, family: Family) -> bool {
        match self {
            IpFamily::Any => true,
            IpFamily::V4Only => family == Family::V4,
            IpFamily::V6Only => family == Family::V6,
        }
    }
}

/// What [`Resolve::resolve`] returns: a boxed future of one family's addresses.
///
/// ```
/// use connect_by_list::Resolving;
/// use std::net::{IpAddr, Ipv6Addr};
///
/// let answer: Resolving = Box::pin(async { Ok(vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]) });
/// # drop(answer);
/// ```
pub type Resolving = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// What [`Resolve::resolve_https`] returns: a boxed future of a name's HTTPS records.
pub type ResolvingHttps = Pin<Box<dyn Future<Output = io::Result<Vec<crate::HttpsRecord>>> + Send>>;

/// Turns a host name into addresses of one family.
///
/// The connector calls it twice per name, once per family, and polls both at once. An empty
/// answer means the name has no address of that family; an error means the lookup itself failed.
/// Addresses of the other family in an answer are ignored. Dropping the future must cancel the
/// lookup where the resolver can.
///
/// ```
/// use connect_by_list::{Family, Resolve, Resolving};
/// use std::net::{IpAddr, Ipv4Addr};
///
/// /// Answers every name with 127.0.0.1, and no IPv6.
/// #[derive(Debug)]
/// struct Loopback;
///
/// impl Resolve for Loopback {
///     fn resolve(&self, _name: &str, family: Family) -> Resolving {
///         let answer = match family {
///             Family::V4 => vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
///             Family::V6 => vec![],
///         };
///         Box::pin(async move { Ok(answer) })
///     }
/// }
///
/// let connector = connect_by_list::Connector::builder().resolver(Loopback).build()?;
/// # Ok::<(), connect_by_list::ConfigError>(())
/// ```
pub trait Resolve: fmt::Debug + Send + Sync + 'static {
    /// Starts looking up `name`'s addresses of `family`.
    fn resolve(&self, name: &str, family: Family) -> Resolving;

    /// Whether each lookup holds a thread until it ends and cannot be cancelled, as
    /// `getaddrinfo` does. The connector then runs at most
    /// [`max_concurrent_lookups`](crate::Builder::max_concurrent_lookups) of them at once, and
    /// keeps a started lookup joinable by later connects until it answers, even when no connect
    /// waits for it any more (dropping its future would not stop it). Otherwise a lookup is
    /// dropped, and so cancelled, when no connect waits for it.
    ///
    /// Default is `false`; [`SystemResolver`] says `true`. A resolver that wraps
    /// [`SystemResolver`] (or another blocking call) should say `true` too.
    fn blocks_a_thread(&self) -> bool {
        false
    }

    /// Starts looking up `name`'s HTTPS records (RFC 9460, type 65), for connects whose target
    /// is HTTPS (Happy Eyeballs v3). `name` is already the query name (`_8443._https.host` for
    /// ports other than 443). An empty answer means the name has none.
    ///
    /// Default: an error of kind [`io::ErrorKind::Unsupported`], which the connector takes as
    /// "no records" at once, without waiting. [`SystemResolver`] cannot ask for them
    /// (`getaddrinfo` knows only addresses); `HickoryResolver` can.
    fn resolve_https(&self, name: &str) -> ResolvingHttps {
        let _ = name;
        Box::pin(std::future::ready(Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this resolver cannot ask for HTTPS records",
        ))))
    }
}

/// The operating system's resolver: `getaddrinfo` once per family, on Tokio's blocking pool.
///
/// It reads `/etc/hosts`, nsswitch and search domains like every other program on the machine.
/// A lookup cannot be interrupted: when the connect is dropped or times out, the blocking thread
/// finishes the lookup. A connector shares such a lookup between its connects and bounds how
/// many run at once ([`Builder::max_concurrent_lookups`](crate::Builder::max_concurrent_lookups)).
///
/// ```no_run
/// use connect_by_list::{Family, Resolve, SystemResolver};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// // The default resolver of every connector; asked directly, one family at a time:
/// let v6 = SystemResolver.resolve("localhost", Family::V6).await?;
/// let v4 = SystemResolver.resolve("localhost", Family::V4).await?;
/// println!("localhost: {v6:?} {v4:?}");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let name = name.to_owned();
        let lookup = tokio::task::spawn_blocking(move || getaddrinfo(&name, family));
        Box::pin(async move {
            match lookup.await {
                Ok(answer) => answer,
                Err(join) => Err(io::Error::other(format!("resolver thread failed: {join}"))),
            }
        })
    }

    fn blocks_a_thread(&self) -> bool {
        true
    }
}

/// glibc's code for "the host has no address of the requested family" (not in the libc crate).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const EAI_ADDRFAMILY: libc::c_int = -9;

#[cfg(unix)]
fn getaddrinfo(name: &str, family: Family) -> io::Result<Vec<IpAddr>> {
    use std::ffi::{CStr, CString};
    use std::net::{Ipv4Addr, Ipv6Addr};

    let c_name = CString::new(name).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "host name contains a NUL byte")
    })?;
    // SAFETY: an all-zero addrinfo is the documented way to start a hints struct.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = match family {
        Family::V4 => libc::AF_INET,
        Family::V6 => libc::AF_INET6,
    };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: c_name and hints outlive the call; list is written only on success.
    let status = unsafe { libc::getaddrinfo(c_name.as_ptr(), std::ptr::null(), &hints, &mut list) };
    if status != 0 {
        return match status {
            // "No address of this family" is an answer, not a failure: the other family may have some.
            #[cfg(any(target_os = "linux", target_os = "android"))]
            libc::EAI_NODATA => Ok(Vec::new()),
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            EAI_ADDRFAMILY => Ok(Vec::new()),
            libc::EAI_SYSTEM => Err(io::Error::last_os_error()),
            _ => {
                // SAFETY: gai_strerror returns a static NUL-terminated string.
                let text = unsafe { CStr::from_ptr(libc::gai_strerror(status)) };
                let kind = if status == libc::EAI_NONAME {
                    io::ErrorKind::NotFound
                } else {
                    io::ErrorKind::Other
                };
                Err(io::Error::new(
                    kind,
                    format!("{name}: {}", text.to_string_lossy()),
                ))
            }
        };
    }
    let mut addrs = Vec::new();
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: cursor walks the list getaddrinfo returned, which stays valid until freeaddrinfo.
        let entry = unsafe { &*cursor };
        if !entry.ai_addr.is_null() {
            match entry.ai_family {
                libc::AF_INET => {
                    // SAFETY: for AF_INET, ai_addr points to a sockaddr_in.
                    let sin = unsafe { &*(entry.ai_addr as *const libc::sockaddr_in) };
                    addrs.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        sin.sin_addr.s_addr,
                    ))));
                }
                libc::AF_INET6 => {
                    // SAFETY: for AF_INET6, ai_addr points to a sockaddr_in6.
                    let sin6 = unsafe { &*(entry.ai_addr as *const libc::sockaddr_in6) };
                    addrs.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                }
                _ => {}
            }
        }
        cursor = entry.ai_next;
    }
    // SAFETY: list came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    // glibc returns one entry per socket type even with a hint; keep the first of each address.
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|addr| seen.insert(*addr));
    Ok(addrs)
}

#[cfg(not(unix))]
fn getaddrinfo(name: &str, family: Family) -> io::Result<Vec<IpAddr>> {
    use std::net::ToSocketAddrs;
    // Without per-family hints, ask for everything and keep this family's answers.
    let mut addrs: Vec<IpAddr> = (name, 0)
        .to_socket_addrs()?
        .map(|addr| addr.ip())
        .filter(|ip| Family::of(*ip) == family)
        .collect();
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|addr| seen.insert(*addr));
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_resolves_from_the_hosts_file() {
        // Only IPv4: where /etc/hosts lacks "::1 localhost", an AAAA query would go to the
        // configured DNS server, and tests send nothing off the machine.
        let v4 = SystemResolver
            .resolve("localhost", Family::V4)
            .await
            .expect("localhost has an IPv4 address");
        assert!(v4.iter().all(|ip| ip.is_ipv4()), "{v4:?}");
        assert!(v4.iter().any(|ip| ip.is_loopback()), "{v4:?}");
    }
}
