//! Acting on all the invitations of an import: cancel what is still
//! queued, or send again what failed or expired.

use super::auth::Authenticated;
use super::imports::{find as find_import, find_with_report, not_the_preview};
use super::views::ImportView;
use super::{blocking, ApiError, Problem, ProblemType};
use crate::db::erase::{self, Erased};
use crate::db::lifecycle::Target;
use crate::db::{now, resend, revoke};
use crate::startup::AppState;
use actix_web::{delete, post, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

/// States a whole import's resend sends again.
const IMPORT_RESENDABLE: &[&str] = &["failed", "expired"];

/// Stop an import: its invitations still queued are revoked; what was sent
/// stays. Invitations in a batch already being handed to the provider
/// cannot be stopped: they are revoked too, counted in `in_flight`, may
/// still arrive, and their links answer that they were revoked (410).
/// Invitations whose earlier try may have reached the provider (a timeout)
/// are left queued and counted in `unconfirmed`: the dispatcher finds out
/// whether they were sent, and their links keep working.
#[utoipa::path(
    post, path = "/imports/{id}/cancel", tag = "imports",
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 200, description = "What the cancel did", body = ImportAction),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
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
    let (account_id, id) = (auth.0.id, id.into_inner());
    find_import(&state, account_id.clone(), id.clone()).await?;
    let revoked = blocking(&state, {
        let (account_id, id) = (account_id.clone(), id.clone());
        move |conn| {
            let target = Target::Import {
                account_id: &account_id,
                import_id: &id,
            };
            Ok(revoke::revoke(conn, target, &["queued"], now())?)
        }
    })
    .await?;
    let import = find_import(&state, account_id, id).await?;
    Ok(HttpResponse::Ok().json(ImportAction {
        changed: revoked.revoked,
        import: ImportView::from(import),
        in_flight: Some(revoked.in_flight),
        unconfirmed: Some(revoked.unconfirmed),
        skipped: None,
    }))
}

/// Send again, with fresh links, every failed or expired invitation of an
/// import whose address an import would invite today: suppressed
/// addresses, users and addresses with another open invitation are
/// skipped and counted in `skipped`.
#[utoipa::path(
    post, path = "/imports/{id}/resend", tag = "imports",
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 200, description = "What the resend did", body = ImportAction),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The import was erased: nothing is left to send (`import-erased`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More invitations than the account's daily budget has left (`invitation-budget-exceeded`; nothing was queued), or past the key's request rate (`rate-limited`)", body = Problem, content_type = "application/problem+json"),
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
    let (account_id, id) = (auth.0.id, id.into_inner());
    // An erased import has no addresses left to send to.
    find_with_report(&state, account_id.clone(), id.clone()).await?;
    let daily_budget = state.limits.account_daily_invitations;
    let resent = blocking(&state, {
        let (account_id, id) = (account_id.clone(), id.clone());
        move |conn| {
            let target = Target::Import {
                account_id: &account_id,
                import_id: &id,
            };
            Ok(resend::resend(
                conn,
                &account_id,
                target,
                IMPORT_RESENDABLE,
                daily_budget,
                now(),
            )?)
        }
    })
    .await?;
    let import = find_import(&state, account_id, id).await?;
    Ok(HttpResponse::Ok().json(ImportAction {
        changed: resent.requeued.len(),
        import: ImportView::from(import),
        in_flight: None,
        unconfirmed: None,
        skipped: Some(resent.skipped.into()),
    }))
}

/// Erase an import: its report entries are deleted, and its invitations
/// keep their states and times (the counts stay exactly as they were) but
/// lose their addresses and the provider's error text. Invitations still
/// open (queued, sent or delivered) are revoked first: nothing more is
/// sent, and their links answer 410 "revoked" without naming anyone. The
/// import stays in the history with `erased_at` set; its report answers 410
/// `import-erased`. Erasing an erased import is a 204 again. While a
/// dispatcher is handing some of its invitations to the provider (or has
/// yet to learn whether an earlier try reached it) nothing is changed and
/// the answer is 409 `import-busy`: try again a few seconds later.
#[utoipa::path(
    delete, path = "/imports/{id}", tag = "imports",
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 204, description = "Erased (now or before)"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Some of its invitations are being handed to the provider right now; nothing was changed (`import-busy`)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = i64, description = "Seconds to wait before trying again"))),
    ),
    security(("api_key" = []))
)]
// Like `GET /imports/{id}`: `/imports/preview` is a path of its own.
#[delete("/imports/{id}", guard = "not_the_preview")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn erase_import(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (account_id, id) = (auth.0.id, id.into_inner());
    let erased = blocking(&state, move |conn| {
        Ok(erase::erase(conn, &account_id, &id, now())?)
    })
    .await?;
    match erased {
        Erased::Done => Ok(HttpResponse::NoContent().finish()),
        Erased::NotFound => Err(ApiError::not_found("import")),
        Erased::Busy => Err(ApiError::Later {
            kind: ProblemType::ImportBusy,
            detail: "Some invitations of this import are being handed to the email provider right now; nothing was erased. Try again after Retry-After seconds.".into(),
            retry_after_secs: Some(RETRY_BUSY_SECS),
            budget: None,
        }),
    }
}

/// Seconds to wait before erasing an import again while a batch of it is
/// with the provider (a provider call takes at most EMAIL_TIMEOUT_SECS).
const RETRY_BUSY_SECS: u64 = 5;

/// What a bulk action on an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportAction {
    /// How many invitations changed.
    #[schema(example = 12)]
    pub changed: usize,
    /// The import after the action.
    pub import: ImportView,
    /// Cancel only: of the invitations revoked, how many were in a batch
    /// already being handed to the provider. They could not be stopped and
    /// may still arrive; their links answer that they were revoked (410).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 0)]
    pub in_flight: Option<usize>,
    /// Cancel only: invitations left queued because an earlier try of them
    /// may have reached the provider (a timeout): the dispatcher finds out
    /// what was sent, so an email that went out keeps a working link; the
    /// others are sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 0)]
    pub unconfirmed: Option<usize>,
    /// Resend only: invitations not sent again, by why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkippedView>,
}

/// Invitations a re-send left alone, as an import would have: the address
/// is suppressed, belongs to a user, or has another open invitation.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct SkippedView {
    #[schema(example = 1)]
    pub suppressed: usize,
    #[schema(example = 0)]
    pub existing_user: usize,
    #[schema(example = 2)]
    pub already_invited: usize,
}

impl From<crate::db::resend::Skipped> for SkippedView {
    fn from(s: crate::db::resend::Skipped) -> SkippedView {
        SkippedView {
            suppressed: s.suppressed,
            existing_user: s.existing_user,
            already_invited: s.already_invited,
        }
    }
}
