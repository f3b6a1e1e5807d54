//! dispatch: delivers leads to buyers, one attempt per job.
//!
//! Read the lead; ask [`lifecycle::delivery_step`] whether this job may act; claim the attempt
//! ([`lifecycle::claim`], a conditional write); call the buyer (the connector builds each request, the
//! transport sends it, the connector reads the answer); commit [`lifecycle::attempt_outcome`] (the outcome
//! on the delivery and the timeline; a retry is a new job with a delay) and then [`lifecycle::settle`].
//! A delivery recorded as accepted, rejected or dead is never posted again, however often a job is
//! redelivered (an operator's replay makes a dead one pending again: [`lifecycle::replay`]); the buyer sees the same idempotency key (`webhook-id`) on every attempt of one delivery.
//! Notification jobs ([`DispatchJob::Notify`]) are sent to partners by [`notify`](crate::notify).
//! A delivery that dies is marked for operators ([`DeadDeliveries`], listed by `leadhub-admin deliveries
//! dead`) in the same commit; a redelivered job that finds it dead marks it again, so a marker whose write
//! failed (the record is then failed and redelivered) is not lost. An accepted delivery's buyer reference is
//! mapped back to the lead ([`BuyerRefs`], for the buyer's webhooks) the same way. A delivery that failed
//! because the buyer's answer was not recognised ([`answer_rules::UNRECOGNISED_ANSWER`]) is dead like any
//! failed one, and logged once with `alarm = "buyer_answer_unrecognised"` (ids and codes, never the body).
//!
//! A buyer's verdict that arrived while its delivery was open is kept on the lead (see callback); once an
//! outcome is recorded, dispatch applies it (or records it as not applied) before settling the lead
//! ([`lifecycle::apply_kept`]). A redelivered job that finds the delivery settled does the same, so a
//! kept verdict whose write failed is applied by the redelivery. Accepted deliveries are tallied per
//! destination and day ([`DeliveryTallies`]) for return rates.

mod notify;

use std::borrow::Cow;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};

use leadhub::access_tokens::{self, AccessTokens, CurrentToken, TokenError};
use leadhub::answer_rules;
use leadhub::batch::{self, RecordError};
use leadhub::callbacks;
use leadhub::connectors::lofty;
use leadhub::connectors::{self, BuyerRequest, BuyerResponse, DeliveryContext, Next};
use leadhub::delivery::{DispatchJob, Outcome};
use leadhub::lead::{DeliveryStatus, LeadId, LeadRecord};
use leadhub::lifecycle::{
    self, Attempt, AttemptResult, DeliveryStep, Ports, ScheduledJob, VerdictRules,
};
use leadhub::live_config::LiveConfig;
use leadhub::pacing::RatePacer;
use leadhub::queue::JobQueue;
use leadhub::routing::CapPeriod;
use leadhub::settings::Destination;
use leadhub::store::{
    cap_key, BuyerRef, BuyerRefs, BuyerTokens, Counters, DeadDeliveries, DeliveryTallies,
    LeadStore, NotificationLog, Reservation, UpdateOutcome,
};
use leadhub::transport::{Transport, TransportError};

use leadhub::lifecycle::MAX_STEPS;

/// The most kept verdicts one settling applies (one per write; a conflict counts too): more than a lead
/// has buyers at once.
const MAX_KEPT_STEPS: usize = 8;

/// The delivery stage with its dependencies.
pub struct Dispatch {
    /// The configuration in effect (re-read from the table when due).
    pub config: LiveConfig,
    pub store: Arc<dyn LeadStore>,
    /// Delivery caps: a place is taken before a buyer is first offered a lead.
    pub counters: Arc<dyn Counters>,
    /// Markers of dead deliveries, for operators to list and replay.
    pub dead_deliveries: Arc<dyn DeadDeliveries>,
    /// A buyer's own id for a lead it took, mapped back to the lead (for the buyer's webhooks).
    pub buyer_refs: Arc<dyn BuyerRefs>,
    /// Where retries are scheduled (the dispatch queue itself).
    pub dispatch_queue: Arc<dyn JobQueue>,
    /// Outbound HTTP (built once per process).
    pub transport: Arc<dyn Transport>,
    /// Partner notifications that failed, and endpoints disabled by a 410.
    pub notifications: Arc<dyn NotificationLog>,
    /// Outbound HTTP to partner-supplied URLs: SSRF-guarded ([`leadhub::transport::ReqwestTransport::guarded`]).
    pub partner_transport: Arc<dyn Transport>,
    /// Accepted deliveries (and returns, through kept verdicts) tallied per destination and day.
    pub tallies: Arc<dyn DeliveryTallies>,
    /// The rate-limit windows paced buyers announced (in memory, per process: [`leadhub::pacing`]).
    pub pacer: Arc<RatePacer>,
    /// Buyers' current OAuth tokens and their refresh leases, shared by every dispatcher.
    pub buyer_tokens: Arc<dyn BuyerTokens>,
}

