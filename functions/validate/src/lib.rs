//! validate: screens each received lead and plans its deliveries.
//!
//! Per batch: every record's lead is read first; leads that share a duplicate key are then screened one
//! after another in order of receipt (so the earlier lead is the one that passes), the others
//! concurrently. Per lead: screen it ([`leadhub::screening`]: duplicates, the suppression list, LeadSafe);
//! plan its routing, leaving out buyers screening excludes (Amber, bought the consumer before); and commit
//! what [`leadhub::lifecycle::screened`] makes of the two (rejected, unsold, or routing with one delivery
//! job per planned buyer). Redelivered messages are harmless: a lead already past `received` only has its
//! pending jobs re-sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use futures::future::join_all;
use leadhub::batch::{self, RecordError};
use leadhub::delivery::ValidateJob;
use leadhub::lead::{now, LeadRecord, LeadStatus};
use leadhub::lifecycle::{self, Ports};
use leadhub::live_config::LiveConfig;
use leadhub::queue::JobQueue;
use leadhub::routing::{self, Screened};
use leadhub::screening::policy::{ContactField, LeadSafePolicy};
use leadhub::screening::{self, Check, DuplicateKey, LeadSafeStep, ScreeningVerdict, SsnMissing};
use leadhub::settings::Config;
use leadhub::store::{
    cap_key, sequence_key, Counters, LeadStore, SealedSsns, StoreError, Suppressions, UpdateOutcome,
};
use leadhub::transport::Transport;

/// The screening stage with its dependencies.
pub struct Validate {
    /// The configuration in effect (re-read from the table when due).
    pub config: LiveConfig,
    pub store: Arc<dyn LeadStore>,
    /// Cap usage (to leave full buyers out) and the weighted rotation's sequence.
    pub counters: Arc<dyn Counters>,
    pub dispatch_queue: Arc<dyn JobQueue>,
    /// The operator's suppression list.
    pub suppressions: Arc<dyn Suppressions>,
    /// Where ingest keeps a lead's SSN sealed until screening has decided.
    pub sealed_ssns: Arc<dyn SealedSsns>,
    /// The validate queue itself: a lead LeadSafe could not be asked about is screened again later.
    pub validate_queue: Arc<dyn JobQueue>,
    /// Outbound HTTP (LeadSafe).
    pub transport: Arc<dyn Transport>,
}

/// What screening made of a received lead.
enum Screen {
    Decided(ScreeningVerdict),
    /// LeadSafe could not be asked: screen the lead again later.
    Wait {
        check: Check,
        after: Option<std::time::Duration>,
    },
}

/// A record of the batch, read.
struct Item {
    message_id: Option<String>,
    job: Result<ValidateJob, RecordError>,
    lead: Option<LeadRecord>,
    keys: Vec<DuplicateKey>,
}

