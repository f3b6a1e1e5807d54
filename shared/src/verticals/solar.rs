//! Solar leads: seed `002_97119647e0e39833.txt` (nTherm `postLead`) as the inbound schema, with the seed's
//! snake_case field names and its error wording.
//!
//! Choices where the seed is silent or contradicts itself, written down here:
//! - The customer's street address: the field table calls it `street`, the sample request sends
//!   `customer_address`. Either is accepted and exactly one is required; both given with different values
//!   (after trimming, compared exactly) is an error on `customer_address`. The normalised lead always says
//!   `street` (the field table's name).
//! - `certificate_url` is optional although the table marks it required: `extra_data` is "required if
//!   certificate_url is not provided", which only makes sense if it may be left out. "Provided" means present,
//!   not null and not blank; a present but invalid `certificate_url` is reported on its own and does not
//!   also demand `extra_data`. An empty `extra_data` (`{}` or `[]`) does not stand in for a missing
//!   certificate (`required`, "must not be empty"); with a certificate it is accepted and kept.
//! - The seed's messages are kept but never echo PII: "Invalid Characters: ..." lists only the distinct
//!   offending characters of the phone (at most [`MAX_ECHOED_CHARS`] of them, control and other invisible
//!   characters escaped, non-ASCII digits such as `７` only as "(non-ASCII digit)"), never the number; the certificate message stops before the URL; the state
//!   messages echo at most [`MAX_ECHOED_CHARS`] characters of the code (a state code is not PII).
//! - In a phone number, digits, spaces, `.`, `-`, `(`, `)` and a `+` as the very first character are the
//!   valid characters; anything else is an "invalid character". A number of valid characters that is not a
//!   valid US number gets [`Phone::RULE`].
//! - URLs must be absolute `http://` or `https://` URLs with a host and no whitespace or control characters
//!   (the WHATWG parser would silently drop tabs and newlines). They are kept as given (trimmed), not
//!   re-serialised, so what the partner sent is what is forwarded. `call_back_url` longer than 500
//!   characters is `too_long` (the seed has no wording for it); `certificate_url` uses the seed's message.
//! - `call_back_url` SSRF guard: [`crate::ssrf::check_url`]'s rules (its module docs list every refused
//!   range; the WHATWG parser already turns `http://2130706433/` and `http://0x7f.1/` into 127.0.0.1);
//!   resolved names are checked again at connect time by [`crate::ssrf::GuardedResolver`].
//!   `certificate_url` is only forwarded, never fetched by the hub, so it gets no such guard.
//! - `extra_data` is an open bag: any object or array, kept exactly as given (no unknown-field checks
//!   inside it).

use crate::ssrf::UrlPolicy;
use reqwest::Url;
use serde::Serialize;
use serde_json::{json, Value};

use super::fields::type_name;
use super::fields::{Email, FieldErrors, ObjectReader, Phone, StateCode, Zip, MAX_TEXT_LEN};
use super::ParsedLead;

/// The longest URL accepted: the seed's limit for `certificate_url`, which the hub applies to
/// `call_back_url` too (the seed gives that one no limit; a callback URL is stored with the lead).
pub const MAX_URL_LEN: usize = 500;

/// At most this many characters of a refused value are echoed in a seed-style message.
pub const MAX_ECHOED_CHARS: usize = 10;

/// The seed's message for a bad `certificate_url` (without the URL the seed appends).
pub const CERTIFICATE_URL_RULE: &str = "Certificate URL exceeds 500 characters, or not a valid URL";

/// The message for a URL that is not an absolute http(s) URL.
pub const URL_RULE: &str = "must be a valid absolute http(s) URL";

/// The message for a `call_back_url` that points at a non-public host.
pub const PUBLIC_URL_RULE: &str = "must be a public http(s) URL";

/// A solar lead that satisfies every rule of seed 002, normalised (field names are the seed's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolarLead {
    /// E.164 (`+1` and ten digits).
    pub phone_number: Phone,
    pub customer_name: String,
    pub state: StateCode,
    pub city: String,
    pub zip: Zip,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_url: Option<String>,
    /// From `street` or the sample request's `customer_address`.
    pub street: String,
    pub dm_name: String,
    pub utility: String,
    pub call_back_url: String,
    pub mailing_street: String,
    pub mailing_city: String,
    pub mailing_zip: Zip,
    pub mailing_state: StateCode,
    pub vendor_campaign_name: String,
    pub email: Email,
    /// The open bag, exactly as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_data: Option<Value>,
}

impl SolarLead {
    pub fn into_parsed(self) -> ParsedLead {
        ParsedLead::new(&self, vec![])
    }
}

/// Check a solar lead against seed 002 and normalise it; every broken rule is reported.
pub fn parse(value: &Value) -> Result<ParsedLead, FieldErrors> {
    parse_with(value, UrlPolicy::default())
}

