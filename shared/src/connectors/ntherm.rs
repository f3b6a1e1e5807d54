//! nTherm `postLead` (solar): seed `002_97119647e0e39833.txt`.
//!
//! Request: `POST` to the destination's URL (nTherm's `postLead` endpoint, e.g.
//! `https://api.ntherm.com/v1/postLead`), `Authorization: Basic base64(username:password)` from
//! `credentials.username` and `credentials.password` (the seed's `btoa(username + ':' + password)`),
//! `Content-Type: application/json`, and the delivery's `Idempotency-Key` (the seed is silent; a server that
//! does not know the header ignores it).
//!
//! Body: every field of the seed, from the normalised `solar` lead (whose field names are the seed's):
//! - `phone_number`: the 10 national digits, without `+1` (the hub keeps E.164). The seed's example is
//!   digits only (`999999999`) and nTherm's 400 sample rejects a stray character ("Invalid Characters:
//!   7271234567x"), so no `+`, spaces or punctuation are sent.
//! - `customer_name`, `state`, `city`, `dm_name`, `utility`, `mailing_street`, `mailing_city`,
//!   `mailing_state`, `vendor_campaign_name`, `email`: as in the lead (states upper-cased, email as given).
//! - `zip`, `mailing_zip`: the 5-digit ZIP. The seed's examples are five digits (`90001`); a ZIP+4 the
//!   partner gave is cut to its first five rather than risk a 400 for a format nTherm never shows.
//! - `street` AND `customer_address`, both the customer's street address: the seed's field table names the
//!   field `street`, its sample request sends `customer_address`. Which one nTherm reads is not knowable
//!   from the seed, so both are sent with the same value; a JSON API ignores the one it does not know,
//!   and leaving out the one it reads would lose the address or fail the post.
//! - `certificate_url`: when the lead has one. `extra_data`: when the lead has it, exactly as the partner
//!   gave it (the open bag). The seed requires `extra_data` "if certificate_url is not provided"; a
//!   stored lead with neither is a [`BuildError`].
//! - `call_back_url`: the hub's own callback URL for this lead and this buyer ([`DeliveryContext`]'s
//!   `callback_url`), never the partner's `call_back_url` from the lead: nTherm's final verdict must come
//!   to the hub, which records it and tells the partner by its signed webhook.
//!
//! Answers, per the seed's three sample responses:
//! - 200 `{"success_bit": true, "message": "Lead submitted successfully."}`: Accepted. This is the seed's
//!   "preliminary acceptance": the final result (which may still be a rejection) arrives at
//!   `call_back_url`. nTherm's id for the lead is kept from `lead_id`, `id` or `leadId` when given (the
//!   seed shows none).
//! - 200 with `success_bit: false`: Rejected (`ntherm_rejected`, others may take the lead), with nTherm's
//!   messages.
//! - 200 without a readable `success_bit` (empty, not JSON, another shape): Accepted with no reference — a
//!   200 is nTherm's success status and the final verdict still comes to the callback; rejecting could
//!   sell the lead twice, retrying would post it twice.
//! - 400 `{"success_bit": false, "message": [{"error": "..."}, ...]}`: Rejected (`http_400`, others may
//!   take it) with the errors joined by `; `. The seed's own 400 sample is not valid JSON (`false,\n,`): the
//!   messages are then found by a tolerant scan for `"error": "..."` strings (or `"message": "..."`), so a
//!   malformed body still gives its reasons.
//! - 422 "... can not be sent to postLead at this time": Rejected with code `ntherm_unavailable_for_lead`,
//!   others may take it (nTherm will not take this lead now; another buyer may).
//! - 401 and 403: Failed (credentials); 404, 405, 410 and 3xx: Failed (endpoint configuration; redirects
//!   are not followed). 408, 425, 429 and 5xx: Retry, honouring `Retry-After`. Other 4xx: Rejected with
//!   nTherm's messages. Timeouts never reach `classify` (dispatch has no response): dispatch retries them.
//! - `success_bit` is read as a JSON boolean; `"true"`/`"false"` strings and `1`/`0` are tolerated.
//!   Messages are cleaned of control characters, `Authorization` values redacted and cut to
//!   [`MAX_MESSAGE_CHARS`] characters.
//! - A destination's `[destinations.response]` rules ([`crate::answer_rules`]) override this reading of
//!   postLead's 2xx where given (the callback's verdicts are not answers to a delivery: they keep their own
//!   reading).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use http::header::AUTHORIZATION;
use http::Method;
use serde_json::{Map, Value};

