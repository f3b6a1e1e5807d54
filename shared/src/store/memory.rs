//! The embedded store: the whole table in one process, for the local stack and fast tests.
//!
//! # Expiry
//!
//! What DynamoDB's TTL removes (every item the DynamoDB adapter writes with a `ttl`: leads, idempotency
//! records, uniqueness claims with an expiry, cap counters, dead-delivery markers and buyer references of
//! leads that expire, sealed SSNs, failed notifications, unparsed callbacks, tallies and LeadSafe reports)
//! this store removes too, once its expiry has passed: each such table has a time-ordered index of its
//! expiring items, and every [`SWEEP_EVERY`] writes (or on [`MemoryStore::sweep_expired`])
//! the items whose expiry is at or before the store's clock are dropped. A sweep reads only what expired,
//! so the hot path pays one index insert per expiring item. Reads still treat an item past its expiry as
//! absent where they did (as DynamoDB's reads must, its TTL being lazy).
//!
//! What DynamoDB keeps for ever stays: the configuration document, the weighted-routing sequences (one per
//! vertical), suppression records, disabled partner endpoints, buyer tokens (one per destination), and
//! uniqueness claims without an expiry (a duplicate rule with `window_days = 0`, HELOC's default: one claim
//! per distinct value, for ever, on AWS as here).
//!
//! [`MemoryStore::with_lead_ttl`] (the local stack's `--lead-ttl`) keeps a lead, and everything kept for a
//! lead (its idempotency record, uniqueness claims, sealed SSN, dead-delivery markers, buyer references,
//! failed notifications, unparsed callbacks and LeadSafe reports), at most that long after it was written,
//! whatever expiry it was given: for long local runs, where `hub.lead_retention_days` would keep every lead
//! in memory. Cap counters and tallies keep their own windows (a cap must hold for its whole window); both
//! are per destination and window, not per lead.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::lead_listing::order_key;
use super::{
    apply_update, preconditions_hold, BuyerRef, BuyerRefs, ClaimOutcome, Counters, CreateOutcome,
    DayTally, DeadDeliveries, DeadDelivery, DeliveryTallies, DisabledEndpoint, FailedNotification,
    IdempotencyRecord, LeadListQuery, LeadPage, LeadSafeReports, LeadStore, LeadSummary,
    LeadUpdate, ListPosition, NotificationLog, Reservation, SealedSsns, StoreError,
    SuppressionCounts, Suppressions, Tally, UnparsedCallback, UnparsedCallbackId,
    UnparsedCallbacks, UpdateOutcome,
};
use crate::crypto::SealedSsn;
use crate::lead::{LeadId, LeadRecord, LeadStatus};
use crate::leadsafe_reports::{LeadSafeReport, ReportId};
use crate::suppression::{SuppressionKind, SuppressionReason, SuppressionRecord};

#[cfg(test)]
mod tests;

#[derive(Default)]
struct Tables {
    leads: HashMap<LeadId, LeadRecord>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    claims: HashMap<String, (LeadId, Option<DateTime<Utc>>)>,
    config: Option<String>,
    counters: HashMap<String, Counter>,
    sequences: HashMap<String, u64>,
    /// Dead-delivery markers by (lead, destination).
    dead: BTreeMap<(LeadId, String), DeadDelivery>,
    /// Suppression records by value (kind, hash), then by (reason name, start date): the DynamoDB sort
    /// key's order.
    suppressions: BTreeMap<(SuppressionKind, String), ValueRecords>,
    /// Sealed SSNs by lead, with their expiry.
    sealed_ssns: HashMap<LeadId, (SealedSsn, DateTime<Utc>)>,
    /// Reported consumer statuses by id.
    leadsafe_reports: HashMap<ReportId, LeadSafeReport>,
    /// Failed partner notifications by webhook id.
    failed_notifications: HashMap<String, FailedNotification>,
    /// Disabled partner endpoints by (partner, URL).
    disabled_endpoints: BTreeMap<(String, String), DisabledEndpoint>,
    /// Buyer references: (destination, reference) -> lead -> the entry's expiry.
    buyer_refs: HashMap<(String, String), RefLeads>,
    /// Callbacks kept unparsed, by id.
    unparsed: BTreeMap<UnparsedCallbackId, UnparsedCallback>,
    /// Tallies by (day, destination): the DynamoDB index's order.
    tallies: BTreeMap<(NaiveDate, String), (u64, u64)>,
    /// Buyer tokens by destination.
    buyer_tokens: HashMap<String, crate::store::StoredToken>,
    /// The expiring items of each table, by expiry.
    expiring: Expiring,
    /// Writes since the last sweep.
    writes: u32,
}

/// A sweep runs after this many writes.
pub const SWEEP_EVERY: u32 = 256;

