//! A model-based property test of the lead lifecycle under random interleavings.
//!
//! The real validate, dispatch and callback handlers (built directly, not through the HTTP stack) run on
//! the memory store, behind a wrapper that can crash a run between any two writes. The queue is the
//! harness's own: every job sent lands in a pool, and the harness decides which message runs next, in any
//! order, ignoring delays (the configuration's retry delays are at most a second, which `delivery_step`
//! still lets through). A message whose run failed stays in the pool, as SQS would redeliver it. Buyers are
//! webhook destinations answered by one scripted fake per destination (accept, reject, 5xx, 429, timeout;
//! then accept once the script runs out, so every case terminates), idempotent per `webhook-id` as Standard
//! Webhooks asks of them: a delivery a buyer has taken is taken again.
//!
//! Actions, interleaved across 1-4 leads: create a lead (straight into the store, with its validate job),
//! run the oldest or any pending message (optionally crashing at its k-th write), duplicate a pending
//! message (at-least-once delivery), let a dead worker's lease run out (its `lease_until` moved into the
//! past: the clock cannot be moved), and send a buyer's late verdict through the callback URL the buyer was
//! given (a verdict answered 5xx is sent again later, as a buyer would).
//!
//! Invariants, after every action, and once more after draining every message:
//! 1. nothing is stuck: each lead is final, or a message in the pool would move it (and every open
//!    delivery has a job that would act on it); after the drain every lead is final and no delivery open;
//! 2. no buyer is posted to after its delivery's outcome was recorded (the delivery is in flight, claimed,
//!    at every post);
//! 3. no cap is exceeded: a capped buyer took (answered 2xx for) at most K distinct leads, and at most K of
//!    its deliveries are recorded accepted;
//! 4. a waterfall lead is with at most one buyer at a time (open or accepted deliveries), a broadcast lead
//!    with at most `max_buyers` open ones;
//! 5. one `webhook-id` on every attempt of one delivery (`msg_<leadId>_<destination>`);
//! 6. records agree with the buyers: a delivery recorded accepted was answered 2xx; a delivered (or later)
//!    lead has an accepted delivery and an unsold one none; a run fails only when it crashed or its attempt
//!    is busy elsewhere; the callback answers only 200, 202 (kept while the delivery is open), 409 or 503.
//!
//! `model_lifecycle_invariants_hold_under_random_interleavings` crashes store writes only (the memory
//! store's and the counters'); `model_lifecycle_invariants_hold_when_job_sends_crash_too` counts job sends
//! as writes as well, and is ignored while it finds the bugs of the `regression_*` cases at the end. Not
//! modelled: handlers running concurrently (each run is atomic here, so a worker that outlives its lease
//! while another takes over is not explored), time passing (cap windows, schedules, long waits), and
//! buyers that answer differently for a delivery they already took.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use callback::Callback;
use chrono::{DateTime, Utc};
use dispatch::Dispatch;
use http::{HeaderMap, HeaderValue};
use leadhub::batch::RecordError;
use leadhub::callbacks::Verdict;
use leadhub::crypto::SecretHash;
use leadhub::delivery::{DispatchJob, ValidateJob};
use leadhub::lead::{DeliveryStatus, EventKind, LeadId, LeadRecord, LeadStatus};
use leadhub::lifecycle::{delivery_step, settle, DeliveryStep};
use leadhub::queue::{JobQueue, QueueError, ReceivedMessage};
use leadhub::settings::Config;
use leadhub::store::memory::MemoryStore;
use leadhub::store::{
    ClaimOutcome, Counters, CreateOutcome, DeadDeliveries, DeadDelivery, DeliveryExpect,
    IdempotencyRecord, LeadStore, LeadUpdate, Reservation, StoreError, UpdateOutcome,
};
use leadhub::transport::{Request, Response, Transport, TransportError};
use leadhub::verticals::Vertical;
use leadhub::webhooks::WebhookSecret;
use proptest::prelude::*;
use serde_json::{json, Value};
use validate::Validate;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("a harness lock")
}

const BUYER_IDS: [&str; 3] = ["a", "b", "c"];
const MAX_LEADS: usize = 4;
const BROADCAST_MAX_BUYERS: usize = 2;

// ---- crash injection -----------------------------------------------------------------------------------

/// Crashes for one run: armed with `k`, the run's k-th write (from 0) fails with `Unavailable`, and every
/// later write of the run too. With `queue_sends`, sending a job counts as a write.
#[derive(Default)]
struct Faults {
    state: Mutex<FaultState>,
}

#[derive(Default)]
struct FaultState {
    fail_from: Option<usize>,
    writes: usize,
    failed: bool,
    queue_sends: bool,
}

impl Faults {
    fn new(queue_sends: bool) -> Self {
        Faults {
            state: Mutex::new(FaultState {
                queue_sends,
                ..FaultState::default()
            }),
        }
    }

    fn arm(&self, fail_from: Option<usize>) {
        let mut state = lock(&self.state);
        state.fail_from = fail_from;
        state.writes = 0;
        state.failed = false;
    }

    /// Disarm; whether a write of the run failed.
    fn disarm(&self) -> bool {
        let mut state = lock(&self.state);
        state.fail_from = None;
        state.failed
    }

    fn write(&self, what: &str) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let n = state.writes;
        state.writes += 1;
        match state.fail_from {
            Some(k) if n >= k => {
                state.failed = true;
                Err(StoreError::Unavailable(format!(
                    "injected crash at write {n} ({what})"
                )))
            }
            _ => Ok(()),
        }
    }

    fn send(&self) -> Result<(), QueueError> {
        if !lock(&self.state).queue_sends {
            return Ok(());
        }
        self.write("send")
            .map_err(|error| QueueError::Unavailable(error.to_string()))
    }
}

/// The memory store (and its counters) behind crash injection on every write.
struct FaultyStore {
    inner: Arc<MemoryStore>,
    faults: Arc<Faults>,
}

#[async_trait]
impl LeadStore for FaultyStore {
    async fn create_lead(
        &self,
        lead: &LeadRecord,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        self.faults.write("create_lead")?;
        self.inner.create_lead(lead, idempotency).await
    }

