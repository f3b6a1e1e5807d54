//! ingest: the partner API. `POST /v1/leads/{vertical}` checks a lead against its vertical's rules and
//! answers at once; `GET /v1/leads/{leadId}` reads its status and timeline; `GET /v1/leads` lists the
//! partner's own leads, newest first, a page at a time (query and cursor: [`leadhub::listing`]).
//!
//! An accepted lead costs one DynamoDB write (a conditional put, or a transaction with the idempotency
//! record when an `Idempotency-Key` is given) and one SQS send; one more write before those when it carries
//! an SSN that is kept sealed for screening.
//!
//! An SSN (mortgage's `borrower.ssn`) is never part of the lead: the lead keeps only its keyed hash
//! (`ssn_hash`, for suppression matching). When `hub.ssn_key` is configured and the lead is not a test lead
//! (test leads are not screened by LeadSafe), the SSN is also sealed for its lead ([`SsnSealer`]) and put in
//! [`SealedSsns`], expiring `hub.ssn_ttl_hours` after receipt, before the lead is created; validate reads it
//! for LeadSafe and deletes it once screening has decided. Should the lead not be created, be a replay of an
//! earlier request, or be discarded because it could not be queued, ingest deletes the sealed SSN again
//! (best effort: its TTL removes it otherwise).
//!
//! [`SsnSealer`]: leadhub::crypto::SsnSealer

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::{Method, Request, Response, StatusCode};
use leadhub::config::Partner;
use leadhub::crypto::sha256_hex;
use leadhub::delivery::ValidateJob;
use leadhub::http::{
    authenticate, is_json, json_response, segments, Problem, MAX_BODY_BYTES,
    MAX_IDEMPOTENCY_KEY_LEN,
};
use leadhub::lead::{later, now};
use leadhub::lead::{LeadId, LeadRecord, LeadStatus};
use leadhub::lifecycle::{self, ReplayAnswer};
use leadhub::listing;
use leadhub::live_config::LiveConfig;
use leadhub::queue::JobQueue;
use leadhub::store::{CreateOutcome, IdempotencyRecord, LeadStore, SealedSsns, StoreError};
use leadhub::suppression::{self, SuppressionKind};
use leadhub::verticals::Vertical;
use serde::Serialize;

/// The partner API with its dependencies.
pub struct Ingest {
    /// The configuration in effect (re-read from the table when due).
    pub config: LiveConfig,
    pub store: Arc<dyn LeadStore>,
    /// Where a lead's SSN is kept sealed for screening (the same table as `store` on AWS).
    pub sealed_ssns: Arc<dyn SealedSsns>,
    pub validate_queue: Arc<dyn JobQueue>,
}

/// The 202 answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted<'a> {
    lead_id: &'a LeadId,
    status: LeadStatus,
    status_url: String,
}

fn accepted(lead_id: &LeadId) -> Response<String> {
    json_response(
        StatusCode::ACCEPTED,
        &Accepted {
            lead_id,
            status: LeadStatus::Received,
            status_url: format!("/v1/leads/{lead_id}"),
        },
    )
}

/// The OpenAPI document, serialised once per process.
fn openapi() -> Response<String> {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| leadhub::openapi::document().to_string());
    let mut response = Response::new(body.clone());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

impl Ingest {
    /// Answer one request. Never fails: every error is a problem+json answer.
    pub async fn handle(&self, request: Request<Vec<u8>>) -> Response<String> {
        let path = request.uri().path().to_owned();
        // `/v1/leads/{x}` is a vertical (POST) or a lead id (GET), told apart by what `x` is.
        let result = match (request.method(), segments(&path).as_slice()) {
            (method, ["v1", "leads", vertical]) if vertical.parse::<Vertical>().is_ok() => {
                if method == Method::POST {
                    self.post_lead(vertical, &request).await
                } else {
                    Err(Problem::method_not_allowed("POST"))
                }
            }
            (method, ["v1", "leads", id]) if id.starts_with(LeadId::PREFIX) => {
                if method == Method::GET {
                    self.get_lead(id, &request).await
                } else {
                    Err(Problem::method_not_allowed("GET"))
                }
            }
            // Neither: an unknown vertical (after authentication) or a malformed id.
            (&Method::POST, ["v1", "leads", vertical]) => self.post_lead(vertical, &request).await,
            (&Method::GET, ["v1", "leads", lead_id]) => self.get_lead(lead_id, &request).await,
            (&Method::GET, ["v1", "leads"]) => self.list_leads(&request).await,
            (_, ["v1", "leads"]) => Err(Problem::method_not_allowed("GET")),
            (&Method::GET, ["v1", "openapi.json"]) => Ok(openapi()),
            (_, ["v1", "openapi.json"]) => Err(Problem::method_not_allowed("GET")),
            _ => Err(Problem::not_found("no such endpoint")),
        };
        result.unwrap_or_else(Problem::into_response)
    }

