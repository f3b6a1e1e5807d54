//! The `DeliveryTallies` port: how many deliveries each destination accepted, and how many of its leads it
//! returned, per UTC day, so that an operator can read a destination's return rate
//! (`leadhub-admin returns rate`) without reading leads.
//!
//! A tally is counted by [`crate::lifecycle::commit`] once the transition that causes it is applied: an
//! attempt's outcome recorded `accepted` counts [`Tally::Accepted`] on the day it was recorded, a `returned`
//! verdict applied counts [`Tally::Returned`] on the day it was applied. A conditional update applies once,
//! so each is counted once; a count whose write failed is lost (logged), which skews a rate by one lead
//! rather than failing a delivery or a verdict. Days are UTC dates; a day's tallies expire
//! [`TALLY_RETENTION_DAYS`] after it. Keys name destinations and days only: no lead, no PII.
//!
//! Adapters: [`MemoryStore`](super::memory::MemoryStore) and [`DynamoStore`](super::dynamodb::DynamoStore)
//! (its module docs give the item). Both pass the same contract suite (`shared/tests/it/tallies_contract.rs`).

use async_trait::async_trait;
use chrono::NaiveDate;

use super::StoreError;

/// How long a day's tallies are kept after the day.
pub const TALLY_RETENTION_DAYS: i64 = 400;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tally {
    /// A delivery the buyer accepted.
    Accepted,
    /// A lead the buyer returned (a `returned` verdict applied).
    Returned,
}

impl Tally {
    pub const ALL: [Tally; 2] = [Tally::Accepted, Tally::Returned];

    pub fn as_str(self) -> &'static str {
        match self {
            Tally::Accepted => "accepted",
            Tally::Returned => "returned",
        }
    }
}

/// One destination's tallies of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTally {
    pub destination: String,
    /// The UTC date.
    pub day: NaiveDate,
    pub accepted: u64,
    pub returned: u64,
}

impl DayTally {
    pub fn count(&self, tally: Tally) -> u64 {
        match tally {
            Tally::Accepted => self.accepted,
            Tally::Returned => self.returned,
        }
    }
}

/// Accepted and returned deliveries per destination and day.
#[async_trait]
pub trait DeliveryTallies: Send + Sync {
    /// Count one `tally` for `destination` on `day` (atomically: concurrent counts all count).
    async fn add_tally(
        &self,
        destination: &str,
        day: NaiveDate,
        tally: Tally,
    ) -> Result<(), StoreError>;

    /// Every destination's tallies of the days from `since` on (only `destination`'s when given), by day and
    /// then destination; days with nothing counted are not listed. Tallies past their retention are not
    /// listed. On DynamoDB, read from an index: a count made a moment ago may not be listed yet.
    async fn tallies_since(
        &self,
        since: NaiveDate,
        destination: Option<&str>,
    ) -> Result<Vec<DayTally>, StoreError>;
}

/// When a day's tallies expire: [`TALLY_RETENTION_DAYS`] after the day ends.
pub fn tally_expiry(day: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    let end = day
        .succ_opt()
        .unwrap_or(day)
        .and_hms_opt(0, 0, 0)
        .map(|at| at.and_utc())
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    end.checked_add_signed(chrono::Duration::days(TALLY_RETENTION_DAYS))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_tallies_expire_after_the_retention() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 2).expect("a date");
        assert_eq!(
            tally_expiry(day).to_rfc3339(),
            "2028-01-07T00:00:00+00:00",
            "400 days after 2026-12-03T00:00Z"
        );
        assert_eq!(Tally::Accepted.as_str(), "accepted");
        let tally = DayTally {
            destination: "a".into(),
            day,
            accepted: 3,
            returned: 1,
        };
        assert_eq!(
            (tally.count(Tally::Accepted), tally.count(Tally::Returned)),
            (3, 1)
        );
    }
}
