//! A dispatcher whose database fails under it counts the failures in
//! `/metrics`, stays running, and sends once the database is back.

use crate::both_backends;
use crate::fakes::{self, use_postmark};
use crate::helpers::{wait_until, Backend, TestApp};
use serde_json::Value;
use std::time::Duration;

both_backends!(
    backend:
    failing_steps_are_counted_in_metrics_and_dispatch_goes_on_once_the_database_is_back,
);

/// The value of `bulk_invite_dispatch_step_failures_total` in `/metrics`.
async fn step_failures(app: &TestApp) -> u64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("bulk_invite_dispatch_step_failures_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no step failure counter in {metrics}"))
}

async fn failing_steps_are_counted_in_metrics_and_dispatch_goes_on_once_the_database_is_back(
    backend: Backend,
) {
    let server = fakes::postmark(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| use_postmark(c, &server)).await;
    assert_eq!(step_failures(&app).await, 0);

    // The queue disappears from under the dispatcher for a second: every
    // step fails (and so would `/metrics`, which reads the same table).
    app.execute("ALTER TABLE invitations RENAME TO invitations_away");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    app.execute("ALTER TABLE invitations_away RENAME TO invitations");

    assert_eq!(ready["dispatch"]["state"], "running", "{ready}");
    assert!(step_failures(&app).await >= 2);
    app.import("ann@x.io").await;
    wait_until(Duration::from_secs(10), || async {
        (app.invitation_by_email("ann@x.io").status == "sent").then_some(())
    })
    .await;
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
