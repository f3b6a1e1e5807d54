//! What the operator's delivery and notification commands do (`leadhub-admin deliveries dead|replay`,
//! `notifications failed|replay|enable`), as library functions: the admin binary and the tests call the
//! same code, on any adapters.

use chrono::{DateTime, Utc};

use crate::lead::{LeadId, LeadStatus};
use crate::lifecycle::{self, CommitError, Ports, ReplayRefusal};
use crate::queue::{JobQueue, QueueError};
use crate::store::{
    DeadDeliveries, DeadDelivery, LeadStore, NotificationLog, StoreError, UpdateOutcome,
};

/// Why a failed notification could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum NotificationReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Replay the failed notification `webhook_id`: queue it again as a first attempt (the same `webhook-id`
/// and body, so that a partner that did get it can drop the repeat), then forget it. `Ok(false)`: no such
/// failed notification. An endpoint disabled by a 410 must be enabled first, or the replay fails again.
pub async fn replay_notification(
    log: &dyn NotificationLog,
    dispatch_queue: &dyn JobQueue,
    webhook_id: &str,
) -> Result<bool, NotificationReplayError> {
    let Some(failed) = log.failed_notification(webhook_id).await? else {
        return Ok(false);
    };
    let job = crate::notifications::NotifyJob {
        attempt: 1,
        not_before: None,
        ..failed.job
    };
    lifecycle::send_jobs(
        dispatch_queue,
        &[lifecycle::ScheduledJob {
            job: crate::delivery::DispatchJob::Notify(Box::new(job)),
            delay: std::time::Duration::ZERO,
        }],
    )
    .await?;
    log.remove_failed(webhook_id).await?;
    Ok(true)
}

/// How far back `deliveries dead` looks by default.
pub const DEFAULT_SINCE: chrono::Duration = chrono::Duration::days(7);

/// A `--since` that is neither an RFC 3339 time nor a span back from now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a time: give an RFC 3339 time such as 2026-12-01T00:00:00Z, or a span back from now \
     in hours or days such as 24h or 7d"
)]
pub struct InvalidSince(pub String);

/// `--since`: an RFC 3339 time, or `<n>h` / `<n>d` back from `now`.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidSince> {
    let invalid = || InvalidSince(text.to_owned());
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let Some((last, _)) = text.char_indices().last() else {
        return Err(invalid());
    };
    let (number, unit) = text.split_at(last);
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let count: i64 = number.parse().map_err(|_| invalid())?;
    let span = match unit {
        "h" | "H" => chrono::Duration::try_hours(count),
        "d" | "D" => chrono::Duration::try_days(count),
        _ => None,
    }
    .ok_or_else(invalid)?;
    now.checked_sub_signed(span).ok_or_else(invalid)
}

/// The dead deliveries since `since`, newest first, at most `limit`.
pub async fn dead_deliveries(
    port: &dyn DeadDeliveries,
    since: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<DeadDelivery>, StoreError> {
    port.list(since, limit).await
}

/// What a replay goes through: the lead store, the dispatch queue (for the first attempt), the markers.
#[derive(Clone, Copy)]
pub struct ReplayPorts<'a> {
    pub store: &'a dyn LeadStore,
    pub dispatch_queue: &'a dyn JobQueue,
    pub dead_deliveries: &'a dyn DeadDeliveries,
}

/// A replay that was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub lead_id: LeadId,
    pub destination: String,
    /// The lead's status after the replay (`routing` for a lead that was `unsold`).
    pub lead_status: LeadStatus,
}

/// Why a replay did not happen, or happened only in part. Messages name ids and operations, never PII.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("lead {0} does not exist")]
    LeadNotFound(LeadId),
    #[error(transparent)]
    Refused(#[from] ReplayRefusal),
    /// The lead kept changing under the replay (other deliveries being recorded): nothing was changed.
    #[error(
        "lead {0} changed on every attempt to replay its delivery; nothing was changed: try again"
    )]
    Busy(LeadId),
    /// The store failed reading or updating the lead: the replay may or may not have been applied.
    #[error(
        "the store failed replaying lead {lead_id}'s delivery to `{destination}` ({error}); \
         `leadhub-admin deliveries dead` shows whether it is still dead"
    )]
    Store {
        lead_id: LeadId,
        destination: String,
        error: StoreError,
    },
    /// Applied, but the first attempt could not be queued: the delivery is pending with no job.
    #[error(
        "lead {lead_id}'s delivery to `{destination}` is pending again, but its first attempt could not be \
         queued on the dispatch queue: {error}"
    )]
    NotQueued {
        lead_id: LeadId,
        destination: String,
        error: QueueError,
    },
    /// Applied and queued, but the marker could not be removed: it stays listed until it expires.
    #[error(
        "lead {lead_id}'s delivery to `{destination}` was replayed (pending, first attempt queued), but \
         its dead-delivery marker could not be removed, so it is still listed: {error}"
    )]
    MarkerKept {
        lead_id: LeadId,
        destination: String,
        error: StoreError,
    },
}

