//! The embedded store: the whole table in one process, for the local stack and fast tests.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    apply_update, preconditions_hold, ClaimOutcome, CreateOutcome, IdempotencyRecord, LeadStore,
    LeadUpdate, StoreError, UpdateOutcome,
};
use crate::lead::{LeadId, LeadRecord, LeadStatus};

#[derive(Default)]
struct Tables {
    leads: HashMap<LeadId, LeadRecord>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    claims: HashMap<String, (LeadId, Option<DateTime<Utc>>)>,
    config: Option<String>,
}

/// A [`LeadStore`] in memory. Expired idempotency records and claims are treated as absent, as DynamoDB's
/// TTL would eventually remove them.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }

    /// How many leads are stored (for tests).
    pub fn lead_count(&self) -> usize {
        self.tables.lock().map(|t| t.leads.len()).unwrap_or(0)
    }
}

#[async_trait]
impl LeadStore for MemoryStore {
    async fn create_lead(
        &self,
        lead: &LeadRecord,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        let mut tables = self.lock()?;
        if let Some(record) = idempotency {
            let key = (record.partner_id.clone(), record.key.clone());
            if let Some(existing) = tables.idempotency.get(&key) {
                if existing.expires_at > Utc::now() {
                    return Ok(CreateOutcome::IdempotencyKeyUsed(existing.clone()));
                }
            }
        }
        if tables.leads.contains_key(&lead.id) {
            return Err(StoreError::AlreadyExists(lead.id.to_string()));
        }
        if let Some(record) = idempotency {
            tables.idempotency.insert(
                (record.partner_id.clone(), record.key.clone()),
                record.clone(),
            );
        }
        tables.leads.insert(lead.id.clone(), lead.clone());
        Ok(CreateOutcome::Created)
    }

    async fn get_lead(&self, id: &LeadId) -> Result<Option<LeadRecord>, StoreError> {
        Ok(self.lock()?.leads.get(id).cloned())
    }

    async fn update_lead(
        &self,
        id: &LeadId,
        update: &LeadUpdate,
    ) -> Result<UpdateOutcome, StoreError> {
        let mut tables = self.lock()?;
        let Some(record) = tables.leads.get_mut(id) else {
            return Ok(UpdateOutcome::NotFound);
        };
        if !preconditions_hold(record, update) {
            return Ok(UpdateOutcome::Conflict(record.clone()));
        }
        apply_update(record, update);
        Ok(UpdateOutcome::Applied(record.clone()))
    }

    async fn discard_lead(
        &self,
        id: &LeadId,
        idempotency: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock()?;
        // The idempotency record goes only with its lead (see the port's documentation).
        let discardable = tables
            .leads
            .get(id)
            .is_none_or(|lead| lead.status == LeadStatus::Received);
        if !discardable {
            return Ok(());
        }
        tables.leads.remove(id);
        if let Some((partner, key)) = idempotency {
            tables
                .idempotency
                .remove(&(partner.to_owned(), key.to_owned()));
        }
        Ok(())
    }

    async fn claim_unique(
        &self,
        key: &str,
        owner: &LeadId,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tables = self.lock()?;
        let now = Utc::now();
        match tables.claims.get(key) {
            Some((holder, expiry)) if expiry.is_none_or(|at| at > now) => {
                if holder == owner {
                    Ok(ClaimOutcome::Claimed)
                } else {
                    Ok(ClaimOutcome::HeldBy(holder.clone()))
                }
            }
            _ => {
                tables
                    .claims
                    .insert(key.to_owned(), (owner.clone(), expires_at));
                Ok(ClaimOutcome::Claimed)
            }
        }
    }

    async fn get_config_document(&self) -> Result<Option<String>, StoreError> {
        Ok(self.lock()?.config.clone())
    }

    async fn put_config_document(&self, document: &str) -> Result<(), StoreError> {
        self.lock()?.config = Some(document.to_owned());
        Ok(())
    }
}
