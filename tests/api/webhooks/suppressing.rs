//! The events that used to be left unmapped: the provider refused to send
//! (suppressed, dropped), could not send (failed, dropped as invalid), or
//! the address left (unsubscribed, subscription change). Payloads follow
//! the providers' documents, quoted at each. Then the suppression list:
//! listed page by page, lifted, and account-scoped.

use super::senders::*;
use crate::both_backends;
use crate::helpers::{assert_problem, statuses, Backend};
use serde_json::{json, Value};

both_backends!(
    backend:
    resend_suppressed_and_failed_events_fail_the_invitation_and_only_a_refusal_suppresses,
    sendgrid_drops_fail_the_invitation_and_suppress_by_their_reason,
    a_postmark_subscription_change_suppresses_the_address_for_later_imports,
    suppressions_are_listed_page_by_page_lifted_and_kept_per_account,
);

/// The suppression list as the account with `key` sees it: (email, reason).
async fn suppressions(hooks: &Hooks, key: &str) -> Vec<(String, String)> {
    let page: Value = hooks
        .app
        .get_as(key, "/suppressions?limit=1000")
        .await
        .json()
        .await
        .expect("JSON");
    page["suppressions"]
        .as_array()
        .expect("suppressions")
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().expect(k).to_owned();
            (text("email"), text("reason"))
        })
        .collect()
}

async fn resend_suppressed_and_failed_events_fail_the_invitation_and_only_a_refusal_suppresses(
    backend: Backend,
) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let import = hooks
        .import_sent(&key, "ann@x.io\nbob@x.io\ncarol@x.io")
        .await;
    let [ann, bob, carol] =
        ["ann@x.io", "bob@x.io", "carol@x.io"].map(|e| hooks.invitation(id(&import), e));
    // Resend's OpenAPI: email.suppressed "Occurs whenever the email is
    // suppressed by Resend, such as when the recipient's address is on the
    // account-level suppression list", with `suppressed` {message, reason:
    // previous_bounce | previous_complaint, type: Suppressed |
    // OnAccountSuppressionList}.
    let suppressed = resend_event(
        "email.suppressed",
        &ann,
        json!({"suppressed": {
        "diagnosticCode": [], "message": "The address is on the account's suppression list.",
        "reason": "previous_bounce", "type": "OnAccountSuppressionList"}}),
    );
    // email.failed "Occurs whenever the email failed to send due to an
    // error such as invalid recipients, [...] email quota limits", with
    // `failed.reason` "e.g., `reached_daily_quota`".
    let failed = resend_event(
        "email.failed",
        &bob,
        json!({"failed": {"reason": "reached_daily_quota"}}),
    );
    // A bounce of `type` Undetermined (enum Undetermined, Transient, Permanent).
    let undetermined = resend_event(
        "email.bounced",
        &carol,
        json!({"bounce": {
        "diagnosticCode": ["smtp; 554 unknown"], "message": "The bounce type could not be determined.",
        "subType": "Undetermined", "type": "Undetermined"}}),
    );

    for (n, event) in [suppressed, failed, undetermined].iter().enumerate() {
        let answer = hooks.resend_event(&format!("msg_{n}"), event).await;
        assert_eq!(receipt(answer).await, (1, 1));
    }

    let entries = hooks.app.report(id(&import)).await;
    assert_eq!(statuses(&entries), ["failed", "failed", "bounced"]);
    let reasons: Vec<&str> = entries
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons[1], "reached_daily_quota");
    assert!(reasons[0].contains("suppression list"), "{reasons:?}");
    let list = suppressions(&hooks, &key).await;
    assert_eq!(
        list.len(),
        1,
        "only the refused address is suppressed: {list:?}"
    );
    assert_eq!(list[0].0, "ann@x.io");
    assert!(list[0].1.starts_with("refused by the provider"), "{list:?}");
    let again = hooks.app.import("ann@x.io\nbob@x.io\ncarol@x.io").await;
    assert_eq!(
        statuses(&hooks.app.report(id(&again)).await),
        ["suppressed", "queued", "queued"]
    );
}

async fn sendgrid_drops_fail_the_invitation_and_suppress_by_their_reason(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let emails = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"];
    let import = hooks.import_sent(&key, &emails.join("\n")).await;
    let ids = emails.map(|e| hooks.invitation(id(&import), e));
    // SendGrid's webhook API: "Dropped events are accompanied by a `reason`
    // property [...] Reasons for a dropped message include: Invalid SMTPAPI
    // header, Spam Content (if spam checker app enabled), Unsubscribed
    // Address, Bounced Address, Spam Reporting Address, Invalid, Recipient
    // List over Package Quota."
    let reasons = [
        "Bounced Address",
        "Unsubscribed Address",
        "Spam Reporting Address",
        "Invalid",
    ];
    let mut batch: Vec<Value> = reasons
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(n, (reason, invitation))| {
            let mut event = sendgrid_event("dropped", &format!("drop-{n}"), invitation);
            event["reason"] = json!(reason);
            event["status"] = json!("5.0.0");
            event
        })
        .collect();
    // An unsubscribe after delivery suppresses without moving the invitation.
    batch.push(sendgrid_event("unsubscribe", "unsub-1", &ids[4]));

    let answer = hooks.sendgrid_events(&Value::Array(batch)).await;

    assert_eq!(receipt(answer).await, (5, 4));
    let entries = hooks.app.report(id(&import)).await;
    assert_eq!(
        statuses(&entries),
        ["failed", "failed", "failed", "failed", "sent"]
    );
    assert_eq!(entries[3]["detail"], "Invalid");
    let suppressed: Vec<String> = suppressions(&hooks, &key)
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(suppressed, ["a@x.io", "b@x.io", "c@x.io", "e@x.io"]);
}

