//! Per-key request rate (a token bucket, announced in the IETF `RateLimit`
//! and `RateLimit-Policy` fields) and per-account uploads in flight. Both
//! are counted in this process.

use super::{ApiError, ProblemType};
use crate::locked;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The policy's name in the `RateLimit` fields.
const POLICY: &str = "per-key";

/// Requests per minute per key, as a token bucket per key.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Where a key's bucket stood after a request: what the `RateLimit`
/// fields of its answer say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    /// The quota per window (`q`).
    pub quota: u32,
    /// Requests left now (`r`).
    pub remaining: u32,
    /// Seconds until the bucket is full again, or (refused) until the next
    /// request is allowed (`t`).
    pub reset_secs: u64,
    /// Whether this request was refused.
    pub refused: bool,
}

impl RateLimiter {
    /// A limiter of `per_minute` requests per key.
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `key_id`'s bucket, if it has one.
    pub fn take(&self, key_id: &str) -> RateState {
        self.take_at(key_id, Instant::now())
    }

    fn take_at(&self, key_id: &str, now: Instant) -> RateState {
        let quota = f64::from(self.per_minute);
        let per_sec = quota / 60.0;
        let mut buckets = locked(&self.buckets);
        // Idle buckets are full ones: forget them now and then.
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() * per_sec < quota);
        }
        let bucket = buckets.entry(key_id.to_owned()).or_insert(Bucket {
            tokens: quota,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(quota);
        bucket.at = now;
        let refused = bucket.tokens < 1.0;
        if !refused {
            bucket.tokens -= 1.0;
        }
        let reset_secs = match refused {
            true => ((1.0 - bucket.tokens) / per_sec).ceil(),
            false => ((quota - bucket.tokens) / per_sec).ceil(),
        };
        RateState {
            quota: self.per_minute,
            remaining: bucket.tokens.floor() as u32,
            reset_secs: (reset_secs as u64).max(u64::from(refused)),
            refused,
        }
    }
}

impl RateState {
    /// The 429 for a refused request.
    pub fn refusal(&self) -> ApiError {
        ApiError::Later {
            kind: ProblemType::RateLimited,
            detail: format!(
                "This key sent more than {} requests a minute; try again after Retry-After seconds.",
                self.quota
            ),
            retry_after_secs: Some(self.reset_secs),
            budget: None,
        }
    }

    /// `RateLimit-Policy` and `RateLimit`, as the IETF draft spells them.
    fn fields(&self) -> [(HeaderName, String); 2] {
        [
            (
                HeaderName::from_static("ratelimit-policy"),
                format!("\"{POLICY}\";q={};w=60", self.quota),
            ),
            (
                HeaderName::from_static("ratelimit"),
                format!("\"{POLICY}\";r={};t={}", self.remaining, self.reset_secs),
            ),
        ]
    }
}

/// Adds the `RateLimit` fields to the answer of every request whose key
/// was counted (see [`super::auth`]), errors included.
pub async fn rate_limit_fields(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let state = res.request().extensions().get::<RateState>().copied();
    if let Some(state) = state {
        for (name, value) in state.fields() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                res.headers_mut().insert(name, value);
            }
        }
    }
    Ok(res)
}

/// Uploads in flight per account.
#[derive(Debug, Default)]
pub struct ImportSlots {
    max: u32,
    taken: Arc<Mutex<HashMap<String, u32>>>,
}

/// An upload's place among its account's uploads in flight; dropping it
/// (the upload answered, or its client gone) frees the place.
#[derive(Debug)]
pub struct ImportSlot {
    account_id: String,
    taken: Arc<Mutex<HashMap<String, u32>>>,
}

/// Seconds a client refused for too many uploads at once is told to wait.
const RETRY_IMPORT_SECS: u64 = 5;

impl ImportSlots {
    /// At most `max` uploads per account at once (0: no limit).
    pub fn new(max: u32) -> ImportSlots {
        ImportSlots {
            max,
            taken: Arc::default(),
        }
    }

    /// A place for one more upload of the account, or a 429.
    pub fn take(&self, account_id: &str) -> Result<ImportSlot, ApiError> {
        let mut taken = locked(&self.taken);
        let n = taken.entry(account_id.to_owned()).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return Err(ApiError::Later {
                kind: ProblemType::TooManyImports,
                detail: format!(
                    "This account already has {} uploads in progress (MAX_CONCURRENT_IMPORTS_PER_ACCOUNT); wait for one to finish.",
                    self.max
                ),
                retry_after_secs: Some(RETRY_IMPORT_SECS),
                budget: None,
            });
        }
        *n += 1;
        Ok(ImportSlot {
            account_id: account_id.to_owned(),
            taken: self.taken.clone(),
        })
    }

    /// The account's uploads in flight now.
    pub fn in_flight(&self, account_id: &str) -> u32 {
        let taken = locked(&self.taken);
        taken.get(account_id).copied().unwrap_or(0)
    }

    /// The limit (0: none).
    pub fn max(&self) -> u32 {
        self.max
    }
}

impl Drop for ImportSlot {
    fn drop(&mut self) {
        let mut taken = locked(&self.taken);
        if let Some(n) = taken.get_mut(&self.account_id) {
            *n -= 1;
            if *n == 0 {
                taken.remove(&self.account_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_a_minute_at_once_then_refills_evenly() {
        let limiter = RateLimiter::new(60);
        let start = Instant::now();
        for left in (0..60).rev() {
            let state = limiter.take_at("k", start);
            assert!(!state.refused);
            assert_eq!(state.remaining, left);
        }
        let refused = limiter.take_at("k", start);
        assert!(refused.refused);
        assert_eq!(refused.reset_secs, 1);
        // One a second comes back; other keys have their own bucket.
        assert!(!limiter.take_at("k", start + Duration::from_secs(1)).refused);
        assert!(limiter.take_at("k", start + Duration::from_secs(1)).refused);
        assert_eq!(limiter.take_at("other", start).remaining, 59);
    }

    #[test]
    fn the_fields_follow_the_ietf_draft() {
        let limiter = RateLimiter::new(1200);
        let state = limiter.take_at("k", Instant::now());
        let [(policy_name, policy), (name, value)] = state.fields();
        assert_eq!(policy_name.as_str(), "ratelimit-policy");
        assert_eq!(policy, "\"per-key\";q=1200;w=60");
        assert_eq!(name.as_str(), "ratelimit");
        assert_eq!(value, "\"per-key\";r=1199;t=1");
    }

    #[test]
    fn slots_are_per_account_and_freed_on_drop() {
        let slots = ImportSlots::new(2);
        let a = slots.take("a").unwrap();
        let _b = slots.take("a").unwrap();
        assert!(slots.take("a").is_err());
        assert!(slots.take("other").is_ok());
        drop(a);
        assert_eq!(slots.in_flight("a"), 1);
        assert!(slots.take("a").is_ok());
    }
}
