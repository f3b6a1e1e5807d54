//! The transport port: every outbound HTTP call (buyers, LeadSafe; partner webhooks next) goes
//! through [`Transport`], so that the policy lives in one place and tests can script the network.
//!
//! [`ReqwestTransport`] is the adapter: one pooled client per process, redirects never followed (a buyer's
//! 3xx is an answer to classify, and following it could lead anywhere), a connect timeout, the caller's
//! timeout over the whole exchange, and at most [`MAX_RESPONSE_BYTES`] of an answer read. [`Scripted`]
//! is the fake for unit tests: canned answers in order, and a log of what was sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method};

/// An outbound HTTP request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// An answer: status, headers and (at most [`MAX_RESPONSE_BYTES`] of) the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why no answer came. Never carries the URL or headers (they may hold credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("the server could not be reached")]
    Unreachable,
}

/// The most of an answer that is read; the rest is dropped.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Sends one request and reads its answer.
#[async_trait]
pub trait Transport: Send + Sync {
    /// `timeout` bounds the whole exchange, body included.
    async fn send(&self, request: &Request, timeout: Duration) -> Result<Response, TransportError>;
}

/// The reqwest adapter (see the module documentation).
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    /// For partner-supplied URLs: each request's URL is checked ([`crate::ssrf::check_parsed`]) and names
    /// are resolved through [`crate::ssrf::GuardedResolver`]. `None` for buyers' operator-configured URLs.
    guard: Option<crate::ssrf::UrlPolicy>,
}

impl ReqwestTransport {
    pub fn new() -> Self {
        ReqwestTransport {
            client: Self::builder()
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            guard: None,
        }
    }

    /// A transport for partner-supplied URLs (the SSRF guard, see [`crate::ssrf`]): a URL whose host is not
    /// allowed under `policy`, or a name resolving to such an address, is never connected to (the answer
    /// is [`TransportError::Unreachable`]).
    pub fn guarded(policy: crate::ssrf::UrlPolicy) -> Self {
        let resolver =
            crate::ssrf::GuardedResolver::new(Arc::new(crate::ssrf::SystemLookup), policy);
        ReqwestTransport {
            client: Self::builder()
                .dns_resolver(Arc::new(resolver))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            guard: Some(policy),
        }
    }

    fn builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("leadhub/", env!("CARGO_PKG_VERSION")))
    }
}

impl Default for ReqwestTransport {
    fn default() -> Self {
        ReqwestTransport::new()
    }
}

#[async_trait]
impl Transport for ReqwestTransport {
    async fn send(&self, request: &Request, timeout: Duration) -> Result<Response, TransportError> {
        if let Some(policy) = self.guard {
            if let Err(refusal) = crate::ssrf::check_parsed(&request.url, policy) {
                tracing::warn!(%refusal, "refused to connect to a partner URL");
                return Err(TransportError::Unreachable);
            }
        }
        let exchange = async {
            let sent = self
                .client
                .request(request.method.clone(), request.url.clone())
                .headers(request.headers.clone())
                .body(request.body.clone())
                .send()
                .await;
            let mut response = match sent {
                Ok(response) => response,
                Err(error) if error.is_timeout() => return Err(TransportError::Timeout(timeout)),
                Err(_) => return Err(TransportError::Unreachable),
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
                        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if room <= chunk.len() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    // The status line arrived; a broken body is read as what we have.
                    Err(_) => break,
                }
            }
            Ok(Response {
                status,
                headers,
                body: body.into(),
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout(timeout)),
        }
    }
}

/// A scripted transport for tests: answers in the order given (the last one repeats), and every request
/// it was sent.
#[derive(Debug, Clone, Default)]
pub struct Scripted {
    answers: Arc<Mutex<VecDeque<Result<Response, TransportError>>>>,
    sent: Arc<Mutex<Vec<Request>>>,
}

impl Scripted {
    pub fn new(answers: impl IntoIterator<Item = Result<Response, TransportError>>) -> Self {
        Scripted {
            answers: Arc::new(Mutex::new(answers.into_iter().collect())),
            sent: Arc::default(),
        }
    }

