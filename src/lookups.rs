//! The layer between the race and the configured [`Resolve`]: shared lookups, a bounded pool for
//! resolvers that block a thread, and an optional answer cache.
//!
//! A connector makes one [`Lookups`] when it is built and its clones share it. It stands in for
//! the configured resolver (it is a [`Resolve`] itself), so the race asks it exactly as it would
//! ask the resolver.
//!
//! - A lookup of a (name, family) that is already out is joined, not started again.
//! - A resolver that blocks a thread ([`Resolve::blocks_a_thread`], as `getaddrinfo` does) runs at
//!   most `max_concurrent_lookups` lookups at once; the rest wait their turn in order (Tokio's
//!   semaphore is fair). Once started, such a lookup is driven to its end by a task of its own
//!   and stays joinable until it answers, whether any connect still waits for it or not: its
//!   thread cannot be stopped, and a second lookup of the same name would only hold another
//!   thread. A lookup still waiting for its turn is dropped with its last waiter.
//! - Any other resolver's lookup (hickory's) is cancelled when its last waiter goes.
//! - With a cache TTL, successful answers (empty ones included) are reused for that long.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{FutureExt, Shared, WeakShared};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::resolve::{Family, Resolve, Resolving};

/// The most answers the cache holds; beyond it, expired ones go first, then the oldest.
pub(crate) const CACHE_ENTRIES: usize = 1024;

/// One lookup's answer, as every waiter gets a copy of it.
type Answer = Result<Arc<[IpAddr]>, Arc<io::Error>>;
type Flight = Shared<Pin<Box<dyn Future<Output = Answer> + Send>>>;
/// A name, lowercased (DNS names are case-insensitive), and a family.
type Key = (Box<str>, Family);

/// Shared lookups over a resolver; see the module's documentation.
pub(crate) struct Lookups {
    resolver: Arc<dyn Resolve>,
    blocking: bool,
    pool: Arc<Semaphore>,
    max_concurrent: usize,
    table: Arc<Table>,
}

impl fmt::Debug for Lookups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookups")
            .field("resolver", &self.resolver)
            .field("max_concurrent", &self.max_concurrent)
            .field("cache_ttl", &self.table.cache_ttl)
            .finish_non_exhaustive()
    }
}

/// What the lookups of one connector share with the futures they made (which hold it weakly, so
/// that a lookup left running never keeps the table alive).
struct Table {
    in_flight: Mutex<HashMap<Key, InFlight>>,
    cache_ttl: Option<Duration>,
    cache: Mutex<HashMap<Key, Cached>>,
    next_id: AtomicU64,
}

/// A lookup that is out.
struct InFlight {
    /// Tells this lookup from a later one of the same key.
    id: u64,
    /// Joined while some waiter holds it.
    weak: WeakShared<Pin<Box<dyn Future<Output = Answer> + Send>>>,
    /// Set once a blocking lookup has started: it stays joinable until it ends.
    kept: Option<Flight>,
}

