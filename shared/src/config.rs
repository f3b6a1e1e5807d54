//! Typed configuration: one TOML document, loaded and checked once at cold start.
//!
//! Secrets are referenced, never inlined: `env:NAME` reads an environment variable. Partner secrets are
//! stored only as `sha256:<hex>` hashes. Every problem names the key it is about.
//!
//! `[hub]` holds the hub's own keys: `hash_key` (keyed hashes of PII lookup keys), `callback_key` (buyer
//! callback tokens) and, optionally, `ssn_key` (seals the SSNs screening needs, [`SsnSealer`]) with
//! `ssn_ttl_hours` (how long a sealed SSN is kept at most, 1 to 168, default 24).
//!
//! `config` splits the document and checks what is common to every destination: its id, URL, timeout and
//! attempts, that its verticals exist, and its secret references (`signing_secret` and the
//! `[destinations.credentials]` table of name -> `env:NAME`, resolved here). What belongs to its buyer API —
//! the `kind`, which credentials and verticals that API takes, whether it signs, its own settings table
//! (`[destinations.lofty]`) — is handed as a [`ConnectorSection`] to the [`ConnectorRules`] the loader
//! ([`Config::load`]) is given, and the destination keeps what they make of it ([`Destination::connector`]).
//! This module names no connector: the rules are each connector module's own, and [`crate::settings`] glues
//! them to this loader as `Config::from_toml`.
//!
//! Routing keys (`[routing.<vertical>]`, and a destination's `priority`, `weight`, `price`, `exclusive`,
//! `filters`, `schedule`, `caps`) are read here and checked by [`crate::routing`].
//!
//! A destination's returns ([`ReturnPolicy`]): `return_reasons`, the reasons its `returned` verdicts may
//! give (a list of non-blank strings, compared case-insensitively; without it any non-blank reason is
//! taken), and `return_window_days`, how long after the delivery was accepted a lead may be returned (1 to
//! 365, default 7). Whether a returned lead is offered to the next buyer in line is the vertical's
//! `[routing.<vertical>] resell_returns` (default false).
//!
//! A destination's answer rules (`[destinations.response]`: `accepted_when`, `rejected_when`, `reason_path`,
//! `reference_path`, `price_path`) are common to every buyer API: they are checked here by
//! [`crate::answer_rules`] (paths parsed, regular expressions compiled once) and applied by the connectors.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use crate::crypto::{KeyedHasher, SecretHash, SsnSealer};
use crate::delivery::RetryPolicy;
use crate::ids::{DestinationId, PartnerId};
use crate::vertical::Vertical;

/// Why a configuration was refused: the key path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// A secret's value, read from where its reference points. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret from its value (the local stack and tests; configuration resolves references instead).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where secrets come from: the process environment, or a map in tests and the local stack.
pub trait SecretSource {
    fn get(&self, name: &str) -> Option<String>;
}

/// Secrets from environment variables.
pub struct Env;

impl SecretSource for Env {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl SecretSource for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

pub(crate) fn resolve(
    key: &str,
    reference: &str,
    secrets: &dyn SecretSource,
) -> Result<Secret, ConfigError> {
    let Some(name) = reference.strip_prefix("env:") else {
        return Err(ConfigError::new(
            key,
            "must reference a secret as `env:NAME`; secrets are never written into the configuration",
        ));
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ConfigError::new(
            key,
            "`env:` must be followed by a variable name",
        ));
    }
    secrets
        .get(name)
        .map(Secret)
        .ok_or_else(|| ConfigError::new(key, format!("environment variable {name} is not set")))
}

