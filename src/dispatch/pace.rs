//! Pacing: retry backoff with jitter, and the client-side rate limit.

use std::time::{Duration, Instant};

/// The delay before attempt `attempts + 1`: `base` doubled per attempt
/// made, capped at 15 minutes, with "equal jitter" (half fixed, half
/// random) so that retries of many batches spread out; at least `after`
/// when the provider said when to come back.
pub fn backoff(base: Duration, attempts: i32, after: Option<Duration>) -> Duration {
    use rand::Rng;
    let cap = Duration::from_secs(15 * 60);
    let exp = base
        .saturating_mul(1u32 << attempts.clamp(1, 20).saturating_sub(1))
        .min(cap);
    let half = exp / 2;
    let jitter = half.mul_f64(rand::thread_rng().gen::<f64>());
    let delay = half + jitter;
    match after {
        Some(after) => delay.max(after),
        None => delay,
    }
}

/// A client-side rate limit: at most `per_second` messages per second on
/// average (0 = no limit).
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    next: Instant,
}

impl RateLimit {
    pub fn new(per_second: f64) -> RateLimit {
        RateLimit {
            per_second,
            next: Instant::now(),
        }
    }

    /// How long to wait before sending `messages` now, reserving their slot.
    pub fn reserve(&mut self, messages: usize) -> Duration {
        if self.per_second <= 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let start = self.next.max(now);
        self.next = start + Duration::from_secs_f64(messages as f64 / self.per_second);
        start - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_honours_retry_after() {
        let base = Duration::from_secs(2);
        for attempts in 1..6 {
            let full = base * (1 << (attempts - 1));
            let delay = backoff(base, attempts, None);
            assert!(delay >= full / 2 && delay <= full, "{attempts}: {delay:?}");
        }
        assert!(backoff(base, 30, None) <= Duration::from_secs(15 * 60));
        let told = Duration::from_secs(120);
        assert!(backoff(base, 1, Some(told)) >= told);
    }

    #[test]
    fn the_rate_limit_spaces_batches_by_their_size() {
        let mut limit = RateLimit::new(100.0);
        assert_eq!(limit.reserve(50), Duration::ZERO);
        let wait = limit.reserve(50);
        assert!(
            wait > Duration::from_millis(450) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert_eq!(RateLimit::new(0.0).reserve(1_000_000), Duration::ZERO);
    }
}
