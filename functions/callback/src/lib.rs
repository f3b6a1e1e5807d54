//! callback: buyers' asynchronous verdicts and webhooks. Lofty's webhook events, `POST
//! /v1/lofty/{destination}/{token}`, are recorded on the leads' timelines (see the `lofty` module).
//!
//! `POST /v1/callbacks/{destination}/{token}` with
//! `{"verdict": "confirmed" | "rejected" | "returned" | "contacted", "reason"?, "buyerRef"?}`, or nTherm's
//! final result (`{"success_bit", "message"}`, see [`leadhub::callbacks::parse_verdict`]).
//!
//! The token in the URL was issued by dispatch for this lead and this buyer; a bad token is a 401 and
//! changes nothing (nothing is kept). A verdict is recorded on the lead's timeline and moves its status
//! (`confirmed`, `rejected_after_post`, `returned`); `contacted` is recorded only, at most
//! [`MAX_CONTACTED`] times per lead (later ones are answered `recorded: false`: a lead's record is bounded).
//! The same verdict again changes nothing and is answered 200 `recorded: false`.
//!
//! # The body as it really arrives
//!
//! The body is read as JSON whatever its `Content-Type` says (nTherm's final result may come with none, or
//! as `text/plain`). A body the hub cannot read as a verdict is never lost: it is kept for the operator
//! ([`UnparsedCallbacks`], listed by `leadhub-admin callbacks unparsed`, the body never logged) and answered
//! 202 `{"leadId", "recorded": false, "kept": "for_operator", "callbackId", "code": "not_json" |
//! "unknown_shape", "detail"}` — or, when it also names a clearly non-JSON content type, 415, and when it
//! is over [`MAX_CALLBACK_BYTES`], 413 (both problem+json naming the kept callback). A verdict in the hub's
//! shape whose `consumerStatus` is malformed is a 400 naming each field, as before.
//!
//! # A verdict before the answer to the POST
//!
//! A buyer may call back before its answer to the POST is recorded (nTherm may send its final result
//! before answering postLead). While its delivery is open (pending, in flight, retrying) the verdict is kept
//! on the lead ([`lifecycle::verdict`] -> `Keep`, a `verdict_kept` timeline event) and answered 202
//! `{"leadId", "status", "recorded": false, "kept": true, "detail"}`; dispatch applies it once it records
//! the buyer's answer ([`lifecycle::apply_kept`]), or records it as not applied when the delivery ends
//! otherwise. One verdict is kept per buyer: the same one again is answered 202 again, another one 409
//! `other_verdict_kept`. When its acceptance is recorded but the lead not yet settled, the lead is settled
//! (`delivered`) first and the verdict then applies.
//!
//! # Returns
//!
//! A `returned` verdict must come within the destination's `return_window_days` of the delivery's
//! acceptance (409 `return_window_closed`, saying the window and when it closed) and carry a reason from its
//! `return_reasons` (any non-blank reason when none are configured; 409 `unknown_return_reason` listing them,
//! with an error on `reason`). With the vertical's `resell_returns` the lead goes on to the next buyer in
//! line.
//!
//! # A consumer status for LeadSafe
//!
//! A verdict may carry `"consumerStatus": {"reason", "startDate", "endDate"?, "ssn"}`: the consumer entered
//! (or left, with `endDate`) one of the statuses LeadSafe tracks (seed 003's nine reasons). A malformed one
//! is a 400 naming each bad field (`consumerStatus.reason`), and an SSN that is not the lead's own (when the
//! lead has one) a 422 on `consumerStatus.ssn`; neither applies the verdict, and no answer repeats the SSN.
//! Once the verdict is applied, kept, or was already recorded, the status is reported
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

