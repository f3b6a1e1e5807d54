//! leadhub's integration tests: one binary (svix style), so they compile once.
//!
//! The contract suites run against every adapter of a port: the memory adapters always, the AWS adapters
//! (`#[ignore]`d) against moto's server named by `LEADHUB_TEST_AWS_ENDPOINT` — `infra/test.sh` starts one,
//! or run `moto_server -H 127.0.0.1 -p 5055` and
//! `LEADHUB_TEST_AWS_ENDPOINT=http://127.0.0.1:5055 cargo test -p leadhub --test it -- --include-ignored`.

/// The same checks over both store adapters: each `check(&store)` runs once on a fresh `MemoryStore` and
/// once (ignored without moto) on a `DynamoStore` with its own table. Used by the store, counters,
/// dead-deliveries, suppressions, sealed-SSNs, LeadSafe-reports, kept-verdicts, unparsed-callbacks and
/// tallies suites (the `MemoryStore` and `DynamoStore` implement every port).
macro_rules! store_contract {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(&leadhub::store::memory::MemoryStore::new()).await;
                }
            )*
        }

        mod dynamodb {
            $(
                #[tokio::test]
                #[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
                async fn $check() {
                    super::$check(&crate::aws::dynamo_store().await).await;
                }
            )*
        }
    };
}

mod aws;
mod buyer_refs_contract;
mod buyer_tokens_contract;
mod counters_contract;
mod dead_deliveries_contract;
mod kept_verdicts_contract;
mod lead_listing_contract;
mod leadsafe_reports_contract;
mod notifications_contract;
mod queue_contract;
mod screening_contract;
mod sealed_ssns_contract;
mod store_contract;
mod suppressions_contract;
mod tallies_contract;
mod unparsed_callbacks_contract;
mod vertical_properties;
