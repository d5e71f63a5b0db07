//! Keyed GCRA limiters (governor) where each key may have its own quota: keys that share a
//! quota share one keyed limiter, so a thousand schools on three plans are three maps of
//! small entries. Keys whose bucket is full again are swept, and empty maps dropped, so
//! idle schools, people and addresses cost nothing.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Sustained rate per second (or per minute) and burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    pub per: Per,
    pub count: u32,
    pub burst: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Per {
    Second,
    Minute,
}

impl Rate {
    pub fn per_second(count: u32, burst: u32) -> Self {
        Self {
            per: Per::Second,
            count: count.max(1),
            burst: burst.max(1),
        }
    }

    pub fn per_minute(count: u32, burst: u32) -> Self {
        Self {
            per: Per::Minute,
            count: count.max(1),
            burst: burst.max(1),
        }
    }

    fn quota(self) -> Quota {
        let count = NonZeroU32::new(self.count).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        match self.per {
            Per::Second => Quota::per_second(count),
            Per::Minute => Quota::per_minute(count),
        }
        .allow_burst(burst)
    }

    /// The window of `RateLimit-Policy` (`<count>;w=<seconds>`).
    pub fn window_secs(self) -> u32 {
        match self.per {
            Per::Second => 1,
            Per::Minute => 60,
        }
    }
}

/// Why a request was refused: how long until one more would be let through.
#[derive(Clone, Copy, Debug)]
pub struct Denied {
    pub wait: Duration,
    pub rate: Rate,
}

pub struct KeyedLimits<K: Hash + Eq + Clone> {
    groups: RwLock<HashMap<Rate, Arc<DefaultKeyedRateLimiter<K>>>>,
}

impl<K: Hash + Eq + Clone> std::fmt::Debug for KeyedLimits<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimits")
            .field("keys", &self.len())
            .finish()
    }
}

impl<K: Hash + Eq + Clone> Default for KeyedLimits<K> {
    fn default() -> Self {
        Self {
            groups: RwLock::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> KeyedLimits<K> {
    fn group(&self, rate: Rate) -> Arc<DefaultKeyedRateLimiter<K>> {
        if let Some(g) = self.groups.read().expect("not poisoned").get(&rate) {
            return Arc::clone(g);
        }
        let mut groups = self.groups.write().expect("not poisoned");
        Arc::clone(
            groups
                .entry(rate)
                .or_insert_with(|| Arc::new(RateLimiter::keyed(rate.quota()))),
        )
    }

    /// Takes one cell of `key`'s bucket at `rate`, or says how long to wait.
    pub fn check(&self, key: &K, rate: Rate) -> Result<(), Denied> {
        self.group(rate).check_key(key).map_err(|n| Denied {
            wait: n.wait_time_from(DefaultClock::default().now()),
            rate,
        })
    }

    /// Forgets keys whose buckets are full again and quotas no key uses any more.
    pub fn sweep(&self) {
        let mut groups = self.groups.write().expect("not poisoned");
        groups.retain(|_, g| {
            g.retain_recent();
            g.shrink_to_fit();
            !g.is_empty()
        });
    }

    /// Keys tracked right now.
    pub fn len(&self) -> usize {
        self.groups
            .read()
            .expect("not poisoned")
            .values()
            .map(|g| g.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_has_its_own_bucket_at_its_own_rate() {
        let limits = KeyedLimits::<u64>::default();
        let slow = Rate::per_second(1, 3);
        let fast = Rate::per_second(100, 10);
        for _ in 0..3 {
            assert!(limits.check(&1, slow).is_ok());
        }
        let denied = limits.check(&1, slow).unwrap_err();
        assert!(denied.wait > Duration::ZERO && denied.wait <= Duration::from_secs(1));
        for _ in 0..10 {
            assert!(limits.check(&2, fast).is_ok());
        }
        assert!(limits.check(&3, slow).is_ok(), "another key is untouched");
    }

    #[test]
    fn a_thousand_idle_keys_are_swept_away() {
        let limits = KeyedLimits::<u64>::default();
        // Refills in a millisecond, so every key is idle again after a short sleep.
        let rate = Rate::per_second(100_000, 2);
        for k in 0..1000 {
            limits.check(&k, rate).unwrap();
        }
        assert_eq!(limits.len(), 1000);
        std::thread::sleep(Duration::from_millis(20));
        limits.sweep();
        assert_eq!(limits.len(), 0);
        assert!(limits.groups.read().unwrap().is_empty());
    }
}
