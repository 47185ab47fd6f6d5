//! The request span every log line of a request carries, as
//! tracing-actix-web's default builds it, but with the accept token cut out
//! of the logged path: the token is a credential, and a log is no place
//! for one.

use super::accept;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

/// What stands in the logged path for a token.
pub const MASK: &str = "{token}";

/// [`RootSpanBuilder`] whose `http.target` never holds an accept token.
pub struct MaskedTokens;

impl RootSpanBuilder for MaskedTokens {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let method = request.method().as_str();
        let user_agent = request
            .headers()
            .get("User-Agent")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let info = request.connection_info();
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let target = masked(request.uri().path_and_query().map_or("", |p| p.as_str()));
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = tracing::field::Empty,
            http.flavor = ?request.version(),
            http.scheme = %info.scheme(),
            http.host = %info.host(),
            http.client_ip = %info.realip_remote_addr().unwrap_or(""),
            http.user_agent = %user_agent,
            http.target = %target,
            http.status_code = tracing::field::Empty,
            otel.name = %format!("HTTP {method}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The path and query with the segment after each accept prefix replaced
/// by [`MASK`].
pub fn masked(target: &str) -> std::borrow::Cow<'_, str> {
    for template in accept::PATHS {
        let prefix = template.trim_end_matches("{token}");
        if let Some(rest) = target.strip_prefix(prefix) {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            return format!("{prefix}{MASK}{}", &rest[end..]).into();
        }
    }
    target.into()
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn accept_tokens_are_cut_out_of_logged_paths() {
        let table = [
            ("/accept/s3cr3t", "/accept/{token}"),
            ("/accept/s3cr3t?x=1", "/accept/{token}?x=1"),
            ("/invitations/accept/s3cr3t", "/invitations/accept/{token}"),
            ("/accept/s3cr3t/extra", "/accept/{token}/extra"),
            ("/imports/abc?limit=2", "/imports/abc?limit=2"),
            ("/invitations/abc/resend", "/invitations/abc/resend"),
        ];
        for (path, logged) in table {
            assert_eq!(masked(path), logged, "{path}");
        }
    }
}
