//! Lofty CRM (seed 004): `POST /v1.0/leads` with a `LeadRequest`, after an optional duplicate lookup.
//!
//! A delivery is one to three requests, each built here and answered through [`next`]:
//! 1. with `duplicate_lookup` and an email: `GET /v1.0/leads?email=…&preciseSearchFlag=true&limit=1`
//!    (the seed's "precise search for lead by email address");
//! 2. an existing contact gets `POST /v1.0/notes` (`NoteRequest {leadId, content}`) instead of a second lead;
//! 3. otherwise `POST /v1.0/leads` with the `LeadRequest`: the real-estate lead as normalised (it already uses
//!    Lofty's field names), or the contact of any other vertical; plus the destination's `source`, `tags`,
//!    default `leadType` and the `leadRouting` flag ("lead routing will not be applied unless the
//!    leadRouting flag is set to true").
//!
//! Webhooks (5.12: the subscription calls, the hub's intake URL, the events Lofty posts) are in [`webhooks`].
//!
//! Choices where the seed is silent or ambiguous, written down:
//! - Auth: `Authorization: Bearer <access_token>` (credential `access_token`; obtaining and refreshing
//!   OAuth tokens is the operator's, the hub sends the configured one). The optional vendor key
//!   (credential `vendor_key`) goes in a `vendorKey` header: the seed names the key, not the header.
//! - The destination URL is the API's base (`https://api.lofty.com`); paths are appended.
//! - Rate limits: `429` is retried at `X-RateLimit-Reset`. The seed defines it as "UTC epoch seconds" but its
//!   own examples show `23000` and `21000`; values above 10^12 are read as epoch milliseconds, above 10^9 as
//!   epoch seconds, and smaller ones as milliseconds until the reset (which fits the examples' 21-23 s within a
//!   one-minute window). `Retry-After` is honoured when present.
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
use crate::verticals::Vertical;

/// The credential holding the OAuth bearer token.
pub const ACCESS_TOKEN: &str = "access_token";
/// The credential holding the optional vendor key (sent as `vendorKey`).
pub const VENDOR_KEY: &str = "vendor_key";

/// What a lofty destination takes: its access token, optionally a vendor key; any vertical (every lead
/// has a contact); its `[destinations.lofty]` settings.
const TAKES: Takes = Takes {
    kind: ConnectorKind::Lofty,
    signs: false,
    credentials: &[ACCESS_TOKEN],
    optional_credentials: &[VENDOR_KEY],
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
fn email(context: &DeliveryContext<'_>, lead: &Value) -> Option<String> {
    match context.lead.vertical {
        Vertical::RealEstate => text(lead, "/emails/0"),
        Vertical::Heloc => text(lead, "/contactInfo/email"),
        Vertical::Mortgage => text(lead, "/borrower/email"),
        Vertical::Solar => text(lead, "/email"),
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
    request.insert("leadRouting".into(), json!(options.lead_routing));
    Value::Object(request)
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

fn note(context: &DeliveryContext<'_>, lofty_lead_id: &Value) -> Result<BuyerRequest, BuildError> {
    let content = format!(
        "New {} inquiry from leadhub (lead {}), received {}.",
        context.lead.vertical,
        context.lead.id,
        context.lead.created_at.format("%Y-%m-%d %H:%M UTC")
    );
    let body = serde_json::to_vec(&json!({"leadId": lofty_lead_id, "content": content}))
        .map_err(|e| BuildError(format!("cannot encode the note: {e}")))?;
    Ok(BuyerRequest {
        method: Method::POST,
        url: url(context.destination, "/v1.0/notes")?,
        headers: headers(context.destination)?,
        body,
    })
}

/// The first request of a delivery: the duplicate lookup, or the create.
pub fn build(context: &DeliveryContext<'_>) -> Result<BuyerRequest, BuildError> {
    let lead = context.lead.lead.value();
    match (options(context).duplicate_lookup, email(context, &lead)) {
        (true, Some(email)) => {
            let mut url = url(context.destination, "/v1.0/leads")?;
            url.query_pairs_mut()
                .append_pair("email", &email)
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
            assert_eq!(sent["leadRouting"], json!(false));
        }
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
