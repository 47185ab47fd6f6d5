//! The account's reply-to address reaches each provider where its wire
//! format puts it; SendGrid, whose content and reply-to belong to the whole
//! request, sends only the messages that share them with the first.

use std::sync::Arc;

use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

use bulk_invite::dispatch::provider::{Outcome, SharedContent};
use bulk_invite::dispatch::providers::ProviderKind;

use crate::{answer_all, json, message_sharing, provider, requests, shared_content, Fixture};

const REPLY_TO: &str = "team@acme.test";

fn with_reply_to(count: usize) -> Fixture {
    let mut fixture = Fixture::with(count);
    for message in &mut fixture.messages {
        message.reply_to = Some(REPLY_TO.into());
    }
    fixture
}

async fn sent_body(
    kind: ProviderKind,
    key: Option<&str>,
    answer: ResponseTemplate,
) -> serde_json::Value {
    let server = MockServer::start().await;
    answer_all(&server, answer).await;
    let fixture = with_reply_to(1);
    provider(kind, &server, key)
        .send(fixture.batch())
        .await
        .expect("sent");
    json(&requests(&server).await[0])
}

#[tokio::test]
async fn postmark_gets_reply_to_on_each_message() {
    let answer = ResponseTemplate::new(200).set_body_json(json!([
        {"ErrorCode": 0, "Message": "OK", "MessageID": "pm-1", "To": "person1@example.com"}
    ]));
    let body = sent_body(ProviderKind::Postmark, Some("token"), answer).await;
    assert_eq!(body[0]["ReplyTo"], REPLY_TO);
}

#[tokio::test]
async fn resend_gets_reply_to_on_each_email() {
    let answer = ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "re-1"}]}));
    let body = sent_body(ProviderKind::Resend, Some("re_key"), answer).await;
    assert_eq!(body[0]["reply_to"], REPLY_TO);
}

#[tokio::test]
async fn sendgrid_gets_reply_to_on_the_request() {
    let answer = ResponseTemplate::new(202).insert_header("X-Message-Id", "sg-1");
    let body = sent_body(ProviderKind::Sendgrid, Some("SG.key"), answer).await;
    assert_eq!(body["reply_to"], json!({"email": REPLY_TO}));
}

#[tokio::test]
async fn mailpit_gets_reply_to_on_each_message() {
    let answer = ResponseTemplate::new(200).set_body_json(json!({"ID": "mp-1"}));
    let body = sent_body(ProviderKind::Mailpit, None, answer).await;
    assert_eq!(body["ReplyTo"], json!([{"Email": REPLY_TO}]));
}

#[tokio::test]
async fn without_a_reply_to_no_field_is_sent() {
    let server = MockServer::start().await;
    answer_all(&server, ResponseTemplate::new(202)).await;
    let fixture = Fixture::with(1);
    provider(ProviderKind::Sendgrid, &server, Some("SG.key"))
        .send(fixture.batch())
        .await
        .expect("sent");
    let body = json(&requests(&server).await[0]);
    assert!(body.get("reply_to").is_none(), "{body}");
}

#[tokio::test]
async fn sendgrid_sends_only_the_messages_sharing_the_first_ones_content_and_reply_to() {
    let server = MockServer::start().await;
    answer_all(
        &server,
        ResponseTemplate::new(202).insert_header("X-Message-Id", "sg-1"),
    )
    .await;
    let english = Arc::new(shared_content());
    let german = Arc::new(SharedContent {
        subject: "Sie wurden eingeladen".into(),
        text: "Hallo -name-: -link-".into(),
        html: "<p>Hallo -name-: -link-</p>".into(),
    });
    let mut fixture = Fixture::with(0);
    fixture.messages = vec![
        message_sharing(1, english.clone()),
        message_sharing(2, german),
        message_sharing(3, english.clone()),
        message_sharing(4, english),
    ];
    fixture.messages[3].reply_to = Some(REPLY_TO.into());

    let outcomes = provider(ProviderKind::Sendgrid, &server, Some("SG.key"))
        .send(fixture.batch())
        .await
        .expect("sent");

    let sent = Outcome::Sent {
        message_id: Some("sg-1".into()),
    };
    assert_eq!(
        outcomes,
        [sent.clone(), Outcome::Unsent, sent, Outcome::Unsent]
    );
    let body = json(&requests(&server).await[0]);
    let to: Vec<&str> = body["personalizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["to"][0]["email"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["person1@example.com", "person3@example.com"]);
    assert_eq!(body["content"][0]["value"], "Hello -name-, accept: -link-");
}
