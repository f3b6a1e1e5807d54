//! A lender that takes HELOC leads in seed `001_fe0d22b72b37bc1d.txt`'s schema.
//!
//! - `POST /leads` ([`DEFAULT_PATH`]; configurable). Any other path or method: 404 `{"message": "Not
//!   Found"}`.
//! - When an API key is configured, `Authorization: Bearer <key>` is required, else 401 `{"message":
//!   "Unauthorized"}`.
//! - The body is checked against the seed's schema and rules with the emulator's own small checker
//!   ([`problems`]: required fields, enums, booleans, 2-letter states, ZIPs, email format, `propertyUnits`
//!   1-4, and the condo, multi-unit and investment rules): problems give 400 `{"message": "Invalid lead",
//!   "errors": [{"field", "code", "message"}, ...]}`. Unknown fields are let through (the seed is silent).
//! - "Must not already exist in the system (quotes or users)": an email already quoted, or one of the
//!   configured users' emails (trimmed, case-insensitive), gives 409 `{"message": "Email already exists"}`.
//! - Otherwise 201 `{"id": "quote-<n>"}`.
//!
//! The lender keeps its newest [`DEFAULT_LOG_CAPACITY`](crate::DEFAULT_LOG_CAPACITY) quotes (and requests
//! in its log), or as many as [`HelocLender::with_log_capacity`] says: an email whose quote was dropped
//! past that may be quoted again (users' emails are kept for good).
//!
//! Choices where the seed is silent: the path, the bearer key, and every response body are ours; the
//! seed describes only the request.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use crate::script::{self, lock, Core, Emulator, Gate, Ring};
pub use crate::script::{Exchange, Failure};
use crate::Running;

pub const DEFAULT_PATH: &str = "/leads";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelocLenderConfig {
    /// `Authorization: Bearer` required when set. Default none.
    pub api_key: Option<String>,
    /// Default [`DEFAULT_PATH`].
    pub path: String,
    /// Emails of the lender's existing users. Default empty.
    pub existing_emails: Vec<String>,
}

impl HelocLenderConfig {
    /// No key, [`DEFAULT_PATH`], no existing users.
    pub fn new() -> Self {
        HelocLenderConfig {
            api_key: None,
            path: DEFAULT_PATH.into(),
            existing_emails: Vec::new(),
        }
    }

    /// No key, [`DEFAULT_PATH`], no existing users, and this key.
    pub fn with_api_key(api_key: impl Into<String>) -> Self {
        HelocLenderConfig {
            api_key: Some(api_key.into()),
            ..HelocLenderConfig::new()
        }
    }
}

impl Default for HelocLenderConfig {
    fn default() -> Self {
        HelocLenderConfig::new()
    }
}

/// A lead the lender quoted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quote {
    /// `quote-<n>`.
    pub id: String,
    /// Normalised (trimmed, lower-cased).
    pub email: String,
    /// As posted.
    pub lead: Value,
}

struct Book {
    /// The newest quotes.
    quotes: Ring<Quote>,
    /// The emails of `quotes`.
    quoted: BTreeSet<String>,
    /// The lender's users' emails.
    users: BTreeSet<String>,
    /// Quotes made since the start (or the last reset).
    made: u64,
}

impl Book {
    fn exists(&self, email: &str) -> bool {
        self.quoted.contains(email) || self.users.contains(email)
    }

    /// Forget the email of a quote dropped from the ring.
    fn dropped(&mut self, quote: Option<Quote>) {
        if let Some(quote) = quote {
            self.quoted.remove(&quote.email);
        }
    }
}

#[derive(Clone)]
pub struct HelocLender {
    config: Arc<HelocLenderConfig>,
    core: Core,
    book: Arc<Mutex<Book>>,
}

fn normalize(email: &str) -> String {
    email.trim().to_lowercase()
}

impl HelocLender {
    pub fn new(config: HelocLenderConfig) -> Self {
        let path = if config.path.is_empty() {
            DEFAULT_PATH.into()
        } else {
            config.path.clone()
        };
        let users = config
            .existing_emails
            .iter()
            .map(|e| normalize(e))
            .collect();
        HelocLender {
            config: Arc::new(HelocLenderConfig { path, ..config }),
            core: Core::default(),
            book: Arc::new(Mutex::new(Book {
                quotes: Ring::default(),
                quoted: BTreeSet::new(),
                users,
                made: 0,
            })),
        }
    }

