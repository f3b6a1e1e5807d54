//! Lofty's API (seed `004_1f54f89eb6518f00.txt`): leads, notes and webhooks, with its bearer auth, rate
//! limit and pagination.
//!
//! - Auth (2.1): `Authorization: Bearer <access token>` (scheme case-insensitive) with a token issued and
//!   not expired, else 401 `{"message": "Unauthorized"}`. Tokens (6.59 `OauthTokenInfo`; the seed does not
//!   give the endpoint, the sandbox's choice): [`LoftyConfig::token_lifetime`] makes every access token
//!   short-lived (the first from the start); `POST /v1.0/oauth/token` is the RFC 6749 refresh-token grant
//!   (see [`refresh_token`]); it is not rate-limited and needs no bearer. A `vendorKey` header is recorded in [`Exchange::headers`]; when it equals
//!   [`LoftyConfig::vendor_key`] the call is counted against the vendor's limit, not the keyless one.
//! - Rate limit (2.1 note, 4): [`LoftyConfig::rate_limit`] calls (default 10, "only ten calls per minute are
//!   allowed without a valid vendorKey") or, with a valid vendorKey, [`LoftyConfig::vendor_rate_limit`]
//!   (default 20, the limit in the seed's header examples) per window of [`LoftyConfig::window`] (default
//!   60 s); keyless and vendor calls have a window each. A window starts with the first authenticated call
//!   after the previous one ended. Every answer carries `X-RateLimit-Limit`,
//!   `X-RateLimit-Remaining` (after this call) and `X-RateLimit-Reset` (the window's end, UTC epoch
//!   seconds, rounded up); a call over the limit gets 429 `{"message":"Too Many Requests"}` with them. A
//!   401 carries them too but does not count; scripted answers count.
//! - `POST /v1.0/leads` (5.5.3): a `LeadRequest` (6.44) object. 200 `{"leadId": <n>}` (the seed says only
//!   "200 OK string"; `leadId` is the `LeadResponse` name of the id). Ids start at 1.
//! - `GET /v1.0/leads` (5.5.4, 3): `email` and `phone` are precise searches (email: trimmed,
//!   case-insensitive; phone: by digits, a leading US `1` dropped); `offset` (default 0) and `limit`
//!   (default 10, range 1..=100 else 400). Answer: `{"_metadata": {"collection": "leads", "limit", "offset",
//!   "total"}, "leads": [{"lead": {...}}]}`; a lead is its `LeadRequest` plus `leadId` and `createTime`.
//! - `POST /v1.0/notes` (5.7.1, 6.57 `NoteRequest`): `leadId` (an existing lead, else 404) and a non-blank
//!   `content`; `isPin` optional. 200 `{"noteId": <n>}` (the seed: "200 OK string").
//! - `POST /v1.0/webhook` (5.12.1, 6.84 `WebhookRequest`): `listId` (1 agent list, 2 lead information, 3
//!   lead activity, 4 listing alert), `callbackUrl` (absolute http(s)), optional `limit` (1..=5000). 200
//!   with the `WebhookResponse` (6.85): `{"subscribeId", "listId", "callbackUrl", "limit", "teamId",
//!   "vendorId"}`. `GET /v1.0/webhooks`: 200 with an array of them. `DELETE /v1.0/webhook/{subscribeId}`:
//!   200 `{"subscribeId": <n>}`, 404 when unknown.
//!
//! Choices where the seed is silent, written down here:
//! - Validation answers are 400 `{"message": "..."}`; the seed lists none for these endpoints.
//! - Creating a lead needs at least one non-blank email or phone; a phone over 20 characters (the seed's
//!   limit) is refused. Other fields are kept as sent. Leads are not merged by email.
//! - `teamId` is [`TEAM_ID`] and `vendorId` [`VENDOR_ID`].
//! - Webhook events (5.12 names each list's scope, not the envelope): one JSON object per POST to each
//!   subscriber of the list, with the common fields `teamId` and `listId`:
//!   - list 2, Lead Information (scope `LeadResponse`): `{"teamId", "listId": 2, "eventType": "created" |
//!     "updated", "lead": <the lead as the search answers it, with `stage` and `lastUpdateTime`>}`, sent
//!     when a lead is created, when a note is added to it (it is updated), and when its stage is set
//!     ([`Lofty::set_stage`], `POST /_sandbox/leads/{leadId}/stage` `{"stage"}`);
//!   - list 3, Lead Activity (scope `LeadActivity`): `{"teamId", "listId": 3, "leadId", "activity":
//!     <LeadActivity: `type`, `created` (epoch ms, set when not given), and any other fields given>}`, sent
//!     on an explicit trigger ([`Lofty::lead_activity`], `POST /_sandbox/leads/{leadId}/activity` with the
//!     activity); a lead's site activity has no API of its own in the seed.
//!
//!   Events of a lead's creation and notes are sent in the background, after the API has answered; the
//!   triggers answer once every subscriber was tried, with what each answered (`{"deliveries": [...]}`).
//!   A subscription's `limit` ("limitation of webhook notifications in 30 mins") is kept: past it, an event
//!   is not sent to that subscriber (recorded with `error: "over the subscription's limit"`). Without a
//!   `limit` none applies. Each event is tried once. [`Lofty::deliveries`] lists every attempt;
//!   [`Lofty::emit`] posts a body the test gives to a list's subscribers.
//! - What it keeps per request is bounded: the newest [`DEFAULT_LOG_CAPACITY`](crate::DEFAULT_LOG_CAPACITY)
//!   leads, notes, event deliveries and requests (or as many as [`Lofty::with_log_capacity`] says; a note
//!   or event for a lead dropped past that gets 404, as for an unknown lead); access tokens that expired are
//!   forgotten at the next refresh.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::script::{self, lock, Core, Emulator, Gate, Ring};
pub use crate::script::{Exchange, Failure};
use crate::Running;

