//! Sonar (mortgage CRM), generic Leads API: seed `000_30a5a1304ad505d7.txt`.
//!
//! Request: `POST` to the destination's URL (the "Endpoint" Sonar shows when the "Generic" Leads integration
//! is created), `Authorization: <client secret>` — the secret itself, exactly as the seed's parameter table
//! says ("Secret (client secret entered)"), with no `Bearer` or other scheme — from
//! `credentials.client_secret`; `Content-Type: application/json`; `Idempotency-Key` (the delivery's, the
//! same on every attempt; the seed is silent, a server that does not know it ignores it).
//!
//! Body: the seed's `LeadSignal` "Lead information" object. Its parameter type is "Body", which we read as
//! the name of the body parameter (as in Swagger), not a wrapper key, so the object *is* the body. Sonar's
//! full field list and sample JSON are "attached below" in the seed but not included, so the shape is
//! ours, chosen to carry the seed's required fields under the names it gives them, camelCased as in the
//! hub's `mortgage` vertical (which was built around the same fields):
//!
//! ```text
//! {
//!   "purpose": "Purchase" | "RefinanceCashOut" | "RefinanceRateAndTerm" | "PreApproval",  // seed: required
//!   "borrower": {
//!     "firstName": string,                 // seed: Borrower FirstName, required
//!     "lastName": string,                  // seed: Borrower LastName, required
//!     "email": string,                     // seed: Borrower Email, required
//!     "phone": "+1XXXXXXXXXX"              // when known, E.164 (the hub's normal form; the seed is silent)
//!   },
//!   "property": {                          // the subject property
//!     "street": string,                    // when known (HELOC leads only)
//!     "city": string,                      // seed: City, required
//!     "state": "XX",                       // seed: State, required (USPS code)
//!     "zip": "12345" | "12345-6789",       // when known
//!     "value": number                      // when known, estimated value in USD
//!   },
//!   "loanAmount": number,                  // when known, USD
//!   "creditBand": "Excellent" | "Good" | "Fair" | "Poor",  // when known, self-reported
//!   "source": {"leadId": "lead_...", "vertical": "mortgage" | "heloc"}  // the hub's id, to match callbacks
//! }
//! ```
//!
//! Mapping, field by field:
//! - From a `mortgage` lead: every field is the lead's own (same names, already normalised); no SSN is ever
//!   sent (the normalised lead has none: it is used for screening only). The partner's `affiliateId` is not
//!   sent: it names the lead in the seller's system, which is of no use to the buyer and not the buyer's
//!   business; `source.leadId` is the reference the buyer can quote back.
//! - From a `heloc` lead (seed 001): `purpose` is `RefinanceCashOut` — a home-equity line borrows cash
//!   against a home the borrower already owns, which in Sonar's vocabulary of transaction types is a
//!   cash-out refinance (there is no HELOC or second-lien purpose); `borrower` comes from `contactInfo`
//!   (`phone` included) and `property` from `address` (the subject property, not `residentialAddress`),
//!   with `street` as well. The HELOC-only fields (`buildingType`, `propertyUnits`, `loanPurpose` — the
//!   use of the funds, not a transaction type —, `propertyUsage`, `statedInformation`,
//!   `residentialAddress`, `county`, `unitNumber` and the three yes/no disclosures) have no known place in
//!   Sonar's fields and are not sent; a buyer who needs them takes a `heloc-lender` or `webhook`
//!   destination.
//! - A stored lead missing a field the seed requires, or with a `purpose` outside Sonar's enum, is a
//!   [`BuildError`] naming the field (never its value): the delivery fails rather than posts a lead Sonar
//!   must refuse.
//!
//! Answers (the seed documents 200, 401 and 404 only):
//! - 200 is "Success (either created successfully or failed)", so the body decides, and it must say which.
//!   Failure, checked first: a JSON object with `success` or `succeeded` false, `status` or `result` one
//!   of `failed`, `failure`, `fail`, `error` (any case), or a non-empty `error` / `errors` — Rejected
//!   (`sonar_not_created`, others may take the lead) with the body's message (at most
//!   [`MAX_MESSAGE_CHARS`](super::MAX_MESSAGE_CHARS) characters). An explicit `success: true` wins over
//!   stray `error` fields (warnings).
//! - Success, Sonar's success markers: a JSON object with `success` or `succeeded` true, or `status` or
//!   `result` one of `created`, `success`, `succeeded`, `ok` (any case), or Sonar's id for the lead — `id`,
//!   `leadId` or `loanId` (a non-empty string or a number), at the top or inside `data`. Accepted, with that
//!   id as the reference when there is one.
//! - A 2xx that shows neither — empty (204 included), not JSON (an HTML page, plain text), JSON of another
//!   shape, or an object without either marker (`{"status": "received"}`) — is Failed with
//!   `unrecognised_answer` ("unrecognised answer" and the body's shape, never its values): the seed
//!   promises a 200 "either created successfully or failed" and this one says neither. It is not Accepted
//!   (an answer nobody understands must not count as a sale) nor retried (Sonar may have created the lead,
//!   and a second post could create it twice); the delivery is dead, listed for the operator (`leadhub-admin
//!   deliveries dead`), alarmed (dispatch logs `alarm = "buyer_answer_unrecognised"`), and a waterfall moves
//!   on to the next buyer. The operator checks with Sonar and, if the answers are of a shape the hub does not
//!   know, writes `[destinations.response]` rules for them.
//! - A destination's `[destinations.response]` rules ([`crate::answer_rules`]) override these markers where
//!   given: `rejected_when` in place of the failure markers, `accepted_when` in place of the success
//!   markers, `reference_path` in place of `id`/`leadId`/`loanId`, `reason_path` for the message.
//! - 401: Failed (Sonar refused the client secret: fix `credentials.client_secret`). 403 likewise.
//!   404: Failed (the endpoint URL is wrong, or the integration was not saved or activated); 405 and 410
//!   likewise; 3xx Failed (redirects are not followed). These are "configuration failures, not retries".
//! - 408, 425, 429 and 5xx: Retry, honouring `Retry-After`. Other 4xx: Rejected with Sonar's message.

