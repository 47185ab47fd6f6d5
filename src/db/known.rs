//! What an account holds for some addresses: which of them are its users,
//! on its suppression list, or hold an open invitation. Asked about the
//! addresses of one batch of a file at a time, through the indexes on
//! `(account_id, email_key)`, so classifying a file costs what the file
//! costs whatever the account already holds.

use super::{now, DbConnection};
use crate::domain::classify::{key_hash, KeySet, Known};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, Integer, Text, Timestamp};
use diesel::sqlite::Sqlite;

/// Which of `keys` (address keys, [`crate::domain::EmailAddress::key`])
/// the account has as users, suppressions and pending unexpired
/// invitations. Inside the caller's transaction, so an import sees what it
/// would see had it read the whole account at that moment.
#[tracing::instrument(skip(conn, keys), fields(keys = keys.len()))]
pub fn lookup(conn: &mut DbConnection, account_id: &str, keys: &[&str]) -> QueryResult<Known> {
    lookup_of(conn, account_id, keys, Ask::All)
}

/// Like [`lookup`], without the open invitations (`pending` stays empty):
/// for a writer that lets the index of open invitations turn those away
/// as it inserts (see `imports`).
pub fn lookup_people(
    conn: &mut DbConnection,
    account_id: &str,
    keys: &[&str],
) -> QueryResult<Known> {
    lookup_of(conn, account_id, keys, Ask::People)
}

/// What [`lookup_of`] asks about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Users, suppressions and open invitations.
    All,
    /// Users and suppressions only.
    People,
}

fn lookup_of(
    conn: &mut DbConnection,
    account_id: &str,
    keys: &[&str],
    ask: Ask,
) -> QueryResult<Known> {
    let mut known = Known::default();
    if keys.is_empty() {
        return Ok(known);
    }
    let now = now();
    let [users, suppressed, pending] = match conn {
        DbConnection::Sqlite(c) => sqlite_lookup(c, account_id, keys, now, ask)?,
        DbConnection::Pg(c) => pg_lookup(c, account_id, keys, now, ask)?,
    };
    add(&mut known.users, users);
    add(&mut known.suppressed, suppressed);
    add(&mut known.pending, pending);
    Ok(known)
}

/// PostgreSQL gets the keys as one array, in one statement for all three
/// tables, and probes each table's index once per key (a `LATERAL`
/// subquery with `LIMIT 1`, which the planner cannot turn into a scan of
/// the account's rows): `email_key = ANY($2)` would, in a generic plan of
/// a cached statement, compare every row it reads with every key of the
/// batch.
///
/// Each table's probes run only when the account has a row there (an
/// uncorrelated `EXISTS`, which PostgreSQL evaluates once, before the
/// probes, as a one-time filter): an account's first import, or one with
/// no suppressions, does not probe an empty index 20,000 times per batch.
/// The answer is the one the probes would give at that moment.
fn pg_lookup(
    conn: &mut diesel::PgConnection,
    account_id: &str,
    keys: &[&str],
    now: NaiveDateTime,
    ask: Ask,
) -> QueryResult<[Vec<String>; 3]> {
    #[derive(QueryableByName)]
    struct Hit {
        #[diesel(sql_type = Integer)]
        kind: i32,
        #[diesel(sql_type = Text)]
        key: String,
    }
    let query = diesel::sql_query(match ask {
        Ask::All => &*PG_LOOKUP_ALL,
        Ask::People => &*PG_LOOKUP_PEOPLE,
    })
    .bind::<Text, _>(account_id)
    .bind::<Array<Text>, _>(keys);
    let hits: Vec<Hit> = match ask {
        Ask::All => query.bind::<Timestamp, _>(now).load(conn)?,
        Ask::People => query.load(conn)?,
    };
    let mut found: [Vec<String>; 3] = Default::default();
    for hit in hits {
        match found.get_mut(hit.kind as usize) {
            Some(keys) => keys.push(hit.key),
            None => {
                return Err(diesel::result::Error::DeserializationError(
                    format!("lookup answered an unknown kind {}", hit.kind).into(),
                ))
            }
        }
    }
    Ok(found)
}

/// One branch of [`pg_lookup`]'s statement: the keys of `$2` that `table`
/// holds for the account `$1`, as `kind`. `open` narrows both the probes
/// and their gate; `unexpired` only the probes.
fn pg_probe(kind: usize, table: &str, open: &str, unexpired: &str) -> String {
    format!(
        "SELECT {kind} AS kind, k.key FROM unnest($2::text[]) AS k(key) CROSS JOIN LATERAL \
         (SELECT 1 FROM {table} WHERE {table}.account_id = $1 AND {table}.email_key = k.key\
          {open}{unexpired} LIMIT 1) AS hit \
         WHERE EXISTS (SELECT 1 FROM {table} WHERE {table}.account_id = $1{open})"
    )
}

/// Users (kind 0) and suppressions (kind 1).
static PG_LOOKUP_PEOPLE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} UNION ALL {}",
        pg_probe(0, "users", "", ""),
        pg_probe(1, "suppressions", "", "")
    )
});

/// Users, suppressions and open unexpired invitations (kind 2) at `$3`.
/// The open statuses are the partial index's own words
/// ([`super::address_rule::PG_OPEN_CONDITION`]), so that index serves both
/// the probes and the gate.
static PG_LOOKUP_ALL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let invitations = pg_probe(
        2,
        "invitations",
        &format!(" AND {}", super::address_rule::PG_OPEN_CONDITION),
        " AND (invitations.expires_at IS NULL OR invitations.expires_at > $3)",
    );
    format!("{} UNION ALL {invitations}", *PG_LOOKUP_PEOPLE)
});

