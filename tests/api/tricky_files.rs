//! A table of odd files, each checked entry by entry through the real
//! endpoint and report.

use crate::both_backends;
use crate::helpers::{counts, TestApp};

both_backends!(
    tricky_files_are_read_like_a_mail_clients_address_list,
    a_very_long_line_of_addresses_is_every_one_an_entry,
    a_million_copies_of_one_address_queue_one_invitation,
);

/// (line, raw, email, status) of each expected report entry.
type Expected = &'static [(i64, &'static str, Option<&'static str>, &'static str)];

const CASES: &[(&str, &[u8], Expected)] = &[
    (
        "UTF-8 BOM",
        b"\xEF\xBB\xBFann@x.io\nbob@y.io",
        &[
            (1, "ann@x.io", Some("ann@x.io"), "queued"),
            (2, "bob@y.io", Some("bob@y.io"), "queued"),
        ],
    ),
    (
        "CRLF line ends",
        b"ann@x.io\r\nbob@y.io\r\n",
        &[
            (1, "ann@x.io", Some("ann@x.io"), "queued"),
            (2, "bob@y.io", Some("bob@y.io"), "queued"),
        ],
    ),
    (
        "CR-only line ends",
        b"ann@x.io\rbob@y.io\rcarol@z.io",
        &[
            (1, "ann@x.io", Some("ann@x.io"), "queued"),
            (2, "bob@y.io", Some("bob@y.io"), "queued"),
            (3, "carol@z.io", Some("carol@z.io"), "queued"),
        ],
    ),
    (
        "blank lines and trailing separators",
        b"\n\nann@x.io,;\n  \n\t\nbob@y.io;,\n\n",
        &[
            (3, "ann@x.io", Some("ann@x.io"), "queued"),
            (6, "bob@y.io", Some("bob@y.io"), "queued"),
        ],
    ),
    (
        "commas, semicolons and spaces",
        b"ann@x.io, bob@y.io;carol@z.io dave@w.io",
        &[
            (1, "ann@x.io", Some("ann@x.io"), "queued"),
            (1, "bob@y.io", Some("bob@y.io"), "queued"),
            (1, "carol@z.io", Some("carol@z.io"), "queued"),
            (1, "dave@w.io", Some("dave@w.io"), "queued"),
        ],
    ),
    (
        "display names, quoted with a comma and plain",
        b"\"Lee, Ann\" <ann@x.io>, Bob Stone <Bob@Y.IO>\n",
        &[
            (1, "\"Lee, Ann\" <ann@x.io>", Some("ann@x.io"), "queued"),
            (1, "Bob Stone <Bob@Y.IO>", Some("Bob@y.io"), "queued"),
        ],
    ),
    (
        "an unclosed quote does not swallow the next line",
        b"\"Lee, Ann <ann@x.io>\nbob@y.io\n",
        &[
            (1, "\"Lee, Ann <ann@x.io>", None, "invalid"),
            (2, "bob@y.io", Some("bob@y.io"), "queued"),
        ],
    ),
    (
        "international domain to punycode, duplicates by case",
        "ann@Bücher.de\nANN@xn--bcher-kva.de\n".as_bytes(),
        &[
            (1, "ann@Bücher.de", Some("ann@xn--bcher-kva.de"), "queued"),
            (
                2,
                "ANN@xn--bcher-kva.de",
                Some("ANN@xn--bcher-kva.de"),
                "duplicate",
            ),
        ],
    ),
    (
        "UTF-16 little-endian with a BOM",
        b"\xFF\xFEa\x00@\x00x\x00.\x00i\x00o\x00",
        &[(1, "a@x.io", Some("a@x.io"), "queued")],
    ),
];

async fn tricky_files_are_read_like_a_mail_clients_address_list(app: TestApp) {
    for (name, file, expected) in CASES {
        let import = app.import(file.to_vec()).await;
        let entries = app.report(import["id"].as_str().unwrap()).await;
        let got: Vec<(i64, &str, Option<&str>, &str)> = entries
            .iter()
            .map(|e| {
                (
                    e["line"].as_i64().unwrap(),
                    e["raw"].as_str().unwrap(),
                    e["email"].as_str(),
                    e["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected.to_vec(), "case: {name}");
        counts(&import);
        // Each case stands alone: later cases must not see earlier addresses.
        reset_invitations(&app);
    }
}

async fn a_very_long_line_of_addresses_is_every_one_an_entry(app: TestApp) {
    let line: Vec<String> = (0..50_000)
        .map(|n| format!("person{n}@example.com"))
        .collect();
    let file = line.join(", ");
    assert!(file.len() > 1_000_000);

    let import = app.import(file).await;

    let c = counts(&import);
    assert_eq!(c["entries"], 50_000);
    assert_eq!(c["queued"], 50_000);
    let last: serde_json::Value = app
        .get(&format!(
            "/imports/{}/report?limit=1&cursor={}",
            import["id"].as_str().unwrap(),
            cursor_after(49_999)
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(last["entries"][0]["line"], 1);
    assert_eq!(last["entries"][0]["raw"], "person49999@example.com");
}

async fn a_million_copies_of_one_address_queue_one_invitation(app: TestApp) {
    let file = "Ann@Example.com\n".repeat(1_000_000);

    let import = app.import(file).await;

    let c = counts(&import);
    assert_eq!(c["entries"], 1_000_000);
    assert_eq!(c["queued"], 1);
    assert_eq!(c["duplicate"], 999_999);
    assert_eq!(app.count_rows("invitations"), 1);
}

/// A report cursor for the page after `position` (the format is opaque to
/// clients, but the tests may build one to jump deep).
/// A report cursor is the position of the last entry of the page before.
fn cursor_after(position: i64) -> String {
    position.to_string()
}

fn reset_invitations(app: &TestApp) {
    use diesel::RunQueryDsl;
    let mut conn = app.pool.get().unwrap();
    diesel::sql_query("DELETE FROM invitations")
        .execute(&mut *conn)
        .unwrap();
}
