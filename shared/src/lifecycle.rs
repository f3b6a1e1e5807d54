//! The lead lifecycle: every transition of a lead and of its deliveries, in one place.
//!
//! Each rule is a pure function of the current record and the time that returns a [`Transition`]: the
//! conditional store update, the typed [`LeadEvent`]s it causes, and the jobs to queue once it is applied.
//! The handlers read, call these, and hand the result to [`commit`], the one point where updates are
//! written, jobs sent and lead events published — partner notifications and metrics attach there.
//!
//! | stage | rule |
//! | --- | --- |
//! | validate | [`screened`] (screening verdict + routing plan -> rejected, unsold or routing), [`pending_jobs`] |
//! | dispatch | [`delivery_step`] (may this job act?), [`claim`], [`attempt_outcome`] (a buyer's answer -> delivery state), [`apply_kept`] (a verdict kept while the delivery was open, once it is decided), [`settle`] |
//! | callback | [`verdict`] (a buyer's verdict -> status, kept while its delivery is open; returns within the destination's window and reasons) |
//! | callback (buyer webhooks) | [`buyer_activity`] (what a buyer did with a lead it took -> the timeline) |

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::callbacks::Verdict;
use crate::config::ReturnPolicy;
use crate::delivery::{retry_delay, DispatchJob, Outcome, RetryPolicy};
use crate::lead::{
    later, DeliveryState, DeliveryStatus, EventKind, KeptVerdict, LeadId, LeadRecord, LeadStatus,
    TimelineEvent,
};
use crate::queue::{JobQueue, QueueError, MAX_DELAY};
use crate::routing::RoutingPlan;
use crate::screening::ScreeningVerdict;
use crate::store::{
    Counters, DeadDeliveries, DeadDelivery, DeadDeliveryChange, DeliveryExpect, DeliveryTallies,
    LeadStore, LeadUpdate, StoreError, Tally, UpdateOutcome,
};

/// What happened to a lead, as partners will be told (`lead.rejected`, `lead.delivered`, ...): one variant
/// per outcome a partner cares about. Produced only by the rules of this module, published by [`commit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "data")]
pub enum LeadEvent {
    /// Screening refused the lead (terminal).
    #[serde(rename = "lead.rejected")]
    Rejected { code: String, reason: String },
    /// At least one buyer took the lead.
    #[serde(rename = "lead.delivered")]
    Delivered { destinations: Vec<String> },
    /// No buyer took the lead (terminal).
    #[serde(rename = "lead.unsold")]
    Unsold { code: String, reason: String },
    /// A buyer confirmed the sale.
    #[serde(rename = "lead.confirmed")]
    Confirmed { destination: String },
    /// A buyer rejected the lead after taking it.
    #[serde(rename = "lead.rejected_after_post")]
    RejectedAfterPost { destination: String, reason: String },
    /// A buyer returned the lead.
    #[serde(rename = "lead.returned")]
    Returned { destination: String, reason: String },
}

impl LeadEvent {
    /// The event's wire name.
    pub fn name(&self) -> &'static str {
        match self {
            LeadEvent::Rejected { .. } => "lead.rejected",
            LeadEvent::Delivered { .. } => "lead.delivered",
            LeadEvent::Unsold { .. } => "lead.unsold",
            LeadEvent::Confirmed { .. } => "lead.confirmed",
            LeadEvent::RejectedAfterPost { .. } => "lead.rejected_after_post",
            LeadEvent::Returned { .. } => "lead.returned",
        }
    }
}

/// A job to queue once a transition is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledJob {
    pub job: DispatchJob,
    pub delay: Duration,
}

impl ScheduledJob {
    pub fn deliver(lead_id: &LeadId, destination: &str, attempt: u32, delay: Duration) -> Self {
        ScheduledJob {
            job: DispatchJob::Deliver {
                lead_id: lead_id.clone(),
                destination: crate::ids::DestinationId::trusted(destination),
                attempt,
            },
            delay,
        }
    }
}

/// One step of a lead's life: the store update, and what follows once it is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub update: LeadUpdate,
    pub events: Vec<LeadEvent>,
    pub jobs: Vec<ScheduledJob>,
    /// Cap places to give back: (counter key, holder) of a delivery rejected or dead.
    pub releases: Vec<(String, String)>,
    /// Dead-delivery markers to record (a delivery died) or remove (a dead delivery was replayed).
    pub dead_deliveries: Vec<DeadDeliveryChange>,
    /// Tallies to count, by destination, on the update's (UTC) day: an acceptance, a return
    /// ([`DeliveryTallies`]).
    pub tallies: Vec<(String, Tally)>,
}

/// Who holds a place in a cap counter: one lead's delivery to one destination.
pub fn cap_holder(lead_id: &LeadId, destination: &str) -> String {
    format!("{lead_id}#{destination}")
}

impl Transition {
    fn new(update: LeadUpdate) -> Self {
        Transition {
            update,
            events: Vec::new(),
            jobs: Vec::new(),
            releases: Vec::new(),
            dead_deliveries: Vec::new(),
            tallies: Vec::new(),
        }
    }

    fn event(mut self, event: LeadEvent) -> Self {
        self.events.push(event);
        self
    }
}

// ---- validate ------------------------------------------------------------------------------------------

/// A received lead once screening has decided and routing has planned: `rejected` (screening refused it),
/// `unsold` (no buyer can take it: the plan's explanations say why), or `routing` with one delivery per
/// planned buyer — `pending` (and its first attempt queued) for the plan's first step, `queued` for the
/// later steps, each with its step and price. The routing event carries the plan's partner explanations
/// (counted reasons, no buyer internals). Conditional on the lead still being `received`.
pub fn screened(
    lead: &LeadRecord,
    verdict: &ScreeningVerdict,
    plan: &RoutingPlan,
    now: DateTime<Utc>,
) -> Transition {
    let mut update = LeadUpdate::new(now).expect(&[LeadStatus::Received]);
    if lead.test {
        return tested(verdict, plan, update, now);
    }
    let (ScreeningVerdict::Passed { checks, .. } | ScreeningVerdict::Rejected { checks, .. }) =
        verdict;
    for check in checks {
        update = update.event(
            TimelineEvent::new(now, EventKind::Screened, LeadStatus::Received)
                .reason(&check.code, check.reason.clone()),
        );
    }
    let (code, reason) = match verdict {
        ScreeningVerdict::Rejected { refusal, .. } => (&refusal.code, &refusal.reason),
        ScreeningVerdict::Passed { .. } => return routed(lead, plan, update, now),
    };
    Transition::new(
        update.status(LeadStatus::Rejected).event(
            TimelineEvent::new(now, EventKind::Rejected, LeadStatus::Rejected)
                .reason(code, reason.clone()),
        ),
    )
    .event(LeadEvent::Rejected {
        code: code.clone(),
        reason: reason.clone(),
    })
}

/// Screening could not decide yet (LeadSafe could not be asked): the lead stays `received`, and the
/// timeline says why and that it will be screened again. Recorded on the first wait only, so that a long
/// outage does not fill the timeline; later waits are logged.
pub fn screening_delayed(check: &crate::screening::Check, now: DateTime<Utc>) -> Transition {
    Transition::new(
        LeadUpdate::new(now).expect(&[LeadStatus::Received]).event(
            TimelineEvent::new(now, EventKind::Screened, LeadStatus::Received)
                .reason(&check.code, check.reason.clone()),
        ),
    )
}

/// A test lead ends `test`: its screening verdict, the plan it would have followed (every step, and why
/// buyers were left out) and no delivery; nothing is queued.
fn tested(
    verdict: &ScreeningVerdict,
    plan: &RoutingPlan,
    update: LeadUpdate,
    now: DateTime<Utc>,
) -> Transition {
    let mut update = update.status(LeadStatus::Test);
    let (ScreeningVerdict::Passed { checks, .. } | ScreeningVerdict::Rejected { checks, .. }) =
        verdict;
    for check in checks {
        update = update.event(
            TimelineEvent::new(now, EventKind::Screened, LeadStatus::Received)
                .reason(&check.code, check.reason.clone()),
        );
    }
    match verdict {
        ScreeningVerdict::Rejected { refusal, .. } => {
            update = update.event(
                TimelineEvent::new(now, EventKind::Screened, LeadStatus::Received).reason(
                    &refusal.code,
                    format!("would be rejected: {}", refusal.reason),
                ),
            );
        }
        ScreeningVerdict::Passed { .. } => {
            update = update.event(
                TimelineEvent::new(now, EventKind::Screened, LeadStatus::Received).reason(
                    "passed",
                    "passed screening (a test lead claims nothing and LeadSafe is not asked)",
                ),
            );
            let steps: Vec<String> = plan
                .steps
                .iter()
                .map(|step| {
                    step.offers
                        .iter()
                        .map(|offer| offer.destination.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .collect();
            let mut reason = if steps.is_empty() {
                "would be unsold: no buyer could take it".to_owned()
            } else {
                format!("would be offered to: {}", steps.join("; then "))
            };
            for explanation in plan.partner_explanations() {
                reason.push_str("; ");
                reason.push_str(&explanation);
            }
            update = update.event(
                TimelineEvent::new(now, EventKind::Routing, LeadStatus::Test)
                    .reason("test_plan", reason),
            );
        }
    }
    Transition::new(update.event(
        TimelineEvent::new(now, EventKind::Test, LeadStatus::Test).reason(
            "test",
            "a test lead: no buyer was called and no cap or duplicate claim was taken",
        ),
    ))
}

fn routed(
    lead: &LeadRecord,
    plan: &RoutingPlan,
    update: LeadUpdate,
    now: DateTime<Utc>,
) -> Transition {
    let screened = TimelineEvent::new(now, EventKind::Screened, LeadStatus::Received)
        .reason("passed", "passed screening");
    let explanations = plan.partner_explanations();
    if plan.is_unsold() {
        let (code, reason) = if explanations.is_empty() {
            (
                "no_destination",
                format!("no buyer is configured for {} leads", lead.vertical),
            )
        } else {
            (
                "no_eligible_buyer",
                format!("no buyer could take the lead: {}", explanations.join("; ")),
            )
        };
        return Transition::new(
            update.status(LeadStatus::Unsold).event(screened).event(
                TimelineEvent::new(now, EventKind::Unsold, LeadStatus::Unsold)
                    .reason(code, reason.clone()),
            ),
        )
        .event(LeadEvent::Unsold {
            code: code.to_owned(),
            reason,
        });
    }
    let mut update = update.status(LeadStatus::Routing).event(screened);
    let mut jobs = Vec::new();
    for (index, step) in plan.steps.iter().enumerate() {
        let step_number = u32::try_from(index).unwrap_or(u32::MAX);
        for offer in &step.offers {
            let state = DeliveryState {
                status: if index == 0 {
                    DeliveryStatus::Pending
                } else {
                    DeliveryStatus::Queued
                },
                step: step_number,
                price_cents: offer.price.map(|cents| cents.0),
                ..DeliveryState::pending(now)
            };
            update = update.delivery(&offer.destination, DeliveryExpect::Absent, state);
            if index == 0 {
                jobs.push(ScheduledJob::deliver(
                    &lead.id,
                    &offer.destination,
                    1,
                    Duration::ZERO,
                ));
            }
        }
    }
    let first: Vec<&str> = plan.steps[0]
        .offers
        .iter()
        .map(|offer| offer.destination.as_str())
        .collect();
    let mut reason = format!("offered to: {}", first.join(", "));
    let later = plan.steps.len() - 1;
    if later > 0 {
        reason.push_str(&format!(
            "; {later} more {} in line if it is not taken",
            if later == 1 { "buyer" } else { "buyers" }
        ));
    }
    for explanation in &explanations {
        reason.push_str("; ");
        reason.push_str(explanation);
    }
    update = update.event(
        TimelineEvent::new(now, EventKind::Routing, LeadStatus::Routing).reason("routed", reason),
    );
    Transition {
        update,
        events: Vec::new(),
        jobs,
        releases: Vec::new(),
        dead_deliveries: Vec::new(),
        tallies: Vec::new(),
    }
}

/// The first attempt of every delivery of `lead` not yet started (a redelivered validate or dispatch job
/// re-sends them; dispatch ignores duplicates).
pub fn pending_jobs(lead: &LeadRecord) -> Vec<ScheduledJob> {
    lead.deliveries
        .iter()
        .filter(|(_, state)| state.status == DeliveryStatus::Pending)
        .map(|(destination, _)| ScheduledJob::deliver(&lead.id, destination, 1, Duration::ZERO))
        .collect()
}

// ---- ingest: a replayed Idempotency-Key -------------------------------------------------------------

/// What a request whose `Idempotency-Key` was seen before gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayAnswer {
    /// The key was used with another request (method, path or body): 422.
    OtherRequest,
    /// The first request may still be running (its lead is not queued yet): 409, retry after this long.
    InFlight { retry_after: Duration },
    /// The first answer again (202 with the first lead); `requeue`: the lead is still `received` past the
    /// first request's window, so that request may have died between its write and its send — queue the
    /// lead again (validate is idempotent).
    FirstAnswer { requeue: bool },
    /// The first request's lead is gone (discarded after its send failed) but its record outlived it: drop
    /// the record so that the partner's retry starts afresh, and answer 409 to retry at once.
    Stale,
}

/// The answer to a replay of `first` by a request hashed `request_hash`, given the first request's lead
/// as it is now (`None`: not stored, or gone).
pub fn replay_answer(
    first: &crate::store::IdempotencyRecord,
    request_hash: Option<&str>,
    lead: Option<&LeadRecord>,
    now: DateTime<Utc>,
) -> ReplayAnswer {
    if request_hash != Some(first.request_hash.as_str()) {
        return ReplayAnswer::OtherRequest;
    }
    let in_window = now < first.in_flight_until;
    let received = lead.map(|lead| lead.status == LeadStatus::Received);
    match received {
        // Within the first request's window a `received` (or not yet visible) lead may not be queued:
        // that request is still in flight. A lead past `received` was queued: the first request is done.
        Some(true) | None if in_window => ReplayAnswer::InFlight {
            retry_after: Duration::from_secs(
                u64::try_from((first.in_flight_until - now).num_seconds())
                    .unwrap_or(0)
                    .max(1),
            ),
        },
        Some(received) => ReplayAnswer::FirstAnswer { requeue: received },
        None => ReplayAnswer::Stale,
    }
}

// ---- dispatch ------------------------------------------------------------------------------------------

/// Whether a delivery job may act, decided from the delivery's recorded state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStep {
    /// Claim attempt `attempt` and call the buyer.
    Attempt,
    /// Already settled, or a stale duplicate: nothing to do.
    Skip(&'static str),
    /// Not due yet: put the same job back for this long.
    Wait(Duration),
    /// This attempt asked for a retry but the next job may not have been queued: queue it.
    Reschedule(Duration),
    /// Another worker holds the attempt: fail the record so the queue redelivers it later.
    Busy,
}

fn to_std(duration: chrono::Duration) -> Duration {
    duration.to_std().unwrap_or(Duration::ZERO)
}

/// What job `attempt` of a delivery in `state` should do at `now`.
pub fn delivery_step(state: &DeliveryState, attempt: u32, now: DateTime<Utc>) -> DeliveryStep {
    let due_in =
        |at: Option<DateTime<Utc>>| at.map(|at| to_std(at - now)).unwrap_or(Duration::ZERO);
    match state.status {
        status if status.is_final() => DeliveryStep::Skip("the delivery is already settled"),
        DeliveryStatus::Pending | DeliveryStatus::Retrying if state.attempts + 1 == attempt => {
            match due_in(state.next_attempt_at) {
                wait if wait > Duration::from_secs(1) => DeliveryStep::Wait(wait),
                _ => DeliveryStep::Attempt,
            }
        }
        DeliveryStatus::Retrying if state.attempts == attempt => {
            DeliveryStep::Reschedule(due_in(state.next_attempt_at))
        }
        DeliveryStatus::InFlight if state.attempts == attempt => {
            if state.lease_until.is_some_and(|lease| lease < now) {
                DeliveryStep::Attempt
            } else {
                DeliveryStep::Busy
            }
        }
        _ => DeliveryStep::Skip("a stale or duplicate job"),
    }
}

/// The most requests one delivery attempt may take (Lofty: lookup, then note or create).
pub const MAX_STEPS: usize = 4;

/// How long a worker holds an attempt it claimed: longer than its longest call (every step at the
/// destination's timeout), so that a live worker never loses it; after that a redelivered job may take it
/// over (its owner died).
pub fn lease(timeout: Duration) -> Duration {
    timeout
        .saturating_mul(u32::try_from(MAX_STEPS).unwrap_or(u32::MAX))
        .saturating_add(Duration::from_secs(10))
}

/// Whether routing `lead` takes the next value of its vertical's weighted rotation: a weighted vertical's
/// real leads do; a test lead shows the plan without moving the rotation on.
pub fn takes_a_rotation_turn(
    lead: &LeadRecord,
    strategy: Option<crate::routing::Strategy>,
) -> bool {
    strategy == Some(crate::routing::Strategy::Weighted) && !lead.test
}

/// The delivery's planned state (step, price), or a fresh one.
fn planned(lead: &LeadRecord, destination: &str, now: DateTime<Utc>) -> DeliveryState {
    lead.deliveries
        .get(destination)
        .cloned()
        .unwrap_or_else(|| DeliveryState::pending(now))
}

/// Claim attempt `attempt` of the delivery to `destination`: only one worker calls the buyer for it. The
/// claim holds for `lease`; after that a redelivered job may take over (its owner died). `cap_keys`: the
/// cap counters the delivery holds a place in.
pub fn claim(
    lead: &LeadRecord,
    destination: &str,
    attempt: u32,
    lease: Duration,
    now: DateTime<Utc>,
    cap_keys: Vec<String>,
) -> LeadUpdate {
    LeadUpdate::new(now)
        .delivery(
            destination,
            DeliveryExpect::Claimable { attempt, now },
            DeliveryState {
                status: DeliveryStatus::InFlight,
                attempts: attempt,
                lease_until: Some(later(now, lease)),
                next_attempt_at: None,
                reason: None,
                buyer_ref: None,
                updated_at: now,
                cap_keys,
                ..planned(lead, destination, now)
            },
        )
        .event(
            TimelineEvent::new(now, EventKind::DeliveryAttempt, lead.status)
                .destination(destination)
                .attempt(attempt),
        )
}

/// The attempt whose outcome is recorded.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub lead: &'a LeadRecord,
    pub destination: &'a str,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Attempts made so far, to record on the delivery.
    pub attempts: u32,
    pub max_attempts: u32,
    /// Whether this worker claimed the attempt (it is `in_flight`), or never got as far.
    pub claimed: bool,
}

/// The most a delivery waits in all for a buyer's rate limit (429) before such waits count as attempts.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(3600);

/// How an attempt ended, for the handler's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Accepted,
    Rejected,
    /// Another attempt is scheduled after this delay.
    Retrying(Duration),
    /// Out of attempts.
    GaveUp,
    /// A configuration or credentials problem: an operator must act.
    Failed,
}

