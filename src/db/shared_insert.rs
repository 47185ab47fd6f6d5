//! SQLite: an import's rows inserted with the values they all share bound
//! once per statement instead of once per row.
//!
//! An import's invitations share their account, import, status and times
//! (five of nine columns), its entries their import (one of seven). Bound
//! per row through diesel, each value cost about 80 ns outside SQLite
//! (collecting it, binding it, unbinding it after the statement): in a
//! profile of a 1M import that was 36 % of the writing thread, the import's
//! slowest stage. Here each statement is
//!
//! ```sql
//! INSERT OR IGNORE INTO t (shared columns, own columns)
//! VALUES (?, ?, ?, ?, ?4, ?, ...), (?1, ?2, ?3, ?4, ?4, ?, ...), ...
//! ```
//!
//! SQLite numbers a plain `?` one past the largest number so far, so the
//! shared values are parameters 1 to n, bound once with the first row, and
//! every later row names them again by number; the rows' own values follow
//! in the order diesel binds them, except an entry's position after the
//! first row's, which is `?2 + k` (a batch's entries follow one another).
//! (The first form of this, `INSERT ...
//! SELECT ?, ..., column1, ... FROM (VALUES ...)`, made SQLite copy every
//! text value out of the `VALUES` into a fresh allocation: 2 % more
//! instructions on the writing thread.) Chunks have a fixed number of
//! rows, so a full chunk's statement is prepared once per connection (512
//! rows a statement instead of 128 cost more: the statements of the rest
//! are prepared anew).
//!
//! Measured on a 100,000-entry import under callgrind: the writing thread
//! ran 2.37 billion instructions instead of 2.87 (-17 %); on 1M, its CPU
//! time went from 4.0-4.8 s to 3.2-3.8 s.

use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl, SqliteConnection};

use super::macros::SQLITE_ROWS_PER_INSERT;
use super::models::{NewEntry, NewInvitation, Stamp};

/// Rows of one table inserted with values they share.
pub trait SharedRow: 'static {
    /// What every row of the statement has in common.
    type Shared<'s>: ?Sized;
    /// `INSERT OR IGNORE INTO t (shared columns, own columns) VALUES `.
    const HEAD: &'static str;
    /// The shared values again, by their numbers (`?1, ...`), in every row
    /// after the first.
    const AGAIN: &'static str;
    /// The shared values, as `?, ...` (the first parameters of the
    /// statement; one may be named again by its number).
    fn walk_shared<'b, 's>(
        shared: &'b Self::Shared<'s>,
        out: AstPass<'_, 'b, Sqlite>,
    ) -> QueryResult<()>;
    /// The row's own values, as `?, ...`; `at` is the row's place in its
    /// statement.
    fn walk_row<'b>(&'b self, at: usize, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()>;
    /// Refuses a statement's rows that [`walk_row`](Self::walk_row) cannot
    /// write as they are.
    fn check(_rows: &[Self]) -> QueryResult<()>
    where
        Self: Sized,
    {
        Ok(())
    }
}

/// The values an import's invitations share.
pub struct InvitationsShared<'a> {
    pub account_id: &'a str,
    pub import_id: &'a str,
    pub status: &'static str,
    /// Both their creation and their first attempt.
    pub at: &'a Stamp,
}

impl SharedRow for NewInvitation {
    type Shared<'s> = InvitationsShared<'s>;
    const HEAD: &'static str = "INSERT OR IGNORE INTO invitations \
        (account_id, import_id, status, next_attempt_at, created_at, id, position, email, email_key) \
        VALUES ";
    const AGAIN: &'static str = "?1, ?2, ?3, ?4, ?4";

    fn walk_shared<'b, 's>(
        shared: &'b Self::Shared<'s>,
        mut out: AstPass<'_, 'b, Sqlite>,
    ) -> QueryResult<()> {
        out.push_bind_param::<Text, _>(shared.account_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(shared.import_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(shared.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(shared.at)?;
        // The fourth parameter again: created when first due.
        out.push_sql(", ?4");
        Ok(())
    }

    fn walk_row<'b>(&'b self, _at: usize, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_bind_param::<Text, _>(&self.id)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.position)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.email)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.email_key)
    }
}

/// An entry's own `import_id` is the import's too ([`NewEntry`] carries it
/// for PostgreSQL's `COPY`); SQLite binds the import's once instead.
impl SharedRow for NewEntry {
    /// The import.
    type Shared<'s> = str;
    const HEAD: &'static str = "INSERT OR IGNORE INTO import_entries \
        (import_id, position, line, raw, email, status, reason) VALUES ";
    const AGAIN: &'static str = "?1";

    fn walk_shared<'b, 's>(
        import_id: &'b str,
        mut out: AstPass<'_, 'b, Sqlite>,
    ) -> QueryResult<()> {
        out.push_bind_param::<Text, _>(import_id)
    }

