//! The cold-start driver: runs each bootstrap (and `hello-lambda`) against the Runtime API emulator,
//! rounds interleaved, and writes `coldstart.json` and `coldstart.md`. See `infra/bench/coldstart.sh`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use axum::body::Bytes;
use clap::Parser;
use leadhub::settings::Config;
use leadhub_coldstart::events;
use leadhub_coldstart::measure::{run_once, Case, Limits, Run};
use leadhub_coldstart::report::{CaseSummary, Report, PEAK_RSS_TARGET_MIB, READY_RATIO_TARGET};

/// Time each function's bootstrap from exec to ready and to its first answer, and its peak RSS after many
/// invocations, beside a hello-world lambda_runtime function.
#[derive(Debug, Parser)]
struct Args {
    /// Where the release binaries are (ingest, validate, dispatch, callback, hello-lambda).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The configuration the functions load (LEADHUB_CONFIG_FILE).
    #[arg(long, default_value = "infra/config.example.toml")]
    config: PathBuf,
    /// The HELOC lead ingest is posted.
    #[arg(long, default_value = "infra/examples/heloc.json")]
    heloc: PathBuf,
    /// Rounds; each runs every bootstrap once, in an order rotated by round.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Invocations per long run (peak RSS is read after them).
    #[arg(long, default_value_t = 10_000)]
    invocations: u64,
    /// How many of the rounds are long runs; the others answer one invocation.
    #[arg(long, default_value_t = 3)]
    long_rounds: usize,
    /// Where coldstart.json and coldstart.md are written.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// Only these bootstraps (comma-separated); hello-lambda is always run.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// How the report says to rerun this (default: this binary's own `cargo run` line).
    #[arg(long)]
    command: Option<String>,
}

const BASELINE: &str = "hello-lambda";
const FUNCTIONS: [&str; 4] = ["ingest", "validate", "dispatch", "callback"];

/// A loopback port nothing listens on: bound, then released; checked to refuse a connection.
fn closed_port() -> anyhow::Result<u16> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        bail!("port {port} was expected closed but accepted a connection");
    }
    Ok(port)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn truncated(body: &[u8], at: usize) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(at) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.into_owned(),
    }
}

fn describe(name: &str) -> &'static str {
    match name {
        "hello-lambda" => "`{\"name\":\"coldstart\"}`",
        "ingest" => "an HTTP API (payload 2.0) `POST /v1/leads/heloc` with the example partner's key and \
                     infra/examples/heloc.json: authenticated, parsed and checked in full; then its DynamoDB \
                     put fails at once (AWS_ENDPOINT_URL is a closed loopback port, AWS_MAX_ATTEMPTS=1) and it \
                     answers 503",
        "validate" => "an SQS batch of one validate job: parsed; then its read of the lead from DynamoDB fails at \
                       once (closed port) and the record is reported in batchItemFailures",
        "dispatch" => "an SQS batch of one `deliver` job: parsed; then its read of the lead fails at once and the \
                       record is reported in batchItemFailures",
        "callback" => "an HTTP API `POST /v1/callbacks/lender-webhook/{token}` with a token signed with the \
                       config's callback key and a `confirmed` verdict: token checked, verdict parsed; then its \
                       read of the lead fails at once and it answers 503",
        _ => "",
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("no {}", path.display()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.long_rounds > args.rounds {
        bail!("--long-rounds cannot exceed --rounds");
    }
    let config_file = absolute(&args.config)?;
    let document = std::fs::read_to_string(&config_file)
        .with_context(|| format!("cannot read {}", config_file.display()))?;
    let config = Config::from_toml(&document, &events::secrets()).with_context(|| {
        format!(
            "{} does not load with the bench secrets",
            config_file.display()
        )
    })?;
    let heloc = std::fs::read_to_string(&args.heloc)
        .with_context(|| format!("cannot read {}", args.heloc.display()))?;
    let endpoint = format!("http://127.0.0.1:{}", closed_port()?);
    let env = events::function_env(&config_file.to_string_lossy(), &endpoint);

    let mut cases = Vec::new();
    for name in std::iter::once(BASELINE).chain(FUNCTIONS) {
        if name != BASELINE && !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        let event = match name {
            "ingest" => events::ingest(&heloc),
            "validate" => events::validate()?,
            "dispatch" => events::dispatch()?,
            "callback" => events::callback(&config)?,
            _ => events::hello(),
        };
        let bootstrap = args.bin_dir.join(name);
        if !bootstrap.is_file() {
            bail!(
                "no {} (build it: cargo build --release -p ingest -p validate -p dispatch -p callback -p leadhub-coldstart)",
                bootstrap.display()
            );
        }
        cases.push(Case {
            name: name.to_owned(),
            bootstrap: absolute(&bootstrap)?,
            event: Bytes::from(serde_json::to_vec(&event)?),
            env: env.clone(),
        });
    }

    let loadavg_before = loadavg();
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); cases.len()];
    let mut first_answers: Vec<Option<String>> = vec![None; cases.len()];
    for round in 0..args.rounds {
        let long = round < args.long_rounds;
        let invocations = if long { args.invocations } else { 1 };
        for k in 0..cases.len() {
            let index = (k + round) % cases.len();
            let case = &cases[index];
            let (run, response, error) = run_once(case, invocations, Limits::default())
                .await
                .with_context(|| format!("{} (round {})", case.name, round + 1))?;
            eprintln!(
                "round {:>2}/{} {:<12} ready {:>7.2} ms  first answer {:>7.2} ms  peak RSS {:>5.1} MiB after {}",
                round + 1,
                args.rounds,
                case.name,
                run.ready_ms,
                run.first_answer_ms,
                run.peak_rss_kib as f64 / 1024.0,
                invocations
            );
            if first_answers[index].is_none() {
                first_answers[index] = response.or(error).map(|body| truncated(&body, 400));
            }
            runs[index].push(run);
        }
    }
    let loadavg_after = loadavg();

    let mut command = args.command.clone().unwrap_or_else(|| format!(
        "cargo run --release -p leadhub-coldstart --bin runtime-api -- --rounds {} --invocations {} --long-rounds {}",
        args.rounds, args.invocations, args.long_rounds
    ));
    if args.command.is_none() && !args.only.is_empty() {
        command.push_str(&format!(" --only {}", args.only.join(",")));
    }
    let summaries = cases
        .iter()
        .zip(runs)
        .zip(first_answers)
        .map(|((case, runs), answer)| {
            CaseSummary::new(
                &case.name,
                &args.bin_dir.join(&case.name).to_string_lossy(),
                describe(&case.name),
                runs,
                answer.unwrap_or_default(),
            )
        })
        .collect();
    let report = Report {
        command,
        rounds: args.rounds,
        invocations: args.invocations,
        long_rounds: args.long_rounds,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        loadavg_before,
        loadavg_after,
        config_file: args.config.to_string_lossy().into_owned(),
        ready_ratio_target: READY_RATIO_TARGET,
        peak_rss_target_mib: PEAK_RSS_TARGET_MIB,
        cases: summaries,
    }
    .with_ratios(BASELINE);

    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let json = args.out_dir.join("coldstart.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", json.display()))?;
    let md = args.out_dir.join("coldstart.md");
    std::fs::write(&md, report.markdown(BASELINE))
        .with_context(|| format!("cannot write {}", md.display()))?;
    eprintln!("wrote {} and {}", json.display(), md.display());
    Ok(())
}
