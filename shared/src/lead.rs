//! Leads: typed ids, statuses, the timeline, and the stored lead record.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::vertical::Vertical;

/// The current time to the millisecond: the precision every store keeps, so a record reads back as written.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// `at + duration`, saturating at the latest representable time instead of overflowing.
pub fn later(at: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|duration| at.checked_add_signed(duration))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Crockford base32 alphabet (no I, L, O, U): ids are case-insensitive and unambiguous when read aloud.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `prefix` followed by 26 Crockford base32 characters holding `now` as a 48-bit millisecond timestamp and 80
/// random bits from the OS generator: ids that sort by creation time and cannot be guessed (lead ids, and
/// [`crate::leadsafe_reports::ReportId`]).
pub(crate) fn time_ordered_id(prefix: &str, now: DateTime<Utc>) -> String {
    let millis = u128::from(now.timestamp_millis().max(0) as u64) & ((1u128 << 48) - 1);
    let mut random = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let mut value = millis << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(prefix.len() + 26);
    out.push_str(prefix);
    for i in (0..26).rev() {
        let index = ((value >> (5 * i)) & 0x1f) as usize;
        out.push(char::from(CROCKFORD[index]));
    }
    out
}

/// Whether `body` is 26 Crockford base32 characters (upper case) whose first carries only 3 bits: the body of
/// a [`time_ordered_id`].
pub(crate) fn is_time_ordered_body(body: &str) -> bool {
    body.len() == 26 && body.bytes().all(|c| CROCKFORD.contains(&c)) && body.as_bytes()[0] <= b'7'
}

/// A lead's id: `lead_` followed by 26 Crockford base32 characters holding a 48-bit millisecond timestamp
/// (so ids sort by creation time) and 80 random bits from the OS generator (so they cannot be guessed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LeadId(String);

impl LeadId {
    pub const PREFIX: &'static str = "lead_";

    /// A new id for a lead created at `now`.
    pub fn generate(now: DateTime<Utc>) -> Self {
        LeadId(time_ordered_id(Self::PREFIX, now))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Milliseconds since the epoch encoded in the id.
    pub fn timestamp_millis(&self) -> u64 {
        let body = &self.0[Self::PREFIX.len()..];
        let mut value: u128 = 0;
        for c in body.bytes() {
            let digit = CROCKFORD.iter().position(|&d| d == c).unwrap_or(0) as u128;
            value = (value << 5) | digit;
        }
        (value >> 80) as u64
    }
}

/// Why a string is not a lead id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a lead id is `lead_` followed by 26 characters of Crockford base32")]
pub struct InvalidLeadId;

impl FromStr for LeadId {
    type Err = InvalidLeadId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s.strip_prefix(Self::PREFIX).ok_or(InvalidLeadId)?;
        if body.len() != 26 {
            return Err(InvalidLeadId);
        }
        let upper = body.to_ascii_uppercase();
        if !upper.bytes().all(|c| CROCKFORD.contains(&c)) {
            return Err(InvalidLeadId);
        }
        // The first character carries only 3 bits (128 = 26 * 5 - 2).
        if upper.as_bytes()[0] > b'7' {
            return Err(InvalidLeadId);
        }
        Ok(LeadId(format!("{}{}", Self::PREFIX, upper)))
    }
}

impl TryFrom<String> for LeadId {
    type Error = InvalidLeadId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<LeadId> for String {
    fn from(value: LeadId) -> Self {
        value.0
    }
}

impl fmt::Display for LeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a lead is in its life. See DESIGN.md "Lead lifecycle".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    Received,
    Rejected,
    Routing,
    Delivered,
    Unsold,
    Confirmed,
    RejectedAfterPost,
    Returned,
    /// A test lead (`Leadhub-Test: true`): validated, screened and routed, no buyer called (terminal).
    Test,
}

