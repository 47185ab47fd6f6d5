//! CORS for a frontend on another origin (`CORS_ALLOWED_ORIGINS`): the
//! preflight is answered with the methods and headers the API takes, and
//! the headers a page needs to read are exposed.

use actix_cors::Cors;
use actix_web::http::header;

/// The methods the API answers.
pub const METHODS: [&str; 4] = ["GET", "POST", "PATCH", "DELETE"];

/// Response headers a page may read besides the CORS-safelisted ones.
pub const EXPOSED: [&str; 7] = [
    "Location",
    "Idempotent-Replayed",
    "Content-Disposition",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "WWW-Authenticate",
];

/// The policy for these origins. A request from any other origin (the
/// server's own pages included, such as Swagger UI) is served as before,
/// only without CORS headers, so a browser keeps its answer from a page of
/// an origin not listed.
pub fn policy(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(METHODS)
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers(EXPOSED)
        .block_on_origin_mismatch(false)
        .max_age(600);
    for origin in origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        cors = cors.allowed_origin(origin.trim_end_matches('/'));
    }
    cors
}
