//! Answer rules: how an operator tells the hub what a buyer's answer means, per destination, as integration
//! platforms let their users write them (`[destinations.response]`). Pure: no I/O, nothing of AWS.
//!
//! ```toml
//! [destinations.response]
//! accepted_when = { path = "$.result.status", one_of = ["created", "duplicate"] }
//! rejected_when = { header = "X-Result", equals = "declined" }
//! # or accepted_when = { contains = "Thank you" }        (a plain-text search term)
//! # or accepted_when = [{ path = "$.ok", equals = true }, { path = "$.id" }]   (any of them)
//! reason_path = "$.errors[0].message"
//! reference_path = "$.data.id"
//! price_path = "$.bid.price"
//! ```
//!
//! Every connector takes them; where given they override the connector's own reading of the answer (its
//! "defaults", described in its module), key by key.
//!
//! ## A condition
//!
//! `accepted_when` and `rejected_when` are each one test, or a list of 1 to [`MAX_TESTS`] tests of which any
//! may match. A test reads one of:
//! - `path`: the values a JSON path selects in the body (see "Paths");
//! - `header`: the values of a response header (its name in any case; every value of a repeated header);
//! - `contains`: the body as text (any content type), which matches when it contains the term, ignoring
//!   case (Unicode lower case on both sides). `contains` takes no comparison.
//!
//! and compares with at most one of:
//! - `equals`: a string, a number or a boolean;
//! - `one_of`: a non-empty list of those (any may match);
//! - `matches`: a regular expression (the `regex` crate's syntax, compiled once when the configuration is
//!   loaded; a search, so anchor it with `^…$` for a whole value; case-sensitive unless it starts `(?i)`),
//!   tried on the text of a string, number (its JSON text, `12.5`) or boolean (`true`);
//! - nothing: the test matches when the path selects a value that is not `null` nor a blank string (a
//!   `false`, `0` or empty list counts as present), or when the header is present.
//!
//! `equals` and `one_of` compare, whatever the case of strings (buyers write `Created`, `created`,
//! `CREATED`) and ignoring spaces around them:
//! - a string with a JSON string; with a JSON number, when the string reads as that number (`"1"` equals
//!   `1` and `1.0`); with a JSON boolean, when it says `true` or `false`;
//! - a number with a JSON number of the same value (`1` equals `1.0`; compared as 64-bit floats), or a
//!   JSON string that reads as it (`"25"`);
//! - a boolean with a JSON boolean, or a JSON string `"true"`/`"false"` (any case). `1` and `0` are not
//!   booleans.
//! - `null`, lists and objects never equal anything: select their members with `[*]` (see below).
//!
//! A path test matches when any value it selects matches. A header's value is compared as a JSON string.
//!
//! ## Paths
//!
//! A small subset of JSONPath, written by hand (no crate): `$` (the whole body), then any of `.key`
//! (letters, digits, `_` and `-`), `["key"]` or `['key']` (any key; `\"`, `\'` and `\\` escape), `[n]` (the
//! n-th element of a list, from 0; `[-1]` is the last), `[*]` or `.*` (every element of a list, every value
//! of an object). No filters, slices or recursive descent. At most [`MAX_PATH_CHARS`] characters.
//!
//! The body is read as JSON whatever its `Content-Type` says (buyers mislabel JSON as `text/html` or
//! `text/plain`). A body that is not JSON (HTML, plain text, empty) has no paths: a path test does not
//! match it, and `reason_path`, `reference_path` and `price_path` find nothing in it. Header and
//! `contains` tests read any body.
//!
//! ## What an answer then means
//!
//! The rules read the answers a connector takes as an answer about the lead: its 2xx. Transport statuses
//! (3xx, 401, 403, 404, 408, 429, 5xx...) keep the connector's handling: credentials, configuration and
//! passing trouble are not the buyer's verdict on a lead. For a 2xx:
//! 1. rejected, when `rejected_when` matches (without it: when the connector rejects it): `Rejected`, code
//!    [`ANSWER_REJECTED`] (the connector's own code when it rejected), other buyers may take the lead, with
//!    the reason at `reason_path`, else the body's message, else "no reason given";
//! 2. else accepted, when `accepted_when` matches (without it: when the connector accepts it): `Accepted`,
//!    with the reference at `reference_path` (when given, only there; without it, the connector's) and the
//!    price at `price_path` (a JSON number or a string such as `"12.50"` or `"$12.50"`, US dollars with at
//!    most 2 decimal places; recorded as the accepted delivery's price in place of the configured `price`,
//!    never on the partner's timeline);
//! 3. else, when `accepted_when` or `rejected_when` is given: `Failed`, code [`UNRECOGNISED_ANSWER`],
//!    "unrecognised answer" and the shape of the body (its keys and the kinds of their values, never the
//!    values: a buyer may echo the consumer's details). A failed delivery is dead: kept for the operator
//!    (`leadhub-admin deliveries dead`) and alarmed (dispatch logs [`UNRECOGNISED_ALARM`]). Not `Accepted`:
//!    an answer nobody understands must not count as a sale; not `Retry`: posting again could create the
//!    lead twice;
//! 4. else (only paths given) the connector's outcome, refined by the paths.
//!
//! For a 4xx the connector rejected, `reason_path` (when it finds one) gives the reason; the rest is the
//! connector's.

