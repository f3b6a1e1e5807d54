//! The real `lambda_runtime` crate (in `hello-lambda`) against the emulator: the contract is spoken well
//! enough for the runtime to take events and answer them.

use axum::body::Bytes;
use leadhub_coldstart::measure::{run_once, Case, Limits};

fn hello_case() -> Case {
    Case {
        name: "hello-lambda".into(),
        bootstrap: env!("CARGO_BIN_EXE_hello-lambda").into(),
        event: Bytes::from_static(br#"{"name":"test"}"#),
        env: vec![],
    }
}

#[tokio::test]
async fn hello_lambda_answers_every_invocation_through_the_emulator() {
    let (run, response, error) = run_once(&hello_case(), 25, Limits::default())
        .await
        .expect("hello-lambda runs against the emulator");
    assert_eq!((run.responses, run.errors), (25, 0));
    assert!(error.is_none());
    let body: serde_json::Value =
        serde_json::from_slice(&response.expect("a first response")).expect("json");
    assert_eq!(body["message"], "Hello, test!");
    assert!(run.ready_ms > 0.0 && run.first_answer_ms >= run.ready_ms);
    assert!(run.warm_us_per_invocation.is_some());
    assert!(run.peak_rss_kib >= run.rss_kib && run.rss_kib > 0);
}

#[tokio::test]
async fn an_event_the_handler_cannot_read_is_answered_on_the_error_route() {
    let mut case = hello_case();
    // Not JSON: the runtime cannot deserialize it and reports the invocation's error.
    case.event = Bytes::from_static(b"not json");
    let (run, response, error) = run_once(&case, 2, Limits::default())
        .await
        .expect("hello-lambda runs");
    assert_eq!((run.responses, run.errors), (0, 2));
    assert!(response.is_none());
    let body: serde_json::Value = serde_json::from_slice(&error.expect("an error")).expect("json");
    assert!(body["errorType"].is_string(), "{body}");
}
