//! `leadhub-local`: the whole pipeline on one machine. See README.md.

use std::net::SocketAddr;

use anyhow::Context;
use leadhub_local::{start, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    leadhub::telemetry::init_text();
    let mut options = Options::default();
    if let Ok(addr) = std::env::var("LEADHUB_ADDR") {
        options.addr = addr.parse::<SocketAddr>().with_context(|| {
            format!("LEADHUB_ADDR must be host:port, like 127.0.0.1:3000 (got {addr})")
        })?;
    }
    if let Some(key) = std::env::var("LEADHUB_DEMO_KEY")
        .ok()
        .filter(|v| !v.is_empty())
    {
        options.demo_key = key;
    }
    if let Some(secret) = std::env::var("LEADHUB_DEMO_SECRET")
        .ok()
        .filter(|v| !v.is_empty())
    {
        options.demo_secret = secret;
    }
    let stack = start(options.clone()).await?;
    let mut buyers: Vec<String> = stack
        .buyers
        .iter()
        .map(|(id, (_, running))| format!("  {id:<18} {} (webhook)", running.url("/hook")))
        .collect();
    if let Some(sandboxes) = &stack.sandboxes {
        for (id, running) in sandboxes.servers() {
            buyers.push(format!("  {id:<18} {}", running.url("")));
        }
    }
    println!(
        "\nleadhub-local is running (embedded store and queues)\n\n\
         partner API   http://{addr}\n\
         partner key   {key}\n\
         secret        {secret}\n\
         sandbox buyers (heloc -> heloc-lender, mortgage -> sonar, solar -> ntherm, real-estate -> lofty):\n{buyers}\n\n\
         try:\n  curl -s -u '{key}:{secret}' -H 'Content-Type: application/json' \\\n    \
         --data @infra/examples/heloc.json http://{addr}/v1/leads/heloc\n",
        addr = stack.addr,
        key = options.demo_key,
        secret = options.demo_secret,
        buyers = buyers.join("\n"),
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("stopping");
    Ok(())
}