use std::fmt;

use http::HeaderName;
use regex::Regex;
use serde_json::Value;

use crate::config::ConfigError;
use crate::connectors::{buyer_message, excerpt, message_of, BuyerResponse, MAX_REF_CHARS};
use crate::delivery::Outcome;
use crate::routing::Cents;

/// The code of a 2xx answer that matches neither `accepted_when` nor `rejected_when` (nor, for Sonar, its
/// default markers).
pub const UNRECOGNISED_ANSWER: &str = "unrecognised_answer";

/// The code of a rejection found by `rejected_when`.
pub const ANSWER_REJECTED: &str = "answer_rejected";

/// The `alarm` field dispatch logs when a delivery fails with an unrecognised answer (counted by a
/// CloudWatch metric filter in template.yaml).
pub const UNRECOGNISED_ALARM: &str = "buyer_answer_unrecognised";

/// The most tests a condition may list.
pub const MAX_TESTS: usize = 8;

/// The longest path.
pub const MAX_PATH_CHARS: usize = 256;

/// The largest compiled regular expression (bytes), so that a configuration cannot make dispatch slow.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// A destination's answer rules (`[destinations.response]`); empty when not given.
#[derive(Debug, Clone, Default)]
pub struct AnswerRules {
    pub accepted_when: Option<Condition>,
    pub rejected_when: Option<Condition>,
    pub reason_path: Option<JsonPath>,
    pub reference_path: Option<JsonPath>,
    pub price_path: Option<JsonPath>,
}

/// Any of its tests.
#[derive(Debug, Clone)]
pub struct Condition {
    tests: Vec<Test>,
}

#[derive(Debug, Clone)]
enum Test {
    Path { path: JsonPath, check: Check },
    Header { name: HeaderName, check: Check },
    Contains { lowercase: String },
}

#[derive(Debug, Clone)]
enum Check {
    Present,
    Equals(Scalar),
    OneOf(Vec<Scalar>),
    Matches(Regex),
}

/// A value to compare with (`equals`, `one_of`); text kept trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// A parsed path (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(i64),
    Any,
}

// ---- loading ------------------------------------------------------------------------------------------

const KEYS: [&str; 5] = [
    "accepted_when",
    "rejected_when",
    "reason_path",
    "reference_path",
    "price_path",
];

