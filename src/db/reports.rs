//! An import's report: its entries in file order, filtered and paged by
//! position (keyset), so a deep page costs what the first one does.

use super::models::{Entry, EntryRef, Import};
use super::schema::import_entries;
use super::DbConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Nullable, Text};

/// Up to `limit` entries of the import after `after` (a position), with one
/// of `statuses` (all when empty), in file order.
#[tracing::instrument(skip(conn))]
pub fn page(
    conn: &mut DbConnection,
    import_id: &str,
    statuses: &[&'static str],
    after: i64,
    limit: i64,
) -> Result<Vec<Entry>, diesel::result::Error> {
    let query = import_entries::table
        .filter(import_entries::import_id.eq(import_id))
        .filter(import_entries::position.gt(after))
        .order(import_entries::position.asc())
        .limit(limit);
    if statuses.is_empty() {
        // One fixed statement: prepared once per connection and reused
        // (a boxed query is parsed and planned again on every page).
        return on_backend!(conn, |c| query.select(Entry::as_select()).load(c));
    }
    query
        .filter(import_entries::status.eq_any(statuses.to_vec()))
        .select(Entry::as_select())
        .load(conn)
}

/// The account's import `import_id` and, unless it was erased, a [`page`]
/// of its report: `None` when the account has no such import.
///
/// On PostgreSQL this is one statement, so one round trip to the server
/// instead of two (the import, then its entries): on a loopback server the
/// second trip cost a fifth of the page's time in this process (the
/// sending, the waking of both sides, the server's own work per
/// statement). SQLite answers in-process and asks twice.
///
/// Each entry comes written by `W` (see [`Written`]).
#[tracing::instrument(skip(conn))]
pub fn import_and_page<W: WriteEntry + 'static>(
    conn: &mut DbConnection,
    account_id: &str,
    import_id: &str,
    statuses: &[&'static str],
    after: i64,
    limit: i64,
) -> Result<Option<(Import, Vec<Written>)>, diesel::result::Error> {
    if let DbConnection::Pg(pg) = conn {
        // Two statements, with and without the status filter: an `OR`
        // that lets one text serve both costs the generic plan of the
        // unfiltered page so much (PostgreSQL cannot tell the filter is
        // off) that it plans the page again on every request.
        let rows: Vec<WrittenRow<W>> = if statuses.is_empty() {
            PgImportAndPage::<false>::new(account_id, import_id, statuses, after, limit).load(pg)?
        } else {
            PgImportAndPage::<true>::new(account_id, import_id, statuses, after, limit).load(pg)?
        };
        return import_and_entries(rows);
    }
    let Some(import) = super::imports::find(conn, account_id, import_id)? else {
        return Ok(None);
    };
    let entries = match import.erased_at {
        Some(_) => Vec::new(),
        None => page(conn, &import.id, statuses, after, limit)?
            .iter()
            .map(|entry| Written::new::<W>(entry.borrow()))
            .collect::<Result<_, _>>()
            .map_err(diesel::result::Error::DeserializationError)?,
    };
    Ok(Some((import, entries)))
}

/// Writes one entry of a report page into `out`, as the API shows it.
pub trait WriteEntry {
    fn write(
        entry: EntryRef<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// An entry of a page as [`WriteEntry`] wrote it.
#[derive(Debug)]
pub struct Written {
    pub position: i64,
    pub text: Vec<u8>,
}

impl Written {
    /// `entry` as `W` writes it.
    pub fn new<W: WriteEntry>(
        entry: EntryRef<'_>,
    ) -> Result<Written, Box<dyn std::error::Error + Send + Sync>> {
        // The field names and the rest take about 110 bytes; the address
        // twice (raw, email), and the reason's words when there are some.
        let words = entry.reason.map_or(0, str::len);
        let mut text = Vec::with_capacity(128 + 2 * entry.raw.len() + words);
        W::write(entry, &mut text)?;
        Ok(Written {
            position: entry.position,
            text,
        })
    }
}

/// [`import_and_page`] on PostgreSQL, asked from the HTTP worker (see
/// [`super::async_pg`]).
pub async fn import_and_page_async<W: WriteEntry + 'static>(
    conn: &mut &diesel_async::AsyncPgConnection,
    account_id: &str,
    import_id: &str,
    statuses: &[&'static str],
    after: i64,
    limit: i64,
) -> Result<Option<(Import, Vec<Written>)>, diesel::result::Error> {
    let rows: Vec<WrittenRow<W>> = if statuses.is_empty() {
        let query = PgImportAndPage::<false>::new(account_id, import_id, statuses, after, limit);
        diesel_async::RunQueryDsl::load(query, conn).await?
    } else {
        let query = PgImportAndPage::<true>::new(account_id, import_id, statuses, after, limit);
        diesel_async::RunQueryDsl::load(query, conn).await?
    };
    import_and_entries(rows)
}

/// A row of [`PgImportAndPage`] with its entry written by `W` straight
/// from the row it arrived in: no [`Entry`] is built, and no string of it
/// copied but into the text `W` writes (a page of 100 entries cost the
/// server 166 µs of CPU this way against 178 µs through `Entry`s).
struct WrittenRow<W> {
    row: PageRow,
    writer: std::marker::PhantomData<fn() -> W>,
}

/// A row of [`PgImportAndPage`]: the import as `row_to_json` wrote it, or
/// an entry.
enum PageRow {
    Import(String),
    Entry(Written),
}

impl<W: WriteEntry> diesel::deserialize::FromSqlRow<(Nullable<Text>, EntryRow), Pg>
    for WrittenRow<W>
{
    fn build_from_row<'a>(
        row: &impl diesel::row::Row<'a, Pg>,
    ) -> diesel::deserialize::Result<Self> {
        use diesel::row::Field;
        let field = |i: usize| row.get(i).ok_or("a column of the report page is missing");
        let (json, position, line, raw, email, status, reason) = (
            field(0)?,
            field(1)?,
            field(2)?,
            field(3)?,
            field(4)?,
            field(5)?,
            field(6)?,
        );
        let row = match json.value() {
            Some(json) => PageRow::Import(text(&json)?.to_owned()),
            None => {
                let (raw, email, status, reason) =
                    (raw.value(), email.value(), status.value(), reason.value());
                let entry = EntryRef {
                    position: big_int(position.value())?,
                    line: big_int(line.value())?,
                    raw: text(raw.as_ref().ok_or("raw is null")?)?,
                    email: email.as_ref().map(text).transpose()?,
                    status: text(status.as_ref().ok_or("status is null")?)?,
                    reason: reason.as_ref().map(text).transpose()?,
                };
                PageRow::Entry(Written::new::<W>(entry)?)
            }
        };
        Ok(WrittenRow {
            row,
            writer: std::marker::PhantomData,
        })
    }
}

/// A text column's value, borrowed.
fn text<'v>(value: &'v diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<&'v str> {
    let bytes = value.as_bytes();
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8. Most entries are ASCII, and checking that
        // takes half the time of a full UTF-8 check or less on strings this
        // short (the full check was 4 % of the server's time on a page).
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    Ok(std::str::from_utf8(bytes)?)
}

/// A `BIGINT` column's value (binary: 8 bytes, big-endian).
fn big_int(value: Option<diesel::pg::PgValue<'_>>) -> diesel::deserialize::Result<i64> {
    let value = value.ok_or("a position or line is null")?;
    Ok(i64::from_be_bytes(value.as_bytes().try_into()?))
}

/// The import and its entries in file order, from rows of
/// [`PgImportAndPage`]; `None` when the account has no such import.
fn import_and_entries<W>(rows: Vec<WrittenRow<W>>) -> QueryResult<Option<(Import, Vec<Written>)>> {
    let mut import = None;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        match row.row {
            PageRow::Import(json) => {
                import = Some(
                    serde_json::from_str::<Import>(&json)
                        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?,
                )
            }
            PageRow::Entry(entry) => entries.push(entry),
        }
    }
    // The two halves of a UNION ALL come back in no promised order:
    // put the entries in file order (they mostly are; that is cheap).
    entries.sort_unstable_by_key(|e| e.position);
    Ok(import.map(|import| (import, entries)))
}

