//! ingest's integration tests: one binary, modules per concern. Each test builds its own `Ingest` on the
//! memory store and a queue that nobody drains, so what ingest itself keeps can be looked at undisturbed.

mod sealed_ssn;
