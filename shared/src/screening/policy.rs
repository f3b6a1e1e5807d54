//! `[screening]`: what validate checks before a lead may be sold, per vertical, and how LeadSafe is reached.
//!
//! ```toml
//! [screening.leadsafe]                  # needed when a vertical sets leadsafe = true
//! environment = "dev"                   # "dev" | "prod": https://<provider>.leadsafe-dev.tech | .leadsafe.tech
//! provider = "acme"                     # the name LeadSafe's account manager gives
//! # base_url = "http://127.0.0.1:9400"  # instead of provider: a sandbox
//! api_key = "env:LEADSAFE_API_KEY"
//! client_secret = "env:LEADSAFE_CLIENT_SECRET"
//! client_code = "acme"                  # the ClientCode of `leadhub-admin leadsafe export`
//! timeout_ms = 5000                     # one search, whole exchange (100 to 10000)
//! report_retention_days = 30            # 1..=365: how long a reported status's sealed SSN is kept
//!
//! [screening.mortgage]
//! leadsafe = true                       # ask LeadSafe when the lead carries an SSN (default false)
//! detailed = true                       # search-detailed: Red and Amber come with their reasons
//! amber = "amber_buyers"                # "reject" | "amber_buyers" (default) | "pass"
//! on_error = "retry"                    # "retry" (default) | "fail_open"
//! suppression = true                    # check the suppression list (default true)
//!
//! [screening.mortgage.duplicates]       # no duplicate check unless given (heloc: always, see below)
//! fields = ["email", "phone"]           # a match on any listed field is a duplicate (default both)
//! window_days = 30                      # default 30; 0 = forever
//! scope = "all"                         # "all" (default) | "partner": only the same partner's leads count
//! ```
//!
//! HELOC leads always have a duplicate check, seed 001's "must not already exist in the system": by default
//! `fields = ["email"]`, `window_days = 0`; a `[screening.heloc.duplicates]` table may add `phone`, set a
//! window or a scope, but its fields must include `email`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::{resolve, ConfigError, SecretSource};
use crate::connectors::leadsafe::{LeadSafeClient, LeadSafeEnvironment};
use crate::vertical::Vertical;

/// A contact field duplicates and suppression entries are matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContactField {
    Email,
    Phone,
}

impl ContactField {
    pub const ALL: [ContactField; 2] = [ContactField::Email, ContactField::Phone];

    pub fn as_str(self) -> &'static str {
        match self {
            ContactField::Email => "email",
            ContactField::Phone => "phone",
        }
    }
}

impl std::fmt::Display for ContactField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which earlier leads a duplicate is looked for among.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every partner's.
    All,
    /// Only the same partner's: two partners may each sell the same consumer once.
    Partner,
}

/// `[screening.<vertical>.duplicates]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicates {
    pub fields: Vec<ContactField>,
    /// 0: for ever.
    pub window_days: u32,
    pub scope: Scope,
}

/// The most `window_days` may be (ten years): past that, use 0 (for ever).
pub const MAX_WINDOW_DAYS: u32 = 3650;

impl Duplicates {
    /// Seed 001: a HELOC lead's email must not already exist in the system.
    pub fn heloc_default() -> Self {
        Duplicates {
            fields: vec![ContactField::Email],
            window_days: 0,
            scope: Scope::All,
        }
    }

    /// The rule in a partner's words: "email or phone, within 30 days" / "email, ever".
    pub fn describe(&self) -> String {
        let fields: Vec<&str> = self.fields.iter().map(|f| f.as_str()).collect();
        let window = match self.window_days {
            0 => "at any time".to_owned(),
            1 => "within 1 day".to_owned(),
            days => format!("within {days} days"),
        };
        let scope = match self.scope {
            Scope::All => "",
            Scope::Partner => " from the same partner",
        };
        format!("same {} {window}{scope}", fields.join(" or "))
    }
}

/// What to do with a lead LeadSafe rates Amber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmberPolicy {
    Reject,
    /// Offered only to destinations with `accepts_amber = true`.
    AmberBuyers,
    Pass,
}

