//! The waits providers ask for, read from their headers: `Retry-After`
//! (seconds or an HTTP date) and rate-limit reset headers (seconds, or a
//! Unix time). Parsing never overflows; how long the dispatcher really
//! waits is capped by `DISPATCH_MAX_BACKOFF_SECS`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Rate-limit reset headers, in the order they are consulted after
/// `Retry-After` (header names are case-insensitive).
const RESET_HEADERS: [&str; 2] = ["x-ratelimit-reset", "ratelimit-reset"];
/// A reset value above this is a Unix time, not a number of seconds to wait.
const EPOCH_THRESHOLD: f64 = 1e9;

/// The wait asked for by `Retry-After` (seconds or an HTTP date), else by
/// `X-RateLimit-Reset` / `RateLimit-Reset` (seconds to wait, or a Unix time
/// when the number is that large). A time already past gives zero.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    header_text(headers, RETRY_AFTER.as_str())
        .and_then(|value| parse_retry_after(value, now))
        .or_else(|| {
            RESET_HEADERS.iter().find_map(|name| {
                header_text(headers, name).and_then(|value| parse_reset(value, now))
            })
        })
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    match seconds(value) {
        Some(wait) => Some(wait),
        None => httpdate::parse_http_date(value)
            .ok()
            .map(|at| until(at, now)),
    }
}

fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    let wait = seconds(value)?;
    if wait.as_secs_f64() > EPOCH_THRESHOLD {
        UNIX_EPOCH.checked_add(wait).map(|at| until(at, now))
    } else {
        Some(wait)
    }
}

/// A non-negative number of seconds, possibly fractional.
fn seconds(value: &str) -> Option<Duration> {
    let number: f64 = value.parse().ok()?;
    Duration::try_from_secs_f64(number).ok()
}

fn until(at: SystemTime, now: SystemTime) -> Duration {
    at.duration_since(now).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    /// 2026-11-24T19:00:00Z.
    const NOW_EPOCH: u64 = 1_795_546_800;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW_EPOCH)
    }

    /// A header map of `pairs` (also used by the `http` tests).
    pub(in crate::dispatch::providers) fn headers(pairs: Pairs<'_>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.insert(*name, value);
            }
        }
        map
    }

    /// Header names and values of an answer.
    pub(in crate::dispatch::providers) type Pairs<'a> = &'a [(&'static str, &'a str)];

    #[test]
    fn the_wait_comes_from_retry_after_or_a_rate_limit_reset_header() {
        let date = |offset: i64| {
            let at = UNIX_EPOCH + Duration::from_secs(NOW_EPOCH.saturating_add_signed(offset));
            httpdate::fmt_http_date(at)
        };
        let epoch = |offset: i64| NOW_EPOCH.saturating_add_signed(offset).to_string();
        let wait = |secs: f64| Some(Duration::from_secs_f64(secs));
        let (future, past) = (date(90), date(-60));
        let (epoch_ahead, epoch_past) = (epoch(40), epoch(-40));
        // (answer headers, the wait they ask for)
        let cases: [(Pairs<'_>, Option<Duration>); 15] = [
            (&[], None),
            (&[("retry-after", "30")], wait(30.0)),
            (&[("retry-after", " 7 ")], wait(7.0)),
            (&[("retry-after", &future)], wait(90.0)),
            (&[("retry-after", &past)], wait(0.0)),
            (&[("retry-after", "soon")], None),
            (&[("retry-after", "-5")], None),
            (&[("x-ratelimit-reset", "12")], wait(12.0)),
            (&[("x-ratelimit-reset", &epoch_ahead)], wait(40.0)),
            (&[("x-ratelimit-reset", &epoch_past)], wait(0.0)),
            (&[("ratelimit-reset", "3")], wait(3.0)),
            (&[("ratelimit-reset", "1.5")], wait(1.5)),
            (&[("ratelimit-reset", "NaN")], None),
            (
                &[("retry-after", "5"), ("ratelimit-reset", "60")],
                wait(5.0),
            ),
            (
                &[("retry-after", "x"), ("x-ratelimit-reset", "9")],
                wait(9.0),
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(retry_after(&headers(pairs), now()), expected, "{pairs:?}");
        }
    }

    #[test]
    fn absurd_waits_parse_without_overflow() {
        let huge = headers(&[("retry-after", "100000000000000")]);
        assert_eq!(
            retry_after(&huge, now()),
            Some(Duration::from_secs(100_000_000_000_000))
        );
        let endless = headers(&[("retry-after", "1e300")]);
        assert_eq!(retry_after(&endless, now()), None);
        // A reset time past what a clock can hold is no hint at all: the
        // dispatcher pauses for DISPATCH_PAUSE_SECS.
        let far_reset = headers(&[("x-ratelimit-reset", "99999999999999999999")]);
        assert_eq!(retry_after(&far_reset, now()), None);
    }
}