// ---- the document as written -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    hub: HubDoc,
    #[serde(default)]
    retry: RetryDoc,
    #[serde(default)]
    partners: Vec<PartnerDoc>,
    #[serde(default)]
    destinations: Vec<DestinationDoc>,
    /// `[routing.<vertical>]`: each vertical's strategy (see [`crate::routing`]).
    #[serde(default)]
    routing: BTreeMap<String, crate::routing::RoutingDoc>,
    /// `[screening]`: duplicates, suppression and LeadSafe per vertical (see [`crate::screening::policy`]).
    #[serde(default)]
    screening: BTreeMap<String, toml::Value>,
    /// `[notifications]`: how partner notifications are retried and kept.
    #[serde(default)]
    notifications: NotificationsDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationsDoc {
    /// The waits between attempts (`["5s", "5m", ...]`); default Standard Webhooks' schedule.
    #[serde(default)]
    retry_schedule: Option<Vec<String>>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    keep_failed_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubDoc {
    public_base_url: String,
    hash_key: String,
    callback_key: String,
    /// Seals SSNs for screening (`env:NAME`); without it no SSN is kept sealed.
    #[serde(default)]
    ssn_key: Option<String>,
    #[serde(default = "default_ssn_ttl_hours")]
    ssn_ttl_hours: u32,
    #[serde(default = "default_retention_days")]
    lead_retention_days: u32,
    #[serde(default = "default_idempotency_hours")]
    idempotency_ttl_hours: u32,
    #[serde(default = "default_in_flight_secs")]
    idempotency_in_flight_secs: u32,
    #[serde(default = "default_config_refresh_secs")]
    config_refresh_secs: u32,
    /// Partner-supplied URLs may point at loopback (local and test runs only; see [`crate::ssrf`]).
    #[serde(default)]
    allow_loopback_urls: bool,
}

fn default_config_refresh_secs() -> u32 {
    60
}

fn default_ssn_ttl_hours() -> u32 {
    24
}

fn default_retention_days() -> u32 {
    180
}
fn default_idempotency_hours() -> u32 {
    24
}
fn default_in_flight_secs() -> u32 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryDoc {
    #[serde(default = "default_base_delay_ms")]
    base_delay_ms: u64,
    #[serde(default = "default_max_delay_secs")]
    max_delay_secs: u64,
}

impl Default for RetryDoc {
    fn default() -> Self {
        RetryDoc {
            base_delay_ms: default_base_delay_ms(),
            max_delay_secs: default_max_delay_secs(),
        }
    }
}

fn default_base_delay_ms() -> u64 {
    2_000
}
fn default_max_delay_secs() -> u64 {
    900
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerDoc {
    id: String,
    key_id: String,
    secret_hash: String,
    verticals: Vec<String>,
    #[serde(default = "yes")]
    enabled: bool,
    /// Notifications (see [`crate::notifications`]): where, signed with what, which events.
    #[serde(default)]
    callback_url: Option<String>,
    #[serde(default)]
    webhook_secret: Option<crate::notifications::SecretRefs>,
    #[serde(default)]
    events: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationDoc {
    id: String,
    kind: String,
    url: String,
    verticals: Vec<String>,
    #[serde(default)]
    signing_secret: Option<String>,
    /// `[destinations.credentials]`: credential name -> secret reference (`env:NAME`).
    #[serde(default)]
    credentials: BTreeMap<String, String>,
    /// `[destinations.lofty]`: a buyer API's own settings table, named after its kind (only `lofty` has one),
    /// handed to the connector's rules unread ([`ConnectorSection::options`]).
    #[serde(default)]
    lofty: Option<toml::Value>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    #[serde(default = "yes")]
    enabled: bool,
    // Routing keys (see [`crate::routing`]): checked there.
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    weight: Option<i64>,
    #[serde(default)]
    price: Option<toml::Value>,
    #[serde(default)]
    exclusive: bool,
    #[serde(default)]
    accepts_amber: bool,
    #[serde(default)]
    filters: Option<crate::routing::FiltersDoc>,
    #[serde(default)]
    schedule: Option<crate::routing::ScheduleDoc>,
    #[serde(default)]
    caps: Option<crate::routing::CapsDoc>,
    /// The reasons a `returned` verdict may give (see [`ReturnPolicy`]); read as values, so that a wrong
    /// type is named by its key.
    #[serde(default)]
    return_reasons: Option<toml::Value>,
    #[serde(default)]
    return_window_days: Option<toml::Value>,
    /// `[destinations.response]`: the answer rules, any connector's (see [`crate::answer_rules`]).
    #[serde(default)]
    response: Option<toml::Value>,
}

fn default_timeout_ms() -> u64 {
    5_000
}
fn default_max_attempts() -> u32 {
    6
}

fn notification_settings(doc: &NotificationsDoc) -> Result<NotificationSettings, ConfigError> {
    let mut settings = NotificationSettings::default();
    if let Some(waits) = &doc.retry_schedule {
        settings.schedule = crate::notifications::RetrySchedule::parse(waits)
            .map_err(|problem| ConfigError::new("notifications.retry_schedule", problem))?;
    }
    if let Some(ms) = doc.timeout_ms {
        if !(100..=30_000).contains(&ms) {
            return Err(ConfigError::new(
                "notifications.timeout_ms",
                "must be between 100 and 30000",
            ));
        }
        settings.timeout = Duration::from_millis(ms);
    }
    if let Some(days) = doc.keep_failed_days {
        if !(1..=365).contains(&days) {
            return Err(ConfigError::new(
                "notifications.keep_failed_days",
                "must be between 1 and 365",
            ));
        }
        settings.keep_failed = Duration::from_secs(u64::from(days) * 86_400);
    }
    Ok(settings)
}

// ---- the checked configuration -----------------------------------------------------------------------

/// A partner (lead seller).
#[derive(Debug, Clone)]
pub struct Partner {
    pub id: PartnerId,
    pub key_id: String,
    pub secret_hash: SecretHash,
    pub verticals: BTreeSet<Vertical>,
    pub enabled: bool,
    /// Where and how it is notified of its leads' outcomes.
    pub notifications: crate::notifications::Subscription,
}

/// How partner notifications are sent (`[notifications]`).
#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// The waits between attempts (`retry_schedule`, default Standard Webhooks').
    pub schedule: crate::notifications::RetrySchedule,
    /// Each attempt's limit (`timeout_ms`, 100 to 30000, default 5000).
    pub timeout: Duration,
    /// How long a failed notification is kept for replay (`keep_failed_days`, 1 to 365, default 30).
    pub keep_failed: Duration,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            schedule: crate::notifications::RetrySchedule::default(),
            timeout: Duration::from_secs(5),
            keep_failed: Duration::from_secs(30 * 86_400),
        }
    }
}

/// A destination's parts that belong to its buyer API, as `config` found them: what [`ConnectorRules`] check.
/// Secrets are resolved, verticals exist; nothing else is checked yet.
#[derive(Debug, Clone, Copy)]
pub struct ConnectorSection<'a> {
    /// The destination's place in the document (`destinations[index]`), for the key paths of problems.
    pub index: usize,
    /// `kind`, as written.
    pub kind: &'a str,
    /// `verticals`, each a known vertical.
    pub verticals: &'a BTreeSet<Vertical>,
    /// `signing_secret`, resolved.
    pub signing_secret: Option<&'a Secret>,
    /// `[destinations.credentials]`, resolved: name -> secret.
    pub credentials: &'a BTreeMap<String, Secret>,
    /// The settings tables it has, by name (`lofty` for `[destinations.lofty]`), unread.
    pub options: &'a BTreeMap<&'static str, toml::Value>,
}

impl ConnectorSection<'_> {
    /// The key path of one of the destination's keys: `destinations[i].<field>`.
    pub fn key(&self, field: &str) -> String {
        format!("destinations[{}].{field}", self.index)
    }
}

/// The rules of the parts of a destination that belong to its buyer API, which `config` does not know: the
/// loader hands each destination's [`ConnectorSection`] to them and keeps what they make of it. The hub's
/// rules are its connector modules' (see [`crate::settings`]).
pub trait ConnectorRules {
    /// What the rules make of a section: the destination's buyer API, with that API's checked settings.
    type Connector;