/// The items of one table that expire, ordered by expiry, so that a sweep reads only what has expired. It
/// holds exactly the table's items that have an expiry (each write and removal keeps it so).
struct ExpiryIndex<K>(BTreeSet<(DateTime<Utc>, K)>);

impl<K> Default for ExpiryIndex<K> {
    fn default() -> Self {
        ExpiryIndex(BTreeSet::new())
    }
}

impl<K: Ord + Clone> ExpiryIndex<K> {
    /// `key`'s item went from expiring at `old` to expiring at `new` (`None`: it had, or has, no expiry
    /// or no item).
    fn set(&mut self, key: &K, old: Option<DateTime<Utc>>, new: Option<DateTime<Utc>>) {
        if old == new {
            return;
        }
        if let Some(at) = old {
            self.0.remove(&(at, key.clone()));
        }
        if let Some(at) = new {
            self.0.insert((at, key.clone()));
        }
    }

    /// The keys whose expiry is at or before `now`, taken out of the index, soonest first.
    fn take_expired(&mut self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, K)> {
        let mut expired = Vec::new();
        while self.0.first().is_some_and(|(at, _)| *at <= now) {
            if let Some(entry) = self.0.pop_first() {
                expired.push(entry);
            }
        }
        expired
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The expiry index of each table whose items expire.
#[derive(Default)]
struct Expiring {
    leads: ExpiryIndex<LeadId>,
    idempotency: ExpiryIndex<(String, String)>,
    claims: ExpiryIndex<String>,
    counters: ExpiryIndex<String>,
    dead: ExpiryIndex<(LeadId, String)>,
    sealed_ssns: ExpiryIndex<LeadId>,
    leadsafe_reports: ExpiryIndex<ReportId>,
    failed_notifications: ExpiryIndex<String>,
    buyer_refs: ExpiryIndex<((String, String), LeadId)>,
    unparsed: ExpiryIndex<UnparsedCallbackId>,
    tallies: ExpiryIndex<(NaiveDate, String)>,
}

impl Tables {
    /// Drop every item whose expiry is at or before `now`; how many were dropped.
    fn sweep(&mut self, now: DateTime<Utc>) -> usize {
        self.writes = 0;
        let mut dropped = 0;
        for (at, id) in self.expiring.leads.take_expired(now) {
            if self
                .leads
                .get(&id)
                .is_some_and(|lead| lead.expires_at == Some(at))
            {
                self.leads.remove(&id);
                dropped += 1;
            }
        }
        for (at, key) in self.expiring.idempotency.take_expired(now) {
            if self
                .idempotency
                .get(&key)
                .is_some_and(|r| r.expires_at == at)
            {
                self.idempotency.remove(&key);
                dropped += 1;
            }
        }
        for (at, key) in self.expiring.claims.take_expired(now) {
            if self.claims.get(&key).is_some_and(|(_, e)| *e == Some(at)) {
                self.claims.remove(&key);
                dropped += 1;
            }
        }
        for (at, key) in self.expiring.counters.take_expired(now) {
            if self.counters.get(&key).is_some_and(|c| c.expires_at == at) {
                self.counters.remove(&key);
                dropped += 1;
            }
        }
        for (at, key) in self.expiring.dead.take_expired(now) {
            if self
                .dead
                .get(&key)
                .is_some_and(|d| d.expires_at == Some(at))
            {
                self.dead.remove(&key);
                dropped += 1;
            }
        }
        for (at, id) in self.expiring.sealed_ssns.take_expired(now) {
            if self.sealed_ssns.get(&id).is_some_and(|(_, e)| *e == at) {
                self.sealed_ssns.remove(&id);
                dropped += 1;
            }
        }
        for (at, id) in self.expiring.leadsafe_reports.take_expired(now) {
            if self
                .leadsafe_reports
                .get(&id)
                .is_some_and(|r| r.expires_at == at)
            {
                self.leadsafe_reports.remove(&id);
                dropped += 1;
            }
        }
        for (at, id) in self.expiring.failed_notifications.take_expired(now) {
            if self
                .failed_notifications
                .get(&id)
                .is_some_and(|f| f.expires_at == at)
            {
                self.failed_notifications.remove(&id);
                dropped += 1;
            }
        }
        for (at, (key, lead)) in self.expiring.buyer_refs.take_expired(now) {
            if let Some(leads) = self.buyer_refs.get_mut(&key) {
                if leads.get(&lead).is_some_and(|e| *e == Some(at)) {
                    leads.remove(&lead);
                    dropped += 1;
                }
                if leads.is_empty() {
                    self.buyer_refs.remove(&key);
                }
            }
        }
        for (at, id) in self.expiring.unparsed.take_expired(now) {
            if self.unparsed.get(&id).is_some_and(|u| u.expires_at == at) {
                self.unparsed.remove(&id);
                dropped += 1;
            }
        }
        for (_, key) in self.expiring.tallies.take_expired(now) {
            if self.tallies.remove(&key).is_some() {
                dropped += 1;
            }
        }
        dropped
    }
}

/// How many items each table of a [`MemoryStore`] holds (expired ones not yet swept included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryCounts {
    pub leads: usize,
    pub idempotency_records: usize,
    pub claims: usize,
    pub counters: usize,
    pub sequences: usize,
    pub dead_deliveries: usize,
    /// Suppressed values (each with one or more records).
    pub suppressed_values: usize,
    pub sealed_ssns: usize,
    pub leadsafe_reports: usize,
    pub failed_notifications: usize,
    pub disabled_endpoints: usize,
    /// Buyer-reference entries (reference and lead).
    pub buyer_refs: usize,
    pub unparsed_callbacks: usize,
    pub tallies: usize,
    pub buyer_tokens: usize,
    /// Entries of the expiry indexes (one per item that expires).
    pub expiring: usize,
}

impl MemoryCounts {
    /// Every item, indexes included.
    pub fn total(&self) -> usize {
        self.leads
            + self.idempotency_records
            + self.claims
            + self.counters
            + self.sequences
            + self.dead_deliveries
            + self.suppressed_values
            + self.sealed_ssns
            + self.leadsafe_reports
            + self.failed_notifications
            + self.disabled_endpoints
            + self.buyer_refs
            + self.unparsed_callbacks
            + self.tallies
            + self.buyer_tokens
            + self.expiring
    }
}

/// The leads one buyer reference maps to, each with its entry's expiry (lead ids sort by creation time).
type RefLeads = BTreeMap<LeadId, Option<DateTime<Utc>>>;

/// One suppressed value's records by (reason name, start date): the DynamoDB sort key's order.
type ValueRecords = BTreeMap<(&'static str, NaiveDate), SuppressionRecord>;

/// One cap counter: who is counted, until when.
struct Counter {
    holders: BTreeSet<String>,
    expires_at: DateTime<Utc>,
}

impl Counter {
    fn live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

/// The store's clock.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A [`LeadStore`], [`Counters`], [`DeadDeliveries`], [`Suppressions`], [`SealedSsns`],
/// [`LeadSafeReports`], [`BuyerRefs`], [`NotificationLog`], [`UnparsedCallbacks`] and [`DeliveryTallies`]
/// in memory. Expired idempotency records, claims, counters, dead-delivery markers, sealed SSNs, LeadSafe
/// reports, unparsed callbacks and tallies are treated as absent, and every item that expires is removed
/// once it has (see the module documentation: as DynamoDB's TTL removes it).
pub struct MemoryStore {
    tables: Mutex<Tables>,
    clock: Clock,
    /// The longest a lead, and what is kept for it, is kept ([`MemoryStore::with_lead_ttl`]).
    lead_ttl: Option<chrono::Duration>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            tables: Mutex::default(),
            clock: Arc::new(Utc::now),
            lead_ttl: None,
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep each lead, and every item kept for a lead (its idempotency record, uniqueness claims, sealed
    /// SSN, dead-delivery markers, buyer references, failed notifications, unparsed callbacks and LeadSafe
    /// reports), at most `ttl` after it was written (a lead: after it was received): an item given a later
    /// expiry, or none, expires then (and is dropped by a sweep). Cap counters and tallies keep their windows. Local runs only:
    /// DynamoDB keeps what the configuration says.
    pub fn with_lead_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.lead_ttl = Some(chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX));
        self
    }

    /// Read the time from `clock` instead of the system clock (for tests: expiry and sweeps follow it).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The store's time.
    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// `expires_at`, brought forward to `now` plus the lead TTL when one is set and it is later (or none).
    fn kept_until(
        &self,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let Some(ttl) = self.lead_ttl else {
            return expires_at;
        };
        let cap = now
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Some(expires_at.map_or(cap, |at| at.min(cap)))
    }

    /// Like [`Self::kept_until`], for an item that always has an expiry.
    fn kept_until_at(&self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        self.kept_until(Some(expires_at), now).unwrap_or(expires_at)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }

    /// The tables, to write: every [`SWEEP_EVERY`] writes, what expired is dropped first.
    fn write(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        let mut tables = self.lock()?;
        tables.writes += 1;
        if tables.writes >= SWEEP_EVERY {
            tables.sweep(self.now());
        }
        Ok(tables)
    }

    /// Drop every item that has expired by the store's clock now (writes do so every [`SWEEP_EVERY`]);
    /// how many were dropped.
    pub fn sweep_expired(&self) -> usize {
        let now = self.now();
        self.tables.lock().map(|mut t| t.sweep(now)).unwrap_or(0)
    }

    /// How many items each table holds.
    pub fn item_counts(&self) -> MemoryCounts {
        let Ok(t) = self.tables.lock() else {
            return MemoryCounts::default();
        };
        let e = &t.expiring;
        MemoryCounts {
            leads: t.leads.len(),
            idempotency_records: t.idempotency.len(),
            claims: t.claims.len(),
            counters: t.counters.len(),
            sequences: t.sequences.len(),
            dead_deliveries: t.dead.len(),
            suppressed_values: t.suppressions.len(),
            sealed_ssns: t.sealed_ssns.len(),
            leadsafe_reports: t.leadsafe_reports.len(),
            failed_notifications: t.failed_notifications.len(),
            disabled_endpoints: t.disabled_endpoints.len(),
            buyer_refs: t.buyer_refs.values().map(BTreeMap::len).sum(),
            unparsed_callbacks: t.unparsed.len(),
            tallies: t.tallies.len(),
            buyer_tokens: t.buyer_tokens.len(),
            expiring: e.leads.len()
                + e.idempotency.len()
                + e.claims.len()
                + e.counters.len()
                + e.dead.len()
                + e.sealed_ssns.len()
                + e.leadsafe_reports.len()
                + e.failed_notifications.len()
                + e.buyer_refs.len()
                + e.unparsed.len()
                + e.tallies.len(),
        }
    }

    /// How many leads are stored (for tests).
    pub fn lead_count(&self) -> usize {
        self.tables.lock().map(|t| t.leads.len()).unwrap_or(0)
    }

    /// How many sealed SSNs are kept, expired ones included (for tests).
    pub fn sealed_ssn_count(&self) -> usize {
        self.tables.lock().map(|t| t.sealed_ssns.len()).unwrap_or(0)
    }

    /// The reports not expired at `now`, oldest first (the DynamoDB index's order: time, then id).
    fn live_reports(
        &self,
        now: DateTime<Utc>,
        keep: impl Fn(&LeadSafeReport) -> bool,
    ) -> Result<Vec<LeadSafeReport>, StoreError> {
        let tables = self.lock()?;
        let mut reports: Vec<LeadSafeReport> = tables
            .leadsafe_reports
            .values()
            .filter(|report| !report.is_expired(now) && keep(report))
            .cloned()
            .collect();
        reports.sort_by(|a, b| (a.reported_at, &a.id).cmp(&(b.reported_at, &b.id)));
        Ok(reports)
    }
}

#[async_trait]
impl LeadStore for MemoryStore {
    async fn create_lead(
        &self,
        lead: &LeadRecord,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        let now = self.now();
        let mut tables = self.write()?;
        if let Some(record) = idempotency {
            let key = (record.partner_id.clone(), record.key.clone());
            if let Some(existing) = tables.idempotency.get(&key) {
                if existing.expires_at > now {
                    return Ok(CreateOutcome::IdempotencyKeyUsed(existing.clone()));
                }
            }
        }
        if tables.leads.contains_key(&lead.id) {
            return Err(StoreError::AlreadyExists(lead.id.to_string()));
        }
        if let Some(record) = idempotency {
            let key = (record.partner_id.clone(), record.key.clone());
            let mut record = record.clone();
            record.expires_at = self.kept_until_at(record.expires_at, now);
            let expires_at = record.expires_at;
            let old = tables
                .idempotency
                .insert(key.clone(), record)
                .map(|old| old.expires_at);
            tables.expiring.idempotency.set(&key, old, Some(expires_at));
        }
        let mut lead = lead.clone();
        // A lead is kept from when it was received (every other item from when it is written).
        lead.expires_at = self.kept_until(lead.expires_at, lead.created_at.min(now));
        tables.expiring.leads.set(&lead.id, None, lead.expires_at);
        tables.leads.insert(lead.id.clone(), lead);
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
        let mut tables = self.write()?;
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
        let mut tables = self.write()?;
        // The idempotency record goes only with its lead (see the port's documentation).
        let discardable = tables
            .leads
            .get(id)
            .is_none_or(|lead| lead.status == LeadStatus::Received);
        if !discardable {
            return Ok(());
        }
        if let Some(lead) = tables.leads.remove(id) {
            tables.expiring.leads.set(id, lead.expires_at, None);
        }
        if let Some((partner, key)) = idempotency {
            let key = (partner.to_owned(), key.to_owned());
            if let Some(record) = tables.idempotency.remove(&key) {
                tables
                    .expiring
                    .idempotency
                    .set(&key, Some(record.expires_at), None);
            }
        }
        Ok(())
    }

    async fn claim_unique(
        &self,
        key: &str,
        owner: &LeadId,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tables = self.write()?;
        match tables.claims.get(key) {
            Some((holder, expiry)) if expiry.is_none_or(|at| at > now) => {
                if holder == owner {
                    Ok(ClaimOutcome::Claimed)
                } else {
                    Ok(ClaimOutcome::HeldBy(holder.clone()))
                }
            }
            _ => {
                let key = key.to_owned();
                let written = self.now();
                let expires_at = self.kept_until(expires_at, written);
                let old = tables
                    .claims
                    .insert(key.clone(), (owner.clone(), expires_at))
                    .and_then(|(_, old)| old);
                tables.expiring.claims.set(&key, old, expires_at);
                Ok(ClaimOutcome::Claimed)
            }
        }
    }

    async fn unique_holder(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LeadId>, StoreError> {
        let tables = self.lock()?;
        Ok(match tables.claims.get(key) {
            Some((holder, expiry)) if expiry.is_none_or(|at| at > now) => Some(holder.clone()),
            _ => None,
        })
    }

    async fn release_unique(&self, key: &str, owner: &LeadId) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        if tables
            .claims
            .get(key)
            .is_some_and(|(holder, _)| holder == owner)
        {
            if let Some((_, expires_at)) = tables.claims.remove(key) {
                tables
                    .expiring
                    .claims
                    .set(&key.to_owned(), expires_at, None);
            }
        }
        Ok(())
    }

    async fn get_config_document(&self) -> Result<Option<String>, StoreError> {
        Ok(self.lock()?.config.clone())
    }

    async fn put_config_document(&self, document: &str) -> Result<(), StoreError> {
        self.write()?.config = Some(document.to_owned());
        Ok(())
    }

    async fn list_partner_leads(&self, query: &LeadListQuery) -> Result<LeadPage, StoreError> {
        let now = self.now();
        let tables = self.lock()?;
        let mut leads: Vec<&LeadRecord> = tables
            .leads
            .values()
            .filter(|lead| query.matches(lead, now))
            .collect();
        // Newest first: the DynamoDB index's order (`<created millis>#<leadId>`, descending).
        leads.sort_by(|a, b| order_key(b).cmp(&order_key(a)));
        let size = query.page_size();
        let next = (leads.len() > size).then(|| ListPosition::of(leads[size - 1]));
        Ok(LeadPage {
            leads: leads
                .into_iter()
                .take(size)
                .map(LeadSummary::from)
                .collect(),
            next,
        })
    }
}

#[async_trait]
impl Counters for MemoryStore {
    async fn reserve(
        &self,
        key: &str,
        holder: &str,
        limit: u64,
        expires_at: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        let mut tables = self.write()?;
        let now = self.now();
        let mut moved: Option<Option<DateTime<Utc>>> = None;
        let counter = tables
            .counters
            .entry(key.to_owned())
            .and_modify(|counter| {
                if !counter.live(now) {
                    // An expired counter starts afresh: its old holders no longer count.
                    counter.holders.clear();
                    moved = Some(Some(counter.expires_at));
                    counter.expires_at = expires_at;
                }
            })
            .or_insert_with(|| {
                moved = Some(None);
                Counter {
                    holders: BTreeSet::new(),
                    expires_at,
                }
            });
        let outcome = if counter.holders.contains(holder) {
            Reservation::Reserved
        } else if counter.holders.len() as u64 >= limit {
            Reservation::Full {
                used: counter.holders.len() as u64,
            }
        } else {
            counter.holders.insert(holder.to_owned());
            Reservation::Reserved
        };
        if let Some(old) = moved {
            tables
                .expiring
                .counters
                .set(&key.to_owned(), old, Some(expires_at));
        }
        Ok(outcome)
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        if let Some(counter) = self.write()?.counters.get_mut(key) {
            counter.holders.remove(holder);
        }
        Ok(())
    }

    async fn counts(&self, keys: &[String]) -> Result<BTreeMap<String, u64>, StoreError> {
        let tables = self.lock()?;
        let now = self.now();
        Ok(keys
            .iter()
            .map(|key| {
                let used = tables
                    .counters
                    .get(key)
                    .filter(|counter| counter.live(now))
                    .map_or(0, |counter| counter.holders.len() as u64);
                (key.clone(), used)
            })
            .collect())
    }

    async fn next_sequence(&self, key: &str) -> Result<u64, StoreError> {
        let mut tables = self.write()?;
        let next = tables.sequences.entry(key.to_owned()).or_insert(0);
        let value = *next;
        *next = next
            .checked_add(1)
            .ok_or_else(|| StoreError::Unavailable("memory store: sequence exhausted".into()))?;
        Ok(value)
    }
}

#[async_trait]
impl NotificationLog for MemoryStore {
    async fn record_failed(&self, failed: &FailedNotification) -> Result<(), StoreError> {
        let now = self.now();
        let mut failed = failed.clone();
        failed.expires_at = self.kept_until_at(failed.expires_at, now);
        let key = failed.job.webhook_id.clone();
        let expires_at = failed.expires_at;
        let mut tables = self.write()?;
        let old = tables
            .failed_notifications
            .insert(key.clone(), failed)
            .map(|old| old.expires_at);
        tables
            .expiring
            .failed_notifications
            .set(&key, old, Some(expires_at));
        Ok(())
    }

    async fn failed(
        &self,
        partner_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FailedNotification>, StoreError> {
        let tables = self.lock()?;
        let now = self.now();
        let mut listed: Vec<&FailedNotification> = tables
            .failed_notifications
            .values()
            .filter(|failed| failed.expires_at > now)
            .filter(|failed| partner_id.is_none_or(|id| failed.job.partner_id == id))
            .collect();
        listed.sort_by(|a, b| {
            (b.failed_at, &b.job.webhook_id).cmp(&(a.failed_at, &a.job.webhook_id))
        });
        Ok(listed.into_iter().take(limit).cloned().collect())
    }

    async fn failed_notification(
        &self,
        webhook_id: &str,
    ) -> Result<Option<FailedNotification>, StoreError> {
        let now = self.now();
        Ok(self
            .lock()?
            .failed_notifications
            .get(webhook_id)
            .filter(|failed| failed.expires_at > now)
            .cloned())
    }

    async fn remove_failed(&self, webhook_id: &str) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        if let Some(failed) = tables.failed_notifications.remove(webhook_id) {
            tables.expiring.failed_notifications.set(
                &webhook_id.to_owned(),
                Some(failed.expires_at),
                None,
            );
        }
        Ok(())
    }

    async fn disable_endpoint(&self, endpoint: &DisabledEndpoint) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        let key = (endpoint.partner_id.clone(), endpoint.url.clone());
        if tables
            .disabled_endpoints
            .get(&key)
            .is_none_or(|existing| existing.disabled_at <= endpoint.disabled_at)
        {
            tables.disabled_endpoints.insert(key, endpoint.clone());
        }
        Ok(())
    }

    async fn disabled_endpoint(
        &self,
        partner_id: &str,
        url: &str,
    ) -> Result<Option<DisabledEndpoint>, StoreError> {
        Ok(self
            .lock()?
            .disabled_endpoints
            .get(&(partner_id.to_owned(), url.to_owned()))
            .cloned())
    }

    async fn disabled_endpoints(
        &self,
        partner_id: Option<&str>,
    ) -> Result<Vec<DisabledEndpoint>, StoreError> {
        Ok(self
            .lock()?
            .disabled_endpoints
            .values()
            .filter(|endpoint| partner_id.is_none_or(|id| endpoint.partner_id == id))
            .cloned()
            .collect())
    }

    async fn enable_endpoints(&self, partner_id: &str) -> Result<usize, StoreError> {
        let mut tables = self.write()?;
        let before = tables.disabled_endpoints.len();
        tables
            .disabled_endpoints
            .retain(|(partner, _), _| partner != partner_id);
        Ok(before - tables.disabled_endpoints.len())
    }
}

#[async_trait]
impl DeadDeliveries for MemoryStore {
    async fn record(&self, dead: &DeadDelivery) -> Result<(), StoreError> {
        let now = self.now();
        let mut tables = self.write()?;
        let key = (dead.lead_id.clone(), dead.destination.clone());
        // A later death is never replaced by an earlier one (as the DynamoDB put's condition).
        if tables
            .dead
            .get(&key)
            .is_none_or(|existing| existing.died_at <= dead.died_at)
        {
            let mut dead = dead.clone();
            dead.expires_at = self.kept_until(dead.expires_at, now);
            let expires_at = dead.expires_at;
            let old = tables
                .dead
                .insert(key.clone(), dead)
                .and_then(|old| old.expires_at);
            tables.expiring.dead.set(&key, old, expires_at);
        }
        Ok(())
    }

