//! nTherm `postLead` (seed `002_97119647e0e39833.txt`).
//!
//! - `POST /v1/postLead` ([`PATH`]) with `Authorization: Basic` of the configured username and password,
//!   else 401 `{"success_bit": false, "message": [{"error": "Unauthorized"}]}`.
//! - Checks, every problem reported at once, in the seed's field order, as 400 `{"success_bit": false,
//!   "message": [{"error": "..."}, ...]}` with the seed's messages, echoing the value as the real API does:
//!   `Invalid Characters: <phone>`, `Invalid State Code (2 characters): <state>`, `Certificate URL exceeds
//!   500 characters, or not a valid URL <url>`, `Invalid Mailing State Code: <mailing_state>`.
//! - A valid lead whose phone is in the "cannot be sent" set: 422 `{"success_bit": false, "message":
//!   [{"error": "Phone number can not be sent to postLead at this time."}]}`.
//! - Otherwise 200 `{"success_bit": true, "message": "Lead submitted successfully."}`, and after
//!   [`NthermConfig::callback_delay`] the final result is POSTed to the lead's `call_back_url`.
//!
//! Choices where the seed is silent, written down here:
//! - Missing fields: the seed gives no wording, so each gets `{"error": "<field> is required"}` ("present
//!   and not blank"; a field that is not a string counts as missing).
//! - The street: the field table says `street`, the sample request sends `customer_address`; either is
//!   accepted ("street is required" when neither is there).
//! - `certificate_url`: required unless `extra_data` is given ("required if certificate_url is not
//!   provided"); neither gives `certificate_url is required`. `extra_data` must then be a non-empty JSON
//!   object or array. A given `certificate_url` must be an absolute http(s) URL with a host, at most 500
//!   characters.
//! - Phone: digits, spaces, `.`, `-`, `(`, `)` and a leading `+` are valid characters (the hub's solar
//!   vertical uses the same set); anything else is `Invalid Characters: <phone>`. The length is not
//!   checked (the seed's own example is 9 digits).
//! - State codes: 2 letters of a US state, DC or territory (case-insensitive). Other fields (email, ZIPs)
//!   are only required, not checked: the seed gives no rule or message for them.
//! - The 400 checks come before the 422 one. Phones are compared by their digits, a leading US `1` of an
//!   11-digit number dropped.
//! - The callback's format is not documented. The sandbox POSTs `{"success_bit": true, "message": "Lead
//!   accepted."}`, or, for a phone in the "reject after posting" set or when `reject_all_after_post` is on,
//!   `{"success_bit": false, "message": [{"error": "Lead rejected after review."}]}` (the shape of
//!   postLead's own answers, which is what the hub reads). One attempt, no retry, redirects not followed,
//!   10 s timeout; the answer's status and body (or the error) are recorded in [`NthermCallback`].
//! - How the final result really arrives varies, and [`VerdictStyle`] plays each variant (the sandbox builds
//!   these bodies itself, from the seed's shapes, not with the hub's types): `success_bit` as the text
//!   `"true"`/`"false"`; any `Content-Type`, or none; sent before postLead's 200 (the sandbox waits for the
//!   callback's answer, then answers postLead: the hub has not recorded the acceptance yet); sent more than
//!   once; or a body of a shape of the operator's choosing (not a verdict at all).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::script::{self, lock, Core, Emulator, Gate, Ring};
pub use crate::script::{Exchange, Failure};
use crate::Running;

pub const PATH: &str = "/v1/postLead";
pub const MAX_URL_LEN: usize = 500;
pub const SUBMITTED: &str = "Lead submitted successfully.";
pub const CANNOT_BE_SENT: &str = "Phone number can not be sent to postLead at this time.";
pub const ACCEPTED: &str = "Lead accepted.";
pub const REJECTED: &str = "Lead rejected after review.";

