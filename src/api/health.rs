//! Liveness and readiness.

use super::{blocking, ApiError};
use crate::dispatch::DispatchState;
use crate::startup::AppState;
use actix_web::{get, web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde::Serialize;

/// A health answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The in-process dispatcher's state (absent when this process runs none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<DispatchState>,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        dispatch: None,
    })
}

/// Readiness: the database answers a query. The body also shows whether
/// the in-process dispatcher is running or paused (a paused dispatcher
/// does not make the API unready: uploads still work and queue).
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "The database cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    blocking(&state, |conn| {
        conn.batch_execute("SELECT 1")
            .map_err(|e| ApiError::Unavailable(e.into()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ready",
        dispatch: state.dispatch.as_ref().map(|status| status.get()),
    }))
}

use super::Problem;
