//! leadhub's shared library: the lead model, vertical schemas, the store and queue ports with their
//! adapters, configuration, connectors, and the HTTP and batch plumbing the four functions share.
//!
//! Business rules here know nothing of AWS; only `store::dynamodb` and `queue::sqs` do.

pub mod access_tokens;
pub mod answer_rules;
pub mod batch;
pub mod callbacks;
pub mod config;
pub mod connectors;
pub mod crypto;
pub mod delivery;
pub mod http;
pub mod ids;
pub mod lead;
pub mod leadsafe_reports;
pub mod lifecycle;
pub mod listing;
pub mod live_config;
pub mod notifications;
pub mod openapi;
pub mod operator;
pub mod pacing;
pub mod queue;
pub mod routing;
pub mod runtime;
pub mod screening;
pub mod sdk;
pub mod settings;
pub mod ssrf;
pub mod store;
pub mod suppression;
pub mod telemetry;
pub mod transport;
pub mod vertical;
pub mod verticals;
pub mod webhooks;