/// The seed's fields that must be present and non-blank, in its order (`street`/`customer_address`,
/// `certificate_url`/`extra_data` are checked apart).
const REQUIRED: [&str; 14] = [
    "phone_number",
    "customer_name",
    "state",
    "city",
    "zip",
    "dm_name",
    "utility",
    "call_back_url",
    "mailing_street",
    "mailing_city",
    "mailing_zip",
    "mailing_state",
    "vendor_campaign_name",
    "email",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NthermConfig {
    pub username: String,
    pub password: String,
    /// Phones answered 422 (compared by digits). Default empty.
    pub cannot_send: BTreeSet<String>,
    /// Phones accepted (200) and then rejected in the callback. Default empty.
    pub reject_after_post: BTreeSet<String>,
    /// Reject every lead in the callback. Default false.
    pub reject_all_after_post: bool,
    /// Between the 200 and the callback. Default 200 ms.
    pub callback_delay: Duration,
    /// How the final result is sent. Default: a JSON boolean, as `application/json`, once, after the 200.
    pub verdict_style: VerdictStyle,
}

impl NthermConfig {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        NthermConfig {
            username: username.into(),
            password: password.into(),
            cannot_send: BTreeSet::new(),
            reject_after_post: BTreeSet::new(),
            reject_all_after_post: false,
            callback_delay: Duration::from_millis(200),
            verdict_style: VerdictStyle::default(),
        }
    }
}

/// How the final result is sent to the lead's `call_back_url` (the variants it really arrives in).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerdictStyle {
    /// `success_bit` as the text `"true"` / `"false"` instead of a JSON boolean.
    pub success_bit_as_text: bool,
    /// The callback's `Content-Type`; `None`: no `Content-Type` header at all.
    pub content_type: Option<String>,
    /// Send the final result before answering postLead (and wait for the callback's answer), instead of
    /// `callback_delay` after the 200.
    pub before_answer: bool,
    /// How many times the final result is sent (one after the other). At least 1.
    pub times: u32,
    /// Send this text as the body instead of the final result.
    pub raw_body: Option<String>,
}

impl Default for VerdictStyle {
    fn default() -> Self {
        VerdictStyle {
            success_bit_as_text: false,
            content_type: Some("application/json".to_owned()),
            before_answer: false,
            times: 1,
            raw_body: None,
        }
    }
}

/// A lead postLead accepted (200).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NthermLead {
    pub phone_number: String,
    pub call_back_url: String,
    pub body: Value,
    /// Whether the callback says rejected.
    pub rejected_after_post: bool,
}

/// One callback the sandbox posted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NthermCallback {
    pub at: DateTime<Utc>,
    pub phone_number: String,
    pub url: String,
    pub body: Value,
    /// The receiver's status; `None` when the request failed (see `error`).
    pub status: Option<u16>,
    /// The receiver's answer (JSON, or its text when it is not JSON).
    pub answer: Option<Value>,
    pub error: Option<String>,
}

struct Lists {
    cannot_send: BTreeSet<String>,
    reject_after_post: BTreeSet<String>,
    reject_all_after_post: bool,
    callback_delay: Duration,
    verdict_style: VerdictStyle,
    leads: Ring<NthermLead>,
    callbacks: Ring<NthermCallback>,
}

#[derive(Clone)]
pub struct Ntherm {
    username: Arc<str>,
    password: Arc<str>,
    core: Core,
    lists: Arc<Mutex<Lists>>,
    client: reqwest::Client,
}

impl Ntherm {
    pub fn new(config: NthermConfig) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Ntherm {
            username: config.username.into(),
            password: config.password.into(),
            core: Core::default(),
            lists: Arc::new(Mutex::new(Lists {
                cannot_send: config.cannot_send.iter().map(|p| digits(p)).collect(),
                reject_after_post: config.reject_after_post.iter().map(|p| digits(p)).collect(),
                reject_all_after_post: config.reject_all_after_post,
                callback_delay: config.callback_delay,
                verdict_style: config.verdict_style,
                leads: Ring::default(),
                callbacks: Ring::default(),
            })),
            client,
        }
    }

    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<Running> {
        Running::serve(addr, self.router()).await
    }

    /// The API, plus `POST /_sandbox/cannot-send {"phone"}`, `POST /_sandbox/reject-after-post {"phone"}`
    /// or `{"all": true|false}`, `POST /_sandbox/verdict-style` (a [`VerdictStyle`] as JSON, its fields
    /// optional), and `GET /_sandbox/callbacks`.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route(PATH, post(post_lead))
            .route("/_sandbox/cannot-send", post(control_cannot_send))
            .route("/_sandbox/reject-after-post", post(control_reject))
            .route("/_sandbox/verdict-style", post(control_verdict_style))
            .route("/_sandbox/callbacks", axum::routing::get(control_callbacks));
        script::finish(routes, self)
    }

    /// Keep the newest `capacity` requests, leads and callbacks (at least one).
    pub fn with_log_capacity(self, capacity: usize) -> Self {
        self.core.set_log_capacity(capacity);
        {
            let mut lists = lock(&self.lists);
            lists.leads.set_capacity(capacity);
            lists.callbacks.set_capacity(capacity);
        }
        self
    }

    pub fn fail_next(&self, failure: Failure) {
        self.core.push(failure);
    }

    /// Every request and its answer.
    pub fn received(&self) -> Vec<Exchange> {
        self.core.received()
    }

    /// The leads answered 200 (the newest, up to the log's capacity).
    pub fn leads(&self) -> Vec<NthermLead> {
        lock(&self.lists).leads.to_vec()
    }

    /// The callbacks posted so far (each is recorded once its answer is in; the newest, up to the log's
    /// capacity).
    pub fn callbacks(&self) -> Vec<NthermCallback> {
        lock(&self.lists).callbacks.to_vec()
    }

    /// Answer 422 for this phone from now on.
    pub fn cannot_send(&self, phone: &str) {
        lock(&self.lists).cannot_send.insert(digits(phone));
    }

    /// Accept this phone, then reject it in the callback.
    pub fn reject_after_post(&self, phone: &str) {
        lock(&self.lists).reject_after_post.insert(digits(phone));
    }

    /// Reject every lead in the callback (or stop doing so).
    pub fn reject_all_after_post(&self, on: bool) {
        lock(&self.lists).reject_all_after_post = on;
    }

    pub fn set_callback_delay(&self, delay: Duration) {
        lock(&self.lists).callback_delay = delay;
    }

    /// Send the final results of leads accepted from now on in this style.
    pub fn set_verdict_style(&self, style: VerdictStyle) {
        lock(&self.lists).verdict_style = style;
    }
}

