//! `POST /webhooks/postmark`, `/webhooks/resend`, `/webhooks/sendgrid`:
//! the providers' delivery events. Everything that can be checked without
//! the body (the webhook is configured, its credentials or signature
//! headers are there and fresh) is checked before a byte of it is read;
//! then at most `WEBHOOK_MAX_BYTES` are read and the signature over them
//! verified. A provider whose setting is unset is refused, never accepted
//! unchecked. Events of kinds we do not act
//! on, replays and events for unknown invitations are acknowledged with
//! 200, since providers retry any other answer.

use super::ProblemType;
use super::{blocking, limits, ApiError, Problem};
use crate::db::events::{self, Applied};
use crate::dispatch::events::resend::SvixHeaders;
use crate::dispatch::events::{postmark, resend, sendgrid};
use crate::dispatch::events::{DeliveryEvent, ParseError, VerifyError};
use crate::startup::AppState;
use actix_web::http::header::{HeaderValue, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, ToSchema};

/// What a webhook post did.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"received": 3, "applied": 2}))]
pub struct WebhookReceipt {
    /// Events in the post.
    pub received: u64,
    /// Events that moved an invitation (replays, unknown invitations and
    /// events we do not act on move none).
    pub applied: u64,
}

/// The webhook routes, under `/webhooks`.
pub fn scope() -> actix_web::Scope {
    web::scope("/webhooks")
        .service(receive_postmark_events)
        .service(receive_resend_events)
        .service(receive_sendgrid_events)
}

/// Postmark's delivery, bounce and spam complaint webhooks.
///
/// Configure the webhook URL with the credentials of
/// `POSTMARK_WEBHOOK_USER` and `POSTMARK_WEBHOOK_PASSWORD`
/// (`https://user:password@host/webhooks/postmark`). A delivery moves the
/// invitation to `delivered`; a hard bounce to `bounced` and a spam
/// complaint to `complained`, both also suppressing the address for the
/// account's later imports; a `SubscriptionChange` that suppresses sending
/// suppresses the address. Soft bounces, opens and clicks are acknowledged
/// and ignored (the README lists every event and what it does).
#[utoipa::path(
    post, path = "/webhooks/postmark", tag = "webhooks",
    request_body(content = Object, content_type = "application/json",
        description = "One Postmark webhook record (`RecordType` `Delivery`, `Bounce`, `SpamComplaint`, ...)"),
    responses(
        (status = 200, description = "Verified and processed", body = WebhookReceipt),
        (status = 400, description = "Not JSON, or not a Postmark webhook record (`invalid-webhook-body`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong credentials, or the webhook is not configured (`webhook-unverified`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than WEBHOOK_MAX_BYTES (`body-too-large`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("postmark_webhook" = []))
)]
#[post("/postmark")]
#[tracing::instrument(skip_all, fields(provider = "postmark"))]
pub async fn receive_postmark_events(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let config = &state.webhooks;
    let verified = postmark::verify(
        header(&request, postmark::AUTHORIZATION),
        config.postmark_webhook_user.as_deref(),
        config.postmark_webhook_password.as_deref(),
    );
    let answer = async {
        verified.map_err(|error| refused("postmark", error))?;
        let body = read(&state, &request, payload).await?;
        receive(&state, "postmark", || postmark::parse(&body)).await
    };
    // Postmark sends the URL's credentials when asked for basic auth.
    answer
        .await
        .or_else(|error| Ok(challenge(&error, "Basic realm=\"webhooks\"")))
}