    async fn get_lead(&self, id: &LeadId) -> Result<Option<LeadRecord>, StoreError> {
        self.inner.get_lead(id).await
    }

    async fn update_lead(
        &self,
        id: &LeadId,
        update: &LeadUpdate,
    ) -> Result<UpdateOutcome, StoreError> {
        self.faults.write("update_lead")?;
        self.inner.update_lead(id, update).await
    }

    async fn discard_lead(
        &self,
        id: &LeadId,
        idempotency: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        self.faults.write("discard_lead")?;
        self.inner.discard_lead(id, idempotency).await
    }

    async fn claim_unique(
        &self,
        key: &str,
        owner: &LeadId,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<ClaimOutcome, StoreError> {
        self.faults.write("claim_unique")?;
        self.inner.claim_unique(key, owner, expires_at, now).await
    }

    async fn unique_holder(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LeadId>, StoreError> {
        self.inner.unique_holder(key, now).await
    }

    async fn release_unique(&self, key: &str, owner: &LeadId) -> Result<(), StoreError> {
        self.faults.write("release_unique")?;
        self.inner.release_unique(key, owner).await
    }

    async fn get_config_document(&self) -> Result<Option<String>, StoreError> {
        self.inner.get_config_document().await
    }

    async fn put_config_document(&self, document: &str) -> Result<(), StoreError> {
        self.faults.write("put_config_document")?;
        self.inner.put_config_document(document).await
    }

    async fn list_partner_leads(
        &self,
        query: &leadhub::store::LeadListQuery,
    ) -> Result<leadhub::store::LeadPage, StoreError> {
        self.inner.list_partner_leads(query).await
    }
}

#[async_trait]
impl DeadDeliveries for FaultyStore {
    async fn record(&self, dead: &DeadDelivery) -> Result<(), StoreError> {
        self.faults.write("record_dead_delivery")?;
        self.inner.record(dead).await
    }

    async fn list(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeadDelivery>, StoreError> {
        self.inner.list(since, limit).await
    }

    async fn remove(
        &self,
        lead_id: &LeadId,
        destination: &str,
        died_by: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.faults.write("remove_dead_delivery")?;
        self.inner.remove(lead_id, destination, died_by).await
    }
}

#[async_trait]
impl Counters for FaultyStore {
    async fn reserve(
        &self,
        key: &str,
        holder: &str,
        limit: u64,
        expires_at: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        self.faults.write("reserve")?;
        self.inner.reserve(key, holder, limit, expires_at).await
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        self.faults.write("release")?;
        self.inner.release(key, holder).await
    }

    async fn counts(&self, keys: &[String]) -> Result<BTreeMap<String, u64>, StoreError> {
        self.inner.counts(keys).await
    }

    async fn next_sequence(&self, key: &str) -> Result<u64, StoreError> {
        self.faults.write("next_sequence")?;
        self.inner.next_sequence(key).await
    }
}

// ---- the harness's queue -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Validate,
    Dispatch,
}

#[derive(Debug, Clone)]
struct Message {
    target: Target,
    body: String,
}

type Pool = Arc<Mutex<Vec<Message>>>;

/// A queue that only records what is sent (delays ignored): the harness picks what runs.
struct PoolQueue {
    target: Target,
    pool: Pool,
    faults: Arc<Faults>,
}

#[async_trait]
impl JobQueue for PoolQueue {
    async fn send(&self, body: &str, _delay: Duration) -> Result<(), QueueError> {
        self.faults.send()?;
        lock(&self.pool).push(Message {
            target: self.target,
            body: body.to_owned(),
        });
        Ok(())
    }

    async fn receive(
        &self,
        _max: usize,
        _wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        Ok(Vec::new())
    }

    async fn delete(&self, _receipt_handle: &str) -> Result<(), QueueError> {
        Ok(())
    }
}

// ---- scripted buyers -----------------------------------------------------------------------------------

/// A buyer's answer to one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// 200 `{"id": ...}`.
    Accept,
    /// 400: declined.
    Reject,
    /// 503.
    ServerError,
    /// 429 with `Retry-After` (0 or 1 s).
    RateLimited(u8),
    /// No answer in time.
    Timeout,
}

/// Every destination's scripted answers, and what the buyers saw.
struct Buyers {
    store: Arc<MemoryStore>,
    state: Mutex<BuyerState>,
}

#[derive(Default)]
struct BuyerState {
    scripts: BTreeMap<String, VecDeque<Answer>>,
    /// (lead, destination) pairs the buyer answered 2xx.
    accepted: BTreeSet<(String, String)>,
    webhook_ids: BTreeMap<(String, String), String>,
    callback_urls: BTreeMap<(String, String), String>,
    /// (lead, destination) pairs whose delivery was seen with a recorded outcome (by the harness, between
    /// actions): never to be posted again.
    settled: BTreeSet<(String, String)>,
    posts: usize,
    violations: Vec<String>,
}

fn answer(status: u16, body: &str, retry_after: Option<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = retry_after {
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(u16::from(seconds)),
        );
    }
    Response {
        status,
        headers,
        body: Bytes::copy_from_slice(body.as_bytes()),
    }
}

