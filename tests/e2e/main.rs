//! End-to-end tests: leads posted over HTTP to ingest, followed through validate and dispatch to sandbox
//! buyers on loopback, and buyer verdicts back through callback. One binary, modules per concern.
//!
//! Tests named `aws_*` run the same pipeline on DynamoDB and SQS through the AWS SDK against moto; they are
//! ignored by a plain `cargo test` and run by `infra/test.sh` (which starts moto).

mod support;

mod answer_rules;
mod aws;
mod connectors;
mod dead_deliveries;
mod delivery;
mod leadsafe;
mod leadsafe_reports;
mod leadsafe_screening;
mod listing;
mod lofty;
mod lofty_webhooks;
mod memory;
mod model;
mod notifications;
mod partner_api;
mod privacy;
mod routing;
mod screening;
mod verdicts;
mod verticals;