    /// An answer with this status and JSON body.
    pub fn json(status: u16, body: &str) -> Result<Response, TransportError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(Response {
            status,
            headers,
            body: Bytes::copy_from_slice(body.as_bytes()),
        })
    }

    /// Every request sent so far.
    pub fn sent(&self) -> Vec<Request> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn send(
        &self,
        request: &Request,
        _timeout: Duration,
    ) -> Result<Response, TransportError> {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(request.clone());
        }
        let mut answers = match self.answers.lock() {
            Ok(answers) => answers,
            Err(_) => return Err(TransportError::Unreachable),
        };
        match answers.len() {
            0 => Err(TransportError::Unreachable),
            1 => answers
                .front()
                .cloned()
                .unwrap_or(Err(TransportError::Unreachable)),
            _ => answers
                .pop_front()
                .unwrap_or(Err(TransportError::Unreachable)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn request(url: &str) -> Request {
        Request {
            method: Method::POST,
            url: reqwest::Url::parse(url).expect("url"),
            headers: HeaderMap::new(),
            body: b"{}".to_vec(),
        }
    }

    /// A one-shot server on loopback that writes `answer` after reading the request head.
    async fn server(answer: Vec<u8>, pause: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                tokio::time::sleep(pause).await;
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            }
        });
        format!("http://{addr}/hook")
    }

    #[tokio::test]
    async fn redirects_are_answers_not_followed() {
        let url = server(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
            Duration::ZERO,
        )
        .await;
        let response = ReqwestTransport::new()
            .send(&request(&url), Duration::from_secs(5))
            .await
            .expect("an answer");
        assert_eq!(response.status, 302);
    }

    #[tokio::test]
    async fn a_huge_body_is_read_only_up_to_the_limit() {
        let body = vec![b'x'; MAX_RESPONSE_BYTES * 3];
        let mut answer =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        answer.extend_from_slice(&body);
        let url = server(answer, Duration::ZERO).await;
        let response = ReqwestTransport::new()
            .send(&request(&url), Duration::from_secs(5))
            .await
            .expect("an answer");
        assert_eq!(response.status, 200);
        assert_eq!(response.body.len(), MAX_RESPONSE_BYTES);
    }

    #[tokio::test]
    async fn a_slow_server_times_out_and_a_closed_port_is_unreachable() {
        let url = server(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            Duration::from_secs(5),
        )
        .await;
        let error = ReqwestTransport::new()
            .send(&request(&url), Duration::from_millis(200))
            .await
            .expect_err("times out");
        assert_eq!(error, TransportError::Timeout(Duration::from_millis(200)));

        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr")
        };
        let error = ReqwestTransport::new()
            .send(
                &request(&format!("http://{closed}/hook")),
                Duration::from_secs(2),
            )
            .await
            .expect_err("nothing listens");
        assert_eq!(error, TransportError::Unreachable);
    }

    #[tokio::test]
    async fn the_guarded_transport_never_connects_to_loopback_unless_allowed() {
        let answer = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".to_vec();
        let url = server(answer.clone(), Duration::ZERO).await;
        let refused = ReqwestTransport::guarded(crate::ssrf::UrlPolicy::default())
            .send(&request(&url), Duration::from_secs(5))
            .await;
        assert_eq!(refused, Err(TransportError::Unreachable));
        // `localhost` is refused by name (other names are refused by the guarded resolver: see `ssrf`).
        let by_name = url.replace("127.0.0.1", "localhost");
        let refused = ReqwestTransport::guarded(crate::ssrf::UrlPolicy::default())
            .send(&request(&by_name), Duration::from_secs(5))
            .await;
        assert_eq!(refused, Err(TransportError::Unreachable));

        let allowed = crate::ssrf::UrlPolicy {
            allow_loopback: true,
        };
        let response = ReqwestTransport::guarded(allowed)
            .send(&request(&url), Duration::from_secs(5))
            .await
            .expect("loopback allowed by the setting");
        assert_eq!(response.status, 204);
    }

    #[tokio::test]
    async fn the_scripted_transport_answers_in_order_and_logs_requests() {
        let scripted = Scripted::new([
            Err(TransportError::Timeout(Duration::from_secs(1))),
            Scripted::json(200, "{}"),
        ]);
        let r = request("http://buyer.example/hook");
        assert!(scripted.send(&r, Duration::from_secs(1)).await.is_err());
        assert_eq!(
            scripted
                .send(&r, Duration::from_secs(1))
                .await
                .map(|a| a.status),
            Ok(200)
        );
        assert_eq!(
            scripted
                .send(&r, Duration::from_secs(1))
                .await
                .map(|a| a.status),
            Ok(200),
            "the last answer repeats"
        );
        assert_eq!(scripted.sent().len(), 3);
    }
}
