//! The real binary on a fresh database: `serve` names the first account
//! from `BULK_INVITE_ACCOUNT_NAME`, `accounts rename` changes it, and logs
//! written to a pipe (a file, `docker logs`) carry no colour codes.

use crate::helpers::{create_database, postgres_available, Backend};
use diesel::{Connection, RunQueryDsl};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_serve_names_the_first_account_and_logs_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    serve_names_the_first_account_and_logs_without_colour(&url, Backend::Sqlite);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_serve_names_the_first_account_and_logs_without_colour() {
    if !postgres_available() {
        return;
    }
    let admin = std::env::var("TEST_POSTGRES_URL").expect("TEST_POSTGRES_URL");
    let name = format!("bulk_invite_test_{}", uuid::Uuid::new_v4().simple());
    let url = create_database(&admin, &name);
    serve_names_the_first_account_and_logs_without_colour(&url, Backend::Postgres);
    let mut conn = diesel::PgConnection::establish(&admin).unwrap();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .unwrap();
}

/// An unset variable in a compose file gives `DATABASE_URL=`: SQLite would
/// open a private, empty database per connection and the server would
/// answer 500 to everything. It is refused before anything starts.
#[test]
fn a_database_url_naming_no_file_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "",
        "  ",
        "sqlite://",
        "sqlite:",
        ":memory:",
        "sqlite://:memory:",
    ] {
        let refused = bulk_invite(url)
            .current_dir(dir.path())
            .arg("migrate")
            .output()
            .unwrap();
        assert!(!refused.status.success(), "{url:?}: {refused:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("DATABASE_URL") && stderr.contains("give"),
            "{url:?}: {stderr}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was created"
    );
}

fn bulk_invite(url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulk-invite"));
    command
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "info")
        .env_remove("LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn serve_names_the_first_account_and_logs_without_colour(url: &str, backend: Backend) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut child = bulk_invite(url)
        .arg("serve")
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("BULK_INVITE_ACCOUNT_NAME", " Acme Robotics ")
        .env("SERVE_DISPATCHER", "false")
        .env("HTTP_WORKERS", "1")
        .spawn()
        .expect("start bulk-invite serve");
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut logged = Vec::new();
    while !logged.iter().any(|l: &String| l.contains("listening")) {
        match received.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => logged.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start ({backend:?}): {logged:?}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();

    assert!(
        logged.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes in logs to a pipe: {logged:?}"
    );
    assert!(logged.iter().any(|l| l.contains(" INFO ")), "{logged:?}");
    // A first start on a new file logs no error (the pool's connections
    // once raced the file's switch to WAL: "database is locked").
    assert!(
        logged.iter().all(|l| !l.contains(" ERROR ")),
        "errors on a first start: {logged:?}"
    );
    let created = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Created the account Acme Robotics ("))
        .unwrap_or_else(|| panic!("the first account is named: {stdout}"));
    let id = created.trim_end_matches(").");

    let renamed = bulk_invite(url)
        .args(["accounts", "rename", id, "Acme Labs"])
        .output()
        .unwrap();
    assert!(renamed.status.success(), "{renamed:?}");
    assert_eq!(
        String::from_utf8_lossy(&renamed.stdout).trim(),
        format!("Renamed account {id} to Acme Labs.")
    );
    assert!(!renamed.stderr.contains(&0x1b));
    let pool = bulk_invite::db::connect(&bulk_invite::db::DbUrl::parse(url)).unwrap();
    let account = bulk_invite::db::accounts::find(&mut pool.get().unwrap(), id)
        .unwrap()
        .unwrap();
    assert_eq!(account.name, "Acme Labs");

    for args in [
        ["accounts", "rename", "no-such-id", "X"],
        ["accounts", "rename", id, "Two\nlines"],
    ] {
        let refused = bulk_invite(url).args(args).output().unwrap();
        assert!(!refused.status.success(), "{args:?}");
    }
    let account = bulk_invite::db::accounts::find(&mut pool.get().unwrap(), id)
        .unwrap()
        .unwrap();
    assert_eq!(
        account.name, "Acme Labs",
        "a refused rename changes nothing"
    );
}
