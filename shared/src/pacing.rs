//! Pacing calls to a buyer on the rate limit its answers announce (Lofty's `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining`, `X-RateLimit-Reset`), so that a burst of deliveries waits for the window to
//! reset instead of running into 429s.
//!
//! [`RatePacer`] remembers, per destination, the last window it heard of, in memory, per process: on AWS
//! each warm dispatch instance paces itself, and a buyer's 429 (waited out without using an attempt, see
//! [`crate::lifecycle::attempt_outcome`]) covers the calls of other instances. Before a delivery calls the
//! buyer it asks for as many calls as the delivery plans ([`RatePacer::reserve`]); when the window has no
//! room, dispatch puts the job back until the window resets, without claiming the attempt.
//!
//! Rules, as pure functions of the remembered window and the time:
//! - Nothing heard yet: one delivery goes first, and the answer it gets teaches the window; the others
//!   wait [`PROBE_WAIT`] (a burst's first second does not run into the limit blind). When that delivery
//!   learns nothing (no answer, no headers) within the wait, the next one goes.
//! - A window whose reset has passed is a fresh one with the whole limit (when the limit was told), its
//!   end unknown until an answer in it says; a fresh window without a known limit is not paced.
//! - Room for the calls: they are taken from it; no room: wait until the reset, or, when the window's end is
//!   not known yet (its first answers are still on their way), [`PROBE_WAIT`].
//! - A delivery asking for more calls than the limit goes when the window is whole (else it never could).
//! - An answer's remaining count lowers what is remembered of the same window (other callers used some);
//!   it never raises it (calls taken here may not have reached the buyer yet). An answer announcing a later
//!   window than the remembered one starts it with its own count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A buyer's rate-limit window as one answer announced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls per window (`X-RateLimit-Limit`), when told.
    pub limit: Option<u32>,
    /// Calls left in the window after this one (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// When the window resets (`X-RateLimit-Reset`).
    pub resets_at: DateTime<Utc>,
}

/// How long a delivery waits when the window has no room and its end is not known yet.
pub const PROBE_WAIT: Duration = Duration::from_secs(1);

/// The longest a delivery is put back for a window (a buyer announcing a reset further away is not
/// believed beyond it; its 429 still holds calls back).
pub const MAX_PACE_WAIT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    limit: Option<u32>,
    remaining: u32,
    /// `None`: a fresh window whose end no answer has told yet.
    resets_at: Option<DateTime<Utc>>,
    /// Nothing is known yet: one delivery went to find out, until `resets_at`.
    probe: bool,
}

/// What is remembered of each destination's window (see the module docs).
#[derive(Debug, Default)]
pub struct RatePacer {
    windows: Mutex<HashMap<String, Window>>,
}

