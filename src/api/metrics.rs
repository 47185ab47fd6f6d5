//! `GET /metrics`: Prometheus text exposition of the service's figures.

use super::one_at_a_time::OneAtATime;
use super::{blocking, ApiError};
use crate::db::metrics::{totals, Totals};
use crate::db::now;
use crate::dispatch::DispatchState;
use crate::startup::AppState;
use actix_web::{get, web, HttpResponse};
use std::fmt::Write;

/// Prometheus metrics: imports by status, entries by status (all accounts),
/// invitations due now, and whether this process's dispatcher is paused.
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn get_metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let figures = state.metrics.figures(&state).await?;
    let dispatch = state
        .dispatch
        .as_ref()
        .map(|d| (d.get(), d.step_failures()));
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(render(&figures, dispatch)))
}

/// The figures, asked of the database by one scrape at a time (see
/// [`OneAtATime`]).
pub type Latest = OneAtATime<Totals>;

impl Latest {
    async fn figures(&self, state: &AppState) -> Result<Totals, ApiError> {
        self.get(|| blocking(state, |conn| Ok(totals(conn, now())?)))
            .await
    }
}

fn render(totals: &Totals, dispatch: Option<(DispatchState, u64)>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP bulk_invite_imports Imports by status.");
    let _ = writeln!(out, "# TYPE bulk_invite_imports gauge");
    for (status, n) in &totals.imports {
        let _ = writeln!(out, "bulk_invite_imports{{status=\"{status}\"}} {n}");
    }
    let c = &totals.entries;
    let entries = [
        ("invalid", c.invalid),
        ("duplicate", c.duplicate),
        ("existing_user", c.existing_user),
        ("suppressed", c.suppressed),
        ("already_invited", c.already_invited),
        ("queued", c.queued),
        ("sent", c.sent),
        ("failed", c.failed),
        ("delivered", c.delivered),
        ("bounced", c.bounced),
        ("complained", c.complained),
        ("accepted", c.accepted),
        ("expired", c.expired),
        ("revoked", c.revoked),
    ];
    let _ = writeln!(
        out,
        "# HELP bulk_invite_entries Import entries by status, over all imports."
    );
    let _ = writeln!(out, "# TYPE bulk_invite_entries gauge");
    for (status, n) in entries {
        let _ = writeln!(out, "bulk_invite_entries{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP bulk_invite_invitations_due Queued invitations whose send time has come."
    );
    let _ = writeln!(out, "# TYPE bulk_invite_invitations_due gauge");
    let _ = writeln!(out, "bulk_invite_invitations_due {}", totals.due);
    if let Some((dispatch, failures)) = dispatch {
        let paused = dispatch.state == "paused";
        let cause = dispatch.cause.as_deref().unwrap_or("none");
        let _ = writeln!(out, "# HELP bulk_invite_dispatch_paused 1 while this process's dispatcher is paused by the provider, labelled with why (rate_limit, quota, configuration).");
        let _ = writeln!(out, "# TYPE bulk_invite_dispatch_paused gauge");
        let _ = writeln!(
            out,
            "bulk_invite_dispatch_paused{{cause=\"{cause}\"}} {}",
            u8::from(paused)
        );
        let _ = writeln!(out, "# HELP bulk_invite_dispatch_running 1 while this process's dispatcher runs (0 once it stopped).");
        let _ = writeln!(out, "# TYPE bulk_invite_dispatch_running gauge");
        let _ = writeln!(
            out,
            "bulk_invite_dispatch_running {}",
            u8::from(dispatch.state != "stopped")
        );
        let _ = writeln!(out, "# HELP bulk_invite_dispatch_step_failures_total Dispatch steps that failed or panicked and were survived.");
        let _ = writeln!(
            out,
            "# TYPE bulk_invite_dispatch_step_failures_total counter"
        );
        let _ = writeln!(out, "bulk_invite_dispatch_step_failures_total {failures}");
    }
    out
}
