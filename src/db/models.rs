//! Rows as diesel reads and writes them: `Selectable` structs to read,
//! `Insertable` structs (borrowing where they can) to write.

use super::schema::{accounts, api_keys, import_entries, imports, users};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// An account: the unit of isolation; every other row belongs to one.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
    /// Where replies to the account's invitation emails go.
    pub reply_to: Option<String>,
    /// The account's own daily invitation budget (`None`: the server's).
    pub daily_invitations: Option<i64>,
}

/// An API key of an account; only the SHA-256 of the key is kept.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub key_hash: &'a str,
    pub created_at: NaiveDateTime,
    pub name: &'a str,
    pub scopes: &'a str,
    pub prefix: &'a str,
}

/// An API key as listed: never the key or its hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// Scope names separated by spaces.
    pub scopes: String,
    /// The key's first characters, for recognition (`None`: made before
    /// keys had one).
    pub prefix: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

/// A member of an account.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
#[diesel(treat_none_as_default_value = false)]
pub struct User {
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub email_key: String,
    pub created_at: NaiveDateTime,
}

/// An import: the file's metadata and the counts of its entries. Also read
/// from PostgreSQL's `row_to_json` of its row (see `reports`).
#[derive(Debug, Clone, Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = imports)]
pub struct Import {
    pub id: String,
    pub account_id: String,
    pub filename: Option<String>,
    pub size_bytes: i64,
    pub content_sha256: String,
    pub idempotency_key: Option<String>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub completed_at: Option<NaiveDateTime>,
    #[diesel(embed)]
    #[serde(flatten)]
    pub counts: ImportCounts,
    pub custom_message: Option<String>,
    pub expiry_days: Option<i32>,
    pub redirect_url: Option<String>,
    /// Who invited the people of this import (a person's name).
    pub invited_by: Option<String>,
    /// The language of the emails (a BCP 47 tag).
    pub locale: Option<String>,
    /// When its report and its invitees' addresses were erased.
    pub erased_at: Option<NaiveDateTime>,
}

/// The counters of an import, kept up to date by whoever changes an entry.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Queryable,
    QueryableByName,
    Selectable,
    Insertable,
    AsChangeset,
    serde::Deserialize,
)]
#[diesel(table_name = imports)]
pub struct ImportCounts {
    pub entries: i64,
    pub invalid: i64,
    pub duplicate: i64,
    pub existing_user: i64,
    pub suppressed: i64,
    pub already_invited: i64,
    pub invited: i64,
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    pub delivered: i64,
    pub bounced: i64,
    pub complained: i64,
    pub accepted: i64,
    pub expired: i64,
    pub revoked: i64,
}

/// A new import row, written before its entries.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = imports)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewImport<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub filename: Option<&'a str>,
    pub size_bytes: i64,
    pub content_sha256: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub status: &'a str,
    pub created_at: NaiveDateTime,
    pub completed_at: Option<NaiveDateTime>,
    pub custom_message: Option<&'a str>,
    pub expiry_days: Option<i32>,
    pub redirect_url: Option<&'a str>,
    pub invited_by: Option<&'a str>,
    pub locale: Option<&'a str>,
}

/// One entry of an import's report.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = import_entries)]
pub struct Entry {
    pub position: i64,
    pub line: i64,
    pub raw: String,
    pub email: Option<String>,
    pub status: String,
    pub reason: Option<String>,
}

/// An [`Entry`] borrowed: from an [`Entry`], or from the row of a query
/// that writes each entry as it reads it.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    pub position: i64,
    pub line: i64,
    pub raw: &'a str,
    pub email: Option<&'a str>,
    pub status: &'a str,
    pub reason: Option<&'a str>,
}

impl Entry {
    pub fn borrow(&self) -> EntryRef<'_> {
        EntryRef {
            position: self.position,
            line: self.line,
            raw: &self.raw,
            email: self.email.as_deref(),
            status: &self.status,
            reason: self.reason.as_deref(),
        }
    }
}

/// A new report entry. Rows own their values (no borrowed lifetimes), so
/// SQLite can reuse one prepared statement for fixed-size batches of them.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = import_entries)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewEntry {
    pub import_id: String,
    pub position: i64,
    pub line: i64,
    pub raw: String,
    pub email: Option<String>,
    pub status: &'static str,
    pub reason: Option<&'static str>,
}

/// A new queued invitation (the outbox row the dispatcher will send): what
/// is its own. What an import's invitations share (account, import,
/// status, times) is written once per statement on SQLite
/// (`shared_insert::InvitationsShared`) and added as the rows move on
/// PostgreSQL (`staged_pg`), which also makes their ids.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub id: String,
    pub position: i64,
    pub email: String,
    pub email_key: String,
}

/// A timestamp with its text formatted once: an import's invitations are
/// all made and due at the same time, which SQLite binds once per
/// statement (`shared_insert`) as this text, the one diesel would write
/// (formatting it per row, `%F %T%.f` into a new string each time, once
/// took 7 % of the importing thread). PostgreSQL's import writes the time
/// in binary as the rows move (`staged_pg`).
#[derive(Debug, Clone, diesel::expression::AsExpression)]
#[diesel(sql_type = diesel::sql_types::Timestamp)]
pub struct Stamp {
    text: std::sync::Arc<str>,
}

impl Stamp {
    pub fn new(at: NaiveDateTime) -> Stamp {
        Stamp {
            // The format of diesel's own `ToSql<Timestamp, Sqlite>`, so the
            // stored text compares with every other timestamp as before.
            text: at.format("%F %T%.f").to_string().into(),
        }
    }
}

impl diesel::serialize::ToSql<diesel::sql_types::Timestamp, diesel::sqlite::Sqlite> for Stamp {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>,
    ) -> diesel::serialize::Result {
        out.set_value(&*self.text);
        Ok(diesel::serialize::IsNull::No)
    }
}