struct Cached {
    expires: Instant,
    addrs: Arc<[IpAddr]>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Lookups {
    /// The layer over `resolver`, running at most `max_concurrent` blocking lookups at once
    /// (between 1 and [`Semaphore::MAX_PERMITS`]) and caching answers for `cache_ttl`.
    pub(crate) fn new(
        resolver: Arc<dyn Resolve>,
        max_concurrent: usize,
        cache_ttl: Option<Duration>,
    ) -> Lookups {
        let max_concurrent = max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Lookups {
            blocking: resolver.blocks_a_thread(),
            resolver,
            pool: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            table: Arc::new(Table {
                in_flight: Mutex::new(HashMap::new()),
                cache_ttl,
                cache: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// The layer a connector with this configuration puts in front of its resolver.
    pub(crate) fn over(config: &crate::config::Config) -> Arc<dyn Resolve> {
        Arc::new(Lookups::new(
            config.resolver.clone(),
            config.max_concurrent_lookups,
            config.dns_cache_ttl,
        ))
    }

    /// The lookup's future: started when first polled, through the pool for a blocking resolver.
    fn flight(&self, name: &str, key: Key, id: u64) -> Flight {
        let resolver = self.resolver.clone();
        let table = Arc::downgrade(&self.table);
        let name = name.to_owned();
        let family = key.1;
        let future: Pin<Box<dyn Future<Output = Answer> + Send>> = if self.blocking {
            let pool = self.pool.clone();
            Box::pin(async move {
                // Waiting for a turn can be given up: dropped with the last waiter.
                let permit = pool.acquire_owned().await;
                let lookup = resolver.resolve(&name, family);
                let task_table = table.clone();
                let task_key = key.clone();
                // Started, it cannot be stopped: a task of its own drives it to its end, frees
                // its turn and takes it out of the table.
                // Also when the task is dropped unfinished, even unpolled (its runtime shut
                // down), so that no later connect joins a lookup that will never answer.
                let leave = Leave {
                    table: task_table.clone(),
                    key: task_key.clone(),
                    id,
                };
                let task = tokio::spawn(async move {
                    let _leave = leave;
                    let answer = lookup.await.map(Arc::from).map_err(Arc::new);
                    drop(permit);
                    if let Some(table) = task_table.upgrade() {
                        table.finish(&task_key, id, &answer);
                    }
                    answer
                });
                if let Some(table) = table.upgrade() {
                    table.keep(&key, id);
                }
                match task.await {
                    Ok(answer) => answer,
                    Err(failed) => Err(Arc::new(io::Error::other(format!(
                        "resolver task failed: {failed}"
                    )))),
                }
            })
        } else {
            Box::pin(async move {
                let answer = resolver
                    .resolve(&name, family)
                    .await
                    .map(Arc::from)
                    .map_err(Arc::new);
                if let Some(table) = table.upgrade() {
                    table.finish(&key, id, &answer);
                }
                answer
            })
        };
        future.shared()
    }
}

impl Resolve for Lookups {
    /// Straight to the resolver: HTTPS lookups are neither shared nor cached here (a resolver
    /// such as hickory caches them itself).
    fn resolve_https(&self, name: &str) -> crate::resolve::ResolvingHttps {
        self.resolver.resolve_https(name)
    }

    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let key: Key = (name.to_ascii_lowercase().into_boxed_str(), family);
        if let Some(addrs) = self.table.cached(&key) {
            return Box::pin(std::future::ready(Ok(addrs.to_vec())));
        }
        let mut in_flight = lock(&self.table.in_flight);
        let joined = in_flight
            .get(&key)
            .and_then(|entry| Some((entry.id, entry.weak.upgrade()?)));
        let (id, flight) = match joined {
            Some(joined) => joined,
            None => {
                let id = self.table.next_id.fetch_add(1, Ordering::Relaxed);
                let flight = self.flight(name, key.clone(), id);
                if let Some(weak) = flight.downgrade() {
                    let entry = InFlight {
                        id,
                        weak,
                        kept: None,
                    };
                    // A stale entry (its lookup dropped) is replaced, and dropped unlocked.
                    let stale = in_flight.insert(key.clone(), entry);
                    drop(in_flight);
                    drop(stale);
                }
                (id, flight)
            }
        };
        Box::pin(Waiter {
            flight,
            key,
            id,
            table: Arc::downgrade(&self.table),
        })
    }

    fn blocks_a_thread(&self) -> bool {
        self.blocking
    }
}

impl Table {
    fn cached(&self, key: &Key) -> Option<Arc<[IpAddr]>> {
        self.cache_ttl?;
        let cache = lock(&self.cache);
        let entry = cache.get(key)?;
        (Instant::now() < entry.expires).then(|| entry.addrs.clone())
    }

    /// A blocking lookup has started: it stays joinable until [`Table::finish`].
    fn keep(&self, key: &Key, id: u64) {
        let mut in_flight = lock(&self.in_flight);
        if let Some(entry) = in_flight.get_mut(key).filter(|entry| entry.id == id) {
            entry.kept = entry.weak.upgrade();
        }
    }

    /// Takes lookup `id` out of the table, if it is still there.
    fn leave(&self, key: &Key, id: u64) {
        let mut in_flight = lock(&self.in_flight);
        let done = match in_flight.get(key) {
            Some(entry) if entry.id == id => in_flight.remove(key),
            _ => None,
        };
        drop(in_flight);
        drop(done);
    }

    /// A lookup has answered: later connects start a new one (or use the cache).
    fn finish(&self, key: &Key, id: u64, answer: &Answer) {
        self.leave(key, id);
        if let (Some(ttl), Ok(addrs)) = (self.cache_ttl, answer) {
            let now = Instant::now();
            let Some(expires) = now.checked_add(ttl) else {
                return;
            };
            let mut cache = lock(&self.cache);
            if cache.len() >= CACHE_ENTRIES && !cache.contains_key(key) {
                cache.retain(|_, cached| cached.expires > now);
                if cache.len() >= CACHE_ENTRIES {
                    let oldest = cache
                        .iter()
                        .min_by_key(|(_, cached)| cached.expires)
                        .map(|(key, _)| key.clone());
                    if let Some(oldest) = oldest {
                        cache.remove(&oldest);
                    }
                }
            }
            let addrs = addrs.clone();
            cache.insert(key.clone(), Cached { expires, addrs });
        }
    }
}

/// Takes a lookup out of the table when dropped (a no-op once [`Table::finish`] has).
struct Leave {
    table: Weak<Table>,
    key: Key,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        if let Some(table) = self.table.upgrade() {
            table.leave(&self.key, self.id);
        }
    }
}

/// One connect's wait for a shared lookup. Dropped as the last waiter of a lookup that can still
/// be given up (not yet started on a thread), it takes the lookup out of the table.
struct Waiter {
    flight: Flight,
    key: Key,
    id: u64,
    table: Weak<Table>,
}

impl Future for Waiter {
    type Output = io::Result<Vec<IpAddr>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.flight.poll_unpin(cx).map(|answer| match answer {
            Ok(addrs) => Ok(addrs.to_vec()),
            Err(error) => Err(copy(&error)),
        })
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let Some(table) = self.table.upgrade() else {
            return;
        };
        let mut in_flight = lock(&table.in_flight);
        // New waiters join only under this lock, so the count cannot grow meanwhile.
        let last = self.flight.strong_count() == Some(1);
        let abandoned = match in_flight.get(&self.key) {
            Some(entry) if entry.id == self.id && entry.kept.is_none() && last => {
                in_flight.remove(&self.key)
            }
            _ => None,
        };
        drop(in_flight);
        drop(abandoned);
    }
}

/// A copy of a shared lookup's error for one waiter: the same kind and text, or the same OS error.
fn copy(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::atomic::AtomicUsize;

    /// Answers every IPv4 lookup with 127.0.0.1 at once; IPv6 ones never answer.
    #[derive(Debug, Default)]
    struct Script {
        blocks: bool,
        asked: AtomicUsize,
    }

    impl Resolve for Script {
        fn resolve(&self, _name: &str, family: Family) -> Resolving {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if family == Family::V6 {
                    std::future::pending::<()>().await;
                }
                Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
            })
        }

        fn blocks_a_thread(&self) -> bool {
            self.blocks
        }
    }

