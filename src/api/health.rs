//! Liveness and readiness.

use super::ApiError;
use super::ProblemType;
use crate::dispatch::DispatchState;
use crate::startup::AppState;
use actix_web::{get, web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde::Serialize;

/// A health answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` (alive) or `ready` (and the database answers).
    #[schema(value_type = HealthStatus, example = "ok")]
    pub status: &'static str,
    /// The in-process dispatcher's state (absent when this process runs none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<DispatchState>,
}

/// The values of [`Health::status`], for the schema.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum HealthStatus {
    Ok,
    Ready,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up", body = Health)))]
#[get("/healthz")]
pub async fn get_health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        dispatch: None,
    })
}

/// How long readiness waits for a database connection and its answer.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Readiness: the database answers a query within a second, on a
/// connection the pool can spare within a second. The body also shows
/// whether the in-process dispatcher is running or paused (a paused
/// dispatcher does not make the API unready: uploads still work and
/// queue).
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready: the database answers", body = Health),
        (status = 503, description = "The database does not answer, or every connection is busy (`not-ready`)", body = NotReady, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn get_readiness(state: web::Data<AppState>) -> HttpResponse {
    let dispatch = state.dispatch.as_ref().map(|status| status.get());
    let pool = state.pool.clone();
    // Probes at once share one check (no key is needed here, and each
    // check takes a thread): see `OneAtATime`.
    let checked = state
        .readiness
        .get(|| async { Ok::<_, std::convert::Infallible>(check(pool).await) })
        .await;
    let error = match checked {
        Ok(Ok(())) => {
            return HttpResponse::Ok().json(Health {
                status: "ready",
                dispatch,
            })
        }
        Ok(Err(error)) => error,
        Err(never) => match never {},
    };
    tracing::warn!(%error, "not ready");
    HttpResponse::ServiceUnavailable()
        .insert_header((
            "Retry-After",
            super::error::RETRY_UNAVAILABLE_SECS.to_string(),
        ))
        .content_type("application/problem+json")
        .json(NotReady {
            problem: ApiError::problem(ProblemType::NotReady, "The database does not answer, or every connection is busy; try again after Retry-After seconds.").to_problem(),
            dispatch,
        })
}

/// Asks the database `SELECT 1` on a connection the pool can spare, both
/// within [`READY_WITHIN`]; the failure in words.
async fn check(pool: crate::db::Pool) -> Result<(), String> {
    let checked = tokio::time::timeout(
        READY_WITHIN,
        web::block(move || -> Result<(), ApiError> {
            let mut conn = pool.get_timeout(READY_WITHIN)?;
            conn.batch_execute("SELECT 1")
                .map_err(|e| ApiError::Unavailable(e.into()))
        }),
    )
    .await;
    match checked {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(error))) => Err(format!("{error:#}")),
        Ok(Err(error)) => Err(format!("readiness check failed: {error}")),
        Err(_) => Err(format!(
            "the database did not answer within {READY_WITHIN:?}"
        )),
    }
}

/// A 503 from `/readyz`: a problem document that also carries the
/// dispatcher's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotReady {
    #[serde(flatten)]
    pub problem: Problem,
    /// The in-process dispatcher's state (absent when this process runs none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<DispatchState>,
}

use super::Problem;
