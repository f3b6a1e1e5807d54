//! Lofty's webhooks (seed 004, 5.12): the subscription calls (`POST /v1.0/webhook`, `GET /v1.0/webhooks`,
//! `DELETE /v1.0/webhook/{subscribeId}`, 6.84 `WebhookRequest`, 6.85 `WebhookResponse`), the hub's intake
//! URL they register, and the events Lofty posts to it.
//!
//! The hub takes two of the seed's lists: 2, Lead Information (scope `LeadResponse`, 6.45) and 3, Lead
//! Activity (scope `LeadActivity`, 6.32/6.33). Each event is mapped back to the hub's lead through the
//! delivery's buyer reference (the Lofty lead id, [`crate::store::BuyerRefs`]) and recorded on its timeline
//! ([`crate::lifecycle::buyer_activity`]). The seed defines no mapping of an event to a verdict, so none
//! changes the lead's status.
//!
//! The intake URL is `{hub.public_base_url}/v1/lofty/{destination}/{token}`, the token the base64url HMAC
//! (under the hub's callback key) of the destination id: one URL per Lofty destination (Lofty subscribes an
//! account, not a lead), unguessable, not stored, checked in constant time. Rotating the callback key
//! invalidates it: subscribe again.
//!
//! Choices where the seed is silent, written down:
//! - The event body. The seed names each list's scope but not the envelope. The hub reads one JSON object
//!   per POST with the common fields `teamId` and `listId` (a number, or a string of digits), and:
//!   - Lead Information: `eventType` (`created`, `updated` or `deleted`; absent: `updated`) and `lead`,
//!     a `LeadResponse` whose `leadId` names the lead (a top-level `leadId` is read too);
//!   - Lead Activity: `leadId` (top level, or inside `activity`) and `activity`, a `LeadActivity`.
//!
//!   The Lofty lead id is an int64 (a number, or a string of digits).
//! - What reaches the timeline: never the payload's personal data (names, emails, phones, addresses, the
//!   activity's search `text`, `link`, `listing`, `pageName`, `picture`). Lead Information: the event
//!   type, the lead's `stage` and its `lastUpdateTime`; Lead Activity: the activity's `type` and
//!   `created` time. Each label is kept only when it is plainly a label (at most [`MAX_LABEL_CHARS`]
//!   letters, digits, spaces and `-_/&.()`), else it reads `other`.
//! - Subscribing: `limit` (notifications per 30 minutes) is left to Lofty's default unless given.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use http::Method;
use serde_json::{json, Value};

use super::{headers, url};
use crate::connectors::{excerpt, BuildError, BuyerRequest, BuyerResponse, Destination};
use crate::crypto::KeyedHasher;
use crate::verticals::FieldError;

/// The path under which the hub takes Lofty's webhooks: `/v1/lofty/{destination}/{token}`.
pub const INTAKE_PATH: &str = "/v1/lofty";

/// The most characters of a Lofty label (activity type, stage, event type) put on a timeline.
pub const MAX_LABEL_CHARS: usize = 40;

const TOKEN_LABEL: &str = "lofty-intake-v1";

/// The intake token of `destination`.
pub fn intake_token(signer: &KeyedHasher, destination: &str) -> String {
    URL_SAFE_NO_PAD.encode(signer.digest(&[TOKEN_LABEL, destination]))
}

/// Whether `token` is `destination`'s intake token (constant time).
pub fn verify_intake_token(signer: &KeyedHasher, destination: &str, token: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(token)
        .is_ok_and(|mac| signer.verify(&[TOKEN_LABEL, destination], &mac))
}

/// The URL a Lofty destination's subscriptions post to.
pub fn intake_url(base: &str, signer: &KeyedHasher, destination: &str) -> String {
    format!(
        "{}{INTAKE_PATH}/{destination}/{}",
        base.trim_end_matches('/'),
        intake_token(signer, destination)
    )
}

/// The seed's webhook lists the hub takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookList {
    /// List 2: a lead was created, updated or deleted (scope `LeadResponse`).
    LeadInformation,
    /// List 3: the consumer's activity on the agent's site (scope `LeadActivity`).
    LeadActivity,
}

impl WebhookList {
    pub const ALL: [WebhookList; 2] = [WebhookList::LeadInformation, WebhookList::LeadActivity];

    /// The seed's list id.
    pub fn id(self) -> i64 {
        match self {
            WebhookList::LeadInformation => 2,
            WebhookList::LeadActivity => 3,
        }
    }

