//! The `NotificationLog` port: what dispatch keeps about partner notifications that could not be delivered,
//! for operators (`leadhub-admin notifications failed|replay|enable`).
//!
//! - A **failed notification** is one that will not be tried again on its own: its attempts are exhausted,
//!   its endpoint is disabled, or it cannot be sent as configured (no secret, no URL, partner removed). It
//!   is kept with the job as queued (payload and `webhook-id`, so that a replay is the same message) until
//!   replayed or until it expires (`[notifications] keep_failed_days`). The payload holds no personal data
//!   beyond the partner's own reference (see [`crate::notifications`]).
//! - A **disabled endpoint** is a partner's URL that answered `410 Gone`: nothing is sent to it until an
//!   operator enables the partner's endpoints again. Never expires.
//!
//! Adapters: [`MemoryStore`](super::memory::MemoryStore) and [`DynamoStore`](super::dynamodb::DynamoStore)
//! (its module docs give the items). Both pass the same contract suite
//! (`shared/tests/it/notifications_contract.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::notifications::NotifyJob;

/// A notification that is no longer tried on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedNotification {
    /// The job as last queued (`attempt` is the last attempt made; 0 when none was made).
    pub job: NotifyJob,
    /// Why, as a stable code: `exhausted`, `endpoint_disabled`, `gone`, `no_secret`, `no_url`,
    /// `partner_removed`, `bad_url`.
    pub code: String,
    /// Why, in words (no URL, no personal data).
    pub reason: String,
    pub failed_at: DateTime<Utc>,
    /// When it is forgotten.
    pub expires_at: DateTime<Utc>,
}

/// A partner endpoint that answered 410 Gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledEndpoint {
    pub partner_id: String,
    /// The URL (shown to operators only: it may carry the partner's own token).
    pub url: String,
    pub disabled_at: DateTime<Utc>,
    /// The notification whose attempt was answered 410.
    pub webhook_id: String,
}

#[async_trait]
pub trait NotificationLog: Send + Sync {
    /// Keep `failed` (one per `webhook-id`: keeping it again replaces it).
    async fn record_failed(&self, failed: &FailedNotification) -> Result<(), StoreError>;

    /// Failed notifications, newest first (ties by webhook id, descending), of one partner or all, at most
    /// `limit`. Expired ones are not listed.
    async fn failed(
        &self,
        partner_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FailedNotification>, StoreError>;

    /// One failed notification by its `webhook-id` (expired: none).
    async fn failed_notification(
        &self,
        webhook_id: &str,
    ) -> Result<Option<FailedNotification>, StoreError>;

    /// Forget a failed notification (replayed). Removing what is not there is a no-op.
    async fn remove_failed(&self, webhook_id: &str) -> Result<(), StoreError>;

    /// Disable an endpoint (again: the later time is kept).
    async fn disable_endpoint(&self, endpoint: &DisabledEndpoint) -> Result<(), StoreError>;

    /// Whether `url` of `partner_id` is disabled.
    async fn disabled_endpoint(
        &self,
        partner_id: &str,
        url: &str,
    ) -> Result<Option<DisabledEndpoint>, StoreError>;

    /// Disabled endpoints of one partner or all, by partner then URL.
    async fn disabled_endpoints(
        &self,
        partner_id: Option<&str>,
    ) -> Result<Vec<DisabledEndpoint>, StoreError>;

    /// Enable every disabled endpoint of `partner_id`; the answer is how many there were.
    async fn enable_endpoints(&self, partner_id: &str) -> Result<usize, StoreError>;
}
