//! LeadSafe SSN screening (seed `003_19d01d59c89bd75f.txt`): the screening stage's client, not a delivery
//! connector. Pure, like the connectors: it builds [`BuyerRequest`]s and reads [`BuyerResponse`]s; the
//! caller does the I/O.
//!
//! What the seed says, and how it is sent:
//! - Base URLs: `https://<provider>.leadsafe-dev.tech` (development) and `https://<provider>.leadsafe.tech`
//!   (production), the provider given by LeadSafe's account manager ([`LeadSafeClient::for_provider`];
//!   [`LeadSafeClient::with_base_url`] for a sandbox).
//! - Auth: HTTP Basic, the API key as user name and the client secret as password, on every request. The
//!   header is marked sensitive (its `Debug` shows `Sensitive`).
//! - `POST /leadsafe/search` `{"SocialSecurityNumber": "111111222"}` → `{"result": "Red"|"Amber"|"Green"}`
//!   ([`LeadSafeClient::search`], [`read_search`]).
//! - `POST /leadsafe/search-detailed`, same body → `{"details": [{"reason", "startDate":
//!   "2024-04-02T00:00:00", "endDate": null}], "result": ...}` ([`LeadSafeClient::search_detailed`],
//!   [`read_search_detailed`]).
//! - `POST /leadsafe/add` `{"Records": [{"EndDate", "Reason", "SocialSecurityNumber", "StartDate"}]}` →
//!   `{"code": 100, "message": "Records added"}` ([`LeadSafeClient::add`], [`read_add`]).
//! - The SFTP upload's CSV (`ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason`): [`csv`].
//!
//! Choices where the seed is silent, written down:
//! - An SSN is taken as 9 ASCII digits; dashes and spaces are dropped, anything else is refused. It is held
//!   in an [`Ssn`], whose `Debug` hides it, and no error text of this module ever contains it. A message
//!   LeadSafe sends back has every run of 9 or more digits (dashes, dots and spaces between them allowed)
//!   replaced by `***`, and [`LeadSafeClient::without_credentials`] takes the credentials out of it.
//! - Requests carry `Content-Type` and `Accept: application/json` and `User-Agent: leadhub/0.1`. Dates are
//!   sent as `YYYY-MM-DD` (the seed's add sample), `EndDate` as `null` when there is none.
//! - An add with no records, or with a record that ends before it starts, is refused before it is sent
//!   (LeadSafe could only refuse it).
//! - Answers: any 2xx is read as the seed describes; a body that is not that is [`LeadSafeError::Unreadable`]
//!   (the `result` must be one of Red, Amber, Green, in any case; `details` may be absent or `null` for
//!   none; dates are read as `2024-04-02T00:00:00`, `2024-04-02` or RFC 3339, the day as written; an
//!   `endDate` of `null`, `""` or absent is none; a detail's reason must be one of the seed's nine). An add
//!   answered 2xx with a `code` other than 100 is [`LeadSafeError::Refused`] with LeadSafe's message.
//!   401 and 403 are [`LeadSafeError::Unauthorized`] (configuration: do not retry); 408, 425, 429 and 5xx
//!   are [`LeadSafeError::Retry`], honouring `Retry-After`; every other status (other 4xx, 3xx: redirects
//!   are not followed) is [`LeadSafeError::Refused`] with its status, so a caller can tell a 404 (wrong
//!   base URL) from a 400 (this request).
//! - The CSV: one line per record, each line ended by `\n` (the last too); a client code that is empty,
//!   has surrounding spaces, or holds a comma, a quote or a control character is refused (the seed's
//!   sample has no quoting, and a reader that splits on commas would misread it).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{buyer_message, retry_after, secret_header, BuildError, BuyerRequest, BuyerResponse};
use crate::config::Secret;

pub const SEARCH_PATH: &str = "/leadsafe/search";
pub const SEARCH_DETAILED_PATH: &str = "/leadsafe/search-detailed";
pub const ADD_PATH: &str = "/leadsafe/add";

/// The first line of the seed's CSV upload.
pub const CSV_HEADER: &str = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason";

/// The `code` of a successful add (`{"code": 100, "message": "Records added"}`).
pub const ADDED_CODE: i64 = 100;

/// LeadSafe's two environments, each with its own base URL and credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeadSafeEnvironment {
    Development,
    Production,
}

impl LeadSafeEnvironment {
    /// The domain a provider's name is put in front of.
    pub fn domain(self) -> &'static str {
        match self {
            LeadSafeEnvironment::Development => "leadsafe-dev.tech",
            LeadSafeEnvironment::Production => "leadsafe.tech",
        }
    }
}

/// A Social Security number: 9 ASCII digits. Its `Debug` never shows it, and it has no `Display`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ssn(String);

impl Ssn {
    /// 9 digits, with any dashes and spaces dropped (`123-45-6789`, `123 45 6789`). The error never repeats
    /// the input.
    pub fn parse(raw: &str) -> Result<Ssn, BuildError> {
        let digits: String = raw.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
        if digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Ssn(digits))
        } else {
            Err(BuildError(
                "an SSN must be 9 digits (dashes and spaces are ignored)".into(),
            ))
        }
    }

    /// The 9 digits.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Ssn {
    type Err = BuildError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ssn::parse(s)
    }
}

impl fmt::Debug for Ssn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ssn(***)")
    }
}

/// LeadSafe's screening answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rag {
    Red,
    Amber,
    Green,
}

impl Rag {
    pub const ALL: [Rag; 3] = [Rag::Red, Rag::Amber, Rag::Green];

    pub fn as_str(self) -> &'static str {
        match self {
            Rag::Red => "Red",
            Rag::Amber => "Amber",
            Rag::Green => "Green",
        }
    }

    /// `Red`, `Amber` or `Green`, in any case.
    fn read(text: &str) -> Option<Rag> {
        let text = text.trim();
        Rag::ALL
            .into_iter()
            .find(|rag| rag.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Rag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a customer is on LeadSafe's list: the seed's nine reasons, spelled as the seed spells them.
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

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Default => "Default",
            Reason::RevokePaymentAuth => "RevokePaymentAuth",
            Reason::Lawsuit => "Lawsuit",
            Reason::RegulatoryComplaint => "RegulatoryComplaint",
            Reason::DebtConsolidation => "DebtConsolidation",
            Reason::SuspectedIdTheft => "SuspectedIdTheft",
            Reason::Bankruptcy => "Bankruptcy",
            Reason::Abusive => "Abusive",
            Reason::Deceased => "Deceased",
        }
    }

    /// The seed's description of the reason.
    pub fn description(self) -> &'static str {
        match self {
            Reason::Default => "The customer has entered into a default status",
            Reason::RevokePaymentAuth => "The customer has revoked ACH permissions",
            Reason::Lawsuit => "The customer has instigated a lawsuit",
            Reason::RegulatoryComplaint => "The customer has instigated a regulatory complaint",
            Reason::DebtConsolidation => "The customer has engaged a debt consolidation agency",
            Reason::SuspectedIdTheft => "The customer has reported ID theft",
            Reason::Bankruptcy => "The customer has declared bankruptcy",
            Reason::Abusive => "The customer is abusive",
            Reason::Deceased => "The customer is deceased",
        }
    }
}

