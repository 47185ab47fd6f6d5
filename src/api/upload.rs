//! Receiving the uploaded file: a multipart part named `file` or a raw
//! `text/plain` body, read as a stream and refused (413) as soon as it
//! passes the size limit.

use super::ApiError;
use actix_multipart::Multipart;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use futures_util::{Stream, StreamExt};

/// Room for multipart boundaries and part headers around the file itself.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// The bytes of an uploaded file and the name it was sent with.
#[derive(Debug)]
pub struct ReceivedFile {
    /// The client's file name, if it sent one.
    pub filename: Option<String>,
    /// The file's content, at most the configured limit.
    pub bytes: Vec<u8>,
    /// The other (text) fields of a multipart form, by name.
    pub fields: std::collections::BTreeMap<String, String>,
}

/// Reads the upload of `POST /imports`.
pub async fn receive(
    req: &HttpRequest,
    payload: web::Payload,
    max: u64,
) -> Result<ReceivedFile, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let file = match mime.as_str() {
        "multipart/form-data" => {
            refuse_if_larger(declared, max.saturating_add(MULTIPART_OVERHEAD), max)?;
            let hint = declared.unwrap_or(0).min(max);
            read_multipart(Multipart::new(req.headers(), payload), max, hint).await?
        }
        "text/plain" | "application/octet-stream" => {
            refuse_if_larger(declared, max, max)?;
            ReceivedFile {
                filename: None,
                bytes: read_limited(payload, max, declared.unwrap_or(0).min(max)).await?,
                fields: Default::default(),
            }
        }
        other => return Err(unsupported(other)),
    };
    if file.bytes.is_empty() {
        return Err(ApiError::bad_request(
            "empty-file",
            "Empty file",
            "The uploaded file is empty; send a file with one email address per line.",
        ));
    }
    Ok(file)
}

async fn read_multipart(
    mut multipart: Multipart,
    max: u64,
    hint: u64,
) -> Result<ReceivedFile, ApiError> {
    let mut file: Option<(Option<String>, Vec<u8>)> = None;
    let mut fields = std::collections::BTreeMap::new();
    while let Some(field) = multipart.next().await {
        let field = field.map_err(bad_multipart)?;
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            // Options travel as small text fields beside the file.
            let value = read_limited(field, MULTIPART_OVERHEAD, 0).await?;
            let value = String::from_utf8(value).map_err(|_| {
                ApiError::bad_request(
                    "invalid-field",
                    "Invalid form field",
                    format!("The form field `{name}` is not UTF-8 text."),
                )
            })?;
            fields.insert(name, value);
            continue;
        }
        if file.is_some() {
            return Err(ApiError::bad_request(
                "too-many-files",
                "More than one file",
                "Send exactly one multipart part named `file` per import.",
            ));
        }
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_owned);
        let bytes = read_limited(field, max, hint).await?;
        file = Some((filename, bytes));
    }
    let (filename, bytes) = file.ok_or_else(|| {
        ApiError::bad_request(
            "missing-file",
            "No file part",
            "The form has no part named `file`; upload with `curl -F file=@team.txt`.",
        )
    })?;
    Ok(ReceivedFile {
        filename,
        bytes,
        fields,
    })
}

/// Collects a byte stream, failing with 413 as soon as it passes `max`.
/// `hint` (the declared length, when known) sizes the buffer once, so a
/// large upload is not copied at every doubling.
async fn read_limited<S, B, E>(mut stream: S, max: u64, hint: u64) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let mut bytes = Vec::with_capacity(hint as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("upload-interrupted", "Upload interrupted", e.to_string())
        })?;
        if (bytes.len() + chunk.as_ref().len()) as u64 > max {
            return Err(too_large(max));
        }
        bytes.extend_from_slice(chunk.as_ref());
    }
    Ok(bytes)
}

fn refuse_if_larger(declared: Option<u64>, bound: u64, max: u64) -> Result<(), ApiError> {
    match declared {
        Some(length) if length > bound => Err(too_large(max)),
        _ => Ok(()),
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file-too-large",
        "File too large",
        format!("The file is larger than the limit of {max} bytes (MAX_UPLOAD_BYTES); split it into smaller files."),
    )
}

fn bad_multipart(error: actix_multipart::MultipartError) -> ApiError {
    ApiError::bad_request(
        "invalid-multipart",
        "Invalid multipart body",
        error.to_string(),
    )
}

fn unsupported(mime: &str) -> ApiError {
    ApiError::problem(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        format!(
            "Content-Type {mime} is not accepted: send multipart/form-data with a part named `file` \
             (`curl -F file=@team.txt`) or a text/plain body (`--data-binary @team.txt -H 'Content-Type: text/plain'`)."
        ),
    )
}
