//! A lender that takes HELOC leads in seed `001_fe0d22b72b37bc1d.txt`'s schema, as an outbound API.
//!
//! Request: `POST` to the destination's URL, `Content-Type: application/json`, the delivery's
//! `Idempotency-Key` (the same on every attempt), and `Authorization: Bearer <api key>` when the destination
//! has `credentials.api_key` (none otherwise: the seed documents no authentication, so a lender that
//! needs none — an allow-listed endpoint — is served as is).
//!
//! Body: the normalised `heloc` lead, which is the seed's payload schema with its field names and enums:
//! `buildingType`, `propertyUnits` (always present: the hub fills the seed's default of 1), `loanPurpose`,
//! `propertyUsage`, `contactInfo` (phone in E.164, `+1XXXXXXXXXX`: the seed says only "string"),
//! `address`, `statedInformation` (when given), `residentialAddress`, `listedForSaleIn6Months`,
//! `purchasedOrSubjectToMortgageIn6Months`, `liabilitiesIn4Years`. One field is the hub's own:
//! - `affiliateId` is "Identifier for the lead in the partner's system". Posting to the lender, the hub is
//!   the lender's partner, so it is the hub's lead id (`lead_...`): the lender can quote it back, and the
//!   seller's own identifier (what the seller sent as `affiliateId`) stays with the hub.
//!
//! A stored lead missing one of the seed's required root fields is a [`BuildError`] naming it.
//!
//! Answers (the seed is a payload schema and documents none; these are the usual REST meanings):
//! - 2xx: Accepted, with the lender's reference from `id`, `quoteId` or `leadId` (string or number; at the
//!   top or inside `data`) when it gives one. A 2xx body that is empty, not JSON or of another shape is
//!   still Accepted (no reference): the lender said yes.
//! - A 4xx whose body says the email already exists — the seed's rule "Must not already exist in the system
//!   (quotes or users)": the body contains "already exist" and "email", in any case, JSON or not — is
//!   Rejected with code `duplicate`; others may take the lead (the email is known to this lender only).
//! - 401 and 403: Failed (credentials); 404, 405, 410 and 3xx: Failed (endpoint configuration; redirects are
//!   not followed). 408, 425, 429 and 5xx: Retry, honouring `Retry-After`. Other 4xx: Rejected with the
//!   lender's message (at most [`MAX_MESSAGE_CHARS`](super::MAX_MESSAGE_CHARS) characters).
//! - A destination's `[destinations.response]` rules ([`crate::answer_rules`]) override this reading of a
//!   2xx where given.

use chrono::{DateTime, Utc};
use http::header::AUTHORIZATION;
use http::Method;
use serde_json::Value;

use super::{
    buyer_message, json, json_headers, reference, retry_after, secret_header, BuildError,
    BuyerRequest, BuyerResponse, ConnectorKind, DeliveryContext, LeadFields, Takes,
};
use crate::config::{ConfigError, ConnectorSection};
use crate::delivery::Outcome;
use crate::verticals::Vertical;

/// The optional credential sent as `Authorization: Bearer <api_key>`.
pub const API_KEY: &str = "api_key";

/// The code of a rejection because the lender already has the lead's email.
pub const DUPLICATE: &str = "duplicate";

/// The seed's required root fields, plus `propertyUnits` (which the hub always fills).
const REQUIRED: [&str; 10] = [
    "buildingType",
    "propertyUnits",
    "loanPurpose",
    "propertyUsage",
    "contactInfo",
    "address",
    "residentialAddress",
    "listedForSaleIn6Months",
    "purchasedOrSubjectToMortgageIn6Months",
    "liabilitiesIn4Years",
];

/// The request that posts this lead to the lender.
/// What a heloc-lender destination takes: an optional API key; HELOC leads.
const TAKES: Takes = Takes {
    kind: ConnectorKind::HelocLender,
    signs: false,
    credentials: &[],
    optional_credentials: &[API_KEY],
    verticals: Some(&[Vertical::Heloc]),
};

/// Check a heloc-lender destination's section (at configuration load): `TAKES`.
pub fn check(section: &ConnectorSection<'_>) -> Result<(), ConfigError> {
    TAKES.check(section).map(|_| ())
}

