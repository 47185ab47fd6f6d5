//! The edge's own limits, applied to every request before a handler runs:
//! a deadline on the request body, a refusal of control characters in the
//! path and query, and a closed connection after any body a handler did
//! not read (so a client cannot hold a worker by trickling a body nobody
//! wants).

use super::ApiError;
use super::ProblemType;
use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use actix_web::{web, ResponseError};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// Each this many bytes received earns the body another second, so a
/// large upload over a slow but honest link is not cut, while a trickle is.
const GRACE_BYTES_PER_SECOND: u64 = 64 * 1024;

/// The edge limits the middleware applies.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// Time for the whole body (extended by [`GRACE_BYTES_PER_SECOND`]).
    pub body_timeout: Duration,
    /// Request bodies being received at once, over all workers. Past it a
    /// request with a body is answered 503 at once, so slow bodies can
    /// hold at most this many connections and the rest stay free for
    /// everything else (health checks included).
    pub bodies: Arc<Semaphore>,
}

/// The middleware: see the module documentation.
pub async fn guard(
    limits: EdgeLimits,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<Held<EitherBody<impl MessageBody>>>, actix_web::Error> {
    let with_body = has_body(&req);
    let permit = match with_body {
        true => limits.bodies.clone().try_acquire_owned().ok(),
        false => None,
    };
    let refusal = match check_characters(&req) {
        Err(error) => Some(error),
        Ok(()) if with_body && permit.is_none() => Some(busy("request bodies")),
        Ok(()) => None,
    };
    if let Some(error) = refusal {
        let (req, payload) = req.into_parts();
        let unread = with_body.then(|| Rc::new(RefCell::new(payload)));
        return Ok(refuse(req, &error, unread));
    }
    let body = with_body.then(|| {
        let state = Arc::new(AtomicU8::new(OPEN));
        let inner = Rc::new(RefCell::new(req.take_payload()));
        let payload = Deadline::new(inner.clone(), limits.body_timeout, state.clone(), permit);
        req.set_payload(Payload::Stream {
            payload: Box::pin(payload),
        });
        (state, inner)
    });
    let mut response = next.call(req).await?;
    let Some((state, unread)) = body else {
        return Ok(response.map_body(|_, body| Held::new(EitherBody::left(body), None)));
    };
    match state.load(Ordering::Acquire) {
        TIMED_OUT => {
            let seconds = limits.body_timeout.as_secs();
            let error = ApiError::problem(ProblemType::BodyTimeout,
                format!(
                    "The request body did not arrive within {seconds} s (REQUEST_BODY_TIMEOUT_SECS); \
                     send it again over a faster connection."
                ),
            );
            let (req, _) = response.into_parts();
            Ok(refuse(req, &error, Some(unread)))
        }
        FINISHED => Ok(response.map_body(|_, body| Held::new(EitherBody::left(body), None))),
        _ => {
            // The handler answered without reading the whole body (a 401,
            // a 413 on the declared length...).
            response
                .response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            Ok(response.map_body(|_, body| Held::new(EitherBody::left(body), Some(unread))))
        }
    }
}

/// Answers `error` instead of calling the handler (or instead of its
/// answer), closing the connection after it.
fn refuse<B>(
    req: actix_web::HttpRequest,
    error: &ApiError,
    unread: Option<Rc<RefCell<Payload>>>,
) -> ServiceResponse<Held<EitherBody<B>>> {
    let mut response = error.error_response();
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    ServiceResponse::new(req, response)
        .map_into_right_body()
        .map_body(|_, body| Held::new(body, unread))
}

/// 503 for a request turned away because too many of its kind are being
/// received at once (not logged as a failure: it is the limit working).
fn busy(what: &str) -> ApiError {
    ApiError::problem(
        ProblemType::Unavailable,
        format!("Too many {what} are being received at once; try again after Retry-After seconds."),
    )
}

pin_project_lite::pin_project! {
    /// An answer's body that holds what is left of the request body until
    /// it is sent. actix drains a chunked request body its handler dropped,
    /// at whatever pace the client sends it; while the body is still held
    /// when the answer ends, it closes the connection instead.
    pub struct Held<B> {
        #[pin]
        body: B,
        unread: Option<Rc<RefCell<Payload>>>,
    }
}

impl<B> Held<B> {
    fn new(body: B, unread: Option<Rc<RefCell<Payload>>>) -> Held<B> {
        Held { body, unread }
    }
}

impl<B: MessageBody> MessageBody for Held<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.project().body.poll_next(cx)
    }
}

fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    declared.is_some_and(|n| n > 0) || headers.contains_key(TRANSFER_ENCODING)
}