async fn a_postmark_subscription_change_suppresses_the_address_for_later_imports(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let import = hooks.import_sent(&key, "ann@x.io\nbob@x.io").await;
    let [ann, bob] = ["ann@x.io", "bob@x.io"].map(|e| hooks.invitation(id(&import), e));
    // Postmark's subscription change webhook: "A subscription change is
    // recorded when an email address is added or removed from a Message
    // Stream's Suppression list [...] The SuppressSending field will inform
    // whether that was a deactivation or reactivation."
    let change = |invitation: &str, reason: &str, suppress: bool| {
        json!({
            "RecordType": "SubscriptionChange", "MessageID": format!("pm-{invitation}"),
            "ServerID": 23, "MessageStream": "outbound", "ChangedAt": "2026-11-26T16:34:54Z",
            "Recipient": "someone@x.io", "Origin": "Recipient", "SuppressSending": suppress,
            "SuppressionReason": reason, "Tag": "", "Metadata": {"invitation_id": invitation}
        })
    };

    let manual = hooks
        .postmark_event(&change(&ann, "ManualSuppression", true))
        .await;
    let hard = hooks
        .postmark_event(&change(&bob, "HardBounce", true))
        .await;
    let reactivated = hooks
        .postmark_event(&change(&bob, "HardBounce", false))
        .await;

    assert_eq!(
        receipt(manual).await,
        (1, 0),
        "the invitation keeps its state"
    );
    assert_eq!(receipt(hard).await, (1, 1));
    assert_eq!(receipt(reactivated).await, (1, 0));
    assert_eq!(
        statuses(&hooks.app.report(id(&import)).await),
        ["sent", "bounced"]
    );
    let list = suppressions(&hooks, &key).await;
    let reasons: Vec<&str> = list.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(reasons.len(), 2, "a reactivation lifts nothing: {list:?}");
    assert!(
        reasons[0].starts_with("unsubscribed") && reasons[1].starts_with("bounced"),
        "{list:?}"
    );
    let again = hooks.app.import("ann@x.io").await;
    assert_eq!(again["counts"]["suppressed"], 1);
}

async fn suppressions_are_listed_page_by_page_lifted_and_kept_per_account(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let emails = ["dee@x.io", "ann@x.io", "cat@x.io", "bob@x.io"];
    let import = hooks.import_sent(&key, &emails.join("\n")).await;
    for email in emails {
        let invitation = hooks.invitation(id(&import), email);
        let answer = hooks
            .postmark_event(&postmark_bounce(&invitation, "HardBounce"))
            .await;
        assert_eq!(receipt(answer).await, (1, 1));
    }
    let other = hooks.app.create_account("Globex");

    let first: Value = hooks
        .app
        .get("/suppressions?limit=3")
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let rest: Value = hooks
        .app
        .get(&format!("/suppressions?limit=3&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = first["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["suppressions"].as_array().unwrap())
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["ann@x.io", "bob@x.io", "cat@x.io", "dee@x.io"]);
    assert!(rest["next_cursor"].is_null());
    assert_eq!(suppressions(&hooks, &other).await, []);

    let delete = |key: String, email: &'static str| {
        let request = hooks
            .app
            .client
            .delete(hooks.app.url(&format!("/suppressions/{email}")));
        async move { request.bearer_auth(key).send().await.unwrap() }
    };
    assert_problem(
        delete(other.clone(), "ann@x.io").await,
        404,
        "not-suppressed",
    )
    .await;
    assert_eq!(delete(key.clone(), "ANN@X.io").await.status(), 204);
    assert_problem(delete(key.clone(), "ann@x.io").await, 404, "not-suppressed").await;
    assert_problem(
        delete(key.clone(), "not-an-address").await,
        400,
        "invalid-email",
    )
    .await;
    let anonymous = hooks
        .app
        .client
        .get(hooks.app.url("/suppressions"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // A cursor is the address key of the last row: any address-like
    // string is a place in the list, an empty one is not.
    assert_problem(
        hooks.app.get("/suppressions?cursor=").await,
        400,
        "invalid-cursor",
    )
    .await;

    // Ann, lifted, is invited again (the running dispatcher may have sent
    // her invitation by the time the report is read); Bob is not.
    let again = hooks.app.import("ann@x.io\nbob@x.io").await;
    assert_eq!(again["counts"]["invited"], 1);
    assert_eq!(again["counts"]["suppressed"], 1);
    let report = hooks.app.report(id(&again)).await;
    let statuses = statuses(&report);
    assert!(matches!(statuses[0], "queued" | "sent"), "{statuses:?}");
    assert_eq!(statuses[1], "suppressed");
}
