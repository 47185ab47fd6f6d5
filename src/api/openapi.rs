//! The OpenAPI contract: collected from the handlers' annotations, served
//! at `/openapi.json`, browsable at `/swagger-ui/`, and committed as
//! `openapi/openapi.json`.

use super::webhooks::{self, WebhookAuth};
use super::{accept, account, error, health, import_actions, imports, invitations, keys, reports};
use super::{suppressions, users, views};
use crate::domain::{EntryStatus, ImportStatus};
use actix_web::{get, HttpResponse};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

/// The API's document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bulk Invite",
        description = "Invite many people into an account at once: upload a plain text file of email addresses, get a per-address report and a history of imports.\n\nEvery endpoint but health, the docs and the providers' webhooks (verified the way each provider signs them) needs `Authorization: Bearer <api key>`. Errors are RFC 9457 `application/problem+json`. Lists are paged with an opaque `cursor`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "/", description = "The server this document was fetched from")),
    paths(
        imports::create_import,
        imports::preview_import,
        imports::list_imports,
        imports::get_import,
        reports::get_import_report,
        reports::get_import_report_csv,
        import_actions::cancel_import,
        import_actions::resend_import,
        import_actions::erase_import,
        invitations::list_invitations,
        invitations::revoke_invitation,
        invitations::resend_invitation,
        accept::preview_invitation,
        accept::accept_invitation,
        users::add_users,
        users::list_users,
        users::delete_user,
        account::get_account,
        account::update_account,
        keys::create_api_key,
        keys::list_api_keys,
        keys::get_api_key,
        keys::revoke_api_key,
        suppressions::list_suppressions,
        suppressions::delete_suppression,
        health::get_health,
        health::get_readiness,
        super::metrics::get_metrics,
        webhooks::receive_postmark_events,
        webhooks::receive_resend_events,
        webhooks::receive_sendgrid_events,
    ),
    components(schemas(
        error::Problem,
        views::ImportView,
        views::Counts,
        views::OptionsView,
        views::Links,
        views::ImportHistory,
        views::EntryView,
        views::ReportPage,
        views::DryRunView,
        views::UserView,
        views::AddUsers,
        views::AddedUsers,
        views::RejectedEmail,
        views::UsersPage,
        views::InvitationView,
        views::InvitationsPage,
        views::InvitationPreview,
        views::AcceptedInvitation,
        import_actions::ImportAction,
        import_actions::SkippedView,
        suppressions::SuppressionView,
        suppressions::SuppressionsPage,
        imports::UploadForm,
        imports::UploadText,
        views::InvalidReasonCode,
        EntryStatus,
        ImportStatus,
        health::Health,
        health::NotReady,
        crate::dispatch::DispatchState,
        webhooks::WebhookReceipt,
        account::AccountView,
        account::AccountUpdate,
        account::AccountLimits,
        account::AccountUsage,
        error::BudgetProblem,
        views::BudgetView,
        keys::ApiKeyView,
        keys::CreatedApiKey,
        keys::ApiKeyList,
        keys::NewApiKey,
        crate::domain::Scope,
    )),
    modifiers(&BearerAuth, &WebhookAuth, &EdgeRules, &Responses),
    tags(
        (name = "imports", description = "Upload files of addresses, follow them, read their reports"),
        (name = "users", description = "The account's existing members, whom imports skip"),
        (name = "api-keys", description = "The account's API keys: made with scopes (read, write, admin), listed without their secrets, revoked at once"),
        (name = "account", description = "The account of the API key: the name and reply-to address its invitation emails show"),
        (name = "invitations", description = "Find, revoke and resend invitations"),
        (name = "suppressions", description = "Addresses that bounced, complained, unsubscribed or that the provider refuses: imports and re-sends skip them"),
        (name = "accept", description = "Public: what an invitation link is for, and accepting it (no API key: the token is the credential)"),
        (name = "health", description = "Liveness and readiness"),
        (name = "webhooks", description = "Delivery events from the email providers, verified the way each provider signs them"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An account's API key: `Authorization: Bearer <key>`."))
                    .build(),
            ),
        );
    }
}

/// Every operation of a path.
fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// What the edge refuses before any handler runs (see `api::limits`),
/// written into every operation: path and query strings hold no control
/// characters (query values may hold tabs and line breaks), and an
/// operation with parameters documents the 400 that refuses them.
struct EdgeRules;

