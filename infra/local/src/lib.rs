//! The whole pipeline in one process: ingest and callback behind one HTTP server, validate and dispatch
//! fed by queue pollers, sandbox buyers on loopback, a demo configuration.
//!
//! The handlers are the very ones the Lambda binaries run. The backend is the embedded store and queues
//! ([`Backend::Memory`], the default) or DynamoDB and SQS through the AWS SDK ([`Backend::Aws`], e.g. moto).
//!
//! What the memory backend keeps is bounded for long runs: the store drops what DynamoDB's TTL would
//! (see [`leadhub::store::memory`]), [`Options::lead_ttl`] keeps leads and what they bring along no longer
//! than it says, every sandbox's logs keep their newest [`Options::sandbox_log_capacity`] entries, and the
//! queues keep no message once it is deleted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use callback::Callback;
use dispatch::Dispatch;
use http::StatusCode;
use ingest::Ingest;
use leadhub::crypto::SecretHash;
use leadhub::http::{Problem, MAX_BODY_BYTES};
use leadhub::live_config::LiveConfig;
use leadhub::queue::memory::MemoryQueue;
use leadhub::queue::JobQueue;
use leadhub::settings::Config;
use leadhub::store::memory::MemoryStore;
use leadhub::store::{
    BuyerRefs, BuyerTokens, Counters, DeadDeliveries, DeliveryTallies, LeadSafeReports, LeadStore,
    NotificationLog, SealedSsns, Suppressions, UnparsedCallbacks,
};
use leadhub::webhooks::WebhookSecret;
use leadhub_sandbox::heloc_lender::{HelocLender, HelocLenderConfig};
use leadhub_sandbox::leadsafe::{LeadSafe, LeadSafeConfig};
use leadhub_sandbox::lofty::{Lofty, LoftyConfig};
use leadhub_sandbox::ntherm::{Ntherm, NthermConfig, VerdictStyle};
use leadhub_sandbox::sonar::{Sonar, SonarConfig};
use leadhub_sandbox::webhook::WebhookBuyer;
use leadhub_sandbox::Running;
use tokio::task::JoinHandle;

pub mod metering;
use metering::Metering;
use validate::Validate;

/// Where the stack keeps its state.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Embedded store and queues: nothing to install.
    Memory,
    /// DynamoDB and SQS through the AWS SDK at this endpoint (moto on loopback). The table
    /// `{prefix}-leads` and the queues `{prefix}-validate` and `{prefix}-dispatch` (with dead-letter queues)
    /// are created, or reused when they exist. Credentials and region are the SDK's usual ones; where none
    /// are set (a local emulator needs none), dummy ones and `us-east-1` are used.
    Aws { endpoint: String, prefix: String },
}

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct Options {
    pub addr: SocketAddr,
    pub demo_key: String,
    pub demo_secret: String,
    pub backend: Backend,
    /// Webhook buyers to start, each a destination for every vertical, offered in this order.
    pub buyers: Vec<String>,
    /// Start the seed APIs' sandboxes and route each vertical to its own: heloc to the HELOC lender,
    /// mortgage to Sonar, solar to nTherm, real-estate to Lofty.
    pub seed_sandboxes: bool,
    /// The nTherm sandbox takes every lead (200) and then rejects it in its final verdict.
    pub ntherm_rejects_after_post: bool,
    /// How the nTherm sandbox sends its final verdict: `success_bit` as text, any or no content type,
    /// before its answer to postLead, repeated, or a body of another shape (it can be changed later with
    /// `Ntherm::set_verdict_style`).
    pub ntherm_verdict_style: VerdictStyle,
    /// Lofty sandbox's rate limit: calls per window.
    pub lofty_rate_limit: (u32, Duration),
    /// Lofty sandbox's access tokens expire after this long (and are renewed with the refresh token).
    pub lofty_token_lifetime: Option<Duration>,
    pub max_attempts: u32,
    pub retry_base_delay_ms: u64,
    pub buyer_timeout_ms: u64,
    /// How long a received message stays invisible before it is handed out again.
    pub visibility_timeout: Duration,
    /// Receives before a message is moved to the dead-letter queue.
    pub max_receive_count: u32,
    /// Pollers per queue, each receiving up to 10 messages and handing them to its function as one batch
    /// (on AWS, Lambda runs several batches at once and scales them with the backlog). Default 1 here, as
    /// the tests were written for; the `leadhub-local` command's `--pollers` defaults to 4.
    pub pollers: usize,
    /// More partners besides the demo one: (id, key id, secret).
    pub other_partners: Vec<(String, String, String)>,
    /// How long a replayed `Idempotency-Key` answers 409 while the first request may be in flight.
    pub idempotency_in_flight_secs: u32,
    /// The operator's own configuration document instead of the demo one: no demo partner, buyers or
    /// sandboxes are started, its destinations' URLs are used as given, `env:` references are read from the
    /// environment, and `hub.public_base_url` becomes the stack's own address (so buyers' callbacks reach it).
    pub config_document: Option<String>,
    /// Keep the demo configuration in the store and re-read it every `config_refresh_secs`, as the functions
    /// do on AWS (otherwise it is fixed).
    pub stored_config: bool,
    /// `hub.config_refresh_secs` of the demo document.
    pub config_refresh_secs: u32,
    /// More of the demo document, appended as written: `[routing.<vertical>]` tables, say.
    pub extra_config: String,
    /// Routing keys (TOML lines such as `priority = 1` or `[destinations.caps]` tables) added to the webhook
    /// buyer destination of this id.
    pub buyer_settings: BTreeMap<String, String>,
    /// Start the LeadSafe sandbox (seed 003, loaded with the seed's CSV sample) and screen mortgage leads
    /// with it: these are the lines of `[screening.mortgage]` after `leadsafe = true` (e.g. `detailed =
    /// true`). `None`: no LeadSafe.
    pub leadsafe: Option<String>,
    /// Start a sandbox receiver for the demo partner's notifications (a Standard Webhooks consumer that
    /// checks each signature; `GET /_sandbox/received` lists what arrived) and make it the partner's
    /// `callback_url`. Ignored when `demo_partner_settings` is given.
    pub partner_receiver: bool,
    /// Keys (TOML lines) for the demo partner instead of the receiver's: `callback_url`, `webhook_secret`,
    /// `events`; their `env:` secrets come from `extra_secrets`.
    pub demo_partner_settings: String,
    /// More secrets for the demo document's `env:` references.
    pub extra_secrets: BTreeMap<String, String>,
    /// Memory backend only: keep each lead, and everything kept for it (idempotency record, duplicate
    /// claims, sealed SSN, dead-delivery markers, buyer references, failed notifications, unparsed
    /// callbacks, LeadSafe reports), at most this long after it was written
    /// ([`MemoryStore::with_lead_ttl`]). `None`: as the configuration says (`hub.lead_retention_days`, and
    /// each item's own TTL). On AWS the table's TTL decides, so [`start`] refuses it with
    /// [`Backend::Aws`].
    pub lead_ttl: Option<Duration>,
    /// How many entries each log of each sandbox keeps (requests, and what each stores per request:
    /// leads, quotes, notes, callbacks and webhook deliveries it sent): past it, the oldest are dropped.
    pub sandbox_log_capacity: usize,
}

