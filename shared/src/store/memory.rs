//! The embedded store: the whole table in one process, for the local stack and fast tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

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

/// A [`LeadStore`], [`Counters`], [`DeadDeliveries`], [`Suppressions`], [`SealedSsns`],
/// [`LeadSafeReports`], [`BuyerRefs`], [`NotificationLog`], [`UnparsedCallbacks`] and [`DeliveryTallies`] in memory. Expired idempotency
/// records, claims, counters, dead-delivery markers, sealed SSNs, LeadSafe reports, unparsed callbacks and
/// tallies are treated as absent, as DynamoDB's TTL would eventually remove them.
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
        now: DateTime<Utc>,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tables = self.lock()?;
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
        let mut tables = self.lock()?;
        if tables
            .claims
            .get(key)
            .is_some_and(|(holder, _)| holder == owner)
        {
            tables.claims.remove(key);
        }
        Ok(())
    }

    async fn get_config_document(&self) -> Result<Option<String>, StoreError> {
        Ok(self.lock()?.config.clone())
    }

    async fn put_config_document(&self, document: &str) -> Result<(), StoreError> {
        self.lock()?.config = Some(document.to_owned());
        Ok(())
    }

    async fn list_partner_leads(&self, query: &LeadListQuery) -> Result<LeadPage, StoreError> {
        let now = Utc::now();
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
        let mut tables = self.lock()?;
        let now = Utc::now();
        let counter = tables
            .counters
            .entry(key.to_owned())
            .and_modify(|counter| {
                if !counter.live(now) {
                    // An expired counter starts afresh: its old holders no longer count.
                    counter.holders.clear();
                    counter.expires_at = expires_at;
                }
            })
            .or_insert_with(|| Counter {
                holders: BTreeSet::new(),
                expires_at,
            });
        if counter.holders.contains(holder) {
            return Ok(Reservation::Reserved);
        }
        let used = counter.holders.len() as u64;
        if used >= limit {
            return Ok(Reservation::Full { used });
        }
        counter.holders.insert(holder.to_owned());
        Ok(Reservation::Reserved)
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        if let Some(counter) = self.lock()?.counters.get_mut(key) {
            counter.holders.remove(holder);
        }
        Ok(())
    }

    async fn counts(&self, keys: &[String]) -> Result<BTreeMap<String, u64>, StoreError> {
        let tables = self.lock()?;
        let now = Utc::now();
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
        let mut tables = self.lock()?;
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
        self.lock()?
            .failed_notifications
            .insert(failed.job.webhook_id.clone(), failed.clone());
        Ok(())
    }

    async fn failed(
        &self,
        partner_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FailedNotification>, StoreError> {
        let tables = self.lock()?;
        let now = Utc::now();
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
        let now = Utc::now();
        Ok(self
            .lock()?
            .failed_notifications
            .get(webhook_id)
            .filter(|failed| failed.expires_at > now)
            .cloned())
    }

    async fn remove_failed(&self, webhook_id: &str) -> Result<(), StoreError> {
        self.lock()?.failed_notifications.remove(webhook_id);
        Ok(())
    }

    async fn disable_endpoint(&self, endpoint: &DisabledEndpoint) -> Result<(), StoreError> {
        let mut tables = self.lock()?;
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
        let mut tables = self.lock()?;
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
        let mut tables = self.lock()?;
        let key = (dead.lead_id.clone(), dead.destination.clone());
        // A later death is never replaced by an earlier one (as the DynamoDB put's condition).
        if tables
            .dead
            .get(&key)
            .is_none_or(|existing| existing.died_at <= dead.died_at)
        {
            tables.dead.insert(key, dead.clone());
        }
        Ok(())
    }

    async fn list(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeadDelivery>, StoreError> {
        let tables = self.lock()?;
        let now = Utc::now();
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
        let mut tables = self.lock()?;
        let key = (lead_id.clone(), destination.to_owned());
        if tables
            .dead
            .get(&key)
            .is_some_and(|existing| existing.died_at <= died_by)
        {
            tables.dead.remove(&key);
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
        let mut tables = self.lock()?;
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
            .lock()?
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
        self.lock()?
            .sealed_ssns
            .insert(lead.clone(), (sealed.clone(), expires_at));
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
        self.lock()?.sealed_ssns.remove(lead);
        Ok(())
    }
}

#[async_trait]
impl LeadSafeReports for MemoryStore {
    async fn put_report(&self, report: &LeadSafeReport) -> Result<(), StoreError> {
        self.lock()?
            .leadsafe_reports
            .insert(report.id.clone(), report.clone());
        Ok(())
    }

    async fn mark_report_sent(&self, id: &ReportId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(match self.lock()?.leadsafe_reports.get_mut(id) {
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
        self.lock()?
            .buyer_refs
            .entry((entry.destination.clone(), entry.buyer_ref.clone()))
            .or_default()
            .insert(entry.lead_id.clone(), entry.expires_at);
        Ok(())
    }

    async fn leads_for_buyer_ref(
        &self,
        destination: &str,
        buyer_ref: &str,
        limit: usize,
    ) -> Result<Vec<LeadId>, StoreError> {
        let now = Utc::now();
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
        self.lock()?
            .unparsed
            .insert(callback.id.clone(), callback.clone());
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
        let mut tables = self.lock()?;
        let counts = tables
            .tallies
            .entry((day, destination.to_owned()))
            .or_default();
        match tally {
            Tally::Accepted => counts.0 = counts.0.saturating_add(1),
            Tally::Returned => counts.1 = counts.1.saturating_add(1),
        }
        Ok(())
    }

    async fn tallies_since(
        &self,
        since: NaiveDate,
        destination: Option<&str>,
    ) -> Result<Vec<DayTally>, StoreError> {
        let tables = self.lock()?;
        let now = Utc::now();
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
        let mut tables = self.lock()?;
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
        let mut tables = self.lock()?;
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
        let mut tables = self.lock()?;
        if let Some(entry) = tables.buyer_tokens.get_mut(destination) {
            if entry.lease.as_ref().is_some_and(|(h, _)| h == holder) {
                entry.lease = None;
            }
        }
        Ok(())
    }
}
