//! Accounts and their API keys.

use super::models::{Account, NewApiKey};
use super::schema::{accounts, api_keys};
use super::{now, DbConnection};
use diesel::prelude::*;

/// Creates an account with one API key, whose hash is all that is stored.
pub fn create(
    conn: &mut DbConnection,
    name: &str,
    api_key: &str,
) -> Result<Account, diesel::result::Error> {
    let account = Account {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        created_at: now(),
        reply_to: None,
    };
    super::write_transaction(conn, |conn| {
        diesel::insert_into(accounts::table)
            .values(&account)
            .execute(conn)?;
        add_key(conn, &account.id, api_key)?;
        Ok(account)
    })
}

/// Adds an API key to an account.
pub fn add_key(
    conn: &mut DbConnection,
    account_id: &str,
    api_key: &str,
) -> Result<(), diesel::result::Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let hash = hash_key(api_key);
    let key = NewApiKey {
        id: &id,
        account_id,
        key_hash: &hash,
        created_at: now(),
    };
    diesel::insert_into(api_keys::table)
        .values(&key)
        .execute(conn)?;
    Ok(())
}

/// The account an API key belongs to, if any.
#[tracing::instrument(skip_all)]
pub fn find_by_key(
    conn: &mut DbConnection,
    api_key: &str,
) -> Result<Option<Account>, diesel::result::Error> {
    api_keys::table
        .inner_join(accounts::table)
        .filter(api_keys::key_hash.eq(hash_key(api_key)))
        .select(Account::as_select())
        .first(conn)
        .optional()
}

/// One account, if it exists.
pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Account>, diesel::result::Error> {
    accounts::table
        .find(id)
        .select(Account::as_select())
        .first(conn)
        .optional()
}

/// What [`update`] changes; `None` leaves a field as it is, and
/// `reply_to: Some(None)` clears the reply-to address.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = accounts)]
pub struct AccountChange {
    pub name: Option<String>,
    pub reply_to: Option<Option<String>>,
}

/// Changes an account's name or reply-to address; the account as it is
/// now (`None`: no such account). The next emails rendered show it.
#[tracing::instrument(skip(conn))]
pub fn update(
    conn: &mut DbConnection,
    id: &str,
    change: &AccountChange,
) -> Result<Option<Account>, diesel::result::Error> {
    if change.name.is_some() || change.reply_to.is_some() {
        diesel::update(accounts::table.find(id))
            .set(change)
            .execute(conn)?;
    }
    find(conn, id)
}

/// Whether the database has no account yet (a fresh install).
pub fn is_empty(conn: &mut DbConnection) -> Result<bool, diesel::result::Error> {
    let count: i64 = accounts::table.count().get_result(conn)?;
    Ok(count == 0)
}

/// The stored form of an API key: its SHA-256, hex-encoded. Keys are long
/// random strings, so a fast hash is enough to make a leaked table useless.
pub fn hash_key(api_key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(api_key.as_bytes()))
}

/// A new random API key (`bik_` and 32 random bytes, base64url).
pub fn generate_key() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    format!(
        "bik_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}
