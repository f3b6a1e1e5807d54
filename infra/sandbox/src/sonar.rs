//! Sonar's generic Leads API (seed `000_30a5a1304ad505d7.txt`).
//!
//! - `POST /api/leads` ([`DEFAULT_PATH`]; configurable, since the real endpoint is whatever Sonar shows on
//!   the integration page and the hub takes it from the destination URL). Any other path or method: 404
//!   `{"message": "Not Found"}` (checked before the credentials).
//! - `Authorization` must equal the configured client secret exactly (no `Bearer` or other scheme): else
//!   401 `{"message": "Unauthorized"}`.
//! - The seed: "200 = Success (either created successfully or failed)". Created: 200 `{"success": true,
//!   "id": "sonar-<n>"}`; refused: 200 `{"success": false, "message": "<every problem, joined by "; ">"}`.
//!
//! Choices where the seed is silent (its sample JSON and field list are "attached below" but missing):
//! - The body is the hub's mortgage shape: `purpose` (one of the seed's four values, case-sensitive),
//!   `borrower.firstName`, `borrower.lastName`, `borrower.email`, `property.city`, `property.state`. The
//!   JSON pointers are in [`SonarFields`], so another shape is one config change.
//! - "Required" means present as a non-blank string. Sonar's formats are not documented, so the email and
//!   the state are not checked further. Other fields are accepted and kept as they are.
//! - The response bodies are ours (the seed gives none): `success`, `id`, `message`.
//! - A body that is not a JSON object is a failure like any other: 200 `{"success": false, ...}`.
//! - The seed's 200 promises "either created successfully or failed", but integrations also meet a 200 that
//!   says neither (an acknowledgement, a queue ticket). The sandbox plays it on demand: for a lead whose
//!   `borrower.email` is in its "unrecognised" set (compared ignoring case), or for every lead while
//!   "unrecognised for all" is on, a valid lead is answered 200 `{"status": "received", "message": "Lead
//!   received; queued for review"}` ([`unrecognised_body`]: no `success` flag, no id, a `status` that is
//!   neither created nor failed) and is not created. Set with [`Sonar::answer_unrecognised`] /
//!   [`Sonar::answer_unrecognised_for_all`] or `POST /_sandbox/unrecognised {"email": "..."}` / `{"all":
//!   true|false}` (204); `POST /_sandbox/reset` clears both. An invalid lead still gets its `success: false`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::script::{self, lock, Core, Emulator, Gate, Ring};
pub use crate::script::{Exchange, Failure};
use crate::Running;

/// The leads endpoint unless configured otherwise.
pub const DEFAULT_PATH: &str = "/api/leads";

/// The answer to a lead Sonar is told to answer with a 200 that is neither success nor failure: an
/// acknowledgement without a `success` flag or an id.
pub fn unrecognised_body() -> Value {
    json!({"status": "received", "message": "Lead received; queued for review"})
}

/// Sonar's loan purposes ("the transaction type").
pub const PURPOSES: [&str; 4] = [
    "Purchase",
    "RefinanceCashOut",
    "RefinanceRateAndTerm",
    "PreApproval",
];

/// Where the required fields are in the body (JSON pointers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SonarFields {
    /// Default `/purpose`.
    pub purpose: String,
    /// Non-blank strings. Default: `/borrower/firstName`, `/borrower/lastName`, `/borrower/email`,
    /// `/property/city`, `/property/state`.
    pub required: Vec<String>,
}

