//! Screening: the checks a lead passes before it may be sold, in the order validate runs them, each a
//! [`Check`] the partner reads on the timeline.
//!
//! 1. **Duplicates** ([`policy::Duplicates`]): each of the lead's values of the listed fields (`email`,
//!    `phone`) is claimed for it, race-free, through the store's conditional claim, for the window (0: for
//!    ever) from when the lead was received; a value another lead holds makes it a duplicate. With
//!    `scope = "partner"` the claim is the partner's own (two partners may each sell a consumer once). A
//!    claim held by a lead that no longer exists (discarded by ingest, expired) or that screening refused
//!    is stale: it is released and taken. When the lead is then refused (a duplicate of another field,
//!    suppressed, LeadSafe), its claims are released ([`release`]). A test lead claims nothing: it is only
//!    checked against the claims of real leads.
//! 2. **Suppression list** (`crate::suppression`): the keyed hashes of the lead's SSN, emails and phones
//!    against the operator's records active today.
//! 3. **LeadSafe** (seed 003): when the vertical asks it and the lead carries an SSN, `search` (or
//!    `search-detailed`); [`leadsafe_step`] turns the answer and the vertical's policy into the next step.
//!
//! The keys are keyed hashes of normalised values ([`contact_values`]): a value (PII) is never a key, never
//! logged and never in a check's words; a rejection names the rule and its window, never the other lead.

pub mod policy;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::connectors::leadsafe::{self, Detail, LeadSafeError, Rag};
use crate::crypto::KeyedHasher;
use crate::lead::{LeadId, LeadRecord, LeadStatus};
use crate::store::{ClaimOutcome, LeadStore, StoreError, Suppressions};
use crate::suppression::{self, SuppressionKind};
use crate::transport::{Transport, TransportError};
use crate::vertical::Vertical;
use policy::{
    AmberPolicy, ContactField, Duplicates, LeadSafePolicy, LeadSafeSettings, OnError, Scope,
};

/// One screening decision, as the timeline shows it: a stable code and words a partner can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub code: String,
    pub reason: String,
}

