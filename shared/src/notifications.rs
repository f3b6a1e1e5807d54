//! Partner notifications: what a partner is told when something happens to one of its leads, signed per
//! Standard Webhooks (see [`crate::webhooks`]).
//!
//! The lifecycle's [`LeadEvent`]s are the source: [`crate::lifecycle::commit`] turns each event of an
//! applied transition that the lead's partner subscribes to into a [`NotifyJob`] on the dispatch queue
//! ([`job`]); dispatch sends it ([`request`]), reads the answer ([`classify`]) and retries on the
//! [`RetrySchedule`] (Standard Webhooks': about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, with jitter),
//! always with the same `webhook-id`. A `410 Gone` disables the endpoint until an operator enables it
//! again; a notification that cannot be delivered (exhausted, endpoint disabled, partner without a secret)
//! is kept ([`crate::store::NotificationLog`]) for `leadhub-admin notifications failed|replay`.
//!
//! Where a notification goes: the lead's own callback URL where its schema has one (solar's
//! `call_back_url`), else the partner's `callback_url`. A partner subscribes with these keys:
//!
//! ```toml
//! [[partners]]
//! callback_url = "https://partner.example/leadhub"   # public http(s) only (see crate::ssrf)
//! webhook_secret = "env:ACME_WEBHOOK_SECRET"          # a `whsec_...` secret; or a list of two while rotating
//! events = ["lead.delivered", "lead.confirmed"]       # default: all six
//! ```
//!
//! The payload is `{"type", "timestamp", "data"}` (Standard Webhooks' recommended shape); `data` holds the
//! lead id, its vertical and status, the reason's code and text, and the partner's own reference where the
//! vertical has one (heloc's and mortgage's `affiliateId`): no other personal data and no buyer's name.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::delivery::DispatchJob;
use crate::lead::{LeadId, LeadRecord, LeadStatus};
use crate::lifecycle::LeadEvent;
use crate::transport::{Request, Response, TransportError};
use crate::vertical::Vertical;
use crate::webhooks::{WebhookSecret, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// Every event a partner can be notified of, by its wire name.
pub const EVENTS: [&str; 6] = [
    "lead.rejected",
    "lead.delivered",
    "lead.unsold",
    "lead.confirmed",
    "lead.rejected_after_post",
    "lead.returned",
];

/// A partner's notification settings (`callback_url`, `webhook_secret`, `events` on its `[[partners]]`
/// entry).
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Where notifications go when the lead has no URL of its own.
    pub callback_url: Option<reqwest::Url>,
    /// The signing secrets: one, or two while rotating (each signs, so the partner may verify with either).
    /// Empty: nothing can be signed, and so nothing is sent.
    pub secrets: Vec<WebhookSecret>,
    /// The events the partner wants (default: all of [`EVENTS`]).
    pub events: BTreeSet<&'static str>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            callback_url: None,
            secrets: Vec::new(),
            events: EVENTS.into_iter().collect(),
        }
    }
}

impl Subscription {
    /// Whether a notification of `event` about `lead` is to be sent: the partner wants the event, can be
    /// signed for, and there is somewhere to send it.
    pub fn wants(&self, event: &str, lead: &LeadRecord) -> bool {
        self.events.contains(event)
            && !self.secrets.is_empty()
            && (self.callback_url.is_some() || own_callback_url(lead).is_some())
    }