    async fn list(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeadDelivery>, StoreError> {
        let tables = self.lock()?;
        let now = self.now();
        let mut listed: Vec<&DeadDelivery> = tables
            .dead
            .values()
            .filter(|dead| dead.died_at >= since && dead.expires_at.is_none_or(|at| at > now))
            .collect();
        // The DynamoDB index's order: time, then lead id (fixed length), then destination; newest first.
        listed.sort_by(|a, b| {
            (b.died_at, &b.lead_id, &b.destination).cmp(&(a.died_at, &a.lead_id, &a.destination))
        });
        Ok(listed.into_iter().take(limit).cloned().collect())
    }

    async fn remove(
        &self,
        lead_id: &LeadId,
        destination: &str,
        died_by: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        let key = (lead_id.clone(), destination.to_owned());
        if tables
            .dead
            .get(&key)
            .is_some_and(|existing| existing.died_at <= died_by)
        {
            if let Some(dead) = tables.dead.remove(&key) {
                tables.expiring.dead.set(&key, dead.expires_at, None);
            }
        }
        Ok(())
    }
}

/// A record's place among its value's records: the DynamoDB sort key `<reason>#<start_date>` orders the
/// same way (a date is fixed-width, and `#` sorts before every letter).
fn suppression_sort_key(
    reason: SuppressionReason,
    start_date: NaiveDate,
) -> (&'static str, NaiveDate) {
    (reason.as_str(), start_date)
}

#[async_trait]
impl Suppressions for MemoryStore {
    async fn put_suppressions(&self, records: &[SuppressionRecord]) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        for record in records {
            tables
                .suppressions
                .entry((record.kind, record.hash.clone()))
                .or_default()
                .insert(
                    suppression_sort_key(record.reason, record.start_date),
                    record.clone(),
                );
        }
        Ok(())
    }

