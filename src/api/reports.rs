//! `GET /imports/{id}/report` (a page as JSON) and
//! `GET /imports/{id}/report.csv` (the whole report, streamed).

use super::auth::Authenticated;
use super::imports::{find_with_report as find, with_report};
use super::pagination;
use super::views::{reason_and_detail, EntryView, ImportView, ReportPage};
use super::ProblemType;
use super::{read_in_turn, read_written, ApiError, Problem};
use crate::db::models::{Entry, EntryRef};
use crate::db::reports::{self, WriteEntry, Written};
use crate::domain::email::InvalidReason;
use crate::domain::EntryStatus;
use crate::startup::AppState;
use actix_web::http::header::ACCEPT;
use actix_web::{get, web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use utoipa::IntoParams;

/// Rows read per query while streaming the CSV: about 70 KiB of it, what a
/// client that stops reading holds.
const CSV_PAGE: i64 = 1_000;

/// Filters and paging of a report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Only entries with one of these statuses (repeat the parameter, or separate with commas).
    #[serde(default)]
    #[param(style = Form, explode, value_type = Option<Vec<EntryStatus>>)]
    pub status: Vec<String>,
    /// Page size.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (the position of the last entry it held; empty: the first page).
    #[param(pattern = r"^([0-9]{1,18})?$")]
    pub cursor: Option<String>,
    /// Scripts written before `report.csv` asked for CSV with `format=csv`
    /// (or `Accept: text/csv`); they still get it (not in the schema: the
    /// operation has one success shape).
    #[param(ignore)]
    pub format: Option<String>,
}

/// Filters of the CSV export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CsvParams {
    /// Only entries with one of these statuses (repeat the parameter, or separate with commas).
    #[serde(default)]
    #[param(style = Form, explode, value_type = Option<Vec<EntryStatus>>)]
    pub status: Vec<String>,
}

/// A page of an import's report: one row per entry of the file, in file order.
#[utoipa::path(
    get, path = "/imports/{id}/report", tag = "imports",
    params(("id" = String, Path, description = "The import's id"), ReportParams),
    responses(
        (status = 200, description = "A page of the report", body = ReportPage),
        (status = 400, description = "A bad status, cursor or limit (`invalid-cursor`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The import was erased: its counts remain at `/imports/{id}`, its entries are gone (`import-erased`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[get("/imports/{id}/report")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn get_import_report(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params: ReportParams = super::query_with_repeats(&req)?;
    let statuses = parse_statuses(&params.status)?;
    if wants_csv(&req, params.format.as_deref())? {
        let import = find(&state, auth.0.id, id.into_inner()).await?;
        return Ok(csv_answer(&state, import.id, statuses));
    }
    let limit = pagination::limit(params.limit)?;
    let after = params
        .cursor
        .as_deref()
        .map(pagination::decode_position)
        .transpose()?;
    let (account_id, id) = (auth.0.id, id.into_inner());
    let (account, import) = (account_id.clone(), id.clone());
    let page = statuses.clone();
    let (after, limit_and_one) = (after.unwrap_or(0), limit + 1);
    read_written(
        &state,
        move |conn| {
            Ok(reports::import_and_page::<EntryJson>(
                conn,
                &account,
                &import,
                &page,
                after,
                limit_and_one,
            )?)
        },
        async |pg| {
            Ok(reports::import_and_page_async::<EntryJson>(
                pg,
                &account_id,
                &id,
                &statuses,
                after,
                limit_and_one,
            )
            .await?)
        },
        move |found| {
            let (import, rows) = found.ok_or_else(|| ApiError::not_found("import"))?;
            let import = with_report(import)?;
            let (rows, next_cursor) =
                pagination::next_page(rows, limit, 'p', |e| e.position.to_string());
            page_json(&ImportView::from(import), &rows, next_cursor.as_deref())
        },
    )
    .await
}

/// Writes a report's entries as [`EntryView`]s.
struct EntryJson;

impl WriteEntry for EntryJson {
    fn write(
        entry: EntryRef<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(EntryView::of(entry).write_json(out)?)
    }
}

/// A [`ReportPage`] as JSON, its entries already written: the very text
/// serde writes for the page (a test compares them).
fn page_json(
    import: &ImportView,
    entries: &[Written],
    next_cursor: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let length: usize = entries.iter().map(|e| e.text.len() + 1).sum();
    let mut out = Vec::with_capacity(1024 + length);
    let write = |out: &mut Vec<u8>| -> serde_json::Result<()> {
        out.extend_from_slice(br#"{"import":"#);
        serde_json::to_writer(&mut *out, import)?;
        out.extend_from_slice(br#","entries":["#);
        for (i, entry) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&entry.text);
        }
        out.extend_from_slice(br#"],"next_cursor":"#);
        serde_json::to_writer(&mut *out, &next_cursor)?;
        out.push(b'}');
        Ok(())
    };
    write(&mut out).map_err(|e| ApiError::Internal(anyhow::anyhow!("cannot write JSON: {e}")))?;
    Ok(out)
}

/// The whole report (or the entries with the given statuses) as a CSV file.
///
/// Streamed with the header `position,line,raw,email,status,reason,detail`;
/// cells a spreadsheet would run as a formula are prefixed with `'`.
#[utoipa::path(
    get, path = "/imports/{id}/report.csv", tag = "imports",
    params(("id" = String, Path, description = "The import's id"), CsvParams),
    responses(
        (status = 200, description = "The report as CSV", content_type = "text/csv", body = String,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"report-<id>.csv\"`: browsers save it as a file")),
            example = "position,line,raw,email,status,reason,detail\n1,1,ann@x.io,ann@x.io,queued,,\n"),
        (status = 400, description = "A bad status (`invalid-status`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The import was erased: its counts remain at `/imports/{id}`, its entries are gone (`import-erased`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[get("/imports/{id}/report.csv")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn get_import_report_csv(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params: CsvParams = super::query_with_repeats(&req)?;
    let statuses = parse_statuses(&params.status)?;
    let import = find(&state, auth.0.id, id.into_inner()).await?;
    Ok(csv_answer(&state, import.id, statuses))
}

fn csv_answer(
    state: &web::Data<AppState>,
    import_id: String,
    statuses: Vec<&'static str>,
) -> HttpResponse {
    let filename = format!("attachment; filename=\"report-{import_id}.csv\"");
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", filename))
        .streaming(stream_csv(state.clone(), import_id, statuses))
}

/// Reads repeated or comma-separated `status` values; an empty one is not
/// a status, and is refused like any other unknown value.
pub fn parse_statuses(values: &[String]) -> Result<Vec<&'static str>, ApiError> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .map(|v| {
            v.parse::<EntryStatus>()
                .map(EntryStatus::as_str)
                .map_err(|_| {
                    let known: Vec<&str> = EntryStatus::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::problem(
                        ProblemType::InvalidStatus,
                        format!("Unknown status {v:?}; use one of: {}.", known.join(", ")),
                    )
                })
        })
        .collect()
}

