//! leadhub's integration tests: one binary (svix style), so they compile once.
//!
//! The contract suites run against every adapter of a port: the memory adapters always, the AWS adapters
//! (`#[ignore]`d) against moto's server named by `LEADHUB_TEST_AWS_ENDPOINT` — `infra/test.sh` starts one,
//! or run `moto_server -H 127.0.0.1 -p 5055` and
//! `LEADHUB_TEST_AWS_ENDPOINT=http://127.0.0.1:5055 cargo test -p leadhub --test it -- --include-ignored`.

mod aws;
mod counters_contract;
mod dead_deliveries_contract;
mod queue_contract;
mod store_contract;
mod vertical_properties;
