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

/// The most of a buyer's reason that is kept.
pub const MAX_REASON_CHARS: usize = 500;

/// A buyer's reason as recorded: control characters dropped, at most [`MAX_REASON_CHARS`] characters.
pub fn clean_reason(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON_CHARS)
        .collect()
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

/// Why a callback body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictError {
    NotJson,
    WrongShape,
}

/// A buyer's verdict in any shape the hub reads: its own (`{"verdict", "reason"?, "buyerRef"?}`), or
/// nTherm's final result (seed 002: "the final result message will be sent to the call back url"; its format
/// is not documented, so the hub reads the shape of postLead's answers: `{"success_bit": true|false,
/// "message": "..." | [{"error": "..."}]}` — true confirms the sale, false is a rejection after post).
pub fn parse_verdict(body: &[u8]) -> Result<VerdictBody, VerdictError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| VerdictError::NotJson)?;
    if let Some(success) = value
        .get("success_bit")
        .and_then(serde_json::Value::as_bool)
    {
        let reason = match value.get("message") {
            Some(serde_json::Value::String(message)) => Some(message.clone()),
            Some(serde_json::Value::Array(errors)) => {
                let joined: Vec<&str> = errors
                    .iter()
                    .filter_map(|e| e.get("error").and_then(serde_json::Value::as_str))
                    .collect();
                (!joined.is_empty()).then(|| joined.join("; "))
            }
            _ => None,
        };
        return Ok(VerdictBody {
            verdict: if success {
                Verdict::Confirmed
            } else {
                Verdict::Rejected
            },
            reason,
            buyer_ref: value
                .get("lead_id")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        });
    }
    serde_json::from_value(value).map_err(|_| VerdictError::WrongShape)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reasons_are_cleaned_and_bounded() {
        assert_eq!(super::clean_reason("funded\n\u{7}ok"), "fundedok");
        assert_eq!(
            super::clean_reason(&"x".repeat(900)).len(),
            super::MAX_REASON_CHARS
        );
    }

    use super::*;

    #[test]
    fn verdicts_in_the_hubs_shape_and_in_nterms() {
        type Row<'a> = (&'a str, Result<(Verdict, Option<&'a str>), VerdictError>);
        let rows: Vec<Row> = vec![
            (r#"{"verdict":"confirmed"}"#, Ok((Verdict::Confirmed, None))),
            (
                r#"{"verdict":"returned","reason":"bad phone"}"#,
                Ok((Verdict::Returned, Some("bad phone"))),
            ),
            (
                r#"{"success_bit": true, "message": "Lead accepted."}"#,
                Ok((Verdict::Confirmed, Some("Lead accepted."))),
            ),
            (
                r#"{"success_bit": false, "message": [{"error": "Duplicate"}, {"error": "Out of area"}]}"#,
                Ok((Verdict::Rejected, Some("Duplicate; Out of area"))),
            ),
            (r#"{"success_bit": false}"#, Ok((Verdict::Rejected, None))),
            (r#"{"verdict":"maybe"}"#, Err(VerdictError::WrongShape)),
            (
                r#"{"verdict":"confirmed","extra":1}"#,
                Err(VerdictError::WrongShape),
            ),
            (r#"{"success_bit": "yes"}"#, Err(VerdictError::WrongShape)),
            ("not json", Err(VerdictError::NotJson)),
        ];
        for (body, expected) in rows {
            let got = parse_verdict(body.as_bytes()).map(|v| (v.verdict, v.reason));
            let expected = expected.map(|(v, r)| (v, r.map(str::to_owned)));
            assert_eq!(got, expected, "{body}");
        }
    }

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