#[async_trait]
impl Transport for Buyers {
    async fn send(&self, request: &Request, timeout: Duration) -> Result<Response, TransportError> {
        let destination = request
            .url
            .host_str()
            .and_then(|host| host.strip_prefix("buyer-"))
            .and_then(|host| host.strip_suffix(".example"))
            .unwrap_or("?")
            .to_owned();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let lead = body["data"]["leadId"].as_str().unwrap_or("?").to_owned();
        let webhook_id = request
            .headers
            .get("webhook-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        // Invariant 2: the delivery is claimed (in flight), and no outcome of it was ever recorded (on its
        // timeline, or seen by the harness).
        let record = match lead.parse::<LeadId>() {
            Ok(id) => self.store.get_lead(&id).await.ok().flatten(),
            Err(_) => None,
        };
        let recorded = record
            .as_ref()
            .and_then(|record| record.deliveries.get(&destination).map(|d| d.status));
        let outcome_on_timeline = record.as_ref().and_then(|record| {
            record
                .events
                .iter()
                .find(|event| {
                    event.destination.as_deref() == Some(destination.as_str())
                        && matches!(
                            event.kind,
                            EventKind::DeliveryAccepted
                                | EventKind::DeliveryRejected
                                | EventKind::DeliveryDead
                                | EventKind::DeliverySkipped
                        )
                })
                .map(|event| event.kind)
        });
        let mut state = lock(&self.state);
        state.posts += 1;
        if let Some(kind) = outcome_on_timeline {
            state.violations.push(format!(
                "invariant 2: buyer {destination} was posted lead {lead} after its timeline recorded {kind:?}"
            ));
        }
        if state.settled.contains(&(lead.clone(), destination.clone())) {
            state.violations.push(format!(
                "invariant 2: buyer {destination} was posted lead {lead} after its delivery was seen settled"
            ));
        }
        match recorded {
            Some(DeliveryStatus::InFlight) => {}
            Some(status) if status.is_final() => state.violations.push(format!(
                "invariant 2: buyer {destination} was posted lead {lead} after its delivery's outcome was recorded ({status})"
            )),
            other => state.violations.push(format!(
                "invariant 2: buyer {destination} was posted lead {lead} without a claim (delivery {other:?})"
            )),
        }
        // Invariant 5: one webhook-id per delivery, on every attempt.
        let key = (lead.clone(), destination.clone());
        let expected = format!("msg_{lead}_{destination}");
        if webhook_id != expected {
            state.violations.push(format!(
                "invariant 5: webhook-id `{webhook_id}` for lead {lead} at {destination}, expected `{expected}`"
            ));
        }
        let first = state
            .webhook_ids
            .entry(key.clone())
            .or_insert_with(|| webhook_id.clone())
            .clone();
        if first != webhook_id {
            state.violations.push(format!(
                "invariant 5: lead {lead} at {destination} was posted with webhook-id `{webhook_id}` after `{first}`"
            ));
        }
        match body["data"]["callbackUrl"].as_str() {
            Some(url) => {
                state.callback_urls.insert(key.clone(), url.to_owned());
            }
            None => state.violations.push(format!(
                "the post of lead {lead} to {destination} has no data.callbackUrl"
            )),
        }
        // Idempotent per webhook-id: a delivery taken is taken again.
        let next = if state.accepted.contains(&key) {
            Answer::Accept
        } else {
            state
                .scripts
                .get_mut(&destination)
                .and_then(VecDeque::pop_front)
                .unwrap_or(Answer::Accept)
        };
        match next {
            Answer::Accept => {
                state.accepted.insert(key);
                Ok(answer(
                    200,
                    &json!({"id": format!("B-{lead}")}).to_string(),
                    None,
                ))
            }
            Answer::Reject => Ok(answer(400, r#"{"message":"not interested"}"#, None)),
            Answer::ServerError => Ok(answer(503, "{}", None)),
            Answer::RateLimited(seconds) => Ok(answer(429, "{}", Some(seconds))),
            Answer::Timeout => Err(TransportError::Timeout(timeout)),
        }
    }
}

// ---- the configuration ---------------------------------------------------------------------------------

/// What a case runs on (proptest picks it).
#[derive(Debug, Clone)]
struct Setup {
    broadcast: bool,
    buyers: usize,
    /// One buyer's daily cap: (buyer index, K).
    cap: Option<(usize, u64)>,
    max_attempts: u32,
    /// Each buyer's answers, in order (then accept).
    scripts: Vec<Vec<Answer>>,
    /// Whether sending a job counts as a write that may crash.
    queue_crashes: bool,
}

impl Setup {
    fn ids(&self) -> &'static [&'static str] {
        &BUYER_IDS[..self.buyers]
    }

    fn capped(&self) -> Option<(&'static str, u64)> {
        self.cap
            .map(|(index, k)| (BUYER_IDS[index % self.buyers], k))
    }

    fn document(&self) -> String {
        let mut doc = format!(
            r#"[hub]
public_base_url = "https://hub.example"
hash_key = "env:MODEL_HASH_KEY"
callback_key = "env:MODEL_CALLBACK_KEY"

[retry]
base_delay_ms = 1
max_delay_secs = 1

[routing.heloc]
strategy = "{strategy}"
max_buyers = {BROADCAST_MAX_BUYERS}

[[partners]]
id = "model"
key_id = "pk_model"
secret_hash = "{hash}"
verticals = ["heloc"]
"#,
            strategy = if self.broadcast {
                "broadcast"
            } else {
                "waterfall"
            },
            hash = SecretHash::of("sk_model_0123456789abcdef").to_stored(),
        );
        for (i, id) in self.ids().iter().enumerate() {
            doc.push_str(&format!(
                r#"
[[destinations]]
id = "{id}"
kind = "webhook"
url = "https://buyer-{id}.example/hook"
signing_secret = "env:MODEL_SECRET_{i}"
verticals = ["heloc"]
timeout_ms = 100
max_attempts = {attempts}
priority = {priority}
"#,
                attempts = self.max_attempts,
                priority = i + 1,
            ));
            if let Some((capped, k)) = self.capped() {
                if capped == *id {
                    doc.push_str(&format!("[destinations.caps]\nday = {k}\n"));
                }
            }
        }
        doc
    }

    fn config(&self) -> Config {
        let mut secrets = BTreeMap::new();
        secrets.insert(
            "MODEL_HASH_KEY".to_owned(),
            "hk_model_0123456789abcdef0123456789abcdef".to_owned(),
        );
        secrets.insert(
            "MODEL_CALLBACK_KEY".to_owned(),
            "ck_model_0123456789abcdef0123456789abcdef".to_owned(),
        );
        for i in 0..self.buyers {
            let byte = u8::try_from(i + 1).expect("a few buyers");
            secrets.insert(
                format!("MODEL_SECRET_{i}"),
                WebhookSecret::from_bytes(&[byte; 32]).to_whsec(),
            );
        }
        Config::from_toml(&self.document(), &secrets).expect("the model's configuration")
    }
}

/// A valid HELOC lead (seed 001) whose email is `jane.model<n>@example.com`.
fn heloc_body(email: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "affiliateId": "aff-model",
        "buildingType": "singleFamily",
        "loanPurpose": "homeImprovement",
        "propertyUsage": "primaryResidence",
        "contactInfo": {
            "firstName": "Jane",
            "lastName": "Doe",
            "email": format!("jane.model{email}@example.com"),
            "phone": "(727) 555-0134"
        },
        "address": {"street": "100 Bayshore Blvd", "city": "Tampa", "state": "fl", "zip": "33606"},
        "residentialAddress": {"street": "100 Bayshore Blvd", "city": "Tampa", "state": "FL", "zip": "33606"},
        "listedForSaleIn6Months": false,
        "purchasedOrSubjectToMortgageIn6Months": false,
        "liabilitiesIn4Years": false
    }))
    .expect("serialises")
}

