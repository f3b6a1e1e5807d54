//! A minimal Lambda Runtime API (version 2018-06-01) on loopback, written from AWS's published contract
//! (the "AWS Lambda runtime API" page and its OpenAPI document), not from the `lambda_runtime` crate it
//! serves:
//!
//! - `GET /2018-06-01/runtime/invocation/next` answers 200 with the event as its body and the headers
//!   `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms` (epoch milliseconds),
//!   `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id`. Once every invocation has been
//!   handed out it holds the request open, as Lambda does while no event is waiting (the driver reads the
//!   process's memory then and kills it).
//! - `POST /2018-06-01/runtime/invocation/{AwsRequestId}/response` and `.../{AwsRequestId}/error` answer
//!   202 `{"status":"OK"}` for the invocation in flight; 400 `InvalidRequestID` for any other id (unknown,
//!   or already answered); 413 for a body over Lambda's 6 MiB synchronous payload limit.
//! - `POST /2018-06-01/runtime/init/error` answers 202 and records the failure.
//! - Anything else is a 404.
//!
//! Where the contract is silent, the choices are this emulator's own: one invocation is in flight at a
//! time (the runtime asks for the next one only after answering); should the runtime ask for the next
//! one without answering, the earlier id is no longer accepted. Every event is the same bytes; request ids
//! are `coldstart-00000001`, `coldstart-00000002`, ...

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;

/// Lambda's limit on a synchronous invocation's response payload.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
const DEADLINE: &str = "lambda-runtime-deadline-ms";
const FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
const TRACE_ID: &str = "lambda-runtime-trace-id";

/// What the emulator serves: `invocations` times the same `event`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub event: Bytes,
    pub invocations: u64,
    pub function_arn: String,
    /// How long each invocation may run (sets `Lambda-Runtime-Deadline-Ms`).
    pub timeout: Duration,
}

/// Progress so far, published on every change (see [`Emulator::progress`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// When the runtime first asked for work.
    pub first_next: Option<Instant>,
    /// When the first invocation was answered (a response or an error).
    pub first_answer: Option<Instant>,
    /// When the last planned invocation was answered.
    pub done: Option<Instant>,
    pub handed_out: u64,
    pub responses: u64,
    pub errors: u64,
    pub init_error: bool,
}

impl Progress {
    pub fn answered(&self) -> u64 {
        self.responses + self.errors
    }
}

/// What the runtime sent back (bodies of the first answers, for the report).
#[derive(Debug, Clone, Default)]
pub struct Answers {
    pub first_response: Option<Bytes>,
    pub first_error: Option<Bytes>,
    pub init_error: Option<Bytes>,
}

#[derive(Debug)]
struct Inner {
    plan: Plan,
    in_flight: Option<String>,
    answers: Answers,
    progress: watch::Sender<Progress>,
}

/// The emulator's state; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Emulator {
    inner: Arc<Mutex<Inner>>,
    progress: watch::Receiver<Progress>,
}

impl Emulator {
    pub fn new(plan: Plan) -> Self {
        let (sender, receiver) = watch::channel(Progress::default());
        Emulator {
            inner: Arc::new(Mutex::new(Inner {
                plan,
                in_flight: None,
                answers: Answers::default(),
                progress: sender,
            })),
            progress: receiver,
        }
    }

    /// The Runtime API's routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/response",
                post(response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/error",
                post(error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(self.clone())
    }

    /// A receiver of every change of [`Progress`].
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    pub fn answers(&self) -> Answers {
        self.lock().answers.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the state half-updated in a way that matters here
        // (counters and bodies): carry on with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn epoch_millis(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn header(name: &'static str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    Some((
        HeaderName::from_static(name),
        HeaderValue::from_str(value).ok()?,
    ))
}

fn problem(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
    (status, axum::Json(body)).into_response()
}

