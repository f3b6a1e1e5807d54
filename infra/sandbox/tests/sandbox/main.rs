//! The sandbox emulators, each started on loopback and exercised over HTTP.

mod heloc_lender;
mod independence;
mod leadsafe;
mod lofty;
mod ntherm;
mod script;
mod sonar;
mod webhook;

use std::net::SocketAddr;

use serde_json::Value;

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Status and JSON body (null when empty or not JSON).
pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// A plain receiver for callbacks: records JSON bodies POSTed to any path, answers `status`.
#[derive(Clone, Default)]
pub struct Receiver {
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    pub async fn start(status: u16) -> (Receiver, leadhub_sandbox::Running) {
        use axum::extract::{Json, State};
        use axum::http::{StatusCode, Uri};
        let receiver = Receiver::default();
        let router = axum::Router::new()
            .fallback(axum::routing::post(
                move |State(r): State<Receiver>, uri: Uri, Json(body): Json<Value>| async move {
                    r.bodies
                        .lock()
                        .expect("lock")
                        .push((uri.path().to_owned(), body));
                    StatusCode::from_u16(status).expect("status")
                },
            ))
            .with_state(receiver.clone());
        let running = leadhub_sandbox::Running::serve(loopback(), router)
            .await
            .expect("start receiver");
        (receiver, running)
    }

    pub fn bodies(&self) -> Vec<(String, Value)> {
        self.bodies.lock().expect("lock").clone()
    }
}

/// Poll `check` every 20 ms for up to 5 s.
pub async fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..250 {
        if let Some(value) = check() {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("condition not met within 5 s");
}