impl AnswerRules {
    /// Check `[destinations.response]` (at `key`, e.g. `destinations[2].response`): every problem names its
    /// key (`destinations[2].response.accepted_when.matches`).
    pub fn load(key: &str, value: &toml::Value) -> Result<AnswerRules, ConfigError> {
        let Some(table) = value.as_table() else {
            return Err(ConfigError::new(
                key,
                "must be a table of answer rules ([destinations.response])",
            ));
        };
        if let Some(unknown) = table.keys().find(|name| !KEYS.contains(&name.as_str())) {
            return Err(ConfigError::new(
                format!("{key}.{unknown}"),
                format!("unknown answer rule (known: {})", KEYS.join(", ")),
            ));
        }
        let condition = |name: &str| {
            table
                .get(name)
                .map(|value| Condition::load(&format!("{key}.{name}"), value))
                .transpose()
        };
        let path = |name: &str| {
            table
                .get(name)
                .map(|value| {
                    let key = format!("{key}.{name}");
                    let text = value.as_str().ok_or_else(|| {
                        ConfigError::new(&key, "must be a JSON path such as \"$.data.id\"")
                    })?;
                    JsonPath::parse(text).map_err(|problem| ConfigError::new(&key, problem))
                })
                .transpose()
        };
        Ok(AnswerRules {
            accepted_when: condition("accepted_when")?,
            rejected_when: condition("rejected_when")?,
            reason_path: path("reason_path")?,
            reference_path: path("reference_path")?,
            price_path: path("price_path")?,
        })
    }

    /// No rule given: the connector's reading holds as it is.
    pub fn is_empty(&self) -> bool {
        self.accepted_when.is_none()
            && self.rejected_when.is_none()
            && self.reason_path.is_none()
            && self.reference_path.is_none()
            && self.price_path.is_none()
    }
}

impl Condition {
    fn load(key: &str, value: &toml::Value) -> Result<Condition, ConfigError> {
        let tests = match value {
            toml::Value::Table(_) => vec![Test::load(key, value)?],
            toml::Value::Array(items) => {
                if items.is_empty() || items.len() > MAX_TESTS {
                    return Err(ConfigError::new(
                        key,
                        format!("must list 1 to {MAX_TESTS} tests (any of them may match)"),
                    ));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Test::load(&format!("{key}[{i}]"), item))
                    .collect::<Result<_, _>>()?
            }
            _ => {
                return Err(ConfigError::new(
                    key,
                    "must be a test such as { path = \"$.status\", equals = \"created\" }, or a list of them",
                ))
            }
        };
        Ok(Condition { tests })
    }
}

const TEST_KEYS: [&str; 6] = ["path", "header", "contains", "equals", "one_of", "matches"];

impl Test {
    fn load(key: &str, value: &toml::Value) -> Result<Test, ConfigError> {
        let Some(table) = value.as_table() else {
            return Err(ConfigError::new(
                key,
                "must be a test such as { path = \"$.status\", equals = \"created\" }",
            ));
        };
        if let Some(unknown) = table
            .keys()
            .find(|name| !TEST_KEYS.contains(&name.as_str()))
        {
            return Err(ConfigError::new(
                format!("{key}.{unknown}"),
                format!("unknown key (a test takes: {})", TEST_KEYS.join(", ")),
            ));
        }
        let sources: Vec<&str> = ["path", "header", "contains"]
            .into_iter()
            .filter(|name| table.contains_key(*name))
            .collect();
        if sources.len() != 1 {
            return Err(ConfigError::new(
                key,
                "give exactly one of `path` (a JSON path), `header` (a header name) or `contains` (a search term)",
            ));
        }
        let comparisons: Vec<&str> = ["equals", "one_of", "matches"]
            .into_iter()
            .filter(|name| table.contains_key(*name))
            .collect();
        let text = |name: &str| {
            table
                .get(name)
                .and_then(toml::Value::as_str)
                .ok_or_else(|| ConfigError::new(format!("{key}.{name}"), "must be a string"))
        };
        match sources[0] {
            "contains" => {
                if let Some(comparison) = comparisons.first() {
                    return Err(ConfigError::new(
                        format!("{key}.{comparison}"),
                        "`contains` is a search term of its own and takes no comparison",
                    ));
                }
                let term = text("contains")?;
                if term.trim().is_empty() {
                    return Err(ConfigError::new(
                        format!("{key}.contains"),
                        "the search term must not be blank",
                    ));
                }
                Ok(Test::Contains {
                    lowercase: term.to_lowercase(),
                })
            }
            source => {
                if comparisons.len() > 1 {
                    return Err(ConfigError::new(
                        key,
                        "give at most one of `equals`, `one_of` or `matches`",
                    ));
                }
                let check = Check::load(key, table, comparisons.first().copied())?;
                if source == "path" {
                    let path = JsonPath::parse(text("path")?)
                        .map_err(|problem| ConfigError::new(format!("{key}.path"), problem))?;
                    Ok(Test::Path { path, check })
                } else {
                    let name = HeaderName::from_bytes(text("header")?.trim().as_bytes()).map_err(
                        |_| ConfigError::new(format!("{key}.header"), "is not a valid header name"),
                    )?;
                    Ok(Test::Header { name, check })
                }
            }
        }
    }
}

