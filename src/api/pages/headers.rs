//! What the accept endpoints answer around their body: whether the caller
//! wants a page or JSON, and the headers that keep a page holding a
//! credential (the token in its URL) safe.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    /// A browser: `Accept` ranks `text/html` first.
    Html,
    /// Anything else (an API client, `*/*`, no `Accept`): today's JSON.
    Json,
}

/// Reads `Accept`: HTML when `text/html` (or XHTML) ranks above every JSON
/// type and wildcard the header names; JSON otherwise. A browser's
/// navigation sends `text/html,...,*/*;q=0.8`; `curl` sends `*/*`.
pub fn wants(req: &HttpRequest) -> Wants {
    let Some(value) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return Wants::Json;
    };
    for media in super::ranked(value) {
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => return Wants::Html,
            "application/json" | "application/problem+json" | "application/*" | "*/*" => {
                return Wants::Json
            }
            _ => {}
        }
    }
    Wants::Json
}

/// Where a page's form may send the browser: nowhere (refusals), or here
/// and, when the import has a `redirect_url`, its origin (browsers check
/// the 303 after the post against `form-action` too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormAction {
    None,
    SelfAnd(Option<String>),
}

/// The page's `Content-Security-Policy`: nothing but its own style (by
/// hash: no inline script, no other style), no framing, no `<base>`.
pub fn content_security_policy(style_source: &str, form: &FormAction) -> String {
    let form_action = match form {
        FormAction::None => "'none'".to_owned(),
        FormAction::SelfAnd(None) => "'self'".to_owned(),
        FormAction::SelfAnd(Some(origin)) => format!("'self' {origin}"),
    };
    format!(
        "default-src 'none'; style-src {style_source}; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The origin of a redirect URL, as CSP writes it (`https://app.example.com`).
pub fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

/// Adds what every answer of the accept endpoints carries, page or JSON:
/// it is never stored (it names a person and holds a live link), never
/// sniffed as another type, never framed, never sends its URL (the token)
/// as a `Referer` anywhere (the redirect target included), and varies with
/// `Accept` and `Accept-Language`. `csp` is the page's policy; JSON gets
/// one that allows nothing.
pub fn secure(response: &mut HttpResponse, csp: Option<&str>) {
    let headers = response.headers_mut();
    let csp = csp.unwrap_or("default-src 'none'; frame-ancestors 'none'");
    if let Ok(value) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    let fixed = [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::VARY, "Accept, Accept-Language"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn browsers_get_the_page_and_api_clients_json() {
        let table = [
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                Wants::Html,
            ),
            (Some("application/xhtml+xml"), Wants::Html),
            (Some("application/json"), Wants::Json),
            (Some("*/*"), Wants::Json),
            (None, Wants::Json),
            (Some("application/json, text/html"), Wants::Json),
            (Some("text/html, application/json"), Wants::Html),
            (Some("text/html;q=0.5, application/json"), Wants::Json),
            (Some("text/html;q=0, */*"), Wants::Json),
            (
                Some("application/problem+json;q=0.9, text/html"),
                Wants::Html,
            ),
            (Some("image/png"), Wants::Json),
            (Some("TEXT/HTML"), Wants::Html),
        ];
        for (accept, expected) in table {
            let mut request = TestRequest::default();
            if let Some(accept) = accept {
                request = request.insert_header((header::ACCEPT, accept));
            }
            assert_eq!(wants(&request.to_http_request()), expected, "{accept:?}");
        }
    }

    #[test]
    fn the_policy_allows_only_the_style_and_the_redirect_origin() {
        let csp = content_security_policy(
            "'sha256-abc'",
            &FormAction::SelfAnd(Some("https://app.test".into())),
        );
        assert_eq!(
            csp,
            "default-src 'none'; style-src 'sha256-abc'; form-action 'self' https://app.test; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        assert!(content_security_policy("'sha256-abc'", &FormAction::None)
            .contains("form-action 'none'"));
        assert!(!csp.contains("script-src") && !csp.contains("unsafe"));
    }

    #[test]
    fn origins_are_taken_from_http_urls_only() {
        assert_eq!(
            origin_of("https://app.test:8443/welcome?x=1").as_deref(),
            Some("https://app.test:8443")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("not a url"), None);
    }

    #[test]
    fn every_answer_gets_the_safety_headers() {
        let mut response = HttpResponse::Ok().finish();
        secure(&mut response, None);
        let get = |name: &str| response.headers().get(name).unwrap().to_str().unwrap();
        assert_eq!(get("cache-control"), "no-store");
        assert_eq!(get("referrer-policy"), "no-referrer");
        assert_eq!(get("x-content-type-options"), "nosniff");
        assert!(get("content-security-policy").contains("frame-ancestors 'none'"));
    }
}
