//! The `Suppressions` port: the operator's suppression list ([`crate::suppression`]), kept by kind and
//! keyed hash, never by value.
//!
//! A record is identified by (kind, hash, reason, start date): putting it again replaces it, so importing a
//! file twice leaves one record each, and a later import sets the end date (and source) it gives. Records of
//! one value are read back ordered by reason name, then start date (DynamoDB's sort key
//! `<reason>#<start_date>`).
//!
//! Adapters: [`MemoryStore`](super::memory::MemoryStore) and [`DynamoStore`](super::dynamodb::DynamoStore)
//! (its module docs give the item). Both pass the same contract suite
//! (`shared/tests/it/suppressions_contract.rs`).

use async_trait::async_trait;
use chrono::NaiveDate;

use super::StoreError;
use crate::suppression::{SuppressionKind, SuppressionRecord};

/// How many records of one kind there are, and how many of them are active on the day asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindCounts {
    pub records: u64,
    pub active: u64,
}

/// [`Suppressions::suppression_counts`]: records per kind (not distinct values: a value with two reasons
/// is two records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SuppressionCounts {
    pub ssn: KindCounts,
    pub email: KindCounts,
    pub phone: KindCounts,
}

impl SuppressionCounts {
    pub fn of(&self, kind: SuppressionKind) -> KindCounts {
        match kind {
            SuppressionKind::Ssn => self.ssn,
            SuppressionKind::Email => self.email,
            SuppressionKind::Phone => self.phone,
        }
    }

    pub fn of_mut(&mut self, kind: SuppressionKind) -> &mut KindCounts {
        match kind {
            SuppressionKind::Ssn => &mut self.ssn,
            SuppressionKind::Email => &mut self.email,
            SuppressionKind::Phone => &mut self.phone,
        }
    }

    /// All kinds together.
    pub fn total(&self) -> KindCounts {
        SuppressionKind::ALL
            .into_iter()
            .fold(KindCounts::default(), |sum, kind| KindCounts {
                records: sum.records + self.of(kind).records,
                active: sum.active + self.of(kind).active,
            })
    }
}

/// The suppression list.
#[async_trait]
pub trait Suppressions: Send + Sync {
    /// Store `records`, each replacing a stored record of the same kind, hash, reason and start date (and
    /// a later one in `records` replacing an earlier one). Not atomic: on an error, some may be stored.
    async fn put_suppressions(&self, records: &[SuppressionRecord]) -> Result<(), StoreError>;

    /// Every record of the value hashed as `hash` (strongly consistent), ordered by reason name then start
    /// date; none when it is not on the list.
    async fn find_suppressions(
        &self,
        kind: SuppressionKind,
        hash: &str,
    ) -> Result<Vec<SuppressionRecord>, StoreError>;

    /// Remove every record of the value hashed as `hash`; how many there were (0 when it was not on the
    /// list).
    async fn remove_suppressions(
        &self,
        kind: SuppressionKind,
        hash: &str,
    ) -> Result<usize, StoreError>;

    /// How many records there are of each kind, and how many are active on `today`
    /// ([`SuppressionRecord::is_active`]). On DynamoDB, read from an index, so a record written a moment
    /// ago may not be counted yet.
    async fn suppression_counts(&self, today: NaiveDate) -> Result<SuppressionCounts, StoreError>;
}
