//! The OpenAPI contract: collected from the handlers' annotations, served
//! at `/openapi.json`, browsable at `/swagger-ui/`, and committed as
//! `openapi/openapi.json`.

use super::webhooks::{self, WebhookAuth};
use super::{accept, account, error, health, import_actions, imports, invitations, reports};
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
        license(name = "MIT"),
    ),
    paths(
        imports::create_import,
        imports::list_imports,
        imports::get_import,
        reports::get_report,
        import_actions::cancel_import,
        import_actions::resend_import,
        invitations::list_invitations,
        invitations::revoke_invitation,
        invitations::resend_invitation,
        accept::preview_invitation,
        accept::accept_invitation,
        users::add_users,
        users::list_users,
        account::get_account,
        account::update_account,
        suppressions::list_suppressions,
        suppressions::lift_suppression,
        health::healthz,
        health::readyz,
        super::metrics::prometheus,
        webhooks::postmark_events,
        webhooks::resend_events,
        webhooks::sendgrid_events,
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
        EntryStatus,
        ImportStatus,
        health::Health,
        health::NotReady,
        crate::dispatch::DispatchState,
        webhooks::WebhookReceipt,
        account::AccountView,
        account::AccountUpdate,
    )),
    modifiers(&BearerAuth, &WebhookAuth, &EdgeRules),
    tags(
        (name = "imports", description = "Upload files of addresses, follow them, read their reports"),
        (name = "users", description = "The account's existing members, whom imports skip"),
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
            .description("A parameter holds a control character, or cannot be used as it is")
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let Some(parameters) = operation.parameters.as_mut() else {
                    continue;
                };
                for parameter in parameters.iter_mut() {
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
                operation
                    .responses
                    .responses
                    .entry("400".to_owned())
                    .or_insert_with(|| RefOr::T(refused.clone()));
            }
        }
    }
}

fn is_string(schema_type: &SchemaType) -> bool {
    match schema_type {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(types) => types.contains(&Type::String),
        SchemaType::AnyValue => false,
    }
}

/// The document as pretty JSON, exactly as committed in `openapi/openapi.json`.
pub fn json() -> Result<String, serde_json::Error> {
    ApiDoc::openapi().to_pretty_json()
}

/// The OpenAPI document.
#[get("/openapi.json")]
pub async fn spec() -> HttpResponse {
    match json() {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        Err(error) => {
            actix_web::ResponseError::error_response(&super::ApiError::Internal(error.into()))
        }
    }
}

/// Swagger UI over the served document (its assets are built in).
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/swagger-ui/{_:.*}").config(utoipa_swagger_ui::Config::new(["/openapi.json"]))
}
