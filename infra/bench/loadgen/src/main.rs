//! `leadhub-loadgen`: the local stack under load, counted lead by lead.
//!
//! It writes a configuration (one partner posting HELOC leads, one webhook buyer), starts `leadhub-local` on
//! it (embedded store and queues), is itself that buyer on loopback (answering 200 to every delivery, as a
//! buyer that takes everything would; it does not check the signature, which is the buyer's work and not the
//! hub's), and posts leads from `--connections` keep-alive connections for `--seconds` (or until `--leads`).
//! Every lead is counted: posted, answered 202 (accepted) or not, delivered to the buyer (once, or more: a
//! duplicate is counted too), and after the load stops the backlog drains; whatever was accepted and not
//! delivered is then asked for by the status API, so that posted = refused at ingest + delivered + rejected
//! + lost, each counted. One JSON document comes out (`--out`), with a second-by-second series.
//!
//! ```text
//! leadhub-loadgen --local target/release/leadhub-local --seconds 30 --connections 32 --out run.json
//! leadhub-loadgen --local ... --leads 200000 --stack-arg=--lead-ttl --stack-arg=60s
//! leadhub-loadgen --local ... --rate 5250 --connections 64 --seconds 30   # open loop: 5,250 leads/s offered
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::Parser;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Parser)]
#[command(
    name = "leadhub-loadgen",
    about = "The local stack under load, counted lead by lead"
)]
struct Args {
    /// The `leadhub-local` binary to start (a release build for figures worth writing down).
    #[arg(long)]
    local: PathBuf,
    /// How long to post leads, after the warm-up (default 30, or no limit with --leads).
    #[arg(long)]
    seconds: Option<u64>,
    /// Stop after posting this many leads (whichever comes first, with --seconds).
    #[arg(long)]
    leads: Option<u64>,
    /// Concurrent keep-alive connections posting leads (closed loop: each posts its next lead when the
    /// previous one is answered).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Open loop: post this many leads per second in all, lead n due at n / rate seconds after the load
    /// starts (a connection waits for its next lead's time; one that falls behind posts at once, and the
    /// result says how many were posted late). Without it, closed loop: as fast as the stack answers.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of load before counting starts (the stack and connections warm up).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// How long to wait for the backlog to drain after the load stops.
    #[arg(long, default_value_t = 120)]
    drain_seconds: u64,
    /// More arguments for leadhub-local (repeat: `--stack-arg=--pollers --stack-arg=4`).
    #[arg(long, allow_hyphen_values = true)]
    stack_arg: Vec<String>,
    /// Where the configuration and the stack's log are written.
    #[arg(long, default_value = "target/bench/loadgen")]
    work_dir: PathBuf,
    /// Where the JSON result goes (`-`: stdout).
    #[arg(long, default_value = "-")]
    out: String,
}

const PARTNER_KEY: &str = "pk_bench";
const PARTNER_SECRET: &str = "sk_bench_loadgen_secret";
const EMAIL: &str = "jane.doe@example.com";

/// The lead every connection posts, its email made unique per lead (HELOC's email must not exist yet).
const HELOC: &str = include_str!("../../../examples/heloc.json");

/// What the buyer saw: each lead id with when it first arrived, and how many arrivals were repeats.
#[derive(Default)]
struct Buyer {
    arrivals: Mutex<HashMap<String, Instant>>,
    delivered: AtomicU64,
    repeats: AtomicU64,
    unreadable: AtomicU64,
}

#[derive(Deserialize)]
struct Hook {
    data: HookData,
}

#[derive(Deserialize)]
struct HookData {
    #[serde(rename = "leadId")]
    lead_id: String,
}

