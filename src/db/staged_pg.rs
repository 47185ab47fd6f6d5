//! PostgreSQL: an import's invitations go into the table in address order.
//!
//! Each batch's invitations are kept in this process, compactly and sorted
//! by address key (a [`Run`]), and the whole import goes into `invitations`
//! in one binary `COPY` at the end, the runs merged as it streams. The
//! unique index of open invitations on `(account_id, email_key)` then takes
//! its new entries in key order, a sweep that changes each of its pages
//! once, instead of a million inserts at random places of an index as
//! large as the account's history, each page changed again after every
//! checkpoint (and a page's first change after a checkpoint writes the
//! whole page to the WAL).
//!
//! The runs hold what differs from row to row (the position, the address
//! and its key, once when they are the same): about 50 MB for 1M
//! invitations. The invitations' ids are made as they are written. Before,
//! the batches went through a temporary table and one `INSERT … SELECT …
//! ORDER BY`: the rows were written twice and sorted by the server, where
//! `COPY` also writes the heap in multi-row batches.

use super::models::NewInvitation;
use super::schema::invitations;
use chrono::NaiveDateTime;
use diesel::pg::{CopyFormat, PgConnection};
use diesel::prelude::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

/// Where a text is in a [`Run`]'s `text`.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn of(self, text: &str) -> &str {
        let start = self.start as usize;
        &text[start..start + self.len as usize]
    }
}

/// One invitation of a [`Run`].
#[derive(Debug, Clone, Copy)]
struct Staged {
    position: i64,
    key: Span,
    email: Span,
}

/// One batch's invitations, sorted by address key (byte order, as the
/// column's `COLLATE "C"` sorts), their addresses in one string.
#[derive(Debug, Default)]
pub struct Run {
    text: String,
    rows: Vec<Staged>,
}

impl Run {
    fn get(&self, span: Span) -> &str {
        span.of(&self.text)
    }

    fn key(&self, at: usize) -> &str {
        self.get(self.rows[at].key)
    }
}

/// Keeps `rows` (one batch's invitations, after its lookups) for
/// [`finish`]. Made by the thread that asks the account about the batch,
/// while the writing connection is busy with the batch before.
pub fn run(rows: &[NewInvitation]) -> Run {
    let bytes = rows
        .iter()
        .map(|r| {
            r.email_key.len()
                + if r.email == r.email_key {
                    0
                } else {
                    r.email.len()
                }
        })
        .sum();
    let mut text = String::with_capacity(bytes);
    let mut push = |s: &str| {
        let span = Span {
            start: text.len() as u32,
            len: s.len() as u32,
        };
        text.push_str(s);
        span
    };
    let mut staged: Vec<Staged> = rows
        .iter()
        .map(|r| {
            let key = push(&r.email_key);
            let email = if r.email == r.email_key {
                key
            } else {
                push(&r.email)
            };
            Staged {
                position: r.position,
                key,
                email,
            }
        })
        .collect();
    staged.sort_unstable_by(|a, b| a.key.of(&text).cmp(b.key.of(&text)));
    Run { text, rows: staged }
}

/// Writes the runs' invitations into `invitations` in address order, as
/// `status` invitations of `account_id` and `import_id`, made and due at
/// `created_at`, each with a new id.
pub fn finish(
    pg: &mut PgConnection,
    runs: &[Run],
    account_id: &str,
    import_id: &str,
    status: &str,
    created_at: NaiveDateTime,
) -> QueryResult<()> {
    if runs.iter().all(|r| r.rows.is_empty()) {
        return Ok(());
    }
    let micros = postgres_micros(created_at);
    use invitations as t;
    diesel::copy_from(t::table)
        .from_raw_data(
            (
                t::id,
                t::account_id,
                t::import_id,
                t::position,
                t::email,
                t::email_key,
                t::status,
                t::next_attempt_at,
                t::created_at,
            ),
            |out| {
                let mut buffer = Vec::with_capacity(BUFFER + 1024);
                buffer.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
                buffer.extend_from_slice(&0i32.to_be_bytes()); // flags
                buffer.extend_from_slice(&0i32.to_be_bytes()); // no header extension
                let mut id = uuid::Uuid::encode_buffer();
                for (run, at) in merged(runs) {
                    let row = run.rows[at];
                    buffer.extend_from_slice(&9i16.to_be_bytes());
                    let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut id);
                    text_field(&mut buffer, id);
                    text_field(&mut buffer, account_id);
                    text_field(&mut buffer, import_id);
                    int8_field(&mut buffer, row.position);
                    text_field(&mut buffer, run.get(row.email));
                    text_field(&mut buffer, run.get(row.key));
                    text_field(&mut buffer, status);
                    int8_field(&mut buffer, micros);
                    int8_field(&mut buffer, micros);
                    if buffer.len() >= BUFFER {
                        send(out, &buffer)?;
                        buffer.clear();
                    }
                }
                buffer.extend_from_slice(&(-1i16).to_be_bytes());
                send(out, &buffer)
            },
        )
        .with_format(CopyFormat::Binary)
        .execute(pg)?;
    Ok(())
}

