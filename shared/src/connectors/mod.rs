//! Buyer connectors: one module per buyer API, each two pure functions — `build` the request for a lead,
//! `classify` the buyer's answer into an [`Outcome`]. Dispatch does the I/O.
//!
//! | kind | module | seed |
//! | --- | --- | --- |
//! | `webhook` | [`webhook`] | Standard Webhooks |
//! | `sonar` | [`sonar`] | 000, Sonar generic Leads API |
//! | `ntherm` | [`ntherm`] | 002, nTherm `postLead` |
//! | `heloc-lender` | [`heloc_lender`] | 001, the HELOC schema as a lender's API |
//! | `lofty` | [`lofty`] | 004, Lofty CRM: duplicate lookup, then a note or a new lead |
//! | — | [`leadsafe`] | 003, LeadSafe SSN screening: the screening stage's client, not a delivery connector |
//!
//! A delivery may take several requests (Lofty's lookup, then note or create): dispatch sends [`build`]'s
//! request, then asks [`next`] what an answer means — another request to send, or the outcome.
//!
//! Credentials are sent in headers marked sensitive (their `Debug` shows `Sensitive`). `classify` cannot
//! know them, so a buyer that echoes one in a message body could put it in a reason: dispatch should pass
//! every outcome through [`without_credentials`] before recording it.

pub mod heloc_lender;
pub mod leadsafe;
pub mod lofty;
pub mod ntherm;
pub mod sonar;
pub mod webhook;

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::HeaderMap;
use serde_json::Value;

use crate::config::{ConnectorKind, Destination};
use crate::delivery::{parse_retry_after, Outcome};
use crate::lead::LeadRecord;

/// An HTTP request to a buyer, ready to send, and the buyer's answer: the transport's own types.
pub use crate::transport::{Request as BuyerRequest, Response as BuyerResponse};

/// What a connector needs to build a request.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryContext<'a> {
    pub lead: &'a LeadRecord,
    pub destination: &'a Destination,
    /// Where this buyer posts its verdict on this lead (carries an unguessable token).
    pub callback_url: &'a str,
    /// The same on every attempt of this delivery, so the buyer can drop a repeat.
    pub idempotency_key: &'a str,
    pub now: DateTime<Utc>,
}

/// Why a request could not be built (a configuration problem: the delivery fails rather than retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

pub fn build(context: &DeliveryContext<'_>) -> Result<BuyerRequest, BuildError> {
    match context.destination.kind {
        ConnectorKind::Webhook => webhook::build(context),
        ConnectorKind::Sonar => sonar::build(context),
        ConnectorKind::Ntherm => ntherm::build(context),
        ConnectorKind::HelocLender => heloc_lender::build(context),
        ConnectorKind::Lofty => lofty::build(context),
    }
}

/// What comes after a buyer's answer: another request of the same delivery, or its outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Send(BuyerRequest),
    Done(Outcome),
}

/// Decide after the answer to `request` (one request per delivery for every buyer API but Lofty's).
pub fn next(
    context: &DeliveryContext<'_>,
    request: &BuyerRequest,
    response: &BuyerResponse,
    now: DateTime<Utc>,
) -> Next {
    match context.destination.kind {
        ConnectorKind::Lofty => lofty::next(context, request, response, now),
        kind => Next::Done(classify(kind, response, now)),
    }
}

pub fn classify(kind: ConnectorKind, response: &BuyerResponse, now: DateTime<Utc>) -> Outcome {
    match kind {
        ConnectorKind::Webhook => webhook::classify(response, now),
        ConnectorKind::Sonar => sonar::classify(response, now),
        ConnectorKind::Ntherm => ntherm::classify(response, now),
        ConnectorKind::HelocLender => heloc_lender::classify(response, now),
        ConnectorKind::Lofty => lofty::classify(response, now),
    }
}

