//! What the API answers for a request no route takes: 405 with `Allow`
//! when the path is one of ours but the method is not, else 404. The
//! table of paths and methods is read from the OpenAPI document, so it
//! cannot drift from the routes it describes.

use super::ApiError;
use super::ProblemType;
use actix_web::http::header::ALLOW;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use std::sync::OnceLock;

/// A path template (`/imports/{id}/report`) split into segments, and the
/// methods it answers.
struct Route {
    segments: Vec<Option<String>>,
    methods: Vec<&'static str>,
}

impl Route {
    fn matches(&self, path: &[&str]) -> bool {
        self.segments.len() == path.len()
            && self
                .segments
                .iter()
                .zip(path)
                .all(|(segment, part)| match segment {
                    Some(literal) => literal == part,
                    None => !part.is_empty(),
                })
    }
}

fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        use utoipa::OpenApi;
        let doc = super::openapi::ApiDoc::openapi();
        let mut routes: Vec<Route> = doc
            .paths
            .paths
            .iter()
            .map(|(template, item)| Route {
                segments: split(template)
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect(),
                methods: [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect(),
            })
            .collect();
        // The document itself is served but not described in itself; nor
        // is the accept path emails linked to before `/accept/{token}`.
        routes.push(Route {
            segments: vec![Some("openapi.json".into())],
            methods: vec!["GET"],
        });
        routes.push(Route {
            segments: vec![Some("invitations".into()), Some("accept".into()), None],
            methods: vec!["GET", "POST"],
        });
        routes
    })
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.trim_start_matches('/').split('/')
}

/// The methods the API answers on `path` (empty: not a path of ours).
pub fn allowed(path: &str) -> Vec<&'static str> {
    let parts: Vec<&str> = split(path).collect();
    let matching: Vec<&Route> = routes().iter().filter(|r| r.matches(&parts)).collect();
    // A literal segment wins over a template (`/imports/preview` is not
    // `/imports/{id}`), as it does in the router.
    let literals = |r: &Route| r.segments.iter().filter(|s| s.is_some()).count();
    let most = matching.iter().map(|r| literals(r)).max().unwrap_or(0);
    let mut methods: Vec<&'static str> = matching
        .into_iter()
        .filter(|route| literals(route) == most)
        .flat_map(|route| route.methods.iter().copied())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// The default service: 405 with `Allow` for a known path, else 404.
pub async fn unmatched(req: HttpRequest) -> HttpResponse {
    let methods = allowed(req.path());
    if methods.is_empty() {
        return ApiError::problem(
            ProblemType::NotFound,
            "There is no such path; /swagger-ui/ lists them all.",
        )
        .error_response();
    }
    let allow = methods.join(", ");
    let mut response = ApiError::problem(
        ProblemType::MethodNotAllowed,
        format!(
            "{} {} is not supported; this path takes {allow}.",
            req.method(),
            req.path()
        ),
    )
    .error_response();
    if let Ok(value) = allow.parse() {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn known_paths_list_their_methods_and_unknown_ones_none() {
        assert_eq!(allowed("/imports"), ["GET", "POST"]);
        assert_eq!(allowed("/imports/abc/report"), ["GET"]);
        assert_eq!(allowed("/invitations/abc"), ["DELETE"]);
        assert_eq!(allowed("/webhooks/postmark"), ["POST"]);
        assert_eq!(allowed("/openapi.json"), ["GET"]);
        assert_eq!(allowed("/accept/tok"), ["GET", "POST"]);
        assert_eq!(allowed("/invitations/accept/tok"), ["GET", "POST"]);
        assert!(allowed("/nope").is_empty());
        assert!(allowed("/imports//report").is_empty());
    }
}
