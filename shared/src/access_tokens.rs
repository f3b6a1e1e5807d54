//! A buyer's OAuth access token as every dispatcher shares it: read from the store ([`BuyerTokens`]),
//! renewed with the refresh token ahead of its expiry or upon a 401, one refresher at a time (the store's
//! refresh lease); the others wait for the new token and read it.
//!
//! Only Lofty destinations with a `refresh_token` credential renew their tokens ([`renews_tokens`]). The
//! configured `access_token` and `refresh_token` are the first ones; once a refresh is stored, the stored
//! token wins, until the operator configures other credentials (the stored token remembers a fingerprint
//! of the configured ones it descends from, its `seed`).
//!
//! A token is renewed at its `refresh_after`: a fifth of its lifetime before its expiry, at most
//! [`MAX_RENEW_MARGIN`] before. A token without a known expiry (the configured one) is used until a 401.
//! Tokens and refresh tokens are credentials: never logged, never in an error.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Secret;
use crate::connectors::lofty::{self, RefreshError};
use crate::connectors::{ConnectorKind, Destination};
use crate::store::{BuyerToken, BuyerTokens, StoreError};
use crate::transport::Transport;

/// The most a token is renewed ahead of its expiry.
pub const MAX_RENEW_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long a refresher holds the lease: longer than its call to the token endpoint.
pub const REFRESH_LEASE: Duration = Duration::from_secs(30);
/// How long a dispatcher waits for another's refresh before giving up for now.
pub const MAX_REFRESH_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// The token a delivery uses: its value and the stored version it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentToken {
    pub access_token: Secret,
    pub version: u64,
    refresh_after: Option<DateTime<Utc>>,
    refresh_token: Option<Secret>,
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// An operator must act: the refresh token was refused, or there is none.
    #[error("{0}")]
    Refused(String),
    /// A passing problem: the token endpoint or the store could not be reached, or another dispatcher's
    /// refresh has not finished in time.
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for TokenError {
    fn from(error: StoreError) -> Self {
        TokenError::Unavailable(format!("the token store failed: {error}"))
    }
}

/// Whether `destination` renews its access token (Lofty with a `refresh_token` credential).
pub fn renews_tokens(destination: &Destination) -> bool {
    destination.connector.kind() == ConnectorKind::Lofty
        && destination.credential(lofty::REFRESH_TOKEN).is_some()
}

/// The fingerprint of the configured credentials (not reversible; a prefix of their SHA-256).
fn seed(destination: &Destination) -> String {
    let part = |name: &str| {
        destination
            .credential(name)
            .map(|s| s.expose().to_owned())
            .unwrap_or_default()
    };
    let digest = crate::crypto::sha256_hex(
        format!(
            "{}\n{}",
            part(lofty::ACCESS_TOKEN),
            part(lofty::REFRESH_TOKEN)
        )
        .as_bytes(),
    );
    digest[..16].to_owned()
}

/// When a token issued at `now` expiring at `expires_at` is renewed.
pub fn refresh_after(now: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
    let lifetime = (expires_at - now).to_std().unwrap_or(Duration::ZERO);
    let margin = (lifetime / 5).min(MAX_RENEW_MARGIN);
    expires_at - chrono::Duration::from_std(margin).unwrap_or_default()
}

/// The tokens of the destinations that renew them: the store, the transport to the token endpoint, and
/// who this dispatcher is (the lease's holder).
pub struct AccessTokens<'a> {
    pub store: &'a dyn BuyerTokens,
    pub transport: &'a dyn Transport,
    pub holder: &'a str,
}