// ---- actions -------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Action {
    /// A new lead (up to four), with its validate job; `duplicate`: with the first lead's email.
    Create { duplicate: bool },
    /// Run the oldest pending message, or the `pick`-th; `crash`: fail the run's k-th write and later ones.
    Run {
        pick: Option<usize>,
        crash: Option<usize>,
    },
    /// Deliver a pending message twice.
    Duplicate { pick: usize },
    /// The workers holding the lead's in-flight attempts died: their leases are over.
    ExpireLeases { lead: usize },
    /// A buyer's verdict on a lead it was posted, through its callback URL.
    Verdict {
        lead: usize,
        buyer: usize,
        verdict: Verdict,
        crash: Option<usize>,
    },
    /// A buyer sends again a verdict that was answered 5xx.
    RetryVerdict { pick: usize, crash: Option<usize> },
}

// ---- the harness ---------------------------------------------------------------------------------------

fn is_open(status: DeliveryStatus) -> bool {
    matches!(
        status,
        DeliveryStatus::Pending | DeliveryStatus::InFlight | DeliveryStatus::Retrying
    )
}

const FINAL: [LeadStatus; 6] = [
    LeadStatus::Rejected,
    LeadStatus::Delivered,
    LeadStatus::Unsold,
    LeadStatus::Confirmed,
    LeadStatus::RejectedAfterPost,
    LeadStatus::Returned,
];

/// A job in the pool, parsed.
enum Job {
    Validate(LeadId),
    Deliver(LeadId, String, u32),
}

struct Harness {
    setup: Setup,
    store: Arc<MemoryStore>,
    faults: Arc<Faults>,
    pool: Pool,
    buyers: Arc<Buyers>,
    validate: Validate,
    dispatch: Dispatch,
    callback: Callback,
    leads: Vec<LeadId>,
    /// Verdicts answered 5xx that the buyer will send again: (callback URL, verdict, sends so far).
    verdicts_due: Vec<(String, Verdict, u32)>,
}

impl Harness {
    fn new(setup: Setup) -> Self {
        let config = Arc::new(setup.config());
        let store = Arc::new(MemoryStore::new());
        let faults = Arc::new(Faults::new(setup.queue_crashes));
        let faulty = Arc::new(FaultyStore {
            inner: store.clone(),
            faults: faults.clone(),
        });
        let pool: Pool = Arc::default();
        let queue = |target| -> Arc<dyn JobQueue> {
            Arc::new(PoolQueue {
                target,
                pool: pool.clone(),
                faults: faults.clone(),
            })
        };
        let buyers = Arc::new(Buyers {
            store: store.clone(),
            state: Mutex::new(BuyerState {
                scripts: setup
                    .ids()
                    .iter()
                    .zip(&setup.scripts)
                    .map(|(id, script)| ((*id).to_owned(), script.iter().copied().collect()))
                    .collect(),
                ..BuyerState::default()
            }),
        });
        let config = leadhub::live_config::LiveConfig::fixed(config);
        let validate = Validate {
            config: config.clone(),
            store: faulty.clone(),
            counters: faulty.clone(),
            dispatch_queue: queue(Target::Dispatch),
            // The model configures no suppression list or LeadSafe: these ports stay idle.
            suppressions: Arc::new(leadhub::store::memory::MemoryStore::new()),
            sealed_ssns: Arc::new(leadhub::store::memory::MemoryStore::new()),
            validate_queue: queue(Target::Validate),
            transport: buyers.clone(),
        };
        let dispatch = Dispatch {
            config: config.clone(),
            store: faulty.clone(),
            counters: faulty.clone(),
            dead_deliveries: faulty.clone(),
            buyer_refs: store.clone(),
            dispatch_queue: queue(Target::Dispatch),
            transport: buyers.clone(),
            // The model's partner has no callback URL: no notification is queued.
            notifications: Arc::new(leadhub::store::memory::MemoryStore::new()),
            partner_transport: buyers.clone(),
            // Tallies only count (no rule reads them): not crashed.
            tallies: store.clone(),
            pacer: Default::default(),
            buyer_tokens: Arc::new(leadhub::store::memory::MemoryStore::new()),
        };
        let callback = Callback {
            config,
            store: faulty,
            dispatch_queue: queue(Target::Dispatch),
            // No verdict of the model carries a consumer status: these ports stay idle.
            suppressions: Arc::new(leadhub::store::memory::MemoryStore::new()),
            leadsafe_reports: Arc::new(leadhub::store::memory::MemoryStore::new()),
            transport: buyers.clone(),
            buyer_refs: store.clone(),
            tallies: store.clone(),
            // Every verdict of the model is well formed: nothing is kept unparsed.
            unparsed_callbacks: Arc::new(leadhub::store::memory::MemoryStore::new()),
        };
        Harness {
            setup,
            store,
            faults,
            pool,
            buyers,
            validate,
            dispatch,
            callback,
            leads: Vec::new(),
            verdicts_due: Vec::new(),
        }
    }