use super::{
    buyer_message, excerpt, json, json_headers, message_of, redact, reference, retry_after,
    secret_header, BuildError, BuyerRequest, BuyerResponse, ConnectorKind, DeliveryContext,
    LeadFields, Takes, MAX_MESSAGE_CHARS,
};
use crate::config::{ConfigError, ConnectorSection};
use crate::delivery::Outcome;
use crate::verticals::Vertical;

/// The credentials holding nTherm's Basic-auth user name and password.
pub const USERNAME: &str = "username";
pub const PASSWORD: &str = "password";

/// The code of a 422: nTherm cannot take this lead at this time.
pub const UNAVAILABLE_FOR_LEAD: &str = "ntherm_unavailable_for_lead";

/// The 10 national digits of a US phone number (E.164 `+1XXXXXXXXXX` in the normalised lead).
fn national_digits(phone: &str) -> Result<String, BuildError> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        10 => Ok(digits),
        11 if digits.starts_with('1') => Ok(digits[1..].to_owned()),
        _ => Err(BuildError(
            "the stored lead's `phone_number` is not a 10-digit US number".into(),
        )),
    }
}

/// The 5-digit ZIP of a normalised ZIP (`12345` or `12345-6789`).
fn five_digit_zip(zip: &str, field: &str) -> Result<String, BuildError> {
    match zip.trim().get(..5) {
        Some(five) if five.bytes().all(|b| b.is_ascii_digit()) => Ok(five.to_owned()),
        _ => Err(BuildError(format!(
            "the stored lead's `{field}` is not a US ZIP code"
        ))),
    }
}

/// The request that posts this lead to nTherm's `postLead`.
/// What an ntherm destination takes: a Basic-auth user name and password; solar leads.
const TAKES: Takes = Takes {
    kind: ConnectorKind::Ntherm,
    signs: false,
    credentials: &[USERNAME, PASSWORD],
    optional_credentials: &[],
    verticals: Some(&[Vertical::Solar]),
};

/// Check an ntherm destination's section (at configuration load): `TAKES`, and a user name without `:`
/// (Basic auth joins it to the password with one).
pub fn check(section: &ConnectorSection<'_>) -> Result<(), ConfigError> {
    TAKES.check(section)?;
    if section
        .credentials
        .get(USERNAME)
        .is_some_and(|user| user.expose().contains(':'))
    {
        return Err(ConfigError::new(
            section.key(&format!("credentials.{USERNAME}")),
            "a Basic-auth user name cannot contain `:`",
        ));
    }
    Ok(())
}

