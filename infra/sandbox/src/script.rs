//! What every emulator shares: scripted failures, the log of what arrived, the `/_sandbox/...` control
//! endpoints, and the layer that ties them to an emulator's own routes.
//!
//! Every request to an emulator's API (any path outside `/_sandbox/`) goes through [`exchange`], in this
//! order:
//! 1. the emulator's [`Emulator::gate`]: the checks the real API makes before anything else (unknown path,
//!    credentials, rate limit). A refusal is answered at once and logged as [`Outcome::Refused`]; a
//!    refused request does not use up a scripted failure.
//! 2. the next scripted [`Failure`], if any: its status, headers and body replace the emulator's handling
//!    entirely (after `delayMs`), logged as [`Outcome::Scripted`]. A scripted answer changes no state.
//! 3. the emulator's own handler, logged as [`Outcome::Handled`].
//!
//! Headers the gate asks for (Lofty's `X-RateLimit-*`) are added to scripted and handled answers alike.
//!
//! Control endpoints, on every emulator:
//! - `POST /_sandbox/fail` with a [`Failure`]: `{"status": 503, "times": 2, "delayMs": 0, "retryAfter":
//!   "1", "body": {...}}` (only `status` is required; `times` defaults to 1) → 204.
//! - `GET /_sandbox/received`: what arrived, as JSON (each emulator chooses the summary).
//! - `POST /_sandbox/reset`: forget the script, the log and everything the emulator stored → 204.
//!
//! Every log an emulator keeps (the exchanges here, and what each emulator stores per request: leads,
//! quotes, notes, callbacks and webhook deliveries it sent) is a [`Ring`]: its newest
//! [`DEFAULT_LOG_CAPACITY`] entries unless the emulator is built `with_log_capacity(n)`, the oldest dropped
//! past it, so that a long run does not grow without bound.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The largest request or response body an emulator reads.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// How many entries each log of an emulator keeps unless it is told otherwise.
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;

/// A log that keeps its newest `capacity` entries (at least one): past it, the oldest entry goes.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    entries: VecDeque<T>,
    capacity: usize,
    dropped: u64,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring::new(DEFAULT_LOG_CAPACITY)
    }
}

impl<T> Ring<T> {
    /// An empty ring keeping at most `capacity` entries (0 is taken as 1).
    pub fn new(capacity: usize) -> Self {
        Ring {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Add `entry` as the newest; the oldest one, when that makes one too many.
    pub fn push(&mut self, entry: T) -> Option<T> {
        let oldest = if self.entries.len() >= self.capacity {
            self.dropped += 1;
            self.entries.pop_front()
        } else {
            None
        };
        self.entries.push_back(entry);
        oldest
    }

    /// Keep at most `capacity` entries (0 is taken as 1) from now on; the oldest past it go at once, and
    /// are returned oldest first.
    pub fn set_capacity(&mut self, capacity: usize) -> Vec<T> {
        self.capacity = capacity.max(1);
        let excess = self.entries.len().saturating_sub(self.capacity);
        self.dropped += excess as u64;
        self.entries.drain(..excess).collect()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many entries were dropped to make room since the ring was made (or cleared).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.entries.iter()
    }

    /// Oldest first.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut T> + ExactSizeIterator {
        self.entries.iter_mut()
    }

    /// Forget every entry (the capacity stays).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.dropped = 0;
    }

    /// The entries, oldest first.
    pub fn to_vec(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.entries.iter().cloned().collect()
    }
}

/// A scripted answer for the next `times` requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub status: u16,
    #[serde(default = "one")]
    pub times: u32,
    #[serde(default)]
    pub delay_ms: u64,
    /// Sent as the `Retry-After` header when given.
    #[serde(default)]
    pub retry_after: Option<String>,
    /// The body; `{"message": "sandbox: scripted failure"}` when not given.
    #[serde(default)]
    pub body: Option<Value>,
}

fn one() -> u32 {
    1
}

impl Failure {
    /// `times` answers with `status` and the default body, at once.
    pub fn status(status: u16, times: u32) -> Failure {
        Failure {
            status,
            times,
            delay_ms: 0,
            retry_after: None,
            body: None,
        }
    }

    /// Wait `delay_ms`, then answer as scripted (an invalid status becomes 500).
    pub async fn respond(self) -> Response {
        if self.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self
            .body
            .unwrap_or_else(|| json!({"message": "sandbox: scripted failure"}));
        let mut response = (status, Json(body)).into_response();
        if let Some(after) = self
            .retry_after
            .and_then(|a| HeaderValue::from_str(&a).ok())
        {
            response.headers_mut().insert("retry-after", after);
        }
        response
    }
}