pub const LEADS_PATH: &str = "/v1.0/leads";
pub const NOTES_PATH: &str = "/v1.0/notes";
pub const WEBHOOK_PATH: &str = "/v1.0/webhook";
pub const WEBHOOKS_PATH: &str = "/v1.0/webhooks";
pub const TOKEN_PATH: &str = "/v1.0/oauth/token";
/// How long a refresh token lives (30 days; the seed gives no lifetime).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
pub const TEAM_ID: i64 = 1;
pub const VENDOR_ID: i64 = 1;
pub const MAX_PHONE_LEN: usize = 20;
pub const DEFAULT_PAGE_LIMIT: u32 = 10;
pub const MAX_PAGE_LIMIT: u32 = 100;
pub const MAX_WEBHOOK_LIMIT: i64 = 5000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoftyConfig {
    pub access_token: String,
    /// The refresh token that renews the first access token.
    pub refresh_token: String,
    /// How long each access token lives (the first one from the sandbox's start); `None`: forever.
    pub token_lifetime: Option<Duration>,
    /// Calls per window without a valid vendorKey. Default 10.
    pub rate_limit: u32,
    /// The vendorKey this Lofty recognises (none by default: every call is keyless).
    pub vendor_key: Option<String>,
    /// Calls per window with a valid vendorKey. Default 20.
    pub vendor_rate_limit: u32,
    /// Default 60 s.
    pub window: Duration,
}

impl LoftyConfig {
    pub fn new(access_token: impl Into<String>) -> Self {
        let access_token = access_token.into();
        LoftyConfig {
            refresh_token: format!("refresh-{access_token}"),
            token_lifetime: None,
            access_token,
            rate_limit: 10,
            vendor_key: None,
            vendor_rate_limit: 20,
            window: Duration::from_secs(60),
        }
    }
}

/// A lead's stage when it is created (LeadResponse `stage`; the seed names no stages).
pub const FIRST_STAGE: &str = "New Lead";

/// A lead created through the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoftyLead {
    pub lead_id: i64,
    pub create_time: DateTime<Utc>,
    /// The `LeadRequest` as posted.
    pub request: Value,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub stage: String,
    pub last_update_time: DateTime<Utc>,
}

