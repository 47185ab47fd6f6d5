//! Webhook requests as each provider sends them, signed in the test with
//! real keys, and an app that sends through a fake Postmark with every
//! webhook configured.

use crate::fakes;
use crate::helpers::{counts, wait_until, Backend, TestApp};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bulk_invite::config::{ServeConfig, WebhookConfig};
use bulk_invite::dispatch::providers::ProviderKind;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use reqwest::Response;
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use wiremock::MockServer;

pub const USER: &str = "postmark-hook";
pub const PASSWORD: &str = "pw:with-colon";
/// A Svix signing secret: `whsec_` and a base64 key.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// An app with the dispatcher on, a fake Postmark, and its SendGrid key.
pub struct Hooks {
    pub app: TestApp,
    pub postmark: MockServer,
    pub sendgrid_key: SigningKey,
}

/// The webhook settings of the test: every provider configured.
pub fn webhook_config(sendgrid_key: &SigningKey) -> WebhookConfig {
    let der = sendgrid_key
        .verifying_key()
        .to_public_key_der()
        .expect("DER public key");
    WebhookConfig {
        postmark_webhook_user: Some(USER.into()),
        postmark_webhook_password: Some(PASSWORD.into()),
        resend_webhook_secret: Some(SECRET.into()),
        sendgrid_webhook_public_key: Some(STANDARD.encode(der.as_bytes())),
        webhook_tolerance_secs: 300,
    }
}

fn use_postmark(config: &mut ServeConfig, server: &MockServer) {
    config.dispatcher = true;
    let d = &mut config.dispatch;
    d.email_provider = ProviderKind::Postmark;
    d.postmark_base_url = Some(server.uri());
    d.postmark_server_token = Some("server-token".into());
    d.poll_ms = 50;
    d.backoff_ms = 50;
}

impl Hooks {
    pub async fn spawn(backend: Backend) -> Hooks {
        let postmark = fakes::postmark(Duration::ZERO).await;
        let sendgrid_key = SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
        let webhooks = webhook_config(&sendgrid_key);
        let app = TestApp::spawn_with(backend, |c| {
            use_postmark(c, &postmark);
            c.webhooks = webhooks;
        })
        .await;
        Hooks {
            app,
            postmark,
            sendgrid_key,
        }
    }

    /// Imports `text` with `key` and waits until every invitation is sent;
    /// returns the completed import.
    pub async fn import_sent(&self, key: &str, text: &str) -> Value {
        let response = self.app.upload_as(key, text).await;
        assert_eq!(response.status(), 201, "upload");
        let import: Value = response.json().await.expect("import JSON");
        let id = import["id"].as_str().expect("id").to_owned();
        self.import_when_completed(key, &id).await
    }

    /// The import once it is `completed`.
    pub async fn import_when_completed(&self, key: &str, id: &str) -> Value {
        let path = format!("/imports/{id}");
        wait_until(Duration::from_secs(20), || async {
            let import: Value = self.app.get_as(key, &path).await.json().await.ok()?;
            (import["status"] == "completed").then_some(import)
        })
        .await
    }

    /// The import's current state, as the account with `key` sees it.
    pub async fn import_now(&self, key: &str, id: &str) -> Value {
        let path = format!("/imports/{id}");
        self.app
            .get_as(key, &path)
            .await
            .json()
            .await
            .expect("import JSON")
    }

    /// The report entries of an import as the account with `key` sees them.
    pub async fn report_as(&self, key: &str, id: &str) -> Vec<Value> {
        let path = format!("/imports/{id}/report?limit=1000");
        let page: Value = self
            .app
            .get_as(key, &path)
            .await
            .json()
            .await
            .expect("report");
        page["entries"].as_array().expect("entries").clone()
    }

    /// The id of the invitation an import made for `email`.
    pub fn invitation(&self, import_id: &str, email: &str) -> String {
        use bulk_invite::db::schema::invitations::dsl as i;
        use diesel::prelude::*;
        let mut conn = self.app.pool.get().expect("connection");
        i::invitations
            .filter(i::import_id.eq(import_id))
            .filter(i::email.eq(email))
            .select(i::id)
            .first(&mut *conn)
            .expect("invitation")
    }

    /// Every address the fake Postmark was asked to send to.
    pub async fn recipients(&self) -> Vec<String> {
        let mut to = Vec::new();
        for request in self.postmark.received_requests().await.unwrap_or_default() {
            let messages: Vec<Value> = serde_json::from_slice(&request.body).expect("JSON");
            to.extend(
                messages
                    .iter()
                    .map(|m| m["To"].as_str().unwrap_or("").to_owned()),
            );
        }
        to
    }

    /// Posts a Postmark event with the configured credentials.
    pub async fn postmark_event(&self, event: &Value) -> Response {
        self.post_postmark(Some((USER, PASSWORD)), event.to_string())
            .await
    }