    fn layer(blocks: bool, max: usize, ttl: Option<Duration>) -> (Lookups, Arc<Script>) {
        let script = Arc::new(Script {
            blocks,
            ..Script::default()
        });
        let resolver: Arc<dyn Resolve> = script.clone();
        (Lookups::new(resolver, max, ttl), script)
    }

    /// Polls once: whether the lookup is still out.
    async fn pending(lookup: &mut Resolving) -> bool {
        std::future::poll_fn(|cx| Poll::Ready(lookup.as_mut().poll(cx).is_pending())).await
    }

    fn in_flight(lookups: &Lookups) -> usize {
        lock(&lookups.table.in_flight).len()
    }

    /// A lookup nobody waits for any more leaves the table: a cancellable one at once, a blocking
    /// one still waiting for its turn too (and its turn is not taken).
    #[tokio::test(start_paused = true)]
    async fn abandoned_lookups_leave_the_table() {
        let (lookups, script) = layer(false, 1, None);
        let mut first = lookups.resolve("a.test", Family::V6);
        let second = lookups.resolve("A.TEST", Family::V6);
        assert!(pending(&mut first).await);
        assert_eq!(in_flight(&lookups), 1);
        assert_eq!(
            script.asked.load(Ordering::SeqCst),
            1,
            "joined, not asked again"
        );
        drop(first);
        assert_eq!(in_flight(&lookups), 1, "one waiter is left");
        drop(second);
        assert_eq!(in_flight(&lookups), 0);

        let (lookups, script) = layer(true, 1, None);
        let mut running = lookups.resolve("a.test", Family::V6);
        let mut queued = lookups.resolve("b.test", Family::V6);
        assert!(pending(&mut running).await);
        assert!(pending(&mut queued).await);
        assert_eq!(in_flight(&lookups), 2);
        assert_eq!(
            script.asked.load(Ordering::SeqCst),
            1,
            "b.test waits its turn"
        );
        drop(queued);
        assert_eq!(in_flight(&lookups), 1);
        // Started, a blocking lookup stays joinable without waiters.
        drop(running);
        assert_eq!(in_flight(&lookups), 1);
        let mut joined = lookups.resolve("a.test", Family::V6);
        assert!(pending(&mut joined).await);
        assert_eq!(script.asked.load(Ordering::SeqCst), 1);
    }

