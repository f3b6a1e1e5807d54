//! Typed configuration: one TOML document, loaded and checked once at cold start.
//!
//! Secrets are referenced, never inlined: `env:NAME` reads an environment variable. Partner secrets are
//! stored only as `sha256:<hex>` hashes. Every problem names the key it is about.
//!
//! A destination's buyer API (`kind`) decides its credentials and verticals: `webhook` signs with
//! `signing_secret` and takes any vertical; the others take a `[destinations.credentials]` table of name ->
//! `env:NAME` — `sonar`: `client_secret` (mortgage, heloc); `ntherm`: `username`, `password` (solar);
//! `heloc-lender`: optional `api_key` (heloc). See [`ConnectorKind::credentials`] and
//! [`ConnectorKind::verticals`].
//!
//! Routing keys (`[routing.<vertical>]`, and a destination's `priority`, `weight`, `price`, `exclusive`,
//! `filters`, `schedule`, `caps`) are read here and checked by [`crate::routing`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use crate::crypto::{KeyedHasher, SecretHash};
use crate::delivery::RetryPolicy;
use crate::verticals::Vertical;

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

fn resolve(key: &str, reference: &str, secrets: &dyn SecretSource) -> Result<Secret, ConfigError> {
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubDoc {
    public_base_url: String,
    hash_key: String,
    callback_key: String,
    #[serde(default = "default_retention_days")]
    lead_retention_days: u32,
    #[serde(default = "default_idempotency_hours")]
    idempotency_ttl_hours: u32,
    #[serde(default = "default_in_flight_secs")]
    idempotency_in_flight_secs: u32,
    #[serde(default = "default_config_refresh_secs")]
    config_refresh_secs: u32,
}

fn default_config_refresh_secs() -> u32 {
    60
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
    /// `[destinations.lofty]`: settings of a `lofty` destination.
    #[serde(default)]
    lofty: Option<crate::connectors::lofty::LoftyOptions>,
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
    filters: Option<crate::routing::FiltersDoc>,
    #[serde(default)]
    schedule: Option<crate::routing::ScheduleDoc>,
    #[serde(default)]
    caps: Option<crate::routing::CapsDoc>,
}

fn default_timeout_ms() -> u64 {
    5_000
}
fn default_max_attempts() -> u32 {
    6
}

/// Resolve a destination's `[destinations.credentials]` and check them against what its kind needs: every
/// required name present, no name the kind does not know (a typo must not silently drop a credential), and
/// every value usable in an HTTP header. Problems name `destinations[i].credentials.<name>`; values are
/// never repeated.
fn destination_credentials(
    key: &dyn Fn(&str) -> String,
    kind: ConnectorKind,
    references: &BTreeMap<String, String>,
    secrets: &dyn SecretSource,
) -> Result<BTreeMap<String, Secret>, ConfigError> {
    let (required, optional) = kind.credentials();
    let credential_key = |name: &str| key(&format!("credentials.{name}"));
    for name in references.keys() {
        if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
            let known: Vec<&str> = required.iter().chain(optional).copied().collect();
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
    }
    if let Some(missing) = required
        .iter()
        .find(|name| !references.contains_key(**name))
    {
        return Err(ConfigError::new(
            credential_key(missing),
            format!("a {kind} destination needs this credential (`env:NAME`)"),
        ));
    }
    let mut resolved = BTreeMap::new();
    for (name, reference) in references {
        let secret = resolve(&credential_key(name), reference, secrets)?;
        let value = secret.expose();
        let header_safe = value.trim() == value
            && http::HeaderValue::from_str(value).is_ok()
            && !value.is_empty();
        if !header_safe {
            return Err(ConfigError::new(
                credential_key(name),
                "the secret must be printable ASCII without leading or trailing spaces (it is sent in a header)",
            ));
        }
        if kind == ConnectorKind::Ntherm && name == "username" && value.contains(':') {
            return Err(ConfigError::new(
                credential_key(name),
                "a Basic-auth user name cannot contain `:`",
            ));
        }
        resolved.insert(name.clone(), secret);
    }
    Ok(resolved)
}

// ---- the checked configuration -----------------------------------------------------------------------

/// A partner (lead seller).
#[derive(Debug, Clone)]
pub struct Partner {
    pub id: String,
    pub key_id: String,
    pub secret_hash: SecretHash,
    pub verticals: BTreeSet<Vertical>,
    pub enabled: bool,
}

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

    /// The verticals this buyer API can carry; `None`: any.
    pub fn verticals(self) -> Option<&'static [Vertical]> {
        match self {
            ConnectorKind::Webhook | ConnectorKind::Lofty => None,
            ConnectorKind::Sonar => Some(&[Vertical::Mortgage, Vertical::Heloc]),
            ConnectorKind::Ntherm => Some(&[Vertical::Solar]),
            ConnectorKind::HelocLender => Some(&[Vertical::Heloc]),
        }
    }

    /// The credentials (`[destinations.credentials]` names) this kind needs, and those it may take.
    pub fn credentials(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            // A webhook signs with `signing_secret` instead.
            ConnectorKind::Webhook => (&[], &[]),
            ConnectorKind::Sonar => (&["client_secret"], &[]),
            ConnectorKind::Ntherm => (&["username", "password"], &[]),
            ConnectorKind::HelocLender => (&[], &["api_key"]),
            ConnectorKind::Lofty => (&["access_token"], &["vendor_key"]),
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

/// A buyer endpoint leads are delivered to.
#[derive(Debug, Clone)]
pub struct Destination {
    pub id: String,
    pub kind: ConnectorKind,
    pub url: reqwest::Url,
    pub verticals: BTreeSet<Vertical>,
    pub signing_secret: Option<Secret>,
    /// The buyer API's credentials by name (`client_secret`, `username`, `password`, `api_key`), resolved;
    /// which names a kind needs is [`ConnectorKind::credentials`].
    pub credentials: BTreeMap<String, Secret>,
    /// Settings of a `lofty` destination (defaults when not given).
    pub lofty: Option<crate::connectors::lofty::LoftyOptions>,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub enabled: bool,
    /// Priority, weight, price, exclusivity, filters, schedule and caps.
    pub routing: crate::routing::DestinationRouting,
}

impl Destination {
    /// A resolved credential by name.
    pub fn credential(&self, name: &str) -> Option<&Secret> {
        self.credentials.get(name)
    }
}

/// The hub's configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the partner API and callbacks are served, without a trailing slash.
    pub public_base_url: String,
    /// Keyed hashing of PII for duplicate and suppression keys.
    pub hasher: KeyedHasher,
    /// Signs and verifies buyer callback tokens.
    pub callback_signer: KeyedHasher,
    pub lead_retention: Duration,
    pub idempotency_ttl: Duration,
    pub idempotency_in_flight: Duration,
    /// How often warm functions re-read the table's stored configuration at most
    /// (`hub.config_refresh_secs`, default 60; see [`crate::live_config`]).
    pub config_refresh: Duration,
    pub retry: RetryPolicy,
    pub partners: Vec<Partner>,
    pub destinations: Vec<Destination>,
    /// Every vertical's routing settings (defaults for those not configured).
    pub routing: BTreeMap<Vertical, crate::routing::VerticalRouting>,
}