impl Emulator for Ntherm {
    fn core(&self) -> &Core {
        &self.core
    }

    fn gate(&self, request: &Parts, _body: &Bytes) -> Gate {
        match script::basic_credentials(&request.headers) {
            Some((user, password)) if user == *self.username && password == *self.password => {
                Gate::pass()
            }
            _ => Gate::Refuse(refusal(StatusCode::UNAUTHORIZED, &["Unauthorized".into()])),
        }
    }

    fn reset(&self) {
        self.core.reset();
        let mut lists = lock(&self.lists);
        lists.leads.clear();
        lists.callbacks.clear();
    }
}

/// `{"success_bit": false, "message": [{"error": ...}, ...]}`.
fn refusal(status: StatusCode, errors: &[String]) -> Response {
    let message: Vec<Value> = errors.iter().map(|e| json!({ "error": e })).collect();
    (
        status,
        Json(json!({"success_bit": false, "message": message})),
    )
        .into_response()
}

/// A phone's digits, a leading US `1` of an 11-digit number dropped.
pub fn digits(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix('1') {
        Some(rest) if digits.len() == 11 => rest.to_owned(),
        _ => digits,
    }
}

fn text<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn phone_chars_ok(phone: &str) -> bool {
    phone.chars().enumerate().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')') || (c == '+' && i == 0)
    })
}

/// Seed 002: "2 letter State code of the customer". The emulator's own list: the USPS codes of the 50
/// states, DC and the inhabited territories (case-insensitive).
const STATE_CODES: &str = "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH \
                           NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR VI GU AS MP";

fn state_ok(state: &str) -> bool {
    state.len() == 2
        && STATE_CODES
            .split_ascii_whitespace()
            .any(|code| code.eq_ignore_ascii_case(state))
}

fn url_ok(url: &str) -> bool {
    url.chars().count() <= MAX_URL_LEN
        && reqwest::Url::parse(url)
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .unwrap_or(false)
}

/// postLead's 400 errors for a body, in the seed's field order; empty when valid.
pub fn errors(body: &Value) -> Vec<String> {
    if !body.is_object() {
        return vec!["The body must be a JSON object".into()];
    }
    let mut errors = Vec::new();
    let required = |errors: &mut Vec<String>, name: &str| {
        if text(body, name).is_none() {
            errors.push(format!("{name} is required"));
        }
    };
    for name in REQUIRED {
        required(&mut errors, name);
        match (name, text(body, name)) {
            ("phone_number", Some(phone)) if !phone_chars_ok(phone) => {
                errors.push(format!("Invalid Characters: {phone}"))
            }
            ("state", Some(state)) if !state_ok(state) => {
                errors.push(format!("Invalid State Code (2 characters): {state}"))
            }
            ("zip", _) => {
                // The seed's order: certificate_url and street come after zip.
                match text(body, "certificate_url") {
                    Some(url) if !url_ok(url) => errors.push(format!(
                        "Certificate URL exceeds 500 characters, or not a valid URL {url}"
                    )),
                    Some(_) => {}
                    None => {
                        let extra = body.get("extra_data");
                        let given = match extra {
                            Some(Value::Object(o)) => !o.is_empty(),
                            Some(Value::Array(a)) => !a.is_empty(),
                            _ => false,
                        };
                        if !given {
                            errors.push("certificate_url is required".into());
                        }
                    }
                }
                if text(body, "street").is_none() && text(body, "customer_address").is_none() {
                    errors.push("street is required".into());
                }
            }
            ("mailing_state", Some(state)) if !state_ok(state) => {
                errors.push(format!("Invalid Mailing State Code: {state}"))
            }
            _ => {}
        }
    }
    errors
}

