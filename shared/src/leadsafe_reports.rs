//! Consumer statuses reported back to LeadSafe (seed 003: "each time one of your customers enters or
//! leaves one of LeadSafe's status criteria ... you must make a call to this endpoint").
//!
//! A status is reported by a buyer (its verdict's `consumerStatus`, through callback) or by an operator
//! (`leadhub-admin leadsafe report`). Whoever reports it gives the SSN, since LeadSafe keys on it; the hub
//! then:
//!
//! 1. suppresses the consumer locally at once ([`suppression_record`]: an SSN record under the SSN's keyed
//!    hash, the LeadSafe reason, source [`SUPPRESSION_SOURCE`]), whether LeadSafe is configured or not;
//! 2. when `[screening.leadsafe]` and `hub.ssn_key` are configured, keeps a [`LeadSafeReport`]: the SSN
//!    sealed ([`SsnSealer`], XChaCha20-Poly1305, the report's id as associated data, so a sealed SSN opens
//!    only for its report), never its digits, until `report_retention_days` after it was reported (the
//!    [`LeadSafeReports`](crate::store::LeadSafeReports) port; DynamoDB's TTL removes it);
//! 3. sends it with LeadSafe's `add` ([`send_reports`]); one that could not be sent stays unsent, to be sent
//!    again by `leadhub-admin leadsafe send`, and every kept report can be exported as LeadSafe's SFTP CSV
//!    (`leadhub-admin leadsafe export`) until it expires.
//!
//! The pure parts (the report, its record, its suppression record, the timeline's words) know nothing of
//! the store or the network; [`send_reports`] and [`report_status`] do the I/O through the ports they are
//! given. Nothing here logs or returns an SSN: a [`LeadSafeReport`]'s `Debug` shows its sealed SSN as
//! `SealedSsn(v1, …)`, a [`LeadSafeRecord`]'s as `Ssn(***)`, and a request to `add` (whose body holds the
//! SSNs) is never logged.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::connectors::leadsafe::{read_add, LeadSafeError, LeadSafeRecord, Reason};
use crate::crypto::{KeyedHasher, SealError, SealedSsn, SsnSealer};
use crate::lead::{EventKind, LeadId, LeadRecord, TimelineEvent};
use crate::screening::policy::LeadSafeSettings;
use crate::store::{LeadSafeReports, StoreError, Suppressions};
use crate::suppression::{self, SuppressionKind, SuppressionRecord};
use crate::transport::{Transport, TransportError};

/// The `source` of the local suppression record a reported status makes.
pub const SUPPRESSION_SOURCE: &str = "leadsafe-report";

/// The timeline code of a consumer status a buyer reported on a lead.
pub const CONSUMER_STATUS_REPORTED: &str = "consumer_status_reported";

/// The most records one `add` carries (the seed sets no limit; this keeps a request small).
pub const ADD_BATCH: usize = 100;

/// The alarm field logged when LeadSafe refuses the hub's credentials (the template's metric filters
/// count it).
pub const CREDENTIALS_ALARM: &str = "leadsafe_credentials_refused";

/// A report's id: `lsr_` and 26 Crockford base32 characters, time-ordered (the time it was reported) and
/// unguessable, like a lead's. It is the associated data its SSN is sealed with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReportId(String);

impl ReportId {
    pub const PREFIX: &'static str = "lsr_";

    /// A new id for a status reported at `now`.
    pub fn generate(now: DateTime<Utc>) -> Self {
        ReportId(crate::lead::time_ordered_id(Self::PREFIX, now))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not a report id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a report id is `lsr_` followed by 26 characters of Crockford base32")]
pub struct InvalidReportId;

impl FromStr for ReportId {
    type Err = InvalidReportId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s
            .strip_prefix(Self::PREFIX)
            .ok_or(InvalidReportId)?
            .to_ascii_uppercase();
        if crate::lead::is_time_ordered_body(&body) {
            Ok(ReportId(format!("{}{body}", Self::PREFIX)))
        } else {
            Err(InvalidReportId)
        }
    }
}

impl TryFrom<String> for ReportId {
    type Error = InvalidReportId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ReportId> for String {
    fn from(id: ReportId) -> String {
        id.0
    }
}

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who reported a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportSource {
    /// A buyer, in its verdict on a lead it took.
    Buyer {
        destination: String,
        lead_id: LeadId,
    },
    /// An operator, with `leadhub-admin leadsafe report`.
    Operator,
}

impl ReportSource {
    /// `buyer` or `operator`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReportSource::Buyer { .. } => "buyer",
            ReportSource::Operator => "operator",
        }
    }
}