    async fn post_lead(
        &self,
        vertical: &str,
        request: &Request<Vec<u8>>,
    ) -> Result<Response<String>, Problem> {
        let config = self.config.get().await;
        let partner = authenticate(&config, request.headers())?;
        let vertical: Vertical = vertical.parse().map_err(|_| {
            let known: Vec<&str> = Vertical::ALL.iter().map(|v| v.as_str()).collect();
            Problem::not_found(format!(
                "unknown vertical; the hub takes: {}",
                known.join(", ")
            ))
        })?;
        if !partner.verticals.contains(&vertical) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "vertical_not_enabled",
                format!("this partner is not enabled for {vertical} leads"),
            ));
        }
        if !is_json(request.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the lead as JSON with `Content-Type: application/json`",
            ));
        }
        let body = request.body();
        if body.len() > MAX_BODY_BYTES {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("a lead may be at most {} KiB", MAX_BODY_BYTES / 1024),
            ));
        }
        let idempotency_key = idempotency_key(request)?;
        let test = test_lead(request)?;
        let parsed = vertical
            .parse_with(body, config.url_policy)
            .map_err(|errors| {
                let errors = errors.into_vec();
                let detail = match errors.len() {
                    1 => "the lead breaks 1 rule".to_owned(),
                    n => format!("the lead breaks {n} rules"),
                };
                Problem::invalid(detail, errors)
            })?;

        let now = now();
        let lead_id = LeadId::generate(now);
        let mut lead = LeadRecord::received(
            lead_id.clone(),
            &partner.id,
            vertical,
            parsed.lead,
            now,
            Some(later(now, config.lead_retention)),
        );
        lead.original = Some(parsed.original);
        lead.test = test;
        // An SSN is for screening only: the lead keeps its keyed hash, never the SSN itself.
        lead.ssn_hash = parsed
            .ssn
            .as_deref()
            .map(|ssn| suppression::hash(&config.hasher, SuppressionKind::Ssn, ssn));
        // LeadSafe's search needs the SSN itself: sealed for this lead, kept apart and briefly, and before
        // the lead exists, so that validate never sees a lead whose sealed SSN is still to come. Only
        // where the vertical's screening asks LeadSafe.
        let asks_leadsafe = config.screening.for_vertical(vertical).leadsafe.is_some();
        let sealed_ssn = match (&config.ssn_sealer, parsed.ssn.as_deref()) {
            (Some(sealer), Some(ssn)) if !test && asks_leadsafe => {
                let sealed = sealer.seal(lead_id.as_str(), ssn);
                let expires_at = later(now, config.ssn_ttl);
                if let Err(error) = self
                    .sealed_ssns
                    .put_sealed_ssn(&lead_id, &sealed, expires_at)
                    .await
                {
                    tracing::error!(lead_id = %lead_id, partner_id = %partner.id, %error, "could not keep a sealed SSN");
                    return Err(Problem::unavailable(2));
                }
                true
            }
            _ => false,
        };
        let idempotency = idempotency_key.map(|key| IdempotencyRecord {
            partner_id: partner.id.to_string(),
            // A test and a real post of the same body are different requests.
            request_hash: sha256_hex(
                &[
                    vertical.as_str().as_bytes(),
                    if test { b"\ntest\n" } else { b"\n" },
                    body,
                ]
                .concat(),
            ),
            key,
            lead_id: lead_id.clone(),
            created_at: now,
            in_flight_until: later(now, config.idempotency_in_flight),
            expires_at: later(now, config.idempotency_ttl),
        });

        match self.store.create_lead(&lead, idempotency.as_ref()).await {
            Ok(CreateOutcome::Created) => {}
            Ok(CreateOutcome::IdempotencyKeyUsed(first)) => {
                // This request's lead was not made: the first request's lead has its own sealed SSN.
                if sealed_ssn {
                    self.drop_sealed_ssn(&lead_id).await;
                }
                return self
                    .replay(partner, idempotency.as_ref(), &first, now)
                    .await;
            }
            // The id was made just now (80 random bits): it exists only if our own write landed and its
            // answer was lost (the SDK retried the conditional put). Make sure, then go on as created.
            Err(StoreError::AlreadyExists(_)) if self.is_ours(&lead).await => {}
            Err(error) => {
                tracing::error!(partner_id = %partner.id, %error, "could not store a lead");
                // The write may have landed all the same (a timeout): only a lead known to be absent has
                // no use for its sealed SSN; otherwise it expires by itself.
                if sealed_ssn && matches!(self.store.get_lead(&lead_id).await, Ok(None)) {
                    self.drop_sealed_ssn(&lead_id).await;
                }
                return Err(Problem::unavailable(2));
            }
        }
        if let Err(error) = self.enqueue(&lead_id).await {
            tracing::error!(lead_id = %lead_id, %error, "could not queue a stored lead; discarding it");
            let key = idempotency
                .as_ref()
                .map(|r| (r.partner_id.as_str(), r.key.as_str()));
            match self.store.discard_lead(&lead_id, key).await {
                // A lead already past `received` is kept (its send only looked like it failed): validate has
                // it, and its sealed SSN. Only a lead that is gone has no use for one.
                Ok(()) if sealed_ssn => {
                    if matches!(self.store.get_lead(&lead_id).await, Ok(None)) {
                        self.drop_sealed_ssn(&lead_id).await;
                    }
                }
                Ok(()) => {}
                // The lead stays `received` (and its sealed SSN with it); a replay with the same
                // Idempotency-Key queues it again.
                Err(error) => {
                    tracing::error!(lead_id = %lead_id, %error, "could not discard an unqueued lead");
                }
            }
            return Err(Problem::unavailable(2));
        }
        tracing::info!(lead_id = %lead_id, partner_id = %partner.id, vertical = %vertical, "lead accepted");
        Ok(accepted(&lead_id))
    }

    /// Delete the sealed SSN of a lead that will not be screened (best effort: it expires anyway).
    async fn drop_sealed_ssn(&self, lead_id: &LeadId) {
        if let Err(error) = self.sealed_ssns.delete_sealed_ssn(lead_id).await {
            tracing::warn!(lead_id = %lead_id, %error, "could not delete a sealed SSN; it expires with its TTL");
        }
    }

    /// Whether the stored lead with `lead`'s id is `lead` (same partner, same time of receipt).
    async fn is_ours(&self, lead: &LeadRecord) -> bool {
        matches!(
            self.store.get_lead(&lead.id).await,
            Ok(Some(stored)) if stored.partner_id == lead.partner_id && stored.created_at == lead.created_at
        )
    }

    async fn enqueue(&self, lead_id: &LeadId) -> Result<(), String> {
        let job =
            serde_json::to_string(&ValidateJob::new(lead_id.clone())).map_err(|e| e.to_string())?;
        self.validate_queue
            .send(&job, Duration::ZERO)
            .await
            .map_err(|e| e.to_string())
    }

    /// A request whose `Idempotency-Key` was seen before.
    async fn replay(
        &self,
        partner: &Partner,
        this: Option<&IdempotencyRecord>,
        first: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<Response<String>, Problem> {
        let lead = match self.store.get_lead(&first.lead_id).await {
            Ok(lead) => lead,
            Err(error) => {
                tracing::error!(lead_id = %first.lead_id, %error, "could not read a replayed lead");
                return Err(Problem::unavailable(2));
            }
        };
        let request_hash = this.map(|r| r.request_hash.as_str());
        match lifecycle::replay_answer(first, request_hash, lead.as_ref(), now) {
            ReplayAnswer::OtherRequest => Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request",
            )),
            ReplayAnswer::InFlight { retry_after } => Err(Problem::new(
                StatusCode::CONFLICT,
                "request_in_flight",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            .with_retry_after(retry_after.as_secs())),
            ReplayAnswer::FirstAnswer { requeue } => {
                if requeue {
                    if let Err(error) = self.enqueue(&first.lead_id).await {
                        tracing::error!(lead_id = %first.lead_id, %error, "could not re-queue a replayed lead");
                        return Err(Problem::unavailable(2));
                    }
                }
                tracing::info!(lead_id = %first.lead_id, partner_id = %partner.id, "idempotent replay");
                Ok(accepted(&first.lead_id))
            }
            ReplayAnswer::Stale => {
                tracing::warn!(lead_id = %first.lead_id, "idempotency record without its lead");
                let key = Some((first.partner_id.as_str(), first.key.as_str()));
                if let Err(error) = self.store.discard_lead(&first.lead_id, key).await {
                    tracing::error!(lead_id = %first.lead_id, %error, "could not drop a stale idempotency record");
                }
                // The first request's lead is gone: so must its sealed SSN be, if it left one.
                self.drop_sealed_ssn(&first.lead_id).await;
                Err(Problem::new(
                    StatusCode::CONFLICT,
                    "request_in_flight",
                    "the first request with this Idempotency-Key did not complete; retry shortly",
                )
                .with_retry_after(1))
            }
        }
    }

    async fn get_lead(
        &self,
        lead_id: &str,
        request: &Request<Vec<u8>>,
    ) -> Result<Response<String>, Problem> {
        let config = self.config.get().await;
        let partner = authenticate(&config, request.headers())?;
        let not_found = || Problem::not_found("no lead with this id was posted by this partner");
        let lead_id: LeadId = lead_id.parse().map_err(|_| not_found())?;
        let lead = self
            .store
            .get_lead(&lead_id)
            .await
            .map_err(|error| {
                tracing::error!(lead_id = %lead_id, %error, "could not read a lead");
                Problem::internal()
            })?
            .filter(|lead| partner.id == lead.partner_id.as_str())
            .ok_or_else(not_found)?;
        Ok(json_response(StatusCode::OK, &LeadStatusView::from(&lead)))
    }

    /// `GET /v1/leads`: a page of the partner's own leads, newest first (see [`leadhub::listing`]).
    async fn list_leads(&self, request: &Request<Vec<u8>>) -> Result<Response<String>, Problem> {
        let config = self.config.get().await;
        let partner = authenticate(&config, request.headers())?;
        let query = listing::parse_query(request.uri().query(), &config.hasher, &partner.id)
            .map_err(|errors| {
                let detail = match errors.len() {
                    1 => "the listing's query has 1 problem".to_owned(),
                    n => format!("the listing's query has {n} problems"),
                };
                Problem::invalid(detail, errors)
            })?;
        let page = self
            .store
            .list_partner_leads(&query)
            .await
            .map_err(|error| {
                tracing::error!(partner_id = %partner.id, %error, "could not list leads");
                Problem::internal()
            })?;
        let list = LeadList {
            leads: page
                .leads
                .iter()
                .map(|lead| LeadListItem {
                    lead_id: &lead.id,
                    vertical: lead.vertical,
                    status: lead.status,
                    created_at: lead.created_at,
                    updated_at: lead.updated_at,
                    status_url: format!("/v1/leads/{}", lead.id),
                })
                .collect(),
            next_cursor: page
                .next
                .as_ref()
                .map(|position| listing::cursor(&config.hasher, &partner.id, position)),
        };
        Ok(json_response(StatusCode::OK, &list))
    }
}