async fn next(State(emulator): State<Emulator>) -> Response {
    let now = Instant::now();
    let handed = {
        let mut inner = emulator.lock();
        let mut progress = *inner.progress.borrow();
        progress.first_next.get_or_insert(now);
        let handed = if progress.handed_out < inner.plan.invocations {
            progress.handed_out += 1;
            let id = format!("coldstart-{:08}", progress.handed_out);
            inner.in_flight = Some(id.clone());
            let deadline = epoch_millis(SystemTime::now() + inner.plan.timeout);
            let trace = format!(
                "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
                deadline / 1000,
                progress.handed_out,
                progress.handed_out
            );
            Some((
                id,
                deadline,
                trace,
                inner.plan.function_arn.clone(),
                inner.plan.event.clone(),
            ))
        } else {
            None
        };
        inner.progress.send_replace(progress);
        handed
    };
    let Some((id, deadline, trace, arn, event)) = handed else {
        // Nothing left to hand out: hold the request, as Lambda does while no event waits.
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let headers: Vec<(HeaderName, HeaderValue)> = [
        header(REQUEST_ID, &id),
        header(DEADLINE, &deadline.to_string()),
        header(FUNCTION_ARN, &arn),
        header(TRACE_ID, &trace),
        header("content-type", "application/json"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut response = (StatusCode::OK, event).into_response();
    response.headers_mut().extend(headers);
    response
}

#[derive(Clone, Copy)]
enum Answer {
    Response,
    Error,
}

fn answer(emulator: &Emulator, request_id: &str, kind: Answer, body: Bytes) -> Response {
    let now = Instant::now();
    if body.len() > MAX_RESPONSE_BYTES {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "the response is over the 6 MiB payload limit",
        );
    }
    let mut inner = emulator.lock();
    if inner.in_flight.as_deref() != Some(request_id) {
        return problem(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "no invocation with this request id is in flight",
        );
    }
    inner.in_flight = None;
    let mut progress = *inner.progress.borrow();
    match kind {
        Answer::Response => {
            progress.responses += 1;
            inner.answers.first_response.get_or_insert(body);
        }
        Answer::Error => {
            progress.errors += 1;
            inner.answers.first_error.get_or_insert(body);
        }
    }
    progress.first_answer.get_or_insert(now);
    if progress.answered() >= inner.plan.invocations {
        progress.done.get_or_insert(now);
    }
    inner.progress.send_replace(progress);
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "status": "OK" })),
    )
        .into_response()
}

