//! `/api-keys`: an account's keys, each with a name and scopes. A key is
//! shown once, when it is made; listings show its first characters. A
//! revoked key stops working at once on this process.

use super::auth::Authenticated;
use super::ProblemType;
use super::{blocking, limits, ApiError, Problem};
use crate::db::keys::{self, Revoked};
use crate::db::models::ApiKey;
use crate::domain::{DisplayName, Scope, Scopes};
use crate::startup::AppState;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest `POST /api-keys` body.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Keys an account may have at once.
pub const MAX_KEYS_PER_ACCOUNT: usize = 100;

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    #[schema(example = "CI uploader")]
    pub name: String,
    /// What the key may do: `read` (every GET), `write` (imports,
    /// previews, re-sends, revocations, users, suppressions, and `read`),
    /// `admin` (API keys and the account's settings, and `write`).
    pub scopes: Vec<Scope>,
    /// The key's first characters, to recognise it by (null for keys made
    /// before keys had names).
    #[schema(example = "bik_Zx8Qm2Lp")]
    pub prefix: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the key was last used (written at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(key: ApiKey) -> ApiKeyView {
        ApiKeyView {
            id: key.id,
            name: key.name,
            scopes: Scopes::from_stored(&key.scopes).iter().collect(),
            prefix: key.prefix,
            created_at: key.created_at.and_utc(),
            last_used_at: key.last_used_at.map(|t| t.and_utc()),
        }
    }
}

/// A key just made, with its secret: shown this once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The key: send it as `Authorization: Bearer <secret>`.
    #[schema(example = "bik_Zx8Qm2LpV0c3n5bT1yHk4wQe9rUa7sDf6gJ2hK8lM0o")]
    pub secret: String,
}

/// The account's keys, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyView>,
}

/// A key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for: 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069]*[^\s\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069][^\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069]*$",
        example = "CI uploader"
    )]
    pub name: String,
    /// One or more of `read`, `write`, `admin` (a repeat counts once).
    #[schema(min_items = 1, max_items = 3, example = json!(["write"]))]
    pub scopes: Vec<Scope>,
}

/// Make an API key. Its secret is in this answer only.
#[utoipa::path(
    post, path = "/api-keys", tag = "api-keys",
    request_body = NewApiKey,
    responses(
        (status = 201, description = "The key, with its secret (shown only now)", body = CreatedApiKey,
            headers(("Location" = String, description = "The key's URL"))),
        (status = 400, description = "Not a JSON object of `name` and `scopes`, a bad name, or no scopes (`invalid-key-name`, `invalid-scopes`, `invalid-json`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account has 100 keys already (`too-many-keys`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB (`body-too-large`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A Content-Type other than application/json (`unsupported-media-type`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/api-keys")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn create_api_key(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let new: NewApiKey = limits::read_json(
        &req,
        payload,
        MAX_BODY_BYTES,
        "16 KiB for POST /api-keys",
        "with `name` and `scopes`",
    )
    .await?;
    let name = DisplayName::parse(&new.name)
        .map_err(|e| ApiError::problem(ProblemType::InvalidKeyName, format!("The key name {e}.")))?
        .into_string();
    let scopes = Some(new.scopes)
        .filter(|s| s.len() <= Scope::ALL.len())
        .and_then(Scopes::new)
        .ok_or_else(|| {
            ApiError::problem(
                ProblemType::InvalidScopes,
                "Give the key one to three scopes: read, write, admin.",
            )
        })?;
    let account_id = auth.0.id;
    let created = blocking(&state, move |conn| {
        crate::db::write_transaction(conn, |conn| {
            crate::db::address_rule::lock_account(conn, &account_id)?;
            if keys::list(conn, &account_id)?.len() >= MAX_KEYS_PER_ACCOUNT {
                return Ok(None);
            }
            Ok(Some(keys::create(conn, &account_id, &name, &scopes)?))
        })
    })
    .await?
    .ok_or_else(|| {
        ApiError::problem(
            ProblemType::TooManyKeys,
            format!("An account has at most {MAX_KEYS_PER_ACCOUNT} keys; revoke one first."),
        )
    })?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api-keys/{}", created.key.id)))
        .json(CreatedApiKey {
            key: created.key.into(),
            secret: created.secret,
        }))
}

/// The account's API keys, oldest first (never their secrets).
#[utoipa::path(
    get, path = "/api-keys", tag = "api-keys",
    responses(
        (status = 200, description = "The keys", body = ApiKeyList),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[get("/api-keys")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let account_id = auth.0.id;
    let rows = blocking(&state, move |conn| Ok(keys::list(conn, &account_id)?)).await?;
    Ok(HttpResponse::Ok().json(ApiKeyList {
        api_keys: rows.into_iter().map(ApiKeyView::from).collect(),
    }))
}

/// One API key (never its secret).
#[utoipa::path(
    get, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key", body = ApiKeyView),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[get("/api-keys/{id}")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn get_api_key(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (account_id, id) = (auth.0.id, id.into_inner());
    let key = blocking(&state, move |conn| Ok(keys::find(conn, &account_id, &id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(key)))
}

/// Revoke an API key: it stops working at once (on other API processes
/// within 10 seconds). The account's last `admin` key cannot be revoked.
#[utoipa::path(
    delete, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account's last admin key (`last-admin-key`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[delete("/api-keys/{id}")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (account_id, id) = (auth.0.id, id.into_inner());
    let revoked = blocking(&state, move |conn| {
        Ok(keys::revoke(conn, &account_id, &id)?)
    })
    .await?;
    match revoked {
        Revoked::Done { key_hash } => {
            state.keys.forget_key(&key_hash);
            Ok(HttpResponse::NoContent().finish())
        }
        Revoked::NotFound => Err(ApiError::not_found("API key")),
        Revoked::LastAdmin => Err(ApiError::problem(
            ProblemType::LastAdminKey,
            "This is the account's last admin key; make another admin key before revoking it.",
        )),
    }
}