impl Check {
    fn load(
        key: &str,
        table: &toml::map::Map<String, toml::Value>,
        comparison: Option<&str>,
    ) -> Result<Check, ConfigError> {
        let Some(name) = comparison else {
            return Ok(Check::Present);
        };
        let key = format!("{key}.{name}");
        let value = &table[name];
        match name {
            "equals" => Scalar::load(value)
                .map(Check::Equals)
                .ok_or_else(|| ConfigError::new(&key, "must be a string, a number or a boolean")),
            "one_of" => {
                let values = value.as_array().filter(|values| !values.is_empty());
                let scalars = values
                    .map(|values| values.iter().map(Scalar::load).collect::<Option<Vec<_>>>())
                    .unwrap_or_default()
                    .ok_or_else(|| {
                        ConfigError::new(
                            &key,
                            "must be a non-empty list of strings, numbers or booleans",
                        )
                    })?;
                Ok(Check::OneOf(scalars))
            }
            _ => {
                let pattern = value.as_str().ok_or_else(|| {
                    ConfigError::new(&key, "must be a regular expression (a string)")
                })?;
                regex::RegexBuilder::new(pattern)
                    .size_limit(MAX_REGEX_BYTES)
                    .build()
                    .map(Check::Matches)
                    .map_err(|error| {
                        ConfigError::new(&key, format!("not a valid regular expression: {error}"))
                    })
            }
        }
    }
}

impl Scalar {
    fn load(value: &toml::Value) -> Option<Scalar> {
        match value {
            toml::Value::String(text) => Some(Scalar::Text(text.trim().to_lowercase())),
            toml::Value::Integer(number) => Some(Scalar::Number(*number as f64)),
            toml::Value::Float(number) if number.is_finite() => Some(Scalar::Number(*number)),
            toml::Value::Boolean(flag) => Some(Scalar::Bool(*flag)),
            _ => None,
        }
    }

    /// Whether a JSON value equals this (see the module docs).
    fn equals(&self, value: &Value) -> bool {
        let number = |text: &str| text.trim().parse::<f64>().ok().filter(|n| n.is_finite());
        let flag = |text: &str| match text.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        match (self, value) {
            (Scalar::Text(text), Value::String(given)) => given.trim().to_lowercase() == *text,
            (Scalar::Text(text), Value::Number(given)) => {
                number(text).is_some_and(|n| given.as_f64() == Some(n))
            }
            (Scalar::Text(text), Value::Bool(given)) => flag(text) == Some(*given),
            (Scalar::Number(n), Value::Number(given)) => given.as_f64() == Some(*n),
            (Scalar::Number(n), Value::String(given)) => number(given) == Some(*n),
            (Scalar::Bool(b), Value::Bool(given)) => b == given,
            (Scalar::Bool(b), Value::String(given)) => flag(given) == Some(*b),
            _ => false,
        }
    }
}