/// A buyer's answer to an attempt as the delivery's new state: accepted, rejected, retrying (with the next
/// attempt's job, after the backoff, honouring the buyer's wait) or dead (out of attempts, or failed). A
/// rate-limit answer (429, [`crate::delivery::RATE_LIMITED`]) is waited out without using up the attempt
/// (the next job makes the same attempt again) while the delivery's rate-limit waits total at most
/// [`MAX_RATE_LIMIT_WAIT`]; past that it counts as any retry. Waits longer than the queue's longest delay
/// are served by re-enqueueing: the job comes back early and [`delivery_step`] puts it back for the rest.
/// Only the worker that claimed the attempt records its outcome (`DeliveryExpect::InFlight`). `jitter` is
/// in [0, 1). The lead is settled separately ([`settle`]) once this is applied.
pub fn attempt_outcome(
    at: &Attempt<'_>,
    outcome: Outcome,
    policy: &RetryPolicy,
    jitter: f64,
    now: DateTime<Utc>,
) -> (Transition, AttemptResult) {
    let base = DeliveryState {
        status: DeliveryStatus::Dead,
        attempts: at.attempts,
        lease_until: None,
        next_attempt_at: None,
        reason: None,
        buyer_ref: None,
        updated_at: now,
        ..planned(at.lead, at.destination, now)
    };
    let event = |kind| {
        TimelineEvent::new(now, kind, at.lead.status)
            .destination(at.destination)
            .attempt(at.attempt)
    };
    let mut jobs = Vec::new();
    let (state, event, result) = match outcome {
        // The price the buyer's answer gave (`price_path`) replaces the configured one; it is the operator's,
        // never on the partner's timeline.
        Outcome::Accepted { buyer_ref, price } => (
            DeliveryState {
                status: DeliveryStatus::Accepted,
                buyer_ref: buyer_ref.clone(),
                price_cents: price.map(|cents| cents.0).or(base.price_cents),
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
            AttemptResult::Accepted,
        ),
        Outcome::Rejected { code, reason, .. } => (
            DeliveryState {
                status: DeliveryStatus::Rejected,
                reason: Some(reason.clone()),
                ..base
            },
            event(EventKind::DeliveryRejected).reason(&code, reason),
            AttemptResult::Rejected,
        ),
        // The buyer's rate limit: wait for it without using up the attempt, up to a total wait.
        Outcome::Retry {
            code,
            reason,
            after,
        } if code == crate::delivery::RATE_LIMITED
            && Duration::from_millis(base.rate_limit_wait_ms)
                .saturating_add(retry_delay(policy, 1, after, jitter))
                <= MAX_RATE_LIMIT_WAIT =>
        {
            let delay = retry_delay(policy, 1, after, jitter);
            jobs.push(ScheduledJob::deliver(
                &at.lead.id,
                at.destination,
                at.attempt,
                delay,
            ));
            let waited = base
                .rate_limit_wait_ms
                .saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
            (
                DeliveryState {
                    status: DeliveryStatus::Retrying,
                    // The attempt is given back: the next job makes the same attempt again.
                    attempts: at.attempts.saturating_sub(1),
                    next_attempt_at: Some(later(now, delay)),
                    reason: Some(reason.clone()),
                    rate_limit_wait_ms: waited,
                    ..base
                },
                event(EventKind::DeliveryRetryScheduled).reason(
                    &code,
                    format!(
                        "{reason}; waiting {} s for the buyer's rate limit (no attempt used)",
                        delay.as_secs().max(1)
                    ),
                ),
                AttemptResult::Retrying(delay),
            )
        }
        Outcome::Retry {
            code,
            reason,
            after,
        } if at.attempt < at.max_attempts => {
            let delay = retry_delay(policy, at.attempt, after, jitter);
            jobs.push(ScheduledJob::deliver(
                &at.lead.id,
                at.destination,
                at.attempt + 1,
                delay,
            ));
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
                AttemptResult::Retrying(delay),
            )
        }
        Outcome::Retry { code, reason, .. } => {
            let reason = format!("gave up after {} attempts: {reason}", at.attempt);
            (
                DeliveryState {
                    reason: Some(reason.clone()),
                    ..base
                },
                event(EventKind::DeliveryDead).reason(&code, reason),
                AttemptResult::GaveUp,
            )
        }
        Outcome::Failed { code, reason } => (
            DeliveryState {
                reason: Some(reason.clone()),
                ..base
            },
            event(EventKind::DeliveryDead).reason(&code, reason),
            AttemptResult::Failed,
        ),
    };
    let expect = if at.claimed {
        DeliveryExpect::InFlight {
            attempt: at.attempt,
        }
    } else {
        DeliveryExpect::StatusIn(vec![DeliveryStatus::Pending, DeliveryStatus::Retrying])
    };
    // A delivery that will not be taken gives its cap places back.
    let releases = match result {
        AttemptResult::Rejected | AttemptResult::GaveUp | AttemptResult::Failed => state
            .cap_keys
            .iter()
            .map(|key| (key.clone(), cap_holder(&at.lead.id, at.destination)))
            .collect(),
        AttemptResult::Accepted | AttemptResult::Retrying(_) => Vec::new(),
    };
    // A dead delivery is listed for operators (`leadhub-admin deliveries dead`).
    let dead_deliveries = match result {
        AttemptResult::GaveUp | AttemptResult::Failed => vec![DeadDeliveryChange::Record(
            dead_marker(at.lead, at.destination, &state, Some(&event)),
        )],
        AttemptResult::Accepted | AttemptResult::Rejected | AttemptResult::Retrying(_) => {
            Vec::new()
        }
    };
    // Accepted deliveries are tallied per destination and day (return rates).
    let tallies = match result {
        AttemptResult::Accepted => vec![(at.destination.to_owned(), Tally::Accepted)],
        _ => Vec::new(),
    };
    let update = LeadUpdate::new(now)
        .delivery(at.destination, expect, state)
        .event(event);
    (
        Transition {
            update,
            events: Vec::new(),
            jobs,
            releases,
            dead_deliveries,
            tallies,
        },
        result,
    )
}

/// The marker of `lead`'s delivery to `destination` in `state` (dead), from the timeline event that made it
/// dead: its time, code and words. Without one (a record older than the event), the delivery's own.
fn dead_marker(
    lead: &LeadRecord,
    destination: &str,
    state: &DeliveryState,
    event: Option<&TimelineEvent>,
) -> DeadDelivery {
    DeadDelivery {
        lead_id: lead.id.clone(),
        destination: destination.to_owned(),
        died_at: event.map_or(state.updated_at, |event| event.at),
        attempts: state.attempts,
        code: event
            .and_then(|event| event.code.clone())
            .unwrap_or_else(|| "dead".to_owned()),
        reason: event
            .and_then(|event| event.reason.clone())
            .or_else(|| state.reason.clone())
            .unwrap_or_else(|| "the delivery is dead".to_owned()),
        expires_at: lead.expires_at,
    }
}

/// The dead-delivery marker of `lead`'s delivery to `destination`, when that delivery is dead: the same
/// marker dispatch recorded when it died (a redelivered job records it again, so a lost write heals).
pub fn dead_delivery(lead: &LeadRecord, destination: &str) -> Option<DeadDelivery> {
    let state = lead
        .deliveries
        .get(destination)
        .filter(|state| state.status == DeliveryStatus::Dead)?;
    let event = lead.events.iter().rev().find(|event| {
        event.kind == EventKind::DeliveryDead && event.destination.as_deref() == Some(destination)
    });
    Some(dead_marker(lead, destination, state, event))
}

/// A pending delivery whose buyer's `period` cap was full when its turn came: `skipped`; the lead is then
/// settled ([`settle`]) and passes to the next buyer in line.
pub fn cap_full(
    lead: &LeadRecord,
    destination: &str,
    period: crate::routing::CapPeriod,
    now: DateTime<Utc>,
) -> Transition {
    let reason = format!(
        "not offered: the buyer's {} cap was reached",
        period.adjective()
    );
    let reason = reason.as_str();
    let update = LeadUpdate::new(now)
        .delivery(
            destination,
            DeliveryExpect::StatusIn(vec![DeliveryStatus::Pending]),
            DeliveryState {
                status: DeliveryStatus::Skipped,
                reason: Some(reason.to_owned()),
                updated_at: now,
                ..planned(lead, destination, now)
            },
        )
        .event(
            TimelineEvent::new(now, EventKind::DeliverySkipped, lead.status)
                .destination(destination)
                .reason("cap_reached", reason),
        );
    Transition::new(update)
}

/// What follows an attempt's recorded outcome on a routing lead: `delivered` once a buyer took it; once
/// every delivery offered so far (the current step's, and a replayed one of an earlier step) is decided
/// without one, the next step's buyers are offered the lead
/// (their `queued` deliveries become `pending` and their first attempts are queued); with no step left,
/// `unsold`. `None` while an offered delivery is still open, or the lead is not routing.
/// Conditional on the lead still being `routing` (and the next step's deliveries still `queued`), so
/// whoever settles first wins and the others change nothing.
pub fn settle(lead: &LeadRecord, now: DateTime<Utc>) -> Option<Transition> {
    if lead.status != LeadStatus::Routing {
        return None;
    }
    if let Some((update, event)) = delivered(lead, now) {
        return Some(Transition::new(update.expect(&[LeadStatus::Routing])).event(event));
    }
    // Every delivery offered so far (not `queued`) must be decided. Those of earlier steps always are,
    // except one an operator replayed ([`replay`]): the lead waits for it too.
    let mut offered = lead
        .deliveries
        .values()
        .filter(|state| state.status != DeliveryStatus::Queued)
        .peekable();
    offered.peek()?;
    if offered.any(|state| !state.status.is_final()) {
        return None;
    }
    let update = LeadUpdate::new(now).expect(&[LeadStatus::Routing]);
    Some(
        match offer_next_step(lead, update, LeadStatus::Routing, now) {
            Ok(transition) => transition,
            Err(update) => unsold(update, now),
        },
    )
}

/// `delivered` once a buyer took the lead: its status change, timeline event and lead event.
fn delivered(lead: &LeadRecord, now: DateTime<Utc>) -> Option<(LeadUpdate, LeadEvent)> {
    let accepted: Vec<String> = lead
        .deliveries
        .iter()
        .filter(|(_, state)| state.status == DeliveryStatus::Accepted)
        .map(|(destination, _)| destination.clone())
        .collect();
    if accepted.is_empty() {
        return None;
    }
    let update = LeadUpdate::new(now).status(LeadStatus::Delivered).event(
        TimelineEvent::new(now, EventKind::Delivered, LeadStatus::Delivered)
            .reason("delivered", format!("taken by: {}", accepted.join(", "))),
    );
    Some((
        update,
        LeadEvent::Delivered {
            destinations: accepted,
        },
    ))
}