impl FromStr for Reason {
    type Err = BuildError;
    /// Exactly as the seed spells it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| BuildError("not one of LeadSafe's nine reasons".into()))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record to add or update: the customer entered the status `reason` on `start_date`, and left it on
/// `end_date` if they have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSafeRecord {
    pub ssn: Ssn,
    pub reason: Reason,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
}

impl LeadSafeRecord {
    /// A record from an SSN as typed (see [`Ssn::parse`]).
    pub fn new(
        ssn: &str,
        reason: Reason,
        start_date: NaiveDate,
        end_date: Option<NaiveDate>,
    ) -> Result<Self, BuildError> {
        Ok(LeadSafeRecord {
            ssn: Ssn::parse(ssn)?,
            reason,
            start_date,
            end_date,
        })
    }

    fn check(&self, index: usize) -> Result<(), BuildError> {
        if self.end_date.is_some_and(|end| end < self.start_date) {
            return Err(BuildError(format!(
                "record {index}: its EndDate is before its StartDate"
            )));
        }
        Ok(())
    }
}

/// One of `search-detailed`'s `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub reason: Reason,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
}

/// What a LeadSafe answer means when it is not the answer sought.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadSafeError {
    /// 401 or 403: LeadSafe refused the API key and client secret. Configuration: do not retry.
    #[error("LeadSafe refused the API key and client secret: check the credentials for this environment")]
    Unauthorized,
    /// 408, 425, 429 or 5xx: try again, not before `after` when LeadSafe said when.
    #[error("LeadSafe asked us to try again later")]
    Retry { after: Option<Duration> },
    /// Any other status that is not a success (mostly 4xx): LeadSafe's message, excerpted, SSNs and
    /// `Authorization` values masked; or a 2xx add whose `code` is not 100.
    #[error("LeadSafe refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// A 2xx whose body is not what the seed describes.
    #[error("LeadSafe's answer is not what its documentation describes: {what}")]
    Unreadable { what: &'static str },
}

/// A client of one LeadSafe environment. Its `Debug` shows the base URL; the credentials show as
/// `Secret(***)`. A built request's body holds the SSN: do not log a [`BuyerRequest`] of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSafeClient {
    base_url: reqwest::Url,
    api_key: Secret,
    client_secret: Secret,
}

/// Whether `provider` is a DNS label: 1 to 63 ASCII letters, digits and hyphens, not starting or ending
/// with a hyphen.
fn is_dns_label(provider: &str) -> bool {
    (1..=63).contains(&provider.len())
        && provider
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !provider.starts_with('-')
        && !provider.ends_with('-')
}

impl LeadSafeClient {
    /// `https://<provider>.leadsafe-dev.tech` or `https://<provider>.leadsafe.tech`, `provider` being the
    /// name LeadSafe's account manager gives (a DNS label; case does not matter).
    pub fn for_provider(
        provider: &str,
        environment: LeadSafeEnvironment,
        api_key: Secret,
        client_secret: Secret,
    ) -> Result<Self, BuildError> {
        if !is_dns_label(provider) {
            return Err(BuildError(
                "the LeadSafe provider must be a DNS label: 1 to 63 letters, digits and inner hyphens"
                    .into(),
            ));
        }
        let url = format!(
            "https://{}.{}",
            provider.to_ascii_lowercase(),
            environment.domain()
        );
        let url = reqwest::Url::parse(&url)
            .map_err(|_| BuildError("the LeadSafe provider does not make a URL".into()))?;
        LeadSafeClient::with_base_url(url, api_key, client_secret)
    }

    /// A client of the LeadSafe (or sandbox) at `base_url`: `http` or `https`, no user name or password, no
    /// query or fragment; a path is a prefix to the endpoints' paths.
    pub fn with_base_url(
        base_url: reqwest::Url,
        api_key: Secret,
        client_secret: Secret,
    ) -> Result<Self, BuildError> {
        if !matches!(base_url.scheme(), "http" | "https") || base_url.host_str().is_none() {
            return Err(BuildError(
                "the LeadSafe base URL must be an http or https URL with a host".into(),
            ));
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(BuildError(
                "the LeadSafe base URL must not hold credentials: they go in the API key and client secret"
                    .into(),
            ));
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(BuildError(
                "the LeadSafe base URL must not have a query or a fragment".into(),
            ));
        }
        let key = api_key.expose();
        if key.is_empty() || key.contains(':') || key.chars().any(char::is_control) {
            return Err(BuildError(
                "the LeadSafe API key must be non-empty, without `:` or control characters (it is the Basic \
                 auth user name)"
                    .into(),
            ));
        }
        let secret = client_secret.expose();
        if secret.is_empty() || secret.chars().any(char::is_control) {
            return Err(BuildError(
                "the LeadSafe client secret must be non-empty, without control characters".into(),
            ));
        }
        Ok(LeadSafeClient {
            base_url,
            api_key,
            client_secret,
        })
    }

    pub fn base_url(&self) -> &reqwest::Url {
        &self.base_url
    }