/// A consumer status to tell LeadSafe: the customer entered `reason` on `start_date` and left it on
/// `end_date` if set. The SSN is held only sealed for this report; the report is kept until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSafeReport {
    pub id: ReportId,
    /// The SSN, sealed with the report's id as associated data.
    pub sealed: SealedSsn,
    pub reason: Reason,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub source: ReportSource,
    pub reported_at: DateTime<Utc>,
    /// When LeadSafe answered its `add` with success; `None` while it is still to be sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// `reported_at` plus `report_retention_days`: after that it is neither read nor sent.
    pub expires_at: DateTime<Utc>,
}

/// Why a status cannot be reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("its end date is before its start date")]
    EndBeforeStart,
}

impl LeadSafeReport {
    /// The report of `record` by `source` at `now`, kept for `retention`: a new id, the SSN sealed for it.
    /// A record that ends before it starts is refused (LeadSafe would refuse it).
    pub fn new(
        sealer: &SsnSealer,
        record: &LeadSafeRecord,
        source: ReportSource,
        now: DateTime<Utc>,
        retention: Duration,
    ) -> Result<Self, ReportError> {
        if record.end_date.is_some_and(|end| end < record.start_date) {
            return Err(ReportError::EndBeforeStart);
        }
        let id = ReportId::generate(now);
        Ok(LeadSafeReport {
            sealed: sealer.seal(id.as_str(), record.ssn.expose()),
            id,
            reason: record.reason,
            start_date: record.start_date,
            end_date: record.end_date,
            source,
            reported_at: now,
            sent_at: None,
            expires_at: crate::lead::later(now, retention),
        })
    }

    /// The record to send: the SSN opened (it opens only under the key it was sealed with, for this id).
    pub fn to_record(&self, sealer: &SsnSealer) -> Result<LeadSafeRecord, SealError> {
        Ok(LeadSafeRecord {
            ssn: sealer.open(self.id.as_str(), &self.sealed)?,
            reason: self.reason,
            start_date: self.start_date,
            end_date: self.end_date,
        })
    }

    /// Whether it is past its retention at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

/// The local suppression record of a reported status: an SSN record under the SSN's keyed hash (a lead's
/// `ssn_hash`), LeadSafe's reason, the same dates, source [`SUPPRESSION_SOURCE`]. Stored again it replaces
/// itself (same kind, hash, reason and start date), so reporting a status twice, or its end later, is safe.
pub fn suppression_record(hasher: &KeyedHasher, record: &LeadSafeRecord) -> SuppressionRecord {
    SuppressionRecord {
        kind: SuppressionKind::Ssn,
        hash: suppression::hash(hasher, SuppressionKind::Ssn, record.ssn.expose()),
        reason: record.reason.into(),
        start_date: record.start_date,
        end_date: record.end_date,
        source: SUPPRESSION_SOURCE.to_owned(),
    }
}

/// The timeline's words for a reported status: `Default since 2026-11-01`, `Lawsuit from 2026-01-05 to
/// 2026-03-01`. The reason and dates only: never the SSN.
pub fn status_words(record: &LeadSafeRecord) -> String {
    match record.end_date {
        None => format!("{} since {}", record.reason, record.start_date),
        Some(end) => format!("{} from {} to {end}", record.reason, record.start_date),
    }
}

/// The timeline event of `destination` reporting `record` on `lead`: kind `buyer_verdict`, code
/// [`CONSUMER_STATUS_REPORTED`], the reason and dates as [`status_words`] says them, the lead's status
/// unchanged. `None` when the lead already has that event (the buyer sent its verdict again).
pub fn consumer_status_event(
    lead: &LeadRecord,
    destination: &str,
    record: &LeadSafeRecord,
    now: DateTime<Utc>,
) -> Option<TimelineEvent> {
    let words = status_words(record);
    let recorded = lead.events.iter().any(|event| {
        event.kind == EventKind::BuyerVerdict
            && event.code.as_deref() == Some(CONSUMER_STATUS_REPORTED)
            && event.destination.as_deref() == Some(destination)
            && event.reason.as_deref() == Some(words.as_str())
    });
    (!recorded).then(|| {
        TimelineEvent::new(now, EventKind::BuyerVerdict, lead.status)
            .destination(destination)
            .reason(CONSUMER_STATUS_REPORTED, words)
    })
}

// ---- sending ------------------------------------------------------------------------------------------

/// Why sending stopped with reports left unsent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendStop {
    /// LeadSafe refused the credentials (401/403): a configuration error, logged with
    /// `alarm = "leadsafe_credentials_refused"`. Nothing more is tried.
    CredentialsRefused,
    /// No answer, or one to try again later (408, 425, 429, 5xx), or one that is not the seed's.
    Unavailable {
        what: String,
        after: Option<Duration>,
    },
    /// LeadSafe took the records but the store could not mark them sent (they will be sent again: an `add`
    /// of the same record updates it).
    Store(String),
}