    /// A started blocking lookup whose runtime shuts down (its task dropped unfinished) leaves
    /// the table: a connect on another runtime starts a new one instead of joining a lookup that
    /// will never answer (as with the `connect()` function's one connector, used from several
    /// runtimes).
    #[test]
    fn a_lookup_whose_runtime_ended_leaves_the_table() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let (lookups, script) = layer(true, 1, None);
        runtime().block_on(async {
            let mut lookup = lookups.resolve("a.test", Family::V6);
            assert!(pending(&mut lookup).await);
            drop(lookup);
            assert_eq!(in_flight(&lookups), 1, "started, so kept");
        });
        assert_eq!(in_flight(&lookups), 0);
        runtime().block_on(async {
            let mut lookup = lookups.resolve("a.test", Family::V6);
            assert!(pending(&mut lookup).await);
            assert_eq!(script.asked.load(Ordering::SeqCst), 2);
        });
    }

    /// Answered lookups leave the table, and the cache never holds more than its bound.
    #[tokio::test(start_paused = true)]
    async fn the_cache_is_bounded() {
        let (lookups, script) = layer(true, 8, Some(Duration::from_secs(60)));
        for i in 0..CACHE_ENTRIES + 10 {
            let answer = lookups.resolve(&format!("n{i}.test"), Family::V4).await;
            assert_eq!(answer.unwrap(), [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(in_flight(&lookups), 0);
        assert_eq!(lock(&lookups.table.cache).len(), CACHE_ENTRIES);
        let asked = script.asked.load(Ordering::SeqCst);
        assert_eq!(asked, CACHE_ENTRIES + 10);
        // The newest are still there; the oldest went first.
        let last = format!("n{}.test", CACHE_ENTRIES + 9);
        lookups.resolve(&last, Family::V4).await.unwrap();
        assert_eq!(script.asked.load(Ordering::SeqCst), asked);
        lookups.resolve("n0.test", Family::V4).await.unwrap();
        assert_eq!(script.asked.load(Ordering::SeqCst), asked + 1);
    }

    /// A failed lookup's error reaches every waiter with its kind, and is not cached.
    #[tokio::test]
    async fn errors_are_shared_and_not_cached() {
        #[derive(Debug)]
        struct Fails;
        impl Resolve for Fails {
            fn resolve(&self, _name: &str, _family: Family) -> Resolving {
                Box::pin(async {
                    tokio::task::yield_now().await;
                    Err(io::Error::new(io::ErrorKind::NotFound, "no such name"))
                })
            }
        }
        let lookups = Lookups::new(Arc::new(Fails), 1, Some(Duration::from_secs(60)));
        let (a, b) = tokio::join!(
            lookups.resolve("x.test", Family::V4),
            lookups.resolve("x.test", Family::V4)
        );
        for error in [a.unwrap_err(), b.unwrap_err()] {
            assert_eq!(error.kind(), io::ErrorKind::NotFound);
            assert_eq!(error.to_string(), "no such name");
        }
        assert!(lock(&lookups.table.cache).is_empty());
    }
}