fn wants_csv(req: &HttpRequest, format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        Some("csv") => return Ok(true),
        Some("json") => return Ok(false),
        Some(other) => {
            return Err(ApiError::problem(
                ProblemType::InvalidFormat,
                format!("Unknown format {other:?}; use csv or json."),
            ))
        }
        None => {}
    }
    let accept = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(accept
        .split(',')
        .any(|part| part.split(';').next().unwrap_or("").trim() == "text/csv"))
}

/// Streams the report page by page, each page read when the client has
/// taken the one before: the whole report is never in memory, and a client
/// that stops reading holds no thread and no connection, only the page it
/// has not taken. Each page is read, and its CSV written, on the blocking
/// threads in the read turns (never on the HTTP worker, even on SQLite: a
/// thousand rows is not a short read).
fn stream_csv(
    state: web::Data<AppState>,
    import_id: String,
    statuses: Vec<&'static str>,
) -> impl futures_util::Stream<Item = Result<Bytes, ApiError>> {
    let statuses = std::sync::Arc::new(statuses);
    // The next page's cursor and whether it is the first; `None` when done.
    futures_util::stream::unfold(Some((0, true)), move |cursor| {
        let state = state.clone();
        let import_id = import_id.clone();
        let statuses = statuses.clone();
        async move {
            let (after, first) = cursor?;
            let page = read_in_turn(&state, move |conn| {
                let rows = reports::page(conn, &import_id, &statuses, after, CSV_PAGE)?;
                let next = match rows.len() < CSV_PAGE as usize {
                    true => None,
                    false => rows.last().map(|row| (row.position, false)),
                };
                Ok((Bytes::from(csv_chunk(&rows, first)), next))
            })
            .await;
            match page {
                // A last page found empty (the one before was full) ends it.
                Ok((chunk, _)) if chunk.is_empty() => None,
                Ok((chunk, next)) => Some((Ok(chunk), next)),
                Err(error) => Some((Err(error), None)),
            }
        }
    })
}

