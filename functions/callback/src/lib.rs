//! callback: buyers' asynchronous verdicts and webhooks. Lofty's webhook events, `POST
//! /v1/lofty/{destination}/{token}`, are recorded on the leads' timelines (see the `lofty` module).
//!
//! `POST /v1/callbacks/{destination}/{token}` with
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
//!
//! # A consumer status for LeadSafe
//!
//! A verdict may carry `"consumerStatus": {"reason", "startDate", "endDate"?, "ssn"}`: the consumer entered
//! (or left, with `endDate`) one of the statuses LeadSafe tracks (seed 003's nine reasons). A malformed one
//! is a 400 naming each bad field (`consumerStatus.reason`), and an SSN that is not the lead's own (when the
//! lead has one) a 422 on `consumerStatus.ssn`; neither applies the verdict, and no answer repeats the SSN.
//! Once the verdict is applied (or was already recorded), the status is reported
//! ([`leadhub::leadsafe_reports::report_status`]): the consumer is suppressed locally at once; with
//! `[screening.leadsafe]` and `hub.ssn_key` configured the report is kept (the SSN sealed, for
//! `report_retention_days`) and sent with LeadSafe's `add` (at most [`MAX_ADD_WAIT`]; a failure leaves it
//! unsent for `leadhub-admin leadsafe send`). Without LeadSafe configured the status is accepted and only
//! suppressed locally (the hub must stop selling the consumer whatever it can tell LeadSafe; refusing the
//! verdict for the hub's own configuration would lose it), and the answer says so: `"consumerStatus":
//! {"reason", "recorded", "leadsafe": "sent" | "unsent" | "not_configured"}`. The lead's timeline gets a
//! `buyer_verdict` event with code `consumer_status_reported` and the reason and dates (never the SSN), once
//! per buyer and status: the same verdict sent again reports nothing twice (`recorded: false`). A store
//! failure while reporting is a 503 (the verdict itself is recorded; sending the request again reports the
//! status).

mod lofty;

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use leadhub::callbacks::{
    clean_reason, parse_verdict, verify_token, VerdictBody, VerdictError, CONSUMER_STATUS_FIELD,
};
use leadhub::connectors::leadsafe::LeadSafeRecord;
use leadhub::http::{is_json, json_response, segments, Problem};
use leadhub::lead::{now, LeadId, LeadRecord};
use leadhub::leadsafe_reports::{
    self, LeadSafeReporting, ReportPorts, ReportSource, ReportStatusError, Reported,
};
use leadhub::lifecycle::{self, VerdictDecision};
use leadhub::live_config::LiveConfig;
use leadhub::queue::JobQueue;
use leadhub::settings::Config;
use leadhub::store::{
    BuyerRefs, LeadSafeReports, LeadStore, LeadUpdate, Suppressions, UpdateOutcome,
};
use leadhub::transport::Transport;
use leadhub::verticals::FieldError;
use serde_json::{json, Value};

/// The most `contacted` verdicts recorded on one lead.
pub use leadhub::lifecycle::MAX_CONTACTED;

pub use lofty::{MAX_LEADS_PER_EVENT, MAX_LOFTY_EVENT_BYTES};

/// The largest verdict body taken.
pub const MAX_CALLBACK_BYTES: usize = 16 * 1024;

/// The most a reported status's `add` to LeadSafe may take while the buyer waits (less when
/// `[screening.leadsafe] timeout_ms` is less): the function's 10 s must also hold the store's calls.
pub const MAX_ADD_WAIT: Duration = Duration::from_secs(3);