/// Refuses control characters (NUL included) anywhere in the decoded path,
/// and any but tab, CR and LF in the decoded query: no such value is valid
/// anywhere in this API, and some databases cannot even store them.
fn check_characters(req: &ServiceRequest) -> Result<(), ApiError> {
    let path = percent_encoding::percent_decode_str(req.uri().path());
    if path.into_iter().any(is_control) {
        return Err(bad_characters("path"));
    }
    let query = percent_encoding::percent_decode_str(req.query_string());
    if query
        .into_iter()
        .any(|b| is_control(b) && !matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return Err(bad_characters("query"));
    }
    Ok(())
}

/// Whether `b` is an ASCII control character (C0 or DEL).
pub fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn bad_characters(place: &str) -> ApiError {
    ApiError::problem(
        ProblemType::InvalidCharacters,
        format!("The request {place} holds a control character (such as NUL); remove it."),
    )
}

const OPEN: u8 = 0;
const FINISHED: u8 = 1;
const TIMED_OUT: u8 = 2;

/// A request body that fails with a timeout once its deadline passes, and
/// records whether it was read to the end.
struct Deadline {
    inner: Rc<RefCell<Payload>>,
    /// This body's place among those received at once; given back when
    /// the body ends, fails or is dropped.
    permit: Option<OwnedSemaphorePermit>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    received: u64,
    state: Arc<AtomicU8>,
}