/// SQLite gets the keys as one JSON array read by `json_each`: an `IN`
/// list of binds would be a new statement to parse for every batch (diesel
/// does not cache those), which costs more than the lookup. The open
/// statuses are written out so the partial index of open invitations
/// serves the lookup.
///
/// As on PostgreSQL, a table is asked about the keys only when the account
/// has a row there (an uncorrelated `EXISTS`, which SQLite runs as the
/// outermost loop, of one row at most, so the keys are neither parsed nor
/// probed when it finds none): in a profile of a 1M import into an account
/// without users or suppressions, the thread asking took a fifth of a core
/// to find nothing.
fn sqlite_lookup(
    conn: &mut diesel::SqliteConnection,
    account_id: &str,
    keys: &[&str],
    now: NaiveDateTime,
    ask: Ask,
) -> QueryResult<[Vec<String>; 3]> {
    let keys = serde_json::to_string(keys)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let lookup = |table, now| SqliteLookup {
        table,
        account_id,
        keys: &keys,
        now,
    };
    Ok([
        lookup("users", None).load(conn)?,
        lookup("suppressions", None).load(conn)?,
        match ask {
            Ask::All => lookup("invitations", Some(now)).load(conn)?,
            Ask::People => Vec::new(),
        },
    ])
}

/// `SELECT email_key FROM {table} WHERE account_id = ? AND email_key IN
/// (the keys) AND EXISTS (a row of the account in {table})`, and for
/// invitations only the open, unexpired ones (the gate: the open ones); a
/// fixed text per table, so SQLite prepares it once per connection.
struct SqliteLookup<'a> {
    table: &'static str,
    account_id: &'a str,
    keys: &'a str,
    /// Set for invitations: open at this time.
    now: Option<NaiveDateTime>,
}

impl QueryId for SqliteLookup<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for SqliteLookup<'_> {
    type SqlType = Text;
}

impl RunQueryDsl<diesel::SqliteConnection> for SqliteLookup<'_> {}

impl QueryFragment<Sqlite> for SqliteLookup<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("SELECT email_key FROM ");
        out.push_identifier(self.table)?;
        out.push_sql(" WHERE account_id = ");
        out.push_bind_param::<Text, _>(&self.account_id)?;
        out.push_sql(" AND email_key IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.keys)?;
        out.push_sql("))");
        let open = |mut out: AstPass<'_, 'b, Sqlite>| {
            if self.now.is_some() {
                out.push_sql(" AND ");
                out.push_sql(super::address_rule::SQLITE_OPEN_CONDITION);
            }
        };
        open(out.reborrow());
        if let Some(now) = &self.now {
            out.push_sql(" AND (expires_at IS NULL OR expires_at > ");
            out.push_bind_param::<Timestamp, _>(now)?;
            out.push_sql(")");
        }
        // The inner `account_id` (and the open condition's `invitations`)
        // name the subquery's own table, the innermost.
        out.push_sql(" AND EXISTS (SELECT 1 FROM ");
        out.push_identifier(self.table)?;
        out.push_sql(" WHERE account_id = ");
        out.push_bind_param::<Text, _>(&self.account_id)?;
        open(out.reborrow());
        out.push_sql(")");
        Ok(())
    }
}

fn add(set: &mut KeySet, keys: Vec<String>) {
    set.extend(keys.iter().map(|key| key_hash(key)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::scratch::{sqlite, sqlite_plan};

    /// The open invitations of a batch's addresses (a preview asks for
    /// them) come from the partial index of open invitations, not from the
    /// account's whole history.
    #[test]
    fn sqlite_asks_the_index_of_open_invitations_for_a_batch() {
        let (_dir, mut conn) = sqlite();
        let DbConnection::Sqlite(c) = &mut *conn else {
            panic!("not SQLite")
        };
        let lookup = SqliteLookup {
            table: "invitations",
            account_id: "a",
            keys: r#"["k@x.io"]"#,
            now: Some(now()),
        };
        let sql = diesel::debug_query::<Sqlite, _>(&lookup).to_string();
        let sql = sql.split(" -- binds").next().unwrap();
        let plan = sqlite_plan(c, sql);
        assert!(plan.contains("INDEX invitations_open_address"), "{plan}");
    }

    /// Each lookup's gate (does the account have a row in the table at
    /// all?) is one descent of the table's index of addresses, asked once
    /// per statement, not a scan of the table or a question per key.
    #[test]
    fn sqlite_asks_each_table_whether_the_account_has_rows_once_through_its_index() {
        let (_dir, mut conn) = sqlite();
        let DbConnection::Sqlite(c) = &mut *conn else {
            panic!("not SQLite")
        };
        for (table, now, index) in [
            ("users", None, "users"),
            ("suppressions", None, "suppressions"),
            ("invitations", Some(now()), "invitations_open_address"),
        ] {
            let lookup = SqliteLookup {
                table,
                account_id: "a",
                keys: r#"["k@x.io"]"#,
                now,
            };
            let sql = diesel::debug_query::<Sqlite, _>(&lookup).to_string();
            let sql = sql.split(" -- binds").next().unwrap();
            let plan = sqlite_plan(c, sql);
            // The gate is the outermost loop, of one row at most: the keys
            // are read and probed only inside it.
            let gate = plan.split("; ").next().unwrap();
            assert!(
                gate.starts_with(&format!("SEARCH {table} EXISTS USING")),
                "{plan}"
            );
            assert!(gate.contains(index), "{plan}");
            assert!(!plan.contains(&format!("SCAN {table}")), "{plan}");
        }
    }
}
