//! The `BuyerTokens` port: a buyer's current OAuth access token (with its expiry and the refresh token that
//! renews it), kept in the store so that every dispatcher uses and renews the same one, and the lease that
//! lets one dispatcher at a time spend the refresh token (a refresh token is used once: two refreshers
//! would leave one of them, or both, with a dead token).
//!
//! One entry per destination, with a `version` that goes up by one with each refresh. The refresh protocol
//! ([`crate::access_tokens`]): read the entry; [`BuyerTokens::take_refresh_lease`] (only while no live
//! lease is held, and only on the version read); call the buyer's token endpoint; [`BuyerTokens::
//! put_refreshed`] (only by the lease's holder, on the version it leased), which also ends the lease; or
//! [`BuyerTokens::release_refresh_lease`] when the refresh failed. Others wait, then read the new token.
//!
//! A stored token is a credential: its `Debug` never shows it, and no error repeats it. At rest it is in the
//! table, which DynamoDB encrypts (and only the functions' role reads).
//!
//! Adapters: [`MemoryStore`](super::memory::MemoryStore) and [`DynamoStore`](super::dynamodb::DynamoStore).
//! Both pass the same contract suite (`shared/tests/it/buyer_tokens_contract.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::config::Secret;

/// A destination's access token as the buyer issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerToken {
    pub access_token: Secret,
    /// When the buyer said it expires (`None`: not told, e.g. the token configured by the operator).
    pub expires_at: Option<DateTime<Utc>>,
    /// When dispatchers renew it, ahead of its expiry.
    pub refresh_after: Option<DateTime<Utc>>,
    pub refresh_token: Option<Secret>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// A fingerprint of the configured credentials this token descends from: when the operator configures
    /// new ones, the stored token is stale.
    pub seed: String,
}

/// A destination's entry: its token (none before the first refresh), version and refresh lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub token: Option<BuyerToken>,
    /// 0 before any write; one more with each stored refresh.
    pub version: u64,
    /// Who holds the refresh lease, until when.
    pub lease: Option<(String, DateTime<Utc>)>,
}

#[async_trait]
pub trait BuyerTokens: Send + Sync {
    /// The destination's entry; `None` when it has none. A strongly consistent read.
    async fn buyer_token(&self, destination: &str) -> Result<Option<StoredToken>, StoreError>;

    /// Take the refresh lease for `holder` until `until`, when the entry is at `version` (0: no entry
    /// yet) and no lease is held past `now` (the holder's own included). `false`: not taken.
    async fn take_refresh_lease(
        &self,
        destination: &str,
        version: u64,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Store `token` as version `version + 1` and end the lease, when `holder` holds the lease on
    /// `version`. `false`: it does not (its lease ran out and another took over); nothing is written.
    async fn put_refreshed(
        &self,
        destination: &str,
        token: &BuyerToken,
        version: u64,
        holder: &str,
    ) -> Result<bool, StoreError>;

    /// End `holder`'s lease (a refresh that failed); a lease held by another is left alone.
    async fn release_refresh_lease(
        &self,
        destination: &str,
        holder: &str,
    ) -> Result<(), StoreError>;
}
