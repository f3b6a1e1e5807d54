//! Delivery: the jobs on the queues, the one outcome vocabulary every connector classifies into, and the
//! retry policy (pure functions, tested without I/O).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::DestinationId;
use crate::lead::LeadId;

/// A message on the validate queue: screen this lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateJob {
    pub lead_id: LeadId,
    /// Which screening attempt this is (from 1): LeadSafe could not be asked, so the lead is screened again
    /// later with a delay that grows with it. Absent in ingest's message.
    #[serde(default = "first_attempt", skip_serializing_if = "is_first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

fn is_first_attempt(attempt: &u32) -> bool {
    *attempt == 1
}

impl ValidateJob {
    /// Ingest's job for a new lead.
    pub fn new(lead_id: LeadId) -> Self {
        ValidateJob {
            lead_id,
            attempt: 1,
        }
    }
}

/// A message on the dispatch queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DispatchJob {
    /// Make attempt `attempt` (from 1) to deliver the lead to the destination.
    #[serde(rename_all = "camelCase")]
    Deliver {
        lead_id: LeadId,
        destination: DestinationId,
        attempt: u32,
    },
    /// Send a partner notification (see [`crate::notifications`]).
    Notify(Box<crate::notifications::NotifyJob>),
}

impl DispatchJob {
    pub fn lead_id(&self) -> &LeadId {
        match self {
            DispatchJob::Deliver { lead_id, .. } => lead_id,
            DispatchJob::Notify(job) => job.lead_id(),
        }
    }
}

/// What a buyer's answer means, in one vocabulary for all connectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The buyer took the lead; `buyer_ref` is its own id for it when it gave one, `price` what it says it
    /// pays for it when its answer gives one (a destination's `price_path`, see [`crate::answer_rules`]).
    Accepted {
        buyer_ref: Option<String>,
        price: Option<crate::routing::Cents>,
    },
    /// The buyer declined the lead. `others_may_take`: another buyer may still be offered it.
    Rejected {
        code: String,
        reason: String,
        others_may_take: bool,
    },
    /// A passing problem: try again, not before `after` when the buyer said so.
    Retry {
        code: String,
        reason: String,
        after: Option<Duration>,
    },
    /// A configuration or credentials problem: stop, alert, don't hammer.
    Failed { code: String, reason: String },
}

/// The code connectors give a buyer's rate-limit answer (HTTP 429, with `Retry-After` or
/// `X-RateLimit-Reset` as its `after`).
pub const RATE_LIMITED: &str = "http_429";

impl Outcome {
    /// Accepted with the buyer's reference, if any, and no price of its own.
    pub fn accepted(buyer_ref: Option<String>) -> Self {
        Outcome::Accepted {
            buyer_ref,
            price: None,
        }
    }

    pub fn retry(code: &str, reason: impl Into<String>, after: Option<Duration>) -> Self {
        Outcome::Retry {
            code: code.to_owned(),
            reason: reason.into(),
            after,
        }
    }

    pub fn rejected(code: &str, reason: impl Into<String>, others_may_take: bool) -> Self {
        Outcome::Rejected {
            code: code.to_owned(),
            reason: reason.into(),
            others_may_take,
        }
    }

    pub fn failed(code: &str, reason: impl Into<String>) -> Self {
        Outcome::Failed {
            code: code.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Backoff between delivery attempts (`[retry]` in the configuration, which builds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_delay: Duration,
    pub max_delay: Duration,
}

/// The longest a buyer's Retry-After or rate-limit reset is waited for.
pub const MAX_BUYER_WAIT: Duration = Duration::from_secs(3600);

/// The delay before attempt `attempt + 1`, after attempt `attempt` (from 1) asked for a retry.
///
/// Exponential from `base_delay`, capped at `max_delay`, with "equal jitter" (half fixed, half random, from
/// `jitter` in [0, 1)) so that retries of many leads spread out. A buyer's own `after` (Retry-After,
/// X-RateLimit-Reset) is honoured, never earlier than it asked, up to [`MAX_BUYER_WAIT`]: a lead is worth
/// most while it is fresh, and a buyer asking for days (or sending nonsense) is retried after an hour.
pub fn retry_delay(
    policy: &RetryPolicy,
    attempt: u32,
    after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let exponential = policy
        .base_delay
        .saturating_mul(1u32 << exponent)
        .min(policy.max_delay);
    let half = exponential / 2;
    let jittered = half + half.mul_f64(jitter.clamp(0.0, 1.0));
    match after {
        Some(after) => after
            .min(MAX_BUYER_WAIT)
            .max(jittered.min(policy.base_delay)),
        None => jittered,
    }
}

/// Parse a `Retry-After` header: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        base_delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(60),
    };

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        assert_eq!(retry_delay(&POLICY, 1, None, 0.0), Duration::from_secs(1));
        // A buyer's wait is honoured up to an hour, whatever it sends.
        for huge in [Duration::from_secs(99_999_999_999_999), Duration::MAX] {
            assert_eq!(retry_delay(&POLICY, 1, Some(huge), 0.5), MAX_BUYER_WAIT);
        }
        assert_eq!(retry_delay(&POLICY, 1, None, 0.999_999).as_millis(), 1999);
        assert_eq!(retry_delay(&POLICY, 2, None, 0.0), Duration::from_secs(2));
        assert_eq!(retry_delay(&POLICY, 3, None, 0.5), Duration::from_secs(6));
        assert_eq!(retry_delay(&POLICY, 10, None, 0.0), Duration::from_secs(30));
        assert_eq!(retry_delay(&POLICY, 40, None, 1.0), Duration::from_secs(60));
    }

    #[test]
    fn buyer_delays_are_honoured() {
        assert_eq!(
            retry_delay(&POLICY, 1, Some(Duration::from_secs(120)), 0.3),
            Duration::from_secs(120)
        );
        assert_eq!(
            retry_delay(&POLICY, 5, Some(Duration::ZERO), 0.0),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn retry_after_header_forms() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn jobs_have_a_stable_wire_form() {
        let id: LeadId = "lead_01JD0000000000000000000000".parse().expect("valid id");
        let job = DispatchJob::Deliver {
            lead_id: id.clone(),
            destination: DestinationId::parse("lender").expect("id"),
            attempt: 2,
        };
        let wire = serde_json::to_value(&job).expect("serialises");
        assert_eq!(
            wire,
            serde_json::json!({"kind": "deliver", "leadId": id.as_str(), "destination": "lender", "attempt": 2})
        );
        assert!(serde_json::from_str::<ValidateJob>(r#"{"leadId": "nope"}"#).is_err());
    }
}