    /// Check the keys of a `[[partners]]` entry (`key(...)` names them in problems). `callback_url` must pass
    /// the SSRF guard under `policy`; each `webhook_secret` is an `env:` reference to a `whsec_` secret.
    pub(crate) fn load(
        key: &dyn Fn(&str) -> String,
        callback_url: Option<&str>,
        webhook_secret: Option<&SecretRefs>,
        events: Option<&[String]>,
        policy: crate::ssrf::UrlPolicy,
        secrets: &dyn crate::config::SecretSource,
    ) -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let callback_url = callback_url
            .map(|raw| {
                crate::ssrf::check_url(raw, policy)
                    .map_err(|problem| ConfigError::new(key("callback_url"), problem.to_string()))
            })
            .transpose()?;
        let references: Vec<(String, &str)> = match webhook_secret {
            None => Vec::new(),
            Some(SecretRefs::One(reference)) => vec![(key("webhook_secret"), reference.as_str())],
            Some(SecretRefs::Rotating(references)) => {
                if !(1..=2).contains(&references.len()) {
                    return Err(ConfigError::new(
                        key("webhook_secret"),
                        "give one secret, or a list of two while rotating",
                    ));
                }
                references
                    .iter()
                    .enumerate()
                    .map(|(i, reference)| {
                        (key(&format!("webhook_secret[{i}]")), reference.as_str())
                    })
                    .collect()
            }
        };
        let mut signing = Vec::new();
        for (key, reference) in &references {
            let secret = crate::config::resolve(key, reference, secrets)?;
            let secret = WebhookSecret::parse(secret.expose()).map_err(|problem| {
                ConfigError::new(key.clone(), format!("the secret {problem}"))
            })?;
            signing.push(secret);
        }
        if callback_url.is_some() && signing.is_empty() {
            return Err(ConfigError::new(
                key("webhook_secret"),
                "a partner with a callback_url needs a webhook_secret: notifications are always signed",
            ));
        }
        let events = match events {
            None => EVENTS.into_iter().collect(),
            Some(names) => {
                let mut wanted = BTreeSet::new();
                for name in names {
                    let Some(known) = EVENTS.iter().find(|known| **known == name) else {
                        return Err(ConfigError::new(
                            key("events"),
                            format!("unknown event `{name}` (known: {})", EVENTS.join(", ")),
                        ));
                    };
                    wanted.insert(*known);
                }
                wanted
            }
        };
        Ok(Subscription {
            callback_url,
            secrets: signing,
            events,
        })
    }
}

/// `webhook_secret` as written: one reference, or a list (two while rotating).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum SecretRefs {
    One(String),
    Rotating(Vec<String>),
}

/// Partners' subscriptions by id (the configuration in effect).
pub trait Subscribers: Send + Sync {
    fn subscription(&self, partner_id: &str) -> Option<&Subscription>;
}

/// The lead's own callback URL, where its vertical's schema has one (solar's `call_back_url`, checked when
/// the lead was posted).
pub fn own_callback_url(lead: &LeadRecord) -> Option<String> {
    #[derive(Deserialize)]
    struct Own {
        call_back_url: Option<String>,
    }
    match lead.vertical {
        Vertical::Solar => serde_json::from_str::<Own>(lead.lead.as_str())
            .ok()
            .and_then(|own| own.call_back_url),
        Vertical::Heloc | Vertical::Mortgage | Vertical::RealEstate => None,
    }
}

/// The partner's own reference for the lead, where the vertical has one (heloc's and mortgage's `affiliateId`).
pub fn partner_reference(lead: &LeadRecord) -> Option<String> {
    #[derive(Deserialize)]
    struct Reference {
        #[serde(rename = "affiliateId")]
        affiliate_id: Option<String>,
    }
    match lead.vertical {
        // Seed 001's and the mortgage vertical's "identifier for the lead in the partner's system".
        Vertical::Heloc | Vertical::Mortgage => {
            serde_json::from_str::<Reference>(lead.lead.as_str())
                .ok()
                .and_then(|reference| reference.affiliate_id)
        }
        Vertical::Solar | Vertical::RealEstate => None,
    }
}

/// A notification's body: Standard Webhooks' `{type, timestamp, data}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// The event's name (`lead.confirmed`...).
    #[serde(rename = "type")]
    pub event: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    pub data: PayloadData,
}

/// What a notification says about the lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayloadData {
    pub lead_id: LeadId,
    pub vertical: Vertical,
    /// The lead's status once the event happened.
    pub status: LeadStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The partner's own reference for the lead (heloc's and mortgage's `affiliateId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affiliate_id: Option<String>,
    /// Where the lead's full status is read (`GET`, the partner's credentials).
    pub status_url: String,
}

/// Why: a stable code and words for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub code: String,
    pub text: String,
}

