//! The one error type of the HTTP edge, answered as RFC 9457
//! `application/problem+json`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// A problem document (RFC 9457).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A stable URI reference naming the kind of problem: `/problems/<slug>`,
    /// one of the types listed in the README.
    #[serde(rename = "type")]
    #[schema(value_type = ProblemTypeUri)]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong this time, and what to do about it.
    pub detail: String,
    /// `invitation-budget-exceeded` only: the daily budget and how much of
    /// it is left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetProblem>,
}

/// The daily invitation budget when an import or re-send would pass it.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct BudgetProblem {
    /// Invitations an account may queue in any 24 hours.
    #[schema(example = 1000)]
    pub limit: i64,
    /// Queued in the last 24 hours.
    #[schema(example = 990)]
    pub used: i64,
    /// Left now (`limit - used`).
    #[schema(example = 10)]
    pub remaining: i64,
    /// What this request would have queued.
    #[schema(example = 25)]
    pub requested: i64,
}

/// Declares every problem type with its slug and status: the one list the
/// schema's `Problem.type` enum, the README's table (a test compares them)
/// and the handlers use.
macro_rules! problem_types {
    ($($variant:ident = $slug:literal, $status:literal, $title:literal;)*) => {
        /// A kind of problem the API answers with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ProblemType {
            $(#[doc = $slug] $variant,)*
        }

        impl ProblemType {
            /// Every problem type, in the README's order (by status).
            pub const ALL: &'static [ProblemType] = &[$(ProblemType::$variant),*];

            /// The slug: the `type` is `/problems/<slug>`.
            pub fn slug(self) -> &'static str {
                match self {
                    $(ProblemType::$variant => $slug,)*
                }
            }

            /// The status every answer of this type has.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ProblemType::$variant => StatusCode::from_u16($status).expect("a valid status"),)*
                }
            }

            /// A short summary of the kind of problem (the `title`).
            pub fn title(self) -> &'static str {
                match self {
                    $(ProblemType::$variant => $title,)*
                }
            }

            /// The `type` URI reference.
            pub fn uri(self) -> String {
                format!("/problems/{}", self.slug())
            }
        }
    };
}

