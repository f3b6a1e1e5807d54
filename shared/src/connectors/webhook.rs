//! Generic webhook buyer: a JSON POST signed per Standard Webhooks; any 2xx is acceptance.
//!
//! Body: `{"type": "lead.created", "timestamp": ..., "data": {"leadId", "vertical", "receivedAt",
//! "callbackUrl", "lead": {...}}}`; `webhook-id` is `msg_<leadId>_<destination>`, the same on every retry.
//! Answers: 2xx accepted (the buyer's `id` or `leadId` string is kept as its reference); 408, 425, 429 and
//! 5xx retried, honouring `Retry-After`; 401 and 403 failed (credentials), 404, 405, 410 and 3xx failed
//! (endpoint configuration; redirects are not followed); other 4xx rejected with the buyer's message.
//! A destination's `[destinations.response]` rules ([`crate::answer_rules`]) override this reading of a 2xx
//! where given (a webhook buyer that answers 200 to say no).

use chrono::{DateTime, Utc};
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, Method};
use serde_json::json;

use super::{
    excerpt, BuildError, BuyerRequest, BuyerResponse, ConnectorKind, DeliveryContext, Takes,
};
use crate::config::{ConfigError, ConnectorSection};
use crate::delivery::{parse_retry_after, Outcome};
use crate::webhooks::{WebhookSecret, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

pub const EVENT_TYPE: &str = "lead.created";

/// What a webhook destination takes: no credentials (it signs with `signing_secret`), any vertical.
const TAKES: Takes = Takes {
    kind: ConnectorKind::Webhook,
    signs: true,
    credentials: &[],
    optional_credentials: &[],
    verticals: None,
};

/// Check a webhook destination's section (at configuration load): `TAKES`, and a `signing_secret` that
/// is a Standard Webhooks secret.
pub fn check(section: &ConnectorSection<'_>) -> Result<(), ConfigError> {
    TAKES.check(section)?;
    let secret = section.signing_secret.ok_or_else(|| {
        ConfigError::new(
            section.key("signing_secret"),
            "a webhook destination needs a signing secret (`env:NAME` holding whsec_...)",
        )
    })?;
    WebhookSecret::parse(secret.expose())
        .map(|_| ())
        .map_err(|problem| ConfigError::new(section.key("signing_secret"), problem))
}

fn header(value: &str) -> Result<HeaderValue, BuildError> {
    HeaderValue::from_str(value).map_err(|_| BuildError("a header value is not valid".into()))
}

pub fn build(context: &DeliveryContext<'_>) -> Result<BuyerRequest, BuildError> {
    let lead = context.lead;
    let payload = json!({
        "type": EVENT_TYPE,
        "timestamp": context.now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "leadId": lead.id.as_str(),
            "vertical": lead.vertical.as_str(),
            "receivedAt": lead.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "callbackUrl": context.callback_url,
            "lead": lead.lead,
        }
    });
    let body = serde_json::to_vec(&payload)
        .map_err(|e| BuildError(format!("cannot encode the lead: {e}")))?;
    let secret = context
        .destination
        .signing_secret
        .as_ref()
        .ok_or_else(|| BuildError("the destination has no signing secret".into()))
        .and_then(|s| WebhookSecret::parse(s.expose()).map_err(BuildError))?;
    let timestamp = context.now.timestamp();
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static("leadhub/0.1"));
    headers.insert(HEADER_ID, header(context.idempotency_key)?);
    headers.insert(HEADER_TIMESTAMP, header(&timestamp.to_string())?);
    headers.insert(
        HEADER_SIGNATURE,
        header(&secret.sign(context.idempotency_key, timestamp, &body))?,
    );
    Ok(BuyerRequest {
        method: Method::POST,
        url: context.destination.url.clone(),
        headers,
        body,
    })
}

fn buyer_ref(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["id", "leadId", "reference"]
        .iter()
        .find_map(|key| value.get(*key).and_then(|v| v.as_str()).map(str::to_owned))
        .filter(|reference| !reference.is_empty() && reference.len() <= 128)
}

fn buyer_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["message", "error", "reason", "detail"]
        .iter()
        .find_map(|key| {
            value
                .get(*key)
                .and_then(|v| v.as_str())
                .map(|m| excerpt(m.as_bytes(), 200))
        })
        .filter(|m| !m.is_empty())
}

