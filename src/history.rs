//! What earlier races to the same targets learned: which pair won and how fast (RFC 8305 §5).
//!
//! The next connect to the same targets tries the last winner first, still racing the rest, so a
//! host whose IPv6 is broken costs one attempt delay once, not at every connect. An entry expires
//! a fixed time after its winner first took the lead, however often it wins since, so that a
//! family that recovered gets its turn at the front again.

use std::collections::hash_map::{HashMap, RandomState};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::plan::Pair;
use crate::target::{Host, Target};

/// RFC 8305 §5 recommends no attempt delay under 100 ms, even when history says the path is fast.
const MIN_LEARNED_DELAY: Duration = Duration::from_millis(100);

/// What one target list's last race taught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lesson {
    /// The pair that won.
    pub(crate) winner: Pair,
    /// How long its connect took.
    pub(crate) connect_time: Duration,
    /// When this pair first won (expiry counts from here).
    since: Instant,
    /// When it last won (the least recently used entry goes first when full).
    used: Instant,
}

/// A bounded, expiring map from target lists to lessons, shared by a connector's clones.
///
/// Keyed by a keyed hash of the target list, so an entry costs the same whatever the list's
/// length. Two lists that collide (odds of 2^-64 per pair, with a key unknown outside the
/// process) would only share a favourite, which is tried first only if it is in the plan.
#[derive(Debug)]
pub(crate) struct History {
    lessons: Mutex<HashMap<Key, Lesson, BuildHasherDefault<KeyHasher>>>,
    hasher: RandomState,
    capacity: usize,
    ttl: Duration,
}

impl History {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> History {
        History {
            lessons: Mutex::new(HashMap::default()),
            hasher: RandomState::new(),
            capacity,
            ttl,
        }
    }

    /// The key of a target list: the sum of a keyed SipHash of each target, so that nobody can
    /// choose names whose keys collide, and the same targets in another order (or the same
    /// addresses listed by different callers) share what was learned. Computed once per connect.
    pub(crate) fn key(&self, targets: &[Target]) -> Key {
        let sum = targets.iter().fold(0u64, |sum, target| {
            // Each target in a few whole-number writes, rather than the derived `Hash`'s many
            // small ones: this runs on every connect. Every field is in it, and names end with a
            // byte no name has, so that different targets give different input.
            let mut hasher = self.hasher.build_hasher();
            match target.host() {
                Host::Ip(IpAddr::V4(ip)) => hasher.write_u64(u64::from(ip.to_bits()) << 8 | 4),
                Host::Ip(IpAddr::V6(ip)) => {
                    hasher.write_u8(6);
                    hasher.write_u128(ip.to_bits());
                }
                Host::Name(name) => {
                    hasher.write(name.as_bytes());
                    hasher.write_u8(0xff);
                }
            }
            hasher.write_u64(u64::from(target.port()) << 32 | u64::from(target.scope_id()));
            sum.wrapping_add(hasher.finish())
        });
        Key(sum ^ targets.len() as u64)
    }

    /// The lesson for these targets, unless it expired (then it is forgotten).
    pub(crate) fn recall(&self, key: Key, now: Instant) -> Option<Lesson> {
        let mut lessons = self.lessons.lock().ok()?;
        let lesson = *lessons.get(&key)?;
        if now.saturating_duration_since(lesson.since) >= self.ttl {
            lessons.remove(&key);
            return None;
        }
        Some(lesson)
    }

