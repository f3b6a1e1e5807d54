//! callback: buyers' asynchronous verdicts. `POST /v1/callbacks/{destination}/{token}` with
//! `{"verdict": "confirmed" | "rejected" | "returned" | "contacted", "reason"?, "buyerRef"?}`.
//!
//! The token in the URL was issued by dispatch for this lead and this buyer; a bad token is a 401 and
//! changes nothing. A verdict is recorded on the lead's timeline and moves its status
//! (`confirmed`, `rejected_after_post`, `returned`); `contacted` is recorded only, at most
//! [`MAX_CONTACTED`] times per lead (later ones are answered `recorded: false`: a lead's record is bounded).
//!
//! A buyer may call back before its answer to the POST is recorded: while its delivery is still open
//! (pending, in flight, retrying) the answer is 503 with `Retry-After`; when its acceptance is recorded but
//! the lead not yet settled, the lead is settled (`delivered`) first and the verdict then applies.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use leadhub::callbacks::{parse_verdict, verify_token, Verdict, VerdictBody, VerdictError};
use leadhub::config::Config;
use leadhub::delivery::settle_update;
use leadhub::http::{is_json, json_response, segments, Problem};
use leadhub::lead::now;
use leadhub::lead::{DeliveryStatus, EventKind, TimelineEvent};
use leadhub::store::{LeadStore, LeadUpdate, UpdateOutcome};
use leadhub::verticals::FieldError;
use serde_json::json;

/// The most `contacted` verdicts recorded on one lead.
pub const MAX_CONTACTED: usize = 20;

/// The largest verdict body taken.
pub const MAX_CALLBACK_BYTES: usize = 16 * 1024;

/// The callback endpoint with its dependencies.
pub struct Callback {
    pub config: Arc<Config>,
    pub store: Arc<dyn LeadStore>,
}

impl Callback {
    /// Answer one request. Never fails: every error is a problem+json answer.
    pub async fn handle(&self, request: Request<Vec<u8>>) -> Response<String> {
        let path = request.uri().path().to_owned();
        let result = match (request.method(), segments(&path).as_slice()) {
            (&Method::POST, ["v1", "callbacks", destination, token]) => {
                self.verdict(destination, token, request.headers(), request.body())
                    .await
            }
            (_, ["v1", "callbacks", _, _]) => Err(Problem::method_not_allowed("POST")),
            _ => Err(Problem::not_found("no such endpoint")),
        };
        result.unwrap_or_else(Problem::into_response)
    }

