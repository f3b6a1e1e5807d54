//! Lofty CRM (seed 004): `POST /v1.0/leads` with a `LeadRequest`, after an optional duplicate lookup.
//!
//! Seed sections implemented here: 2.1 (bearer auth, the vendor key, the keyless limit of ten calls a
//! minute), 3 (offset/limit and `_metadata` of the lookup answer), 4 (the `X-RateLimit-*` headers and 429),
//! 5.5.3 (create a lead, `leadRouting`), 5.5.4 (the lead search: `email`, `phone`, `preciseSearchFlag`),
//! 5.7.1 (`NoteRequest`), 6.44 (`LeadRequest`); 5.12 (webhooks) in [`webhooks`].
//!
//! A delivery is one to three requests, each built here and answered through [`next`]:
//! 1. with `duplicate_lookup`: `GET /v1.0/leads?email=…&preciseSearchFlag=true&offset=0&limit=1` (the
//!    seed's "precise search for lead by email address"), or, for a lead without an email, the same with
//!    `phone=…` ("precise search for lead by phone number"; the phone as the lead has it, E.164, which is
//!    also what a created lead carries in `phones`);
//! 2. an existing contact gets `POST /v1.0/notes` (`NoteRequest {leadId, content}`) instead of a second
//!    lead; the note carries the inquiry ([`note_content`]): the vertical, what was asked (real estate:
//!    lead types, time frames, price, rooms, property types, locations, the lead's own property, its
//!    message; other verticals: their main ask, such as a HELOC's purpose or a mortgage's loan amount) and
//!    the contact fields the lead has (names, emails, phones, address, birthday). Only named fields are
//!    read: nothing else a lead carries reaches the note, and a normalised lead never holds an SSN;
//! 3. otherwise `POST /v1.0/leads` with the `LeadRequest`: the real-estate lead as normalised (it already uses
//!    Lofty's field names), or the contact of any other vertical; plus the destination's `source`, `tags`,
//!    default `leadType`, and `leadRouting: true` when the destination asks for Lofty's routing and the lead
//!    has a location that routing acts on ([`routable`]; 5.5.3: a seller is routed by its `property`, anyone
//!    else by `inquiry.locations[]`; a location counts with a zip code, or a city and a state). Otherwise
//!    the flag is not sent ("lead routing will not be applied unless the leadRouting flag is set to true"),
//!    so a lead without a routable location goes to the account's default owner instead of failing routing.
//!
//! Webhooks (5.12: the subscription calls, the hub's intake URL, the events Lofty posts) are in [`webhooks`].
//!
//! Choices where the seed is silent or ambiguous, written down:
//! - Auth: `Authorization: Bearer <access_token>`; the configured `access_token` is the first token. The
//!   optional vendor key (credential `vendor_key`) goes in a `vendorKey` header: the seed names the key,
//!   not the header. With a `refresh_token` credential the hub renews the token itself
//!   ([`crate::access_tokens`], stored for every dispatcher in [`crate::store::BuyerTokens`]): the seed
//!   documents the token info (6.59 `OauthTokenInfo {token, tokenExpireTime, refreshToken,
//!   refreshTokenExpireTime}`, 5.11.2) but no refresh endpoint, so the hub uses the RFC 6749 (6)
//!   refresh-token grant, `POST /v1.0/oauth/token` form `grant_type=refresh_token&refresh_token=…`
//!   ([`refresh_request`]) answered by an `OauthTokenInfo` ([`read_token_info`]; its times as epoch
//!   milliseconds, epoch seconds or RFC 3339, the seed giving no format). No client id or secret is sent
//!   (the token info names none). A token is renewed ahead of its expiry and upon a 401 (the refused request
//!   is sent again with the new token, not as another attempt); 400/401/403 from the token endpoint mean
//!   the refresh token is refused (the delivery fails: an operator must authorise the hub again).
//! - The destination URL is the API's base (`https://api.lofty.com`); paths are appended.
//! - Rate limits: `429` is retried at `X-RateLimit-Reset`. The seed defines it as "UTC epoch seconds" but its
//!   own examples show `23000` and `21000`; values above 10^12 are read as epoch milliseconds, above 10^9 as
//!   epoch seconds, and smaller ones as milliseconds until the reset (which fits the examples' 21-23 s within a
//!   one-minute window). `Retry-After` is honoured when present. Every answer's `X-RateLimit-*` headers
//!   are read ([`rate_limit`]) and dispatch paces its calls on them ([`crate::pacing`]: in memory, per
//!   process): a delivery asks for the calls it plans ([`planned_requests`]: the lookup and the note or
//!   create) before it claims an attempt, and waits for the window's reset when there is no room. A 429
//!   (another caller used the window, or another instance) is waited out without using an attempt.
//! - Answers: every 2xx is success (the create answer is "200 OK string": its id is read from a JSON
//!   `leadId`/`id`, or the body itself when it is a bare number or string; the webhook delete may answer
//!   204); 401/403 are credentials (failed, not retried); 404 is configuration (failed), except on the note
//!   step, where it means the contact found by the lookup is gone, so the lead is created instead; 400/422
//!   reject the lead; 408/429/5xx are retried. Only a 429 waits for `X-RateLimit-Reset` (the window's end
//!   says nothing about when a 5xx will pass); 408/5xx wait for `Retry-After` or the destination's backoff.
//! - The note's `leadId` is an `integer(int64)` (6.57): a lookup answer that gives the id as a string of
//!   digits is sent as the number.
//! - A destination's `[destinations.response]` rules ([`crate::answer_rules`]) read the answer that ends the
//!   delivery (the note's or the new lead's 2xx), never the duplicate lookup's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    excerpt, retry_after, BuildError, BuyerRequest, BuyerResponse, Connector, ConnectorKind,
    DeliveryContext, Destination, Next, Takes,
};

pub mod webhooks;
use crate::config::{ConfigError, ConnectorSection};
use crate::delivery::Outcome;
use crate::lead::LeadRecord;
use crate::pacing::RateLimit;
use crate::verticals::Vertical;

/// The credential holding the OAuth bearer token.
pub const ACCESS_TOKEN: &str = "access_token";
/// The credential holding the optional vendor key (sent as `vendorKey`).
pub const VENDOR_KEY: &str = "vendor_key";
/// The credential holding the optional OAuth refresh token that renews the access token.
pub const REFRESH_TOKEN: &str = "refresh_token";
/// The token endpoint (the hub's choice: the seed documents the token info, not the endpoint).
pub const TOKEN_PATH: &str = "/v1.0/oauth/token";

/// What a lofty destination takes: its access token, optionally a vendor key; any vertical (every lead
/// has a contact); its `[destinations.lofty]` settings.
const TAKES: Takes = Takes {
    kind: ConnectorKind::Lofty,
    signs: false,
    credentials: &[ACCESS_TOKEN],
    optional_credentials: &[VENDOR_KEY, REFRESH_TOKEN],
    verticals: None,
};

