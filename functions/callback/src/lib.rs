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
use leadhub::callbacks::{clean_reason, parse_verdict, verify_token, VerdictBody, VerdictError};
use leadhub::http::{is_json, json_response, segments, Problem};
use leadhub::lead::{now, LeadId, LeadRecord, LeadStatus};
use leadhub::lifecycle::{self, VerdictDecision};
use leadhub::live_config::LiveConfig;
use leadhub::queue::JobQueue;
use leadhub::store::{LeadStore, UpdateOutcome};
use leadhub::verticals::FieldError;
use serde_json::json;

/// The most `contacted` verdicts recorded on one lead.
pub use leadhub::lifecycle::MAX_CONTACTED;

/// The largest verdict body taken.
pub const MAX_CALLBACK_BYTES: usize = 16 * 1024;

/// The callback endpoint with its dependencies.
pub struct Callback {
    /// The configuration in effect (re-read from the table when due).
    pub config: LiveConfig,
    pub store: Arc<dyn LeadStore>,
    /// Where a re-routed lead's next delivery jobs go (a waterfall buyer's later rejection).
    pub dispatch_queue: Arc<dyn JobQueue>,
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
        let config = self.config.get().await;
        let lead_id = verify_token(&config.callback_signer, destination, token)
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
        let reason: Option<String> = verdict.reason.as_deref().map(clean_reason);

        // Read, decide, write; a write that lost a race is decided again on the record as it now is.
        let mut lead = self.read(&lead_id).await?;
        for _ in 0..3 {
            let answer = |status: LeadStatus, recorded: bool| {
                json_response(
                    StatusCode::OK,
                    &json!({"leadId": lead_id, "status": status, "recorded": recorded}),
                )
            };
            let transition = match lifecycle::verdict(
                &lead,
                destination,
                verdict.verdict,
                reason.as_deref(),
                now(),
            ) {
                VerdictDecision::Apply(transition) => transition,
                VerdictDecision::AlreadyRecorded => {
                    // The verdict may have sent the lead on to its next buyer and its job not have been
                    // queued (the buyer was answered 503 and sent the verdict again): queue it again.
                    lifecycle::send_jobs(
                        self.dispatch_queue.as_ref(),
                        &lifecycle::pending_jobs(&lead),
                    )
                    .await
                    .map_err(|error| {
                        tracing::error!(lead_id = %lead_id, %error, "could not queue a delivery job");
                        Problem::unavailable(2)
                    })?;
                    return Ok(answer(lead.status, false));
                }
                VerdictDecision::NotRecordedYet => return Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "delivery_not_recorded_yet",
                    "your answer to the delivery of this lead is not recorded yet; retry shortly",
                )
                .with_retry_after(5)),
                VerdictDecision::NotDeliveredToYou => {
                    return Err(Problem::new(
                        StatusCode::CONFLICT,
                        "not_delivered_to_you",
                        "this buyer has no accepted delivery of the lead",
                    ))
                }
                VerdictDecision::NotApplicable { status } => {
                    return Err(Problem::new(
                        StatusCode::CONFLICT,
                        "verdict_not_applicable",
                        format!(
                            "the lead is {status}; a `{}` verdict does not apply",
                            verdict.verdict.as_str()
                        ),
                    ))
                }
            };
            let ports = lifecycle::Ports {
                store: self.store.as_ref(),
                queue: Some(self.dispatch_queue.as_ref()),
                counters: None,
                dead_deliveries: None,
            };
            match lifecycle::commit(ports, &lead_id, &transition).await {
                Ok(UpdateOutcome::Applied(lead)) => {
                    tracing::info!(lead_id = %lead_id, destination, verdict = verdict.verdict.as_str(), status = %lead.status, "buyer verdict recorded");
                    return Ok(answer(lead.status, true));
                }
                Ok(UpdateOutcome::Conflict(current)) => lead = current,
                Ok(UpdateOutcome::NotFound) => {
                    return Err(Problem::not_found("the lead no longer exists"))
                }
                Err(error) => {
                    tracing::error!(lead_id = %lead_id, %error, "could not record a verdict");
                    return Err(Problem::unavailable(2));
                }
            }
        }
        // The lead kept changing under us: the buyer should send the verdict again.
        Err(Problem::unavailable(2))
    }

    async fn read(&self, lead_id: &LeadId) -> Result<LeadRecord, Problem> {
        self.store
            .get_lead(lead_id)
            .await
            .map_err(|error| self.unavailable(lead_id, &error))?
            .ok_or_else(|| Problem::not_found("the lead no longer exists"))
    }

    /// The store could not be reached: the buyer should retry (its verdict is not recorded).
    fn unavailable(&self, lead_id: &LeadId, error: &leadhub::store::StoreError) -> Problem {
        tracing::error!(lead_id = %lead_id, %error, "could not read or record a verdict");
        Problem::unavailable(2)
    }
}
