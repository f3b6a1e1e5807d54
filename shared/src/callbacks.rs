//! Buyer callbacks: the unguessable per-lead, per-buyer token in the callback URL, and the verdicts a buyer
//! may post.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connectors::leadsafe::{LeadSafeRecord, Reason, Ssn};
use crate::crypto::KeyedHasher;
use crate::lead::{LeadId, LeadStatus};
use crate::verticals::FieldError;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

    pub const ALL: [Verdict; 4] = [
        Verdict::Confirmed,
        Verdict::Rejected,
        Verdict::Returned,
        Verdict::Contacted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Rejected => "rejected",
            Verdict::Returned => "returned",
            Verdict::Contacted => "contacted",
        }
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verdict::ALL
            .into_iter()
            .find(|verdict| verdict.as_str() == s)
            .ok_or_else(|| format!("unknown verdict `{s}`"))
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
    /// A consumer status LeadSafe tracks, with the SSN it keys on (`consumerStatus`, read by
    /// [`parse_consumer_status`]). Its `Debug` shows the SSN as `Ssn(***)`.
    #[serde(skip)]
    pub consumer_status: Option<LeadSafeRecord>,
}

/// Why a callback body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerdictError {
    NotJson,
    WrongShape,
    /// `consumerStatus` is not what it must be: one error per problem, naming the field
    /// (`consumerStatus.reason`), never repeating a value.
    ConsumerStatus(Vec<FieldError>),
}

/// The field of a verdict that carries a consumer status.
pub const CONSUMER_STATUS_FIELD: &str = "consumerStatus";

/// A verdict's `consumerStatus`: `{"reason": "Default", "startDate": "2026-11-01", "endDate": null, "ssn":
/// "123-45-6789"}`. `reason` exactly one of LeadSafe's nine (as seed 003 spells them); `startDate` and
/// `endDate` (optional, `null` for none, not before `startDate`) as `YYYY-MM-DD`; `ssn` 9 digits, dashes
/// and spaces allowed. Every problem is listed, each naming its field; none repeats a value (an SSN may be
/// under any key).
pub fn parse_consumer_status(value: &Value) -> Result<LeadSafeRecord, Vec<FieldError>> {
    let field = |name: &str| format!("{CONSUMER_STATUS_FIELD}.{name}");
    let Some(object) = value.as_object() else {
        return Err(vec![FieldError::new(
            CONSUMER_STATUS_FIELD,
            "invalid_type",
            "must be an object: {\"reason\", \"startDate\", \"endDate\"?, \"ssn\"}",
        )]);
    };
    let mut errors = Vec::new();
    for key in object.keys() {
        if !matches!(key.as_str(), "reason" | "startDate" | "endDate" | "ssn") {
            // A key is named only when it is plainly a name, not something a value could hide in.
            let named = key.len() <= 40 && key.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
            errors.push(if named {
                FieldError::new(
                    field(key),
                    "unknown_field",
                    "is not a field of a consumer status (reason, startDate, endDate, ssn)",
                )
            } else {
                FieldError::new(
                    CONSUMER_STATUS_FIELD,
                    "unknown_field",
                    "holds a field other than reason, startDate, endDate and ssn",
                )
            });
        }
    }
    let text = |name: &str, errors: &mut Vec<FieldError>| -> Option<String> {
        match object.get(name) {
            None | Some(Value::Null) => {
                errors.push(FieldError::new(field(name), "required", "is required"));
                None
            }
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                errors.push(FieldError::new(
                    field(name),
                    "invalid_type",
                    "must be a string",
                ));
                None
            }
        }
    };
    let date_rule = "must be a date written YYYY-MM-DD, such as 2026-11-01";
    let reason = text("reason", &mut errors).and_then(|reason| match reason.parse::<Reason>() {
        Ok(reason) => Some(reason),
        Err(_) => {
            errors.push(FieldError::new(
                field("reason"),
                "invalid_value",
                "must be one of LeadSafe's nine reasons, spelled as LeadSafe spells them: Default, \
                 RevokePaymentAuth, Lawsuit, RegulatoryComplaint, DebtConsolidation, SuspectedIdTheft, \
                 Bankruptcy, Abusive, Deceased",
            ));
            None
        }
    });
    let start_date = text("startDate", &mut errors).and_then(|start| {
        let parsed = crate::suppression::parse_date(&start);
        if parsed.is_none() {
            errors.push(FieldError::new(
                field("startDate"),
                "invalid_format",
                date_rule,
            ));
        }
        parsed
    });
    let end_date = match object.get("endDate") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(end)) => match crate::suppression::parse_date(end) {
            Some(end) => Ok(Some(end)),
            None => Err(FieldError::new(
                field("endDate"),
                "invalid_format",
                format!("{date_rule}, or null"),
            )),
        },
        Some(_) => Err(FieldError::new(
            field("endDate"),
            "invalid_type",
            "must be a string or null",
        )),
    };
    let end_date = match end_date {
        Ok(Some(end)) if start_date.is_some_and(|start| end < start) => {
            errors.push(FieldError::new(
                field("endDate"),
                "out_of_range",
                "must not be before startDate",
            ));
            None
        }
        Ok(end) => end,
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let ssn = text("ssn", &mut errors).and_then(|ssn| match Ssn::parse(&ssn) {
        Ok(ssn) => Some(ssn),
        Err(_) => {
            errors.push(FieldError::new(
                field("ssn"),
                "invalid_format",
                "must be the consumer's SSN: 9 digits (dashes and spaces are ignored)",
            ));
            None
        }
    });
    match (reason, start_date, ssn) {
        (Some(reason), Some(start_date), Some(ssn)) if errors.is_empty() => Ok(LeadSafeRecord {
            ssn,
            reason,
            start_date,
            end_date,
        }),
        _ => Err(errors),
    }
}