impl Deadline {
    fn new(
        inner: Rc<RefCell<Payload>>,
        timeout: Duration,
        state: Arc<AtomicU8>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Deadline {
        Deadline {
            inner,
            permit,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            received: 0,
            state,
        }
    }

    /// Moves the deadline on by the grace earned since the last chunk.
    fn extend(&mut self, chunk: usize) {
        let before = self.received / GRACE_BYTES_PER_SECOND;
        self.received += chunk as u64;
        let earned = self.received / GRACE_BYTES_PER_SECOND - before;
        if earned > 0 {
            let deadline = self.sleep.deadline() + Duration::from_secs(earned);
            self.sleep.as_mut().reset(deadline);
        }
    }
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.state.load(Ordering::Relaxed) {
            TIMED_OUT => return Poll::Ready(None),
            FINISHED => return Poll::Ready(None),
            _ => {}
        }
        let polled = this.inner.borrow_mut().poll_next_unpin(cx);
        match polled {
            Poll::Ready(Some(Ok(chunk))) => {
                this.extend(chunk.len());
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                this.permit = None;
                this.state.store(FINISHED, Ordering::Release);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.permit = None;
                    this.state.store(TIMED_OUT, Ordering::Release);
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Reads a whole body of at most `max` bytes, after the caller has checked
/// whatever it can check without it (the API key, a webhook's settings).
/// Past `max` it fails with `too_large`, without reading further.
pub async fn read_body(
    payload: web::Payload,
    declared: Option<u64>,
    max: usize,
    too_large: impl Fn() -> ApiError,
) -> Result<Bytes, ApiError> {
    read_body_within(payload, declared, max, None, too_large).await
}

/// Like [`read_body`], also taking each byte from `budget`, a count of
/// bytes shared by every request of a kind (the unauthenticated webhooks):
/// when it runs out the request is answered 503 instead of buffering more.
pub async fn read_body_within(
    mut payload: web::Payload,
    declared: Option<u64>,
    max: usize,
    budget: Option<&Semaphore>,
    too_large: impl Fn() -> ApiError,
) -> Result<Bytes, ApiError> {
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Gathered::default();
    let mut held: Option<SemaphorePermit<'_>> = None;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(interrupted)?;
        if body.len + chunk.len() > max {
            return Err(too_large());
        }
        if let Some(budget) = budget {
            let permit = u32::try_from(chunk.len())
                .ok()
                .and_then(|n| budget.try_acquire_many(n).ok())
                .ok_or_else(|| busy("webhook bodies"))?;
            match &mut held {
                Some(held) => held.merge(permit),
                None => held = Some(permit),
            }
        }
        body.push(chunk);
    }
    Ok(body.finish())
}

/// Chunks below this size are copied together; larger ones are kept as
/// they came.
const SMALL_CHUNK: usize = 4096;

/// A body gathered chunk by chunk. Copying every chunk into one growing
/// buffer would hold, while the body is still coming, up to twice its size
/// (the buffer doubles) besides the chunks themselves; keeping the chunks
/// as they came holds about the body's size, and the one copy is made when
/// it is whole. Small chunks (a trickle) are copied together, so a body of
/// one-byte chunks does not keep a handle per byte.
#[derive(Default)]
struct Gathered {
    parts: Vec<Bytes>,
    tail: bytes::BytesMut,
    len: usize,
}

impl Gathered {
    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        if chunk.len() < SMALL_CHUNK {
            self.tail.extend_from_slice(&chunk);
            return;
        }
        if !self.tail.is_empty() {
            self.parts.push(self.tail.split().freeze());
        }
        self.parts.push(chunk);
    }

    fn finish(mut self) -> Bytes {
        if !self.tail.is_empty() {
            self.parts.push(self.tail.split().freeze());
        }
        if self.parts.len() <= 1 {
            return self.parts.pop().unwrap_or_default();
        }
        let mut whole = bytes::BytesMut::with_capacity(self.len);
        for part in &self.parts {
            whole.extend_from_slice(part);
        }
        whole.freeze()
    }
}

/// Reads a JSON object body of at most `max` bytes into `T`, after the
/// caller has checked the key: 415 unless it is declared JSON, 413 past
/// `max` (`setting` names the limit), 400 `invalid-json` for anything but
/// an object `T` reads (`shape` says what is expected).
pub async fn read_json<T: serde::de::DeserializeOwned>(
    req: &actix_web::HttpRequest,
    payload: web::Payload,
    max: usize,
    setting: &str,
    shape: &str,
) -> Result<T, ApiError> {
    require_json(req)?;
    let body = read_body(payload, declared_length(req), max, || {
        body_too_large(max, setting)
    })
    .await?;
    let invalid = |detail: String| ApiError::problem(ProblemType::InvalidJson, detail);
    // serde takes a struct from an array too; only an object is meant.
    let value =
        serde_json::from_slice::<serde_json::Value>(&body).map_err(|e| invalid(e.to_string()))?;
    if !value.is_object() {
        return Err(invalid(format!("Send a JSON object {shape}.")));
    }
    serde_json::from_value::<T>(value).map_err(|e| invalid(e.to_string()))
}

/// Refuses a body declared as anything but JSON (415).
pub fn require_json(req: &actix_web::HttpRequest) -> Result<(), ApiError> {
    let mime = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match mime.as_deref() {
        Some("application/json") => Ok(()),
        Some(m) if m.starts_with("application/") && m.ends_with("+json") => Ok(()),
        other => Err(ApiError::problem(
            ProblemType::UnsupportedMediaType,
            format!(
                "Send the body as application/json, not {}.",
                other.unwrap_or("a body without a Content-Type")
            ),
        )),
    }
}

/// The declared `Content-Length` of a request, when it has one.
pub fn declared_length(req: &actix_web::HttpRequest) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// The answer to a body that broke off (or was cut by the deadline, which
/// the middleware then answers 408 instead).
pub fn interrupted(error: impl std::fmt::Display) -> ApiError {
    ApiError::problem(ProblemType::UploadInterrupted, error.to_string())
}

/// 413 for a body over `max` bytes; `setting` names the limit.
pub fn body_too_large(max: usize, setting: &str) -> ApiError {
    ApiError::problem(
        ProblemType::BodyTooLarge,
        format!("The request body is larger than the limit of {max} bytes ({setting})."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_every_c0_byte_and_del() {
        assert!(is_control(0));
        assert!(is_control(b'\n'));
        assert!(is_control(0x7f));
        assert!(!is_control(b' '));
        assert!(!is_control(b'a'));
        assert!(!is_control(0xc3));
    }

    #[test]
    fn a_gathered_body_keeps_every_byte_in_order_and_large_chunks_uncopied() {
        let large = Bytes::from(vec![b'L'; SMALL_CHUNK]);
        let mut body = Gathered::default();
        for chunk in [&b"ab"[..], b"c", &large, b"d", &large, b"ef"] {
            let chunk = match chunk.len() >= SMALL_CHUNK {
                true => large.clone(),
                false => Bytes::copy_from_slice(chunk),
            };
            body.push(chunk);
        }
        // Trickled bytes are copied together between the large chunks.
        assert_eq!(body.parts.len(), 4);
        assert_eq!(body.parts[1].as_ptr(), large.as_ptr());
        let whole = body.finish();
        let mut expected = b"abc".to_vec();
        expected.extend_from_slice(&large);
        expected.push(b'd');
        expected.extend_from_slice(&large);
        expected.extend_from_slice(b"ef");
        assert_eq!(&whole[..], &expected[..]);

        let mut one = Gathered::default();
        one.push(large.clone());
        assert_eq!(
            one.finish().as_ptr(),
            large.as_ptr(),
            "one chunk is not copied"
        );
        assert!(Gathered::default().finish().is_empty());
    }
}