impl fmt::Display for SendStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendStop::CredentialsRefused => f.write_str(
                "LeadSafe refused the API key and client secret: check [screening.leadsafe] api_key and \
                 client_secret",
            ),
            SendStop::Unavailable { what, after: None } => f.write_str(what),
            SendStop::Unavailable {
                what,
                after: Some(after),
            } => write!(f, "{what} (LeadSafe asked to wait {} s)", after.as_secs()),
            SendStop::Store(what) => write!(f, "sent, but not marked sent: {what}"),
        }
    }
}

/// What [`send_reports`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendOutcome {
    /// Reports LeadSafe added, now marked sent.
    pub sent: Vec<ReportId>,
    /// Reports LeadSafe refused on their own (sent alone), with its message (SSNs and credentials
    /// masked). They stay unsent.
    pub refused: Vec<(ReportId, String)>,
    /// Reports whose sealed SSN does not open (sealed under another `hub.ssn_key`): not sent.
    pub unopened: Vec<ReportId>,
    /// Why the rest was left unsent, if it was.
    pub stopped: Option<SendStop>,
}

impl SendOutcome {
    /// Whether every report given was sent.
    pub fn all_sent(&self) -> bool {
        self.refused.is_empty() && self.unopened.is_empty() && self.stopped.is_none()
    }
}

/// How one `add` went.
enum AddAnswer {
    Added,
    Refused(String),
    Stop(SendStop),
}

async fn add(
    transport: &dyn Transport,
    settings: &LeadSafeSettings,
    records: &[LeadSafeRecord],
    timeout: Duration,
    now: DateTime<Utc>,
) -> AddAnswer {
    let client = &settings.client;
    let request = match client.add(records) {
        Ok(request) => request,
        // The records were checked when they were reported: this is not expected.
        Err(error) => return AddAnswer::Refused(error.to_string()),
    };
    let response = match transport.send(&request, timeout).await {
        Ok(response) => response,
        Err(error) => {
            return AddAnswer::Stop(SendStop::Unavailable {
                what: match error {
                    TransportError::Timeout(_) => {
                        format!("LeadSafe gave no answer within {} ms", timeout.as_millis())
                    }
                    TransportError::Unreachable => "LeadSafe could not be reached".to_owned(),
                },
                after: None,
            })
        }
    };
    match read_add(&response, now).map_err(|error| client.without_credentials(error)) {
        Ok(()) => AddAnswer::Added,
        Err(LeadSafeError::Unauthorized) => AddAnswer::Stop(SendStop::CredentialsRefused),
        Err(LeadSafeError::Retry { after }) => AddAnswer::Stop(SendStop::Unavailable {
            what: "LeadSafe asked to try again later".to_owned(),
            after,
        }),
        Err(LeadSafeError::Unreadable { what }) => AddAnswer::Stop(SendStop::Unavailable {
            what: format!("LeadSafe's answer could not be read ({what})"),
            after: None,
        }),
        Err(LeadSafeError::Refused { status, message }) => {
            AddAnswer::Refused(format!("LeadSafe refused it ({status}): {message}"))
        }
    }
}

