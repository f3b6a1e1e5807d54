//! LeadSafe SSN screening (seed `003_19d01d59c89bd75f.txt`).
//!
//! - Basic auth: the API key as user, the client secret as password; else 401 `{"message":
//!   "Unauthorized"}`.
//! - `POST /leadsafe/search` `{"SocialSecurityNumber": "111111222"}` → `{"result": "Red"|"Amber"|"Green"}`.
//! - `POST /leadsafe/search-detailed` → `{"details": [{"reason", "startDate": "2024-04-02T00:00:00",
//!   "endDate": null}], "result": ...}`.
//! - `POST /leadsafe/add` `{"Records": [{"EndDate", "Reason", "SocialSecurityNumber", "StartDate"}]}` →
//!   `{"code": 100, "message": "Records added"}`.
//! - Seeding: [`LeadSafe::add`], [`LeadSafe::load_csv`] (the seed's SFTP format `ClientCode,
//!   SocialSecurityNumber,StartDate,EndDate,Reason`), `POST /_sandbox/records` (CSV text, or the `add`
//!   JSON), `GET /_sandbox/records`.
//!
//! Choices where the seed is silent, written down here:
//! - The result (the seed gives no mapping): a record is active when it has no `EndDate` or its `EndDate`
//!   is after today (UTC). Red when an active record's reason is in [`LeadSafeConfig::red_reasons`]
//!   (default: every reason but `DebtConsolidation`); Amber when there are records but none of those
//!   (only `DebtConsolidation`, or only ended records); Green when the SSN has no record.
//! - Add/update: a record is identified by SSN, reason and start date; sending it again replaces its end
//!   date (that is how "the customer left the status" is told).
//! - An SSN is 9 digits; dashes and spaces are ignored. Dates are `YYYY-MM-DD` (a `T00:00:00` time is
//!   accepted); `EndDate` may be null, absent or empty, and not before `StartDate`. Anything else, or a
//!   reason not in the seed's list, is 400 `{"code": 400, "message": "..."}` and nothing of that request
//!   is added. The seed gives no error body.
//! - `details` are in start-date order.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Value};

use crate::script::{self, lock, Core, Emulator, Gate};
pub use crate::script::{Exchange, Failure};
use crate::Running;

pub const SEARCH_PATH: &str = "/leadsafe/search";
pub const SEARCH_DETAILED_PATH: &str = "/leadsafe/search-detailed";
pub const ADD_PATH: &str = "/leadsafe/add";
pub const CSV_HEADER: &str = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason";

/// The seed's reasons: the hub's LeadSafe client's own type.
/// Why a customer is on the list: seed 003's nine reasons, spelled as the seed spells them (the emulator's
/// own list, not the hub's client's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reason {
    Default,
    RevokePaymentAuth,
    Lawsuit,
    RegulatoryComplaint,
    DebtConsolidation,
    SuspectedIdTheft,
    Bankruptcy,
    Abusive,
    Deceased,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Default,
        Reason::RevokePaymentAuth,
        Reason::Lawsuit,
        Reason::RegulatoryComplaint,
        Reason::DebtConsolidation,
        Reason::SuspectedIdTheft,
        Reason::Bankruptcy,
        Reason::Abusive,
        Reason::Deceased,
    ];
}

impl std::str::FromStr for Reason {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        // The seed's names are the variants' names, which serde writes as they are.
        serde_json::from_value(Value::String(s.to_owned())).map_err(|_| ())
    }
}

/// The screening answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Rag {
    Red,
    Amber,
    Green,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSafeConfig {
    pub api_key: String,
    pub client_secret: String,
    /// Reasons that make an active record Red. Default: all but `DebtConsolidation`.
    pub red_reasons: BTreeSet<Reason>,
}

impl LeadSafeConfig {
    pub fn new(api_key: impl Into<String>, client_secret: impl Into<String>) -> Self {
        LeadSafeConfig {
            api_key: api_key.into(),
            client_secret: client_secret.into(),
            red_reasons: Reason::ALL
                .into_iter()
                .filter(|r| *r != Reason::DebtConsolidation)
                .collect(),
        }
    }
}

/// One record the sandbox holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// 9 digits.
    pub ssn: String,
    pub reason: Reason,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    /// From a CSV upload.
    pub client_code: Option<String>,
}

impl Record {
    /// No end date, or one after `today`.
    pub fn is_active(&self, today: NaiveDate) -> bool {
        self.end_date.is_none_or(|end| end > today)
    }
}