/// Check a lofty destination's section (at configuration load): `TAKES`, and its settings
/// (`[destinations.lofty]`, defaults when not given). Problems with the settings name `destinations[i].lofty`.
pub fn check(section: &ConnectorSection<'_>) -> Result<LoftyOptions, ConfigError> {
    let Some(table) = TAKES.check(section)? else {
        return Ok(LoftyOptions::default());
    };
    let options = LoftyOptions::deserialize(table.clone())
        .map_err(|error| ConfigError::new(section.key("lofty"), error.message().to_owned()))?;
    options
        .check()
        .map_err(|problem| ConfigError::new(section.key("lofty"), problem))?;
    Ok(options)
}

/// Per-destination settings (`[destinations.lofty]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoftyOptions {
    /// Look the email up first and add a note to an existing contact instead of creating a second lead.
    #[serde(default = "yes")]
    pub duplicate_lookup: bool,
    /// Ask Lofty to route the lead with its own routing rules.
    #[serde(default)]
    pub lead_routing: bool,
    /// `source` of created leads, unless the lead names its own.
    #[serde(default = "default_source")]
    pub source: String,
    /// Tags added to the lead's own.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `leadType` when the lead gives none: Other (-1), Seller (1), Buyer (2), Buyer & Seller (3), Renter (5).
    #[serde(default)]
    pub lead_type: Option<i64>,
}

fn yes() -> bool {
    true
}

fn default_source() -> String {
    "leadhub".into()
}

impl Default for LoftyOptions {
    fn default() -> Self {
        LoftyOptions {
            duplicate_lookup: true,
            lead_routing: false,
            source: default_source(),
            tags: Vec::new(),
            lead_type: None,
        }
    }
}

impl LoftyOptions {
    /// Check the settings (at configuration load).
    pub fn check(&self) -> Result<(), String> {
        if let Some(kind) = self.lead_type {
            if ![-1, 1, 2, 3, 5].contains(&kind) {
                return Err(
                    "lead_type must be one of -1, 1, 2, 3, 5 (the seed's leadType ids)".into(),
                );
            }
        }
        if self.source.trim().is_empty() || self.source.len() > 255 {
            return Err("source must be 1-255 characters".into());
        }
        Ok(())
    }
}

/// The step a request is, told from the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Lookup,
    Note,
    Create,
}

fn step_of(request: &BuyerRequest) -> Step {
    if request.method == Method::GET {
        Step::Lookup
    } else if request.url.path().ends_with("/notes") {
        Step::Note
    } else {
        Step::Create
    }
}

fn headers(destination: &Destination) -> Result<HeaderMap, BuildError> {
    let token = destination
        .credential(ACCESS_TOKEN)
        .ok_or_else(|| BuildError("the destination has no access_token credential".into()))?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| BuildError("the access_token is not a valid header value".into()))?;
    bearer.set_sensitive(true);
    headers.insert(AUTHORIZATION, bearer);
    if let Some(key) = destination.credential(VENDOR_KEY) {
        let mut value = HeaderValue::from_str(key.expose())
            .map_err(|_| BuildError("the vendor_key is not a valid header value".into()))?;
        value.set_sensitive(true);
        headers.insert("vendorKey", value);
    }
    Ok(headers)
}

fn url(destination: &Destination, path: &str) -> Result<reqwest::Url, BuildError> {
    let base = destination.url.as_str().trim_end_matches('/');
    reqwest::Url::parse(&format!("{base}{path}"))
        .map_err(|e| BuildError(format!("bad Lofty URL: {e}")))
}

fn options(context: &DeliveryContext<'_>) -> LoftyOptions {
    match &context.destination.connector {
        Connector::Lofty(options) => options.clone(),
        _ => LoftyOptions::default(),
    }
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

/// The lead's first email, from any vertical.
fn email(vertical: Vertical, lead: &Value) -> Option<String> {
    match vertical {
        Vertical::RealEstate => text(lead, "/emails/0"),
        Vertical::Heloc => text(lead, "/contactInfo/email"),
        Vertical::Mortgage => text(lead, "/borrower/email"),
        Vertical::Solar => text(lead, "/email"),
    }
}

/// The lead's first phone, as it was given (Lofty stores it so, and its search is by phone number).
fn phone(vertical: Vertical, lead: &Value) -> Option<String> {
    match vertical {
        Vertical::RealEstate => text(lead, "/phones/0"),
        Vertical::Heloc => text(lead, "/contactInfo/phone"),
        Vertical::Mortgage => text(lead, "/borrower/phone"),
        Vertical::Solar => text(lead, "/phone_number"),
    }
}

/// The `LeadRequest` for this lead.
pub fn lead_request(context: &DeliveryContext<'_>) -> Value {
    let lead = context.lead.lead.value();
    let options = options(context);
    let mut request: Map<String, Value> = match context.lead.vertical {
        // Already Lofty's LeadRequest field names (seed 004, 6.44).
        Vertical::RealEstate => lead.as_object().cloned().unwrap_or_default(),
        Vertical::Heloc => {
            let mut r = Map::new();
            r.insert("firstName".into(), lead["contactInfo"]["firstName"].clone());
            r.insert("lastName".into(), lead["contactInfo"]["lastName"].clone());
            r.insert("emails".into(), json!([lead["contactInfo"]["email"]]));
            r.insert("phones".into(), json!([lead["contactInfo"]["phone"]]));
            r.insert(
                "streetAddress".into(),
                lead["residentialAddress"]["street"].clone(),
            );
            r.insert("city".into(), lead["residentialAddress"]["city"].clone());
            r.insert("state".into(), lead["residentialAddress"]["state"].clone());
            r.insert("zipCode".into(), lead["residentialAddress"]["zip"].clone());
            r
        }
        Vertical::Mortgage => {
            let mut r = Map::new();
            r.insert("firstName".into(), lead["borrower"]["firstName"].clone());
            r.insert("lastName".into(), lead["borrower"]["lastName"].clone());
            r.insert("emails".into(), json!([lead["borrower"]["email"]]));
            if let Some(phone) = lead["borrower"]["phone"].as_str() {
                r.insert("phones".into(), json!([phone]));
            }
            r.insert("city".into(), lead["property"]["city"].clone());
            r.insert("state".into(), lead["property"]["state"].clone());
            r
        }
        Vertical::Solar => {
            let mut r = Map::new();
            let name = lead["customer_name"].as_str().unwrap_or_default();
            let (first, last) = name.split_once(' ').unwrap_or((name, ""));
            r.insert("firstName".into(), json!(first));
            if !last.is_empty() {
                r.insert("lastName".into(), json!(last.trim()));
            }
            r.insert("emails".into(), json!([lead["email"]]));
            r.insert("phones".into(), json!([lead["phone_number"]]));
            r.insert("streetAddress".into(), lead["street"].clone());
            r.insert("city".into(), lead["city"].clone());
            r.insert("state".into(), lead["state"].clone());
            r.insert("zipCode".into(), lead["zip"].clone());
            r
        }
    };
    request.retain(|_, value| !value.is_null());
    request
        .entry("source")
        .or_insert_with(|| json!(options.source));
    if !options.tags.is_empty() {
        let mut tags: Vec<Value> = request
            .get("tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for tag in &options.tags {
            if !tags.contains(&json!(tag)) {
                tags.push(json!(tag));
            }
        }
        request.insert("tags".into(), Value::Array(tags));
    }
    if let Some(kind) = options.lead_type {
        request.entry("leadType").or_insert_with(|| json!(kind));
    }
    request.remove("leadRouting");
    if options.lead_routing && routable(&request) {
        request.insert("leadRouting".into(), json!(true));
    }
    Value::Object(request)
}

/// Whether Lofty's lead routing can act on the request's location (5.5.3: "Seller(1) Type Lead routing is
/// controlled by LeadRequest.property schema. If the given leadType is not Seller, the lead routing is
/// determined by array LeadRequest.inquiry.locations[]"): a seller's `property`, anyone else's
/// `inquiry.locations[]`, with a zip code or a city and a state.
pub fn routable(request: &Map<String, Value>) -> bool {
    let place = |value: &Value, state_key: &str| {
        let given = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty())
        };
        given("zipCode") || (given("city") && given(state_key))
    };
    if request.get("leadType").and_then(Value::as_i64) == Some(1) {
        request.get("property").is_some_and(|p| place(p, "state"))
    } else {
        request
            .get("inquiry")
            .and_then(|i| i.get("locations"))
            .and_then(Value::as_array)
            .is_some_and(|locations| locations.iter().any(|l| place(l, "stateCode")))
    }
}