impl AccessTokens<'_> {
    /// The token in effect: the stored one when it descends from the configured credentials, else those.
    async fn in_effect(&self, destination: &Destination) -> Result<CurrentToken, TokenError> {
        let stored = self.store.buyer_token(destination.id.as_str()).await?;
        let version = stored.as_ref().map_or(0, |s| s.version);
        let seed = seed(destination);
        match stored.and_then(|s| s.token).filter(|t| t.seed == seed) {
            Some(token) => Ok(CurrentToken {
                access_token: token.access_token,
                version,
                refresh_after: token.refresh_after,
                refresh_token: token.refresh_token,
            }),
            None => Ok(CurrentToken {
                access_token: destination
                    .credential(lofty::ACCESS_TOKEN)
                    .cloned()
                    .ok_or_else(|| {
                        TokenError::Refused("the destination has no access_token".into())
                    })?,
                version,
                refresh_after: None,
                refresh_token: destination.credential(lofty::REFRESH_TOKEN).cloned(),
            }),
        }
    }

    /// The token to call with now: renewed first when it is due.
    pub async fn current(
        &self,
        destination: &Destination,
        now: DateTime<Utc>,
    ) -> Result<CurrentToken, TokenError> {
        let current = self.in_effect(destination).await?;
        match current.refresh_after {
            Some(due) if due <= now => self.renewed(destination, &current).await,
            _ => Ok(current),
        }
    }

    /// A token newer than `stale` (refused by a 401, or due): another dispatcher's fresh one, or one this
    /// dispatcher gets with the refresh token while it holds the lease.
    pub async fn renewed(
        &self,
        destination: &Destination,
        stale: &CurrentToken,
    ) -> Result<CurrentToken, TokenError> {
        let id = destination.id.as_str();
        let deadline = tokio::time::Instant::now() + MAX_REFRESH_WAIT;
        loop {
            let now = crate::lead::now();
            let current = self.in_effect(destination).await?;
            if current.access_token != stale.access_token {
                return Ok(current);
            }
            let lease_until = now + chrono::Duration::from_std(REFRESH_LEASE).unwrap_or_default();
            if self
                .store
                .take_refresh_lease(id, current.version, self.holder, lease_until, now)
                .await?
            {
                let result = self.refresh(destination, &current, now).await;
                match result {
                    Ok(Some(token)) => return Ok(token),
                    // The lease ran out under us and another took over: read what it stored.
                    Ok(None) => {}
                    Err(error) => {
                        if let Err(release) =
                            self.store.release_refresh_lease(id, self.holder).await
                        {
                            tracing::warn!(destination = id, error = %release, "could not release the token refresh lease");
                        }
                        return Err(error);
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TokenError::Unavailable(
                    "another dispatcher's token refresh has not finished".into(),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Spend the refresh token (the lease held) and store what the token endpoint gives. `None`: the lease
    /// was lost before the new token could be stored.
    async fn refresh(
        &self,
        destination: &Destination,
        current: &CurrentToken,
        now: DateTime<Utc>,
    ) -> Result<Option<CurrentToken>, TokenError> {
        let id = destination.id.as_str();
        let refresh_token = current.refresh_token.as_ref().ok_or_else(|| {
            TokenError::Refused("there is no refresh token to renew the access token with".into())
        })?;
        let request = lofty::refresh_request(destination, refresh_token.expose())
            .map_err(|error| TokenError::Refused(error.to_string()))?;
        let response = self
            .transport
            .send(&request, destination.timeout)
            .await
            .map_err(|_| {
                TokenError::Unavailable("Lofty's token endpoint could not be reached".into())
            })?;
        let info = lofty::read_token_info(&response).map_err(|error| match error {
            RefreshError::Refused(_) => TokenError::Refused(error.to_string()),
            RefreshError::Unavailable(_) => TokenError::Unavailable(error.to_string()),
        })?;
        let token = BuyerToken {
            access_token: Secret::new(info.token),
            expires_at: info.expires_at,
            refresh_after: info.expires_at.map(|at| refresh_after(now, at)),
            // A token info without a new refresh token leaves the old one in use (RFC 6749, 6).
            refresh_token: info
                .refresh_token
                .map(Secret::new)
                .or_else(|| current.refresh_token.clone()),
            refresh_expires_at: info.refresh_expires_at,
            seed: seed(destination),
        };
        if !self
            .store
            .put_refreshed(id, &token, current.version, self.holder)
            .await?
        {
            return Ok(None);
        }
        tracing::info!(
            destination = id,
            version = current.version + 1,
            "buyer access token renewed"
        );
        Ok(Some(CurrentToken {
            access_token: token.access_token,
            version: current.version + 1,
            refresh_after: token.refresh_after,
            refresh_token: token.refresh_token,
        }))
    }
}

/// `destination` with `token` as its access token (what the connector sends).
pub fn with_access_token(destination: &Destination, token: &CurrentToken) -> Destination {
    let mut destination = destination.clone();
    destination
        .credentials
        .insert(lofty::ACCESS_TOKEN.to_owned(), token.access_token.clone());
    destination
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_a_fifth_of_their_life_early_at_most_five_minutes() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        let secs = chrono::Duration::seconds;
        assert_eq!(refresh_after(now, now + secs(10)), now + secs(8));
        assert_eq!(refresh_after(now, now + secs(3600)), now + secs(3300));
        assert_eq!(refresh_after(now, now - secs(5)), now - secs(5));
    }
}