async fn post_lead(State(ntherm): State<Ntherm>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let errors = errors(&body);
    if !errors.is_empty() {
        return refusal(StatusCode::BAD_REQUEST, &errors);
    }
    let phone = text(&body, "phone_number").unwrap_or_default().to_owned();
    let url = text(&body, "call_back_url")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let key = digits(&phone);
    let (rejected, delay, style) = {
        let mut lists = lock(&ntherm.lists);
        if lists.cannot_send.contains(&key) {
            return refusal(StatusCode::UNPROCESSABLE_ENTITY, &[CANNOT_BE_SENT.into()]);
        }
        let rejected = lists.reject_all_after_post || lists.reject_after_post.contains(&key);
        lists.leads.push(NthermLead {
            phone_number: phone.clone(),
            call_back_url: url.clone(),
            body,
            rejected_after_post: rejected,
        });
        (rejected, lists.callback_delay, lists.verdict_style.clone())
    };
    let success_bit = match (style.success_bit_as_text, rejected) {
        (false, rejected) => json!(!rejected),
        (true, false) => json!("true"),
        (true, true) => json!("false"),
    };
    let callback = if rejected {
        json!({"success_bit": success_bit, "message": [{"error": REJECTED}]})
    } else {
        json!({"success_bit": success_bit, "message": ACCEPTED})
    };
    let body = match &style.raw_body {
        Some(raw) => raw.clone().into_bytes(),
        None => serde_json::to_vec(&callback).unwrap_or_default(),
    };
    if style.before_answer {
        send_callback(ntherm, phone, url, body, style, Duration::ZERO).await;
    } else {
        tokio::spawn(send_callback(ntherm, phone, url, body, style, delay));
    }
    (
        StatusCode::OK,
        Json(json!({"success_bit": true, "message": SUBMITTED})),
    )
        .into_response()
}

/// POST the final result `body` to `url`, `style.times` times, after `delay`; each answer is recorded.
async fn send_callback(
    ntherm: Ntherm,
    phone: String,
    url: String,
    body: Vec<u8>,
    style: VerdictStyle,
    delay: Duration,
) {
    tokio::time::sleep(delay).await;
    let recorded = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    for _ in 0..style.times.max(1) {
        let mut request = ntherm.client.post(&url).body(body.clone());
        if let Some(content_type) = &style.content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        let (status, answer, error) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
                (Some(status), Some(answer), None)
            }
            Err(error) => (None, None, Some(error.to_string())),
        };
        lock(&ntherm.lists).callbacks.push(NthermCallback {
            at: Utc::now(),
            phone_number: phone.clone(),
            url: url.clone(),
            body: recorded.clone(),
            status,
            answer,
            error,
        });
    }
}

#[derive(Deserialize)]
struct PhoneControl {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    all: Option<bool>,
}

async fn control_cannot_send(
    State(ntherm): State<Ntherm>,
    Json(control): Json<PhoneControl>,
) -> StatusCode {
    match control.phone {
        Some(phone) => {
            ntherm.cannot_send(&phone);
            StatusCode::NO_CONTENT
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn control_reject(
    State(ntherm): State<Ntherm>,
    Json(control): Json<PhoneControl>,
) -> StatusCode {
    if let Some(all) = control.all {
        ntherm.reject_all_after_post(all);
    }
    if let Some(phone) = control.phone {
        ntherm.reject_after_post(&phone);
    }
    StatusCode::NO_CONTENT
}

async fn control_verdict_style(
    State(ntherm): State<Ntherm>,
    Json(style): Json<VerdictStyle>,
) -> StatusCode {
    ntherm.set_verdict_style(style);
    StatusCode::NO_CONTENT
}

async fn control_callbacks(State(ntherm): State<Ntherm>) -> Json<Value> {
    Json(json!({ "callbacks": ntherm.callbacks() }))
}