/// How a logged request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// By the gate (unknown path, bad credentials, rate limit).
    Refused,
    /// By a scripted [`Failure`].
    Scripted,
    /// By the emulator's handler (which may itself have refused the body).
    Handled,
}

/// One request to an emulator's API and its answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-cased names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON, or `null` when it is empty or not JSON.
    pub body: Value,
    /// The body as text (lossy UTF-8).
    pub raw: String,
    pub status: u16,
    /// The answer's body as JSON, or as a JSON string when it is not JSON, or `null` when empty.
    pub response: Value,
    pub outcome: Outcome,
}

impl Exchange {
    /// A request header (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Default)]
struct CoreInner {
    script: VecDeque<Failure>,
    log: Ring<Exchange>,
}

/// The script and the log of one emulator, shared by its clones. The log keeps the newest
/// [`DEFAULT_LOG_CAPACITY`] exchanges unless told otherwise ([`Core::set_log_capacity`]).
#[derive(Clone, Default)]
pub struct Core {
    inner: Arc<Mutex<CoreInner>>,
}

impl Core {
    /// Keep the newest `capacity` exchanges (at least one).
    pub fn set_log_capacity(&self, capacity: usize) {
        lock(&self.inner).log.set_capacity(capacity);
    }

    /// How many exchanges the log keeps at most.
    pub fn log_capacity(&self) -> usize {
        lock(&self.inner).log.capacity()
    }

    /// Answer the next requests with this failure (after those already scripted).
    pub fn push(&self, failure: Failure) {
        if failure.times > 0 {
            lock(&self.inner).script.push_back(failure);
        }
    }

    /// The scripted answer for this request, if any (uses up one of its `times`).
    pub fn take(&self) -> Option<Failure> {
        let mut inner = lock(&self.inner);
        let failure = inner.script.front_mut()?;
        failure.times = failure.times.saturating_sub(1);
        let current = failure.clone();
        if failure.times == 0 {
            inner.script.pop_front();
        }
        Some(current)
    }

    /// Scripted answers not yet used.
    pub fn pending(&self) -> Vec<Failure> {
        lock(&self.inner).script.iter().cloned().collect()
    }

    pub fn record(&self, exchange: Exchange) {
        lock(&self.inner).log.push(exchange);
    }

    /// Every request kept (the newest, up to the log's capacity), in the order the answers were made.
    pub fn received(&self) -> Vec<Exchange> {
        lock(&self.inner).log.to_vec()
    }

    /// Forget the script and the log.
    pub fn reset(&self) {
        let mut inner = lock(&self.inner);
        inner.script.clear();
        inner.log.clear();
    }
}

/// Lock, carrying on after a panic elsewhere (a sandbox keeps answering).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What [`Emulator::gate`] decided.
#[derive(Debug)]
pub enum Gate {
    /// Go on; add these headers to whatever answer follows.
    Pass(HeaderMap),
    /// Answer this, and go no further.
    Refuse(Response),
}

impl Gate {
    pub fn pass() -> Gate {
        Gate::Pass(HeaderMap::new())
    }
}

/// An emulator: its state is cloneable and shared with whoever started it.
pub trait Emulator: Clone + Send + Sync + 'static {
    fn core(&self) -> &Core;

    /// The checks made before scripted failures and handling.
    fn gate(&self, _request: &Parts, _body: &Bytes) -> Gate {
        Gate::pass()
    }

    /// `GET /_sandbox/received`.
    fn received_json(&self) -> Value {
        json!({ "received": self.core().received() })
    }

    /// `POST /_sandbox/reset`: emulators with more state forget it too.
    fn reset(&self) {
        self.core().reset();
    }
}

/// The control endpoints every emulator has.
pub fn control<S: Emulator>() -> Router<S> {
    Router::new()
        .route("/_sandbox/fail", post(fail::<S>).get(pending::<S>))
        .route("/_sandbox/received", get(received::<S>))
        .route("/_sandbox/reset", post(reset::<S>))
}

/// Add the control endpoints, the 404 fallback and the [`exchange`] layer to an emulator's routes.
pub fn finish<S: Emulator>(routes: Router<S>, emulator: &S) -> Router {
    routes
        .merge(control::<S>())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            emulator.clone(),
            exchange::<S>,
        ))
        .with_state(emulator.clone())
}