const MIN_KEY_BYTES: usize = 32;

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
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

impl Config {
    /// Parse and check a TOML document, resolving secret references through `secrets`.
    pub fn from_toml(document: &str, secrets: &dyn SecretSource) -> Result<Config, ConfigError> {
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
                id: p.id,
                key_id: p.key_id,
                secret_hash,
                enabled: p.enabled,
            });
        }

        let routing = crate::routing::vertical_routing(doc.routing)?;

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
            let kind: ConnectorKind = d
                .kind
                .parse()
                .map_err(|problem: String| ConfigError::new(key("kind"), problem))?;
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
            if kind != ConnectorKind::Webhook && signing_secret.is_some() {
                return Err(ConfigError::new(
                    key("signing_secret"),
                    format!(
                        "only webhook destinations sign their requests; a {kind} destination takes \
                         [destinations.credentials] instead"
                    ),
                ));
            }
            let credentials = destination_credentials(&key, kind, &d.credentials, secrets)?;
            if kind == ConnectorKind::Webhook {
                match &signing_secret {
                    None => {
                        return Err(ConfigError::new(
                            key("signing_secret"),
                            "a webhook destination needs a signing secret (`env:NAME` holding whsec_...)",
                        ))
                    }
                    Some(secret) => crate::webhooks::WebhookSecret::parse(secret.expose())
                        .map(|_| ())
                        .map_err(|problem| ConfigError::new(key("signing_secret"), problem))?,
                }
            }
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
            if let Some(fit) = kind.verticals() {
                if let Some(misfit) = verticals.iter().find(|v| !fit.contains(v)) {
                    let takes: Vec<&str> = fit.iter().map(|v| v.as_str()).collect();
                    return Err(ConfigError::new(
                        key("verticals"),
                        format!(
                            "a {kind} destination takes only {} leads, not {misfit}",
                            takes.join(" or ")
                        ),
                    ));
                }
            }
            if let Some(options) = &d.lofty {
                if kind != ConnectorKind::Lofty {
                    return Err(ConfigError::new(
                        key("lofty"),
                        "only a lofty destination takes these settings",
                    ));
                }
                options
                    .check()
                    .map_err(|problem| ConfigError::new(key("lofty"), problem))?;
            }
            let routing = crate::routing::destination_routing(
                &key,
                &verticals,
                crate::routing::DestinationRoutingDoc {
                    priority: d.priority,
                    weight: d.weight,
                    price: d.price,
                    exclusive: d.exclusive,
                    filters: d.filters,
                    schedule: d.schedule,
                    caps: d.caps,
                },
            )?;
            destinations.push(Destination {
                verticals,
                routing,
                id: d.id,
                kind,
                url,
                signing_secret,
                credentials,
                lofty: d.lofty,
                timeout: Duration::from_millis(d.timeout_ms),
                max_attempts: d.max_attempts,
                enabled: d.enabled,
            });
        }

        Ok(Config {
            public_base_url,
            hasher: KeyedHasher::new(hash_key.expose().as_bytes()),
            callback_signer: KeyedHasher::new(callback_key.expose().as_bytes()),
            lead_retention: Duration::from_secs(u64::from(doc.hub.lead_retention_days) * 86_400),
            idempotency_ttl: Duration::from_secs(u64::from(doc.hub.idempotency_ttl_hours) * 3_600),
            idempotency_in_flight: Duration::from_secs(u64::from(
                doc.hub.idempotency_in_flight_secs,
            )),
            config_refresh: Duration::from_secs(u64::from(doc.hub.config_refresh_secs)),
            retry: RetryPolicy {
                base_delay: Duration::from_millis(doc.retry.base_delay_ms),
                max_delay: Duration::from_secs(doc.retry.max_delay_secs),
            },
            partners,
            destinations,
            routing,
        })
    }

    /// The same configuration served from another base URL (`LEADHUB_PUBLIC_BASE_URL` on AWS, where the API's
    /// URL is only known once deployed).
    pub fn with_public_base_url(mut self, url: &str) -> Result<Config, ConfigError> {
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

    pub fn partner_by_key_id(&self, key_id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.key_id == key_id)
    }

    pub fn destination(&self, id: &str) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.id == id)
    }

    /// Enabled destinations that take leads of `vertical`, in configuration order.
    pub fn destinations_for(&self, vertical: Vertical) -> impl Iterator<Item = &Destination> {
        self.destinations
            .iter()
            .filter(move |d| d.enabled && d.verticals.contains(&vertical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> BTreeMap<String, String> {
        [
            ("HASH_KEY", "h".repeat(40)),
            ("CALLBACK_KEY", "c".repeat(40)),
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
        let config = Config::from_toml(VALID, &secrets()).expect("valid");
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
    }

    #[test]
    fn every_problem_names_its_key() {
        let cases: Vec<(String, &str)> = vec![
            (VALID.replace("env:HASH_KEY", "plaintext"), "hub.hash_key"),
            (VALID.replace("env:CALLBACK_KEY", "env:MISSING"), "hub.callback_key"),
            (VALID.replace("verticals = [\"heloc\"]\n\n[[dest", "verticals = [\"boats\"]\n\n[[dest"), "partners[0].verticals"),
            (VALID.replace("sha256:2bb8", "md5:2bb8"), "partners[0].secret_hash"),
            (VALID.replace("kind = \"webhook\"", "kind = \"fax\""), "destinations[0].kind"),
            (VALID.replace("https://buyer.example/leads", "ftp://x"), "destinations[0].url"),
            (VALID.replace("https://buyer.example/leads", "https://user:pw@buyer.example/"), "destinations[0].url"),
            (VALID.replace("signing_secret = \"env:HOOK_SECRET\"\n", ""), "destinations[0].signing_secret"),
            (format!("{VALID}timeout_ms = 5\n"), "destinations[0].timeout_ms"),
            (format!("{VALID}\n[[destinations]]\nid = \"lender\"\nkind = \"webhook\"\nurl = \"https://b.example\"\nsigning_secret = \"env:HOOK_SECRET\"\nverticals = [\"heloc\"]\n"), "destinations[1].id"),
        ];
        for (document, key) in cases {
            let error = Config::from_toml(&document, &secrets()).expect_err(key);
            assert_eq!(error.key, key, "{error}");
        }
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
        let config = Config::from_toml(&with_buyers(), &buyer_secrets()).expect("valid");
        let kinds: Vec<ConnectorKind> = config.destinations.iter().map(|d| d.kind).collect();
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
            let error = Config::from_toml(&document, &buyer_secrets()).expect_err(key);
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
            let error = Config::from_toml(&with_buyers(), &secrets).expect_err(key);
            assert_eq!(error.key, key, "{error}");
            assert!(!error.to_string().contains(value), "{error}");
        }
    }

    #[test]
    fn unknown_keys_and_short_secrets_are_refused() {
        let typo = VALID.replace("hash_key =", "hash_kee =");
        let error = Config::from_toml(&typo, &secrets()).expect_err("typo");
        assert!(error.problem.contains("hash_kee"), "{error}");
        let mut short = secrets();
        short.insert("HASH_KEY".into(), "short".into());
        assert_eq!(
            Config::from_toml(VALID, &short).expect_err("short").key,
            "hub.hash_key"
        );
    }
}
