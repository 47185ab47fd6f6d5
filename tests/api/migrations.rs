//! The open-invitation rule's migration on a database that already holds
//! an address with several open invitations (as main could make them): one
//! stays open (the one already emailed), the others are revoked with their
//! report entries, and their imports' counts and statuses follow.

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

fn migrate_to_the_rule<C, DB>(conn: &mut C, source: EmbeddedMigrations)
where
    C: MigrationHarness<DB>,
    DB: diesel::backend::Backend,
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    let pending = conn.pending_migrations(source).expect("pending migrations");
    for migration in &pending {
        if migration.name().to_string().contains(RULE) {
            return;
        }
        conn.run_migration(migration.as_ref())
            .expect("an earlier migration");
    }
    panic!("no migration is named {RULE}");
}

#[test]
fn sqlite_duplicates_made_before_the_rule_are_settled_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    migrate_to_the_rule(&mut conn, SQLITE);
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
    migrate_to_the_rule(&mut conn, POSTGRES);
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