/// Offer the lead to the next step's buyers, on top of `update`: their deliveries from `queued` to
/// `pending`, a routing event, their first attempts queued; `status` is the lead's status for the event
/// (`routing`). `Err(update)` when no step is left.
fn offer_next_step(
    lead: &LeadRecord,
    update: LeadUpdate,
    status: LeadStatus,
    now: DateTime<Utc>,
) -> Result<Transition, LeadUpdate> {
    let Some(next) = lead
        .deliveries
        .values()
        .filter(|state| state.status == DeliveryStatus::Queued)
        .map(|state| state.step)
        .min()
    else {
        return Err(update);
    };
    let mut update = update.status(LeadStatus::Routing);
    let mut jobs = Vec::new();
    let mut offered = Vec::new();
    for (destination, state) in &lead.deliveries {
        if state.status != DeliveryStatus::Queued || state.step != next {
            continue;
        }
        update = update.delivery(
            destination,
            DeliveryExpect::StatusIn(vec![DeliveryStatus::Queued]),
            DeliveryState {
                status: DeliveryStatus::Pending,
                updated_at: now,
                ..state.clone()
            },
        );
        jobs.push(ScheduledJob::deliver(
            &lead.id,
            destination,
            1,
            Duration::ZERO,
        ));
        offered.push(destination.as_str());
    }
    let update = update.event(TimelineEvent::new(now, EventKind::Routing, status).reason(
        "next_buyer",
        format!(
            "offered to the next in line: {} (no earlier buyer kept the lead)",
            offered.join(", ")
        ),
    ));
    Ok(Transition {
        update,
        events: Vec::new(),
        jobs,
        releases: Vec::new(),
        dead_deliveries: Vec::new(),
        tallies: Vec::new(),
    })
}

fn unsold(update: LeadUpdate, now: DateTime<Utc>) -> Transition {
    let reason = "every buyer declined the lead or could not be reached";
    Transition::new(
        update.status(LeadStatus::Unsold).event(
            TimelineEvent::new(now, EventKind::Unsold, LeadStatus::Unsold)
                .reason("no_buyer_took_it", reason),
        ),
    )
    .event(LeadEvent::Unsold {
        code: "no_buyer_took_it".to_owned(),
        reason: reason.to_owned(),
    })
}

// ---- callback ------------------------------------------------------------------------------------------

/// The most `contacted` verdicts recorded on one lead (a lead's record is bounded).
pub const MAX_CONTACTED: usize = 20;

/// The delivery states in which a buyer's answer to the POST is not recorded yet: a verdict that arrives
/// then is kept ([`VerdictDecision::Keep`]) and applied once the delivery is decided ([`apply_kept`]).
pub const OPEN_DELIVERY: [DeliveryStatus; 3] = [
    DeliveryStatus::Pending,
    DeliveryStatus::InFlight,
    DeliveryStatus::Retrying,
];

/// What the configuration says about one destination's verdicts on a lead: what its buyer may return and
/// for how long (the destination's `return_reasons`, `return_window_days`), and whether a returned lead
/// goes on to the next buyer in line (the lead's vertical's `resell_returns`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerdictRules {
    pub returns: ReturnPolicy,
    pub resell_returns: bool,
}

impl VerdictRules {
    /// `destination`'s rules for a lead of `vertical`. A destination no longer configured gets the
    /// defaults (any reason, within 7 days), so that its verdicts on the leads it took are still judged.
    pub fn of<C>(
        config: &crate::config::Config<C>,
        destination: &str,
        vertical: crate::vertical::Vertical,
    ) -> Self {
        VerdictRules {
            returns: config
                .destination(destination)
                .map(|d| d.returns.clone())
                .unwrap_or_default(),
            resell_returns: config
                .routing
                .get(&vertical)
                .is_some_and(|routing| routing.resell_returns),
        }
    }
}

/// What a buyer's verdict does to a lead.
#[derive(Debug, Clone, PartialEq)]
pub enum VerdictDecision {
    /// Record it: the transition to write.
    Apply(Transition),
    /// The buyer's answer to the POST is not recorded yet (its delivery is open): keep the verdict on the
    /// lead (the transition to write) until it is; [`apply_kept`] then applies it.
    Keep(Transition),
    /// Already recorded (the same verdict again, or the `contacted` limit reached): nothing changes.
    AlreadyRecorded,
    /// The same verdict is already kept (received at `received_at`): nothing changes.
    AlreadyKept { received_at: DateTime<Utc> },
    /// Another verdict (`kept`, received at `received_at`) is kept for this buyer while its delivery is
    /// open: one is kept at a time; this one may be sent again once the answer is recorded.
    OtherVerdictKept {
        kept: Verdict,
        received_at: DateTime<Utc>,
    },
    /// The buyer holds no accepted delivery of the lead.
    NotDeliveredToYou,
    /// The lead's status does not take this verdict (e.g. `confirmed` after `returned`).
    NotApplicable { status: LeadStatus },
    /// A return after the destination's window: `window_days` after the delivery was accepted, which
    /// closed at `closed_at`.
    ReturnWindowClosed {
        window_days: u32,
        closed_at: DateTime<Utc>,
    },
    /// A return without a reason the destination takes: one of `allowed`, or (`None`: no
    /// `return_reasons` configured) any non-blank reason, and none was given.
    UnknownReturnReason { allowed: Option<Vec<String>> },
}

/// When `lead`'s delivery to `destination` was accepted: its latest `delivery_accepted` event, else (a
/// record older than the event) the delivery's last change.
pub fn accepted_at(lead: &LeadRecord, destination: &str) -> Option<DateTime<Utc>> {
    lead.events
        .iter()
        .rev()
        .find(|event| {
            event.kind == EventKind::DeliveryAccepted
                && event.destination.as_deref() == Some(destination)
        })
        .map(|event| event.at)
        .or_else(|| {
            lead.deliveries
                .get(destination)
                .map(|state| state.updated_at)
        })
}

/// Whether `destination`'s `verdict` is on `lead`'s timeline.
fn has_verdict_event(lead: &LeadRecord, destination: &str, verdict: Verdict) -> bool {
    lead.events.iter().any(|event| {
        event.kind == EventKind::BuyerVerdict
            && event.destination.as_deref() == Some(destination)
            && event.code.as_deref() == Some(verdict.as_str())
    })
}

/// A buyer's verdict on a lead it took. A lead whose acceptance is recorded but which is not settled yet is
/// settled (`delivered`) in the same write. `reason` is the buyer's words, already cleaned.
///
/// While the buyer's delivery is open (its answer to the POST not recorded yet) the verdict is kept on the
/// lead ([`VerdictDecision::Keep`], conditional on the delivery still being open and nothing kept for the
/// buyer yet) and applied once the answer is recorded ([`apply_kept`]); a `returned` verdict's reason is
/// checked at once.
///
/// `rejected` (after post) from the only buyer holding the lead, with buyers still in line, sends the lead
/// on: that delivery becomes `rejected` and the next step's buyers are offered the lead (the lead is
/// `routing` again; the timeline shows the verdict and the new offer). `confirmed` ends routing: buyers
/// still in line are `skipped`.
///
/// `returned` must come within `rules.returns.window_days` of the delivery's acceptance
/// ([`accepted_at`]) and carry a reason the destination takes (recorded in the configuration's spelling).
/// With the vertical's `resell_returns`, a return from the only buyer holding the lead, with buyers still in
/// line, sends the lead on as `rejected` does; otherwise the lead stays `returned` and buyers still in line
/// are `skipped`. A return is tallied for the destination's return rate.
pub fn verdict(
    lead: &LeadRecord,
    destination: &str,
    verdict: Verdict,
    reason: Option<&str>,
    rules: &VerdictRules,
    now: DateTime<Utc>,
) -> VerdictDecision {
    match lead.deliveries.get(destination).map(|state| state.status) {
        Some(DeliveryStatus::Accepted) => {}
        Some(status) if OPEN_DELIVERY.contains(&status) => {
            return keep(lead, destination, verdict, reason, rules, now)
        }
        // This buyer's rejection (or return) already sent the lead on to the next buyer.
        Some(DeliveryStatus::Rejected)
            if matches!(verdict, Verdict::Rejected | Verdict::Returned)
                && has_verdict_event(lead, destination, verdict) =>
        {
            return VerdictDecision::AlreadyRecorded
        }
        _ => return VerdictDecision::NotDeliveredToYou,
    }
    // Settle first (in the same write) when dispatch recorded the acceptance but not the lead's status.
    let (mut update, mut events, status) = match lead.status {
        LeadStatus::Routing => match delivered(lead, now) {
            Some((update, event)) => (update, vec![event], LeadStatus::Delivered),
            // Not reached: the buyer's delivery is accepted.
            None => return VerdictDecision::NotDeliveredToYou,
        },
        status => (LeadUpdate::new(now), Vec::new(), status),
    };
    let expect = lead.status;
    if verdict == Verdict::Contacted
        && lead
            .events
            .iter()
            .filter(|event| {
                event.kind == EventKind::BuyerVerdict
                    && event.code.as_deref() == Some(Verdict::Contacted.as_str())
            })
            .count()
            >= MAX_CONTACTED
    {
        return VerdictDecision::AlreadyRecorded;
    }
    let to = match verdict.transition() {
        Some((to, _)) if status == to => return VerdictDecision::AlreadyRecorded,
        Some((to, from)) if from.contains(&status) => to,
        Some(_) => return VerdictDecision::NotApplicable { status },
        None => status,
    };
    let reason = if verdict == Verdict::Returned {
        let window_days = rules.returns.window_days;
        let accepted = accepted_at(lead, destination).unwrap_or(now);
        let closed_at = accepted
            .checked_add_signed(chrono::Duration::days(i64::from(window_days)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if now >= closed_at {
            return VerdictDecision::ReturnWindowClosed {
                window_days,
                closed_at,
            };
        }
        match rules.returns.reason(reason) {
            Some(reason) => reason,
            None => {
                return VerdictDecision::UnknownReturnReason {
                    allowed: rules.returns.reasons.clone(),
                }
            }
        }
    } else {
        reason
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the buyer reported: {}", verdict.as_str()))
    };
    update = update.expect(&[expect]).status(to).event(
        TimelineEvent::new(now, EventKind::BuyerVerdict, to)
            .destination(destination)
            .reason(verdict.as_str(), reason.clone()),
    );
    let in_line = || {
        lead.deliveries
            .iter()
            .filter(|(_, state)| state.status == DeliveryStatus::Queued)
    };
    let skip_in_line = |mut update: LeadUpdate, why: &str| {
        for (queued, state) in in_line() {
            update = update.delivery(
                queued,
                DeliveryExpect::StatusIn(vec![DeliveryStatus::Queued]),
                DeliveryState {
                    status: DeliveryStatus::Skipped,
                    reason: Some(why.to_owned()),
                    updated_at: now,
                    ..state.clone()
                },
            );
        }
        update
    };
    let others_hold_it = lead
        .deliveries
        .iter()
        .any(|(other, state)| other != destination && state.status == DeliveryStatus::Accepted);
    // The buyer gives the lead back and the next buyer in line is offered it.
    let send_on = |update: LeadUpdate, why: String| -> Result<Transition, LeadUpdate> {
        let Some(state) = lead.deliveries.get(destination) else {
            return Err(update);
        };
        let update = update.delivery(
            destination,
            DeliveryExpect::StatusIn(vec![DeliveryStatus::Accepted]),
            DeliveryState {
                status: DeliveryStatus::Rejected,
                reason: Some(why),
                updated_at: now,
                ..state.clone()
            },
        );
        offer_next_step(lead, update, LeadStatus::Routing, now)
    };
    let mut jobs = Vec::new();
    let mut tallies = Vec::new();
    match verdict {
        Verdict::Confirmed => {
            update = skip_in_line(update, "not offered: an earlier buyer kept the lead");
            events.push(LeadEvent::Confirmed {
                destination: destination.to_owned(),
            });
        }
        Verdict::Rejected => {
            events.push(LeadEvent::RejectedAfterPost {
                destination: destination.to_owned(),
                reason: reason.clone(),
            });
            if !others_hold_it && in_line().next().is_some() {
                match send_on(update, format!("rejected after it was taken: {reason}")) {
                    Ok(next) => {
                        update = next.update;
                        jobs = next.jobs;
                    }
                    Err(unchanged) => update = unchanged,
                }
            }
        }
        Verdict::Returned => {
            events.push(LeadEvent::Returned {
                destination: destination.to_owned(),
                reason: reason.clone(),
            });
            tallies.push((destination.to_owned(), Tally::Returned));
            if !rules.resell_returns {
                update = skip_in_line(
                    update,
                    "not offered: the lead was returned and its vertical does not resell returns",
                );
            } else if !others_hold_it && in_line().next().is_some() {
                match send_on(update, format!("returned after it was taken: {reason}")) {
                    Ok(next) => {
                        update = next.update;
                        jobs = next.jobs;
                    }
                    Err(unchanged) => update = unchanged,
                }
            }
        }
        Verdict::Contacted => {}
    }
    VerdictDecision::Apply(Transition {
        update,
        events,
        jobs,
        releases: Vec::new(),
        dead_deliveries: Vec::new(),
        tallies,
    })
}

/// Keep `verdict` for `destination` while its delivery is open (see [`verdict`]).
fn keep(
    lead: &LeadRecord,
    destination: &str,
    verdict: Verdict,
    reason: Option<&str>,
    rules: &VerdictRules,
    now: DateTime<Utc>,
) -> VerdictDecision {
    if let Some(kept) = lead.kept_verdicts.get(destination) {
        return if kept.verdict == verdict {
            VerdictDecision::AlreadyKept {
                received_at: kept.received_at,
            }
        } else {
            VerdictDecision::OtherVerdictKept {
                kept: kept.verdict,
                received_at: kept.received_at,
            }
        };
    }
    // A return's reason is checked at once; its window opens with the acceptance.
    let reason = match verdict {
        Verdict::Returned => match rules.returns.reason(reason) {
            Some(reason) => Some(reason),
            None => {
                return VerdictDecision::UnknownReturnReason {
                    allowed: rules.returns.reasons.clone(),
                }
            }
        },
        _ => reason.map(str::to_owned),
    };
    let words = match &reason {
        Some(reason) => format!(": {reason}"),
        None => String::new(),
    };
    let update = LeadUpdate::new(now)
        .expect(&[lead.status])
        .keep_verdict(
            destination,
            KeptVerdict {
                verdict,
                reason,
                received_at: now,
            },
            &OPEN_DELIVERY,
        )
        .event(
            TimelineEvent::new(now, EventKind::VerdictKept, lead.status)
                .destination(destination)
                .reason(
                    verdict.as_str(),
                    format!(
                        "the buyer's `{}` verdict arrived before its answer to the delivery was recorded: kept, it applies once that answer is recorded{words}",
                        verdict.as_str()
                    ),
                ),
        );
    VerdictDecision::Keep(Transition::new(update))
}

/// The first verdict kept on `lead` ([`VerdictDecision::Keep`]) whose delivery is now decided, applied or
/// recorded as not applied ([`apply_kept_verdict`]), with `rules` giving each destination's rules. `None`
/// when nothing is kept or every kept verdict's delivery is still open. One per transition: call it again
/// on the record the transition leaves (dispatch does, after each attempt's outcome, before settling).
pub fn apply_kept(
    lead: &LeadRecord,
    rules: &dyn Fn(&str) -> VerdictRules,
    now: DateTime<Utc>,
) -> Option<Transition> {
    lead.kept_verdicts
        .keys()
        .find_map(|destination| apply_kept_verdict(lead, destination, &rules(destination), now))
}

/// The verdict kept for `destination`, once its delivery is decided: when the buyer took the lead, applied
/// by [`verdict`]'s rules (its lead events emitted then, and only then) and dropped in the same write; when
/// the delivery ended otherwise (rejected, dead, skipped), or the rules no longer take it (the lead's status
/// moved on, the return window closed), a `verdict_not_applied` timeline event says why and it is dropped.
/// Every such write is conditional on the same verdict still being kept, so it is applied at most once.
/// `None` while nothing is kept for `destination` or its delivery is still open.
pub fn apply_kept_verdict(
    lead: &LeadRecord,
    destination: &str,
    rules: &VerdictRules,
    now: DateTime<Utc>,
) -> Option<Transition> {
    let kept = lead.kept_verdicts.get(destination)?;
    let status = lead.deliveries.get(destination).map(|state| state.status);
    if status.is_some_and(|status| OPEN_DELIVERY.contains(&status)) {
        return None;
    }
    let not_applied = |code: &str, why: String| {
        Transition::new(
            LeadUpdate::new(now)
                .drop_kept_verdict(destination, kept.received_at)
                .event(
                    TimelineEvent::new(now, EventKind::VerdictNotApplied, lead.status)
                        .destination(destination)
                        .reason(
                            code,
                            format!(
                                "the buyer's `{}` verdict, kept since {}, was not applied: {why}",
                                kept.verdict.as_str(),
                                kept.received_at
                                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                            ),
                        ),
                ),
        )
    };
    match status {
        Some(DeliveryStatus::Accepted) => {}
        Some(status) => {
            return Some(not_applied(
                "delivery_not_taken",
                format!("the delivery ended {status}"),
            ))
        }
        None => {
            return Some(not_applied(
                "delivery_not_taken",
                "the lead has no delivery to this buyer".to_owned(),
            ))
        }
    }
    Some(
        match verdict(
            lead,
            destination,
            kept.verdict,
            kept.reason.as_deref(),
            rules,
            now,
        ) {
            VerdictDecision::Apply(mut transition) => {
                transition.update = transition
                    .update
                    .drop_kept_verdict(destination, kept.received_at);
                transition
            }
            VerdictDecision::AlreadyRecorded => not_applied(
                "already_recorded",
                "it was already recorded (or, for `contacted`, the lead holds the most it records)"
                    .to_owned(),
            ),
            VerdictDecision::NotApplicable { status } => not_applied(
                "verdict_not_applicable",
                format!("the lead is {status}, which it does not apply to"),
            ),
            VerdictDecision::ReturnWindowClosed {
                window_days,
                closed_at,
            } => not_applied(
                "return_window_closed",
                format!(
                    "the {window_days}-day return window closed at {}",
                    closed_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ),
            ),
            VerdictDecision::UnknownReturnReason { .. } => not_applied(
                "unknown_return_reason",
                "its reason is not one the destination takes".to_owned(),
            ),
            // Not reached: the delivery is accepted, so the verdict is neither kept again nor refused as
            // not delivered.
            VerdictDecision::Keep(_)
            | VerdictDecision::AlreadyKept { .. }
            | VerdictDecision::OtherVerdictKept { .. }
            | VerdictDecision::NotDeliveredToYou => not_applied(
                "delivery_not_taken",
                "the buyer holds no accepted delivery of the lead".to_owned(),
            ),
        },
    )
}

// ---- operator -----------------------------------------------------------------------------------------

/// Why a delivery cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayRefusal {
    #[error("lead {lead_id} has no delivery to `{destination}`")]
    NoSuchDelivery {
        lead_id: LeadId,
        destination: String,
    },
    #[error(
        "the delivery of lead {lead_id} to `{destination}` is {status}, not dead: only a dead delivery can be replayed"
    )]
    NotDead {
        lead_id: LeadId,
        destination: String,
        status: DeliveryStatus,
    },
}