    /// The endpoint at `path` under the base URL.
    fn url(&self, path: &str) -> reqwest::Url {
        let mut url = self.base_url.clone();
        let joined = format!("{}{path}", self.base_url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    /// `Basic base64(api_key:client_secret)`, marked sensitive.
    fn authorization(&self) -> Result<HeaderValue, BuildError> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.api_key.expose(),
            self.client_secret.expose()
        ));
        secret_header(&format!("Basic {token}"), "LeadSafe credentials")
    }

    fn post(&self, path: &str, body: &Value) -> Result<BuyerRequest, BuildError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static("leadhub/0.1"));
        headers.insert(AUTHORIZATION, self.authorization()?);
        let body = serde_json::to_vec(body)
            .map_err(|_| BuildError("cannot encode the LeadSafe request".into()))?;
        Ok(BuyerRequest {
            method: Method::POST,
            url: self.url(path),
            headers,
            body,
        })
    }

    /// `POST /leadsafe/search` `{"SocialSecurityNumber": "<9 digits>"}`: answered by [`read_search`].
    pub fn search(&self, ssn: &str) -> Result<BuyerRequest, BuildError> {
        let ssn = Ssn::parse(ssn)?;
        self.post(SEARCH_PATH, &json!({"SocialSecurityNumber": ssn.expose()}))
    }

    /// `POST /leadsafe/search-detailed`, the same body: answered by [`read_search_detailed`].
    pub fn search_detailed(&self, ssn: &str) -> Result<BuyerRequest, BuildError> {
        let ssn = Ssn::parse(ssn)?;
        self.post(
            SEARCH_DETAILED_PATH,
            &json!({"SocialSecurityNumber": ssn.expose()}),
        )
    }

    /// `POST /leadsafe/add` `{"Records": [...]}` (keys as the seed's sample, dates `YYYY-MM-DD`, `EndDate`
    /// `null` when there is none): answered by [`read_add`].
    pub fn add(&self, records: &[LeadSafeRecord]) -> Result<BuyerRequest, BuildError> {
        if records.is_empty() {
            return Err(BuildError(
                "a LeadSafe add needs at least one record".into(),
            ));
        }
        let mut items = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            record.check(index)?;
            items.push(json!({
                "EndDate": record.end_date.map(|d| d.format("%Y-%m-%d").to_string()),
                "Reason": record.reason.as_str(),
                "SocialSecurityNumber": record.ssn.expose(),
                "StartDate": record.start_date.format("%Y-%m-%d").to_string(),
            }));
        }
        self.post(ADD_PATH, &json!({ "Records": items }))
    }

    /// `error` with this client's API key, client secret and Basic token replaced by `***` in its message
    /// (LeadSafe may echo what it was sent).
    pub fn without_credentials(&self, error: LeadSafeError) -> LeadSafeError {
        let LeadSafeError::Refused { status, message } = error else {
            return error;
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.api_key.expose(),
            self.client_secret.expose()
        ));
        let mut secrets = [
            token.as_str(),
            self.api_key.expose(),
            self.client_secret.expose(),
        ];
        // Longest first, so a secret holding another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut message = secrets
            .iter()
            .filter(|s| s.len() >= 4)
            .fold(message, |message, secret| message.replace(secret, "***"));
        // A message cut short may end in the first part of a secret.
        for secret in secrets.iter().filter(|s| s.len() >= 4) {
            let cut = (4..secret.len())
                .rev()
                .filter_map(|n| secret.get(..n))
                .find(|head| message.ends_with(head));
            if let Some(head) = cut {
                message.truncate(message.len() - head.len());
                message.push_str("***");
            }
        }
        LeadSafeError::Refused { status, message }
    }
}

/// `text` with every run of 9 or more ASCII digits (single dashes, dots or spaces between them allowed)
/// replaced by `***`: an SSN in any of its usual spellings.
fn without_ssns(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let (mut j, mut end, mut digits) = (i, i, 0usize);
        while j < chars.len() {
            if chars[j].is_ascii_digit() {
                digits += 1;
                j += 1;
                end = j;
            } else if matches!(chars[j], '-' | '.' | ' ')
                && chars.get(j + 1).is_some_and(char::is_ascii_digit)
            {
                j += 1;
            } else {
                break;
            }
        }
        if digits >= 9 {
            out.push_str("***");
        } else {
            out.extend(&chars[i..end]);
        }
        i = end;
    }
    out
}

/// LeadSafe's message in a body, SSNs masked before and after it is cut to length.
fn message(body: &[u8]) -> String {
    let masked = without_ssns(&String::from_utf8_lossy(body));
    buyer_message(masked.as_bytes())
        .map(|m| without_ssns(&m))
        .unwrap_or_else(|| "no reason given".into())
}

/// The JSON of a 2xx answer, or what a non-2xx status means.
fn success_json(response: &BuyerResponse, now: DateTime<Utc>) -> Result<Value, LeadSafeError> {
    let status = response.status;
    match status {
        200..=299 => {
            serde_json::from_slice(&response.body).map_err(|_| LeadSafeError::Unreadable {
                what: "the body is not JSON",
            })
        }
        401 | 403 => Err(LeadSafeError::Unauthorized),
        408 | 425 | 429 | 500..=599 => Err(LeadSafeError::Retry {
            after: retry_after(response, now),
        }),
        300..=399 => Err(LeadSafeError::Refused {
            status,
            message: "a redirect, which is not followed: check the LeadSafe base URL".into(),
        }),
        _ => Err(LeadSafeError::Refused {
            status,
            message: message(&response.body),
        }),
    }
}

fn result_of(value: &Value) -> Result<Rag, LeadSafeError> {
    value
        .get("result")
        .and_then(Value::as_str)
        .and_then(Rag::read)
        .ok_or(LeadSafeError::Unreadable {
            what: "`result` is not Red, Amber or Green",
        })
}

/// A day written `2024-04-02T00:00:00` (the seed's form), `2024-04-02`, or RFC 3339: the day as written.
fn day(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.date())
        })
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.date_naive())
        })
}

fn detail(value: &Value) -> Result<Detail, LeadSafeError> {
    let reason = value
        .get("reason")
        .and_then(Value::as_str)
        .and_then(|r| r.trim().parse::<Reason>().ok())
        .ok_or(LeadSafeError::Unreadable {
            what: "a detail's `reason` is not one of the seed's nine",
        })?;
    let start_date = value
        .get("startDate")
        .and_then(Value::as_str)
        .and_then(day)
        .ok_or(LeadSafeError::Unreadable {
            what: "a detail's `startDate` is not a date",
        })?;
    let end_date = match value.get("endDate") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(day(s).ok_or(LeadSafeError::Unreadable {
            what: "a detail's `endDate` is not a date or null",
        })?),
        Some(_) => {
            return Err(LeadSafeError::Unreadable {
                what: "a detail's `endDate` is not a date or null",
            })
        }
    };
    Ok(Detail {
        reason,
        start_date,
        end_date,
    })
}

/// What LeadSafe answered a [`LeadSafeClient::search`]: `{"result": "Green"}`.
pub fn read_search(response: &BuyerResponse, now: DateTime<Utc>) -> Result<Rag, LeadSafeError> {
    result_of(&success_json(response, now)?)
}

/// What LeadSafe answered a [`LeadSafeClient::search_detailed`]: the result and its details, in
/// LeadSafe's order.
pub fn read_search_detailed(
    response: &BuyerResponse,
    now: DateTime<Utc>,
) -> Result<(Rag, Vec<Detail>), LeadSafeError> {
    let value = success_json(response, now)?;
    let rag = result_of(&value)?;
    let details = match value.get("details") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(detail).collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(LeadSafeError::Unreadable {
                what: "`details` is not a list",
            })
        }
    };
    Ok((rag, details))
}