/// The demo's LeadSafe policy for mortgage leads.
pub const DEMO_LEADSAFE_POLICY: &str =
    "detailed = true\namber = \"amber_buyers\"\non_error = \"retry\"\n";

/// Seed 003's CSV upload sample: the records the LeadSafe sandbox starts with (123-45-6789 is Red for
/// Default, 111-22-2333's RevokePaymentAuth has ended: Amber).
pub const LEADSAFE_SEED_CSV: &str = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason
exampleco,123456789,2024-01-05,,Default
exampleco,111222333,2024-01-06,2024-02-12,RevokePaymentAuth
exampleco,240120120,2024-01-07,,Lawsuit
exampleco,411411411,2024-01-08,,RegulatoryComplaint
exampleco,910910910,2024-01-09,,DebtConsolidation
exampleco,761789231,2024-01-10,2024-02-19,Default
exampleco,123123123,2024-01-11,,SuspectedIdTheft
exampleco,412421341,2024-01-12,,Bankruptcy
";

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            demo_key: "pk_demo".into(),
            demo_secret: random_secret("sk_demo_"),
            backend: Backend::Memory,
            buyers: Vec::new(),
            seed_sandboxes: true,
            ntherm_rejects_after_post: false,
            ntherm_verdict_style: VerdictStyle::default(),
            lofty_rate_limit: (10, Duration::from_secs(60)),
            lofty_token_lifetime: None,
            max_attempts: 5,
            retry_base_delay_ms: 500,
            buyer_timeout_ms: 3_000,
            visibility_timeout: Duration::from_secs(5),
            max_receive_count: 5,
            pollers: 1,
            other_partners: Vec::new(),
            idempotency_in_flight_secs: 10,
            config_document: None,
            stored_config: false,
            config_refresh_secs: 60,
            extra_config: String::new(),
            buyer_settings: BTreeMap::new(),
            leadsafe: Some(DEMO_LEADSAFE_POLICY.to_owned()),
            partner_receiver: true,
            demo_partner_settings: String::new(),
            extra_secrets: BTreeMap::new(),
            lead_ttl: None,
            sandbox_log_capacity: leadhub_sandbox::DEFAULT_LOG_CAPACITY,
        }
    }
}

/// The shortest [`Options::lead_ttl`] `--lead-ttl` takes: a lead must outlive its deliveries (retries and
/// late verdicts included), or it is dropped in the middle of them.
pub const MIN_LEAD_TTL: Duration = Duration::from_secs(60);

/// `--lead-ttl`: a whole number with a unit, `s`, `m`, `h` or `d` (`90s`, `10m`, `2h`, `7d`), at least
/// [`MIN_LEAD_TTL`].
pub fn parse_lead_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid =
        || format!("`{text}` is not a duration: give a number and a unit, as 90s, 10m, 2h or 7d");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let count: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => Some(count),
        "m" => count.checked_mul(60),
        "h" => count.checked_mul(3_600),
        "d" => count.checked_mul(86_400),
        _ => return Err(invalid()),
    }
    .filter(|s| *s <= 3_650 * 86_400)
    .ok_or_else(|| format!("`{text}` is more than ten years"))?;
    let ttl = Duration::from_secs(seconds);
    if ttl < MIN_LEAD_TTL {
        return Err(format!(
            "`{text}` is too short: a lead must outlive its deliveries (at least {}s)",
            MIN_LEAD_TTL.as_secs()
        ));
    }
    Ok(ttl)
}

