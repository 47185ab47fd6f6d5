//! Recording fakes that behave like the providers' documented semantics,
//! not just their formats: an idempotent Resend and a Postmark whose
//! outbound search finds what it accepted. Each can accept a request and
//! answer it too late (after the client gave up), as a real provider may.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One email a fake accepted.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub to: String,
    pub text: String,
}

/// One request a fake received under an idempotency key.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: SystemTime,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    requests: usize,
    delivered: Vec<Delivered>,
    by_key: HashMap<String, Vec<Received>>,
    answers: HashMap<String, (Vec<u8>, Value)>,
    conflicts: usize,
    /// Postmark: every accepted message as its search lists it.
    messages: Vec<Value>,
}

/// What a recording fake saw and accepted; shared with the test.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<State>>);

impl Outbox {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().expect("outbox lock"))
    }

    /// Every email accepted, in order.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.with(|s| s.delivered.clone())
    }

    /// How many emails went to `to`.
    pub fn copies(&self, to: &str) -> usize {
        self.with(|s| s.delivered.iter().filter(|d| d.to == to).count())
    }

    /// The requests received under each idempotency key.
    pub fn by_key(&self) -> HashMap<String, Vec<Received>> {
        self.with(|s| s.by_key.clone())
    }

    /// How many requests were refused as a different payload under a used key.
    pub fn conflicts(&self) -> usize {
        self.with(|s| s.conflicts)
    }

    /// How many send requests arrived.
    pub fn requests(&self) -> usize {
        self.with(|s| s.requests)
    }
}

/// Resend's `/emails/batch` with its documented idempotency: "Idempotency
/// keys ... expire after 24 hours ... If a request with the same key and
/// the same payload is received, the original response is returned; ...
/// with a different payload, a 409 `invalid_idempotent_request` error is
/// returned" (Resend, idempotency keys). The first `late` requests are
/// accepted but answered after `delay`.
pub struct IdempotentResend {
    pub outbox: Outbox,
    pub late: usize,
    pub delay: Duration,
}

impl Respond for IdempotentResend {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = request.body.clone();
        self.outbox.with(|s| {
            s.requests += 1;
            let late = s.requests <= self.late;
            s.by_key.entry(key.clone()).or_default().push(Received {
                at: SystemTime::now(),
                body: body.clone(),
            });
            let answer = match s.answers.get(&key) {
                Some((first, answer)) if *first == body => {
                    ResponseTemplate::new(200).set_body_json(answer)
                }
                Some(_) => {
                    s.conflicts += 1;
                    // Resend errors: "invalid_idempotent_request, Status: 409,
                    // Message: Same idempotency key used with a different request payload."
                    return ResponseTemplate::new(409).set_body_json(json!({
                        "statusCode": 409, "name": "invalid_idempotent_request",
                        "message": "Same idempotency key used with a different request payload."
                    }));
                }
                None => {
                    let emails: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array");
                    let mut data = Vec::new();
                    for email in &emails {
                        s.delivered.push(Delivered {
                            to: email["to"][0].as_str().unwrap_or_default().to_owned(),
                            text: email["text"].as_str().unwrap_or_default().to_owned(),
                        });
                        data.push(json!({"id": uuid::Uuid::new_v4().to_string()}));
                    }
                    // "Response: { data: [{ id: ... }, ...] }" (Resend, send batch emails)
                    let answer = json!({ "data": data });
                    s.answers.insert(key, (body, answer.clone()));
                    ResponseTemplate::new(200).set_body_json(answer)
                }
            };
            if late {
                answer.set_delay(self.delay)
            } else {
                answer
            }
        })
    }
}

/// A fake Resend that records and honours idempotency keys.
pub async fn idempotent_resend(late: usize, delay: Duration) -> (MockServer, Outbox) {
    let server = MockServer::start().await;
    let outbox = Outbox::default();
    Mock::given(method("POST"))
        .and(path("/emails/batch"))
        .respond_with(IdempotentResend {
            outbox: outbox.clone(),
            late,
            delay,
        })
        .mount(&server)
        .await;
    (server, outbox)
}

/// Postmark's `/email/batch` that remembers what it accepted; the first
/// `late` requests are answered after `delay`.
struct AcceptingPostmark {
    outbox: Outbox,
    late: usize,
    delay: Duration,
}

impl Respond for AcceptingPostmark {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let messages: Vec<Value> = serde_json::from_slice(&request.body).expect("a JSON array");
        self.outbox.with(|s| {
            s.requests += 1;
            let late = s.requests <= self.late;
            let results: Vec<Value> = messages
                .iter()
                .map(|m| {
                    let id = uuid::Uuid::new_v4().to_string();
                    let to = m["To"].as_str().unwrap_or_default();
                    s.delivered.push(Delivered {
                        to: to.to_owned(),
                        text: m["TextBody"].as_str().unwrap_or_default().to_owned(),
                    });
                    // An entry as the outbound search lists it (Postmark,
                    // messages API: "Messages": [{"Tag", "MessageID", "To",
                    // "Recipients", "ReceivedAt", "Status", "Metadata", ...}]).
                    s.messages.push(json!({
                        "Tag": m["Tag"], "MessageID": id, "MessageStream": m["MessageStream"],
                        "To": [{"Email": to, "Name": null}], "Recipients": [to],
                        "ReceivedAt": "2026-11-26T08:00:00-05:00", "Status": "Sent",
                        "Subject": m["Subject"], "Metadata": m["Metadata"],
                    }));
                    json!({"ErrorCode": 0, "Message": "OK", "MessageID": id, "To": to,
                           "SubmittedAt": "2026-11-26T13:00:00Z"})
                })
                .collect();
            let answer = ResponseTemplate::new(200).set_body_json(results);
            if late {
                answer.set_delay(self.delay)
            } else {
                answer
            }
        })
    }
}

/// Postmark's outbound message search over what [`AcceptingPostmark`]
/// accepted, filtered by `metadata_<key>` and paged by `count`/`offset`.
struct OutboundSearch {
    outbox: Outbox,
}

impl Respond for OutboundSearch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let (Some(count), Some(offset)) = (
            query.get("count").and_then(|c| c.parse::<usize>().ok()),
            query.get("offset").and_then(|o| o.parse::<usize>().ok()),
        ) else {
            return ResponseTemplate::new(422).set_body_json(
                json!({"ErrorCode": 1100, "Message": "The 'count' and 'offset' parameters are required."}),
            );
        };
        let filters: Vec<(&str, &String)> = query
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("metadata_").map(|k| (k, v)))
            .collect();
        let matching: Vec<Value> = self.outbox.with(|s| {
            s.messages
                .iter()
                .filter(|m| filters.iter().all(|(k, v)| m["Metadata"][*k] == **v))
                .cloned()
                .collect()
        });
        let page: Vec<Value> = matching.iter().skip(offset).take(count).cloned().collect();
        ResponseTemplate::new(200)
            .set_body_json(json!({"TotalCount": matching.len(), "Messages": page}))
    }
}

/// A fake Postmark that accepts every batch, answers the first `late` after
/// `delay`, and finds what it accepted through its outbound search.
pub async fn searchable_postmark(late: usize, delay: Duration) -> (MockServer, Outbox) {
    let server = MockServer::start().await;
    let outbox = Outbox::default();
    Mock::given(method("POST"))
        .and(path("/email/batch"))
        .respond_with(AcceptingPostmark {
            outbox: outbox.clone(),
            late,
            delay,
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/messages/outbound"))
        .respond_with(OutboundSearch {
            outbox: outbox.clone(),
        })
        .mount(&server)
        .await;
    (server, outbox)
}
