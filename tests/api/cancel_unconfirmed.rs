//! Cancelling an import while some of its invitations wait for the
//! dispatcher to settle an unknown outcome (an earlier try timed out: the
//! email may be out). No one but the dispatcher can find out, so those are
//! left queued and counted as `unconfirmed`; the dispatcher then settles
//! them and the email that went out keeps a working link. Before, they
//! were revoked without their token, and a link already in an inbox
//! answered 404.

use crate::both_backends;
use crate::helpers::{counts, wait_until, TestApp};
use serde_json::Value;
use std::time::Duration;

both_backends!(cancel_leaves_invitations_with_an_unknown_outcome_to_the_dispatcher,);

async fn cancel_leaves_invitations_with_an_unknown_outcome_to_the_dispatcher(app: TestApp) {
    let import = app.import("ann@x.io\nbob@x.io\ncid@x.io\n").await;
    let id = import["id"].as_str().expect("id").to_owned();
    // ann's batch was tried once and timed out: the dispatcher will look it
    // up (or repeat it) before anything else.
    app.execute(
        "UPDATE invitations SET maybe_sent = TRUE, attempts = 1, batch_id = 'batch-ann' \
         WHERE email = 'ann@x.io'",
    );

    let cancel: Value = app
        .client
        .post(app.url(&format!("/imports/{id}/cancel")))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .expect("cancel")
        .json()
        .await
        .expect("JSON");

    assert_eq!(cancel["changed"], 2, "{cancel}");
    assert_eq!(cancel["unconfirmed"], 1, "{cancel}");
    assert_eq!(cancel["in_flight"], 0, "{cancel}");
    let c = counts(&cancel["import"]);
    assert_eq!(
        (c["queued"].as_i64(), c["revoked"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(app.invitation_by_email("ann@x.io").status, "queued");
    assert_eq!(app.invitation_by_email("bob@x.io").status, "revoked");

    // A dispatcher (the `log` provider, which offers no lookup, so it sends
    // the batch again) settles ann: sent, with the token of its link stored.
    let config = bulk_invite::config::DispatchConfig {
        poll_ms: 50,
        ..Default::default()
    };
    let dispatcher =
        bulk_invite::dispatch::Dispatcher::new(app.pool.clone(), &config).expect("dispatcher");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(dispatcher.run(stopped));
    wait_until(Duration::from_secs(30), || async {
        let ann = app.invitation_by_email("ann@x.io");
        (ann.status == "sent" && ann.token_hash.is_some()).then_some(())
    })
    .await;
    stop.send(true).expect("stop");
    task.await.expect("dispatcher task");
    for revoked in ["bob@x.io", "cid@x.io"] {
        let invitation = app.invitation_by_email(revoked);
        assert_eq!(invitation.status, "revoked", "{revoked}");
        assert!(
            invitation.sent_at.is_none(),
            "{revoked} was sent after its cancel"
        );
    }
}