impl Modify for EdgeRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let refused = ResponseBuilder::new()
            .description("The path or query holds a control character (`invalid-characters`)")
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                // Every path and query is checked, parameters or not.
                operation
                    .responses
                    .responses
                    .entry("400".to_owned())
                    .or_insert_with(|| RefOr::T(refused.clone()));
                let Some(parameters) = operation.parameters.as_mut() else {
                    continue;
                };
                for parameter in parameters.iter_mut() {
                    let RefOr::T(parameter) = parameter else {
                        continue;
                    };
                    let pattern = match parameter.parameter_in {
                        ParameterIn::Path => r"^[^\x00-\x1F\x7F]+$",
                        ParameterIn::Query => r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F]*$",
                        _ => continue,
                    };
                    if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut() {
                        if is_string(&object.schema_type) && object.pattern.is_none() {
                            object.pattern = Some(pattern.to_owned());
                        }
                    }
                }
            }
        }
    }
}

/// What every operation's answers say beyond its own annotation:
/// public operations (no `security` of their own) take no key
/// (`security: []`); a keyed one may answer 403 for a key without the
/// scope it needs and 429 past the key's request rate, with the
/// `RateLimit` fields; a 401 names its scheme in `WWW-Authenticate`; an
/// operation that reads the database may answer 503 with `Retry-After`;
/// and every problem answer shows an example of its own, built from the
/// problem type its description names in backticks.
struct Responses;

impl Modify for Responses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let string = || utoipa::openapi::schema::ObjectBuilder::new().schema_type(Type::String);
        let integer = || utoipa::openapi::schema::ObjectBuilder::new().schema_type(Type::Integer);
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in operations_mut(item) {
                let keyed = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                if operation.security.is_none() {
                    operation.security = Some(Vec::new());
                }
                // Webhooks are keyed by the provider's own scheme, not an API key.
                let api_key = serde_json::to_value(&operation.security)
                    .is_ok_and(|v| v.to_string().contains("\"api_key\""));
                let responses = &mut operation.responses.responses;
                let problem = |description: &str| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(description)
                            .content(
                                "application/problem+json",
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name("Problem")))
                                    .build(),
                            )
                            .build(),
                    )
                };
                if api_key {
                    responses.entry("403".to_owned()).or_insert_with(|| {
                        problem(
                            "The key's scopes do not allow this operation (`insufficient-scope`)",
                        )
                    });
                    responses.entry("429".to_owned()).or_insert_with(|| {
                        problem("The key sent more than RATE_LIMIT_PER_MINUTE requests a minute (`rate-limited`)")
                    });
                }
                if keyed || path.starts_with("/imports") || path.starts_with("/readyz") {
                    responses.entry("503".to_owned()).or_insert_with(|| {
                        problem("The database is busy or out of reach (`unavailable`)")
                    });
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    match status.as_str() {
                        "401" => {
                            response.headers.insert(
                                "WWW-Authenticate".to_owned(),
                                HeaderBuilder::new()
                                    .schema(Some(string()))
                                    .description(Some("`Bearer`: the scheme the key is sent with"))
                                    .build()
                                    .into(),
                            );
                        }
                        "403" => {
                            response.headers.insert(
                                "WWW-Authenticate".to_owned(),
                                HeaderBuilder::new()
                                    .schema(Some(string()))
                                    .description(Some("`Bearer error=\"insufficient_scope\"`"))
                                    .build()
                                    .into(),
                            );
                        }
                        "429" => {
                            let headers = [
                                ("Retry-After", "Seconds to wait before trying again (absent when waiting does not help: a file larger than the whole daily budget)"),
                                ("RateLimit", "The key's requests left (`r`) and seconds until its quota is full again (`t`): `\"per-key\";r=0;t=1`"),
                                ("RateLimit-Policy", "The key's quota per 60 s window: `\"per-key\";q=1200;w=60`"),
                            ];
                            for (name, description) in headers {
                                let schema = match name {
                                    "Retry-After" => integer(),
                                    _ => string(),
                                };
                                response.headers.insert(
                                    name.to_owned(),
                                    HeaderBuilder::new()
                                        .schema(Some(schema))
                                        .description(Some(description))
                                        .build()
                                        .into(),
                                );
                            }
                        }
                        "503" => {
                            response.headers.insert(
                                "Retry-After".to_owned(),
                                HeaderBuilder::new()
                                    .schema(Some(integer()))
                                    .description(Some("Seconds to wait before trying again"))
                                    .build()
                                    .into(),
                            );
                        }
                        _ => {}
                    }
                    let Some(RefOr::T(content)) =
                        response.content.get_mut("application/problem+json")
                    else {
                        continue;
                    };
                    if content.example.is_none() {
                        content.example = Some(problem_example(status, &response.description));
                    }
                }
            }
        }
    }
}