/// How long a delivery waits for an access token that cannot be had for now.
const TOKEN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Who this process is when it holds a token refresh lease (random, per process).
fn token_holder() -> &'static str {
    static HOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOLDER.get_or_init(|| format!("dispatch-{:016x}", rand::random::<u64>()))
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
        // Re-read the stored configuration when it is due; the steps below use what is in effect.
        self.config.get().await;
        match job {
            DispatchJob::Deliver {
                lead_id,
                destination,
                attempt,
            } => self.deliver(lead_id, destination, *attempt).await,
            DispatchJob::Notify(job) => self.notify(job).await,
        }
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
        match lifecycle::delivery_step(state, attempt, now) {
            DeliveryStep::Attempt => {}
            DeliveryStep::Skip(why) => {
                tracing::info!(lead_id = %lead_id, destination = destination_id, attempt, why, "not posting");
                // A dead delivery's marker may not have been written: write it (again; idempotent).
                if let Some(dead) = lifecycle::dead_delivery(&lead, destination_id) {
                    self.dead_deliveries.record(&dead).await?;
                }
                // Nor an accepted one's buyer reference: the same.
                self.record_buyer_ref(&lead, destination_id).await?;
                // The job that recorded the outcome may have died before settling the lead: settle it now
                // (a no-op unless the lead is still routing with its deliveries decided).
                self.settle(&lead, now).await?;
                // Or it settled the lead (offering the next buyers) and died before queueing their
                // first attempts: queue them again (dispatch ignores duplicates).
                lifecycle::send_jobs(
                    self.dispatch_queue.as_ref(),
                    &lifecycle::pending_jobs(&lead),
                )
                .await?;
                return Ok(());
            }
            DeliveryStep::Wait(wait) => {
                return self
                    .send(ScheduledJob::deliver(
                        lead_id,
                        destination_id,
                        attempt,
                        wait,
                    ))
                    .await
            }
            DeliveryStep::Reschedule(wait) => {
                return self
                    .send(ScheduledJob::deliver(
                        lead_id,
                        destination_id,
                        attempt + 1,
                        wait,
                    ))
                    .await
            }
            DeliveryStep::Busy => {
                return Err(RecordError::NotYet(format!(
                    "attempt {attempt} of {lead_id} to {destination_id} is in flight elsewhere"
                )))
            }
        }

        let config = self.config.current();
        let Some(destination) = config.destination(destination_id) else {
            let outcome = Outcome::failed(
                "destination_removed",
                "the destination is no longer configured",
            );
            let attempt = Attempt {
                lead: &lead,
                destination: destination_id,
                attempt,
                attempts: state.attempts,
                max_attempts: 1,
                claimed: false,
            };
            return self.record(&attempt, outcome, now).await;
        };

        // A destination that renews its access token: the token to call with, renewed first when due. When
        // it cannot be had for now, the job waits (no attempt used); when the refresh token is refused, the
        // delivery fails for the operator to authorise the hub again.
        let token = if access_tokens::renews_tokens(destination) {
            match self.tokens().current(destination, now).await {
                Ok(token) => Some(token),
                Err(TokenError::Unavailable(why)) => {
                    tracing::warn!(lead_id = %lead_id, destination = destination_id, attempt, %why, "no access token for now; waiting");
                    return self
                        .send(ScheduledJob::deliver(
                            lead_id,
                            destination_id,
                            attempt,
                            TOKEN_WAIT,
                        ))
                        .await;
                }
                Err(TokenError::Refused(why)) => {
                    let attempt = Attempt {
                        lead: &lead,
                        destination: destination_id,
                        attempt,
                        attempts: state.attempts,
                        max_attempts: 1,
                        claimed: false,
                    };
                    return self
                        .record(&attempt, Outcome::failed("token_refresh_refused", why), now)
                        .await;
                }
            }
        } else {
            None
        };

        // A paced buyer whose rate-limit window has no room for this delivery's calls: put the job back
        // until the window resets, before anything is claimed or reserved (no attempt used).
        if let Some(calls) = connectors::paced_calls(&lead, destination) {
            if let Err(wait) = self.pacer.reserve(destination_id, calls, now) {
                tracing::info!(lead_id = %lead_id, destination = destination_id, attempt, wait_ms = wait.as_millis() as u64, "buyer's rate-limit window is used up; waiting for its reset");
                return self
                    .send(ScheduledJob::deliver(
                        lead_id,
                        destination_id,
                        attempt,
                        wait,
                    ))
                    .await;
            }
        }

        // Claim the attempt: only one worker calls the buyer for attempt `attempt`. The lease outlasts the
        // longest call (every step at the destination's timeout) so that a live worker never loses it.
        let lease = lifecycle::lease(destination.timeout);
        // A first offer takes a place in each of the buyer's caps first; a full cap skips the buyer.
        let cap_keys = if state.attempts == 0 && state.cap_keys.is_empty() {
            match self.reserve_caps(&lead, destination, now).await? {
                Ok(keys) => keys,
                Err(period) => {
                    tracing::info!(lead_id = %lead_id, destination = destination_id, period = period.as_str(), "buyer's cap is full; skipped");
                    let transition = lifecycle::cap_full(&lead, destination_id, period, now);
                    return match lifecycle::commit(self.ports(&config), lead_id, &transition)
                        .await?
                    {
                        UpdateOutcome::Applied(lead) | UpdateOutcome::Conflict(lead) => {
                            self.settle(&lead, now).await
                        }
                        UpdateOutcome::NotFound => Ok(()),
                    };
                }
            }
        } else {
            state.cap_keys.clone()
        };
        let claim = lifecycle::claim(&lead, destination_id, attempt, lease, now, cap_keys);
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

        let outcome = self.call(&lead, destination, token).await;
        let now = leadhub::lead::now();
        let attempt = Attempt {
            lead: &lead,
            destination: destination_id,
            attempt,
            attempts: attempt,
            max_attempts: destination.max_attempts,
            claimed: true,
        };
        self.record(&attempt, outcome, now).await
    }

    /// The shared access tokens of destinations that renew theirs.
    fn tokens(&self) -> AccessTokens<'_> {
        AccessTokens {
            store: self.buyer_tokens.as_ref(),
            transport: self.transport.as_ref(),
            holder: token_holder(),
        }
    }

    /// Build, send, classify. Never fails: transport problems are outcomes too. `token`: the access token
    /// to call with, for a destination that renews its tokens; a 401 renews it once and the refused request
    /// is sent again (the same step, not another attempt).
    async fn call(
        &self,
        lead: &LeadRecord,
        destination: &Destination,
        mut token: Option<CurrentToken>,
    ) -> Outcome {
        let now = leadhub::lead::now();
        let config = self.config.current();
        let callback_url = callbacks::url(
            &config.public_base_url,
            &config.callback_signer,
            &destination.id,
            &lead.id,
        );
        let idempotency_key = format!("msg_{}_{}", lead.id, destination.id);
        let mut using: Cow<'_, Destination> = match &token {
            Some(token) => Cow::Owned(access_tokens::with_access_token(destination, token)),
            None => Cow::Borrowed(destination),
        };
        let mut request = match connectors::build(&DeliveryContext {
            lead,
            destination: &using,
            callback_url: &callback_url,
            idempotency_key: &idempotency_key,
            now,
        }) {
            Ok(request) => request,
            Err(error) => return Outcome::failed("build_failed", error.to_string()),
        };
        let mut renewed = false;
        // One request for most buyer APIs; a few for Lofty (lookup, then note or create).
        let mut steps = 0;
        while steps < MAX_STEPS {
            let response = match self.send_request(&request, &using).await {
                Ok(response) => response,
                Err(outcome) => return outcome,
            };
            let kind = destination.connector.kind();
            if let Some(window) = connectors::rate_limit(kind, &response, leadhub::lead::now()) {
                self.pacer.observe(destination.id.as_str(), window);
            }
            if let (401, Some(stale), false) = (response.status, &token, renewed) {
                renewed = true;
                tracing::info!(lead_id = %lead.id, destination = %destination.id, "the buyer refused its access token; renewing it");
                let fresh = match self.tokens().renewed(destination, stale).await {
                    Ok(fresh) => fresh,
                    Err(TokenError::Refused(why)) => {
                        return Outcome::failed("token_refresh_refused", why)
                    }
                    Err(TokenError::Unavailable(why)) => {
                        return Outcome::retry("token_refresh_failed", why, Some(TOKEN_WAIT))
                    }
                };
                request = match lofty::with_token(request, fresh.access_token.expose()) {
                    Ok(request) => request,
                    Err(error) => return Outcome::failed("build_failed", error.to_string()),
                };
                using = Cow::Owned(access_tokens::with_access_token(destination, &fresh));
                token = Some(fresh);
                continue;
            }
            steps += 1;
            let context = DeliveryContext {
                lead,
                destination: &using,
                callback_url: &callback_url,
                idempotency_key: &idempotency_key,
                now,
            };
            match connectors::next(&context, &request, &response, leadhub::lead::now()) {
                Next::Done(outcome) => return connectors::without_credentials(outcome, &using),
                Next::Send(following) => request = following,
            }
        }
        Outcome::failed(
            "too_many_steps",
            format!("the buyer API took more than {MAX_STEPS} requests"),
        )
    }

    /// One HTTP call: the answer, or the outcome of a transport failure.
    async fn send_request(
        &self,
        request: &BuyerRequest,
        destination: &Destination,
    ) -> Result<BuyerResponse, Outcome> {
        self.transport
            .send(request, destination.timeout)
            .await
            .map_err(|error| match error {
                TransportError::Timeout(_) => Outcome::retry(
                    "timeout",
                    format!(
                        "the buyer did not answer within {} ms",
                        destination.timeout.as_millis()
                    ),
                    None,
                ),
                TransportError::Unreachable => {
                    Outcome::retry("connection_failed", "the buyer could not be reached", None)
                }
            })
    }

    /// The ports of a commit, with `config`'s partner subscriptions.
    fn ports<'a>(&'a self, config: &'a leadhub::settings::Config) -> Ports<'a> {
        Ports {
            store: self.store.as_ref(),
            queue: Some(self.dispatch_queue.as_ref()),
            counters: Some(self.counters.as_ref()),
            dead_deliveries: Some(self.dead_deliveries.as_ref()),
            subscribers: Some(config),
            tallies: Some(self.tallies.as_ref()),
        }
    }

    /// Take a place in each of `destination`'s caps for this lead (idempotent: a redelivered job holds the
    /// same places). `Ok(Err(period))` when a cap is full; the places taken meanwhile are given back.
    async fn reserve_caps(
        &self,
        lead: &LeadRecord,
        destination: &Destination,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<String>, CapPeriod>, RecordError> {
        let holder = lifecycle::cap_holder(&lead.id, &destination.id);
        let mut taken = Vec::new();
        for (window, limit) in destination.routing.cap_windows(now) {
            let key = cap_key(&destination.id, &window.key);
            match self
                .counters
                .reserve(&key, &holder, limit, window.ends_at)
                .await?
            {
                Reservation::Reserved => taken.push(key),
                Reservation::Full { .. } => {
                    for key in &taken {
                        self.counters.release(key, &holder).await?;
                    }
                    return Ok(Err(window.period));
                }
            }
        }
        Ok(Ok(taken))
    }

    async fn send(&self, job: ScheduledJob) -> Result<(), RecordError> {
        lifecycle::send_jobs(self.dispatch_queue.as_ref(), &[job]).await?;
        Ok(())
    }

    /// Record an attempt's outcome (with the next attempt's job when it is retried), then settle the lead.
    async fn record(
        &self,
        at: &Attempt<'_>,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let config = self.config.current();
        let code = match &outcome {
            Outcome::Accepted { .. } => "accepted".to_owned(),
            Outcome::Rejected { code, .. }
            | Outcome::Retry { code, .. }
            | Outcome::Failed { code, .. } => code.clone(),
        };
        let (transition, result) =
            lifecycle::attempt_outcome(at, outcome, &config.retry, rand::random(), now);
        let (lead_id, destination, attempt) = (&at.lead.id, at.destination, at.attempt);
        match result {
            AttemptResult::Accepted => {
                tracing::info!(lead_id = %lead_id, destination, attempt, "delivery accepted")
            }
            AttemptResult::Rejected => {
                tracing::info!(lead_id = %lead_id, destination, attempt, %code, "delivery rejected")
            }
            AttemptResult::Retrying(delay) => {
                tracing::info!(lead_id = %lead_id, destination, attempt, %code, delay_ms = delay.as_millis() as u64, "delivery will be retried")
            }
            AttemptResult::GaveUp => {
                tracing::warn!(lead_id = %lead_id, destination, attempt, %code, "delivery gave up")
            }
            // A buyer's 2xx that said neither yes nor no (`[destinations.response]`, Sonar's markers): the
            // delivery is dead; the operator checks with the buyer. Counted by the BuyerAnswerUnrecognised
            // metric filter (template.yaml) on its `alarm` field: ids and codes only, never the body.
            AttemptResult::Failed if code == answer_rules::UNRECOGNISED_ANSWER => {
                tracing::error!(lead_id = %lead_id, destination, attempt, %code, alarm = answer_rules::UNRECOGNISED_ALARM, "the buyer's answer was not recognised: the delivery is dead; check with the buyer and the destination's [destinations.response] rules")
            }
            // An operator must act: configuration or credentials. Alarmed on via this log line.
            AttemptResult::Failed => {
                tracing::error!(lead_id = %lead_id, destination, attempt, %code, "destination failed: check its configuration and credentials")
            }
        }
        let lead = match lifecycle::commit(self.ports(&config), lead_id, &transition).await? {
            UpdateOutcome::Applied(lead) => {
                if result == AttemptResult::Accepted {
                    self.mark_sold(&config, &lead, destination, now).await;
                    // Not written: the record fails, and its redelivery (which finds the delivery
                    // accepted) writes it.
                    self.record_buyer_ref(&lead, destination).await?;
                }
                lead
            }
            UpdateOutcome::Conflict(current) => {
                tracing::warn!(lead_id = %lead_id, destination, attempt, "delivery changed under us; outcome not recorded");
                return self.settle(&current, now).await;
            }
            UpdateOutcome::NotFound => {
                tracing::warn!(lead_id = %lead_id, destination, attempt, "lead gone; outcome not recorded");
                return Ok(());
            }
        };
        self.settle(&lead, now).await
    }

    /// A buyer with `skip_if_sold_within_days` bought the lead's consumer: mark it, so that routing leaves
    /// that buyer out of the same consumer's next leads within the window. A mark not written only lets a
    /// later lead of the consumer be offered to the buyer again.
    async fn mark_sold(
        &self,
        config: &leadhub::settings::Config,
        lead: &LeadRecord,
        destination: &str,
        now: DateTime<Utc>,
    ) {
        let Some(days) = config
            .destination(destination)
            .and_then(|d| d.routing.filters.sold_within_days)
        else {
            return;
        };
        if let Err(error) = leadhub::screening::mark_sold(
            self.store.as_ref(),
            &config.hasher,
            lead,
            destination,
            days,
            now,
        )
        .await
        {
            tracing::warn!(lead_id = %lead.id, destination, %error, "could not mark the consumer as sold to the buyer");
        }
    }

    /// Map the buyer's own id for `lead` (an accepted delivery's reference, when the buyer gave one) back to
    /// the lead, so that the buyer's webhooks find it. Idempotent.
    async fn record_buyer_ref(
        &self,
        lead: &LeadRecord,
        destination: &str,
    ) -> Result<(), RecordError> {
        if let Some(entry) = BuyerRef::of_accepted(lead, destination) {
            self.buyer_refs.record_buyer_ref(&entry).await?;
        }
        Ok(())
    }

    /// Apply the verdicts kept on the lead whose deliveries are now decided ([`lifecycle::apply_kept`]),
    /// then move a routing lead to `delivered` once a buyer took it, or `unsold` once every delivery is
    /// settled.
    async fn settle(&self, lead: &LeadRecord, now: DateTime<Utc>) -> Result<(), RecordError> {
        let config = self.config.current();
        let vertical = lead.vertical;
        let rules = |destination: &str| VerdictRules::of(&config, destination, vertical);
        let mut lead = lead.clone();
        for _ in 0..MAX_KEPT_STEPS {
            let Some(transition) = lifecycle::apply_kept(&lead, &rules, now) else {
                break;
            };
            match lifecycle::commit(self.ports(&config), &lead.id, &transition).await? {
                UpdateOutcome::Applied(current) => {
                    tracing::info!(lead_id = %current.id, status = %current.status, "kept buyer verdict applied or recorded as not applied");
                    lead = current;
                }
                UpdateOutcome::Conflict(current) => lead = current,
                UpdateOutcome::NotFound => return Ok(()),
            }
        }
        if lifecycle::apply_kept(&lead, &rules, now).is_some() {
            // The lead kept changing under us: fail the record so that its redelivery applies the verdict.
            return Err(RecordError::NotYet(format!(
                "a verdict kept on {} could not be applied yet",
                lead.id
            )));
        }
        let Some(transition) = lifecycle::settle(&lead, now) else {
            return Ok(());
        };
        if let UpdateOutcome::Applied(lead) =
            lifecycle::commit(self.ports(&config), &lead.id, &transition).await?
        {
            tracing::info!(lead_id = %lead.id, status = %lead.status, "lead settled");
        }
        Ok(())
    }
}