/// The SQL types of an [`Entry`] row.
type EntryRow = (BigInt, BigInt, Text, Nullable<Text>, Text, Nullable<Text>);

/// `(the import's row as JSON, an empty entry) UNION ALL (NULL, an entry's
/// row)…`: one row for the import and one for each entry of the page (the
/// empty entry, position 0, is not one: positions count from 1). The
/// import travels as one JSON text rather than as its 31 columns: every row
/// of a `UNION` has the same columns, and 31 NULLs on each entry's row cost
/// both sides more than the trip saved. The entries half asks whether the
/// import is the account's itself, so it reads nothing of another
/// account's import. A fixed text, prepared once per connection.
struct PgImportAndPage<'a, const FILTERED: bool> {
    entry_columns: <Entry as Selectable<Pg>>::SelectExpression,
    account_id: &'a str,
    import_id: &'a str,
    statuses: &'a [&'static str],
    after: i64,
    limit: i64,
}

impl<'a, const FILTERED: bool> PgImportAndPage<'a, FILTERED> {
    fn new(
        account_id: &'a str,
        import_id: &'a str,
        statuses: &'a [&'static str],
        after: i64,
        limit: i64,
    ) -> Self {
        PgImportAndPage {
            entry_columns: <Entry as Selectable<Pg>>::construct_selection(),
            account_id,
            import_id,
            statuses,
            after,
            limit,
        }
    }
}