    /// Check a destination's section; a problem names its key (`section.key("credentials.x")`).
    fn check(&self, section: &ConnectorSection<'_>) -> Result<Self::Connector, ConfigError>;
}

/// What a destination's buyer may return, and for how long (`return_reasons`, `return_window_days`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPolicy {
    /// The reasons a `returned` verdict may give, as configured (matched case-insensitively, surrounding
    /// spaces ignored); `None`: any non-blank reason.
    pub reasons: Option<Vec<String>>,
    /// How many days after the delivery was accepted a lead may be returned.
    pub window_days: u32,
}

impl ReturnPolicy {
    pub const DEFAULT_WINDOW_DAYS: u32 = 7;
    pub const MAX_WINDOW_DAYS: u32 = 365;
    /// The longest reason that may be configured.
    pub const MAX_REASON_CHARS: usize = 100;

    /// The configured reason `given` names (case-insensitive, trimmed), in the configuration's spelling; any
    /// non-blank reason when none are configured. `None`: not a reason this destination takes.
    pub fn reason(&self, given: Option<&str>) -> Option<String> {
        let given = given.map(str::trim).filter(|given| !given.is_empty())?;
        match &self.reasons {
            None => Some(given.to_owned()),
            Some(reasons) => reasons
                .iter()
                .find(|reason| reason.to_lowercase() == given.to_lowercase())
                .cloned(),
        }
    }

