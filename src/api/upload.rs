//! Receiving the uploaded file: a multipart part named `file` or a raw
//! `text/plain` body, read as a stream and refused (413) as soon as it
//! passes the size limit. The whole body is bounded, not only the file:
//! multipart framing, part headers (file names) and the few small fields
//! beside the file count too.

use super::ApiError;
use super::ProblemType;
use actix_multipart::Multipart;
use actix_web::error::PayloadError;
use actix_web::http::header::{Charset, ContentDisposition, CONTENT_TYPE};
use actix_web::{web, HttpRequest};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Room for multipart framing and the small fields beside the file: the
/// whole request body is at most `MAX_UPLOAD_BYTES` plus this.
pub const FORM_OVERHEAD: u64 = 64 * 1024;
/// The most form fields beside the file.
pub const MAX_FIELDS: usize = 8;
/// The largest form field beside the file, in bytes.
pub const MAX_FIELD_BYTES: usize = 8 * 1024;
/// The longest file name, in characters.
pub const MAX_FILENAME_CHARS: usize = 255;

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
    let declared = super::limits::declared_length(req);
    let file = match mime.as_str() {
        "multipart/form-data" => {
            let bound = max.saturating_add(FORM_OVERHEAD);
            refuse_if_larger(declared, bound, max)?;
            // The declared length passed; a chunked or lying body is cut here.
            let overflowed = Rc::new(Cell::new(false));
            let capped = Capped {
                inner: payload,
                left: bound,
                overflowed: overflowed.clone(),
            };
            read_multipart(Multipart::new(req.headers(), capped), max)
                .await
                .map_err(|error| match overflowed.get() {
                    true => super::limits::body_too_large(
                        bound as usize,
                        "MAX_UPLOAD_BYTES, plus 64 KiB for the form's framing and fields",
                    ),
                    false => error,
                })?
        }
        "text/plain" | "application/octet-stream" => {
            refuse_if_larger(declared, max, max)?;
            ReceivedFile {
                filename: None,
                bytes: read_limited(payload, max, || too_large(max)).await?,
                fields: Default::default(),
            }
        }
        other => return Err(unsupported(other)),
    };
    if file.bytes.is_empty() {
        return Err(ApiError::problem(
            ProblemType::EmptyFile,
            "The uploaded file is empty; send a file with one email address per line.",
        ));
    }
    Ok(file)
}

async fn read_multipart(mut multipart: Multipart, max: u64) -> Result<ReceivedFile, ApiError> {
    let mut file: Option<(Option<String>, Vec<u8>)> = None;
    let mut fields = std::collections::BTreeMap::new();
    while let Some(field) = multipart.next().await {
        let field = field.map_err(bad_multipart)?;
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            // Options travel as small text fields beside the file.
            if fields.len() >= MAX_FIELDS {
                return Err(ApiError::problem(
                    ProblemType::TooManyFields,
                    format!("Send the file and at most {MAX_FIELDS} other fields."),
                ));
            }
            let value =
                read_limited(field, MAX_FIELD_BYTES as u64, || field_too_large(&name)).await?;
            let value = String::from_utf8(value).map_err(|_| {
                ApiError::problem(
                    ProblemType::InvalidField,
                    format!("The form field `{name}` is not UTF-8 text."),
                )
            })?;
            fields.insert(name, value);
            continue;
        }
        if file.is_some() {
            return Err(ApiError::problem(
                ProblemType::TooManyFiles,
                "Send exactly one multipart part named `file` per import.",
            ));
        }
        let filename = field
            .content_disposition()
            .and_then(sent_filename)
            .map(|name| checked_filename(&name))
            .transpose()?;
        let bytes = read_limited(field, max, || too_large(max)).await?;
        file = Some((filename, bytes));
    }
    let (filename, bytes) = file.ok_or_else(|| {
        ApiError::problem(
            ProblemType::MissingFile,
            "The form has no part named `file`; upload with `curl -F file=@team.txt`.",
        )
    })?;
    Ok(ReceivedFile {
        filename,
        bytes,
        fields,
    })
}

