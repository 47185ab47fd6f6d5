//! Accounts and their API keys.

use super::keys;
use super::models::Account;
use super::schema::accounts;
use super::{now, DbConnection};
use crate::domain::Scopes;
use diesel::prelude::*;

/// Creates an account with one `admin` API key, whose hash is all that is
/// stored.
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
        daily_invitations: None,
    };
    super::write_transaction(conn, |conn| {
        diesel::insert_into(accounts::table)
            .values(&account)
            .execute(conn)?;
        keys::insert(conn, &account.id, "default", &Scopes::admin(), api_key)?;
        Ok(account)
    })
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

/// Sets an account's own daily invitation budget (`None`: the server's
/// `ACCOUNT_DAILY_INVITATIONS`; `Some(0)`: unlimited). Whether it exists.
pub fn set_daily_invitations(
    conn: &mut DbConnection,
    id: &str,
    budget: Option<i64>,
) -> Result<bool, diesel::result::Error> {
    let changed = diesel::update(accounts::table.find(id))
        .set(accounts::daily_invitations.eq(budget))
        .execute(conn)?;
    Ok(changed == 1)
}