impl Check {
    pub fn new(code: &str, reason: impl Into<String>) -> Self {
        Check {
            code: code.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The result of screening one lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreeningVerdict {
    /// On to routing. `checks`: what was checked, in order. `amber_only`: LeadSafe rated the lead Amber and
    /// the policy offers it only to buyers that take Amber leads.
    Passed {
        checks: Vec<Check>,
        amber_only: bool,
    },
    /// Refused (terminal): the checks passed before, and the one that refused it.
    Rejected { checks: Vec<Check>, refusal: Check },
}

impl ScreeningVerdict {
    /// Passed with no checks (a vertical with nothing to check).
    pub fn passed() -> Self {
        ScreeningVerdict::Passed {
            checks: Vec::new(),
            amber_only: false,
        }
    }

    pub fn rejected(code: &str, reason: impl Into<String>) -> Self {
        ScreeningVerdict::Rejected {
            checks: Vec::new(),
            refusal: Check::new(code, reason),
        }
    }

    pub fn is_passed(&self) -> bool {
        matches!(self, ScreeningVerdict::Passed { .. })
    }
}

// ---- contact values ------------------------------------------------------------------------------------

/// Where a vertical's normalised lead keeps the consumer's emails and phones (JSON pointers; a pointer to
/// an array means every string in it).
pub fn contact_pointers(vertical: Vertical, field: ContactField) -> &'static [&'static str] {
    match (vertical, field) {
        (Vertical::Heloc, ContactField::Email) => &["/contactInfo/email"],
        (Vertical::Heloc, ContactField::Phone) => &["/contactInfo/phone"],
        (Vertical::Mortgage, ContactField::Email) => &["/borrower/email"],
        (Vertical::Mortgage, ContactField::Phone) => &["/borrower/phone"],
        (Vertical::Solar, ContactField::Email) => &["/email"],
        (Vertical::Solar, ContactField::Phone) => &["/phone_number"],
        (Vertical::RealEstate, ContactField::Email) => &["/emails"],
        (Vertical::RealEstate, ContactField::Phone) => &["/phones"],
    }
}

/// A value normalised for matching, as the suppression list normalises it ([`suppression::normalize`]):
/// an email trimmed and lower-cased; a phone as its 10 US digits (a leading country code 1 dropped).
/// `None`: nothing to match on.
pub fn normalize(field: ContactField, raw: &str) -> Option<String> {
    suppression::normalize(suppression_kind(field), raw).ok()
}

/// The lead's normalised values of `field`, without repeats.
pub fn contact_values(
    vertical: Vertical,
    lead: &serde_json::Value,
    field: ContactField,
) -> Vec<String> {
    let mut values = BTreeSet::new();
    for pointer in contact_pointers(vertical, field) {
        match lead.pointer(pointer) {
            Some(serde_json::Value::String(text)) => {
                values.extend(normalize(field, text));
            }
            Some(serde_json::Value::Array(items)) => {
                values.extend(
                    items
                        .iter()
                        .filter_map(serde_json::Value::as_str)
                        .filter_map(|text| normalize(field, text)),
                );
            }
            _ => {}
        }
    }
    values.into_iter().collect()
}

/// The keyed hash of a contact value, as the suppression list ([`suppression::hash`]) and the
/// sold-consumer marks key it (an SSN's is the lead's `ssn_hash`, the same function's).
pub fn contact_hash(hasher: &KeyedHasher, field: ContactField, normalized: &str) -> String {
    suppression::hash(hasher, suppression_kind(field), normalized)
}

fn suppression_kind(field: ContactField) -> SuppressionKind {
    match field {
        ContactField::Email => SuppressionKind::Email,
        ContactField::Phone => SuppressionKind::Phone,
    }
}

// ---- the suppression list ------------------------------------------------------------------------------

/// The suppression list's verdict on `lead` today: its SSN's keyed hash, and each email's and phone's
/// (`consumer`, from [`consumer_hashes`]), against the records active today.
pub async fn check_suppression(
    store: &dyn Suppressions,
    lead: &LeadRecord,
    consumer: &[(ContactField, String)],
    today: chrono::NaiveDate,
) -> Result<Result<Check, Check>, StoreError> {
    let mut probes: Vec<(SuppressionKind, String)> = Vec::new();
    if let Some(hash) = &lead.ssn_hash {
        probes.push((SuppressionKind::Ssn, hash.clone()));
    }
    probes.extend(
        consumer
            .iter()
            .map(|(field, hash)| (suppression_kind(*field), hash.clone())),
    );
    Ok(
        match suppression::active_match(store, &probes, today).await? {
            None => Ok(Check::new(
                "not_suppressed",
                "the consumer is not on the suppression list",
            )),
            Some(record) => {
                let what = match record.kind {
                    SuppressionKind::Ssn => "SSN",
                    SuppressionKind::Email => "email",
                    SuppressionKind::Phone => "phone",
                };
                Err(Check::new(
                    "suppressed",
                    format!(
                        "the consumer's {what} is on the suppression list ({}, since {})",
                        record.reason, record.start_date
                    ),
                ))
            }
        },
    )
}

/// The keyed hashes of every email and phone of the lead: who the consumer is, without their PII.
pub fn consumer_hashes(hasher: &KeyedHasher, lead: &LeadRecord) -> Vec<(ContactField, String)> {
    let body = lead.lead.value();
    ContactField::ALL
        .into_iter()
        .flat_map(|field| {
            contact_values(lead.vertical, &body, field)
                .into_iter()
                .map(move |value| (field, contact_hash(hasher, field, &value)))
        })
        .collect()
}

// ---- duplicates ----------------------------------------------------------------------------------------

/// One duplicate claim a lead makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    pub field: ContactField,
    /// `DEDUPE#<vertical>#<field>#<keyed hash>`: never the value.
    pub key: String,
    /// `None`: for ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The store key for one value under `rule`: a keyed hash, so the value itself (PII) is never a key. Under
/// `scope = "partner"` the partner is part of what is hashed.
pub fn duplicate_key(
    hasher: &KeyedHasher,
    vertical: Vertical,
    field: ContactField,
    scope: Scope,
    partner_id: &str,
    normalized: &str,
) -> String {
    let (vertical, field) = (vertical.as_str(), field.as_str());
    let hash = match scope {
        Scope::All => hasher.hex(&[vertical, field, normalized]),
        Scope::Partner => hasher.hex(&[vertical, field, "partner", partner_id, normalized]),
    };
    format!("DEDUPE#{vertical}#{field}#{hash}")
}

/// The claims `lead` makes under `rule`, in the rule's field order. The window runs from when the lead was
/// received.
pub fn duplicate_keys(
    hasher: &KeyedHasher,
    rule: &Duplicates,
    lead: &LeadRecord,
) -> Vec<DuplicateKey> {
    let body = lead.lead.value();
    let expires_at = (rule.window_days > 0).then(|| {
        crate::lead::later(
            lead.created_at,
            Duration::from_secs(u64::from(rule.window_days) * 86_400),
        )
    });
    rule.fields
        .iter()
        .flat_map(|&field| {
            contact_values(lead.vertical, &body, field)
                .into_iter()
                .map(move |value| DuplicateKey {
                    field,
                    key: duplicate_key(
                        hasher,
                        lead.vertical,
                        field,
                        rule.scope,
                        &lead.partner_id,
                        &value,
                    ),
                    expires_at,
                })
        })
        .collect()
}

/// What the duplicate check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuplicateCheck {
    /// Every key is this lead's (or, for a test lead, free).
    Unique,
    /// Another live lead holds a key of `field`; the claims this lead made before it were released.
    Duplicate { field: ContactField },
}

/// Claim every key for `lead` (a test lead only looks), in order; stop at the first held by another live
/// lead, releasing the claims made before it. `retention`: how long the store keeps a lead
/// (`hub.lead_retention_days`), to tell a holder that was discarded from one that expired.
pub async fn claim_duplicates(
    store: &dyn LeadStore,
    keys: &[DuplicateKey],
    lead: &LeadRecord,
    retention: Duration,
    now: DateTime<Utc>,
) -> Result<DuplicateCheck, StoreError> {
    for (index, key) in keys.iter().enumerate() {
        if !claim_one(store, key, lead, retention, now).await? {
            if !lead.test {
                release(store, &keys[..index], &lead.id).await;
            }
            return Ok(DuplicateCheck::Duplicate { field: key.field });
        }
    }
    Ok(DuplicateCheck::Unique)
}

/// Whether `key` is (now) the lead's, or free for a test lead. A holder that was discarded or that
/// screening refused does not count: its claim is released and the claim tried again.
async fn claim_one(
    store: &dyn LeadStore,
    key: &DuplicateKey,
    lead: &LeadRecord,
    retention: Duration,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // A stale holder is cleared at most a few times: each pass removes one.
    for _ in 0..3 {
        let holder = if lead.test {
            match store.unique_holder(&key.key, now).await? {
                Some(holder) if holder != lead.id => holder,
                _ => return Ok(true),
            }
        } else {
            match store
                .claim_unique(&key.key, &lead.id, key.expires_at, now)
                .await?
            {
                ClaimOutcome::Claimed => return Ok(true),
                ClaimOutcome::HeldBy(holder) => holder,
            }
        };
        if !is_stale(store, &holder, retention, now).await? {
            return Ok(false);
        }
        if lead.test {
            return Ok(true);
        }
        store.release_unique(&key.key, &holder).await?;
    }
    // Holders keep going stale under us: let the record be retried rather than call it a duplicate.
    Err(StoreError::Unavailable(
        "a duplicate claim kept changing hands; screening will be tried again".to_owned(),
    ))
}

/// A holder whose claim no longer stands: refused by screening, or gone while it could not have expired
/// yet (ingest discarded it). A holder gone after the store's retention expired as leads do: its claim
/// still stands for the rest of its window ("for ever" outlives the lead item).
async fn is_stale(
    store: &dyn LeadStore,
    holder: &LeadId,
    retention: Duration,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(match store.get_lead(holder).await? {
        None => {
            let received = DateTime::from_timestamp_millis(
                i64::try_from(holder.timestamp_millis()).unwrap_or(i64::MAX),
            )
            .unwrap_or(now);
            crate::lead::later(received, retention) > now
        }
        Some(lead) => lead.status == LeadStatus::Rejected,
    })
}

/// Give back `lead`'s claims (it was refused after claiming them). A claim not given back is cleared by the
/// next lead that meets it ([`claim_duplicates`] treats a refused holder as stale).
pub async fn release(store: &dyn LeadStore, keys: &[DuplicateKey], lead: &LeadId) {
    for key in keys {
        if let Err(error) = store.release_unique(&key.key, lead).await {
            tracing::warn!(lead_id = %lead, %error, "could not release a duplicate claim");
        }
    }
}

/// The timeline's words for the duplicate check.
pub fn duplicate_check(rule: &Duplicates, found: &DuplicateCheck) -> Result<Check, Check> {
    match found {
        DuplicateCheck::Unique => Ok(Check::new(
            "not_duplicate",
            format!("no earlier lead with the {}", rule.describe()),
        )),
        DuplicateCheck::Duplicate { field } => {
            let window = match rule.window_days {
                0 if rule.scope == Scope::All => "already exists in the system".to_owned(),
                0 => "was already posted by you".to_owned(),
                days => {
                    let from = if rule.scope == Scope::Partner {
                        " by you"
                    } else {
                        ""
                    };
                    format!("was already posted{from} within the last {days} days")
                }
            };
            Err(Check::new(
                &format!("duplicate_{field}"),
                format!(
                    "a lead with this {field} {window} (duplicate rule: {})",
                    rule.describe()
                ),
            ))
        }
    }
}

// ---- buyer-level duplicates ---------------------------------------------------------------------------

/// The mark that `destination` bought the consumer known by `hash` (`skip_if_sold_within_days`).
pub fn sold_key(destination: &str, field: ContactField, hash: &str) -> String {
    format!("SOLD#{destination}#{field}#{hash}")
}

/// Mark that `destination` bought `lead`'s consumer (each email and phone), for `days` from `now`. A
/// mark another sale holds is left as it is: it already says the buyer has the consumer.
pub async fn mark_sold(
    store: &dyn LeadStore,
    hasher: &KeyedHasher,
    lead: &LeadRecord,
    destination: &str,
    days: u32,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let until = crate::lead::later(now, Duration::from_secs(u64::from(days) * 86_400));
    for (field, hash) in consumer_hashes(hasher, lead) {
        store
            .claim_unique(
                &sold_key(destination, field, &hash),
                &lead.id,
                Some(until),
                now,
            )
            .await?;
    }
    Ok(())
}

/// Whether `destination` bought `lead`'s consumer (another lead with one of its emails or phones) and
/// its mark is still live at `now`.
pub async fn sold_before(
    store: &dyn LeadStore,
    consumer: &[(ContactField, String)],
    lead: &LeadId,
    destination: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    for (field, hash) in consumer {
        if let Some(holder) = store
            .unique_holder(&sold_key(destination, *field, hash), now)
            .await?
        {
            if &holder != lead {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

// ---- LeadSafe ------------------------------------------------------------------------------------------

/// What LeadSafe said: the result, and with `search-detailed` its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSafeAnswer {
    pub result: Rag,
    pub details: Vec<Detail>,
}

/// Why LeadSafe could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadSafeFailure {
    /// No answer in time, unreachable, 408/425/429/5xx, or an answer that is not the seed's.
    Unavailable {
        what: String,
        after: Option<Duration>,
    },
    /// 401/403: the credentials are wrong. A configuration failure: alarmed, never failed open.
    Unauthorized,
}

impl LeadSafeFailure {
    pub fn from_error(error: &LeadSafeError) -> Self {
        match error {
            LeadSafeError::Unauthorized => LeadSafeFailure::Unauthorized,
            LeadSafeError::Retry { after } => LeadSafeFailure::Unavailable {
                what: "LeadSafe asked to try again later".to_owned(),
                after: *after,
            },
            LeadSafeError::Refused { status, .. } => LeadSafeFailure::Unavailable {
                what: format!("LeadSafe refused the request ({status})"),
                after: None,
            },
            LeadSafeError::Unreadable { what } => LeadSafeFailure::Unavailable {
                what: format!("LeadSafe's answer could not be read ({what})"),
                after: None,
            },
        }
    }
}

/// Ask LeadSafe about `ssn` (9 digits): `search`, or `search-detailed` when the policy is `detailed`,
/// through the transport with the configured timeout. The SSN is only in the request's body, which is
/// never logged.
pub async fn ask_leadsafe(
    settings: &LeadSafeSettings,
    policy: &LeadSafePolicy,
    transport: &dyn Transport,
    ssn: &str,
    now: DateTime<Utc>,
) -> Result<LeadSafeAnswer, LeadSafeFailure> {
    let client = &settings.client;
    let request = if policy.detailed {
        client.search_detailed(ssn)
    } else {
        client.search(ssn)
    }
    .map_err(|_| LeadSafeFailure::Unavailable {
        what: "the SSN kept for screening is not 9 digits".to_owned(),
        after: None,
    })?;
    let response = transport
        .send(&request, settings.timeout)
        .await
        .map_err(|error| LeadSafeFailure::Unavailable {
            what: match error {
                TransportError::Timeout(_) => {
                    format!("no answer within {} ms", settings.timeout.as_millis())
                }
                TransportError::Unreachable => "LeadSafe could not be reached".to_owned(),
            },
            after: None,
        })?;
    let read = if policy.detailed {
        leadsafe::read_search_detailed(&response, now)
    } else {
        leadsafe::read_search(&response, now).map(|rag| (rag, Vec::new()))
    };
    read.map(|(result, details)| LeadSafeAnswer { result, details })
        .map_err(|error| LeadSafeFailure::from_error(&client.without_credentials(error)))
}

/// What follows LeadSafe's answer under the vertical's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadSafeStep {
    /// On to routing (Green, Amber passed, or failed open).
    Pass { check: Check, amber_only: bool },
    /// Refused (Red, or Amber under `amber = "reject"`).
    Reject(Check),
    /// Screen the lead again later; it stays `received`. `check`: the timeline's words.
    Wait {
        check: Check,
        after: Option<Duration>,
        configuration: bool,
    },
}

fn reasons(details: &[Detail]) -> String {
    if details.is_empty() {
        return String::new();
    }
    let listed: Vec<String> = details
        .iter()
        .map(|d| match d.end_date {
            None => format!("{} since {}", d.reason, d.start_date),
            Some(end) => format!("{} from {} to {}", d.reason, d.start_date, end),
        })
        .collect();
    format!(" ({})", listed.join("; "))
}

/// Why the lead's SSN is not at hand for LeadSafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsnMissing {
    /// The sealed copy is gone: it expired (`hub.ssn_ttl_hours`) before LeadSafe could be asked, or was
    /// never kept (the vertical did not ask LeadSafe when the lead was posted).
    Gone,
    /// The sealed copy does not open (`hub.ssn_key` changed, or the item is damaged).
    Unreadable,
}

/// The step when LeadSafe cannot be asked because the lead's SSN is not at hand: failed open when the
/// policy says so, refused otherwise (the lead can no longer be screened, and is not sold unscreened).
pub fn leadsafe_without_ssn(policy: &LeadSafePolicy, why: SsnMissing) -> LeadSafeStep {
    let what = match why {
        SsnMissing::Gone => "the SSN kept for screening had expired or was never kept",
        SsnMissing::Unreadable => "the SSN kept for screening could not be opened",
    };
    match policy.on_error {
        OnError::FailOpen => LeadSafeStep::Pass {
            check: Check::new(
                "leadsafe_fail_open",
                format!("LeadSafe could not be asked ({what}); passed without its check (on_error = fail_open)"),
            ),
            amber_only: false,
        },
        OnError::Retry => LeadSafeStep::Reject(Check::new(
            "leadsafe_unavailable",
            format!("LeadSafe could not be asked ({what}); the lead was not offered to buyers"),
        )),
    }
}

/// The step LeadSafe's answer (or failure) leads to under `policy`.
pub fn leadsafe_step(
    policy: &LeadSafePolicy,
    answer: Result<LeadSafeAnswer, LeadSafeFailure>,
) -> LeadSafeStep {
    match answer {
        Ok(LeadSafeAnswer {
            result: Rag::Green, ..
        }) => LeadSafeStep::Pass {
            check: Check::new("leadsafe_green", "LeadSafe: Green, no known issue with the consumer"),
            amber_only: false,
        },
        Ok(LeadSafeAnswer {
            result: Rag::Red,
            details,
        }) => LeadSafeStep::Reject(Check::new(
            "leadsafe_red",
            format!("LeadSafe rated the consumer Red{}", reasons(&details)),
        )),
        Ok(LeadSafeAnswer {
            result: Rag::Amber,
            details,
        }) => {
            let why = reasons(&details);
            match policy.amber {
                AmberPolicy::Reject => LeadSafeStep::Reject(Check::new(
                    "leadsafe_amber",
                    format!("LeadSafe rated the consumer Amber{why}; Amber leads are not sold"),
                )),
                AmberPolicy::AmberBuyers => LeadSafeStep::Pass {
                    check: Check::new(
                        "leadsafe_amber",
                        format!(
                            "LeadSafe rated the consumer Amber{why}: offered only to buyers that take Amber leads"
                        ),
                    ),
                    amber_only: true,
                },
                AmberPolicy::Pass => LeadSafeStep::Pass {
                    check: Check::new(
                        "leadsafe_amber",
                        format!("LeadSafe rated the consumer Amber{why}; Amber leads are sold as usual"),
                    ),
                    amber_only: false,
                },
            }
        }
        Err(LeadSafeFailure::Unauthorized) => LeadSafeStep::Wait {
            check: Check::new(
                "leadsafe_unavailable",
                "LeadSafe could not be asked (the hub's LeadSafe credentials were refused; the operators are alerted); screening will be tried again",
            ),
            after: None,
            configuration: true,
        },
        Err(LeadSafeFailure::Unavailable { what, after }) => match policy.on_error {
            OnError::Retry => LeadSafeStep::Wait {
                check: Check::new(
                    "leadsafe_unavailable",
                    format!("LeadSafe could not be asked ({what}); screening will be tried again"),
                ),
                after,
                configuration: false,
            },
            OnError::FailOpen => LeadSafeStep::Pass {
                check: Check::new(
                    "leadsafe_fail_open",
                    format!(
                        "LeadSafe could not be asked ({what}); passed without its check (on_error = fail_open)"
                    ),
                ),
                amber_only: false,
            },
        },
    }
}

#[cfg(test)]
mod tests;