impl LoftyLead {
    /// As returned by the search (and in Lead Information events): the request's fields plus `leadId`,
    /// `createTime`, `stage` and `lastUpdateTime`.
    pub fn response(&self) -> Value {
        let mut lead = self.request.as_object().cloned().unwrap_or_default();
        lead.insert("leadId".into(), json!(self.lead_id));
        lead.insert("createTime".into(), json!(self.create_time.to_rfc3339()));
        lead.insert("stage".into(), json!(self.stage));
        lead.insert(
            "lastUpdateTime".into(),
            json!(self.last_update_time.to_rfc3339()),
        );
        Value::Object(lead)
    }
}

/// List 2, Lead Information.
pub const LEAD_INFORMATION: i64 = 2;
/// List 3, Lead Activity.
pub const LEAD_ACTIVITY: i64 = 3;
/// The window of a subscription's `limit`.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoftyNote {
    pub note_id: i64,
    pub lead_id: i64,
    pub content: String,
    pub is_pin: bool,
    pub create_time: DateTime<Utc>,
}

/// 6.85 `WebhookResponse`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoftyWebhook {
    pub subscribe_id: i64,
    pub list_id: i64,
    pub callback_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    pub team_id: i64,
    pub vendor_id: i64,
}

/// One event the sandbox posted (or, over a subscription's limit, did not post) to a subscriber.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoftyDelivery {
    pub subscribe_id: i64,
    pub list_id: i64,
    pub url: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The answer's body (as text), for tests to look at.
    pub answer: Option<String>,
}

struct Window {
    started: Instant,
    ends: DateTime<Utc>,
    used: u32,
}

#[derive(Default)]
struct Store {
    leads: Ring<LoftyLead>,
    notes: Ring<LoftyNote>,
    webhooks: Vec<LoftyWebhook>,
    /// When each subscription with a limit was last sent events (within its limit's window).
    sent: std::collections::HashMap<i64, Vec<Instant>>,
    deliveries: Ring<LoftyDelivery>,
    next_lead: i64,
    next_note: i64,
    next_webhook: i64,
    /// The keyless window and the vendor window.
    windows: [Option<Window>; 2],
    /// Access tokens issued, each with its expiry.
    tokens: Vec<(String, Option<Instant>)>,
    /// The one refresh token that works (each refresh replaces it).
    refresh_token: String,
    /// Refreshes granted.
    refreshes: u32,
}

impl Store {
    fn set_capacity(&mut self, capacity: usize) {
        self.leads.set_capacity(capacity);
        self.notes.set_capacity(capacity);
        self.deliveries.set_capacity(capacity);
    }
}

#[derive(Clone)]
pub struct Lofty {
    config: Arc<LoftyConfig>,
    core: Core,
    store: Arc<Mutex<Store>>,
    client: reqwest::Client,
}