    /// Records a race's winner.
    pub(crate) fn learn(&self, key: Key, winner: Pair, connect_time: Duration, now: Instant) {
        let Ok(mut lessons) = self.lessons.lock() else {
            return;
        };
        if let Some(lesson) = lessons.get_mut(&key) {
            if lesson.winner != winner {
                lesson.winner = winner;
                lesson.since = now;
            }
            lesson.connect_time = connect_time;
            lesson.used = now;
            return;
        }
        if lessons.len() >= self.capacity {
            let oldest = lessons
                .iter()
                .min_by_key(|(_, lesson)| lesson.used)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                lessons.remove(&oldest);
            }
        }
        lessons.insert(
            key,
            Lesson {
                winner,
                connect_time,
                since: now,
                used: now,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lessons
            .lock()
            .map(|lessons| lessons.len())
            .unwrap_or(0)
    }
}

/// A target list's key in the history: see [`History::key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key(u64);

impl Key {
    /// The key of the same targets raced through a handshake (TLS, say): kept apart from the
    /// TCP-only one, because a path can carry TCP and not TLS (a path-MTU blackhole), so a
    /// TCP winner is no lesson for a TLS race.
    pub(crate) fn through_handshake(self) -> Key {
        Key(self.0 ^ 0x9e37_79b9_7f4a_7c15)
    }
}

/// Hashes a [`Key`] to itself: it is already the output of a keyed hash, so hashing it again
/// for the map would only cost time.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `Key`); anything else still gets a deterministic mix.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl Lesson {
    /// The attempt delay for a race that starts with this lesson's winner: twice its last connect
    /// time, so a winner that has become slow or dead is given up on sooner, but never under
    /// 100 ms (RFC 8305 §5's recommended minimum; the configured delay if that is lower) nor
    /// over the configured delay.
    pub(crate) fn attempt_delay(&self, configured: Duration) -> Duration {
        // The configured delay is at least RFC 8305's 10 ms minimum (`build()` checks it).
        let floor = MIN_LEARNED_DELAY.min(configured);
        self.connect_time
            .saturating_mul(2)
            .clamp(floor, configured.max(floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(list: &[&str]) -> Vec<Target> {
        list.iter()
            .map(|t| t.parse().expect("test target"))
            .collect()
    }

    fn pair(remote: &str) -> Pair {
        Pair {
            local: None,
            remote: remote.parse().expect("test address"),
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn a_lesson_expires_counted_from_when_its_winner_took_the_lead() {
        let history = History::new(8, 600 * MS);
        let key = targets(&["db.example:5432"]);
        let start = Instant::now();
        history.learn(history.key(&key), pair("192.0.2.1:5432"), 5 * MS, start);
        // Winning again does not push the expiry back...
        history.learn(
            history.key(&key),
            pair("192.0.2.1:5432"),
            5 * MS,
            start + 500 * MS,
        );
        assert!(history
            .recall(history.key(&key), start + 599 * MS)
            .is_some());
        assert!(history
            .recall(history.key(&key), start + 600 * MS)
            .is_none());
        // ...and an expired lesson is forgotten.
        assert_eq!(history.len(), 0);
        // A different winner starts a new lead.
        history.learn(
            history.key(&key),
            pair("192.0.2.1:5432"),
            5 * MS,
            start + 700 * MS,
        );
        history.learn(
            history.key(&key),
            pair("[2001:db8::1]:5432"),
            5 * MS,
            start + 900 * MS,
        );
        assert_eq!(
            history
                .recall(history.key(&key), start + 1400 * MS)
                .map(|l| l.winner),
            Some(pair("[2001:db8::1]:5432"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn history_is_bounded_and_drops_the_least_recently_used() {
        let history = History::new(2, Duration::from_secs(60));
        let now = Instant::now();
        let (a, b, c) = (
            targets(&["a.example:1"]),
            targets(&["b.example:1"]),
            targets(&["c.example:1"]),
        );
        history.learn(history.key(&a), pair("192.0.2.1:1"), MS, now);
        history.learn(history.key(&b), pair("192.0.2.2:1"), MS, now + MS);
        history.learn(history.key(&a), pair("192.0.2.1:1"), MS, now + 2 * MS);
        history.learn(history.key(&c), pair("192.0.2.3:1"), MS, now + 3 * MS);
        assert_eq!(history.len(), 2);
        assert!(history.recall(history.key(&b), now + 4 * MS).is_none());
        assert!(history.recall(history.key(&a), now + 4 * MS).is_some());
        assert!(history.recall(history.key(&c), now + 4 * MS).is_some());
    }

    /// RFC 8305 §5: a learned attempt delay stays within 100 ms and the configured delay.
    #[test]
    fn the_learned_delay_is_clamped() {
        let lesson = |connect_time| Lesson {
            winner: pair("192.0.2.1:1"),
            connect_time,
            since: Instant::now(),
            used: Instant::now(),
        };
        let configured = 250 * MS;
        assert_eq!(lesson(MS).attempt_delay(configured), 100 * MS);
        assert_eq!(lesson(80 * MS).attempt_delay(configured), 160 * MS);
        assert_eq!(lesson(900 * MS).attempt_delay(configured), 250 * MS);
        assert_eq!(lesson(MS).attempt_delay(30 * MS), 30 * MS);
        assert_eq!(lesson(Duration::ZERO).attempt_delay(10 * MS), 10 * MS);
    }

    /// The key is the target list's, whatever its order; different lists get different keys.
    #[test]
    fn the_key_does_not_depend_on_target_order() {
        let history = History::new(8, 600 * MS);
        let forward = history.key(&targets(&[
            "db1.example:5432",
            "[2001:db8::1]:5432",
            "192.0.2.1:5432",
        ]));
        let backward = history.key(&targets(&[
            "192.0.2.1:5432",
            "[2001:db8::1]:5432",
            "db1.example:5432",
        ]));
        assert_eq!(forward, backward);
        let others = [
            vec!["db1.example:5432", "[2001:db8::1]:5432"],
            vec!["db1.example:5433", "[2001:db8::1]:5432", "192.0.2.1:5432"],
            vec![
                "db1.example:5432",
                "[2001:db8::1]:5432",
                "192.0.2.1:5432",
                "192.0.2.1:5432",
            ],
        ];
        for other in others {
            assert_ne!(history.key(&targets(&other)), forward, "{other:?}");
        }
    }
}