async fn response(
    State(emulator): State<Emulator>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Response {
    answer(&emulator, &request_id, Answer::Response, body)
}

async fn error(
    State(emulator): State<Emulator>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Response {
    answer(&emulator, &request_id, Answer::Error, body)
}

async fn init_error(State(emulator): State<Emulator>, body: Bytes) -> Response {
    let mut inner = emulator.lock();
    inner.answers.init_error.get_or_insert(body);
    let mut progress = *inner.progress.borrow();
    progress.init_error = true;
    inner.progress.send_replace(progress);
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "status": "OK" })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Served {
        base: String,
        emulator: Emulator,
        server: tokio::task::JoinHandle<()>,
    }

    impl Drop for Served {
        fn drop(&mut self) {
            self.server.abort();
        }
    }

    async fn serve(invocations: u64) -> Served {
        let emulator = Emulator::new(Plan {
            event: Bytes::from_static(br#"{"hello":"world"}"#),
            invocations,
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
            timeout: Duration::from_secs(10),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!(
            "http://{}/2018-06-01/runtime",
            listener.local_addr().expect("local addr")
        );
        let router = emulator.router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Served {
            base,
            emulator,
            server,
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client")
    }

    async fn next(served: &Served) -> reqwest::Response {
        client()
            .get(format!("{}/invocation/next", served.base))
            .send()
            .await
            .expect("next")
    }

    #[tokio::test]
    async fn hands_out_the_event_with_the_contract_headers_and_records_the_response() {
        let served = serve(2).await;
        let before = epoch_millis(SystemTime::now());
        let first = next(&served).await;
        assert_eq!(first.status(), 200);
        let headers = first.headers().clone();
        let id = headers[REQUEST_ID].to_str().expect("ascii").to_owned();
        assert_eq!(id, "coldstart-00000001");
        let deadline: u128 = headers[DEADLINE]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("epoch ms");
        assert!(
            deadline >= before + 9_000,
            "deadline {deadline} vs {before}"
        );
        assert_eq!(
            headers[FUNCTION_ARN],
            "arn:aws:lambda:us-east-1:123456789012:function:bench"
        );
        assert!(headers[TRACE_ID]
            .to_str()
            .expect("ascii")
            .starts_with("Root=1-"));
        assert_eq!(first.bytes().await.expect("body"), r#"{"hello":"world"}"#);

        let progress = *served.emulator.progress().borrow();
        assert!(progress.first_next.is_some());
        assert_eq!((progress.handed_out, progress.answered()), (1, 0));
        assert!(progress.first_answer.is_none());

        let answered = client()
            .post(format!("{}/invocation/{id}/response", served.base))
            .body(r#"{"ok":true}"#)
            .send()
            .await
            .expect("response");
        assert_eq!(answered.status(), 202);
        assert_eq!(answered.text().await.expect("body"), r#"{"status":"OK"}"#);
        let progress = *served.emulator.progress().borrow();
        assert_eq!((progress.responses, progress.errors), (1, 0));
        assert!(progress.first_answer.is_some());
        assert!(progress.done.is_none(), "one of two answered");
        assert_eq!(
            served.emulator.answers().first_response.as_deref(),
            Some(&br#"{"ok":true}"#[..])
        );

        // The second invocation gets the next id; an error answer counts as an answer.
        let second = next(&served).await;
        assert_eq!(second.headers()[REQUEST_ID], "coldstart-00000002");
        let failed = client()
            .post(format!(
                "{}/invocation/coldstart-00000002/error",
                served.base
            ))
            .header("lambda-runtime-function-error-type", "Runtime.Unhandled")
            .body(r#"{"errorMessage":"boom","errorType":"Boom"}"#)
            .send()
            .await
            .expect("error");
        assert_eq!(failed.status(), 202);
        let progress = *served.emulator.progress().borrow();
        assert_eq!((progress.responses, progress.errors), (1, 1));
        assert!(progress.done.is_some(), "both answered");
        assert!(served.emulator.answers().first_error.is_some());
    }

    #[tokio::test]
    async fn refuses_a_request_id_that_is_not_in_flight() {
        let served = serve(1).await;
        // Nothing handed out yet: any id is unknown.
        let early = client()
            .post(format!(
                "{}/invocation/coldstart-00000001/response",
                served.base
            ))
            .body("{}")
            .send()
            .await
            .expect("response");
        assert_eq!(early.status(), 400);
        let body: serde_json::Value = early.json().await.expect("json");
        assert_eq!(body["errorType"], "InvalidRequestID");

        let id = next(&served).await.headers()[REQUEST_ID]
            .to_str()
            .expect("ascii")
            .to_owned();
        let wrong = client()
            .post(format!("{}/invocation/someone-else/response", served.base))
            .body("{}")
            .send()
            .await
            .expect("response");
        assert_eq!(wrong.status(), 400);
        let right = client()
            .post(format!("{}/invocation/{id}/response", served.base))
            .body("{}")
            .send()
            .await
            .expect("response");
        assert_eq!(right.status(), 202);
        // Answered once: the same id again is no longer in flight.
        let again = client()
            .post(format!("{}/invocation/{id}/response", served.base))
            .body("{}")
            .send()
            .await
            .expect("response");
        assert_eq!(again.status(), 400);
        assert_eq!(served.emulator.progress().borrow().responses, 1);
    }

    #[tokio::test]
    async fn refuses_an_oversized_response_and_unknown_routes() {
        let served = serve(1).await;
        let id = next(&served).await.headers()[REQUEST_ID]
            .to_str()
            .expect("ascii")
            .to_owned();
        let big = client()
            .post(format!("{}/invocation/{id}/response", served.base))
            .body(vec![b' '; MAX_RESPONSE_BYTES + 1])
            .send()
            .await
            .expect("response");
        assert_eq!(big.status(), 413);
        assert_eq!(served.emulator.progress().borrow().responses, 0);
        let unknown = client()
            .get(format!("{}/invocation/{id}", served.base))
            .send()
            .await
            .expect("get");
        assert_eq!(unknown.status(), 404);
        let wrong_method = client()
            .post(format!("{}/invocation/next", served.base))
            .send()
            .await
            .expect("post");
        assert_eq!(wrong_method.status(), 405);
    }

    #[tokio::test]
    async fn records_an_init_error_and_holds_next_once_all_are_handed_out() {
        let served = serve(1).await;
        let init = client()
            .post(format!("{}/init/error", served.base))
            .header("lambda-runtime-function-error-type", "Runtime.InitError")
            .body(r#"{"errorMessage":"no config","errorType":"InitError"}"#)
            .send()
            .await
            .expect("init error");
        assert_eq!(init.status(), 202);
        assert!(served.emulator.progress().borrow().init_error);
        assert!(served.emulator.answers().init_error.is_some());

        let id = next(&served).await.headers()[REQUEST_ID]
            .to_str()
            .expect("ascii")
            .to_owned();
        client()
            .post(format!("{}/invocation/{id}/response", served.base))
            .body("{}")
            .send()
            .await
            .expect("response");
        // The one planned invocation is done: the next request is held open (the client gives up).
        let held = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .expect("client")
            .get(format!("{}/invocation/next", served.base))
            .send()
            .await;
        assert!(held.is_err_and(|e| e.is_timeout()));
        assert_eq!(served.emulator.progress().borrow().handed_out, 1);
    }
}