pub fn build(context: &DeliveryContext<'_>) -> Result<BuyerRequest, BuildError> {
    let lead = context.lead;
    if lead.vertical != Vertical::Solar {
        return Err(BuildError(format!(
            "nTherm takes solar leads, not {} leads",
            lead.vertical
        )));
    }
    let fields = LeadFields::of(lead)?;
    let mut body = Map::new();
    let mut put = |key: &str, value: String| {
        body.insert(key.to_owned(), Value::String(value));
    };
    put(
        "phone_number",
        national_digits(fields.text("/phone_number")?)?,
    );
    for field in ["customer_name", "state", "city"] {
        put(field, fields.text(&format!("/{field}"))?.to_owned());
    }
    put("zip", five_digit_zip(fields.text("/zip")?, "zip")?);
    let street = fields.text("/street")?;
    put("street", street.to_owned());
    put("customer_address", street.to_owned());
    for field in [
        "dm_name",
        "utility",
        "mailing_street",
        "mailing_city",
        "mailing_state",
        "vendor_campaign_name",
        "email",
    ] {
        put(field, fields.text(&format!("/{field}"))?.to_owned());
    }
    put(
        "mailing_zip",
        five_digit_zip(fields.text("/mailing_zip")?, "mailing_zip")?,
    );
    put("call_back_url", context.callback_url.to_owned());
    let certificate = fields.optional_text("/certificate_url");
    if let Some(url) = certificate {
        put("certificate_url", url.to_owned());
    }
    let extra_data = fields.optional("/extra_data").cloned();
    match (certificate, extra_data) {
        (_, Some(extra)) => {
            body.insert("extra_data".into(), extra);
        }
        (Some(_), None) => {}
        (None, None) => return Err(BuildError(
            "the stored lead has neither `certificate_url` nor `extra_data`; nTherm requires one"
                .into(),
        )),
    }
    let payload = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| BuildError(format!("cannot encode the lead: {e}")))?;

    let credential = |name: &str| {
        context
            .destination
            .credential(name)
            .ok_or_else(|| BuildError(format!("the destination has no credentials.{name}")))
    };
    let basic = STANDARD.encode(format!(
        "{}:{}",
        credential(USERNAME)?.expose(),
        credential(PASSWORD)?.expose()
    ));
    let mut headers = json_headers(context)?;
    headers.insert(
        AUTHORIZATION,
        secret_header(&format!("Basic {basic}"), "user name or password")?,
    );
    Ok(BuyerRequest {
        method: Method::POST,
        url: context.destination.url.clone(),
        headers,
        body: payload,
    })
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Where the value of each `"key":` in `text` starts (after the colon and any whitespace).
fn value_starts(text: &str, key: &str) -> Vec<usize> {
    let needle = format!("\"{key}\"");
    let bytes = text.as_bytes();
    text.match_indices(needle.as_str())
        .map(|(at, _)| skip_whitespace(bytes, at + needle.len()))
        .filter(|&i| bytes.get(i) == Some(&b':'))
        .map(|i| skip_whitespace(bytes, i + 1))
        .collect()
}

/// The string values of `"key": "..."` anywhere in `text`, decoded, for bodies that are not valid JSON
/// (the seed's own 400 sample is one). At most ten.
pub fn scan_strings(text: &str, key: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for start in value_starts(text, key) {
        if bytes.get(start) != Some(&b'"') {
            continue;
        }
        // The closing quote: the first `"` not escaped by a backslash. Quotes and backslashes are ASCII,
        // so every index compared or sliced at is a character boundary.
        let mut i = start + 1;
        let mut end = None;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    end = Some(i);
                    break;
                }
                _ => i += 1,
            }
        }
        let Some(end) = end else { break };
        let literal = &text[start..=end];
        let value = serde_json::from_str::<String>(literal)
            .unwrap_or_else(|_| literal[1..literal.len() - 1].to_owned());
        if !value.trim().is_empty() {
            found.push(value.trim().to_owned());
        }
        if found.len() >= 10 {
            break;
        }
    }
    found
}

/// `"key": true|false` anywhere in `text` (the first one), for bodies that are not valid JSON.
fn scan_bool(text: &str, key: &str) -> Option<bool> {
    value_starts(text, key).into_iter().find_map(|start| {
        let rest = &text.as_bytes()[start..];
        if rest.starts_with(b"true") {
            Some(true)
        } else if rest.starts_with(b"false") {
            Some(false)
        } else {
            None
        }
    })
}

/// nTherm's `success_bit`, from JSON or, failing that, from a tolerant scan of the text.
pub fn success_bit(body: &[u8]) -> Option<bool> {
    match json(body) {
        Some(value) => match value.get("success_bit")? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            Value::Number(n) if n.as_u64() == Some(1) => Some(true),
            Value::Number(n) if n.as_u64() == Some(0) => Some(false),
            _ => None,
        },
        None => scan_bool(&String::from_utf8_lossy(body), "success_bit"),
    }
}

