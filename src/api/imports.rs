//! `POST /imports`, `GET /imports`, `GET /imports/{id}`.

use super::auth::Authenticated;
use super::pagination;
use super::views::{Counts, DryRunView, EntryView, ImportHistory, ImportView};
use super::{blocking, upload, ApiError, Problem};
use crate::db::imports::{self, Created, Preview, Upload};
use crate::domain::options::{ImportOptions, RawOptions};
use crate::domain::parser::{decode, entries, DecodeError};
use crate::startup::AppState;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

/// Options of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateParams {
    /// Classify the file and answer with what would happen, writing nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The file's name for a raw `text/plain` upload (multipart uploads
    /// send their own), at most 255 characters.
    #[param(max_length = 255)]
    pub filename: Option<String>,
    /// A message shown in the invitation email (multipart uploads may send it as a form field).
    pub message: Option<String>,
    /// Days the invitations stay valid once sent, 1 to 30 (default: the server's setting).
    #[param(value_type = Option<i32>, minimum = 1, maximum = 30)]
    pub expires_in_days: Option<String>,
    /// Where to send people after they accept; its origin must be allowed by the server.
    pub redirect_url: Option<String>,
    /// Who invites them: a person's name shown in the email's subject and
    /// first line ("Ann Lee invited you to join Acme"), at most 100 characters.
    #[param(
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069]*$"
    )]
    pub invited_by: Option<String>,
    /// The language of the emails, a BCP 47 tag (`de`, `fr-CA`); templates
    /// fall back along the tag to English.
    #[param(
        max_length = 35,
        pattern = r"^\s*([A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*)?\s*$"
    )]
    pub locale: Option<String>,
}

/// Upload a file of email addresses and queue an invitation for each new one.
///
/// The file is UTF-8 text (a BOM is stripped; UTF-16 with a BOM is
/// transcoded). Entries are separated by newlines, commas, semicolons and
/// whitespace; `Ann Lee <ann@x.io>` is one entry. Each entry is classified
/// `invalid`, `duplicate`, `existing_user`, `already_invited` or `queued`,
/// and the import, its report and its invitations are written at once.
#[utoipa::path(
    post, path = "/imports", tag = "imports",
    params(
        CreateParams,
        ("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key returns the first import instead of making a second one."),
    ),
    request_body(
        description = "The file: a multipart part named `file`, or the raw text.",
        content(
            (UploadForm = "multipart/form-data"),
            (String = "text/plain", example = "ann@x.io\nBob <bob@y.io>, carol@z.io\n"),
        ),
    ),
    responses(
        (status = 201, description = "Imported; `Location` names the import", body = ImportView,
            headers(("Location" = String, description = "The import's URL"))),
        (status = 200, description = "Dry run: what the import would do", body = DryRunView),
        (status = 400, description = "No file part, an empty file or a bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than MAX_UPLOAD_BYTES", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Binary content or an unsupported Content-Type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Text that is not valid UTF-8, or an Idempotency-Key reused for another file", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/imports")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn create_import(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    payload: web::Payload,
    params: web::Query<CreateParams>,
) -> Result<HttpResponse, ApiError> {
    let file = upload::receive(&req, payload, state.max_upload_bytes).await?;
    let params = params.into_inner();
    let option = |name: &str, query: &Option<String>| {
        file.fields.get(name).cloned().or_else(|| query.clone())
    };
    let (message, expires_in_days, redirect_url, invited_by, locale) = (
        option("message", &params.message),
        option("expires_in_days", &params.expires_in_days),
        option("redirect_url", &params.redirect_url),
        option("invited_by", &params.invited_by),
        option("locale", &params.locale),
    );
    let raw = RawOptions {
        message: message.as_deref(),
        expires_in_days: expires_in_days.as_deref(),
        redirect_url: redirect_url.as_deref(),
        invited_by: invited_by.as_deref(),
        locale: locale.as_deref(),
    };
    let options = ImportOptions::parse(raw, &state.allowed_redirect_origins).map_err(|e| {
        ApiError::bad_request("invalid-option", "Invalid import option", e.to_string())
    })?;
    let account_id = auth.0.id;
    if params.dry_run {
        let view = blocking(&state, move |conn| {
            let text = decode_entries(&file.bytes)?;
            let preview = imports::preview(conn, &account_id, &text, MAX_PREVIEW_ENTRIES)?;
            Ok(dry_run_view(preview))
        })
        .await?;
        return Ok(HttpResponse::Ok().json(view));
    }
    let idempotency_key = idempotency_key(&req)?;
    let filename = match file.filename {
        Some(name) => Some(name),
        None => params
            .filename
            .as_deref()
            .map(upload::checked_filename)
            .transpose()?,
    };
    let created = blocking(&state, move |conn| {
        let text = decode_entries(&file.bytes)?;
        let sha256 = hex::encode(Sha256::digest(&file.bytes));
        let upload = Upload {
            filename: filename.as_deref(),
            size_bytes: file.bytes.len() as i64,
            sha256: &sha256,
            idempotency_key: idempotency_key.as_deref(),
            text: &text,
            options: &options,
        };
        Ok(imports::create(conn, &account_id, upload)?)
    })
    .await?;
    let (import, replayed) = match created {
        Created::New(import) => (import, false),
        Created::Replayed(import) => (import, true),
        Created::KeyReused(import) => {
            return Err(ApiError::problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                format!(
                    "The Idempotency-Key was used for import {} with a different file; use a new key for a new file.",
                    import.id
                ),
            ))
        }
    };
    let view = ImportView::from(import);
    Ok(HttpResponse::Created()
        .insert_header(("Location", view.links.this.clone()))
        .insert_header((
            "Idempotent-Replayed",
            if replayed { "true" } else { "false" },
        ))
        .json(view))
}