    fn check(
        key: &dyn Fn(&str) -> String,
        reasons: Option<toml::Value>,
        window_days: Option<toml::Value>,
    ) -> Result<ReturnPolicy, ConfigError> {
        let window_days = match window_days {
            None => Some(Self::DEFAULT_WINDOW_DAYS),
            Some(toml::Value::Integer(days)) => u32::try_from(days).ok(),
            Some(_) => None,
        };
        let window_days = window_days
            .filter(|days| (1..=Self::MAX_WINDOW_DAYS).contains(days))
            .ok_or_else(|| {
                ConfigError::new(
                    key("return_window_days"),
                    format!(
                        "must be a whole number of days from 1 to {}",
                        Self::MAX_WINDOW_DAYS
                    ),
                )
            })?;
        let reasons = match reasons {
            None => None,
            Some(reasons) => {
                let key = key("return_reasons");
                let not_a_list = || {
                    ConfigError::new(
                        &key,
                        "must be a list of reasons (strings), such as [\"bad phone\", \"duplicate\"]",
                    )
                };
                let reasons: Vec<String> = match reasons {
                    toml::Value::Array(values) => values
                        .into_iter()
                        .map(|value| match value {
                            toml::Value::String(reason) => Ok(reason),
                            _ => Err(not_a_list()),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(not_a_list()),
                };
                if reasons.is_empty() {
                    return Err(ConfigError::new(
                        key,
                        "must list at least one reason (leave it out to take any reason)",
                    ));
                }
                let mut seen = BTreeSet::new();
                let mut checked = Vec::new();
                for reason in reasons {
                    let reason = reason.trim().to_owned();
                    if reason.is_empty()
                        || reason.chars().count() > Self::MAX_REASON_CHARS
                        || reason.chars().any(char::is_control)
                    {
                        return Err(ConfigError::new(
                            key,
                            format!(
                                "each reason must be 1 to {} characters, without control characters",
                                Self::MAX_REASON_CHARS
                            ),
                        ));
                    }
                    if !seen.insert(reason.to_lowercase()) {
                        return Err(ConfigError::new(
                            key,
                            format!(
                                "`{reason}` is listed twice (reasons are compared ignoring case)"
                            ),
                        ));
                    }
                    checked.push(reason);
                }
                Some(checked)
            }
        };
        Ok(ReturnPolicy {
            reasons,
            window_days,
        })
    }
}

impl Default for ReturnPolicy {
    fn default() -> Self {
        ReturnPolicy {
            reasons: None,
            window_days: Self::DEFAULT_WINDOW_DAYS,
        }
    }
}

/// A buyer endpoint leads are delivered to. `C` is what the [`ConnectorRules`] made of its buyer API's parts
/// (the hub's is `crate::settings::Destination`).
#[derive(Debug, Clone)]
pub struct Destination<C> {
    pub id: DestinationId,
    /// Its buyer API (`kind`) with that API's own checked settings.
    pub connector: C,
    pub url: reqwest::Url,
    pub verticals: BTreeSet<Vertical>,
    pub signing_secret: Option<Secret>,
    /// The buyer API's credentials by name (`client_secret`, `username`, `password`, `api_key`), resolved;
    /// which names a kind takes is its connector's rule.
    pub credentials: BTreeMap<String, Secret>,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub enabled: bool,
    /// Priority, weight, price, exclusivity, filters, schedule and caps.
    pub routing: crate::routing::DestinationRouting,
    /// What its buyer may return, and for how long.
    pub returns: ReturnPolicy,
    /// How its buyer's answers are read, where the operator says so (`[destinations.response]`; empty: the
    /// connector's own reading).
    pub response: crate::answer_rules::AnswerRules,
}

impl<C> Destination<C> {
    /// A resolved credential by name.
    pub fn credential(&self, name: &str) -> Option<&Secret> {
        self.credentials.get(name)
    }
}

/// The hub's configuration, checked. `C` is what the [`ConnectorRules`] made of each destination's buyer API
/// (the hub's is `crate::settings::Config`).
#[derive(Debug, Clone)]
pub struct Config<C> {
    /// Where the partner API and callbacks are served, without a trailing slash.
    pub public_base_url: String,
    /// Keyed hashing of PII for duplicate and suppression keys.
    pub hasher: KeyedHasher,
    /// Signs and verifies buyer callback tokens.
    pub callback_signer: KeyedHasher,
    /// Seals the SSN a lead carries until screening has decided (`hub.ssn_key`); `None` when the key is not
    /// configured, and then no SSN is kept sealed.
    pub ssn_sealer: Option<SsnSealer>,
    /// How long a sealed SSN is kept at most (`hub.ssn_ttl_hours`, 1 to 168, default 24): the sealed item's
    /// expiry is its lead's time of receipt plus this.
    pub ssn_ttl: Duration,
    pub lead_retention: Duration,
    pub idempotency_ttl: Duration,
    pub idempotency_in_flight: Duration,
    /// How often warm functions re-read the table's stored configuration at most
    /// (`hub.config_refresh_secs`, default 60; see [`crate::live_config`]).
    pub config_refresh: Duration,
    /// What partner-supplied URLs may point at (`hub.allow_loopback_urls`, default false: public
    /// addresses only; see [`crate::ssrf`]).
    pub url_policy: crate::ssrf::UrlPolicy,
    pub retry: RetryPolicy,
    pub partners: Vec<Partner>,
    /// How partner notifications are retried and kept.
    pub notifications: NotificationSettings,
    pub destinations: Vec<Destination<C>>,
    /// Every vertical's routing settings (defaults for those not configured).
    pub routing: BTreeMap<Vertical, crate::routing::VerticalRouting>,
    /// Every vertical's screening, and how LeadSafe is reached.
    pub screening: crate::screening::policy::ScreeningConfig,
}

/// The shortest `hub.hash_key` and `hub.callback_key` secret, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

fn id_ok(id: &str) -> bool {
    crate::ids::is_valid(id)
}

fn verticals(key: &str, names: &[String]) -> Result<BTreeSet<Vertical>, ConfigError> {
    if names.is_empty() {
        return Err(ConfigError::new(key, "must name at least one vertical"));
    }
    names
        .iter()
        .map(|name| {
            name.parse::<Vertical>().map_err(|_| {
                let known: Vec<&str> = Vertical::ALL.iter().map(|v| v.as_str()).collect();
                ConfigError::new(
                    key,
                    format!("unknown vertical `{name}` (known: {})", known.join(", ")),
                )
            })
        })
        .collect()
}

impl<C> Config<C> {
    /// Parse and check a TOML document, resolving secret references through `secrets`, with `rules` for
    /// each destination's buyer API (the hub's: `crate::settings::Config::from_toml`).
    pub fn load(
        document: &str,
        secrets: &dyn SecretSource,
        rules: &dyn ConnectorRules<Connector = C>,
    ) -> Result<Self, ConfigError> {
        let doc: Document = toml::from_str(document).map_err(|error| {
            let key = error
                .span()
                .map(|span| {
                    let line = document[..span.start.min(document.len())]
                        .lines()
                        .count()
                        .max(1);
                    format!("line {line}")
                })
                .unwrap_or_else(|| "document".into());
            ConfigError::new(key, error.message().to_owned())
        })?;

        let public_base_url = doc.hub.public_base_url;
        let parsed = reqwest::Url::parse(&public_base_url)
            .map_err(|e| ConfigError::new("hub.public_base_url", format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "hub.public_base_url",
                "must be an http(s) URL",
            ));
        }
        let public_base_url = public_base_url.trim_end_matches('/').to_owned();

        let hash_key = resolve("hub.hash_key", &doc.hub.hash_key, secrets)?;
        let callback_key = resolve("hub.callback_key", &doc.hub.callback_key, secrets)?;
        for (key, secret) in [
            ("hub.hash_key", &hash_key),
            ("hub.callback_key", &callback_key),
        ] {
            if secret.expose().len() < MIN_KEY_BYTES {
                return Err(ConfigError::new(
                    key,
                    format!("the secret must be at least {MIN_KEY_BYTES} characters"),
                ));
            }
        }
        let ssn_sealer = match &doc.hub.ssn_key {
            None => None,
            Some(reference) => {
                let secret = resolve("hub.ssn_key", reference, secrets)?;
                if secret == hash_key || secret == callback_key {
                    return Err(ConfigError::new(
                        "hub.ssn_key",
                        "must be a secret of its own, not the one of hub.hash_key or hub.callback_key",
                    ));
                }
                Some(
                    SsnSealer::new(secret.expose())
                        .map_err(|error| ConfigError::new("hub.ssn_key", error.to_string()))?,
                )
            }
        };
        if !(1..=168).contains(&doc.hub.ssn_ttl_hours) {
            return Err(ConfigError::new(
                "hub.ssn_ttl_hours",
                "must be between 1 and 168",
            ));
        }
        if doc.hub.idempotency_in_flight_secs == 0 || doc.hub.idempotency_ttl_hours == 0 {
            return Err(ConfigError::new(
                "hub.idempotency_ttl_hours",
                "idempotency windows must be positive",
            ));
        }
        if !(1..=3600).contains(&doc.hub.config_refresh_secs) {
            return Err(ConfigError::new(
                "hub.config_refresh_secs",
                "must be between 1 and 3600",
            ));
        }
        if doc.retry.base_delay_ms == 0 || doc.retry.max_delay_secs == 0 {
            return Err(ConfigError::new("retry", "delays must be positive"));
        }

        let url_policy = crate::ssrf::UrlPolicy {
            allow_loopback: doc.hub.allow_loopback_urls,
        };
        let notifications = notification_settings(&doc.notifications)?;
        let mut partners = Vec::new();
        let mut seen_ids = BTreeSet::new();
        let mut seen_keys = BTreeSet::new();
        for (i, p) in doc.partners.into_iter().enumerate() {
            let key = |field: &str| format!("partners[{i}].{field}");
            if !id_ok(&p.id) {
                return Err(ConfigError::new(
                    key("id"),
                    "must be 1-64 letters, digits, - or _",
                ));
            }
            if !seen_ids.insert(p.id.clone()) {
                return Err(ConfigError::new(
                    key("id"),
                    format!("duplicate partner id `{}`", p.id),
                ));
            }
            if !id_ok(&p.key_id) || !seen_keys.insert(p.key_id.clone()) {
                return Err(ConfigError::new(
                    key("key_id"),
                    "must be unique and 1-64 letters, digits, - or _",
                ));
            }
            let secret_hash = SecretHash::parse(&p.secret_hash)
                .map_err(|problem| ConfigError::new(key("secret_hash"), problem))?;
            partners.push(Partner {
                verticals: verticals(&key("verticals"), &p.verticals)?,
                id: PartnerId::parse(&p.id)
                    .map_err(|problem| ConfigError::new(key("id"), problem))?,
                notifications: crate::notifications::Subscription::load(
                    &key,
                    p.callback_url.as_deref(),
                    p.webhook_secret.as_ref(),
                    p.events.as_deref(),
                    url_policy,
                    secrets,
                )?,
                key_id: p.key_id,
                secret_hash,
                enabled: p.enabled,
            });
        }

        let routing = crate::routing::vertical_routing(doc.routing)?;
        let screening = crate::screening::policy::load(doc.screening, secrets)?;
        if ssn_sealer.is_none() {
            if let Some(vertical) = Vertical::ALL
                .into_iter()
                .find(|v| screening.for_vertical(*v).leadsafe.is_some())
            {
                return Err(ConfigError::new(
                    "hub.ssn_key",
                    format!(
                        "screening.{vertical}.leadsafe needs the SSN kept sealed until LeadSafe has answered: set hub.ssn_key (an env: reference)"
                    ),
                ));
            }
        }

        let mut destinations = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, d) in doc.destinations.into_iter().enumerate() {
            let key = |field: &str| format!("destinations[{i}].{field}");
            if !id_ok(&d.id) {
                return Err(ConfigError::new(
                    key("id"),
                    "must be 1-64 letters, digits, - or _",
                ));
            }
            if !seen.insert(d.id.clone()) {
                return Err(ConfigError::new(
                    key("id"),
                    format!("duplicate destination id `{}`", d.id),
                ));
            }
            let url = reqwest::Url::parse(&d.url)
                .map_err(|e| ConfigError::new(key("url"), format!("not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https")
                || !url.username().is_empty()
                || url.password().is_some()
            {
                return Err(ConfigError::new(
                    key("url"),
                    "must be an http(s) URL without credentials in it (reference them as secrets)",
                ));
            }
            let signing_secret = d
                .signing_secret
                .as_deref()
                .map(|reference| resolve(&key("signing_secret"), reference, secrets))
                .transpose()?;
            let credentials = d
                .credentials
                .iter()
                .map(|(name, reference)| {
                    let secret = resolve(&key(&format!("credentials.{name}")), reference, secrets)?;
                    Ok((name.clone(), secret))
                })
                .collect::<Result<BTreeMap<String, Secret>, ConfigError>>()?;
            if !(100..=30_000).contains(&d.timeout_ms) {
                return Err(ConfigError::new(
                    key("timeout_ms"),
                    "must be between 100 and 30000",
                ));
            }
            if !(1..=20).contains(&d.max_attempts) {
                return Err(ConfigError::new(
                    key("max_attempts"),
                    "must be between 1 and 20",
                ));
            }
            let verticals = verticals(&key("verticals"), &d.verticals)?;
            let options: BTreeMap<&'static str, toml::Value> =
                d.lofty.map(|table| ("lofty", table)).into_iter().collect();
            let connector = rules.check(&ConnectorSection {
                index: i,
                kind: &d.kind,
                verticals: &verticals,
                signing_secret: signing_secret.as_ref(),
                credentials: &credentials,
                options: &options,
            })?;
            let routing = crate::routing::destination_routing(
                &key,
                &verticals,
                crate::routing::DestinationRoutingDoc {
                    priority: d.priority,
                    weight: d.weight,
                    price: d.price,
                    exclusive: d.exclusive,
                    accepts_amber: d.accepts_amber,
                    filters: d.filters,
                    schedule: d.schedule,
                    caps: d.caps,
                },
            )?;
            let returns = ReturnPolicy::check(&key, d.return_reasons, d.return_window_days)?;
            let response = d
                .response
                .as_ref()
                .map(|rules| crate::answer_rules::AnswerRules::load(&key("response"), rules))
                .transpose()?
                .unwrap_or_default();
            destinations.push(Destination {
                verticals,
                routing,
                returns,
                response,
                id: DestinationId::parse(&d.id)
                    .map_err(|problem| ConfigError::new(key("id"), problem))?,
                connector,
                url,
                signing_secret,
                credentials,
                timeout: Duration::from_millis(d.timeout_ms),
                max_attempts: d.max_attempts,
                enabled: d.enabled,
            });
        }

        Ok(Config {
            public_base_url,
            hasher: KeyedHasher::new(hash_key.expose().as_bytes()),
            callback_signer: KeyedHasher::new(callback_key.expose().as_bytes()),
            ssn_sealer,
            ssn_ttl: Duration::from_secs(u64::from(doc.hub.ssn_ttl_hours) * 3_600),
            lead_retention: Duration::from_secs(u64::from(doc.hub.lead_retention_days) * 86_400),
            idempotency_ttl: Duration::from_secs(u64::from(doc.hub.idempotency_ttl_hours) * 3_600),
            idempotency_in_flight: Duration::from_secs(u64::from(
                doc.hub.idempotency_in_flight_secs,
            )),
            config_refresh: Duration::from_secs(u64::from(doc.hub.config_refresh_secs)),
            url_policy,
            retry: RetryPolicy {
                base_delay: Duration::from_millis(doc.retry.base_delay_ms),
                max_delay: Duration::from_secs(doc.retry.max_delay_secs),
            },
            partners,
            notifications,
            destinations,
            routing,
            screening,
        })
    }

    /// The same configuration served from another base URL (`LEADHUB_PUBLIC_BASE_URL` on AWS, where the API's
    /// URL is only known once deployed).
    pub fn with_public_base_url(mut self, url: &str) -> Result<Self, ConfigError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| ConfigError::new("LEADHUB_PUBLIC_BASE_URL", format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "LEADHUB_PUBLIC_BASE_URL",
                "must be an http(s) URL",
            ));
        }
        self.public_base_url = url.trim_end_matches('/').to_owned();
        Ok(self)
    }

    pub fn partner(&self, id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.id == id)
    }

    pub fn partner_by_key_id(&self, key_id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.key_id == key_id)
    }

    pub fn destination(&self, id: &str) -> Option<&Destination<C>> {
        self.destinations.iter().find(|d| d.id == id)
    }

    /// Enabled destinations that take leads of `vertical`, in configuration order.
    pub fn destinations_for(&self, vertical: Vertical) -> impl Iterator<Item = &Destination<C>> {
        self.destinations
            .iter()
            .filter(move |d| d.enabled && d.verticals.contains(&vertical))
    }
}