/// A fresh random secret with a readable prefix.
/// The sandbox buyer's own form of a hub signing secret (the sandbox verifies with its own code).
fn sandbox_key(secret: &WebhookSecret) -> leadhub_sandbox::webhook::SigningKey {
    leadhub_sandbox::webhook::SigningKey::from_whsec(&secret.to_whsec())
        .expect("a hub secret is whsec_ and base64")
}

pub fn random_secret(prefix: &str) -> String {
    let bytes: [u8; 18] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// The sandboxes of the seed APIs, each with its server.
pub struct SeedSandboxes {
    /// A webhook buyer first in the heloc waterfall, taking Texas leads only, 50 a day.
    pub texas_buyer: (WebhookBuyer, Running),
    pub heloc_lender: (HelocLender, Running),
    pub sonar: (Sonar, Running),
    pub ntherm: (Ntherm, Running),
    pub lofty: (Lofty, Running),
}

impl SeedSandboxes {
    /// (destination id, server) of each, for the banner.
    pub fn servers(&self) -> Vec<(&'static str, &Running)> {
        vec![
            ("texas-buyer", &self.texas_buyer.1),
            ("heloc-lender", &self.heloc_lender.1),
            ("sonar", &self.sonar.1),
            ("ntherm", &self.ntherm.1),
            ("lofty", &self.lofty.1),
        ]
    }
}

async fn start_seed_sandboxes(
    options: &Options,
    secrets: &mut BTreeMap<String, String>,
) -> anyhow::Result<(SeedSandboxes, String)> {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let texas_secret = WebhookSecret::from_bytes(&rand::random::<[u8; 32]>());
    secrets.insert(
        "LEADHUB_SANDBOX_TEXAS_BUYER_SECRET".to_owned(),
        texas_secret.to_whsec(),
    );
    let mut secret = |name: &str, prefix: &str| {
        let value = random_secret(prefix);
        secrets.insert(name.to_owned(), value.clone());
        value
    };
    let lender_key = secret("LEADHUB_SANDBOX_HELOC_LENDER_KEY", "hl_");
    let capacity = options.sandbox_log_capacity;
    let texas_buyer = WebhookBuyer::new(sandbox_key(&texas_secret)).with_log_capacity(capacity);
    let texas_buyer_server = texas_buyer
        .start(loopback)
        .await
        .context("starting the Texas webhook buyer sandbox")?;
    let sonar_secret = secret("LEADHUB_SANDBOX_SONAR_SECRET", "sonar_");
    let ntherm_user = secret("LEADHUB_SANDBOX_NTHERM_USER", "nt_");
    let ntherm_password = secret("LEADHUB_SANDBOX_NTHERM_PASSWORD", "ntp_");
    let lofty_token = secret("LEADHUB_SANDBOX_LOFTY_TOKEN", "lofty_");
    let lofty_refresh_token = secret("LEADHUB_SANDBOX_LOFTY_REFRESH_TOKEN", "loftyr_");

    let heloc_lender =
        HelocLender::new(HelocLenderConfig::with_api_key(lender_key)).with_log_capacity(capacity);
    let heloc_lender_server = heloc_lender
        .start(loopback)
        .await
        .context("starting the HELOC lender sandbox")?;
    let sonar = Sonar::new(SonarConfig::new(sonar_secret)).with_log_capacity(capacity);
    let sonar_server = sonar
        .start(loopback)
        .await
        .context("starting the Sonar sandbox")?;
    let mut ntherm_config = NthermConfig::new(ntherm_user, ntherm_password);
    ntherm_config.reject_all_after_post = options.ntherm_rejects_after_post;
    ntherm_config.verdict_style = options.ntherm_verdict_style.clone();
    let ntherm = Ntherm::new(ntherm_config).with_log_capacity(capacity);
    let ntherm_server = ntherm
        .start(loopback)
        .await
        .context("starting the nTherm sandbox")?;
    let mut lofty_config = LoftyConfig::new(lofty_token);
    lofty_config.rate_limit = options.lofty_rate_limit.0;
    lofty_config.window = options.lofty_rate_limit.1;
    lofty_config.refresh_token = lofty_refresh_token;
    lofty_config.token_lifetime = options.lofty_token_lifetime;
    let lofty = Lofty::new(lofty_config).with_log_capacity(capacity);
    let lofty_server = lofty
        .start(loopback)
        .await
        .context("starting the Lofty sandbox")?;

    let timeout = options.buyer_timeout_ms;
    let attempts = options.max_attempts;
    let document = format!(
        r#"
# heloc: a waterfall; Texas leads go to the Texas buyer first (50 a day), the rest to the HELOC lender.
[routing.heloc]
strategy = "waterfall"

[[destinations]]
id = "texas-buyer"
kind = "webhook"
url = "{texas}"
signing_secret = "env:LEADHUB_SANDBOX_TEXAS_BUYER_SECRET"
verticals = ["heloc"]
timeout_ms = {timeout}
max_attempts = {attempts}
priority = 1
price = 22.50
[destinations.filters]
states = ["TX"]
[destinations.caps]
day = 50

[[destinations]]
id = "heloc-lender"
kind = "heloc-lender"
url = "{lender}"
verticals = ["heloc"]
timeout_ms = {timeout}
max_attempts = {attempts}
priority = 2
price = 18.00
[destinations.credentials]
api_key = "env:LEADHUB_SANDBOX_HELOC_LENDER_KEY"

[[destinations]]
id = "sonar"
kind = "sonar"
url = "{sonar}"
verticals = ["mortgage"]
timeout_ms = {timeout}
max_attempts = {attempts}
[destinations.credentials]
client_secret = "env:LEADHUB_SANDBOX_SONAR_SECRET"

[[destinations]]
id = "ntherm"
kind = "ntherm"
url = "{ntherm}"
verticals = ["solar"]
timeout_ms = {timeout}
max_attempts = {attempts}
[destinations.credentials]
username = "env:LEADHUB_SANDBOX_NTHERM_USER"
password = "env:LEADHUB_SANDBOX_NTHERM_PASSWORD"

[[destinations]]
id = "lofty"
kind = "lofty"
url = "{lofty}"
verticals = ["real-estate"]
timeout_ms = {timeout}
max_attempts = {attempts}
[destinations.credentials]
access_token = "env:LEADHUB_SANDBOX_LOFTY_TOKEN"
refresh_token = "env:LEADHUB_SANDBOX_LOFTY_REFRESH_TOKEN"
[destinations.lofty]
lead_routing = true
tags = ["leadhub-demo"]
"#,
        texas = texas_buyer_server.url(leadhub_sandbox::webhook::PATH),
        lender = heloc_lender_server.url(leadhub_sandbox::heloc_lender::DEFAULT_PATH),
        sonar = sonar_server.url(leadhub_sandbox::sonar::DEFAULT_PATH),
        ntherm = ntherm_server.url(leadhub_sandbox::ntherm::PATH),
        lofty = lofty_server.url(""),
    );
    Ok((
        SeedSandboxes {
            texas_buyer: (texas_buyer, texas_buyer_server),
            heloc_lender: (heloc_lender, heloc_lender_server),
            sonar: (sonar, sonar_server),
            ntherm: (ntherm, ntherm_server),
            lofty: (lofty, lofty_server),
        },
        document,
    ))
}

/// A running stack. Everything stops when it is dropped.
pub struct Stack {
    /// The partner API (and callbacks).
    pub addr: SocketAddr,
    /// The configuration the stack started with.
    pub config: Arc<Config>,
    /// The configuration in effect (with `Options::stored_config`, re-read from the store).
    pub live_config: LiveConfig,
    pub store: Arc<dyn LeadStore>,
    /// The embedded store itself (memory backend only): what it holds, and sweeps on demand.
    pub memory_store: Option<Arc<MemoryStore>>,
    /// The same store's cap counters and sequences.
    pub counters: Arc<dyn Counters>,
    /// The same store's dead-delivery markers (`leadhub-admin deliveries dead`; not the queues'
    /// dead-letter queues, which are `dead_letters`).
    pub dead_deliveries: Arc<dyn DeadDeliveries>,
    /// The same store's sealed SSNs (kept by ingest until screening has decided).
    pub sealed_ssns: Arc<dyn SealedSsns>,
    /// The same store's suppression list.
    pub suppressions: Arc<dyn Suppressions>,
    /// The same store's consumer statuses reported back to LeadSafe.
    pub leadsafe_reports: Arc<dyn LeadSafeReports>,
    /// The same store's buyer references (a buyer's id for a lead it took -> the lead).
    pub buyer_refs: Arc<dyn BuyerRefs>,
    /// The same store's tallies of accepted and returned deliveries (return rates).
    pub tallies: Arc<dyn DeliveryTallies>,
    /// The same store's callbacks that were not verdicts, kept for the operator.
    pub unparsed_callbacks: Arc<dyn UnparsedCallbacks>,
    pub validate_queue: Arc<dyn JobQueue>,
    pub dispatch_queue: Arc<dyn JobQueue>,
    /// Dead-letter queues (memory backend only; on AWS they are SQS queues). Nothing reads them: they grow
    /// only by the messages that failed `max_receive_count` times.
    pub dead_letters: Vec<Arc<MemoryQueue>>,
    pub ingest: Arc<Ingest>,
    pub validate: Arc<Validate>,
    pub dispatch: Arc<Dispatch>,
    pub callback: Arc<Callback>,
    /// The sandbox buyers by destination id, with their servers.
    pub buyers: Buyers,
    /// The seed APIs' sandboxes, when started.
    pub sandboxes: Option<SeedSandboxes>,
    /// The LeadSafe sandbox screening mortgage leads, when started ([`Options::leadsafe`]).
    pub leadsafe: Option<(LeadSafe, Running)>,
    /// The demo partner's notification receiver, when started ([`Options::partner_receiver`]).
    pub partner_receiver: Option<(WebhookBuyer, Running)>,
    /// The same store's failed partner notifications and disabled endpoints.
    pub notifications: Arc<dyn NotificationLog>,
    /// What the functions did: `GET /_local/usage`.
    pub metering: Arc<Metering>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Stack {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn buyer(&self, id: &str) -> Option<&WebhookBuyer> {
        self.buyers.get(id).map(|(buyer, _)| buyer)
    }
}

/// The demo configuration document for `buyers` (destination id, URL, signing secret variable), with
/// `partner_settings` (TOML lines) on the demo partner.
pub fn demo_config(
    options: &Options,
    buyers: &[(String, String, String)],
    public_base_url: &str,
    partner_settings: &str,
) -> String {
    let mut doc = format!(
        r#"# leadhub demo configuration (generated by leadhub-local)
[hub]
public_base_url = "{public_base_url}"
hash_key = "env:LEADHUB_HASH_KEY"
callback_key = "env:LEADHUB_CALLBACK_KEY"
ssn_key = "env:LEADHUB_SSN_KEY"
idempotency_in_flight_secs = {in_flight}
config_refresh_secs = {refresh}
# The demo's partner URLs may point at this machine (never set on AWS).
allow_loopback_urls = true

[retry]
base_delay_ms = {retry}
max_delay_secs = 30

[[partners]]
id = "demo"
key_id = "{key}"
secret_hash = "{hash}"
verticals = ["heloc", "mortgage", "solar", "real-estate"]
{partner_settings}
"#,
        retry = options.retry_base_delay_ms,
        in_flight = options.idempotency_in_flight_secs,
        refresh = options.config_refresh_secs,
        key = options.demo_key,
        hash = SecretHash::of(&options.demo_secret).to_stored(),
    );
    for (id, key, secret) in &options.other_partners {
        doc.push_str(&format!(
            "\n[[partners]]\nid = \"{id}\"\nkey_id = \"{key}\"\nsecret_hash = \"{}\"\nverticals = [\"heloc\", \"mortgage\", \"solar\", \"real-estate\"]\n",
            SecretHash::of(secret).to_stored()
        ));
    }
    for (id, url, secret_var) in buyers {
        doc.push_str(&format!(
            r#"
[[destinations]]
id = "{id}"
kind = "webhook"
url = "{url}"
signing_secret = "env:{secret_var}"
verticals = ["heloc", "mortgage", "solar", "real-estate"]
timeout_ms = {timeout}
max_attempts = {attempts}
{settings}
"#,
            timeout = options.buyer_timeout_ms,
            attempts = options.max_attempts,
            settings = options
                .buyer_settings
                .get(id)
                .map(String::as_str)
                .unwrap_or(""),
        ));
    }
    doc.push('\n');
    doc.push_str(&options.extra_config);
    doc
}

/// The store's ports (one store implements them all) and the validate and dispatch queues.
struct Backends {
    store: Arc<dyn LeadStore>,
    counters: Arc<dyn Counters>,
    dead_deliveries: Arc<dyn DeadDeliveries>,
    sealed_ssns: Arc<dyn SealedSsns>,
    suppressions: Arc<dyn Suppressions>,
    leadsafe_reports: Arc<dyn LeadSafeReports>,
    notifications: Arc<dyn NotificationLog>,
    buyer_refs: Arc<dyn BuyerRefs>,
    buyer_tokens: Arc<dyn BuyerTokens>,
    tallies: Arc<dyn DeliveryTallies>,
    unparsed_callbacks: Arc<dyn UnparsedCallbacks>,
    validate_queue: Arc<dyn JobQueue>,
    dispatch_queue: Arc<dyn JobQueue>,
}

impl Backends {
    fn of<S>(
        store: Arc<S>,
        validate_queue: Arc<dyn JobQueue>,
        dispatch_queue: Arc<dyn JobQueue>,
    ) -> Self
    where
        S: LeadStore
            + Counters
            + DeadDeliveries
            + SealedSsns
            + Suppressions
            + LeadSafeReports
            + NotificationLog
            + BuyerRefs
            + BuyerTokens
            + DeliveryTallies
            + UnparsedCallbacks
            + 'static,
    {
        Backends {
            store: store.clone(),
            counters: store.clone(),
            dead_deliveries: store.clone(),
            sealed_ssns: store.clone(),
            suppressions: store.clone(),
            leadsafe_reports: store.clone(),
            notifications: store.clone(),
            buyer_refs: store.clone(),
            buyer_tokens: store.clone(),
            tallies: store.clone(),
            unparsed_callbacks: store,
            validate_queue,
            dispatch_queue,
        }
    }
}

async fn aws_backend(
    endpoint: &str,
    prefix: &str,
    options: &Options,
    requests: &leadhub::sdk::usage::RequestCounter,
) -> anyhow::Result<Backends> {
    let mut loader = leadhub::runtime::sdk_defaults().endpoint_url(endpoint);
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none()
    {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "leadhub-local",
        ));
    }
    let mut sdk = loader.load().await;
    if sdk.region().is_none() {
        sdk = sdk
            .into_builder()
            .region(aws_config::Region::new("us-east-1"))
            .build();
    }
    // Every request counted for `GET /_local/usage`.
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(requests.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .interceptor(requests.clone())
            .build(),
    );
    let table = format!("{prefix}-leads");
    leadhub::store::dynamodb::create_table(&dynamodb, &table)
        .await
        .context("creating the table")?;
    let visibility = options.visibility_timeout.as_secs().max(1) as u32;
    let (validate_url, _) = leadhub::queue::sqs::create_queue_with_dead_letter(
        &sqs,
        &format!("{prefix}-validate"),
        visibility,
        options.max_receive_count,
    )
    .await
    .context("creating the validate queue")?;
    let (dispatch_url, _) = leadhub::queue::sqs::create_queue_with_dead_letter(
        &sqs,
        &format!("{prefix}-dispatch"),
        visibility,
        options.max_receive_count,
    )
    .await
    .context("creating the dispatch queue")?;
    let store = Arc::new(leadhub::store::dynamodb::DynamoStore::new(dynamodb, table));
    Ok(Backends::of(
        store,
        Arc::new(leadhub::queue::sqs::SqsQueue::new(
            sqs.clone(),
            validate_url,
        )),
        Arc::new(leadhub::queue::sqs::SqsQueue::new(sqs, dispatch_url)),
    ))
}

