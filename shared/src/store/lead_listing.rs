//! A partner's own leads, newest first, a page at a time: what [`LeadStore::list_partner_leads`] takes and
//! answers (`GET /v1/leads`).
//!
//! Leads are ordered by (`created_at`, lead id), newest first. A page ends at a [`ListPosition`]: the next
//! page holds the leads strictly older than it. The position is the store's own key of a lead, so a listing
//! stays stable while new leads arrive (they sort before the first page).
//!
//! [`LeadStore::list_partner_leads`]: super::LeadStore::list_partner_leads

use chrono::{DateTime, Utc};

use crate::lead::{LeadId, LeadRecord, LeadStatus};
use crate::verticals::Vertical;

/// The most leads one page holds (`limit` of the partner API).
pub const MAX_PAGE: usize = 100;

/// Where a listing resumes: after this lead (so at the leads created before it, or at the same millisecond
/// with a smaller id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPosition {
    pub created_at: DateTime<Utc>,
    pub lead_id: LeadId,
}

impl ListPosition {
    pub fn of(lead: &LeadRecord) -> Self {
        ListPosition {
            created_at: lead.created_at,
            lead_id: lead.id.clone(),
        }
    }

    /// The order key: newer positions are greater.
    pub fn key(&self) -> (i64, &str) {
        (self.created_at.timestamp_millis(), self.lead_id.as_str())
    }
}

/// What one page of a partner's listing asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadListQuery {
    pub partner_id: String,
    /// Leads created at or after this time only.
    pub since: Option<DateTime<Utc>>,
    /// Leads in this status only.
    pub status: Option<LeadStatus>,
    /// The most leads on the page: 1 to [`MAX_PAGE`] (adapters clamp to that range).
    pub limit: usize,
    /// Resume after this position (from the previous page's [`LeadPage::next`]).
    pub after: Option<ListPosition>,
}

impl LeadListQuery {
    /// The page size adapters use: `limit` within 1..=[`MAX_PAGE`].
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }

    /// Whether `lead` belongs on this listing (partner, filters, not expired at `now`, after the position):
    /// the reference semantics every adapter follows.
    pub fn matches(&self, lead: &LeadRecord, now: DateTime<Utc>) -> bool {
        lead.partner_id == self.partner_id
            && lead.expires_at.is_none_or(|at| at > now)
            && self.since.is_none_or(|since| lead.created_at >= since)
            && self.status.is_none_or(|status| lead.status == status)
            && self
                .after
                .as_ref()
                .is_none_or(|after| order_key(lead) < after.key())
    }
}

/// A lead's place in a listing: newer leads are greater (the DynamoDB index's `<created millis>#<leadId>`).
pub fn order_key(lead: &LeadRecord) -> (i64, &str) {
    (lead.created_at.timestamp_millis(), lead.id.as_str())
}

/// One lead as listed: ids, vertical, status and times, never the lead's personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSummary {
    pub id: LeadId,
    pub vertical: Vertical,
    pub status: LeadStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&LeadRecord> for LeadSummary {
    fn from(lead: &LeadRecord) -> Self {
        LeadSummary {
            id: lead.id.clone(),
            vertical: lead.vertical,
            status: lead.status,
            created_at: lead.created_at,
            updated_at: lead.updated_at,
        }
    }
}

/// One page: at most the query's page size of leads, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadPage {
    pub leads: Vec<LeadSummary>,
    /// Where the next page starts; `None` when no lead of the listing is left. A page may hold fewer
    /// leads than asked for while `next` is set (a status filter that matched few of the leads the store
    /// read within its budget for one page): keep paging until `next` is `None`.
    pub next: Option<ListPosition>,
}