/// The outcome with every credential of `destination` (and the Basic-auth form of a user name and password)
/// replaced by `***` in its reason: a buyer may echo what it was sent.
pub fn without_credentials(outcome: Outcome, destination: &Destination) -> Outcome {
    use base64::Engine;
    let mut secrets: Vec<String> = destination
        .credentials
        .values()
        .chain(destination.signing_secret.as_ref())
        .map(|s| s.expose().to_owned())
        .collect();
    if let (Some(user), Some(password)) = (
        destination.credential("username"),
        destination.credential("password"),
    ) {
        secrets.push(base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            user.expose(),
            password.expose()
        )));
    }
    // Longest first, so a secret containing another is replaced whole; values under 4 characters are left
    // alone (they protect nothing, and replacing them would garble every reason).
    secrets.retain(|s| s.len() >= 4);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let scrub = |reason: String| {
        secrets.iter().fold(reason, |mut reason, secret| {
            reason = reason.replace(secret.as_str(), "***");
            // A reason cut short (messages are truncated) may end in the first part of a secret.
            let cut = (4..secret.len())
                .rev()
                .filter_map(|n| secret.get(..n))
                .find(|head| reason.ends_with(head));
            if let Some(head) = cut {
                reason.truncate(reason.len() - head.len());
                reason.push_str("***");
            }
            reason
        })
    };
    match outcome {
        Outcome::Accepted { buyer_ref } => Outcome::Accepted { buyer_ref },
        Outcome::Rejected {
            code,
            reason,
            others_may_take,
        } => Outcome::Rejected {
            code,
            reason: scrub(reason),
            others_may_take,
        },
        Outcome::Retry {
            code,
            reason,
            after,
        } => Outcome::Retry {
            code,
            reason: scrub(reason),
            after,
        },
        Outcome::Failed { code, reason } => Outcome::Failed {
            code,
            reason: scrub(reason),
        },
    }
}

/// A short, printable excerpt of a buyer's body for a timeline reason (never logged).
pub fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let clean: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    clean.trim().to_owned()
}

// ---- helpers shared by the connectors ---------------------------------------------------------------

/// The longest buyer message kept in a reason (characters).
pub const MAX_MESSAGE_CHARS: usize = 200;

/// The longest buyer reference kept (characters).
pub const MAX_REF_CHARS: usize = 128;

pub(crate) fn header(value: &str) -> Result<HeaderValue, BuildError> {
    HeaderValue::from_str(value).map_err(|_| BuildError("a header value is not valid".into()))
}

/// A header carrying a credential: marked sensitive, so `Debug` (and HTTP/2 header compression) skip it.
/// The error never repeats the value.
pub(crate) fn secret_header(value: &str, what: &str) -> Result<HeaderValue, BuildError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        BuildError(format!(
            "the destination's {what} cannot be sent in a header (printable ASCII only)"
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `Content-Type` and `Accept: application/json`, `User-Agent`, and the delivery's `Idempotency-Key` (the
/// same on every attempt; buyers that do not know the header ignore it).
pub(crate) fn json_headers(context: &DeliveryContext<'_>) -> Result<HeaderMap, BuildError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static("leadhub/0.1"));
    headers.insert("idempotency-key", header(context.idempotency_key)?);
    Ok(headers)
}

/// The buyer's `Retry-After`, if it sent a readable one.
pub(crate) fn retry_after(response: &BuyerResponse, now: DateTime<Utc>) -> Option<Duration> {
    response
        .headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now))
}

/// The body as JSON, if it is JSON.
pub(crate) fn json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// The first of `keys` at the top of a JSON object that holds a non-empty string or a number, as text.
pub(crate) fn reference(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| {
        let text = match value.get(*key)? {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        (!text.is_empty() && text.chars().count() <= MAX_REF_CHARS).then_some(text)
    })
}