impl Validate {
    /// Screen a batch: leads sharing a duplicate key one after another in order of receipt, the others
    /// concurrently; each failed record is reported for retry.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let config = self.config.get().await;
        let mut items: Vec<Item> = join_all(
            event
                .records
                .into_iter()
                .map(|record| self.read(&config, record)),
        )
        .await;
        // In order of receipt: the lead's id sorts by when it was received.
        items.sort_by(|a, b| {
            let at = |item: &Item| item.lead.as_ref().map(|l| (l.created_at, l.id.to_string()));
            at(a).cmp(&at(b))
        });
        let keys: Vec<Vec<String>> = items
            .iter()
            .map(|item| item.keys.iter().map(|k| k.key.clone()).collect())
            .collect();
        let groups = batch::groups(&keys);
        let mut slots: Vec<Option<Item>> = items.into_iter().map(Some).collect();
        let groups: Vec<Vec<Item>> = groups
            .into_iter()
            .map(|group| group.into_iter().filter_map(|i| slots[i].take()).collect())
            .collect();
        let config = &config;
        let outcomes = join_all(groups.into_iter().map(|group| async move {
            let mut outcomes = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for item in group {
                let outcome = match item.job {
                    Err(error) => Err(error),
                    // The same lead twice in one batch (a redelivery): the later message reads what the
                    // earlier one decided.
                    Ok(job) if !seen.insert(job.lead_id.clone()) => {
                        match self.store.get_lead(&job.lead_id).await {
                            Ok(lead) => self.validate_read(config, &job, lead, &item.keys).await,
                            Err(error) => Err(error.into()),
                        }
                    }
                    Ok(job) => {
                        self.validate_read(config, &job, item.lead, &item.keys)
                            .await
                    }
                };
                outcomes.push((item.message_id, outcome));
            }
            outcomes
        }))
        .await;
        batch::report(outcomes.into_iter().flatten())
    }

    async fn read(&self, config: &Config, record: SqsMessage) -> Item {
        let message_id = record.message_id.clone();
        let job: Result<ValidateJob, RecordError> = batch::parse_body(&record);
        let lead = match &job {
            Ok(job) => match self.store.get_lead(&job.lead_id).await {
                Ok(lead) => lead,
                Err(error) => {
                    return Item {
                        message_id,
                        job: Err(error.into()),
                        lead: None,
                        keys: Vec::new(),
                    }
                }
            },
            Err(_) => None,
        };
        let keys = lead
            .as_ref()
            .filter(|lead| lead.status == LeadStatus::Received)
            .map(|lead| duplicate_keys(config, lead))
            .unwrap_or_default();
        Item {
            message_id,
            job,
            lead,
            keys,
        }
    }

    /// Screen one lead (a record handled on its own).
    pub async fn validate(&self, job: &ValidateJob) -> Result<(), RecordError> {
        let config = self.config.get().await;
        let lead = self.store.get_lead(&job.lead_id).await?;
        let keys = lead
            .as_ref()
            .map(|lead| duplicate_keys(&config, lead))
            .unwrap_or_default();
        self.validate_read(&config, job, lead, &keys).await
    }

    async fn validate_read(
        &self,
        config: &Config,
        job: &ValidateJob,
        lead: Option<LeadRecord>,
        keys: &[DuplicateKey],
    ) -> Result<(), RecordError> {
        let Some(lead) = lead else {
            // Discarded by ingest after a failed send, or expired: nothing to do.
            tracing::warn!(lead_id = %job.lead_id, "validate job for a lead that does not exist");
            return Ok(());
        };
        match lead.status {
            LeadStatus::Received => self.screen_and_route(config, lead, keys, job.attempt).await,
            // Already screened: the first attempts may not all have been queued (a send failed after the
            // write that planned them), whatever the lead's status since (a broadcast lead another buyer
            // took is delivered with the others still pending): queue them again. The sealed SSN may have
            // outlived the decision (the delete after it failed): delete it now.
            _ => {
                self.forget_ssn(&lead).await?;
                self.send_pending_jobs(&lead).await
            }
        }
    }

    /// Screening's verdict for a received lead, its duplicate claims made.
    async fn screen(
        &self,
        config: &Config,
        lead: &LeadRecord,
        keys: &[DuplicateKey],
        consumer: &[(ContactField, String)],
        now: DateTime<Utc>,
    ) -> Result<Screen, RecordError> {
        let policy = config.screening.for_vertical(lead.vertical);
        let mut checks: Vec<Check> = Vec::new();
        if let Some(rule) = &policy.duplicates {
            let found = screening::claim_duplicates(
                self.store.as_ref(),
                keys,
                lead,
                config.lead_retention,
                now,
            )
            .await?;
            match screening::duplicate_check(rule, &found) {
                Ok(check) => checks.push(check),
                Err(refusal) => {
                    return Ok(Screen::Decided(ScreeningVerdict::Rejected {
                        checks,
                        refusal,
                    }))
                }
            }
        }
        if policy.suppression {
            match screening::check_suppression(
                self.suppressions.as_ref(),
                lead,
                consumer,
                now.date_naive(),
            )
            .await?
            {
                Ok(check) => checks.push(check),
                Err(refusal) => {
                    return Ok(Screen::Decided(ScreeningVerdict::Rejected {
                        checks,
                        refusal,
                    }))
                }
            }
        }
        let mut amber_only = false;
        if let Some(leadsafe) = &policy.leadsafe {
            let step = if lead.test {
                None
            } else if lead.ssn_hash.is_none() {
                checks.push(Check::new(
                    "leadsafe_not_asked",
                    "no SSN was given, so LeadSafe was not asked",
                ));
                None
            } else {
                Some(self.ask_leadsafe(config, leadsafe, lead, now).await?)
            };
            match step {
                None => {}
                Some(LeadSafeStep::Pass {
                    check,
                    amber_only: amber,
                }) => {
                    checks.push(check);
                    amber_only = amber;
                }
                Some(LeadSafeStep::Reject(refusal)) => {
                    return Ok(Screen::Decided(ScreeningVerdict::Rejected {
                        checks,
                        refusal,
                    }))
                }
                Some(LeadSafeStep::Wait { check, after, .. }) => {
                    return Ok(Screen::Wait { check, after })
                }
            }
        }
        Ok(Screen::Decided(ScreeningVerdict::Passed {
            checks,
            amber_only,
        }))
    }

    /// LeadSafe's step for a lead with an SSN: its sealed copy opened and searched.
    async fn ask_leadsafe(
        &self,
        config: &Config,
        policy: &LeadSafePolicy,
        lead: &LeadRecord,
        now: DateTime<Utc>,
    ) -> Result<LeadSafeStep, RecordError> {
        // The configuration check makes a missing [screening.leadsafe] or hub.ssn_key impossible here.
        let (Some(settings), Some(sealer)) = (&config.screening.leadsafe, &config.ssn_sealer)
        else {
            return Ok(screening::leadsafe_without_ssn(policy, SsnMissing::Gone));
        };
        let sealed = match self.sealed_ssns.get_sealed_ssn(&lead.id, now).await {
            Ok(Some(sealed)) => sealed,
            Ok(None) => {
                tracing::warn!(lead_id = %lead.id, "no sealed SSN (expired, or never kept): LeadSafe cannot be asked");
                return Ok(screening::leadsafe_without_ssn(policy, SsnMissing::Gone));
            }
            // An item that does not read (a form this build does not know) never will: decide now.
            Err(StoreError::Corrupt(what)) => {
                tracing::error!(lead_id = %lead.id, problem = %what, "the sealed SSN item could not be read");
                return Ok(screening::leadsafe_without_ssn(
                    policy,
                    SsnMissing::Unreadable,
                ));
            }
            Err(error) => return Err(error.into()),
        };
        let ssn = match sealer.open(lead.id.as_str(), &sealed) {
            Ok(ssn) => ssn,
            Err(error) => {
                tracing::error!(lead_id = %lead.id, %error, "the sealed SSN could not be opened (was hub.ssn_key changed?)");
                return Ok(screening::leadsafe_without_ssn(
                    policy,
                    SsnMissing::Unreadable,
                ));
            }
        };
        let answer =
            screening::ask_leadsafe(settings, policy, self.transport.as_ref(), ssn.expose(), now)
                .await;
        match &answer {
            Ok(answer) => {
                tracing::info!(lead_id = %lead.id, result = %answer.result, "LeadSafe answered")
            }
            Err(screening::LeadSafeFailure::Unauthorized) => {
                tracing::error!(lead_id = %lead.id, alarm = "leadsafe_credentials_refused", "LeadSafe refused the hub's credentials: check [screening.leadsafe] api_key and client_secret; leads wait in received")
            }
            Err(screening::LeadSafeFailure::Unavailable { what, .. }) => {
                tracing::warn!(lead_id = %lead.id, problem = %what, "LeadSafe could not be asked")
            }
        }
        Ok(screening::leadsafe_step(policy, answer))
    }

    /// Delete the lead's sealed SSN once screening has decided (only its keyed hash remains). A copy not
    /// deleted here is deleted by the next delivery of the job, and expires by TTL in any case.
    async fn forget_ssn(&self, lead: &LeadRecord) -> Result<(), RecordError> {
        if lead.ssn_hash.is_some() {
            self.sealed_ssns.delete_sealed_ssn(&lead.id).await?;
        }
        Ok(())
    }

    /// LeadSafe could not be asked: the lead stays `received` and is screened again after a backoff (its
    /// duplicate claims stay its own). The first wait is on the timeline.
    async fn wait(
        &self,
        config: &Config,
        lead: &LeadRecord,
        attempt: u32,
        check: &Check,
        after: Option<std::time::Duration>,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let delay = leadhub::delivery::retry_delay(&config.retry, attempt, after, rand::random())
            .min(leadhub::queue::MAX_DELAY);
        let job = ValidateJob {
            lead_id: lead.id.clone(),
            attempt: attempt.saturating_add(1),
        };
        let body = serde_json::to_string(&job).map_err(|error| {
            RecordError::Malformed(format!("a validate job did not serialise: {error}"))
        })?;
        // Queued first, so that a failed send (the record is retried) does not leave the wait on the
        // timeline twice.
        self.validate_queue.send(&body, delay).await?;
        if attempt == 1 {
            let ports = Ports {
                store: self.store.as_ref(),
                queue: None,
                counters: None,
                dead_deliveries: None,
                subscribers: None,
                tallies: None,
            };
            lifecycle::commit(ports, &lead.id, &lifecycle::screening_delayed(check, now)).await?;
        }
        tracing::info!(lead_id = %lead.id, attempt, delay_ms = delay.as_millis() as u64, "screening will be tried again");
        Ok(())
    }

    async fn screen_and_route(
        &self,
        config: &Config,
        lead: LeadRecord,
        keys: &[DuplicateKey],
        attempt: u32,
    ) -> Result<(), RecordError> {
        let now = now();
        // Who the consumer is (keyed hashes of the lead's emails and phones), read once for the
        // suppression list and the sold-consumer marks.
        let consumer = screening::consumer_hashes(&config.hasher, &lead);
        let verdict = match self.screen(config, &lead, keys, &consumer, now).await? {
            Screen::Decided(verdict) => verdict,
            Screen::Wait { check, after } => {
                return self.wait(config, &lead, attempt, &check, after, now).await
            }
        };
        if let ScreeningVerdict::Rejected { refusal, .. } = &verdict {
            tracing::info!(lead_id = %lead.id, code = %refusal.code, "lead rejected by screening");
        }
        let usage = self.cap_usage(config, &lead, now).await?;
        let strategy = config.routing.get(&lead.vertical).map(|s| s.strategy);
        let sequence = if lifecycle::takes_a_rotation_turn(&lead, strategy) {
            self.counters
                .next_sequence(&sequence_key(lead.vertical))
                .await?
        } else {
            0
        };
        let screened = Screened {
            amber_only: matches!(
                verdict,
                ScreeningVerdict::Passed {
                    amber_only: true,
                    ..
                }
            ),
            // Only a lead that may be offered (or a test lead, which shows its plan) needs them.
            sold_to: if verdict.is_passed() || lead.test {
                self.sold_to(config, &lead, &consumer, now).await?
            } else {
                Default::default()
            },
        };
        let plan = routing::route_screened(config, &lead, &usage, &screened, now, sequence);
        if verdict.is_passed() {
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
            subscribers: Some(config),
            tallies: None,
        };
        let outcome = lifecycle::commit(ports, &lead.id, &transition).await?;
        if !verdict.is_passed()
            && !lead.test
            && matches!(outcome, UpdateOutcome::Applied(_) | UpdateOutcome::NotFound)
        {
            // Refused (by this decision, not another delivery's): its duplicate claims must not hold other
            // leads back. A claim not given back here is cleared by the next lead that meets it.
            screening::release(self.store.as_ref(), keys, &lead.id).await;
        }
        // Screening has decided (here or in another delivery of the message): only the keyed hash of the
        // SSN remains.
        self.forget_ssn(&lead).await?;
        match outcome {
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

    /// The lead's possible buyers with `skip_if_sold_within_days` that bought its consumer within it.
    async fn sold_to(
        &self,
        config: &Config,
        lead: &LeadRecord,
        consumer: &[(ContactField, String)],
        now: DateTime<Utc>,
    ) -> Result<std::collections::BTreeSet<leadhub::ids::DestinationId>, RecordError> {
        let mut sold = std::collections::BTreeSet::new();
        let watching: Vec<_> = config
            .destinations_for(lead.vertical)
            .filter(|d| d.routing.filters.sold_within_days.is_some())
            .collect();
        if watching.is_empty() {
            return Ok(sold);
        }
        for destination in watching {
            if screening::sold_before(
                self.store.as_ref(),
                consumer,
                &lead.id,
                &destination.id,
                now,
            )
            .await?
            {
                sold.insert(destination.id.clone());
            }
        }
        Ok(sold)
    }

    /// How full the caps of the lead's possible buyers are now, by (destination, window key).
    async fn cap_usage(
        &self,
        config: &Config,
        lead: &LeadRecord,
        now: DateTime<Utc>,
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

/// The duplicate claims the lead's vertical asks of it (none when it has no duplicate rule).
fn duplicate_keys(config: &Config, lead: &LeadRecord) -> Vec<DuplicateKey> {
    config
        .screening
        .for_vertical(lead.vertical)
        .duplicates
        .map(|rule| screening::duplicate_keys(&config.hasher, &rule, lead))
        .unwrap_or_default()
}