type Buyers = BTreeMap<String, (WebhookBuyer, Running)>;

/// The demo: sandbox buyers, each with its own signing secret, the seed sandboxes, and their configuration.
async fn demo(options: &Options, addr: SocketAddr) -> anyhow::Result<Demo> {
    // Sandbox buyers, each with its own signing secret.
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    secrets.insert("LEADHUB_HASH_KEY".into(), random_secret("hk_"));
    secrets.insert("LEADHUB_CALLBACK_KEY".into(), random_secret("ck_"));
    secrets.insert("LEADHUB_SSN_KEY".into(), random_secret("ssnk_"));
    let mut buyers = BTreeMap::new();
    let mut destinations = Vec::new();
    for (i, id) in options.buyers.iter().enumerate() {
        let secret = WebhookSecret::from_bytes(&rand::random::<[u8; 32]>());
        let buyer =
            WebhookBuyer::new(sandbox_key(&secret)).with_log_capacity(options.sandbox_log_capacity);
        let running = buyer
            .start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("starting a sandbox buyer")?;
        let variable = format!("LEADHUB_SANDBOX_SECRET_{i}");
        secrets.insert(variable.clone(), secret.to_whsec());
        destinations.push((id.clone(), running.url("/hook"), variable));
        buyers.insert(id.clone(), (buyer, running));
    }
    secrets.extend(options.extra_secrets.clone());
    let (partner_receiver, partner_settings) = if !options.demo_partner_settings.is_empty() {
        (None, options.demo_partner_settings.clone())
    } else if options.partner_receiver {
        let secret = WebhookSecret::from_bytes(&rand::random::<[u8; 32]>());
        let receiver =
            WebhookBuyer::new(sandbox_key(&secret)).with_log_capacity(options.sandbox_log_capacity);
        let running = receiver
            .start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("starting the partner's notification receiver")?;
        secrets.insert("LEADHUB_DEMO_WEBHOOK_SECRET".into(), secret.to_whsec());
        let settings = format!(
            "# The partner's notifications go to a sandbox receiver on loopback.\ncallback_url = \"{}\"\nwebhook_secret = \"env:LEADHUB_DEMO_WEBHOOK_SECRET\"",
            running.url("/hook")
        );
        (Some((receiver, running)), settings)
    } else {
        (None, String::new())
    };
    let mut document = demo_config(
        options,
        &destinations,
        &format!("http://{addr}"),
        &partner_settings,
    );
    let sandboxes = if options.seed_sandboxes {
        let (sandboxes, destinations) = start_seed_sandboxes(options, &mut secrets).await?;
        document.push_str(&destinations);
        Some(sandboxes)
    } else {
        None
    };
    let leadsafe = match &options.leadsafe {
        None => None,
        Some(policy) => {
            let key = random_secret("ls_");
            let secret = random_secret("lss_");
            secrets.insert("LEADHUB_SANDBOX_LEADSAFE_KEY".into(), key.clone());
            secrets.insert("LEADHUB_SANDBOX_LEADSAFE_SECRET".into(), secret.clone());
            let sandbox = LeadSafe::new(LeadSafeConfig::new(key, secret))
                .with_log_capacity(options.sandbox_log_capacity);
            sandbox
                .load_csv(LEADSAFE_SEED_CSV)
                .map_err(|problem| anyhow::anyhow!("the LeadSafe sample: {problem}"))?;
            let running = sandbox
                .start(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .context("starting the LeadSafe sandbox")?;
            document.push_str(&format!(
                r#"
# Mortgage leads that carry an SSN are screened with LeadSafe (its sandbox, seeded with seed 003's sample).
[screening.leadsafe]
environment = "dev"
base_url = "{url}"
api_key = "env:LEADHUB_SANDBOX_LEADSAFE_KEY"
client_secret = "env:LEADHUB_SANDBOX_LEADSAFE_SECRET"
client_code = "leadhub-demo"
timeout_ms = {timeout}

[screening.mortgage]
leadsafe = true
{policy}
"#,
                url = running.url(""),
                timeout = options.buyer_timeout_ms,
            ));
            Some((sandbox, running))
        }
    };
    let config = Config::from_toml(&document, &secrets).context("the demo configuration")?;
    Ok(Demo {
        config,
        document,
        secrets,
        buyers,
        sandboxes,
        leadsafe,
        partner_receiver,
    })
}

/// The demo: its configuration (and the document and secrets it was read from), buyers and sandboxes.
struct Demo {
    config: Config,
    document: String,
    secrets: BTreeMap<String, String>,
    buyers: Buyers,
    sandboxes: Option<SeedSandboxes>,
    leadsafe: Option<(LeadSafe, Running)>,
    partner_receiver: Option<(WebhookBuyer, Running)>,
}

/// Start everything.
pub async fn start(options: Options) -> anyhow::Result<Stack> {
    if options.lead_ttl.is_some() && matches!(options.backend, Backend::Aws { .. }) {
        anyhow::bail!(
            "a lead TTL applies to the memory backend only: on AWS, hub.lead_retention_days and the \
             table's TTL decide"
        );
    }
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .with_context(|| format!("cannot listen on {}", options.addr))?;
    let addr = listener.local_addr()?;

    let (demo, fixed) = match &options.config_document {
        Some(document) => {
            let config = Config::from_toml(document, &leadhub::config::Env)
                .context("the configuration file")?
                .with_public_base_url(&format!("http://{addr}"))
                .context("the stack's own address")?;
            (None, Some(Arc::new(config)))
        }
        None => (Some(demo(&options, addr).await?), None),
    };

    let metering = Arc::new(Metering::default());
    let mut dead_letters = Vec::new();
    let mut memory_store = None;
    let backends: Backends = match &options.backend {
        Backend::Memory => {
            let mut queue = |name: &str| {
                let dlq = Arc::new(MemoryQueue::new(
                    &format!("{name}-dlq"),
                    options.visibility_timeout,
                ));
                dead_letters.push(dlq.clone());
                Arc::new(
                    MemoryQueue::new(name, options.visibility_timeout)
                        .with_dead_letter(dlq, options.max_receive_count),
                )
            };
            let validate = queue("validate");
            let dispatch = queue("dispatch");
            let mut store = MemoryStore::new();
            if let Some(ttl) = options.lead_ttl {
                store = store.with_lead_ttl(ttl);
            }
            let store = Arc::new(store);
            memory_store = Some(store.clone());
            Backends::of(store, validate, dispatch)
        }
        Backend::Aws { endpoint, prefix } => {
            aws_backend(endpoint, prefix, &options, &metering.requests).await?
        }
    };
    let Backends {
        store,
        counters,
        dead_deliveries,
        sealed_ssns,
        suppressions,
        leadsafe_reports,
        notifications: notification_log,
        buyer_refs,
        buyer_tokens,
        tallies,
        unparsed_callbacks,
        validate_queue,
        dispatch_queue,
    } = backends;
    let transport: Arc<dyn leadhub::transport::Transport> =
        Arc::new(leadhub::transport::ReqwestTransport::new());

    let (config, live, buyers, sandboxes, leadsafe, partner_receiver) = match (demo, fixed) {
        (Some(demo), _) => {
            let config = Arc::new(demo.config);
            let live = if options.stored_config {
                // As on AWS: the document lives in the table and is re-read every
                // `hub.config_refresh_secs`.
                store
                    .put_config_document(&demo.document)
                    .await
                    .context("storing the demo configuration")?;
                LiveConfig::stored(
                    config.clone(),
                    demo.document,
                    store.clone(),
                    Arc::new(demo.secrets),
                    None,
                )
            } else {
                LiveConfig::fixed(config.clone())
            };
            (
                config,
                live,
                demo.buyers,
                demo.sandboxes,
                demo.leadsafe,
                demo.partner_receiver,
            )
        }
        (None, Some(config)) => (
            config.clone(),
            LiveConfig::fixed(config),
            BTreeMap::new(),
            None,
            None,
            None,
        ),
        (None, None) => anyhow::bail!("no configuration"),
    };
    // Partner-supplied URLs (notifications) go through the SSRF guard, loopback allowed only where the
    // configuration says so.
    let partner_transport: Arc<dyn leadhub::transport::Transport> = Arc::new(
        leadhub::transport::ReqwestTransport::guarded(config.url_policy),
    );

    let ingest = Arc::new(Ingest {
        config: live.clone(),
        store: store.clone(),
        sealed_ssns: sealed_ssns.clone(),
        validate_queue: validate_queue.clone(),
    });
    let validate = Arc::new(Validate {
        config: live.clone(),
        store: store.clone(),
        counters: counters.clone(),
        dispatch_queue: dispatch_queue.clone(),
        suppressions: suppressions.clone(),
        sealed_ssns: sealed_ssns.clone(),
        validate_queue: validate_queue.clone(),
        transport: transport.clone(),
    });
    let dispatch = Arc::new(Dispatch {
        config: live.clone(),
        store: store.clone(),
        counters: counters.clone(),
        dead_deliveries: dead_deliveries.clone(),
        buyer_refs: buyer_refs.clone(),
        dispatch_queue: dispatch_queue.clone(),
        transport: transport.clone(),
        notifications: notification_log.clone(),
        partner_transport: partner_transport.clone(),
        tallies: tallies.clone(),
        pacer: Default::default(),
        buyer_tokens: buyer_tokens.clone(),
    });
    let callback = Arc::new(Callback {
        config: live.clone(),
        store: store.clone(),
        dispatch_queue: dispatch_queue.clone(),
        suppressions: suppressions.clone(),
        leadsafe_reports: leadsafe_reports.clone(),
        transport: transport.clone(),
        buyer_refs: buyer_refs.clone(),
        tallies: tallies.clone(),
        unparsed_callbacks: unparsed_callbacks.clone(),
    });

    let mut tasks = Vec::new();
    let api = axum::Router::new()
        .route("/_local/usage", axum::routing::get(usage))
        .fallback(serve_api)
        .with_state((ingest.clone(), callback.clone(), metering.clone()));
    tasks.push(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, api).await {
            tracing::error!(%error, "the partner API stopped");
        }
    }));
    for _ in 0..options.pollers.max(1) {
        let validate = validate.clone();
        tasks.push(tokio::spawn(poll(
            validate_queue.clone(),
            "validate",
            metering.clone(),
            move |event| {
                let validate = validate.clone();
                async move { validate.handle_batch(event).await }
            },
        )));
        let dispatch = dispatch.clone();
        tasks.push(tokio::spawn(poll(
            dispatch_queue.clone(),
            "dispatch",
            metering.clone(),
            move |event| {
                let dispatch = dispatch.clone();
                async move { dispatch.handle_batch(event).await }
            },
        )));
    }

    Ok(Stack {
        addr,
        config,
        live_config: live,
        store,
        memory_store,
        counters,
        dead_deliveries,
        sealed_ssns,
        suppressions,
        leadsafe_reports,
        buyer_refs,
        tallies,
        unparsed_callbacks,
        validate_queue,
        dispatch_queue,
        dead_letters,
        ingest,
        validate,
        dispatch,
        callback,
        buyers,
        sandboxes,
        leadsafe,
        partner_receiver,
        notifications: notification_log,
        metering,
        tasks,
    })
}

