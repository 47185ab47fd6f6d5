//! `GET /suppressions` and `DELETE /suppressions/{email}`: the addresses
//! imports and re-sends skip because they bounced, complained, unsubscribed
//! or are refused by the provider, and lifting one.

use super::auth::Authenticated;
use super::imports::HistoryParams;
use super::pagination;
use super::ProblemType;
use super::{blocking, ApiError, Problem};
use crate::db::suppressions::{self, Suppression};
use crate::domain::EmailAddress;
use crate::startup::AppState;
use actix_web::{delete, get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A suppressed address.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionView {
    /// The address, as first suppressed.
    #[schema(example = "ann@example.com")]
    pub email: String,
    /// Why: `bounced`, `complained`, `unsubscribed` or `refused by the
    /// provider`, with the provider's explanation when it gave one.
    #[schema(example = "bounced")]
    pub reason: String,
    /// When it was suppressed.
    pub created_at: DateTime<Utc>,
}

impl From<Suppression> for SuppressionView {
    fn from(s: Suppression) -> SuppressionView {
        SuppressionView {
            email: s.email,
            reason: s.reason,
            created_at: s.created_at.and_utc(),
        }
    }
}

/// A page of the suppression list, in address order.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionsPage {
    pub suppressions: Vec<SuppressionView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Paging of the suppression list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionParams {
    /// Page size.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (the address key of the last row it held).
    #[param(pattern = r"^[^\x00-\x1F\x7F-\x9F]{1,320}$")]
    pub cursor: Option<String>,
}

/// The account's suppressed addresses, in address order.
#[utoipa::path(
    get, path = "/suppressions", tag = "suppressions",
    params(SuppressionParams),
    responses(
        (status = 200, description = "A page of the suppression list", body = SuppressionsPage),
        (status = 400, description = "A bad cursor or limit (`invalid-cursor`, `invalid-limit`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[get("/suppressions")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn list_suppressions(
    state: web::Data<AppState>,
    auth: Authenticated,
    params: web::Query<SuppressionParams>,
) -> Result<HttpResponse, ApiError> {
    let page = HistoryParams {
        limit: params.limit,
        cursor: params.cursor.clone(),
    };
    let (limit, after) = page.page('s')?;
    let account_id = auth.0.id;
    let rows = blocking(&state, move |conn| {
        Ok(suppressions::list(
            conn,
            &account_id,
            after.as_deref(),
            limit + 1,
        )?)
    })
    .await?;
    let (rows, next_cursor) = pagination::next_page(rows, limit, 's', |s| s.email_key.clone());
    Ok(HttpResponse::Ok().json(SuppressionsPage {
        suppressions: rows.into_iter().map(SuppressionView::from).collect(),
        next_cursor,
    }))
}

/// Lift the suppression of an address (compared case-insensitively), so
/// later imports and re-sends invite it again.
#[utoipa::path(
    delete, path = "/suppressions/{email}", tag = "suppressions",
    params(("email" = String, Path, format = Email, description = "The suppressed address")),
    responses(
        (status = 204, description = "Lifted"),
        (status = 400, description = "Not a valid address (`invalid-email`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The address is not suppressed in this account (`not-suppressed`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[delete("/suppressions/{email}")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn delete_suppression(
    state: web::Data<AppState>,
    auth: Authenticated,
    email: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = EmailAddress::parse(&email)
        .map(|e| e.key())
        .map_err(|reason| {
            ApiError::problem(
                ProblemType::InvalidEmail,
                format!("The address is not valid ({reason})."),
            )
        })?;
    let account_id = auth.0.id;
    let lifted = blocking(&state, move |conn| {
        Ok(suppressions::lift(conn, &account_id, &key)?)
    })
    .await?;
    match lifted {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::problem(
            ProblemType::NotSuppressed,
            "This address is not on the account's suppression list.",
        )),
    }
}