/// What LeadSafe answered a [`LeadSafeClient::add`]: `{"code": 100, "message": "Records added"}` is
/// success.
pub fn read_add(response: &BuyerResponse, now: DateTime<Utc>) -> Result<(), LeadSafeError> {
    let value = success_json(response, now)?;
    let code = match value.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or(LeadSafeError::Unreadable {
        what: "`code` is not a number",
    })?;
    if code == ADDED_CODE {
        return Ok(());
    }
    let said = value
        .get("message")
        .map(|m| message(m.to_string().as_bytes()))
        .unwrap_or_else(|| "no reason given".into());
    Err(LeadSafeError::Refused {
        status: response.status,
        message: format!("code {code}: {said}"),
    })
}

/// The seed's SFTP upload: the header line, then `client_code,<SSN>,<StartDate>,<EndDate or
/// empty>,<Reason>` per record, every line ended by `\n`. A client code that is empty, has surrounding
/// spaces, or holds a comma, a quote or a control character (a newline) is refused, as is a record that
/// ends before it starts.
pub fn csv(client_code: &str, records: &[LeadSafeRecord]) -> Result<String, BuildError> {
    if client_code.is_empty()
        || client_code.trim() != client_code
        || client_code
            .chars()
            .any(|c| matches!(c, ',' | '"' | '\'') || c.is_control())
    {
        return Err(BuildError(
            "the LeadSafe client code must be non-empty, without surrounding spaces, commas, quotes or \
             control characters"
                .into(),
        ));
    }
    let mut out = String::with_capacity(CSV_HEADER.len() + 1 + records.len() * 48);
    out.push_str(CSV_HEADER);
    out.push('\n');
    for (index, record) in records.iter().enumerate() {
        record.check(index)?;
        let end = record
            .end_date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        out.push_str(&format!(
            "{client_code},{},{},{end},{}\n",
            record.ssn.expose(),
            record.start_date.format("%Y-%m-%d"),
            record.reason,
        ));
    }
    Ok(out)
}

/// Seed 003's CSV upload sample, as printed (the unit tests of this module and of the suppression list).
#[cfg(test)]
pub(crate) const SEED_CSV: &str = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason
exampleco,123456789,2024-01-05,,Default
exampleco,111222333,2024-01-06,2024-02-12,RevokePaymentAuth
exampleco,240120120,2024-01-07,,Lawsuit
exampleco,411411411,2024-01-08,,RegulatoryComplaint
exampleco,910910910,2024-01-09,,DebtConsolidation
exampleco,761789231,2024-01-10,2024-02-19,Default
exampleco,123123123,2024-01-11,,SuspectedIdTheft
exampleco,412421341,2024-01-12,,Bankruptcy";

#[cfg(test)]
mod tests {
    use http::header::RETRY_AFTER;
    use proptest::prelude::*;

    use super::super::test_support::{now, response};
    use super::*;

    const API_KEY: &str = "ls-api-key-7c1e9a";
    const CLIENT_SECRET: &str = "ls-client-secret-Q9x2Lm4vR8";
    const BASE: &str = "https://exampleco.leadsafe-dev.tech";

