//! The `UnparsedCallbacks` port: buyer callbacks the hub could not read as a verdict (not JSON, a JSON body
//! of an unknown shape, a non-JSON content type, too large), kept so that no buyer's word is lost: an
//! operator lists them (`leadhub-admin callbacks unparsed`) and acts on them.
//!
//! Only callbacks whose URL token verified are kept (a forged one is refused before anything is read). The
//! body is kept as it came, up to [`MAX_KEPT_BODY_BYTES`] (its full size is recorded): it may hold PII, so it
//! is never logged, never echoed to the buyer, and shown by the admin command only when asked
//! (`--show-body`, first bytes). Each callback expires [`UNPARSED_RETENTION_DAYS`] after it arrived (the
//! DynamoDB item carries the table's TTL).
//!
//! Adapters: [`MemoryStore`](super::memory::MemoryStore) and [`DynamoStore`](super::dynamodb::DynamoStore)
//! (its module docs give the item). Both pass the same contract suite
//! (`shared/tests/it/unparsed_callbacks_contract.rs`).

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::lead::LeadId;

/// The most of a body that is kept.
pub const MAX_KEPT_BODY_BYTES: usize = 64 * 1024;

/// The longest content type kept (longer ones are cut).
pub const MAX_CONTENT_TYPE_CHARS: usize = 200;

/// How long an unparsed callback is kept.
pub const UNPARSED_RETENTION_DAYS: i64 = 30;

/// An unparsed callback's id: `ucb_` and 26 Crockford base32 characters, time-ordered and unguessable like a
/// lead id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UnparsedCallbackId(String);

impl UnparsedCallbackId {
    pub const PREFIX: &'static str = "ucb_";