impl LeadStatus {
    pub const ALL: [LeadStatus; 9] = [
        LeadStatus::Received,
        LeadStatus::Rejected,
        LeadStatus::Routing,
        LeadStatus::Delivered,
        LeadStatus::Unsold,
        LeadStatus::Confirmed,
        LeadStatus::RejectedAfterPost,
        LeadStatus::Returned,
        LeadStatus::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::Received => "received",
            LeadStatus::Rejected => "rejected",
            LeadStatus::Routing => "routing",
            LeadStatus::Delivered => "delivered",
            LeadStatus::Unsold => "unsold",
            LeadStatus::Confirmed => "confirmed",
            LeadStatus::RejectedAfterPost => "rejected_after_post",
            LeadStatus::Returned => "returned",
            LeadStatus::Test => "test",
        }
    }
}

impl FromStr for LeadStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LeadStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown lead status `{s}`"))
    }
}

impl fmt::Display for LeadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one delivery of a lead to one destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Planned for a later step of the lead's routing (a waterfall's next buyer): offered only if the
    /// buyers before it do not take the lead.
    Queued,
    Pending,
    InFlight,
    Accepted,
    Rejected,
    Retrying,
    Dead,
    /// Never offered: routing ended before its turn, or its cap was full when its turn came.
    Skipped,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 8] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Pending,
        DeliveryStatus::InFlight,
        DeliveryStatus::Accepted,
        DeliveryStatus::Rejected,
        DeliveryStatus::Retrying,
        DeliveryStatus::Dead,
        DeliveryStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::InFlight => "in_flight",
            DeliveryStatus::Accepted => "accepted",
            DeliveryStatus::Rejected => "rejected",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Dead => "dead",
            DeliveryStatus::Skipped => "skipped",
        }
    }

    /// No further attempt will be made.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Accepted
                | DeliveryStatus::Rejected
                | DeliveryStatus::Dead
                | DeliveryStatus::Skipped
        )
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown delivery status `{s}`"))
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one delivery, kept on the lead record under the destination's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryState {
    pub status: DeliveryStatus,
    /// Attempts started so far (the attempt in flight included).
    pub attempts: u32,
    /// While `in_flight`: until when the attempt's owner holds it; after that a redelivered job may take over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
    /// While `retrying`: not before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last outcome in words (no PII, no credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The buyer's own id for the lead, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_ref: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// The step of the lead's routing plan this delivery belongs to (0 first).
    #[serde(default)]
    pub step: u32,
    /// What the buyer pays for the lead when it accepts, in US cents: from the routing configuration, or, once
    /// accepted, from the buyer's answer when the destination's `price_path` found a price in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<u64>,
    /// The cap counters this delivery holds a place in (released when it is rejected or dead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_keys: Vec<String>,
    /// How long the buyer's rate limit (429) has made this delivery wait in all, in milliseconds: such
    /// waits use up no attempt, up to a total (`lifecycle::MAX_RATE_LIMIT_WAIT`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rate_limit_wait_ms: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl DeliveryState {
    pub fn pending(now: DateTime<Utc>) -> Self {
        DeliveryState {
            status: DeliveryStatus::Pending,
            attempts: 0,
            lease_until: None,
            next_attempt_at: None,
            reason: None,
            buyer_ref: None,
            updated_at: now,
            step: 0,
            price_cents: None,
            cap_keys: Vec::new(),
            rate_limit_wait_ms: 0,
        }
    }
}

/// What happened to a lead, as the partner reads it on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Received,
    Screened,
    Rejected,
    Routing,
    DeliveryAttempt,
    DeliveryAccepted,
    DeliveryRejected,
    DeliveryRetryScheduled,
    DeliveryDead,
    /// A planned delivery was not made (its buyer's cap was full when its turn came).
    DeliverySkipped,
    /// An operator replayed a dead delivery: it is pending again, from its first attempt.
    DeliveryReplayed,
    Delivered,
    Unsold,
    BuyerVerdict,
    /// A test lead's end: the plan it would have followed; no buyer was called.
    Test,
    /// Something a buyer reported doing with a lead it took (a Lofty webhook: the lead's information
    /// changed, the consumer was active on the buyer's site). Recorded only: the status does not change.
    BuyerActivity,
    /// A buyer's verdict arrived before its answer to the delivery was recorded: it is kept on the lead
    /// ([`LeadRecord::kept_verdicts`]) and applied once that answer is recorded.
    VerdictKept,
    /// A kept verdict could not be applied (the delivery ended rejected or dead, or the lead's status no
    /// longer takes it): recorded here, with why, and dropped.
    VerdictNotApplied,
}