impl JsonPath {
    /// Parse a path of the subset in the module docs; the problem says what is wrong and where.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        if text.chars().count() > MAX_PATH_CHARS {
            return Err(format!(
                "a JSON path may have at most {MAX_PATH_CHARS} characters"
            ));
        }
        let bad = |at: usize, what: &str| {
            format!(
                "`{text}` is not a JSON path of the subset the hub reads ({what} at character {})",
                at + 1
            )
        };
        let chars: Vec<char> = text.chars().collect();
        if chars.first() != Some(&'$') {
            return Err(format!(
                "`{text}` is not a JSON path: it must start with `$` (the whole body), e.g. \"$.data.id\""
            ));
        }
        let mut steps = Vec::new();
        let mut at = 1;
        let key_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
        while at < chars.len() {
            match chars[at] {
                '.' => {
                    at += 1;
                    if chars.get(at) == Some(&'*') {
                        steps.push(Step::Any);
                        at += 1;
                        continue;
                    }
                    let start = at;
                    while chars.get(at).is_some_and(|c| key_char(*c)) {
                        at += 1;
                    }
                    if at == start {
                        return Err(bad(at, "a key is expected after `.`"));
                    }
                    steps.push(Step::Key(chars[start..at].iter().collect()));
                }
                '[' => {
                    at += 1;
                    match chars.get(at) {
                        Some('*') => {
                            steps.push(Step::Any);
                            at += 1;
                        }
                        Some(quote @ ('"' | '\'')) => {
                            let quote = *quote;
                            at += 1;
                            let mut key = String::new();
                            loop {
                                match chars.get(at) {
                                    None => return Err(bad(at, "an unterminated quoted key")),
                                    Some('\\') => {
                                        match chars.get(at + 1) {
                                            Some(c @ ('"' | '\'' | '\\')) => key.push(*c),
                                            _ => return Err(bad(at, "an unknown escape")),
                                        }
                                        at += 2;
                                    }
                                    Some(c) if *c == quote => {
                                        at += 1;
                                        break;
                                    }
                                    Some(c) => {
                                        key.push(*c);
                                        at += 1;
                                    }
                                }
                            }
                            steps.push(Step::Key(key));
                        }
                        Some(_) => {
                            let start = at;
                            if chars.get(at) == Some(&'-') {
                                at += 1;
                            }
                            while chars.get(at).is_some_and(char::is_ascii_digit) {
                                at += 1;
                            }
                            let digits: String = chars[start..at].iter().collect();
                            let index = digits.parse::<i64>().map_err(|_| {
                                bad(
                                    start,
                                    "an index, `*` or a quoted key is expected in `[...]`",
                                )
                            })?;
                            steps.push(Step::Index(index));
                        }
                        None => return Err(bad(at, "`[` is not closed")),
                    }
                    if chars.get(at) != Some(&']') {
                        return Err(bad(at, "`]` is expected"));
                    }
                    at += 1;
                }
                _ => return Err(bad(at, "`.` or `[` is expected")),
            }
        }
        Ok(JsonPath {
            text: text.to_owned(),
            steps,
        })
    }

    /// The values the path selects in `root`, in document order (none when a step finds nothing).
    pub fn select<'v>(&self, root: &'v Value) -> Vec<&'v Value> {
        let mut current = vec![root];
        for step in &self.steps {
            let mut next = Vec::new();
            for value in current {
                match (step, value) {
                    (Step::Key(key), Value::Object(map)) => next.extend(map.get(key)),
                    (Step::Index(index), Value::Array(items)) => {
                        let at = if *index < 0 {
                            usize::try_from(index.unsigned_abs())
                                .ok()
                                .and_then(|back| items.len().checked_sub(back))
                        } else {
                            usize::try_from(*index).ok()
                        };
                        next.extend(at.and_then(|at| items.get(at)));
                    }
                    (Step::Any, Value::Array(items)) => next.extend(items.iter()),
                    (Step::Any, Value::Object(map)) => next.extend(map.values()),
                    _ => {}
                }
            }
            current = next;
        }
        current
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

// ---- evaluation -----------------------------------------------------------------------------------------

/// A buyer's answer as the rules read it: the body parsed as JSON once, if it is JSON.
struct Answer<'r> {
    response: &'r BuyerResponse,
    json: Option<Value>,
}

impl<'r> Answer<'r> {
    fn of(response: &'r BuyerResponse) -> Self {
        Answer {
            response,
            json: serde_json::from_slice(&response.body).ok(),
        }
    }

    fn select(&self, path: &JsonPath) -> Vec<&Value> {
        self.json
            .as_ref()
            .map(|json| path.select(json))
            .unwrap_or_default()
    }
}

impl Check {
    fn value(&self, value: &Value) -> bool {
        match self {
            Check::Present => match value {
                Value::Null => false,
                Value::String(text) => !text.trim().is_empty(),
                _ => true,
            },
            Check::Equals(scalar) => scalar.equals(value),
            Check::OneOf(scalars) => scalars.iter().any(|scalar| scalar.equals(value)),
            Check::Matches(regex) => match value {
                Value::String(text) => regex.is_match(text),
                Value::Number(number) => regex.is_match(&number.to_string()),
                Value::Bool(flag) => regex.is_match(if *flag { "true" } else { "false" }),
                _ => false,
            },
        }
    }
}