    pub fn from_id(id: i64) -> Option<Self> {
        WebhookList::ALL.into_iter().find(|list| list.id() == id)
    }

    /// The name an operator types (`lead-information`, `lead-activity`).
    pub fn name(self) -> &'static str {
        match self {
            WebhookList::LeadInformation => "lead-information",
            WebhookList::LeadActivity => "lead-activity",
        }
    }

    /// The timeline code of its events.
    pub fn code(self) -> &'static str {
        match self {
            WebhookList::LeadInformation => "lead_information",
            WebhookList::LeadActivity => "lead_activity",
        }
    }
}

impl std::str::FromStr for WebhookList {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        WebhookList::ALL
            .into_iter()
            .find(|list| list.name() == name)
            .ok_or_else(|| "a list is lead-information or lead-activity".to_owned())
    }
}

// ---- subscriptions --------------------------------------------------------------------------------------

/// `POST /v1.0/webhook`: subscribe `callback_url` to `list` (`limit`: notifications per 30 minutes, 1 to
/// 5000).
pub fn subscribe(
    destination: &Destination,
    list: WebhookList,
    callback_url: &str,
    limit: Option<i64>,
) -> Result<BuyerRequest, BuildError> {
    let mut body = json!({"listId": list.id(), "callbackUrl": callback_url});
    if let Some(limit) = limit {
        body["limit"] = json!(limit.clamp(1, 5000));
    }
    Ok(BuyerRequest {
        method: Method::POST,
        url: url(destination, "/v1.0/webhook")?,
        headers: headers(destination)?,
        body: serde_json::to_vec(&body).map_err(|e| BuildError(e.to_string()))?,
    })
}

/// `GET /v1.0/webhooks`: the account's subscriptions.
pub fn list(destination: &Destination) -> Result<BuyerRequest, BuildError> {
    Ok(BuyerRequest {
        method: Method::GET,
        url: url(destination, "/v1.0/webhooks")?,
        headers: headers(destination)?,
        body: Vec::new(),
    })
}

/// `DELETE /v1.0/webhook/{subscribeId}`.
pub fn delete(destination: &Destination, subscribe_id: i64) -> Result<BuyerRequest, BuildError> {
    Ok(BuyerRequest {
        method: Method::DELETE,
        url: url(destination, &format!("/v1.0/webhook/{subscribe_id}"))?,
        headers: headers(destination)?,
        body: Vec::new(),
    })
}

/// One subscription, as Lofty lists it (6.85 `WebhookResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub subscribe_id: i64,
    pub list_id: i64,
    pub callback_url: String,
}

fn int64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn subscription(value: &Value) -> Option<Subscription> {
    Some(Subscription {
        subscribe_id: int64(value.get("subscribeId")?)?,
        list_id: int64(value.get("listId")?)?,
        callback_url: value.get("callbackUrl")?.as_str()?.to_owned(),
    })
}

/// The subscription a `POST /v1.0/webhook` answer describes.
pub fn read_subscription(body: &[u8]) -> Option<Subscription> {
    subscription(&serde_json::from_slice::<Value>(body).ok()?)
}

/// The subscriptions of a `GET /v1.0/webhooks` answer: the seed says only "200 OK string"; an array of
/// `WebhookResponse`s is read, bare or under `webhooks` or `data` (entries that are not one are skipped).
pub fn read_subscriptions(body: &[u8]) -> Option<Vec<Subscription>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let entries = match &value {
        Value::Array(entries) => entries,
        Value::Object(object) => object
            .get("webhooks")
            .or_else(|| object.get("data"))?
            .as_array()?,
        _ => return None,
    };
    Some(entries.iter().filter_map(subscription).collect())
}

/// What went wrong with a subscription call, in words for an operator; `None` for a 2xx.
pub fn failure(response: &BuyerResponse) -> Option<String> {
    let status = response.status;
    let said = || {
        serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(Value::as_str)
                    .map(|m| excerpt(m.as_bytes(), 200))
            })
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    };
    match status {
        200..=299 => None,
        401 | 403 => Some(format!(
            "Lofty refused the destination's credentials ({status})"
        )),
        429 => Some("Lofty's rate limit was reached (429): try again in a minute".to_owned()),
        _ => Some(format!("Lofty answered {status}{}", said())),
    }
}

// ---- events ---------------------------------------------------------------------------------------------