/// nTherm's messages in a body, joined with `; `: the `message` string or the `error` of each entry of the
/// `message` list; from a body that is not valid JSON, every `"error": "..."` string (or else every
/// `"message": "..."`); from plain text, an excerpt. Cleaned, redacted, at most 200 characters.
pub fn messages(body: &[u8]) -> Option<String> {
    if let Some(value) = json(body) {
        return message_of(&value);
    }
    let text = String::from_utf8_lossy(body);
    let mut found = scan_strings(&text, "error");
    if found.is_empty() {
        found = scan_strings(&text, "message");
    }
    if found.is_empty() {
        // Not JSON and nothing JSON-like in it: quote plain text, never a broken JSON document.
        return if text.trim_start().starts_with(['{', '[']) {
            None
        } else {
            buyer_message(body)
        };
    }
    let joined = redact(&excerpt(found.join("; ").as_bytes(), MAX_MESSAGE_CHARS));
    (!joined.is_empty()).then_some(joined)
}

/// What nTherm's answer to `postLead` means (see the module docs).
pub fn classify(response: &BuyerResponse, now: DateTime<Utc>) -> Outcome {
    let status = response.status;
    let code = format!("http_{status}");
    let reason = || messages(&response.body).unwrap_or_else(|| "no reason given".into());
    match status {
        200..=299 => match success_bit(&response.body) {
            Some(false) => Outcome::rejected(
                "ntherm_rejected",
                format!("nTherm declined the lead: {}", reason()),
                true,
            ),
            Some(true) | None => Outcome::Accepted {
                price: None,
                buyer_ref: json(&response.body)
                    .and_then(|value| reference(&value, &["lead_id", "id", "leadId"])),
            },
        },
        300..=399 => Outcome::failed(
            &code,
            format!("nTherm answered {status} (a redirect); redirects are not followed: check the destination URL"),
        ),
        401 | 403 => Outcome::failed(
            &code,
            format!(
                "nTherm refused our credentials ({status}); check credentials.username and credentials.password"
            ),
        ),
        404 | 405 | 410 => Outcome::failed(
            &code,
            format!("nTherm's endpoint is not there ({status}); check the destination URL (postLead)"),
        ),
        408 | 425 | 429 => Outcome::retry(
            &code,
            format!("nTherm asked us to try again later ({status})"),
            retry_after(response, now),
        ),
        422 => Outcome::rejected(
            UNAVAILABLE_FOR_LEAD,
            format!("nTherm cannot take this lead at this time (422): {}", reason()),
            true,
        ),
        400..=499 => Outcome::rejected(
            &code,
            format!("nTherm refused the lead ({status}): {}", reason()),
            true,
        ),
        _ => Outcome::retry(
            &code,
            format!("nTherm had a server error ({status})"),
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

    const URL: &str = "https://api.ntherm.com/v1/postLead";
    const USER: &str = "hub-solar-user";
    const PASS: &str = "n7h3rm-p4ss!word";

    fn ntherm() -> Destination {
        destination(
            ConnectorKind::Ntherm,
            URL,
            &[Vertical::Solar],
            &[(USERNAME, USER), (PASSWORD, PASS)],
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

    // The seed's sample responses, verbatim.
    const SEED_200: &str =
        "{\n\"success_bit\": true,\n\"message\": \"Lead submitted successfully.\"\n}";
    const SEED_422: &str = "{\n\"success_bit\": false,\n\"message\": [{\"error\": \"Phone number can not be sent to postLead at this time.\"}]\n}";
    /// Not valid JSON (`false,\n,`), exactly as the seed prints it.
    const SEED_400_MALFORMED: &str = "{\n\"success_bit\": false,\n,\"message\":[{\"error\":\"Invalid Characters: 7271234567x\"}]\n}";
    const SEED_400: &str = "{\n\"success_bit\": false,\n\"message\":[{\"error\":\"Invalid State Code (2 characters): C\"},{\"error\":\"Certificate URL exceeds 500 characters, or not a valid URL ://example.com/certificate.pdf\"},{\"error\":\"Invalid Mailing State Code: CA3\"}]}";

    #[test]
    fn builds_the_seed_request_field_by_field() {
        // The solar vertical's example is the seed's sample request (with a real phone number).
        let lead = example_lead(Vertical::Solar);
        let request = build_for(&lead, &ntherm()).expect("builds");
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.url.as_str(), URL);
        // The seed's `Basic ${btoa(username + ':' + password)}`.
        let expected_auth = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASS}")));
        assert_eq!(request.headers[AUTHORIZATION], expected_auth.as_str());
        assert!(request.headers[AUTHORIZATION].is_sensitive());
        assert_eq!(request.headers[CONTENT_TYPE], "application/json");
        assert_eq!(request.headers[ACCEPT], "application/json");
        assert_eq!(request.headers["idempotency-key"], IDEMPOTENCY_KEY);
        let rows: Vec<(&str, Value)> = vec![
            ("/phone_number", json!("7275550134")),
            ("/customer_name", json!("John Doe")),
            ("/state", json!("CA")),
            ("/city", json!("Los Angeles")),
            ("/zip", json!("90001")),
            (
                "/certificate_url",
                json!("https://example.com/certificate.pdf"),
            ),
            ("/street", json!("123 Main St")),
            ("/customer_address", json!("123 Main St")),
            ("/dm_name", json!("Jane Doe")),
            ("/utility", json!("Utility Provider")),
            // The hub's callback for this lead and buyer, not the partner's https://example.com/callback.
            ("/call_back_url", json!(CALLBACK_URL)),
            ("/mailing_street", json!("456 Secondary St")),
            ("/mailing_city", json!("San Francisco")),
            ("/mailing_zip", json!("94101")),
            ("/mailing_state", json!("CA")),
            ("/vendor_campaign_name", json!("OHIO_GENERAL_RESIDENTIAL")),
            ("/email", json!("john.doe@example.com")),
            (
                "/extra_data",
                json!([
                    {"questions": ["Do you consent to be contacted?", "Do you agree to the terms and conditions?"]},
                    {"answers": ["Yes", "Yes"]}
                ]),
            ),
        ];
        assert_fields(&body_of(&request), &rows);
    }

    #[test]
    fn builds_the_variants_the_seed_allows() {
        // `street` instead of `customer_address`, no certificate (so extra_data), ZIP+4, a formatted phone.
        let mut sample = Vertical::Solar.example();
        let object = sample.as_object_mut().expect("object");
        object.remove("customer_address");
        object.remove("certificate_url");
        object.insert("street".into(), json!("9 Elm Ave"));
        object.insert("zip".into(), json!("90001-1234"));
        object.insert("mailing_zip".into(), json!("941011234"));
        object.insert("phone_number".into(), json!("+1 (727) 555-0134"));
        object.insert("extra_data".into(), json!({"key": "value"}));
        let lead = lead_from(Vertical::Solar, &sample);
        let body = body_of(&build_for(&lead, &ntherm()).expect("builds"));
        assert_eq!(body["street"], "9 Elm Ave");
        assert_eq!(body["customer_address"], "9 Elm Ave");
        assert_eq!(body["zip"], "90001");
        assert_eq!(body["mailing_zip"], "94101");
        assert_eq!(body["phone_number"], "7275550134");
        assert_eq!(body["extra_data"], json!({"key": "value"}));
        assert!(body.get("certificate_url").is_none());

        // A certificate and no extra_data: no extra_data key.
        let mut sample = Vertical::Solar.example();
        sample.as_object_mut().expect("object").remove("extra_data");
        let body =
            body_of(&build_for(&lead_from(Vertical::Solar, &sample), &ntherm()).expect("builds"));
        assert!(body.get("extra_data").is_none());
        assert_eq!(
            body["certificate_url"],
            "https://example.com/certificate.pdf"
        );
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        assert!(build_for(&example_lead(Vertical::Heloc), &ntherm()).is_err());
        let solar = example_lead(Vertical::Solar);
        for missing in [USERNAME, PASSWORD] {
            let mut destination = ntherm();
            destination.credentials.remove(missing);
            let error = build_for(&solar, &destination).expect_err("no credential");
            assert!(error.0.contains(missing), "{error}");
        }
        let mut broken = solar.clone();
        let mut value = broken.lead.value();
        let object = value.as_object_mut().expect("object");
        object.remove("certificate_url");
        object.remove("extra_data");
        broken.lead = value.into();
        let error = build_for(&broken, &ntherm()).expect_err("neither");
        assert!(error.0.contains("extra_data"), "{error}");
    }

    #[test]
    fn classifies_every_documented_answer() {
        let rows: Vec<(BuyerResponse, Outcome)> = vec![
            // The seed's three sample answers (and its second 400).
            (response(200, &[], SEED_200), Outcome::Accepted { buyer_ref: None, price: None }),
            (
                response(422, &[], SEED_422),
                Outcome::rejected(
                    UNAVAILABLE_FOR_LEAD,
                    "nTherm cannot take this lead at this time (422): Phone number can not be sent to postLead at this time.",
                    true,
                ),
            ),
            (
                response(400, &[], SEED_400_MALFORMED),
                Outcome::rejected(
                    "http_400",
                    "nTherm refused the lead (400): Invalid Characters: 7271234567x",
                    true,
                ),
            ),
            (
                response(400, &[], SEED_400),
                Outcome::rejected(
                    "http_400",
                    "nTherm refused the lead (400): Invalid State Code (2 characters): C; Certificate URL \
                     exceeds 500 characters, or not a valid URL ://example.com/certificate.pdf; Invalid Mailing \
                     State Code: CA3",
                    true,
                ),
            ),
            // 200 variants.
            (
                response(200, &[], r#"{"success_bit": true, "message": "ok", "lead_id": "NT-77"}"#),
                Outcome::Accepted { price: None, buyer_ref: Some("NT-77".into()) },
            ),
            (
                response(200, &[], r#"{"success_bit": false, "message": [{"error": "Duplicate lead"}]}"#),
                Outcome::rejected("ntherm_rejected", "nTherm declined the lead: Duplicate lead", true),
            ),
            (
                response(200, &[], r#"{"success_bit": false, "message": "Out of service area"}"#),
                Outcome::rejected("ntherm_rejected", "nTherm declined the lead: Out of service area", true),
            ),
            (
                response(200, &[], r#"{"success_bit": "false"}"#),
                Outcome::rejected("ntherm_rejected", "nTherm declined the lead: no reason given", true),
            ),
            (
                response(200, &[], "{\"success_bit\": false,\n,\"message\":\"Rejected\"}"),
                Outcome::rejected("ntherm_rejected", "nTherm declined the lead: Rejected", true),
            ),
            (
                response(200, &[], "{\"success_bit\": true,,}"),
                Outcome::Accepted { buyer_ref: None, price: None },
            ),
            (response(200, &[], ""), Outcome::Accepted { buyer_ref: None, price: None }),
            (response(200, &[], "OK"), Outcome::Accepted { buyer_ref: None, price: None }),
            (response(200, &[], "[true]"), Outcome::Accepted { buyer_ref: None, price: None }),
            (response(200, &[], r#"{"success_bit": null}"#), Outcome::Accepted { buyer_ref: None, price: None }),
            // Other 400 shapes.
            (
                response(400, &[], "not json at all"),
                Outcome::rejected("http_400", "nTherm refused the lead (400): not json at all", true),
            ),
            (
                response(400, &[], r#"{"success_bit": false, "message": 42}"#),
                Outcome::rejected("http_400", "nTherm refused the lead (400): no reason given", true),
            ),
            (
                response(400, &[], "{\"success_bit\": false,,"),
                Outcome::rejected("http_400", "nTherm refused the lead (400): no reason given", true),
            ),
            (
                response(400, &[], ""),
                Outcome::rejected("http_400", "nTherm refused the lead (400): no reason given", true),
            ),
            (
                response(422, &[], ""),
                Outcome::rejected(
                    UNAVAILABLE_FOR_LEAD,
                    "nTherm cannot take this lead at this time (422): no reason given",
                    true,
                ),
            ),
            // Credentials and configuration.
            (
                response(401, &[], r#"{"message":"Unauthenticated."}"#),
                Outcome::failed(
                    "http_401",
                    "nTherm refused our credentials (401); check credentials.username and credentials.password",
                ),
            ),
            (
                response(403, &[], ""),
                Outcome::failed(
                    "http_403",
                    "nTherm refused our credentials (403); check credentials.username and credentials.password",
                ),
            ),
            (
                response(404, &[], "<html>"),
                Outcome::failed(
                    "http_404",
                    "nTherm's endpoint is not there (404); check the destination URL (postLead)",
                ),
            ),
            // Passing trouble.
            (
                response(429, &[("retry-after", "30")], ""),
                Outcome::retry(
                    "http_429",
                    "nTherm asked us to try again later (429)",
                    Some(Duration::from_secs(30)),
                ),
            ),
            (
                response(408, &[], ""),
                Outcome::retry("http_408", "nTherm asked us to try again later (408)", None),
            ),
            (
                response(500, &[], SEED_200),
                Outcome::retry("http_500", "nTherm had a server error (500)", None),
            ),
            (
                response(503, &[("retry-after", "120")], "<html>busy</html>"),
                Outcome::retry(
                    "http_503",
                    "nTherm had a server error (503)",
                    Some(Duration::from_secs(120)),
                ),
            ),
            (
                response(504, &[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")], ""),
                Outcome::retry(
                    "http_504",
                    "nTherm had a server error (504)",
                    Some(Duration::from_secs(30)),
                ),
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
    fn the_tolerant_scan_reads_broken_json_safely() {
        assert_eq!(
            scan_strings(SEED_400_MALFORMED, "error"),
            vec!["Invalid Characters: 7271234567x"]
        );
        assert_eq!(
            scan_strings(r#"{"error": "a \"quoted\" \u00e9", "error":"#, "error"),
            vec!["a \"quoted\" é"]
        );
        assert_eq!(
            scan_strings(r#"{"error": "unterminated"#, "error"),
            Vec::<String>::new()
        );
        assert_eq!(
            scan_strings(r#"{"error": "ends in a backslash \"#, "error"),
            Vec::<String>::new()
        );
        assert_eq!(scan_strings("\"error\"\"error\":\"é\"", "error"), vec!["é"]);
        assert_eq!(success_bit(SEED_400_MALFORMED.as_bytes()), Some(false));
        assert_eq!(success_bit(b"\"success_bit\""), None);
        assert_eq!(success_bit(b"\"success_bit\":"), None);
        assert_eq!(
            success_bit("\u{fffd}\"success_bit\" :\ttrue".as_bytes()),
            Some(true)
        );
    }

    #[test]
    fn credentials_never_show_in_the_request_or_the_reasons() {
        let destination = ntherm();
        let request = build_for(&example_lead(Vertical::Solar), &destination).expect("builds");
        let basic = STANDARD.encode(format!("{USER}:{PASS}"));
        let debug = format!("{request:?}");
        let body = String::from_utf8_lossy(&request.body);
        for secret in [USER, PASS, basic.as_str()] {
            assert!(!debug.contains(secret), "{debug}");
            assert!(!body.contains(secret));
        }
        let echoes = [
            format!(r#"{{"success_bit": false, "message": [{{"error": "Authorization: Basic {basic} refused"}}]}}"#),
            format!("{{\"success_bit\": false,\n,\"message\":[{{\"error\":\"bad Authorization Basic {basic}\"}}]}}"),
            format!(r#"{{"success_bit": false, "message": "user {USER} with password {PASS} unknown"}}"#),
        ];
        for status in [200, 400, 401, 403, 404, 422, 429, 500] {
            for body in &echoes {
                let raw = classify(&response(status, &[], body), now());
                let clean = super::super::without_credentials(raw.clone(), &destination);
                for secret in [USER, PASS, basic.as_str()] {
                    assert!(
                        !format!("{clean:?}").contains(secret),
                        "{status}: {clean:?}"
                    );
                }
                // The Basic token is redacted by classify itself; 401/403/404 never quote the body.
                assert!(!format!("{raw:?}").contains(&basic), "{status}: {raw:?}");
                if matches!(status, 401 | 403 | 404) {
                    assert!(!format!("{raw:?}").contains(PASS), "{status}: {raw:?}");
                }
            }
        }
    }
}
