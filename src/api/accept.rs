//! The public accept flow: `GET` and `POST /accept/{token}`, the link in
//! every invitation email. No API key: the token is the credential. A
//! browser (`Accept: text/html`) gets pages; API clients get JSON. Every
//! refusal, page or JSON, takes the same minimum time, so timing does not
//! tell whether a token exists.
//!
//! `/invitations/accept/{token}`, where links pointed before, is routed to
//! the same handlers so links in emails already sent keep working; it is
//! left out of the OpenAPI document (it would be ambiguous beside
//! `/invitations/{id}/resend`).

use super::pages::headers::{self, FormAction, Wants};
use super::pages::{locale, Page};
use super::views::{AcceptedInvitation, InvitationPreview};
use super::{blocking, read, ApiError, Problem, ProblemType};
use crate::db::invitations::{self, Accepted, Opened, Standing};
use crate::db::now;
use crate::dispatch::token;
use crate::startup::AppState;
use actix_web::http::header::{self as http_header, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use std::time::{Duration, Instant};

/// The least time any refusal takes.
const REFUSAL_FLOOR: Duration = Duration::from_millis(150);

/// The paths the accept handlers answer on: the documented one, and the one
/// emails sent before it linked to.
pub const PATHS: [&str; 2] = ["/accept/{token}", "/invitations/accept/{token}"];

/// Routes both accept paths to the same handlers; other methods get the
/// API's 405.
pub fn resource() -> actix_web::Resource {
    web::resource(PATHS)
        .route(web::get().to(preview_invitation))
        .route(web::post().to(accept_invitation))
        .default_service(web::to(super::methods::unmatched))
}

/// What an invitation link is for: who invited whom to which account, until
/// when. A browser gets the accept page, with its "Accept invitation" button.
#[utoipa::path(
    get, path = "/accept/{token}", tag = "accept", operation_id = "get_invitation_by_token",
    params(("token" = String, Path, description = "The token from the invitation email")),
    responses(
        (status = 200, description = "The invitation: JSON, or the accept page for `Accept: text/html`",
            content((InvitationPreview = "application/json"), (String = "text/html"))),
        (status = 404, description = "No invitation has this token (`invitation-not-found`)",
            content((Problem = "application/problem+json"), (String = "text/html"))),
        (status = 410, description = "The invitation expired, was revoked or was already used (`invitation-used`, `invitation-expired`, `invitation-revoked`, `invitation-unavailable`)",
            content((Problem = "application/problem+json"), (String = "text/html"))),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn preview_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let started = Instant::now();
    let result = open(&state, path.into_inner()).await;
    let result = refuse_slowly(started, result).await;
    match headers::wants(&req) {
        Wants::Json => json(result.map(|opened| {
            HttpResponse::Ok().json(InvitationPreview {
                expires_at: opened.expires_at.map(|at| at.and_utc()),
                account_name: opened.account_name,
                email: opened.email,
                message: opened.custom_message,
            })
        })),
        Wants::Html => {
            let form = match &result {
                Ok(opened) => {
                    FormAction::SelfAnd(opened.redirect_url.as_deref().and_then(headers::origin_of))
                }
                Err(_) => FormAction::None,
            };
            let locale = invitation_locale(&result, |o| o);
            let page = result.map(|opened| Page::Invitation {
                expires_at: opened.expires_at.map(|at| {
                    at.and_utc()
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }),
                expires_at_text: None,
                account_name: opened.account_name,
                email: opened.email,
                message: opened.custom_message,
            });
            html(&req, &state, page, form, locale)
        }
    }
}

/// Accept an invitation: the address becomes a user of the account. A token
/// works once. A browser's form post gets the confirmation page, or a 303 to
/// the import's `redirect_url` when it has one.
#[utoipa::path(
    post, path = "/accept/{token}", tag = "accept",
    params(("token" = String, Path, description = "The token from the invitation email")),
    responses(
        (status = 200, description = "Accepted: JSON, or the confirmation page for `Accept: text/html`",
            content((AcceptedInvitation = "application/json"), (String = "text/html"))),
        (status = 303, description = "Accepted by a browser (`Accept: text/html`) whose import has a `redirect_url`: `Location` names it",
            headers(("Location" = String, description = "The import's redirect_url"))),
        (status = 404, description = "No invitation has this token (`invitation-not-found`)",
            content((Problem = "application/problem+json"), (String = "text/html"))),
        (status = 410, description = "The invitation expired, was revoked or was already used (`invitation-used`, `invitation-expired`, `invitation-revoked`, `invitation-unavailable`)",
            content((Problem = "application/problem+json"), (String = "text/html"))),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn accept_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    // No CSRF token, on purpose: the post carries no cookie and no session;
    // the token in the path is the only credential. A form on another site
    // can accept an invitation only if it already holds the token, and
    // whoever holds the token can accept it directly anyway, so a cross-site
    // post gives nothing more than the link itself does.
    let started = Instant::now();
    let result = accept(&state, path.into_inner()).await;
    let result = refuse_slowly(started, result).await;
    match headers::wants(&req) {
        Wants::Json => json(result.map(|(opened, user_id)| {
            HttpResponse::Ok().json(AcceptedInvitation {
                status: "accepted",
                user_id,
                account_name: opened.account_name,
                email: opened.email,
                redirect_url: opened.redirect_url,
            })
        })),
        Wants::Html => match result {
            Ok((
                Opened {
                    redirect_url: Some(target),
                    ..
                },
                _,
            )) => {
                let mut response = HttpResponse::SeeOther()
                    .insert_header((http_header::LOCATION, target))
                    .finish();
                headers::secure(&mut response, None);
                response
            }
            result => {
                let locale = invitation_locale(&result, |(o, _)| o);
                let page = result.map(|(opened, _)| Page::Accepted {
                    account_name: opened.account_name,
                    email: opened.email,
                    continue_url: None,
                });
                html(&req, &state, page, FormAction::None, locale)
            }
        },
    }
}

/// Why a link does not open an invitation.
enum Failure {
    NotFound,
    Gone(Standing, Box<Opened>),
    Error(ApiError),
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure::Error(error)
    }
}