/// An operator replays `lead`'s dead delivery to `destination`: it is `pending` again with no attempt made
/// (its idempotency key, built from the lead and destination, is unchanged, so the buyer sees the same
/// `webhook-id`), its first attempt is queued, and its marker is removed. Its cap places were given back
/// when it died: `cap_keys` is emptied so that dispatch takes them afresh before the first attempt (a full
/// cap then skips the buyer as for any first offer). An `unsold` lead is `routing` again (an accepted
/// replay then makes it `delivered`); any other status is kept. Conditional on the delivery still being
/// `dead` and the lead still having its status. No lead event: the partner is told the outcome when the
/// lead settles.
pub fn replay(
    lead: &LeadRecord,
    destination: &str,
    now: DateTime<Utc>,
) -> Result<Transition, ReplayRefusal> {
    let Some(state) = lead.deliveries.get(destination) else {
        return Err(ReplayRefusal::NoSuchDelivery {
            lead_id: lead.id.clone(),
            destination: destination.to_owned(),
        });
    };
    let Some(dead) = dead_delivery(lead, destination) else {
        return Err(ReplayRefusal::NotDead {
            lead_id: lead.id.clone(),
            destination: destination.to_owned(),
            status: state.status,
        });
    };
    let status = match lead.status {
        LeadStatus::Unsold => LeadStatus::Routing,
        status => status,
    };
    let mut update = LeadUpdate::new(now).expect(&[lead.status]);
    if status != lead.status {
        update = update.status(status);
    }
    let update = update
        .delivery(
            destination,
            DeliveryExpect::StatusIn(vec![DeliveryStatus::Dead]),
            DeliveryState {
                status: DeliveryStatus::Pending,
                attempts: 0,
                lease_until: None,
                next_attempt_at: None,
                reason: None,
                buyer_ref: None,
                updated_at: now,
                cap_keys: Vec::new(),
                rate_limit_wait_ms: 0,
                ..state.clone()
            },
        )
        .event(
            TimelineEvent::new(now, EventKind::DeliveryReplayed, status)
                .destination(destination)
                .reason("replayed", "replayed by an operator"),
        );
    Ok(Transition {
        update,
        events: Vec::new(),
        jobs: vec![ScheduledJob::deliver(
            &lead.id,
            destination,
            1,
            Duration::ZERO,
        )],
        releases: Vec::new(),
        tallies: Vec::new(),
        dead_deliveries: vec![DeadDeliveryChange::Remove {
            lead_id: lead.id.clone(),
            destination: destination.to_owned(),
            died_by: dead.died_at,
        }],
    })
}

// ---- buyer webhooks -----------------------------------------------------------------------------------

/// The most `buyer_activity` events recorded on one lead per buyer (a lead's record is bounded).
pub const MAX_BUYER_ACTIVITY: usize = 50;

/// What a buyer's report of activity on a lead does.
#[derive(Debug, Clone, PartialEq)]
pub enum ActivityDecision {
    /// Record it: the transition to write.
    Apply(Box<Transition>),
    /// The same activity (destination, code and summary) is already on the timeline: a webhook delivered
    /// again.
    AlreadyRecorded,
    /// [`MAX_BUYER_ACTIVITY`] activities of this buyer are already recorded on the lead.
    LimitReached,
    /// The buyer never took the lead: no accepted delivery, nor one that holds the buyer's reference (a
    /// lead rejected after post keeps it).
    NotDeliveredToYou,
}

/// A buyer reported activity on a lead it took (`code`, e.g. `lead_activity`; `summary`, the timeline's
/// words, which the caller made from the buyer's payload without its PII): a `buyer_activity` event on the
/// timeline, the status unchanged, no lead event (partners are not notified of it). Recording is conditional
/// on nothing (activity does not race with status changes), so two deliveries of one webhook at the same
/// moment may both be recorded; one after the other, the second is [`ActivityDecision::AlreadyRecorded`].
pub fn buyer_activity(
    lead: &LeadRecord,
    destination: &str,
    code: &str,
    summary: &str,
    now: DateTime<Utc>,
) -> ActivityDecision {
    let took_it = lead
        .deliveries
        .get(destination)
        .is_some_and(|state| state.status == DeliveryStatus::Accepted || state.buyer_ref.is_some());
    if !took_it {
        return ActivityDecision::NotDeliveredToYou;
    }
    let recorded: Vec<&TimelineEvent> = lead
        .events
        .iter()
        .filter(|event| {
            event.kind == EventKind::BuyerActivity
                && event.destination.as_deref() == Some(destination)
        })
        .collect();
    if recorded.iter().any(|event| {
        event.code.as_deref() == Some(code) && event.reason.as_deref() == Some(summary)
    }) {
        return ActivityDecision::AlreadyRecorded;
    }
    if recorded.len() >= MAX_BUYER_ACTIVITY {
        return ActivityDecision::LimitReached;
    }
    ActivityDecision::Apply(Box::new(Transition::new(
        LeadUpdate::new(now).event(
            TimelineEvent::new(now, EventKind::BuyerActivity, lead.status)
                .destination(destination)
                .reason(code, summary),
        ),
    )))
}

#[cfg(test)]
mod buyer_activity_tests {
    use super::*;
    use crate::lead::LeadJson;
    use crate::verticals::Vertical;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn lead(status: LeadStatus, delivery: Option<(DeliveryStatus, Option<&str>)>) -> LeadRecord {
        let json = LeadJson::from_text("{}".to_owned()).expect("json");
        let mut record = LeadRecord::received(
            LeadId::generate(now()),
            "p1",
            Vertical::RealEstate,
            json,
            now(),
            None,
        );
        record.status = status;
        if let Some((status, buyer_ref)) = delivery {
            let mut state = DeliveryState::pending(now());
            state.status = status;
            state.buyer_ref = buyer_ref.map(str::to_owned);
            record.deliveries.insert("lofty".to_owned(), state);
        }
        record
    }

    fn applied(record: &LeadRecord, decision: ActivityDecision) -> LeadRecord {
        let ActivityDecision::Apply(transition) = decision else {
            panic!("not applied: {decision:?}");
        };
        assert!(crate::store::preconditions_hold(record, &transition.update));
        assert!(transition.events.is_empty() && transition.jobs.is_empty());
        let mut record = record.clone();
        crate::store::apply_update(&mut record, &transition.update);
        record
    }

    #[test]
    fn activity_is_recorded_on_the_timeline_and_leaves_the_status_alone() {
        for status in [
            LeadStatus::Delivered,
            LeadStatus::Confirmed,
            LeadStatus::Returned,
        ] {
            let taken = lead(status, Some((DeliveryStatus::Accepted, Some("4711"))));
            let at = now() + chrono::Duration::minutes(5);
            let after = applied(
                &taken,
                buyer_activity(
                    &taken,
                    "lofty",
                    "lead_activity",
                    "Lofty: lead activity (View Property)",
                    at,
                ),
            );
            assert_eq!(after.status, status);
            let event = after.events.last().expect("an event");
            assert_eq!(
                (event.kind, event.status, event.at),
                (EventKind::BuyerActivity, status, at)
            );
            assert_eq!(event.destination.as_deref(), Some("lofty"));
            assert_eq!(event.code.as_deref(), Some("lead_activity"));
            assert_eq!(
                event.reason.as_deref(),
                Some("Lofty: lead activity (View Property)")
            );
        }
        // Rejected after post: the buyer still holds its reference to the lead.
        let returned = lead(
            LeadStatus::RejectedAfterPost,
            Some((DeliveryStatus::Rejected, Some("4711"))),
        );
        applied(
            &returned,
            buyer_activity(&returned, "lofty", "lead_information", "x", now()),
        );
    }

    #[test]
    fn only_a_buyer_that_took_the_lead_records_activity_once_each_and_within_the_bound() {
        for untaken in [
            lead(LeadStatus::Routing, None),
            lead(LeadStatus::Routing, Some((DeliveryStatus::InFlight, None))),
            lead(LeadStatus::Unsold, Some((DeliveryStatus::Rejected, None))),
            lead(LeadStatus::Unsold, Some((DeliveryStatus::Dead, None))),
        ] {
            assert_eq!(
                buyer_activity(&untaken, "lofty", "lead_activity", "x", now()),
                ActivityDecision::NotDeliveredToYou
            );
        }
        let mut taken = lead(
            LeadStatus::Delivered,
            Some((DeliveryStatus::Accepted, Some("1"))),
        );
        assert_eq!(
            buyer_activity(&taken, "other-buyer", "lead_activity", "x", now()),
            ActivityDecision::NotDeliveredToYou,
            "another buyer's delivery"
        );
        taken = applied(
            &taken,
            buyer_activity(&taken, "lofty", "lead_activity", "first", now()),
        );
        assert_eq!(
            buyer_activity(&taken, "lofty", "lead_activity", "first", now()),
            ActivityDecision::AlreadyRecorded,
            "the same webhook again"
        );
        taken = applied(
            &taken,
            buyer_activity(&taken, "lofty", "lead_information", "first", now()),
        );
        for i in 2..MAX_BUYER_ACTIVITY {
            taken = applied(
                &taken,
                buyer_activity(&taken, "lofty", "lead_activity", &format!("n{i}"), now()),
            );
        }
        assert_eq!(
            buyer_activity(&taken, "lofty", "lead_activity", "one too many", now()),
            ActivityDecision::LimitReached
        );
        assert_eq!(
            taken
                .events
                .iter()
                .filter(|e| e.kind == EventKind::BuyerActivity)
                .count(),
            MAX_BUYER_ACTIVITY
        );
    }
}

// ---- the one point of effects --------------------------------------------------------------------------

/// Why [`commit`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The update was applied but a follow-up job could not be queued.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The update was applied (and its jobs queued) but a dead-delivery marker could not be written or
    /// removed.
    #[error("the lead was updated but its dead-delivery marker was not: {0}")]
    DeadDeliveries(StoreError),
}

impl From<CommitError> for crate::batch::RecordError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::Store(error) => crate::batch::RecordError::Store(error),
            CommitError::Queue(error) => crate::batch::RecordError::Queue(error),
            // Failing the record makes the queue redeliver it, and the redelivered job records the marker.
            CommitError::DeadDeliveries(error) => crate::batch::RecordError::Store(error),
        }
    }
}

