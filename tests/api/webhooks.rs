//! Delivery events end to end: invitations sent through a fake Postmark,
//! then the providers' webhooks, signed in the test with real keys, move
//! them to delivered, bounced or complained; bounced and complained
//! addresses are suppressed in later imports; replays and refused requests
//! change nothing.

mod refusals;
pub mod senders;
mod suppressing;

use crate::both_backends;
use crate::helpers::{statuses, Backend};
use senders::*;
use serde_json::{json, Value};

both_backends!(
    backend:
    a_delivery_moves_the_invitation_to_delivered,
    a_hard_bounce_suppresses_the_address_in_later_imports,
    a_complaint_after_delivery_marks_complained_and_suppresses,
    soft_bounces_opens_and_unknown_invitations_are_acknowledged_and_ignored,
    a_replayed_event_is_acknowledged_and_counted_once,
    resend_events_signed_with_the_secret_move_invitations,
    sendgrid_batches_signed_with_the_key_move_each_invitation,
    an_event_moves_only_the_invitation_it_names_across_accounts,
);

async fn a_delivery_moves_the_invitation_to_delivered(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let import = hooks.import_sent(&key, "ann@x.io\nbob@y.io").await;
    let ann = hooks.invitation(id(&import), "ann@x.io");

    let answer = hooks.postmark_event(&postmark_delivery(&ann)).await;

    assert_eq!(receipt(answer).await, (1, 1));
    let entries = hooks.app.report(id(&import)).await;
    assert_eq!(statuses(&entries), ["delivered", "sent"]);
    let now = hooks.import_now(&key, id(&import)).await;
    assert_eq!((n(&now, "delivered"), n(&now, "sent")), (1, 1));
    assert_eq!(now["status"], "completed");
}

async fn a_hard_bounce_suppresses_the_address_in_later_imports(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let first = hooks.import_sent(&key, "ann@x.io\nbob@y.io").await;
    let ann = hooks.invitation(id(&first), "ann@x.io");

    let answer = hooks
        .postmark_event(&postmark_bounce(&ann, "HardBounce"))
        .await;

    assert_eq!(receipt(answer).await, (1, 1));
    let entries = hooks.app.report(id(&first)).await;
    assert_eq!(statuses(&entries), ["bounced", "sent"]);
    let reason = entries[0]["detail"].as_str().expect("a bounce reason");
    assert!(reason.contains("550 5.1.1"), "{reason}");
    assert_eq!(n(&hooks.import_now(&key, id(&first)).await, "bounced"), 1);

    let second = hooks.import_sent(&key, "Ann <ANN@x.io>\ncarol@z.io").await;
    let entries = hooks.app.report(id(&second)).await;
    assert_eq!(statuses(&entries), ["suppressed", "sent"]);
    assert_eq!((n(&second, "suppressed"), n(&second, "invited")), (1, 1));
    let to = hooks.recipients().await;
    assert_eq!(
        to.iter()
            .filter(|t| t.eq_ignore_ascii_case("ann@x.io"))
            .count(),
        1,
        "{to:?}"
    );
}

async fn a_complaint_after_delivery_marks_complained_and_suppresses(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let first = hooks.import_sent(&key, "ann@x.io").await;
    let ann = hooks.invitation(id(&first), "ann@x.io");

    assert_eq!(
        receipt(hooks.postmark_event(&postmark_delivery(&ann)).await).await,
        (1, 1)
    );
    assert_eq!(
        receipt(hooks.postmark_event(&postmark_complaint(&ann)).await).await,
        (1, 1)
    );
    // A later bounce finds the invitation complained: nothing moves.
    assert_eq!(
        receipt(
            hooks
                .postmark_event(&postmark_bounce(&ann, "HardBounce"))
                .await
        )
        .await,
        (1, 0)
    );

    let now = hooks.import_now(&key, id(&first)).await;
    assert_eq!((n(&now, "delivered"), n(&now, "complained")), (0, 1));
    assert_eq!(
        statuses(&hooks.app.report(id(&first)).await),
        ["complained"]
    );
    assert_eq!(hooks.app.count_rows("suppressions"), 1);
    let second = hooks.app.import("ann@x.io").await;
    assert_eq!(n(&second, "suppressed"), 1);
    assert_eq!(second["status"], "completed", "nothing was queued");
}

async fn soft_bounces_opens_and_unknown_invitations_are_acknowledged_and_ignored(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let import = hooks.import_sent(&key, "ann@x.io").await;
    let ann = hooks.invitation(id(&import), "ann@x.io");
    let mut open = postmark_delivery(&ann);
    open["RecordType"] = json!("Open");
    let mut anonymous = postmark_bounce("x", "HardBounce");
    anonymous
        .as_object_mut()
        .expect("object")
        .remove("Metadata");
    let events = [
        postmark_bounce(&ann, "SoftBounce"),
        postmark_bounce(&ann, "Transient"),
        open,
        postmark_delivery("no-such-invitation"),
        postmark_bounce("no-such-invitation", "HardBounce"),
        anonymous,
    ];

    for event in &events {
        assert_eq!(
            receipt(hooks.postmark_event(event).await).await,
            (1, 0),
            "{event}"
        );
    }

    assert_eq!(statuses(&hooks.app.report(id(&import)).await), ["sent"]);
    assert_eq!(hooks.app.count_rows("suppressions"), 0);
    let again = hooks.app.import("ann@x.io").await;
    assert_eq!(n(&again, "already_invited"), 1);
}

