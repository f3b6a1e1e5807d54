//! Sandbox buyers: HTTP servers on loopback that behave as the buyer documents say, record what they
//! receive for tests to assert on, and can be told to fail.
//!
//! Now: the generic webhook buyer. Emulators of the seed APIs (Sonar, nTherm, Lofty, LeadSafe, the HELOC
//! lender) come with the connectors issue.

pub mod webhook;

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