async fn hook(State(buyer): State<Arc<Buyer>>, body: Bytes) -> axum::Json<Value> {
    let now = Instant::now();
    match serde_json::from_slice::<Hook>(&body) {
        Ok(hook) => {
            let first = {
                let mut arrivals = buyer.arrivals.lock().unwrap_or_else(|p| p.into_inner());
                arrivals.insert(hook.data.lead_id, now).is_none()
            };
            if first {
                buyer.delivered.fetch_add(1, Ordering::Relaxed);
            } else {
                buyer.repeats.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(_) => {
            buyer.unreadable.fetch_add(1, Ordering::Relaxed);
        }
    }
    let n = buyer.delivered.load(Ordering::Relaxed);
    axum::Json(json!({ "id": format!("bench-{n}") }))
}

/// What the posting side saw.
#[derive(Default)]
struct Posting {
    posted: AtomicU64,
    accepted: AtomicU64,
    refused: Mutex<BTreeMap<u16, u64>>,
    failed: AtomicU64,
    /// Lead id -> when its post started.
    accepted_at: Mutex<HashMap<String, Instant>>,
}

#[derive(Deserialize)]
struct AcceptedBody {
    #[serde(rename = "leadId")]
    lead_id: String,
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn config(buyer_url: &str) -> String {
    let hash = hex::encode(Sha256::digest(PARTNER_SECRET.as_bytes()));
    format!(
        r#"# Written by leadhub-loadgen: one partner, HELOC leads, one webhook buyer on loopback.
[hub]
public_base_url = "http://127.0.0.1:9"
hash_key = "env:LEADHUB_HASH_KEY"
callback_key = "env:LEADHUB_CALLBACK_KEY"
allow_loopback_urls = true

[routing.heloc]
strategy = "waterfall"

[[partners]]
id = "bench"
key_id = "{PARTNER_KEY}"
secret_hash = "sha256:{hash}"
verticals = ["heloc"]

[[destinations]]
id = "bench-buyer"
kind = "webhook"
url = "{buyer_url}"
signing_secret = "env:BENCH_WEBHOOK_SECRET"
verticals = ["heloc"]
timeout_ms = 5000
max_attempts = 6
"#
    )
}

/// Peak and current resident set of a process, in KiB (Linux `/proc/PID/status`).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            bail!("--rate must be a positive number of leads per second, not {rate}");
        }
    }
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("cannot create {}", args.work_dir.display()))?;

    // The buyer.
    let buyer = Arc::new(Buyer::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let buyer_url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(buyer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The stack.
    let config_path = args.work_dir.join("config.toml");
    std::fs::write(&config_path, config(&buyer_url))?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(args.work_dir.join("leadhub-local.log"))?;
    let mut child = tokio::process::Command::new(&args.local)
        .arg("--config")
        .arg(&config_path)
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .args(&args.stack_arg)
        .env(
            "LEADHUB_HASH_KEY",
            "bench-hash-key-0123456789abcdef0123456789",
        )
        .env(
            "LEADHUB_CALLBACK_KEY",
            "bench-callback-key-0123456789abcdef01234567",
        )
        .env(
            "BENCH_WEBHOOK_SECRET",
            format!("whsec_{}", STANDARD.encode([7u8; 32])),
        )
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", args.local.display()))?;
    let pid = child.id().context("leadhub-local has no pid")?;

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    let ready = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "leadhub-local exited with {status}; see its log in {}",
                args.work_dir.display()
            );
        }
        if let Ok(response) = client.get(format!("{base}/v1/openapi.json")).send().await {
            if response.status().is_success() {
                break;
            }
        }
        if ready.elapsed() > Duration::from_secs(30) {
            bail!("leadhub-local did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss_start_peak, rss_start) = memory_kib(pid);

    // The load.
    let (prefix, suffix) = HELOC
        .split_once(EMAIL)
        .context("the HELOC example has no email to vary")?;
    let prefix: Arc<str> = prefix.into();
    let suffix: Arc<str> = suffix.into();
    let auth = format!(
        "Basic {}",
        STANDARD.encode(format!("{PARTNER_KEY}:{PARTNER_SECRET}"))
    );
    let posting = Arc::new(Posting::default());
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(args.warmup == 0));
    let next = Arc::new(AtomicU64::new(0));
    let limit = args.leads.unwrap_or(u64::MAX);
    let run = format!("{:x}", std::process::id());
    let url = format!("{base}/v1/leads/heloc");
    let paced_from = tokio::time::Instant::now();
    let late = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (client, posting, stop, counting, next, late) = (
            client.clone(),
            posting.clone(),
            stop.clone(),
            counting.clone(),
            next.clone(),
            late.clone(),
        );
        let rate = args.rate;
        let (prefix, suffix, auth, url, run) = (
            prefix.clone(),
            suffix.clone(),
            auth.clone(),
            url.clone(),
            run.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies: Vec<u64> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    break;
                }
                if let Some(rate) = rate {
                    let due = paced_from + Duration::from_secs_f64(n as f64 / rate);
                    let now = tokio::time::Instant::now();
                    if due > now {
                        tokio::time::sleep_until(due).await;
                    } else if now - due > Duration::from_millis(100) {
                        late.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let body = format!("{prefix}bench-{run}-{n}@example.com{suffix}");
                let started = Instant::now();
                posting.posted.fetch_add(1, Ordering::Relaxed);
                let answer = client
                    .post(&url)
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let response = match answer {
                    Ok(response) => response,
                    Err(_) => {
                        posting.failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let status = response.status().as_u16();
                let bytes = response.bytes().await.unwrap_or_default();
                if counting.load(Ordering::Relaxed) {
                    latencies.push(started.elapsed().as_micros() as u64);
                }
                if status == 202 {
                    match serde_json::from_slice::<AcceptedBody>(&bytes) {
                        Ok(accepted) => {
                            posting.accepted.fetch_add(1, Ordering::Relaxed);
                            posting
                                .accepted_at
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(accepted.lead_id, started);
                        }
                        Err(_) => {
                            posting.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                } else {
                    *posting
                        .refused
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(status)
                        .or_default() += 1;
                }
            }
            latencies
        }));
    }

    // Warm-up, then the counted window, sampled every second.
    let load_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    counting.store(true, Ordering::Relaxed);
    let cpu_stack_start = cpu_seconds(&pid.to_string());
    let cpu_self_start = cpu_seconds("self");
    let window_started = Instant::now();
    let (accepted_start, delivered_start) = (
        posting.accepted.load(Ordering::Relaxed),
        buyer.delivered.load(Ordering::Relaxed),
    );
    let mut series = Vec::new();
    let budget = match (args.seconds, args.leads) {
        (Some(seconds), _) => Duration::from_secs(seconds),
        (None, Some(_)) => Duration::MAX,
        (None, None) => Duration::from_secs(30),
    };
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = window_started.elapsed().as_secs_f64();
        let accepted = posting.accepted.load(Ordering::Relaxed);
        let delivered = buyer.delivered.load(Ordering::Relaxed);
        series.push(json!({
            "t": (t * 10.0).round() / 10.0,
            "posted": posting.posted.load(Ordering::Relaxed),
            "accepted": accepted,
            "delivered": delivered,
            "backlog": accepted.saturating_sub(delivered),
        }));
        let done = workers.iter().all(|w| w.is_finished());
        if window_started.elapsed() >= budget || done {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap_or_default());
    }
    let window = window_started.elapsed().as_secs_f64();
    let cpu_stack_window = cpu_seconds(&pid.to_string()) - cpu_stack_start;
    let cpu_self_window = cpu_seconds("self") - cpu_self_start;
    let accepted_in_window = posting.accepted.load(Ordering::Relaxed) - accepted_start;
    let delivered_in_window = buyer.delivered.load(Ordering::Relaxed) - delivered_start;
    let accepted_total = posting.accepted.load(Ordering::Relaxed);
    let backlog_at_stop = accepted_total.saturating_sub(buyer.delivered.load(Ordering::Relaxed));
    let (rss_peak_at_stop, rss_at_stop) = memory_kib(pid);

    // Drain.
    let drain_started = Instant::now();
    let mut last_progress = (buyer.delivered.load(Ordering::Relaxed), Instant::now());
    while buyer.delivered.load(Ordering::Relaxed) < accepted_total
        && drain_started.elapsed() < Duration::from_secs(args.drain_seconds)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let delivered = buyer.delivered.load(Ordering::Relaxed);
        if delivered != last_progress.0 {
            last_progress = (delivered, Instant::now());
        } else if last_progress.1.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    let drain = drain_started.elapsed().as_secs_f64();
    let (rss_peak, rss_end) = memory_kib(pid);

    // What the functions did (before the status reads below add to it).
    let usage: Value = match client.get(format!("{base}/_local/usage")).send().await {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let log_bytes = std::fs::metadata(args.work_dir.join("leadhub-local.log"))
        .map(|m| m.len())
        .unwrap_or(0);

    // Every accepted lead: delivered, or what the status API says of it.
    let accepted_at = std::mem::take(
        &mut *posting
            .accepted_at
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    let arrivals = std::mem::take(&mut *buyer.arrivals.lock().unwrap_or_else(|p| p.into_inner()));
    let mut end_to_end: Vec<u64> = Vec::with_capacity(arrivals.len());
    let mut undelivered = Vec::new();
    for (id, posted_at) in &accepted_at {
        match arrivals.get(id) {
            Some(arrived) => end_to_end.push(arrived.duration_since(*posted_at).as_micros() as u64),
            None => undelivered.push(id.clone()),
        }
    }
    let strangers = arrivals
        .keys()
        .filter(|id| !accepted_at.contains_key(*id))
        .count();
    let mut undelivered_status: BTreeMap<String, u64> = BTreeMap::new();
    for id in &undelivered {
        let status = match client
            .get(format!("{base}/v1/leads/{id}"))
            .header("authorization", &auth)
            .send()
            .await
        {
            Ok(response) => response
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "unreadable".into()),
            Err(_) => "unanswered".into(),
        };
        *undelivered_status.entry(status).or_default() += 1;
    }
    let rejected = undelivered_status.get("rejected").copied().unwrap_or(0);
    let lost = undelivered.len() as u64 - rejected;
    let _ = child.kill().await;

    latencies.sort_unstable();
    end_to_end.sort_unstable();
    let ms = |micros: u64| micros as f64 / 1000.0;
    let refused: BTreeMap<String, u64> = posting
        .refused
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(status, n)| (status.to_string(), *n))
        .collect();
    let refused_total: u64 = refused.values().sum();
    let posted = posting.posted.load(Ordering::Relaxed);
    let failed = posting.failed.load(Ordering::Relaxed);
    let result = json!({
        "connections": args.connections,
        "rate": args.rate,
        "posted_late": late.load(Ordering::Relaxed),
        "warmup_s": args.warmup,
        "window_s": window,
        "load_s": load_started.elapsed().as_secs_f64() - drain,
        "posted": posted,
        "accepted": accepted_total,
        "refused_at_ingest": refused,
        "failed_requests": failed,
        "delivered": arrivals.len() as u64 - strangers as u64,
        "repeat_deliveries": buyer.repeats.load(Ordering::Relaxed),
        "unreadable_deliveries": buyer.unreadable.load(Ordering::Relaxed),
        "deliveries_of_unknown_leads": strangers,
        "undelivered_by_status": undelivered_status,
        "rejected": rejected,
        "lost": lost,
        "balanced": posted == refused_total + failed + (accepted_total - undelivered.len() as u64) + rejected + lost,
        "accepted_per_s": accepted_in_window as f64 / window,
        "delivered_per_s": delivered_in_window as f64 / window,
        "backlog_at_stop": backlog_at_stop,
        "drain_s": drain,
        "ingest_ms": {
            "p50": ms(percentile(&latencies, 50.0)),
            "p99": ms(percentile(&latencies, 99.0)),
            "max": ms(latencies.last().copied().unwrap_or(0)),
            "samples": latencies.len(),
        },
        "end_to_end_ms": {
            "p50": ms(percentile(&end_to_end, 50.0)),
            "p99": ms(percentile(&end_to_end, 99.0)),
        },
        "cpu_s_in_window": { "stack": cpu_stack_window, "loadgen": cpu_self_window },
        "stack_cpu_us_per_delivered_lead": if delivered_in_window > 0 { cpu_stack_window * 1e6 / delivered_in_window as f64 } else { 0.0 },
        "rss_kib": {
            "ready": rss_start, "ready_peak": rss_start_peak,
            "at_stop": rss_at_stop, "peak_at_stop": rss_peak_at_stop,
            "end": rss_end, "peak": rss_peak,
        },
        "stack_args": args.stack_arg,
        "usage": usage,
        "log_bytes": log_bytes,
        "series": series,
    });
    let text = serde_json::to_string_pretty(&result)?;
    if args.out == "-" {
        println!("{text}");
    } else {
        std::fs::write(&args.out, text + "\n")
            .with_context(|| format!("cannot write {}", args.out))?;
    }
    if lost > 0 {
        eprintln!("leadhub-loadgen: {lost} accepted leads were neither delivered nor rejected");
        std::process::exit(1);
    }
    Ok(())
}
