//! Migrations on databases that already hold rows.
//!
//! - The open-invitation rule's migration on a database that already holds
//!   an address with several open invitations (as main could make them):
//!   one stays open (the one already emailed), the others are revoked with
//!   their report entries, and their imports' counts and statuses follow.
//! - SQLite's bulk tables becoming rowid tables: every row and every index
//!   is there after it, and the (import, position) key still holds.

use crate::helpers::{create_database, postgres_available};
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const RULE: &str = "open_invitation_rules";

/// ann has three open invitations (sent in imp1, queued in imp2 and
/// imp3); bob one, queued in imp2.
const BEFORE: &[&str] = &[
    "INSERT INTO accounts (id, name, created_at) VALUES ('acc', 'Acme', '2026-11-26 10:00:00')",
    "INSERT INTO imports (id, account_id, size_bytes, content_sha256, status, created_at, entries, invited, queued, sent) VALUES \
     ('imp1', 'acc', 9, 'x', 'completed', '2026-11-26 10:00:00', 1, 1, 0, 1), \
     ('imp2', 'acc', 18, 'y', 'dispatching', '2026-11-26 10:01:00', 2, 2, 2, 0), \
     ('imp3', 'acc', 9, 'z', 'dispatching', '2026-11-26 10:02:00', 1, 1, 1, 0)",
    "INSERT INTO import_entries (import_id, position, line, raw, email, status) VALUES \
     ('imp1', 1, 1, 'ann@x.io', 'ann@x.io', 'sent'), ('imp2', 1, 1, 'ann@x.io', 'ann@x.io', 'queued'), \
     ('imp2', 2, 2, 'bob@x.io', 'bob@x.io', 'queued'), ('imp3', 1, 1, 'ANN@x.io', 'ANN@x.io', 'queued')",
    "INSERT INTO invitations (id, account_id, import_id, position, email, email_key, status, next_attempt_at, created_at) VALUES \
     ('i1', 'acc', 'imp1', 1, 'ann@x.io', 'ann@x.io', 'sent', '2026-11-26 10:00:00', '2026-11-26 10:00:00'), \
     ('i2', 'acc', 'imp2', 1, 'ann@x.io', 'ann@x.io', 'queued', '2026-11-26 10:01:00', '2026-11-26 10:01:00'), \
     ('i3', 'acc', 'imp2', 2, 'bob@x.io', 'bob@x.io', 'queued', '2026-11-26 10:01:00', '2026-11-26 10:01:00'), \
     ('i4', 'acc', 'imp3', 1, 'ANN@x.io', 'ann@x.io', 'queued', '2026-11-26 10:02:00', '2026-11-26 10:02:00')",
];

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    queued: i64,
    #[diesel(sql_type = BigInt)]
    revoked: i64,
}

/// Each invitation's status, its entry's status and its import's queued
/// and revoked counts and status, by invitation id.
const AFTER: &str = "SELECT i.id AS id, i.status || '/' || e.status || '/' || m.status AS status, \
    m.queued AS queued, m.revoked AS revoked FROM invitations i \
    JOIN import_entries e ON e.import_id = i.import_id AND e.position = i.position \
    JOIN imports m ON m.id = i.import_id ORDER BY i.id";

fn expected() -> Vec<Row> {
    let row = |id: &str, status: &str, queued, revoked| Row {
        id: id.into(),
        status: status.into(),
        queued,
        revoked,
    };
    vec![
        row("i1", "sent/sent/completed", 0, 0),
        row("i2", "revoked/revoked/dispatching", 1, 1),
        row("i3", "queued/queued/dispatching", 1, 1),
        row("i4", "revoked/revoked/completed", 0, 1),
    ]
}

/// Runs the migrations before the one whose name contains `name`.
fn migrate_up_to<C, DB>(conn: &mut C, source: EmbeddedMigrations, name: &str)
where
    C: MigrationHarness<DB>,
    DB: diesel::backend::Backend,
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    let pending = conn.pending_migrations(source).expect("pending migrations");
    for migration in &pending {
        if migration.name().to_string().contains(name) {
            return;
        }
        conn.run_migration(migration.as_ref())
            .expect("an earlier migration");
    }
    panic!("no migration is named {name}");
}

