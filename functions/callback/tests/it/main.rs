//! callback's integration tests: the handler called as the Lambda adapter calls it, on the memory store
//! and a scripted transport.

mod consumer_status;
mod verdicts;