/// The import history of the account, newest first.
#[utoipa::path(
    get, path = "/imports", tag = "imports",
    params(HistoryParams),
    responses(
        (status = 200, body = ImportHistory),
        (status = 400, description = "A bad cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[get("/imports")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn list_imports(
    state: web::Data<AppState>,
    auth: Authenticated,
    params: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let (limit, before) = params.page('i')?;
    let account_id = auth.0.id;
    let page = blocking(&state, move |conn| {
        Ok(imports::history(
            conn,
            &account_id,
            before.as_deref(),
            limit + 1,
        )?)
    })
    .await?;
    let (page, next_cursor) = pagination::next_page(page, limit, 'i', |i| i.id.clone());
    Ok(HttpResponse::Ok().json(ImportHistory {
        imports: page.into_iter().map(ImportView::from).collect(),
        next_cursor,
    }))
}

/// Paging of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl HistoryParams {
    /// The checked page size, and the key the cursor of list `kind` holds.
    pub fn page(&self, kind: char) -> Result<(i64, Option<String>), ApiError> {
        let limit = pagination::limit(self.limit)?;
        let after = self
            .cursor
            .as_deref()
            .map(|c| pagination::decode(kind, c))
            .transpose()?;
        Ok((limit, after))
    }
}

/// One import's status and counts (poll this while it is dispatching).
#[utoipa::path(
    get, path = "/imports/{id}", tag = "imports",
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 200, body = ImportView),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in this account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[get("/imports/{id}")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn get_import(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let import = find(&state, auth.0.id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ImportView::from(import)))
}

/// Finds an import of the account, or answers 404.
pub async fn find(
    state: &AppState,
    account_id: String,
    id: String,
) -> Result<crate::db::models::Import, ApiError> {
    blocking(state, move |conn| {
        Ok(imports::find(conn, &account_id, &id)?)
    })
    .await?
    .ok_or_else(|| ApiError::not_found("import"))
}

/// A multipart upload (for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file of addresses.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// A message shown in the invitation email (no control characters but
    /// tabs and line breaks).
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F]*$")]
    message: Option<String>,
    /// Days the invitations stay valid once sent, 1 to 30.
    #[schema(minimum = 1, maximum = 30)]
    expires_in_days: Option<i32>,
    /// Where to send people after they accept (an allowed origin).
    #[schema(pattern = r"^[^\x00-\x1F\x7F]*$")]
    redirect_url: Option<String>,
    /// Who invites them: a person's name shown in the email's subject and
    /// first line, at most 100 characters, no control characters.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069]*$",
        example = "Ann Lee"
    )]
    invited_by: Option<String>,
    /// The language of the emails, a BCP 47 tag; templates fall back along
    /// the tag to English.
    #[schema(
        max_length = 35,
        pattern = r"^\s*([A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*)?\s*$",
        example = "de"
    )]
    locale: Option<String>,
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    match value.to_str().map(str::trim) {
        Ok(key) if !key.is_empty() && key.len() <= 255 => Ok(Some(key.to_owned())),
        _ => Err(ApiError::bad_request(
            "invalid-idempotency-key",
            "Invalid Idempotency-Key",
            "The Idempotency-Key header must be 1 to 255 characters of visible ASCII.",
        )),
    }
}

/// Decodes the upload, refusing one that holds no entry at all.
fn decode_entries(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, ApiError> {
    let text = decode(bytes).map_err(decode_error)?;
    if entries(&text).next().is_none() {
        return Err(ApiError::bad_request(
            "no-entries",
            "No entries",
            "The file holds only blank lines and separators; send at least one address.",
        ));
    }
    Ok(text)
}

fn decode_error(error: DecodeError) -> ApiError {
    let (status, slug, title) = match error {
        DecodeError::Binary { .. } => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "binary-content",
            "Binary content",
        ),
        _ => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-encoding",
            "Not UTF-8 text",
        ),
    };
    ApiError::problem(status, slug, title, error.to_string())
}

/// The most entries a dry run lists; the counts cover them all.
pub const MAX_PREVIEW_ENTRIES: usize = 1_000;

fn dry_run_view(preview: Preview<'_>) -> DryRunView {
    let Preview {
        tally,
        skipped,
        more,
    } = preview;
    let as_i64 = |n: u64| n as i64;
    DryRunView {
        dry_run: true,
        counts: Counts {
            entries: as_i64(tally.entries),
            invalid: as_i64(tally.invalid),
            duplicate: as_i64(tally.duplicate),
            existing_user: as_i64(tally.existing_user),
            suppressed: as_i64(tally.suppressed),
            already_invited: as_i64(tally.already_invited),
            invited: as_i64(tally.queued),
            queued: as_i64(tally.queued),
            ..Counts::default()
        },
        entries: skipped
            .into_iter()
            .map(|entry| EntryView {
                position: entry.position as i64,
                line: entry.line as i64,
                raw: entry.raw.to_owned(),
                email: entry.email.map(|e| e.into_string()),
                status: entry.status,
                reason: entry.reason.map(str::to_owned),
            })
            .collect(),
        entries_truncated: more,
    }
}
