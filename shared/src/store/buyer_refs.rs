//! The `BuyerRefs` port: a buyer's own id for a lead it took (a delivery's `buyer_ref`, e.g. the Lofty lead
//! id) mapped back to the hub's lead, so that the buyer's webhooks, which name only its own id, reach the
//! lead's timeline.
//!
//! Dispatch records the mapping once the delivery is recorded accepted with a reference (and again when a
//! redelivered job finds it so: recording is idempotent). One reference may map to several leads: a buyer
//! that merges a consumer's leads (Lofty's duplicate lookup adds a note to the existing contact) gives each
//! the same id. An entry expires with its lead.
//!
//! Adapters: [`MemoryStore`](super::memory::MemoryStore) and [`DynamoStore`](super::dynamodb::DynamoStore)
//! (its module docs give the item). Both pass the same contract suite
//! (`shared/tests/it/buyer_refs_contract.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::lead::{LeadId, LeadRecord};

/// The most characters of a buyer's reference that are kept (longer ones are not recorded).
pub const MAX_BUYER_REF_CHARS: usize = 256;

/// One (destination, buyer reference) -> lead entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerRef {
    pub destination: String,
    /// The buyer's own id for the lead, as its answer gave it.
    pub buyer_ref: String,
    pub lead_id: LeadId,
    /// When the entry goes: its lead's expiry (none when the lead never expires).
    pub expires_at: Option<DateTime<Utc>>,
}

impl BuyerRef {
    /// The entry for `lead`'s delivery to `destination`, when that delivery is accepted with a reference
    /// the store can keep.
    pub fn of_accepted(lead: &LeadRecord, destination: &str) -> Option<BuyerRef> {
        let state = lead.deliveries.get(destination)?;
        if state.status != crate::lead::DeliveryStatus::Accepted {
            return None;
        }
        let buyer_ref = state.buyer_ref.as_deref()?;
        if buyer_ref.is_empty() || buyer_ref.chars().count() > MAX_BUYER_REF_CHARS {
            return None;
        }
        Some(BuyerRef {
            destination: destination.to_owned(),
            buyer_ref: buyer_ref.to_owned(),
            lead_id: lead.id.clone(),
            expires_at: lead.expires_at,
        })
    }
}

/// Buyer references, looked up by (destination, reference).
#[async_trait]
pub trait BuyerRefs: Send + Sync {
    /// Record `entry`. Recording the same entry again changes nothing but its expiry.
    async fn record_buyer_ref(&self, entry: &BuyerRef) -> Result<(), StoreError>;

    /// The leads `destination` knows as `buyer_ref`, newest first, at most `limit`; expired entries are not
    /// returned. A strongly consistent read.
    async fn leads_for_buyer_ref(
        &self,
        destination: &str,
        buyer_ref: &str,
        limit: usize,
    ) -> Result<Vec<LeadId>, StoreError>;
}
