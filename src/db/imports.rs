//! Imports: writing a classified file (import, entries and queued
//! invitations in one transaction), reading one, and the history.

use super::address_rule::{expire_account, lock_account};
use super::budget;
use super::known;
use super::models::{Import, ImportCounts, NewEntry, NewImport, NewInvitation};
use super::schema::{import_entries, imports, invitations};
use super::shared_insert::{self, InvitationsShared};
use super::{now, write_transaction, DbConnection, DbError};
use crate::domain::classify::{classify, settle, Classified, Tally};
use crate::domain::options::ImportOptions;
use crate::domain::{EmailAddress, EntryStatus, ImportStatus};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Entries classified per batch handed to the writer, and whose new
/// addresses are looked up in the account together. On SQLite each batch
/// is split into cached fixed-size `INSERT`s; on PostgreSQL it is one `COPY`
/// per table and one lookup per table, so larger batches mean fewer round
/// trips.
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
    /// The server's daily invitation budget (`ACCOUNT_DAILY_INVITATIONS`;
    /// an account's own value wins; 0: unlimited).
    pub daily_budget: i64,
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
///
/// `lookups`, a second connection when the pool has one idle, asks the
/// account about each batch's addresses while `conn` writes the batch
/// before, so the questions cost the import little time (without one,
/// `conn` asks too). Its answers are the ones `conn` would get: each
/// question on PostgreSQL sees what was committed when it was asked, in
/// the import's transaction or not, and the import's own writes (expired
/// invitations closed) change no answer, since the question of open
/// invitations leaves out expired ones itself; on SQLite nothing else
/// writes while the import holds the write lock.
#[tracing::instrument(skip(conn, lookups, upload), fields(size = upload.size_bytes))]
pub fn create(
    conn: &mut DbConnection,
    lookups: Option<&mut DbConnection>,
    account_id: &str,
    upload: Upload<'_>,
) -> Result<Created, DbError> {
    // A large page cache while writing many rows keeps SQLite from spilling
    // half-built pages to disk mid-transaction.
    set_sqlite_cache(conn, IMPORT_CACHE_KIB)?;
    let created = write_import(conn, lookups, account_id, upload);
    set_sqlite_cache(conn, DEFAULT_CACHE_KIB)?;
    release_freed_memory(conn);
    created
}

/// SQLite allocates its page cache with the C library's `malloc`, not the
/// server's allocator, and glibc keeps what is freed in the arena of the
/// thread that freed it. An import runs on whichever blocking thread is
/// free, so each 32 MB cache it dropped stayed resident in another arena:
/// the server's memory grew by about 16 MB per large import, for good.
/// Handing the free pages back to the system after an import costs a few
/// milliseconds.
fn release_freed_memory(conn: &DbConnection) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if let DbConnection::Sqlite(_) = conn {
        // SAFETY: malloc_trim only walks glibc's own free lists.
        unsafe {
            libc::malloc_trim(0);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = conn;
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
    lookups: Option<&mut DbConnection>,
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
        let tally = write_entries(conn, lookups, account_id, &id, upload.text, created_at)?;
        let queued = tally.queued as i64;
        budget::charge(conn, account_id, upload.daily_budget, queued, created_at)?
            .map_err(DbError::BudgetExceeded)?;
        finish(conn, &id, tally, created_at)?;
        Ok(Created::New(
            find(conn, account_id, &id)?.ok_or(diesel::result::Error::NotFound)?,
        ))
    })
}