/// How often a replay whose conditional write met a concurrent change is tried again on the fresh record.
const REPLAY_ATTEMPTS: usize = 3;

/// Replay `lead_id`'s dead delivery to `destination` ([`lifecycle::replay`]): read the lead, write the
/// transition, queue the first attempt on the dispatch queue, then remove the marker
/// ([`lifecycle::commit`]). A conditional write that lost a race is tried again on the fresh record (which
/// refuses if the delivery is no longer dead).
pub async fn replay_delivery(
    ports: ReplayPorts<'_>,
    lead_id: &LeadId,
    destination: &str,
) -> Result<Replayed, ReplayError> {
    let store_error = |error| ReplayError::Store {
        lead_id: lead_id.clone(),
        destination: destination.to_owned(),
        error,
    };
    let commit_ports = Ports {
        store: ports.store,
        queue: Some(ports.dispatch_queue),
        counters: None,
        dead_deliveries: Some(ports.dead_deliveries),
        // A replay emits no lead event (the delivery is only made pending again).
        subscribers: None,
        tallies: None,
    };
    for _ in 0..REPLAY_ATTEMPTS {
        let Some(lead) = ports.store.get_lead(lead_id).await.map_err(store_error)? else {
            return Err(ReplayError::LeadNotFound(lead_id.clone()));
        };
        let transition = lifecycle::replay(&lead, destination, crate::lead::now())?;
        match lifecycle::commit(commit_ports, lead_id, &transition).await {
            Ok(UpdateOutcome::Applied(lead)) => {
                tracing::info!(lead_id = %lead_id, destination, status = %lead.status, "dead delivery replayed");
                return Ok(Replayed {
                    lead_id: lead_id.clone(),
                    destination: destination.to_owned(),
                    lead_status: lead.status,
                });
            }
            Ok(UpdateOutcome::Conflict(_)) => continue,
            Ok(UpdateOutcome::NotFound) => return Err(ReplayError::LeadNotFound(lead_id.clone())),
            Err(CommitError::Store(error)) => return Err(store_error(error)),
            Err(CommitError::Queue(error)) => {
                return Err(ReplayError::NotQueued {
                    lead_id: lead_id.clone(),
                    destination: destination.to_owned(),
                    error,
                })
            }
            Err(CommitError::DeadDeliveries(error)) => {
                return Err(ReplayError::MarkerKept {
                    lead_id: lead_id.clone(),
                    destination: destination.to_owned(),
                    error,
                })
            }
        }
    }
    Err(ReplayError::Busy(lead_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    #[test]
    fn since_is_a_time_or_a_span_back_from_now() {
        let now = at("2026-12-08T12:00:00Z");
        assert_eq!(
            parse_since("2026-12-01T00:00:00Z", now),
            Ok(at("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            parse_since("2026-12-01T02:00:00+02:00", now),
            Ok(at("2026-12-01T00:00:00Z"))
        );
        assert_eq!(parse_since("24h", now), Ok(at("2026-12-07T12:00:00Z")));
        assert_eq!(parse_since("7d", now), Ok(at("2026-12-01T12:00:00Z")));
        assert_eq!(parse_since(" 0h ", now), Ok(now));
        assert_eq!(now - DEFAULT_SINCE, at("2026-12-01T12:00:00Z"));
        for bad in [
            "",
            "h",
            "7",
            "7w",
            "-7d",
            "+7d",
            "7.5d",
            "d7",
            "yesterday",
            "2026-12-01",
            "99999999999999999999d",
            "9999999999999d",
            "7é",
            "é",
        ] {
            let error = parse_since(bad, now).expect_err(bad);
            assert!(error.to_string().contains("RFC 3339"), "{error}");
        }
    }
}
