//! Imports: writing a classified file (import, entries and queued
//! invitations in one transaction), reading one, and the history.

use super::address_rule::{expire_account, lock_account, PENDING};
use super::models::{Import, ImportCounts, NewEntry, NewImport, NewInvitation};
use super::schema::{import_entries, imports, invitations, suppressions, users};
use super::{now, write_transaction, DbConnection, DbError};
use crate::domain::classify::{classify, key_hash, Classified, KeySet, Known, Tally};
use crate::domain::options::ImportOptions;
use crate::domain::{EmailAddress, EntryStatus, ImportStatus};
use chrono::NaiveDateTime;
use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;

/// Entries classified per batch handed to the writer. On SQLite each batch
/// is split into cached fixed-size `INSERT`s; on PostgreSQL it is one `COPY`
/// per table, so larger batches mean fewer round trips.
fn batch_size(conn: &DbConnection) -> usize {
    match conn {
        DbConnection::Sqlite(_) => 2_000,
        DbConnection::Pg(_) => 20_000,
    }
}

/// An uploaded file, decoded, with what identifies it.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    pub filename: Option<&'a str>,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub text: &'a str,
    pub options: &'a ImportOptions,
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
    // A large page cache while writing many rows keeps SQLite from spilling
    // half-built pages to disk mid-transaction.
    set_sqlite_cache(conn, IMPORT_CACHE_KIB)?;
    let created = write_import(conn, account_id, upload);
    set_sqlite_cache(conn, DEFAULT_CACHE_KIB)?;
    created
}

/// SQLite's page cache while an import writes, in KiB.
const IMPORT_CACHE_KIB: i64 = 32 * 1024;
/// SQLite's default page cache, in KiB.
const DEFAULT_CACHE_KIB: i64 = 2 * 1024;

fn set_sqlite_cache(conn: &mut DbConnection, kib: i64) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    if let DbConnection::Sqlite(c) = conn {
        c.batch_execute(&format!("PRAGMA cache_size = -{kib}"))?;
    }
    Ok(())
}

fn write_import(
    conn: &mut DbConnection,
    account_id: &str,
    upload: Upload<'_>,
) -> Result<Created, DbError> {
    write_transaction(conn, |conn| {
        lock_account(conn, account_id)?;
        expire_account(conn, account_id, now())?;
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
                custom_message: upload.options.message.as_deref(),
                expiry_days: upload.options.expires_in_days,
                redirect_url: upload.options.redirect_url.as_deref(),
                invited_by: upload.options.invited_by.as_deref(),
                locale: upload.options.locale.as_ref().map(|l| l.as_str()),
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
    max_listed: usize,
) -> Result<Preview<'a>, DbError> {
    let known = load_known(conn, account_id)?;
    let mut classifier = classify(text, &known);
    let mut skipped = Vec::new();
    let mut more = false;
    for entry in classifier.by_ref() {
        if entry.status == EntryStatus::Queued {
            continue;
        }
        match skipped.len() < max_listed {
            true => skipped.push(entry),
            false => more = true,
        }
    }
    Ok(Preview {
        tally: classifier.tally(),
        skipped,
        more,
    })
}

/// What an import would do: its counts, and the first entries that would
/// not be invited.
#[derive(Debug)]
pub struct Preview<'a> {
    /// The counts over the whole file.
    pub tally: Tally,
    /// The first entries (in file order) that would not be invited.
    pub skipped: Vec<Classified<'a>>,
    /// Whether more such entries were left out of `skipped`.
    pub more: bool,
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

/// The account's users, suppressed addresses and pending invitations, by
/// address key (streamed, so a large account is never a large `Vec`).
pub fn load_known(conn: &mut DbConnection, account_id: &str) -> QueryResult<Known> {
    let users = users::table
        .filter(users::account_id.eq(account_id))
        .select(users::email_key);
    let suppressed = suppressions::table
        .filter(suppressions::account_id.eq(account_id))
        .select(suppressions::email_key);
    let pending = invitations::table
        .filter(invitations::account_id.eq(account_id))
        .filter(invitations::status.eq_any(PENDING))
        .filter(
            invitations::expires_at
                .is_null()
                .or(invitations::expires_at.gt(now())),
        )
        .select(invitations::email_key);
    let users = key_set(users.load_iter::<String, DefaultLoadingMode>(conn)?)?;
    let suppressed = key_set(suppressed.load_iter::<String, DefaultLoadingMode>(conn)?)?;
    let pending = key_set(pending.load_iter::<String, DefaultLoadingMode>(conn)?)?;
    Ok(Known {
        users,
        suppressed,
        pending,
    })
}

fn key_set(keys: impl Iterator<Item = QueryResult<String>>) -> QueryResult<KeySet> {
    keys.map(|key| key.map(|key| key_hash(&key))).collect()
}

/// Classifies the file and writes its rows. Classifying and building rows
/// runs on a second thread while this one inserts, so the two halves of
/// the work overlap.
fn write_entries(
    conn: &mut DbConnection,
    account_id: &str,
    import_id: &str,
    text: &str,
    known: &Known,
    created_at: NaiveDateTime,
) -> QueryResult<Tally> {
    let (rows, batches) = std::sync::mpsc::sync_channel::<Rows>(2);
    let batch_size = batch_size(conn);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut classifier = classify(text, known);
            loop {
                let batch: Vec<Classified<'_>> = classifier.by_ref().take(batch_size).collect();
                // A closed channel means the writer failed; its error is reported.
                if batch.is_empty()
                    || rows
                        .send(build_rows(account_id, import_id, batch, created_at))
                        .is_err()
                {
                    return classifier.tally();
                }
            }
        });
        let written = batches.iter().try_for_each(|batch| write_rows(conn, batch));
        drop(batches);
        let tally = producer.join().map_err(|_| {
            diesel::result::Error::QueryBuilderError("the classifier panicked".into())
        })?;
        written.map(|()| tally)
    })
}

/// The rows one batch of entries becomes.
struct Rows {
    entries: Vec<NewEntry>,
    invitations: Vec<NewInvitation>,
}

fn build_rows(
    account_id: &str,
    import_id: &str,
    batch: Vec<Classified<'_>>,
    created_at: NaiveDateTime,
) -> Rows {
    let mut entries = Vec::with_capacity(batch.len());
    let mut invitations = Vec::with_capacity(batch.len());
    for entry in batch {
        let email = entry.email.map(EmailAddress::into_string);
        if let (Some(email), Some(email_key)) = (&email, entry.key) {
            invitations.push(NewInvitation {
                id: uuid::Uuid::now_v7().to_string(),
                account_id: account_id.to_owned(),
                import_id: import_id.to_owned(),
                position: entry.position as i64,
                email_key,
                email: email.clone(),
                status: EntryStatus::Queued.as_str(),
                next_attempt_at: created_at,
                created_at,
            });
        }
        entries.push(NewEntry {
            import_id: import_id.to_owned(),
            position: entry.position as i64,
            line: entry.line as i64,
            raw: entry.raw.to_owned(),
            email,
            status: entry.status.as_str(),
            reason: entry.reason,
        });
    }
    Rows {
        entries,
        invitations,
    }
}

fn write_rows(conn: &mut DbConnection, rows: Rows) -> QueryResult<()> {
    insert_rows!(conn, import_entries::table, &rows.entries);
    if !rows.invitations.is_empty() {
        insert_rows!(conn, invitations::table, &rows.invitations);
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
