//! A webhook buyer: takes `POST /hook` signed per Standard Webhooks, answers 200 `{"id": "wh-<n>"}`.
//!
//! A bad or missing signature gets 401. Scripted answers (`fail_next`) let tests and demos see retries:
//! `POST /_sandbox/fail {"status": 503, "times": 2, "delayMs": 0, "retryAfter": "1"}`.
//! `GET /_sandbox/received` lists what arrived (webhook id, lead id, attempt time).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use leadhub::webhooks::{WebhookSecret, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::Running;

/// One delivery the buyer received with a valid signature.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    pub webhook_id: String,
    pub payload: Value,
    /// What the buyer answered.
    pub status: u16,
}

/// A scripted answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub status: u16,
    #[serde(default = "one")]
    pub times: u32,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub retry_after: Option<String>,
    #[serde(default)]
    pub body: Option<Value>,
}

fn one() -> u32 {
    1
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<Failure>,
    rejected_signatures: u32,
    accepted: u64,
}

/// The buyer's state, shared with whoever started it.
#[derive(Clone)]
pub struct WebhookBuyer {
    secret: WebhookSecret,
    inner: Arc<Mutex<Inner>>,
}

impl WebhookBuyer {
    pub fn new(secret: WebhookSecret) -> Self {
        WebhookBuyer {
            secret,
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    /// Serve on `addr`; the buyer's endpoint is `/hook`.
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<Running> {
        Running::serve(addr, self.router()).await
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/hook", post(hook))
            .route("/_sandbox/fail", post(script))
            .route("/_sandbox/received", get(received))
            .with_state(self.clone())
    }

    /// Answer the next deliveries with this failure.
    pub fn fail_next(&self, failure: Failure) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.script.push_back(failure);
        }
    }

    /// Every validly signed delivery, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.inner
            .lock()
            .map(|i| i.received.clone())
            .unwrap_or_default()
    }

    /// Deliveries of one lead.
    pub fn received_for(&self, lead_id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.payload["data"]["leadId"] == lead_id)
            .collect()
    }

    /// Requests refused for a bad signature.
    pub fn rejected_signatures(&self) -> u32 {
        self.inner
            .lock()
            .map(|i| i.rejected_signatures)
            .unwrap_or(0)
    }
}

async fn hook(State(buyer): State<WebhookBuyer>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header(HEADER_ID),
        header(HEADER_TIMESTAMP),
        header(HEADER_SIGNATURE),
    );
    let now = chrono::Utc::now().timestamp();
    if buyer
        .secret
        .verify(&id, &timestamp, &signature, &body, now)
        .is_err()
    {
        if let Ok(mut inner) = buyer.inner.lock() {
            inner.rejected_signatures += 1;
        }
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "invalid signature"})),
        )
            .into_response();
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"message": "body is not JSON"})),
            )
                .into_response()
        }
    };
    let failure = buyer.inner.lock().ok().and_then(|mut inner| {
        let failure = inner.script.front_mut()?;
        failure.times = failure.times.saturating_sub(1);
        let current = failure.clone();
        if failure.times == 0 {
            inner.script.pop_front();
        }
        Some(current)
    });
    if let Some(failure) = failure {
        if failure.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(failure.delay_ms)).await;
        }
        if let Ok(mut inner) = buyer.inner.lock() {
            inner.received.push(Received {
                webhook_id: id,
                payload,
                status: failure.status,
            });
        }
        let status =
            StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = failure
            .body
            .unwrap_or_else(|| json!({"message": "sandbox: scripted failure"}));
        let mut response = (status, Json(body)).into_response();
        if let Some(after) = failure.retry_after.and_then(|a| a.parse().ok()) {
            response.headers_mut().insert("retry-after", after);
        }
        return response;
    }
    let reference = buyer.inner.lock().map(|mut inner| {
        inner.accepted += 1;
        inner.received.push(Received {
            webhook_id: id,
            payload,
            status: 200,
        });
        format!("wh-{}", inner.accepted)
    });
    (
        StatusCode::OK,
        Json(json!({"id": reference.unwrap_or_default()})),
    )
        .into_response()
}

async fn script(State(buyer): State<WebhookBuyer>, Json(failure): Json<Failure>) -> StatusCode {
    buyer.fail_next(failure);
    StatusCode::NO_CONTENT
}

async fn received(State(buyer): State<WebhookBuyer>) -> Json<Value> {
    let summary: Vec<Value> = buyer
        .received()
        .into_iter()
        .map(|r| json!({"webhookId": r.webhook_id, "leadId": r.payload["data"]["leadId"], "status": r.status}))
        .collect();
    Json(json!({ "received": summary }))
}