/// A record as the `add` endpoint takes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AddRecord {
    #[serde(rename = "SocialSecurityNumber")]
    pub social_security_number: Option<String>,
    #[serde(rename = "Reason")]
    pub reason: Option<String>,
    #[serde(rename = "StartDate")]
    pub start_date: Option<String>,
    #[serde(rename = "EndDate", default)]
    pub end_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AddRequest {
    #[serde(rename = "Records")]
    pub records: Vec<AddRecord>,
}

/// `search-detailed`'s `details` item, in the seed's field order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detail {
    pub reason: Reason,
    #[serde(rename = "startDate", serialize_with = "midnight")]
    pub start_date: NaiveDate,
    #[serde(rename = "endDate", serialize_with = "midnight_or_null")]
    pub end_date: Option<NaiveDate>,
}

fn midnight<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}T00:00:00", date.format("%Y-%m-%d")))
}

fn midnight_or_null<S: Serializer>(date: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(date) => midnight(date, s),
        None => s.serialize_none(),
    }
}

/// `search-detailed`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detailed {
    pub details: Vec<Detail>,
    pub result: Rag,
}

#[derive(Clone)]
pub struct LeadSafe {
    config: Arc<LeadSafeConfig>,
    core: Core,
    records: Arc<Mutex<Vec<Record>>>,
}

impl LeadSafe {
    pub fn new(config: LeadSafeConfig) -> Self {
        LeadSafe {
            config: Arc::new(config),
            core: Core::default(),
            records: Arc::default(),
        }
    }

    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<Running> {
        Running::serve(addr, self.router()).await
    }

    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route(SEARCH_PATH, post(search))
            .route(SEARCH_DETAILED_PATH, post(search_detailed))
            .route(ADD_PATH, post(add))
            .route("/_sandbox/records", post(control_load).get(control_records));
        script::finish(routes, self)
    }

    /// Keep the newest `capacity` requests in the log (at least one). The records LeadSafe holds are its
    /// database, not a log: they grow only with `add` and CSV loads.
    pub fn with_log_capacity(self, capacity: usize) -> Self {
        self.core.set_log_capacity(capacity);
        self
    }

    pub fn fail_next(&self, failure: Failure) {
        self.core.push(failure);
    }

    /// Every request and its answer.
    pub fn received(&self) -> Vec<Exchange> {
        self.core.received()
    }

    /// The SSNs searched for (either search), in order.
    pub fn searched(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(|e| e.path == SEARCH_PATH || e.path == SEARCH_DETAILED_PATH)
            .filter_map(|e| e.body["SocialSecurityNumber"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn records(&self) -> Vec<Record> {
        lock(&self.records).clone()
    }

    /// Add or update records (same SSN, reason and start date: the end date is replaced).
    pub fn add(&self, records: impl IntoIterator<Item = Record>) {
        let mut held = lock(&self.records);
        for record in records {
            match held.iter_mut().find(|r| {
                r.ssn == record.ssn
                    && r.reason == record.reason
                    && r.start_date == record.start_date
            }) {
                Some(existing) => {
                    existing.end_date = record.end_date;
                    if record.client_code.is_some() {
                        existing.client_code = record.client_code;
                    }
                }
                None => held.push(record),
            }
        }
    }

    /// Load the seed's CSV upload (`ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason`; the header
    /// line is optional, blank lines are skipped). All or nothing: the first bad line is the error.
    pub fn load_csv(&self, csv: &str) -> Result<usize, String> {
        let records = parse_csv(csv)?;
        let count = records.len();
        self.add(records);
        Ok(count)
    }

    /// The answer for an SSN (9 digits) today.
    pub fn screen(&self, ssn: &str) -> Detailed {
        let today = Utc::now().date_naive();
        let mut held: Vec<Record> = lock(&self.records)
            .iter()
            .filter(|r| r.ssn == ssn)
            .cloned()
            .collect();
        held.sort_by_key(|r| (r.start_date, r.reason));
        let result = if held.is_empty() {
            Rag::Green
        } else if held
            .iter()
            .any(|r| r.is_active(today) && self.config.red_reasons.contains(&r.reason))
        {
            Rag::Red
        } else {
            Rag::Amber
        };
        Detailed {
            details: held
                .into_iter()
                .map(|r| Detail {
                    reason: r.reason,
                    start_date: r.start_date,
                    end_date: r.end_date,
                })
                .collect(),
            result,
        }
    }
}

impl Emulator for LeadSafe {
    fn core(&self) -> &Core {
        &self.core
    }

    fn gate(&self, request: &Parts, _body: &Bytes) -> Gate {
        match script::basic_credentials(&request.headers) {
            Some((key, secret))
                if key == self.config.api_key && secret == self.config.client_secret =>
            {
                Gate::pass()
            }
            _ => Gate::Refuse(script::message(StatusCode::UNAUTHORIZED, "Unauthorized")),
        }
    }

    fn reset(&self) {
        self.core.reset();
        lock(&self.records).clear();
    }
}

/// 9 digits, dashes and spaces ignored.
pub fn normalize_ssn(raw: &str) -> Result<String, String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    if digits.len() == 9 && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err("SocialSecurityNumber must be 9 digits".into())
    }
}

