//! Buyer connectors: one module per buyer API, each two pure functions — `build` the request for a lead,
//! `classify` the buyer's answer into an [`Outcome`](crate::delivery::Outcome). Dispatch does the I/O.

pub mod webhook;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method};

use crate::config::{ConnectorKind, Destination};
use crate::delivery::Outcome;
use crate::lead::LeadRecord;

/// An HTTP request to a buyer, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct BuyerRequest {
    pub method: Method,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A buyer's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct BuyerResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What a connector needs to build a request.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryContext<'a> {
    pub lead: &'a LeadRecord,
    pub destination: &'a Destination,
    /// Where this buyer posts its verdict on this lead (carries an unguessable token).
    pub callback_url: &'a str,
    /// The same on every attempt of this delivery, so the buyer can drop a repeat.
    pub idempotency_key: &'a str,
    pub now: DateTime<Utc>,
}

/// Why a request could not be built (a configuration problem: the delivery fails rather than retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

pub fn build(context: &DeliveryContext<'_>) -> Result<BuyerRequest, BuildError> {
    match context.destination.kind {
        ConnectorKind::Webhook => webhook::build(context),
    }
}

pub fn classify(kind: ConnectorKind, response: &BuyerResponse, now: DateTime<Utc>) -> Outcome {
    match kind {
        ConnectorKind::Webhook => webhook::classify(response, now),
    }
}

/// A short, printable excerpt of a buyer's body for a timeline reason (never logged).
pub fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let clean: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    clean.trim().to_owned()
}
