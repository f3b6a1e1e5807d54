//! The `Counters` port: race-free delivery-cap counters and the weighted-routing sequence.
//!
//! A cap counter counts *holders* (a lead's delivery to one destination, e.g. `<leadId>#<destination>`)
//! against a key such as `CAP#<destination>#day:2026-12-02` ([`cap_key`], the window keys of
//! [`crate::routing::cap_window`]), up to a limit. Reserving is idempotent per holder, so a redelivered job
//! gets the same answer and is not counted twice; a rejected or dead delivery releases its place. A counter
//! expires at the end of its window: an expired counter counts nothing, and the next reservation starts it
//! afresh. Holders per counter are bounded by the limit, at most [`MAX_CAP`].
//!
//! A sequence ([`sequence_key`]) hands out 0, 1, 2, ... atomically: the weighted rotation's position.
//!
//! Keys and holders name leads and destinations by id only, never PII.
//!
//! Adapters: [`MemoryStore`](super::memory::MemoryStore) and [`DynamoStore`](super::dynamodb::DynamoStore)
//! (its module docs give the items). Both pass the same contract suite
//! (`shared/tests/it/counters_contract.rs`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::verticals::Vertical;

pub use crate::routing::MAX_CAP;

/// The answer to [`Counters::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The holder is counted: now, or already before.
    Reserved,
    /// The holder is not counted: `used` holders already are, and the limit was at most that.
    Full { used: u64 },
}

/// Cap counters and sequences.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Count `holder` (e.g. `<leadId>#<destination>`) against `key` if fewer than `limit` holders are
    /// counted; idempotent per holder (a redelivered job reserving again gets `Reserved` and does not count
    /// twice, even when the counter is full). A counter that does not exist or has expired starts afresh,
    /// expiring at `expires_at`; a live counter keeps the expiry it started with.
    async fn reserve(
        &self,
        key: &str,
        holder: &str,
        limit: u64,
        expires_at: DateTime<Utc>,
    ) -> Result<Reservation, StoreError>;

    /// Stop counting `holder` against `key` (a rejected or dead delivery frees its place); releasing what
    /// is not held, or a key that does not exist, is a no-op.
    async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError>;

    /// How many holders each of `keys` counts now (missing or expired keys: 0), for routing's
    /// [`CapUsage`](crate::routing::CapUsage). Every key asked for is in the answer.
    async fn counts(&self, keys: &[String]) -> Result<BTreeMap<String, u64>, StoreError>;

    /// The next value of the sequence `key`: 0 first, then 1, 2, ..., atomically (no two calls get the same
    /// value). Sequences never expire.
    async fn next_sequence(&self, key: &str) -> Result<u64, StoreError>;
}

/// The counter of `destination`'s cap window `window_key` (a [`CapWindow`](crate::routing::CapWindow)'s
/// key): `CAP#<destination>#<window key>`.
pub fn cap_key(destination: &str, window_key: &str) -> String {
    format!("CAP#{destination}#{window_key}")
}

/// The weighted-routing sequence of `vertical`: `SEQ#<vertical>`.
pub fn sequence_key(vertical: Vertical) -> String {
    format!("SEQ#{}", vertical.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            cap_key("sonar-east", "day:2026-12-02"),
            "CAP#sonar-east#day:2026-12-02"
        );
        assert_eq!(sequence_key(Vertical::Heloc), "SEQ#heloc");
        assert_eq!(
            sequence_key(Vertical::RealEstate),
            format!("SEQ#{}", Vertical::RealEstate.as_str())
        );
    }
}