    /// Keep the newest `capacity` quotes and requests (at least one).
    pub fn with_log_capacity(self, capacity: usize) -> Self {
        self.core.set_log_capacity(capacity);
        {
            let mut book = lock(&self.book);
            for quote in book.quotes.set_capacity(capacity) {
                book.dropped(Some(quote));
            }
        }
        self
    }

    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<Running> {
        Running::serve(addr, self.router()).await
    }

    pub fn router(&self) -> Router {
        script::finish(Router::new().route(&self.config.path, post(create)), self)
    }

    pub fn config(&self) -> &HelocLenderConfig {
        &self.config
    }

    pub fn fail_next(&self, failure: Failure) {
        self.core.push(failure);
    }

    /// Every request and its answer.
    pub fn received(&self) -> Vec<Exchange> {
        self.core.received()
    }

    /// The quotes kept, oldest first.
    pub fn quotes(&self) -> Vec<Quote> {
        lock(&self.book).quotes.to_vec()
    }

    /// Make an email "already exist" (a user of the lender).
    pub fn add_existing_email(&self, email: &str) {
        lock(&self.book).users.insert(normalize(email));
    }
}

impl Emulator for HelocLender {
    fn core(&self) -> &Core {
        &self.core
    }

    fn gate(&self, request: &Parts, _body: &Bytes) -> Gate {
        if request.method != Method::POST || request.uri.path() != self.config.path {
            return Gate::Refuse(script::message(StatusCode::NOT_FOUND, "Not Found"));
        }
        if let Some(key) = &self.config.api_key {
            if script::bearer_token(&request.headers) != Some(key.as_str()) {
                return Gate::Refuse(script::message(StatusCode::UNAUTHORIZED, "Unauthorized"));
            }
        }
        Gate::pass()
    }

    fn reset(&self) {
        self.core.reset();
        let mut book = lock(&self.book);
        book.quotes.clear();
        book.quoted.clear();
        book.made = 0;
        book.users = self
            .config
            .existing_emails
            .iter()
            .map(|e| normalize(e))
            .collect();
    }
}

async fn create(State(lender): State<HelocLender>, body: Bytes) -> Response {
    let lead = match serde_json::from_slice::<Value>(&body) {
        Ok(lead) => lead,
        Err(_) => return script::message(StatusCode::BAD_REQUEST, "body is not JSON"),
    };
    let errors = problems(&lead);
    if !errors.is_empty() {
        let errors: Vec<Value> = errors
            .into_iter()
            .map(|(field, code, message)| json!({"field": field, "code": code, "message": message}))
            .collect();
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "Invalid lead", "errors": errors})),
        )
            .into_response();
    }
    let email = normalize(lead["contactInfo"]["email"].as_str().unwrap_or_default());
    let mut book = lock(&lender.book);
    if book.exists(&email) {
        return script::message(StatusCode::CONFLICT, "Email already exists");
    }
    book.made += 1;
    let id = format!("quote-{}", book.made);
    book.quoted.insert(email.clone());
    let dropped = book.quotes.push(Quote {
        id: id.clone(),
        email,
        lead,
    });
    book.dropped(dropped);
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

const BUILDING_TYPES: [&str; 5] = ["singleFamily", "multiUnit", "condo", "townhouse", "other"];
const LOAN_PURPOSES: [&str; 5] = [
    "debtConsolidation",
    "homeImprovement",
    "investment",
    "education",
    "other",
];
const PROPERTY_USAGES: [&str; 3] = ["primaryResidence", "secondHome", "investment"];
const RENTAL_OCCUPANCIES: [&str; 3] = ["longTerm", "shortTerm", "vacant"];