    async fn act(&mut self, action: &Action) -> Result<(), String> {
        match *action {
            Action::Create { duplicate } => self.create(duplicate).await,
            Action::Run { pick, crash } => self.run(pick.unwrap_or(0), crash).await?,
            Action::Duplicate { pick } => {
                let mut pool = lock(&self.pool);
                if !pool.is_empty() {
                    let message = pool[pick % pool.len()].clone();
                    pool.push(message);
                }
            }
            Action::ExpireLeases { lead } => {
                if !self.leads.is_empty() {
                    let id = self.leads[lead % self.leads.len()].clone();
                    self.expire_leases(&id).await;
                }
            }
            Action::Verdict {
                lead,
                buyer,
                verdict,
                crash,
            } => {
                if self.leads.is_empty() {
                    return Ok(());
                }
                let id = self.leads[lead % self.leads.len()].to_string();
                let destination = self.setup.ids()[buyer % self.setup.buyers].to_owned();
                let url = lock(&self.buyers.state)
                    .callback_urls
                    .get(&(id, destination))
                    .cloned();
                if let Some(url) = url {
                    self.send_verdict(url, verdict, 0, crash).await?;
                }
            }
            Action::RetryVerdict { pick, crash } => {
                if !self.verdicts_due.is_empty() {
                    let (url, verdict, sends) =
                        self.verdicts_due.remove(pick % self.verdicts_due.len());
                    self.send_verdict(url, verdict, sends, crash).await?;
                }
            }
        }
        self.check(false).await
    }

    async fn create(&mut self, duplicate: bool) {
        if self.leads.len() >= MAX_LEADS {
            return;
        }
        let email = if duplicate { 0 } else { self.leads.len() };
        let parsed = Vertical::Heloc
            .parse(&heloc_body(email))
            .expect("a valid heloc lead");
        let now = leadhub::lead::now();
        let id = LeadId::generate(now);
        let mut record =
            LeadRecord::received(id.clone(), "model", Vertical::Heloc, parsed.lead, now, None);
        record.original = Some(parsed.original);
        let created = self
            .store
            .create_lead(&record, None)
            .await
            .expect("the lead is stored");
        assert_eq!(created, CreateOutcome::Created);
        let body = serde_json::to_string(&ValidateJob::new(id.clone())).expect("serialises");
        lock(&self.pool).push(Message {
            target: Target::Validate,
            body,
        });
        self.leads.push(id);
    }

    /// Run the `pick`-th pending message; a failed run leaves it in the pool (redelivered).
    async fn run(&mut self, pick: usize, crash: Option<usize>) -> Result<(), String> {
        let message = {
            let mut pool = lock(&self.pool);
            if pool.is_empty() {
                return Ok(());
            }
            let index = pick % pool.len();
            pool.remove(index)
        };
        self.faults.arm(crash);
        let result = match message.target {
            Target::Validate => {
                let job: ValidateJob = serde_json::from_str(&message.body).expect("a validate job");
                self.validate.validate(&job).await
            }
            Target::Dispatch => {
                let job: DispatchJob = serde_json::from_str(&message.body).expect("a dispatch job");
                self.dispatch.handle_job(&job).await
            }
        };
        let crashed = self.faults.disarm();
        if let Err(error) = result {
            if !crashed && !matches!(error, RecordError::NotYet(_)) {
                return Err(format!(
                    "invariant 6: {} failed without a crash: {error}",
                    message.body
                ));
            }
            lock(&self.pool).push(message);
        }
        Ok(())
    }

    async fn send_verdict(
        &mut self,
        url: String,
        verdict: Verdict,
        sends: u32,
        crash: Option<usize>,
    ) -> Result<(), String> {
        let request = http::Request::builder()
            .method("POST")
            .uri(url.as_str())
            .header("content-type", "application/json")
            .body(
                serde_json::to_vec(&json!({"verdict": verdict.as_str(), "reason": "model"}))
                    .expect("serialises"),
            )
            .expect("a request");
        self.faults.arm(crash);
        let response = self.callback.handle(request).await;
        self.faults.disarm();
        match response.status().as_u16() {
            // 202: kept until the buyer's answer to the delivery is recorded (the hub applies it then).
            200 | 202 | 409 => Ok(()),
            503 => {
                self.verdicts_due.push((url, verdict, sends + 1));
                Ok(())
            }
            status => Err(format!(
                "invariant 6: the callback answered {status} to a `{}` verdict: {}",
                verdict.as_str(),
                response.body()
            )),
        }
    }

    /// The workers holding `id`'s in-flight attempts died: move their leases into the past.
    async fn expire_leases(&self, id: &LeadId) {
        let Some(lead) = self.store.get_lead(id).await.expect("store") else {
            return;
        };
        let past = leadhub::lead::now() - chrono::Duration::seconds(1);
        for (destination, state) in &lead.deliveries {
            if state.status != DeliveryStatus::InFlight {
                continue;
            }
            let mut expired = state.clone();
            expired.lease_until = Some(past);
            let update = LeadUpdate::new(leadhub::lead::now()).delivery(
                destination,
                DeliveryExpect::StatusIn(vec![DeliveryStatus::InFlight]),
                expired,
            );
            self.store.update_lead(id, &update).await.expect("store");
        }
    }

    /// Run every message (no crashes; every lease held by a dead worker expired) and every verdict the
    /// buyers send again, until nothing is left; then check that everything is final.
    async fn drain(&mut self) -> Result<(), String> {
        for _ in 0..2_000 {
            for id in self.leads.clone() {
                self.expire_leases(&id).await;
            }
            if !lock(&self.pool).is_empty() {
                self.run(0, None).await?;
            } else if let Some((url, verdict, sends)) = self.verdicts_due.pop() {
                // A buyer gives up after a few tries.
                if sends < 4 {
                    self.send_verdict(url, verdict, sends, None).await?;
                }
            } else {
                return self.check(true).await;
            }
            self.check(false).await?;
        }
        Err("the drain did not end within 2000 runs".to_owned())
    }

