//! Buyer callbacks: the unguessable per-lead, per-buyer token in the callback URL, and the verdicts a buyer
//! may post.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::crypto::KeyedHasher;
use crate::lead::{LeadId, LeadStatus};

/// `<leadId>.<base64url HMAC(destination, leadId)>`: names the lead and proves the hub issued it for this
/// buyer. Tokens are not stored; any change to either part fails verification.
pub fn token(signer: &KeyedHasher, destination: &str, lead_id: &LeadId) -> String {
    let mac = signer.digest(&["callback-v1", destination, lead_id.as_str()]);
    format!("{}.{}", lead_id, URL_SAFE_NO_PAD.encode(mac))
}

/// The lead a token was issued for, if it was issued by this hub for `destination`.
pub fn verify_token(signer: &KeyedHasher, destination: &str, token: &str) -> Option<LeadId> {
    let (id, mac) = token.split_once('.')?;
    let lead_id: LeadId = id.parse().ok()?;
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    signer
        .verify(&["callback-v1", destination, lead_id.as_str()], &mac)
        .then_some(lead_id)
}

/// Where `destination` posts its verdict on `lead_id`.
pub fn url(base: &str, signer: &KeyedHasher, destination: &str, lead_id: &LeadId) -> String {
    format!(
        "{base}/v1/callbacks/{destination}/{}",
        token(signer, destination, lead_id)
    )
}

/// What a buyer says about a lead it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The sale stands.
    Confirmed,
    /// The buyer rejected the lead after taking it.
    Rejected,
    /// The buyer returned the lead (for credit).
    Returned,
    /// The buyer reached the consumer (informational).
    Contacted,
}

impl Verdict {
    /// The lead status this verdict moves to, and the statuses it may move from; `None`: no status change.
    pub fn transition(self) -> Option<(LeadStatus, &'static [LeadStatus])> {
        use LeadStatus::*;
        match self {
            Verdict::Confirmed => Some((Confirmed, &[Delivered])),
            Verdict::Rejected => Some((RejectedAfterPost, &[Delivered, Confirmed])),
            Verdict::Returned => Some((Returned, &[Delivered, Confirmed])),
            Verdict::Contacted => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Rejected => "rejected",
            Verdict::Returned => "returned",
            Verdict::Contacted => "contacted",
        }
    }
}

/// The body a buyer posts to its callback URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerdictBody {
    pub verdict: Verdict,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub buyer_ref: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_lead_and_destination() {
        let signer = KeyedHasher::new(b"0123456789abcdef0123456789abcdef");
        let other = KeyedHasher::new(b"fedcba9876543210fedcba9876543210");
        let id = LeadId::generate(chrono::Utc::now());
        let t = token(&signer, "lender", &id);
        assert_eq!(verify_token(&signer, "lender", &t), Some(id.clone()));
        assert_eq!(verify_token(&signer, "other", &t), None);
        assert_eq!(verify_token(&other, "lender", &t), None);
        let another = LeadId::generate(chrono::Utc::now());
        let forged = t.replace(id.as_str(), another.as_str());
        assert_eq!(verify_token(&signer, "lender", &forged), None);
        for junk in ["", ".", "x.y", &format!("{id}."), &format!("{id}.!!")] {
            assert_eq!(verify_token(&signer, "lender", junk), None, "{junk}");
        }
        assert!(url("https://h.example", &signer, "lender", &id)
            .starts_with("https://h.example/v1/callbacks/lender/lead_"));
    }
}
