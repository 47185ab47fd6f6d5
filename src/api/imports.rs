//! `POST /imports`, `GET /imports`, `GET /imports/{id}`.

use super::auth::Authenticated;
use super::pagination;
use super::views::{Counts, DryRunView, EntryView, ImportHistory, ImportView};
use super::ProblemType;
use super::{blocking, read, read_json, upload, ApiError, Problem};
use crate::db::budget::{self, Budget};
use crate::db::imports::{self, Created, Preview, Upload};
use crate::db::now;
use crate::domain::options::{ImportOptions, RawOptions};
use crate::domain::parser::{decode, entries, DecodeError};
use crate::domain::InvalidReason;
use crate::startup::AppState;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

/// Options of an upload, as query parameters (the one place the schema
/// gives them). A multipart form may carry them as fields too, as
/// `curl -F message=...` sends them; a value sent both ways must agree, or
/// the upload is refused with `conflicting-option`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateParams {
    /// The name to keep for the file, at most 255 characters: for a raw upload, or to rename a multipart part (whose own name is kept without it).
    #[param(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub filename: Option<String>,
    /// A message shown in the invitation email, at most 2,000 characters .
    #[param(
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub message: Option<String>,
    /// Days the invitations stay valid once sent, 1 to 30 (default: the server's `INVITATION_EXPIRY_DAYS`).
    #[param(value_type = Option<i32>, minimum = 1, maximum = 30)]
    pub expires_in_days: Option<String>,
    /// Where to send people after they accept: a URL on one of the origins the server allows (`ALLOWED_REDIRECT_ORIGINS`; the pattern of a server's own `/openapi.json` spells them out).
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
        pattern = r"^[ \t\n\r]*([A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*)?[ \t\n\r]*$"
    )]
    pub locale: Option<String>,
    /// Scripts written before `POST /imports/preview` asked for a preview
    /// with `dry_run=true`; they still get one (not in the schema: the
    /// operation has one success shape).
    #[serde(default)]
    #[param(ignore)]
    pub dry_run: bool,
}

/// The options a multipart form may carry beside the file.
const FORM_OPTIONS: [&str; 5] = [
    "message",
    "expires_in_days",
    "redirect_url",
    "invited_by",
    "locale",
];

/// An upload as received: the file, and its options from wherever they came.
struct Received {
    file: upload::ReceivedFile,
    filename: Option<String>,
    options: ImportOptions,
}

/// Reads the upload and its options: form fields for a multipart upload,
/// query parameters for a raw one; both ways with different values is a 400.
async fn receive(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    params: &CreateParams,
) -> Result<Received, ApiError> {
    let file = upload::receive(req, payload, state.max_upload_bytes).await?;
    if let Some(unknown) = file
        .fields
        .keys()
        .find(|name| !FORM_OPTIONS.contains(&name.as_str()))
    {
        return Err(ApiError::problem(
            ProblemType::InvalidField,
            format!(
                "The form field `{unknown}` is not an option of an upload; send the file as `file`, and any of {} beside it.",
                FORM_OPTIONS.join(", ")
            ),
        ));
    }
    let option = |name: &str, query: &Option<String>| one_place(name, file.fields.get(name), query);
    let (message, expires_in_days, redirect_url, invited_by, locale) = (
        option("message", &params.message)?,
        option("expires_in_days", &params.expires_in_days)?,
        option("redirect_url", &params.redirect_url)?,
        option("invited_by", &params.invited_by)?,
        option("locale", &params.locale)?,
    );
    let raw = RawOptions {
        message: message.as_deref(),
        expires_in_days: expires_in_days.as_deref(),
        redirect_url: redirect_url.as_deref(),
        invited_by: invited_by.as_deref(),
        locale: locale.as_deref(),
    };
    let options = ImportOptions::parse(raw, &state.allowed_redirect_origins)
        .map_err(|e| ApiError::problem(ProblemType::InvalidOption, e.to_string()))?;
    let query_filename = params
        .filename
        .as_deref()
        .map(upload::checked_filename)
        .transpose()?;
    // The name to keep: the `filename` parameter when given (a rename the
    // caller asked for), else the multipart part's own.
    let filename = query_filename
        .filter(|name| !name.trim().is_empty())
        .or_else(|| file.filename.clone());
    Ok(Received {
        file,
        filename,
        options,
    })
}