/// The ports a transition's effects go through: the store always; the queue for its jobs (and partner
/// notifications); the counters for the cap places it gives back; the dead-delivery markers it records or
/// removes; the partners' subscriptions, which decide which lead events become notifications (none without);
/// the tallies it counts (acceptances and returns, for return rates).
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub store: &'a dyn LeadStore,
    pub queue: Option<&'a dyn JobQueue>,
    pub counters: Option<&'a dyn Counters>,
    pub dead_deliveries: Option<&'a dyn DeadDeliveries>,
    pub subscribers: Option<&'a dyn crate::notifications::Subscribers>,
    pub tallies: Option<&'a dyn DeliveryTallies>,
}

/// Apply `transition` to lead `id`: write its update; when applied, queue its jobs and the partner
/// notifications of its lead events, give back its cap places, log its lead events, and last record or
/// remove its dead-delivery markers. The answer is the
/// store's (a `Conflict` applied nothing, queued nothing, published nothing). A marker that could not be
/// written is an error ([`CommitError::DeadDeliveries`]) after everything else was done, so that the
/// handler's record fails and its redelivery writes the marker again (see dispatch).
pub async fn commit(
    ports: Ports<'_>,
    id: &LeadId,
    transition: &Transition,
) -> Result<UpdateOutcome, CommitError> {
    let outcome = ports.store.update_lead(id, &transition.update).await?;
    if let UpdateOutcome::Applied(lead) = &outcome {
        let notifications = notifications(ports.subscribers, lead, &transition.events);
        match ports.queue {
            Some(queue) => {
                send_jobs(queue, &transition.jobs).await?;
                send_jobs(queue, &notifications).await?;
            }
            None if !transition.jobs.is_empty() || !notifications.is_empty() => {
                return Err(CommitError::Queue(QueueError::Unavailable(
                    "a transition queued jobs but this handler has no queue".to_owned(),
                )))
            }
            None => {}
        }
        if let Some(counters) = ports.counters {
            for (key, holder) in &transition.releases {
                // A place not given back only makes the cap stricter until its window ends.
                if let Err(error) = counters.release(key, holder).await {
                    tracing::warn!(lead_id = %lead.id, %error, "could not release a cap place");
                }
            }
        }
        count_tallies(ports.tallies, lead, transition).await;
        publish(lead, &transition.events);
        if !transition.dead_deliveries.is_empty() {
            let Some(dead_deliveries) = ports.dead_deliveries else {
                return Err(CommitError::DeadDeliveries(StoreError::Unavailable(
                    "a transition changed dead-delivery markers but this handler has no port for them"
                        .to_owned(),
                )));
            };
            apply_dead_deliveries(dead_deliveries, &transition.dead_deliveries)
                .await
                .map_err(CommitError::DeadDeliveries)?;
        }
    }
    Ok(outcome)
}

/// Count `transition`'s tallies on its update's UTC day. A count not made is logged, not an error: the
/// update it belongs to is applied and will not be applied again, and a missed count only makes a return
/// rate off by one lead.
async fn count_tallies(
    port: Option<&dyn DeliveryTallies>,
    lead: &LeadRecord,
    transition: &Transition,
) {
    if transition.tallies.is_empty() {
        return;
    }
    let Some(port) = port else {
        tracing::warn!(lead_id = %lead.id, "a transition counted tallies but this handler has no port for them");
        return;
    };
    let day = transition.update.now.date_naive();
    for (destination, tally) in &transition.tallies {
        if let Err(error) = port.add_tally(destination, day, *tally).await {
            tracing::warn!(lead_id = %lead.id, destination = %destination, tally = tally.as_str(), %error, "could not count a tally: the destination's return rate is off by one");
        }
    }
}

/// Record or remove dead-delivery markers, in order.
async fn apply_dead_deliveries(
    port: &dyn DeadDeliveries,
    changes: &[DeadDeliveryChange],
) -> Result<(), StoreError> {
    for change in changes {
        match change {
            DeadDeliveryChange::Record(dead) => port.record(dead).await?,
            DeadDeliveryChange::Remove {
                lead_id,
                destination,
                died_by,
            } => port.remove(lead_id, destination, *died_by).await?,
        }
    }
    Ok(())
}

/// Queue `jobs` (each serialised here, the one place jobs are written).
pub async fn send_jobs(queue: &dyn JobQueue, jobs: &[ScheduledJob]) -> Result<(), QueueError> {
    for scheduled in jobs {
        let body = serde_json::to_string(&scheduled.job).map_err(|error| {
            QueueError::Unavailable(format!("a job did not serialise: {error}"))
        })?;
        queue.send(&body, scheduled.delay.min(MAX_DELAY)).await?;
    }
    Ok(())
}

/// The partner notifications of `events`, just applied to `lead` (the record as written).
fn notifications(
    subscribers: Option<&dyn crate::notifications::Subscribers>,
    lead: &LeadRecord,
    events: &[LeadEvent],
) -> Vec<ScheduledJob> {
    let Some(subscribers) = subscribers else {
        return Vec::new();
    };
    events
        .iter()
        .enumerate()
        .filter_map(|(index, event)| {
            crate::notifications::job(subscribers, lead, event, index, lead.updated_at)
        })
        .map(|job| ScheduledJob {
            job,
            delay: Duration::ZERO,
        })
        .collect()
}