impl<C: Send + Sync> crate::notifications::Subscribers for Config<C> {
    fn subscription(&self, partner_id: &str) -> Option<&crate::notifications::Subscription> {
        self.partner(partner_id)
            .map(|partner| &partner.notifications)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Rules for testing what `config` checks itself: any kind is taken, and the destination keeps its
    /// section as it was handed over. (The hub's own rules are tested in the connector modules.)
    struct AsHandedOver;

    #[derive(Debug, Clone)]
    struct Section {
        index: usize,
        kind: String,
        verticals: BTreeSet<Vertical>,
        signing_secret: Option<Secret>,
        credentials: BTreeMap<String, Secret>,
        options: BTreeMap<&'static str, toml::Value>,
    }

    impl ConnectorRules for AsHandedOver {
        type Connector = Section;

        fn check(&self, section: &ConnectorSection<'_>) -> Result<Section, ConfigError> {
            if section.kind == "refused" {
                return Err(ConfigError::new(section.key("credentials.x"), "refused"));
            }
            Ok(Section {
                index: section.index,
                kind: section.kind.to_owned(),
                verticals: section.verticals.clone(),
                signing_secret: section.signing_secret.cloned(),
                credentials: section.credentials.clone(),
                options: section.options.clone(),
            })
        }
    }

    fn load(document: &str, secrets: &dyn SecretSource) -> Result<Config<Section>, ConfigError> {
        Config::load(document, secrets, &AsHandedOver)
    }

    pub(crate) fn secrets() -> BTreeMap<String, String> {
        [
            ("HASH_KEY", "h".repeat(40)),
            ("CALLBACK_KEY", "c".repeat(40)),
            ("SSN_KEY", "s".repeat(40)),
            (
                "HOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    pub(crate) const VALID: &str = r#"
[hub]
public_base_url = "http://127.0.0.1:3000/"
hash_key = "env:HASH_KEY"
callback_key = "env:CALLBACK_KEY"

[[partners]]
id = "acme"
key_id = "pk_acme"
secret_hash = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
verticals = ["heloc"]

[[destinations]]
id = "lender"
kind = "webhook"
url = "https://buyer.example/leads"
signing_secret = "env:HOOK_SECRET"
verticals = ["heloc"]
"#;

    #[test]
    fn a_valid_document_loads_with_defaults() {
        let config = load(VALID, &secrets()).expect("valid");
        assert_eq!(config.public_base_url, "http://127.0.0.1:3000");
        assert_eq!(config.partners[0].verticals.len(), 1);
        let destination = config.destination("lender").expect("configured");
        assert_eq!(destination.max_attempts, 6);
        assert_eq!(destination.timeout, Duration::from_secs(5));
        assert_eq!(config.destinations_for(Vertical::Heloc).count(), 1);
        assert!(
            !format!("{config:?}").contains("whsec_"),
            "secrets must not show in Debug"
        );
        assert!(config.ssn_sealer.is_none(), "no SSN key, no sealing");
        assert_eq!(config.ssn_ttl, Duration::from_secs(24 * 3_600));
        assert!(
            !config.url_policy.allow_loopback,
            "partner URLs are public-only unless the document says otherwise"
        );
        let local = VALID.replace(
            "callback_key = \"env:CALLBACK_KEY\"\n",
            "callback_key = \"env:CALLBACK_KEY\"\nallow_loopback_urls = true\n",
        );
        let local = load(&local, &secrets()).expect("valid");
        assert!(local.url_policy.allow_loopback);
    }

    #[test]
    fn an_ssn_key_makes_a_sealer_and_its_ttl_is_checked() {
        let with_key = VALID.replace(
            "callback_key = \"env:CALLBACK_KEY\"\n",
            "callback_key = \"env:CALLBACK_KEY\"\nssn_key = \"env:SSN_KEY\"\nssn_ttl_hours = 2\n",
        );
        let config = load(&with_key, &secrets()).expect("valid");
        assert_eq!(config.ssn_ttl, Duration::from_secs(2 * 3_600));
        let sealer = config.ssn_sealer.as_ref().expect("a sealer");
        let sealed = sealer.seal("lead_x", "219099999");
        let opened = SsnSealer::new(&"s".repeat(40))
            .expect("key")
            .open("lead_x", &sealed)
            .expect("sealed under the configured key");
        assert_eq!(opened.expose(), "219099999");
        assert!(!format!("{config:?}").contains(&"s".repeat(40)));

        let cases: Vec<(String, &str)> = vec![
            (with_key.replace("env:SSN_KEY", "plaintext"), "hub.ssn_key"),
            (
                with_key.replace("env:SSN_KEY", "env:MISSING"),
                "hub.ssn_key",
            ),
            (
                with_key.replace("env:SSN_KEY", "env:HASH_KEY"),
                "hub.ssn_key",
            ),
            (
                with_key.replace("ssn_ttl_hours = 2", "ssn_ttl_hours = 0"),
                "hub.ssn_ttl_hours",
            ),
            (
                with_key.replace("ssn_ttl_hours = 2", "ssn_ttl_hours = 169"),
                "hub.ssn_ttl_hours",
            ),
        ];
        for (document, key) in cases {
            let error = load(&document, &secrets()).expect_err(key);
            assert_eq!(error.key, key, "{error}");
        }
        let mut short = secrets();
        short.insert("SSN_KEY".into(), "s".repeat(31));
        let error = load(&with_key, &short).expect_err("short");
        assert_eq!(error.key, "hub.ssn_key", "{error}");
        assert!(!error.to_string().contains(&"s".repeat(31)), "{error}");
        let week = with_key.replace("ssn_ttl_hours = 2", "ssn_ttl_hours = 168");
        assert!(load(&week, &secrets()).is_ok());
    }

    #[test]
    fn leadsafe_screening_needs_the_ssn_key() {
        let leadsafe = "\n[screening.leadsafe]\nenvironment = \"prod\"\nprovider = \"acme\"\napi_key = \"env:HASH_KEY\"\nclient_secret = \"env:CALLBACK_KEY\"\n[screening.mortgage]\nleadsafe = true\n";
        let error = load(&format!("{VALID}{leadsafe}"), &secrets()).expect_err("no ssn_key");
        assert_eq!(error.key, "hub.ssn_key", "{error}");
        assert!(
            error.problem.contains("screening.mortgage.leadsafe"),
            "{error}"
        );
        let with_key = VALID.replace(
            "callback_key = \"env:CALLBACK_KEY\"\n",
            "callback_key = \"env:CALLBACK_KEY\"\nssn_key = \"env:SSN_KEY\"\n",
        );
        let config = load(&format!("{with_key}{leadsafe}"), &secrets()).expect("valid");
        assert!(config.screening.uses_leadsafe());
        assert_eq!(
            config
                .screening
                .leadsafe
                .as_ref()
                .expect("leadsafe")
                .client
                .base_url()
                .as_str(),
            "https://acme.leadsafe.tech/"
        );
    }

    #[test]
    fn every_problem_names_its_key() {
        let cases: Vec<(String, &str)> = vec![
            (VALID.replace("env:HASH_KEY", "plaintext"), "hub.hash_key"),
            (VALID.replace("env:CALLBACK_KEY", "env:MISSING"), "hub.callback_key"),
            (VALID.replace("verticals = [\"heloc\"]\n\n[[dest", "verticals = [\"boats\"]\n\n[[dest"), "partners[0].verticals"),
            (VALID.replace("sha256:2bb8", "md5:2bb8"), "partners[0].secret_hash"),
            (VALID.replace("https://buyer.example/leads", "ftp://x"), "destinations[0].url"),
            (VALID.replace("https://buyer.example/leads", "https://user:pw@buyer.example/"), "destinations[0].url"),
            (VALID.replace("env:HOOK_SECRET", "env:MISSING"), "destinations[0].signing_secret"),
            (format!("{VALID}[destinations.credentials]\napi_key = \"plain\"\n"), "destinations[0].credentials.api_key"),
            (VALID.replace("kind = \"webhook\"", "kind = \"refused\""), "destinations[0].credentials.x"),
            (format!("{VALID}timeout_ms = 5\n"), "destinations[0].timeout_ms"),
            (format!("{VALID}\n[[destinations]]\nid = \"lender\"\nkind = \"webhook\"\nurl = \"https://b.example\"\nsigning_secret = \"env:HOOK_SECRET\"\nverticals = [\"heloc\"]\n"), "destinations[1].id"),
        ];
        for (document, key) in cases {
            let error = load(&document, &secrets()).expect_err(key);
            assert_eq!(error.key, key, "{error}");
        }
    }

    /// `VALID` with `keys` added to its partner.
    fn partner_with(keys: &str) -> String {
        VALID.replace(
            "verticals = [\"heloc\"]\n\n[[dest",
            &format!("verticals = [\"heloc\"]\n{keys}\n\n[[dest"),
        )
    }

    #[test]
    fn partner_notification_keys_load_and_name_their_problems() {
        let mut secrets = secrets();
        secrets.insert("NEW_HOOK".into(), format!("whsec_{}", "A".repeat(32)));
        secrets.insert("BAD_HOOK".into(), "not-a-whsec".into());
        let config = load(VALID, &secrets).expect("valid");
        let partner = &config.partners[0].notifications;
        assert!(partner.callback_url.is_none() && partner.secrets.is_empty());
        assert_eq!(partner.events.len(), 6, "default: every event");
        assert_eq!(config.notifications.schedule.attempts(), 8);

        let config = load(
            &partner_with(
                "callback_url = \"https://partner.example/hook\"\nwebhook_secret = [\"env:HOOK_SECRET\", \"env:NEW_HOOK\"]\nevents = [\"lead.confirmed\", \"lead.returned\"]",
            ),
            &secrets,
        )
        .expect("valid");
        let partner = &config.partners[0].notifications;
        assert_eq!(
            partner.callback_url.as_ref().map(|u| u.as_str()),
            Some("https://partner.example/hook")
        );
        assert_eq!(partner.secrets.len(), 2);
        assert_eq!(
            partner.events.iter().copied().collect::<Vec<_>>(),
            ["lead.confirmed", "lead.returned"]
        );

        let hook = "webhook_secret = \"env:HOOK_SECRET\"";
        let cases: Vec<(String, &str)> = vec![
            (
                partner_with(&format!("callback_url = \"http://127.0.0.1/x\"\n{hook}")),
                "partners[0].callback_url",
            ),
            (
                partner_with(&format!(
                    "callback_url = \"http://169.254.169.254/\"\n{hook}"
                )),
                "partners[0].callback_url",
            ),
            (
                partner_with(&format!(
                    "callback_url = \"ftp://partner.example/\"\n{hook}"
                )),
                "partners[0].callback_url",
            ),
            (
                partner_with("callback_url = \"https://partner.example/\""),
                "partners[0].webhook_secret",
            ),
            (
                partner_with("webhook_secret = \"whsec_inline\""),
                "partners[0].webhook_secret",
            ),
            (
                partner_with("webhook_secret = \"env:BAD_HOOK\""),
                "partners[0].webhook_secret",
            ),
            (
                partner_with("webhook_secret = [\"env:HOOK_SECRET\", \"env:MISSING\"]"),
                "partners[0].webhook_secret[1]",
            ),
            (
                partner_with(
                    "webhook_secret = [\"env:HOOK_SECRET\", \"env:NEW_HOOK\", \"env:HOOK_SECRET\"]",
                ),
                "partners[0].webhook_secret",
            ),
            (
                partner_with(&format!("{hook}\nevents = [\"lead.sold\"]")),
                "partners[0].events",
            ),
            (
                format!("{VALID}[notifications]\nretry_schedule = [\"5d\"]\n"),
                "notifications.retry_schedule",
            ),
            (
                format!("{VALID}[notifications]\ntimeout_ms = 1\n"),
                "notifications.timeout_ms",
            ),
            (
                format!("{VALID}[notifications]\nkeep_failed_days = 0\n"),
                "notifications.keep_failed_days",
            ),
        ];
        for (document, key) in cases {
            let error = load(&document, &secrets).expect_err(key);
            assert_eq!(error.key, key, "{error}");
            let text = error.to_string();
            assert!(
                !text.contains("MfKQ9r8") && !text.contains("not-a-whsec"),
                "{error}"
            );
        }

        // Loopback is allowed only where the hub says so.
        let local = partner_with(&format!("callback_url = \"http://127.0.0.1:9/x\"\n{hook}"))
            .replace(
                "callback_key = \"env:CALLBACK_KEY\"\n",
                "callback_key = \"env:CALLBACK_KEY\"\nallow_loopback_urls = true\n",
            );
        assert!(load(&local, &secrets).is_ok());
    }

    #[test]
    fn return_keys_are_checked_and_name_their_key() {
        let config = load(VALID, &secrets()).expect("valid");
        let returns = &config.destinations[0].returns;
        assert_eq!(returns, &ReturnPolicy::default());
        assert_eq!(returns.window_days, 7);
        assert_eq!(
            returns.reason(Some(" bad phone ")),
            Some("bad phone".into())
        );
        assert_eq!(returns.reason(Some("  ")), None);
        assert_eq!(returns.reason(None), None);

        let listed = format!(
            "{VALID}return_reasons = [\"Bad phone\", \"Duplicate \"]\nreturn_window_days = 14\n"
        );
        let config = load(&listed, &secrets()).expect("valid");
        let returns = &config.destinations[0].returns;
        assert_eq!(
            returns.reasons.as_deref(),
            Some(&["Bad phone".to_owned(), "Duplicate".to_owned()][..])
        );
        assert_eq!(returns.window_days, 14);
        assert_eq!(returns.reason(Some("bad PHONE")), Some("Bad phone".into()));
        assert_eq!(returns.reason(Some("duplicate")), Some("Duplicate".into()));
        assert_eq!(returns.reason(Some("no answer")), None);

        for (line, problem) in [
            ("return_reasons = []", "at least one reason"),
            ("return_reasons = [\"a\", \" A \"]", "listed twice"),
            ("return_reasons = [\" \"]", "1 to 100 characters"),
            ("return_reasons = \"bad phone\"", "must be a list"),
            ("return_reasons = [1]", "must be a list"),
            ("return_window_days = \"7\"", "from 1 to 365"),
            ("return_window_days = 0", "from 1 to 365"),
            ("return_window_days = 366", "from 1 to 365"),
            ("return_window_days = -1", "from 1 to 365"),
        ] {
            let error = load(&format!("{VALID}{line}\n"), &secrets()).expect_err(line);
            assert!(error.problem.contains(problem), "{line}: {error}");
            let key = line.split(' ').next().unwrap_or_default();
            assert_eq!(error.key, format!("destinations[0].{key}"), "{line}");
        }
    }

    #[test]
    fn unknown_keys_and_short_secrets_are_refused() {
        let typo = VALID.replace("hash_key =", "hash_kee =");
        let error = load(&typo, &secrets()).expect_err("typo");
        assert!(error.problem.contains("hash_kee"), "{error}");
        let mut short = secrets();
        short.insert("HASH_KEY".into(), "short".into());
        assert_eq!(load(VALID, &short).expect_err("short").key, "hub.hash_key");
    }

    #[test]
    fn a_destinations_buyer_api_part_is_handed_over_resolved_and_unread() {
        let document = format!(
            "{VALID}lofty = {{ source = \"x\", unknown = 1 }}\n[destinations.credentials]\ntoken = \"env:HOOK_SECRET\"\n"
        )
        .replace("kind = \"webhook\"", "kind = \"any-kind\"");
        let config = load(&document, &secrets()).expect("config checks only what is common");
        let section = &config.destinations[0].connector;
        assert_eq!((section.index, section.kind.as_str()), (0, "any-kind"));
        assert_eq!(section.verticals, BTreeSet::from([Vertical::Heloc]));
        let secret = secrets()["HOOK_SECRET"].clone();
        assert_eq!(section.signing_secret, Some(Secret::new(secret.clone())));
        assert_eq!(section.credentials.get("token"), Some(&Secret::new(secret)));
        let lofty = section
            .options
            .get("lofty")
            .expect("the table is handed over");
        assert_eq!(
            lofty.get("unknown").and_then(toml::Value::as_integer),
            Some(1)
        );
        assert_eq!(config.destinations[0].credentials, section.credentials);
    }
}
