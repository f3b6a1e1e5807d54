//! The `DeadDeliveries` port: one marker per dead delivery, so that an operator can list them by the time
//! they died (`leadhub-admin deliveries dead`) and replay one (`leadhub-admin deliveries replay`).
//!
//! The lead record stays the truth: a marker is a copy of a dead delivery's facts (ids, time, attempts, the
//! reason's code and words, no PII), written by dispatch through [`crate::lifecycle::commit`] when an
//! attempt's outcome makes the delivery dead, written again by a redelivered job that finds it dead
//! (idempotent), and removed once a replay is applied. A marker expires with its lead.
//!
//! Adapters: [`MemoryStore`](super::memory::MemoryStore) and [`DynamoStore`](super::dynamodb::DynamoStore)
//! (its module docs give the item). Both pass the same contract suite
//! (`shared/tests/it/dead_deliveries_contract.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::lead::LeadId;

/// A dead delivery as listed to an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadDelivery {
    pub lead_id: LeadId,
    pub destination: String,
    /// When the attempt that made it dead was recorded (to the millisecond).
    pub died_at: DateTime<Utc>,
    /// Attempts made.
    pub attempts: u32,
    /// The reason's stable code (`http_500`, `timeout`, `http_401`...).
    pub code: String,
    /// The reason in words, as on the partner's timeline (no PII, no credentials).
    pub reason: String,
    /// When the marker goes: its lead's expiry (none when the lead never expires).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Markers of dead deliveries, listed newest first.
#[async_trait]
pub trait DeadDeliveries: Send + Sync {
    /// Record `dead` (one marker per lead and destination). Putting the same marker again changes nothing;
    /// a marker of a later death replaces one of an earlier death, never the other way round (a stale
    /// redelivered job cannot hide the delivery's latest death).
    async fn record(&self, dead: &DeadDelivery) -> Result<(), StoreError>;

    /// The markers of deliveries that died at or after `since`, newest first (ties: by lead id, then
    /// destination, descending), at most `limit`. Expired markers are not listed.
    async fn list(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeadDelivery>, StoreError>;

    /// Remove the marker of `lead_id`'s delivery to `destination` if it records a death at or before
    /// `died_by` (a replayed death); a marker of a later death stays. Removing what is not there is a no-op.
    async fn remove(
        &self,
        lead_id: &LeadId,
        destination: &str,
        died_by: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// A change to the markers, made by [`crate::lifecycle::commit`] once its lead update is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadDeliveryChange {
    /// The delivery is dead: [`DeadDeliveries::record`].
    Record(DeadDelivery),
    /// The delivery was replayed: [`DeadDeliveries::remove`].
    Remove {
        lead_id: LeadId,
        destination: String,
        died_by: DateTime<Utc>,
    },
}
