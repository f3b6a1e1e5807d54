//! The `SealedSsns` port: the one copy of a lead's SSN that the hub keeps as itself, sealed
//! ([`SealedSsn`], from [`crate::crypto::SsnSealer`]) and only until screening has decided.
//!
//! Ingest puts it before it creates the lead (and deletes it again when the lead is not created, is a
//! replay, or is discarded); validate reads it for LeadSafe's search and deletes it once screening has
//! decided. Each sealed SSN expires `hub.ssn_ttl_hours` after its lead was received whatever happens: a read
//! after that answers `None`, and the DynamoDB item carries the table's TTL.
//!
//! Adapters: [`MemoryStore`](super::memory::MemoryStore) and [`DynamoStore`](super::dynamodb::DynamoStore)
//! (its module docs give the item). Both pass the same contract suite
//! (`shared/tests/it/sealed_ssns_contract.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::crypto::SealedSsn;
use crate::lead::LeadId;

/// One sealed SSN per lead.
#[async_trait]
pub trait SealedSsns: Send + Sync {
    /// Keep `sealed` for `lead` until `expires_at`, replacing what the lead had.
    async fn put_sealed_ssn(
        &self,
        lead: &LeadId,
        sealed: &SealedSsn,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The lead's sealed SSN (a strongly consistent read); `None` when there is none or it expired at or
    /// before `now`.
    async fn get_sealed_ssn(
        &self,
        lead: &LeadId,
        now: DateTime<Utc>,
    ) -> Result<Option<SealedSsn>, StoreError>;

    /// Remove the lead's sealed SSN. Removing what is not there is a no-op.
    async fn delete_sealed_ssn(&self, lead: &LeadId) -> Result<(), StoreError>;
}
