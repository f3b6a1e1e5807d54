//! The configuration the handlers read: fixed (a file, the local demo), or the table's `CONFIG#active` item
//! re-read at most every `hub.config_refresh_secs`, so that an operator's `leadhub-admin config put` takes
//! effect in warm functions without a redeploy.
//!
//! A stored document that fails the check is never applied: it is logged as an error once (its key and
//! problem, never a value) and the last good configuration stays in effect. A store that cannot be read
//! leaves it in effect too, and is tried again at the next interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::config::SecretSource;
use crate::settings::Config;
use crate::store::LeadStore;

/// Where a refreshed document comes from and how it is checked.
struct Source {
    store: Arc<dyn LeadStore>,
    secrets: Arc<dyn SecretSource + Send + Sync>,
    /// `LEADHUB_PUBLIC_BASE_URL`, applied over every document's `hub.public_base_url`.
    public_base_url: Option<String>,
}

struct State {
    config: Arc<Config>,
    /// The document last read (applied or refused), so that an unchanged one is not checked again.
    document: String,
    checked_at: Instant,
}

/// A handle on the configuration in effect; cheap to clone.
#[derive(Clone)]
pub struct LiveConfig {
    state: Arc<RwLock<State>>,
    /// Set by the one caller refreshing, so that the others go on with the current configuration.
    refreshing: Arc<AtomicBool>,
    source: Option<Arc<Source>>,
}

impl LiveConfig {
    /// A configuration that never changes.
    pub fn fixed(config: Arc<Config>) -> Self {
        LiveConfig {
            state: Arc::new(RwLock::new(State {
                config,
                document: String::new(),
                checked_at: Instant::now(),
            })),
            refreshing: Arc::default(),
            source: None,
        }
    }

    /// `config`, checked from `document` (the table's active document), re-read from `store` at most every
    /// `hub.config_refresh_secs` of the configuration in effect.
    pub fn stored(
        config: Arc<Config>,
        document: String,
        store: Arc<dyn LeadStore>,
        secrets: Arc<dyn SecretSource + Send + Sync>,
        public_base_url: Option<String>,
    ) -> Self {
        LiveConfig {
            state: Arc::new(RwLock::new(State {
                config,
                document,
                checked_at: Instant::now(),
            })),
            refreshing: Arc::default(),
            source: Some(Arc::new(Source {
                store,
                secrets,
                public_base_url,
            })),
        }
    }

    /// The configuration in effect, refreshed first when it is due.
    pub async fn get(&self) -> Arc<Config> {
        let (config, due) = {
            let state = match self.state.read() {
                Ok(state) => state,
                Err(poisoned) => poisoned.into_inner(),
            };
            let due = state.checked_at.elapsed() >= state.config.config_refresh;
            (state.config.clone(), due)
        };
        let Some(source) = &self.source else {
            return config;
        };
        if !due {
            return config;
        }
        // One refresh at a time; the others use what is in effect.
        if self
            .refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return config;
        }
        // Cleared however the refresh ends (even if the caller's future is dropped).
        let _refreshing = Clear(&self.refreshing);
        self.refresh(source).await;
        self.current()
    }

    /// The configuration in effect, without refreshing.
    pub fn current(&self) -> Arc<Config> {
        match self.state.read() {
            Ok(state) => state.config.clone(),
            Err(poisoned) => poisoned.into_inner().config.clone(),
        }
    }

    async fn refresh(&self, source: &Source) {
        let read = source.store.get_config_document().await;
        let mut state = match self.state.write() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.checked_at = Instant::now();
        let document = match read {
            Ok(Some(document)) => document,
            Ok(None) => {
                tracing::error!(
                    "the table holds no configuration any more; the last one stays in effect"
                );
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot re-read the configuration; the last one stays in effect");
                return;
            }
        };
        if document == state.document {
            return;
        }
        let checked =
            Config::from_toml(&document, source.secrets.as_ref()).and_then(|config| match &source
                .public_base_url
            {
                Some(url) => config.with_public_base_url(url),
                None => Ok(config),
            });
        match checked {
            Ok(config) => {
                tracing::info!(
                    partners = config.partners.len(),
                    destinations = config.destinations.len(),
                    "a new configuration is in effect"
                );
                state.config = Arc::new(config);
            }
            Err(error) => {
                tracing::error!(key = %error.key, problem = %error.problem, "the stored configuration is invalid and was not applied; the last good one stays in effect");
            }
        }
        state.document = document;
    }
}

struct Clear<'a>(&'a AtomicBool);

impl Drop for Clear<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