/// An event Lofty posted, as the hub keeps it: which list, which Lofty lead, and the timeline's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoftyEvent {
    pub list: WebhookList,
    /// The Lofty lead id (digits).
    pub lofty_lead_id: String,
    /// The timeline's words, without the payload's personal data.
    pub summary: String,
}

/// Why an event body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// Not an event the hub can read: one error per problem, naming the field, never repeating a value.
    Invalid(Vec<FieldError>),
    /// An event of a list the hub does not take (1 agents, 4 listing alerts, ...).
    OtherList(i64),
}

/// A Lofty label as the timeline may show it (see the module docs), or `other`.
fn label(value: Option<&Value>) -> Option<String> {
    let text = value?.as_str()?.trim();
    if text.is_empty() {
        return None;
    }
    let plain = text.chars().count() <= MAX_LABEL_CHARS
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " -_/&.()".contains(c));
    Some(if plain {
        text.to_owned()
    } else {
        "other".to_owned()
    })
}

/// A Lofty time (epoch milliseconds, a number or digits, or RFC 3339) as RFC 3339, to the second.
fn time(value: Option<&Value>) -> Option<String> {
    let at: DateTime<Utc> = match value? {
        Value::Number(n) => DateTime::from_timestamp_millis(n.as_i64()?)?,
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(millis) => DateTime::from_timestamp_millis(millis)?,
            Err(_) => DateTime::parse_from_rfc3339(s.trim())
                .ok()?
                .with_timezone(&Utc),
        },
        _ => return None,
    };
    Some(at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// A Lofty lead id: an int64, as a number or a string of digits.
fn lofty_lead_id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => n.as_i64().filter(|id| *id > 0).map(|id| id.to_string()),
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.to_owned())
        }
        _ => None,
    }
}