    /// A new id for a callback received at `now`.
    pub fn generate(now: DateTime<Utc>) -> Self {
        UnparsedCallbackId(crate::lead::time_ordered_id(Self::PREFIX, now))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not an unparsed callback's id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an unparsed callback's id is `ucb_` followed by 26 characters of Crockford base32")]
pub struct InvalidUnparsedCallbackId;

impl FromStr for UnparsedCallbackId {
    type Err = InvalidUnparsedCallbackId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s
            .strip_prefix(Self::PREFIX)
            .ok_or(InvalidUnparsedCallbackId)?
            .to_ascii_uppercase();
        if crate::lead::is_time_ordered_body(&body) {
            Ok(UnparsedCallbackId(format!("{}{body}", Self::PREFIX)))
        } else {
            Err(InvalidUnparsedCallbackId)
        }
    }
}

impl TryFrom<String> for UnparsedCallbackId {
    type Error = InvalidUnparsedCallbackId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<UnparsedCallbackId> for String {
    fn from(id: UnparsedCallbackId) -> String {
        id.0
    }
}

impl fmt::Display for UnparsedCallbackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A callback kept because its body could not be read as a verdict.
#[derive(Clone, PartialEq, Eq)]
pub struct UnparsedCallback {
    pub id: UnparsedCallbackId,
    /// When it arrived (to the millisecond).
    pub received_at: DateTime<Utc>,
    /// The destination in its URL.
    pub destination: String,
    /// The lead its token names (`None` for an intake that has no per-lead token; the verdict callback
    /// always has one).
    pub lead_id: Option<LeadId>,
    /// Its `Content-Type`, as sent (control characters dropped, at most [`MAX_CONTENT_TYPE_CHARS`]);
    /// `None` when it had none.
    pub content_type: Option<String>,
    /// The body's full size in bytes.
    pub size: u64,
    /// The body as it came, its first [`MAX_KEPT_BODY_BYTES`] at most. May hold PII: never log it.
    pub body: Vec<u8>,
    /// Why it was not read: a stable code (`not_json`, `unknown_shape`, `unsupported_media_type`,
    /// `too_large`).
    pub problem: String,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for UnparsedCallback {
    /// Everything but the body, which may hold PII: its length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnparsedCallback")
            .field("id", &self.id)
            .field("received_at", &self.received_at)
            .field("destination", &self.destination)
            .field("lead_id", &self.lead_id)
            .field("content_type", &self.content_type)
            .field("size", &self.size)
            .field("body", &format_args!("{} bytes kept", self.body.len()))
            .field("problem", &self.problem)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl UnparsedCallback {
    /// The callback to keep for a body `body` sent with `content_type` to `destination`'s callback URL of
    /// `lead_id`, received at `now`: a fresh id, the body cut to [`MAX_KEPT_BODY_BYTES`], the content type
    /// cleaned, expiring [`UNPARSED_RETENTION_DAYS`] later.
    pub fn new(
        destination: &str,
        lead_id: Option<LeadId>,
        content_type: Option<&str>,
        body: &[u8],
        problem: &str,
        now: DateTime<Utc>,
    ) -> Self {
        UnparsedCallback {
            id: UnparsedCallbackId::generate(now),
            received_at: now,
            destination: destination.to_owned(),
            lead_id,
            content_type: content_type.map(|value| {
                value
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_CONTENT_TYPE_CHARS)
                    .collect()
            }),
            size: u64::try_from(body.len()).unwrap_or(u64::MAX),
            body: body[..body.len().min(MAX_KEPT_BODY_BYTES)].to_vec(),
            problem: problem.to_owned(),
            expires_at: now
                .checked_add_signed(chrono::Duration::days(UNPARSED_RETENTION_DAYS))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// Whether only part of the body was kept.
    pub fn truncated(&self) -> bool {
        u64::try_from(self.body.len()).unwrap_or(u64::MAX) < self.size
    }
}

/// Callbacks kept unparsed, listed newest first.
#[async_trait]
pub trait UnparsedCallbacks: Send + Sync {
    /// Keep `callback` until its `expires_at` (replacing one of the same id).
    async fn put_unparsed(&self, callback: &UnparsedCallback) -> Result<(), StoreError>;

    /// The callbacks received at or after `since` (only `destination`'s when given) not expired at `now`,
    /// newest first (ties: by id, descending), at most `limit`. On DynamoDB, read from an index: a
    /// callback kept a moment ago may not be listed yet.
    async fn list_unparsed(
        &self,
        since: DateTime<Utc>,
        destination: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<UnparsedCallback>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_callback_is_bounded_and_its_debug_hides_the_body() {
        let now = crate::lead::now();
        let body = vec![b'x'; MAX_KEPT_BODY_BYTES + 10];
        let kept = UnparsedCallback::new(
            "ntherm",
            None,
            Some("text/plain\r\nX-Injected: 1"),
            &body,
            "not_json",
            now,
        );
        assert_eq!(kept.body.len(), MAX_KEPT_BODY_BYTES);
        assert_eq!(kept.size, (MAX_KEPT_BODY_BYTES + 10) as u64);
        assert!(kept.truncated());
        assert_eq!(
            kept.content_type.as_deref(),
            Some("text/plainX-Injected: 1")
        );
        assert_eq!(
            kept.expires_at - now,
            chrono::Duration::days(UNPARSED_RETENTION_DAYS)
        );
        assert!(kept.id.as_str().starts_with("ucb_"));
        assert_eq!(
            kept.id.as_str().parse::<UnparsedCallbackId>(),
            Ok(kept.id.clone())
        );
        assert!("lead_01JD0000000000000000000000"
            .parse::<UnparsedCallbackId>()
            .is_err());

        let secret = UnparsedCallback::new(
            "ntherm",
            None,
            None,
            b"{\"email\":\"jane@example.com\"}",
            "unknown_shape",
            now,
        );
        assert!(!secret.truncated());
        let debug = format!("{secret:?}");
        assert!(!debug.contains("jane"), "{debug}");
        assert!(debug.contains("28 bytes kept"), "{debug}");
    }
}