/// The file name a part was sent with: `filename*` (RFC 6266, RFC 5987)
/// when present, as it is the one that can carry any character, else
/// `filename`.
fn sent_filename(disposition: &ContentDisposition) -> Option<String> {
    if let Some(ext) = disposition.get_filename_ext() {
        let decoded = match ext.charset {
            Charset::Iso_8859_1 => Some(ext.value.iter().map(|&b| char::from(b)).collect()),
            _ => String::from_utf8(ext.value.clone()).ok(),
        };
        if decoded.is_some() {
            return decoded;
        }
    }
    disposition.get_filename().map(str::to_owned)
}

/// A file name as stored: at most [`MAX_FILENAME_CHARS`] characters and
/// no control characters (400 otherwise).
pub fn checked_filename(name: &str) -> Result<String, ApiError> {
    let refuse = |why: String| ApiError::problem(ProblemType::InvalidFilename, why);
    if name.chars().count() > MAX_FILENAME_CHARS {
        return Err(refuse(format!(
            "The file name is longer than {MAX_FILENAME_CHARS} characters; rename the file."
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse("The file name holds a control character.".into()));
    }
    Ok(name.to_owned())
}

/// Collects a byte stream, failing with `too_large` as soon as it passes
/// `max`. Memory grows with what arrives, never with what was declared.
async fn read_limited<S, B, E>(
    mut stream: S,
    max: u64,
    too_large: impl Fn() -> ApiError,
) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(super::limits::interrupted)?;
        if (bytes.len() + chunk.as_ref().len()) as u64 > max {
            return Err(too_large());
        }
        bytes.extend_from_slice(chunk.as_ref());
    }
    Ok(bytes)
}

/// The request body, failing once more than `left` bytes arrived (and
/// saying so in `overflowed`), whatever the multipart parser makes of it:
/// framing, part headers and every field count.
struct Capped<S> {
    inner: S,
    left: u64,
    overflowed: Rc<Cell<bool>>,
}

impl<S> Stream for Capped<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => match self.left.checked_sub(chunk.len() as u64) {
                Some(left) => {
                    self.left = left;
                    Poll::Ready(Some(Ok(chunk)))
                }
                None => {
                    self.overflowed.set(true);
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                }
            },
            other => other,
        }
    }
}

fn field_too_large(name: &str) -> ApiError {
    ApiError::problem(
        ProblemType::FieldTooLarge,
        format!("The form field `{name}` is longer than {MAX_FIELD_BYTES} bytes."),
    )
}

fn refuse_if_larger(declared: Option<u64>, bound: u64, max: u64) -> Result<(), ApiError> {
    match declared {
        Some(length) if length > bound => Err(too_large(max)),
        _ => Ok(()),
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::problem(ProblemType::FileTooLarge,
        format!("The file is larger than the limit of {max} bytes (MAX_UPLOAD_BYTES); split it into smaller files."),
    )
}

fn bad_multipart(error: actix_multipart::MultipartError) -> ApiError {
    // The parser holds at most 64 KiB at once: a part header (a file name)
    // longer than that is a body too large, not a malformed one.
    if let actix_multipart::MultipartError::Payload(PayloadError::Overflow) = error {
        return super::limits::body_too_large(
            FORM_OVERHEAD as usize,
            "a part's headers, such as its file name, must fit in 64 KiB",
        );
    }
    let detail = match std::error::Error::source(&error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    };
    ApiError::problem(ProblemType::InvalidMultipart, detail)
}

fn unsupported(mime: &str) -> ApiError {
    ApiError::problem(ProblemType::UnsupportedMediaType,
        format!(
            "Content-Type {mime} is not accepted: send multipart/form-data with a part named `file` \
             (`curl -F file=@team.txt`) or a text/plain body (`--data-binary @team.txt -H 'Content-Type: text/plain'`)."
        ),
    )
}