    async fn find_suppressions(
        &self,
        kind: SuppressionKind,
        hash: &str,
    ) -> Result<Vec<SuppressionRecord>, StoreError> {
        Ok(self
            .lock()?
            .suppressions
            .get(&(kind, hash.to_owned()))
            .map(|records| records.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn remove_suppressions(
        &self,
        kind: SuppressionKind,
        hash: &str,
    ) -> Result<usize, StoreError> {
        Ok(self
            .write()?
            .suppressions
            .remove(&(kind, hash.to_owned()))
            .map_or(0, |records| records.len()))
    }

    async fn suppression_counts(&self, today: NaiveDate) -> Result<SuppressionCounts, StoreError> {
        let tables = self.lock()?;
        let mut counts = SuppressionCounts::default();
        for ((kind, _), records) in &tables.suppressions {
            let count = counts.of_mut(*kind);
            count.records += records.len() as u64;
            count.active += records.values().filter(|r| r.is_active(today)).count() as u64;
        }
        Ok(counts)
    }
}

#[async_trait]
impl SealedSsns for MemoryStore {
    async fn put_sealed_ssn(
        &self,
        lead: &LeadId,
        sealed: &SealedSsn,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let expires_at = self.kept_until_at(expires_at, now);
        let mut tables = self.write()?;
        let old = tables
            .sealed_ssns
            .insert(lead.clone(), (sealed.clone(), expires_at))
            .map(|(_, old)| old);
        tables.expiring.sealed_ssns.set(lead, old, Some(expires_at));
        Ok(())
    }

    async fn get_sealed_ssn(
        &self,
        lead: &LeadId,
        now: DateTime<Utc>,
    ) -> Result<Option<SealedSsn>, StoreError> {
        Ok(self
            .lock()?
            .sealed_ssns
            .get(lead)
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(sealed, _)| sealed.clone()))
    }

    async fn delete_sealed_ssn(&self, lead: &LeadId) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        if let Some((_, expires_at)) = tables.sealed_ssns.remove(lead) {
            tables
                .expiring
                .sealed_ssns
                .set(lead, Some(expires_at), None);
        }
        Ok(())
    }
}

#[async_trait]
impl LeadSafeReports for MemoryStore {
    async fn put_report(&self, report: &LeadSafeReport) -> Result<(), StoreError> {
        let now = self.now();
        let mut report = report.clone();
        report.expires_at = self.kept_until_at(report.expires_at, now);
        let (id, expires_at) = (report.id.clone(), report.expires_at);
        let mut tables = self.write()?;
        let old = tables
            .leadsafe_reports
            .insert(id.clone(), report)
            .map(|old| old.expires_at);
        tables
            .expiring
            .leadsafe_reports
            .set(&id, old, Some(expires_at));
        Ok(())
    }