/// An example problem for a response: of the type its description names
/// in backticks (the first, if several), with the description as detail.
fn problem_example(status: &str, description: &str) -> serde_json::Value {
    use super::ProblemType;
    let named = description
        .split('`')
        .skip(1)
        .step_by(2)
        .find_map(|word| ProblemType::ALL.iter().copied().find(|t| t.slug() == word));
    let kind = named.unwrap_or_else(|| {
        panic!("the {status} answer \"{description}\" names no problem type in backticks")
    });
    assert_eq!(
        kind.status().as_str(),
        status,
        "{description}: {} answers {}",
        kind.slug(),
        kind.status()
    );
    let detail = match description.find(" (`") {
        Some(end) => &description[..end],
        None => description,
    };
    serde_json::json!({
        "type": kind.uri(),
        "title": kind.title(),
        "status": kind.status().as_u16(),
        "detail": format!("{detail}."),
    })
}

fn is_string(schema_type: &SchemaType) -> bool {
    match schema_type {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(types) => types.contains(&Type::String),
        SchemaType::AnyValue => false,
    }
}

/// The document of a server that allows redirects to these origins
/// (`ALLOWED_REDIRECT_ORIGINS`): `redirect_url`'s pattern spells them out,
/// so a client (or a fuzzer) knows which values the server takes. The
/// committed `openapi/openapi.json` is the document of a server with the
/// default settings, which allow none.
pub fn document(allowed_redirect_origins: &[String]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let pattern = redirect_pattern(allowed_redirect_origins);
    let set = |schema: &mut RefOr<Schema>| {
        if let RefOr::T(Schema::Object(object)) = schema {
            object.pattern = Some(pattern.clone());
        }
    };
    for path in ["/imports", "/imports/preview"] {
        let Some(operation) = doc.paths.paths.get_mut(path).and_then(|i| i.post.as_mut()) else {
            continue;
        };
        for parameter in operation.parameters.iter_mut().flatten() {
            if let RefOr::T(parameter) = parameter {
                if parameter.name == "redirect_url" {
                    parameter.schema.as_mut().map(set);
                }
            }
        }
    }
    doc
}

/// A URL on one of the origins, or nothing (an empty value means no
/// redirect; `^$` when no origin is allowed).
fn redirect_pattern(origins: &[String]) -> String {
    let origins: Vec<String> = origins
        .iter()
        .filter_map(|o| url::Url::parse(o.trim()).ok())
        .map(|u| regex_escape(&u.origin().ascii_serialization()))
        .collect();
    match origins.is_empty() {
        true => "^$".to_owned(),
        false => format!(r"^((?:{})(?:[/?#][^\x00-\x20\x7F]*)?)?$", origins.join("|")),
    }
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '-') {
                true => vec![c],
                false => vec!['\\', c],
            },
        )
        .collect()
}

/// The document of a server with the default settings as pretty JSON,
/// exactly as committed in `openapi/openapi.json`.
pub fn json() -> Result<String, serde_json::Error> {
    document(&[]).to_pretty_json()
}

/// The OpenAPI document of this server (built once, at start).
#[get("/openapi.json")]
pub async fn spec(state: actix_web::web::Data<crate::startup::AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.clone())
}

/// Swagger UI over the served document (its assets are built in).
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/swagger-ui/{_:.*}").config(
        utoipa_swagger_ui::Config::new(["/openapi.json"])
            // An ops person's key survives a reload of the page.
            .persist_authorization(true)
            .try_it_out_enabled(true)
            .display_request_duration(true),
    )
}

/// `/swagger-ui` (no slash) is where people type; the UI lives under the slash.
#[get("/swagger-ui")]
pub async fn swagger_ui_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/swagger-ui/"))
        .finish()
}