/// The word after `Authorization` or `Bearer`, and a token-like word after `Basic`, replaced by `***`: a
/// buyer may echo the `Authorization` it got. ("Basic validation failed" keeps its words: a token has a digit or one of
/// `=+/_-.`, or is long.)
pub(crate) fn redact(text: &str) -> String {
    fn token_like(word: &str) -> bool {
        word.len() >= 20
            || (word.len() >= 6
                && word
                    .chars()
                    .any(|c| c.is_ascii_digit() || "=+/_-.".contains(c)))
    }
    #[derive(Clone, Copy, PartialEq)]
    enum After {
        Authorization,
        Bearer,
        Basic,
    }
    let mut out: Vec<&str> = Vec::new();
    let mut after: Option<After> = None;
    for word in text.split(' ') {
        if word.is_empty() {
            out.push(word);
            continue;
        }
        let bare = word
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_ascii_lowercase();
        let scheme = match bare.as_str() {
            "bearer" => Some(After::Bearer),
            "basic" => Some(After::Basic),
            _ => None,
        };
        let hide = match after.take() {
            // `Authorization: Bearer x`: the scheme stays, the token after it goes.
            Some(After::Authorization) => scheme.is_none(),
            Some(After::Bearer) => true,
            Some(After::Basic) => token_like(word),
            None => false,
        };
        if hide {
            out.push("***");
            continue;
        }
        after = scheme.or((bare == "authorization").then_some(After::Authorization));
        out.push(word);
    }
    out.join(" ")
}

/// The human-readable messages in a JSON value: a string; an array of messages; an object's headline (the
/// first of `message`, `error`, `detail`, `title`, `reason`, `description`) followed by its `errors` list
/// (`"Invalid lead: a; b"`), prefixed with its `field` when it names one the text does not.
fn messages(value: &Value, out: &mut Vec<String>, depth: u8) {
    if depth > 4 || out.len() >= 10 {
        return;
    }
    match value {
        Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_owned()),
        Value::Array(items) => items.iter().for_each(|item| messages(item, out, depth + 1)),
        Value::Object(map) => {
            let mut headline = Vec::new();
            for key in [
                "message",
                "error",
                "detail",
                "title",
                "reason",
                "description",
            ] {
                if let Some(inner) = map.get(key) {
                    messages(inner, &mut headline, depth + 1);
                    // One headline is enough: `message` and `error` often say the same thing.
                    if !headline.is_empty() {
                        break;
                    }
                }
            }
            let mut details = Vec::new();
            if let Some(errors) = map.get("errors") {
                messages(errors, &mut details, depth + 1);
            }
            let mut text = match (headline.is_empty(), details.is_empty()) {
                (true, true) => return,
                (false, true) => headline.join("; "),
                (true, false) => details.join("; "),
                (false, false) => format!("{}: {}", headline.join("; "), details.join("; ")),
            };
            let field = map
                .get("field")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|f| !f.is_empty());
            if let Some(field) = field {
                if !text.contains(field) {
                    text = format!("{field}: {text}");
                }
            }
            out.push(text);
        }
        _ => {}
    }
}

/// What a JSON value says, joined with `; `, cleaned of control characters, `Authorization` values
/// redacted, at most [`MAX_MESSAGE_CHARS`] characters.
pub(crate) fn message_of(value: &Value) -> Option<String> {
    let mut found = Vec::new();
    match value {
        // A bare string body or list is itself the message; objects are searched by key.
        Value::Object(_) | Value::Array(_) | Value::String(_) => messages(value, &mut found, 0),
        _ => {}
    }
    found.dedup();
    let joined = redact(&excerpt(found.join("; ").as_bytes(), MAX_MESSAGE_CHARS));
    (!joined.is_empty()).then_some(joined)
}

/// A buyer's message from a body that may or may not be JSON: the JSON message if there is one, else a
/// short excerpt of a plain-text body, else `None` (HTML pages and binary are not worth quoting).
pub(crate) fn buyer_message(body: &[u8]) -> Option<String> {
    if let Some(value) = json(body) {
        return message_of(&value);
    }
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() || text.starts_with('<') {
        return None;
    }
    let clean = redact(&excerpt(text.as_bytes(), MAX_MESSAGE_CHARS));
    (!clean.is_empty()).then_some(clean)
}

/// Reading the normalised lead for a mapping: a missing field is a [`BuildError`] that names it (never its
/// value).
pub(crate) struct LeadFields {
    pub value: Value,
}

impl LeadFields {
    pub fn of(lead: &LeadRecord) -> Result<Self, BuildError> {
        let value = lead.lead.value();
        if value.is_object() {
            Ok(LeadFields { value })
        } else {
            Err(BuildError(format!(
                "the stored {} lead is not a JSON object",
                lead.vertical
            )))
        }
    }