impl Lofty {
    pub fn new(config: LoftyConfig) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let lofty = Lofty {
            config: Arc::new(config),
            core: Core::default(),
            store: Arc::default(),
            client,
        };
        lofty.issue_first_token();
        lofty
    }

    /// Keep the newest `capacity` leads, notes, event deliveries and requests (at least one).
    pub fn with_log_capacity(self, capacity: usize) -> Self {
        self.core.set_log_capacity(capacity);
        lock(&self.store).set_capacity(capacity);
        self
    }

    /// The configured access and refresh tokens, the access token living `token_lifetime` from now.
    fn issue_first_token(&self) {
        let mut store = lock(&self.store);
        let expires = self.config.token_lifetime.map(|l| Instant::now() + l);
        store.tokens = vec![(self.config.access_token.clone(), expires)];
        store.refresh_token = self.config.refresh_token.clone();
    }

    /// Whether `token` is an access token issued and not expired.
    fn token_valid(&self, token: &str) -> bool {
        lock(&self.store)
            .tokens
            .iter()
            .any(|(t, expires)| t == token && expires.is_none_or(|at| Instant::now() < at))
    }

    /// How many refreshes were granted.
    pub fn refreshes(&self) -> u32 {
        lock(&self.store).refreshes
    }

    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<Running> {
        Running::serve(addr, self.router()).await
    }

    /// The API, plus `GET /_sandbox/leads`, `GET /_sandbox/notes`, `GET /_sandbox/webhooks`, `GET
    /// /_sandbox/deliveries`, and the event triggers `POST /_sandbox/leads/{leadId}/activity` and `POST
    /// /_sandbox/leads/{leadId}/stage`.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route(LEADS_PATH, post(create_lead).get(search_leads))
            .route(NOTES_PATH, post(create_note))
            .route(TOKEN_PATH, post(refresh_token))
            .route(WEBHOOK_PATH, post(subscribe))
            .route("/v1.0/webhook/{subscribe_id}", delete(unsubscribe))
            .route(WEBHOOKS_PATH, get(list_webhooks))
            .route("/_sandbox/leads", get(control_leads))
            .route("/_sandbox/leads/{lead_id}/activity", post(trigger_activity))
            .route("/_sandbox/leads/{lead_id}/stage", post(trigger_stage))
            .route("/_sandbox/notes", get(control_notes))
            .route("/_sandbox/webhooks", get(list_webhooks))
            .route("/_sandbox/deliveries", get(control_deliveries));
        script::finish(routes, self)
    }

    pub fn config(&self) -> &LoftyConfig {
        &self.config
    }

    pub fn fail_next(&self, failure: Failure) {
        self.core.push(failure);
    }

    /// Every request and its answer.
    pub fn received(&self) -> Vec<Exchange> {
        self.core.received()
    }

    /// The leads kept (the newest, up to the log's capacity), oldest first.
    pub fn leads(&self) -> Vec<LoftyLead> {
        lock(&self.store).leads.to_vec()
    }

    /// The notes kept (the newest, up to the log's capacity), oldest first.
    pub fn notes(&self) -> Vec<LoftyNote> {
        lock(&self.store).notes.to_vec()
    }

    pub fn webhooks(&self) -> Vec<LoftyWebhook> {
        lock(&self.store).webhooks.clone()
    }

    /// Forget the current rate-limit windows.
    pub fn reset_rate_limit(&self) {
        lock(&self.store).windows = [None, None];
    }

    /// Every event sent (or held back by a subscription's limit), oldest first (the newest, up to the
    /// log's capacity).
    pub fn deliveries(&self) -> Vec<LoftyDelivery> {
        lock(&self.store).deliveries.to_vec()
    }

    /// POST `event` to every subscriber of `list_id` (one attempt each, within each subscription's limit).
    pub async fn emit(&self, list_id: i64, event: &Value) -> Vec<LoftyDelivery> {
        let targets: Vec<LoftyWebhook> = self
            .webhooks()
            .into_iter()
            .filter(|w| w.list_id == list_id)
            .collect();
        let mut deliveries = Vec::new();
        for target in targets {
            let delivery = if self.within_limit(&target) {
                let (status, error, answer) = match self
                    .client
                    .post(&target.callback_url)
                    .json(event)
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        (Some(status), None, response.text().await.ok())
                    }
                    Err(error) => (None, Some(error.to_string()), None),
                };
                LoftyDelivery {
                    subscribe_id: target.subscribe_id,
                    list_id,
                    url: target.callback_url,
                    status,
                    error,
                    answer,
                }
            } else {
                LoftyDelivery {
                    subscribe_id: target.subscribe_id,
                    list_id,
                    url: target.callback_url,
                    status: None,
                    error: Some("over the subscription's limit".to_owned()),
                    answer: None,
                }
            };
            lock(&self.store).deliveries.push(delivery.clone());
            deliveries.push(delivery);
        }
        deliveries
    }

    /// Whether `target` may be sent one more event now (its `limit` per [`LIMIT_WINDOW`]); counts it.
    fn within_limit(&self, target: &LoftyWebhook) -> bool {
        let Some(limit) = target.limit else {
            return true;
        };
        let mut store = lock(&self.store);
        let sent = store.sent.entry(target.subscribe_id).or_default();
        sent.retain(|at| at.elapsed() < LIMIT_WINDOW);
        let room = (sent.len() as i64) < limit;
        if room {
            sent.push(Instant::now());
        }
        room
    }

    /// The Lead Information event of `lead` (`eventType` `created` or `updated`).
    fn lead_information(lead: &LoftyLead, event_type: &str) -> Value {
        json!({
            "teamId": TEAM_ID,
            "listId": LEAD_INFORMATION,
            "eventType": event_type,
            "lead": lead.response(),
        })
    }

    /// Send `lead`'s Lead Information event in the background (the API answers first).
    fn emit_later(&self, event: Value) {
        let lofty = self.clone();
        tokio::spawn(async move {
            lofty.emit(LEAD_INFORMATION, &event).await;
        });
    }

    /// The consumer was active on the agent's site: send `activity` (a `LeadActivity`; `created` set to
    /// now when not given) for lead `lead_id` to the Lead Activity subscribers. `None` when there is no
    /// such lead.
    pub async fn lead_activity(&self, lead_id: i64, activity: Value) -> Option<Vec<LoftyDelivery>> {
        if !self.leads().iter().any(|lead| lead.lead_id == lead_id) {
            return None;
        }
        let mut activity = match activity {
            Value::Object(activity) => activity,
            _ => Map::new(),
        };
        activity
            .entry("created")
            .or_insert_with(|| json!(Utc::now().timestamp_millis()));
        let event = json!({
            "teamId": TEAM_ID,
            "listId": LEAD_ACTIVITY,
            "leadId": lead_id,
            "activity": activity,
        });
        Some(self.emit(LEAD_ACTIVITY, &event).await)
    }

    /// An agent moved lead `lead_id` to `stage`: it is updated, and its Lead Information event sent. `None`
    /// when there is no such lead.
    pub async fn set_stage(&self, lead_id: i64, stage: &str) -> Option<Vec<LoftyDelivery>> {
        let lead = {
            let mut store = lock(&self.store);
            let lead = store
                .leads
                .iter_mut()
                .find(|lead| lead.lead_id == lead_id)?;
            lead.stage = stage.to_owned();
            lead.last_update_time = Utc::now();
            lead.clone()
        };
        Some(
            self.emit(LEAD_INFORMATION, &Self::lead_information(&lead, "updated"))
                .await,
        )
    }

    /// The rate-limit headers of a keyless or vendor call, counting it when `count`; `Err` when over the
    /// limit.
    fn rate(&self, vendor: bool, count: bool) -> Result<HeaderMap, HeaderMap> {
        let limit = if vendor {
            self.config.vendor_rate_limit
        } else {
            self.config.rate_limit
        };
        let mut store = lock(&self.store);
        let slot = &mut store.windows[usize::from(vendor)];
        let expired = slot
            .as_ref()
            .is_none_or(|w| w.started.elapsed() >= self.config.window);
        if expired {
            if !count {
                let ends = Utc::now() + self.config.window;
                return Ok(rate_headers(limit, limit, ends));
            }
            *slot = Some(Window {
                started: Instant::now(),
                ends: Utc::now() + self.config.window,
                used: 0,
            });
        }
        let Some(window) = slot.as_mut() else {
            return Ok(HeaderMap::new());
        };
        if !count {
            return Ok(rate_headers(
                limit,
                limit.saturating_sub(window.used),
                window.ends,
            ));
        }
        if window.used >= limit {
            return Err(rate_headers(limit, 0, window.ends));
        }
        window.used += 1;
        Ok(rate_headers(limit, limit - window.used, window.ends))
    }
}

