//! Imports: writing a classified file (import, entries and queued
//! invitations in one transaction), reading one, and the history.

use super::models::{Import, ImportCounts, NewEntry, NewImport, NewInvitation};
use super::schema::{import_entries, imports, invitations, suppressions, users};
use super::{now, write_transaction, DbConnection, DbError};
use crate::domain::classify::{classify, Classified, Known, Tally};
use crate::domain::{EntryStatus, ImportStatus};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Rows written per statement: well under SQLite's 32,766 bound parameters
/// for the widest row, and large enough that statement overhead is noise.
const BATCH: usize = 2_000;

/// Invitation statuses that still block a new invitation to the address.
pub const PENDING: [&str; 3] = ["queued", "sent", "delivered"];

/// An uploaded file, decoded, with what identifies it.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    pub filename: Option<&'a str>,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub text: &'a str,
}

/// What [`create`] did.
#[derive(Debug)]
pub enum Created {
    /// A new import was written.
    New(Import),
    /// The idempotency key was seen before with the same file: the first import.
    Replayed(Import),
    /// The idempotency key was seen before with a different file.
    KeyReused(Import),
}

/// Classifies `upload` and writes the import, its entries and its queued
/// invitations in one transaction: all of it or nothing.
#[tracing::instrument(skip(conn, upload), fields(size = upload.size_bytes))]
pub fn create(
    conn: &mut DbConnection,
    account_id: &str,
    upload: Upload<'_>,
) -> Result<Created, DbError> {
    write_transaction(conn, |conn| {
        lock_account(conn, account_id)?;
        if let Some(key) = upload.idempotency_key {
            if let Some(first) = find_by_idempotency_key(conn, account_id, key)? {
                return Ok(if first.content_sha256 == upload.sha256 {
                    Created::Replayed(first)
                } else {
                    Created::KeyReused(first)
                });
            }
        }
        let known = load_known(conn, account_id)?;
        let id = uuid::Uuid::now_v7().to_string();
        let created_at = now();
        diesel::insert_into(imports::table)
            .values(&NewImport {
                id: &id,
                account_id,
                filename: upload.filename,
                size_bytes: upload.size_bytes,
                content_sha256: upload.sha256,
                idempotency_key: upload.idempotency_key,
                status: ImportStatus::Dispatching.as_str(),
                created_at,
                completed_at: None,
            })
            .execute(conn)?;
        let tally = write_entries(conn, account_id, &id, upload.text, &known, created_at)?;
        finish(conn, &id, tally, created_at)?;
        Ok(Created::New(
            find(conn, account_id, &id)?.ok_or(diesel::result::Error::NotFound)?,
        ))
    })
}

/// Classifies `text` exactly as [`create`] would, writing nothing.
pub fn preview<'a>(
    conn: &mut DbConnection,
    account_id: &str,
    text: &'a str,
) -> Result<(Tally, Vec<Classified<'a>>), DbError> {
    let known = load_known(conn, account_id)?;
    let mut classifier = classify(text, &known);
    let skipped = classifier
        .by_ref()
        .filter(|entry| entry.status != EntryStatus::Queued)
        .collect();
    Ok((classifier.tally(), skipped))
}

/// One import of the account, if it exists.
pub fn find(
    conn: &mut DbConnection,
    account_id: &str,
    id: &str,
) -> Result<Option<Import>, diesel::result::Error> {
    imports::table
        .filter(imports::account_id.eq(account_id))
        .filter(imports::id.eq(id))
        .select(Import::as_select())
        .first(conn)
        .optional()
}