problem_types! {
    MissingFile = "missing-file", 400, "No file part";
    EmptyFile = "empty-file", 400, "Empty file";
    NoEntries = "no-entries", 400, "No entries";
    InvalidOption = "invalid-option", 400, "Invalid import option";
    InvalidAccountName = "invalid-account-name", 400, "Invalid account name";
    InvalidKeyName = "invalid-key-name", 400, "Invalid API key name";
    InvalidScopes = "invalid-scopes", 400, "Invalid scopes";
    InvalidReplyTo = "invalid-reply-to", 400, "Invalid reply-to address";
    ConflictingOption = "conflicting-option", 400, "Conflicting upload option";
    InvalidCursor = "invalid-cursor", 400, "Invalid cursor";
    InvalidStatus = "invalid-status", 400, "Invalid status";
    InvalidLimit = "invalid-limit", 400, "Invalid limit";
    InvalidFormat = "invalid-format", 400, "Invalid format";
    InvalidQuery = "invalid-query", 400, "Invalid query parameter";
    InvalidPath = "invalid-path", 400, "Invalid path parameter";
    InvalidJson = "invalid-json", 400, "Invalid JSON body";
    InvalidEmail = "invalid-email", 400, "Invalid email";
    InvalidMultipart = "invalid-multipart", 400, "Invalid multipart body";
    InvalidField = "invalid-field", 400, "Invalid form field";
    InvalidFilename = "invalid-filename", 400, "Invalid file name";
    InvalidIdempotencyKey = "invalid-idempotency-key", 400, "Invalid Idempotency-Key";
    InvalidCharacters = "invalid-characters", 400, "Control characters in the request";
    TooManyFields = "too-many-fields", 400, "Too many form fields";
    TooManyFiles = "too-many-files", 400, "More than one file";
    TooManyUsers = "too-many-users", 400, "Too many addresses";
    UploadInterrupted = "upload-interrupted", 400, "Upload interrupted";
    InvalidWebhookBody = "invalid-webhook-body", 400, "Unreadable webhook body";
    Unauthorized = "unauthorized", 401, "Unauthorized";
    InsufficientScope = "insufficient-scope", 403, "Insufficient scope";
    WebhookUnverified = "webhook-unverified", 401, "Webhook not verified";
    NotFound = "not-found", 404, "Not found";
    InvitationNotFound = "invitation-not-found", 404, "Invitation not found";
    NotSuppressed = "not-suppressed", 404, "Not suppressed";
    MethodNotAllowed = "method-not-allowed", 405, "Method not allowed";
    BodyTimeout = "body-timeout", 408, "Request body too slow";
    IdempotencyKeyReused = "idempotency-key-reused", 409, "Idempotency-Key reused";
    InvitationState = "invitation-state", 409, "Not possible in this state";
    LastAdminKey = "last-admin-key", 409, "Last admin key";
    TooManyKeys = "too-many-keys", 409, "Too many API keys";
    InvitationSuppressed = "invitation-suppressed", 409, "Address suppressed";
    ExistingUser = "existing-user", 409, "Already a user";
    AlreadyInvited = "already-invited", 409, "Already invited";
    ImportBusy = "import-busy", 409, "Import being sent";
    InvitationExpired = "invitation-expired", 410, "Invitation expired";
    InvitationRevoked = "invitation-revoked", 410, "Invitation revoked";
    InvitationUsed = "invitation-used", 410, "Invitation already used";
    InvitationUnavailable = "invitation-unavailable", 410, "Invitation unavailable";
    ImportErased = "import-erased", 410, "Import erased";
    FileTooLarge = "file-too-large", 413, "File too large";
    BodyTooLarge = "body-too-large", 413, "Request body too large";
    FieldTooLarge = "field-too-large", 413, "Form field too large";
    BinaryContent = "binary-content", 415, "Binary content";
    UnsupportedMediaType = "unsupported-media-type", 415, "Unsupported media type";
    InvalidEncoding = "invalid-encoding", 422, "Not UTF-8 text";
    RateLimited = "rate-limited", 429, "Too many requests";
    TooManyImports = "too-many-imports", 429, "Too many uploads at once";
    InvitationBudgetExceeded = "invitation-budget-exceeded", 429, "Daily invitation budget exceeded";
    Internal = "internal", 500, "Internal server error";
    Unavailable = "unavailable", 503, "Service unavailable";
    NotReady = "not-ready", 503, "Not ready";
}

/// `Problem.type` in the schema: an enum of every `/problems/<slug>`.
pub struct ProblemTypeUri;

impl utoipa::PartialSchema for ProblemTypeUri {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(ProblemType::ALL.iter().map(|t| t.uri())))
            .examples([ProblemType::InvalidCursor.uri()])
            .into()
    }
}

impl utoipa::ToSchema for ProblemTypeUri {}

/// Seconds a client is told to wait (`Retry-After`) when the database is
/// busy or out of reach.
pub const RETRY_UNAVAILABLE_SECS: u64 = 5;

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A problem the caller can act on.
    #[error("{}: {detail}", kind.title())]
    Problem { kind: ProblemType, detail: String },
    /// Our fault; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// The database is out of reach, or did not answer in time.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A problem that passes with time (a limit reached, an import being
    /// sent): `Retry-After` says when to try again.
    #[error("{}: {detail}", kind.title())]
    Later {
        kind: ProblemType,
        detail: String,
        /// `Retry-After` (`None`: waiting does not help).
        retry_after_secs: Option<u64>,
        budget: Option<BudgetProblem>,
    },
}

impl ApiError {
    /// A problem of a type (which gives its status and title) with a detail.
    pub fn problem(kind: ProblemType, detail: impl Into<String>) -> ApiError {
        ApiError::Problem {
            kind,
            detail: detail.into(),
        }
    }

    /// 404 for a resource the account cannot see (it may belong to another).
    pub fn not_found(what: &str) -> ApiError {
        ApiError::problem(
            ProblemType::NotFound,
            format!("No {what} with that id exists in this account."),
        )
    }

