//! Sandbox buyers: HTTP servers on loopback that behave as the buyer documents say, record what they
//! receive for tests to assert on, and can be told to fail.
//!
//! One module per buyer API, each a cloneable state struct with `new(config)`, `router()`, `start(addr)`,
//! `fail_next(Failure)` and `received()`:
//! - [`webhook::WebhookBuyer`]: the hub's own signed webhook (`POST /hook`).
//! - [`sonar::Sonar`]: seed 000, Sonar's generic Leads API (`POST /api/leads`).
//! - [`heloc_lender::HelocLender`]: seed 001 as a lender's API (`POST /leads`).
//! - [`ntherm::Ntherm`]: seed 002, nTherm `POST /v1/postLead` and its callback.
//! - [`leadsafe::LeadSafe`]: seed 003, LeadSafe `search`, `search-detailed`, `add`, CSV seeding.
//! - [`lofty::Lofty`]: seed 004, Lofty leads, notes and webhooks, with its rate limit and pagination.
//!
//! What they share (scripted failures, the log of exchanges, the `/_sandbox/...` control endpoints) is in
//! [`script`]. Each module's documentation says what it answers and every choice made where its seed is
//! silent.

pub mod heloc_lender;
pub mod leadsafe;
pub mod lofty;
pub mod ntherm;
pub mod script;
pub mod sonar;
pub mod webhook;

pub use script::{Exchange, Failure, Gate, Outcome, Ring, DEFAULT_LOG_CAPACITY};

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A server running in the background; stopped when dropped.
pub struct Running {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Running {
    /// Serve `router` on `addr` (port 0 picks a free port).
    pub async fn serve(addr: SocketAddr, router: axum::Router) -> std::io::Result<Running> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "sandbox server stopped");
            }
        });
        Ok(Running { addr, task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}
