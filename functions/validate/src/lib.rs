//! validate: screens each received lead and plans its deliveries.
//!
//! Per record: read the lead; screen it (the vertical's unique fields, race-free); plan its routing; and
//! commit what [`leadhub::lifecycle::screened`] makes of the two (rejected, unsold, or routing with one
//! delivery job per planned buyer). Redelivered messages are harmless: a lead already past `received` only
//! has its pending jobs re-sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use leadhub::batch::{self, RecordError};
use leadhub::delivery::ValidateJob;
use leadhub::lead::{now, LeadRecord, LeadStatus};
use leadhub::lifecycle::{self, Ports};
use leadhub::live_config::LiveConfig;
use leadhub::queue::JobQueue;
use leadhub::routing;
use leadhub::screening::{self, ScreeningVerdict};
use leadhub::settings::Config;
use leadhub::store::{cap_key, sequence_key, Counters, LeadStore, UpdateOutcome};

/// The screening stage with its dependencies.
pub struct Validate {
    /// The configuration in effect (re-read from the table when due).
    pub config: LiveConfig,
    pub store: Arc<dyn LeadStore>,
    /// Cap usage (to leave full buyers out) and the weighted rotation's sequence.
    pub counters: Arc<dyn Counters>,
    pub dispatch_queue: Arc<dyn JobQueue>,
}

impl Validate {
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        batch::run(event, |record| self.handle_record(record)).await
    }

    pub async fn handle_record(&self, record: SqsMessage) -> Result<(), RecordError> {
        let job: ValidateJob = batch::parse_body(&record)?;
        self.validate(&job).await
    }

    pub async fn validate(&self, job: &ValidateJob) -> Result<(), RecordError> {
        let Some(lead) = self.store.get_lead(&job.lead_id).await? else {
            // Discarded by ingest after a failed send, or expired: nothing to do.
            tracing::warn!(lead_id = %job.lead_id, "validate job for a lead that does not exist");
            return Ok(());
        };
        match lead.status {
            LeadStatus::Received => self.screen_and_route(lead).await,
            // Already screened: the first attempts may not all have been queued (a send failed after the
            // write that planned them), whatever the lead's status since (a broadcast lead another buyer
            // took is delivered with the others still pending): queue them again.
            _ => self.send_pending_jobs(&lead).await,
        }
    }

    async fn screen_and_route(&self, lead: LeadRecord) -> Result<(), RecordError> {
        let config = self.config.get().await;
        let verdict = screening::screen(self.store.as_ref(), &config.hasher, &lead).await?;
        if let ScreeningVerdict::Rejected { code, .. } = &verdict {
            tracing::info!(lead_id = %lead.id, %code, "lead rejected by screening");
        }
        let now = now();
        let usage = self.cap_usage(&config, &lead, now).await?;
        let strategy = config.routing.get(&lead.vertical).map(|s| s.strategy);
        let sequence = if lifecycle::takes_a_rotation_turn(&lead, strategy) {
            self.counters
                .next_sequence(&sequence_key(lead.vertical))
                .await?
        } else {
            0
        };
        let plan = routing::route(&config, &lead, &usage, now, sequence);
        if verdict == ScreeningVerdict::Passed {
            // Buyers of other verticals are not worth a line per lead.
            for skipped in plan
                .skipped
                .iter()
                .filter(|s| s.reason != routing::SkipReason::Vertical)
            {
                tracing::info!(lead_id = %lead.id, destination = %skipped.destination, reason = %skipped.reason, "buyer left out");
            }
            if plan.is_unsold() {
                tracing::warn!(lead_id = %lead.id, vertical = %lead.vertical, "no buyer can take the lead");
            }
        }
        let transition = lifecycle::screened(&lead, &verdict, &plan, now);
        let ports = Ports {
            store: self.store.as_ref(),
            queue: Some(self.dispatch_queue.as_ref()),
            counters: Some(self.counters.as_ref()),
            dead_deliveries: None,
        };
        match lifecycle::commit(ports, &lead.id, &transition).await? {
            UpdateOutcome::Applied(lead) => {
                tracing::info!(lead_id = %lead.id, deliveries = lead.deliveries.len(), status = %lead.status, "lead screened");
                Ok(())
            }
            // Another delivery of this message got there first; follow what it decided.
            UpdateOutcome::Conflict(current) if current.status == LeadStatus::Routing => {
                self.send_pending_jobs(&current).await
            }
            UpdateOutcome::Conflict(_) => Ok(()),
            UpdateOutcome::NotFound => {
                tracing::warn!(lead_id = %lead.id, "lead vanished during validation");
                Ok(())
            }
        }
    }

    /// How full the caps of the lead's possible buyers are now, by (destination, window key).
    async fn cap_usage(
        &self,
        config: &Config,
        lead: &LeadRecord,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<BTreeMap<(String, String), u64>, RecordError> {
        let mut wanted = Vec::new();
        for destination in config.destinations_for(lead.vertical) {
            for (window, _) in destination.routing.cap_windows(now) {
                wanted.push((destination.id.to_string(), window.key));
            }
        }
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let keys: Vec<String> = wanted.iter().map(|(d, w)| cap_key(d, w)).collect();
        let counts = self.counters.counts(&keys).await?;
        Ok(wanted
            .into_iter()
            .zip(keys)
            .map(|(at, key)| (at, counts.get(&key).copied().unwrap_or(0)))
            .collect())
    }

    /// Queue the first attempt of every delivery not yet started. Dispatch ignores duplicates.
    async fn send_pending_jobs(&self, lead: &LeadRecord) -> Result<(), RecordError> {
        lifecycle::send_jobs(self.dispatch_queue.as_ref(), &lifecycle::pending_jobs(lead)).await?;
        tracing::info!(lead_id = %lead.id, deliveries = lead.deliveries.len(), status = %lead.status, "lead screened");
        Ok(())
    }
}