/// What to do when LeadSafe cannot be asked (down, slow, 5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// The lead stays `received` and is screened again later, with backoff.
    Retry,
    /// The lead passes without LeadSafe's check; the timeline says so.
    FailOpen,
}

/// A vertical's LeadSafe settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadSafePolicy {
    pub detailed: bool,
    pub amber: AmberPolicy,
    pub on_error: OnError,
}

/// `[screening.<vertical>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerticalScreening {
    pub duplicates: Option<Duplicates>,
    pub suppression: bool,
    pub leadsafe: Option<LeadSafePolicy>,
}

impl VerticalScreening {
    /// What a vertical gets when the configuration says nothing of it.
    pub fn default_for(vertical: Vertical) -> Self {
        VerticalScreening {
            duplicates: (vertical == Vertical::Heloc).then(Duplicates::heloc_default),
            suppression: true,
            leadsafe: None,
        }
    }
}

/// `[screening.leadsafe]`, resolved.
#[derive(Debug, Clone)]
pub struct LeadSafeSettings {
    pub client: LeadSafeClient,
    pub environment: LeadSafeEnvironment,
    /// The `ClientCode` column of the SFTP export.
    pub client_code: Option<String>,
    pub timeout: Duration,
    /// How long a consumer status reported back to LeadSafe ([`crate::leadsafe_reports`]) is kept, its SSN
    /// sealed, so that its `add` can be retried and it can be exported: `report_retention_days`.
    pub report_retention: Duration,
}

/// `report_retention_days` when none is given.
pub const DEFAULT_REPORT_RETENTION_DAYS: u32 = 30;
/// The most `report_retention_days` may be.
pub const MAX_REPORT_RETENTION_DAYS: u32 = 365;

/// Every vertical's screening, and LeadSafe's connection.
#[derive(Debug, Clone)]
pub struct ScreeningConfig {
    pub leadsafe: Option<LeadSafeSettings>,
    verticals: BTreeMap<Vertical, VerticalScreening>,
}

impl Default for ScreeningConfig {
    fn default() -> Self {
        ScreeningConfig {
            leadsafe: None,
            verticals: Vertical::ALL
                .into_iter()
                .map(|v| (v, VerticalScreening::default_for(v)))
                .collect(),
        }
    }
}

impl ScreeningConfig {
    pub fn for_vertical(&self, vertical: Vertical) -> VerticalScreening {
        self.verticals
            .get(&vertical)
            .cloned()
            .unwrap_or_else(|| VerticalScreening::default_for(vertical))
    }

    /// Whether any vertical asks LeadSafe (then ingest must keep the SSN sealed).
    pub fn uses_leadsafe(&self) -> bool {
        self.verticals.values().any(|v| v.leadsafe.is_some())
    }
}

// ---- the document as written -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeadSafeDoc {
    environment: String,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    api_key: String,
    client_secret: String,
    #[serde(default)]
    client_code: Option<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_report_retention_days")]
    report_retention_days: u32,
}

fn default_timeout_ms() -> u64 {
    5000
}

fn default_report_retention_days() -> u32 {
    DEFAULT_REPORT_RETENTION_DAYS
}

/// The longest LeadSafe `timeout_ms`: well inside validate's 30 s Lambda timeout, which a batch's
/// searches share.
pub const MAX_LEADSAFE_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerticalDoc {
    #[serde(default)]
    leadsafe: bool,
    #[serde(default)]
    detailed: Option<bool>,
    #[serde(default)]
    amber: Option<String>,
    #[serde(default)]
    on_error: Option<String>,
    #[serde(default = "yes")]
    suppression: bool,
    #[serde(default)]
    duplicates: Option<DuplicatesDoc>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DuplicatesDoc {
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default)]
    window_days: Option<u32>,
    #[serde(default)]
    scope: Option<String>,
}

fn deserialize<T: serde::de::DeserializeOwned>(
    key: &str,
    value: toml::Value,
) -> Result<T, ConfigError> {
    value
        .try_into()
        .map_err(|error: toml::de::Error| ConfigError::new(key, error.message().to_owned()))
}

