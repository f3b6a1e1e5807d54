//! leadhub's shared library: the lead model, vertical schemas, the store and queue ports with their
//! adapters, configuration, connectors, and the HTTP and batch plumbing the four functions share.
//!
//! Business rules here know nothing of AWS; only `store::dynamodb` and `queue::sqs` do.

pub mod lead;
pub mod queue;
pub mod store;
pub mod verticals;
pub mod config;
pub mod connectors;
pub mod crypto;
pub mod delivery;
pub mod webhooks;
pub mod batch;
pub mod callbacks;
pub mod http;
pub mod telemetry;
pub mod runtime;
pub mod routing;
pub mod screening;
