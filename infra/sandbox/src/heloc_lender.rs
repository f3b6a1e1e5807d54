//! A lender that takes HELOC leads in seed `001_fe0d22b72b37bc1d.txt`'s schema.
//!
//! - `POST /leads` ([`DEFAULT_PATH`]; configurable). Any other path or method: 404 `{"message": "Not
//!   Found"}`.
//! - When an API key is configured, `Authorization: Bearer <key>` is required, else 401 `{"message":
//!   "Unauthorized"}`.
//! - The body is checked by the hub's own HELOC parser (`Vertical::Heloc.parse`), rule for rule: problems
//!   give 400 `{"message": "Invalid lead", "errors": [{"field", "code", "message"}, ...]}`.
//! - "Must not already exist in the system (quotes or users)": an email already quoted, or one of the
//!   configured users' emails (trimmed, case-insensitive), gives 409 `{"message": "Email already exists"}`.
//! - Otherwise 201 `{"id": "quote-<n>"}`.
//!
//! Choices where the seed is silent: the path, the bearer key, and every response body are ours; the
//! seed describes only the request.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use leadhub::verticals::Vertical;
use serde::Serialize;
use serde_json::{json, Value};

use crate::script::{self, lock, Core, Emulator, Gate};
pub use crate::script::{Exchange, Failure};
use crate::Running;

pub const DEFAULT_PATH: &str = "/leads";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelocLenderConfig {
    /// `Authorization: Bearer` required when set. Default none.
    pub api_key: Option<String>,
    /// Default [`DEFAULT_PATH`].
    pub path: String,
    /// Emails of the lender's existing users. Default empty.
    pub existing_emails: Vec<String>,
}

impl HelocLenderConfig {
    /// No key, [`DEFAULT_PATH`], no existing users.
    pub fn new() -> Self {
        HelocLenderConfig {
            api_key: None,
            path: DEFAULT_PATH.into(),
            existing_emails: Vec::new(),
        }
    }

    /// No key, [`DEFAULT_PATH`], no existing users, and this key.
    pub fn with_api_key(api_key: impl Into<String>) -> Self {
        HelocLenderConfig {
            api_key: Some(api_key.into()),
            ..HelocLenderConfig::new()
        }
    }
}

impl Default for HelocLenderConfig {
    fn default() -> Self {
        HelocLenderConfig::new()
    }
}

/// A lead the lender quoted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quote {
    /// `quote-<n>`.
    pub id: String,
    /// Normalised (trimmed, lower-cased).
    pub email: String,
    /// As posted.
    pub lead: Value,
}

struct Book {
    quotes: Vec<Quote>,
    emails: BTreeSet<String>,
}

#[derive(Clone)]
pub struct HelocLender {
    config: Arc<HelocLenderConfig>,
    core: Core,
    book: Arc<Mutex<Book>>,
}

fn normalize(email: &str) -> String {
    email.trim().to_lowercase()
}

impl HelocLender {
    pub fn new(config: HelocLenderConfig) -> Self {
        let path = if config.path.is_empty() {
            DEFAULT_PATH.into()
        } else {
            config.path.clone()
        };
        let emails = config
            .existing_emails
            .iter()
            .map(|e| normalize(e))
            .collect();
        HelocLender {
            config: Arc::new(HelocLenderConfig { path, ..config }),
            core: Core::default(),
            book: Arc::new(Mutex::new(Book {
                quotes: Vec::new(),
                emails,
            })),
        }
    }

    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<Running> {
        Running::serve(addr, self.router()).await
    }

    pub fn router(&self) -> Router {
        script::finish(Router::new().route(&self.config.path, post(create)), self)
    }

    pub fn config(&self) -> &HelocLenderConfig {
        &self.config
    }

    pub fn fail_next(&self, failure: Failure) {
        self.core.push(failure);
    }

    /// Every request and its answer.
    pub fn received(&self) -> Vec<Exchange> {
        self.core.received()
    }

    pub fn quotes(&self) -> Vec<Quote> {
        lock(&self.book).quotes.clone()
    }

    /// Make an email "already exist" (a user of the lender).
    pub fn add_existing_email(&self, email: &str) {
        lock(&self.book).emails.insert(normalize(email));
    }
}

impl Emulator for HelocLender {
    fn core(&self) -> &Core {
        &self.core
    }

    fn gate(&self, request: &Parts, _body: &Bytes) -> Gate {
        if request.method != Method::POST || request.uri.path() != self.config.path {
            return Gate::Refuse(script::message(StatusCode::NOT_FOUND, "Not Found"));
        }
        if let Some(key) = &self.config.api_key {
            if script::bearer_token(&request.headers) != Some(key.as_str()) {
                return Gate::Refuse(script::message(StatusCode::UNAUTHORIZED, "Unauthorized"));
            }
        }
        Gate::pass()
    }

    fn reset(&self) {
        self.core.reset();
        let mut book = lock(&self.book);
        book.quotes.clear();
        book.emails = self
            .config
            .existing_emails
            .iter()
            .map(|e| normalize(e))
            .collect();
    }
}

async fn create(State(lender): State<HelocLender>, body: Bytes) -> Response {
    let parsed = match Vertical::Heloc.parse(&body) {
        Ok(parsed) => parsed,
        Err(errors) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"message": "Invalid lead", "errors": errors.into_vec()})),
            )
                .into_response()
        }
    };
    let email = parsed
        .unique
        .iter()
        .find(|(name, _)| *name == "email")
        .map(|(_, value)| normalize(value))
        .unwrap_or_default();
    let mut book = lock(&lender.book);
    if !book.emails.insert(email.clone()) {
        return script::message(StatusCode::CONFLICT, "Email already exists");
    }
    let id = format!("quote-{}", book.quotes.len() + 1);
    book.quotes.push(Quote {
        id: id.clone(),
        email,
        lead: parsed.original,
    });
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}