/// The partner API and callbacks, as API Gateway routes them to ingest and callback.
type ApiState = (Arc<Ingest>, Arc<Callback>, Arc<Metering>);

/// `GET /_local/usage`: what the functions did so far ([`metering`]).
async fn usage(State((_, _, metering)): State<ApiState>) -> Response {
    axum::Json(metering.report()).into_response()
}

async fn serve_api(
    State((ingest, callback, metering)): State<ApiState>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    // Read one byte past the limit so that ingest can answer 413 itself.
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(bytes) => bytes.to_vec(),
        Err(_) => {
            return Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("a lead may be at most {} KiB", MAX_BODY_BYTES / 1024),
            )
            .into_response()
            .map(Body::from)
            .into_response()
        }
    };
    let request = http::Request::from_parts(parts, bytes);
    let path = request.uri().path();
    let started = std::time::Instant::now();
    let (function, response) =
        if path.starts_with("/v1/callbacks/") || path.starts_with("/v1/lofty/") {
            ("callback", callback.handle(request).await)
        } else {
            ("ingest", ingest.handle(request).await)
        };
    metering.record(function, 1, started.elapsed());
    response.map(Body::from).into_response()
}

/// The Lambda event source mapping, locally: receive up to 10 messages, hand them to the batch handler as
/// an SQS event, delete those that did not fail. Failed ones reappear after the visibility timeout.
async fn poll<F, Fut>(
    queue: Arc<dyn JobQueue>,
    function: &'static str,
    metering: Arc<Metering>,
    handle: F,
) where
    F: Fn(SqsEvent) -> Fut,
    Fut: std::future::Future<Output = aws_lambda_events::event::sqs::SqsBatchResponse>,
{
    loop {
        let messages = match queue.receive(10, Duration::from_secs(1)).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::error!(%error, "cannot receive from a queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = Some(m.message_id.clone());
                record.receipt_handle = Some(m.receipt_handle.clone());
                record.body = Some(m.body.clone());
                record
            })
            .collect();
        let started = std::time::Instant::now();
        let response = handle(event).await;
        metering.record(function, messages.len(), started.elapsed());
        for message in &messages {
            let failed = response
                .batch_item_failures
                .iter()
                .any(|f| f.item_identifier == message.message_id);
            if !failed {
                if let Err(error) = queue.delete(&message.receipt_handle).await {
                    tracing::error!(%error, "cannot delete a handled message");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_ttl_is_a_number_with_a_unit_of_a_minute_at_least() {
        assert_eq!(parse_lead_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_lead_ttl(" 10m "), Ok(Duration::from_secs(600)));
        assert_eq!(parse_lead_ttl("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_lead_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in [
            "",
            "10",
            "m",
            "10x",
            "1.5h",
            "-5m",
            "10 m",
            "99999999999999999999d",
        ] {
            assert!(parse_lead_ttl(bad).is_err(), "{bad:?}");
        }
        let short = parse_lead_ttl("59s").expect_err("too short");
        assert!(short.contains("too short"), "{short}");
        assert!(parse_lead_ttl("3651d").is_err());
    }
}