/// Resend's email events, signed by Svix.
///
/// Set `RESEND_WEBHOOK_SECRET` to the endpoint's signing secret
/// (`whsec_...`). The signature over `svix-id`, `svix-timestamp` and the
/// body must match, and the timestamp must be within
/// `WEBHOOK_TOLERANCE_SECS` of our clock. `email.delivered`,
/// `email.bounced`, `email.complained`, `email.suppressed` and
/// `email.failed` move the invitation named by the `invitation_id` tag;
/// other events are acknowledged and ignored (the README lists every event
/// and what it does).
#[utoipa::path(
    post, path = "/webhooks/resend", tag = "webhooks",
    params(
        ("svix-id" = String, Header, description = "The message id; the same when Svix retries it"),
        ("svix-timestamp" = String, Header, description = "When it was signed, in seconds since the epoch"),
        ("svix-signature" = String, Header, description = "Space-separated `v1,<base64 HMAC-SHA256>` signatures"),
    ),
    request_body(content = Object, content_type = "application/json",
        description = "One Resend event: `{\"type\": \"email.delivered\", \"created_at\": ..., \"data\": {...}}`"),
    responses(
        (status = 200, description = "Verified and processed", body = WebhookReceipt),
        (status = 400, description = "Not JSON, or not a Resend event (`invalid-webhook-body`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A missing or wrong signature, a stale timestamp, or the webhook is not configured (`webhook-unverified`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than WEBHOOK_MAX_BYTES (`body-too-large`)", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/resend")]
#[tracing::instrument(skip_all, fields(provider = "resend"))]
pub async fn receive_resend_events(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let config = &state.webhooks;
    let headers = SvixHeaders {
        id: header(&request, resend::ID),
        timestamp: header(&request, resend::TIMESTAMP),
        signature: header(&request, resend::SIGNATURE),
    };
    let verify = |body: &[u8]| {
        resend::verify(
            headers,
            body,
            config.resend_webhook_secret.as_deref(),
            config.webhook_tolerance_secs,
            chrono::Utc::now(),
        )
    };
    precheck("resend", verify(&[]))?;
    let body = read(&state, &request, payload).await?;
    verify(&body).map_err(|error| refused("resend", error))?;
    let event_id = headers.id.unwrap_or_default();
    receive(&state, "resend", || resend::parse(&body, event_id)).await
}

/// SendGrid's signed Event Webhook.
///
/// Set `SENDGRID_WEBHOOK_PUBLIC_KEY` to the verification key SendGrid shows
/// for the signed webhook. The ECDSA signature over the timestamp header
/// and the body must verify, and the timestamp must be within
/// `WEBHOOK_TOLERANCE_SECS` of our clock. In the posted batch, `delivered`,
/// `bounce` (not `blocked`), `dropped` and `spamreport` events move the
/// invitation named by the `invitation_id` custom argument, and
/// `unsubscribe` suppresses the address; others are acknowledged (the
/// README lists every event and what it does).
#[utoipa::path(
    post, path = "/webhooks/sendgrid", tag = "webhooks",
    params(
        ("X-Twilio-Email-Event-Webhook-Signature" = String, Header, description = "Base64 DER ECDSA (P-256, SHA-256) signature of the timestamp followed by the body"),
        ("X-Twilio-Email-Event-Webhook-Timestamp" = String, Header, description = "When it was signed, in seconds since the epoch"),
    ),
    request_body(content = [Object], content_type = "application/json",
        description = "A batch of SendGrid events, each with `event`, `sg_event_id` and our `invitation_id`"),
    responses(
        (status = 200, description = "Verified and processed", body = WebhookReceipt),
        (status = 400, description = "Not JSON, or not an array of events (`invalid-webhook-body`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "A missing or wrong signature, a stale timestamp, or the webhook is not configured (`webhook-unverified`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than WEBHOOK_MAX_BYTES (`body-too-large`)", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/sendgrid")]
#[tracing::instrument(skip_all, fields(provider = "sendgrid"))]
pub async fn receive_sendgrid_events(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let config = &state.webhooks;
    let verify = |body: &[u8]| {
        sendgrid::verify(
            header(&request, sendgrid::SIGNATURE),
            header(&request, sendgrid::TIMESTAMP),
            body,
            config.sendgrid_webhook_public_key.as_deref(),
            config.webhook_tolerance_secs,
            chrono::Utc::now(),
        )
    };
    precheck("sendgrid", verify(&[]))?;
    let body = read(&state, &request, payload).await?;
    verify(&body).map_err(|error| refused("sendgrid", error))?;
    receive(&state, "sendgrid", || sendgrid::parse(&body)).await
}

/// Refuses a request on what its headers show, before its body is read:
/// `checked` is the verification of an empty body, so any failure but a
/// signature that does not match it (which the real body may still match)
/// is final.
fn precheck(provider: &str, checked: Result<(), VerifyError>) -> Result<(), ApiError> {
    match checked {
        Ok(()) | Err(VerifyError::BadSignature) => Ok(()),
        Err(error) => Err(refused(provider, error)),
    }
}

/// Reads a webhook body of at most `WEBHOOK_MAX_BYTES`, within the budget
/// all webhook bodies being read share (503 past it).
async fn read(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<web::Bytes, ApiError> {
    let max = state.webhook_max_bytes;
    let declared = limits::declared_length(request);
    let budget = Some(&*state.webhook_budget);
    limits::read_body_within(payload, declared, max, budget, || {
        limits::body_too_large(max, "WEBHOOK_MAX_BYTES")
    })
    .await
}

/// Parses a verified body and applies its events.
async fn receive(
    state: &AppState,
    provider: &'static str,
    parse: impl FnOnce() -> Result<Vec<DeliveryEvent>, ParseError>,
) -> Result<HttpResponse, ApiError> {
    let events = parse()
        .map_err(|error| ApiError::problem(ProblemType::InvalidWebhookBody, error.to_string()))?;
    let received = events.len() as u64;
    let outcomes = blocking(state, move |conn| {
        Ok(events::apply_all(
            conn,
            provider,
            &events,
            crate::db::now(),
        )?)
    })
    .await?;
    let applied = outcomes.iter().filter(|a| **a == Applied::Moved).count() as u64;
    tracing::info!(received, applied, "webhook events processed");
    Ok(HttpResponse::Ok().json(WebhookReceipt { received, applied }))
}

fn refused(provider: &str, error: VerifyError) -> ApiError {
    match &error {
        VerifyError::Misconfigured(_) => tracing::error!(provider, %error, "webhook refused"),
        _ => tracing::warn!(provider, %error, "webhook refused"),
    }
    ApiError::problem(ProblemType::WebhookUnverified, format!("Refused: {error}."))
}

/// The error's answer, with `challenge` as its `WWW-Authenticate` when it
/// is a 401.
fn challenge(error: &ApiError, challenge: &'static str) -> HttpResponse {
    let mut response = error.error_response();
    if response.status() == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    response
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Adds the Postmark webhook's basic-auth scheme to the document.
pub struct WebhookAuth;

impl Modify for WebhookAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "postmark_webhook",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The credentials in Postmark's webhook URL: POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD.",
                    ))
                    .build(),
            ),
        );
    }
}
