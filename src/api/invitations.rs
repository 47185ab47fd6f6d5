//! Administering invitations one at a time: find, revoke and resend them
//! (a whole import's are in `import_actions`).

use super::auth::Authenticated;
use super::pagination;
use super::reports::parse_statuses;
use super::views::{InvitationView, InvitationsPage};
use super::ProblemType;
use super::{blocking, ApiError, Problem};
use crate::db::invitations::{self, Filter};
use crate::db::lifecycle::Target;
use crate::db::resend::{self, Skipped};
use crate::db::{now, revoke};
use crate::domain::{EmailAddress, EntryStatus};
use crate::startup::AppState;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

/// States an invitation can be revoked from.
const REVOCABLE: &[&str] = &["queued", "sent", "delivered"];
/// States an invitation can be sent again from: failed, expired or unanswered.
const RESENDABLE: &[&str] = &["failed", "expired", "sent", "delivered"];

/// Filters and paging of the invitation list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationParams {
    /// Only these statuses (repeat the parameter, or separate with commas).
    #[serde(default)]
    #[param(style = Form, explode, value_type = Option<Vec<EntryStatus>>)]
    pub status: Vec<String>,
    /// Only invitations to this address (compared case-insensitively).
    #[param(format = Email)]
    pub email: Option<String>,
    /// Only invitations of this import.
    pub import_id: Option<String>,
    /// Page size.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (the id of the last row it held; empty: the first page).
    #[param(pattern = r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$")]
    pub cursor: Option<String>,
}

/// The account's invitations, oldest first.
#[utoipa::path(
    get, path = "/invitations", tag = "invitations",
    params(InvitationParams),
    responses(
        (status = 200, description = "A page of invitations", body = InvitationsPage),
        (status = 400, description = "A bad status, email, cursor or limit (`invalid-status`, `invalid-email`, `invalid-cursor`, `invalid-limit`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
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
    if params.email.is_none() && super::empty_param(&req, "email") {
        return Err(ApiError::problem(
            ProblemType::InvalidEmail,
            "email is empty; leave it out to list every address.",
        ));
    }
    let email_key = match &params.email {
        Some(email) => Some(
            EmailAddress::parse(email)
                .map(|e| e.key())
                .map_err(|reason| {
                    ApiError::problem(
                        ProblemType::InvalidEmail,
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

/// Revoke an invitation: its link stops working, and one still queued is
/// not sent. One in a batch already being handed to the provider may
/// still arrive; its link then answers that it was revoked.
#[utoipa::path(
    delete, path = "/invitations/{id}", tag = "invitations",
    params(("id" = String, Path, description = "The invitation's id")),
    responses(
        (status = 200, description = "Revoked", body = InvitationView),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invitation in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The invitation was already accepted, revoked or ended, or the address is now suppressed, a user or invited again (`invitation-state`, `invitation-suppressed`, `existing-user`, `already-invited`)", body = Problem, content_type = "application/problem+json"),
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
    let (account_id, id) = (auth.0.id, id.into_inner());
    let (revoked, current) = blocking(&state, move |conn| {
        let target = Target::One {
            account_id: &account_id,
            id: &id,
        };
        let revoked = revoke::revoke(conn, target, REVOCABLE, now())?;
        Ok((revoked, invitations::find(conn, &account_id, &id)?))
    })
    .await?;
    answer(revoked.revoked, current, Skipped::default())
}

/// Send an invitation again with a fresh link (the old one stops working):
/// for a failed, expired or unanswered invitation whose address an import
/// would invite today.
#[utoipa::path(
    post, path = "/invitations/{id}/resend", tag = "invitations",
    params(("id" = String, Path, description = "The invitation's id")),
    responses(
        (status = 200, description = "Queued again", body = InvitationView),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such invitation in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The invitation is queued, accepted, revoked, bounced or complained; or its address is suppressed (`invitation-suppressed`), belongs to a user (`existing-user`) or has another open invitation (`already-invited`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More invitations than the account's daily budget has left (`invitation-budget-exceeded`; nothing was queued), or past the key's request rate (`rate-limited`)", body = Problem, content_type = "application/problem+json"),
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
    let (account_id, id) = (auth.0.id, id.into_inner());
    let daily_budget = state.limits.account_daily_invitations;
    let (resent, current) = blocking(&state, move |conn| {
        let target = Target::One {
            account_id: &account_id,
            id: &id,
        };
        let resent = resend::resend(conn, &account_id, target, RESENDABLE, daily_budget, now())?;
        Ok((resent, invitations::find(conn, &account_id, &id)?))
    })
    .await?;
    answer(resent.requeued.len(), current, resent.skipped)
}

/// The invitation after a change, or why nothing changed.
fn answer(
    moved: usize,
    current: Option<invitations::Invitation>,
    skipped: Skipped,
) -> Result<HttpResponse, ApiError> {
    let current = current.ok_or_else(|| ApiError::not_found("invitation"))?;
    if moved > 0 {
        return Ok(HttpResponse::Ok().json(InvitationView::from(current)));
    }
    let (kind, detail) = if skipped.suppressed > 0 {
        (
            ProblemType::InvitationSuppressed,
            "The address bounced, complained or is refused by the provider; lift it with DELETE /suppressions/{email} first.".to_owned(),
        )
    } else if skipped.existing_user > 0 {
        (
            ProblemType::ExistingUser,
            "The address already belongs to a user of this account.".to_owned(),
        )
    } else if skipped.already_invited > 0 {
        (
            ProblemType::AlreadyInvited,
            "Another invitation to this address is open; resend or revoke that one.".to_owned(),
        )
    } else {
        (
            ProblemType::InvitationState,
            format!(
                "The invitation is {}, so this action does not apply to it.",
                current.status
            ),
        )
    };
    Err(ApiError::problem(kind, detail))
}