fn create(context: &DeliveryContext<'_>) -> Result<BuyerRequest, BuildError> {
    let body = serde_json::to_vec(&lead_request(context))
        .map_err(|e| BuildError(format!("cannot encode the lead: {e}")))?;
    Ok(BuyerRequest {
        method: Method::POST,
        url: url(context.destination, "/v1.0/leads")?,
        headers: headers(context.destination)?,
        body,
    })
}

/// The most characters of one free-text value (a message, a description) quoted in a note.
const NOTE_TEXT_CHARS: usize = 500;

/// A value as note text: strings trimmed (and cut at [`NOTE_TEXT_CHARS`]), numbers as written; `None` when
/// blank or absent.
fn shown(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => {
            let s = s.trim();
            Some(match s.char_indices().nth(NOTE_TEXT_CHARS) {
                Some((cut, _)) => format!("{}…", &s[..cut]),
                None => s.to_owned(),
            })
        }
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if n.as_i64().is_none() && f.fract() == 0.0 && f.abs() < 1e15 => {
                format!("{}", f as i64)
            }
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
        _ => None,
    }
}

/// `min`-`max`, or the one given, with a unit (`$` before, a word after).
fn range(value: &Value, min: &str, max: &str, dollars: bool, unit: &str) -> Option<String> {
    let money = |v: String| {
        if !dollars {
            return v;
        }
        match v.parse::<u64>() {
            Ok(n) => {
                let digits = n.to_string();
                let mut out = String::new();
                for (i, c) in digits.chars().enumerate() {
                    if i > 0 && (digits.len() - i) % 3 == 0 {
                        out.push(',');
                    }
                    out.push(c);
                }
                format!("${out}")
            }
            Err(_) => format!("${v}"),
        }
    };
    let (low, high) = (
        shown(value.get(min)).map(money),
        shown(value.get(max)).map(money),
    );
    let span = match (low, high) {
        (Some(low), Some(high)) if low == high => low,
        (Some(low), Some(high)) => format!("{low}-{high}"),
        (Some(low), None) => format!("from {low}"),
        (None, Some(high)) => format!("up to {high}"),
        (None, None) => return None,
    };
    Some(if unit.is_empty() {
        span
    } else {
        format!("{span} {unit}")
    })
}

