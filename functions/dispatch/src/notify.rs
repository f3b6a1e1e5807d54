//! Partner notifications: one attempt per job (see [`leadhub::notifications`] for what is sent and why).
//!
//! A job due later than the queue can delay (15 minutes) is sent on again with the remaining wait. The
//! partner's current settings decide the secret and, for leads without a URL of their own, where it goes;
//! the URL is checked by the SSRF guard again (and the transport's resolver refuses a name that resolves to
//! a non-public address). 2xx: done. 410: the endpoint is disabled and the notification kept as failed.
//! Anything else: the next attempt on the retry schedule, with the same `webhook-id` and body; after the
//! last, kept as failed. Logs carry ids and codes only: never the URL, the body or a secret.

use chrono::{DateTime, Utc};

use leadhub::batch::RecordError;
use leadhub::delivery::DispatchJob;
use leadhub::lifecycle::ScheduledJob;
use leadhub::notifications::{self, Answer, NotifyJob};
use leadhub::queue::MAX_DELAY;
use leadhub::store::{DisabledEndpoint, FailedNotification};

use crate::Dispatch;

impl Dispatch {
    pub(crate) async fn notify(&self, job: &NotifyJob) -> Result<(), RecordError> {
        let now = leadhub::lead::now();
        if let Some(wait) = job
            .not_before
            .and_then(|at| (at - now).to_std().ok())
            .filter(|wait| !wait.is_zero())
        {
            return self.send(notify_job(job.clone(), wait)).await;
        }
        let config = self.config.current();
        let Some(partner) = config.partner(&job.partner_id) else {
            return self
                .give_up(
                    job,
                    "partner_removed",
                    "the partner is no longer configured",
                    now,
                )
                .await;
        };
        let subscription = &partner.notifications;
        if subscription.secrets.is_empty() {
            return self
                .give_up(
                    job,
                    "no_secret",
                    "the partner has no webhook_secret to sign with",
                    now,
                )
                .await;
        }
        let Some(raw) = job.url.clone().or_else(|| {
            subscription
                .callback_url
                .as_ref()
                .map(|url| url.to_string())
        }) else {
            return self
                .give_up(job, "no_url", "the partner has no callback_url", now)
                .await;
        };
        let Ok(url) = leadhub::ssrf::check_url(&raw, config.url_policy) else {
            return self
                .give_up(
                    job,
                    "bad_url",
                    "the callback URL is not a public http(s) URL",
                    now,
                )
                .await;
        };
        if self
            .notifications
            .disabled_endpoint(&job.partner_id, url.as_str())
            .await?
            .is_some()
        {
            return self
                .give_up(
                    job,
                    "endpoint_disabled",
                    "the endpoint answered 410 Gone and is disabled until an operator enables it",
                    now,
                )
                .await;
        }
        let body = serde_json::to_vec(&job.payload).map_err(|error| {
            RecordError::Malformed(format!("a notification did not serialise: {error}"))
        })?;
        let request = notifications::request(
            url.clone(),
            &job.webhook_id,
            body,
            &subscription.secrets,
            now.timestamp(),
        );
        let answer = self
            .partner_transport
            .send(&request, config.notifications.timeout)
            .await;
        let lead_id = job.lead_id();
        let event = job.payload.event.as_str();
        match notifications::classify(&answer) {
            Answer::Delivered => {
                tracing::info!(%lead_id, partner_id = %job.partner_id, webhook_id = %job.webhook_id, event, attempt = job.attempt, "partner notified");
                Ok(())
            }
            Answer::Gone => {
                tracing::warn!(%lead_id, partner_id = %job.partner_id, webhook_id = %job.webhook_id, event, attempt = job.attempt, "partner endpoint answered 410 Gone: disabled");
                self.notifications
                    .disable_endpoint(&DisabledEndpoint {
                        partner_id: job.partner_id.clone(),
                        url: url.to_string(),
                        disabled_at: now,
                        webhook_id: job.webhook_id.clone(),
                    })
                    .await?;
                self.give_up(
                    job,
                    "gone",
                    "the endpoint answered 410 Gone: it is disabled until an operator enables it",
                    now,
                )
                .await
            }
            Answer::Retry { code, reason } => {
                match config
                    .notifications
                    .schedule
                    .delay_after(job.attempt, rand::random())
                {
                    Some(wait) => {
                        tracing::info!(%lead_id, partner_id = %job.partner_id, webhook_id = %job.webhook_id, event, attempt = job.attempt, %code, delay_ms = wait.as_millis() as u64, "partner notification will be retried");
                        let next = NotifyJob {
                            attempt: job.attempt + 1,
                            not_before: Some(
                                now + chrono::Duration::from_std(wait)
                                    .unwrap_or(chrono::Duration::MAX),
                            ),
                            ..job.clone()
                        };
                        self.send(notify_job(next, wait)).await
                    }
                    None => {
                        let reason = format!("gave up after {} attempts: {reason}", job.attempt);
                        self.give_up(job, "exhausted", &reason, now).await
                    }
                }
            }
        }
    }

    /// Keep `job` as failed (for `leadhub-admin notifications failed|replay`).
    async fn give_up(
        &self,
        job: &NotifyJob,
        code: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        tracing::warn!(lead_id = %job.lead_id(), partner_id = %job.partner_id, webhook_id = %job.webhook_id, event = %job.payload.event, attempt = job.attempt, code, "partner notification failed: kept for replay");
        let keep = chrono::Duration::from_std(self.config.current().notifications.keep_failed)
            .unwrap_or(chrono::Duration::days(30));
        self.notifications
            .record_failed(&FailedNotification {
                job: job.clone(),
                code: code.to_owned(),
                reason: reason.to_owned(),
                failed_at: now,
                expires_at: now + keep,
            })
            .await?;
        Ok(())
    }
}

/// `job` on the queue after `wait` (at most the queue's longest delay: the job's `not_before` takes the rest).
fn notify_job(job: NotifyJob, wait: std::time::Duration) -> ScheduledJob {
    ScheduledJob {
        job: DispatchJob::Notify(Box::new(job)),
        delay: wait.min(MAX_DELAY),
    }
}
