//! `POST /v1/lofty/{destination}/{token}`: the events a Lofty destination's webhook subscriptions post
//! (seed 004, 5.12; `leadhub-admin lofty webhooks subscribe` registers the URL). The body and what is kept
//! of it: [`leadhub::connectors::lofty::webhooks`].
//!
//! - The token is the destination's intake token (constant-time check). A wrong token, or a destination
//!   that is not a configured Lofty destination, is the 404 of a path the hub does not serve: it tells
//!   nothing, and nothing changes.
//! - Lead Information (list 2) and Lead Activity (list 3) events are mapped back to the hub's leads through
//!   the Lofty lead id the delivery recorded ([`BuyerRefs`]; at most [`MAX_LEADS_PER_EVENT`], the newest,
//!   when Lofty merged several of them into one contact) and recorded on each lead's timeline
//!   ([`lifecycle::buyer_activity`]: a `buyer_activity` event, the status unchanged). The answer is 202
//!   `{"received": true, "recorded": <leads it was recorded on now>}`: 0 for a Lofty lead the hub does not
//!   know (logged with the destination and the Lofty id, never the payload), an event of another list, or
//!   one already recorded.
//! - A body that is not such an event is a 400 naming the field (`listId`, `leadId`, `lead.leadId`,
//!   `activity`, `$`), never repeating a value; not JSON 415; over [`MAX_LOFTY_EVENT_BYTES`] 413; a store
//!   that cannot be reached 503 with `Retry-After` (nothing or part was recorded; the same event again
//!   records the rest, never twice).

use http::{HeaderMap, Response, StatusCode};
use leadhub::connectors::lofty::webhooks::{
    parse_event, verify_intake_token, EventError, LoftyEvent,
};
use leadhub::connectors::Connector;
use leadhub::http::{is_json, json_response, Problem};
use leadhub::lead::{now, LeadId};
use leadhub::lifecycle::{self, ActivityDecision};
use leadhub::store::UpdateOutcome;
use serde_json::json;

use crate::Callback;

/// The largest Lofty event taken: a Lead Information event carries the whole `LeadResponse`.
pub const MAX_LOFTY_EVENT_BYTES: usize = 64 * 1024;

/// The most of the hub's leads one event is recorded on (the newest of those Lofty knows as one contact).
pub const MAX_LEADS_PER_EVENT: usize = 5;

impl Callback {
    pub(crate) async fn lofty_event(
        &self,
        destination: &str,
        token: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<String>, Problem> {
        let config = self.config.get().await;
        let token_holds = verify_intake_token(&config.callback_signer, destination, token);
        let is_lofty = config
            .destination(destination)
            .is_some_and(|d| matches!(d.connector, Connector::Lofty(_)));
        if !(token_holds && is_lofty) {
            return Err(Problem::not_found("no such endpoint"));
        }
        if !is_json(headers) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the event as JSON with `Content-Type: application/json`",
            ));
        }
        if body.len() > MAX_LOFTY_EVENT_BYTES {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "an event may be at most {} KiB",
                    MAX_LOFTY_EVENT_BYTES / 1024
                ),
            ));
        }
        let received = |recorded: usize| {
            json_response(
                StatusCode::ACCEPTED,
                &json!({"received": true, "recorded": recorded}),
            )
        };
        let event = match parse_event(body) {
            Ok(event) => event,
            Err(EventError::OtherList(list_id)) => {
                tracing::info!(
                    destination,
                    list_id,
                    "a Lofty event of a list the hub does not take; ignored"
                );
                return Ok(received(0));
            }
            Err(EventError::Invalid(errors)) => {
                return Err(Problem::invalid(
                    "the Lofty event could not be read",
                    errors,
                ))
            }
        };
        let unavailable = |error: &dyn std::fmt::Display| {
            tracing::error!(destination, list = event.list.name(), %error, "could not record a Lofty event");
            Problem::unavailable(2)
        };
        let leads = self
            .buyer_refs
            .leads_for_buyer_ref(destination, &event.lofty_lead_id, MAX_LEADS_PER_EVENT)
            .await
            .map_err(|error| unavailable(&error))?;
        if leads.is_empty() {
            // Kept in the log (ids only) for an operator: a contact Lofty had before the hub's delivery,
            // or a lead whose delivery the hub has forgotten (expired).
            tracing::warn!(destination, list = event.list.name(), lofty_lead_id = %event.lofty_lead_id, "a Lofty event for a Lofty lead the hub did not deliver; not recorded");
            return Ok(received(0));
        }
        let mut recorded = 0;
        for lead_id in &leads {
            if self
                .record_activity(lead_id, destination, &event)
                .await
                .map_err(|error| unavailable(&error))?
            {
                recorded += 1;
            }
        }
        Ok(received(recorded))
    }

    /// Record `event` on one lead; whether it was recorded now.
    async fn record_activity(
        &self,
        lead_id: &LeadId,
        destination: &str,
        event: &LoftyEvent,
    ) -> Result<bool, lifecycle::CommitError> {
        let Some(lead) = self.store.get_lead(lead_id).await? else {
            return Ok(false);
        };
        let code = event.list.code();
        match lifecycle::buyer_activity(&lead, destination, code, &event.summary, now()) {
            ActivityDecision::Apply(transition) => {
                let ports = lifecycle::Ports {
                    store: self.store.as_ref(),
                    queue: None,
                    counters: None,
                    dead_deliveries: None,
                    // Buyer activity emits no lead event: nothing to notify.
                    subscribers: None,
                    tallies: None,
                };
                let applied = matches!(
                    lifecycle::commit(ports, lead_id, &transition).await?,
                    UpdateOutcome::Applied(_)
                );
                if applied {
                    tracing::info!(lead_id = %lead_id, destination, code, "buyer activity recorded");
                }
                Ok(applied)
            }
            ActivityDecision::AlreadyRecorded => Ok(false),
            ActivityDecision::LimitReached => {
                tracing::warn!(lead_id = %lead_id, destination, code, "buyer activity not recorded: the lead holds as many as it keeps");
                Ok(false)
            }
            ActivityDecision::NotDeliveredToYou => {
                tracing::warn!(lead_id = %lead_id, destination, code, "buyer activity for a lead this buyer holds no accepted delivery of; not recorded");
                Ok(false)
            }
        }
    }
}