/// [`parse`], `call_back_url` allowed under `policy` (loopback only where the hub's configuration says
/// `allow_loopback_urls`).
pub fn parse_with(value: &Value, policy: UrlPolicy) -> Result<ParsedLead, FieldErrors> {
    parse_lead_with(value, policy).map(SolarLead::into_parsed)
}

fn text(description: &str) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN, "description": description})
}

/// The JSON Schema of a solar lead (seed 002).
pub fn schema() -> Value {
    let state = |description: &str| json!({"type": "string", "pattern": "^[A-Za-z]{2}$", "description": description});
    let zip = |description: &str| json!({"type": "string", "pattern": "^\\s*[0-9]{5}([- ]?[0-9]{4})?\\s*$", "description": description});
    json!({
        "type": "object",
        "title": "SolarLead",
        "description": "A solar lead in nTherm postLead's shape (seed 002). The customer's street address is given as `street` (the seed's field table) or `customer_address` (the seed's sample request): exactly one is required, both are accepted only with the same value, and the normalised lead says `street`. `certificate_url` is optional, but without it `extra_data` is required.",
        "additionalProperties": false,
        "required": [
            "phone_number", "customer_name", "state", "city", "zip", "dm_name", "utility", "call_back_url",
            "mailing_street", "mailing_city", "mailing_zip", "mailing_state", "vendor_campaign_name", "email"
        ],
        "properties": {
            "phone_number": {"type": "string", "maxLength": MAX_TEXT_LEN, "description": "Customer's US phone number (10 digits, optional leading +1; digits, spaces, dots, dashes, parentheses and a leading + only); normalised to E.164"},
            "customer_name": text("Name of the customer"),
            "state": state("2-letter USPS state code of the customer (a US state, DC or territory; case-insensitive, upper-cased)"),
            "city": text("City of the customer"),
            "zip": zip("ZIP code of the customer: 5 digits or ZIP+4; normalised to 12345 or 12345-6789"),
            "certificate_url": {"type": "string", "format": "uri", "maxLength": MAX_URL_LEN, "description": "URL of the consent certificate: an absolute http(s) URL of at most 500 characters. Optional, but when it is absent extra_data is required"},
            "street": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN, "description": "Street address of the customer. Either this or customer_address is required (not both with different values)"},
            "customer_address": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN, "description": "Street address of the customer, as the seed's sample request names it; accepted instead of street and normalised to street"},
            "dm_name": text("Name of the decision maker"),
            "utility": text("Utility provider of the customer"),
            "call_back_url": {"type": "string", "format": "uri", "maxLength": MAX_URL_LEN, "description": "URL the final result is sent to: a public absolute http(s) URL of at most 500 characters (not localhost or a loopback, private, link-local, CGNAT or otherwise non-public IP address)"},
            "mailing_street": text("Mailing street address of the customer"),
            "mailing_city": text("Mailing city of the customer"),
            "mailing_zip": zip("Mailing ZIP code of the customer: 5 digits or ZIP+4; normalised to 12345 or 12345-6789"),
            "mailing_state": state("Mailing state of the customer: 2-letter USPS code (case-insensitive, upper-cased)"),
            "vendor_campaign_name": text("Name of the campaign associated with the submission"),
            "email": {"type": "string", "format": "email", "maxLength": MAX_TEXT_LEN, "description": "Email address of the customer"},
            "extra_data": {"anyOf": [{"type": "object", "additionalProperties": true}, {"type": "array", "items": {}}], "description": "Any JSON object or array (kept as given). Required, and not empty, if certificate_url is not provided"}
        }
    })
}

/// A valid solar lead: the seed's sample request, with a real phone number.
pub fn example() -> Value {
    json!({
        // The seed's sample sends "999999999": a placeholder of nine digits, not a valid US number.
        "phone_number": "7275550134",
        "customer_name": "John Doe",
        "state": "CA",
        "city": "Los Angeles",
        "zip": "90001",
        "certificate_url": "https://example.com/certificate.pdf",
        "customer_address": "123 Main St",
        "dm_name": "Jane Doe",
        "utility": "Utility Provider",
        "call_back_url": "https://example.com/callback",
        "mailing_street": "456 Secondary St",
        "mailing_city": "San Francisco",
        "mailing_zip": "94101",
        "mailing_state": "CA",
        "vendor_campaign_name": "OHIO_GENERAL_RESIDENTIAL",
        "email": "john.doe@example.com",
        "extra_data": [
            {"questions": ["Do you consent to be contacted?", "Do you agree to the terms and conditions?"]},
            {"answers": ["Yes", "Yes"]}
        ]
    })
}

/// A character as it may appear in a message: visible characters as they are, others escaped.
fn visible(c: char) -> String {
    if c == ' ' || c.is_alphanumeric() || c.is_ascii_punctuation() {
        c.to_string()
    } else {
        c.escape_unicode().to_string()
    }
}