use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use leadhub::callbacks::{
    clean_reason, parse_verdict, verify_token, VerdictBody, VerdictError, CONSUMER_STATUS_FIELD,
};
use leadhub::connectors::leadsafe::LeadSafeRecord;
use leadhub::http::{json_response, segments, Problem};
use leadhub::lead::{now, LeadId, LeadRecord};
use leadhub::leadsafe_reports::{
    self, LeadSafeReporting, ReportPorts, ReportSource, ReportStatusError, Reported,
};
use leadhub::lifecycle::{self, Transition, VerdictDecision, VerdictRules};
use leadhub::live_config::LiveConfig;
use leadhub::queue::JobQueue;
use leadhub::settings::Config;
use leadhub::store::{
    BuyerRefs, DeliveryTallies, LeadSafeReports, LeadStore, LeadUpdate, Suppressions,
    UnparsedCallback, UnparsedCallbackId, UnparsedCallbacks, UpdateOutcome,
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
    /// Returns are tallied per destination and day (return rates).
    pub tallies: Arc<dyn DeliveryTallies>,
    /// Callbacks whose body is not a verdict, kept for the operator.
    pub unparsed_callbacks: Arc<dyn UnparsedCallbacks>,
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
        // The token is good: from here on, a body the hub cannot read is kept for the operator, never lost.
        let content_type = headers
            .get(CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        if body.len() > MAX_CALLBACK_BYTES {
            let id = self
                .keep_unparsed(
                    destination,
                    &lead_id,
                    content_type.as_deref(),
                    body,
                    "too_large",
                )
                .await?;
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "a verdict may be at most {} KiB: the body was not read as one; it is kept for the hub's operator (callback {id})",
                    MAX_CALLBACK_BYTES / 1024
                ),
            ));
        }
        // The body is read as JSON whatever its content type says (nTherm's final result may come without
        // one, or as text/plain).
        let verdict: VerdictBody = match parse_verdict(body) {
            Ok(verdict) => verdict,
            Err(VerdictError::ConsumerStatus(errors)) => {
                return Err(Problem::invalid(
                    "the consumer status could not be read",
                    errors,
                ))
            }
            Err(VerdictError::NotJson) if body_kind(content_type.as_deref()) == BodyKind::Other => {
                let id = self
                    .keep_unparsed(
                        destination,
                        &lead_id,
                        content_type.as_deref(),
                        body,
                        "unsupported_media_type",
                    )
                    .await?;
                return Err(Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!(
                        "send the verdict as JSON (`Content-Type: application/json`); this body is not JSON and was not read as a verdict; it is kept for the hub's operator (callback {id})"
                    ),
                ));
            }
            Err(error) => {
                let (problem, why) = match error {
                    VerdictError::NotJson => ("not_json", "it is not JSON"),
                    _ => ("unknown_shape", "its fields are not a verdict's"),
                };
                let id = self
                    .keep_unparsed(
                        destination,
                        &lead_id,
                        content_type.as_deref(),
                        body,
                        problem,
                    )
                    .await?;
                return Ok(json_response(
                    StatusCode::ACCEPTED,
                    &json!({
                        "leadId": lead_id,
                        "recorded": false,
                        "kept": "for_operator",
                        "callbackId": id,
                        "code": problem,
                        "detail": format!(
                            "the body could not be read as a verdict ({why}): it is kept for the hub's operator and the lead is unchanged; a verdict is {VERDICT_SHAPE}"
                        ),
                    }),
                ));
            }
        };
        let reason: Option<String> = verdict.reason.as_deref().map(clean_reason);

        let lead = self.read(&lead_id).await?;
        if let Some(status) = &verdict.consumer_status {
            check_ssn(&config, &lead, status)?;
        }
        let rules = VerdictRules::of(&config, destination, lead.vertical);
        let (lead, applied) = self
            .apply(
                &lead_id,
                lead,
                destination,
                &verdict,
                reason.as_deref(),
                &rules,
            )
            .await?;
        let (status, mut answer) = match applied {
            Applied::Recorded | Applied::AlreadyRecorded => (
                StatusCode::OK,
                json!({
                    "leadId": lead_id,
                    "status": lead.status,
                    "recorded": applied == Applied::Recorded,
                }),
            ),
            Applied::Kept | Applied::AlreadyKept => (
                StatusCode::ACCEPTED,
                json!({
                    "leadId": lead_id,
                    "status": lead.status,
                    "recorded": false,
                    "kept": true,
                    "detail": "your answer to the delivery of this lead is not recorded yet: the verdict is kept and applies once it is",
                }),
            ),
        };
        if let Some(status) = &verdict.consumer_status {
            answer["consumerStatus"] = self.report(&config, &lead, destination, status).await?;
        }
        Ok(json_response(status, &answer))
    }

    /// Keep a callback whose body could not be read as a verdict, for the operator
    /// (`leadhub-admin callbacks unparsed`); its id. The body is never logged (it may hold PII). A store
    /// failure is a 503: nothing was kept, and the buyer should send it again.
    async fn keep_unparsed(
        &self,
        destination: &str,
        lead_id: &LeadId,
        content_type: Option<&str>,
        body: &[u8],
        problem: &str,
    ) -> Result<UnparsedCallbackId, Problem> {
        let callback = UnparsedCallback::new(
            destination,
            Some(lead_id.clone()),
            content_type,
            body,
            problem,
            now(),
        );
        self.unparsed_callbacks
            .put_unparsed(&callback)
            .await
            .map_err(|error| {
                tracing::error!(lead_id = %lead_id, destination, %error, "could not keep a callback that is not a verdict");
                Problem::unavailable(2)
            })?;
        tracing::warn!(lead_id = %lead_id, destination, callback_id = %callback.id, problem, size = body.len(), "a callback could not be read as a verdict: kept for the operator (leadhub-admin callbacks unparsed)");
        Ok(callback.id)
    }

    /// Apply the verdict: the lead as it now is, and what became of the verdict. Read, decide, write; a
    /// write that lost a race is decided again on the record as it now is. A verdict kept earlier for this
    /// buyer whose delivery is now decided (the dispatch job that should have applied it has not run yet) is
    /// applied first, so that the buyer's verdicts apply in the order they came.
    async fn apply(
        &self,
        lead_id: &LeadId,
        mut lead: LeadRecord,
        destination: &str,
        verdict: &VerdictBody,
        reason: Option<&str>,
        rules: &VerdictRules,
    ) -> Result<(LeadRecord, Applied), Problem> {
        let config = self.config.current();
        let ports = lifecycle::Ports {
            store: self.store.as_ref(),
            queue: Some(self.dispatch_queue.as_ref()),
            counters: None,
            dead_deliveries: None,
            tallies: Some(self.tallies.as_ref()),
            subscribers: Some(config.as_ref()),
        };
        let commit = |transition: Transition| async move {
            lifecycle::commit(ports, lead_id, &transition)
                .await
                .map_err(|error| {
                    tracing::error!(lead_id = %lead_id, %error, "could not record a verdict");
                    Problem::unavailable(2)
                })
        };
        for _ in 0..4 {
            if let Some(kept) = lifecycle::apply_kept_verdict(&lead, destination, rules, now()) {
                match commit(kept).await? {
                    UpdateOutcome::Applied(current) => {
                        tracing::info!(lead_id = %lead_id, destination, status = %current.status, "kept buyer verdict applied");
                        lead = current;
                    }
                    UpdateOutcome::Conflict(current) => lead = current,
                    UpdateOutcome::NotFound => {
                        return Err(Problem::not_found("the lead no longer exists"))
                    }
                }
                continue;
            }
            let (transition, kept) = match lifecycle::verdict(
                &lead,
                destination,
                verdict.verdict,
                reason,
                rules,
                now(),
            ) {
                VerdictDecision::Apply(transition) => (transition, false),
                VerdictDecision::Keep(transition) => (transition, true),
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
                    return Ok((lead, Applied::AlreadyRecorded));
                }
                VerdictDecision::AlreadyKept { .. } => return Ok((lead, Applied::AlreadyKept)),
                decision => return Err(refusal(decision, verdict)),
            };
            match commit(transition).await? {
                UpdateOutcome::Applied(lead) => {
                    if kept {
                        tracing::info!(lead_id = %lead_id, destination, verdict = verdict.verdict.as_str(), "buyer verdict kept until its answer to the delivery is recorded");
                        return Ok((lead, Applied::Kept));
                    }
                    tracing::info!(lead_id = %lead_id, destination, verdict = verdict.verdict.as_str(), status = %lead.status, "buyer verdict recorded");
                    return Ok((lead, Applied::Recorded));
                }
                UpdateOutcome::Conflict(current) => lead = current,
                UpdateOutcome::NotFound => {
                    return Err(Problem::not_found("the lead no longer exists"))
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

/// The verdict's shape, for the buyer (in the answers to bodies that are not one).
const VERDICT_SHAPE: &str = "{\"verdict\": \"confirmed\" | \"rejected\" | \"returned\" | \"contacted\", \"reason\"?: string, \"buyerRef\"?: string, \"consumerStatus\"?: {\"reason\", \"startDate\", \"endDate\"?, \"ssn\"}}, or nTherm's {\"success_bit\": true | false, \"message\"?}";

/// What became of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    Recorded,
    AlreadyRecorded,
    /// Kept until the buyer's answer to the delivery is recorded.
    Kept,
    /// Kept already.
    AlreadyKept,
}

/// What a request's `Content-Type` says of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    /// `application/json` or `application/*+json`.
    Json,
    /// Nothing useful: none, or `text/plain` (how nTherm's final result may come).
    Unstated,
    /// A type that is clearly not JSON (a form, XML, binary...).
    Other,
}

fn body_kind(content_type: Option<&str>) -> BodyKind {
    let Some(value) = content_type else {
        return BodyKind::Unstated;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime.is_empty() || mime == "text/plain" {
        BodyKind::Unstated
    } else if mime == "application/json"
        || (mime.starts_with("application/") && mime.ends_with("+json"))
    {
        BodyKind::Json
    } else {
        BodyKind::Other
    }
}

fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The answer to a verdict that does not apply (a 409 saying why).
fn refusal(decision: VerdictDecision, verdict: &VerdictBody) -> Problem {
    let conflict = |code, detail: String| Problem::new(StatusCode::CONFLICT, code, detail);
    match decision {
        VerdictDecision::NotDeliveredToYou => conflict(
            "not_delivered_to_you",
            "this buyer has no accepted delivery of the lead".to_owned(),
        ),
        VerdictDecision::NotApplicable { status } => conflict(
            "verdict_not_applicable",
            format!(
                "the lead is {status}; a `{}` verdict does not apply",
                verdict.verdict.as_str()
            ),
        ),
        VerdictDecision::OtherVerdictKept { kept, received_at } => conflict(
            "other_verdict_kept",
            format!(
                "a `{}` verdict (received at {}) is kept for this lead until your answer to its delivery is recorded; one verdict is kept at a time: send this one again once that answer is recorded",
                kept.as_str(),
                time(received_at)
            ),
        ),
        VerdictDecision::ReturnWindowClosed {
            window_days,
            closed_at,
        } => conflict(
            "return_window_closed",
            format!(
                "a lead may be returned within {window_days} days of its delivery's acceptance; that window closed at {}",
                time(closed_at)
            ),
        ),
        VerdictDecision::UnknownReturnReason { allowed } => {
            let given = verdict
                .reason
                .as_deref()
                .is_some_and(|reason| !reason.trim().is_empty());
            let (detail, message) = match &allowed {
                Some(reasons) => {
                    let list = reasons
                        .iter()
                        .map(|reason| format!("`{reason}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    (
                        format!("a return must give one of this destination's return reasons: {list}"),
                        format!("must be one of: {list}"),
                    )
                }
                None => (
                    "a return must give its reason".to_owned(),
                    "is required for a return".to_owned(),
                ),
            };
            Problem {
                errors: vec![FieldError::new(
                    "reason",
                    if given { "invalid_value" } else { "required" },
                    message,
                )],
                ..conflict("unknown_return_reason", detail)
            }
        }
        // Handled by the caller; not refusals.
        VerdictDecision::Apply(_)
        | VerdictDecision::Keep(_)
        | VerdictDecision::AlreadyRecorded
        | VerdictDecision::AlreadyKept { .. } => Problem::internal(),
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
