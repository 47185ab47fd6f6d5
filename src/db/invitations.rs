//! Invitations as administrators and invitees see them: listing, and the
//! accept flow behind a single-use token.

use super::lifecycle::{self, Change, Target};
use super::schema::{accounts, imports, invitations, users};
use super::{write_transaction, DbConnection};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// An invitation row as the API shows it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invitations)]
pub struct Invitation {
    pub id: String,
    pub import_id: String,
    pub email: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub provider_message_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub accepted_at: Option<NaiveDateTime>,
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub statuses: Vec<&'static str>,
    /// An address key (lower-cased normalised address).
    pub email_key: Option<String>,
    pub import_id: Option<String>,
}

/// The account's invitations after the cursor (an invitation id), oldest first.
pub fn list(
    conn: &mut DbConnection,
    account_id: &str,
    filter: Filter,
    after: Option<String>,
    limit: i64,
) -> QueryResult<Vec<Invitation>> {
    let (open, closed) = (
        super::address_rule::open_condition(conn),
        super::address_rule::closed_condition(conn),
    );
    let query = |part: Option<&'static str>| {
        let mut query = invitations::table
            .filter(invitations::account_id.eq(account_id))
            // Erased invitations are counts only, no longer a person's record.
            .filter(invitations::email_key.ne(super::erase::ERASED))
            .select(Invitation::as_select())
            .order(invitations::id.asc())
            .limit(limit)
            .into_boxed();
        if !filter.statuses.is_empty() {
            query = query.filter(invitations::status.eq_any(filter.statuses.clone()));
        }
        if let Some(key) = &filter.email_key {
            query = query.filter(invitations::email_key.eq(key.clone()));
        }
        if let Some(part) = part {
            query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(part));
        }
        if let Some(import_id) = &filter.import_id {
            query = query.filter(invitations::import_id.eq(import_id.clone()));
        }
        if let Some(after) = &after {
            query = query.filter(invitations::id.gt(after.clone()));
        }
        query
    };
    if filter.email_key.is_none() {
        return query(None).load(conn);
    }
    // One address: its open invitation and its closed ones are in two
    // partial indexes of (account, address); each is asked with its own
    // condition, word for word, so both databases use it.
    let mut rows = query(Some(open)).load(conn)?;
    rows.extend(query(Some(closed)).load(conn)?);
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(rows)
}

/// One invitation of the account.
pub fn find(
    conn: &mut DbConnection,
    account_id: &str,
    id: &str,
) -> QueryResult<Option<Invitation>> {
    invitations::table
        .filter(invitations::account_id.eq(account_id))
        // Erased invitations are counts only, no longer a person's record.
        .filter(invitations::email_key.ne(super::erase::ERASED))
        .filter(invitations::id.eq(id))
        .select(Invitation::as_select())
        .first(conn)
        .optional()
}

/// What a token opens: the invitation, its account and its import's options.
#[derive(Debug, Clone, Queryable)]
pub struct Opened {
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub email_key: String,
    pub status: String,
    pub expires_at: Option<NaiveDateTime>,
    pub account_name: String,
    pub redirect_url: Option<String>,
    pub custom_message: Option<String>,
    /// The import's language (BCP 47), which the accept page follows.
    pub locale: Option<String>,
}

/// The invitation whose token hashes to `token_hash`, if any.
pub fn open(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<Opened>> {
    invitations::table
        .inner_join(accounts::table.on(accounts::id.eq(invitations::account_id)))
        .inner_join(imports::table.on(imports::id.eq(invitations::import_id)))
        .filter(invitations::token_hash.eq(token_hash))
        .select((
            invitations::id,
            invitations::account_id,
            invitations::email,
            invitations::email_key,
            invitations::status,
            invitations::expires_at,
            accounts::name,
            imports::redirect_url,
            imports::custom_message,
            imports::locale,
        ))
        .first(conn)
        .optional()
}

/// Whether an opened invitation can be accepted now, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Open,
    Expired,
    Revoked,
    Used,
    Unavailable,
}

impl Opened {
    /// The invitation's standing at `now`.
    pub fn standing(&self, now: NaiveDateTime) -> Standing {
        match self.status.as_str() {
            "sent" | "delivered" if self.expires_at.is_some_and(|at| at <= now) => {
                Standing::Expired
            }
            "sent" | "delivered" => Standing::Open,
            "expired" => Standing::Expired,
            "revoked" => Standing::Revoked,
            "accepted" => Standing::Used,
            _ => Standing::Unavailable,
        }
    }
}

/// What [`accept`] did.
#[derive(Debug, Clone)]
pub enum Accepted {
    /// The person is now a user; the user's id.
    Joined { user_id: String },
    /// Someone else changed the invitation first (it was used or revoked).
    Gone,
}

/// Accepts an open invitation: makes the address a user of the account
/// (unless it is one already) and marks the invitation and its report entry
/// `accepted`, in one transaction. A second accept finds it used.
pub fn accept(
    conn: &mut DbConnection,
    opened: &Opened,
    now: NaiveDateTime,
) -> QueryResult<Accepted> {
    write_transaction(conn, |conn| {
        let change = Change {
            accepted_at: Some(now),
            ..Change::new(&["sent", "delivered"], "accepted")
        };
        let target = Target::One {
            account_id: &opened.account_id,
            id: &opened.id,
        };
        if lifecycle::apply(conn, target, &change, now)?.is_empty() {
            return Ok(Accepted::Gone);
        }
        let existing: Option<String> = users::table
            .filter(users::account_id.eq(&opened.account_id))
            .filter(users::email_key.eq(&opened.email_key))
            .select(users::id)
            .first(conn)
            .optional()?;
        let user_id = match existing {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                diesel::insert_into(users::table)
                    .values((
                        users::id.eq(&id),
                        users::account_id.eq(&opened.account_id),
                        users::email.eq(&opened.email),
                        users::email_key.eq(&opened.email_key),
                        users::created_at.eq(now),
                    ))
                    .execute(conn)?;
                id
            }
        };
        Ok(Accepted::Joined { user_id })
    })
}