pub fn classify(response: &BuyerResponse, now: DateTime<Utc>) -> Outcome {
    let status = response.status;
    let code = format!("http_{status}");
    let after = response
        .headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    match status {
        200..=299 => Outcome::Accepted {
            price: None,
            buyer_ref: buyer_ref(&response.body),
        },
        300..=399 => Outcome::failed(
            &code,
            format!("the buyer answered {status} (a redirect); redirects are not followed"),
        ),
        401 | 403 => Outcome::failed(
            &code,
            format!("the buyer refused our credentials ({status})"),
        ),
        404 | 405 | 410 => Outcome::failed(
            &code,
            format!("the buyer's endpoint is not there ({status}); check the destination URL"),
        ),
        408 | 425 | 429 => Outcome::retry(
            &code,
            format!("the buyer asked us to try again later ({status})"),
            after,
        ),
        400..=499 => {
            let message = buyer_message(&response.body).unwrap_or_else(|| "no reason given".into());
            Outcome::rejected(
                &code,
                format!("the buyer declined the lead ({status}): {message}"),
                true,
            )
        }
        _ => Outcome::retry(
            &code,
            format!("the buyer had a server error ({status})"),
            after,
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::config::Secret;
    use crate::connectors::test_support::response;
    use crate::connectors::{Connector, Destination};
    use crate::lead::{LeadId, LeadRecord};
    use crate::verticals::Vertical;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn destination() -> Destination {
        Destination {
            id: crate::ids::DestinationId::parse("lender").expect("id"),
            connector: Connector::Webhook,
            url: reqwest::Url::parse("https://buyer.example/hook").expect("url"),
            verticals: BTreeSet::from([Vertical::Heloc]),
            signing_secret: Some(Secret::new(SECRET)),
            credentials: Default::default(),
            timeout: Duration::from_secs(5),
            max_attempts: 3,
            enabled: true,
            routing: Default::default(),
            returns: Default::default(),
            response: Default::default(),
        }
    }

    #[test]
    fn builds_a_signed_json_post() {
        let now = Utc::now();
        let id = LeadId::generate(now);
        let lead = LeadRecord::received(
            id.clone(),
            "acme",
            Vertical::Heloc,
            json!({"a": 1}),
            now,
            None,
        );
        let destination = destination();
        let key = format!("msg_{id}_lender");
        let request = build(&DeliveryContext {
            lead: &lead,
            destination: &destination,
            callback_url: "https://hub.example/v1/callbacks/lender/tok",
            idempotency_key: &key,
            now,
        })
        .expect("builds");
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.headers[HEADER_ID], key.as_str());
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
        assert_eq!(body["type"], "lead.created");
        assert_eq!(body["data"]["leadId"], id.as_str());
        assert_eq!(body["data"]["lead"], json!({"a": 1}));
        assert_eq!(
            body["data"]["callbackUrl"],
            "https://hub.example/v1/callbacks/lender/tok"
        );
        let verified = WebhookSecret::parse(SECRET).expect("secret").verify(
            &key,
            request.headers[HEADER_TIMESTAMP].to_str().expect("ascii"),
            request.headers[HEADER_SIGNATURE].to_str().expect("ascii"),
            &request.body,
            now.timestamp(),
        );
        assert_eq!(verified, Ok(()));
    }

    #[test]
    fn classifies_every_kind_of_answer() {
        let now = Utc::now();
        let rows: Vec<(BuyerResponse, Outcome)> = vec![
            (
                response(200, &[], r#"{"id":"B-1"}"#),
                Outcome::Accepted {
                    price: None,
                    buyer_ref: Some("B-1".into()),
                },
            ),
            (
                response(201, &[], "not json"),
                Outcome::Accepted {
                    buyer_ref: None,
                    price: None,
                },
            ),
            (
                response(204, &[], ""),
                Outcome::Accepted {
                    buyer_ref: None,
                    price: None,
                },
            ),
            (
                response(302, &[], ""),
                Outcome::failed(
                    "http_302",
                    "the buyer answered 302 (a redirect); redirects are not followed",
                ),
            ),
            (
                response(401, &[], ""),
                Outcome::failed("http_401", "the buyer refused our credentials (401)"),
            ),
            (
                response(403, &[], ""),
                Outcome::failed("http_403", "the buyer refused our credentials (403)"),
            ),
            (
                response(404, &[], ""),
                Outcome::failed(
                    "http_404",
                    "the buyer's endpoint is not there (404); check the destination URL",
                ),
            ),
            (
                response(429, &[("retry-after", "30")], ""),
                Outcome::retry(
                    "http_429",
                    "the buyer asked us to try again later (429)",
                    Some(Duration::from_secs(30)),
                ),
            ),
            (
                response(408, &[], ""),
                Outcome::retry(
                    "http_408",
                    "the buyer asked us to try again later (408)",
                    None,
                ),
            ),
            (
                response(422, &[], r#"{"message":"state not served"}"#),
                Outcome::rejected(
                    "http_422",
                    "the buyer declined the lead (422): state not served",
                    true,
                ),
            ),
            (
                response(400, &[], "<html>"),
                Outcome::rejected(
                    "http_400",
                    "the buyer declined the lead (400): no reason given",
                    true,
                ),
            ),
            (
                response(500, &[], ""),
                Outcome::retry("http_500", "the buyer had a server error (500)", None),
            ),
            (
                response(503, &[("retry-after", "5")], ""),
                Outcome::retry(
                    "http_503",
                    "the buyer had a server error (503)",
                    Some(Duration::from_secs(5)),
                ),
            ),
        ];
        for (answer, expected) in rows {
            assert_eq!(classify(&answer, now), expected, "status {}", answer.status);
        }
    }
}