pub fn build(context: &DeliveryContext<'_>) -> Result<BuyerRequest, BuildError> {
    let lead = context.lead;
    if lead.vertical != Vertical::Heloc {
        return Err(BuildError(format!(
            "a HELOC lender takes HELOC leads, not {} leads",
            lead.vertical
        )));
    }
    let LeadFields { mut value } = LeadFields::of(lead)?;
    let Some(object) = value.as_object_mut() else {
        return Err(BuildError(
            "the stored HELOC lead is not a JSON object".into(),
        ));
    };
    if let Some(missing) = REQUIRED
        .iter()
        .find(|field| object.get(**field).is_none_or(Value::is_null))
    {
        return Err(BuildError(format!(
            "the stored lead has no `{missing}`, which the HELOC schema requires"
        )));
    }
    object.insert("affiliateId".into(), Value::String(lead.id.to_string()));
    let body = serde_json::to_vec(&value)
        .map_err(|e| BuildError(format!("cannot encode the lead: {e}")))?;
    let mut headers = json_headers(context)?;
    if let Some(key) = context.destination.credential(API_KEY) {
        headers.insert(
            AUTHORIZATION,
            secret_header(&format!("Bearer {}", key.expose()), "API key")?,
        );
    }
    Ok(BuyerRequest {
        method: Method::POST,
        url: context.destination.url.clone(),
        headers,
        body,
    })
}

/// Whether a refusal says the lead's email is already known ("already exist" and "email", any case).
fn says_email_exists(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_lowercase();
    text.contains("already exist") && text.contains("email")
}

/// The lender's reference for the lead.
fn lender_ref(body: &[u8]) -> Option<String> {
    const KEYS: [&str; 3] = ["id", "quoteId", "leadId"];
    let value = json(body)?;
    reference(&value, &KEYS).or_else(|| value.get("data").and_then(|data| reference(data, &KEYS)))
}