    /// A required, non-blank string at `pointer` (e.g. `/borrower/email`).
    pub fn text(&self, pointer: &str) -> Result<&str, BuildError> {
        self.optional_text(pointer).ok_or_else(|| {
            BuildError(format!(
                "the stored lead has no `{pointer}`, which this buyer requires"
            ))
        })
    }

    /// A string at `pointer`, if present and not blank.
    pub fn optional_text(&self, pointer: &str) -> Option<&str> {
        self.value
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    /// Any non-null value at `pointer`.
    pub fn optional(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer).filter(|v| !v.is_null())
    }
}

/// Test leads from the verticals' own examples, destinations and answers, for the connectors' tables.
#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use http::header::HeaderValue;
    use http::HeaderMap;
    use serde_json::Value;

    use super::BuyerResponse;
    use crate::config::{ConnectorKind, Destination, Secret};
    use crate::lead::{LeadId, LeadRecord};
    use crate::verticals::Vertical;

    pub const CALLBACK_URL: &str = "https://hub.example/v1/callbacks/buyer/lead_tok.mac";
    pub const IDEMPOTENCY_KEY: &str = "msg_lead_01JD0000000000000000000000_buyer";

    /// 2015-10-21T07:28:00Z: Retry-After dates in the tables are relative to it.
    pub fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .expect("valid time")
            .with_timezone(&Utc)
    }

    /// A lead received from `body`, through its vertical's parser, as ingest stores it.
    pub fn lead_from(vertical: Vertical, body: &Value) -> LeadRecord {
        let bytes = serde_json::to_vec(body).expect("encodes");
        let parsed = vertical.parse(&bytes).expect("the example is valid");
        let mut record = LeadRecord::received(
            LeadId::generate(now()),
            "acme",
            vertical,
            parsed.lead,
            now(),
            None,
        );
        record.original = Some(parsed.original);
        record
    }

    /// The vertical's own example lead, received.
    pub fn example_lead(vertical: Vertical) -> LeadRecord {
        lead_from(vertical, &vertical.example())
    }

    pub fn destination(
        kind: ConnectorKind,
        url: &str,
        verticals: &[Vertical],
        credentials: &[(&str, &str)],
    ) -> Destination {
        Destination {
            id: "buyer".into(),
            kind,
            url: reqwest::Url::parse(url).expect("url"),
            verticals: verticals.iter().copied().collect::<BTreeSet<_>>(),
            signing_secret: None,
            credentials: credentials
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Secret::new(*v)))
                .collect::<BTreeMap<_, _>>(),
            lofty: None,
            timeout: Duration::from_secs(5),
            max_attempts: 3,
            enabled: true,
            routing: Default::default(),
        }
    }

    pub fn response(status: u16, headers: &[(&'static str, &str)], body: &str) -> BuyerResponse {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        BuyerResponse {
            status,
            headers: map,
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    /// Every leaf of a JSON body as a JSON pointer (arrays are leaves: open bags are forwarded whole).
    pub fn leaves(value: &Value) -> BTreeSet<String> {
        fn walk(value: &Value, path: String, out: &mut BTreeSet<String>) {
            match value {
                Value::Object(map) if !map.is_empty() => {
                    for (key, inner) in map {
                        walk(inner, format!("{path}/{key}"), out);
                    }
                }
                _ => {
                    out.insert(path);
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(value, String::new(), &mut out);
        out
    }

    /// Each row's pointer holds its value (numbers compared as numbers), and the body has no other field.
    pub fn assert_fields(body: &Value, rows: &[(&str, Value)]) {
        for (pointer, expected) in rows {
            let got = body.pointer(pointer);
            let same = match (got, expected) {
                (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
                (Some(got), expected) => got == expected,
                (None, _) => false,
            };
            assert!(same, "{pointer}: got {got:?}, expected {expected}");
        }
        let expected: BTreeSet<String> = rows.iter().map(|(p, _)| (*p).to_owned()).collect();
        assert_eq!(
            leaves(body),
            expected,
            "the body's fields are exactly the rows'"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn messages_are_found_in_common_shapes_and_redacted() {
        let rows: Vec<(&str, Option<&str>)> = vec![
            (
                r#"{"message":"state not served"}"#,
                Some("state not served"),
            ),
            (r#"{"error":{"message":"bad zip"}}"#, Some("bad zip")),
            (r#"{"errors":["a","b"]}"#, Some("a; b")),
            (
                r#"{"errors":[{"field":"x","message":"a"},{"detail":"b"}]}"#,
                Some("x: a; b"),
            ),
            (
                r#"{"message":"Invalid lead","errors":[{"field":"zip","code":"required","message":"is required"}]}"#,
                Some("Invalid lead: zip: is required"),
            ),
            (
                r#"{"error":{"field":"zip","message":"bad value"}}"#,
                Some("zip: bad value"),
            ),
            (
                r#"{"error":{"field":"email","message":"bad email"}}"#,
                Some("bad email"),
            ),
            (r#"{"message":"x","error":"y"}"#, Some("x")),
            (r#""plain json string""#, Some("plain json string")),
            (r#"{"ok":false}"#, None),
            ("42", None),
            ("", None),
            ("<html><body>502</body></html>", None),
            ("upstream timed out", Some("upstream timed out")),
            (
                r#"{"message":"invalid Authorization: Bearer sk_live_123 given"}"#,
                Some("invalid Authorization: Bearer *** given"),
            ),
            (
                "bad header basic dXNlcjpwdw==",
                Some("bad header basic ***"),
            ),
            ("Basic validation failed", Some("Basic validation failed")),
            (
                r#"{"error":"bad Authorization: s3cr3t-v4lue"}"#,
                Some("bad Authorization: ***"),
            ),
            (
                "Authorization Basic dXNlcjpwdw== refused",
                Some("Authorization Basic *** refused"),
            ),
        ];
        for (body, expected) in rows {
            assert_eq!(
                buyer_message(body.as_bytes()).as_deref(),
                expected,
                "{body}"
            );
        }
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(500));
        assert_eq!(
            buyer_message(long.as_bytes()).map(|m| m.chars().count()),
            Some(MAX_MESSAGE_CHARS)
        );
    }

    #[test]
    fn references_are_strings_or_numbers_of_sane_length() {
        let value = serde_json::json!({"id": "", "leadId": 42, "loanId": "L-1"});
        assert_eq!(reference(&value, &["id", "leadId"]), Some("42".into()));
        assert_eq!(reference(&value, &["id", "loanId"]), Some("L-1".into()));
        let long = serde_json::json!({"id": "x".repeat(MAX_REF_CHARS + 1)});
        assert_eq!(reference(&long, &["id"]), None);
        assert_eq!(reference(&Value::Null, &["id"]), None);
    }

    #[test]
    fn outcomes_are_scrubbed_of_the_destinations_credentials() {
        let destination = Destination {
            id: "n".into(),
            kind: ConnectorKind::Ntherm,
            url: reqwest::Url::parse("https://api.ntherm.example/v1/postLead").expect("url"),
            verticals: [crate::verticals::Vertical::Solar].into(),
            signing_secret: None,
            credentials: [
                ("username".to_owned(), Secret::new("hub-user")),
                ("password".to_owned(), Secret::new("pa55word!")),
            ]
            .into(),
            lofty: None,
            timeout: Duration::from_secs(5),
            max_attempts: 3,
            enabled: true,
            routing: Default::default(),
        };
        let basic = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode("hub-user:pa55word!")
        };
        let outcome = Outcome::rejected(
            "http_400",
            format!("user hub-user with pa55word! or {basic} refused"),
            true,
        );
        assert_eq!(
            without_credentials(outcome, &destination),
            Outcome::rejected("http_400", "user *** with *** or *** refused", true)
        );
        let cut = Outcome::failed("http_401", "refused: pa55w");
        assert_eq!(
            without_credentials(cut, &destination),
            Outcome::failed("http_401", "refused: ***")
        );
        let accepted = Outcome::Accepted {
            buyer_ref: Some("R1".into()),
        };
        assert_eq!(
            without_credentials(accepted.clone(), &destination),
            accepted
        );
    }
}