/// nTherm's `success_bit` as it may really arrive: a boolean, or `"true"`/`"false"`/`"1"`/`"0"` (any case,
/// trimmed), or the numbers 1 and 0. Anything else is not a `success_bit` the hub can read.
fn success_bit(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(bit) => Some(*bit),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(number) => match number.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A buyer's verdict in any shape the hub reads: its own (`{"verdict", "reason"?, "buyerRef"?,
/// "consumerStatus"?}`, the last read by [`parse_consumer_status`]), or
/// nTherm's final result (seed 002: "the final result message will be sent to the call back url"; its format
/// is not documented, so the hub reads the shape of postLead's answers: `{"success_bit": true|false (or as
/// text or 1/0: [`success_bit`]),
/// "message": "..." | [{"error": "..."}]}` — true confirms the sale, false is a rejection after post).
pub fn parse_verdict(body: &[u8]) -> Result<VerdictBody, VerdictError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| VerdictError::NotJson)?;
    if let Some(success) = value.get("success_bit").and_then(success_bit) {
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
            consumer_status: None,
        });
    }
    let mut value = value;
    let consumer_status = match value.as_object_mut() {
        Some(object) => object.remove(CONSUMER_STATUS_FIELD),
        None => None,
    };
    let mut verdict: VerdictBody =
        serde_json::from_value(value).map_err(|_| VerdictError::WrongShape)?;
    verdict.consumer_status = match consumer_status {
        None | Some(Value::Null) => None,
        Some(status) => Some(parse_consumer_status(&status).map_err(VerdictError::ConsumerStatus)?),
    };
    Ok(verdict)
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
            (r#"{"success_bit": 2}"#, Err(VerdictError::WrongShape)),
            (r#"{"success_bit": "true"}"#, Ok((Verdict::Confirmed, None))),
            (
                r#"{"success_bit": " TRUE "}"#,
                Ok((Verdict::Confirmed, None)),
            ),
            (r#"{"success_bit": "1"}"#, Ok((Verdict::Confirmed, None))),
            (r#"{"success_bit": 1}"#, Ok((Verdict::Confirmed, None))),
            (
                r#"{"success_bit": "false", "message": "Rejected after post"}"#,
                Ok((Verdict::Rejected, Some("Rejected after post"))),
            ),
            (r#"{"success_bit": "0"}"#, Ok((Verdict::Rejected, None))),
            (r#"{"success_bit": 0}"#, Ok((Verdict::Rejected, None))),
            ("not json", Err(VerdictError::NotJson)),
        ];
        for (body, expected) in rows {
            let got = parse_verdict(body.as_bytes()).map(|v| (v.verdict, v.reason));
            let expected = expected.map(|(v, r)| (v, r.map(str::to_owned)));
            assert_eq!(got, expected, "{body}");
        }
    }

    #[test]
    fn a_consumer_status_is_read_or_refused_field_by_field_without_echo() {
        let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date");
        let body = |status: serde_json::Value| {
            serde_json::to_vec(
                &serde_json::json!({"verdict": "returned", "consumerStatus": status}),
            )
            .expect("encodes")
        };
        let good = parse_verdict(&body(serde_json::json!({
            "reason": "Default", "startDate": "2026-11-01", "endDate": null, "ssn": "123-45-6789"
        })))
        .expect("valid");
        assert_eq!(good.verdict, Verdict::Returned);
        let status = good.consumer_status.expect("a status");
        assert_eq!(status.reason, Reason::Default);
        assert_eq!(status.start_date, day("2026-11-01"));
        assert_eq!(status.end_date, None);
        assert_eq!(status.ssn.expose(), "123456789");
        assert!(!format!("{status:?}").contains("6789"));
        let ended = parse_verdict(&body(serde_json::json!({
            "reason": "RevokePaymentAuth", "startDate": "2026-01-05", "endDate": "2026-02-12", "ssn": "123 45 6789"
        })))
        .expect("valid");
        assert_eq!(
            ended.consumer_status.and_then(|s| s.end_date),
            Some(day("2026-02-12"))
        );
        let none =
            parse_verdict(br#"{"verdict":"confirmed","consumerStatus":null}"#).expect("valid");
        assert_eq!(none.consumer_status, None);

        type Row = (serde_json::Value, Vec<(&'static str, &'static str)>);
        let rows: Vec<Row> = vec![
            (
                serde_json::json!("123-45-6789"),
                vec![("consumerStatus", "invalid_type")],
            ),
            (
                serde_json::json!({}),
                vec![
                    ("consumerStatus.reason", "required"),
                    ("consumerStatus.startDate", "required"),
                    ("consumerStatus.ssn", "required"),
                ],
            ),
            (
                serde_json::json!({"reason": "default", "startDate": "2026-11-01", "ssn": "123456789"}),
                vec![("consumerStatus.reason", "invalid_value")],
            ),
            (
                serde_json::json!({"reason": "Fraud", "startDate": "11/01/2026", "endDate": "2026-1-2", "ssn": "12345678"}),
                vec![
                    ("consumerStatus.reason", "invalid_value"),
                    ("consumerStatus.startDate", "invalid_format"),
                    ("consumerStatus.endDate", "invalid_format"),
                    ("consumerStatus.ssn", "invalid_format"),
                ],
            ),
            (
                serde_json::json!({"reason": "Default", "startDate": "2026-11-02", "endDate": "2026-11-01", "ssn": "123456789"}),
                vec![("consumerStatus.endDate", "out_of_range")],
            ),
            (
                serde_json::json!({"reason": 1, "startDate": 20261101, "endDate": true, "ssn": 123456789}),
                vec![
                    ("consumerStatus.reason", "invalid_type"),
                    ("consumerStatus.startDate", "invalid_type"),
                    ("consumerStatus.endDate", "invalid_type"),
                    ("consumerStatus.ssn", "invalid_type"),
                ],
            ),
            (
                serde_json::json!({"reason": "Default", "startDate": "2026-11-01", "ssn": "123456789", "SSN": "123456789"}),
                vec![("consumerStatus.SSN", "unknown_field")],
            ),
            (
                serde_json::json!({"reason": "Default", "startDate": "2026-11-01", "ssn": "123456789", "123456789": 1}),
                vec![("consumerStatus", "unknown_field")],
            ),
        ];
        for (status, expected) in rows {
            let Err(VerdictError::ConsumerStatus(errors)) = parse_verdict(&body(status.clone()))
            else {
                panic!("{status} is not refused as a consumer status");
            };
            let got: Vec<(&str, &str)> = errors
                .iter()
                .map(|e| (e.field.as_str(), e.code.as_str()))
                .collect();
            assert_eq!(got, expected, "{status}");
            for error in &errors {
                for digits in ["123456789", "12345678", "20261101", "6789"] {
                    assert!(!error.message.contains(digits), "{error:?}");
                }
            }
        }
        // The rest of the body is still the hub's shape.
        assert_eq!(
            parse_verdict(br#"{"verdict":"maybe","consumerStatus":{}}"#),
            Err(VerdictError::WrongShape)
        );
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
