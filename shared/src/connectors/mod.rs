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
//! Each connector also owns its part of a destination's configuration: `kind` names it ([`ConnectorKind`]),
//! and its module's `check` decides what it takes — which `[destinations.credentials]` it needs or may take,
//! whether it signs with `signing_secret` (only `webhook`), which verticals it carries, its own settings
//! table (`[destinations.lofty]`) — from the [`ConnectorSection`] the configuration loader hands over, and
//! gives back its typed settings ([`Connector`], kept as [`Destination::connector`]). The common rules are
//! in `Takes`; [`Rules`] picks the connector; [`crate::settings`] passes them to [`crate::config`], which
//! names no connector.
//!
//! A destination's answer rules (`[destinations.response]`: `accepted_when`, `rejected_when`, `reason_path`,
//! `reference_path`, `price_path`; see [`crate::answer_rules`]) are taken by every connector: where given,
//! they override its reading of a 2xx answer in [`next`]. Each connector's own reading (its "defaults") is
//! described at the top of its module.
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

use crate::config::{ConfigError, ConnectorRules, ConnectorSection};
use crate::delivery::{parse_retry_after, Outcome};
use crate::lead::LeadRecord;
use crate::vertical::Vertical;

/// An HTTP request to a buyer, ready to send, and the buyer's answer: the transport's own types.
pub use crate::transport::{Request as BuyerRequest, Response as BuyerResponse};

// ---- each buyer API's part of a destination's configuration -----------------------------------------

/// A buyer endpoint with its buyer API's settings checked by its connector: what dispatch delivers to.
pub type Destination = crate::config::Destination<Connector>;

/// The buyer API a destination speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorKind {
    /// Generic JSON POST signed per Standard Webhooks.
    Webhook,
    /// Sonar's generic Leads API (seed 000): `Authorization: <client secret>`.
    Sonar,
    /// nTherm `postLead` (seed 002): `Authorization: Basic base64(username:password)`.
    Ntherm,
    /// A lender taking HELOC leads in seed 001's schema: optional `Authorization: Bearer <api key>`.
    HelocLender,
    /// Lofty CRM (seed 004): OAuth bearer `access_token`, optional `vendor_key`; any vertical with a contact.
    Lofty,
}

impl ConnectorKind {
    pub const ALL: [ConnectorKind; 5] = [
        ConnectorKind::Webhook,
        ConnectorKind::Sonar,
        ConnectorKind::Ntherm,
        ConnectorKind::HelocLender,
        ConnectorKind::Lofty,
    ];

    /// The name used in configuration (`kind = "..."`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Webhook => "webhook",
            ConnectorKind::Sonar => "sonar",
            ConnectorKind::Ntherm => "ntherm",
            ConnectorKind::HelocLender => "heloc-lender",
            ConnectorKind::Lofty => "lofty",
        }
    }
}

impl std::str::FromStr for ConnectorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnectorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = ConnectorKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown connector kind `{s}` (known: {})", known.join(", "))
            })
    }
}

impl std::fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A destination's buyer API with the settings its connector checked at load ([`Rules`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connector {
    Webhook,
    Sonar,
    Ntherm,
    HelocLender,
    /// With its `[destinations.lofty]` settings (defaults when not given).
    Lofty(lofty::LoftyOptions),
}

impl Connector {
    pub fn kind(&self) -> ConnectorKind {
        match self {
            Connector::Webhook => ConnectorKind::Webhook,
            Connector::Sonar => ConnectorKind::Sonar,
            Connector::Ntherm => ConnectorKind::Ntherm,
            Connector::HelocLender => ConnectorKind::HelocLender,
            Connector::Lofty(_) => ConnectorKind::Lofty,
        }
    }
}

/// The hub's rules for each destination's buyer-API part: `kind` names the connector, whose own `check`
/// decides the rest (`webhook::check`, `sonar::check`, ...). [`crate::settings`] hands them to the loader.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules;

impl ConnectorRules for Rules {
    type Connector = Connector;

