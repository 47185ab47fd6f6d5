//! `GET /account` and `PATCH /account`: the calling key's account, its
//! display name and the address replies to its invitations go to.

use super::auth::Authenticated;
use super::views::BudgetView;
use super::ProblemType;
use super::{blocking, limits, ApiError, Problem};
use crate::db::accounts::{self, AccountChange};
use crate::db::budget::{self, Budget};
use crate::db::models::Account;
use crate::domain::{DisplayName, EmailAddress};
use crate::startup::AppState;
use actix_web::{get, patch, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// The largest `PATCH /account` body.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The account an API key belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    /// The name invitation emails show ("Ann Lee invited you to join <name>").
    #[schema(example = "Acme")]
    pub name: String,
    /// Where replies to the invitation emails go (null: to the sender, `EMAIL_FROM`).
    #[schema(example = "team@acme.example")]
    pub reply_to: Option<String>,
    pub created_at: DateTime<Utc>,
    /// What the account and each of its keys may do.
    pub limits: AccountLimits,
    /// What the account has used of them.
    pub usage: AccountUsage,
}

/// The account's limits (with several API processes, the request rate and
/// uploads at once are counted per process).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountLimits {
    /// Invitations the account may queue (imports and re-sends) in any 24
    /// hours (null: unlimited).
    #[schema(example = 10000)]
    pub daily_invitations: Option<i64>,
    /// Requests per minute per API key (null: unlimited).
    #[schema(example = 1200)]
    pub requests_per_minute_per_key: Option<u32>,
    /// Uploads (imports and previews) at once (null: unlimited).
    #[schema(example = 2)]
    pub concurrent_imports: Option<u32>,
    /// Days an import keeps its report and its invitees' addresses before
    /// the retention sweep erases them (null: kept).
    #[schema(example = 90)]
    pub report_retention_days: Option<u32>,
}

/// What the account has used of its limits now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountUsage {
    /// The daily invitation budget: queued in the last 24 hours, and left.
    pub invitations: BudgetView,
    /// Uploads being received or classified now (on this process).
    #[schema(example = 0)]
    pub imports_in_flight: u32,
}

impl AccountView {
    fn new(account: Account, state: &AppState, budget: Budget) -> AccountView {
        let limits = &state.limits;
        let positive = |n: u32| Some(n).filter(|&n| n > 0);
        AccountView {
            limits: AccountLimits {
                daily_invitations: budget.limit,
                requests_per_minute_per_key: positive(limits.rate_limit_per_minute),
                concurrent_imports: positive(state.import_slots.max()),
                report_retention_days: positive(state.report_retention_days),
            },
            usage: AccountUsage {
                invitations: budget.into(),
                imports_in_flight: state.import_slots.in_flight(&account.id),
            },
            id: account.id,
            name: account.name,
            reply_to: account.reply_to,
            created_at: account.created_at.and_utc(),
        }
    }
}

/// The account with its budget now.
async fn view(state: &AppState, account: Account) -> Result<AccountView, ApiError> {
    let (id, default) = (account.id.clone(), state.limits.account_daily_invitations);
    let budget = blocking(state, move |conn| {
        Ok(budget::current(conn, &id, default, crate::db::now())?)
    })
    .await?;
    Ok(AccountView::new(account, state, budget))
}

/// What to change; a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    /// The new display name: at most 100 characters, no control characters
    /// (surrounding spaces are trimmed).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069]*[^\s\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069][^\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069]*$",
        example = "Acme"
    )]
    pub name: Option<String>,
    /// The reply-to address of invitation emails; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Email, example = "team@acme.example")]
    pub reply_to: Option<Option<String>>,
}

/// A field that is there (even as `null`) is `Some`; a missing one is `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The account of the API key: its name and reply-to address, its limits
/// and what it has used of them.
#[utoipa::path(
    get, path = "/account", tag = "account",
    responses(
        (status = 200, description = "The account", body = AccountView),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[get("/account")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn get_account(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(view(&state, auth.0).await?))
}

/// Rename the account or set where replies go; every invitation email not
/// yet tried shows the change (a retry keeps what its first try said).
#[utoipa::path(
    patch, path = "/account", tag = "account",
    request_body = AccountUpdate,
    responses(
        (status = 200, description = "The account as it is now", body = AccountView),
        (status = 400, description = "Not a JSON object of `name` and `reply_to`, a name that is empty, too long or holds a control character, or a reply-to that is not a deliverable address (`invalid-account-name`, `invalid-reply-to`, `invalid-json`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB (`body-too-large`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A Content-Type other than application/json (`unsupported-media-type`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[patch("/account")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn update_account(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let update: AccountUpdate = limits::read_json(
        &req,
        payload,
        MAX_BODY_BYTES,
        "16 KiB for PATCH /account",
        "with `name` and/or `reply_to`",
    )
    .await?;
    let change = checked(update)?;
    let account_id = auth.0.id;
    let account = blocking(&state, {
        let account_id = account_id.clone();
        move |conn| Ok(accounts::update(conn, &account_id, &change)?)
    })
    .await?
    .ok_or_else(|| ApiError::not_found("account"))?;
    // Requests after this one see the change at once.
    state.keys.forget_account(&account_id);
    Ok(HttpResponse::Ok().json(view(&state, account).await?))
}

/// The change as stored, or a 400 naming what is wrong.
fn checked(update: AccountUpdate) -> Result<AccountChange, ApiError> {
    let name = update
        .name
        .map(|name| DisplayName::parse(&name).map(DisplayName::into_string))
        .transpose()
        .map_err(|e| {
            ApiError::problem(
                ProblemType::InvalidAccountName,
                format!("The account name {e}."),
            )
        })?;
    let reply_to = match update.reply_to {
        Some(Some(raw)) => Some(Some(
            EmailAddress::parse(raw.trim())
                .map_err(|reason| {
                    ApiError::problem(
                        ProblemType::InvalidReplyTo,
                        format!(
                            "reply_to is not a deliverable email address ({}).",
                            reason.code()
                        ),
                    )
                })?
                .into_string(),
        )),
        other => other,
    };
    Ok(AccountChange { name, reply_to })
}
