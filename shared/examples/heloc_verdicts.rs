//! leadhub's side of the HELOC peer benchmark (infra/bench/peers.py): verdicts and timing of
//! `Vertical::Heloc.parse` (JSON bytes in; the normalised lead as JSON text, or every field error, out).
//!
//! ```text
//! cargo run -q -p leadhub --release --example heloc_verdicts -- FILES...
//!     one JSON line per file: {"fixture", "valid", "errors": sorted unique "field:code", "normalised"}
//! cargo run -q -p leadhub --release --example heloc_verdicts -- --time MS VALID_FILE FILES...
//!     one JSON line: nanoseconds per lead on VALID_FILE alone and on FILES in turn, each timed for MS ms
//!     after MS/2 ms of warm-up (the loop shape of every peer: see infra/bench/peers.py)
//! HELOC_VALUE_PATH=1 cargo run -q -p leadhub --release --example heloc_verdicts -- --time MS VALID_FILE FILES...
//!     the same through `Vertical::parse_via_value` alone (the `serde_json::Value` parser, as before HELOC's
//!     fast path): the "before" figure
//! ```
//!
//! Both do what the peers do per lead (parse the JSON, seed 001's rules, serialise the normalised lead to
//! JSON text, or list every field error) and a little more: `parse` also keeps the posted text as the
//! lead's `original`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use leadhub::ssrf::UrlPolicy;
use leadhub::verticals::Vertical;
use serde_json::{json, Value};

fn verdict(name: &str, body: &[u8]) -> Value {
    match Vertical::Heloc.parse(body) {
        Ok(parsed) => json!({
            "fixture": name,
            "valid": true,
            "errors": [],
            "normalised": parsed.lead.value(),
        }),
        Err(errors) => {
            let mut codes: Vec<String> = errors
                .into_vec()
                .into_iter()
                .map(|e| format!("{}:{}", e.field, e.code))
                .collect();
            codes.sort();
            codes.dedup();
            json!({"fixture": name, "valid": false, "errors": codes, "normalised": null})
        }
    }
}

/// Parse every body in turn until `budget` has passed: (nanoseconds per lead, leads parsed). `value_path`:
/// through `Vertical::parse_via_value` (the `serde_json::Value` parser alone, as before the fast path).
fn per_lead_ns(bodies: &[Vec<u8>], budget: Duration, value_path: bool) -> (f64, u64) {
    let start = Instant::now();
    let mut leads = 0u64;
    let mut accepted = 0u64;
    loop {
        for body in bodies {
            let parsed = if value_path {
                Vertical::Heloc.parse_via_value(black_box(body), UrlPolicy::default())
            } else {
                Vertical::Heloc.parse(black_box(body))
            };
            accepted += u64::from(black_box(parsed).is_ok());
        }
        leads += bodies.len() as u64;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            black_box(accepted);
            return (elapsed.as_nanos() as f64 / leads as f64, leads);
        }
    }
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn run(args: &[String]) -> Result<(), String> {
    if args.first().map(String::as_str) == Some("--time") {
        let (ms, valid, files) = match args {
            [_, ms, valid, files @ ..] if !files.is_empty() => (ms, valid, files),
            _ => return Err("usage: --time MS VALID_FILE FILES...".into()),
        };
        let ms: u64 = ms.parse().map_err(|_| format!("MS: not a number: {ms}"))?;
        let budget = Duration::from_millis(ms);
        let valid = vec![read(valid)?];
        let mix = files
            .iter()
            .map(|f| read(f))
            .collect::<Result<Vec<_>, _>>()?;
        let value_path = std::env::var_os("HELOC_VALUE_PATH").is_some_and(|v| v == "1");
        per_lead_ns(&valid, budget / 2, value_path);
        per_lead_ns(&mix, budget / 2, value_path);
        let (valid_ns, valid_leads) = per_lead_ns(&valid, budget, value_path);
        let (mix_ns, mix_leads) = per_lead_ns(&mix, budget, value_path);
        let line = json!({
            "implementation": if value_path { "leadhub-value-path" } else { "leadhub" },
            "valid_ns": valid_ns, "valid_leads": valid_leads,
            "mix_ns": mix_ns, "mix_leads": mix_leads, "mix_fixtures": mix.len(),
        });
        println!("{line}");
        return Ok(());
    }
    for path in args {
        let name = Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!("{}", verdict(&name, &read(path)?));
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = run(&args) {
        eprintln!("heloc_verdicts: {error}");
        std::process::exit(2);
    }
}