/// The open invitation a token names, or the refusal.
async fn open(state: &AppState, token: String) -> Result<Opened, Failure> {
    let hash = token::hash(&token);
    // A read like any other, a few at once: a flood of made-up links
    // waits its turn instead of taking a thread each.
    let opened = read(state, move |conn| Ok(invitations::open(conn, &hash)?)).await?;
    let opened = opened.ok_or(Failure::NotFound)?;
    match opened.standing(now()) {
        Standing::Open => Ok(opened),
        standing => Err(Failure::Gone(standing, Box::new(opened))),
    }
}

/// Accepts the invitation a token names: the invitation and the user's id.
async fn accept(state: &AppState, token: String) -> Result<(Opened, String), Failure> {
    let opened = open(state, token).await?;
    let joined = blocking(state, {
        let opened = opened.clone();
        move |conn| Ok(invitations::accept(conn, &opened, now())?)
    })
    .await?;
    match joined {
        Accepted::Joined { user_id } => {
            tracing::info!(invitation_id = %opened.id, user_id = %user_id, "invitation accepted");
            Ok((opened, user_id))
        }
        Accepted::Gone => Err(Failure::Gone(Standing::Used, Box::new(opened))),
    }
}

/// The JSON answer: the success, or the problem.
fn json(result: Result<HttpResponse, Failure>) -> HttpResponse {
    let mut response = match result {
        Ok(response) => response,
        Err(failure) => problem(failure).error_response(),
    };
    headers::secure(&mut response, None);
    response
}

/// The language of the invitation a result is about (its import's
/// `locale`), refused or not.
fn invitation_locale<T>(
    result: &Result<T, Failure>,
    opened: impl Fn(&T) -> &Opened,
) -> Option<String> {
    match result {
        Ok(value) => opened(value).locale.clone(),
        Err(Failure::Gone(_, gone)) => gone.locale.clone(),
        Err(_) => None,
    }
}