/// Mark `ids` sent at `at`; the first failure stops it.
async fn mark_sent(
    store: &dyn LeadSafeReports,
    ids: &[ReportId],
    at: DateTime<Utc>,
    outcome: &mut SendOutcome,
) -> Result<(), SendStop> {
    for id in ids {
        store
            .mark_report_sent(id, at)
            .await
            .map_err(|error| SendStop::Store(error.to_string()))?;
        outcome.sent.push(id.clone());
    }
    Ok(())
}

/// Send `reports` with LeadSafe's `add`, [`ADD_BATCH`] records at a time, each exchange bounded by
/// `timeout`, and mark each one LeadSafe added as sent at `now`.
///
/// A batch LeadSafe refuses (a 4xx other than 401/403, or a `code` other than 100) is sent again one
/// record at a time, so that one bad record does not hold back the others; a record refused alone stays
/// unsent and is listed in [`SendOutcome::refused`]. Refused credentials (logged as an error with `alarm =
/// "leadsafe_credentials_refused"`), no answer, or an answer to retry later stop it: what is left stays
/// unsent, for `leadhub-admin leadsafe send`. Logs carry report ids and counts, never a request body.
pub async fn send_reports(
    transport: &dyn Transport,
    settings: &LeadSafeSettings,
    sealer: &SsnSealer,
    store: &dyn LeadSafeReports,
    reports: &[LeadSafeReport],
    timeout: Duration,
    now: DateTime<Utc>,
) -> SendOutcome {
    let mut outcome = SendOutcome::default();
    let mut opened: Vec<(ReportId, LeadSafeRecord)> = Vec::with_capacity(reports.len());
    for report in reports {
        match report.to_record(sealer) {
            Ok(record) => opened.push((report.id.clone(), record)),
            Err(error) => {
                tracing::error!(report_id = %report.id, %error, "a LeadSafe report's sealed SSN does not open: it cannot be sent");
                outcome.unopened.push(report.id.clone());
            }
        }
    }
    'batches: for batch in opened.chunks(ADD_BATCH) {
        let records: Vec<LeadSafeRecord> = batch.iter().map(|(_, r)| r.clone()).collect();
        let ids: Vec<ReportId> = batch.iter().map(|(id, _)| id.clone()).collect();
        let stop = match add(transport, settings, &records, timeout, now).await {
            AddAnswer::Added => mark_sent(store, &ids, now, &mut outcome).await.err(),
            AddAnswer::Refused(message) if batch.len() == 1 => {
                tracing::warn!(report_id = %ids[0], problem = %message, "LeadSafe refused a reported status; it stays unsent");
                outcome.refused.push((ids[0].clone(), message));
                None
            }
            AddAnswer::Refused(_) => {
                // One at a time, to tell the refused record from the others.
                for (id, record) in batch {
                    let stop = match add(
                        transport,
                        settings,
                        std::slice::from_ref(record),
                        timeout,
                        now,
                    )
                    .await
                    {
                        AddAnswer::Added => {
                            mark_sent(store, std::slice::from_ref(id), now, &mut outcome)
                                .await
                                .err()
                        }
                        AddAnswer::Refused(message) => {
                            tracing::warn!(report_id = %id, problem = %message, "LeadSafe refused a reported status; it stays unsent");
                            outcome.refused.push((id.clone(), message));
                            None
                        }
                        AddAnswer::Stop(stop) => Some(stop),
                    };
                    if let Some(stop) = stop {
                        outcome.stopped = Some(stop);
                        break 'batches;
                    }
                }
                None
            }
            AddAnswer::Stop(stop) => Some(stop),
        };
        if let Some(stop) = stop {
            outcome.stopped = Some(stop);
            break;
        }
    }
    let unsent = reports.len() - outcome.sent.len();
    match &outcome.stopped {
        Some(SendStop::CredentialsRefused) => tracing::error!(
            alarm = CREDENTIALS_ALARM,
            unsent,
            "LeadSafe refused the hub's credentials: check [screening.leadsafe] api_key and client_secret; reported statuses wait unsent"
        ),
        Some(stop) => tracing::warn!(
            sent = outcome.sent.len(),
            unsent,
            problem = %stop,
            "reported statuses were left unsent"
        ),
        None => tracing::info!(
            sent = outcome.sent.len(),
            unsent,
            "reported statuses sent to LeadSafe"
        ),
    }
    outcome
}