impl RatePacer {
    pub fn new() -> Self {
        RatePacer::default()
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Take `calls` calls of `destination`'s window, or say how long to wait for room.
    pub fn reserve(
        &self,
        destination: &str,
        calls: u32,
        now: DateTime<Utc>,
    ) -> Result<(), Duration> {
        let mut windows = self.windows();
        let Some(window) = windows.get_mut(destination) else {
            return self_probe(&mut windows, destination, now);
        };
        if window.probe && window.resets_at.is_some_and(|at| at <= now) {
            // The probe learnt nothing in time: let the next one go.
            windows.remove(destination);
            return self_probe(&mut windows, destination, now);
        }
        if window.resets_at.is_some_and(|at| at <= now) {
            match window.limit {
                Some(limit) => {
                    *window = Window {
                        limit: Some(limit),
                        remaining: limit,
                        resets_at: None,
                        probe: false,
                    }
                }
                None => {
                    windows.remove(destination);
                    return self_probe(&mut windows, destination, now);
                }
            }
        }
        let whole = window.limit.is_some_and(|limit| window.remaining >= limit);
        if window.remaining >= calls || (whole && window.remaining > 0) {
            window.remaining = window.remaining.saturating_sub(calls);
            return Ok(());
        }
        if window.probe {
            return Err(PROBE_WAIT);
        }
        Err(match window.resets_at {
            Some(at) => (at - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(100), MAX_PACE_WAIT),
            None => PROBE_WAIT,
        })
    }

    /// Remember what an answer of `destination` announced.
    pub fn observe(&self, destination: &str, announced: RateLimit) {
        let mut windows = self.windows();
        let fresh = Window {
            limit: announced.limit,
            remaining: announced.remaining,
            resets_at: Some(announced.resets_at),
            probe: false,
        };
        match windows.get_mut(destination) {
            None => {
                windows.insert(destination.to_owned(), fresh);
            }
            Some(window) if window.probe => *window = fresh,
            // A later window than the one remembered: its own count.
            Some(window) if window.resets_at.is_some_and(|at| announced.resets_at > at) => {
                *window = fresh;
            }
            Some(window) => {
                window.remaining = window.remaining.min(announced.remaining);
                window.limit = announced.limit.or(window.limit);
                if window.resets_at.is_none() {
                    window.resets_at = Some(announced.resets_at);
                }
            }
        }
    }
}

/// Nothing is known of `destination`'s window: this delivery goes to find out; others wait.
fn self_probe(
    windows: &mut HashMap<String, Window>,
    destination: &str,
    now: DateTime<Utc>,
) -> Result<(), Duration> {
    let until = now + chrono::Duration::from_std(PROBE_WAIT).unwrap_or_default();
    windows.insert(
        destination.to_owned(),
        Window {
            limit: None,
            remaining: 0,
            resets_at: Some(until),
            probe: true,
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("a time")
    }

    fn told(remaining: u32, resets: i64) -> RateLimit {
        RateLimit {
            limit: Some(10),
            remaining,
            resets_at: at(resets),
        }
    }

    #[test]
    fn nothing_heard_goes_and_the_first_answer_teaches_the_window() {
        let pacer = RatePacer::new();
        assert_eq!(pacer.reserve("lofty", 2, at(0)), Ok(()));
        // The others wait for what the first one learns...
        assert_eq!(pacer.reserve("lofty", 2, at(0)), Err(PROBE_WAIT));
        pacer.observe("lofty", told(3, 60));
        assert_eq!(pacer.reserve("lofty", 2, at(1)), Ok(()));
        // One call left, two wanted: wait for the reset.
        assert_eq!(
            pacer.reserve("lofty", 2, at(10)),
            Err(Duration::from_secs(50))
        );
        assert_eq!(pacer.reserve("lofty", 1, at(10)), Ok(()));
        assert_eq!(
            pacer.reserve("lofty", 1, at(10)),
            Err(Duration::from_secs(50))
        );
        // Other destinations have windows of their own.
        assert_eq!(pacer.reserve("other", 5, at(10)), Ok(()));
        // A probe that learns nothing in time lets the next delivery go.
        assert_eq!(pacer.reserve("other", 5, at(10)), Err(PROBE_WAIT));
        assert_eq!(pacer.reserve("other", 5, at(11)), Ok(()));
        assert_eq!(pacer.reserve("other", 5, at(11)), Err(PROBE_WAIT));
    }

    #[test]
    fn a_reset_window_is_whole_until_its_answers_tell_its_end() {
        let pacer = RatePacer::new();
        pacer.observe("lofty", told(0, 60));
        assert_eq!(
            pacer.reserve("lofty", 2, at(30)),
            Err(Duration::from_secs(30))
        );
        // After the reset: the whole limit, five deliveries of two calls each.
        for _ in 0..5 {
            assert_eq!(pacer.reserve("lofty", 2, at(61)), Ok(()));
        }
        // The sixth waits a moment for the first answers of the new window...
        assert_eq!(pacer.reserve("lofty", 2, at(61)), Err(PROBE_WAIT));
        // ...which cannot raise the count the calls on their way have taken, but tell its end.
        pacer.observe("lofty", told(9, 121));
        assert_eq!(
            pacer.reserve("lofty", 2, at(62)),
            Err(Duration::from_secs(59))
        );
    }

    #[test]
    fn answers_lower_the_count_and_a_later_window_replaces_it() {
        let pacer = RatePacer::new();
        pacer.observe("lofty", told(8, 60));
        // Another caller used the window: the lower count holds.
        pacer.observe("lofty", told(1, 60));
        assert_eq!(
            pacer.reserve("lofty", 2, at(5)),
            Err(Duration::from_secs(55))
        );
        pacer.observe("lofty", told(9, 120));
        assert_eq!(pacer.reserve("lofty", 2, at(65)), Ok(()));
    }

    #[test]
    fn a_delivery_larger_than_the_limit_goes_on_a_whole_window() {
        let pacer = RatePacer::new();
        pacer.observe(
            "lofty",
            RateLimit {
                limit: Some(1),
                remaining: 0,
                resets_at: at(60),
            },
        );
        assert!(pacer.reserve("lofty", 2, at(10)).is_err());
        assert_eq!(pacer.reserve("lofty", 2, at(60)), Ok(()));
        assert_eq!(pacer.reserve("lofty", 2, at(60)), Err(PROBE_WAIT));
    }

    #[test]
    fn without_a_limit_a_passed_reset_forgets_the_window() {
        let pacer = RatePacer::new();
        pacer.observe(
            "lofty",
            RateLimit {
                limit: None,
                remaining: 0,
                resets_at: at(60),
            },
        );
        assert!(pacer.reserve("lofty", 1, at(10)).is_err());
        // Past the reset nothing is known again: one goes to find out.
        assert_eq!(pacer.reserve("lofty", 1, at(60)), Ok(()));
        assert_eq!(pacer.reserve("lofty", 1, at(60)), Err(PROBE_WAIT));
        // A reset announced days away is not waited for beyond the cap.
        pacer.observe("far", told(0, 3 * 86_400));
        assert_eq!(pacer.reserve("far", 1, at(0)), Err(MAX_PACE_WAIT));
    }
}