    async fn mark_report_sent(&self, id: &ReportId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(match self.write()?.leadsafe_reports.get_mut(id) {
            Some(report) if !report.is_expired(at) => {
                report.sent_at = Some(at);
                true
            }
            _ => false,
        })
    }

    async fn reports_since(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<LeadSafeReport>, StoreError> {
        self.live_reports(now, |report| report.reported_at >= since)
    }

    async fn unsent_reports(
        &self,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<LeadSafeReport>, StoreError> {
        let mut unsent = self.live_reports(now, |report| report.sent_at.is_none())?;
        unsent.truncate(limit);
        Ok(unsent)
    }
}

#[async_trait]
impl BuyerRefs for MemoryStore {
    async fn record_buyer_ref(&self, entry: &BuyerRef) -> Result<(), StoreError> {
        let now = self.now();
        let expires_at = self.kept_until(entry.expires_at, now);
        let key = (entry.destination.clone(), entry.buyer_ref.clone());
        let mut tables = self.write()?;
        let old = tables
            .buyer_refs
            .entry(key.clone())
            .or_default()
            .insert(entry.lead_id.clone(), expires_at)
            .flatten();
        tables
            .expiring
            .buyer_refs
            .set(&(key, entry.lead_id.clone()), old, expires_at);
        Ok(())
    }

    async fn leads_for_buyer_ref(
        &self,
        destination: &str,
        buyer_ref: &str,
        limit: usize,
    ) -> Result<Vec<LeadId>, StoreError> {
        let now = self.now();
        let tables = self.lock()?;
        let key = (destination.to_owned(), buyer_ref.to_owned());
        // Lead ids sort by creation time: newest first is the ids in reverse, as DynamoDB's sort key.
        Ok(tables
            .buyer_refs
            .get(&key)
            .map(|leads| {
                leads
                    .iter()
                    .rev()
                    .filter(|(_, expiry)| expiry.is_none_or(|at| at > now))
                    .take(limit)
                    .map(|(lead, _)| lead.clone())
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[async_trait]
impl UnparsedCallbacks for MemoryStore {
    async fn put_unparsed(&self, callback: &UnparsedCallback) -> Result<(), StoreError> {
        let now = self.now();
        let mut callback = callback.clone();
        callback.expires_at = self.kept_until_at(callback.expires_at, now);
        let (id, expires_at) = (callback.id.clone(), callback.expires_at);
        let mut tables = self.write()?;
        let old = tables
            .unparsed
            .insert(id.clone(), callback)
            .map(|old| old.expires_at);
        tables.expiring.unparsed.set(&id, old, Some(expires_at));
        Ok(())
    }

    async fn list_unparsed(
        &self,
        since: DateTime<Utc>,
        destination: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<UnparsedCallback>, StoreError> {
        let tables = self.lock()?;
        let mut listed: Vec<&UnparsedCallback> = tables
            .unparsed
            .values()
            .filter(|callback| {
                callback.received_at >= since
                    && callback.expires_at > now
                    && destination.is_none_or(|d| callback.destination == d)
            })
            .collect();
        // The DynamoDB index's order: time, then id; newest first.
        listed.sort_by(|a, b| (b.received_at, &b.id).cmp(&(a.received_at, &a.id)));
        Ok(listed.into_iter().take(limit).cloned().collect())
    }
}

#[async_trait]
impl DeliveryTallies for MemoryStore {
    async fn add_tally(
        &self,
        destination: &str,
        day: NaiveDate,
        tally: Tally,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        let key = (day, destination.to_owned());
        let mut new = false;
        let counts = tables.tallies.entry(key.clone()).or_insert_with(|| {
            new = true;
            (0, 0)
        });
        match tally {
            Tally::Accepted => counts.0 = counts.0.saturating_add(1),
            Tally::Returned => counts.1 = counts.1.saturating_add(1),
        }
        if new {
            tables
                .expiring
                .tallies
                .set(&key, None, Some(super::tallies::tally_expiry(day)));
        }
        Ok(())
    }

    async fn tallies_since(
        &self,
        since: NaiveDate,
        destination: Option<&str>,
    ) -> Result<Vec<DayTally>, StoreError> {
        let tables = self.lock()?;
        let now = self.now();
        Ok(tables
            .tallies
            .range((since, String::new())..)
            .filter(|((day, name), _)| {
                destination.is_none_or(|d| name == d) && super::tallies::tally_expiry(*day) > now
            })
            .map(|((day, name), (accepted, returned))| DayTally {
                destination: name.clone(),
                day: *day,
                accepted: *accepted,
                returned: *returned,
            })
            .collect())
    }
}

#[async_trait]
impl crate::store::BuyerTokens for MemoryStore {
    async fn buyer_token(
        &self,
        destination: &str,
    ) -> Result<Option<crate::store::StoredToken>, StoreError> {
        Ok(self.lock()?.buyer_tokens.get(destination).cloned())
    }

    async fn take_refresh_lease(
        &self,
        destination: &str,
        version: u64,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.write()?;
        let entry = tables.buyer_tokens.entry(destination.to_owned()).or_insert(
            crate::store::StoredToken {
                token: None,
                version: 0,
                lease: None,
            },
        );
        let free = entry.lease.as_ref().is_none_or(|(_, until)| *until <= now);
        if entry.version != version || !free {
            return Ok(false);
        }
        entry.lease = Some((holder.to_owned(), until));
        Ok(true)
    }

    async fn put_refreshed(
        &self,
        destination: &str,
        token: &crate::store::BuyerToken,
        version: u64,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let mut tables = self.write()?;
        let Some(entry) = tables.buyer_tokens.get_mut(destination) else {
            return Ok(false);
        };
        let holds = entry.lease.as_ref().is_some_and(|(h, _)| h == holder);
        if entry.version != version || !holds {
            return Ok(false);
        }
        *entry = crate::store::StoredToken {
            token: Some(token.clone()),
            version: version + 1,
            lease: None,
        };
        Ok(true)
    }

    async fn release_refresh_lease(
        &self,
        destination: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        let mut tables = self.write()?;
        if let Some(entry) = tables.buyer_tokens.get_mut(destination) {
            if entry.lease.as_ref().is_some_and(|(h, _)| h == holder) {
                entry.lease = None;
            }
        }
        Ok(())
    }
}