    fn jobs(&self) -> (Vec<Job>, usize) {
        let pool = lock(&self.pool);
        let jobs = pool
            .iter()
            .map(|message| match message.target {
                Target::Validate => {
                    let job: ValidateJob =
                        serde_json::from_str(&message.body).expect("a validate job");
                    Job::Validate(job.lead_id)
                }
                Target::Dispatch => {
                    match serde_json::from_str(&message.body).expect("a dispatch job") {
                        DispatchJob::Deliver {
                            lead_id,
                            destination,
                            attempt,
                        } => Job::Deliver(lead_id, destination.to_string(), attempt),
                        DispatchJob::Notify(job) => {
                            panic!("the model's partner subscribes to nothing: {job:?}")
                        }
                    }
                }
            })
            .collect();
        (jobs, pool.len())
    }

    async fn check(&self, drained: bool) -> Result<(), String> {
        let (accepted_by_buyers, violation) = {
            let state = lock(&self.buyers.state);
            (state.accepted.clone(), state.violations.first().cloned())
        };
        if let Some(violation) = violation {
            return Err(violation);
        }
        let (jobs, pending) = self.jobs();
        let mut settled = Vec::new();
        let now = leadhub::lead::now();
        let mut recorded_accepted: BTreeMap<String, usize> = BTreeMap::new();
        for id in &self.leads {
            let lead = self
                .store
                .get_lead(id)
                .await
                .expect("store")
                .expect("the lead exists");
            let view = || {
                let deliveries: Vec<String> = lead
                    .deliveries
                    .iter()
                    .map(|(d, s)| format!("{d}: {} (attempts {})", s.status, s.attempts))
                    .collect();
                format!("lead {id} is {} [{}]", lead.status, deliveries.join(", "))
            };
            let open: Vec<(&String, _)> = lead
                .deliveries
                .iter()
                .filter(|(_, state)| is_open(state.status))
                .collect();

            // 1. Nothing stuck (and no verdict kept for ever: each was applied or recorded as not).
            if drained {
                if !FINAL.contains(&lead.status) || !open.is_empty() {
                    return Err(format!(
                        "invariant 1: stuck after every message ran: {}",
                        view()
                    ));
                }
                if !lead.kept_verdicts.is_empty() {
                    return Err(format!(
                        "invariant 1: a verdict is still kept after every message ran ({:?}): {}",
                        lead.kept_verdicts.keys().collect::<Vec<_>>(),
                        view()
                    ));
                }
            } else {
                let validate_job = jobs
                    .iter()
                    .any(|job| matches!(job, Job::Validate(l) if l == id));
                let dispatch_job = jobs
                    .iter()
                    .any(|job| matches!(job, Job::Deliver(l, _, _) if l == id));
                match lead.status {
                    LeadStatus::Received if !validate_job => {
                        return Err(format!(
                            "invariant 1: stuck: no validate job: {}",
                            view()
                        ))
                    }
                    LeadStatus::Routing
                        if open.is_empty()
                            && (!dispatch_job || settle(&lead, now).is_none()) =>
                    {
                        return Err(format!(
                            "invariant 1: stuck: routing with nothing open and nothing to settle it: {}",
                            view()
                        ))
                    }
                    _ => {}
                }
                // A kept verdict whose delivery is decided is applied by the next dispatch job of the lead
                // (a crashed one is redelivered).
                let decided_kept = lead.kept_verdicts.keys().any(|destination| {
                    lead.deliveries
                        .get(destination)
                        .is_none_or(|state| !is_open(state.status))
                });
                if decided_kept && !dispatch_job {
                    return Err(format!(
                        "invariant 1: stuck: a kept verdict's delivery is decided and no job would apply it: {}",
                        view()
                    ));
                }
                for (destination, state) in &open {
                    let pending = state.status == DeliveryStatus::Pending;
                    let acts = jobs.iter().any(|job| match job {
                        Job::Deliver(l, d, attempt) if l == id && d == *destination => {
                            !matches!(delivery_step(state, *attempt, now), DeliveryStep::Skip(_))
                        }
                        // A job of the lead that finds its own delivery settled re-sends the first
                        // attempts of the pending ones.
                        Job::Deliver(l, d, attempt) => {
                            l == id
                                && pending
                                && lead.deliveries.get(d).is_some_and(|other| {
                                    matches!(
                                        delivery_step(other, *attempt, now),
                                        DeliveryStep::Skip(_)
                                    )
                                })
                        }
                        // A redelivered validate job re-sends the first attempts of pending deliveries.
                        Job::Validate(l) => l == id && pending,
                    }) || (pending
                        // A verdict answered 503 and sent again re-sends them too.
                        && self.verdicts_due.iter().any(|(url, _, _)| url.contains(id.as_str())));
                    if !acts {
                        return Err(format!(
                            "invariant 1: stuck: no job would act on the open delivery to {destination}: {}",
                            view()
                        ));
                    }
                }
            }

            // 4. With one buyer at a time (waterfall), at most max_buyers at once (broadcast).
            if self.setup.broadcast {
                if open.len() > BROADCAST_MAX_BUYERS {
                    return Err(format!(
                        "invariant 4: a broadcast lead is open with more than {BROADCAST_MAX_BUYERS} buyers: {}",
                        view()
                    ));
                }
            } else {
                let holding = lead
                    .deliveries
                    .values()
                    .filter(|s| is_open(s.status) || s.status == DeliveryStatus::Accepted)
                    .count();
                if holding > 1 {
                    return Err(format!(
                        "invariant 4: a waterfall lead is with more than one buyer: {}",
                        view()
                    ));
                }
            }

            // 6. The record agrees with the buyers.
            let mut any_accepted = false;
            for (destination, state) in &lead.deliveries {
                if state.status.is_final() {
                    settled.push((id.to_string(), destination.clone()));
                }
                if state.status == DeliveryStatus::Accepted {
                    any_accepted = true;
                    *recorded_accepted.entry(destination.clone()).or_default() += 1;
                    if !accepted_by_buyers.contains(&(id.to_string(), destination.clone())) {
                        return Err(format!(
                            "invariant 6: the delivery to {destination} is recorded accepted but the buyer never took it: {}",
                            view()
                        ));
                    }
                }
            }
            let sold = matches!(
                lead.status,
                LeadStatus::Delivered
                    | LeadStatus::Confirmed
                    | LeadStatus::Returned
                    | LeadStatus::RejectedAfterPost
            );
            if sold && !any_accepted {
                return Err(format!(
                    "invariant 6: {} without an accepted delivery: {}",
                    lead.status,
                    view()
                ));
            }
            if lead.status == LeadStatus::Unsold && any_accepted {
                return Err(format!(
                    "invariant 6: unsold with an accepted delivery: {}",
                    view()
                ));
            }
        }

        lock(&self.buyers.state).settled.extend(settled);

        // 3. No cap exceeded.
        if let Some((capped, k)) = self.setup.capped() {
            let taken = accepted_by_buyers
                .iter()
                .filter(|(_, destination)| destination == capped)
                .count();
            let recorded = recorded_accepted.get(capped).copied().unwrap_or(0);
            if taken as u64 > k || recorded as u64 > k {
                return Err(format!(
                    "invariant 3: buyer {capped} with a daily cap of {k} took {taken} leads ({recorded} recorded accepted)"
                ));
            }
        }
        if drained && pending > 0 {
            return Err(format!("{pending} messages left after the drain"));
        }
        Ok(())
    }
}