fn one_of<T: Copy>(key: &str, value: &str, choices: &[(&str, T)]) -> Result<T, ConfigError> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            ConfigError::new(key, format!("must be one of {}", names.join(", ")))
        })
}

/// Check the `[screening]` table (absent: every vertical's defaults).
pub(crate) fn load(
    doc: BTreeMap<String, toml::Value>,
    secrets: &dyn SecretSource,
) -> Result<ScreeningConfig, ConfigError> {
    let mut config = ScreeningConfig::default();
    for (name, value) in doc {
        if name == "leadsafe" {
            config.leadsafe = Some(leadsafe(
                deserialize("screening.leadsafe", value)?,
                secrets,
            )?);
            continue;
        }
        let key = format!("screening.{name}");
        let vertical: Vertical = name.parse().map_err(|_| {
            let known: Vec<&str> = Vertical::ALL.iter().map(|v| v.as_str()).collect();
            ConfigError::new(
                &key,
                format!(
                    "unknown vertical `{name}` (known: {}; or `leadsafe`)",
                    known.join(", ")
                ),
            )
        })?;
        let doc: VerticalDoc = deserialize(&key, value)?;
        config
            .verticals
            .insert(vertical, vertical_screening(&key, vertical, doc)?);
    }
    if config.leadsafe.is_none() {
        if let Some((vertical, _)) = config.verticals.iter().find(|(_, v)| v.leadsafe.is_some()) {
            return Err(ConfigError::new(
                format!("screening.{vertical}.leadsafe"),
                "LeadSafe screening needs a [screening.leadsafe] table (environment, provider, credentials)",
            ));
        }
    }
    Ok(config)
}

fn vertical_screening(
    key: &str,
    vertical: Vertical,
    doc: VerticalDoc,
) -> Result<VerticalScreening, ConfigError> {
    let leadsafe = if doc.leadsafe {
        if vertical.ssn_pointers().is_empty() {
            return Err(ConfigError::new(
                format!("{key}.leadsafe"),
                format!("{vertical} leads carry no SSN, which LeadSafe screens by"),
            ));
        }
        Some(LeadSafePolicy {
            detailed: doc.detailed.unwrap_or(false),
            amber: match &doc.amber {
                None => AmberPolicy::AmberBuyers,
                Some(value) => one_of(
                    &format!("{key}.amber"),
                    value,
                    &[
                        ("reject", AmberPolicy::Reject),
                        ("amber_buyers", AmberPolicy::AmberBuyers),
                        ("pass", AmberPolicy::Pass),
                    ],
                )?,
            },
            on_error: match &doc.on_error {
                None => OnError::Retry,
                Some(value) => one_of(
                    &format!("{key}.on_error"),
                    value,
                    &[("retry", OnError::Retry), ("fail_open", OnError::FailOpen)],
                )?,
            },
        })
    } else {
        for (field, given) in [
            ("detailed", doc.detailed.is_some()),
            ("amber", doc.amber.is_some()),
            ("on_error", doc.on_error.is_some()),
        ] {
            if given {
                return Err(ConfigError::new(
                    format!("{key}.{field}"),
                    "only applies with leadsafe = true",
                ));
            }
        }
        None
    };
    let duplicates = match doc.duplicates {
        None => VerticalScreening::default_for(vertical).duplicates,
        Some(d) => Some(duplicates(&format!("{key}.duplicates"), vertical, d)?),
    };
    Ok(VerticalScreening {
        duplicates,
        suppression: doc.suppression,
        leadsafe,
    })
}