async fn a_replayed_event_is_acknowledged_and_counted_once(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let import = hooks.import_sent(&key, "ann@x.io\nbob@y.io").await;
    let ann = hooks.invitation(id(&import), "ann@x.io");
    let bob = hooks.invitation(id(&import), "bob@y.io");
    let bounce = resend_event("email.bounced", &bob, json!({}));

    assert_eq!(
        receipt(hooks.postmark_event(&postmark_delivery(&ann)).await).await,
        (1, 1)
    );
    assert_eq!(
        receipt(hooks.postmark_event(&postmark_delivery(&ann)).await).await,
        (1, 0)
    );
    assert_eq!(
        receipt(hooks.resend_event("msg_1", &bounce).await).await,
        (1, 1)
    );
    // Svix retries the same message with a fresh timestamp and signature.
    assert_eq!(
        receipt(hooks.resend_event("msg_1", &bounce).await).await,
        (1, 0)
    );

    let now = hooks.import_now(&key, id(&import)).await;
    assert_eq!(
        (n(&now, "delivered"), n(&now, "bounced"), n(&now, "sent")),
        (1, 1, 0)
    );
    assert_eq!(hooks.app.count_rows("webhook_events"), 2);
}

async fn resend_events_signed_with_the_secret_move_invitations(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let import = hooks
        .import_sent(&key, "ann@x.io\nbob@y.io\ncarol@z.io")
        .await;
    let [ann, bob, carol] =
        ["ann@x.io", "bob@y.io", "carol@z.io"].map(|e| hooks.invitation(id(&import), e));
    let permanent = json!({"bounce": {"message": "550 5.1.1 no such user", "subType": "General", "type": "Permanent"},
                           "tags": {"category": "invite", "invitation_id": bob}});
    let transient = json!({"bounce": {"message": "Mailbox full", "subType": "MailboxFull", "type": "Transient"}});

    let answers = [
        hooks
            .resend_event("msg_a", &resend_event("email.delivered", &ann, json!({})))
            .await,
        hooks
            .resend_event(
                "msg_b",
                &resend_event("email.bounced", "ignored", permanent),
            )
            .await,
        hooks
            .resend_event("msg_c", &resend_event("email.bounced", &carol, transient))
            .await,
        hooks
            .resend_event(
                "msg_d",
                &resend_event("email.complained", &carol, json!({})),
            )
            .await,
        hooks
            .resend_event("msg_e", &resend_event("email.opened", &ann, json!({})))
            .await,
    ];

    let mut applied = Vec::new();
    for answer in answers {
        applied.push(receipt(answer).await.1);
    }
    assert_eq!(applied, [1, 1, 0, 1, 0]);
    let entries = hooks.app.report(id(&import)).await;
    assert_eq!(statuses(&entries), ["delivered", "bounced", "complained"]);
    assert_eq!(entries[1]["detail"], "550 5.1.1 no such user");
    assert_eq!(hooks.app.count_rows("suppressions"), 2);
}

async fn sendgrid_batches_signed_with_the_key_move_each_invitation(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let import = hooks
        .import_sent(&key, "ann@x.io\nbob@y.io\ncarol@z.io\ndi@w.io")
        .await;
    let [ann, bob, carol, di] =
        ["ann@x.io", "bob@y.io", "carol@z.io", "di@w.io"].map(|e| hooks.invitation(id(&import), e));
    let mut bounce = sendgrid_event("bounce", "e3", &carol);
    bounce["type"] = json!("bounce");
    bounce["reason"] = json!("550 5.1.1 unknown user");
    let mut blocked = sendgrid_event("bounce", "e4", &di);
    blocked["type"] = json!("blocked");
    let batch = json!([
        sendgrid_event("processed", "e0", &ann),
        sendgrid_event("delivered", "e1", &ann),
        sendgrid_event("spamreport", "e2", &bob),
        bounce,
        blocked,
        sendgrid_event("open", "e5", &ann),
    ]);

    assert_eq!(receipt(hooks.sendgrid_events(&batch).await).await, (6, 3));
    assert_eq!(receipt(hooks.sendgrid_events(&batch).await).await, (6, 0));

    let entries = hooks.app.report(id(&import)).await;
    assert_eq!(
        statuses(&entries),
        ["delivered", "complained", "bounced", "sent"]
    );
    let now = hooks.import_now(&key, id(&import)).await;
    assert_eq!(
        (
            n(&now, "delivered"),
            n(&now, "complained"),
            n(&now, "bounced"),
            n(&now, "sent")
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(hooks.app.count_rows("suppressions"), 2);
}

async fn an_event_moves_only_the_invitation_it_names_across_accounts(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let (acme, globex) = (
        hooks.app.api_key.clone(),
        hooks.app.create_account("Globex"),
    );
    let ours = hooks.import_sent(&acme, "ann@x.io").await;
    let theirs = hooks.import_sent(&globex, "ann@x.io").await;
    let ann = hooks.invitation(id(&ours), "ann@x.io");

    assert_eq!(
        receipt(
            hooks
                .postmark_event(&postmark_bounce(&ann, "HardBounce"))
                .await
        )
        .await,
        (1, 1)
    );

    assert_eq!(
        statuses(&hooks.report_as(&acme, id(&ours)).await),
        ["bounced"]
    );
    assert_eq!(
        statuses(&hooks.report_as(&globex, id(&theirs)).await),
        ["sent"]
    );
    let again = hooks.app.import("ann@x.io").await;
    assert_eq!(n(&again, "suppressed"), 1);
    let response = hooks.app.upload_as(&globex, "ann@x.io").await;
    let theirs_again: Value = response.json().await.expect("import JSON");
    assert_eq!(
        (
            n(&theirs_again, "suppressed"),
            n(&theirs_again, "already_invited")
        ),
        (0, 1)
    );
}
