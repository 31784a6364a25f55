//! A reading of the whole machine reused for a short while, so monitors due at about the same
//! time share one walk of `/proc` instead of each making its own.

use std::time::{Duration, Instant};

use crate::error::ProbeError;

/// A value read at most `max_age` ago, read again when older.
#[derive(Debug)]
pub struct Snapshot<T> {
    max_age: Duration,
    taken: Option<(Instant, T)>,
}

impl<T> Snapshot<T> {
    /// An empty snapshot whose readings are reused for `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Snapshot {
            max_age,
            taken: None,
        }
    }

    /// The value as of at most `max_age` before `now`, calling `read` when there is none.
    pub fn get(
        &mut self,
        now: Instant,
        read: impl FnOnce() -> Result<T, ProbeError>,
    ) -> Result<&T, ProbeError> {
        let fresh = self
            .taken
            .as_ref()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) < self.max_age);
        if !fresh {
            self.taken = None;
        }
        let (_, v) = match self.taken.take() {
            Some(t) => self.taken.insert(t),
            None => self.taken.insert((now, read()?)),
        };
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_reused_until_it_is_too_old() {
        let t0 = Instant::now();
        let mut reads = 0;
        let mut s = Snapshot::new(Duration::from_millis(250));
        let mut get = |at: Instant| {
            *s.get(at, || {
                reads += 1;
                Ok(reads)
            })
            .unwrap()
        };
        assert_eq!(get(t0), 1);
        assert_eq!(get(t0 + Duration::from_millis(249)), 1);
        assert_eq!(get(t0 + Duration::from_millis(250)), 2);
    }
}
