//! Administering invitations: find, revoke and resend them, one at a time
//! or for a whole import.

use super::auth::Authenticated;
use super::imports::find as find_import;
use super::pagination;
use super::reports::parse_statuses;
use super::views::{ImportAction, ImportView, InvitationView, InvitationsPage};
use super::{blocking, ApiError, Problem};
use crate::db::invitations::{self, Filter};
use crate::db::lifecycle::{self, Change, Target};
use crate::db::now;
use crate::domain::{EmailAddress, EntryStatus};
use crate::startup::AppState;
use actix_web::http::StatusCode;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

/// States an invitation can be revoked from.
const REVOCABLE: &[&str] = &["queued", "sent", "delivered"];
/// States an invitation can be sent again from: failed, expired or unanswered.
const RESENDABLE: &[&str] = &["failed", "expired", "sent", "delivered"];
/// States a whole import's resend sends again.
const IMPORT_RESENDABLE: &[&str] = &["failed", "expired"];

/// Filters and paging of the invitation list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationParams {
    /// Only these statuses (repeat the parameter, or separate with commas).
    #[serde(default)]
    #[param(style = Form, explode, value_type = Option<Vec<EntryStatus>>)]
    pub status: Vec<String>,
    /// Only invitations to this address (compared case-insensitively).
    pub email: Option<String>,
    /// Only invitations of this import.
    pub import_id: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The account's invitations, oldest first.
#[utoipa::path(
    get, path = "/invitations", tag = "invitations",
    params(InvitationParams),
    responses(
        (status = 200, body = InvitationsPage),
        (status = 400, description = "A bad status, email, cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[get("/invitations")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn list_invitations(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params: InvitationParams = super::query_with_repeats(&req)?;
    let email_key = match &params.email {
        Some(email) => Some(
            EmailAddress::parse(email)
                .map(|e| e.key())
                .map_err(|reason| {
                    ApiError::bad_request(
                        "invalid-email",
                        "Invalid email",
                        format!("email is not a valid address ({reason})."),
                    )
                })?,
        ),
        None => None,
    };
    let filter = Filter {
        statuses: parse_statuses(&params.status)?,
        email_key,
        import_id: params.import_id,
    };
    let limit = pagination::limit(params.limit)?;
    let after = params
        .cursor
        .as_deref()
        .map(|c| pagination::decode('v', c))
        .transpose()?;
    let account_id = auth.0.id;
    let rows = blocking(&state, move |conn| {
        Ok(invitations::list(
            conn,
            &account_id,
            filter,
            after,
            limit + 1,
        )?)
    })
    .await?;
    let (rows, next_cursor) = pagination::next_page(rows, limit, 'v', |i| i.id.clone());
    Ok(HttpResponse::Ok().json(InvitationsPage {
        invitations: rows.into_iter().map(InvitationView::from).collect(),
        next_cursor,
    }))
}

/// Revoke an invitation: its link stops working, and one still queued is not sent.
#[utoipa::path(
    delete, path = "/invitations/{id}", tag = "invitations",
    params(("id" = String, Path, description = "The invitation's id")),
    responses(
        (status = 200, description = "Revoked", body = InvitationView),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invitation in this account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The invitation was already accepted, revoked or ended", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[delete("/invitations/{id}")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn revoke_invitation(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change_one(
        &state,
        auth.0.id,
        id.into_inner(),
        Change::new(REVOCABLE, "revoked"),
    )
    .await
}

/// Send an invitation again with a fresh link (the old one stops working):
/// for a failed, expired or unanswered invitation.
#[utoipa::path(
    post, path = "/invitations/{id}/resend", tag = "invitations",
    params(("id" = String, Path, description = "The invitation's id")),
    responses(
        (status = 200, description = "Queued again", body = InvitationView),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invitation in this account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The invitation is queued, accepted, revoked, bounced or complained", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/invitations/{id}/resend")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn resend_invitation(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let change = Change::requeue(RESENDABLE, now());
    change_one(&state, auth.0.id, id.into_inner(), change).await
}

async fn change_one(
    state: &AppState,
    account_id: String,
    id: String,
    change: Change<'static>,
) -> Result<HttpResponse, ApiError> {
    let (moved, current) = blocking(state, move |conn| {
        let target = Target::One {
            account_id: &account_id,
            id: &id,
        };
        let moved = lifecycle::apply(conn, target, &change, now())?;
        Ok((moved.len(), invitations::find(conn, &account_id, &id)?))
    })
    .await?;
    let current = current.ok_or_else(|| ApiError::not_found("invitation"))?;
    if moved == 0 {
        return Err(ApiError::problem(
            StatusCode::CONFLICT,
            "invitation-state",
            "Not possible in this state",
            format!(
                "The invitation is {}, so this action does not apply to it.",
                current.status
            ),
        ));
    }
    Ok(HttpResponse::Ok().json(InvitationView::from(current)))
}

/// Stop an import: its invitations still queued are revoked; what was sent stays.
#[utoipa::path(
    post, path = "/imports/{id}/cancel", tag = "imports",
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 200, body = ImportAction),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in this account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/imports/{id}/cancel")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn cancel_import(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change_import(
        &state,
        auth.0.id,
        id.into_inner(),
        Change::new(&["queued"], "revoked"),
    )
    .await
}

/// Send again every failed or expired invitation of an import, with fresh links.
#[utoipa::path(
    post, path = "/imports/{id}/resend", tag = "imports",
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 200, body = ImportAction),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in this account", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/imports/{id}/resend")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn resend_import(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let change = Change::requeue(IMPORT_RESENDABLE, now());
    change_import(&state, auth.0.id, id.into_inner(), change).await
}

async fn change_import(
    state: &AppState,
    account_id: String,
    id: String,
    change: Change<'static>,
) -> Result<HttpResponse, ApiError> {
    find_import(state, account_id.clone(), id.clone()).await?;
    let moved = blocking(state, {
        let (account_id, id) = (account_id.clone(), id.clone());
        move |conn| {
            let target = Target::Import {
                account_id: &account_id,
                import_id: &id,
            };
            Ok(lifecycle::apply(conn, target, &change, now())?.len())
        }
    })
    .await?;
    let import = find_import(state, account_id, id).await?;
    Ok(HttpResponse::Ok().json(ImportAction {
        changed: moved,
        import: ImportView::from(import),
    }))
}
