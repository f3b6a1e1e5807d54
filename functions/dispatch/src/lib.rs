//! dispatch: delivers leads to buyers, one attempt per job.
//!
//! `prepare` (read the lead, decide whether this job may act, claim the attempt with a conditional write)
//! -> `call` (the connector builds the request; one HTTP call with a timeout; the connector classifies the
//! answer) -> `record` (the outcome on the delivery and the timeline; a retry is a new job with a delay).
//! A delivery recorded as accepted, rejected or dead is never posted again, however often a job is
//! redelivered; the buyer sees the same `webhook-id` on every attempt of one delivery.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};

use leadhub::batch::{self, RecordError};
use leadhub::callbacks;
use leadhub::config::{Config, Destination};
use leadhub::connectors::{self, BuyerRequest, BuyerResponse, DeliveryContext, Next};
use leadhub::delivery::{retry_delay, settle_update, DispatchJob, Outcome};
use leadhub::lead::{
    later, DeliveryState, DeliveryStatus, EventKind, LeadId, LeadRecord, TimelineEvent,
};
use leadhub::queue::{JobQueue, MAX_DELAY};
use leadhub::store::{DeliveryExpect, LeadStore, LeadUpdate, UpdateOutcome};

/// The most of a buyer's answer that is read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The most requests one delivery attempt may take.
const MAX_STEPS: usize = 4;

/// The delivery stage with its dependencies.
pub struct Dispatch {
    pub config: Arc<Config>,
    pub store: Arc<dyn LeadStore>,
    /// Where retries are scheduled (the dispatch queue itself).
    pub dispatch_queue: Arc<dyn JobQueue>,
    pub http: reqwest::Client,
}

/// The HTTP client for buyers: built once per process, connection pooling, no redirects.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent("leadhub/0.1")
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

fn to_std(duration: chrono::Duration) -> Duration {
    duration.to_std().unwrap_or(Duration::ZERO)
}

/// The attempt whose outcome is being recorded.
struct AttemptRef<'a> {
    lead: &'a LeadRecord,
    destination: &'a str,
    attempt: u32,
    /// Attempts made so far, to record on the delivery.
    attempts: u32,
    max_attempts: u32,
    /// Whether this worker claimed the attempt (it is `in_flight`), or never got as far.
    claimed: bool,
}

