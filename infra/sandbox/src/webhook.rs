//! A webhook buyer: takes `POST /hook` signed per Standard Webhooks, answers 200 `{"id": "wh-<n>"}`; as the
//! standard asks of consumers, it dedupes on `webhook-id` (a delivery sent again gets its first answer).
//!
//! A bad or missing signature gets 401 `{"message": "invalid signature"}` (before any scripted answer); a
//! body that is not JSON gets 400. Scripted answers (`fail_next`, or `POST /_sandbox/fail {"status": 503,
//! "times": 2, "delayMs": 0, "retryAfter": "1"}`) let tests and demos see retries. `GET /_sandbox/received`
//! lists what arrived (webhook id, lead id, status). Any other path is 404.
//!
//! What it keeps is bounded (a long run does not grow it without end): the log of requests is a
//! [`Ring`](crate::Ring) of the newest [`DEFAULT_LOG_CAPACITY`] (or [`WebhookBuyer::with_log_capacity`]),
//! and the `webhook-id`s it dedupes on are the newest as many: a delivery sent again after that many
//! others is taken again.
//!
//! The signature is checked with this module's own few lines of Standard Webhooks (below, [`SigningKey`]),
//! not with the hub's signer: a buyer written from the standard, so that the two cannot agree by
//! construction.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;

pub use crate::script::Failure;
use crate::script::{self, lock, Core, Emulator, Gate, Outcome, DEFAULT_LOG_CAPACITY};
use crate::Running;

/// The buyer's endpoint.
pub const PATH: &str = "/hook";

/// Standard Webhooks' headers.
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far a `webhook-timestamp` may be from now (the standard's 5 minutes).
const TOLERANCE_SECONDS: i64 = 5 * 60;

/// A Standard Webhooks signing key: the bytes of a `whsec_<base64>` secret.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// `whsec_` and the base64 of the key (the `whsec_` prefix is optional, as the standard's libraries take it).
    pub fn from_whsec(secret: &str) -> Result<Self, String> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "the secret is not base64 after `whsec_`".to_owned())?;
        if key.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(SigningKey(key))
    }

    pub fn from_bytes(key: &[u8]) -> Self {
        SigningKey(key.to_vec())
    }

    /// Whether one of the `v1,<base64>` signatures is HMAC-SHA256 of `id.timestamp.body` under this key,
    /// and the timestamp within five minutes of `now` (Unix seconds).
    pub fn verifies(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> bool {
        let Ok(at) = timestamp.parse::<i64>() else {
            return false;
        };
        if id.is_empty() || (now - at).abs() > TOLERANCE_SECONDS {
            return false;
        }
        signatures.split(' ').any(|signature| {
            let Some(encoded) = signature.strip_prefix("v1,") else {
                return false;
            };
            let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
                return false;
            };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
                return false;
            };
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            // Constant time.
            mac.verify_slice(&expected).is_ok()
        })
    }
}

/// One delivery the buyer received with a valid signature and a JSON body (scripted answers included).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    pub webhook_id: String,
    pub payload: Value,
    /// What the buyer answered.
    pub status: u16,
}

/// The answer given to each `webhook-id` taken, the newest `capacity` remembered.
struct Taken {
    answers: HashMap<String, String>,
    /// The ids in `answers`, oldest first.
    order: VecDeque<String>,
    capacity: usize,
    /// Deliveries taken since the start (or the last reset).
    count: usize,
}

impl Taken {
    fn new(capacity: usize) -> Self {
        Taken {
            answers: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            count: 0,
        }
    }

    /// The answer for `webhook_id`: the one it got before, if remembered, else a new one from `answer`.
    fn answer(&mut self, webhook_id: &str, answer: impl FnOnce() -> String) -> String {
        if let Some(given) = self.answers.get(webhook_id) {
            return given.clone();
        }
        let given = answer();
        self.answers.insert(webhook_id.to_owned(), given.clone());
        self.order.push_back(webhook_id.to_owned());
        self.count += 1;
        self.forget_past_capacity();
        given
    }

    fn forget_past_capacity(&mut self) {
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.answers.remove(&oldest);
            }
        }
    }
}

/// The buyer's state, shared with whoever started it.
#[derive(Clone)]
pub struct WebhookBuyer {
    secret: SigningKey,
    core: Core,
    rejected_signatures: Arc<AtomicU32>,
    accepted: Arc<AtomicU64>,
    taken: Arc<Mutex<Taken>>,
}

impl WebhookBuyer {
    pub fn new(secret: SigningKey) -> Self {
        WebhookBuyer {
            secret,
            core: Core::default(),
            rejected_signatures: Arc::default(),
            accepted: Arc::default(),
            taken: Arc::new(Mutex::new(Taken::new(DEFAULT_LOG_CAPACITY))),
        }
    }

