//! Postmark's outbound message search, to settle a batch whose answer was
//! lost: "GET /messages/outbound ... count: required, number of messages to
//! return per request, max 500; offset: required; ... metadata_: filter by
//! metadata key/value (e.g. metadata_color=blue)" (Postmark, Messages API).
//! Every message of ours carries `Metadata.batch`, so one search finds what
//! Postmark accepted of a batch, whichever worker sent it.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Postmark, NAME};
use crate::dispatch::provider::{Batch, BatchError};
use crate::dispatch::providers::http;

/// Postmark's largest page.
const PAGE: usize = 500;
/// "Count + Offset cannot exceed 10,000 messages."
const MAX_RESULTS: usize = 10_000;

#[derive(Deserialize)]
struct SearchAnswer {
    #[serde(rename = "TotalCount", default)]
    total_count: usize,
    #[serde(rename = "Messages", default)]
    messages: Vec<Found>,
}

#[derive(Deserialize)]
struct Found {
    #[serde(rename = "MessageID", default)]
    message_id: String,
    #[serde(rename = "Metadata", default)]
    metadata: HashMap<String, String>,
}

/// For each message of `batch`, its Postmark message id if Postmark
/// accepted it under this batch id.
pub(super) async fn accepted(
    postmark: &Postmark,
    batch: Batch<'_>,
) -> Result<Vec<Option<String>>, BatchError> {
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut offset = 0;
    loop {
        let request = postmark
            .client
            .get(format!("{}/messages/outbound", postmark.base_url))
            .header("X-Postmark-Server-Token", &postmark.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .query(&[
                ("count", PAGE.to_string()),
                ("offset", offset.to_string()),
                ("messagestream", postmark.message_stream.clone()),
                ("metadata_batch", batch.batch_id.to_owned()),
            ]);
        let answer = http::send(NAME, request).await?;
        if !answer.status.is_success() {
            return Err(http::status_error(NAME, &answer, None));
        }
        let Some(page) = answer.json::<SearchAnswer>() else {
            return Err(BatchError::Unknown {
                reason: answer.reason(NAME, Some("the search answer is not a list of messages")),
            });
        };
        let read = page.messages.len();
        for found in page.messages {
            if let Some(invitation) = found.metadata.get("invitation_id") {
                ids.insert(invitation.clone(), found.message_id);
            }
        }
        offset += read;
        if read == 0 || offset >= page.total_count || offset + PAGE > MAX_RESULTS {
            break;
        }
    }
    Ok(batch
        .messages
        .iter()
        .map(|m| ids.get(&m.invitation_id).cloned())
        .collect())
}