fn send(out: &mut dyn Write, bytes: &[u8]) -> QueryResult<()> {
    out.write_all(bytes)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

/// Bytes handed to libpq at a time.
const BUFFER: usize = 64 * 1024;

/// The runs' rows in key order: a merge of the sorted runs.
fn merged(runs: &[Run]) -> impl Iterator<Item = (&Run, usize)> {
    let mut heap: BinaryHeap<Reverse<(&str, usize, usize)>> = runs
        .iter()
        .enumerate()
        .filter(|(_, run)| !run.rows.is_empty())
        .map(|(i, run)| Reverse((run.key(0), i, 0)))
        .collect();
    std::iter::from_fn(move || {
        let Reverse((_, i, at)) = heap.pop()?;
        let run = &runs[i];
        if at + 1 < run.rows.len() {
            heap.push(Reverse((run.key(at + 1), i, at + 1)));
        }
        Some((run, at))
    })
}

fn text_field(buffer: &mut Vec<u8>, text: &str) {
    buffer.extend_from_slice(&(text.len() as i32).to_be_bytes());
    buffer.extend_from_slice(text.as_bytes());
}

fn int8_field(buffer: &mut Vec<u8>, value: i64) {
    buffer.extend_from_slice(&8i32.to_be_bytes());
    buffer.extend_from_slice(&value.to_be_bytes());
}

/// A `timestamp` as PostgreSQL's binary format has it: microseconds since
/// 2000-01-01 00:00:00.
fn postgres_micros(at: NaiveDateTime) -> i64 {
    let epoch = chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    (at - epoch).num_microseconds().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::{merged, postgres_micros, run};
    use crate::db::models::NewInvitation;

    fn invitation(position: i64, email: &str) -> NewInvitation {
        NewInvitation {
            id: format!("id-{position}"),
            position,
            email_key: email.to_lowercase(),
            email: email.into(),
        }
    }

    #[test]
    fn runs_merge_into_one_key_order_with_each_address_as_written() {
        let first = run(&[
            invitation(1, "zoe@x.io"),
            invitation(2, "Ann@x.io"),
            invitation(3, "bob@x.io"),
        ]);
        let second = run(&[
            invitation(4, "Carl@X.io"),
            invitation(5, "aaron@x.io"),
            invitation(6, "ab@x.io"),
            invitation(7, "a.z@x.io"),
        ]);
        let empty = run(&[]);
        let runs = [first, empty, second];
        let rows: Vec<(i64, &str, &str)> = merged(&runs)
            .map(|(run, at)| {
                let row = run.rows[at];
                (row.position, run.get(row.key), run.get(row.email))
            })
            .collect();
        assert_eq!(
            rows,
            [
                // Byte order, as the key's `COLLATE "C"`: '.' before 'a'.
                (7, "a.z@x.io", "a.z@x.io"),
                (5, "aaron@x.io", "aaron@x.io"),
                (6, "ab@x.io", "ab@x.io"),
                (2, "ann@x.io", "Ann@x.io"),
                (3, "bob@x.io", "bob@x.io"),
                (4, "carl@x.io", "Carl@X.io"),
                (1, "zoe@x.io", "zoe@x.io"),
            ]
        );
    }

    #[test]
    fn timestamps_count_microseconds_from_2000() {
        let at = chrono::NaiveDate::from_ymd_opt(2000, 1, 2)
            .unwrap()
            .and_hms_micro_opt(0, 0, 1, 5)
            .unwrap();
        assert_eq!(postgres_micros(at), 86_400_000_000 + 1_000_005);
    }
}