    /// The first row binds its position (parameter 2); each later one is
    /// that position plus its place in the statement, one value fewer to
    /// bind per entry ([`check`](Self::check) holds them to it).
    fn walk_row<'b>(&'b self, at: usize, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        match at {
            0 => out.push_bind_param::<BigInt, _>(&self.position)?,
            _ => out.push_sql(&ENTRY_POSITIONS[at]),
        }
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.line)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.raw)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.email)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.reason)
    }

    /// A batch's entries are every entry of a stretch of the file, so their
    /// positions follow one another.
    fn check(rows: &[Self]) -> QueryResult<()> {
        let first = rows.first().map_or(0, |e| e.position);
        if (0..).zip(rows).all(|(at, e)| e.position == first + at) {
            return Ok(());
        }
        Err(diesel::result::Error::QueryBuilderError(
            "an import's entries are written in runs of consecutive positions".into(),
        ))
    }
}

/// `?2 + k`: the position of an entry `k` rows after its statement's first.
static ENTRY_POSITIONS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    (0..SQLITE_ROWS_PER_INSERT)
        .map(|at| format!("?2 + {at}"))
        .collect()
});

/// `INSERT OR IGNORE` of `rows` with `shared`, in statements of
/// [`SQLITE_ROWS_PER_INSERT`] rows (and one of the rest), handing
/// `written(rows written, rows asked)` the outcome of each statement (its
/// error ends the insert). `OR IGNORE` for the reason
/// [`sqlite_insert_or_ignore`](super::macros) gives: each caller says what
/// a row turned away means.
pub fn insert<R: SharedRow>(
    c: &mut SqliteConnection,
    shared: &R::Shared<'_>,
    rows: &[R],
    mut written: impl FnMut(usize, usize) -> QueryResult<()>,
) -> QueryResult<()> {
    for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
        R::check(chunk)?;
        let inserted = if chunk.len() == SQLITE_ROWS_PER_INSERT {
            Insert::<R, true> {
                shared,
                rows: chunk,
            }
            .execute(c)?
        } else {
            Insert::<R, false> {
                shared,
                rows: chunk,
            }
            .execute(c)?
        };
        written(inserted, chunk.len())?;
    }
    Ok(())
}

/// One statement of [`insert`]; `FULL`: of [`SQLITE_ROWS_PER_INSERT`]
/// rows, so its text is always the same and it is prepared once.
struct Insert<'a, 's, R: SharedRow, const FULL: bool> {
    shared: &'a R::Shared<'s>,
    rows: &'a [R],
}

/// The type a full [`Insert`]'s prepared statement is found by.
pub struct InsertId<R, const FULL: bool>(std::marker::PhantomData<R>);

impl<R: SharedRow, const FULL: bool> QueryId for Insert<'_, '_, R, FULL> {
    type QueryId = InsertId<R, FULL>;
    // A chunk of the rest has a text of its own length: found by its text.
    const HAS_STATIC_QUERY_ID: bool = FULL;
}

