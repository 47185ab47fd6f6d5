//! API-key authentication: `Authorization: Bearer <key>` names the account.
//! A key is checked against its scopes and its request rate, and a found key
//! is remembered for [`KEY_CACHE_SECS`], so most requests ask the database
//! nothing about it. A key revoked through this process is forgotten at
//! once; other processes stop accepting it within [`KEY_CACHE_SECS`].

use super::{blocking, read, ApiError, ProblemType};
use crate::db::keys::{self, Holder};
use crate::db::models::Account;
use crate::domain::Scope;
use crate::locked;
use crate::startup::AppState;
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds a found key is trusted without asking the database again: how
/// long a key revoked (or an account changed) by another process may still
/// be accepted here.
pub const KEY_CACHE_SECS: u64 = 10;

/// Seconds between two writes of a key's `last_used_at` (per process).
pub const LAST_USED_EVERY_SECS: u64 = 60;

/// The account whose API key the request carries (checked for the scope
/// the route needs, and counted against the key's request rate).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Account);

/// Keys found recently, by the SHA-256 of the key.
#[derive(Debug, Default)]
pub struct KeyCache {
    found: Mutex<HashMap<String, Found>>,
    /// When each key's `last_used_at` was last written, by key id.
    touched: Mutex<HashMap<String, Instant>>,
}

#[derive(Debug, Clone)]
struct Found {
    holder: Holder,
    at: Instant,
}

/// Keys remembered at most; past it the cache starts over.
const MAX_CACHED_KEYS: usize = 100_000;

impl KeyCache {
    fn get(&self, key_hash: &str) -> Option<Holder> {
        let found = locked(&self.found);
        found
            .get(key_hash)
            .filter(|f| f.at.elapsed() < Duration::from_secs(KEY_CACHE_SECS))
            .map(|f| f.holder.clone())
    }

    fn put(&self, key_hash: String, holder: Holder) {
        let mut found = locked(&self.found);
        if found.len() >= MAX_CACHED_KEYS {
            found.clear();
        }
        found.insert(
            key_hash,
            Found {
                holder,
                at: Instant::now(),
            },
        );
    }

    /// Forgets a revoked key: its next request asks the database.
    pub fn forget_key(&self, key_hash: &str) {
        locked(&self.found).remove(key_hash);
    }

    /// Forgets every key of an account whose settings changed.
    pub fn forget_account(&self, account_id: &str) {
        let mut found = locked(&self.found);
        found.retain(|_, f| f.holder.account.id != account_id);
    }

    /// Whether `key_id`'s `last_used_at` is due to be written (and, if so,
    /// notes that it is being written now).
    fn due_for_touch(&self, key_id: &str) -> bool {
        let mut touched = locked(&self.touched);
        let now = Instant::now();
        match touched.get(key_id) {
            Some(at) if now.duration_since(*at) < Duration::from_secs(LAST_USED_EVERY_SECS) => {
                false
            }
            _ => {
                if touched.len() >= MAX_CACHED_KEYS {
                    touched.clear();
                }
                touched.insert(key_id.to_owned(), now);
                true
            }
        }
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = bearer_key(req);
        let needed = needed_scope(req);
        let req = req.clone();
        Box::pin(async move {
            let key_hash = keys::hash(&key?);
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
            let holder = match state.keys.get(&key_hash) {
                Some(holder) => holder,
                None => {
                    let hash = key_hash.clone();
                    // A read like any other: at most the read turns at once,
                    // so a burst of requests on a key not yet remembered (or
                    // with made-up keys) waits its turn instead of taking a
                    // thread each.
                    let holder = read(&state, move |conn| Ok(keys::find_by_hash(conn, &hash)?))
                        .await?
                        .ok_or_else(|| ApiError::unauthorized("The API key is not valid."))?;
                    state.keys.put(key_hash, holder.clone());
                    holder
                }
            };
            if let Some(limiter) = &state.rate_limiter {
                let rate = limiter.take(&holder.key_id);
                req.extensions_mut().insert(rate);
                if rate.refused {
                    return Err(rate.refusal());
                }
            }
            if !holder.scopes.grants(needed) {
                return Err(ApiError::problem(
                    ProblemType::InsufficientScope,
                    format!(
                        "This key's scopes ({}) do not include `{needed}`, which {} {} needs.",
                        holder
                            .scopes
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        req.method(),
                        req.match_pattern().unwrap_or_else(|| req.path().to_owned()),
                    ),
                ));
            }
            if state.keys.due_for_touch(&holder.key_id) {
                touch(&state, holder.key_id.clone());
            }
            Ok(Authenticated(holder.account))
        })
    }
}

/// Writes a key's `last_used_at` without holding up the request.
fn touch(state: &web::Data<AppState>, key_id: String) {
    let state = state.clone();
    actix_web::rt::spawn(async move {
        let at = crate::db::now();
        if let Err(error) =
            blocking(&state, move |conn| Ok(keys::touch(conn, &[key_id], at)?)).await
        {
            tracing::warn!(%error, "could not record when an API key was last used");
        }
    });
}

/// The scope a route needs: `admin` for API keys and the account's
/// settings, `read` for every other `GET`, `write` for every other change.
fn needed_scope(req: &HttpRequest) -> Scope {
    let pattern = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    if pattern.starts_with("/api-keys") || (pattern == "/account" && !reads) {
        Scope::Admin
    } else if reads {
        Scope::Read
    } else {
        Scope::Write
    }
}

fn bearer_key(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("Send your API key as `Authorization: Bearer <key>`.")
        })?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("The Authorization header is not readable text."))?;
    let (scheme, key) = value.split_once(' ').unwrap_or((value, ""));
    let key = key.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
        return Err(ApiError::unauthorized(
            "The Authorization header must be `Bearer <key>`.",
        ));
    }
    Ok(key.to_owned())
}