impl Test {
    fn matches(&self, answer: &Answer<'_>) -> bool {
        match self {
            Test::Path { path, check } => answer.select(path).into_iter().any(|v| check.value(v)),
            Test::Header { name, check } => answer
                .response
                .headers
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .any(|value| match check {
                    Check::Present => true,
                    other => other.value(&Value::String(value.trim().to_owned())),
                }),
            Test::Contains { lowercase } => String::from_utf8_lossy(&answer.response.body)
                .to_lowercase()
                .contains(lowercase.as_str()),
        }
    }
}

impl Condition {
    fn matches(&self, answer: &Answer<'_>) -> bool {
        self.tests.iter().any(|test| test.matches(answer))
    }
}

impl AnswerRules {
    /// What the answer means under these rules, given what the connector made of it (`default`); see the
    /// module docs. No rules: `default` as it is.
    pub fn apply(&self, response: &BuyerResponse, default: Outcome) -> Outcome {
        if self.is_empty() {
            return default;
        }
        let answer = Answer::of(response);
        match response.status {
            200..=299 => self.decide(&answer, default),
            400..=499 => match default {
                Outcome::Rejected {
                    code,
                    others_may_take,
                    reason,
                } => Outcome::Rejected {
                    reason: match self.reason(&answer) {
                        Some(found) => {
                            format!("the buyer declined the lead ({}): {found}", response.status)
                        }
                        None => reason,
                    },
                    code,
                    others_may_take,
                },
                other => other,
            },
            _ => default,
        }
    }

    fn decide(&self, answer: &Answer<'_>, default: Outcome) -> Outcome {
        let rejected = match &self.rejected_when {
            Some(condition) => condition.matches(answer),
            None => matches!(default, Outcome::Rejected { .. }),
        };
        if rejected {
            let found = self.reason(answer);
            return match (default, &self.rejected_when) {
                // The connector's own rejection, its reason refined by `reason_path`.
                (
                    Outcome::Rejected {
                        code,
                        reason,
                        others_may_take,
                    },
                    None,
                ) => Outcome::Rejected {
                    code,
                    reason: found
                        .map(|found| format!("the buyer declined the lead: {found}"))
                        .unwrap_or(reason),
                    others_may_take,
                },
                _ => {
                    let why = found
                        .or_else(|| buyer_message(&answer.response.body))
                        .unwrap_or_else(|| "no reason given".into());
                    Outcome::rejected(
                        ANSWER_REJECTED,
                        format!("the buyer declined the lead: {why}"),
                        true,
                    )
                }
            };
        }
        let accepted = match &self.accepted_when {
            Some(condition) => condition.matches(answer),
            None => matches!(default, Outcome::Accepted { .. }),
        };
        if accepted {
            let (default_ref, default_price) = match default {
                Outcome::Accepted { buyer_ref, price } => (buyer_ref, price),
                _ => (None, None),
            };
            return Outcome::Accepted {
                buyer_ref: match &self.reference_path {
                    Some(path) => reference_at(answer, path),
                    None => default_ref,
                },
                price: match &self.price_path {
                    Some(path) => price_at(answer, path),
                    None => default_price,
                },
            };
        }
        match default {
            // The connector's own "unrecognised" (Sonar's) says it in the buyer's name.
            unread @ Outcome::Failed { .. } if is_unrecognised(&unread) => unread,
            _ if self.accepted_when.is_some() || self.rejected_when.is_some() => {
                unrecognised(answer.response, "the buyer")
            }
            default => default,
        }
    }

    /// The reason at `reason_path`: its text (a list's or an object's messages joined), cleaned,
    /// `Authorization` values redacted, at most [`MAX_MESSAGE_CHARS`](crate::connectors::MAX_MESSAGE_CHARS)
    /// characters.
    fn reason(&self, answer: &Answer<'_>) -> Option<String> {
        let path = self.reason_path.as_ref()?;
        let selected: Vec<Value> = answer
            .select(path)
            .into_iter()
            .map(|value| match value {
                Value::Number(n) => Value::String(n.to_string()),
                Value::Bool(b) => Value::String(b.to_string()),
                other => other.clone(),
            })
            .collect();
        match selected.len() {
            0 => None,
            1 => message_of(&selected[0]),
            _ => message_of(&Value::Array(selected)),
        }
    }
}