/// Read an event body (see the module docs for its shape).
pub fn parse_event(body: &[u8]) -> Result<LoftyEvent, EventError> {
    let invalid = |field: &str, code: &str, message: &str| {
        EventError::Invalid(vec![FieldError::new(field, code, message)])
    };
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| invalid("$", "invalid_json", "the body is not valid JSON"))?;
    let Some(object) = value.as_object() else {
        return Err(invalid(
            "$",
            "invalid_type",
            "must be a JSON object (one event)",
        ));
    };
    let list_id = object.get("listId").and_then(int64).ok_or_else(|| {
        invalid(
            "listId",
            "required",
            "is required: the webhook list's id (2 lead information, 3 lead activity)",
        )
    })?;
    let list = WebhookList::from_id(list_id).ok_or(EventError::OtherList(list_id))?;
    let need_lead_id = |field: &str| {
        invalid(
            field,
            "required",
            "is required: the Lofty lead id, an integer (a number or a string of digits)",
        )
    };
    match list {
        WebhookList::LeadInformation => {
            let lead = object.get("lead").filter(|lead| lead.is_object());
            let lofty_lead_id = lofty_lead_id(lead.and_then(|lead| lead.get("leadId")))
                .or_else(|| lofty_lead_id(object.get("leadId")))
                .ok_or_else(|| need_lead_id("lead.leadId"))?;
            let kind = label(object.get("eventType")).unwrap_or_else(|| "updated".to_owned());
            let mut summary = format!("Lofty: lead information {kind}");
            let mut details = Vec::new();
            if let Some(stage) = label(lead.and_then(|lead| lead.get("stage"))) {
                details.push(format!("stage {stage}"));
            }
            if let Some(at) = time(lead.and_then(|lead| lead.get("lastUpdateTime"))) {
                details.push(format!("at {at}"));
            }
            if !details.is_empty() {
                summary.push_str(&format!(" ({})", details.join(", ")));
            }
            Ok(LoftyEvent {
                list,
                lofty_lead_id,
                summary,
            })
        }
        WebhookList::LeadActivity => {
            let activity = object.get("activity").filter(|a| a.is_object());
            let lofty_lead_id = lofty_lead_id(object.get("leadId"))
                .or_else(|| lofty_lead_id(activity.and_then(|a| a.get("leadId"))))
                .ok_or_else(|| need_lead_id("leadId"))?;
            let Some(activity) = activity else {
                return Err(invalid(
                    "activity",
                    "required",
                    "is required: the LeadActivity object",
                ));
            };
            let kind = label(activity.get("type")).unwrap_or_else(|| "other".to_owned());
            let mut summary = format!("Lofty: lead activity {kind}");
            if let Some(at) = time(activity.get("created")) {
                summary.push_str(&format!(" (at {at})"));
            }
            Ok(LoftyEvent {
                list,
                lofty_lead_id,
                summary,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::test_support::destination;
    use crate::connectors::{Connector, ConnectorKind};
    use crate::verticals::Vertical;

    const TOKEN: &str = "eyJ-token-value";

    fn lofty() -> Destination {
        let mut d = destination(
            ConnectorKind::Lofty,
            "https://api.lofty.com",
            &Vertical::ALL,
            &[("access_token", TOKEN)],
        );
        d.connector = Connector::Lofty(super::super::LoftyOptions::default());
        d
    }

    fn signer() -> KeyedHasher {
        KeyedHasher::new(b"callback-key-0123456789abcdef0123")
    }

    #[test]
    fn the_intake_url_carries_a_per_destination_token_checked_against_its_destination() {
        let url = intake_url("https://hub.example/", &signer(), "lofty");
        let token = intake_token(&signer(), "lofty");
        assert_eq!(url, format!("https://hub.example/v1/lofty/lofty/{token}"));
        assert!(verify_intake_token(&signer(), "lofty", &token));
        assert!(!verify_intake_token(&signer(), "lofty-west", &token));
        assert!(!verify_intake_token(
            &KeyedHasher::new(b"another-key-0123456789abcdef01234"),
            "lofty",
            &token
        ));
        for bad in ["", "x", &token[1..], &format!("{token}A"), "!!!"] {
            assert!(!verify_intake_token(&signer(), "lofty", bad), "{bad}");
        }
        assert_ne!(token, intake_token(&signer(), "lofty-west"));
    }

    #[test]
    fn subscription_calls_follow_the_seed() {
        let destination = lofty();
        let request = subscribe(
            &destination,
            WebhookList::LeadActivity,
            "https://hub.example/v1/lofty/lofty/t",
            Some(9000),
        )
        .expect("builds");
        assert_eq!(
            (request.method.clone(), request.url.as_str()),
            (Method::POST, "https://api.lofty.com/v1.0/webhook")
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&request.body).expect("json"),
            json!({"listId": 3, "callbackUrl": "https://hub.example/v1/lofty/lofty/t", "limit": 5000})
        );
        assert_eq!(
            request.headers["authorization"],
            format!("Bearer {TOKEN}").as_str()
        );
        let plain =
            subscribe(&destination, WebhookList::LeadInformation, "u", None).expect("builds");
        assert_eq!(
            serde_json::from_slice::<Value>(&plain.body).expect("json"),
            json!({"listId": 2, "callbackUrl": "u"})
        );
        let listed = list(&destination).expect("builds");
        assert_eq!(
            (listed.method.clone(), listed.url.path()),
            (Method::GET, "/v1.0/webhooks")
        );
        let deleted = delete(&destination, 77).expect("builds");
        assert_eq!(
            (deleted.method.clone(), deleted.url.path()),
            (Method::DELETE, "/v1.0/webhook/77")
        );
    }

    #[test]
    fn subscriptions_are_read_from_the_seeds_webhook_response() {
        let one = json!({"subscribeId": 12, "listId": 2, "callbackUrl": "https://h/x", "limit": 100, "teamId": 1, "vendorId": 1});
        assert_eq!(
            read_subscription(one.to_string().as_bytes()),
            Some(Subscription {
                subscribe_id: 12,
                list_id: 2,
                callback_url: "https://h/x".into()
            })
        );
        let many = json!([one, {"subscribeId": "13", "listId": "3", "callbackUrl": "https://h/y"}, {"unrelated": true}]);
        let listed = read_subscriptions(many.to_string().as_bytes()).expect("a list");
        assert_eq!(
            listed
                .iter()
                .map(|s| (s.subscribe_id, s.list_id))
                .collect::<Vec<_>>(),
            vec![(12, 2), (13, 3)]
        );
        let wrapped = json!({"webhooks": [one]});
        assert_eq!(
            read_subscriptions(wrapped.to_string().as_bytes()).map(|l| l.len()),
            Some(1)
        );
        assert_eq!(read_subscriptions(b"\"ok\""), None);
    }

    fn errors(body: &Value) -> Vec<(String, String)> {
        match parse_event(body.to_string().as_bytes()) {
            Err(EventError::Invalid(errors)) => {
                errors.into_iter().map(|e| (e.field, e.code)).collect()
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn lead_activity_events_keep_the_type_and_time_and_nothing_personal() {
        let event = json!({
            "teamId": 1, "listId": 3, "leadId": 4711,
            "activity": {
                "type": "View Property", "created": 1764669600000_i64,
                "text": "3 bed near 100 Bayshore Blvd", "link": "https://site/listing/9?email=jane@example.com",
                "pageName": "Jane's search", "picture": "https://img/1.jpg", "listing": {"address": "100 Bayshore Blvd"}
            }
        });
        let read = parse_event(event.to_string().as_bytes()).expect("reads");
        assert_eq!(
            read,
            LoftyEvent {
                list: WebhookList::LeadActivity,
                lofty_lead_id: "4711".into(),
                summary: "Lofty: lead activity View Property (at 2025-12-02T10:00:00Z)".into()
            }
        );
        for pii in ["Bayshore", "jane", "Jane", "img", "site"] {
            assert!(!read.summary.contains(pii), "{pii}");
        }
        // The id as digits, inside the activity; a type that is not plainly a label.
        let other = json!({"listId": "3", "activity": {"leadId": "4711", "type": "Called jane@example.com at 727-555-0134 about 100 Bayshore Blvd"}});
        let read = parse_event(other.to_string().as_bytes()).expect("reads");
        assert_eq!(read.lofty_lead_id, "4711");
        assert_eq!(read.summary, "Lofty: lead activity other");
    }

    #[test]
    fn lead_information_events_keep_the_event_type_stage_and_time() {
        let event = json!({
            "teamId": 1, "listId": 2, "eventType": "updated",
            "lead": {"leadId": 4711, "firstName": "Jane", "lastName": "Doe", "emails": ["jane@example.com"],
                     "phones": ["+17275550134"], "streetAddress": "100 Bayshore Blvd", "stage": "Contacted",
                     "lastUpdateTime": "2025-12-02T10:00:00Z"}
        });
        let read = parse_event(event.to_string().as_bytes()).expect("reads");
        assert_eq!(read.list, WebhookList::LeadInformation);
        assert_eq!(read.lofty_lead_id, "4711");
        assert_eq!(
            read.summary,
            "Lofty: lead information updated (stage Contacted, at 2025-12-02T10:00:00Z)"
        );
        let bare = json!({"listId": 2, "leadId": "4711", "lead": {}});
        assert_eq!(
            parse_event(bare.to_string().as_bytes())
                .expect("reads")
                .summary,
            "Lofty: lead information updated"
        );
    }

    #[test]
    fn unreadable_events_name_the_field_and_other_lists_are_told_apart() {
        assert_eq!(
            parse_event(b"{not json").map_err(|e| match e {
                EventError::Invalid(errors) => errors[0].field.clone(),
                other => format!("{other:?}"),
            }),
            Err("$".to_owned())
        );
        assert_eq!(
            errors(&json!([1, 2])),
            vec![("$".into(), "invalid_type".into())]
        );
        assert_eq!(
            errors(&json!({"leadId": 1})),
            vec![("listId".into(), "required".into())]
        );
        assert_eq!(
            errors(&json!({"listId": 3, "activity": {"type": "x"}})),
            vec![("leadId".into(), "required".into())]
        );
        assert_eq!(
            errors(&json!({"listId": 3, "leadId": "12ab", "activity": {}})),
            vec![("leadId".into(), "required".into())]
        );
        assert_eq!(
            errors(&json!({"listId": 3, "leadId": 5})),
            vec![("activity".into(), "required".into())]
        );
        assert_eq!(
            errors(&json!({"listId": 2, "lead": {"firstName": "Jane"}})),
            vec![("lead.leadId".into(), "required".into())]
        );
        assert_eq!(
            parse_event(json!({"listId": 1, "user": {}}).to_string().as_bytes()),
            Err(EventError::OtherList(1))
        );
    }

    #[test]
    fn answers_to_subscription_calls_are_told_to_the_operator() {
        let response = |status: u16, body: &str| BuyerResponse {
            status,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_owned()),
        };
        assert_eq!(failure(&response(200, "{}")), None);
        assert_eq!(failure(&response(204, "")), None);
        assert!(failure(&response(401, ""))
            .expect("a failure")
            .contains("credentials"));
        assert!(failure(&response(429, ""))
            .expect("a failure")
            .contains("rate limit"));
        assert_eq!(
            failure(&response(400, r#"{"message":"callbackUrl invalid"}"#)),
            Some("Lofty answered 400: callbackUrl invalid".to_owned())
        );
    }
}
