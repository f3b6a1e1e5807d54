//! HTTP plumbing shared by ingest and callback: problem+json answers (RFC 9457), partner authentication,
//! body limits. Independent of Lambda: handlers turn these `http::Response<String>`s into theirs.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;

use crate::config::Partner;
use crate::crypto::SecretHash;
use crate::settings::Config;
use crate::verticals::FieldError;

/// The largest lead body the partner API takes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer. `detail` is written for the partner and never carries PII, secrets or internals.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: StatusCode,
    /// Stable machine-readable code of the problem; also the last part of its `type` URI.
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<u64>,
    pub www_authenticate: bool,
    /// For 405: the methods the resource takes.
    pub allow: Option<&'static str>,
}

/// The RFC 9457 body of a [`Problem`].
#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            www_authenticate: false,
            allow: None,
        }
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Problem {
            allow: Some(allow),
            ..Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("this resource takes {allow}"),
            )
        }
    }

    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Problem {
            errors,
            ..Problem::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
        }
    }

    pub fn unauthorized(detail: &str) -> Self {
        Problem {
            www_authenticate: true,
            ..Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; the request can be retried",
        )
    }

    pub fn unavailable(retry_after_secs: u64) -> Self {
        Problem {
            retry_after: Some(retry_after_secs),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the hub cannot take this request right now; nothing was kept, retry it shortly",
            )
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn into_response(self) -> Response<String> {
        let body = serde_json::to_string(&ProblemBody {
            kind: format!("urn:leadhub:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            errors: &self.errors,
        })
        .unwrap_or_else(|_| "{}".into());
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        if self.www_authenticate {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"leadhub\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// A JSON answer.
pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response<String> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Whether the request says its body is JSON (`application/json` or any `+json` type).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|mime| {
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

/// The partner named by `Authorization: Basic base64(keyId:secret)`, checked against its stored hash.
/// Every failure gives the same answer, and an unknown key id costs the same hash as a known one.
pub fn authenticate<'a>(config: &'a Config, headers: &HeaderMap) -> Result<&'a Partner, Problem> {
    const REFUSED: &str =
        "send `Authorization: Basic base64(keyId:secret)` with a valid partner key";
    let credentials = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| rest.trim().to_owned())
        })
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Problem::unauthorized(REFUSED))?;
    let (key_id, secret) = credentials
        .split_once(':')
        .ok_or_else(|| Problem::unauthorized(REFUSED))?;
    match config.partner_by_key_id(key_id) {
        Some(partner) if partner.secret_hash.verify(secret) => {
            if partner.enabled {
                Ok(partner)
            } else {
                Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "partner_disabled",
                    "this partner account is disabled",
                ))
            }
        }
        Some(_) => Err(Problem::unauthorized(REFUSED)),
        None => {
            // Same work as a known key, so response time does not reveal which key ids exist.
            let _ = SecretHash::of("").verify(secret);
            Err(Problem::unauthorized(REFUSED))
        }
    }
}

/// The path's segments after the leading slash, tolerating one trailing slash.
pub fn segments(path: &str) -> Vec<&str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_problem_json() {
        let response = Problem::invalid(
            "1 problem",
            vec![FieldError::new(
                "address.unitNumber",
                "required",
                "is required",
            )],
        )
        .into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_JSON);
        let body: serde_json::Value = serde_json::from_str(response.body()).expect("json");
        assert_eq!(body["errors"][0]["field"], "address.unitNumber");
        assert_eq!(body["status"], 400);
        assert_eq!(body["type"], "urn:leadhub:problem:invalid_request");
    }

    #[test]
    fn json_content_types() {
        for (value, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/vnd.lead+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), ok, "{value}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn paths() {
        assert_eq!(segments("/v1/leads/heloc"), vec!["v1", "leads", "heloc"]);
        assert_eq!(segments("/v1/leads/heloc/"), vec!["v1", "leads", "heloc"]);
        assert!(segments("/").is_empty());
    }
}