// ---- one status, as a buyer reports it -----------------------------------------------------------------

/// What [`report_status`] needs of the store and the network.
#[derive(Clone, Copy)]
pub struct ReportPorts<'a> {
    pub suppressions: &'a dyn Suppressions,
    pub reports: &'a dyn LeadSafeReports,
    pub transport: &'a dyn Transport,
}

/// LeadSafe as configured: both `[screening.leadsafe]` and `hub.ssn_key`, or the hub cannot report to it.
#[derive(Clone, Copy)]
pub struct LeadSafeReporting<'a> {
    pub settings: &'a LeadSafeSettings,
    pub sealer: &'a SsnSealer,
    /// The most one `add` may take (a caller answering a request bounds it below its own deadline).
    pub timeout: Duration,
}

/// What became of a reported status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// Suppressed locally, kept and sent to LeadSafe.
    Sent(ReportId),
    /// Suppressed locally and kept; not sent yet (`leadhub-admin leadsafe send` sends it).
    Unsent { id: ReportId, why: String },
    /// Suppressed locally only: LeadSafe is not configured.
    SuppressedOnly,
}

impl Reported {
    /// `sent`, `unsent` or `not_configured`: what a buyer is told of LeadSafe.
    pub fn leadsafe(&self) -> &'static str {
        match self {
            Reported::Sent(_) => "sent",
            Reported::Unsent { .. } => "unsent",
            Reported::SuppressedOnly => "not_configured",
        }
    }
}

/// Report one status: the local suppression record first (the hub stops selling the consumer whatever
/// LeadSafe says), then, with LeadSafe configured, the report kept and sent. A store failure is an error
/// (nothing after it was done; the same report again is safe); LeadSafe failing leaves the report unsent.
pub async fn report_status(
    ports: ReportPorts<'_>,
    hasher: &KeyedHasher,
    leadsafe: Option<LeadSafeReporting<'_>>,
    record: &LeadSafeRecord,
    source: ReportSource,
    now: DateTime<Utc>,
) -> Result<Reported, ReportStatusError> {
    let report = leadsafe
        .map(|leadsafe| {
            LeadSafeReport::new(
                leadsafe.sealer,
                record,
                source,
                now,
                leadsafe.settings.report_retention,
            )
        })
        .transpose()?;
    ports
        .suppressions
        .put_suppressions(&[suppression_record(hasher, record)])
        .await?;
    let (Some(leadsafe), Some(report)) = (leadsafe, report) else {
        return Ok(Reported::SuppressedOnly);
    };
    ports.reports.put_report(&report).await?;
    let outcome = send_reports(
        ports.transport,
        leadsafe.settings,
        leadsafe.sealer,
        ports.reports,
        std::slice::from_ref(&report),
        leadsafe.timeout,
        now,
    )
    .await;
    Ok(if outcome.sent.contains(&report.id) {
        Reported::Sent(report.id)
    } else {
        let why = match (&outcome.stopped, outcome.refused.first()) {
            (Some(stop), _) => stop.to_string(),
            (None, Some((_, message))) => message.clone(),
            (None, None) => "its sealed SSN does not open".to_owned(),
        };
        Reported::Unsent { id: report.id, why }
    })
}

/// Why [`report_status`] did not get as far as keeping the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportStatusError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

#[cfg(test)]
mod tests;