fn date(raw: &str, name: &str) -> Result<NaiveDate, String> {
    let raw = raw.trim();
    let day = raw.strip_suffix("T00:00:00").unwrap_or(raw);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| format!("{name} must be a date as YYYY-MM-DD"))
}

fn record(
    ssn: Option<&str>,
    reason: Option<&str>,
    start: Option<&str>,
    end: Option<&str>,
    client_code: Option<String>,
) -> Result<Record, String> {
    let ssn = normalize_ssn(ssn.ok_or("SocialSecurityNumber is required")?)?;
    let reason = reason.ok_or("Reason is required")?.trim();
    let reason: Reason = reason
        .parse()
        .map_err(|_| format!("Invalid Reason: {reason}"))?;
    let start_date = date(start.ok_or("StartDate is required")?, "StartDate")?;
    let end_date = match end.map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(end) => Some(date(end, "EndDate")?),
    };
    if end_date.is_some_and(|end| end < start_date) {
        return Err("EndDate must not be before StartDate".into());
    }
    Ok(Record {
        ssn,
        reason,
        start_date,
        end_date,
        client_code,
    })
}

/// The `add` request's records, all valid or the first problem.
pub fn parse_add(request: &AddRequest) -> Result<Vec<Record>, String> {
    request
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            record(
                r.social_security_number.as_deref(),
                r.reason.as_deref(),
                r.start_date.as_deref(),
                r.end_date.as_deref(),
                None,
            )
            .map_err(|e| format!("Records[{i}]: {e}"))
        })
        .collect()
}

/// The seed's CSV format, all valid or the first problem (with its line number).
pub fn parse_csv(csv: &str) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    for (i, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.eq_ignore_ascii_case(CSV_HEADER)) {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let [client, ssn, start, end, reason] = cells[..] else {
            return Err(format!("line {}: expected 5 columns ({CSV_HEADER})", i + 1));
        };
        let client = (!client.is_empty()).then(|| client.to_owned());
        records.push(
            record(Some(ssn), Some(reason), Some(start), Some(end), client)
                .map_err(|e| format!("line {}: {e}", i + 1))?,
        );
    }
    Ok(records)
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"code": 400, "message": message})),
    )
        .into_response()
}

fn ssn_of(body: &Bytes) -> Result<String, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| "the body must be a JSON object".to_owned())?;
    let raw = value
        .get("SocialSecurityNumber")
        .and_then(Value::as_str)
        .ok_or_else(|| "SocialSecurityNumber is required".to_owned())?;
    normalize_ssn(raw)
}

async fn search(State(leadsafe): State<LeadSafe>, body: Bytes) -> Response {
    match ssn_of(&body) {
        Ok(ssn) => Json(json!({ "result": leadsafe.screen(&ssn).result })).into_response(),
        Err(error) => bad_request(&error),
    }
}

async fn search_detailed(State(leadsafe): State<LeadSafe>, body: Bytes) -> Response {
    match ssn_of(&body) {
        Ok(ssn) => Json(leadsafe.screen(&ssn)).into_response(),
        Err(error) => bad_request(&error),
    }
}

async fn add(State(leadsafe): State<LeadSafe>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<AddRequest>(&body) else {
        return bad_request("the body must be {\"Records\": [...]}");
    };
    match parse_add(&request) {
        Ok(records) => {
            leadsafe.add(records);
            Json(json!({"code": 100, "message": "Records added"})).into_response()
        }
        Err(error) => bad_request(&error),
    }
}

async fn control_load(State(leadsafe): State<LeadSafe>, body: Bytes) -> Response {
    let loaded = match serde_json::from_slice::<AddRequest>(&body) {
        Ok(request) => parse_add(&request).map(|records| {
            let n = records.len();
            leadsafe.add(records);
            n
        }),
        Err(_) => leadsafe.load_csv(&String::from_utf8_lossy(&body)),
    };
    match loaded {
        Ok(n) => Json(json!({ "loaded": n })).into_response(),
        Err(error) => bad_request(&error),
    }
}

async fn control_records(State(leadsafe): State<LeadSafe>) -> Json<Vec<Record>> {
    Json(leadsafe.records())
}
