//! Cold-start bench for the four functions (issue 12): [`runtime_api`] is a minimal Lambda Runtime API on
//! loopback, [`measure`] execs a bootstrap against it and times it, [`events`] are what each function is
//! invoked with, [`report`] turns the runs into medians, ratios to hello-world and verdicts. The binaries:
//! `runtime-api` (the driver: `infra/bench/coldstart.sh` runs it) and `hello-lambda` (the baseline).

pub mod events;
pub mod measure;
pub mod report;
pub mod runtime_api;
