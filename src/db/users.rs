//! The members of an account.

use super::models::User;
use super::schema::users;
use super::{now, write_transaction, DbConnection};
use crate::domain::EmailAddress;
use diesel::prelude::*;
use std::collections::HashSet;

/// What [`add`] did with each valid address.
#[derive(Debug, Default)]
pub struct Added {
    /// Users created now.
    pub created: Vec<User>,
    /// Addresses that were users already (or repeated in the request).
    pub existing: Vec<String>,
}

/// Adds the addresses as users of the account; ones it has already are
/// reported, not duplicated.
#[tracing::instrument(skip(conn, emails), fields(count = emails.len()))]
pub fn add(
    conn: &mut DbConnection,
    account_id: &str,
    emails: Vec<EmailAddress>,
) -> Result<Added, diesel::result::Error> {
    write_transaction(conn, |conn| {
        let mut known: HashSet<String> = HashSet::new();
        for chunk in emails.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(|e| e.key()).collect();
            known.extend(
                users::table
                    .filter(users::account_id.eq(account_id))
                    .filter(users::email_key.eq_any(keys))
                    .select(users::email_key)
                    .load::<String>(conn)?,
            );
        }
        let mut added = Added::default();
        for email in emails {
            let key = email.key();
            if !known.insert(key.clone()) {
                added.existing.push(email.into_string());
                continue;
            }
            added.created.push(User {
                id: uuid::Uuid::now_v7().to_string(),
                account_id: account_id.to_owned(),
                email: email.into_string(),
                email_key: key,
                created_at: now(),
            });
        }
        for chunk in added.created.chunks(1_000) {
            insert_rows!(conn, users::table, chunk);
        }
        Ok(added)
    })
}

/// The account's users in the order they were added, after the cursor (a user id).
pub fn list(
    conn: &mut DbConnection,
    account_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<User>, diesel::result::Error> {
    let mut query = users::table
        .filter(users::account_id.eq(account_id))
        .select(User::as_select())
        .order(users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::id.gt(after.to_owned()));
    }
    query.load(conn)
}

/// Removes a user of the account; false when the account has no such user.
/// Imports stop skipping the address: it may be invited again.
pub fn remove(
    conn: &mut DbConnection,
    account_id: &str,
    id: &str,
) -> Result<bool, diesel::result::Error> {
    let removed = diesel::delete(
        users::table
            .filter(users::account_id.eq(account_id))
            .filter(users::id.eq(id)),
    )
    .execute(conn)?;
    Ok(removed > 0)
}