    fn check(&self, section: &ConnectorSection<'_>) -> Result<Connector, ConfigError> {
        let kind: ConnectorKind = section
            .kind
            .parse()
            .map_err(|problem: String| ConfigError::new(section.key("kind"), problem))?;
        Ok(match kind {
            ConnectorKind::Webhook => webhook::check(section).map(|()| Connector::Webhook)?,
            ConnectorKind::Sonar => sonar::check(section).map(|()| Connector::Sonar)?,
            ConnectorKind::Ntherm => ntherm::check(section).map(|()| Connector::Ntherm)?,
            ConnectorKind::HelocLender => {
                heloc_lender::check(section).map(|()| Connector::HelocLender)?
            }
            ConnectorKind::Lofty => lofty::check(section).map(Connector::Lofty)?,
        })
    }
}

/// What a buyer API takes in its destination's section. Each connector module declares its own and starts
/// its `check` with [`Takes::check`], so the rules every connector shares are held the same way.
pub(crate) struct Takes {
    pub kind: ConnectorKind,
    /// Whether it signs its requests with `signing_secret` (the others authenticate with credentials).
    pub signs: bool,
    /// The `[destinations.credentials]` names it needs.
    pub credentials: &'static [&'static str],
    /// The `[destinations.credentials]` names it may take.
    pub optional_credentials: &'static [&'static str],
    /// The verticals it can carry; `None`: any.
    pub verticals: Option<&'static [Vertical]>,
}

