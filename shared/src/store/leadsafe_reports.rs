//! The `LeadSafeReports` port: consumer statuses reported back to LeadSafe
//! ([`crate::leadsafe_reports`]), each with its SSN sealed for it, kept until it expires
//! (`[screening.leadsafe] report_retention_days` after it was reported) so that its `add` can be sent
//! again and it can be exported as LeadSafe's CSV.
//!
//! Reports are read back oldest first (by the time they were reported, then by id); a report past its
//! `expires_at` is never read back nor marked sent, and the DynamoDB item carries the table's TTL.
//!
//! Adapters: [`MemoryStore`](super::memory::MemoryStore) and [`DynamoStore`](super::dynamodb::DynamoStore)
//! (its module docs give the item). Both pass the same contract suite
//! (`shared/tests/it/leadsafe_reports_contract.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::leadsafe_reports::{LeadSafeReport, ReportId};

/// Reported consumer statuses.
#[async_trait]
pub trait LeadSafeReports: Send + Sync {
    /// Keep `report` until its `expires_at`, replacing a report of the same id.
    async fn put_report(&self, report: &LeadSafeReport) -> Result<(), StoreError>;

    /// Record that LeadSafe added the report `id` at `at`. `false` (and nothing written) when there is no
    /// such report, or it expired at or before `at`.
    async fn mark_report_sent(&self, id: &ReportId, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Every report reported at or after `since` that has not expired at `now`, sent or not, oldest first.
    /// On DynamoDB, read from an index: a report put a moment ago may not be listed yet.
    async fn reports_since(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<LeadSafeReport>, StoreError>;

    /// At most `limit` reports not yet sent and not expired at `now`, oldest first. On DynamoDB, read from
    /// an index, as [`reports_since`](LeadSafeReports::reports_since).
    async fn unsent_reports(
        &self,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<LeadSafeReport>, StoreError>;
}