/// At most [`MAX_ECHOED_CHARS`] characters of `value`, invisible ones escaped.
fn echo(value: &str) -> String {
    let mut out: String = value.chars().take(MAX_ECHOED_CHARS).map(visible).collect();
    if value.chars().count() > MAX_ECHOED_CHARS {
        out.push('…');
    }
    out
}

/// How a non-ASCII digit (`７`, `٣`) is shown: never itself, as a run of them would spell the number.
const NON_ASCII_DIGIT: &str = "(non-ASCII digit)";

/// The distinct characters of a phone number that are neither digits nor the usual formatting, in order of
/// appearance, as they are shown (non-ASCII digits as one [`NON_ASCII_DIGIT`] entry).
fn invalid_phone_characters(phone: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (i, c) in phone.chars().enumerate() {
        let ok =
            c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')') || (c == '+' && i == 0);
        if ok {
            continue;
        }
        let shown = if c.is_numeric() {
            NON_ASCII_DIGIT.to_owned()
        } else {
            visible(c)
        };
        if !found.contains(&shown) {
            found.push(shown);
        }
    }
    found
}

fn read_phone(r: &mut ObjectReader<'_>, errors: &mut FieldErrors) -> Option<Phone> {
    let raw = r.string("phone_number", true, MAX_TEXT_LEN, errors)?;
    let invalid = invalid_phone_characters(&raw);
    if !invalid.is_empty() {
        let mut shown: String = invalid
            .iter()
            .take(MAX_ECHOED_CHARS)
            .map(String::as_str)
            .collect();
        if invalid.len() > MAX_ECHOED_CHARS {
            shown.push('…');
        }
        errors.push(
            &r.path("phone_number"),
            "invalid_format",
            format!("Invalid Characters: {shown}"),
        );
        return None;
    }
    match Phone::parse(&raw) {
        Ok(phone) => Some(phone),
        Err(rule) => {
            errors.push(&r.path("phone_number"), "invalid_format", rule);
            None
        }
    }
}

fn read_state(
    r: &mut ObjectReader<'_>,
    name: &'static str,
    message: &str,
    errors: &mut FieldErrors,
) -> Option<StateCode> {
    let raw = r.string(name, true, MAX_TEXT_LEN, errors)?;
    match StateCode::parse(&raw) {
        Ok(state) => Some(state),
        Err(_) => {
            errors.push(
                &r.path(name),
                "invalid_format",
                format!("{message}: {}", echo(&raw)),
            );
            None
        }
    }
}

/// An absolute http(s) URL with a host, without whitespace or control characters.
fn absolute_http_url(raw: &str) -> Option<Url> {
    let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    let host_ok = url.host_str().is_some_and(|host| !host.is_empty());
    (matches!(url.scheme(), "http" | "https") && host_ok).then_some(url)
}

/// Whether the host of `url` may be called back ([`crate::ssrf::check_parsed`]; loopback only under a
/// policy that allows it: local and test runs).
fn is_public(url: &Url, policy: UrlPolicy) -> bool {
    crate::ssrf::check_parsed(url, policy).is_ok()
}

fn read_call_back_url(
    r: &mut ObjectReader<'_>,
    errors: &mut FieldErrors,
    policy: UrlPolicy,
) -> Option<String> {
    let raw = r.string("call_back_url", true, MAX_URL_LEN, errors)?;
    let Some(url) = absolute_http_url(&raw) else {
        errors.push(&r.path("call_back_url"), "invalid_format", URL_RULE);
        return None;
    };
    if !is_public(&url, policy) {
        errors.push(&r.path("call_back_url"), "invalid_value", PUBLIC_URL_RULE);
        return None;
    }
    Some(raw)
}

fn read_certificate_url(r: &mut ObjectReader<'_>, errors: &mut FieldErrors) -> Option<String> {
    // No length limit in the reader: the seed's own message covers "exceeds 500 characters".
    let raw = r.string("certificate_url", false, usize::MAX, errors)?;
    if raw.chars().count() > MAX_URL_LEN || absolute_http_url(&raw).is_none() {
        errors.push(
            &r.path("certificate_url"),
            "invalid_format",
            CERTIFICATE_URL_RULE,
        );
        return None;
    }
    Some(raw)
}