fn rate_headers(limit: u32, remaining: u32, ends: DateTime<Utc>) -> HeaderMap {
    let reset = ends.timestamp() + i64::from(ends.timestamp_subsec_nanos() > 0);
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("x-ratelimit-limit", i64::from(limit)),
        ("x-ratelimit-remaining", i64::from(remaining)),
        ("x-ratelimit-reset", reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    headers
}

fn with_headers(mut response: Response, headers: HeaderMap) -> Response {
    response.headers_mut().extend(headers);
    response
}

impl Emulator for Lofty {
    fn core(&self) -> &Core {
        &self.core
    }

    fn gate(&self, request: &Parts, _body: &Bytes) -> Gate {
        let vendor = self.config.vendor_key.as_deref().is_some_and(|key| {
            request
                .headers
                .get("vendorkey")
                .is_some_and(|sent| sent.as_bytes() == key.as_bytes())
        });
        if request.uri.path() == TOKEN_PATH {
            return Gate::Pass(HeaderMap::new());
        }
        if !script::bearer_token(&request.headers).is_some_and(|token| self.token_valid(token)) {
            let headers = self.rate(vendor, false).unwrap_or_else(|headers| headers);
            return Gate::Refuse(with_headers(
                script::message(StatusCode::UNAUTHORIZED, "Unauthorized"),
                headers,
            ));
        }
        match self.rate(vendor, true) {
            Ok(headers) => Gate::Pass(headers),
            Err(headers) => Gate::Refuse(with_headers(
                script::message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
                headers,
            )),
        }
    }

    fn reset(&self) {
        self.core.reset();
        {
            let mut store = lock(&self.store);
            let capacity = store.leads.capacity();
            *store = Store::default();
            store.set_capacity(capacity);
        }
        self.issue_first_token();
    }
}

fn bad_request(text: &str) -> Response {
    script::message(StatusCode::BAD_REQUEST, text)
}

fn strings(request: &Map<String, Value>, name: &str) -> Result<Vec<String>, String> {
    match request.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(|s| s.trim().to_owned())
                    .ok_or_else(|| format!("{name} must be an array of strings"))
            })
            .filter(|item| item.as_ref().map_or(true, |s| !s.is_empty()))
            .collect(),
        Some(_) => Err(format!("{name} must be an array of strings")),
    }
}