/// Play one case: create the first lead, apply the actions (checking after each), drain, check.
fn play(setup: Setup, actions: &[Action]) -> Result<Harness, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // The handlers log every step; nobody reads these logs.
    let _quiet = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
    runtime.block_on(async move {
        let mut harness = Harness::new(setup);
        harness.create(false).await;
        for (step, action) in actions.iter().enumerate() {
            harness
                .act(action)
                .await
                .map_err(|error| format!("after action {step} ({action:?}): {error}"))?;
        }
        harness
            .drain()
            .await
            .map_err(|error| format!("after the drain: {error}"))?;
        Ok(harness)
    })
}

// ---- strategies ----------------------------------------------------------------------------------------

fn answer_strategy() -> impl Strategy<Value = Answer> {
    prop_oneof![
        3 => Just(Answer::Accept),
        2 => Just(Answer::Reject),
        2 => Just(Answer::ServerError),
        1 => (0u8..=1).prop_map(Answer::RateLimited),
        1 => Just(Answer::Timeout),
    ]
}

fn setup_strategy(queue_crashes: bool) -> impl Strategy<Value = Setup> {
    (
        any::<bool>(),
        2usize..=3,
        prop::option::of((0usize..3, 1u64..=2)),
        1u32..=3,
        prop::collection::vec(prop::collection::vec(answer_strategy(), 0..6), 3),
    )
        .prop_map(
            move |(broadcast, buyers, cap, max_attempts, scripts)| Setup {
                broadcast,
                buyers,
                cap,
                max_attempts,
                scripts,
                queue_crashes,
            },
        )
}

fn crash() -> impl Strategy<Value = Option<usize>> {
    prop::option::weighted(0.3, 0usize..4)
}

fn verdict_strategy() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        Just(Verdict::Confirmed),
        Just(Verdict::Rejected),
        Just(Verdict::Returned),
        Just(Verdict::Contacted),
    ]
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => prop::bool::weighted(0.15).prop_map(|duplicate| Action::Create { duplicate }),
        5 => crash().prop_map(|crash| Action::Run { pick: None, crash }),
        6 => (0usize..16, crash()).prop_map(|(pick, crash)| Action::Run { pick: Some(pick), crash }),
        2 => (0usize..16).prop_map(|pick| Action::Duplicate { pick }),
        1 => (0usize..4).prop_map(|lead| Action::ExpireLeases { lead }),
        2 => (0usize..4, 0usize..3, verdict_strategy(), crash())
            .prop_map(|(lead, buyer, verdict, crash)| Action::Verdict { lead, buyer, verdict, crash }),
        1 => (0usize..4, crash()).prop_map(|(pick, crash)| Action::RetryVerdict { pick, crash }),
    ]
}

/// Proptest's default of 256 cases, or `PROPTEST_CASES`.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// The lifecycle's invariants hold under any interleaving of runs, duplicates, crashes between store
    /// writes, lease expiries and late verdicts.
    #[test]
    fn model_lifecycle_invariants_hold_under_random_interleavings(
        setup in setup_strategy(false),
        actions in prop::collection::vec(action_strategy(), 1..60),
    ) {
        if let Err(error) = play(setup, &actions) {
            return Err(TestCaseError::fail(error));
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// The same model where sending a job may crash too (a crash between a store write and the job it
    /// queues, or an SQS send that fails after the write). It finds the three bugs of the regression cases
    /// below within a few dozen cases.
    #[test]
    fn model_lifecycle_invariants_hold_when_job_sends_crash_too(
        setup in setup_strategy(true),
        actions in prop::collection::vec(action_strategy(), 1..60),
    ) {
        if let Err(error) = play(setup, &actions) {
            return Err(TestCaseError::fail(error));
        }
    }
}

// ---- fixed cases ---------------------------------------------------------------------------------------

fn run_oldest(crash: Option<usize>) -> Action {
    Action::Run { pick: None, crash }
}

fn waterfall_of_two(first: Vec<Answer>, queue_crashes: bool) -> Setup {
    Setup {
        broadcast: false,
        buyers: 2,
        cap: None,
        max_attempts: 1,
        scripts: vec![first, Vec::new(), Vec::new()],
        queue_crashes,
    }
}

fn statuses(harness: &Harness) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    harness
        .leads
        .iter()
        .map(|id| {
            let lead = runtime
                .block_on(harness.store.get_lead(id))
                .expect("store")
                .expect("the lead");
            let deliveries: Vec<String> = lead
                .deliveries
                .iter()
                .map(|(d, s)| format!("{d}={}", s.status))
                .collect();
            format!("{} {}", lead.status, deliveries.join(" "))
        })
        .collect()
}

/// The harness is not vacuous: a waterfall's first buyer declines, the second takes the lead.
#[test]
fn model_harness_walks_a_waterfall() {
    let harness =
        play(waterfall_of_two(vec![Answer::Reject], false), &[]).expect("the model holds");
    assert_eq!(statuses(&harness), ["delivered a=rejected b=accepted"]);
    assert_eq!(lock(&harness.buyers.state).posts, 2);
}