    /// 429 for an import or re-send that would pass the daily budget.
    pub fn budget_exceeded(e: crate::db::budget::Exceeded) -> ApiError {
        let remaining = (e.limit - e.used).max(0);
        let detail = match e.retry_after_secs {
            Some(_) => format!(
                "This would queue {} invitations; {remaining} of the account's {} per 24 hours are left. Nothing was stored: try again after Retry-After seconds, or send fewer.",
                e.requested, e.limit
            ),
            None => format!(
                "This would queue {} invitations, more than the account's whole budget of {} per 24 hours. Nothing was stored: split the file.",
                e.requested, e.limit
            ),
        };
        ApiError::Later {
            kind: ProblemType::InvitationBudgetExceeded,
            detail,
            retry_after_secs: e.retry_after_secs.map(|s| s.max(1) as u64),
            budget: Some(BudgetProblem {
                limit: e.limit,
                used: e.used,
                remaining,
                requested: e.requested,
            }),
        }
    }

    /// 401 for a missing or unknown API key.
    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::problem(ProblemType::Unauthorized, detail)
    }

    /// The problem document this error is answered with.
    pub fn to_problem(&self) -> Problem {
        let (kind, detail) = match self {
            ApiError::Problem { kind, detail } | ApiError::Later { kind, detail, .. } => {
                (*kind, detail.clone())
            }
            ApiError::Internal(_) => (
                ProblemType::Internal,
                "Something went wrong on our side; it has been logged. Try again later.".into(),
            ),
            ApiError::Unavailable(_) => (
                ProblemType::Unavailable,
                "The database is busy or cannot be reached right now; try again after Retry-After seconds.".into(),
            ),
        };
        Problem {
            kind: kind.uri(),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail,
            budget: match self {
                ApiError::Later { budget, .. } => *budget,
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Problem { kind, .. } | ApiError::Later { kind, .. } => kind.status(),
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
            StatusCode::FORBIDDEN => {
                response
                    .insert_header(("WWW-Authenticate", r#"Bearer error="insufficient_scope""#));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header(("Retry-After", RETRY_UNAVAILABLE_SECS.to_string()));
            }
            _ => {}
        }
        if let ApiError::Later {
            retry_after_secs: Some(secs),
            ..
        } = self
        {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        response
            .content_type("application/problem+json")
            .json(self.to_problem())
    }
}

impl crate::db::MayBeLost for ApiError {
    /// A problem or a limit is the handler's own answer; only a failure
    /// may come from a dead connection.
    fn may_be_lost(&self) -> bool {
        matches!(self, ApiError::Internal(_) | ApiError::Unavailable(_))
    }
}

impl From<crate::db::Unanswered> for ApiError {
    /// As a statement timeout is: the database is busy, try again.
    fn from(error: crate::db::Unanswered) -> ApiError {
        ApiError::Unavailable(error.into())
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
            crate::db::DbError::BudgetExceeded(e) => ApiError::budget_exceeded(e),
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
        let error = ApiError::problem(ProblemType::InvalidLimit, "limit must be 1 to 1000");
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

    /// The README's problem table (`| status | slugs | when |`) lists every
    /// problem type, under its status, and nothing else.
    #[test]
    fn the_readme_lists_every_problem_type_under_its_status() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("| status | `type` | when |")
            .expect("the problem table");
        let mut listed = std::collections::BTreeSet::new();
        for row in readme[start..].lines().skip(2) {
            let Some(row) = row.strip_prefix("| ") else {
                break;
            };
            let (status, rest) = row.split_once(" | ").expect("a status cell");
            let slugs = rest.split(" | ").next().expect("a type cell");
            for slug in slugs.split(", ") {
                listed.insert((status.to_owned(), slug.trim_matches('`').to_owned()));
            }
        }
        let known: std::collections::BTreeSet<_> = ProblemType::ALL
            .iter()
            .map(|t| (t.status().as_u16().to_string(), t.slug().to_owned()))
            .collect();
        assert_eq!(listed, known);
    }

    #[test]
    fn an_internal_error_never_shows_its_cause() {
        let error = ApiError::Internal(anyhow::anyhow!("password=hunter2 in connection string"));
        let problem = error.to_problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("hunter2"));
    }
}