/// "street, city, state zip" of the fields given under these keys.
fn place(value: &Value, street: &str, city: &str, state: &str, zip: &str) -> Option<String> {
    let state_zip: Vec<String> = [state, zip]
        .iter()
        .filter_map(|key| shown(value.get(*key)))
        .collect();
    let parts: Vec<String> = [shown(value.get(street)), shown(value.get(city))]
        .into_iter()
        .flatten()
        .chain((!state_zip.is_empty()).then(|| state_zip.join(" ")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The strings of an array (or the one string), joined.
fn listed(value: Option<&Value>) -> Option<String> {
    let items: Vec<String> = match value? {
        Value::Array(items) => items.iter().filter_map(|v| shown(Some(v))).collect(),
        other => shown(Some(other)).into_iter().collect(),
    };
    (!items.is_empty()).then(|| items.join(", "))
}

/// Lofty's names of `leadType` / `leadTypes` ids (6.44).
fn lead_type_name(id: i64) -> Option<&'static str> {
    Some(match id {
        -1 => "other",
        1 => "seller",
        2 => "buyer",
        3 => "buyer & seller",
        5 => "renter",
        6 => "investor",
        7 => "agent",
        8 => "homeowner",
        9 => "landlord",
        _ => return None,
    })
}

/// What a real-estate lead asks for: its lead types, time frames, the inquiry (price, rooms, property
/// types, locations), the lead's own property, and its message.
fn real_estate_ask(lead: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    let mut types: Vec<&str> = lead
        .get("leadType")
        .and_then(Value::as_i64)
        .and_then(lead_type_name)
        .into_iter()
        .collect();
    for id in lead
        .get("leadTypes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
    {
        if let Some(name) = lead_type_name(id).filter(|name| !types.contains(name)) {
            types.push(name);
        }
    }
    if !types.is_empty() {
        lines.push(format!("Looking as: {}.", types.join(", ")));
    }
    let frames: Vec<String> = [
        ("buying", "buyingTimeFrame"),
        ("selling", "sellingTimeFrame"),
    ]
    .iter()
    .filter_map(|(what, key)| shown(lead.get(*key)).map(|frame| format!("{what} within {frame}")))
    .collect();
    if !frames.is_empty() {
        lines.push(format!("Time frame: {}.", frames.join("; ")));
    }
    if let Some(inquiry) = lead.get("inquiry") {
        let wants: Vec<String> = [
            range(inquiry, "priceMin", "priceMax", true, ""),
            range(inquiry, "bedroomsMin", "bedroomsMax", false, "bedrooms"),
            range(inquiry, "bathroomsMin", "bathroomsMax", false, "bathrooms"),
            listed(inquiry.get("propertyType")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !wants.is_empty() {
            lines.push(format!("Wants: {}.", wants.join("; ")));
        }
        let places: Vec<String> = inquiry
            .get("locations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|location| {
                let at = place(location, "streetAddress", "city", "stateCode", "zipCode");
                match (shown(location.get("description")), at) {
                    (Some(description), Some(at)) => Some(format!("{description} ({at})")),
                    (one, other) => one.or(other),
                }
            })
            .collect();
        if !places.is_empty() {
            lines.push(format!("Where: {}.", places.join("; ")));
        }
    }
    if let Some(property) = lead.get("property") {
        let about: Vec<String> = [
            place(property, "streetAddress", "city", "state", "zipCode"),
            range(property, "price", "price", true, "").map(|p| format!("price {p}")),
            range(property, "priceMin", "priceMax", true, "expected"),
            shown(property.get("bedrooms")).map(|n| format!("{n} bedrooms")),
            shown(property.get("bathrooms")).map(|n| format!("{n} bathrooms")),
            shown(property.get("squareFeet")).map(|n| format!("{n} sq ft")),
            shown(property.get("propertyType")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !about.is_empty() {
            lines.push(format!("Their property: {}.", about.join("; ")));
        }
    }
    if let Some(message) = shown(lead.get("content")) {
        lines.push(format!("Message: {message}"));
    }
    lines
}

/// What a lead of another vertical asks for: its main ask in its own words.
fn other_ask(vertical: Vertical, lead: &Value) -> Vec<String> {
    let ask = match vertical {
        Vertical::Heloc => [
            shown(lead.get("loanPurpose")).map(|p| format!("purpose {p}")),
            shown(lead.get("propertyUsage")).map(|u| format!("property used as {u}")),
            shown(lead.get("buildingType")).map(|b| format!("building {b}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>(),
        Vertical::Mortgage => [
            shown(lead.get("purpose")).map(|p| format!("purpose {p}")),
            range(lead, "loanAmount", "loanAmount", true, "loan"),
            range(&lead["property"], "value", "value", true, "property value"),
            place(&lead["property"], "street", "city", "state", "zip")
                .map(|p| format!("property in {p}")),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Vertical::Solar => [
            shown(lead.get("utility")).map(|u| format!("utility {u}")),
            shown(lead.get("vendor_campaign_name")).map(|c| format!("campaign {c}")),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Vertical::RealEstate => Vec::new(),
    };
    let what = match vertical {
        Vertical::Heloc => "A home-equity line of credit",
        Vertical::Mortgage => "A mortgage",
        Vertical::Solar => "Solar for their home",
        Vertical::RealEstate => "Real estate",
    };
    if ask.is_empty() {
        vec![format!("Asked for: {what}.")]
    } else {
        vec![format!("Asked for: {what}: {}.", ask.join("; "))]
    }
}

/// The contact fields the lead has, from the `LeadRequest` built for it (so the same fields as a new lead
/// would carry: names, emails, phones, address; never an SSN, which no `LeadRequest` has).
fn contact_line(request: &Value) -> Option<String> {
    let name: Vec<String> = ["firstName", "lastName"]
        .iter()
        .filter_map(|key| shown(request.get(*key)))
        .collect();
    let parts: Vec<String> = [
        (!name.is_empty()).then(|| name.join(" ")),
        listed(request.get("emails")).map(|e| format!("email {e}")),
        listed(request.get("phones")).map(|p| format!("phone {p}")),
        place(request, "streetAddress", "city", "state", "zipCode").map(|a| format!("address {a}")),
        shown(request.get("birthday")).map(|b| format!("birthday {b}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| format!("Contact: {}.", parts.join("; ")))
}

/// The note added to an existing contact: the inquiry, so the agent sees what was asked without opening
/// the hub — the vertical and when, what was asked (real estate: lead types, time frames, price, rooms,
/// property types, locations, the lead's own property and message; other verticals: their main ask), and
/// the contact fields the lead has. Only the fields named here are read, so nothing else a lead carries
/// (an SSN is never in a normalised lead, and no field here could hold one) reaches the note.
pub fn note_content(context: &DeliveryContext<'_>) -> String {
    let lead = context.lead.lead.value();
    let mut lines = vec![format!(
        "New {} inquiry from leadhub (lead {}), received {}.",
        context.lead.vertical,
        context.lead.id,
        context.lead.created_at.format("%Y-%m-%d %H:%M UTC")
    )];
    lines.extend(match context.lead.vertical {
        Vertical::RealEstate => real_estate_ask(&lead),
        vertical => other_ask(vertical, &lead),
    });
    lines.extend(contact_line(&lead_request(context)));
    lines.join("\n")
}

fn note(context: &DeliveryContext<'_>, lofty_lead_id: &Value) -> Result<BuyerRequest, BuildError> {
    let content = note_content(context);
    let body = serde_json::to_vec(&json!({"leadId": lofty_lead_id, "content": content}))
        .map_err(|e| BuildError(format!("cannot encode the note: {e}")))?;
    Ok(BuyerRequest {
        method: Method::POST,
        url: url(context.destination, "/v1.0/notes")?,
        headers: headers(context.destination)?,
        body,
    })
}

/// What the duplicate lookup searches by: the lead's email, or its phone when it has no email (5.5.4's
/// `email` and `phone` query parameters, each a precise search with `preciseSearchFlag`); `None` when the
/// lookup is turned off or the lead has neither.
fn lookup_key(context: &DeliveryContext<'_>) -> Option<(&'static str, String)> {
    lookup_key_of(context.lead, context.destination)
}

fn lookup_key_of(lead: &LeadRecord, destination: &Destination) -> Option<(&'static str, String)> {
    let looks_up = match &destination.connector {
        Connector::Lofty(options) => options.duplicate_lookup,
        _ => LoftyOptions::default().duplicate_lookup,
    };
    if !looks_up {
        return None;
    }
    let value = lead.lead.value();
    email(lead.vertical, &value)
        .map(|email| ("email", email))
        .or_else(|| phone(lead.vertical, &value).map(|phone| ("phone", phone)))
}

/// How many requests a delivery to this destination makes when nothing goes wrong: the lookup and the
/// note or create, or the create alone. Dispatch paces its calls on it.
pub fn planned_requests(lead: &LeadRecord, destination: &Destination) -> u32 {
    if lookup_key_of(lead, destination).is_some() {
        2
    } else {
        1
    }
}

/// The first request of a delivery: the duplicate lookup, or the create.
pub fn build(context: &DeliveryContext<'_>) -> Result<BuyerRequest, BuildError> {
    match lookup_key(context) {
        Some((key, value)) => {
            let mut url = url(context.destination, "/v1.0/leads")?;
            url.query_pairs_mut()
                .append_pair(key, &value)
                .append_pair("preciseSearchFlag", "true")
                .append_pair("offset", "0")
                .append_pair("limit", "1");
            Ok(BuyerRequest {
                method: Method::GET,
                url,
                headers: headers(context.destination)?,
                body: Vec::new(),
            })
        }
        _ => create(context),
    }
}

/// The delay until the rate-limit window resets (see the module docs for the header's forms).
pub fn rate_limit_reset(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value: i64 = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let millis = if value > 1_000_000_000_000 {
        value - now.timestamp_millis()
    } else if value > 1_000_000_000 {
        value * 1000 - now.timestamp_millis()
    } else {
        value
    };
    Some(Duration::from_millis(millis.max(0) as u64))
}

/// The token refresh: `POST /v1.0/oauth/token` with the RFC 6749 (6) refresh-token grant,
/// `application/x-www-form-urlencoded` `grant_type=refresh_token&refresh_token=…`, sent with the vendor
/// key when there is one. Lofty answers with an `OauthTokenInfo` (6.59, [`read_token_info`]).
pub fn refresh_request(
    destination: &Destination,
    refresh_token: &str,
) -> Result<BuyerRequest, BuildError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    if let Some(key) = destination.credential(VENDOR_KEY) {
        headers.insert(
            "vendorKey",
            super::secret_header(key.expose(), "vendor_key")?,
        );
    }
    // The form encoding of a URL's query is `application/x-www-form-urlencoded`'s.
    let mut form = reqwest::Url::parse("http://form.invalid/")
        .map_err(|e| BuildError(format!("cannot encode the form: {e}")))?;
    form.query_pairs_mut()
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token);
    let body = form.query().unwrap_or_default().as_bytes().to_vec();
    Ok(BuyerRequest {
        method: Method::POST,
        url: url(destination, TOKEN_PATH)?,
        headers,
        body,
    })
}

/// A token as Lofty's token info gives it (6.59 `OauthTokenInfo`).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub token: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_token: Option<String>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for TokenInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenInfo")
            .field("expires_at", &self.expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

/// Why a refresh gave no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The refresh token was refused (400/401/403): an operator must authorise the hub again.
    #[error("Lofty refused the refresh token ({0}): authorise the hub again")]
    Refused(u16),
    /// A passing problem (429, 5xx, an answer that is not a token info).
    #[error("Lofty could not refresh the token: {0}")]
    Unavailable(String),
}

/// A time of the token info: the seed gives no format; epoch milliseconds (as Lofty's other times), epoch
/// seconds (a number below 10^11), or an RFC 3339 string.
fn token_time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    match value? {
        Value::Number(n) => {
            let n = n.as_i64()?;
            if n < 100_000_000_000 {
                DateTime::from_timestamp(n, 0)
            } else {
                DateTime::from_timestamp_millis(n)
            }
        }
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| token_time(Some(&Value::from(s.trim().parse::<i64>().ok()?)))),
        _ => None,
    }
}

/// Read the token endpoint's answer: a 2xx `OauthTokenInfo` `{token, tokenExpireTime, refreshToken,
/// refreshTokenExpireTime}`. Never repeats a token in an error.
pub fn read_token_info(response: &BuyerResponse) -> Result<TokenInfo, RefreshError> {
    match response.status {
        200..=299 => {}
        400 | 401 | 403 => return Err(RefreshError::Refused(response.status)),
        status => {
            return Err(RefreshError::Unavailable(format!(
                "the token endpoint answered {status}"
            )))
        }
    }
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|_| RefreshError::Unavailable("the token endpoint's answer is not JSON".into()))?;
    let token = text(&body, "/token")
        .filter(|t| HeaderValue::from_str(&format!("Bearer {t}")).is_ok())
        .ok_or_else(|| {
            RefreshError::Unavailable("the token endpoint's answer has no usable token".into())
        })?;
    Ok(TokenInfo {
        token,
        expires_at: token_time(body.get("tokenExpireTime")),
        refresh_token: text(&body, "/refreshToken"),
        refresh_expires_at: token_time(body.get("refreshTokenExpireTime")),
    })
}

/// `request` with `token` as its bearer (a request resent after a refresh).
pub fn with_token(mut request: BuyerRequest, token: &str) -> Result<BuyerRequest, BuildError> {
    request.headers.insert(
        AUTHORIZATION,
        super::secret_header(&format!("Bearer {token}"), "access_token")?,
    );
    Ok(request)
}

/// The rate-limit window an answer announces (4: `X-RateLimit-Remaining` and `X-RateLimit-Reset`, with
/// `X-RateLimit-Limit` when given; the reset read as [`rate_limit_reset`] does), for dispatch's pacing.
pub fn rate_limit(headers: &HeaderMap, now: DateTime<Utc>) -> Option<RateLimit> {
    let number =
        |name: &str| -> Option<u32> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    let remaining = number("x-ratelimit-remaining")?;
    let resets_at = now + chrono::Duration::from_std(rate_limit_reset(headers, now)?).ok()?;
    Some(RateLimit {
        limit: number("x-ratelimit-limit"),
        remaining,
        resets_at,
    })
}

/// The outcome of a failed answer (any step), or `None` for success.
fn failure(response: &BuyerResponse, now: DateTime<Utc>) -> Option<Outcome> {
    let status = response.status;
    let code = format!("http_{status}");
    match status {
        200..=299 => None,
        429 => Some(Outcome::retry(
            &code,
            "Lofty's rate limit was reached (429)",
            retry_after(response, now).or_else(|| rate_limit_reset(&response.headers, now)),
        )),
        401 | 403 => Some(Outcome::failed(
            &code,
            format!("Lofty refused our credentials ({status})"),
        )),
        404 => Some(Outcome::failed(
            &code,
            "Lofty answered 404: check the destination URL",
        )),
        408 | 425 | 500..=599 => Some(Outcome::retry(
            &code,
            format!("Lofty could not answer ({status})"),
            retry_after(response, now),
        )),
        _ => {
            let message = serde_json::from_slice::<Value>(&response.body)
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .and_then(Value::as_str)
                        .map(|m| excerpt(m.as_bytes(), 200))
                })
                .unwrap_or_else(|| "no reason given".into());
            Some(Outcome::rejected(
                &code,
                format!("Lofty declined the lead ({status}): {message}"),
                true,
            ))
        }
    }
}

/// An id in a JSON answer (`leadId`, `id`), or the body itself when it is a bare number or string.
fn answered_id(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let id = match &value {
        Value::Object(object) => object.get("leadId").or_else(|| object.get("id")).cloned()?,
        other => other.clone(),
    };
    match id {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() && s.len() <= 64 => Some(s),
        _ => None,
    }
}

/// The existing contact found by a lookup answer (`{"_metadata": …, "leads": [{"lead": {"id": …}}]}`).
fn found_lead_id(body: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let first = value.get("leads")?.as_array()?.first()?;
    let id = first
        .pointer("/lead/id")
        .or_else(|| first.pointer("/lead/leadId"))
        .or_else(|| first.get("id"))
        .or_else(|| first.get("leadId"))?;
    match id {
        Value::Number(n) if n.is_i64() => Some(id.clone()),
        Value::String(s) => s.trim().parse::<i64>().ok().map(Value::from),
        _ => None,
    }
}

/// A single answer read on its own (any step): success is acceptance.
pub fn classify(response: &BuyerResponse, now: DateTime<Utc>) -> Outcome {
    failure(response, now).unwrap_or(Outcome::Accepted {
        price: None,
        buyer_ref: answered_id(&response.body),
    })
}

/// Decide after the answer to `request`.
pub fn next(
    context: &DeliveryContext<'_>,
    request: &BuyerRequest,
    response: &BuyerResponse,
    now: DateTime<Utc>,
) -> Next {
    let send = |built: Result<BuyerRequest, BuildError>| match built {
        Ok(request) => Next::Send(request),
        Err(error) => Next::Done(Outcome::failed("build_failed", error.0)),
    };
    let step = step_of(request);
    if step == Step::Note && response.status == 404 {
        // The contact the lookup found is gone (deleted or merged since): create the lead after all.
        return send(create(context));
    }
    if let Some(outcome) = failure(response, now) {
        return Next::Done(outcome);
    }
    match step {
        Step::Lookup => send(match found_lead_id(&response.body) {
            Some(id) => note(context, &id),
            None => create(context),
        }),
        // The existing contact's id (an int64, see `found_lead_id`) is the reference.
        Step::Note => Next::Done(Outcome::Accepted {
            price: None,
            buyer_ref: serde_json::from_slice::<Value>(&request.body)
                .ok()
                .and_then(|body| body["leadId"].as_i64())
                .map(|id| id.to_string()),
        }),
        Step::Create => Next::Done(Outcome::Accepted {
            price: None,
            buyer_ref: answered_id(&response.body),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::test_support::{
        destination, example_lead, now, response, CALLBACK_URL, IDEMPOTENCY_KEY,
    };
    use crate::lead::LeadRecord;

    const URL: &str = "https://api.lofty.com";
    const TOKEN: &str = "eyJ-token-value";
    const VENDOR: &str = "vendor-key-value";

    fn lofty(options: Option<LoftyOptions>) -> crate::connectors::Destination {
        let mut d = destination(
            ConnectorKind::Lofty,
            URL,
            &Vertical::ALL,
            &[("access_token", TOKEN), ("vendor_key", VENDOR)],
        );
        d.connector = Connector::Lofty(options.unwrap_or_default());
        d
    }

    fn context<'a>(
        lead: &'a LeadRecord,
        destination: &'a crate::connectors::Destination,
    ) -> DeliveryContext<'a> {
        DeliveryContext {
            lead,
            destination,
            callback_url: CALLBACK_URL,
            idempotency_key: IDEMPOTENCY_KEY,
            now: now(),
        }
    }

    fn body(request: &BuyerRequest) -> Value {
        serde_json::from_slice(&request.body).expect("json")
    }

    #[test]
    fn looks_the_email_up_first_with_the_seeds_precise_search() {
        let lead = example_lead(Vertical::RealEstate);
        let destination = lofty(None);
        let request = build(&context(&lead, &destination)).expect("builds");
        assert_eq!(request.method, Method::GET);
        assert_eq!(request.url.path(), "/v1.0/leads");
        let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        assert!(
            query.contains(&("email".into(), "jane.doe@example.com".into())),
            "{query:?}"
        );
        assert!(query.contains(&("preciseSearchFlag".into(), "true".into())));
        assert_eq!(
            request.headers[AUTHORIZATION],
            format!("Bearer {TOKEN}").as_str()
        );
        assert_eq!(request.headers["vendorKey"], VENDOR);
        assert!(request.headers[AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn an_unknown_contact_is_created_as_a_lead_request_field_by_field() {
        let lead = example_lead(Vertical::RealEstate);
        let destination = lofty(Some(LoftyOptions {
            lead_routing: true,
            tags: vec!["leadhub".into()],
            ..LoftyOptions::default()
        }));
        let ctx = context(&lead, &destination);
        let lookup = build(&ctx).expect("builds");
        let empty = response(
            200,
            &[],
            r#"{"_metadata": {"collection": "leads", "limit": 1, "offset": 0, "total": 0}, "leads": []}"#,
        );
        let Next::Send(create) = next(&ctx, &lookup, &empty, now()) else {
            panic!("an empty lookup leads to a create");
        };
        assert_eq!(
            (create.method.clone(), create.url.path()),
            (Method::POST, "/v1.0/leads")
        );
        let sent = body(&create);
        let normalised = lead.lead.value();
        for field in [
            "firstName",
            "lastName",
            "emails",
            "phones",
            "leadType",
            "leadTypes",
            "birthday",
            "inquiry",
            "property",
            "streetAddress",
            "city",
            "state",
            "zipCode",
            "source",
        ] {
            assert_eq!(sent[field], normalised[field], "{field}");
        }
        assert_eq!(
            sent["leadRouting"],
            json!(true),
            "the destination's routing flag"
        );
        let tags = sent["tags"].as_array().expect("tags");
        assert!(tags.contains(&json!("leadhub")) && tags.contains(&normalised["tags"][0]));
        let created = response(200, &[], "4711");
        assert_eq!(
            next(&ctx, &create, &created, now()),
            Next::Done(Outcome::Accepted {
                price: None,
                buyer_ref: Some("4711".into())
            })
        );
    }

    #[test]
    fn an_existing_contact_gets_a_note_instead_of_a_second_lead() {
        let lead = example_lead(Vertical::RealEstate);
        let destination = lofty(None);
        let ctx = context(&lead, &destination);
        let lookup = build(&ctx).expect("builds");
        let found = response(
            200,
            &[],
            r#"{"_metadata": {"collection": "leads", "limit": 1, "offset": 0, "total": 1}, "leads": [{"lead": {"id": 9001, "firstName": "Jane"}}]}"#,
        );
        let Next::Send(note) = next(&ctx, &lookup, &found, now()) else {
            panic!("a found contact leads to a note");
        };
        assert_eq!(note.url.path(), "/v1.0/notes");
        assert_eq!(body(&note)["leadId"], json!(9001));
        assert!(body(&note)["content"]
            .as_str()
            .expect("content")
            .contains(lead.id.as_str()));
        assert_eq!(
            next(&ctx, &note, &response(200, &[], "\"ok\""), now()),
            Next::Done(Outcome::Accepted {
                price: None,
                buyer_ref: Some("9001".into())
            })
        );
    }

    #[test]
    fn a_contact_gone_before_its_note_is_created_as_a_lead() {
        let lead = example_lead(Vertical::RealEstate);
        let destination = lofty(None);
        let ctx = context(&lead, &destination);
        let lookup = build(&ctx).expect("builds");
        // The seed types NoteRequest.leadId as integer(int64): a string of digits goes out as the number.
        let found = response(200, &[], r#"{"leads": [{"lead": {"id": "9001"}}]}"#);
        let Next::Send(note) = next(&ctx, &lookup, &found, now()) else {
            panic!("a found contact leads to a note");
        };
        assert_eq!(body(&note)["leadId"], json!(9001));
        let gone = response(404, &[], "");
        let Next::Send(create) = next(&ctx, &note, &gone, now()) else {
            panic!("a 404 on the note creates the lead instead");
        };
        assert_eq!(create.method, Method::POST);
        assert_eq!(create.url.path(), "/v1.0/leads");
        assert_eq!(body(&create), body(&super::create(&ctx).expect("builds")));
        // A 404 on the create itself is still a configuration failure, not a loop.
        assert_eq!(
            next(&ctx, &create, &gone, now()),
            Next::Done(Outcome::failed(
                "http_404",
                "Lofty answered 404: check the destination URL"
            ))
        );
    }

    #[test]
    fn other_verticals_send_their_contact() {
        for vertical in [Vertical::Heloc, Vertical::Mortgage, Vertical::Solar] {
            let lead = example_lead(vertical);
            let destination = lofty(Some(LoftyOptions {
                duplicate_lookup: false,
                lead_type: Some(2),
                ..LoftyOptions::default()
            }));
            let request = build(&context(&lead, &destination)).expect("builds");
            assert_eq!(
                request.method,
                Method::POST,
                "{vertical}: no lookup when turned off"
            );
            let sent = body(&request);
            assert!(
                sent["emails"][0].as_str().is_some_and(|e| e.contains('@')),
                "{vertical}: {sent}"
            );
            assert!(sent["firstName"].is_string(), "{vertical}");
            assert_eq!(sent["leadType"], json!(2));
            assert_eq!(sent["source"], json!("leadhub"));
            assert!(
                sent.get("leadRouting").is_none(),
                "{vertical}: not asked for"
            );
        }
    }

    fn real_estate(change: impl FnOnce(&mut Value)) -> LeadRecord {
        let mut body = Vertical::RealEstate.example();
        change(&mut body);
        crate::connectors::test_support::lead_from(Vertical::RealEstate, &body)
    }

    #[test]
    fn a_lead_without_an_email_is_looked_up_by_its_phone() {
        let destination = lofty(None);
        let lead = real_estate(|body| {
            body.as_object_mut().expect("object").remove("emails");
        });
        let request = build(&context(&lead, &destination)).expect("builds");
        assert_eq!(
            (request.method.clone(), request.url.path()),
            (Method::GET, "/v1.0/leads")
        );
        let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        assert_eq!(
            query,
            [
                // The phone as the lead has it (normalised to E.164), as a created lead would carry it.
                ("phone".to_owned(), "+17275550134".to_owned()),
                ("preciseSearchFlag".to_owned(), "true".to_owned()),
                ("offset".to_owned(), "0".to_owned()),
                ("limit".to_owned(), "1".to_owned()),
            ]
        );
        assert_eq!(planned_requests(&lead, &destination), 2);
        // With an email, the email is searched, never the phone.
        let lead = example_lead(Vertical::RealEstate);
        let request = build(&context(&lead, &destination)).expect("builds");
        assert!(request.url.query_pairs().all(|(key, _)| key != "phone"));
        // No lookup at all: one request, the create.
        let off = lofty(Some(LoftyOptions {
            duplicate_lookup: false,
            ..LoftyOptions::default()
        }));
        assert_eq!(planned_requests(&lead, &off), 1);
        assert_eq!(
            build(&context(&lead, &off)).expect("builds").method,
            Method::POST
        );
    }

    #[test]
    fn a_duplicates_note_carries_the_inquiry_and_the_contact() {
        let destination = lofty(None);
        let lead = real_estate(|body| {
            body.as_object_mut().expect("object").remove("emails");
        });
        let content = note_content(&context(&lead, &destination));
        for expected in [
            "New real-estate inquiry from leadhub",
            lead.id.as_str(),
            "Looking as: buyer, investor.",
            "buying within 1-3 months; selling within 3-6 months",
            "Wants: $250,000-$400,000; 3-4 bedrooms; 2-2.5 bathrooms; Single Family, Townhouse.",
            "Where: Downtown Tampa, near the river (100 N Ashley Dr, Tampa, FL 33602).",
            "Their property: 9 Oak Ave, Tampa, FL 33603-1234; price $320,000",
            "Message: Looking for a 3-bedroom house near good schools",
            "Contact: Jane Doe; phone +17275550134, +18135550199; address 1 Main St, Tampa, FL 33601",
        ] {
            assert!(content.contains(expected), "{expected:?} in {content}");
        }
        assert!(
            !content.contains("email"),
            "the lead has no email: {content}"
        );
        // The note is what the lookup's answer leads to.
        let ctx = context(&lead, &destination);
        let lookup = build(&ctx).expect("builds");
        let found = response(200, &[], r#"{"leads": [{"lead": {"id": 7}}]}"#);
        let Next::Send(note) = next(&ctx, &lookup, &found, now()) else {
            panic!("a note");
        };
        assert_eq!(body(&note)["content"], json!(content));
    }

    #[test]
    fn no_note_carries_an_ssn() {
        let destination = lofty(None);
        let mut mortgage = Vertical::Mortgage.example();
        assert_eq!(mortgage["borrower"]["ssn"], json!("123-45-6789"));
        mortgage["borrower"]["ssn"] = json!("123-45-6789");
        let lead = crate::connectors::test_support::lead_from(Vertical::Mortgage, &mortgage);
        let content = note_content(&context(&lead, &destination));
        assert!(
            content.contains("Asked for: A mortgage: purpose RefinanceCashOut; $150,000 loan"),
            "{content}"
        );
        assert!(content.contains("email jane.doe@example.com"), "{content}");
        for vertical in Vertical::ALL {
            let lead = example_lead(vertical);
            let content = note_content(&context(&lead, &destination));
            let digits: String = content.chars().filter(char::is_ascii_digit).collect();
            assert!(
                !content.contains("123-45-6789") && !digits.contains("123456789"),
                "{vertical}: {content}"
            );
            assert!(
                !content.to_lowercase().contains("ssn"),
                "{vertical}: {content}"
            );
        }
    }

    #[test]
    fn lead_routing_is_asked_for_only_with_a_location_lofty_routes_on() {
        let routing = lofty(Some(LoftyOptions {
            lead_routing: true,
            duplicate_lookup: false,
            ..LoftyOptions::default()
        }));
        let routed = |lead: &LeadRecord, destination: &crate::connectors::Destination| {
            body(&build(&context(lead, destination)).expect("builds"))
                .get("leadRouting")
                .cloned()
        };
        let rows: Vec<(&str, LeadRecord, Option<Value>)> = vec![
            (
                "a buyer with an inquiry location",
                example_lead(Vertical::RealEstate),
                Some(json!(true)),
            ),
            (
                "a buyer whose location has only a zip code",
                real_estate(|b| b["inquiry"]["locations"] = json!([{"zipCode": "33602"}])),
                Some(json!(true)),
            ),
            (
                "a buyer whose location has a city without a state",
                real_estate(|b| {
                    b["inquiry"]["locations"] =
                        json!([{"city": "Tampa", "description": "near the river"}])
                }),
                None,
            ),
            (
                "a buyer without an inquiry (the lead's own address is not where it wants to buy)",
                real_estate(|b| {
                    b.as_object_mut().expect("object").remove("inquiry");
                }),
                None,
            ),
            (
                "a seller: routed on the property",
                real_estate(|b| {
                    b["leadType"] = json!(1);
                    b.as_object_mut().expect("object").remove("inquiry");
                }),
                Some(json!(true)),
            ),
            (
                "a seller whose property has no location",
                real_estate(|b| {
                    b["leadType"] = json!(1);
                    b["property"] = json!({"bedrooms": 3});
                }),
                None,
            ),
            (
                "another vertical (no inquiry)",
                example_lead(Vertical::Heloc),
                None,
            ),
        ];
        for (what, lead, expected) in rows {
            assert_eq!(routed(&lead, &routing), expected, "{what}");
        }
        // Never without the destination's own flag.
        let unasked = lofty(Some(LoftyOptions {
            duplicate_lookup: false,
            ..LoftyOptions::default()
        }));
        assert_eq!(routed(&example_lead(Vertical::RealEstate), &unasked), None);
    }

    #[test]
    fn classifies_every_documented_answer() {
        let later = (now().timestamp() + 30).to_string();
        let rows: Vec<(BuyerResponse, Outcome)> = vec![
            (
                response(200, &[], r#"{"leadId": 12}"#),
                Outcome::Accepted {
                    price: None,
                    buyer_ref: Some("12".into()),
                },
            ),
            (
                response(201, &[], ""),
                Outcome::Accepted {
                    buyer_ref: None,
                    price: None,
                },
            ),
            // DELETE /v1.0/webhook/{subscribeId}: "204 No Content".
            (
                response(204, &[], ""),
                Outcome::Accepted {
                    buyer_ref: None,
                    price: None,
                },
            ),
            (
                response(401, &[], ""),
                Outcome::failed("http_401", "Lofty refused our credentials (401)"),
            ),
            (
                response(403, &[], ""),
                Outcome::failed("http_403", "Lofty refused our credentials (403)"),
            ),
            (
                response(404, &[], ""),
                Outcome::failed("http_404", "Lofty answered 404: check the destination URL"),
            ),
            // The seed's 429 example: X-RateLimit-Reset 21000 (read as milliseconds until the reset).
            (
                response(
                    429,
                    &[
                        ("x-ratelimit-limit", "20"),
                        ("x-ratelimit-remaining", "0"),
                        ("x-ratelimit-reset", "21000"),
                    ],
                    r#"{"message":"Too Many Requests"}"#,
                ),
                Outcome::retry(
                    "http_429",
                    "Lofty's rate limit was reached (429)",
                    Some(Duration::from_secs(21)),
                ),
            ),
            // The seed's definition: UTC epoch seconds.
            (
                response(
                    429,
                    &[("x-ratelimit-reset", later.as_str())],
                    r#"{"message":"Too Many Requests"}"#,
                ),
                Outcome::retry(
                    "http_429",
                    "Lofty's rate limit was reached (429)",
                    Some(Duration::from_secs(30)),
                ),
            ),
            (
                response(503, &[("retry-after", "7")], ""),
                Outcome::retry(
                    "http_503",
                    "Lofty could not answer (503)",
                    Some(Duration::from_secs(7)),
                ),
            ),
            // The rate-limit window's end is no promise that a 5xx will pass: the destination's backoff.
            (
                response(
                    503,
                    &[
                        ("x-ratelimit-remaining", "7"),
                        ("x-ratelimit-reset", "40000"),
                    ],
                    "",
                ),
                Outcome::retry("http_503", "Lofty could not answer (503)", None),
            ),
            (
                response(400, &[], r#"{"message":"emails invalid"}"#),
                Outcome::rejected(
                    "http_400",
                    "Lofty declined the lead (400): emails invalid",
                    true,
                ),
            ),
            (
                response(422, &[], "<html>"),
                Outcome::rejected(
                    "http_422",
                    "Lofty declined the lead (422): no reason given",
                    true,
                ),
            ),
        ];
        for (answer, expected) in rows {
            assert_eq!(
                classify(&answer, now()),
                expected,
                "status {}",
                answer.status
            );
        }
    }

    #[test]
    fn a_failed_lookup_ends_the_attempt_with_its_outcome() {
        let lead = example_lead(Vertical::RealEstate);
        let destination = lofty(None);
        let ctx = context(&lead, &destination);
        let lookup = build(&ctx).expect("builds");
        let limited = response(
            429,
            &[("x-ratelimit-reset", "5000")],
            r#"{"message":"Too Many Requests"}"#,
        );
        assert_eq!(
            next(&ctx, &lookup, &limited, now()),
            Next::Done(Outcome::retry(
                "http_429",
                "Lofty's rate limit was reached (429)",
                Some(Duration::from_secs(5))
            ))
        );
    }

    #[test]
    fn credentials_never_show_in_debug_or_reasons() {
        let lead = example_lead(Vertical::RealEstate);
        let destination = lofty(None);
        let request = build(&context(&lead, &destination)).expect("builds");
        let shown = format!("{request:?} {destination:?}");
        assert!(!shown.contains(TOKEN) && !shown.contains(VENDOR), "{shown}");
    }

    #[test]
    fn the_refresh_is_an_rfc_6749_grant_answered_by_the_token_info() {
        let destination = lofty(None);
        let request = refresh_request(&destination, "rt/+=1").expect("builds");
        assert_eq!(
            (request.method.clone(), request.url.as_str()),
            (Method::POST, "https://api.lofty.com/v1.0/oauth/token")
        );
        assert_eq!(
            request.headers[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            String::from_utf8(request.body.clone()).expect("text"),
            "grant_type=refresh_token&refresh_token=rt%2F%2B%3D1"
        );
        assert!(request.headers.get(AUTHORIZATION).is_none());
        let info = read_token_info(&response(
            200,
            &[],
            r#"{"token": "new-token", "tokenExpireTime": 1800000000000, "refreshToken": "new-rt", "refreshTokenExpireTime": "2027-01-15T08:00:00Z"}"#,
        ))
        .expect("a token");
        assert_eq!(info.token, "new-token");
        assert_eq!(info.expires_at, DateTime::from_timestamp(1_800_000_000, 0));
        assert_eq!(info.refresh_token.as_deref(), Some("new-rt"));
        assert_eq!(
            info.refresh_expires_at,
            DateTime::from_timestamp(1_799_999_999, 0).map(|_| "2027-01-15T08:00:00Z"
                .parse::<DateTime<Utc>>()
                .expect("a time"))
        );
        assert!(!format!("{info:?}").contains("new-token"));
        let seconds = read_token_info(&response(
            200,
            &[],
            r#"{"token": "t", "tokenExpireTime": 1800000000}"#,
        ))
        .expect("a token");
        assert_eq!(
            seconds.expires_at,
            DateTime::from_timestamp(1_800_000_000, 0)
        );
        for (status, refused) in [
            (400, true),
            (401, true),
            (403, true),
            (429, false),
            (503, false),
        ] {
            let error = read_token_info(&response(status, &[], r#"{"error": "invalid_grant"}"#))
                .expect_err("no token");
            assert_eq!(
                matches!(error, RefreshError::Refused(_)),
                refused,
                "{status}"
            );
        }
        assert!(matches!(
            read_token_info(&response(200, &[], r#"{"token": ""}"#)),
            Err(RefreshError::Unavailable(_))
        ));
        let resent = with_token(
            build(&context(&example_lead(Vertical::RealEstate), &destination)).expect("builds"),
            "fresh",
        )
        .expect("resent");
        assert_eq!(resent.headers[AUTHORIZATION], "Bearer fresh");
        assert!(resent.headers[AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn options_are_checked() {
        assert!(LoftyOptions::default().check().is_ok());
        assert!(LoftyOptions {
            lead_type: Some(4),
            ..LoftyOptions::default()
        }
        .check()
        .is_err());
        assert!(LoftyOptions {
            source: " ".into(),
            ..LoftyOptions::default()
        }
        .check()
        .is_err());
    }
}