/// One lead of a listing: what [`LeadStatusView`] says of it without deliveries and timeline, and where
/// to read those.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LeadListItem<'a> {
    lead_id: &'a LeadId,
    vertical: Vertical,
    status: LeadStatus,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    status_url: String,
}

/// A page of a partner's listing: `nextCursor` resumes it, `null` once no lead is left.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LeadList<'a> {
    leads: Vec<LeadListItem<'a>>,
    next_cursor: Option<String>,
}

/// The `Leadhub-Test` header: `true` makes a test lead (routed and explained, no buyer called), `false`
/// or no header a real one.
fn test_lead(request: &Request<Vec<u8>>) -> Result<bool, Problem> {
    let Some(value) = request.headers().get(TEST_HEADER) else {
        return Ok(false);
    };
    match value.to_str() {
        Ok("true") => Ok(true),
        Ok("false") => Ok(false),
        _ => Err(Problem::invalid(
            "the Leadhub-Test header is not valid",
            vec![leadhub::verticals::FieldError::new(
                "Leadhub-Test",
                "invalid_value",
                "must be true or false",
            )],
        )),
    }
}

/// The header that marks a test lead.
pub const TEST_HEADER: &str = "leadhub-test";

fn idempotency_key(request: &Request<Vec<u8>>) -> Result<Option<String>, Problem> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = || {
        Problem::invalid(
            "the Idempotency-Key header is not valid",
            vec![leadhub::verticals::FieldError::new(
                "Idempotency-Key",
                "invalid_format",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
            )],
        )
    };
    let key = value.to_str().map_err(|_| invalid())?.trim();
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

/// What a partner reads about its lead: status, deliveries and timeline, never the lead's PII.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadStatusView<'a> {
    lead_id: &'a LeadId,
    vertical: Vertical,
    status: LeadStatus,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deliveries: Vec<DeliveryView<'a>>,
    timeline: &'a [leadhub::lead::TimelineEvent],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryView<'a> {
    destination: &'a str,
    status: leadhub::lead::DeliveryStatus,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl<'a> From<&'a LeadRecord> for LeadStatusView<'a> {
    fn from(lead: &'a LeadRecord) -> Self {
        LeadStatusView {
            lead_id: &lead.id,
            vertical: lead.vertical,
            status: lead.status,
            created_at: lead.created_at,
            updated_at: lead.updated_at,
            deliveries: lead
                .deliveries
                .iter()
                .map(|(destination, state)| DeliveryView {
                    destination,
                    status: state.status,
                    attempts: state.attempts,
                    next_attempt_at: state.next_attempt_at,
                    updated_at: state.updated_at,
                })
                .collect(),
            timeline: &lead.events,
        }
    }
}