/// The page answer: the page, or the refusal page with the JSON's status,
/// in the invitation's language if the page has it, else the browser's.
fn html(
    req: &HttpRequest,
    state: &AppState,
    page: Result<Page, Failure>,
    form: FormAction,
    locale: Option<String>,
) -> HttpResponse {
    let (status, mut page) = match page {
        Ok(page) => (StatusCode::OK, page),
        Err(failure) => refusal(failure),
    };
    let preferences: Vec<String> = locale
        .into_iter()
        .chain(
            req.headers()
                .get(http_header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(locale::preferences)
                .unwrap_or_default(),
        )
        .collect();
    let lang = state.pages.language(preferences.iter().map(String::as_str));
    if let Page::Invitation {
        expires_at: Some(at),
        expires_at_text,
        ..
    } = &mut page
    {
        *expires_at_text = chrono::DateTime::parse_from_rfc3339(at)
            .ok()
            .map(|at| crate::i18n::format_date(at.date_naive(), lang));
    }
    let mut response = match state.pages.render(lang, &page) {
        Ok(body) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .body(body),
        Err(error) => ApiError::Internal(error.into()).error_response(),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            http_header::RETRY_AFTER,
            http_header::HeaderValue::from(super::error::RETRY_UNAVAILABLE_SECS),
        );
    }
    let csp = headers::content_security_policy(&state.pages.style_source(), &form);
    headers::secure(&mut response, Some(&csp));
    response
}

/// The refusal page of a failure, and its status (the JSON problem's).
fn refusal(failure: Failure) -> (StatusCode, Page) {
    let status = problem_status(&failure);
    let (reason, opened) = match failure {
        Failure::NotFound => ("not_found", None),
        Failure::Gone(standing, opened) => (reason(standing), Some(*opened)),
        Failure::Error(_) => ("error", None),
    };
    let continue_url = match reason {
        "used" => opened.as_ref().and_then(|o| o.redirect_url.clone()),
        _ => None,
    };
    let page = Page::Refused {
        reason,
        account_name: opened.as_ref().map(|o| o.account_name.clone()),
        // An erased invitation's address is empty: the page names no one.
        email: opened.map(|o| o.email).filter(|e| !e.is_empty()),
        continue_url,
    };
    (status, page)
}

fn reason(standing: Standing) -> &'static str {
    match standing {
        Standing::Expired => "expired",
        Standing::Revoked => "revoked",
        Standing::Used => "used",
        Standing::Open | Standing::Unavailable => "unavailable",
    }
}

fn problem_status(failure: &Failure) -> StatusCode {
    match failure {
        Failure::NotFound => StatusCode::NOT_FOUND,
        Failure::Gone(..) => StatusCode::GONE,
        Failure::Error(error) => error.status_code(),
    }
}

/// The problem document of a failure.
fn problem(failure: Failure) -> ApiError {
    let (kind, detail) = match failure {
        Failure::Error(error) => return error,
        Failure::NotFound => (
            ProblemType::InvitationNotFound,
            "This invitation link is not valid. Check that the whole link was copied.",
        ),
        Failure::Gone(Standing::Expired, _) => (
            ProblemType::InvitationExpired,
            "This invitation has expired. Ask the account's administrator for a new one.",
        ),
        Failure::Gone(Standing::Revoked, _) => (
            ProblemType::InvitationRevoked,
            "This invitation was withdrawn by the account's administrator.",
        ),
        Failure::Gone(Standing::Used, _) => (
            ProblemType::InvitationUsed,
            "This invitation was already accepted; sign in instead.",
        ),
        Failure::Gone(Standing::Open | Standing::Unavailable, _) => (
            ProblemType::InvitationUnavailable,
            "This invitation can no longer be accepted. Ask the account's administrator for a new one.",
        ),
    };
    ApiError::problem(kind, detail)
}

/// Holds a refusal until [`REFUSAL_FLOOR`] has passed since `started`.
async fn refuse_slowly<T>(started: Instant, result: Result<T, Failure>) -> Result<T, Failure> {
    if result.is_err() {
        tokio::time::sleep_until((started + REFUSAL_FLOOR).into()).await;
    }
    result
}
