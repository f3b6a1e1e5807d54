//! The `LeadStore` port: everything the handlers keep, with the conditions that make it race-free; the
//! [`Counters`] port (cap counters and the weighted-routing sequence, in [`counters`]); the
//! [`DeadDeliveries`] port (markers of dead deliveries for operators, in [`dead_deliveries`]); the
//! [`Suppressions`] port (the suppression list, in [`suppressions`]); the [`SealedSsns`] port (a
//! lead's SSN, sealed, until screening has decided, in [`sealed_ssns`]); and the [`LeadSafeReports`] port
//! (consumer statuses reported back to LeadSafe, their SSNs sealed, in [`leadsafe_reports`]); the
//! [`NotificationLog`] port (partner notifications that failed, disabled endpoints, in [`notifications`]);
//! the [`BuyerRefs`] port (a buyer's own id for a lead mapped back to the lead, in [`buyer_refs`]); the
//! [`UnparsedCallbacks`] port (buyer callbacks whose body could not be read as a verdict, kept for the
//! operator, in [`unparsed_callbacks`]); the [`DeliveryTallies`] port (accepted and returned
//! deliveries per destination and day, for return rates, in [`tallies`]); and the [`BuyerTokens`] port (a
//! buyer's current OAuth token and its refresh lease, shared by every dispatcher, in [`buyer_tokens`]).
//!
//! Adapters: [`memory::MemoryStore`] (local stack, unit tests) and [`dynamodb::DynamoStore`]. Both pass the
//! same contract suites (`shared/tests/it/store_contract.rs`, `shared/tests/it/counters_contract.rs`,
//! `shared/tests/it/dead_deliveries_contract.rs`, `shared/tests/it/suppressions_contract.rs`,
//! `shared/tests/it/sealed_ssns_contract.rs`, `shared/tests/it/leadsafe_reports_contract.rs`,
//! `shared/tests/it/notifications_contract.rs`, `shared/tests/it/buyer_refs_contract.rs`,
//! `shared/tests/it/lead_listing_contract.rs`, `shared/tests/it/kept_verdicts_contract.rs`,
//! `shared/tests/it/unparsed_callbacks_contract.rs`, `shared/tests/it/tallies_contract.rs`,
//! `shared/tests/it/buyer_tokens_contract.rs`).

pub mod buyer_refs;
pub mod buyer_tokens;
pub mod counters;
pub mod dead_deliveries;
pub mod dynamodb;
pub mod lead_listing;
pub mod leadsafe_reports;
pub mod memory;
pub mod notifications;
pub mod sealed_ssns;
pub mod suppressions;
pub mod tallies;
pub mod unparsed_callbacks;

pub use buyer_refs::{BuyerRef, BuyerRefs};
pub use buyer_tokens::{BuyerToken, BuyerTokens, StoredToken};
pub use counters::{cap_key, sequence_key, Counters, Reservation};
pub use dead_deliveries::{DeadDeliveries, DeadDelivery, DeadDeliveryChange};
pub use lead_listing::{LeadListQuery, LeadPage, LeadSummary, ListPosition};
pub use leadsafe_reports::LeadSafeReports;
pub use notifications::{DisabledEndpoint, FailedNotification, NotificationLog};
pub use sealed_ssns::SealedSsns;
pub use suppressions::{KindCounts, SuppressionCounts, Suppressions};
pub use tallies::{DayTally, DeliveryTallies, Tally};
pub use unparsed_callbacks::{UnparsedCallback, UnparsedCallbackId, UnparsedCallbacks};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::lead::{
    DeliveryState, DeliveryStatus, KeptVerdict, LeadId, LeadRecord, LeadStatus, TimelineEvent,
};

/// The store failed; the operation may or may not have been applied only where the variant says so.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store could not be reached or refused the call: {0}")]
    Unavailable(String),
    #[error("a stored item could not be read: {0}")]
    Corrupt(String),
    #[error("an item with this key already exists: {0}")]
    AlreadyExists(String),
}

/// The record that makes an `Idempotency-Key` replay return the first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub partner_id: String,
    pub key: String,
    /// SHA-256 of the request (method, path and body): the same key with another body is refused.
    pub request_hash: String,
    pub lead_id: LeadId,
    pub created_at: DateTime<Utc>,
    /// Until then the first request may still be in flight: a replay gets 409.
    pub in_flight_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The result of [`LeadStore::create_lead`].
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created,
    /// Nothing was written: the partner already used this idempotency key.
    IdempotencyKeyUsed(IdempotencyRecord),
}

/// What a delivery must look like for an update to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryExpect {
    /// There is no delivery to this destination yet.
    Absent,
    /// The delivery is in one of these states.
    StatusIn(Vec<DeliveryStatus>),
    /// Attempt `attempt` may start: the delivery is pending or retrying with `attempt - 1` attempts made, or
    /// already in flight for `attempt` with a lease that ran out before `now` (its owner died).
    Claimable { attempt: u32, now: DateTime<Utc> },
    /// The delivery is in flight for attempt `attempt`: what the worker that claimed that attempt expects
    /// when it records the outcome, so that a worker which outlived its lease cannot overwrite a later
    /// attempt's claim.
    InFlight { attempt: u32 },
}