/// What the lender's answer means (see the module docs).
pub fn classify(response: &BuyerResponse, now: DateTime<Utc>) -> Outcome {
    let status = response.status;
    let code = format!("http_{status}");
    let message = || buyer_message(&response.body).unwrap_or_else(|| "no reason given".into());
    match status {
        200..=299 => Outcome::Accepted {
            price: None,
            buyer_ref: lender_ref(&response.body),
        },
        300..=399 => Outcome::failed(
            &code,
            format!("the lender answered {status} (a redirect); redirects are not followed: check the destination URL"),
        ),
        401 | 403 => Outcome::failed(
            &code,
            format!("the lender refused our credentials ({status}); check credentials.api_key"),
        ),
        404 | 405 | 410 => Outcome::failed(
            &code,
            format!("the lender's endpoint is not there ({status}); check the destination URL"),
        ),
        408 | 425 | 429 => Outcome::retry(
            &code,
            format!("the lender asked us to try again later ({status})"),
            retry_after(response, now),
        ),
        400..=499 if says_email_exists(&response.body) => Outcome::rejected(
            DUPLICATE,
            format!(
                "the lender already has this email as a quote or user ({status}): {}",
                message()
            ),
            true,
        ),
        400..=499 => Outcome::rejected(
            &code,
            format!("the lender declined the lead ({status}): {}", message()),
            true,
        ),
        _ => Outcome::retry(
            &code,
            format!("the lender had a server error ({status})"),
            retry_after(response, now),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::header::{ACCEPT, CONTENT_TYPE};
    use serde_json::json;

    use super::super::test_support::{
        assert_fields, destination, example_lead, lead_from, now, response, CALLBACK_URL,
        IDEMPOTENCY_KEY,
    };
    use super::*;
    use crate::connectors::{ConnectorKind, Destination};
    use crate::lead::LeadRecord;

    const URL: &str = "https://lender.example/api/v1/leads";
    const KEY: &str = "lk_live_4f3e2d1c0b9a8877";

    fn lender(api_key: Option<&str>) -> Destination {
        let credentials: Vec<(&str, &str)> = api_key.map(|k| (API_KEY, k)).into_iter().collect();
        destination(
            ConnectorKind::HelocLender,
            URL,
            &[Vertical::Heloc],
            &credentials,
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

    #[test]
    fn builds_the_seed_request_field_by_field() {
        let lead = example_lead(Vertical::Heloc);
        let request = build_for(&lead, &lender(Some(KEY))).expect("builds");
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.url.as_str(), URL);
        assert_eq!(
            request.headers[AUTHORIZATION],
            format!("Bearer {KEY}").as_str()
        );
        assert!(request.headers[AUTHORIZATION].is_sensitive());
        assert_eq!(request.headers[CONTENT_TYPE], "application/json");
        assert_eq!(request.headers[ACCEPT], "application/json");
        assert_eq!(request.headers["idempotency-key"], IDEMPOTENCY_KEY);
        // The HELOC vertical's example, in seed 001's schema.
        let rows: Vec<(&str, Value)> = vec![
            ("/affiliateId", json!(lead.id.as_str())),
            ("/buildingType", json!("singleFamily")),
            ("/propertyUnits", json!(1)),
            ("/loanPurpose", json!("debtConsolidation")),
            ("/propertyUsage", json!("primaryResidence")),
            ("/contactInfo/firstName", json!("Jane")),
            ("/contactInfo/lastName", json!("Doe")),
            ("/contactInfo/email", json!("jane.doe@example.com")),
            ("/contactInfo/phone", json!("+17275550134")),
            ("/address/street", json!("1 Main St")),
            ("/address/city", json!("Tampa")),
            ("/address/state", json!("FL")),
            ("/address/zip", json!("33601")),
            ("/address/county", json!("Hillsborough")),
            ("/statedInformation/monthlyRentalIncome", json!(0)),
            ("/statedInformation/rentalOccupancy", json!("longTerm")),
            ("/residentialAddress/street", json!("1 Main St")),
            ("/residentialAddress/city", json!("Tampa")),
            ("/residentialAddress/state", json!("FL")),
            ("/residentialAddress/zip", json!("33601")),
            ("/residentialAddress/unitNumber", json!(2)),
            ("/listedForSaleIn6Months", json!(false)),
            ("/purchasedOrSubjectToMortgageIn6Months", json!(false)),
            ("/liabilitiesIn4Years", json!(false)),
        ];
        let body: Value = serde_json::from_slice(&request.body).expect("json");
        assert_fields(&body, &rows);
        // Exactly the normalised lead but for affiliateId.
        let mut normalised = lead.lead.value();
        normalised["affiliateId"] = json!(lead.id.as_str());
        assert_eq!(body, normalised);

        // A multi-unit condo for investment: the conditional fields go through; no affiliateId given.
        let condo = lead_from(
            Vertical::Heloc,
            &json!({
                "buildingType": "multiUnit",
                "propertyUnits": 3,
                "loanPurpose": "investment",
                "propertyUsage": "investment",
                "contactInfo": {"firstName": "Al", "lastName": "Bo", "email": "al@example.com", "phone": "727-555-0199"},
                "address": {"street": "2 Oak St", "city": "Miami", "state": "fl", "zip": "33101-1234", "unitNumber": 4},
                "statedInformation": {"monthlyRentalIncome": 2500, "rentalOccupancy": "shortTerm"},
                "residentialAddress": {"street": "3 Pine St", "city": "Orlando", "state": "FL", "zip": "32801"},
                "listedForSaleIn6Months": true,
                "purchasedOrSubjectToMortgageIn6Months": false,
                "liabilitiesIn4Years": true
            }),
        );
        let request = build_for(&condo, &lender(None)).expect("builds");
        assert!(
            request.headers.get(AUTHORIZATION).is_none(),
            "no key, no Authorization"
        );
        let body: Value = serde_json::from_slice(&request.body).expect("json");
        assert_fields(
            &body,
            &[
                ("/affiliateId", json!(condo.id.as_str())),
                ("/buildingType", json!("multiUnit")),
                ("/propertyUnits", json!(3)),
                ("/loanPurpose", json!("investment")),
                ("/propertyUsage", json!("investment")),
                ("/contactInfo/firstName", json!("Al")),
                ("/contactInfo/lastName", json!("Bo")),
                ("/contactInfo/email", json!("al@example.com")),
                ("/contactInfo/phone", json!("+17275550199")),
                ("/address/street", json!("2 Oak St")),
                ("/address/city", json!("Miami")),
                ("/address/state", json!("FL")),
                ("/address/zip", json!("33101-1234")),
                ("/address/unitNumber", json!(4)),
                ("/statedInformation/monthlyRentalIncome", json!(2500)),
                ("/statedInformation/rentalOccupancy", json!("shortTerm")),
                ("/residentialAddress/street", json!("3 Pine St")),
                ("/residentialAddress/city", json!("Orlando")),
                ("/residentialAddress/state", json!("FL")),
                ("/residentialAddress/zip", json!("32801")),
                ("/listedForSaleIn6Months", json!(true)),
                ("/purchasedOrSubjectToMortgageIn6Months", json!(false)),
                ("/liabilitiesIn4Years", json!(true)),
            ],
        );
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        assert!(build_for(&example_lead(Vertical::Mortgage), &lender(None)).is_err());
        let mut broken = example_lead(Vertical::Heloc);
        let mut value = broken.lead.value();
        value
            .as_object_mut()
            .expect("object")
            .remove("propertyUsage");
        broken.lead = value.into();
        let error = build_for(&broken, &lender(None)).expect_err("missing field");
        assert!(error.0.contains("propertyUsage"), "{error}");
        broken.lead = json!([1, 2]).into();
        assert!(build_for(&broken, &lender(None)).is_err());
    }

    #[test]
    fn classifies_every_documented_answer() {
        let accepted = |reference: Option<&str>| Outcome::Accepted {
            price: None,
            buyer_ref: reference.map(str::to_owned),
        };
        let duplicate = |status: u16, message: &str| {
            Outcome::rejected(
                DUPLICATE,
                format!(
                    "the lender already has this email as a quote or user ({status}): {message}"
                ),
                true,
            )
        };
        let rows: Vec<(BuyerResponse, Outcome)> = vec![
            (response(200, &[], r#"{"id":"Q-1"}"#), accepted(Some("Q-1"))),
            (response(201, &[], r#"{"quoteId":"Q-2","status":"created"}"#), accepted(Some("Q-2"))),
            (response(202, &[], r#"{"leadId":7}"#), accepted(Some("7"))),
            (response(200, &[], r#"{"data":{"quoteId":"Q-3"}}"#), accepted(Some("Q-3"))),
            (response(204, &[], ""), accepted(None)),
            (response(200, &[], "not json"), accepted(None)),
            (response(200, &[], r#"["Q-4"]"#), accepted(None)),
            (response(200, &[], r#"{"id":true}"#), accepted(None)),
            // The seed's uniqueness rule: "Must not already exist in the system (quotes or users)".
            (
                response(409, &[], r#"{"message":"A user with this email already exists"}"#),
                duplicate(409, "A user with this email already exists"),
            ),
            (
                response(400, &[], r#"{"errors":[{"field":"contactInfo.email","message":"Email already exists in the system"}]}"#),
                duplicate(400, "contactInfo.email: Email already exists in the system"),
            ),
            (
                response(422, &[], "EMAIL ALREADY EXISTS (quote)"),
                duplicate(422, "EMAIL ALREADY EXISTS (quote)"),
            ),
            (
                response(422, &[], r#"{"message":"Quote already exists"}"#),
                Outcome::rejected("http_422", "the lender declined the lead (422): Quote already exists", true),
            ),
            (
                response(400, &[], r#"{"message":"Invalid lead","errors":[{"field":"address.unitNumber","code":"required","message":"is required for a condo"}]}"#),
                Outcome::rejected(
                    "http_400",
                    "the lender declined the lead (400): Invalid lead: address.unitNumber: is required for a condo",
                    true,
                ),
            ),
            (
                response(400, &[], r#"{"message":"address.unitNumber is required"}"#),
                Outcome::rejected("http_400", "the lender declined the lead (400): address.unitNumber is required", true),
            ),
            (
                response(400, &[], "<html><body>Bad Request</body></html>"),
                Outcome::rejected("http_400", "the lender declined the lead (400): no reason given", true),
            ),
            (
                response(400, &[], ""),
                Outcome::rejected("http_400", "the lender declined the lead (400): no reason given", true),
            ),
            (
                response(401, &[], r#"{"message":"email already exists"}"#),
                Outcome::failed("http_401", "the lender refused our credentials (401); check credentials.api_key"),
            ),
            (
                response(403, &[], ""),
                Outcome::failed("http_403", "the lender refused our credentials (403); check credentials.api_key"),
            ),
            (
                response(404, &[], ""),
                Outcome::failed("http_404", "the lender's endpoint is not there (404); check the destination URL"),
            ),
            (
                response(301, &[], ""),
                Outcome::failed(
                    "http_301",
                    "the lender answered 301 (a redirect); redirects are not followed: check the destination URL",
                ),
            ),
            (
                response(429, &[("retry-after", "30")], ""),
                Outcome::retry("http_429", "the lender asked us to try again later (429)", Some(Duration::from_secs(30))),
            ),
            (
                response(408, &[], ""),
                Outcome::retry("http_408", "the lender asked us to try again later (408)", None),
            ),
            (
                response(500, &[], r#"{"message":"email already exists"}"#),
                Outcome::retry("http_500", "the lender had a server error (500)", None),
            ),
            (
                response(503, &[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")], ""),
                Outcome::retry("http_503", "the lender had a server error (503)", Some(Duration::from_secs(30))),
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

    #[test]
    fn credentials_never_show_in_the_request_or_the_reasons() {
        let destination = lender(Some(KEY));
        let request = build_for(&example_lead(Vertical::Heloc), &destination).expect("builds");
        let debug = format!("{request:?}");
        assert!(!debug.contains(KEY), "{debug}");
        assert!(!String::from_utf8_lossy(&request.body).contains(KEY));
        let echoes = [
            format!(r#"{{"message":"Authorization: Bearer {KEY} is revoked"}}"#),
            format!("bad bearer {KEY}"),
            format!(r#"{{"message":"key {KEY} revoked; email already exists"}}"#),
        ];
        for status in [200, 400, 401, 403, 404, 409, 422, 429, 500] {
            for body in &echoes {
                let raw = classify(&response(status, &[], body), now());
                let clean = super::super::without_credentials(raw.clone(), &destination);
                assert!(!format!("{clean:?}").contains(KEY), "{status}: {clean:?}");
                if !body.contains(&format!("key {KEY}")) || matches!(status, 401 | 403 | 404) {
                    assert!(!format!("{raw:?}").contains(KEY), "{status}: {raw:?}");
                }
            }
        }
    }
}
