//! API-key authentication: `Authorization: Bearer <key>` names the account.

use super::{blocking, ApiError};
use crate::db::models::Account;
use crate::startup::AppState;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::Future;
use std::pin::Pin;

/// The account whose API key the request carries.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Account);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = bearer_key(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let key = key?;
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
            let account = blocking(&state, move |conn| {
                Ok(crate::db::accounts::find_by_key(conn, &key)?)
            })
            .await?;
            account
                .map(Authenticated)
                .ok_or_else(|| ApiError::unauthorized("The API key is not valid."))
        })
    }
}

fn bearer_key(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("Send your API key as `Authorization: Bearer <key>`.")
        })?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("The Authorization header is not readable text."))?;
    let (scheme, key) = value.split_once(' ').unwrap_or((value, ""));
    let key = key.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
        return Err(ApiError::unauthorized(
            "The Authorization header must be `Bearer <key>`.",
        ));
    }
    Ok(key.to_owned())
}