    /// Posts a raw body to the Postmark webhook with the given credentials.
    pub async fn post_postmark(&self, auth: Option<(&str, &str)>, body: String) -> Response {
        let mut request = self.app.client.post(self.app.url("/webhooks/postmark"));
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        request.body(body).send().await.expect("request")
    }

    /// Posts a Resend event signed now with the configured secret.
    pub async fn resend_event(&self, svix_id: &str, event: &Value) -> Response {
        let body = event.to_string();
        let timestamp = now().to_string();
        let signature = svix_signature(SECRET, svix_id, &timestamp, &body);
        let headers = [
            ("svix-id", svix_id.to_owned()),
            ("svix-timestamp", timestamp),
            ("svix-signature", signature),
        ];
        self.post("/webhooks/resend", &headers, body).await
    }

    /// Posts a SendGrid batch signed now with the configured key.
    pub async fn sendgrid_events(&self, events: &Value) -> Response {
        let body = events.to_string();
        let headers = sendgrid_headers(&self.sendgrid_key, &now().to_string(), &body);
        self.post("/webhooks/sendgrid", &headers, body).await
    }

    /// Posts `body` to `path` with exactly these headers.
    pub async fn post(&self, path: &str, headers: &[(&str, String)], body: String) -> Response {
        let mut request = self.app.client.post(self.app.url(path));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Svix's `svix-signature` value for a message.
pub fn svix_signature(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC key");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// SendGrid's signature headers for a body, signed with `key` at `timestamp`.
pub fn sendgrid_headers(
    key: &SigningKey,
    timestamp: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let signature: Signature = key.sign(format!("{timestamp}{body}").as_bytes());
    vec![
        (
            "X-Twilio-Email-Event-Webhook-Signature",
            STANDARD.encode(signature.to_der().as_bytes()),
        ),
        (
            "X-Twilio-Email-Event-Webhook-Timestamp",
            timestamp.to_owned(),
        ),
    ]
}

/// Postmark's delivery webhook record for an invitation.
pub fn postmark_delivery(invitation_id: &str) -> Value {
    json!({
        "RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
        "MessageID": format!("pm-{invitation_id}"), "Recipient": "someone@x.io", "Tag": "",
        "DeliveredAt": "2026-11-26T16:33:54.9070259Z", "Details": "smtp;250 2.0.0 OK",
        "Metadata": {"invitation_id": invitation_id}
    })
}

/// Postmark's bounce webhook record of a bounce type for an invitation.
pub fn postmark_bounce(invitation_id: &str, bounce_type: &str) -> Value {
    json!({
        "RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036u64,
        "Type": bounce_type, "TypeCode": 1, "Name": "Hard bounce", "Tag": "",
        "MessageID": format!("pm-{invitation_id}"), "ServerID": 23,
        "Metadata": {"invitation_id": invitation_id},
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "someone@x.io", "From": "invites@localhost",
        "BouncedAt": "2026-11-26T16:40:00.1234567Z",
        "DumpAvailable": false, "Inactive": true, "CanActivate": true, "Subject": "Join Acme"
    })
}

/// Postmark's spam complaint webhook record for an invitation.
pub fn postmark_complaint(invitation_id: &str) -> Value {
    let mut record = postmark_bounce(invitation_id, "SpamComplaint");
    record["RecordType"] = json!("SpamComplaint");
    record["TypeCode"] = json!(512);
    record["BouncedAt"] = json!("2026-11-26T18:00:00Z");
    record
}

/// A Resend event of `kind` for an invitation, with `data` fields added.
pub fn resend_event(kind: &str, invitation_id: &str, data: Value) -> Value {
    let mut event = json!({
        "type": kind, "created_at": "2026-11-26T23:41:12.126Z",
        "data": {
            "created_at": "2026-11-26T23:41:11.894719+00:00",
            "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
            "from": "Acme <invites@localhost>", "to": ["someone@x.io"], "subject": "Join Acme",
            "tags": [{"name": "invitation_id", "value": invitation_id}]
        }
    });
    for (k, v) in data.as_object().expect("object") {
        event["data"][k] = v.clone();
    }
    event
}

/// A SendGrid event of `kind` for an invitation.
pub fn sendgrid_event(kind: &str, event_id: &str, invitation_id: &str) -> Value {
    json!({
        "email": "someone@x.io", "timestamp": now(), "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": kind, "category": ["invite"], "sg_event_id": event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "invitation_id": invitation_id
    })
}

/// The `(received, applied)` of a 200 answer.
pub async fn receipt(response: reqwest::Response) -> (u64, u64) {
    assert_eq!(response.status(), 200, "webhook answer");
    let body: Value = response.json().await.expect("receipt JSON");
    (
        body["received"].as_u64().expect("received"),
        body["applied"].as_u64().expect("applied"),
    )
}

/// An import's id.
pub fn id(import: &Value) -> &str {
    import["id"].as_str().expect("import id")
}

/// A count of an import, checking that its counts add up.
pub fn n(import: &Value, key: &str) -> i64 {
    counts(import)[key].as_i64().expect("count")
}