/// [`PgImportAndPage`]'s statement is the same whatever its binds (one
/// with the status filter, one without).
struct PgImportAndPageId<const FILTERED: bool>;

impl<const FILTERED: bool> QueryId for PgImportAndPage<'_, FILTERED> {
    type QueryId = PgImportAndPageId<FILTERED>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const FILTERED: bool> Query for PgImportAndPage<'_, FILTERED> {
    type SqlType = (Nullable<Text>, EntryRow);
}

impl<const FILTERED: bool> RunQueryDsl<diesel::PgConnection> for PgImportAndPage<'_, FILTERED> {}

impl<const FILTERED: bool> QueryFragment<Pg> for PgImportAndPage<'_, FILTERED> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("(SELECT row_to_json(imports)::text, 0, 0, '', NULL, '', NULL");
        out.push_sql(" FROM imports WHERE imports.account_id = ");
        out.push_bind_param::<Text, _>(&self.account_id)?;
        out.push_sql(" AND imports.id = ");
        out.push_bind_param::<Text, _>(&self.import_id)?;
        out.push_sql(") UNION ALL (SELECT NULL, ");
        self.entry_columns.walk_ast(out.reborrow())?;
        out.push_sql(" FROM import_entries WHERE import_entries.import_id = ");
        out.push_bind_param::<Text, _>(&self.import_id)?;
        out.push_sql(" AND import_entries.position > ");
        out.push_bind_param::<BigInt, _>(&self.after)?;
        if FILTERED {
            out.push_sql(" AND import_entries.status = ANY(");
            out.push_bind_param::<Array<Text>, _>(&self.statuses)?;
            out.push_sql(")");
        }
        out.push_sql(" AND EXISTS (SELECT 1 FROM imports AS owner WHERE owner.account_id = ");
        out.push_bind_param::<Text, _>(&self.account_id)?;
        out.push_sql(" AND owner.id = ");
        out.push_bind_param::<Text, _>(&self.import_id)?;
        out.push_sql(" AND owner.erased_at IS NULL) ORDER BY import_entries.position LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(")");
        Ok(())
    }
}