impl EventKind {
    pub const ALL: [EventKind; 18] = [
        EventKind::Received,
        EventKind::Screened,
        EventKind::Rejected,
        EventKind::Routing,
        EventKind::DeliveryAttempt,
        EventKind::DeliveryAccepted,
        EventKind::DeliveryRejected,
        EventKind::DeliveryRetryScheduled,
        EventKind::DeliveryDead,
        EventKind::DeliverySkipped,
        EventKind::DeliveryReplayed,
        EventKind::Delivered,
        EventKind::Unsold,
        EventKind::BuyerVerdict,
        EventKind::Test,
        EventKind::BuyerActivity,
        EventKind::VerdictKept,
        EventKind::VerdictNotApplied,
    ];

    /// The wire name (`delivery_attempt`, ...), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Received => "received",
            EventKind::Screened => "screened",
            EventKind::Rejected => "rejected",
            EventKind::Routing => "routing",
            EventKind::DeliveryAttempt => "delivery_attempt",
            EventKind::DeliveryAccepted => "delivery_accepted",
            EventKind::DeliveryRejected => "delivery_rejected",
            EventKind::DeliveryRetryScheduled => "delivery_retry_scheduled",
            EventKind::DeliveryDead => "delivery_dead",
            EventKind::DeliverySkipped => "delivery_skipped",
            EventKind::DeliveryReplayed => "delivery_replayed",
            EventKind::Delivered => "delivered",
            EventKind::Unsold => "unsold",
            EventKind::BuyerVerdict => "buyer_verdict",
            EventKind::Test => "test",
            EventKind::BuyerActivity => "buyer_activity",
            EventKind::VerdictKept => "verdict_kept",
            EventKind::VerdictNotApplied => "verdict_not_applied",
        }
    }
}

/// One timeline entry: when, what, and a reason a partner can read. Never carries PII or credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEvent {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    /// The lead's status after this event.
    pub status: LeadStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A stable machine-readable code for the reason (`duplicate_email`, `http_503`, `timeout`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl TimelineEvent {
    pub fn new(at: DateTime<Utc>, kind: EventKind, status: LeadStatus) -> Self {
        TimelineEvent {
            at,
            kind,
            status,
            destination: None,
            attempt: None,
            reason: None,
            code: None,
        }
    }

    pub fn destination(mut self, destination: &str) -> Self {
        self.destination = Some(destination.to_owned());
        self
    }

    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt);
        self
    }

    pub fn reason(mut self, code: &str, reason: impl Into<String>) -> Self {
        self.code = Some(code.to_owned());
        self.reason = Some(reason.into());
        self
    }
}

/// A lead's body in its vertical's schema, normalised, kept as JSON text: it is written out (to the store,
/// to buyers) far more often than it is read field by field, so it is serialised once, straight from the
/// typed lead. Contains PII: never log it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeadJson(Box<serde_json::value::RawValue>);

impl LeadJson {
    /// The JSON text of a typed lead.
    pub fn from_serialize(lead: &impl Serialize) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(lead).map(LeadJson)
    }

    /// Stored JSON text, checked.
    pub fn from_text(text: String) -> Result<Self, serde_json::Error> {
        serde_json::value::RawValue::from_string(text).map(LeadJson)
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The lead as a JSON tree (parsed on demand).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl From<serde_json::Value> for LeadJson {
    fn from(value: serde_json::Value) -> Self {
        // Serialising a Value cannot fail; `null` otherwise.
        LeadJson::from_serialize(&value).unwrap_or_else(|_| LeadJson(Box::default()))
    }
}

impl PartialEq for LeadJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.value() == other.value()
    }
}

impl std::fmt::Debug for LeadJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeadJson({} bytes)", self.as_str().len())
    }
}

/// A buyer's verdict that arrived while its delivery was still open (pending, in flight or retrying: the
/// buyer called back before the hub recorded its answer to the POST). Kept on the lead, one per
/// destination, until that answer is recorded; then applied by the same rules as any verdict, or recorded
/// as not applicable ([`crate::lifecycle::apply_kept`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptVerdict {
    pub verdict: crate::callbacks::Verdict,
    /// The buyer's words, cleaned ([`crate::callbacks::clean_reason`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it arrived (to the millisecond): also what makes dropping it exactly-once.
    pub received_at: DateTime<Utc>,
}