impl Default for SonarFields {
    fn default() -> Self {
        SonarFields {
            purpose: "/purpose".into(),
            required: [
                "/borrower/firstName",
                "/borrower/lastName",
                "/borrower/email",
                "/property/city",
                "/property/state",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SonarConfig {
    /// What `Authorization` must be, exactly.
    pub client_secret: String,
    /// Default [`DEFAULT_PATH`].
    pub path: String,
    pub fields: SonarFields,
}

impl SonarConfig {
    pub fn new(client_secret: impl Into<String>) -> Self {
        SonarConfig {
            client_secret: client_secret.into(),
            path: DEFAULT_PATH.into(),
            fields: SonarFields::default(),
        }
    }
}

/// A lead Sonar created.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SonarLead {
    /// `sonar-<n>`.
    pub id: String,
    pub body: Value,
}

/// Which leads get the unrecognised 200.
#[derive(Debug, Default)]
struct Unrecognised {
    /// Borrower emails, lower-cased.
    emails: BTreeSet<String>,
    all: bool,
}

#[derive(Clone)]
pub struct Sonar {
    config: Arc<SonarConfig>,
    core: Core,
    leads: Arc<Mutex<Ring<SonarLead>>>,
    next_id: Arc<AtomicU64>,
    unrecognised: Arc<Mutex<Unrecognised>>,
}

impl Sonar {
    pub fn new(config: SonarConfig) -> Self {
        Sonar {
            config: Arc::new(config),
            core: Core::default(),
            leads: Arc::default(),
            next_id: Arc::default(),
            unrecognised: Arc::default(),
        }
    }

    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<Running> {
        Running::serve(addr, self.router()).await
    }

    /// The API, plus `POST /_sandbox/unrecognised` (`{"email": "..."}` or `{"all": true|false}`).
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route(&self.config.path, post(create))
            .route("/_sandbox/unrecognised", post(control_unrecognised));
        script::finish(routes, self)
    }

    /// Keep the newest `capacity` leads and requests (at least one).
    pub fn with_log_capacity(self, capacity: usize) -> Self {
        self.core.set_log_capacity(capacity);
        lock(&self.leads).set_capacity(capacity);
        self
    }

    /// Answer this borrower's leads with the 200 that is neither success nor failure (not creating them).
    pub fn answer_unrecognised(&self, email: &str) {
        lock(&self.unrecognised)
            .emails
            .insert(email.trim().to_lowercase());
    }

    /// Answer every lead so (or stop doing so; the emails set stays).
    pub fn answer_unrecognised_for_all(&self, on: bool) {
        lock(&self.unrecognised).all = on;
    }

    fn answers_unrecognised(&self, body: &Value) -> bool {
        let unrecognised = lock(&self.unrecognised);
        unrecognised.all
            || body
                .pointer("/borrower/email")
                .and_then(Value::as_str)
                .is_some_and(|email| unrecognised.emails.contains(&email.trim().to_lowercase()))
    }

    pub fn config(&self) -> &SonarConfig {
        &self.config
    }

    /// Answer the next requests with this failure.
    pub fn fail_next(&self, failure: Failure) {
        self.core.push(failure);
    }

    /// Every request and its answer, refused and failed ones included.
    pub fn received(&self) -> Vec<Exchange> {
        self.core.received()
    }

    /// The leads created (`success: true`), in order: the newest, up to the log's capacity.
    pub fn leads(&self) -> Vec<SonarLead> {
        lock(&self.leads).to_vec()
    }
}

impl Emulator for Sonar {
    fn core(&self) -> &Core {
        &self.core
    }

    fn gate(&self, request: &Parts, _body: &Bytes) -> Gate {
        if request.method != Method::POST || request.uri.path() != self.config.path {
            return Gate::Refuse(script::message(StatusCode::NOT_FOUND, "Not Found"));
        }
        let authorization = request.headers.get("authorization").map(|v| v.as_bytes());
        if authorization != Some(self.config.client_secret.as_bytes()) {
            return Gate::Refuse(script::message(StatusCode::UNAUTHORIZED, "Unauthorized"));
        }
        Gate::pass()
    }

    fn reset(&self) {
        self.core.reset();
        lock(&self.leads).clear();
        *lock(&self.unrecognised) = Unrecognised::default();
    }
}

/// The problems with a lead, empty when Sonar would create it.
pub fn problems(fields: &SonarFields, body: &Value) -> Vec<String> {
    if !body.is_object() {
        return vec!["the body must be a JSON object".into()];
    }
    let mut problems = Vec::new();
    let purpose = dotted(&fields.purpose);
    match body.pointer(&fields.purpose) {
        None | Some(Value::Null) => problems.push(format!("{purpose} is required")),
        Some(Value::String(p)) if p.trim().is_empty() => {
            problems.push(format!("{purpose} is required"))
        }
        Some(Value::String(p)) if PURPOSES.contains(&p.as_str()) => {}
        Some(_) => problems.push(format!("{purpose} must be one of {}", PURPOSES.join(", "))),
    }
    for pointer in &fields.required {
        match body.pointer(pointer) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            Some(Value::String(_)) | None | Some(Value::Null) => {
                problems.push(format!("{} is required", dotted(pointer)))
            }
            Some(_) => problems.push(format!("{} must be a string", dotted(pointer))),
        }
    }
    problems
}

/// `/borrower/firstName` → `borrower.firstName`.
fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

async fn create(State(sonar): State<Sonar>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let problems = problems(&sonar.config.fields, &body);
    if !problems.is_empty() {
        return (
            StatusCode::OK,
            Json(json!({"success": false, "message": problems.join("; ")})),
        )
            .into_response();
    }
    if sonar.answers_unrecognised(&body) {
        return (StatusCode::OK, Json(unrecognised_body())).into_response();
    }
    let id = format!(
        "sonar-{}",
        sonar.next_id.fetch_add(1, Ordering::Relaxed) + 1
    );
    lock(&sonar.leads).push(SonarLead {
        id: id.clone(),
        body,
    });
    (StatusCode::OK, Json(json!({"success": true, "id": id}))).into_response()
}

/// `POST /_sandbox/unrecognised`: `{"email": "..."}` adds a borrower, `{"all": true|false}` switches every
/// lead; both may be given. Anything else is 400.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnrecognisedControl {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    all: Option<bool>,
}

async fn control_unrecognised(State(sonar): State<Sonar>, body: Bytes) -> Response {
    let control: UnrecognisedControl = match serde_json::from_slice(&body) {
        Ok(control @ UnrecognisedControl { email: Some(_), .. })
        | Ok(control @ UnrecognisedControl { all: Some(_), .. }) => control,
        _ => {
            return script::message(
                StatusCode::BAD_REQUEST,
                "expected {\"email\": \"...\"} or {\"all\": true|false}",
            )
        }
    };
    if let Some(email) = control.email.as_deref().filter(|e| !e.trim().is_empty()) {
        sonar.answer_unrecognised(email);
    }
    if let Some(all) = control.all {
        sonar.answer_unrecognised_for_all(all);
    }
    StatusCode::NO_CONTENT.into_response()
}
