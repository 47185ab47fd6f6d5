//! The public accept flow: `GET` and `POST /invitations/accept/{token}`.
//! No API key: the token is the credential. Every refusal takes the same
//! minimum time, so timing does not tell whether a token exists.

use super::views::{AcceptedInvitation, InvitationPreview};
use super::ProblemType;
use super::{blocking, ApiError, Problem};
use crate::db::invitations::{self, Accepted, Opened, Standing};
use crate::db::now;
use crate::dispatch::token;
use crate::startup::AppState;
use actix_web::{get, post, web, HttpResponse};
use std::time::{Duration, Instant};

/// The least time any refusal takes.
const REFUSAL_FLOOR: Duration = Duration::from_millis(150);

/// What an invitation link is for: who invited whom to which account, until when.
#[utoipa::path(
    get, path = "/invitations/accept/{token}", tag = "accept",
    params(("token" = String, Path, description = "The token from the invitation email")),
    responses(
        (status = 200, body = InvitationPreview),
        (status = 404, description = "No invitation has this token (`invitation-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The invitation expired, was revoked or was already used (`invitation-used`, `invitation-expired`, `invitation-revoked`, `invitation-unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/invitations/accept/{token}")]
#[tracing::instrument(skip_all)]
pub async fn preview_invitation(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let opened = refuse_slowly(started, open(&state, path.into_inner()).await).await?;
    Ok(HttpResponse::Ok().json(InvitationPreview {
        account_name: opened.account_name,
        email: opened.email,
        expires_at: opened.expires_at.map(|at| at.and_utc()),
        message: opened.custom_message,
    }))
}

/// Accept an invitation: the address becomes a user of the account. A token works once.
#[utoipa::path(
    post, path = "/invitations/accept/{token}", tag = "accept",
    params(("token" = String, Path, description = "The token from the invitation email")),
    responses(
        (status = 200, body = AcceptedInvitation),
        (status = 404, description = "No invitation has this token (`invitation-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The invitation expired, was revoked or was already used (`invitation-used`, `invitation-expired`, `invitation-revoked`, `invitation-unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/invitations/accept/{token}")]
#[tracing::instrument(skip_all)]
pub async fn accept_invitation(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let result = async {
        let opened = open(&state, path.into_inner()).await?;
        let joined = blocking(&state, {
            let opened = opened.clone();
            move |conn| Ok(invitations::accept(conn, &opened, now())?)
        })
        .await?;
        match joined {
            Accepted::Joined { user_id } => Ok((opened, user_id)),
            Accepted::Gone => Err(gone(Standing::Used)),
        }
    }
    .await;
    let (opened, user_id) = refuse_slowly(started, result).await?;
    Ok(HttpResponse::Ok().json(AcceptedInvitation {
        status: "accepted",
        user_id,
        account_name: opened.account_name,
        email: opened.email,
        redirect_url: opened.redirect_url,
    }))
}

/// The open invitation a token names, or the refusal.
async fn open(state: &AppState, token: String) -> Result<Opened, ApiError> {
    let hash = token::hash(&token);
    let opened = blocking(state, move |conn| Ok(invitations::open(conn, &hash)?)).await?;
    let opened = opened.ok_or_else(|| {
        ApiError::problem(
            ProblemType::InvitationNotFound,
            "This invitation link is not valid. Check that the whole link was copied.",
        )
    })?;
    match opened.standing(now()) {
        Standing::Open => Ok(opened),
        standing => Err(gone(standing)),
    }
}

fn gone(standing: Standing) -> ApiError {
    let (kind, detail) = match standing {
        Standing::Expired => (
            ProblemType::InvitationExpired,
            "This invitation has expired. Ask the account's administrator for a new one.",
        ),
        Standing::Revoked => (
            ProblemType::InvitationRevoked,
            "This invitation was withdrawn by the account's administrator.",
        ),
        Standing::Used => (
            ProblemType::InvitationUsed,
            "This invitation was already accepted; sign in instead.",
        ),
        Standing::Open | Standing::Unavailable => (
            ProblemType::InvitationUnavailable,
            "This invitation can no longer be accepted. Ask the account's administrator for a new one.",
        ),
    };
    ApiError::problem(kind, detail)
}

/// Holds a refusal until [`REFUSAL_FLOOR`] has passed since `started`.
async fn refuse_slowly<T>(started: Instant, result: Result<T, ApiError>) -> Result<T, ApiError> {
    if result.is_err() {
        tokio::time::sleep_until((started + REFUSAL_FLOOR).into()).await;
    }
    result
}