/// Writes rows as CSV (with the header row first when asked).
fn csv_chunk(rows: &[Entry], header: bool) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut write = || -> csv::Result<()> {
        if header {
            writer.write_record([
                "position", "line", "raw", "email", "status", "reason", "detail",
            ])?;
        }
        for row in rows {
            let (code, detail) = reason_and_detail(&row.status, row.reason.as_deref());
            writer.write_record([
                row.position.to_string().as_str(),
                row.line.to_string().as_str(),
                &defuse(&row.raw),
                &defuse(row.email.as_deref().unwrap_or("")),
                &row.status,
                code.map_or("", InvalidReason::code),
                detail.as_deref().unwrap_or(""),
            ])?;
        }
        writer.flush()?;
        Ok(())
    };
    if let Err(error) = write() {
        tracing::error!(%error, "writing CSV to memory failed");
    }
    writer.into_inner().unwrap_or_default()
}

/// Makes a cell that a spreadsheet would run as a formula harmless by
/// prefixing it with `'` (OWASP's advice for CSV injection).
fn defuse(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::Import;

    #[test]
    fn formula_cells_are_defused_and_others_kept() {
        assert_eq!(defuse("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse("+1"), "'+1");
        assert_eq!(defuse("-2"), "'-2");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("ann@x.io"), "ann@x.io");
        assert_eq!(defuse(""), "");
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let row = Entry {
            position: 1,
            line: 2,
            raw: "\"Lee, Ann\" <ann@x.io>".into(),
            email: Some("ann@x.io".into()),
            status: "queued".into(),
            reason: None,
        };
        let text = String::from_utf8(csv_chunk(&[row], true)).unwrap();
        assert_eq!(
            text,
            "position,line,raw,email,status,reason,detail\n1,2,\"\"\"Lee, Ann\"\" <ann@x.io>\",ann@x.io,queued,,\n"
        );
    }

    /// The page the report writes from written entries is the text serde
    /// writes for a [`ReportPage`] of the same entries (its schema).
    #[test]
    fn a_page_of_written_entries_is_the_report_page_serde_writes() {
        let import: Import = serde_json::from_value(serde_json::json!({
            "id": "01a21f46-58a0-745e-a783-f0d34e9d4580", "account_id": "a",
            "filename": "team \"q\".txt", "size_bytes": 10, "content_sha256": "00",
            "idempotency_key": null, "status": "completed",
            "created_at": "2026-11-27T23:10:33.632185", "completed_at": null,
            "entries": 3, "invalid": 1, "duplicate": 0, "existing_user": 0,
            "suppressed": 0, "already_invited": 0, "invited": 1, "queued": 0,
            "sent": 0, "failed": 1, "delivered": 0, "bounced": 0, "complained": 0,
            "accepted": 0, "expired": 0, "revoked": 0, "custom_message": "Hi\n",
            "expiry_days": 7, "redirect_url": null, "invited_by": "Zoë",
            "locale": "fr", "erased_at": null
        }))
        .unwrap();
        let row =
            |position, raw: &str, email: Option<&str>, status: &str, reason: Option<&str>| Entry {
                position,
                line: position + 1,
                raw: raw.into(),
                email: email.map(Into::into),
                status: status.into(),
                reason: reason.map(Into::into),
            };
        let rows = [
            row(1, "Ann <ann@x.io>", Some("ann@x.io"), "queued", None),
            row(2, "\"bob\"\t@", None, "invalid", Some("missing_at")),
            row(
                3,
                "zoë@x.io",
                Some("zoë@x.io"),
                "failed",
                Some("Mailbox \"full\"\u{1}"),
            ),
        ];
        for (entries, next_cursor) in [(&rows[..], Some("3")), (&rows[..0], None)] {
            let written: Vec<Written> = entries
                .iter()
                .map(|e| Written::new::<EntryJson>(e.borrow()).unwrap())
                .collect();
            let ours = page_json(&ImportView::from(import.clone()), &written, next_cursor).unwrap();
            let serde = serde_json::to_vec(&ReportPage {
                import: ImportView::from(import.clone()),
                entries: entries
                    .iter()
                    .map(|e| EntryView::of(e.borrow()))
                    .map(|v| EntryView {
                        raw: v.raw.into_owned().into(),
                        email: v.email.map(|e| e.into_owned().into()),
                        detail: v.detail.map(|d| d.into_owned().into()),
                        ..v
                    })
                    .collect(),
                next_cursor: next_cursor.map(Into::into),
            })
            .unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(serde).unwrap()
            );
        }
    }
}