/// A phone's digits, a leading US `1` of an 11-digit number dropped.
fn phone_key(phone: &str) -> String {
    crate::ntherm::digits(phone)
}

async fn create_lead(State(lofty): State<Lofty>, body: Bytes) -> Response {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body must be a LeadRequest JSON object");
    };
    let (emails, phones) = match (strings(&request, "emails"), strings(&request, "phones")) {
        (Ok(emails), Ok(phones)) => (emails, phones),
        (Err(error), _) | (_, Err(error)) => return bad_request(&error),
    };
    if emails.is_empty() && phones.is_empty() {
        return bad_request("at least one email or phone is required");
    }
    if phones.iter().any(|p| p.chars().count() > MAX_PHONE_LEN) {
        return bad_request("a phone must be at most 20 characters");
    }
    let lead = {
        let mut store = lock(&lofty.store);
        store.next_lead += 1;
        let now = Utc::now();
        let lead = LoftyLead {
            lead_id: store.next_lead,
            create_time: now,
            request: Value::Object(request),
            emails,
            phones,
            stage: FIRST_STAGE.to_owned(),
            last_update_time: now,
        };
        store.leads.push(lead.clone());
        lead
    };
    lofty.emit_later(Lofty::lead_information(&lead, "created"));
    (StatusCode::OK, Json(json!({ "leadId": lead.lead_id }))).into_response()
}

#[derive(Deserialize)]
struct Search {
    email: Option<String>,
    phone: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

async fn search_leads(State(lofty): State<Lofty>, Query(search): Query<Search>) -> Response {
    let offset = match search.offset.as_deref().map(str::parse::<u64>) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => return bad_request("offset must be a whole number of at least 0"),
    };
    let limit = match search.limit.as_deref().map(str::parse::<u32>) {
        None => DEFAULT_PAGE_LIMIT,
        Some(Ok(limit)) if (1..=MAX_PAGE_LIMIT).contains(&limit) => limit,
        Some(_) => return bad_request("limit must be between 1 and 100"),
    };
    let email = search.email.map(|e| e.trim().to_lowercase());
    let phone = search.phone.map(|p| phone_key(&p));
    let matching: Vec<Value> = lofty
        .leads()
        .iter()
        .filter(|lead| {
            email
                .as_ref()
                .is_none_or(|e| lead.emails.iter().any(|x| x.to_lowercase() == *e))
        })
        .filter(|lead| {
            phone
                .as_ref()
                .is_none_or(|p| lead.phones.iter().any(|x| phone_key(x) == *p))
        })
        .map(LoftyLead::response)
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .map(|lead| json!({ "lead": lead }))
        .collect();
    Json(json!({
        "_metadata": {"collection": "leads", "limit": limit, "offset": offset, "total": total},
        "leads": page,
    }))
    .into_response()
}