#[test]
fn sqlite_duplicates_made_before_the_rule_are_settled_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    migrate_up_to(&mut conn, SQLITE, RULE);
    for sql in BEFORE {
        diesel::sql_query(*sql).execute(&mut conn).unwrap();
    }

    conn.run_pending_migrations(SQLITE)
        .expect("the rule's migration");

    let rows: Vec<Row> = diesel::sql_query(AFTER).load(&mut conn).unwrap();
    assert_eq!(rows, expected());
}

#[test]
fn postgres_duplicates_made_before_the_rule_are_settled_and_counted() {
    if !postgres_available() {
        return;
    }
    let admin = std::env::var("TEST_POSTGRES_URL").unwrap();
    let name = format!("bulk_invite_migration_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::establish(&create_database(&admin, &name)).unwrap();
    migrate_up_to(&mut conn, POSTGRES, RULE);
    for sql in BEFORE {
        diesel::sql_query(*sql).execute(&mut conn).unwrap();
    }

    let migrated = conn.run_pending_migrations(POSTGRES).map(|_| ());
    let rows = diesel::sql_query(AFTER).load::<Row>(&mut conn);
    drop(conn);
    let mut admin_conn = PgConnection::establish(&admin).unwrap();
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin_conn);

    migrated.expect("the rule's migration");
    assert_eq!(rows.unwrap(), expected());
}

/// Two imports' entries and invitations, every column of them set in one
/// row or another (an emailed invitation, a queued one, a revoked one).
const BULK_ROWS: &[&str] = &[
    "INSERT INTO accounts (id, name, created_at) VALUES ('acc', 'Acme', '2026-11-26 10:00:00')",
    "INSERT INTO imports (id, account_id, size_bytes, content_sha256, status, created_at) VALUES \
     ('imp1', 'acc', 9, 'x', 'dispatching', '2026-11-26 10:00:00'), \
     ('imp2', 'acc', 9, 'y', 'dispatching', '2026-11-26 10:01:00')",
    "INSERT INTO import_entries (import_id, position, line, raw, email, status, reason) VALUES \
     ('imp2', 1, 1, 'Ann <ann@x.io>', 'ann@x.io', 'sent', NULL), \
     ('imp1', 2, 3, 'not an address', NULL, 'invalid', 'missing @'), \
     ('imp1', 1, 1, 'bob@x.io', 'bob@x.io', 'queued', NULL), \
     ('imp1', 3, 4, 'cy@x.io', 'cy@x.io', 'revoked', 'revoked by an admin')",
    "INSERT INTO invitations (id, account_id, import_id, position, email, email_key, status, attempts, \
       next_attempt_at, batch_id, lease_owner, lease_expires_at, token_hash, token_version, \
       provider_message_id, last_error, created_at, sent_at, expires_at, accepted_at, rendered_at, \
       rendered_expires_at, maybe_sent, rendered_account_name, rendered_reply_to) VALUES \
     ('i3', 'acc', 'imp2', 1, 'ann@x.io', 'ann@x.io', 'sent', 1, '2026-11-26 10:01:00', 'b1', NULL, NULL, \
      'hash-ann', 2, 'msg-1', NULL, '2026-11-26 10:01:00', '2026-11-26 10:02:00', '2026-12-03 10:02:00', \
      NULL, '2026-11-26 10:01:30', '2026-12-03 10:01:30', TRUE, 'Acme', 'ops@acme.io'), \
     ('i1', 'acc', 'imp1', 1, 'bob@x.io', 'bob@x.io', 'queued', 2, '2026-11-26 10:05:00', 'b2', 'w1', \
      '2026-11-26 10:06:00', NULL, 0, NULL, 'timeout', '2026-11-26 10:00:00', NULL, NULL, NULL, NULL, \
      NULL, FALSE, NULL, NULL), \
     ('i2', 'acc', 'imp1', 3, 'cy@x.io', 'cy@x.io', 'revoked', 0, '2026-11-26 10:00:00', NULL, NULL, NULL, \
      NULL, 0, NULL, 'revoked by an admin', '2026-11-26 10:00:00', NULL, NULL, NULL, NULL, NULL, FALSE, \
      NULL, NULL)",
];