/// Seed 001's schema and validation rules, as (field path, code, message) problems; empty when the lead
/// passes.
pub fn problems(lead: &Value) -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    let mut problem = |field: &str, code: &'static str, message: String| {
        out.push((field.to_owned(), code, message))
    };
    if !lead.is_object() {
        problem("$", "invalid_type", "must be an object".into());
        return out;
    }
    let at = |path: &str| {
        path.split('.')
            .try_fold(lead, |value, key| value.get(key))
            .filter(|value| !value.is_null())
    };
    let text = |path: &str| at(path).and_then(Value::as_str).map(str::trim);
    let required_text =
        |path: &str, problem: &mut dyn FnMut(&str, &'static str, String)| match at(path) {
            None => problem(path, "required", "is required".into()),
            Some(Value::String(v)) if !v.trim().is_empty() => {}
            Some(_) => problem(path, "invalid_type", "must be a non-empty string".into()),
        };
    for object in ["contactInfo", "address", "residentialAddress"] {
        if !at(object).is_some_and(Value::is_object) {
            problem(object, "required", "is required (an object)".into());
        }
    }
    for path in [
        "contactInfo.firstName",
        "contactInfo.lastName",
        "contactInfo.email",
        "contactInfo.phone",
        "address.street",
        "address.city",
        "address.state",
        "address.zip",
        "residentialAddress.street",
        "residentialAddress.city",
        "residentialAddress.state",
        "residentialAddress.zip",
    ] {
        required_text(path, &mut problem);
    }
    for (path, values) in [
        ("buildingType", &BUILDING_TYPES[..]),
        ("loanPurpose", &LOAN_PURPOSES[..]),
        ("propertyUsage", &PROPERTY_USAGES[..]),
    ] {
        match text(path) {
            Some(v) if values.contains(&v) => {}
            Some(_) => problem(
                path,
                "invalid_value",
                format!("must be one of: {}", values.join(", ")),
            ),
            None => problem(path, "required", "is required".into()),
        }
    }
    for path in [
        "listedForSaleIn6Months",
        "purchasedOrSubjectToMortgageIn6Months",
        "liabilitiesIn4Years",
    ] {
        if !at(path).is_some_and(Value::is_boolean) {
            problem(path, "required", "is required (true or false)".into());
        }
    }
    for path in ["address.state", "residentialAddress.state"] {
        if let Some(state) = text(path) {
            if state.len() != 2 || !state.bytes().all(|b| b.is_ascii_alphabetic()) {
                problem(
                    path,
                    "invalid_format",
                    "must be a 2-letter state code".into(),
                );
            }
        }
    }
    for path in ["address.zip", "residentialAddress.zip"] {
        if let Some(zip) = text(path) {
            let (five, four) = zip.split_once('-').unwrap_or((zip, ""));
            let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(five, 5) || !(four.is_empty() && !zip.contains('-') || digits(four, 4)) {
                problem(
                    path,
                    "invalid_format",
                    "must be a ZIP code (12345 or 12345-6789)".into(),
                );
            }
        }
    }
    if let Some(email) = text("contactInfo.email") {
        let valid = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.split('.').count() >= 2
                && domain.split('.').all(|label| !label.is_empty())
        });
        if !valid {
            problem(
                "contactInfo.email",
                "invalid_format",
                "must be a valid email address".into(),
            );
        }
    }
    for path in [
        "address.unitNumber",
        "residentialAddress.unitNumber",
        "statedInformation.monthlyRentalIncome",
    ] {
        if at(path).is_some_and(|v| !v.is_number()) {
            problem(path, "invalid_type", "must be a number".into());
        }
    }
    let units = at("propertyUnits");
    if let Some(units) = units {
        if !units.as_u64().is_some_and(|n| (1..=4).contains(&n)) {
            problem(
                "propertyUnits",
                "out_of_range",
                "must be 1, 2, 3 or 4".into(),
            );
        }
    }
    // Rule 1: condos give their unit number.
    if text("buildingType") == Some("condo") && at("address.unitNumber").is_none() {
        problem(
            "address.unitNumber",
            "required",
            "is required when buildingType is condo".into(),
        );
    }
    // Rule 2: multi-unit properties have 2 to 4 units.
    if text("buildingType") == Some("multiUnit") {
        match units.and_then(Value::as_u64) {
            None => problem(
                "propertyUnits",
                "required",
                "is required when buildingType is multiUnit".into(),
            ),
            Some(n) if !(2..=4).contains(&n) => problem(
                "propertyUnits",
                "out_of_range",
                "must be 2 to 4 when buildingType is multiUnit".into(),
            ),
            Some(_) => {}
        }
    }
    // Rule 3: investment properties state their occupancy, and a rented one its income (> 0).
    if text("propertyUsage") == Some("investment") {
        match text("statedInformation.rentalOccupancy") {
            None => problem(
                "statedInformation.rentalOccupancy",
                "required",
                "is required when propertyUsage is investment".into(),
            ),
            Some(occupancy) if !RENTAL_OCCUPANCIES.contains(&occupancy) => problem(
                "statedInformation.rentalOccupancy",
                "invalid_value",
                format!("must be one of: {}", RENTAL_OCCUPANCIES.join(", ")),
            ),
            Some("vacant") => {}
            Some(_) => match at("statedInformation.monthlyRentalIncome").and_then(Value::as_f64) {
                None => problem(
                    "statedInformation.monthlyRentalIncome",
                    "required",
                    "is required for an investment property that is not vacant".into(),
                ),
                Some(income) if income <= 0.0 => problem(
                    "statedInformation.monthlyRentalIncome",
                    "out_of_range",
                    "must be greater than 0".into(),
                ),
                Some(_) => {}
            },
        }
    } else if let Some(occupancy) = text("statedInformation.rentalOccupancy") {
        if !RENTAL_OCCUPANCIES.contains(&occupancy) {
            problem(
                "statedInformation.rentalOccupancy",
                "invalid_value",
                format!("must be one of: {}", RENTAL_OCCUPANCIES.join(", ")),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::problems;
    use serde_json::json;

    fn lead() -> serde_json::Value {
        json!({
            "buildingType": "singleFamily", "loanPurpose": "homeImprovement", "propertyUsage": "primaryResidence",
            "contactInfo": {"firstName": "A", "lastName": "B", "email": "a@b.example", "phone": "+17275550134"},
            "address": {"street": "1 Main", "city": "Tampa", "state": "FL", "zip": "33606"},
            "residentialAddress": {"street": "1 Main", "city": "Tampa", "state": "FL", "zip": "33606-1234"},
            "listedForSaleIn6Months": false, "purchasedOrSubjectToMortgageIn6Months": false, "liabilitiesIn4Years": false
        })
    }

    fn fields(lead: &serde_json::Value) -> Vec<String> {
        problems(lead)
            .into_iter()
            .map(|(field, _, _)| field)
            .collect()
    }

    #[test]
    fn every_rule_of_the_seed() {
        assert!(fields(&lead()).is_empty());
        let with = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut l = lead();
            edit(&mut l);
            fields(&l)
        };
        assert_eq!(
            with(&|l| l["buildingType"] = json!("condo")),
            ["address.unitNumber"]
        );
        assert_eq!(
            with(&|l| l["buildingType"] = json!("multiUnit")),
            ["propertyUnits"]
        );
        assert_eq!(
            with(&|l| {
                l["buildingType"] = json!("multiUnit");
                l["propertyUnits"] = json!(1)
            }),
            ["propertyUnits"]
        );
        assert_eq!(with(&|l| l["propertyUnits"] = json!(5)), ["propertyUnits"]);
        assert_eq!(
            with(&|l| l["propertyUsage"] = json!("investment")),
            ["statedInformation.rentalOccupancy"]
        );
        assert_eq!(
            with(&|l| {
                l["propertyUsage"] = json!("investment");
                l["statedInformation"] =
                    json!({"rentalOccupancy": "longTerm", "monthlyRentalIncome": 0})
            }),
            ["statedInformation.monthlyRentalIncome"]
        );
        assert!(with(&|l| {
            l["propertyUsage"] = json!("investment");
            l["statedInformation"] = json!({"rentalOccupancy": "vacant"})
        })
        .is_empty());
        assert_eq!(
            with(&|l| l["loanPurpose"] = json!("yacht")),
            ["loanPurpose"]
        );
        assert_eq!(
            with(&|l| l["contactInfo"]["email"] = json!("nope")),
            ["contactInfo.email"]
        );
        assert_eq!(
            with(&|l| l["address"]["state"] = json!("Florida")),
            ["address.state"]
        );
        assert_eq!(
            with(&|l| l["address"]["zip"] = json!("3360")),
            ["address.zip"]
        );
        assert_eq!(
            with(&|l| l["liabilitiesIn4Years"] = json!("no")),
            ["liabilitiesIn4Years"]
        );
        assert_eq!(
            with(&|l| {
                l.as_object_mut()
                    .expect("object")
                    .remove("residentialAddress");
            })
            .len(),
            5,
            "the object and its four required fields"
        );
    }
}