async fn create_note(State(lofty): State<Lofty>, body: Bytes) -> Response {
    let Ok(Value::Object(note)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body must be a NoteRequest JSON object");
    };
    let Some(lead_id) = note.get("leadId").and_then(Value::as_i64) else {
        return bad_request("leadId is required");
    };
    let content = match note.get("content").and_then(Value::as_str) {
        Some(content) if !content.trim().is_empty() => content.to_owned(),
        _ => return bad_request("content is required"),
    };
    let is_pin = match note.get("isPin") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(pin)) => *pin,
        Some(_) => return bad_request("isPin must be a boolean"),
    };
    let (note_id, lead) = {
        let mut store = lock(&lofty.store);
        let Some(lead) = store.leads.iter_mut().find(|l| l.lead_id == lead_id) else {
            return script::message(StatusCode::NOT_FOUND, "Lead not found");
        };
        lead.last_update_time = Utc::now();
        let lead = lead.clone();
        store.next_note += 1;
        let note_id = store.next_note;
        store.notes.push(LoftyNote {
            note_id,
            lead_id,
            content,
            is_pin,
            create_time: Utc::now(),
        });
        (note_id, lead)
    };
    lofty.emit_later(Lofty::lead_information(&lead, "updated"));
    (StatusCode::OK, Json(json!({ "noteId": note_id }))).into_response()
}

async fn subscribe(State(lofty): State<Lofty>, body: Bytes) -> Response {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body must be a WebhookRequest JSON object");
    };
    let list_id = match request.get("listId").and_then(Value::as_i64) {
        Some(id @ 1..=4) => id,
        _ => return bad_request("listId must be 1, 2, 3 or 4"),
    };
    let callback_url = match request.get("callbackUrl").and_then(Value::as_str) {
        Some(url)
            if reqwest::Url::parse(url)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .unwrap_or(false) =>
        {
            url.to_owned()
        }
        _ => return bad_request("callbackUrl must be an absolute http(s) URL"),
    };
    let limit = match request.get("limit") {
        None | Some(Value::Null) => None,
        Some(limit) => match limit.as_i64() {
            Some(limit @ 1..=MAX_WEBHOOK_LIMIT) => Some(limit),
            _ => return bad_request("limit must be between 1 and 5000"),
        },
    };
    let mut store = lock(&lofty.store);
    store.next_webhook += 1;
    let webhook = LoftyWebhook {
        subscribe_id: store.next_webhook,
        list_id,
        callback_url,
        limit,
        team_id: TEAM_ID,
        vendor_id: VENDOR_ID,
    };
    store.webhooks.push(webhook.clone());
    (StatusCode::OK, Json(webhook)).into_response()
}

async fn list_webhooks(State(lofty): State<Lofty>) -> Json<Vec<LoftyWebhook>> {
    Json(lofty.webhooks())
}

async fn unsubscribe(State(lofty): State<Lofty>, Path(subscribe_id): Path<String>) -> Response {
    let Ok(subscribe_id) = subscribe_id.parse::<i64>() else {
        return script::message(StatusCode::NOT_FOUND, "Not Found");
    };
    let mut store = lock(&lofty.store);
    let before = store.webhooks.len();
    store.webhooks.retain(|w| w.subscribe_id != subscribe_id);
    if store.webhooks.len() == before {
        return script::message(StatusCode::NOT_FOUND, "Not Found");
    }
    (StatusCode::OK, Json(json!({ "subscribeId": subscribe_id }))).into_response()
}

async fn control_leads(State(lofty): State<Lofty>) -> Json<Vec<LoftyLead>> {
    Json(lofty.leads())
}

async fn control_notes(State(lofty): State<Lofty>) -> Json<Vec<LoftyNote>> {
    Json(lofty.notes())
}

async fn control_deliveries(State(lofty): State<Lofty>) -> Json<Vec<LoftyDelivery>> {
    Json(lofty.deliveries())
}