/// Whether `name` was given at all: present, not null and not a blank string.
fn given(object: &Value, name: &str) -> bool {
    match object.get(name) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// [`parse`], returning the typed lead.
pub fn parse_lead(value: &Value) -> Result<SolarLead, FieldErrors> {
    parse_lead_with(value, UrlPolicy::default())
}

/// [`parse_lead`] under `policy` for `call_back_url`.
pub fn parse_lead_with(value: &Value, policy: UrlPolicy) -> Result<SolarLead, FieldErrors> {
    let mut errors = FieldErrors::default();
    let Some(mut root) = ObjectReader::new(value, "", &mut errors) else {
        return Err(errors);
    };

    let phone_number = read_phone(&mut root, &mut errors);
    let customer_name = root.string("customer_name", true, MAX_TEXT_LEN, &mut errors);
    let state = read_state(
        &mut root,
        "state",
        "Invalid State Code (2 characters)",
        &mut errors,
    );
    let city = root.string("city", true, MAX_TEXT_LEN, &mut errors);
    let zip = root.parsed("zip", true, &mut errors, Zip::parse);
    let certificate_url = read_certificate_url(&mut root, &mut errors);
    let street = root.string("street", false, MAX_TEXT_LEN, &mut errors);
    let customer_address = root.string("customer_address", false, MAX_TEXT_LEN, &mut errors);
    let dm_name = root.string("dm_name", true, MAX_TEXT_LEN, &mut errors);
    let utility = root.string("utility", true, MAX_TEXT_LEN, &mut errors);
    let call_back_url = read_call_back_url(&mut root, &mut errors, policy);
    let mailing_street = root.string("mailing_street", true, MAX_TEXT_LEN, &mut errors);
    let mailing_city = root.string("mailing_city", true, MAX_TEXT_LEN, &mut errors);
    let mailing_zip = root.parsed("mailing_zip", true, &mut errors, Zip::parse);
    let mailing_state = read_state(
        &mut root,
        "mailing_state",
        "Invalid Mailing State Code",
        &mut errors,
    );
    let vendor_campaign_name = root.string("vendor_campaign_name", true, MAX_TEXT_LEN, &mut errors);
    let email = root.parsed("email", true, &mut errors, Email::parse);
    let extra_data = match root.get("extra_data") {
        None => None,
        Some(bag @ (Value::Object(_) | Value::Array(_))) => Some(bag.clone()),
        Some(other) => {
            errors.push(
                "extra_data",
                "invalid_type",
                format!("must be a JSON object or array, not {}", type_name(other)),
            );
            None
        }
    };
    root.finish(&mut errors);

    // street (field table) or customer_address (sample request): exactly one address.
    let street_given = given(value, "street");
    let customer_address_given = given(value, "customer_address");
    let street = match (street, customer_address) {
        (Some(street), Some(other)) if street != other => {
            errors.push(
                "customer_address",
                "invalid_value",
                "give street or customer_address, not both with different values",
            );
            None
        }
        (street, other) => street.or(other),
    };
    if !street_given && !customer_address_given {
        errors.push(
            "street",
            "required",
            "is required (the customer's street address; customer_address is accepted too)",
        );
    }

    // extra_data: required if certificate_url is not provided.
    if !given(value, "certificate_url") {
        let empty = match &extra_data {
            Some(Value::Object(object)) => object.is_empty(),
            Some(Value::Array(items)) => items.is_empty(),
            _ => false,
        };
        if value.get("extra_data").is_none_or(Value::is_null) {
            errors.push(
                "extra_data",
                "required",
                "required if certificate_url is not provided",
            );
        } else if empty {
            errors.push(
                "extra_data",
                "required",
                "must not be empty: required if certificate_url is not provided",
            );
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    match (
        phone_number,
        customer_name,
        state,
        city,
        zip,
        street,
        dm_name,
        utility,
        call_back_url,
        mailing_street,
        mailing_city,
        mailing_zip,
        mailing_state,
        vendor_campaign_name,
        email,
    ) {
        (
            Some(phone_number),
            Some(customer_name),
            Some(state),
            Some(city),
            Some(zip),
            Some(street),
            Some(dm_name),
            Some(utility),
            Some(call_back_url),
            Some(mailing_street),
            Some(mailing_city),
            Some(mailing_zip),
            Some(mailing_state),
            Some(vendor_campaign_name),
            Some(email),
        ) => Ok(SolarLead {
            phone_number,
            customer_name,
            state,
            city,
            zip,
            certificate_url,
            street,
            dm_name,
            utility,
            call_back_url,
            mailing_street,
            mailing_city,
            mailing_zip,
            mailing_state,
            vendor_campaign_name,
            email,
            extra_data,
        }),
        // Unreachable in practice: every missing piece above recorded an error. Report it rather than panic.
        _ => Err(FieldErrors::unreadable()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verticals::fields::{FieldError, ROOT};
    use crate::verticals::test_support::{errors, set};

    #[test]
    fn schema_is_in_step_with_the_parser() {
        crate::verticals::schema_check::assert_in_step(crate::verticals::Vertical::Solar);
    }

    /// The seed's sample request, valid (with `street`, not `customer_address`).
    fn valid() -> Value {
        let mut lead = example();
        set(&mut lead, "customer_address", Value::Null);
        set(&mut lead, "street", json!("123 Main St"));
        lead
    }

    fn errors_of(lead: &Value) -> Vec<FieldError> {
        errors(parse(lead))
    }

    /// One row per rule of seed 002: (what, changes to the valid lead, expected (field, code, message)).
    /// An empty expected message only checks field and code.
    #[test]
    fn every_rule_of_seed_002() {
        type Row = (
            &'static str,
            Vec<(&'static str, Value)>,
            Vec<(&'static str, &'static str, &'static str)>,
        );
        let long_url = format!("https://example.com/{}", "c".repeat(MAX_URL_LEN - 19));
        assert_eq!(long_url.len(), MAX_URL_LEN + 1);
        let max_url = format!("https://example.com/{}", "c".repeat(MAX_URL_LEN - 20));
        let mut rows: Vec<Row> = vec![("valid lead", vec![], vec![])];
        // Every unconditionally required field, missing and blank.
        for name in [
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
        ] {
            rows.push((
                name,
                vec![(name, Value::Null)],
                vec![(name, "required", "is required")],
            ));
            rows.push((
                name,
                vec![(name, json!("  "))],
                vec![(name, "required", "must not be empty")],
            ));
            rows.push((
                name,
                vec![(name, json!(12345))],
                vec![(name, "invalid_type", "must be a string, not a number")],
            ));
        }
        let long_text: &'static str = "x".repeat(MAX_TEXT_LEN + 1).leak();
        let long_url: &'static str = long_url.leak();
        let max_url: &'static str = max_url.leak();
        rows.extend::<Vec<Row>>(vec![
            // phone_number: the seed's "Invalid Characters" message, without the number.
            (
                "seed: Invalid Characters: x",
                vec![("phone_number", json!("7271234567x"))],
                vec![("phone_number", "invalid_format", "Invalid Characters: x")],
            ),
            (
                "invalid characters are listed once each, in order",
                vec![("phone_number", json!("72a7b12a34567#"))],
                vec![("phone_number", "invalid_format", "Invalid Characters: ab#")],
            ),
            (
                "a + after the start is an invalid character",
                vec![("phone_number", json!("727+1234567"))],
                vec![("phone_number", "invalid_format", "Invalid Characters: +")],
            ),
            (
                "invisible characters are escaped",
                vec![("phone_number", json!("727\t555\u{0}0134"))],
                vec![(
                    "phone_number",
                    "invalid_format",
                    "Invalid Characters: \\u{9}\\u{0}",
                )],
            ),
            (
                "non-ASCII digits are never shown",
                vec![("phone_number", json!("７２７５５５０１３４x"))],
                vec![(
                    "phone_number",
                    "invalid_format",
                    "Invalid Characters: (non-ASCII digit)x",
                )],
            ),
            (
                "valid characters, not a valid US number (the seed's 999999999)",
                vec![("phone_number", json!("999999999"))],
                vec![("phone_number", "invalid_format", Phone::RULE)],
            ),
            (
                "formatted phone accepted",
                vec![("phone_number", json!("+1 (727) 555-0134"))],
                vec![],
            ),
            (
                "dotted phone accepted",
                vec![("phone_number", json!("727.555.0134"))],
                vec![],
            ),
            (
                "phone too long",
                vec![("phone_number", json!(long_text))],
                vec![("phone_number", "too_long", "")],
            ),
            // state / mailing_state: the seed's messages.
            (
                "seed: Invalid State Code (2 characters): C",
                vec![("state", json!("C"))],
                vec![(
                    "state",
                    "invalid_format",
                    "Invalid State Code (2 characters): C",
                )],
            ),
            (
                "state must be a real USPS code",
                vec![("state", json!("XX"))],
                vec![(
                    "state",
                    "invalid_format",
                    "Invalid State Code (2 characters): XX",
                )],
            ),
            (
                "state echo is cut at 10 characters",
                vec![("state", json!("Californiaaa"))],
                vec![(
                    "state",
                    "invalid_format",
                    "Invalid State Code (2 characters): California…",
                )],
            ),
            (
                "state lower-case accepted",
                vec![("state", json!("ca"))],
                vec![],
            ),
            ("state DC accepted", vec![("state", json!("DC"))], vec![]),
            ("state PR accepted", vec![("state", json!("PR"))], vec![]),
            (
                "seed: Invalid Mailing State Code: CA3",
                vec![("mailing_state", json!("CA3"))],
                vec![(
                    "mailing_state",
                    "invalid_format",
                    "Invalid Mailing State Code: CA3",
                )],
            ),
            // certificate_url: the seed's message, without the URL.
            (
                "seed: certificate URL not a valid URL",
                vec![("certificate_url", json!("://example.com/certificate.pdf"))],
                vec![("certificate_url", "invalid_format", CERTIFICATE_URL_RULE)],
            ),
            (
                "seed: certificate URL exceeds 500 characters",
                vec![("certificate_url", json!(long_url))],
                vec![("certificate_url", "invalid_format", CERTIFICATE_URL_RULE)],
            ),
            (
                "certificate URL of exactly 500 characters accepted",
                vec![("certificate_url", json!(max_url))],
                vec![],
            ),
            (
                "certificate URL must be http(s)",
                vec![(
                    "certificate_url",
                    json!("ftp://example.com/certificate.pdf"),
                )],
                vec![("certificate_url", "invalid_format", CERTIFICATE_URL_RULE)],
            ),
            (
                "certificate URL without a host",
                vec![("certificate_url", json!("https://"))],
                vec![("certificate_url", "invalid_format", CERTIFICATE_URL_RULE)],
            ),
            (
                "certificate URL is a string",
                vec![("certificate_url", json!(["https://example.com"]))],
                vec![("certificate_url", "invalid_type", "")],
            ),
            // street vs customer_address.
            ("street alone accepted", vec![], vec![]),
            (
                "customer_address alone accepted",
                vec![
                    ("street", Value::Null),
                    ("customer_address", json!("123 Main St")),
                ],
                vec![],
            ),
            (
                "both, equal after trimming, accepted",
                vec![("customer_address", json!("  123 Main St "))],
                vec![],
            ),
            (
                "both, different",
                vec![("customer_address", json!("9 Other Rd"))],
                vec![(
                    "customer_address",
                    "invalid_value",
                    "give street or customer_address, not both with different values",
                )],
            ),
            (
                "neither",
                vec![("street", Value::Null)],
                vec![(
                    "street",
                    "required",
                    "is required (the customer's street address; customer_address is accepted too)",
                )],
            ),
            (
                "neither (blank street)",
                vec![("street", json!(" "))],
                vec![("street", "required", "")],
            ),
            (
                "street too long",
                vec![("street", json!(long_text))],
                vec![("street", "too_long", "")],
            ),
            (
                "customer_address is a string",
                vec![("street", Value::Null), ("customer_address", json!(123))],
                vec![("customer_address", "invalid_type", "")],
            ),
            // extra_data: required if certificate_url is not provided; an open bag.
            (
                "seed: extra_data required if certificate_url is not provided",
                vec![
                    ("certificate_url", Value::Null),
                    ("extra_data", Value::Null),
                ],
                vec![(
                    "extra_data",
                    "required",
                    "required if certificate_url is not provided",
                )],
            ),
            (
                "blank certificate_url is not provided",
                vec![("certificate_url", json!("")), ("extra_data", Value::Null)],
                vec![(
                    "extra_data",
                    "required",
                    "required if certificate_url is not provided",
                )],
            ),
            (
                "empty extra_data does not replace the certificate",
                vec![("certificate_url", Value::Null), ("extra_data", json!({}))],
                vec![("extra_data", "required", "")],
            ),
            (
                "extra_data optional with certificate_url",
                vec![("extra_data", Value::Null)],
                vec![],
            ),
            (
                "extra_data as object without certificate_url",
                vec![
                    ("certificate_url", Value::Null),
                    (
                        "extra_data",
                        json!({"key": "value", "nested": {"any": [1, true]}}),
                    ),
                ],
                vec![],
            ),
            (
                "extra_data as array without certificate_url",
                vec![
                    ("certificate_url", Value::Null),
                    ("extra_data", json!([{"key": "value"}])),
                ],
                vec![],
            ),
            (
                "extra_data is an object or array",
                vec![("extra_data", json!("key=value"))],
                vec![(
                    "extra_data",
                    "invalid_type",
                    "must be a JSON object or array, not a string",
                )],
            ),
            (
                "a blank string extra_data is the wrong type, reported once",
                vec![("certificate_url", Value::Null), ("extra_data", json!(""))],
                vec![("extra_data", "invalid_type", "")],
            ),
            (
                "extra_data is an object or array (number)",
                vec![("extra_data", json!(1))],
                vec![("extra_data", "invalid_type", "")],
            ),
            // call_back_url.
            (
                "call_back_url public accepted",
                vec![(
                    "call_back_url",
                    json!("https://partner.example.com/leads/cb?id=7"),
                )],
                vec![],
            ),
            (
                "call_back_url public IP accepted",
                vec![("call_back_url", json!("http://93.184.216.34:8080/cb"))],
                vec![],
            ),
            (
                "call_back_url public IPv6 accepted",
                vec![("call_back_url", json!("https://[2606:2800:220:1::1]/cb"))],
                vec![],
            ),
            (
                "call_back_url not a URL",
                vec![("call_back_url", json!("://example.com/callback"))],
                vec![("call_back_url", "invalid_format", URL_RULE)],
            ),
            (
                "call_back_url relative",
                vec![("call_back_url", json!("/callback"))],
                vec![("call_back_url", "invalid_format", URL_RULE)],
            ),
            (
                "call_back_url must be http(s)",
                vec![("call_back_url", json!("file:///etc/passwd"))],
                vec![("call_back_url", "invalid_format", URL_RULE)],
            ),
            (
                "call_back_url with a hidden newline",
                vec![("call_back_url", json!("https://exam\nple.com/cb"))],
                vec![("call_back_url", "invalid_format", URL_RULE)],
            ),
            (
                "call_back_url too long",
                vec![("call_back_url", json!(long_url))],
                vec![("call_back_url", "too_long", "")],
            ),
        ]);
        for refused in [
            "http://localhost/cb",
            "http://LOCALHOST.:8080/cb",
            "http://api.localhost/cb",
            "http://127.0.0.1/cb",
            "http://127.1.2.3/cb",
            "http://2130706433/cb",
            "http://0x7f.1/cb",
            "http://10.0.0.5/cb",
            "http://172.16.0.1/cb",
            "http://172.31.255.255/cb",
            "https://192.168.1.10/cb",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/cb",
            "http://100.127.255.254/cb",
            "http://0.0.0.0/cb",
            "http://255.255.255.255/cb",
            "http://[::1]/cb",
            "http://[::]/cb",
            "http://[fe80::1]/cb",
            "http://[fd00::1]/cb",
            "http://[::ffff:127.0.0.1]/cb",
            "http://[::ffff:8.8.8.8]/cb",
            "http://[64:ff9b::a00:1]/cb",
        ] {
            rows.push((
                refused,
                vec![("call_back_url", json!(refused))],
                vec![("call_back_url", "invalid_value", PUBLIC_URL_RULE)],
            ));
        }
        for accepted in [
            "http://172.32.0.1/cb",
            "http://100.128.0.1/cb",
            "http://[64:ff9b::808:808]/cb",
        ] {
            rows.push((accepted, vec![("call_back_url", json!(accepted))], vec![]));
        }
        rows.extend::<Vec<Row>>(vec![
            // email, zip.
            (
                "email format",
                vec![("email", json!("john.doe@"))],
                vec![("email", "invalid_format", Email::RULE)],
            ),
            (
                "zip format",
                vec![("zip", json!("9000"))],
                vec![("zip", "invalid_format", Zip::RULE)],
            ),
            (
                "mailing_zip format",
                vec![("mailing_zip", json!("94101-12"))],
                vec![("mailing_zip", "invalid_format", Zip::RULE)],
            ),
            ("ZIP+4 accepted", vec![("zip", json!("90001-1234"))], vec![]),
            // Text limits.
            (
                "customer_name too long",
                vec![("customer_name", json!(long_text))],
                vec![(
                    "customer_name",
                    "too_long",
                    "must be at most 255 characters",
                )],
            ),
            (
                "vendor_campaign_name too long",
                vec![("vendor_campaign_name", json!(long_text))],
                vec![("vendor_campaign_name", "too_long", "")],
            ),
            // Unknown fields.
            (
                "unknown field",
                vec![("customer_phone", json!("7275550134"))],
                vec![(
                    "customer_phone",
                    "unknown_field",
                    "is not a field of this schema",
                )],
            ),
            // Wrong types.
            (
                "zip is a string",
                vec![("zip", json!(90001))],
                vec![("zip", "invalid_type", "must be a string, not a number")],
            ),
            (
                "email is a string",
                vec![("email", json!({"address": "john.doe@example.com"}))],
                vec![("email", "invalid_type", "must be a string, not an object")],
            ),
            (
                "call_back_url is a string",
                vec![("call_back_url", json!(true))],
                vec![(
                    "call_back_url",
                    "invalid_type",
                    "must be a string, not a boolean",
                )],
            ),
        ]);
        for (what, changes, expected) in rows {
            let mut lead = valid();
            for (name, value) in changes {
                set(&mut lead, name, value);
            }
            let got = errors_of(&lead);
            let got_codes: Vec<(&str, &str)> = got
                .iter()
                .map(|e| (e.field.as_str(), e.code.as_str()))
                .collect();
            let expected_codes: Vec<(&str, &str)> = expected
                .iter()
                .map(|(field, code, _)| (*field, *code))
                .collect();
            assert_eq!(got_codes, expected_codes, "row: {what}");
            for (error, (_, _, message)) in got.iter().zip(&expected) {
                if !message.is_empty() {
                    assert_eq!(error.message, *message, "row: {what}");
                }
            }
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let lead = json!({
            "phone_number": "7271234567x",
            "customer_name": "",
            "state": "C",
            "zip": "9000",
            "certificate_url": "://example.com/certificate.pdf",
            "dm_name": "Jane Doe",
            "utility": 7,
            "call_back_url": "http://127.0.0.1/cb",
            "mailing_street": "456 Secondary St",
            "mailing_city": "San Francisco",
            "mailing_zip": "94101",
            "mailing_state": "CA3",
            "vendor_campaign_name": "OHIO_GENERAL_RESIDENTIAL",
            "email": "nope",
            "surprise": 1
        });
        let got: Vec<(String, String)> = errors_of(&lead)
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect();
        let expected: Vec<(String, String)> = [
            ("phone_number", "invalid_format"),
            ("customer_name", "required"),
            ("state", "invalid_format"),
            ("city", "required"),
            ("zip", "invalid_format"),
            ("certificate_url", "invalid_format"),
            ("utility", "invalid_type"),
            ("call_back_url", "invalid_value"),
            ("mailing_state", "invalid_format"),
            ("email", "invalid_format"),
            ("surprise", "unknown_field"),
            ("street", "required"),
        ]
        .into_iter()
        .map(|(f, c)| (f.to_owned(), c.to_owned()))
        .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn messages_never_echo_pii() {
        let name = "Zebediah Quackenbush";
        let long_name = format!("{name} {}", "Q".repeat(MAX_TEXT_LEN));
        let phone = "727-555-0134 ext 99";
        let email = "zebediah.quackenbush@@example.com";
        let street = "742 Evergreen Terrace";
        let lead = json!({
            "phone_number": phone,
            "customer_name": long_name,
            "state": "CA",
            "city": "Springfield",
            "zip": "Evergreen",
            "street": street,
            "customer_address": "743 Evergreen Terrace",
            "dm_name": long_name,
            "utility": "Utility Provider",
            "call_back_url": "https://zebediah.quackenbush@localhost/cb",
            "mailing_street": long_name,
            "mailing_city": "Springfield",
            "mailing_zip": "742 Evergreen",
            "mailing_state": "CA",
            "vendor_campaign_name": "X",
            "email": email,
            "certificate_url": format!("https://example.com/{street}"),
        });
        let errors = errors_of(&lead);
        assert!(errors.len() >= 8, "{errors:?}");
        for error in &errors {
            for secret in [
                name,
                "Zebediah",
                "Quackenbush",
                "quackenbush",
                phone,
                "555",
                "0134",
                email,
                street,
                "Evergreen",
                "742",
            ] {
                assert!(
                    !error.message.contains(secret),
                    "{} echoes {secret}: {}",
                    error.field,
                    error.message
                );
            }
        }
        // The phone's offending characters, not the phone.
        assert!(errors
            .iter()
            .any(|e| e.field == "phone_number" && e.message == "Invalid Characters: ext"));
    }

    #[test]
    fn normalises() {
        let mut lead = valid();
        set(&mut lead, "phone_number", json!(" (727) 555-0134 "));
        set(&mut lead, "state", json!("ca"));
        set(&mut lead, "mailing_state", json!(" ny "));
        set(&mut lead, "zip", json!("900011234"));
        set(&mut lead, "mailing_zip", json!("94101 1234"));
        set(&mut lead, "customer_name", json!("  John Doe  "));
        set(&mut lead, "street", Value::Null);
        set(&mut lead, "customer_address", json!(" 123 Main St "));
        set(&mut lead, "email", json!(" John.Doe@Example.com "));
        let parsed = parse(&lead).expect("valid");
        assert_eq!(parsed.lead.value()["phone_number"], json!("+17275550134"));
        assert_eq!(parsed.lead.value()["state"], json!("CA"));
        assert_eq!(parsed.lead.value()["mailing_state"], json!("NY"));
        assert_eq!(parsed.lead.value()["zip"], json!("90001-1234"));
        assert_eq!(parsed.lead.value()["mailing_zip"], json!("94101-1234"));
        assert_eq!(parsed.lead.value()["customer_name"], json!("John Doe"));
        assert_eq!(parsed.lead.value()["street"], json!("123 Main St"));
        assert!(parsed.lead.value().get("customer_address").is_none());
        assert_eq!(parsed.lead.value()["email"], json!("John.Doe@Example.com"));
        assert_eq!(parsed.lead.value()["extra_data"], example()["extra_data"]);
        assert_eq!(
            parsed.lead.value()["certificate_url"],
            json!("https://example.com/certificate.pdf")
        );
        assert!(parsed.unique.is_empty());
        assert_eq!(parsed.ssn, None);
    }

    #[test]
    fn loopback_call_back_urls_only_where_the_hub_allows_them() {
        let allow = UrlPolicy {
            allow_loopback: true,
        };
        let mut lead = example();
        lead["call_back_url"] = json!("http://127.0.0.1:8123/result");
        assert!(parse(&lead).is_err(), "refused by default");
        assert!(parse_with(&lead, allow).is_ok(), "taken where allowed");
        // Private and metadata addresses stay refused even then.
        for refused in ["http://10.0.0.5/cb", "http://169.254.169.254/latest"] {
            lead["call_back_url"] = json!(refused);
            assert!(parse_with(&lead, allow).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_example_is_valid() {
        let parsed = parse(&example()).expect("the example is valid");
        assert_eq!(parsed.lead.value()["street"], json!("123 Main St"));
        assert_eq!(parsed.lead.value()["phone_number"], json!("+17275550134"));
    }

    #[test]
    fn non_object_bodies_are_root_errors() {
        for body in [json!([]), json!("lead"), json!(1), Value::Null] {
            let errors = parse(&body).expect_err("not an object").into_vec();
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, ROOT);
            assert_eq!(errors[0].code, "invalid_type");
        }
    }
}