use chrono::{DateTime, Utc};
use http::header::AUTHORIZATION;
use http::Method;
use serde_json::{json, Map, Value};

use super::{
    json, json_headers, message_of, reference, retry_after, secret_header, BuildError,
    BuyerRequest, BuyerResponse, ConnectorKind, DeliveryContext, LeadFields, Takes,
};
use crate::config::{ConfigError, ConnectorSection};
use crate::delivery::Outcome;
use crate::lead::LeadRecord;
use crate::verticals::Vertical;

/// The credential holding Sonar's client secret.
pub const CLIENT_SECRET: &str = "client_secret";

/// Sonar's loan purposes ("the transaction type"), spelled as the seed spells them.
pub const PURPOSES: [&str; 4] = [
    "Purchase",
    "RefinanceCashOut",
    "RefinanceRateAndTerm",
    "PreApproval",
];

/// The purpose a HELOC lead is sent with: cash borrowed against a home already owned.
pub const HELOC_PURPOSE: &str = "RefinanceCashOut";

fn put(map: &mut Map<String, Value>, key: &str, value: Option<&Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value.clone());
    }
}

fn put_text(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

fn source(lead: &LeadRecord) -> Value {
    json!({"leadId": lead.id.as_str(), "vertical": lead.vertical.as_str()})
}

/// Sonar's borrower from the contact object at `at` (`/borrower` of a mortgage, `/contactInfo` of a HELOC
/// lead): first and last name and email required, phone when given.
fn borrower(fields: &LeadFields, at: &str) -> Result<Value, BuildError> {
    let mut borrower = Map::new();
    for name in ["firstName", "lastName", "email"] {
        put_text(
            &mut borrower,
            name,
            Some(fields.text(&format!("{at}/{name}"))?),
        );
    }
    put_text(
        &mut borrower,
        "phone",
        fields.optional_text(&format!("{at}/phone")),
    );
    Ok(Value::Object(borrower))
}

fn from_mortgage(fields: &LeadFields, lead: &LeadRecord) -> Result<Value, BuildError> {
    let purpose = fields.text("/purpose")?;
    if !PURPOSES.contains(&purpose) {
        return Err(BuildError(
            "the stored lead's `purpose` is not one of Sonar's loan purposes".into(),
        ));
    }
    let borrower = borrower(fields, "/borrower")?;
    let mut property = Map::new();
    put_text(&mut property, "city", Some(fields.text("/property/city")?));
    put_text(
        &mut property,
        "state",
        Some(fields.text("/property/state")?),
    );
    put_text(&mut property, "zip", fields.optional_text("/property/zip"));
    put(&mut property, "value", fields.optional("/property/value"));
    let mut body = Map::new();
    put_text(&mut body, "purpose", Some(purpose));
    body.insert("borrower".into(), borrower);
    body.insert("property".into(), Value::Object(property));
    put(&mut body, "loanAmount", fields.optional("/loanAmount"));
    put_text(&mut body, "creditBand", fields.optional_text("/creditBand"));
    body.insert("source".into(), source(lead));
    Ok(Value::Object(body))
}

fn from_heloc(fields: &LeadFields, lead: &LeadRecord) -> Result<Value, BuildError> {
    let borrower = borrower(fields, "/contactInfo")?;
    let mut property = Map::new();
    put_text(
        &mut property,
        "street",
        fields.optional_text("/address/street"),
    );
    put_text(&mut property, "city", Some(fields.text("/address/city")?));
    put_text(&mut property, "state", Some(fields.text("/address/state")?));
    put_text(&mut property, "zip", fields.optional_text("/address/zip"));
    let mut body = Map::new();
    put_text(&mut body, "purpose", Some(HELOC_PURPOSE));
    body.insert("borrower".into(), borrower);
    body.insert("property".into(), Value::Object(property));
    body.insert("source".into(), source(lead));
    Ok(Value::Object(body))
}

/// The request that posts this lead to Sonar.
/// What a sonar destination takes: its client secret; mortgage and HELOC leads.
const TAKES: Takes = Takes {
    kind: ConnectorKind::Sonar,
    signs: false,
    credentials: &[CLIENT_SECRET],
    optional_credentials: &[],
    verticals: Some(&[Vertical::Mortgage, Vertical::Heloc]),
};

/// Check a sonar destination's section (at configuration load): `TAKES`.
pub fn check(section: &ConnectorSection<'_>) -> Result<(), ConfigError> {
    TAKES.check(section).map(|_| ())
}

pub fn build(context: &DeliveryContext<'_>) -> Result<BuyerRequest, BuildError> {
    let lead = context.lead;
    let payload = match lead.vertical {
        Vertical::Mortgage => from_mortgage(&LeadFields::of(lead)?, lead)?,
        Vertical::Heloc => from_heloc(&LeadFields::of(lead)?, lead)?,
        other => {
            return Err(BuildError(format!(
                "Sonar takes mortgage and HELOC leads, not {other} leads"
            )))
        }
    };
    let body = serde_json::to_vec(&payload)
        .map_err(|e| BuildError(format!("cannot encode the lead: {e}")))?;
    let secret = context
        .destination
        .credential(CLIENT_SECRET)
        .ok_or_else(|| BuildError("the destination has no credentials.client_secret".into()))?;
    let mut headers = json_headers(context)?;
    headers.insert(
        AUTHORIZATION,
        secret_header(secret.expose(), "client secret")?,
    );
    Ok(BuyerRequest {
        method: Method::POST,
        url: context.destination.url.clone(),
        headers,
        body,
    })
}

/// Whether a value in an `error` / `errors` field says something went wrong.
fn signals_error(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// Whether a 2xx JSON body says the lead was not created (see the module docs).
fn says_not_created(value: &Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    let flag = ["success", "succeeded"]
        .iter()
        .find_map(|key| object.get(*key).and_then(Value::as_bool));
    match flag {
        Some(true) => return false,
        Some(false) => return true,
        None => {}
    }
    let failed_status = ["status", "result"].iter().any(|key| {
        object
            .get(*key)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
            .is_some_and(|s| matches!(s.as_str(), "failed" | "failure" | "fail" | "error"))
    });
    failed_status
        || ["error", "errors"]
            .iter()
            .any(|key| object.get(*key).is_some_and(signals_error))
}

/// Sonar's id for the lead, from `id`, `leadId` or `loanId`, at the top or in `data`.
fn sonar_ref(value: &Value) -> Option<String> {
    const KEYS: [&str; 3] = ["id", "leadId", "loanId"];
    reference(value, &KEYS).or_else(|| value.get("data").and_then(|data| reference(data, &KEYS)))
}

/// Whether a 2xx JSON body says the lead was created (see the module docs): `success`/`succeeded` true,
/// `status`/`result` one of the created words, or Sonar's id for the lead.
fn says_created(value: &Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    let flag = ["success", "succeeded"]
        .iter()
        .any(|key| object.get(*key).and_then(Value::as_bool) == Some(true));
    let created_status = ["status", "result"].iter().any(|key| {
        object
            .get(*key)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
            .is_some_and(|s| matches!(s.as_str(), "created" | "success" | "succeeded" | "ok"))
    });
    flag || created_status || sonar_ref(value).is_some()
}

/// What Sonar's answer means (see the module docs).
pub fn classify(response: &BuyerResponse, now: DateTime<Utc>) -> Outcome {
    let status = response.status;
    let code = format!("http_{status}");
    match status {
        200..=299 => match json(&response.body) {
            Some(value) if says_not_created(&value) => {
                let message = message_of(&value).unwrap_or_else(|| "no reason given".into());
                Outcome::rejected(
                    "sonar_not_created",
                    format!("Sonar answered {status} but did not create the lead: {message}"),
                    true,
                )
            }
            Some(value) if says_created(&value) => Outcome::Accepted {
                buyer_ref: sonar_ref(&value),
                price: None,
            },
            _ => crate::answer_rules::unrecognised(response, "Sonar"),
        },
        300..=399 => Outcome::failed(
            &code,
            format!("Sonar answered {status} (a redirect); redirects are not followed: check the destination URL"),
        ),
        401 | 403 => Outcome::failed(
            &code,
            format!("Sonar refused the client secret ({status}); check credentials.client_secret"),
        ),
        404 | 405 | 410 => Outcome::failed(
            &code,
            format!(
                "Sonar's endpoint is not there ({status}); check the destination URL and that the \
                 Leads integration is saved and activated"
            ),
        ),
        408 | 425 | 429 => Outcome::retry(
            &code,
            format!("Sonar asked us to try again later ({status})"),
            retry_after(response, now),
        ),
        400..=499 => {
            let message = super::buyer_message(&response.body)
                .unwrap_or_else(|| "no reason given".into());
            Outcome::rejected(
                &code,
                format!("Sonar declined the lead ({status}): {message}"),
                true,
            )
        }
        _ => Outcome::retry(
            &code,
            format!("Sonar had a server error ({status})"),
            retry_after(response, now),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::header::{ACCEPT, CONTENT_TYPE};

    use super::super::test_support::{
        assert_fields, destination, example_lead, lead_from, now, response, CALLBACK_URL,
        IDEMPOTENCY_KEY,
    };
    use super::*;
    use crate::connectors::{ConnectorKind, Destination};

    const SECRET: &str = "sonar-client-secret-9f8e7d6c5b4a";
    const URL: &str = "https://api.sonar.example/leads/generic/abc123";

    fn sonar() -> Destination {
        destination(
            ConnectorKind::Sonar,
            URL,
            &[Vertical::Mortgage, Vertical::Heloc],
            &[(CLIENT_SECRET, SECRET)],
        )
    }

    fn build_for(lead: &LeadRecord, destination: &Destination) -> Result<BuyerRequest, BuildError> {
        build(&DeliveryContext {
            lead,
            destination,
            callback_url: CALLBACK_URL,
            idempotency_key: IDEMPOTENCY_KEY,
            now: now(),
        })
    }

    fn body_of(request: &BuyerRequest) -> Value {
        serde_json::from_slice(&request.body).expect("the body is JSON")
    }

    fn assert_sonar_headers(request: &BuyerRequest) {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.url.as_str(), URL);
        // Exactly the client secret: no `Bearer`, no other scheme.
        assert_eq!(request.headers[AUTHORIZATION], SECRET);
        assert!(request.headers[AUTHORIZATION].is_sensitive());
        assert_eq!(request.headers[CONTENT_TYPE], "application/json");
        assert_eq!(request.headers[ACCEPT], "application/json");
        assert_eq!(request.headers["idempotency-key"], IDEMPOTENCY_KEY);
    }

    #[test]
    fn builds_the_seed_request_field_by_field() {
        // The mortgage vertical's example: Sonar's required fields plus the optional ones, and an SSN.
        let lead = example_lead(Vertical::Mortgage);
        let request = build_for(&lead, &sonar()).expect("builds");
        assert_sonar_headers(&request);
        let rows: Vec<(&str, Value)> = vec![
            ("/purpose", json!("RefinanceCashOut")),
            ("/borrower/firstName", json!("Jane")),
            ("/borrower/lastName", json!("Doe")),
            ("/borrower/email", json!("jane.doe@example.com")),
            ("/borrower/phone", json!("+17275550134")),
            ("/property/city", json!("Tampa")),
            ("/property/state", json!("FL")),
            ("/property/zip", json!("33601")),
            ("/property/value", json!(425000)),
            ("/loanAmount", json!(150000)),
            ("/creditBand", json!("Good")),
            ("/source/leadId", json!(lead.id.as_str())),
            ("/source/vertical", json!("mortgage")),
        ];
        let body = body_of(&request);
        assert_fields(&body, &rows);
        let text = String::from_utf8_lossy(&request.body);
        assert!(
            !text.contains("123-45-6789") && !text.contains("123456789") && !text.contains("ssn"),
            "never an SSN"
        );
        assert!(
            !text.contains("aff-123"),
            "the seller's own id stays with the hub"
        );

        // Each of Sonar's purposes goes through as given; a bare lead sends only the required fields.
        for purpose in PURPOSES {
            let bare = lead_from(
                Vertical::Mortgage,
                &json!({
                    "purpose": purpose,
                    "borrower": {"firstName": "Ann", "lastName": "Lee", "email": "ann@example.com"},
                    "property": {"city": "Austin", "state": "tx"}
                }),
            );
            let body = body_of(&build_for(&bare, &sonar()).expect("builds"));
            assert_fields(
                &body,
                &[
                    ("/purpose", json!(purpose)),
                    ("/borrower/firstName", json!("Ann")),
                    ("/borrower/lastName", json!("Lee")),
                    ("/borrower/email", json!("ann@example.com")),
                    ("/property/city", json!("Austin")),
                    ("/property/state", json!("TX")),
                    ("/source/leadId", json!(bare.id.as_str())),
                    ("/source/vertical", json!("mortgage")),
                ],
            );
        }
    }

    #[test]
    fn builds_a_heloc_lead_as_a_cash_out_refinance() {
        let lead = example_lead(Vertical::Heloc);
        let request = build_for(&lead, &sonar()).expect("builds");
        assert_sonar_headers(&request);
        let rows: Vec<(&str, Value)> = vec![
            ("/purpose", json!("RefinanceCashOut")),
            ("/borrower/firstName", json!("Jane")),
            ("/borrower/lastName", json!("Doe")),
            ("/borrower/email", json!("jane.doe@example.com")),
            ("/borrower/phone", json!("+17275550134")),
            ("/property/street", json!("1 Main St")),
            ("/property/city", json!("Tampa")),
            ("/property/state", json!("FL")),
            ("/property/zip", json!("33601")),
            ("/source/leadId", json!(lead.id.as_str())),
            ("/source/vertical", json!("heloc")),
        ];
        assert_fields(&body_of(&request), &rows);
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        let solar = example_lead(Vertical::Solar);
        assert!(build_for(&solar, &sonar()).is_err());
        let mut no_secret = sonar();
        no_secret.credentials.clear();
        let error =
            build_for(&example_lead(Vertical::Mortgage), &no_secret).expect_err("no secret");
        assert!(error.0.contains("client_secret"), "{error}");
        let mut broken = example_lead(Vertical::Mortgage);
        broken.lead = json!({"purpose": "Refinance", "borrower": {}, "property": {}}).into();
        let error = build_for(&broken, &sonar()).expect_err("not Sonar's purpose");
        assert!(error.0.contains("purpose"), "{error}");
        broken.lead =
            json!({"purpose": "Purchase", "borrower": {"firstName": "A"}, "property": {}}).into();
        let error = build_for(&broken, &sonar()).expect_err("no last name");
        assert!(error.0.contains("/borrower/lastName"), "{error}");
        broken.lead = json!(null).into();
        assert!(build_for(&broken, &sonar()).is_err());
    }

    #[test]
    fn classifies_every_documented_answer() {
        let not_created = |message: &str| {
            Outcome::rejected(
                "sonar_not_created",
                format!("Sonar answered 200 but did not create the lead: {message}"),
                true,
            )
        };
        let accepted = |reference: Option<&str>| Outcome::accepted(reference.map(str::to_owned));
        let unrecognised = |status: u16, shape: &str| {
            Outcome::failed(
                "unrecognised_answer",
                format!(
                    "unrecognised answer: Sonar answered {status} with {shape}, which says neither that it \
                     took the lead nor that it declined it; the lead is not counted as sold (check with the \
                     buyer, and the destination's [destinations.response] rules)"
                ),
            )
        };
        let long = "x".repeat(300);
        let rows: Vec<(BuyerResponse, Outcome)> = vec![
            // 200: "Success (either created successfully or failed)".
            (response(200, &[], r#"{"id":"S-123"}"#), accepted(Some("S-123"))),
            (response(200, &[], r#"{"leadId":98765}"#), accepted(Some("98765"))),
            (response(200, &[], r#"{"success":true,"loanId":"L-9"}"#), accepted(Some("L-9"))),
            (response(200, &[], r#"{"data":{"id":"D-1"}}"#), accepted(Some("D-1"))),
            (response(200, &[], r#"{"id":"S-2","error":null,"errors":[]}"#), accepted(Some("S-2"))),
            (response(200, &[], r#"{"success":true,"errors":["phone ignored"]}"#), accepted(None)),
            (
                response(200, &[], r#"{"success":false,"message":"Borrower email is required"}"#),
                not_created("Borrower email is required"),
            ),
            (
                response(200, &[], r#"{"status":"Failed","message":"Duplicate lead"}"#),
                not_created("Duplicate lead"),
            ),
            (
                response(200, &[], r#"{"status":"error","errors":[{"field":"state","message":"State is invalid"}]}"#),
                not_created("state: State is invalid"),
            ),
            (
                response(200, &[], r#"{"error":"Lead could not be created"}"#),
                not_created("Lead could not be created"),
            ),
            (response(200, &[], r#"{"errors":["a","b"]}"#), not_created("a; b")),
            (response(200, &[], r#"{"succeeded":false}"#), not_created("no reason given")),
            (
                response(200, &[], &format!(r#"{{"success":false,"message":"{long}"}}"#)),
                not_created(&"x".repeat(200)),
            ),
            // Sonar's success markers: a `success` flag, a created status, or its id.
            (response(200, &[], r#"{"status":"Created"}"#), accepted(None)),
            (response(200, &[], r#"{"result":"ok","data":{"loanId":7}}"#), accepted(Some("7"))),
            (response(200, &[], r#"{"succeeded":true}"#), accepted(None)),
            (response(201, &[], r#"{"id":"S-3"}"#), accepted(Some("S-3"))),
            // A 2xx that says neither: failed, "unrecognised answer", with the body's shape only.
            (
                response(200, &[], r#"{"status":"received","message":"Queued for Jane Doe"}"#),
                unrecognised(200, "JSON {message: text, status: text}"),
            ),
            (response(200, &[], ""), unrecognised(200, "an empty body")),
            (response(204, &[], ""), unrecognised(204, "an empty body")),
            (response(200, &[], "OK"), unrecognised(200, "a body of 2 bytes that is not JSON")),
            (
                response(200, &[("content-type", "text/html; charset=utf-8")], "<html><body>Created</body></html>"),
                unrecognised(200, "a text/html body of 33 bytes"),
            ),
            (response(200, &[], r#"["S-1"]"#), unrecognised(200, "JSON [1 item]")),
            (response(200, &[], r#""created""#), unrecognised(200, "JSON text")),
            (response(200, &[], r#"{"id":{"nested":true}}"#), unrecognised(200, "JSON {id: {nested: true}}")),
            (response(200, &[], r#"{"success":"yes","id":""}"#), unrecognised(200, "JSON {id: text, success: text}")),
            (response(200, &[], r#"{"jane@example.com":1}"#), unrecognised(200, "JSON {…: number}")),
            // 401 and 404: configuration failures, not retries.
            (
                response(401, &[], r#"{"message":"Unauthorized"}"#),
                Outcome::failed(
                    "http_401",
                    "Sonar refused the client secret (401); check credentials.client_secret",
                ),
            ),
            (
                response(403, &[], ""),
                Outcome::failed(
                    "http_403",
                    "Sonar refused the client secret (403); check credentials.client_secret",
                ),
            ),
            (
                response(404, &[], "Not Found"),
                Outcome::failed(
                    "http_404",
                    "Sonar's endpoint is not there (404); check the destination URL and that the Leads \
                     integration is saved and activated",
                ),
            ),
            (
                response(302, &[("location", "https://elsewhere.example")], ""),
                Outcome::failed(
                    "http_302",
                    "Sonar answered 302 (a redirect); redirects are not followed: check the destination URL",
                ),
            ),
            // Passing trouble: retried, Retry-After honoured.
            (
                response(429, &[("retry-after", "30")], ""),
                Outcome::retry(
                    "http_429",
                    "Sonar asked us to try again later (429)",
                    Some(Duration::from_secs(30)),
                ),
            ),
            (
                response(408, &[], ""),
                Outcome::retry("http_408", "Sonar asked us to try again later (408)", None),
            ),
            (
                response(500, &[], "oops"),
                Outcome::retry("http_500", "Sonar had a server error (500)", None),
            ),
            (
                response(503, &[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")], "<html>"),
                Outcome::retry(
                    "http_503",
                    "Sonar had a server error (503)",
                    Some(Duration::from_secs(30)),
                ),
            ),
            (
                response(502, &[("retry-after", "soon")], ""),
                Outcome::retry("http_502", "Sonar had a server error (502)", None),
            ),
            // Other 4xx: declined, with Sonar's message when it gives one.
            (
                response(400, &[], r#"{"message":"purpose is invalid"}"#),
                Outcome::rejected("http_400", "Sonar declined the lead (400): purpose is invalid", true),
            ),
            (
                response(422, &[], "<html><body>Unprocessable</body></html>"),
                Outcome::rejected("http_422", "Sonar declined the lead (422): no reason given", true),
            ),
            (
                response(409, &[], "duplicate borrower"),
                Outcome::rejected("http_409", "Sonar declined the lead (409): duplicate borrower", true),
            ),
        ];
        for (answer, expected) in rows {
            assert_eq!(
                classify(&answer, now()),
                expected,
                "status {} body {:?}",
                answer.status,
                answer.body
            );
        }
    }

    /// `[destinations.response]` overrides Sonar's markers where given; what it leaves out keeps them.
    #[test]
    fn answer_rules_override_sonars_markers_where_given() {
        let mut destination = sonar();
        let rules = "accepted_when = { path = \"$.status\", equals = \"received\" }\nreference_path = \"$.ticket\"\n";
        destination.response = crate::answer_rules::AnswerRules::load(
            "destinations[0].response",
            &toml::from_str(rules).expect("toml"),
        )
        .expect("valid rules");
        let lead = example_lead(Vertical::Mortgage);
        let context = DeliveryContext {
            lead: &lead,
            destination: &destination,
            callback_url: CALLBACK_URL,
            idempotency_key: IDEMPOTENCY_KEY,
            now: now(),
        };
        let request = build(&context).expect("builds");
        let decide =
            |answer: BuyerResponse| match super::super::next(&context, &request, &answer, now()) {
                super::super::Next::Done(outcome) => outcome,
                super::super::Next::Send(_) => panic!("Sonar takes one request"),
            };
        let rows: Vec<(BuyerResponse, Outcome)> = vec![
            (
                response(200, &[], r#"{"status":" Received ","ticket":"T-9","id":"S-1"}"#),
                Outcome::accepted(Some("T-9".into())),
            ),
            (
                response(200, &[], r#"{"status":"received"}"#),
                Outcome::accepted(None),
            ),
            // `accepted_when` replaces the id marker: an id alone is no longer a sale.
            (
                response(200, &[], r#"{"id":"S-1"}"#),
                Outcome::failed(
                    "unrecognised_answer",
                    "unrecognised answer: the buyer answered 200 with JSON {id: text}, which says neither \
                     that it took the lead nor that it declined it; the lead is not counted as sold (check \
                     with the buyer, and the destination's [destinations.response] rules)",
                ),
            ),
            // No `rejected_when`: Sonar's failure markers still reject.
            (
                response(200, &[], r#"{"success":false,"message":"Duplicate lead"}"#),
                Outcome::rejected(
                    "sonar_not_created",
                    "Sonar answered 200 but did not create the lead: Duplicate lead",
                    true,
                ),
            ),
            // Transport statuses keep Sonar's handling.
            (
                response(401, &[], r#"{"status":"received"}"#),
                Outcome::failed(
                    "http_401",
                    "Sonar refused the client secret (401); check credentials.client_secret",
                ),
            ),
        ];
        for (answer, expected) in rows {
            let body = String::from_utf8_lossy(&answer.body).into_owned();
            assert_eq!(decide(answer), expected, "{body}");
        }
    }

    #[test]
    fn credentials_never_show_in_the_request_or_the_reasons() {
        let destination = sonar();
        for vertical in [Vertical::Mortgage, Vertical::Heloc] {
            let request = build_for(&example_lead(vertical), &destination).expect("builds");
            let debug = format!("{request:?}");
            assert!(!debug.contains(SECRET), "{debug}");
            assert!(!String::from_utf8_lossy(&request.body).contains(SECRET));
        }
        // Whatever Sonar echoes back, the recorded reason does not carry the secret.
        let echoes = [
            format!(r#"{{"message":"Authorization: {SECRET} is not valid"}}"#),
            format!(r#"{{"success":false,"message":"client secret {SECRET} inactive"}}"#),
            format!("invalid client secret {SECRET}"),
        ];
        for status in [200, 400, 401, 403, 404, 422, 429, 500] {
            for body in &echoes {
                let outcome = super::super::without_credentials(
                    classify(&response(status, &[], body), now()),
                    &destination,
                );
                assert!(
                    !format!("{outcome:?}").contains(SECRET),
                    "{status}: {outcome:?}"
                );
                if matches!(status, 401 | 403 | 404) {
                    let raw = classify(&response(status, &[], body), now());
                    assert!(!format!("{raw:?}").contains(SECRET), "{status}: {raw:?}");
                }
            }
        }
        let echoed = classify(&response(400, &[], &echoes[0]), now());
        assert!(!format!("{echoed:?}").contains(SECRET), "{echoed:?}");
    }
}