/// A crash after the buyer took the lead (its outcome not recorded), then the dead worker's lease runs
/// out: the attempt is made again with the same webhook-id and recorded once.
#[test]
fn model_harness_redelivers_after_a_crash_and_an_expired_lease() {
    let actions = [
        run_oldest(None),
        // claim (write 0) applied, the buyer answers 200, recording it (write 1) crashes.
        run_oldest(Some(1)),
        run_oldest(None), // busy: the lease still holds
        Action::ExpireLeases { lead: 0 },
        run_oldest(None),
    ];
    let harness = play(waterfall_of_two(Vec::new(), false), &actions).expect("the model holds");
    assert_eq!(statuses(&harness), ["delivered a=accepted b=queued"]);
    assert_eq!(
        lock(&harness.buyers.state).posts,
        2,
        "posted twice, one webhook-id"
    );
}

/// The kinds of the first lead's timeline.
fn timeline(harness: &Harness) -> Vec<EventKind> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let lead = runtime
        .block_on(harness.store.get_lead(&harness.leads[0]))
        .expect("store")
        .expect("the lead");
    lead.events.iter().map(|event| event.kind).collect()
}

/// A verdict sent while a's delivery is retrying (it answered 503 first) is kept; the next attempt's
/// acceptance applies it. Here the write applying it crashes: the redelivered job applies it, once.
#[test]
fn model_a_kept_verdict_applies_once_even_when_its_write_crashes() {
    let setup = Setup {
        max_attempts: 2,
        ..waterfall_of_two(vec![Answer::ServerError], false)
    };
    let actions = [
        run_oldest(None), // validate
        run_oldest(None), // a's attempt 1: 503, retrying
        Action::Verdict {
            lead: 0,
            buyer: 0,
            verdict: Verdict::Confirmed,
            crash: None,
        },
        // The claim (write 0) and the acceptance (write 1) apply; applying the kept verdict (write 2)
        // crashes, and the job is redelivered.
        run_oldest(Some(2)),
    ];
    let harness = play(setup, &actions).expect("the model holds");
    assert_eq!(statuses(&harness), ["confirmed a=accepted b=skipped"]);
    let kinds = timeline(&harness);
    let count = |kind| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(count(EventKind::VerdictKept), 1, "{kinds:?}");
    assert_eq!(count(EventKind::BuyerVerdict), 1, "{kinds:?}");
    assert_eq!(count(EventKind::Delivered), 1, "{kinds:?}");
}

/// A verdict kept while a's delivery is retrying, and a then declines: the verdict is recorded as not
/// applied and the lead goes on to b.
#[test]
fn model_a_kept_verdict_on_a_declined_delivery_is_not_applied() {
    let setup = Setup {
        max_attempts: 2,
        ..waterfall_of_two(vec![Answer::ServerError, Answer::Reject], false)
    };
    let actions = [
        run_oldest(None),
        run_oldest(None),
        Action::Verdict {
            lead: 0,
            buyer: 0,
            verdict: Verdict::Rejected,
            crash: None,
        },
    ];
    let harness = play(setup, &actions).expect("the model holds");
    assert_eq!(statuses(&harness), ["delivered a=rejected b=accepted"]);
    let kinds = timeline(&harness);
    assert!(kinds.contains(&EventKind::VerdictNotApplied), "{kinds:?}");
    assert!(!kinds.contains(&EventKind::BuyerVerdict), "{kinds:?}");
}

// Bugs found by `model_lifecycle_invariants_hold_when_job_sends_crash_too`, shrunk by hand. Each one: a
// transition is written, then sending the job it queues fails (SQS unavailable, or the function dies between
// the two calls); the message is redelivered, but its second run sees the transition already applied and
// does not send the job again, so a delivery stays `pending` with no job to make it: the lead never reaches
// that buyer (and in a waterfall stays `routing` forever). Un-ignore these (and the property) with the fix.

/// Dispatch: a's rejection is recorded, settle offers the lead to b (write 2: b `pending`), sending b's first
/// attempt (write 3) fails. The redelivered job for a sees a settled delivery (`Skip`) and calls settle,
/// which does nothing while b is pending: b's job is never sent. The same happens after a dead delivery or
/// a full cap (`skipped`).
#[test]
fn regression_dispatch_loses_the_next_buyers_job_when_its_send_fails() {
    let actions = [run_oldest(None), run_oldest(Some(3))];
    if let Err(error) = play(waterfall_of_two(vec![Answer::Reject], true), &actions) {
        panic!("{error}");
    }
}

/// Callback: a took the lead; its later `rejected` verdict moves the lead on to b (write 0 applied), sending
/// b's first attempt (write 1) fails and the buyer is answered 503. It sends the verdict again: `already
/// recorded` (200), and b's job is never sent.
#[test]
fn regression_callback_loses_the_next_buyers_job_when_its_send_fails() {
    let actions = [
        run_oldest(None),
        run_oldest(None),
        Action::Verdict {
            lead: 0,
            buyer: 0,
            verdict: Verdict::Rejected,
            crash: Some(1),
        },
    ];
    if let Err(error) = play(waterfall_of_two(vec![Answer::Accept], true), &actions) {
        panic!("{error}");
    }
}

/// Validate, broadcast to a and b: the routing write applies, a's first attempt is sent, b's (write 3)
/// fails. Before the validate message comes back, a takes the lead and it is settled `delivered`; the
/// redelivered validate job re-sends pending jobs only for a `routing` lead, so b stays `pending` for good
/// and is never offered the lead.
#[test]
fn regression_validate_loses_a_broadcast_job_once_the_lead_is_delivered() {
    let setup = Setup {
        broadcast: true,
        ..waterfall_of_two(Vec::new(), true)
    };
    let actions = [run_oldest(Some(3)), run_oldest(None), run_oldest(None)];
    if let Err(error) = play(setup, &actions) {
        panic!("{error}");
    }
}