    // The seed's samples, as the seed writes them.
    const SEARCH_REQUEST: &str = r#"{
    "SocialSecurityNumber": "111111222"
}"#;
    const SEARCH_RESPONSE: &str = r#"{"result":"Green"}"#;
    const DETAILED_RESPONSE: &str = r#"{
    "details": [
        {
            "reason": "RevokePaymentAuth",
            "startDate": "2024-04-02T00:00:00",
            "endDate": null
        }
    ],
    "result": "Red"
}"#;
    const ADD_REQUEST: &str = r#"{
    "Records": [
        {
            "EndDate": null,
            "Reason": "RevokePaymentAuth",
            "SocialSecurityNumber": "111111222",
            "StartDate": "2024-04-02"
        }
    ]
}"#;
    const ADD_RESPONSE: &str = r#"{
    "code": 100,
    "message": "Records added"
}"#;
    use super::SEED_CSV;

    fn client() -> LeadSafeClient {
        LeadSafeClient::with_base_url(
            reqwest::Url::parse(BASE).expect("url"),
            Secret::new(API_KEY),
            Secret::new(CLIENT_SECRET),
        )
        .expect("a valid client")
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    fn record(ssn: &str, reason: Reason, start: &str, end: Option<&str>) -> LeadSafeRecord {
        LeadSafeRecord::new(ssn, reason, date(start), end.map(date)).expect("a valid record")
    }

    /// The seed's CSV sample as records.
    fn seed_records() -> Vec<LeadSafeRecord> {
        vec![
            record("123456789", Reason::Default, "2024-01-05", None),
            record(
                "111222333",
                Reason::RevokePaymentAuth,
                "2024-01-06",
                Some("2024-02-12"),
            ),
            record("240120120", Reason::Lawsuit, "2024-01-07", None),
            record("411411411", Reason::RegulatoryComplaint, "2024-01-08", None),
            record("910910910", Reason::DebtConsolidation, "2024-01-09", None),
            record(
                "761789231",
                Reason::Default,
                "2024-01-10",
                Some("2024-02-19"),
            ),
            record("123123123", Reason::SuspectedIdTheft, "2024-01-11", None),
            record("412421341", Reason::Bankruptcy, "2024-01-12", None),
        ]
    }

    fn json_of(text: &str) -> Value {
        serde_json::from_str(text).expect("the sample is JSON")
    }

    fn basic() -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{CLIENT_SECRET}"))
        )
    }

    #[test]
    fn builds_the_seeds_sample_requests() {
        let client = client();
        let add = [record(
            "111111222",
            Reason::RevokePaymentAuth,
            "2024-04-02",
            None,
        )];
        let rows: Vec<(BuyerRequest, &str, &str)> = vec![
            (
                client.search("111111222").expect("builds"),
                "https://exampleco.leadsafe-dev.tech/leadsafe/search",
                SEARCH_REQUEST,
            ),
            (
                client.search_detailed("111111222").expect("builds"),
                "https://exampleco.leadsafe-dev.tech/leadsafe/search-detailed",
                SEARCH_REQUEST,
            ),
            (
                client.add(&add).expect("builds"),
                "https://exampleco.leadsafe-dev.tech/leadsafe/add",
                ADD_REQUEST,
            ),
        ];
        for (request, url, sample) in rows {
            assert_eq!(request.method, Method::POST, "{url}");
            assert_eq!(request.url.as_str(), url);
            let body: Value = serde_json::from_slice(&request.body).expect("JSON");
            assert_eq!(body, json_of(sample), "{url}");
            // The seed's keys are in order, so the compact form of the sample is the body, byte for byte.
            assert_eq!(
                request.body,
                serde_json::to_vec(&json_of(sample)).expect("encodes"),
                "{url}"
            );
            assert_eq!(request.headers[AUTHORIZATION], basic().as_str());
            assert!(request.headers[AUTHORIZATION].is_sensitive());
            assert_eq!(request.headers[CONTENT_TYPE], "application/json");
            assert_eq!(request.headers[ACCEPT], "application/json");
            assert_eq!(request.headers[USER_AGENT], "leadhub/0.1");
            assert_eq!(request.headers.len(), 4, "{url}");
        }
    }

    #[test]
    fn adds_every_reason_with_and_without_an_end_date() {
        let records: Vec<LeadSafeRecord> = Reason::ALL
            .into_iter()
            .enumerate()
            .map(|(i, reason)| {
                let end = (i % 2 == 1).then_some("2024-12-31");
                record("123-45-6789", reason, "2024-01-05", end)
            })
            .collect();
        let body: Value =
            serde_json::from_slice(&client().add(&records).expect("builds").body).expect("JSON");
        let items = body["Records"].as_array().expect("Records");
        assert_eq!(items.len(), 9);
        for (i, (item, reason)) in items.iter().zip(Reason::ALL).enumerate() {
            let end = if i % 2 == 1 {
                json!("2024-12-31")
            } else {
                Value::Null
            };
            assert_eq!(
                item,
                &json!({
                    "EndDate": end,
                    "Reason": reason.as_str(),
                    "SocialSecurityNumber": "123456789",
                    "StartDate": "2024-01-05",
                })
            );
        }
        // Refused before sending: nothing to add, or a record that ends before it starts.
        assert!(client().add(&[]).is_err());
        let backwards = record(
            "123456789",
            Reason::Lawsuit,
            "2024-02-01",
            Some("2024-01-31"),
        );
        let error = client()
            .add(&[records[0].clone(), backwards.clone()])
            .expect_err("ends before it starts");
        assert_eq!(error.0, "record 1: its EndDate is before its StartDate");
        assert!(csv("exampleco", &[backwards]).is_err());
        // Ending on the day it starts is fine.
        let same_day = record(
            "123456789",
            Reason::Lawsuit,
            "2024-02-01",
            Some("2024-02-01"),
        );
        assert!(client().add(&[same_day]).is_ok());
    }

    #[test]
    fn ssns_are_nine_digits_with_dashes_and_spaces_dropped() {
        let accepted = [
            "111111222",
            "111-11-1222",
            "111 11 1222",
            " 111-11-1222 ",
            "111--111-222",
        ];
        for raw in accepted {
            let request = client().search(raw).expect(raw);
            let body: Value = serde_json::from_slice(&request.body).expect("JSON");
            assert_eq!(
                body,
                json!({"SocialSecurityNumber": "111111222"}),
                "{raw:?}"
            );
            assert_eq!(Ssn::parse(raw).expect(raw).expose(), "111111222");
        }
        let refused = [
            "",
            "11111122",
            "1111112223",
            "111-11-122a",
            "111.11.1222",
            "111_11_1222",
            "+11111122",
            "111\t11\t1222",
            "１１１１１１２２２",
            "١١١١١١٢٢٢",
            "111111222\n",
        ];
        for raw in refused {
            for error in [
                client().search(raw).expect_err(raw),
                client().search_detailed(raw).expect_err(raw),
                LeadSafeRecord::new(raw, Reason::Default, date("2024-01-01"), None).expect_err(raw),
            ] {
                assert_eq!(
                    error.0, "an SSN must be 9 digits (dashes and spaces are ignored)",
                    "{raw:?}"
                );
                assert!(!error.to_string().contains("1111"), "{raw:?}");
            }
        }
    }

    #[test]
    fn base_urls_come_from_the_provider_and_environment() {
        let rows = [
            (
                "exampleco",
                LeadSafeEnvironment::Development,
                "https://exampleco.leadsafe-dev.tech/leadsafe/search",
            ),
            (
                "exampleco",
                LeadSafeEnvironment::Production,
                "https://exampleco.leadsafe.tech/leadsafe/search",
            ),
            (
                "Acme-Lending2",
                LeadSafeEnvironment::Production,
                "https://acme-lending2.leadsafe.tech/leadsafe/search",
            ),
            (
                "a",
                LeadSafeEnvironment::Development,
                "https://a.leadsafe-dev.tech/leadsafe/search",
            ),
        ];
        for (provider, environment, url) in rows {
            let client = LeadSafeClient::for_provider(
                provider,
                environment,
                Secret::new(API_KEY),
                Secret::new(CLIENT_SECRET),
            )
            .expect(provider);
            assert_eq!(
                client.search("111111222").expect("builds").url.as_str(),
                url
            );
        }
        let long = "a".repeat(64);
        let refused = [
            "",
            "-acme",
            "acme-",
            "ac.me",
            "acme.evil.example/",
            "acme/x",
            "acme co",
            "acme_co",
            "acmé",
            "acme:443",
            "user@acme",
            long.as_str(),
        ];
        for provider in refused {
            let error = LeadSafeClient::for_provider(
                provider,
                LeadSafeEnvironment::Production,
                Secret::new(API_KEY),
                Secret::new(CLIENT_SECRET),
            )
            .expect_err(provider);
            assert!(error.0.contains("DNS label"), "{provider:?}: {error}");
        }
        assert!(LeadSafeClient::for_provider(
            &"a".repeat(63),
            LeadSafeEnvironment::Production,
            Secret::new(API_KEY),
            Secret::new(CLIENT_SECRET),
        )
        .is_ok());
        // The environments as configuration spells them.
        let parsed: Vec<LeadSafeEnvironment> =
            serde_json::from_str(r#"["development","production"]"#).expect("parses");
        assert_eq!(
            parsed,
            [
                LeadSafeEnvironment::Development,
                LeadSafeEnvironment::Production
            ]
        );
    }

    #[test]
    fn a_sandbox_base_url_keeps_its_port_and_path() {
        let rows = [
            (
                "http://127.0.0.1:4010",
                "http://127.0.0.1:4010/leadsafe/add",
            ),
            (
                "http://127.0.0.1:4010/",
                "http://127.0.0.1:4010/leadsafe/add",
            ),
            (
                "http://localhost:9/sandbox/",
                "http://localhost:9/sandbox/leadsafe/add",
            ),
            (
                "https://proxy.example/ls",
                "https://proxy.example/ls/leadsafe/add",
            ),
        ];
        let add = [record("111111222", Reason::Default, "2024-01-01", None)];
        for (base, url) in rows {
            let client = LeadSafeClient::with_base_url(
                reqwest::Url::parse(base).expect("url"),
                Secret::new(API_KEY),
                Secret::new(CLIENT_SECRET),
            )
            .expect(base);
            assert_eq!(client.add(&add).expect("builds").url.as_str(), url);
        }
        let refused = [
            "ftp://127.0.0.1/",
            "https://user:pw@exampleco.leadsafe.tech",
            "https://exampleco.leadsafe.tech/?x=1",
            "https://exampleco.leadsafe.tech/#x",
            "data:text/plain,x",
        ];
        for base in refused {
            assert!(
                LeadSafeClient::with_base_url(
                    reqwest::Url::parse(base).expect("url"),
                    Secret::new(API_KEY),
                    Secret::new(CLIENT_SECRET),
                )
                .is_err(),
                "{base}"
            );
        }
        // Credentials that cannot make a Basic header are refused, and the error does not repeat them.
        let bad = [
            ("", CLIENT_SECRET),
            ("key:with-colon", CLIENT_SECRET),
            ("key\nnewline", CLIENT_SECRET),
            (API_KEY, ""),
            (API_KEY, "secret\r\nX-Injected: 1"),
        ];
        for (key, secret) in bad {
            let error = LeadSafeClient::with_base_url(
                reqwest::Url::parse(BASE).expect("url"),
                Secret::new(key),
                Secret::new(secret),
            )
            .expect_err(key);
            if !key.is_empty() {
                assert!(!error.0.contains(key), "{error}");
            }
            if !secret.is_empty() {
                assert!(!error.0.contains(secret), "{error}");
            }
        }
        // A password may hold a colon (only the user name may not).
        assert!(LeadSafeClient::with_base_url(
            reqwest::Url::parse(BASE).expect("url"),
            Secret::new(API_KEY),
            Secret::new("pass:word"),
        )
        .is_ok());
    }

    #[test]
    fn reads_the_seeds_sample_responses() {
        assert_eq!(
            read_search(&response(200, &[], SEARCH_RESPONSE), now()),
            Ok(Rag::Green)
        );
        assert_eq!(
            read_search_detailed(&response(200, &[], DETAILED_RESPONSE), now()),
            Ok((
                Rag::Red,
                vec![Detail {
                    reason: Reason::RevokePaymentAuth,
                    start_date: date("2024-04-02"),
                    end_date: None,
                }]
            ))
        );
        assert_eq!(read_add(&response(200, &[], ADD_RESPONSE), now()), Ok(()));
        // A detailed answer is also a search answer.
        assert_eq!(
            read_search(&response(200, &[], DETAILED_RESPONSE), now()),
            Ok(Rag::Red)
        );
    }

    #[test]
    fn reads_every_result_and_detail_form() {
        let search_rows: Vec<(&str, Result<Rag, LeadSafeError>)> = vec![
            (r#"{"result":"Red"}"#, Ok(Rag::Red)),
            (r#"{"result":"Amber"}"#, Ok(Rag::Amber)),
            (r#"{"result":"Green"}"#, Ok(Rag::Green)),
            (r#"{"result":" green "}"#, Ok(Rag::Green)),
            (r#"{"result":"RED","extra":1}"#, Ok(Rag::Red)),
        ];
        for (body, expected) in search_rows {
            assert_eq!(
                read_search(&response(200, &[], body), now()),
                expected,
                "{body}"
            );
        }
        let unreadable = |what| Err(LeadSafeError::Unreadable { what });
        let no_result = unreadable("`result` is not Red, Amber or Green");
        type Detailed = Result<(Rag, Vec<Detail>), LeadSafeError>;
        let rows: Vec<(&str, Detailed)> = vec![
            (
                r#"{"result":"Green","details":[]}"#,
                Ok((Rag::Green, vec![])),
            ),
            (r#"{"result":"Green"}"#, Ok((Rag::Green, vec![]))),
            (
                r#"{"result":"Green","details":null}"#,
                Ok((Rag::Green, vec![])),
            ),
            (
                r#"{"result":"Amber","details":[
                    {"reason":"RevokePaymentAuth","startDate":"2024-01-06T00:00:00","endDate":"2024-02-12T00:00:00"},
                    {"reason":"DebtConsolidation","startDate":"2024-01-09","endDate":""},
                    {"reason":"Default","startDate":"2024-01-10T13:45:10.123","endDate":"2024-02-19T00:00:00Z"},
                    {"reason":"Deceased","startDate":"2024-01-11T00:00:00-05:00"}
                ]}"#,
                Ok((
                    Rag::Amber,
                    vec![
                        Detail {
                            reason: Reason::RevokePaymentAuth,
                            start_date: date("2024-01-06"),
                            end_date: Some(date("2024-02-12")),
                        },
                        Detail {
                            reason: Reason::DebtConsolidation,
                            start_date: date("2024-01-09"),
                            end_date: None,
                        },
                        Detail {
                            reason: Reason::Default,
                            start_date: date("2024-01-10"),
                            end_date: Some(date("2024-02-19")),
                        },
                        Detail {
                            reason: Reason::Deceased,
                            start_date: date("2024-01-11"),
                            end_date: None,
                        },
                    ],
                )),
            ),
            (r#"{"result":"Purple","details":[]}"#, no_result.clone()),
            (r#"{"details":[]}"#, no_result.clone()),
            (
                r#"{"result":"Red","details":{"reason":"Default"}}"#,
                unreadable("`details` is not a list"),
            ),
            (
                r#"{"result":"Red","details":[{"reason":"Fraud","startDate":"2024-01-01"}]}"#,
                unreadable("a detail's `reason` is not one of the seed's nine"),
            ),
            (
                r#"{"result":"Red","details":[{"reason":"default","startDate":"2024-01-01"}]}"#,
                unreadable("a detail's `reason` is not one of the seed's nine"),
            ),
            (
                r#"{"result":"Red","details":[{"reason":"Default"}]}"#,
                unreadable("a detail's `startDate` is not a date"),
            ),
            (
                r#"{"result":"Red","details":[{"reason":"Default","startDate":"02/04/2024"}]}"#,
                unreadable("a detail's `startDate` is not a date"),
            ),
            (
                r#"{"result":"Red","details":[{"reason":"Default","startDate":"2024-01-01","endDate":20240101}]}"#,
                unreadable("a detail's `endDate` is not a date or null"),
            ),
            (
                r#"{"result":"Red","details":[{"reason":"Default","startDate":"2024-01-01","endDate":"soon"}]}"#,
                unreadable("a detail's `endDate` is not a date or null"),
            ),
            (
                r#"{"result":"Red","details":["Default"]}"#,
                unreadable("a detail's `reason` is not one of the seed's nine"),
            ),
        ];
        for (body, expected) in rows {
            assert_eq!(
                read_search_detailed(&response(200, &[], body), now()),
                expected,
                "{body}"
            );
        }
    }

    /// Each status class, for each of the three readers.
    #[test]
    fn classifies_every_status_class() {
        let garbage = "<html><body>Welcome</body></html>";
        type Row = (
            u16,
            Vec<(&'static str, &'static str)>,
            &'static str,
            Result<(), LeadSafeError>,
        );
        let refused = |status: u16, message: &str| {
            Err(LeadSafeError::Refused {
                status,
                message: message.into(),
            })
        };
        let retry = |after: Option<u64>| {
            Err(LeadSafeError::Retry {
                after: after.map(Duration::from_secs),
            })
        };
        let rows: Vec<Row> = vec![
            (
                401,
                vec![],
                r#"{"message":"Unauthorized"}"#,
                Err(LeadSafeError::Unauthorized),
            ),
            (403, vec![], "", Err(LeadSafeError::Unauthorized)),
            (429, vec![("retry-after", "30")], "", retry(Some(30))),
            (429, vec![], r#"{"message":"slow down"}"#, retry(None)),
            (
                503,
                vec![("retry-after", "Wed, 21 Oct 2015 07:28:45 GMT")],
                "<html>",
                retry(Some(45)),
            ),
            (500, vec![], "oops", retry(None)),
            (502, vec![("retry-after", "soon")], "", retry(None)),
            (408, vec![], "", retry(None)),
            (425, vec![], "", retry(None)),
            (
                400,
                vec![],
                r#"{"code":400,"message":"Records[0]: Invalid Reason: Fraud"}"#,
                refused(400, "Records[0]: Invalid Reason: Fraud"),
            ),
            (400, vec![], "", refused(400, "no reason given")),
            (404, vec![], "Not Found", refused(404, "Not Found")),
            (422, vec![], garbage, refused(422, "no reason given")),
            (
                302,
                vec![("location", "https://elsewhere.example")],
                "",
                refused(
                    302,
                    "a redirect, which is not followed: check the LeadSafe base URL",
                ),
            ),
            (
                200,
                vec![],
                garbage,
                Err(LeadSafeError::Unreadable {
                    what: "the body is not JSON",
                }),
            ),
            (
                200,
                vec![],
                "",
                Err(LeadSafeError::Unreadable {
                    what: "the body is not JSON",
                }),
            ),
        ];
        for (status, headers, body, expected) in rows {
            let answer = response(status, &headers, body);
            assert_eq!(
                read_search(&answer, now()).map(|_| ()),
                expected,
                "search {status} {body}"
            );
            assert_eq!(
                read_search_detailed(&answer, now()).map(|_| ()),
                expected,
                "detailed {status} {body}"
            );
            assert_eq!(read_add(&answer, now()), expected, "add {status} {body}");
        }
        // A 200 whose `result` is not one of the three.
        for body in [
            r#"{"result":"Purple"}"#,
            r#"{"result":null}"#,
            r#"{"result":1}"#,
            "[]",
            r#""Green""#,
        ] {
            let expected = Err(LeadSafeError::Unreadable {
                what: "`result` is not Red, Amber or Green",
            });
            assert_eq!(
                read_search(&response(200, &[], body), now()),
                expected,
                "{body}"
            );
            assert_eq!(
                read_search_detailed(&response(200, &[], body), now()).map(|(rag, _)| rag),
                expected,
                "{body}"
            );
        }
        // An add is done on code 100 only (number or numeric string, any 2xx).
        let add_rows: Vec<(u16, &str, Result<(), LeadSafeError>)> = vec![
            (200, r#"{"code":100,"message":"Records added"}"#, Ok(())),
            (200, r#"{"code":"100"}"#, Ok(())),
            (201, r#"{"code":100}"#, Ok(())),
            (
                200,
                r#"{"code":101,"message":"Records[0]: Invalid Reason"}"#,
                refused(200, "code 101: Records[0]: Invalid Reason"),
            ),
            (
                200,
                r#"{"code":400}"#,
                refused(200, "code 400: no reason given"),
            ),
            (
                200,
                r#"{"message":"Records added"}"#,
                Err(LeadSafeError::Unreadable {
                    what: "`code` is not a number",
                }),
            ),
            (
                200,
                r#"{"result":"Green"}"#,
                Err(LeadSafeError::Unreadable {
                    what: "`code` is not a number",
                }),
            ),
            (
                200,
                r#"{"code":"one hundred"}"#,
                Err(LeadSafeError::Unreadable {
                    what: "`code` is not a number",
                }),
            ),
            (
                204,
                "",
                Err(LeadSafeError::Unreadable {
                    what: "the body is not JSON",
                }),
            ),
        ];
        for (status, body, expected) in add_rows {
            assert_eq!(
                read_add(&response(status, &[], body), now()),
                expected,
                "{body}"
            );
        }
    }

    #[test]
    fn writes_the_seeds_csv_sample_exactly() {
        let written = csv("exampleco", &seed_records()).expect("writes");
        assert_eq!(written, format!("{SEED_CSV}\n"));
        assert_eq!(
            written.lines().collect::<Vec<_>>(),
            SEED_CSV.lines().collect::<Vec<_>>()
        );
        assert_eq!(written.lines().count(), 9, "the header and eight records");
        assert_eq!(
            written.lines().nth(1),
            Some("exampleco,123456789,2024-01-05,,Default")
        );
        // SSNs typed with dashes are written as 9 digits; no records is the header alone.
        let dashed = [record(
            "123-45-6789",
            Reason::Abusive,
            "2024-03-01",
            Some("2024-03-02"),
        )];
        assert_eq!(
            csv("acme-2", &dashed).expect("writes"),
            format!("{CSV_HEADER}\nacme-2,123456789,2024-03-01,2024-03-02,Abusive\n")
        );
        assert_eq!(
            csv("exampleco", &[]).expect("writes"),
            format!("{CSV_HEADER}\n")
        );
        for code in [
            "",
            " ",
            "example,co",
            "example\"co",
            "example'co",
            "example\nco",
            "example\rco",
            "example\tco",
            " exampleco",
            "exampleco ",
        ] {
            let error = csv(code, &seed_records()).expect_err(code);
            assert!(error.0.contains("client code"), "{code:?}: {error}");
        }
    }

    #[test]
    fn reasons_are_the_seeds_nine_with_its_descriptions() {
        let seed = [
            ("Default", "The customer has entered into a default status"),
            (
                "RevokePaymentAuth",
                "The customer has revoked ACH permissions",
            ),
            ("Lawsuit", "The customer has instigated a lawsuit"),
            (
                "RegulatoryComplaint",
                "The customer has instigated a regulatory complaint",
            ),
            (
                "DebtConsolidation",
                "The customer has engaged a debt consolidation agency",
            ),
            ("SuspectedIdTheft", "The customer has reported ID theft"),
            ("Bankruptcy", "The customer has declared bankruptcy"),
            ("Abusive", "The customer is abusive"),
            ("Deceased", "The customer is deceased"),
        ];
        assert_eq!(Reason::ALL.len(), seed.len());
        for (reason, (name, description)) in Reason::ALL.into_iter().zip(seed) {
            assert_eq!(reason.as_str(), name);
            assert_eq!(reason.to_string(), name);
            assert_eq!(reason.description(), description);
            assert_eq!(name.parse::<Reason>(), Ok(reason));
            assert_eq!(serde_json::to_value(reason).expect("encodes"), json!(name));
        }
        assert!("default".parse::<Reason>().is_err());
        assert!("Fraud".parse::<Reason>().is_err());
        for rag in Rag::ALL {
            assert_eq!(
                serde_json::to_value(rag).expect("encodes"),
                json!(rag.as_str())
            );
        }
    }

    #[test]
    fn no_text_shows_an_ssn_or_a_credential() {
        let client = client();
        let ssn = "123456789";
        let texts_free_of = |texts: &[String]| {
            for text in texts {
                for secret in [
                    ssn,
                    "123-45-6789",
                    "6789",
                    API_KEY,
                    CLIENT_SECRET,
                    &basic()[6..],
                ] {
                    assert!(!text.contains(secret), "{secret} in {text}");
                }
            }
        };
        let records = [record("123-45-6789", Reason::Default, "2024-01-05", None)];
        let requests = [
            client.search(ssn).expect("builds"),
            client.search_detailed(ssn).expect("builds"),
            client.add(&records).expect("builds"),
        ];
        let mut texts: Vec<String> = requests.iter().map(|r| format!("{r:?}")).collect();
        texts.push(format!("{client:?}"));
        texts.push(format!("{records:?}"));
        texts.push(format!("{:?}", Ssn::parse(ssn).expect("valid")));
        for bad in ["12345678", "123-45-678x", "1234567890"] {
            let error = client.search(bad).expect_err(bad);
            texts.push(format!("{error:?}"));
            texts.push(error.to_string());
        }
        // LeadSafe echoing the SSN (any spelling) or the credentials: masked in every error.
        let echoes = [
            format!(r#"{{"message":"SSN {ssn} is invalid"}}"#),
            r#"{"message":"SSN 123-45-6789 is invalid"}"#.to_owned(),
            r#"{"message":"SSN 123 45 6789 is invalid"}"#.to_owned(),
            r#"{"code":400,"SocialSecurityNumber":123456789}"#.to_owned(),
            format!("bad SocialSecurityNumber {ssn}"),
            format!(r#"{{"message":"key {API_KEY} with secret {CLIENT_SECRET} refused"}}"#),
            format!(r#"{{"message":"Authorization: {} refused"}}"#, basic()),
            format!(r#"{{"message":"{}{ssn}"}}"#, "x".repeat(195)),
            format!(r#"{{"message":"{}{CLIENT_SECRET}"}}"#, "x".repeat(190)),
        ];
        for status in [200, 400, 401, 403, 404, 409, 422, 429, 500] {
            for body in &echoes {
                let answer = response(status, &[], body);
                let errors = [
                    read_search(&answer, now()).err(),
                    read_search_detailed(&answer, now()).err(),
                    read_add(&answer, now()).err(),
                ];
                for error in errors.into_iter().flatten() {
                    let error = client.without_credentials(error);
                    texts.push(format!("{error:?}"));
                    texts.push(error.to_string());
                }
            }
        }
        let add_echo = format!(r#"{{"code":101,"message":"SSN {ssn} key {API_KEY}"}}"#);
        let error = read_add(&response(200, &[], &add_echo), now()).expect_err("not added");
        texts.push(client.without_credentials(error).to_string());
        texts_free_of(&texts);
        // Masking leaves other numbers alone.
        assert_eq!(
            without_ssns("code 400 on 2024-01-05: 123-45-6789 / 1234567890 / 12345678"),
            "code 400 on 2024-01-05: *** / *** / 12345678"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let bodies: Vec<Vec<u8>> = vec![
            vec![0xff, 0xfe, 0x00, 0x80],
            deep.into_bytes(),
            br#"{"result":"Red","details":[null,1,"x",[],{}]}"#.to_vec(),
            br#"{"code":1e400}"#.to_vec(),
            br#"{"code":18446744073709551616}"#.to_vec(),
            br#"{"result":"Red","details":[{"reason":"Default","startDate":"+262143-12-31T23:59:59"}]}"#.to_vec(),
            "é".repeat(10_000).into_bytes(),
        ];
        for status in [
            0,
            100,
            200,
            299,
            300,
            400,
            499,
            500,
            599,
            600,
            999,
            u16::MAX,
        ] {
            for body in &bodies {
                let answer = BuyerResponse {
                    status,
                    headers: HeaderMap::new(),
                    body: bytes::Bytes::from(body.clone()),
                };
                let _ = read_search(&answer, now());
                let _ = read_search_detailed(&answer, now());
                let _ = read_add(&answer, now());
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("99999999999999999999"),
        );
        let answer = BuyerResponse {
            status: 429,
            headers,
            body: bytes::Bytes::new(),
        };
        assert_eq!(
            read_search(&answer, now()),
            Err(LeadSafeError::Retry { after: None })
        );
    }

    proptest! {
        #[test]
        fn any_answer_is_read_without_panicking(status in 0u16..1000, body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let answer = BuyerResponse { status, headers: HeaderMap::new(), body: bytes::Bytes::from(body) };
            let _ = read_search(&answer, now());
            let _ = read_search_detailed(&answer, now());
            let _ = read_add(&answer, now());
        }

        #[test]
        fn any_text_is_an_ssn_or_refused_without_echo(raw in "[0-9 \\-a-z.]{0,14}") {
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            let only_digits_dashes_spaces = raw.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ' ');
            match Ssn::parse(&raw) {
                Ok(ssn) => {
                    prop_assert!(only_digits_dashes_spaces);
                    prop_assert_eq!(ssn.expose(), digits.as_str());
                    prop_assert_eq!(format!("{ssn:?}"), "Ssn(***)");
                }
                Err(error) => {
                    prop_assert!(!only_digits_dashes_spaces || digits.len() != 9);
                    // The same words whatever the input: nothing of it is repeated.
                    prop_assert_eq!(error.0, "an SSN must be 9 digits (dashes and spaces are ignored)");
                }
            }
        }
    }
}