/// Log lead events (ids and codes only; their notifications are queued by [`commit`]).
fn publish(lead: &LeadRecord, events: &[LeadEvent]) {
    for event in events {
        tracing::info!(lead_id = %lead.id, partner_id = %lead.partner_id, event = event.name(), status = %lead.status, "lead event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::LeadJson;
    use crate::verticals::Vertical;

    fn rules() -> VerdictRules {
        VerdictRules::default()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn lead(status: LeadStatus, deliveries: &[(&str, DeliveryStatus)]) -> LeadRecord {
        let lead = LeadJson::from_text("{}".to_owned()).expect("json");
        let mut record = LeadRecord::received(
            LeadId::generate(now()),
            "p1",
            Vertical::Heloc,
            lead,
            now(),
            None,
        );
        record.status = status;
        for (destination, status) in deliveries {
            let mut state = DeliveryState::pending(now());
            state.status = *status;
            state.attempts = 1;
            record.deliveries.insert((*destination).to_owned(), state);
        }
        record
    }

    fn apply(record: &LeadRecord, transition: &Transition) -> LeadRecord {
        assert!(
            crate::store::preconditions_hold(record, &transition.update),
            "the transition applies to the record it was made from"
        );
        let mut record = record.clone();
        crate::store::apply_update(&mut record, &transition.update);
        record
    }

    /// A plan of one step per buyer (a waterfall).
    fn plan(destinations: &[&str]) -> RoutingPlan {
        steps(&destinations.iter().map(|d| vec![*d]).collect::<Vec<_>>())
    }

    fn steps(steps: &[Vec<&str>]) -> RoutingPlan {
        RoutingPlan {
            vertical: Vertical::Heloc,
            strategy: crate::routing::Strategy::Waterfall,
            steps: steps
                .iter()
                .map(|offers| crate::routing::Step {
                    offers: offers
                        .iter()
                        .map(|d| crate::routing::Offer {
                            destination: crate::ids::DestinationId::parse(d).expect("id"),
                            price: Some(crate::routing::Cents(1850)),
                        })
                        .collect(),
                    exclusive: false,
                })
                .collect(),
            skipped: Vec::new(),
        }
    }

    const POLICY: RetryPolicy = RetryPolicy {
        base_delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(60),
    };

    #[test]
    fn screening_rejection_ends_the_lead_with_its_reason() {
        let received = lead(LeadStatus::Received, &[]);
        let verdict = ScreeningVerdict::rejected(
            "duplicate_email",
            "a lead with this email already exists in the system",
        );
        let t = screened(&received, &verdict, &plan(&["a"]), now());
        let after = apply(&received, &t);
        assert_eq!(after.status, LeadStatus::Rejected);
        assert!(after.deliveries.is_empty() && t.jobs.is_empty());
        assert_eq!(
            t.events,
            [LeadEvent::Rejected {
                code: "duplicate_email".into(),
                reason: "a lead with this email already exists in the system".into()
            }]
        );
        assert_eq!(t.update.expect_status, [LeadStatus::Received]);
    }

    #[test]
    fn a_lead_no_buyer_takes_is_unsold_at_once() {
        let received = lead(LeadStatus::Received, &[]);
        let t = screened(&received, &ScreeningVerdict::passed(), &plan(&[]), now());
        assert_eq!(apply(&received, &t).status, LeadStatus::Unsold);
        assert!(
            matches!(&t.events[..], [LeadEvent::Unsold { code, .. }] if code == "no_destination")
        );
    }

    #[test]
    fn a_routed_lead_offers_its_first_step_and_queues_the_rest() {
        let received = lead(LeadStatus::Received, &[]);
        let t = screened(
            &received,
            &ScreeningVerdict::passed(),
            &steps(&[vec!["a", "b"], vec!["c"]]),
            now(),
        );
        let after = apply(&received, &t);
        assert_eq!(after.status, LeadStatus::Routing);
        let statuses: Vec<(&str, DeliveryStatus, u32)> = after
            .deliveries
            .iter()
            .map(|(d, s)| (d.as_str(), s.status, s.step))
            .collect();
        assert_eq!(
            statuses,
            [
                ("a", DeliveryStatus::Pending, 0),
                ("b", DeliveryStatus::Pending, 0),
                ("c", DeliveryStatus::Queued, 1)
            ]
        );
        assert!(after
            .deliveries
            .values()
            .all(|s| s.price_cents == Some(1850)));
        assert_eq!(
            t.jobs,
            [
                ScheduledJob::deliver(&received.id, "a", 1, Duration::ZERO),
                ScheduledJob::deliver(&received.id, "b", 1, Duration::ZERO)
            ]
        );
        assert_eq!(pending_jobs(&after), t.jobs);
        assert!(t.events.is_empty(), "routing is not a partner event");
        let routing = after.events.last().expect("an event");
        assert_eq!(
            routing.reason.as_deref(),
            Some("offered to: a, b; 1 more buyer in line if it is not taken")
        );
        // A second screening of the same lead (a redelivered job) no longer applies.
        assert!(!crate::store::preconditions_hold(&after, &t.update));
    }

    #[test]
    fn left_out_buyers_are_explained_to_the_partner_without_names() {
        let received = lead(LeadStatus::Received, &[]);
        let mut nobody = steps(&[]);
        nobody.skipped = vec![
            crate::routing::Skipped {
                destination: crate::ids::DestinationId::parse("secret-buyer").expect("id"),
                reason: crate::routing::SkipReason::Schedule {
                    closed: crate::routing::Closed::Hours,
                },
            },
            crate::routing::Skipped {
                destination: crate::ids::DestinationId::parse("other-secret").expect("id"),
                reason: crate::routing::SkipReason::Schedule {
                    closed: crate::routing::Closed::Hours,
                },
            },
        ];
        let t = screened(&received, &ScreeningVerdict::passed(), &nobody, now());
        let after = apply(&received, &t);
        assert_eq!(after.status, LeadStatus::Unsold);
        let unsold = after.events.last().expect("an event");
        assert_eq!(unsold.code.as_deref(), Some("no_eligible_buyer"));
        let reason = unsold.reason.clone().unwrap_or_default();
        assert!(reason.contains("2 buyers"), "{reason}");
        assert!(!reason.contains("secret"), "{reason}");
    }

    /// Record `outcome` as the answer to attempt 1 of `destination` (claimed first), then settle.
    fn answer(
        record: &LeadRecord,
        destination: &str,
        outcome: Outcome,
    ) -> (LeadRecord, Transition) {
        let claim = claim(
            record,
            destination,
            1,
            Duration::from_secs(30),
            now(),
            Vec::new(),
        );
        assert!(crate::store::preconditions_hold(record, &claim));
        let mut claimed = record.clone();
        crate::store::apply_update(&mut claimed, &claim);
        let at = Attempt {
            lead: &claimed,
            destination,
            attempt: 1,
            attempts: 1,
            max_attempts: 1,
            claimed: true,
        };
        let (t, _) = attempt_outcome(&at, outcome, &POLICY, 0.0, now());
        let recorded = apply(&claimed, &t);
        match settle(&recorded, now()) {
            Some(t) => (apply(&recorded, &t), t),
            None => (recorded, Transition::new(LeadUpdate::new(now()))),
        }
    }

    #[test]
    fn a_waterfall_passes_a_rejected_or_dead_lead_to_the_next_buyer_and_ends_unsold() {
        let received = lead(LeadStatus::Received, &[]);
        let routed = apply(
            &received,
            &screened(
                &received,
                &ScreeningVerdict::passed(),
                &plan(&["a", "b", "c"]),
                now(),
            ),
        );
        let (after_a, t) = answer(&routed, "a", Outcome::rejected("http_400", "no", true));
        assert_eq!(after_a.status, LeadStatus::Routing);
        assert_eq!(after_a.deliveries["b"].status, DeliveryStatus::Pending);
        assert_eq!(after_a.deliveries["c"].status, DeliveryStatus::Queued);
        assert_eq!(
            t.jobs,
            [ScheduledJob::deliver(&routed.id, "b", 1, Duration::ZERO)]
        );
        let (after_b, t) = answer(&after_a, "b", Outcome::retry("timeout", "slow", None));
        assert_eq!(after_b.deliveries["b"].status, DeliveryStatus::Dead);
        assert_eq!(after_b.deliveries["c"].status, DeliveryStatus::Pending);
        assert_eq!(t.jobs.len(), 1);
        let (after_c, t) = answer(&after_b, "c", Outcome::failed("http_401", "creds"));
        assert_eq!(after_c.status, LeadStatus::Unsold);
        assert!(matches!(&t.events[..], [LeadEvent::Unsold { .. }]));
    }

    #[test]
    fn a_waterfall_lead_taken_keeps_the_rest_in_line() {
        let received = lead(LeadStatus::Received, &[]);
        let routed = apply(
            &received,
            &screened(
                &received,
                &ScreeningVerdict::passed(),
                &plan(&["a", "b"]),
                now(),
            ),
        );
        let (taken, t) = answer(
            &routed,
            "a",
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
        );
        assert_eq!(taken.status, LeadStatus::Delivered);
        assert_eq!(taken.deliveries["b"].status, DeliveryStatus::Queued);
        assert!(t.jobs.is_empty(), "nobody else is offered the lead");

        // nTherm's later `rejected` verdict: the next buyer gets the lead.
        let VerdictDecision::Apply(t) =
            verdict(&taken, "a", Verdict::Rejected, Some("no"), &rules(), now())
        else {
            panic!("applies")
        };
        let rerouted = apply(&taken, &t);
        assert_eq!(rerouted.status, LeadStatus::Routing);
        assert_eq!(rerouted.deliveries["a"].status, DeliveryStatus::Rejected);
        assert_eq!(rerouted.deliveries["b"].status, DeliveryStatus::Pending);
        assert_eq!(
            t.jobs,
            [ScheduledJob::deliver(&routed.id, "b", 1, Duration::ZERO)]
        );
        assert!(matches!(
            &t.events[..],
            [LeadEvent::RejectedAfterPost { .. }]
        ));
        let kinds: Vec<EventKind> = rerouted
            .events
            .iter()
            .rev()
            .take(2)
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, [EventKind::Routing, EventKind::BuyerVerdict]);
        // The same verdict again is already recorded.
        assert_eq!(
            verdict(
                &rerouted,
                "a",
                Verdict::Rejected,
                Some("no"),
                &rules(),
                now()
            ),
            VerdictDecision::AlreadyRecorded
        );
        let (sold, _) = answer(
            &rerouted,
            "b",
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
        );
        assert_eq!(sold.status, LeadStatus::Delivered);

        // A confirmation ends routing: nobody is left in line.
        let VerdictDecision::Apply(t) =
            verdict(&taken, "a", Verdict::Confirmed, None, &rules(), now())
        else {
            panic!("applies")
        };
        let confirmed = apply(&taken, &t);
        assert_eq!(confirmed.status, LeadStatus::Confirmed);
        assert_eq!(confirmed.deliveries["b"].status, DeliveryStatus::Skipped);
    }

    #[test]
    fn a_step_waits_for_every_offer_to_be_decided() {
        let received = lead(LeadStatus::Received, &[]);
        let routed = apply(
            &received,
            &screened(
                &received,
                &ScreeningVerdict::passed(),
                &steps(&[vec!["a", "b"], vec!["c"]]),
                now(),
            ),
        );
        let (one_declined, t) = answer(&routed, "a", Outcome::rejected("http_400", "no", true));
        assert_eq!(one_declined.status, LeadStatus::Routing);
        assert_eq!(one_declined.deliveries["c"].status, DeliveryStatus::Queued);
        assert!(t.jobs.is_empty(), "b is still open");
        let (both, t) = answer(
            &one_declined,
            "b",
            Outcome::rejected("http_400", "no", true),
        );
        assert_eq!(both.deliveries["c"].status, DeliveryStatus::Pending);
        assert_eq!(t.jobs.len(), 1);
    }

    #[test]
    fn a_test_lead_is_routed_and_explained_but_ends_test_with_nothing_queued() {
        let mut received = lead(LeadStatus::Received, &[]);
        received.test = true;
        let mut planned = steps(&[vec!["a"], vec!["b", "c"]]);
        planned.skipped = vec![crate::routing::Skipped {
            destination: crate::ids::DestinationId::parse("d").expect("id"),
            reason: crate::routing::SkipReason::Disabled,
        }];
        let t = screened(&received, &ScreeningVerdict::passed(), &planned, now());
        let after = apply(&received, &t);
        assert_eq!(after.status, LeadStatus::Test);
        assert!(after.deliveries.is_empty() && t.jobs.is_empty() && t.events.is_empty());
        let plan = after
            .events
            .iter()
            .find(|e| e.code.as_deref() == Some("test_plan"))
            .and_then(|e| e.reason.clone())
            .unwrap_or_default();
        assert!(
            plan.starts_with("would be offered to: a; then b, c; "),
            "{plan}"
        );
        assert_eq!(after.events.last().map(|e| e.kind), Some(EventKind::Test));

        let rejected = screened(
            &received,
            &ScreeningVerdict::rejected(
                "duplicate_email",
                "a lead with this email already exists in the system",
            ),
            &planned,
            now(),
        );
        let after = apply(&received, &rejected);
        assert_eq!(after.status, LeadStatus::Test);
        assert!(after
            .events
            .iter()
            .any(|e| e.code.as_deref() == Some("duplicate_email")));
    }

    #[test]
    fn a_lease_outlasts_every_step_of_an_attempt() {
        assert_eq!(lease(Duration::from_secs(5)), Duration::from_secs(30));
        assert_eq!(lease(Duration::MAX), Duration::MAX);
        let mut real = lead(LeadStatus::Received, &[]);
        let weighted = Some(crate::routing::Strategy::Weighted);
        assert!(takes_a_rotation_turn(&real, weighted));
        assert!(!takes_a_rotation_turn(
            &real,
            Some(crate::routing::Strategy::Waterfall)
        ));
        real.test = true;
        assert!(!takes_a_rotation_turn(&real, weighted));
    }

    #[test]
    fn replays_get_the_first_answer_409_while_in_flight_or_422_for_another_request() {
        let t0 = now();
        let first = crate::store::IdempotencyRecord {
            partner_id: "p1".into(),
            key: "k".into(),
            request_hash: "h".into(),
            lead_id: LeadId::generate(t0),
            created_at: t0,
            in_flight_until: t0 + chrono::Duration::seconds(10),
            expires_at: t0 + chrono::Duration::hours(24),
        };
        let received = lead(LeadStatus::Received, &[]);
        let routed = lead(LeadStatus::Routing, &[]);
        let early = t0 + chrono::Duration::seconds(3);
        let late = t0 + chrono::Duration::seconds(11);
        assert_eq!(
            replay_answer(&first, Some("other"), Some(&routed), early),
            ReplayAnswer::OtherRequest
        );
        assert_eq!(
            replay_answer(&first, None, Some(&routed), early),
            ReplayAnswer::OtherRequest
        );
        assert_eq!(
            replay_answer(&first, Some("h"), Some(&received), early),
            ReplayAnswer::InFlight {
                retry_after: Duration::from_secs(7)
            }
        );
        assert_eq!(
            replay_answer(&first, Some("h"), None, early),
            ReplayAnswer::InFlight {
                retry_after: Duration::from_secs(7)
            }
        );
        assert_eq!(
            replay_answer(&first, Some("h"), Some(&routed), early),
            ReplayAnswer::FirstAnswer { requeue: false }
        );
        assert_eq!(
            replay_answer(&first, Some("h"), Some(&received), late),
            ReplayAnswer::FirstAnswer { requeue: true }
        );
        assert_eq!(
            replay_answer(&first, Some("h"), None, late),
            ReplayAnswer::Stale
        );
    }

    #[test]
    fn delivery_steps() {
        let now = now();
        let state = |status, attempts| {
            let mut s = DeliveryState::pending(now);
            s.status = status;
            s.attempts = attempts;
            s
        };
        assert_eq!(
            delivery_step(&state(DeliveryStatus::Pending, 0), 1, now),
            DeliveryStep::Attempt
        );
        assert_eq!(
            delivery_step(&state(DeliveryStatus::Pending, 0), 2, now),
            DeliveryStep::Skip("a stale or duplicate job")
        );
        for status in [
            DeliveryStatus::Accepted,
            DeliveryStatus::Rejected,
            DeliveryStatus::Dead,
        ] {
            assert_eq!(
                delivery_step(&state(status, 1), 1, now),
                DeliveryStep::Skip("the delivery is already settled")
            );
        }
        let mut retrying = state(DeliveryStatus::Retrying, 1);
        retrying.next_attempt_at = Some(now + chrono::Duration::seconds(30));
        assert!(
            matches!(delivery_step(&retrying, 2, now), DeliveryStep::Wait(d) if d > Duration::from_secs(28))
        );
        assert!(matches!(
            delivery_step(&retrying, 1, now),
            DeliveryStep::Reschedule(_)
        ));
        retrying.next_attempt_at = Some(now);
        assert_eq!(delivery_step(&retrying, 2, now), DeliveryStep::Attempt);
        let mut in_flight = state(DeliveryStatus::InFlight, 1);
        in_flight.lease_until = Some(now + chrono::Duration::seconds(10));
        assert_eq!(delivery_step(&in_flight, 1, now), DeliveryStep::Busy);
        in_flight.lease_until = Some(now - chrono::Duration::seconds(1));
        assert_eq!(delivery_step(&in_flight, 1, now), DeliveryStep::Attempt);
    }

    fn claimed(destination: &str) -> LeadRecord {
        let routing = lead(
            LeadStatus::Routing,
            &[(destination, DeliveryStatus::Pending)],
        );
        let mut routing = routing;
        routing.deliveries.get_mut(destination).expect("d").attempts = 0;
        let update = claim(
            &routing,
            destination,
            1,
            Duration::from_secs(30),
            now(),
            Vec::new(),
        );
        assert!(crate::store::preconditions_hold(&routing, &update));
        let mut after = routing.clone();
        crate::store::apply_update(&mut after, &update);
        assert_eq!(
            after.deliveries[destination].status,
            DeliveryStatus::InFlight
        );
        after
    }

    fn outcome_of(
        record: &LeadRecord,
        attempt: u32,
        max: u32,
        outcome: Outcome,
    ) -> (LeadRecord, Transition, AttemptResult) {
        let at = Attempt {
            lead: record,
            destination: "a",
            attempt,
            attempts: attempt,
            max_attempts: max,
            claimed: true,
        };
        let (t, result) = attempt_outcome(&at, outcome, &POLICY, 0.0, now());
        (apply(record, &t), t, result)
    }

    #[test]
    fn every_outcome_maps_to_its_delivery_state() {
        let record = claimed("a");
        let (after, t, result) = outcome_of(
            &record,
            1,
            3,
            Outcome::Accepted {
                price: None,
                buyer_ref: Some("B-1".into()),
            },
        );
        assert_eq!(result, AttemptResult::Accepted);
        assert_eq!(after.deliveries["a"].status, DeliveryStatus::Accepted);
        assert_eq!(after.deliveries["a"].buyer_ref.as_deref(), Some("B-1"));
        assert!(t.jobs.is_empty());

        // The price a buyer's answer gives replaces the configured one; without one, the configured stays.
        let mut priced = record.clone();
        priced.deliveries.get_mut("a").expect("a").price_cents = Some(1850);
        let (after, t, _) = outcome_of(
            &priced,
            1,
            3,
            Outcome::Accepted {
                buyer_ref: None,
                price: Some(crate::routing::Cents(2225)),
            },
        );
        assert_eq!(after.deliveries["a"].price_cents, Some(2225));
        assert!(
            t.update.events.iter().all(|e| !e
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("22.25")),
            "prices stay off the partner's timeline"
        );
        let (after, _, _) = outcome_of(&priced, 1, 3, Outcome::accepted(None));
        assert_eq!(after.deliveries["a"].price_cents, Some(1850));

        let (after, _, result) =
            outcome_of(&record, 1, 3, Outcome::rejected("http_400", "bad", true));
        assert_eq!(result, AttemptResult::Rejected);
        assert_eq!(after.deliveries["a"].status, DeliveryStatus::Rejected);

        let (after, t, result) = outcome_of(
            &record,
            1,
            3,
            Outcome::retry("http_503", "down", Some(Duration::from_secs(30))),
        );
        assert_eq!(result, AttemptResult::Retrying(Duration::from_secs(30)));
        assert_eq!(after.deliveries["a"].status, DeliveryStatus::Retrying);
        assert_eq!(
            t.jobs,
            [ScheduledJob::deliver(
                &record.id,
                "a",
                2,
                Duration::from_secs(30)
            )]
        );

        // The last attempt's retry is the end.
        let (after, t, result) = outcome_of(&record, 1, 1, Outcome::retry("timeout", "slow", None));
        assert_eq!(result, AttemptResult::GaveUp);
        assert_eq!(after.deliveries["a"].status, DeliveryStatus::Dead);
        assert!(t.jobs.is_empty());
        assert!(after.deliveries["a"]
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("gave up after 1 attempts")));

        let (after, _, result) = outcome_of(&record, 1, 3, Outcome::failed("http_401", "creds"));
        assert_eq!(result, AttemptResult::Failed);
        assert_eq!(after.deliveries["a"].status, DeliveryStatus::Dead);
    }

    #[test]
    fn a_rate_limit_wait_uses_up_no_attempt_until_the_total_wait_is_spent() {
        let record = claimed("a");
        let (after, t, _) = outcome_of(
            &record,
            1,
            2,
            Outcome::retry(
                crate::delivery::RATE_LIMITED,
                "slow down",
                Some(Duration::from_secs(30)),
            ),
        );
        let state = &after.deliveries["a"];
        assert_eq!(state.status, DeliveryStatus::Retrying);
        assert_eq!(state.attempts, 0, "the attempt is given back");
        assert_eq!(state.rate_limit_wait_ms, 30_000);
        assert_eq!(
            t.jobs,
            [ScheduledJob::deliver(
                &record.id,
                "a",
                1,
                Duration::from_secs(30)
            )],
            "the same attempt again, after the reset"
        );
        // The next job claims attempt 1 again.
        assert_eq!(
            delivery_step(state, 1, now() + chrono::Duration::seconds(30)),
            DeliveryStep::Attempt
        );

        // With the total wait spent, a 429 is a retry like any other.
        let mut spent = record.clone();
        spent.deliveries.get_mut("a").expect("a").rate_limit_wait_ms =
            u64::try_from(MAX_RATE_LIMIT_WAIT.as_millis()).expect("ms");
        let (after, t, _) = outcome_of(
            &spent,
            1,
            2,
            Outcome::retry(
                crate::delivery::RATE_LIMITED,
                "slow down",
                Some(Duration::from_secs(30)),
            ),
        );
        assert_eq!(after.deliveries["a"].attempts, 1);
        assert_eq!(
            t.jobs[0].job,
            ScheduledJob::deliver(&record.id, "a", 2, Duration::ZERO).job
        );
        let (after, _, result) = outcome_of(
            &spent,
            1,
            1,
            Outcome::retry(crate::delivery::RATE_LIMITED, "slow down", None),
        );
        assert_eq!(result, AttemptResult::GaveUp);
        assert_eq!(after.deliveries["a"].status, DeliveryStatus::Dead);
    }

    #[test]
    fn waits_beyond_the_queues_longest_delay_are_served_by_re_enqueueing() {
        let record = claimed("a");
        let (after, t, _) = outcome_of(
            &record,
            1,
            3,
            Outcome::retry("http_503", "down", Some(Duration::from_secs(2400))),
        );
        assert_eq!(t.jobs[0].delay, Duration::from_secs(2400));
        // The queue delivers it after at most 15 minutes; it goes back for the rest of the wait.
        let early = now() + chrono::Duration::seconds(900);
        assert_eq!(
            delivery_step(&after.deliveries["a"], 2, early),
            DeliveryStep::Wait(Duration::from_secs(1500))
        );
        assert_eq!(
            delivery_step(
                &after.deliveries["a"],
                2,
                now() + chrono::Duration::seconds(2400)
            ),
            DeliveryStep::Attempt
        );
    }

    #[test]
    fn only_the_claiming_worker_records_its_outcome() {
        let record = claimed("a");
        // A worker of attempt 1 that outlived its lease, after attempt 2 was claimed.
        let mut later_claim = record.clone();
        later_claim.deliveries.get_mut("a").expect("a").attempts = 2;
        let at = Attempt {
            lead: &record,
            destination: "a",
            attempt: 1,
            attempts: 1,
            max_attempts: 3,
            claimed: true,
        };
        let (t, _) = attempt_outcome(
            &at,
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
            &POLICY,
            0.0,
            now(),
        );
        assert!(!crate::store::preconditions_hold(&later_claim, &t.update));
    }

    /// A lead whose only delivery, to "a", gave up after its one attempt and which settled `unsold`.
    fn dead_and_unsold() -> (LeadRecord, Transition) {
        let mut record = claimed("a");
        record.expires_at = Some(now() + chrono::Duration::days(30));
        {
            let state = record.deliveries.get_mut("a").expect("a");
            state.cap_keys = vec!["CAP#a#day:2026-12-02".to_owned()];
            state.price_cents = Some(1850);
            state.rate_limit_wait_ms = 5_000;
        }
        let (dead, t, result) = outcome_of(&record, 1, 1, Outcome::retry("http_500", "down", None));
        assert_eq!(result, AttemptResult::GaveUp);
        let unsold = apply(&dead, &settle(&dead, now()).expect("settles"));
        assert_eq!(unsold.status, LeadStatus::Unsold);
        (unsold, t)
    }

    #[test]
    fn a_dead_delivery_is_recorded_for_operators_and_read_back_from_the_record() {
        let (unsold, t) = dead_and_unsold();
        let expected = DeadDelivery {
            lead_id: unsold.id.clone(),
            destination: "a".into(),
            died_at: now(),
            attempts: 1,
            code: "http_500".into(),
            reason: "gave up after 1 attempts: down".into(),
            expires_at: unsold.expires_at,
        };
        assert_eq!(
            t.dead_deliveries,
            [DeadDeliveryChange::Record(expected.clone())]
        );
        // A redelivered job finding it dead rebuilds the very same marker from the record.
        assert_eq!(dead_delivery(&unsold, "a"), Some(expected));
        assert_eq!(dead_delivery(&unsold, "b"), None);

        // Failed (configuration) is dead too; accepted, rejected and retried deliveries are not listed.
        let record = claimed("a");
        let (_, t, _) = outcome_of(&record, 1, 3, Outcome::failed("http_401", "creds"));
        assert!(
            matches!(&t.dead_deliveries[..], [DeadDeliveryChange::Record(d)] if d.code == "http_401")
        );
        for outcome in [
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
            Outcome::rejected("http_400", "bad", true),
            Outcome::retry("http_503", "down", None),
        ] {
            let (after, t, _) = outcome_of(&record, 1, 3, outcome);
            assert!(t.dead_deliveries.is_empty());
            assert_eq!(dead_delivery(&after, "a"), None);
        }

        // A record without the event (older than it) still gives a marker, from the delivery itself.
        let mut bare = lead(LeadStatus::Unsold, &[("a", DeliveryStatus::Dead)]);
        bare.deliveries.get_mut("a").expect("a").reason = Some("gave up".into());
        let marker = dead_delivery(&bare, "a").expect("dead");
        assert_eq!(
            (marker.code.as_str(), marker.reason.as_str(), marker.died_at),
            ("dead", "gave up", now())
        );
    }

    #[test]
    fn replay_makes_a_dead_delivery_pending_again_and_an_unsold_lead_routing() {
        let (unsold, _) = dead_and_unsold();
        let died_at = dead_delivery(&unsold, "a").expect("dead").died_at;
        let later = now() + chrono::Duration::hours(2);
        let t = replay(&unsold, "a", later).expect("replays");
        let after = apply(&unsold, &t);
        assert_eq!(after.status, LeadStatus::Routing);
        let state = &after.deliveries["a"];
        let before = &unsold.deliveries["a"];
        assert_eq!(state.status, DeliveryStatus::Pending);
        assert_eq!(state.attempts, 0, "a fresh attempt count");
        assert!(
            state.cap_keys.is_empty(),
            "dispatch reserves its caps afresh"
        );
        assert_eq!(state.rate_limit_wait_ms, 0);
        assert_eq!((state.reason.as_ref(), state.lease_until), (None, None));
        assert_eq!(state.updated_at, later);
        assert_eq!(
            (state.step, state.price_cents),
            (before.step, before.price_cents),
            "its place in the plan and its price are kept"
        );
        let event = after.events.last().expect("an event");
        assert_eq!(event.kind, EventKind::DeliveryReplayed);
        assert_eq!(event.status, LeadStatus::Routing);
        assert_eq!(event.destination.as_deref(), Some("a"));
        assert_eq!(event.reason.as_deref(), Some("replayed by an operator"));
        assert_eq!(event.at, later);
        assert_eq!(
            t.jobs,
            [ScheduledJob::deliver(&unsold.id, "a", 1, Duration::ZERO)]
        );
        assert!(t.events.is_empty(), "no lead event");
        assert!(t.releases.is_empty());
        assert_eq!(
            t.dead_deliveries,
            [DeadDeliveryChange::Remove {
                lead_id: unsold.id.clone(),
                destination: "a".into(),
                died_by: died_at,
            }]
        );
        // The first attempt's job acts on it (and, with no cap keys and no attempt, reserves first).
        assert_eq!(delivery_step(state, 1, later), DeliveryStep::Attempt);

        // Replaying again is refused: it is pending now.
        assert_eq!(
            replay(&after, "a", later),
            Err(ReplayRefusal::NotDead {
                lead_id: unsold.id.clone(),
                destination: "a".into(),
                status: DeliveryStatus::Pending,
            })
        );
        // Conditional on the delivery still dead and the lead's status unchanged.
        assert!(!crate::store::preconditions_hold(&after, &t.update));
        let mut moved = unsold.clone();
        moved.status = LeadStatus::Routing;
        assert!(!crate::store::preconditions_hold(&moved, &t.update));
    }

    #[test]
    fn replay_keeps_any_other_lead_status() {
        for status in [
            LeadStatus::Routing,
            LeadStatus::Delivered,
            LeadStatus::Confirmed,
        ] {
            let record = lead(
                status,
                &[("a", DeliveryStatus::Accepted), ("b", DeliveryStatus::Dead)],
            );
            let t = replay(&record, "b", now()).expect("replays");
            assert_eq!(t.update.set_status, None, "{status}");
            assert_eq!(t.update.expect_status, [status]);
            let after = apply(&record, &t);
            assert_eq!(after.status, status);
            assert_eq!(after.deliveries["b"].status, DeliveryStatus::Pending);
            assert_eq!(after.deliveries["a"], record.deliveries["a"]);
        }
    }

    #[test]
    fn replay_refuses_a_missing_or_live_delivery() {
        let record = lead(LeadStatus::Routing, &[("a", DeliveryStatus::InFlight)]);
        let missing = replay(&record, "nobody", now()).expect_err("refused");
        assert_eq!(
            missing,
            ReplayRefusal::NoSuchDelivery {
                lead_id: record.id.clone(),
                destination: "nobody".into()
            }
        );
        assert!(missing.to_string().contains("no delivery to `nobody`"));
        for status in DeliveryStatus::ALL {
            if status == DeliveryStatus::Dead {
                continue;
            }
            let record = lead(LeadStatus::Routing, &[("a", status)]);
            let refusal = replay(&record, "a", now()).expect_err("refused");
            assert_eq!(
                refusal,
                ReplayRefusal::NotDead {
                    lead_id: record.id.clone(),
                    destination: "a".into(),
                    status
                }
            );
            let message = refusal.to_string();
            assert!(
                message.contains(&format!("is {status}, not dead")),
                "{message}"
            );
        }
    }

    #[test]
    fn a_replayed_delivery_of_an_earlier_step_holds_the_lead_until_it_is_decided() {
        // A waterfall: a (step 0) and then b (step 1) both died; the lead is unsold.
        let mut record = lead(
            LeadStatus::Unsold,
            &[("a", DeliveryStatus::Dead), ("b", DeliveryStatus::Dead)],
        );
        record.deliveries.get_mut("b").expect("b").step = 1;
        let routing = apply(&record, &replay(&record, "a", now()).expect("replays"));
        assert_eq!(routing.status, LeadStatus::Routing);
        // b's step is decided, but the replayed a is not: nothing settles.
        assert_eq!(settle(&routing, now()), None);
        let mut retrying = routing.clone();
        retrying.deliveries.get_mut("a").expect("a").status = DeliveryStatus::Retrying;
        assert_eq!(settle(&retrying, now()), None);
        // Taken: delivered.
        let mut taken = routing.clone();
        taken.deliveries.get_mut("a").expect("a").status = DeliveryStatus::Accepted;
        assert_eq!(
            apply(&taken, &settle(&taken, now()).expect("settles")).status,
            LeadStatus::Delivered
        );
        // Dead again: unsold again.
        let mut dead = routing;
        dead.deliveries.get_mut("a").expect("a").status = DeliveryStatus::Dead;
        assert_eq!(
            apply(&dead, &settle(&dead, now()).expect("settles")).status,
            LeadStatus::Unsold
        );
    }

    #[test]
    fn settling_delivers_unsells_or_waits() {
        let now = now();
        let open = lead(
            LeadStatus::Routing,
            &[
                ("a", DeliveryStatus::Rejected),
                ("b", DeliveryStatus::Retrying),
            ],
        );
        assert_eq!(settle(&open, now), None);

        let taken = lead(
            LeadStatus::Routing,
            &[
                ("a", DeliveryStatus::Rejected),
                ("b", DeliveryStatus::Accepted),
            ],
        );
        let t = settle(&taken, now).expect("settles");
        assert_eq!(apply(&taken, &t).status, LeadStatus::Delivered);
        assert_eq!(
            t.events,
            [LeadEvent::Delivered {
                destinations: vec!["b".into()]
            }]
        );

        let nobody = lead(
            LeadStatus::Routing,
            &[("a", DeliveryStatus::Rejected), ("b", DeliveryStatus::Dead)],
        );
        let t = settle(&nobody, now).expect("settles");
        assert_eq!(apply(&nobody, &t).status, LeadStatus::Unsold);
        assert!(matches!(&t.events[..], [LeadEvent::Unsold { .. }]));

        // Settled already: nothing to do; and the update only applies while routing.
        assert_eq!(
            settle(&apply(&taken, &settle(&taken, now).expect("t")), now),
            None
        );
    }

    #[test]
    fn verdicts_move_a_delivered_lead_and_name_their_event() {
        let now = now();
        let delivered = lead(LeadStatus::Delivered, &[("a", DeliveryStatus::Accepted)]);
        let cases = [
            (
                Verdict::Confirmed,
                LeadStatus::Confirmed,
                Some(LeadEvent::Confirmed {
                    destination: "a".into(),
                }),
            ),
            (
                Verdict::Rejected,
                LeadStatus::RejectedAfterPost,
                Some(LeadEvent::RejectedAfterPost {
                    destination: "a".into(),
                    reason: "not interested".into(),
                }),
            ),
            (
                Verdict::Returned,
                LeadStatus::Returned,
                Some(LeadEvent::Returned {
                    destination: "a".into(),
                    reason: "not interested".into(),
                }),
            ),
            (Verdict::Contacted, LeadStatus::Delivered, None),
        ];
        for (verdict_given, status, event) in cases {
            let VerdictDecision::Apply(t) = verdict(
                &delivered,
                "a",
                verdict_given,
                Some("not interested"),
                &rules(),
                now,
            ) else {
                panic!("{verdict_given:?} applies to a delivered lead")
            };
            assert_eq!(apply(&delivered, &t).status, status, "{verdict_given:?}");
            assert_eq!(t.events, event.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn verdicts_that_do_not_apply_say_why() {
        let now = now();
        let confirmed = lead(LeadStatus::Confirmed, &[("a", DeliveryStatus::Accepted)]);
        assert_eq!(
            verdict(&confirmed, "a", Verdict::Confirmed, None, &rules(), now),
            VerdictDecision::AlreadyRecorded
        );
        let returned = lead(LeadStatus::Returned, &[("a", DeliveryStatus::Accepted)]);
        assert_eq!(
            verdict(&returned, "a", Verdict::Confirmed, None, &rules(), now),
            VerdictDecision::NotApplicable {
                status: LeadStatus::Returned
            }
        );
        let open = lead(LeadStatus::Routing, &[("a", DeliveryStatus::InFlight)]);
        assert!(matches!(
            verdict(&open, "a", Verdict::Confirmed, None, &rules(), now),
            VerdictDecision::Keep(_)
        ));
        assert_eq!(
            verdict(&open, "b", Verdict::Confirmed, None, &rules(), now),
            VerdictDecision::NotDeliveredToYou
        );
        let declined = lead(LeadStatus::Unsold, &[("a", DeliveryStatus::Rejected)]);
        assert_eq!(
            verdict(&declined, "a", Verdict::Returned, None, &rules(), now),
            VerdictDecision::NotDeliveredToYou
        );
    }

    #[test]
    fn a_verdict_on_an_accepted_but_unsettled_lead_settles_it_in_the_same_write() {
        let now = now();
        let routing = lead(LeadStatus::Routing, &[("a", DeliveryStatus::Accepted)]);
        let VerdictDecision::Apply(t) =
            verdict(&routing, "a", Verdict::Confirmed, None, &rules(), now)
        else {
            panic!("applies")
        };
        let after = apply(&routing, &t);
        assert_eq!(after.status, LeadStatus::Confirmed);
        let kinds: Vec<EventKind> = after.events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Received,
                EventKind::Delivered,
                EventKind::BuyerVerdict
            ]
        );
        assert_eq!(
            t.events,
            [
                LeadEvent::Delivered {
                    destinations: vec!["a".into()]
                },
                LeadEvent::Confirmed {
                    destination: "a".into()
                }
            ]
        );
        // A racing settle by dispatch makes the write a conflict: it expected `routing`.
        let settled = apply(&routing, &settle(&routing, now).expect("settles"));
        assert!(!crate::store::preconditions_hold(&settled, &t.update));
    }

    #[test]
    fn contacted_verdicts_are_bounded() {
        let now = now();
        let mut delivered = lead(LeadStatus::Delivered, &[("a", DeliveryStatus::Accepted)]);
        for _ in 0..MAX_CONTACTED {
            let VerdictDecision::Apply(t) =
                verdict(&delivered, "a", Verdict::Contacted, None, &rules(), now)
            else {
                panic!("applies")
            };
            delivered = apply(&delivered, &t);
        }
        assert_eq!(
            verdict(&delivered, "a", Verdict::Contacted, None, &rules(), now),
            VerdictDecision::AlreadyRecorded
        );
        assert!(matches!(
            verdict(&delivered, "a", Verdict::Confirmed, None, &rules(), now),
            VerdictDecision::Apply(_)
        ));
    }

    #[test]
    fn lead_events_have_their_wire_names() {
        let event = LeadEvent::Returned {
            destination: "a".into(),
            reason: "r".into(),
        };
        let wire = serde_json::to_value(&event).expect("json");
        assert_eq!(wire["type"], "lead.returned");
        assert_eq!(wire["type"], event.name());
        assert_eq!(wire["data"]["destination"], "a");
    }

    // ---- kept verdicts and returns ----------------------------------------------------------------------

    /// A waterfall lead routed to a then b, with a's attempt claimed (in flight).
    fn waterfall_in_flight() -> LeadRecord {
        let received = lead(LeadStatus::Received, &[]);
        let routed = apply(
            &received,
            &screened(
                &received,
                &ScreeningVerdict::passed(),
                &plan(&["a", "b"]),
                now(),
            ),
        );
        let update = claim(&routed, "a", 1, Duration::from_secs(30), now(), Vec::new());
        let mut claimed = routed.clone();
        assert!(crate::store::preconditions_hold(&routed, &update));
        crate::store::apply_update(&mut claimed, &update);
        claimed
    }

    fn keep_of(record: &LeadRecord, given: Verdict, reason: Option<&str>) -> Transition {
        match verdict(record, "a", given, reason, &rules(), now()) {
            VerdictDecision::Keep(t) => t,
            other => panic!("{given:?} is not kept: {other:?}"),
        }
    }

    /// The answer `outcome` to a's claimed attempt 1, recorded (not settled).
    fn outcome_on_a(record: &LeadRecord, outcome: Outcome) -> LeadRecord {
        let at = Attempt {
            lead: record,
            destination: "a",
            attempt: 1,
            attempts: 1,
            max_attempts: 1,
            claimed: true,
        };
        let (t, _) = attempt_outcome(&at, outcome, &POLICY, 0.0, now());
        apply(record, &t)
    }

    fn no_rules(_: &str) -> VerdictRules {
        VerdictRules::default()
    }

    #[test]
    fn a_verdict_while_the_delivery_is_open_is_kept_once_and_applied_with_the_acceptance() {
        let in_flight = waterfall_in_flight();
        let t = keep_of(&in_flight, Verdict::Confirmed, Some("sold"));
        assert!(t.events.is_empty(), "no lead event while kept");
        assert!(t.jobs.is_empty() && t.tallies.is_empty());
        let kept = apply(&in_flight, &t);
        assert_eq!(kept.status, LeadStatus::Routing, "nothing moves yet");
        assert_eq!(
            kept.kept_verdicts["a"],
            KeptVerdict {
                verdict: Verdict::Confirmed,
                reason: Some("sold".into()),
                received_at: now(),
            }
        );
        let event = kept.events.last().expect("an event");
        assert_eq!(
            (event.kind, event.code.as_deref()),
            (EventKind::VerdictKept, Some("confirmed"))
        );
        // Conditional: only while nothing is kept and the delivery is open.
        assert!(!crate::store::preconditions_hold(&kept, &t.update));
        let accepted = outcome_on_a(
            &in_flight,
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
        );
        assert!(!crate::store::preconditions_hold(&accepted, &t.update));

        // The same verdict again: already kept; another one: refused while this one is kept.
        assert_eq!(
            verdict(&kept, "a", Verdict::Confirmed, None, &rules(), now()),
            VerdictDecision::AlreadyKept { received_at: now() }
        );
        assert_eq!(
            verdict(&kept, "a", Verdict::Rejected, None, &rules(), now()),
            VerdictDecision::OtherVerdictKept {
                kept: Verdict::Confirmed,
                received_at: now()
            }
        );
        // Nothing to apply while the delivery is open.
        assert_eq!(apply_kept(&kept, &no_rules, now()), None);

        // The acceptance is recorded (dispatch's write does not touch the kept verdict): applied, settling the
        // lead in the same write, with its lead events once.
        let accepted = outcome_on_a(
            &kept,
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
        );
        assert!(accepted.kept_verdicts.contains_key("a"));
        let t = apply_kept(&accepted, &no_rules, now()).expect("applies");
        assert_eq!(
            t.events,
            [
                LeadEvent::Delivered {
                    destinations: vec!["a".into()]
                },
                LeadEvent::Confirmed {
                    destination: "a".into()
                }
            ]
        );
        let confirmed = apply(&accepted, &t);
        assert_eq!(confirmed.status, LeadStatus::Confirmed);
        assert!(confirmed.kept_verdicts.is_empty());
        assert_eq!(confirmed.deliveries["b"].status, DeliveryStatus::Skipped);
        let verdicts: Vec<&str> = confirmed
            .events
            .iter()
            .filter(|e| e.kind == EventKind::BuyerVerdict)
            .filter_map(|e| e.reason.as_deref())
            .collect();
        assert_eq!(verdicts, ["sold"]);
        // Exactly once: nothing is left to apply, and the same transition cannot apply again.
        assert_eq!(apply_kept(&confirmed, &no_rules, now()), None);
        assert!(!crate::store::preconditions_hold(&confirmed, &t.update));
        // Settled already: settle has nothing to do.
        assert_eq!(settle(&confirmed, now()), None);
    }

    #[test]
    fn a_kept_rejection_sends_the_lead_on_once_the_acceptance_is_recorded() {
        let in_flight = waterfall_in_flight();
        let kept = apply(
            &in_flight,
            &keep_of(
                &in_flight,
                Verdict::Rejected,
                Some("Lead rejected after review."),
            ),
        );
        let accepted = outcome_on_a(
            &kept,
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
        );
        let t = apply_kept(&accepted, &no_rules, now()).expect("applies");
        assert!(matches!(
            &t.events[..],
            [LeadEvent::Delivered { .. }, LeadEvent::RejectedAfterPost { reason, .. }]
                if reason == "Lead rejected after review."
        ));
        assert_eq!(
            t.jobs,
            [ScheduledJob::deliver(&kept.id, "b", 1, Duration::ZERO)]
        );
        let after = apply(&accepted, &t);
        assert_eq!(after.status, LeadStatus::Routing);
        assert_eq!(after.deliveries["a"].status, DeliveryStatus::Rejected);
        assert_eq!(after.deliveries["b"].status, DeliveryStatus::Pending);
        assert!(after.kept_verdicts.is_empty());
    }

    #[test]
    fn a_kept_verdict_whose_delivery_is_not_taken_is_recorded_as_not_applied() {
        for (outcome, ended) in [
            (Outcome::rejected("http_400", "bad", true), "rejected"),
            (Outcome::failed("http_401", "creds"), "dead"),
        ] {
            let in_flight = waterfall_in_flight();
            let kept = apply(&in_flight, &keep_of(&in_flight, Verdict::Confirmed, None));
            let decided = outcome_on_a(&kept, outcome);
            let t = apply_kept(&decided, &no_rules, now()).expect("recorded");
            assert!(t.events.is_empty(), "no lead event: {:?}", t.events);
            let after = apply(&decided, &t);
            assert!(after.kept_verdicts.is_empty());
            let event = after.events.last().expect("an event");
            assert_eq!(event.kind, EventKind::VerdictNotApplied);
            assert_eq!(event.code.as_deref(), Some("delivery_not_taken"));
            assert!(
                event
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.contains(&format!("the delivery ended {ended}"))),
                "{event:?}"
            );
            // Then the lead is settled as usual: the next buyer in line.
            let settled = apply(&after, &settle(&after, now()).expect("settles"));
            assert_eq!(settled.deliveries["b"].status, DeliveryStatus::Pending);
        }
    }

    #[test]
    fn a_kept_verdict_the_lead_no_longer_takes_is_dropped_with_why() {
        let in_flight = waterfall_in_flight();
        let kept = apply(&in_flight, &keep_of(&in_flight, Verdict::Confirmed, None));
        let accepted = outcome_on_a(
            &kept,
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
        );
        // The buyer returned it meanwhile (callback applied a later `returned` first).
        let mut returned = apply(&accepted, &settle(&accepted, now()).expect("settles"));
        returned.status = LeadStatus::Returned;
        let t = apply_kept(&returned, &no_rules, now()).expect("recorded");
        assert!(t.events.is_empty());
        let after = apply(&returned, &t);
        assert_eq!(after.status, LeadStatus::Returned);
        assert_eq!(
            after.events.last().and_then(|e| e.code.as_deref()),
            Some("verdict_not_applicable")
        );
    }

    #[test]
    fn a_kept_return_needs_a_known_reason_at_once() {
        let in_flight = waterfall_in_flight();
        let listed = VerdictRules {
            returns: ReturnPolicy {
                reasons: Some(vec!["Bad phone".into()]),
                window_days: 7,
            },
            resell_returns: false,
        };
        assert_eq!(
            verdict(
                &in_flight,
                "a",
                Verdict::Returned,
                Some("meh"),
                &listed,
                now()
            ),
            VerdictDecision::UnknownReturnReason {
                allowed: Some(vec!["Bad phone".into()])
            }
        );
        let VerdictDecision::Keep(t) = verdict(
            &in_flight,
            "a",
            Verdict::Returned,
            Some("bad PHONE"),
            &listed,
            now(),
        ) else {
            panic!("kept")
        };
        let kept = apply(&in_flight, &t);
        assert_eq!(kept.kept_verdicts["a"].reason.as_deref(), Some("Bad phone"));
    }

    fn delivered_with_line(resell: bool) -> (LeadRecord, VerdictRules) {
        let received = lead(LeadStatus::Received, &[]);
        let routed = apply(
            &received,
            &screened(
                &received,
                &ScreeningVerdict::passed(),
                &plan(&["a", "b"]),
                now(),
            ),
        );
        let (taken, _) = answer(
            &routed,
            "a",
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
        );
        assert_eq!(taken.status, LeadStatus::Delivered);
        let rules = VerdictRules {
            returns: ReturnPolicy {
                reasons: Some(vec!["Bad phone".into(), "Duplicate".into()]),
                window_days: 7,
            },
            resell_returns: resell,
        };
        (taken, rules)
    }

    #[test]
    fn a_return_within_the_window_with_a_listed_reason_is_recorded_and_tallied() {
        let (taken, rules) = delivered_with_line(false);
        let later = now() + chrono::Duration::days(6);
        let VerdictDecision::Apply(t) = verdict(
            &taken,
            "a",
            Verdict::Returned,
            Some(" duplicate "),
            &rules,
            later,
        ) else {
            panic!("applies")
        };
        assert_eq!(
            t.events,
            [LeadEvent::Returned {
                destination: "a".into(),
                reason: "Duplicate".into()
            }]
        );
        assert_eq!(t.tallies, [("a".to_owned(), Tally::Returned)]);
        assert!(t.jobs.is_empty());
        let returned = apply(&taken, &t);
        assert_eq!(returned.status, LeadStatus::Returned);
        // Not resold: the buyer in line is not offered it.
        assert_eq!(returned.deliveries["b"].status, DeliveryStatus::Skipped);
        assert_eq!(returned.deliveries["a"].status, DeliveryStatus::Accepted);
        // Again: already recorded, even after the window.
        assert_eq!(
            verdict(
                &returned,
                "a",
                Verdict::Returned,
                Some("Duplicate"),
                &rules,
                now() + chrono::Duration::days(30)
            ),
            VerdictDecision::AlreadyRecorded
        );
    }

    #[test]
    fn a_return_after_the_window_or_with_another_reason_is_refused_saying_which() {
        let (taken, rules) = delivered_with_line(false);
        let accepted = accepted_at(&taken, "a").expect("accepted");
        let closes = accepted + chrono::Duration::days(7);
        assert_eq!(
            verdict(
                &taken,
                "a",
                Verdict::Returned,
                Some("Duplicate"),
                &rules,
                closes
            ),
            VerdictDecision::ReturnWindowClosed {
                window_days: 7,
                closed_at: closes
            }
        );
        assert!(matches!(
            verdict(
                &taken,
                "a",
                Verdict::Returned,
                Some("Duplicate"),
                &rules,
                closes - chrono::Duration::milliseconds(1)
            ),
            VerdictDecision::Apply(_)
        ));
        for reason in [Some("too expensive"), Some("  "), None] {
            assert_eq!(
                verdict(&taken, "a", Verdict::Returned, reason, &rules, now()),
                VerdictDecision::UnknownReturnReason {
                    allowed: Some(vec!["Bad phone".into(), "Duplicate".into()])
                },
                "{reason:?}"
            );
        }
        // Without return_reasons any non-blank reason is taken, but one is needed.
        let any = VerdictRules::default();
        assert!(matches!(
            verdict(
                &taken,
                "a",
                Verdict::Returned,
                Some("whatever"),
                &any,
                now()
            ),
            VerdictDecision::Apply(_)
        ));
        assert_eq!(
            verdict(&taken, "a", Verdict::Returned, None, &any, now()),
            VerdictDecision::UnknownReturnReason { allowed: None }
        );
    }

    #[test]
    fn with_resell_returns_a_returned_lead_goes_to_the_next_buyer() {
        let (taken, rules) = delivered_with_line(true);
        let VerdictDecision::Apply(t) = verdict(
            &taken,
            "a",
            Verdict::Returned,
            Some("Bad phone"),
            &rules,
            now(),
        ) else {
            panic!("applies")
        };
        assert!(matches!(&t.events[..], [LeadEvent::Returned { .. }]));
        assert_eq!(
            t.jobs,
            [ScheduledJob::deliver(&taken.id, "b", 1, Duration::ZERO)]
        );
        let resold = apply(&taken, &t);
        assert_eq!(resold.status, LeadStatus::Routing);
        assert_eq!(resold.deliveries["a"].status, DeliveryStatus::Rejected);
        assert_eq!(
            resold.deliveries["a"].reason.as_deref(),
            Some("returned after it was taken: Bad phone")
        );
        assert_eq!(resold.deliveries["b"].status, DeliveryStatus::Pending);
        // The same return again is already recorded; and the next buyer's acceptance delivers it again.
        assert_eq!(
            verdict(
                &resold,
                "a",
                Verdict::Returned,
                Some("Bad phone"),
                &rules,
                now()
            ),
            VerdictDecision::AlreadyRecorded
        );
        let (sold, _) = answer(
            &resold,
            "b",
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
        );
        assert_eq!(sold.status, LeadStatus::Delivered);
    }

    #[test]
    fn acceptances_are_tallied_for_return_rates() {
        let record = claimed("a");
        let (_, t, _) = outcome_of(
            &record,
            1,
            3,
            Outcome::Accepted {
                buyer_ref: None,
                price: None,
            },
        );
        assert_eq!(t.tallies, [("a".to_owned(), Tally::Accepted)]);
        for outcome in [
            Outcome::rejected("http_400", "bad", true),
            Outcome::retry("http_503", "down", None),
            Outcome::failed("http_401", "creds"),
        ] {
            let (_, t, _) = outcome_of(&record, 1, 3, outcome);
            assert!(t.tallies.is_empty());
        }
    }
}