/// A lead as stored: who posted it, its normalised body (the only place PII lives), status and history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadRecord {
    pub id: LeadId,
    pub partner_id: String,
    pub vertical: Vertical,
    pub status: LeadStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The lead in its vertical's schema, normalised. Contains PII: never log it.
    pub lead: LeadJson,
    /// The lead as the partner posted it (without any SSN), for buyers that want it as sent: JSON text, the
    /// posted text itself unless an SSN had to be removed ([`crate::verticals::ParsedLead::original`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<LeadJson>,
    /// The keyed hash of an SSN given for screening; the SSN itself is never part of the lead (a sealed copy
    /// is kept apart until screening has decided: [`crate::store::SealedSsns`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssn_hash: Option<String>,
    pub events: Vec<TimelineEvent>,
    pub deliveries: BTreeMap<String, DeliveryState>,
    /// Verdicts that arrived before their buyer's answer to the delivery was recorded, by destination
    /// ([`KeptVerdict`]). Kept apart from [`DeliveryState`]: dispatch writes a delivery's whole state from
    /// the record it read before calling the buyer, which would otherwise overwrite a verdict kept meanwhile.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kept_verdicts: BTreeMap<String, KeptVerdict>,
    /// When the store may forget the lead (DynamoDB TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Posted with `Leadhub-Test: true`: routed and explained, but no buyer is called and no cap or
    /// duplicate claim is taken.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl LeadRecord {
    /// A freshly received lead with its first timeline event.
    pub fn received(
        id: LeadId,
        partner_id: &str,
        vertical: Vertical,
        lead: impl Into<LeadJson>,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        LeadRecord {
            id,
            partner_id: partner_id.to_owned(),
            vertical,
            status: LeadStatus::Received,
            created_at: now,
            updated_at: now,
            lead: lead.into(),
            original: None,
            ssn_hash: None,
            events: vec![TimelineEvent::new(
                now,
                EventKind::Received,
                LeadStatus::Received,
            )],
            deliveries: BTreeMap::new(),
            kept_verdicts: BTreeMap::new(),
            expires_at,
            test: false,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_kinds_name_themselves_as_serde_does() {
        for kind in super::EventKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).expect("json"),
                serde_json::json!(kind.as_str())
            );
        }
    }

    use super::*;

    #[test]
    fn ids_are_prefixed_ordered_and_parse_back() {
        let t0 = DateTime::from_timestamp_millis(1_700_000_000_000).expect("valid time");
        let t1 = DateTime::from_timestamp_millis(1_700_000_000_001).expect("valid time");
        let a = LeadId::generate(t0);
        let b = LeadId::generate(t1);
        assert!(a.as_str().starts_with("lead_"));
        assert_eq!(a.as_str().len(), 31);
        assert!(a < b, "ids must sort by creation time");
        assert_eq!(a.timestamp_millis(), 1_700_000_000_000);
        assert_eq!(a.as_str().parse::<LeadId>(), Ok(a.clone()));
        assert_eq!(
            a.as_str().to_lowercase().parse::<LeadId>(),
            Ok(a),
            "ids are case-insensitive"
        );
    }

    #[test]
    fn ids_are_unguessable() {
        let now = Utc::now();
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| LeadId::generate(now)).collect();
        assert_eq!(
            ids.len(),
            1000,
            "same millisecond must still give distinct ids"
        );
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "lead_",
            "lead_123",
            "LEAD_01HZY0000000000000000000000",
            "lead_01HZY000000000000000000000U",
            "lead_81HZY00000000000000000000",
            "ld_01HZY00000000000000000000",
        ] {
            assert_eq!(bad.parse::<LeadId>(), Err(InvalidLeadId), "{bad}");
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in LeadStatus::ALL {
            assert_eq!(status.as_str().parse::<LeadStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).expect("serialises"),
                serde_json::json!(status.as_str())
            );
        }
        for status in DeliveryStatus::ALL {
            assert_eq!(status.as_str().parse::<DeliveryStatus>(), Ok(status));
        }
    }
}