/// A message on the dispatch queue: send (attempt `attempt` of) one notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyJob {
    /// The same on every attempt and replay, so that the partner can drop a repeat.
    pub webhook_id: String,
    pub partner_id: String,
    /// The lead's own callback URL, where it has one; else the partner's current `callback_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub payload: Payload,
    /// From 1.
    pub attempt: u32,
    /// Not to be sent before this (a wait longer than the queue's longest delay is taken in steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
}

impl NotifyJob {
    pub fn lead_id(&self) -> &LeadId {
        &self.payload.data.lead_id
    }
}

/// The `webhook-id` of the `index`th event of a transition applied to `lead` (the record as written):
/// unique per lead and event, because every applied transition lengthens the lead's timeline.
pub fn webhook_id(lead: &LeadRecord, index: usize) -> String {
    format!("msg_{}_{}_{index}", lead.id, lead.events.len())
}

/// The notification of `lead`'s `index`th event `event` for its partner, when the partner wants it.
pub fn job(
    subscribers: &dyn Subscribers,
    lead: &LeadRecord,
    event: &LeadEvent,
    index: usize,
    now: DateTime<Utc>,
) -> Option<DispatchJob> {
    let subscription = subscribers.subscription(&lead.partner_id)?;
    if lead.test || !subscription.wants(event.name(), lead) {
        return None;
    }
    let reason = match event {
        LeadEvent::Rejected { code, reason } | LeadEvent::Unsold { code, reason } => Some(Reason {
            code: code.clone(),
            text: reason.clone(),
        }),
        LeadEvent::RejectedAfterPost { reason, .. } => Some(Reason {
            code: "rejected_after_post".to_owned(),
            text: reason.clone(),
        }),
        LeadEvent::Returned { reason, .. } => Some(Reason {
            code: "returned".to_owned(),
            text: reason.clone(),
        }),
        LeadEvent::Delivered { .. } | LeadEvent::Confirmed { .. } => None,
    };
    Some(DispatchJob::Notify(Box::new(NotifyJob {
        webhook_id: webhook_id(lead, index),
        partner_id: lead.partner_id.clone(),
        url: own_callback_url(lead),
        payload: Payload {
            event: event.name().to_owned(),
            timestamp: now,
            data: PayloadData {
                lead_id: lead.id.clone(),
                vertical: lead.vertical,
                status: lead.status,
                reason,
                affiliate_id: partner_reference(lead),
                status_url: format!("/v1/leads/{}", lead.id),
            },
        },
        attempt: 1,
        not_before: None,
    })))
}

/// The signed request of one attempt: `timestamp` is the time of sending (epoch seconds), and each secret
/// adds a `v1,` signature.
pub fn request(
    url: reqwest::Url,
    webhook_id: &str,
    body: Vec<u8>,
    secrets: &[WebhookSecret],
    timestamp: i64,
) -> Request {
    let signatures: Vec<String> = secrets
        .iter()
        .map(|secret| secret.sign(webhook_id, timestamp, &body))
        .collect();
    let mut headers = http::HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put("content-type", "application/json");
    put("user-agent", "leadhub-webhooks/1");
    put(HEADER_ID, webhook_id);
    put(HEADER_TIMESTAMP, &timestamp.to_string());
    put(HEADER_SIGNATURE, &signatures.join(" "));
    Request {
        method: http::Method::POST,
        url,
        headers,
        body,
    }
}

/// What the partner's answer to one attempt means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: received.
    Delivered,
    /// 410 Gone: the endpoint is to be disabled.
    Gone,
    /// Anything else: try again on the schedule (`code` is stable: `http_500`, `timeout`, `unreachable`).
    Retry { code: String, reason: String },
}

pub fn classify(answer: &Result<Response, TransportError>) -> Answer {
    match answer {
        Ok(response) if (200..300).contains(&response.status) => Answer::Delivered,
        Ok(response) if response.status == 410 => Answer::Gone,
        Ok(response) => Answer::Retry {
            code: format!("http_{}", response.status),
            reason: format!("the endpoint answered HTTP {}", response.status),
        },
        Err(TransportError::Timeout(limit)) => Answer::Retry {
            code: "timeout".to_owned(),
            reason: format!("no answer within {} ms", limit.as_millis()),
        },
        Err(TransportError::Unreachable) => Answer::Retry {
            code: "unreachable".to_owned(),
            reason: "the endpoint could not be reached (or its address is not public)".to_owned(),
        },
    }
}

