//! The one error type of the HTTP edge, answered as RFC 9457
//! `application/problem+json`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// A problem document (RFC 9457).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "/problems/invalid-cursor",
    "title": "Invalid cursor",
    "status": 400,
    "detail": "The cursor is not one this API returned; start again without it."
}))]
pub struct Problem {
    /// A stable URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, and what to do about it.
    pub detail: String,
}

/// Seconds a client is told to wait (`Retry-After`) when the database is
/// busy or out of reach.
pub const RETRY_UNAVAILABLE_SECS: u64 = 5;

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A problem the caller can act on.
    #[error("{title}: {detail}")]
    Problem {
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: String,
    },
    /// Our fault; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// The database is out of reach, or did not answer in time.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
}

impl ApiError {
    /// A problem with a status, a stable slug (the `type` is
    /// `/problems/<slug>`), a title and a detail.
    pub fn problem(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError::Problem {
            status,
            slug,
            title,
            detail: detail.into(),
        }
    }

    /// 400 with the given slug and title.
    pub fn bad_request(
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError::problem(StatusCode::BAD_REQUEST, slug, title, detail)
    }

    /// 404 for a resource the account cannot see (it may belong to another).
    pub fn not_found(what: &str) -> ApiError {
        ApiError::problem(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("No {what} with that id exists in this account."),
        )
    }

    /// 401 for a missing or unknown API key.
    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// The problem document this error is answered with.
    pub fn to_problem(&self) -> Problem {
        let (slug, title, detail) = match self {
            ApiError::Problem {
                slug,
                title,
                detail,
                ..
            } => (*slug, *title, detail.clone()),
            ApiError::Internal(_) => (
                "internal",
                "Internal server error",
                "Something went wrong on our side; it has been logged. Try again later.".into(),
            ),
            ApiError::Unavailable(_) => (
                "unavailable",
                "Service unavailable",
                "The database is busy or cannot be reached right now; try again after Retry-After seconds.".into(),
            ),
        };
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: self.status_code().as_u16(),
            detail,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Problem { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) | ApiError::Unavailable(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        match self.status_code() {
            StatusCode::UNAUTHORIZED => {
                response.insert_header(("WWW-Authenticate", "Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header(("Retry-After", RETRY_UNAVAILABLE_SECS.to_string()));
            }
            _ => {}
        }
        response
            .content_type("application/problem+json")
            .json(self.to_problem())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> ApiError {
        match crate::db::is_unavailable(&error) {
            true => ApiError::Unavailable(error.into()),
            false => ApiError::Internal(error.into()),
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(error: crate::db::DbError) -> ApiError {
        match error {
            crate::db::DbError::Pool(e) => ApiError::Unavailable(e.into()),
            crate::db::DbError::Query(e) => e.into(),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(error: r2d2::Error) -> ApiError {
        ApiError::Unavailable(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_serialises_to_the_rfc_9457_shape() {
        let error =
            ApiError::bad_request("invalid-limit", "Invalid limit", "limit must be 1 to 1000");
        let json = serde_json::to_value(error.to_problem()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "/problems/invalid-limit",
                "title": "Invalid limit",
                "status": 400,
                "detail": "limit must be 1 to 1000"
            })
        );
    }

    #[test]
    fn an_internal_error_never_shows_its_cause() {
        let error = ApiError::Internal(anyhow::anyhow!("password=hunter2 in connection string"));
        let problem = error.to_problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("hunter2"));
    }
}
