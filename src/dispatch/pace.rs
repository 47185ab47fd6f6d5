//! Pacing: retry backoff with jitter, bounded whatever the provider says,
//! and the client-side rate limits, in requests and in messages.

use chrono::NaiveDateTime;
use std::time::{Duration, Instant};

/// The delay before attempt `attempts + 1`: `base` doubled per attempt
/// made, with "equal jitter" (half fixed, half random) so that retries of
/// many batches spread out; at least `after` when the provider said when to
/// come back; never more than `cap` (`DISPATCH_MAX_BACKOFF_SECS`).
pub fn backoff(base: Duration, attempts: i32, after: Option<Duration>, cap: Duration) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempts.clamp(1, 20).saturating_sub(1))
        .min(cap);
    let half = exp / 2;
    let jitter = half.mul_f64(rand::random::<f64>());
    let delay = half + jitter;
    match after {
        Some(after) => delay.max(after).min(cap),
        None => delay,
    }
}

/// `now + delay`, without overflow: a delay beyond what a timestamp can
/// hold gives the latest time it can.
pub fn after(now: NaiveDateTime, delay: Duration) -> NaiveDateTime {
    chrono::Duration::from_std(delay)
        .ok()
        .and_then(|delay| now.checked_add_signed(delay))
        .unwrap_or(NaiveDateTime::MAX)
}

/// One client-side limit: at most `per_second` units per second on
/// average (0 = no limit).
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    next: Instant,
}

impl RateLimit {
    pub fn new(per_second: f64) -> RateLimit {
        RateLimit {
            per_second: per_second.max(0.0),
            next: Instant::now(),
        }
    }

    /// How long to wait before spending `units` now, reserving their slot.
    pub fn reserve(&mut self, units: usize) -> Duration {
        if self.per_second <= 0.0 || !self.per_second.is_finite() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let start = self.next.max(now);
        self.next = start + Duration::from_secs_f64(units as f64 / self.per_second);
        start - now
    }
}

/// Both limits of a provider: requests per second and messages per second.
#[derive(Debug)]
pub struct Pace {
    requests: RateLimit,
    messages: RateLimit,
}

impl Pace {
    pub fn new(requests_per_second: f64, messages_per_second: f64) -> Pace {
        Pace {
            requests: RateLimit::new(requests_per_second),
            messages: RateLimit::new(messages_per_second),
        }
    }

    /// How long to wait before one request carrying `messages` messages.
    pub fn reserve(&mut self, messages: usize) -> Duration {
        let request = self.requests.reserve(1);
        let message = self.messages.reserve(messages);
        request.max(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_secs(900);

    #[test]
    fn backoff_doubles_within_its_jitter_and_honours_retry_after() {
        let base = Duration::from_secs(2);
        for attempts in 1..6 {
            let full = base * (1 << (attempts - 1));
            let delay = backoff(base, attempts, None, CAP);
            assert!(delay >= full / 2 && delay <= full, "{attempts}: {delay:?}");
        }
        assert!(backoff(base, 30, None, CAP) <= CAP);
        let told = Duration::from_secs(120);
        assert!(backoff(base, 1, Some(told), CAP) >= told);
    }

    #[test]
    fn a_providers_wait_never_exceeds_the_cap_nor_overflows_a_timestamp() {
        let huge = Duration::from_secs(100_000_000_000_000);
        let cap = Duration::from_secs(5);
        let delay = backoff(Duration::from_secs(2), 1, Some(huge), cap);
        assert_eq!(delay, cap);
        let now = crate::db::now();
        assert_eq!(after(now, delay), now + chrono::Duration::seconds(5));
        assert_eq!(after(now, huge), NaiveDateTime::MAX);
        assert_eq!(after(now, Duration::MAX), NaiveDateTime::MAX);
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

    #[test]
    fn one_message_requests_are_spaced_by_the_request_limit() {
        let mut pace = Pace::new(2.0, 1_000.0);
        assert_eq!(pace.reserve(1), Duration::ZERO);
        let second = pace.reserve(1);
        let third = pace.reserve(1);
        assert!(second > Duration::from_millis(490), "{second:?}");
        assert!(third > Duration::from_millis(990), "{third:?}");
        let mut messages = Pace::new(0.0, 100.0);
        messages.reserve(100);
        assert!(messages.reserve(1) > Duration::from_millis(990));
    }
}
