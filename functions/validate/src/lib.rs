//! validate: screens each received lead and plans its deliveries.
//!
//! Per record: read the lead; screen it (the vertical's unique fields, race-free); on rejection mark it
//! `rejected`; otherwise record one pending delivery per destination chosen by routing, move it to
//! `routing` (or `unsold` when no buyer takes the vertical), and queue one delivery job per destination.
//! Redelivered messages are harmless: a lead already past `received` only has its pending jobs re-sent.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use leadhub::batch::{self, RecordError};
use leadhub::config::Config;
use leadhub::delivery::{DispatchJob, ValidateJob};
use leadhub::lead::now;
use leadhub::lead::{
    DeliveryState, DeliveryStatus, EventKind, LeadRecord, LeadStatus, TimelineEvent,
};
use leadhub::queue::JobQueue;
use leadhub::routing;
use leadhub::screening::{self, ScreeningVerdict};
use leadhub::store::{DeliveryExpect, LeadStore, LeadUpdate, UpdateOutcome};

/// The screening stage with its dependencies.
pub struct Validate {
    pub config: Arc<Config>,
    pub store: Arc<dyn LeadStore>,
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
            LeadStatus::Routing => self.send_pending_jobs(&lead).await,
            _ => {
                tracing::info!(lead_id = %lead.id, status = %lead.status, "lead already screened");
                Ok(())
            }
        }
    }

    async fn screen_and_route(&self, lead: LeadRecord) -> Result<(), RecordError> {
        let now = now();
        let verdict = screening::screen(self.store.as_ref(), &self.config.hasher, &lead).await?;
        let update = match verdict {
            ScreeningVerdict::Rejected { code, reason } => {
                tracing::info!(lead_id = %lead.id, %code, "lead rejected by screening");
                LeadUpdate::new(now)
                    .expect(&[LeadStatus::Received])
                    .status(LeadStatus::Rejected)
                    .event(
                        TimelineEvent::new(now, EventKind::Rejected, LeadStatus::Rejected)
                            .reason(&code, reason),
                    )
            }
            ScreeningVerdict::Passed => {
                let plan = routing::plan(&self.config, &lead);
                let screened = TimelineEvent::new(now, EventKind::Screened, LeadStatus::Received)
                    .reason("passed", "passed screening (duplicate check)");
                if plan.destinations.is_empty() {
                    tracing::warn!(lead_id = %lead.id, vertical = %lead.vertical, "no destination for the lead");
                    LeadUpdate::new(now)
                        .expect(&[LeadStatus::Received])
                        .status(LeadStatus::Unsold)
                        .event(screened)
                        .event(
                            TimelineEvent::new(now, EventKind::Unsold, LeadStatus::Unsold).reason(
                                "no_destination",
                                format!("no buyer is configured for {} leads", lead.vertical),
                            ),
                        )
                } else {
                    let names = plan.destinations.join(", ");
                    let mut update = LeadUpdate::new(now)
                        .expect(&[LeadStatus::Received])
                        .status(LeadStatus::Routing)
                        .event(screened)
                        .event(
                            TimelineEvent::new(now, EventKind::Routing, LeadStatus::Routing)
                                .reason("routed", format!("offered to: {names}")),
                        );
                    for destination in &plan.destinations {
                        update = update.delivery(
                            destination,
                            DeliveryExpect::Absent,
                            DeliveryState::pending(now),
                        );
                    }
                    update
                }
            }
        };
        match self.store.update_lead(&lead.id, &update).await? {
            UpdateOutcome::Applied(lead) => self.send_pending_jobs(&lead).await,
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

    /// Queue the first attempt of every delivery not yet started. Dispatch ignores duplicates.
    async fn send_pending_jobs(&self, lead: &LeadRecord) -> Result<(), RecordError> {
        for (destination, state) in &lead.deliveries {
            if state.status != DeliveryStatus::Pending {
                continue;
            }
            let job = DispatchJob::Deliver {
                lead_id: lead.id.clone(),
                destination: destination.clone(),
                attempt: 1,
            };
            let body =
                serde_json::to_string(&job).map_err(|e| RecordError::Malformed(e.to_string()))?;
            self.dispatch_queue.send(&body, Duration::ZERO).await?;
        }
        tracing::info!(lead_id = %lead.id, deliveries = lead.deliveries.len(), status = %lead.status, "lead screened");
        Ok(())
    }
}
