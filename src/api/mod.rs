//! The HTTP edge: routes, extractors, problem+json errors and the OpenAPI
//! contract. Handlers extract, call one function, and map the result.

pub mod accept;
pub mod account;
pub mod auth;
pub mod cors;
pub mod error;
pub mod health;
pub mod import_actions;
pub mod imports;
pub mod invitations;
pub mod keys;
pub mod limits;
pub mod logging;
pub mod methods;
pub mod metrics;
pub mod one_at_a_time;
pub mod openapi;
pub mod pages;
pub mod pagination;
pub mod quota;
pub mod reports;
pub mod suppressions;
pub mod upload;
pub mod users;
pub mod views;
pub mod webhooks;

use crate::db::DbConnection;
use crate::startup::AppState;
use actix_web::web;
pub use error::{ApiError, Problem, ProblemType};

/// Registers every route, and makes extractor failures, unknown paths and
/// unknown methods answer with problem+json too.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|err, _| invalid_query(err).into()))
        .app_data(web::PathConfig::default().error_handler(|err, _| {
            ApiError::problem(ProblemType::InvalidPath, err.to_string()).into()
        }))
        .service(imports::create_import)
        .service(imports::preview_import)
        .service(imports::list_imports)
        .service(imports::get_import)
        .service(reports::get_import_report)
        .service(reports::get_import_report_csv)
        .service(import_actions::cancel_import)
        .service(import_actions::resend_import)
        .service(import_actions::erase_import)
        .service(invitations::list_invitations)
        .service(invitations::revoke_invitation)
        .service(invitations::resend_invitation)
        .service(accept::resource())
        .service(users::add_users)
        .service(users::list_users)
        .service(keys::create_api_key)
        .service(keys::list_api_keys)
        .service(keys::get_api_key)
        .service(keys::revoke_api_key)
        .service(users::delete_user)
        .service(account::get_account)
        .service(account::update_account)
        .service(suppressions::list_suppressions)
        .service(suppressions::delete_suppression)
        .service(webhooks::scope())
        .service(health::get_health)
        .service(health::get_readiness)
        .service(metrics::get_metrics)
        .service(openapi::spec)
        .service(openapi::swagger_ui_redirect)
        .service(openapi::swagger_ui())
        .default_service(web::to(methods::unmatched));
}

/// Reads the query string into `T`, allowing a parameter to repeat
/// (`status=a&status=b`), which actix's `web::Query` does not.
pub fn query_with_repeats<T: serde::de::DeserializeOwned>(
    req: &actix_web::HttpRequest,
) -> Result<T, ApiError> {
    serde_html_form::from_str(req.query_string()).map_err(invalid_query)
}

/// Whether the query string names `name` with an empty value (which the
/// form reader takes for an absent one).
pub fn empty_param(req: &actix_web::HttpRequest, name: &str) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(key, value)| key == name && value.is_empty())
}

fn invalid_query(error: impl std::fmt::Display) -> ApiError {
    ApiError::problem(ProblemType::InvalidQuery, error.to_string())
}

/// Runs a read `f`. On SQLite with an idle connection it runs right here:
/// reading a few rows in WAL mode takes microseconds and waits for no
/// writer, less than the hop to another thread costs. Otherwise (on
/// PostgreSQL, whose answer comes over the network, or when every
/// connection is busy) it runs like [`blocking`], at most
/// [`crate::startup::AppState::read_turns`] at once.
pub async fn read<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    if state.inline_reads {
        if let Some(mut conn) = state.read_pool.try_get() {
            return f(&mut conn);
        }
    }
    read_in_turn(state, f).await
}

/// Runs a read on the blocking thread pool, at most
/// [`crate::startup::AppState::read_turns`] at once: [`read`] without its
/// shortcut, for reads too long to run on an HTTP worker (a page of the
/// CSV export).
pub async fn read_in_turn<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    // Reads wait their turn here, first come first served, rather than in
    // the pool, whose waiters are woken in no particular order (one read
    // could wait a hundred others out) and where more queries at once than
    // the cores can run only add switching between them.
    let read = async {
        let _turn = state
            .read_turns
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("read turns closed: {e}")))?;
        on_pool(state.read_pool.clone(), f).await
    };
    // Behind a lock each read with a turn waits out the statement timeout,
    // and the reads waiting for their turns would then wait it out again,
    // in turn: the whole read has the statement timeout. A read given up
    // while its statement runs lets its turn go at once; the statement
    // ends by its own timeout, on a connection the pool still counts.
    crate::db::Unanswered::within(state.read_deadline, read).await
}

/// Runs a read and answers 200 with `view` of its rows as JSON.
///
/// On PostgreSQL with the workers' own connections ([`AppState::async_reads`])
/// the HTTP worker asks `read_async` itself. Otherwise `read` runs like
/// [`read`], and `view` and the JSON are written by the thread that read
/// the rows: a page's strings are then allocated and freed by one thread
/// (freeing another thread's allocation is slower, and the HTTP worker has
/// more to do than the reading thread), and only the finished text crosses
/// to the worker.
pub async fn read_json<R, T, F, A, V>(
    state: &AppState,
    read_sync: F,
    read_async: A,
    view: V,
) -> Result<actix_web::HttpResponse, ApiError>
where
    F: FnOnce(&mut DbConnection) -> Result<R, ApiError> + Send + 'static,
    A: AsyncFnOnce(&mut &diesel_async::AsyncPgConnection) -> Result<R, ApiError>,
    V: FnOnce(R) -> Result<T, ApiError> + Send + 'static,
    R: Send + 'static,
    T: serde::Serialize,
{
    read_written(state, read_sync, read_async, move |rows| {
        serde_json::to_vec(&view(rows)?)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("cannot write JSON: {e}")))
    })
    .await
}

/// [`read_json`], with the JSON written by `write` (which may have been
/// given parts of it already written, see [`reports`]).
pub async fn read_written<R, F, A, W>(
    state: &AppState,
    read_sync: F,
    read_async: A,
    write: W,
) -> Result<actix_web::HttpResponse, ApiError>
where
    F: FnOnce(&mut DbConnection) -> Result<R, ApiError> + Send + 'static,
    A: AsyncFnOnce(&mut &diesel_async::AsyncPgConnection) -> Result<R, ApiError>,
    W: FnOnce(R) -> Result<Vec<u8>, ApiError> + Send + 'static,
    R: Send + 'static,
{
    let answered = match &state.async_reads {
        Some(reads) => reads.read(read_async).await,
        None => None,
    };
    let body = match answered {
        Some(rows) => write(rows?)?,
        None => read(state, move |conn| write(read_sync(conn)?)).await?,
    };
    Ok(actix_web::HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

/// Runs `f` with a pooled connection on the blocking thread pool: getting a
/// connection blocks too, so it happens there, never on an actix worker.
pub async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    on_pool(state.pool.clone(), f).await
}

/// Runs `f` with a connection of `pool` on the blocking thread pool.
async fn on_pool<T, F>(pool: crate::db::Pool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    web::block(move || crate::db::with_pooled(&pool, f))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
}
