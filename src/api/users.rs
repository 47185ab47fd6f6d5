//! `POST /users`, `GET /users` and `DELETE /users/{id}`: the account's existing members.

use super::auth::Authenticated;
use super::imports::HistoryParams;
use super::pagination;
use super::views::{AddUsers, AddedUsers, RejectedEmail, UserView, UsersPage};
use super::ProblemType;
use super::{blocking, limits, ApiError, Problem};
use crate::db::users;
use crate::domain::EmailAddress;
use crate::startup::AppState;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};

/// The most addresses one `POST /users` takes.
const MAX_USERS_PER_REQUEST: usize = 10_000;

/// The largest `POST /users` body (10,000 addresses fit with room to spare).
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Add existing members of the account, so imports skip them.
///
/// Addresses are normalised like import entries; invalid ones are reported
/// and not stored, and ones that are users already are listed as `existing`.
#[utoipa::path(
    post, path = "/users", tag = "users",
    request_body = AddUsers,
    responses(
        (status = 200, description = "What became of each address", body = AddedUsers),
        (status = 400, description = "Not a JSON object with an `emails` list, or too many addresses (`invalid-json`, `too-many-users`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A Content-Type other than application/json (`unsupported-media-type`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 2 MiB (`body-too-large`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/users")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn add_users(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let emails = limits::read_json::<AddUsers>(
        &req,
        payload,
        MAX_BODY_BYTES,
        "2 MiB for POST /users",
        "with an `emails` list",
    )
    .await?
    .emails;
    if emails.len() > MAX_USERS_PER_REQUEST {
        return Err(ApiError::problem(
            ProblemType::TooManyUsers,
            format!(
                "Send at most {MAX_USERS_PER_REQUEST} addresses per request, or import a file."
            ),
        ));
    }
    let mut valid = Vec::with_capacity(emails.len());
    let mut invalid = Vec::new();
    for email in emails {
        match EmailAddress::parse(&email) {
            Ok(address) => valid.push(address),
            Err(reason) => invalid.push(RejectedEmail { email, reason }),
        }
    }
    let account_id = auth.0.id;
    let added = blocking(&state, move |conn| {
        Ok(users::add(conn, &account_id, valid)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(AddedUsers {
        added: added.created.into_iter().map(UserView::from).collect(),
        existing: added.existing,
        invalid,
    }))
}

/// The account's users, in the order they were added.
#[utoipa::path(
    get, path = "/users", tag = "users",
    params(HistoryParams),
    responses(
        (status = 200, description = "A page of users", body = UsersPage),
        (status = 400, description = "A bad cursor or limit (`invalid-cursor`, `invalid-limit`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[get("/users")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn list_users(
    state: web::Data<AppState>,
    auth: Authenticated,
    params: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let (limit, after) = params.page('u')?;
    let account_id = auth.0.id;
    let rows = blocking(&state, move |conn| {
        Ok(users::list(conn, &account_id, after.as_deref(), limit + 1)?)
    })
    .await?;
    let (rows, next_cursor) = pagination::next_page(rows, limit, 'u', |u| u.id.clone());
    Ok(HttpResponse::Ok().json(UsersPage {
        users: rows.into_iter().map(UserView::from).collect(),
        next_cursor,
    }))
}

/// Remove a member of the account. Later imports no longer skip the
/// address (it may be invited again); what earlier imports recorded stays.
/// Removing a user that is not there (any more) is a 404.
#[utoipa::path(
    delete, path = "/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or unknown API key (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this account (`not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[delete("/users/{id}")]
#[tracing::instrument(skip_all, fields(account = %auth.0.id))]
pub async fn delete_user(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (account_id, id) = (auth.0.id, id.into_inner());
    let removed = blocking(&state, move |conn| {
        Ok(users::remove(conn, &account_id, &id)?)
    })
    .await?;
    match removed {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::not_found("user")),
    }
}