/// The account's imports, newest first, after the cursor (an import id).
pub fn history(
    conn: &mut DbConnection,
    account_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Import>, diesel::result::Error> {
    let mut query = imports::table
        .filter(imports::account_id.eq(account_id))
        .select(Import::as_select())
        .order(imports::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(imports::id.lt(before.to_owned()));
    }
    query.load(conn)
}

fn find_by_idempotency_key(
    conn: &mut DbConnection,
    account_id: &str,
    key: &str,
) -> Result<Option<Import>, diesel::result::Error> {
    imports::table
        .filter(imports::account_id.eq(account_id))
        .filter(imports::idempotency_key.eq(key))
        .select(Import::as_select())
        .first(conn)
        .optional()
}

/// Serialises imports of one account on PostgreSQL, so two concurrent
/// uploads cannot both invite the same address. (SQLite has one writer.)
fn lock_account(conn: &mut DbConnection, account_id: &str) -> QueryResult<()> {
    use super::schema::accounts;
    if let DbConnection::Pg(pg) = conn {
        accounts::table
            .filter(accounts::id.eq(account_id))
            .select(accounts::id)
            .for_update()
            .first::<String>(pg)?;
    }
    Ok(())
}

/// The account's users and pending invitations, by address key.
pub fn load_known(conn: &mut DbConnection, account_id: &str) -> QueryResult<Known> {
    let users = users::table
        .filter(users::account_id.eq(account_id))
        .select(users::email_key)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let pending = invitations::table
        .filter(invitations::account_id.eq(account_id))
        .filter(invitations::status.eq_any(PENDING))
        .filter(
            invitations::expires_at
                .is_null()
                .or(invitations::expires_at.gt(now())),
        )
        .select(invitations::email_key)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let suppressed = suppressions::table
        .filter(suppressions::account_id.eq(account_id))
        .select(suppressions::email_key)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    Ok(Known {
        users,
        pending,
        suppressed,
    })
}

fn write_entries(
    conn: &mut DbConnection,
    account_id: &str,
    import_id: &str,
    text: &str,
    known: &Known,
    created_at: NaiveDateTime,
) -> QueryResult<Tally> {
    let mut classifier = classify(text, known);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        batch.extend(classifier.by_ref().take(BATCH));
        if batch.is_empty() {
            return Ok(classifier.tally());
        }
        write_batch(conn, account_id, import_id, &batch, created_at)?;
        batch.clear();
    }
}

fn write_batch(
    conn: &mut DbConnection,
    account_id: &str,
    import_id: &str,
    batch: &[Classified<'_>],
    created_at: NaiveDateTime,
) -> QueryResult<()> {
    let entries: Vec<NewEntry<'_>> = batch
        .iter()
        .map(|entry| NewEntry {
            import_id,
            position: entry.position as i64,
            line: entry.line as i64,
            raw: entry.raw,
            email: entry.email.as_ref().map(|email| email.as_str()),
            status: entry.status.as_str(),
            reason: entry.reason,
        })
        .collect();
    let keys: Vec<(&Classified<'_>, String)> = batch
        .iter()
        .filter(|entry| entry.status == EntryStatus::Queued)
        .filter_map(|entry| Some((entry, entry.email.as_ref()?.key())))
        .collect();
    let invitations: Vec<NewInvitation<'_>> = keys
        .iter()
        .filter_map(|(entry, key)| {
            Some(NewInvitation {
                id: uuid::Uuid::now_v7().to_string(),
                account_id,
                import_id,
                position: entry.position as i64,
                email: entry.email.as_ref()?.as_str(),
                email_key: key,
                status: EntryStatus::Queued.as_str(),
                next_attempt_at: created_at,
                created_at,
            })
        })
        .collect();
    insert_rows!(conn, import_entries::table, &entries);
    if !invitations.is_empty() {
        insert_rows!(conn, invitations::table, &invitations);
    }
    Ok(())
}

/// Writes the final counts; an import that invited nobody is complete at once.
fn finish(
    conn: &mut DbConnection,
    import_id: &str,
    tally: Tally,
    created_at: NaiveDateTime,
) -> QueryResult<()> {
    let counts = ImportCounts {
        entries: tally.entries as i64,
        invalid: tally.invalid as i64,
        duplicate: tally.duplicate as i64,
        existing_user: tally.existing_user as i64,
        suppressed: tally.suppressed as i64,
        already_invited: tally.already_invited as i64,
        invited: tally.queued as i64,
        queued: tally.queued as i64,
        ..ImportCounts::default()
    };
    let (status, completed_at) = if tally.queued == 0 {
        (ImportStatus::Completed, Some(created_at))
    } else {
        (ImportStatus::Dispatching, None)
    };
    diesel::update(imports::table.find(import_id))
        .set((
            &counts,
            imports::status.eq(status.as_str()),
            imports::completed_at.eq(completed_at),
        ))
        .execute(conn)?;
    Ok(())
}