/// The waits between attempts (`[notifications] retry_schedule`): attempt `n + 1` follows attempt `n`'s
/// failure after the schedule's `n`th wait, give or take a tenth (jitter); after the last, the notification
/// is kept as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl Default for RetrySchedule {
    /// Standard Webhooks' schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (eight attempts in all).
    fn default() -> Self {
        RetrySchedule(
            [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

impl RetrySchedule {
    /// The wait before the attempt after `attempt` (from 1) failed, `jitter` in [0, 1) spreading it over
    /// ±10%; `None` when attempts are exhausted.
    pub fn delay_after(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        let wait = *self.0.get(index)?;
        Some(wait.mul_f64(0.9 + 0.2 * jitter.clamp(0.0, 1.0)))
    }

    /// How many attempts a notification gets.
    pub fn attempts(&self) -> usize {
        self.0.len() + 1
    }

    /// Parse `["5s", "5m", "30m", "2h", "500ms"]` (units `ms`, `s`, `m`, `h`; 1 to 20 waits, each at most a
    /// day).
    pub fn parse(waits: &[String]) -> Result<Self, String> {
        if waits.is_empty() || waits.len() > 20 {
            return Err("give 1 to 20 waits".to_owned());
        }
        let mut parsed = Vec::with_capacity(waits.len());
        for wait in waits {
            let wait = wait.trim();
            let (digits, unit) = wait
                .find(|c: char| !c.is_ascii_digit())
                .map(|at| wait.split_at(at))
                .ok_or_else(|| format!("`{wait}` has no unit (ms, s, m or h)"))?;
            let amount: u64 = digits
                .parse()
                .map_err(|_| format!("`{wait}` is not a number with a unit (ms, s, m or h)"))?;
            let millis = match unit {
                "ms" => Some(amount),
                "s" => amount.checked_mul(1_000),
                "m" => amount.checked_mul(60_000),
                "h" => amount.checked_mul(3_600_000),
                _ => return Err(format!("`{wait}`: the unit must be ms, s, m or h")),
            };
            match millis {
                Some(millis) if millis <= 86_400_000 => parsed.push(Duration::from_millis(millis)),
                _ => return Err(format!("`{wait}` is longer than a day")),
            }
        }
        Ok(RetrySchedule(parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::{EventKind, LeadJson, TimelineEvent};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn secret() -> WebhookSecret {
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret")
    }

    fn lead(vertical: Vertical, json: &str) -> LeadRecord {
        LeadRecord::received(
            LeadId::generate(now()),
            "acme",
            vertical,
            LeadJson::from_text(json.to_owned()).expect("json"),
            now(),
            None,
        )
    }

    struct One(Subscription);

    impl Subscribers for One {
        fn subscription(&self, partner_id: &str) -> Option<&Subscription> {
            (partner_id == "acme").then_some(&self.0)
        }
    }

    fn subscribed() -> One {
        One(Subscription {
            callback_url: Some("https://partner.example/hook".parse().expect("url")),
            secrets: vec![secret()],
            events: EVENTS.into_iter().collect(),
        })
    }

    fn notify(job: Option<DispatchJob>) -> NotifyJob {
        match job {
            Some(DispatchJob::Notify(job)) => *job,
            other => panic!("not a notification: {other:?}"),
        }
    }

    #[test]
    fn payloads_carry_ids_status_reason_and_the_partners_reference_only() {
        let mut record = lead(
            Vertical::Mortgage,
            r#"{"affiliateId":"aff-9","borrower":{"firstName":"Ann","email":"ann@example.com"}}"#,
        );
        record.status = LeadStatus::Rejected;
        let event = LeadEvent::Rejected {
            code: "duplicate".to_owned(),
            reason: "the same lead was received within 30 days".to_owned(),
        };
        let job = notify(job(&subscribed(), &record, &event, 0, now()));
        assert_eq!(job.url, None);
        assert_eq!(job.attempt, 1);
        assert_eq!(job.webhook_id, format!("msg_{}_1_0", record.id));
        let body = serde_json::to_value(&job.payload).expect("serialises");
        assert_eq!(
            body,
            serde_json::json!({
                "type": "lead.rejected",
                "timestamp": "2026-12-03T10:00:00Z",
                "data": {
                    "leadId": record.id.as_str(),
                    "vertical": "mortgage",
                    "status": "rejected",
                    "reason": {"code": "duplicate", "text": "the same lead was received within 30 days"},
                    "affiliateId": "aff-9",
                    "statusUrl": format!("/v1/leads/{}", record.id),
                }
            })
        );
        let text = body.to_string();
        assert!(!text.contains("Ann") && !text.contains("ann@example.com"));
        // The job round-trips through the queue's JSON.
        let queued =
            serde_json::to_string(&DispatchJob::Notify(Box::new(job.clone()))).expect("json");
        assert_eq!(
            serde_json::from_str::<DispatchJob>(&queued).expect("reads back"),
            DispatchJob::Notify(Box::new(job))
        );
    }

    #[test]
    fn the_partners_reference_is_read_where_the_vertical_has_one() {
        let heloc = lead(
            Vertical::Heloc,
            r#"{"affiliateId":"aff-1","contactInfo":{}}"#,
        );
        assert_eq!(partner_reference(&heloc).as_deref(), Some("aff-1"));
        let mortgage = lead(Vertical::Mortgage, r#"{"affiliateId":"aff-2"}"#);
        assert_eq!(partner_reference(&mortgage).as_deref(), Some("aff-2"));
        assert_eq!(partner_reference(&lead(Vertical::Heloc, "{}")), None);
        // Solar and real estate have no such field: a key of that name is not read.
        let solar = lead(Vertical::Solar, r#"{"affiliateId":"aff-3"}"#);
        assert_eq!(partner_reference(&solar), None);
    }

    #[test]
    fn buyer_names_stay_out_and_ids_differ_per_event() {
        let mut record = lead(Vertical::Heloc, "{}");
        record.status = LeadStatus::Confirmed;
        let confirmed = notify(job(
            &subscribed(),
            &record,
            &LeadEvent::Confirmed {
                destination: "secret-buyer".to_owned(),
            },
            1,
            now(),
        ));
        assert!(!serde_json::to_string(&confirmed.payload)
            .expect("json")
            .contains("secret-buyer"));
        let delivered = notify(job(
            &subscribed(),
            &record,
            &LeadEvent::Delivered {
                destinations: vec!["secret-buyer".to_owned()],
            },
            0,
            now(),
        ));
        assert_ne!(confirmed.webhook_id, delivered.webhook_id);
        record.events.push(TimelineEvent::new(
            now(),
            EventKind::Delivered,
            LeadStatus::Delivered,
        ));
        assert_ne!(webhook_id(&record, 0), delivered.webhook_id);
    }

    #[test]
    fn solar_leads_are_notified_at_their_own_url() {
        let record = lead(
            Vertical::Solar,
            r#"{"call_back_url":"https://installer.example/result","customer_name":"Bo"}"#,
        );
        let event = LeadEvent::Delivered {
            destinations: vec![],
        };
        let job = notify(job(&subscribed(), &record, &event, 0, now()));
        assert_eq!(job.url.as_deref(), Some("https://installer.example/result"));
        // A partner with no callback_url of its own is still told about solar leads.
        let mut own_only = subscribed();
        own_only.0.callback_url = None;
        assert!(super::job(&own_only, &record, &event, 0, now()).is_some());
        assert!(super::job(&own_only, &lead(Vertical::Heloc, "{}"), &event, 0, now()).is_none());
    }

    #[test]
    fn only_wanted_signable_non_test_events_are_sent() {
        let record = lead(Vertical::Heloc, "{}");
        let event = LeadEvent::Unsold {
            code: "no_buyer_took_it".to_owned(),
            reason: "no buyer".to_owned(),
        };
        assert!(job(&subscribed(), &record, &event, 0, now()).is_some());
        let mut picky = subscribed();
        picky.0.events = ["lead.confirmed"].into_iter().collect();
        assert!(job(&picky, &record, &event, 0, now()).is_none());
        let mut unsigned = subscribed();
        unsigned.0.secrets.clear();
        assert!(job(&unsigned, &record, &event, 0, now()).is_none());
        let mut other = record.clone();
        other.partner_id = "someone-else".to_owned();
        assert!(job(&subscribed(), &other, &event, 0, now()).is_none());
        let mut test = record;
        test.test = true;
        assert!(job(&subscribed(), &test, &event, 0, now()).is_none());
    }

    #[test]
    fn requests_are_signed_by_every_secret_and_verify() {
        let second = WebhookSecret::from_bytes(&[7; 32]);
        let body = br#"{"type":"lead.delivered"}"#.to_vec();
        let request = request(
            "https://partner.example/hook".parse().expect("url"),
            "msg_1",
            body.clone(),
            &[secret(), second.clone()],
            1_700_000_000,
        );
        let header = |name: &str| {
            request.headers[name]
                .to_str()
                .expect("ascii header")
                .to_owned()
        };
        assert_eq!(header("webhook-id"), "msg_1");
        assert_eq!(header("webhook-timestamp"), "1700000000");
        assert_eq!(header("content-type"), "application/json");
        let signatures = header("webhook-signature");
        assert_eq!(signatures.split(' ').count(), 2);
        for key in [secret(), second] {
            assert_eq!(
                key.verify("msg_1", "1700000000", &signatures, &body, 1_700_000_100),
                Ok(())
            );
        }
        assert_eq!(request.body, body);
    }

    #[test]
    fn answers_are_classified() {
        let answer = |status| {
            classify(&Ok(Response {
                status,
                headers: http::HeaderMap::new(),
                body: bytes::Bytes::new(),
            }))
        };
        assert_eq!(answer(200), Answer::Delivered);
        assert_eq!(answer(204), Answer::Delivered);
        assert_eq!(answer(410), Answer::Gone);
        assert!(matches!(answer(500), Answer::Retry { code, .. } if code == "http_500"));
        assert!(matches!(answer(301), Answer::Retry { code, .. } if code == "http_301"));
        assert!(matches!(answer(404), Answer::Retry { .. }));
        assert!(matches!(
            classify(&Err(TransportError::Timeout(Duration::from_secs(5)))),
            Answer::Retry { code, .. } if code == "timeout"
        ));
        assert!(matches!(
            classify(&Err(TransportError::Unreachable)),
            Answer::Retry { code, .. } if code == "unreachable"
        ));
    }

    #[test]
    fn the_default_schedule_is_standard_webhooks_with_jitter() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 8);
        let secs = |attempt, jitter| {
            schedule
                .delay_after(attempt, jitter)
                .map(|wait: Duration| wait.as_secs_f64())
        };
        assert_eq!(secs(1, 0.5), Some(5.0));
        assert_eq!(secs(2, 0.5), Some(300.0));
        assert_eq!(secs(3, 0.5), Some(1_800.0));
        assert_eq!(secs(4, 0.5), Some(7_200.0));
        assert_eq!(secs(5, 0.5), Some(18_000.0));
        assert_eq!(secs(6, 0.5), Some(36_000.0));
        assert_eq!(secs(7, 0.5), Some(36_000.0));
        assert_eq!(secs(8, 0.5), None);
        assert_eq!(secs(0, 0.5), None);
        assert_eq!(secs(1, 0.0), Some(4.5));
        assert!(secs(1, 0.999).is_some_and(|s| s > 5.49 && s < 5.5));
    }

    #[test]
    fn schedules_parse_with_units() {
        let parsed = RetrySchedule::parse(&["200ms".into(), "5s".into(), "5m".into(), "2h".into()])
            .expect("parses");
        assert_eq!(
            parsed.0,
            vec![
                Duration::from_millis(200),
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(7_200)
            ]
        );
        for bad in ["5", "five s", "5d", "25h", "-1s", ""] {
            assert!(RetrySchedule::parse(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(RetrySchedule::parse(&[]).is_err());
    }
}
