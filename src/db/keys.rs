//! API keys: made with a name and scopes, listed without their secret,
//! revoked at once. Only a key's SHA-256 is stored.

use super::address_rule::lock_account;
use super::models::{Account, ApiKey, NewApiKey};
use super::schema::{accounts, api_keys};
use super::{now, write_transaction, DbConnection};
use crate::domain::{Scope, Scopes};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Characters of a key shown in listings to recognise it by: `bik_` and 8
/// of a made key's 43 random characters, too few to guess the rest from;
/// of a shorter key chosen by hand (`BULK_INVITE_BOOTSTRAP_API_KEY`), a
/// third at most.
fn prefix_len(secret: &str) -> usize {
    (secret.chars().count() / 3).min(12)
}

/// A key just made: the row, and the key itself (shown this once).
#[derive(Debug, Clone)]
pub struct Created {
    pub key: ApiKey,
    pub secret: String,
}

/// Makes a key for an account; the secret is returned, never stored.
pub fn create(
    conn: &mut DbConnection,
    account_id: &str,
    name: &str,
    scopes: &Scopes,
) -> QueryResult<Created> {
    let secret = generate();
    let key = insert(conn, account_id, name, scopes, &secret)?;
    Ok(Created { key, secret })
}

/// Stores a key whose secret the caller chose (the first account's
/// `BOOTSTRAP_API_KEY`) or made.
pub fn insert(
    conn: &mut DbConnection,
    account_id: &str,
    name: &str,
    scopes: &Scopes,
    secret: &str,
) -> QueryResult<ApiKey> {
    let id = uuid::Uuid::now_v7().to_string();
    let hash = hash(secret);
    let stored = scopes.to_stored();
    let prefix: String = secret.chars().take(prefix_len(secret)).collect();
    diesel::insert_into(api_keys::table)
        .values(&NewApiKey {
            id: &id,
            account_id,
            key_hash: &hash,
            created_at: now(),
            name,
            scopes: &stored,
            prefix: &prefix,
        })
        .execute(conn)?;
    find(conn, account_id, &id)?.ok_or(diesel::result::Error::NotFound)
}

/// One key of the account.
pub fn find(conn: &mut DbConnection, account_id: &str, id: &str) -> QueryResult<Option<ApiKey>> {
    api_keys::table
        .filter(api_keys::id.eq(id))
        .filter(api_keys::account_id.eq(account_id))
        .select(ApiKey::as_select())
        .first(conn)
        .optional()
}

/// The account's keys, oldest first.
pub fn list(conn: &mut DbConnection, account_id: &str) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .filter(api_keys::account_id.eq(account_id))
        .order((api_keys::created_at, api_keys::id))
        .select(ApiKey::as_select())
        .load(conn)
}

/// What [`revoke`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// The key is gone; its hash, to forget it wherever it is cached.
    Done { key_hash: String },
    /// No such key in the account.
    NotFound,
    /// It is the account's last `admin` key, which is kept.
    LastAdmin,
}

/// Deletes a key, unless it is the account's last `admin` key. The
/// account is locked, so two revocations at once cannot remove the last
/// two admin keys.
pub fn revoke(conn: &mut DbConnection, account_id: &str, id: &str) -> QueryResult<Revoked> {
    write_transaction(conn, |conn| {
        lock_account(conn, account_id)?;
        let keys: Vec<(String, String, String)> = api_keys::table
            .filter(api_keys::account_id.eq(account_id))
            .select((api_keys::id, api_keys::key_hash, api_keys::scopes))
            .load(conn)?;
        let Some((_, key_hash, scopes)) = keys.iter().find(|(key_id, _, _)| key_id == id) else {
            return Ok(Revoked::NotFound);
        };
        let is_admin = |stored: &str| Scopes::from_stored(stored).grants(Scope::Admin);
        if is_admin(scopes) && keys.iter().filter(|(_, _, s)| is_admin(s)).count() == 1 {
            return Ok(Revoked::LastAdmin);
        }
        diesel::delete(api_keys::table.filter(api_keys::id.eq(id))).execute(conn)?;
        Ok(Revoked::Done {
            key_hash: key_hash.clone(),
        })
    })
}

/// A key found by its secret: the key, its scopes and its account.
#[derive(Debug, Clone)]
pub struct Holder {
    pub key_id: String,
    pub scopes: Scopes,
    pub account: Account,
}

/// The key whose SHA-256 is `key_hash`, with its account, if any.
#[tracing::instrument(skip_all)]
pub fn find_by_hash(conn: &mut DbConnection, key_hash: &str) -> QueryResult<Option<Holder>> {
    let found = api_keys::table
        .inner_join(accounts::table)
        .filter(api_keys::key_hash.eq(key_hash))
        .select((api_keys::id, api_keys::scopes, Account::as_select()))
        .first::<(String, String, Account)>(conn)
        .optional()?;
    Ok(found.map(|(key_id, scopes, account)| Holder {
        key_id,
        scopes: Scopes::from_stored(&scopes),
        account,
    }))
}

/// Records that keys were used at `at` (one statement for all of them).
pub fn touch(conn: &mut DbConnection, key_ids: &[String], at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(api_keys::table.filter(api_keys::id.eq_any(key_ids)))
        .set(api_keys::last_used_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// The stored form of an API key: its SHA-256, hex-encoded. Keys are long
/// random strings, so a fast hash is enough to make a leaked table useless.
pub fn hash(api_key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(api_key.as_bytes()))
}

/// A new random API key (`bik_` and 32 random bytes, base64url).
pub fn generate() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    format!(
        "bik_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}