fn one_place(
    name: &str,
    form: Option<&String>,
    query: &Option<String>,
) -> Result<Option<String>, ApiError> {
    // A blank value is an absent one, wherever it was sent.
    let form = form.filter(|v| !v.trim().is_empty());
    let query = query.as_ref().filter(|v| !v.trim().is_empty());
    match (form, query) {
        (Some(form), Some(query)) if form != query => Err(ApiError::problem(
            ProblemType::ConflictingOption,
            format!(
                "`{name}` was sent both in the form and as a query parameter, with different values; \
                 send it once: as a form field with a multipart upload, as a query parameter with a raw one."
            ),
        )),
        (Some(form), _) => Ok(Some(form.clone())),
        (None, query) => Ok(query.cloned()),
    }
}

/// Upload a file of email addresses and queue an invitation for each new one.
///
/// The file is UTF-8 text (a BOM is stripped; UTF-16 with a BOM is
/// transcoded). Entries are separated by newlines, commas, semicolons and
/// whitespace; `Ann Lee <ann@x.io>` is one entry. Each entry is classified
/// `invalid`, `duplicate`, `existing_user`, `suppressed`, `already_invited`
/// or `queued`, and the import, its report and its invitations are written
/// at once. `POST /imports/preview` shows the same classification without
/// writing anything.
#[utoipa::path(
    post, path = "/imports", tag = "imports",
    params(
        CreateParams,
        ("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[!-~]([ -~]*[!-~])?$",
            description = "Retrying with the same key returns the first import instead of making a second one: 1 to 255 visible ASCII characters."),
    ),
    request_body(
        description = "The file: a multipart part named `file`, or the raw text. The options are query parameters either way.",
        content(
            (UploadForm = "multipart/form-data"),
            (UploadText = "text/plain"),
        ),
    ),
    responses(
        (status = 201, description = "Imported; `Location` names the import", body = ImportView,
            headers(
                ("Location" = String, description = "The import's URL"),
                ("Idempotent-Replayed" = bool, description = "`true` when this answer replays the import first made with the same `Idempotency-Key`"),
            )),
        (status = 400, description = "No file part, an empty file, a bad option or header (`missing-file`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than MAX_UPLOAD_BYTES (`file-too-large`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Binary content or an unsupported Content-Type (`binary-content`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An Idempotency-Key already used for another file (`idempotency-key-reused`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Text that is not UTF-8 (`invalid-encoding`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More invitations than the account's daily budget has left (`invitation-budget-exceeded`; `budget` says how many are left, nothing was stored), more uploads at once than MAX_CONCURRENT_IMPORTS_PER_ACCOUNT (`too-many-imports`), or past the key's request rate (`rate-limited`)", body = Problem, content_type = "application/problem+json"),
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
    let params = params.into_inner();
    let _slot = state.import_slots.take(&auth.0.id)?;
    let received = receive(&state, &req, payload, &params).await?;
    if params.dry_run {
        return preview_answer(&state, auth.0.id, received).await;
    }
    let idempotency_key = idempotency_key(&req)?;
    let Received {
        file,
        filename,
        options,
    } = received;
    let account_id = auth.0.id;
    let daily_budget = state.limits.account_daily_invitations;
    let pool = state.pool.clone();
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
            daily_budget,
        };
        // A second connection for the lookups, if one is idle: an import
        // never waits for it.
        let mut lookups = pool.try_get();
        let created = imports::create(conn, lookups.as_deref_mut(), &account_id, upload);
        if let Some(lookups) = lookups {
            use crate::db::MayBeLost;
            crate::db::give_back(lookups, created.as_ref().is_err_and(MayBeLost::may_be_lost));
        }
        Ok(created?)
    })
    .await?;
    let (import, replayed) = match created {
        Created::New(import) => (import, false),
        Created::Replayed(import) => (import, true),
        Created::KeyReused(import) => {
            return Err(ApiError::problem(
                ProblemType::IdempotencyKeyReused,
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

/// What an import of this file would do, writing nothing.
///
/// The same classification as `POST /imports` (with the same body and
/// options, which are checked too), against the account as it is now. The
/// counts cover the whole file; `entries` lists up to 1,000 of the entries
/// that would not be invited, with why.
#[utoipa::path(
    post, path = "/imports/preview", tag = "imports",
    params(CreateParams),
    request_body(
        description = "The file, as for `POST /imports`.",
        content(
            (UploadForm = "multipart/form-data"),
            (UploadText = "text/plain"),
        ),
    ),
    responses(
        (status = 200, description = "What the import would do", body = DryRunView),
        (status = 400, description = "No file part, an empty file or a bad option (`no-entries`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than MAX_UPLOAD_BYTES (`file-too-large`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "An unsupported Content-Type, or binary content (`unsupported-media-type`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Text that is not UTF-8 (`invalid-encoding`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More uploads at once than MAX_CONCURRENT_IMPORTS_PER_ACCOUNT (`too-many-imports`), or past the key's request rate (`rate-limited`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/imports/preview")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn preview_import(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    payload: web::Payload,
    params: web::Query<CreateParams>,
) -> Result<HttpResponse, ApiError> {
    let _slot = state.import_slots.take(&auth.0.id)?;
    let received = receive(&state, &req, payload, &params).await?;
    preview_answer(&state, auth.0.id, received).await
}

async fn preview_answer(
    state: &AppState,
    account_id: String,
    received: Received,
) -> Result<HttpResponse, ApiError> {
    let daily_budget = state.limits.account_daily_invitations;
    let view = blocking(state, move |conn| {
        let text = decode_entries(&received.file.bytes)?;
        let preview = imports::preview(conn, &account_id, &text, MAX_PREVIEW_ENTRIES)?;
        let budget = budget::current(conn, &account_id, daily_budget, now())?;
        Ok(dry_run_view(preview, budget))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The import history of the account, newest first.
#[utoipa::path(
    get, path = "/imports", tag = "imports",
    params(HistoryParams),
    responses(
        (status = 200, description = "A page of the history, newest first", body = ImportHistory),
        (status = 400, description = "A bad cursor or limit (`invalid-cursor`, `invalid-limit`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
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
    let (account, cursor) = (account_id.clone(), before.clone());
    read_json(
        &state,
        move |conn| {
            Ok(imports::history(
                conn,
                &account,
                cursor.as_deref(),
                limit + 1,
            )?)
        },
        async |pg| Ok(imports::history_async(pg, &account_id, before.as_deref(), limit + 1).await?),
        move |page| {
            let (page, next_cursor) = pagination::next_page(page, limit, 'i', |i| i.id.clone());
            Ok(ImportHistory {
                imports: page.into_iter().map(ImportView::from).collect(),
                next_cursor,
            })
        },
    )
    .await
}

/// Paging of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Page size.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (the id of the last row it held).
    #[param(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
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
        (status = 200, description = "The import", body = ImportView),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
// `/imports/preview` is a path of its own (POST only): a GET there is a
// 405 naming POST, not a lookup of an import called "preview".
#[get("/imports/{id}", guard = "not_the_preview")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn get_import(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (account_id, id) = (auth.0.id, id.into_inner());
    let (account, import) = (account_id.clone(), id.clone());
    read_json(
        &state,
        move |conn| found(conn, &account, &import),
        async |pg| {
            imports::find_async(pg, &account_id, &id)
                .await?
                .ok_or_else(not_found)
        },
        |import| Ok(ImportView::from(import)),
    )
    .await
}

pub(crate) fn not_the_preview(ctx: &actix_web::guard::GuardContext) -> bool {
    ctx.head().uri.path() != "/imports/preview"
}

/// Finds an import of the account, or answers 404.
pub async fn find(
    state: &AppState,
    account_id: String,
    id: String,
) -> Result<crate::db::models::Import, ApiError> {
    read(state, move |conn| found(conn, &account_id, &id)).await
}

/// The account's import `id`, or 404.
fn found(
    conn: &mut crate::db::DbConnection,
    account_id: &str,
    id: &str,
) -> Result<crate::db::models::Import, ApiError> {
    imports::find(conn, account_id, id)?.ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::not_found("import")
}

/// Finds an import of the account whose report is still kept: 404 when
/// there is none, 410 `import-erased` once it was erased.
pub async fn find_with_report(
    state: &AppState,
    account_id: String,
    id: String,
) -> Result<crate::db::models::Import, ApiError> {
    with_report(find(state, account_id, id).await?)
}

/// The import, or 410 `import-erased` when its report was erased.
pub fn with_report(
    import: crate::db::models::Import,
) -> Result<crate::db::models::Import, ApiError> {
    match import.erased_at {
        None => Ok(import),
        Some(at) => Err(ApiError::problem(
            ProblemType::ImportErased,
            format!(
                "The report of this import and its invitees' addresses were erased at {}; its counts remain at /imports/{}.",
                at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                import.id
            ),
        )),
    }
}

/// A multipart upload (for the OpenAPI document): the file. The options
/// are query parameters; a multipart form may carry them as fields too (as
/// `curl -F message=...` sends them), and a value sent both ways with a
/// different value is refused (`conflicting-option`); any other field is
/// refused (`invalid-field`).
#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file of addresses, a file part of media type `text/plain`: UTF-8
    /// text (or UTF-16 with a BOM) with at least one entry and no NUL byte,
    /// at most `MAX_UPLOAD_BYTES`.
    #[schema(value_type = String, format = Binary, content_media_type = "text/plain")]
    file: Vec<u8>,
}

/// A raw upload: the file's text as the whole body.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, pattern = r"^[^\x00]*[!-+\--:<-~][^\x00]*$",
    example = "ann@x.io\nBob <bob@y.io>, carol@z.io\n")]
#[allow(dead_code)]
pub struct UploadText(String);

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    match value.to_str().map(str::trim) {
        Ok(key) if !key.is_empty() && key.len() <= 255 => Ok(Some(key.to_owned())),
        _ => Err(ApiError::problem(
            ProblemType::InvalidIdempotencyKey,
            "The Idempotency-Key header must be 1 to 255 characters of visible ASCII.",
        )),
    }
}

/// Decodes the upload, refusing one that holds no entry at all.
fn decode_entries(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, ApiError> {
    let text = decode(bytes).map_err(decode_error)?;
    if entries(&text).next().is_none() {
        return Err(ApiError::problem(
            ProblemType::NoEntries,
            "The file holds only blank lines and separators; send at least one address.",
        ));
    }
    Ok(text)
}

fn decode_error(error: DecodeError) -> ApiError {
    let kind = match error {
        DecodeError::Binary { .. } => ProblemType::BinaryContent,
        _ => ProblemType::InvalidEncoding,
    };
    ApiError::problem(kind, error.to_string())
}

/// The most entries a dry run lists; the counts cover them all.
pub const MAX_PREVIEW_ENTRIES: usize = 1_000;

fn dry_run_view(preview: Preview<'_>, budget: Budget) -> DryRunView {
    let Preview {
        tally,
        skipped,
        more,
    } = preview;
    let as_i64 = |n: u64| n as i64;
    DryRunView {
        dry_run: true,
        within_budget: budget
            .remaining()
            .is_none_or(|left| as_i64(tally.queued) <= left),
        budget: budget.into(),
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
                raw: entry.raw.to_owned().into(),
                email: entry.email.map(|e| e.into_string().into()),
                status: entry.status,
                reason: entry.reason.and_then(InvalidReason::from_code),
                detail: entry
                    .reason
                    .and_then(InvalidReason::from_code)
                    .map(|r| r.description().into()),
            })
            .collect(),
        entries_truncated: more,
    }
}
