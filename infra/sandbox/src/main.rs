//! `leadhub-sandbox`: a sandbox buyer on its own, for runs outside the local stack (the functions under
//! `cargo lambda watch`, say).
//!
//! ```text
//! leadhub-sandbox webhook [--addr 127.0.0.1:9100] [--log-capacity 10000]
//! ```
//! The webhook buyer takes `POST /hook` signed with the secret in `LEADHUB_WEBHOOK_SECRET` (`whsec_...`),
//! logs one line per delivery (webhook id, lead id, answer) and lists them at `GET /_sandbox/received`:
//! the newest `--log-capacity` requests (the oldest are dropped past it). It serves on loopback only.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use leadhub_sandbox::webhook::WebhookBuyer;

#[derive(Parser)]
#[command(
    name = "leadhub-sandbox",
    about = "a sandbox buyer on loopback",
    version
)]
struct Cli {
    #[command(subcommand)]
    buyer: Buyer,
}

#[derive(Subcommand)]
enum Buyer {
    /// The hub's own signed webhook (Standard Webhooks), secret from LEADHUB_WEBHOOK_SECRET.
    Webhook {
        /// Where to listen (loopback only).
        #[arg(long, default_value = "127.0.0.1:9100")]
        addr: SocketAddr,
        /// How many requests (and webhook ids, for deduping) it keeps: past it, the oldest are dropped.
        #[arg(long, value_name = "N", default_value_t = leadhub_sandbox::DEFAULT_LOG_CAPACITY as u32,
              value_parser = clap::value_parser!(u32).range(1..))]
        log_capacity: u32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    leadhub::telemetry::init_text();
    match Cli::parse().buyer {
        Buyer::Webhook { addr, log_capacity } => {
            if !addr.ip().is_loopback() {
                bail!("--addr must be a loopback address (got {addr})");
            }
            let secret = std::env::var("LEADHUB_WEBHOOK_SECRET").context(
                "set LEADHUB_WEBHOOK_SECRET to the destination's signing secret (whsec_...)",
            )?;
            let secret = leadhub_sandbox::webhook::SigningKey::from_whsec(&secret)
                .map_err(|problem| anyhow::anyhow!("LEADHUB_WEBHOOK_SECRET: {problem}"))?;
            let buyer = WebhookBuyer::new(secret).with_log_capacity(log_capacity as usize);
            let running = buyer
                .start(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            println!(
                "webhook buyer at {} (deliveries: GET {})",
                running.url(leadhub_sandbox::webhook::PATH),
                running.url("/_sandbox/received")
            );
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            println!("stopping");
        }
    }
    Ok(())
}