fn duplicates(
    key: &str,
    vertical: Vertical,
    doc: DuplicatesDoc,
) -> Result<Duplicates, ConfigError> {
    let fields = match doc.fields {
        None if vertical == Vertical::Heloc => vec![ContactField::Email],
        None => ContactField::ALL.to_vec(),
        Some(names) => {
            if names.is_empty() {
                return Err(ConfigError::new(
                    format!("{key}.fields"),
                    "must name at least one of \"email\", \"phone\" (leave the table out for no duplicate check)",
                ));
            }
            let mut fields = Vec::new();
            for name in &names {
                let field = one_of(
                    &format!("{key}.fields"),
                    name,
                    &[
                        ("email", ContactField::Email),
                        ("phone", ContactField::Phone),
                    ],
                )?;
                if !fields.contains(&field) {
                    fields.push(field);
                }
            }
            fields
        }
    };
    if vertical == Vertical::Heloc && !fields.contains(&ContactField::Email) {
        return Err(ConfigError::new(
            format!("{key}.fields"),
            "must include \"email\": seed 001 says a HELOC lead's email must not already exist in the system",
        ));
    }
    let window_days = doc
        .window_days
        .unwrap_or(if vertical == Vertical::Heloc { 0 } else { 30 });
    if window_days > MAX_WINDOW_DAYS {
        return Err(ConfigError::new(
            format!("{key}.window_days"),
            format!("must be at most {MAX_WINDOW_DAYS} (0 means for ever)"),
        ));
    }
    let scope = match &doc.scope {
        None => Scope::All,
        Some(value) => one_of(
            &format!("{key}.scope"),
            value,
            &[("all", Scope::All), ("partner", Scope::Partner)],
        )?,
    };
    Ok(Duplicates {
        fields,
        window_days,
        scope,
    })
}

fn leadsafe(doc: LeadSafeDoc, secrets: &dyn SecretSource) -> Result<LeadSafeSettings, ConfigError> {
    let key = |field: &str| format!("screening.leadsafe.{field}");
    let environment = one_of(
        &key("environment"),
        &doc.environment,
        &[
            ("dev", LeadSafeEnvironment::Development),
            ("prod", LeadSafeEnvironment::Production),
        ],
    )?;
    let api_key = resolve(&key("api_key"), &doc.api_key, secrets)?;
    let client_secret = resolve(&key("client_secret"), &doc.client_secret, secrets)?;
    let client = match (&doc.provider, &doc.base_url) {
        (Some(provider), None) => {
            LeadSafeClient::for_provider(provider, environment, api_key, client_secret)
                .map_err(|e| ConfigError::new(key("provider"), e.to_string()))?
        }
        (None, Some(url)) => {
            let url = reqwest::Url::parse(url)
                .map_err(|e| ConfigError::new(key("base_url"), format!("not a URL: {e}")))?;
            LeadSafeClient::with_base_url(url, api_key, client_secret)
                .map_err(|e| ConfigError::new(key("base_url"), e.to_string()))?
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                key("base_url"),
                "give either provider (LeadSafe's own URL) or base_url (a sandbox), not both",
            ))
        }
        (None, None) => return Err(ConfigError::new(
            key("provider"),
            "is required: the name LeadSafe's account manager gives (or base_url for a sandbox)",
        )),
    };
    if !(100..=MAX_LEADSAFE_TIMEOUT_MS).contains(&doc.timeout_ms) {
        return Err(ConfigError::new(
            key("timeout_ms"),
            format!("must be between 100 and {MAX_LEADSAFE_TIMEOUT_MS}"),
        ));
    }
    if !(1..=MAX_REPORT_RETENTION_DAYS).contains(&doc.report_retention_days) {
        return Err(ConfigError::new(
            key("report_retention_days"),
            format!("must be between 1 and {MAX_REPORT_RETENTION_DAYS}"),
        ));
    }
    if let Some(code) = &doc.client_code {
        if code.is_empty()
            || code.trim() != code
            || code.chars().any(|c| c == ',' || c == '"' || c.is_control())
        {
            return Err(ConfigError::new(
                key("client_code"),
                "must be non-empty, without surrounding spaces, commas, quotes or control characters",
            ));
        }
    }
    Ok(LeadSafeSettings {
        client,
        environment,
        client_code: doc.client_code,
        timeout: Duration::from_millis(doc.timeout_ms),
        report_retention: Duration::from_secs(u64::from(doc.report_retention_days) * 86_400),
    })
}