/// The callback endpoint with its dependencies.
pub struct Callback {
    /// The configuration in effect (re-read from the table when due).
    pub config: LiveConfig,
    pub store: Arc<dyn LeadStore>,
    /// Where a re-routed lead's next delivery jobs go (a waterfall buyer's later rejection).
    pub dispatch_queue: Arc<dyn JobQueue>,
    /// The suppression list: a reported consumer status suppresses the consumer locally.
    pub suppressions: Arc<dyn Suppressions>,
    /// Reported consumer statuses, kept (SSN sealed) until sent and exported.
    pub leadsafe_reports: Arc<dyn LeadSafeReports>,
    /// LeadSafe's `add` goes through it.
    pub transport: Arc<dyn Transport>,
    /// A buyer's own id for a lead it took -> the lead (Lofty's webhooks name only the Lofty lead).
    pub buyer_refs: Arc<dyn BuyerRefs>,
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
            (&Method::POST, ["v1", "lofty", destination, token]) => {
                self.lofty_event(destination, token, request.headers(), request.body())
                    .await
            }
            (_, ["v1", "lofty", _, _]) => Err(Problem::method_not_allowed("POST")),
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
            let shape = match error {
                VerdictError::ConsumerStatus(errors) => {
                    return Problem::invalid("the consumer status could not be read", errors)
                }
                VerdictError::WrongShape => "the body does not have this shape",
                VerdictError::NotJson => "the body is not valid JSON",
            };
            Problem::invalid(
                "the verdict could not be read",
                vec![FieldError::new(
                    "$",
                    "invalid_body",
                    format!(
                        "expected {{\"verdict\": \"confirmed\" | \"rejected\" | \"returned\" | \"contacted\", \"reason\"?: string, \"buyerRef\"?: string, \"consumerStatus\"?: {{\"reason\", \"startDate\", \"endDate\"?, \"ssn\"}}}} ({shape})"
                    ),
                )],
            )
        })?;
        let reason: Option<String> = verdict.reason.as_deref().map(clean_reason);

        let lead = self.read(&lead_id).await?;
        if let Some(status) = &verdict.consumer_status {
            check_ssn(&config, &lead, status)?;
        }
        let (lead, recorded) = self
            .apply(&lead_id, lead, destination, &verdict, reason.as_deref())
            .await?;
        let mut answer = json!({"leadId": lead_id, "status": lead.status, "recorded": recorded});
        if let Some(status) = &verdict.consumer_status {
            answer["consumerStatus"] = self.report(&config, &lead, destination, status).await?;
        }
        Ok(json_response(StatusCode::OK, &answer))
    }

    /// Apply the verdict: the lead as it now is, and whether the verdict was recorded now (`false`: it
    /// already was). Read, decide, write; a write that lost a race is decided again on the record as it now
    /// is.
    async fn apply(
        &self,
        lead_id: &LeadId,
        mut lead: LeadRecord,
        destination: &str,
        verdict: &VerdictBody,
        reason: Option<&str>,
    ) -> Result<(LeadRecord, bool), Problem> {
        let config = self.config.current();
        for _ in 0..3 {
            let transition = match lifecycle::verdict(
                &lead,
                destination,
                verdict.verdict,
                reason,
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
                    return Ok((lead, false));
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
                subscribers: Some(config.as_ref()),
            };
            match lifecycle::commit(ports, lead_id, &transition).await {
                Ok(UpdateOutcome::Applied(lead)) => {
                    tracing::info!(lead_id = %lead_id, destination, verdict = verdict.verdict.as_str(), status = %lead.status, "buyer verdict recorded");
                    return Ok((lead, true));
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

    /// Report the consumer status `status` that `destination` gave with its verdict on `lead` (see the
    /// module docs); what the buyer is told of it.
    async fn report(
        &self,
        config: &Config,
        lead: &LeadRecord,
        destination: &str,
        status: &LeadSafeRecord,
    ) -> Result<Value, Problem> {
        let at = now();
        let Some(event) = leadsafe_reports::consumer_status_event(lead, destination, status, at)
        else {
            return Ok(json!({"reason": status.reason, "recorded": false}));
        };
        let not_recorded = |what: &str| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "consumer_status_not_recorded",
                format!(
                    "the verdict is recorded but the consumer status is not ({what}); send the same request again shortly"
                ),
            )
            .with_retry_after(2)
        };
        let leadsafe = match (&config.screening.leadsafe, &config.ssn_sealer) {
            (Some(settings), Some(sealer)) => Some(LeadSafeReporting {
                settings,
                sealer,
                timeout: settings.timeout.min(MAX_ADD_WAIT),
            }),
            _ => {
                tracing::warn!(lead_id = %lead.id, destination, reason = %status.reason, "a buyer reported a consumer status but LeadSafe is not configured ([screening.leadsafe] and hub.ssn_key): suppressed locally only");
                None
            }
        };
        let ports = ReportPorts {
            suppressions: self.suppressions.as_ref(),
            reports: self.leadsafe_reports.as_ref(),
            transport: self.transport.as_ref(),
        };
        let source = ReportSource::Buyer {
            destination: destination.to_owned(),
            lead_id: lead.id.clone(),
        };
        let reported = leadsafe_reports::report_status(
            ports,
            &config.hasher,
            leadsafe,
            status,
            source,
            at,
        )
        .await
        .map_err(|error| match error {
            ReportStatusError::Store(error) => {
                tracing::error!(lead_id = %lead.id, %error, "could not keep a reported consumer status");
                not_recorded("the store is unavailable")
            }
            // The body's check refuses an end before the start: not expected here.
            ReportStatusError::Report(error) => Problem::invalid(
                "the consumer status could not be read",
                vec![FieldError::new(
                    format!("{CONSUMER_STATUS_FIELD}.endDate"),
                    "out_of_range",
                    error.to_string(),
                )],
            ),
        })?;
        match self
            .store
            .update_lead(&lead.id, &LeadUpdate::new(at).event(event))
            .await
        {
            Ok(UpdateOutcome::Applied(_) | UpdateOutcome::Conflict(_)) => {}
            Ok(UpdateOutcome::NotFound) => {
                return Err(Problem::not_found("the lead no longer exists"))
            }
            Err(error) => {
                tracing::error!(lead_id = %lead.id, %error, "could not record a reported consumer status on the timeline");
                return Err(not_recorded("the store is unavailable"));
            }
        }
        match &reported {
            Reported::Sent(id) => {
                tracing::info!(lead_id = %lead.id, destination, report_id = %id, reason = %status.reason, "consumer status reported to LeadSafe")
            }
            Reported::Unsent { id, why } => {
                tracing::warn!(lead_id = %lead.id, destination, report_id = %id, reason = %status.reason, problem = %why, "consumer status kept but not sent to LeadSafe yet")
            }
            Reported::SuppressedOnly => {}
        }
        Ok(json!({
            "reason": status.reason,
            "recorded": true,
            "leadsafe": reported.leadsafe(),
        }))
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

/// A consumer status's SSN must be the lead's own when the lead has one (its `ssn_hash`): a buyer reports
/// on the consumer it bought. A 422 on `consumerStatus.ssn` otherwise, which does not repeat it.
fn check_ssn(config: &Config, lead: &LeadRecord, status: &LeadSafeRecord) -> Result<(), Problem> {
    let Some(hash) = &lead.ssn_hash else {
        return Ok(());
    };
    let suppressed = leadsafe_reports::suppression_record(&config.hasher, status);
    if &suppressed.hash == hash {
        return Ok(());
    }
    Err(Problem {
        errors: vec![FieldError::new(
            format!("{CONSUMER_STATUS_FIELD}.ssn"),
            "invalid_value",
            "is not the SSN of this lead",
        )],
        ..Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "consumer_status_not_this_lead",
            "the consumer status names another consumer than this lead's; nothing was recorded",
        )
    })
}