/// Every column of every entry and invitation, in key order, as SQL literals.
const BULK_SNAPSHOT: &str = "SELECT (SELECT group_concat(row, ' | ') FROM (SELECT \
      quote(import_id) || ',' || quote(position) || ',' || quote(line) || ',' || quote(raw) || ',' || \
      quote(email) || ',' || quote(status) || ',' || quote(reason) AS row \
      FROM import_entries ORDER BY import_id, position)) || ' || ' || \
    (SELECT group_concat(row, ' | ') FROM (SELECT \
      quote(id) || ',' || quote(account_id) || ',' || quote(import_id) || ',' || quote(position) || ',' || \
      quote(email) || ',' || quote(email_key) || ',' || quote(status) || ',' || quote(attempts) || ',' || \
      quote(next_attempt_at) || ',' || quote(batch_id) || ',' || quote(lease_owner) || ',' || \
      quote(lease_expires_at) || ',' || quote(token_hash) || ',' || quote(token_version) || ',' || \
      quote(provider_message_id) || ',' || quote(last_error) || ',' || quote(created_at) || ',' || \
      quote(sent_at) || ',' || quote(expires_at) || ',' || quote(accepted_at) || ',' || \
      quote(rendered_at) || ',' || quote(rendered_expires_at) || ',' || quote(maybe_sent) || ',' || \
      quote(rendered_account_name) || ',' || quote(rendered_reply_to) AS row \
      FROM invitations ORDER BY import_id, position)) AS text";

#[derive(QueryableByName, Debug, PartialEq)]
struct Text1 {
    #[diesel(sql_type = Text)]
    text: String,
}

fn text(conn: &mut SqliteConnection, sql: &str) -> String {
    diesel::sql_query(sql)
        .get_result::<Text1>(conn)
        .unwrap()
        .text
}

#[test]
fn sqlite_bulk_tables_keep_every_row_and_index_as_rowid_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    migrate_up_to(&mut conn, SQLITE, "bulk_tables_by_rowid");
    for sql in BULK_ROWS {
        diesel::sql_query(*sql).execute(&mut conn).unwrap();
    }
    let indexes = "SELECT group_concat(name, ' ') AS text FROM (SELECT name FROM sqlite_schema \
        WHERE type = 'index' AND tbl_name IN ('import_entries', 'invitations') \
        AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name)";
    let (rows_before, indexes_before) = (text(&mut conn, BULK_SNAPSHOT), text(&mut conn, indexes));

    conn.run_pending_migrations(SQLITE)
        .expect("the rowid tables' migration");

    assert_eq!(text(&mut conn, BULK_SNAPSHOT), rows_before);
    assert_eq!(text(&mut conn, indexes), indexes_before);
    assert_eq!(indexes_before.split(' ').count(), 7, "{indexes_before}");
    let tables = text(
        &mut conn,
        "SELECT group_concat(sql, ' ') AS text FROM sqlite_schema \
         WHERE type = 'table' AND name IN ('import_entries', 'invitations')",
    );
    assert!(!tables.contains("WITHOUT ROWID"), "{tables}");
    // Times as diesel stores them, without a numeric affinity to try first.
    let time_types = text(
        &mut conn,
        "SELECT group_concat(DISTINCT type) AS text FROM pragma_table_info('invitations') \
         WHERE name LIKE '%_at'",
    );
    assert_eq!(time_types, "TEXT");
    // The keys still hold: an entry's position, an invitation's id, one
    // open invitation per address.
    for duplicate in [
        "INSERT INTO import_entries (import_id, position, line, raw, status) VALUES ('imp1', 2, 9, 'x', 'invalid')",
        "INSERT INTO invitations (id, account_id, import_id, position, email, email_key, status, next_attempt_at, created_at) \
         VALUES ('i1', 'acc', 'imp2', 7, 'dee@x.io', 'dee@x.io', 'queued', '2026-11-26 10:00:00', '2026-11-26 10:00:00')",
        "INSERT INTO invitations (id, account_id, import_id, position, email, email_key, status, next_attempt_at, created_at) \
         VALUES ('i9', 'acc', 'imp2', 8, 'BOB@x.io', 'bob@x.io', 'queued', '2026-11-26 10:00:00', '2026-11-26 10:00:00')",
    ] {
        let error = diesel::sql_query(duplicate).execute(&mut conn).unwrap_err();
        assert!(error.to_string().contains("UNIQUE"), "{duplicate}: {error}");
    }
}