/// Classifies `text` exactly as [`create`] would, writing nothing (in one
/// read transaction, so every batch is settled against the same account).
pub fn preview<'a>(
    conn: &mut DbConnection,
    account_id: &str,
    text: &'a str,
    max_listed: usize,
) -> Result<Preview<'a>, DbError> {
    let batch_size = batch_size(conn);
    conn.transaction(|conn| {
        let mut classifier = classify(text);
        let mut preview = Preview {
            tally: Tally::default(),
            skipped: Vec::new(),
            more: false,
        };
        loop {
            let mut batch: Vec<Classified<'a>> = classifier.by_ref().take(batch_size).collect();
            if batch.is_empty() {
                return Ok(preview);
            }
            let keys: Vec<&str> = batch.iter().filter_map(|e| e.key.as_deref()).collect();
            let known = known::lookup(conn, account_id, &keys)?;
            for mut entry in batch.drain(..) {
                settle(&mut entry, &known);
                preview.tally.add(entry.status);
                if entry.status == EntryStatus::Queued {
                    continue;
                }
                match preview.skipped.len() < max_listed {
                    true => preview.skipped.push(entry),
                    false => preview.more = true,
                }
            }
        }
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
    on_backend!(conn, |c| find_query!(account_id, id)
        .get_result(c)
        .optional())
}

/// [`find`] on PostgreSQL, asked from the HTTP worker (see
/// [`super::async_pg`]).
pub async fn find_async(
    conn: &mut &diesel_async::AsyncPgConnection,
    account_id: &str,
    id: &str,
) -> Result<Option<Import>, diesel::result::Error> {
    diesel_async::RunQueryDsl::get_result(find_query!(account_id, id), conn)
        .await
        .optional()
}

/// The statement of [`find`].
macro_rules! find_query {
    ($account_id:expr, $id:expr) => {
        imports::table
            .filter(imports::account_id.eq($account_id))
            .filter(imports::id.eq($id))
            .select(Import::as_select())
            .limit(1)
    };
}
use find_query;

/// The account's imports, newest first, after the cursor (an import id).
pub fn history(
    conn: &mut DbConnection,
    account_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Import>, diesel::result::Error> {
    // Two fixed queries, not one boxed one: a boxed query is written out
    // and looked up by its text on every page.
    match before {
        Some(before) => on_backend!(conn, |c| history_query!(account_id, limit)
            .filter(imports::id.lt(before))
            .load(c)),
        None => on_backend!(conn, |c| history_query!(account_id, limit).load(c)),
    }
}

/// [`history`] on PostgreSQL, asked from the HTTP worker (see
/// [`super::async_pg`]).
pub async fn history_async(
    conn: &mut &diesel_async::AsyncPgConnection,
    account_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Import>, diesel::result::Error> {
    use diesel_async::RunQueryDsl;
    match before {
        Some(before) => {
            let query = history_query!(account_id, limit).filter(imports::id.lt(before));
            RunQueryDsl::load(query, conn).await
        }
        None => RunQueryDsl::load(history_query!(account_id, limit), conn).await,
    }
}

/// The statement of [`history`] without its cursor.
macro_rules! history_query {
    ($account_id:expr, $limit:expr) => {
        imports::table
            .filter(imports::account_id.eq($account_id))
            .order(imports::id.desc())
            .limit($limit)
            .select(Import::as_select())
    };
}
use history_query;

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

/// Classifies the file and writes its rows, in three stages that overlap:
/// one thread parses the file and builds each batch's rows, a second asks
/// the account about them (with `lookups`; it waits on the database most
/// of the time, while the first goes on), and this one writes each batch
/// (and asks about it when there is no `lookups`).
fn write_entries(
    conn: &mut DbConnection,
    mut lookups: Option<&mut DbConnection>,
    account_id: &str,
    import_id: &str,
    text: &str,
    created_at: NaiveDateTime,
) -> QueryResult<Tally> {
    let (built, to_settle) = std::sync::mpsc::sync_channel::<Rows>(1);
    let (rows, batches) = std::sync::mpsc::sync_channel::<Rows>(2);
    // Written batches go back to the thread that built them to be freed:
    // the writer is the import's slowest stage, and a batch's thousands of
    // strings are freed fastest by the thread that allocated them.
    let (done, to_free) = std::sync::mpsc::channel::<Rows>();
    let batch_size = batch_size(conn);
    let staged = matches!(conn, DbConnection::Pg(_));
    let (tally, runs) = std::thread::scope(|scope| {
        let classifier = scope.spawn(move || {
            let mut classifier = classify(text);
            loop {
                to_free.try_iter().for_each(drop);
                let batch: Vec<Classified<'_>> = classifier.by_ref().take(batch_size).collect();
                if batch.is_empty() {
                    // The last batch is sent: free the rest as the writer
                    // is done with them.
                    drop(built);
                    to_free.iter().for_each(drop);
                    return;
                }
                // A closed channel means a later stage failed; its error is reported.
                if built.send(build_rows(import_id, batch)).is_err() {
                    return;
                }
            }
        });
        // Ends with the classifier's channel, or at its first failed
        // lookup, which drops that channel and so stops the classifier.
        let settler = scope.spawn(move || -> QueryResult<()> {
            for mut batch in to_settle {
                if let Some(lookups) = lookups.as_deref_mut() {
                    settle_rows(lookups, account_id, &mut batch)?;
                    batch.settled = true;
                    if staged {
                        batch.run = Some(super::staged_pg::run(&batch.invitations));
                        // Kept in the run: the batch waits for the writer lighter.
                        batch.invitations = Vec::new();
                    }
                }
                if rows.send(batch).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        });
        // Takes the receiver, so a failed write closes the channel and
        // the earlier stages stop.
        let shared = InvitationsShared {
            account_id,
            import_id,
            status: EntryStatus::Queued.as_str(),
            at: &super::models::Stamp::new(created_at),
        };
        let written = settle_and_write(conn, &shared, batches, done);
        let panicked =
            |_| diesel::result::Error::QueryBuilderError("a stage of the import panicked".into());
        let settled = settler.join().map_err(panicked)?;
        classifier.join().map_err(panicked)?;
        // A failed lookup ends the batches early: the write must fail too.
        let written = written?;
        settled.map(|()| written)
    })?;
    if let DbConnection::Pg(pg) = conn {
        let queued = EntryStatus::Queued.as_str();
        super::staged_pg::finish(pg, &runs, account_id, import_id, queued, created_at)?;
    }
    Ok(tally)
}

/// Writes each batch, then hands it to `done` to be freed (or frees it
/// itself once nobody takes them).
fn settle_and_write(
    conn: &mut DbConnection,
    shared: &InvitationsShared<'_>,
    batches: std::sync::mpsc::Receiver<Rows>,
    done: std::sync::mpsc::Sender<Rows>,
) -> QueryResult<(Tally, Vec<super::staged_pg::Run>)> {
    let mut tally = Tally::default();
    let mut runs = Vec::new();
    for mut batch in batches {
        if !batch.settled {
            settle_rows(conn, shared.account_id, &mut batch)?;
        }
        write_rows(conn, shared, &mut batch, &mut runs)?;
        batch.statuses.iter().for_each(|s| tally.add(*s));
        // A closed channel hands the batch back: it is freed here.
        let _ = done.send(batch);
    }
    Ok((tally, runs))
}

/// The rows one batch of entries becomes: an invitation for every first
/// occurrence of an address until [`settle_rows`] and [`write_rows`] drop
/// those the account already has a reason to skip.
struct Rows {
    entries: Vec<NewEntry>,
    /// The status of each of `entries`.
    statuses: Vec<EntryStatus>,
    invitations: Vec<NewInvitation>,
    /// Whether [`settle_rows`] has been applied.
    settled: bool,
    /// PostgreSQL: the settled invitations as kept for the final write
    /// ([`super::staged_pg::run`]), when the thread that asked the account
    /// about them made it (it then empties `invitations`).
    run: Option<super::staged_pg::Run>,
}

impl Rows {
    /// Gives the entry of the invitation at `position` `status` instead.
    fn skip(&mut self, position: i64, status: EntryStatus) {
        let at = (position - self.entries.first().map_or(0, |e| e.position)) as usize;
        self.statuses[at] = status;
        self.entries[at].status = status.as_str();
    }
}

/// Asks the account about the batch's new addresses and turns the
/// invitations it already covers (a user, a suppression, an open
/// invitation) into skipped entries. On SQLite the open invitations are
/// left to [`write_rows`]: the index of open invitations answers that
/// question as the rows go in, which costs one descent of that index per
/// address instead of two.
fn settle_rows(conn: &mut DbConnection, account_id: &str, rows: &mut Rows) -> QueryResult<()> {
    let keys: Vec<&str> = rows
        .invitations
        .iter()
        .map(|i| i.email_key.as_str())
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let known = match conn {
        DbConnection::Sqlite(_) => known::lookup_people(conn, account_id, &keys)?,
        DbConnection::Pg(_) => known::lookup(conn, account_id, &keys)?,
    };
    let mut skipped = Vec::new();
    rows.invitations.retain(|invitation| {
        let Some(status) = known.status_of(&invitation.email_key) else {
            return true;
        };
        skipped.push((invitation.position, status));
        false
    });
    for (position, status) in skipped {
        rows.skip(position, status);
    }
    Ok(())
}
fn build_rows(import_id: &str, batch: Vec<Classified<'_>>) -> Rows {
    let mut entries = Vec::with_capacity(batch.len());
    let mut statuses = Vec::with_capacity(batch.len());
    let mut invitations = Vec::with_capacity(batch.len());
    for entry in batch {
        let email = entry.email.map(EmailAddress::into_string);
        if let (Some(email), Some(email_key)) = (&email, entry.key) {
            invitations.push(NewInvitation {
                id: uuid::Uuid::now_v7().to_string(),
                position: entry.position as i64,
                email_key,
                email: email.clone(),
            });
        }
        statuses.push(entry.status);
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
        statuses,
        invitations,
        settled: false,
        run: None,
    }
}

/// Writes the batch's invitations (on PostgreSQL: keeps them in `runs`
/// for [`super::staged_pg::finish`]), then its entries (whose statuses are
/// final once the invitations are in).
fn write_rows(
    conn: &mut DbConnection,
    shared: &InvitationsShared<'_>,
    rows: &mut Rows,
    runs: &mut Vec<super::staged_pg::Run>,
) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => {
            insert_unless_open(c, shared, rows)?;
            shared_insert::insert(c, shared.import_id, &rows.entries, |inserted, asked| {
                super::macros::all_inserted("import_entries", inserted, asked)
            })?;
        }
        DbConnection::Pg(pg) => {
            runs.push(match rows.run.take() {
                Some(run) => run,
                None => super::staged_pg::run(&rows.invitations),
            });
            diesel::copy_from(import_entries::table)
                .from_insertable(&rows.entries)
                .execute(pg)?;
        }
    }
    Ok(())
}

/// SQLite: inserts the invitations, each unless its address already has an
/// open invitation in the account (the unique index of open invitations
/// turns it away; the account's expired ones were closed at the start of
/// the transaction, so open means unexpired), and marks the entries of
/// those left out `already_invited`. Only when some were left out does it
/// read back which.
///
/// Through `INSERT OR IGNORE` ([`shared_insert::insert`]): nothing but
/// that index can turn a row away here, since every `NOT NULL` column is
/// set, the table has no `CHECK`, and the id and the position are new.
fn insert_unless_open(
    c: &mut diesel::SqliteConnection,
    shared: &InvitationsShared<'_>,
    rows: &mut Rows,
) -> QueryResult<()> {
    let mut inserted = 0;
    shared_insert::insert(c, shared, &rows.invitations, |n, _| {
        inserted += n;
        QueryResult::Ok(())
    })?;
    if inserted == rows.invitations.len() {
        return Ok(());
    }
    let (Some(first), Some(last)) = (rows.invitations.first(), rows.invitations.last()) else {
        return Ok(());
    };
    let written: std::collections::HashSet<i64> = invitations::table
        .filter(invitations::import_id.eq(shared.import_id))
        .filter(invitations::position.between(first.position, last.position))
        .select(invitations::position)
        .load::<i64>(c)?
        .into_iter()
        .collect();
    let open: Vec<i64> = rows
        .invitations
        .iter()
        .map(|i| i.position)
        .filter(|p| !written.contains(p))
        .collect();
    rows.invitations.retain(|i| written.contains(&i.position));
    for position in open {
        rows.skip(position, EntryStatus::AlreadyInvited);
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