    /// Keep the newest `capacity` requests in the log, and remember as many `webhook-id`s (at least one).
    pub fn with_log_capacity(self, capacity: usize) -> Self {
        self.core.set_log_capacity(capacity);
        {
            let mut taken = lock(&self.taken);
            taken.capacity = capacity.max(1);
            taken.forget_past_capacity();
        }
        self
    }

    /// Serve on `addr`; the buyer's endpoint is `/hook`.
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<Running> {
        Running::serve(addr, self.router()).await
    }

    pub fn router(&self) -> Router {
        script::finish(Router::new().route(PATH, post(hook)), self)
    }

    /// Answer the next deliveries with this failure.
    pub fn fail_next(&self, failure: Failure) {
        self.core.push(failure);
    }

    /// Every validly signed delivery with a JSON body, in arrival order (of the requests the log keeps).
    pub fn received(&self) -> Vec<Received> {
        self.core
            .received()
            .into_iter()
            .filter(|e| e.path == PATH && e.outcome != Outcome::Refused && !e.body.is_null())
            .map(|e| Received {
                webhook_id: e.header(HEADER_ID).unwrap_or_default().to_owned(),
                payload: e.body,
                status: e.status,
            })
            .collect()
    }

    /// Deliveries of one lead.
    pub fn received_for(&self, lead_id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.payload["data"]["leadId"] == lead_id)
            .collect()
    }

    /// How many distinct deliveries (by `webhook-id`) the buyer took.
    pub fn taken(&self) -> usize {
        lock(&self.taken).count
    }

    /// Requests refused for a bad signature.
    pub fn rejected_signatures(&self) -> u32 {
        self.rejected_signatures.load(Ordering::Relaxed)
    }

    /// Every request to `/hook` or elsewhere, refused ones included.
    pub fn exchanges(&self) -> Vec<script::Exchange> {
        self.core.received()
    }
}

impl Emulator for WebhookBuyer {
    fn core(&self) -> &Core {
        &self.core
    }

    fn gate(&self, request: &Parts, body: &Bytes) -> Gate {
        if request.uri.path() != PATH || request.method != Method::POST {
            return Gate::pass();
        }
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let now = chrono::Utc::now().timestamp();
        match self.secret.verifies(
            header(HEADER_ID),
            header(HEADER_TIMESTAMP),
            header(HEADER_SIGNATURE),
            body,
            now,
        ) {
            true => Gate::pass(),
            false => {
                self.rejected_signatures.fetch_add(1, Ordering::Relaxed);
                Gate::Refuse(script::message(
                    StatusCode::UNAUTHORIZED,
                    "invalid signature",
                ))
            }
        }
    }

    fn received_json(&self) -> Value {
        let summary: Vec<Value> = self
            .received()
            .into_iter()
            .map(|r| json!({"webhookId": r.webhook_id, "leadId": r.payload["data"]["leadId"], "status": r.status}))
            .collect();
        json!({ "received": summary })
    }

    fn reset(&self) {
        self.core.reset();
        self.rejected_signatures.store(0, Ordering::Relaxed);
        let mut taken = lock(&self.taken);
        let capacity = taken.capacity;
        *taken = Taken::new(capacity);
    }
}

async fn hook(
    State(buyer): State<WebhookBuyer>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return script::message(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    // Standard Webhooks: a consumer dedupes on `webhook-id`. A delivery seen before gets the answer it got
    // then, and is not taken twice.
    let webhook_id = headers
        .get(HEADER_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let answer = lock(&buyer.taken).answer(&webhook_id, || {
        let n = buyer.accepted.fetch_add(1, Ordering::Relaxed) + 1;
        format!("wh-{n}")
    });
    // The lead id only: the rest of the body is the consumer's personal data.
    let lead_id = payload["data"]["leadId"].as_str().unwrap_or("?");
    tracing::info!(lead_id, answer = %answer, "webhook delivery accepted");
    (StatusCode::OK, Json(json!({"id": answer}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remembered_webhook_ids_are_the_newest_up_to_the_capacity() {
        let mut taken = Taken::new(2);
        let mut n = 0;
        let mut answer = |id: &str| {
            taken.answer(id, || {
                n += 1;
                format!("wh-{n}")
            })
        };
        assert_eq!(answer("a"), "wh-1");
        assert_eq!(answer("b"), "wh-2");
        assert_eq!(answer("a"), "wh-1", "remembered: the first answer again");
        assert_eq!(answer("c"), "wh-3");
        // "a" was the oldest of three: forgotten, so taken again.
        assert_eq!(answer("a"), "wh-4");
        assert_eq!(answer("c"), "wh-3");
        assert_eq!(taken.count, 4);
        assert_eq!(taken.answers.len(), 2);
        assert_eq!(taken.order, ["c", "a"]);
    }

    #[test]
    fn with_log_capacity_bounds_the_log_and_the_remembered_ids() {
        let buyer = WebhookBuyer::new(SigningKey::from_bytes(b"key")).with_log_capacity(3);
        assert_eq!(buyer.core.log_capacity(), 3);
        assert_eq!(lock(&buyer.taken).capacity, 3);
    }
}