impl<R: SharedRow, const FULL: bool> QueryFragment<Sqlite> for Insert<'_, '_, R, FULL> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(R::HEAD);
        for (i, row) in self.rows.iter().enumerate() {
            if i == 0 {
                out.push_sql("(");
                R::walk_shared(self.shared, out.reborrow())?;
            } else {
                out.push_sql(", (");
                out.push_sql(R::AGAIN);
            }
            out.push_sql(", ");
            row.walk_row(i, out.reborrow())?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl<R: SharedRow, const FULL: bool> RunQueryDsl<SqliteConnection> for Insert<'_, '_, R, FULL> {}

#[cfg(test)]
mod tests {
    use super::{insert, InvitationsShared};
    use crate::db::macros::SQLITE_ROWS_PER_INSERT;
    use crate::db::models::{NewEntry, NewInvitation, Stamp};
    use crate::db::schema::{import_entries, invitations};
    use crate::db::scratch::sqlite;
    use crate::db::{accounts, now, DbConnection};
    use chrono::NaiveDateTime;
    use diesel::prelude::*;

    fn invitation(position: i64, email: &str) -> NewInvitation {
        NewInvitation {
            id: uuid::Uuid::now_v7().to_string(),
            position,
            email: email.to_owned(),
            email_key: email.to_ascii_lowercase(),
        }
    }

    #[test]
    fn every_row_gets_the_shared_values_and_its_own_and_a_turned_away_row_is_counted() {
        let (_dir, mut pooled) = sqlite();
        let account = accounts::create(&mut pooled, "A", "bik_shared_insert_test").unwrap();
        let DbConnection::Sqlite(c) = &mut *pooled else {
            unreachable!("a SQLite scratch database")
        };
        let when = now();
        let at = Stamp::new(when);
        let shared = |import_id| InvitationsShared {
            account_id: &account.id,
            import_id,
            status: "queued",
            at: &at,
        };
        // An open invitation the second import's fifth address already has.
        insert(
            c,
            &shared("import-0"),
            &[invitation(0, "taken@x.io")],
            |n, _| {
                assert_eq!(n, 1);
                Ok(())
            },
        )
        .unwrap();

        // A full statement and a rest of two rows.
        let rows: Vec<NewInvitation> = (0..SQLITE_ROWS_PER_INSERT as i64 + 2)
            .map(|p| match p {
                5 => invitation(p, "Taken@X.io"),
                _ => invitation(p, &format!("User{p}@X.io")),
            })
            .collect();
        let mut outcomes = Vec::new();
        insert(c, &shared("import-1"), &rows, |written, asked| {
            outcomes.push((written, asked));
            Ok(())
        })
        .unwrap();
        let full = SQLITE_ROWS_PER_INSERT;
        assert_eq!(outcomes, [(full - 1, full), (2, 2)]);

        type Row = (
            String,
            String,
            String,
            i64,
            String,
            String,
            String,
            NaiveDateTime,
            NaiveDateTime,
        );
        let written: Vec<Row> = invitations::table
            .filter(invitations::import_id.eq("import-1"))
            .order(invitations::position)
            .select((
                invitations::id,
                invitations::account_id,
                invitations::import_id,
                invitations::position,
                invitations::email,
                invitations::email_key,
                invitations::status,
                invitations::next_attempt_at,
                invitations::created_at,
            ))
            .load(c)
            .unwrap();
        let expected: Vec<&NewInvitation> = rows.iter().filter(|r| r.position != 5).collect();
        assert_eq!(written.len(), expected.len());
        for (row, asked) in written.iter().zip(expected) {
            let (id, account_id, import_id, position, email, key, status, due, created) = row;
            assert_eq!(
                (id, position, email, key),
                (&asked.id, &asked.position, &asked.email, &asked.email_key)
            );
            assert_eq!(
                (account_id, import_id.as_str(), status.as_str()),
                (&account.id, "import-1", "queued")
            );
            assert_eq!((due, created), (&when, &when));
        }
    }

    #[test]
    fn entries_get_their_import_and_their_own_values_in_order() {
        let (_dir, mut pooled) = sqlite();
        let DbConnection::Sqlite(c) = &mut *pooled else {
            unreachable!("a SQLite scratch database")
        };
        let entries: Vec<NewEntry> = (0..SQLITE_ROWS_PER_INSERT as i64 + 1)
            .map(|p| NewEntry {
                import_id: "import-1".into(),
                position: p,
                line: p * 2 + 1,
                raw: format!("raw {p}"),
                email: (p % 3 != 0).then(|| format!("e{p}@x.io")),
                status: if p % 3 == 0 { "invalid" } else { "queued" },
                reason: (p % 3 == 0).then_some("not an address"),
            })
            .collect();
        insert(c, "import-1", &entries, |written, asked| {
            assert_eq!(written, asked);
            Ok(())
        })
        .unwrap();

        type Row = (
            String,
            i64,
            i64,
            String,
            Option<String>,
            String,
            Option<String>,
        );
        let written: Vec<Row> = import_entries::table
            .order(import_entries::position)
            .select((
                import_entries::import_id,
                import_entries::position,
                import_entries::line,
                import_entries::raw,
                import_entries::email,
                import_entries::status,
                import_entries::reason,
            ))
            .load(c)
            .unwrap();
        let asked: Vec<Row> = entries
            .iter()
            .map(|e| {
                let (raw, email) = (e.raw.clone(), e.email.clone());
                let reason = e.reason.map(str::to_owned);
                (
                    "import-1".into(),
                    e.position,
                    e.line,
                    raw,
                    email,
                    e.status.into(),
                    reason,
                )
            })
            .collect();
        assert_eq!(written, asked);
    }

    #[test]
    fn entries_out_of_their_run_are_refused_before_anything_is_written() {
        let (_dir, mut pooled) = sqlite();
        let DbConnection::Sqlite(c) = &mut *pooled else {
            unreachable!("a SQLite scratch database")
        };
        let entry = |position| NewEntry {
            import_id: "import-1".into(),
            position,
            line: position + 1,
            raw: format!("raw {position}"),
            email: None,
            status: "invalid",
            reason: Some("not an address"),
        };
        // A gap after the first row: `?2 + 1` would write 6 as 5.
        let entries = [entry(4), entry(6), entry(7)];
        let error = insert(c, "import-1", &entries[..], |_, _| Ok(())).unwrap_err();
        assert!(error.to_string().contains("consecutive"), "{error}");
        let written: i64 = import_entries::table.count().get_result(c).unwrap();
        assert_eq!(written, 0);
    }
}