async fn fail<S: Emulator>(State(emulator): State<S>, Json(failure): Json<Failure>) -> StatusCode {
    emulator.core().push(failure);
    StatusCode::NO_CONTENT
}

async fn pending<S: Emulator>(State(emulator): State<S>) -> Json<Value> {
    Json(json!({ "pending": emulator.core().pending() }))
}

async fn received<S: Emulator>(State(emulator): State<S>) -> Json<Value> {
    Json(emulator.received_json())
}

async fn reset<S: Emulator>(State(emulator): State<S>) -> StatusCode {
    emulator.reset();
    StatusCode::NO_CONTENT
}

/// 404 `{"message": "Not Found"}`.
pub async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

/// `status` with `{"message": text}`.
pub fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// The layer: gate, script, handler; every request outside `/_sandbox/` is logged with its answer.
pub async fn exchange<S: Emulator>(
    State(emulator): State<S>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/_sandbox/") {
        return next.run(request).await;
    }
    let at = Utc::now();
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let mut exchange = Exchange {
        at,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
        response: Value::Null,
        outcome: Outcome::Handled,
    };
    let response = match emulator.gate(&parts, &body) {
        Gate::Refuse(response) => {
            exchange.outcome = Outcome::Refused;
            response
        }
        Gate::Pass(extra) => {
            let mut response = match emulator.core().take() {
                Some(failure) => {
                    exchange.outcome = Outcome::Scripted;
                    failure.respond().await
                }
                None => next.run(Request::from_parts(parts, Body::from(body))).await,
            };
            for (name, value) in &extra {
                response.headers_mut().insert(name, value.clone());
            }
            response
        }
    };
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    exchange.status = parts.status.as_u16();
    exchange.response = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    emulator.core().record(exchange);
    Response::from_parts(parts, Body::from(body))
}

/// The `Authorization: Basic` credentials (user, password), if well formed.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The `Authorization: Bearer` token, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_used_up_after_its_times() {
        let core = Core::default();
        core.push(Failure::status(503, 2));
        core.push(Failure::status(429, 1));
        core.push(Failure::status(500, 0));
        let statuses: Vec<u16> = std::iter::from_fn(|| core.take().map(|f| f.status)).collect();
        assert_eq!(statuses, [503, 503, 429]);
    }

    #[test]
    fn a_ring_drops_its_oldest_entries_past_its_capacity() {
        let mut ring = Ring::new(3);
        let dropped: Vec<Option<u32>> = (1..=5).map(|n| ring.push(n)).collect();
        assert_eq!(dropped, [None, None, None, Some(1), Some(2)]);
        assert_eq!(ring.to_vec(), [3, 4, 5]);
        assert_eq!(ring.dropped(), 2);
        assert_eq!(ring.set_capacity(1), [3, 4]);
        assert_eq!(ring.to_vec(), [5]);
        ring.clear();
        assert!(ring.is_empty());
        assert_eq!(ring.capacity(), 1);
        assert_eq!(Ring::<u8>::new(0).capacity(), 1);
        assert_eq!(Ring::<u8>::default().capacity(), DEFAULT_LOG_CAPACITY);
    }

    fn exchange(path: &str) -> Exchange {
        Exchange {
            at: Utc::now(),
            method: "POST".into(),
            path: path.into(),
            query: None,
            headers: BTreeMap::new(),
            body: Value::Null,
            raw: String::new(),
            status: 200,
            response: Value::Null,
            outcome: Outcome::Handled,
        }
    }

    #[test]
    fn the_exchange_log_keeps_the_newest_up_to_its_capacity() {
        let core = Core::default();
        assert_eq!(core.log_capacity(), DEFAULT_LOG_CAPACITY);
        core.set_log_capacity(2);
        for path in ["/a", "/b", "/c"] {
            core.record(exchange(path));
        }
        let paths: Vec<String> = core.received().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["/b", "/c"]);
        core.reset();
        assert!(core.received().is_empty());
        assert_eq!(core.log_capacity(), 2, "a reset keeps the capacity");
    }

    #[test]
    fn credentials_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static("Basic dXNlcjpwYTpzcw=="),
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(("user".into(), "pa:ss".into()))
        );
        assert_eq!(bearer_token(&headers), None);
        headers.insert("authorization", HeaderValue::from_static("bearer  tok "));
        assert_eq!(bearer_token(&headers), Some("tok"));
        assert_eq!(basic_credentials(&headers), None);
    }
}