fn triggered(deliveries: Option<Vec<LoftyDelivery>>) -> Response {
    match deliveries {
        Some(deliveries) => Json(json!({ "deliveries": deliveries })).into_response(),
        None => script::message(StatusCode::NOT_FOUND, "Lead not found"),
    }
}

/// `POST /_sandbox/leads/{leadId}/activity` with a `LeadActivity` object (`{}` for a bare one).
async fn trigger_activity(
    State(lofty): State<Lofty>,
    Path(lead_id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(lead_id) = lead_id.parse::<i64>() else {
        return script::message(StatusCode::NOT_FOUND, "Lead not found");
    };
    let activity = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(activity @ Value::Object(_)) => activity,
            _ => return bad_request("the body must be a LeadActivity JSON object"),
        }
    };
    triggered(lofty.lead_activity(lead_id, activity).await)
}

/// `POST /_sandbox/leads/{leadId}/stage` with `{"stage": "..."}`.
async fn trigger_stage(
    State(lofty): State<Lofty>,
    Path(lead_id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(lead_id) = lead_id.parse::<i64>() else {
        return script::message(StatusCode::NOT_FOUND, "Lead not found");
    };
    let stage = match serde_json::from_slice::<Value>(&body) {
        Ok(body) => match body.get("stage").and_then(Value::as_str) {
            Some(stage) if !stage.trim().is_empty() => stage.trim().to_owned(),
            _ => return bad_request("stage is required"),
        },
        Err(_) => return bad_request("the body must be {\"stage\": \"...\"}"),
    };
    triggered(lofty.set_stage(lead_id, &stage).await)
}

/// `POST /v1.0/oauth/token`, the RFC 6749 refresh-token grant (form `grant_type=refresh_token&
/// refresh_token=…`): a new access token (living `token_lifetime`) and a new refresh token, the old refresh
/// token no longer working (issued access tokens live on until they expire); 200 with an `OauthTokenInfo`
/// (6.59), times in epoch milliseconds. A wrong or spent refresh token: 400 `{"error": "invalid_grant"}`
/// (RFC 6749, 5.2); another grant type: 400 `{"error": "unsupported_grant_type"}`.
async fn refresh_token(State(lofty): State<Lofty>, body: Bytes) -> Response {
    let form: Vec<(String, String)> = match reqwest::Url::parse("http://form.invalid/") {
        Ok(mut url) => {
            url.set_query(Some(&String::from_utf8_lossy(&body)));
            url.query_pairs().into_owned().collect()
        }
        Err(_) => Vec::new(),
    };
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let oauth_error =
        |error: &str| (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    if field("grant_type").as_deref() != Some("refresh_token") {
        return oauth_error("unsupported_grant_type");
    }
    let mut store = lock(&lofty.store);
    if field("refresh_token").as_deref() != Some(store.refresh_token.as_str()) {
        return oauth_error("invalid_grant");
    }
    store.refreshes += 1;
    let n = store.refreshes;
    let suffix: u64 = rand_suffix();
    let token = format!("{}-r{n}-{suffix:x}", lofty.config.access_token);
    let refresh = format!("{}-r{n}-{suffix:x}", lofty.config.refresh_token);
    let lifetime = lofty.config.token_lifetime;
    let now = Instant::now();
    store
        .tokens
        .retain(|(_, expires)| expires.is_none_or(|at| now < at));
    store
        .tokens
        .push((token.clone(), lifetime.map(|l| now + l)));
    store.refresh_token = refresh.clone();
    let expires = lifetime.map_or(Utc::now() + chrono::Duration::days(3650), |l| {
        Utc::now() + chrono::Duration::from_std(l).unwrap_or_default()
    });
    let refresh_expires =
        Utc::now() + chrono::Duration::from_std(REFRESH_TOKEN_LIFETIME).unwrap_or_default();
    Json(json!({
        "token": token,
        "tokenExpireTime": expires.timestamp_millis(),
        "refreshToken": refresh,
        "refreshTokenExpireTime": refresh_expires.timestamp_millis(),
    }))
    .into_response()
}

fn rand_suffix() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ u64::from(std::process::id())
}