/// Whether a job may act, decided from the delivery's recorded state.
#[derive(Debug, PartialEq)]
enum Step {
    /// Claim attempt `attempt` and call the buyer.
    Attempt,
    /// Already settled, or a stale duplicate: nothing to do.
    Skip(&'static str),
    /// Not due yet: put the same job back for this long.
    Wait(Duration),
    /// This attempt asked for a retry but the next job may not have been queued: queue it.
    Reschedule(Duration),
    /// Another worker holds the attempt: fail the record so SQS redelivers it later.
    Busy,
}

fn step(state: &DeliveryState, attempt: u32, now: DateTime<Utc>) -> Step {
    let due_in =
        |at: Option<DateTime<Utc>>| at.map(|at| to_std(at - now)).unwrap_or(Duration::ZERO);
    match state.status {
        status if status.is_final() => Step::Skip("the delivery is already settled"),
        DeliveryStatus::Pending | DeliveryStatus::Retrying if state.attempts + 1 == attempt => {
            match due_in(state.next_attempt_at) {
                wait if wait > Duration::from_secs(1) => Step::Wait(wait),
                _ => Step::Attempt,
            }
        }
        DeliveryStatus::Retrying if state.attempts == attempt => {
            Step::Reschedule(due_in(state.next_attempt_at))
        }
        DeliveryStatus::InFlight if state.attempts == attempt => {
            if state.lease_until.is_some_and(|lease| lease < now) {
                Step::Attempt
            } else {
                Step::Busy
            }
        }
        _ => Step::Skip("a stale or duplicate job"),
    }
}

impl Dispatch {
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        batch::run(event, |record| self.handle_record(record)).await
    }

    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), RecordError> {
        let job: DispatchJob = batch::parse_body(&record)?;
        self.handle_job(&job).await
    }

    pub async fn handle_job(&self, job: &DispatchJob) -> Result<(), RecordError> {
        match job {
            DispatchJob::Deliver {
                lead_id,
                destination,
                attempt,
            } => self.deliver(lead_id, destination, *attempt).await,
        }
    }

    async fn send_job(
        &self,
        lead_id: &LeadId,
        destination: &str,
        attempt: u32,
        delay: Duration,
    ) -> Result<(), RecordError> {
        let job = DispatchJob::Deliver {
            lead_id: lead_id.clone(),
            destination: destination.to_owned(),
            attempt,
        };
        let body =
            serde_json::to_string(&job).map_err(|e| RecordError::Malformed(e.to_string()))?;
        self.dispatch_queue
            .send(&body, delay.min(MAX_DELAY))
            .await?;
        Ok(())
    }

    async fn deliver(
        &self,
        lead_id: &LeadId,
        destination_id: &str,
        attempt: u32,
    ) -> Result<(), RecordError> {
        let now = leadhub::lead::now();
        let Some(lead) = self.store.get_lead(lead_id).await? else {
            tracing::warn!(lead_id = %lead_id, "delivery job for a lead that does not exist");
            return Ok(());
        };
        let Some(state) = lead.deliveries.get(destination_id) else {
            tracing::warn!(lead_id = %lead_id, destination = destination_id, "delivery job without a planned delivery");
            return Ok(());
        };
        match step(state, attempt, now) {
            Step::Attempt => {}
            Step::Skip(why) => {
                tracing::info!(lead_id = %lead_id, destination = destination_id, attempt, why, "not posting");
                // The job that recorded the outcome may have died before settling the lead: settle it now
                // (a no-op unless the lead is still routing with its deliveries decided).
                return self.settle(&lead, now).await;
            }
            Step::Wait(wait) => return self.send_job(lead_id, destination_id, attempt, wait).await,
            Step::Reschedule(wait) => {
                return self
                    .send_job(lead_id, destination_id, attempt + 1, wait)
                    .await
            }
            Step::Busy => {
                return Err(RecordError::NotYet(format!(
                    "attempt {attempt} of {lead_id} to {destination_id} is in flight elsewhere"
                )))
            }
        }

        let Some(destination) = self.config.destination(destination_id) else {
            let outcome = Outcome::failed(
                "destination_removed",
                "the destination is no longer configured",
            );
            let attempt = AttemptRef {
                lead: &lead,
                destination: destination_id,
                attempt,
                attempts: state.attempts,
                max_attempts: 1,
                claimed: false,
            };
            return self.record(attempt, outcome, now).await;
        };

        // Claim the attempt: only one worker calls the buyer for attempt `attempt`. The lease outlasts the
        // longest call (every step at the destination's timeout) so that a live worker never loses it.
        let lease = destination.timeout * MAX_STEPS as u32 + Duration::from_secs(10);
        let claim = LeadUpdate::new(now)
            .delivery(
                destination_id,
                DeliveryExpect::Claimable { attempt, now },
                DeliveryState {
                    status: DeliveryStatus::InFlight,
                    attempts: attempt,
                    lease_until: Some(later(now, lease)),
                    next_attempt_at: None,
                    reason: None,
                    buyer_ref: None,
                    updated_at: now,
                },
            )
            .event(
                TimelineEvent::new(now, EventKind::DeliveryAttempt, lead.status)
                    .destination(destination_id)
                    .attempt(attempt),
            );
        let lead = match self.store.update_lead(lead_id, &claim).await? {
            UpdateOutcome::Applied(lead) => lead,
            UpdateOutcome::Conflict(current) => {
                return match current.deliveries.get(destination_id).map(|s| s.status) {
                    Some(DeliveryStatus::InFlight) => Err(RecordError::NotYet(format!(
                        "attempt {attempt} of {lead_id} to {destination_id} is in flight elsewhere"
                    ))),
                    _ => Ok(()),
                }
            }
            UpdateOutcome::NotFound => return Ok(()),
        };

        let outcome = self.call(&lead, destination).await;
        let now = leadhub::lead::now();
        let attempt = AttemptRef {
            lead: &lead,
            destination: destination_id,
            attempt,
            attempts: attempt,
            max_attempts: destination.max_attempts,
            claimed: true,
        };
        self.record(attempt, outcome, now).await
    }

    /// Build, send, classify. Never fails: transport problems are outcomes too.
    async fn call(&self, lead: &LeadRecord, destination: &Destination) -> Outcome {
        let now = leadhub::lead::now();
        let callback_url = callbacks::url(
            &self.config.public_base_url,
            &self.config.callback_signer,
            &destination.id,
            &lead.id,
        );
        let idempotency_key = format!("msg_{}_{}", lead.id, destination.id);
        let context = DeliveryContext {
            lead,
            destination,
            callback_url: &callback_url,
            idempotency_key: &idempotency_key,
            now,
        };
        let mut request = match connectors::build(&context) {
            Ok(request) => request,
            Err(error) => return Outcome::failed("build_failed", error.to_string()),
        };
        // One request for most buyer APIs; a few for Lofty (lookup, then note or create).
        for _ in 0..MAX_STEPS {
            let response = match self.send(&request, destination).await {
                Ok(response) => response,
                Err(outcome) => return outcome,
            };
            match connectors::next(&context, &request, &response, leadhub::lead::now()) {
                Next::Done(outcome) => {
                    return connectors::without_credentials(outcome, destination)
                }
                Next::Send(following) => request = following,
            }
        }
        Outcome::failed(
            "too_many_steps",
            format!("the buyer API took more than {MAX_STEPS} requests"),
        )
    }

    /// One HTTP call: the answer, or the outcome of a transport failure.
    async fn send(
        &self,
        request: &BuyerRequest,
        destination: &Destination,
    ) -> Result<BuyerResponse, Outcome> {
        let sent = self
            .http
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone())
            .body(request.body.clone())
            .timeout(destination.timeout)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) if error.is_timeout() => {
                return Err(Outcome::retry(
                    "timeout",
                    format!(
                        "the buyer did not answer within {} ms",
                        destination.timeout.as_millis()
                    ),
                    None,
                ))
            }
            Err(_) => {
                return Err(Outcome::retry(
                    "connection_failed",
                    "the buyer could not be reached",
                    None,
                ))
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if room <= chunk.len() {
                        break;
                    }
                }
                Ok(None) => break,
                // The status line arrived; a broken body is read as what we have.
                Err(_) => break,
            }
        }
        Ok(BuyerResponse {
            status,
            headers,
            body: body.into(),
        })
    }

    /// Record an attempt's outcome; schedule the next attempt or settle the lead.
    async fn record(
        &self,
        at: AttemptRef<'_>,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let AttemptRef {
            lead,
            destination: destination_id,
            attempt,
            attempts,
            max_attempts,
            claimed,
        } = at;
        let base = DeliveryState {
            status: DeliveryStatus::Dead,
            attempts,
            lease_until: None,
            next_attempt_at: None,
            reason: None,
            buyer_ref: None,
            updated_at: now,
        };
        let event = |kind| {
            TimelineEvent::new(now, kind, lead.status)
                .destination(destination_id)
                .attempt(attempt)
        };
        let mut next_job: Option<Duration> = None;
        let (state, event) = match outcome {
            Outcome::Accepted { buyer_ref } => {
                tracing::info!(lead_id = %lead.id, destination = destination_id, attempt, "delivery accepted");
                (
                    DeliveryState {
                        status: DeliveryStatus::Accepted,
                        buyer_ref: buyer_ref.clone(),
                        ..base
                    },
                    event(EventKind::DeliveryAccepted).reason(
                        "accepted",
                        match &buyer_ref {
                            Some(reference) => {
                                format!("the buyer took the lead (its reference: {reference})")
                            }
                            None => "the buyer took the lead".to_owned(),
                        },
                    ),
                )
            }
            Outcome::Rejected { code, reason, .. } => {
                tracing::info!(lead_id = %lead.id, destination = destination_id, attempt, %code, "delivery rejected");
                (
                    DeliveryState {
                        status: DeliveryStatus::Rejected,
                        reason: Some(reason.clone()),
                        ..base
                    },
                    event(EventKind::DeliveryRejected).reason(&code, reason),
                )
            }
            Outcome::Retry {
                code,
                reason,
                after,
            } if attempt < max_attempts => {
                let delay = retry_delay(&self.config.retry, attempt, after, rand::random::<f64>());
                tracing::info!(lead_id = %lead.id, destination = destination_id, attempt, %code, delay_ms = delay.as_millis() as u64, "delivery will be retried");
                next_job = Some(delay);
                (
                    DeliveryState {
                        status: DeliveryStatus::Retrying,
                        next_attempt_at: Some(later(now, delay)),
                        reason: Some(reason.clone()),
                        ..base
                    },
                    event(EventKind::DeliveryRetryScheduled).reason(
                        &code,
                        format!("{reason}; next attempt in {} s", delay.as_secs().max(1)),
                    ),
                )
            }
            Outcome::Retry { code, reason, .. } => {
                tracing::warn!(lead_id = %lead.id, destination = destination_id, attempt, %code, "delivery gave up");
                let reason = format!("gave up after {attempt} attempts: {reason}");
                (
                    DeliveryState {
                        reason: Some(reason.clone()),
                        ..base
                    },
                    event(EventKind::DeliveryDead).reason(&code, reason),
                )
            }
            Outcome::Failed { code, reason } => {
                // An operator must act: configuration or credentials. Alarmed on via this log line.
                tracing::error!(lead_id = %lead.id, destination = destination_id, attempt, %code, "destination failed: check its configuration and credentials");
                (
                    DeliveryState {
                        reason: Some(reason.clone()),
                        ..base
                    },
                    event(EventKind::DeliveryDead).reason(&code, reason),
                )
            }
        };
        // Only the worker that claimed the attempt records its outcome.
        let expect = if claimed {
            DeliveryExpect::InFlight { attempt }
        } else {
            DeliveryExpect::StatusIn(vec![DeliveryStatus::Pending, DeliveryStatus::Retrying])
        };
        let update = LeadUpdate::new(now)
            .delivery(destination_id, expect, state)
            .event(event);
        let lead = match self.store.update_lead(&lead.id, &update).await? {
            UpdateOutcome::Applied(lead) => lead,
            UpdateOutcome::Conflict(current) => {
                tracing::warn!(lead_id = %lead.id, destination = destination_id, attempt, "delivery changed under us; outcome not recorded");
                return self.settle(&current, now).await;
            }
            UpdateOutcome::NotFound => {
                tracing::warn!(lead_id = %lead.id, destination = destination_id, attempt, "lead gone; outcome not recorded");
                return Ok(());
            }
        };
        if let Some(delay) = next_job {
            self.send_job(&lead.id, destination_id, attempt + 1, delay)
                .await?;
        }
        self.settle(&lead, now).await
    }

    /// Move a routing lead to `delivered` once a buyer took it, or `unsold` once every delivery is settled.
    async fn settle(&self, lead: &LeadRecord, now: DateTime<Utc>) -> Result<(), RecordError> {
        let Some(update) = settle_update(lead, now) else {
            return Ok(());
        };
        match self.store.update_lead(&lead.id, &update).await? {
            UpdateOutcome::Applied(lead) => {
                tracing::info!(lead_id = %lead.id, status = %lead.status, "lead settled");
            }
            UpdateOutcome::Conflict(_) | UpdateOutcome::NotFound => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: DeliveryStatus, attempts: u32) -> DeliveryState {
        DeliveryState {
            attempts,
            ..DeliveryState::pending(leadhub::lead::now())
        }
        .with_status(status)
    }

    trait WithStatus {
        fn with_status(self, status: DeliveryStatus) -> Self;
    }

    impl WithStatus for DeliveryState {
        fn with_status(mut self, status: DeliveryStatus) -> Self {
            self.status = status;
            self
        }
    }

    #[test]
    fn steps() {
        let now = leadhub::lead::now();
        assert_eq!(
            step(&state(DeliveryStatus::Pending, 0), 1, now),
            Step::Attempt
        );
        assert_eq!(
            step(&state(DeliveryStatus::Pending, 0), 2, now),
            Step::Skip("a stale or duplicate job")
        );
        for status in [
            DeliveryStatus::Accepted,
            DeliveryStatus::Rejected,
            DeliveryStatus::Dead,
        ] {
            assert_eq!(
                step(&state(status, 1), 1, now),
                Step::Skip("the delivery is already settled")
            );
        }
        let mut retrying = state(DeliveryStatus::Retrying, 1);
        retrying.next_attempt_at = Some(now + chrono::Duration::seconds(30));
        assert!(matches!(step(&retrying, 2, now), Step::Wait(d) if d > Duration::from_secs(28)));
        assert!(matches!(step(&retrying, 1, now), Step::Reschedule(_)));
        retrying.next_attempt_at = Some(now);
        assert_eq!(step(&retrying, 2, now), Step::Attempt);
        let mut in_flight = state(DeliveryStatus::InFlight, 1);
        in_flight.lease_until = Some(now + chrono::Duration::seconds(10));
        assert_eq!(step(&in_flight, 1, now), Step::Busy);
        in_flight.lease_until = Some(now - chrono::Duration::seconds(1));
        assert_eq!(step(&in_flight, 1, now), Step::Attempt);
    }
}