impl Takes {
    /// Check a section against what the buyer API takes: `signing_secret` only if it signs; every credential
    /// it needs, none it does not know (a typo must not silently drop a credential), each usable in an HTTP
    /// header; only verticals it carries; no settings table but its own (named after its kind), which is
    /// handed back unread. Problems name their key; secret values are never repeated.
    pub(crate) fn check<'s>(
        &self,
        section: &ConnectorSection<'s>,
    ) -> Result<Option<&'s toml::Value>, ConfigError> {
        let kind = self.kind;
        if !self.signs && section.signing_secret.is_some() {
            return Err(ConfigError::new(
                section.key("signing_secret"),
                format!(
                    "only webhook destinations sign their requests; a {kind} destination takes \
                     [destinations.credentials] instead"
                ),
            ));
        }
        let credential_key = |name: &str| section.key(&format!("credentials.{name}"));
        let takes = |name: &str| {
            self.credentials.contains(&name) || self.optional_credentials.contains(&name)
        };
        if let Some(name) = section.credentials.keys().find(|name| !takes(name)) {
            let known: Vec<&str> = self
                .credentials
                .iter()
                .chain(self.optional_credentials)
                .copied()
                .collect();
            let problem = if known.is_empty() {
                format!("a {kind} destination takes no credentials")
            } else {
                format!(
                    "a {kind} destination takes no credential `{name}` (it takes: {})",
                    known.join(", ")
                )
            };
            return Err(ConfigError::new(credential_key(name), problem));
        }
        if let Some(missing) = self
            .credentials
            .iter()
            .find(|name| !section.credentials.contains_key(**name))
        {
            return Err(ConfigError::new(
                credential_key(missing),
                format!("a {kind} destination needs this credential (`env:NAME`)"),
            ));
        }
        for (name, secret) in section.credentials {
            let value = secret.expose();
            let header_safe =
                value.trim() == value && HeaderValue::from_str(value).is_ok() && !value.is_empty();
            if !header_safe {
                return Err(ConfigError::new(
                    credential_key(name),
                    "the secret must be printable ASCII without leading or trailing spaces (it is sent in a header)",
                ));
            }
        }
        if let Some(fit) = self.verticals {
            if let Some(misfit) = section.verticals.iter().find(|v| !fit.contains(v)) {
                let takes: Vec<&str> = fit.iter().map(|v| v.as_str()).collect();
                return Err(ConfigError::new(
                    section.key("verticals"),
                    format!(
                        "a {kind} destination takes only {} leads, not {misfit}",
                        takes.join(" or ")
                    ),
                ));
            }
        }
        if let Some(name) = section.options.keys().find(|name| **name != kind.as_str()) {
            return Err(ConfigError::new(
                section.key(name),
                format!("only a {name} destination takes these settings"),
            ));
        }
        Ok(section.options.get(kind.as_str()))
    }
}

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
    match context.destination.connector.kind() {
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

/// Decide after the answer to `request` (one request per delivery for every buyer API but Lofty's): the
/// connector reads the answer, then the destination's answer rules ([`crate::answer_rules`]), where given,
/// override that reading. For Lofty they read the answer that ends the delivery (the note's or the new
/// lead's), never the duplicate lookup's (its only `GET`), whose answer is about the contact, not the lead.
pub fn next(
    context: &DeliveryContext<'_>,
    request: &BuyerRequest,
    response: &BuyerResponse,
    now: DateTime<Utc>,
) -> Next {
    let rules = &context.destination.response;
    match context.destination.connector.kind() {
        ConnectorKind::Lofty => match lofty::next(context, request, response, now) {
            Next::Done(outcome) if request.method != http::Method::GET => {
                Next::Done(rules.apply(response, outcome))
            }
            other => other,
        },
        kind => Next::Done(rules.apply(response, classify(kind, response, now))),
    }
}

/// How many calls a delivery of `lead` to `destination` plans, for a buyer API whose calls dispatch paces
/// on the rate limit its answers announce ([`crate::pacing`]); `None`: not paced (every buyer API but
/// Lofty's, whose 429s are still waited out).
pub fn paced_calls(lead: &LeadRecord, destination: &Destination) -> Option<u32> {
    match destination.connector.kind() {
        ConnectorKind::Lofty => Some(lofty::planned_requests(lead, destination)),
        _ => None,
    }
}

/// The rate-limit window a paced buyer API's answer announces.
pub fn rate_limit(
    kind: ConnectorKind,
    response: &BuyerResponse,
    now: DateTime<Utc>,
) -> Option<crate::pacing::RateLimit> {
    match kind {
        ConnectorKind::Lofty => lofty::rate_limit(&response.headers, now),
        _ => None,
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
        accepted @ Outcome::Accepted { .. } => accepted,
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

    use super::{BuyerResponse, Connector, ConnectorKind, Destination};
    use crate::config::Secret;
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
            id: crate::ids::DestinationId::parse("buyer").expect("id"),
            connector: connector(kind),
            url: reqwest::Url::parse(url).expect("url"),
            verticals: verticals.iter().copied().collect::<BTreeSet<_>>(),
            signing_secret: None,
            credentials: credentials
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Secret::new(*v)))
                .collect::<BTreeMap<_, _>>(),
            timeout: Duration::from_secs(5),
            max_attempts: 3,
            enabled: true,
            routing: Default::default(),
            returns: Default::default(),
            response: Default::default(),
        }
    }

    /// The connector of `kind` with its default settings.
    pub fn connector(kind: ConnectorKind) -> Connector {
        match kind {
            ConnectorKind::Webhook => Connector::Webhook,
            ConnectorKind::Sonar => Connector::Sonar,
            ConnectorKind::Ntherm => Connector::Ntherm,
            ConnectorKind::HelocLender => Connector::HelocLender,
            ConnectorKind::Lofty => Connector::Lofty(Default::default()),
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

    /// `[destinations.response]` applies to any connector; for Lofty, to the answer that ends the delivery,
    /// not to the duplicate lookup's.
    #[test]
    fn answer_rules_apply_to_any_connector_and_to_loftys_last_answer_only() {
        use test_support::{
            destination, example_lead, now, response, CALLBACK_URL, IDEMPOTENCY_KEY,
        };
        let rules = crate::answer_rules::AnswerRules::load(
            "destinations[0].response",
            &toml::from_str(
                "accepted_when = { path = \"$.leadId\" }\nreference_path = \"$.leadId\"",
            )
            .expect("toml"),
        )
        .expect("rules");
        let lead = example_lead(Vertical::RealEstate);
        let decide = |destination: &Destination, request: &BuyerRequest, answer: &BuyerResponse| {
            let context = DeliveryContext {
                lead: &lead,
                destination,
                callback_url: CALLBACK_URL,
                idempotency_key: IDEMPOTENCY_KEY,
                now: now(),
            };
            next(&context, request, answer, now())
        };
        let mut crm = destination(
            ConnectorKind::Lofty,
            "https://api.lofty.example",
            &[Vertical::RealEstate],
            &[("access_token", "lofty-token-value")],
        );
        crm.response = rules.clone();
        let context = DeliveryContext {
            lead: &lead,
            destination: &crm,
            callback_url: CALLBACK_URL,
            idempotency_key: IDEMPOTENCY_KEY,
            now: now(),
        };
        let lookup = build(&context).expect("builds");
        assert_eq!(lookup.method, http::Method::GET);
        // The lookup's answer matches no rule, and still leads on to the create.
        let create = match decide(
            &crm,
            &lookup,
            &response(200, &[], r#"{"leads":[],"_metadata":{"total":0}}"#),
        ) {
            Next::Send(create) => create,
            Next::Done(outcome) => panic!("the lookup ends nothing: {outcome:?}"),
        };
        assert_eq!(create.method, http::Method::POST);
        assert_eq!(
            decide(&crm, &create, &response(200, &[], r#"{"leadId":77}"#)),
            Next::Done(Outcome::accepted(Some("77".into())))
        );
        let Next::Done(unread) = decide(&crm, &create, &response(200, &[], r#"{"id":77}"#)) else {
            panic!("done");
        };
        assert!(crate::answer_rules::is_unrecognised(&unread), "{unread:?}");

        // The same rules on a HELOC lender and a webhook.
        for kind in [
            ConnectorKind::HelocLender,
            ConnectorKind::Webhook,
            ConnectorKind::Ntherm,
        ] {
            let mut buyer =
                destination(kind, "https://buyer.example/leads", &[Vertical::Heloc], &[]);
            buyer.response = rules.clone();
            let request = BuyerRequest {
                method: http::Method::POST,
                url: buyer.url.clone(),
                headers: HeaderMap::new(),
                body: Vec::new(),
            };
            let Next::Done(unread) =
                decide(&buyer, &request, &response(200, &[], r#"{"id":"L-1"}"#))
            else {
                panic!("done");
            };
            assert!(
                crate::answer_rules::is_unrecognised(&unread),
                "{kind}: {unread:?}"
            );
            assert_eq!(
                decide(&buyer, &request, &response(201, &[], r#"{"leadId":"L-2"}"#)),
                Next::Done(Outcome::accepted(Some("L-2".into()))),
                "{kind}"
            );
        }
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
            id: crate::ids::DestinationId::parse("n").expect("id"),
            connector: Connector::Ntherm,
            url: reqwest::Url::parse("https://api.ntherm.example/v1/postLead").expect("url"),
            verticals: [crate::verticals::Vertical::Solar].into(),
            signing_secret: None,
            credentials: [
                ("username".to_owned(), Secret::new("hub-user")),
                ("password".to_owned(), Secret::new("pa55word!")),
            ]
            .into(),
            timeout: Duration::from_secs(5),
            max_attempts: 3,
            enabled: true,
            routing: Default::default(),
            returns: Default::default(),
            response: Default::default(),
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
            price: None,
            buyer_ref: Some("R1".into()),
        };
        assert_eq!(
            without_credentials(accepted.clone(), &destination),
            accepted
        );
    }
}

/// Each buyer API's configuration rules, through the loader as the hub runs it (`Config::from_toml`), and
/// each connector's `check` on its own.
#[cfg(test)]
mod config_rules {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::config::tests::{secrets, VALID};
    use crate::config::{Config, Secret};

    fn from_toml(
        document: &str,
        secrets: &BTreeMap<String, String>,
    ) -> Result<Config<Connector>, ConfigError> {
        Config::load(document, secrets, &Rules)
    }

    #[test]
    fn the_kind_names_a_connector_and_a_webhook_signs() {
        let cases: Vec<(String, &str)> = vec![
            (
                VALID.replace("kind = \"webhook\"", "kind = \"fax\""),
                "destinations[0].kind",
            ),
            (
                VALID.replace("signing_secret = \"env:HOOK_SECRET\"\n", ""),
                "destinations[0].signing_secret",
            ),
            (
                VALID.replace("env:HOOK_SECRET", "env:BAD_HOOK"),
                "destinations[0].signing_secret",
            ),
        ];
        let mut secrets = secrets();
        secrets.insert("BAD_HOOK".into(), "not base64!".into());
        for (document, key) in cases {
            let error = from_toml(&document, &secrets).expect_err(key);
            assert_eq!(error.key, key, "{error}");
        }
        let config = from_toml(VALID, &secrets).expect("valid");
        assert_eq!(config.destinations[0].connector, Connector::Webhook);
    }

    fn buyer_secrets() -> BTreeMap<String, String> {
        let mut all = secrets();
        for (name, value) in [
            ("SONAR_SECRET", "sonar-client-secret-value"),
            ("NTHERM_USER", "hub-user"),
            ("NTHERM_PASSWORD", "ntherm-password-value"),
            ("LENDER_KEY", "lender-api-key-value"),
        ] {
            all.insert(name.to_owned(), value.to_owned());
        }
        all
    }

    /// [`VALID`] plus one destination of each buyer API.
    fn with_buyers() -> String {
        format!(
            r#"{VALID}
[[destinations]]
id = "sonar"
kind = "sonar"
url = "https://api.sonar.example/leads"
verticals = ["mortgage", "heloc"]

[destinations.credentials]
client_secret = "env:SONAR_SECRET"

[[destinations]]
id = "ntherm"
kind = "ntherm"
url = "https://api.ntherm.example/v1/postLead"
verticals = ["solar"]

[destinations.credentials]
username = "env:NTHERM_USER"
password = "env:NTHERM_PASSWORD"

[[destinations]]
id = "lender-api"
kind = "heloc-lender"
url = "https://lender.example/api/leads"
verticals = ["heloc"]

[destinations.credentials]
api_key = "env:LENDER_KEY"

[[destinations]]
id = "lender-open"
kind = "heloc-lender"
url = "https://lender2.example/api/leads"
verticals = ["heloc"]
"#
        )
    }

    #[test]
    fn buyer_apis_load_with_their_credentials() {
        let config = from_toml(&with_buyers(), &buyer_secrets()).expect("valid");
        let kinds: Vec<ConnectorKind> = config
            .destinations
            .iter()
            .map(|d| d.connector.kind())
            .collect();
        assert_eq!(
            kinds,
            [
                ConnectorKind::Webhook,
                ConnectorKind::Sonar,
                ConnectorKind::Ntherm,
                ConnectorKind::HelocLender,
                ConnectorKind::HelocLender
            ]
        );
        let credential = |id: &str, name: &str| {
            config
                .destination(id)
                .and_then(|d| d.credential(name))
                .map(|s| s.expose().to_owned())
        };
        assert_eq!(
            credential("sonar", "client_secret").as_deref(),
            Some("sonar-client-secret-value")
        );
        assert_eq!(
            credential("ntherm", "username").as_deref(),
            Some("hub-user")
        );
        assert_eq!(
            credential("ntherm", "password").as_deref(),
            Some("ntherm-password-value")
        );
        assert_eq!(
            credential("lender-api", "api_key").as_deref(),
            Some("lender-api-key-value")
        );
        assert!(config
            .destination("lender-open")
            .is_some_and(|d| d.credentials.is_empty()));
        assert!(config
            .destination("lender")
            .is_some_and(|d| d.credentials.is_empty()));
        let debug = format!("{config:?}");
        for value in buyer_secrets().values() {
            assert!(
                !debug.contains(value.as_str()),
                "secrets must not show in Debug"
            );
        }
        for kind in ConnectorKind::ALL {
            assert_eq!(kind.as_str().parse::<ConnectorKind>(), Ok(kind));
        }
    }

    #[test]
    fn buyer_api_rules_name_their_key() {
        let doc = with_buyers();
        let cases: Vec<(String, &str)> = vec![
            // sonar needs its client secret.
            (doc.replace("client_secret = \"env:SONAR_SECRET\"\n", ""), "destinations[1].credentials.client_secret"),
            (doc.replace("client_secret = \"env:SONAR_SECRET\"", "client_secret = \"plain-text\""), "destinations[1].credentials.client_secret"),
            (doc.replace("env:SONAR_SECRET", "env:NOT_SET"), "destinations[1].credentials.client_secret"),
            (doc.replace("client_secret = ", "client_secrte = "), "destinations[1].credentials.client_secrte"),
            // ntherm needs a user name and a password.
            (doc.replace("username = \"env:NTHERM_USER\"\n", ""), "destinations[2].credentials.username"),
            (doc.replace("password = \"env:NTHERM_PASSWORD\"\n", ""), "destinations[2].credentials.password"),
            (doc.replace("password = \"env:NTHERM_PASSWORD\"\n", "password = \"env:NTHERM_PASSWORD\"\napi_key = \"env:LENDER_KEY\"\n"), "destinations[2].credentials.api_key"),
            // heloc-lender takes only an optional api_key.
            (doc.replace("api_key = \"env:LENDER_KEY\"", "token = \"env:LENDER_KEY\""), "destinations[3].credentials.token"),
            (doc.replace("api_key = \"env:LENDER_KEY\"", "api_key = \"env:\""), "destinations[3].credentials.api_key"),
            // webhook keeps signing_secret and takes no credentials; the others do not sign.
            (doc.replace("verticals = [\"heloc\"]\n\n[[destinations]]\nid = \"sonar\"", "verticals = [\"heloc\"]\n[destinations.credentials]\napi_key = \"env:LENDER_KEY\"\n\n[[destinations]]\nid = \"sonar\""), "destinations[0].credentials.api_key"),
            (doc.replace("kind = \"sonar\"\n", "kind = \"sonar\"\nsigning_secret = \"env:HOOK_SECRET\"\n"), "destinations[1].signing_secret"),
            // Each connector carries only its verticals.
            (doc.replace("verticals = [\"mortgage\", \"heloc\"]", "verticals = [\"mortgage\", \"solar\"]"), "destinations[1].verticals"),
            (doc.replace("verticals = [\"mortgage\", \"heloc\"]", "verticals = [\"real-estate\"]"), "destinations[1].verticals"),
            (doc.replace("verticals = [\"solar\"]", "verticals = [\"solar\", \"heloc\"]"), "destinations[2].verticals"),
            (doc.replace("kind = \"heloc-lender\"\nurl = \"https://lender.example/api/leads\"\nverticals = [\"heloc\"]", "kind = \"heloc-lender\"\nurl = \"https://lender.example/api/leads\"\nverticals = [\"mortgage\"]"), "destinations[3].verticals"),
            (doc.replace("kind = \"heloc-lender\"", "kind = \"heloc_lender\""), "destinations[3].kind"),
        ];
        for (document, key) in cases {
            assert_ne!(document, doc, "the case for {key} changes the document");
            let error = from_toml(&document, &buyer_secrets()).expect_err(key);
            assert_eq!(error.key, key, "{error}");
            for value in buyer_secrets().values() {
                assert!(!error.to_string().contains(value.as_str()), "{error}");
            }
        }
    }

    #[test]
    fn buyer_credentials_must_fit_their_header() {
        let cases = [
            (
                "NTHERM_USER",
                "hub:user",
                "destinations[2].credentials.username",
            ),
            (
                "SONAR_SECRET",
                " padded",
                "destinations[1].credentials.client_secret",
            ),
            (
                "LENDER_KEY",
                "line\nbreak",
                "destinations[3].credentials.api_key",
            ),
        ];
        for (name, value, key) in cases {
            let mut secrets = buyer_secrets();
            secrets.insert(name.to_owned(), value.to_owned());
            let error = from_toml(&with_buyers(), &secrets).expect_err(key);
            assert_eq!(error.key, key, "{error}");
            assert!(!error.to_string().contains(value), "{error}");
        }
    }

    /// [`with_buyers`] plus a lofty destination, its settings given.
    fn with_lofty() -> String {
        format!(
            r#"{}
[[destinations]]
id = "crm"
kind = "lofty"
url = "https://api.lofty.example"
verticals = ["real-estate", "heloc"]

[destinations.credentials]
access_token = "env:LENDER_KEY"

[destinations.lofty]
source = "partner-feed"
lead_type = 2
"#,
            with_buyers()
        )
    }

    #[test]
    fn a_lofty_destination_owns_its_settings_table() {
        let doc = with_lofty();
        let config = from_toml(&doc, &buyer_secrets()).expect("valid");
        let Some(Connector::Lofty(options)) = config.destination("crm").map(|d| &d.connector)
        else {
            panic!("a lofty destination");
        };
        assert_eq!(
            (options.source.as_str(), options.lead_type),
            ("partner-feed", Some(2))
        );
        assert!(options.duplicate_lookup, "defaults for keys not given");
        let without = doc.replace(
            "[destinations.lofty]\nsource = \"partner-feed\"\nlead_type = 2\n",
            "",
        );
        let config = from_toml(&without, &buyer_secrets()).expect("valid");
        assert_eq!(
            config.destination("crm").map(|d| &d.connector),
            Some(&Connector::Lofty(lofty::LoftyOptions::default()))
        );
        let cases: Vec<(String, &str, &str)> = vec![
            (doc.replace("access_token = ", "acces_token = "), "destinations[5].credentials.acces_token", "takes no credential"),
            (doc.replace("access_token = \"env:LENDER_KEY\"\n", ""), "destinations[5].credentials.access_token", "needs this credential"),
            (doc.replace("lead_type = 2", "lead_type = 4"), "destinations[5].lofty", "lead_type"),
            (doc.replace("lead_type = 2", "lead_typ = 2"), "destinations[5].lofty", "unknown field `lead_typ`"),
            (doc.replace("client_secret = \"env:SONAR_SECRET\"\n", "client_secret = \"env:SONAR_SECRET\"\n\n[destinations.lofty]\nsource = \"x\"\n"), "destinations[1].lofty", "only a lofty destination takes these settings"),
        ];
        for (document, key, problem) in cases {
            assert_ne!(document, doc, "the case for {key} changes the document");
            let error = from_toml(&document, &buyer_secrets()).expect_err(key);
            assert_eq!(error.key, key, "{error}");
            assert!(error.problem.contains(problem), "{error}");
        }
    }

    /// Each connector's own `check`, given a section by hand: a credential it does not take is refused,
    /// naming `destinations[i].credentials.<name>`; what it needs is enough.
    #[test]
    fn each_connector_refuses_a_credential_it_does_not_take() {
        let options = BTreeMap::new();
        for kind in ConnectorKind::ALL {
            let needs: &[&str] = match kind {
                ConnectorKind::Webhook | ConnectorKind::HelocLender => &[],
                ConnectorKind::Sonar => &[sonar::CLIENT_SECRET],
                ConnectorKind::Ntherm => &[ntherm::USERNAME, ntherm::PASSWORD],
                ConnectorKind::Lofty => &[lofty::ACCESS_TOKEN],
            };
            let vertical = match kind {
                ConnectorKind::Ntherm => Vertical::Solar,
                _ => Vertical::Heloc,
            };
            let verticals = BTreeSet::from([vertical]);
            let signing_secret = (kind == ConnectorKind::Webhook)
                .then(|| Secret::new(secrets()["HOOK_SECRET"].clone()));
            let credentials: BTreeMap<String, Secret> = needs
                .iter()
                .map(|name| ((*name).to_owned(), Secret::new("a-credential-value")))
                .collect();
            let section = |credentials| ConnectorSection {
                index: 7,
                kind: kind.as_str(),
                verticals: &verticals,
                signing_secret: signing_secret.as_ref(),
                credentials,
                options: &options,
            };
            let connector = Rules
                .check(&section(&credentials))
                .expect("what it needs is enough");
            assert_eq!(connector.kind(), kind);
            let mut with_bogus = credentials.clone();
            with_bogus.insert("bogus".into(), Secret::new("a-credential-value"));
            let error = Rules.check(&section(&with_bogus)).expect_err("bogus");
            assert_eq!(
                error.key, "destinations[7].credentials.bogus",
                "{kind}: {error}"
            );
            assert!(!error.to_string().contains("a-credential-value"), "{error}");
        }
    }
}
