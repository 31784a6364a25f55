//! [`Timer`]: one thread that sleeps until the earliest armed time and calls back.
//!
//! A plain thread rather than a tokio task: the daemon's workers are blocking threads, the
//! callback journals (blocking SQLite), and a thread needs nothing from a runtime to fire in a
//! headless daemon with no client connected. Idle, it sleeps on a condition variable with
//! nothing to poll; it wakes when its earliest time comes, when the set of armed times changes,
//! and at least every [`MAX_SLEEP`] so a wall clock that jumps (NTP, suspend) is noticed.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::{Clock, until};

/// The longest the timer sleeps without looking at the clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// What the timer calls when `key`'s time `at` has come. It returns the key's next time, or
/// `None` to leave it unarmed; the return is ignored if the key was set or removed meanwhile.
/// It runs on the timer's thread: hand long work to another thread.
pub type OnFire<K> = Box<dyn FnMut(&K, DateTime<Utc>) -> Option<DateTime<Utc>> + Send>;

/// Armed times and the keys they belong to.
struct Armed<K> {
    by_time: BTreeSet<(DateTime<Utc>, K)>,
    by_key: HashMap<K, DateTime<Utc>>,
    /// The key whose callback is running, and whether it was set or removed meanwhile.
    firing: Option<(K, bool)>,
    stop: bool,
}

impl<K: Ord + Hash + Clone> Armed<K> {
    fn set(&mut self, key: K, at: Option<DateTime<Utc>>) {
        if let Some((firing, touched)) = &mut self.firing
            && *firing == key
        {
            *touched = true;
        }
        if let Some(old) = self.by_key.remove(&key) {
            self.by_time.remove(&(old, key.clone()));
        }
        if let Some(at) = at {
            self.by_time.insert((at, key.clone()));
            self.by_key.insert(key, at);
        }
    }
}

struct Shared<K> {
    armed: Mutex<Armed<K>>,
    changed: Condvar,
    clock: Arc<dyn Clock>,
}

impl<K> Shared<K> {
    fn lock(&self) -> MutexGuard<'_, Armed<K>> {
        self.armed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A thread that calls back when armed times come. Keys are schedule ids (any ordered,
/// hashable key). Stopped and joined on drop.
pub struct Timer<K: Ord + Hash + Clone + Send + 'static> {
    shared: Arc<Shared<K>>,
    thread: Option<JoinHandle<()>>,
}

impl<K: Ord + Hash + Clone + Send + 'static> Timer<K> {
    /// Starts the timer's thread, reading time from `clock`.
    pub fn start(clock: Arc<dyn Clock>, on_fire: OnFire<K>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            armed: Mutex::new(Armed {
                by_time: BTreeSet::new(),
                by_key: HashMap::new(),
                firing: None,
                stop: false,
            }),
            changed: Condvar::new(),
            clock,
        });
        let inner = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("kernos-schedule-timer".into())
            .spawn(move || run(&inner, on_fire))?;
        Ok(Timer {
            shared,
            thread: Some(thread),
        })
    }

    /// Arms `key` for `at`, replacing its earlier time; `None` disarms it (a paused or removed
    /// schedule). Wakes the thread so an earlier time is not slept past.
    pub fn set(&self, key: K, at: Option<DateTime<Utc>>) {
        self.shared.lock().set(key, at);
        self.shared.changed.notify_one();
    }

    /// Disarms `key`.
    pub fn remove(&self, key: &K) {
        self.set(key.clone(), None);
    }

    /// When `key` is armed for.
    pub fn armed_at(&self, key: &K) -> Option<DateTime<Utc>> {
        self.shared.lock().by_key.get(key).copied()
    }

    /// How many keys are armed.
    pub fn len(&self) -> usize {
        self.shared.lock().by_key.len()
    }

    /// Whether no key is armed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the thread read the clock again now (after a [`crate::ManualClock`] moved).
    pub fn wake(&self) {
        let _armed = self.shared.lock();
        self.shared.changed.notify_one();
    }
}

impl<K: Ord + Hash + Clone + Send + 'static> Drop for Timer<K> {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The timer thread: fire everything whose time has come, then sleep until the earliest.
fn run<K: Ord + Hash + Clone>(shared: &Shared<K>, mut on_fire: OnFire<K>) {
    let mut armed = shared.lock();
    loop {
        if armed.stop {
            return;
        }
        let now = shared.clock.now();
        let Some((at, key)) = armed.by_time.first().cloned() else {
            armed = shared
                .changed
                .wait_timeout(armed, MAX_SLEEP)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        };
        if at > now {
            let sleep = until(now, at).min(MAX_SLEEP);
            armed = shared
                .changed
                .wait_timeout(armed, sleep)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        armed.set(key.clone(), None);
        armed.firing = Some((key.clone(), false));
        drop(armed);
        // A panicking callback must not stop every schedule: that key stays unarmed, the rest fire.
        let next = catch_unwind(AssertUnwindSafe(|| on_fire(&key, at)))
            .ok()
            .flatten();
        armed = shared.lock();
        let touched = armed.firing.take().is_some_and(|(_, touched)| touched);
        if !touched && let Some(next) = next {
            armed.set(key, Some(next));
        }
    }
}
