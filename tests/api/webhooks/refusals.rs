//! Webhook requests that are refused: wrong or missing credentials and
//! signatures, stale timestamps, unconfigured providers, unreadable
//! bodies. None of them changes anything.

use super::senders::*;
use crate::both_backends;
use crate::helpers::{assert_problem, statuses, Backend, TestApp};
use serde_json::json;

both_backends!(
    backend:
    requests_without_valid_credentials_are_refused_and_change_nothing,
    an_unconfigured_provider_refuses_every_request,
    an_unreadable_body_is_a_bad_request,
);

async fn requests_without_valid_credentials_are_refused_and_change_nothing(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let import = hooks.import_sent(&key, "ann@x.io").await;
    let ann = hooks.invitation(id(&import), "ann@x.io");
    let delivery = postmark_delivery(&ann).to_string();
    let refused = [
        hooks.post_postmark(None, delivery.clone()).await,
        hooks
            .post_postmark(Some((USER, "wrong")), delivery.clone())
            .await,
        hooks
            .post_postmark(Some(("someone", PASSWORD)), delivery.clone())
            .await,
        hooks
            .post(
                "/webhooks/postmark",
                &[("Authorization", format!("Bearer {key}"))],
                delivery,
            )
            .await,
    ];
    for response in refused {
        // Postmark sends the URL's credentials when challenged for basic auth.
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic"), "{challenge}");
        assert_problem(response, 401, "webhook-unverified").await;
    }

    let body = resend_event("email.delivered", &ann, json!({})).to_string();
    // Well outside the 300 s tolerance, so a slow machine cannot bring a
    // timestamp back inside it between signing and checking.
    let (t, stale) = (now().to_string(), (now() - 360).to_string());
    let other = "whsec_c2VjcmV0LW9mLWFub3RoZXItZW5kcG9pbnQ=";
    let svix = |id: &str, ts: &str, sig: String| {
        vec![
            ("svix-id", id.to_owned()),
            ("svix-timestamp", ts.to_owned()),
            ("svix-signature", sig),
        ]
    };
    let cases = [
        (
            svix("m1", &t, svix_signature(other, "m1", &t, &body)),
            body.clone(),
        ),
        (
            svix("m1", &stale, svix_signature(SECRET, "m1", &stale, &body)),
            body.clone(),
        ),
        (
            svix("m2", &t, svix_signature(SECRET, "m1", &t, &body)),
            body.clone(),
        ),
        (
            svix("m1", &t, svix_signature(SECRET, "m1", &t, &body)),
            body.replace("delivered", "complained"),
        ),
        (
            svix("m1", &t, svix_signature(SECRET, "m1", &t, &body))[..2].to_vec(),
            body.clone(),
        ),
        (vec![], body.clone()),
    ];
    for (headers, body) in cases {
        let response = hooks.post("/webhooks/resend", &headers, body).await;
        assert_problem(response, 401, "webhook-unverified").await;
    }

    let batch = json!([sendgrid_event("delivered", "e1", &ann)]).to_string();
    let stranger = p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
    let cases = [
        sendgrid_headers(&stranger, &t, &batch),
        sendgrid_headers(&hooks.sendgrid_key, &stale, &batch),
        sendgrid_headers(&hooks.sendgrid_key, &(now() + 360).to_string(), &batch),
        sendgrid_headers(&hooks.sendgrid_key, &t, &batch)[..1].to_vec(),
        vec![],
    ];
    for headers in cases {
        let response = hooks
            .post("/webhooks/sendgrid", &headers, batch.clone())
            .await;
        assert_problem(response, 401, "webhook-unverified").await;
    }

    assert_eq!(statuses(&hooks.app.report(id(&import)).await), ["sent"]);
    assert_eq!(hooks.app.count_rows("webhook_events"), 0);
}

async fn an_unconfigured_provider_refuses_every_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body =
        json!([{"event": "delivered", "sg_event_id": "e1", "invitation_id": "x"}]).to_string();
    let key = p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
    let t = now().to_string();
    let requests = [
        app.client
            .post(app.url("/webhooks/postmark"))
            .basic_auth(USER, Some(PASSWORD)),
        app.client
            .post(app.url("/webhooks/resend"))
            .header("svix-id", "m1")
            .header("svix-timestamp", &t)
            .header("svix-signature", svix_signature(SECRET, "m1", &t, &body)),
        sendgrid_headers(&key, &t, &body).into_iter().fold(
            app.client.post(app.url("/webhooks/sendgrid")),
            |r, (k, v)| r.header(k, v),
        ),
    ];
    for request in requests {
        let response = request.body(body.clone()).send().await.expect("request");
        let detail = assert_problem(response, 401, "webhook-unverified").await;
        assert!(detail.contains("not configured"), "{detail}");
    }
}

async fn an_unreadable_body_is_a_bad_request(backend: Backend) {
    let hooks = Hooks::spawn(backend).await;
    let not_json = hooks
        .post_postmark(Some((USER, PASSWORD)), "{oops".into())
        .await;
    assert_problem(not_json, 400, "invalid-webhook-body").await;
    let not_a_batch = json!({"event": "delivered"});
    let response = hooks.sendgrid_events(&not_a_batch).await;
    assert_problem(response, 400, "invalid-webhook-body").await;
}
