//! `leadhub-local`: the whole pipeline on one machine (`leadhub-local --help`). See README.md.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use leadhub_local::{start, Backend, Options};

/// The whole pipeline's allocations go through mimalloc: under load glibc's malloc and free took about a third
/// of the stack's CPU (infra/bench's profile), much of it in contention between the runtime's threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "leadhub-local",
    version,
    about = "The whole leadhub pipeline in one process: ingest, validate, dispatch and callback, sandbox \
             buyers and a demo configuration",
    after_help = "Without --config the demo runs: one partner (its key and secret are printed), and each \
                  vertical routed to a sandbox of its seed's buyer API on loopback.\n\n\
                  Long runs on the memory backend: the store drops what DynamoDB's TTL would drop, once it \
                  expired, but hub.lead_retention_days (180 days unless configured) keeps every lead in \
                  memory for the whole run; --lead-ttl 10m keeps each lead, and what it brings along \
                  (idempotency record, duplicate claims, sealed SSN, dead-delivery markers, buyer \
                  references, failed notifications), ten minutes at most. Each sandbox keeps its newest \
                  --sandbox-log-capacity requests, leads and callbacks."
)]
struct Cli {
    /// Where the partner API (and buyers' callbacks) listen.
    #[arg(long, env = "LEADHUB_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Run on this configuration document instead of the demo: its partners and destinations, their URLs
    /// as given (loopback allowed), `env:` references read from the environment.
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Where state lives: the embedded store and queues, or DynamoDB and SQS (with --endpoint).
    #[arg(long, value_enum, default_value_t = BackendKind::Memory)]
    backend: BackendKind,
    /// The AWS API endpoint for --backend aws, e.g. moto's http://127.0.0.1:5000.
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// Names of the table and queues for --backend aws: PREFIX-leads, PREFIX-validate, PREFIX-dispatch
    /// (created, or reused when they exist).
    #[arg(long, default_value = "leadhub-local")]
    prefix: String,
    /// Pollers per queue: how many batches of up to 10 messages each function works on at once (Lambda
    /// runs several concurrent batches per event source mapping and scales them with the backlog).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pollers: u16,
    /// The demo partner's key id.
    #[arg(long, env = "LEADHUB_DEMO_KEY", default_value = "pk_demo")]
    demo_key: String,
    /// The demo partner's secret (random when not given).
    #[arg(long, env = "LEADHUB_DEMO_SECRET", hide_env_values = true)]
    demo_secret: Option<String>,
    /// Memory backend only: keep each lead, and everything kept for it, at most this long (90s, 10m, 2h,
    /// 7d; at least 60s), instead of hub.lead_retention_days. Duplicate checks then look back no further,
    /// and an Idempotency-Key is forgotten with its lead. On AWS the table's TTL decides.
    #[arg(long, value_name = "DURATION", env = "LEADHUB_LEAD_TTL", value_parser = leadhub_local::parse_lead_ttl)]
    lead_ttl: Option<Duration>,
    /// How many entries each sandbox log keeps (requests, and the leads, quotes, notes and callbacks each
    /// sandbox stores): past it, the oldest are dropped.
    #[arg(long, value_name = "N", default_value_t = leadhub_sandbox::DEFAULT_LOG_CAPACITY as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    sandbox_log_capacity: u32,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendKind {
    Memory,
    Aws,
}

/// `ttl` in its largest whole unit: `10m`, `180d`.
fn span(ttl: Duration) -> String {
    let seconds = ttl.as_secs();
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    leadhub::telemetry::init_text();
    let mut options = Options {
        addr: cli.addr,
        ..Options::default()
    };
    options.demo_key = cli.demo_key;
    options.pollers = usize::from(cli.pollers);
    options.lead_ttl = cli.lead_ttl;
    options.sandbox_log_capacity = cli.sandbox_log_capacity as usize;
    if cli.lead_ttl.is_some() && matches!(cli.backend, BackendKind::Aws) {
        anyhow::bail!(
            "--lead-ttl applies to the memory backend only: on AWS, hub.lead_retention_days and the \
             table's TTL decide"
        );
    }
    if let Some(secret) = cli.demo_secret.filter(|s| !s.is_empty()) {
        options.demo_secret = secret;
    }
    options.backend = match cli.backend {
        BackendKind::Memory => Backend::Memory,
        BackendKind::Aws => Backend::Aws {
            endpoint: cli
                .endpoint
                .context("--backend aws needs --endpoint URL (or AWS_ENDPOINT_URL)")?,
            prefix: cli.prefix.clone(),
        },
    };
    if let Some(path) = &cli.config {
        options.config_document = Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --config {path}"))?,
        );
    }
    // On AWS APIs, messages wait out their visibility timeout before they are handed out again.
    if matches!(options.backend, Backend::Aws { .. }) {
        options.visibility_timeout = std::time::Duration::from_secs(30);
    }
    let stack = start(options.clone()).await?;
    let backend = match &options.backend {
        Backend::Memory => match options.lead_ttl {
            Some(ttl) => format!(
                "embedded store and queues; leads kept {} at most (--lead-ttl)",
                span(ttl)
            ),
            None => format!(
                "embedded store and queues; leads kept {} (hub.lead_retention_days; --lead-ttl keeps fewer)",
                span(stack.config.lead_retention)
            ),
        },
        Backend::Aws { endpoint, prefix } => {
            format!("DynamoDB {prefix}-leads and SQS {prefix}-validate/-dispatch at {endpoint}")
        }
    };
    if let Some(path) = &cli.config {
        let destinations: Vec<String> = stack
            .config
            .destinations
            .iter()
            .map(|d| format!("  {:<18} {} ({})", d.id, d.url, d.connector.kind()))
            .collect();
        println!(
            "\nleadhub-local is running ({backend})\n\n\
             configuration {path}: {partners} partners\n\
             partner API   http://{addr}\n\
             destinations:\n{destinations}\n",
            partners = stack.config.partners.len(),
            addr = stack.addr,
            destinations = destinations.join("\n"),
        );
    } else {
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
        let screening = match &stack.leadsafe {
            Some((_, running)) => format!(
                "\nscreening: mortgage leads with an SSN are checked with the LeadSafe sandbox at {} \
                 (seeded with seed 003's sample; README \"Screening\" names SSNs that are Red, Amber and Green)\n",
                running.url("")
            ),
            None => String::new(),
        };
        let notifications = match &stack.partner_receiver {
            Some((_, running)) => format!(
                "notifications: the partner's signed webhooks (lead.delivered, lead.confirmed, ...) go to a \
                 sandbox receiver; see them at {}\n",
                running.url("/_sandbox/received")
            ),
            None => String::new(),
        };
        println!(
            "\nleadhub-local is running ({backend})\n\n\
             partner API   http://{addr}\n\
             partner key   {key}\n\
             secret        {secret}\n\
             sandbox buyers (heloc -> texas-buyer for TX leads, then heloc-lender; mortgage -> sonar, solar -> ntherm, real-estate -> lofty):\n{buyers}\n{screening}{notifications}\n\
             try:\n  curl -s -u '{key}:{secret}' -H 'Content-Type: application/json' \\\n    \
             --data @infra/examples/heloc.json http://{addr}/v1/leads/heloc\n",
            addr = stack.addr,
            key = options.demo_key,
            secret = options.demo_secret,
            buyers = buyers.join("\n"),
        );
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("stopping");
    Ok(())
}