    async fn verdict(
        &self,
        destination: &str,
        token: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Response<String>, Problem> {
        let lead_id = verify_token(&self.config.callback_signer, destination, token)
            .ok_or_else(|| Problem::unauthorized("the callback URL is not valid"))?;
        if !is_json(headers) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the verdict as JSON with `Content-Type: application/json`",
            ));
        }
        if body.len() > MAX_CALLBACK_BYTES {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("a verdict may be at most {} KiB", MAX_CALLBACK_BYTES / 1024),
            ));
        }
        let verdict: VerdictBody = parse_verdict(body).map_err(|error| {
            Problem::invalid(
                "the verdict could not be read",
                vec![FieldError::new(
                    "$",
                    "invalid_body",
                    format!(
                        "expected {{\"verdict\": \"confirmed\" | \"rejected\" | \"returned\" | \"contacted\", \"reason\"?: string, \"buyerRef\"?: string}} ({})",
                        match error {
                            VerdictError::WrongShape => "the body does not have this shape",
                            VerdictError::NotJson => "the body is not valid JSON",
                        }
                    ),
                )],
            )
        })?;
        let reason: Option<String> = verdict
            .reason
            .as_deref()
            .map(|r| r.chars().filter(|c| !c.is_control()).take(500).collect());

        let mut lead = self
            .store
            .get_lead(&lead_id)
            .await
            .map_err(|error| self.unavailable(&lead_id, &error))?
            .ok_or_else(|| Problem::not_found("the lead no longer exists"))?;
        match lead.deliveries.get(destination).map(|state| state.status) {
            Some(DeliveryStatus::Accepted) => {}
            Some(DeliveryStatus::Pending | DeliveryStatus::InFlight | DeliveryStatus::Retrying) => {
                return Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "delivery_not_recorded_yet",
                    "your answer to the delivery of this lead is not recorded yet; retry shortly",
                )
                .with_retry_after(5));
            }
            _ => {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "not_delivered_to_you",
                    "this buyer has no accepted delivery of the lead",
                ))
            }
        }
        let now = now();
        // Dispatch recorded the acceptance but has not settled the lead yet: settle it here (or find it
        // settled by whoever got there first).
        if let Some(update) = settle_update(&lead, now) {
            lead = match self.store.update_lead(&lead_id, &update).await {
                Ok(UpdateOutcome::Applied(lead) | UpdateOutcome::Conflict(lead)) => lead,
                Ok(UpdateOutcome::NotFound) => {
                    return Err(Problem::not_found("the lead no longer exists"))
                }
                Err(error) => return Err(self.unavailable(&lead_id, &error)),
            };
        }
        if verdict.verdict == Verdict::Contacted
            && lead
                .events
                .iter()
                .filter(|event| {
                    event.kind == EventKind::BuyerVerdict
                        && event.code.as_deref() == Some(Verdict::Contacted.as_str())
                })
                .count()
                >= MAX_CONTACTED
        {
            return Ok(json_response(
                StatusCode::OK,
                &json!({"leadId": lead_id, "status": lead.status, "recorded": false}),
            ));
        }

        let (status, expect) = match verdict.verdict.transition() {
            Some((to, _)) if lead.status == to => {
                // The same verdict again: already recorded.
                return Ok(json_response(
                    StatusCode::OK,
                    &json!({"leadId": lead_id, "status": lead.status, "recorded": false}),
                ));
            }
            Some((to, from)) => (to, from.to_vec()),
            None => (lead.status, Vec::new()),
        };
        let event = TimelineEvent::new(now, EventKind::BuyerVerdict, status)
            .destination(destination)
            .reason(
                verdict.verdict.as_str(),
                reason
                    .unwrap_or_else(|| format!("the buyer reported: {}", verdict.verdict.as_str())),
            );
        let mut update = LeadUpdate::new(now).expect(&expect).event(event);
        if status != lead.status {
            update = update.status(status);
        }
        match self.store.update_lead(&lead_id, &update).await {
            Ok(UpdateOutcome::Applied(lead)) => {
                tracing::info!(lead_id = %lead_id, destination, verdict = verdict.verdict.as_str(), status = %lead.status, "buyer verdict recorded");
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"leadId": lead_id, "status": lead.status, "recorded": true}),
                ))
            }
            // A concurrent copy of the same verdict got there first.
            Ok(UpdateOutcome::Conflict(current))
                if current.status == status && !expect.is_empty() =>
            {
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"leadId": lead_id, "status": current.status, "recorded": false}),
                ))
            }
            Ok(UpdateOutcome::Conflict(current)) => Err(Problem::new(
                StatusCode::CONFLICT,
                "verdict_not_applicable",
                format!(
                    "the lead is {}; a `{}` verdict does not apply",
                    current.status,
                    verdict.verdict.as_str()
                ),
            )),
            Ok(UpdateOutcome::NotFound) => Err(Problem::not_found("the lead no longer exists")),
            Err(error) => Err(self.unavailable(&lead_id, &error)),
        }
    }

    /// The store could not be reached: the buyer should retry (its verdict is not recorded).
    fn unavailable(
        &self,
        lead_id: &leadhub::lead::LeadId,
        error: &leadhub::store::StoreError,
    ) -> Problem {
        tracing::error!(lead_id = %lead_id, %error, "could not read or record a verdict");
        Problem::unavailable(2)
    }
}