/// Set one delivery's state, if it matches `expect`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryChange {
    pub destination: String,
    pub expect: DeliveryExpect,
    pub state: DeliveryState,
}

/// Keep or drop a buyer's verdict kept on the lead ([`LeadRecord::kept_verdicts`]), each with its own
/// precondition.
#[derive(Debug, Clone, PartialEq)]
pub enum KeptVerdictChange {
    /// Keep `verdict` for `destination`: only while no verdict is kept for it and its delivery is in one of
    /// `while_delivery_in` (the open states: the buyer's answer is not recorded yet).
    Keep {
        destination: String,
        verdict: KeptVerdict,
        while_delivery_in: Vec<DeliveryStatus>,
    },
    /// Drop the verdict kept for `destination` (applied, or not applicable): only while the one kept is
    /// the one received at `received_at`, so that it is applied at most once.
    Drop {
        destination: String,
        received_at: DateTime<Utc>,
    },
}

impl KeptVerdictChange {
    pub fn destination(&self) -> &str {
        match self {
            KeptVerdictChange::Keep { destination, .. }
            | KeptVerdictChange::Drop { destination, .. } => destination,
        }
    }
}

/// One atomic change to a lead: every precondition holds and everything is applied, or nothing is.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadUpdate {
    /// The lead's status must be one of these (any status when empty).
    pub expect_status: Vec<LeadStatus>,
    pub set_status: Option<LeadStatus>,
    pub deliveries: Vec<DeliveryChange>,
    /// Verdicts kept or dropped (at most one change per destination).
    pub kept_verdicts: Vec<KeptVerdictChange>,
    /// Appended to the timeline.
    pub events: Vec<TimelineEvent>,
    pub now: DateTime<Utc>,
}

impl LeadUpdate {
    pub fn new(now: DateTime<Utc>) -> Self {
        LeadUpdate {
            expect_status: Vec::new(),
            set_status: None,
            deliveries: Vec::new(),
            kept_verdicts: Vec::new(),
            events: Vec::new(),
            now,
        }
    }

    /// Keep `verdict` for `destination` while its delivery is in one of `while_delivery_in` and none is
    /// kept for it ([`KeptVerdictChange::Keep`]).
    pub fn keep_verdict(
        mut self,
        destination: &str,
        verdict: KeptVerdict,
        while_delivery_in: &[DeliveryStatus],
    ) -> Self {
        self.kept_verdicts
            .retain(|change| change.destination() != destination);
        self.kept_verdicts.push(KeptVerdictChange::Keep {
            destination: destination.to_owned(),
            verdict,
            while_delivery_in: while_delivery_in.to_vec(),
        });
        self
    }

    /// Drop the verdict kept for `destination` if it is the one received at `received_at`
    /// ([`KeptVerdictChange::Drop`]).
    pub fn drop_kept_verdict(mut self, destination: &str, received_at: DateTime<Utc>) -> Self {
        self.kept_verdicts
            .retain(|change| change.destination() != destination);
        self.kept_verdicts.push(KeptVerdictChange::Drop {
            destination: destination.to_owned(),
            received_at,
        });
        self
    }

    pub fn expect(mut self, statuses: &[LeadStatus]) -> Self {
        self.expect_status = statuses.to_vec();
        self
    }

    pub fn status(mut self, status: LeadStatus) -> Self {
        self.set_status = Some(status);
        self
    }

    pub fn delivery(
        mut self,
        destination: &str,
        expect: DeliveryExpect,
        state: DeliveryState,
    ) -> Self {
        self.deliveries.push(DeliveryChange {
            destination: destination.to_owned(),
            expect,
            state,
        });
        self
    }

    pub fn event(mut self, event: TimelineEvent) -> Self {
        self.events.push(event);
        self
    }
}

/// The result of [`LeadStore::update_lead`].
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    /// Applied; the record as it now is.
    Applied(LeadRecord),
    /// A precondition did not hold; nothing was written. The record as it is.
    Conflict(LeadRecord),
    NotFound,
}

/// The result of [`LeadStore::claim_unique`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The value is now (or was already) held by this lead.
    Claimed,
    /// Another lead holds it.
    HeldBy(LeadId),
}