/// The first string (trimmed, not blank) or number the path selects, of at most [`MAX_REF_CHARS`].
fn reference_at(answer: &Answer<'_>, path: &JsonPath) -> Option<String> {
    answer.select(path).into_iter().find_map(|value| {
        let text = match value {
            Value::String(text) => excerpt(text.as_bytes(), MAX_REF_CHARS + 1),
            Value::Number(number) => number.to_string(),
            _ => return None,
        };
        (!text.is_empty() && text.chars().count() <= MAX_REF_CHARS).then_some(text)
    })
}

/// The first price the path selects: a JSON number, or a string of US dollars (`"12.50"`, `"$12.50"`).
fn price_at(answer: &Answer<'_>, path: &JsonPath) -> Option<Cents> {
    answer
        .select(path)
        .into_iter()
        .find_map(|value| match value {
            Value::Number(number) => Cents::parse_usd(&number.to_string()),
            Value::String(text) => {
                let text = text.trim();
                Cents::parse_usd(text.strip_prefix('$').unwrap_or(text).trim())
            }
            _ => None,
        })
}

/// `Failed` with [`UNRECOGNISED_ANSWER`]: `who` (`"Sonar"`, `"the buyer"`) answered a 2xx that says neither
/// that it took the lead nor that it declined it. The reason gives the body's shape, never its values.
pub fn unrecognised(response: &BuyerResponse, who: &str) -> Outcome {
    Outcome::failed(
        UNRECOGNISED_ANSWER,
        format!(
            "unrecognised answer: {who} answered {} with {}, which says neither that it took the lead \
             nor that it declined it; the lead is not counted as sold (check with the buyer, and the \
             destination's [destinations.response] rules)",
            response.status,
            shape(response)
        ),
    )
}

/// Whether an outcome is a failure for an unrecognised answer.
pub fn is_unrecognised(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Failed { code, .. } if code == UNRECOGNISED_ANSWER)
}

/// The most characters of a body's shape in a reason.
const MAX_SHAPE_CHARS: usize = 160;

/// What a body is, without its values: `an empty body`, `a text/html body of 512 bytes`, or `JSON {status:
/// text, ok: false, data: {id: number}, errors: [2 items]}`.
pub fn shape(response: &BuyerResponse) -> String {
    let body = &response.body;
    if body.iter().all(u8::is_ascii_whitespace) {
        return "an empty body".into();
    }
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let mut out = String::from("JSON ");
        shape_of(&value, 0, &mut out);
        return excerpt(out.as_bytes(), MAX_SHAPE_CHARS);
    }
    let kind = response
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .filter(|kind| {
            !kind.is_empty()
                && kind.len() <= 60
                && kind
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/+-.".contains(c))
        });
    match kind {
        Some(kind) => format!("a {kind} body of {} bytes", body.len()),
        None => format!("a body of {} bytes that is not JSON", body.len()),
    }
}

fn shape_of(value: &Value, depth: usize, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(_) => out.push_str("number"),
        Value::String(_) => out.push_str("text"),
        Value::Array(items) => match items.len() {
            0 => out.push_str("[]"),
            1 => out.push_str("[1 item]"),
            n => out.push_str(&format!("[{n} items]")),
        },
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(_) if depth >= 2 => out.push_str("{…}"),
        Value::Object(map) => {
            out.push('{');
            for (i, (key, inner)) in map.iter().enumerate() {
                if i == 8 {
                    out.push_str(", …");
                    break;
                }
                if i > 0 {
                    out.push_str(", ");
                }
                // A key is a name, not a value; one that looks like an address or a number is hidden.
                let plain = key.chars().count() <= 32
                    && !key.contains('@')
                    && !key.chars().any(|c| c.is_ascii_digit());
                out.push_str(if plain { key } else { "…" });
                out.push_str(": ");
                shape_of(inner, depth + 1, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests;
