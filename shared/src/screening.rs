//! Screening: the checks a lead passes before it is offered to buyers. Now: uniqueness of the vertical's
//! unique fields (seed 001: the email "must not already exist in the system"), race-free through the store's
//! conditional claim. Suppression lists and LeadSafe come with the screening issue.

use crate::crypto::KeyedHasher;
use crate::lead::LeadRecord;
use crate::store::{ClaimOutcome, LeadStore, StoreError};

/// The result of screening one lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreeningVerdict {
    Passed,
    Rejected { code: String, reason: String },
}

/// The store key for a unique value: a keyed hash, so the value itself (PII) is never a key.
pub fn unique_key(hasher: &KeyedHasher, vertical: &str, field: &str, normalized: &str) -> String {
    format!(
        "DEDUPE#{vertical}#{field}#{}",
        hasher.hex(&[vertical, field, normalized])
    )
}

/// Screen `lead`: each unique field is claimed for it, race-free; a value another lead holds rejects it. A
/// test lead claims nothing: it is only checked against the claims of real leads.
pub async fn screen(
    store: &dyn LeadStore,
    hasher: &KeyedHasher,
    lead: &LeadRecord,
) -> Result<ScreeningVerdict, StoreError> {
    for (field, value) in lead.vertical.unique_values(&lead.lead.value()) {
        let key = unique_key(hasher, lead.vertical.as_str(), field, &value);
        let outcome = if lead.test {
            match store.unique_holder(&key).await? {
                Some(holder) if holder != lead.id => ClaimOutcome::HeldBy(holder),
                _ => ClaimOutcome::Claimed,
            }
        } else {
            store.claim_unique(&key, &lead.id, None).await?
        };
        match outcome {
            ClaimOutcome::Claimed => {}
            ClaimOutcome::HeldBy(_) => {
                return Ok(ScreeningVerdict::Rejected {
                    code: format!("duplicate_{field}"),
                    reason: format!("a lead with this {field} already exists in the system"),
                })
            }
        }
    }
    Ok(ScreeningVerdict::Passed)
}