/// Where leads, idempotency records and uniqueness claims live.
#[async_trait]
pub trait LeadStore: Send + Sync {
    /// Store a new lead with one conditional write; with an idempotency record, both or neither.
    async fn create_lead(
        &self,
        lead: &LeadRecord,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError>;

    /// A lead by id (strongly consistent).
    async fn get_lead(&self, id: &LeadId) -> Result<Option<LeadRecord>, StoreError>;

    /// Apply `update` atomically if its preconditions hold.
    async fn update_lead(
        &self,
        id: &LeadId,
        update: &LeadUpdate,
    ) -> Result<UpdateOutcome, StoreError>;

    /// Undo a `create_lead` whose lead could not be queued: removes the lead while it is still `received`,
    /// and then the idempotency record if given, so the partner's retry starts afresh. A lead already past
    /// `received` (its send only looked like it failed) is kept, and so is its idempotency record, so a
    /// retry gets the first answer rather than a second lead.
    async fn discard_lead(
        &self,
        id: &LeadId,
        idempotency: Option<(&str, &str)>,
    ) -> Result<(), StoreError>;

    /// Claim `key` (a keyed hash, never raw PII) for `owner`, race-free, until `expires_at` (`None`:
    /// forever). A claim whose expiry is at or before `now` is free. Claiming a key one already holds
    /// succeeds without moving its expiry, so a redelivered message gets the same answer.
    async fn claim_unique(
        &self,
        key: &str,
        owner: &LeadId,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<ClaimOutcome, StoreError>;

    /// Who holds the uniqueness claim `key` at `now`, without claiming it (a test lead's duplicate check).
    async fn unique_holder(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LeadId>, StoreError>;

    /// Give up `owner`'s claim of `key` (a lead that screening then refused, or one that no longer exists).
    /// A key `owner` does not hold is left as it is.
    async fn release_unique(&self, key: &str, owner: &LeadId) -> Result<(), StoreError>;

    /// The active configuration document (TOML), if an operator stored one.
    async fn get_config_document(&self) -> Result<Option<String>, StoreError>;

    /// Store the configuration document (the operator command checks it first).
    async fn put_config_document(&self, document: &str) -> Result<(), StoreError>;

    /// One page of a partner's own leads, newest first (see [`lead_listing`]): the leads for which
    /// [`LeadListQuery::matches`] holds (expired ones are not listed), at most
    /// [`LeadListQuery::page_size`]. Index reads may be eventually consistent: a lead created a moment ago
    /// may not be listed yet.
    async fn list_partner_leads(&self, query: &LeadListQuery) -> Result<LeadPage, StoreError>;
}

/// Check `update`'s preconditions against `record` (the memory adapter's semantics, and the reference
/// for the DynamoDB condition expression).
pub fn preconditions_hold(record: &LeadRecord, update: &LeadUpdate) -> bool {
    if !update.expect_status.is_empty() && !update.expect_status.contains(&record.status) {
        return false;
    }
    let kept_hold = update.kept_verdicts.iter().all(|change| match change {
        KeptVerdictChange::Keep {
            destination,
            while_delivery_in,
            ..
        } => {
            !record.kept_verdicts.contains_key(destination)
                && record
                    .deliveries
                    .get(destination)
                    .is_some_and(|state| while_delivery_in.contains(&state.status))
        }
        KeptVerdictChange::Drop {
            destination,
            received_at,
        } => record
            .kept_verdicts
            .get(destination)
            .is_some_and(|kept| kept.received_at == *received_at),
    });
    kept_hold
        && update.deliveries.iter().all(|change| {
            let current = record.deliveries.get(&change.destination);
            match (&change.expect, current) {
                (DeliveryExpect::Absent, current) => current.is_none(),
                (DeliveryExpect::StatusIn(statuses), Some(state)) => {
                    statuses.contains(&state.status)
                }
                (DeliveryExpect::StatusIn(_), None) => false,
                (DeliveryExpect::Claimable { attempt, now }, Some(state)) => match state.status {
                    DeliveryStatus::Pending | DeliveryStatus::Retrying => {
                        state.attempts + 1 == *attempt
                    }
                    DeliveryStatus::InFlight => {
                        state.attempts == *attempt
                            && state.lease_until.is_some_and(|lease| lease < *now)
                    }
                    _ => false,
                },
                (DeliveryExpect::Claimable { .. }, None) => false,
                (DeliveryExpect::InFlight { attempt }, Some(state)) => {
                    state.status == DeliveryStatus::InFlight && state.attempts == *attempt
                }
                (DeliveryExpect::InFlight { .. }, None) => false,
            }
        })
}

/// Apply `update` to `record` (after [`preconditions_hold`]).
pub fn apply_update(record: &mut LeadRecord, update: &LeadUpdate) {
    if let Some(status) = update.set_status {
        record.status = status;
    }
    for change in &update.deliveries {
        record
            .deliveries
            .insert(change.destination.clone(), change.state.clone());
    }
    for change in &update.kept_verdicts {
        match change {
            KeptVerdictChange::Keep {
                destination,
                verdict,
                ..
            } => {
                record
                    .kept_verdicts
                    .insert(destination.clone(), verdict.clone());
            }
            KeptVerdictChange::Drop { destination, .. } => {
                record.kept_verdicts.remove(destination);
            }
        }
    }
    record.events.extend(update.events.iter().cloned());
    record.updated_at = update.now;
}
