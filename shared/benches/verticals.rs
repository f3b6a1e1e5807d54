//! Parse + validate + normalise time per lead, per vertical, against plain `serde_json` parsing of the same
//! bytes into a `serde_json::Value`. Target: at most 3x plain parsing for every vertical.
//!
//! Run: `cargo bench -p leadhub --bench verticals` (prints a ratio table at the end; criterion's reports are
//! in target/criterion/). Quick look: `cargo bench -p leadhub --bench verticals -- --quick`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::Criterion;
use leadhub::verticals::Vertical;

fn bench(c: &mut Criterion) {
    for vertical in Vertical::ALL {
        let body = serde_json::to_vec(&vertical.example()).expect("the example serialises");
        let mut group = c.benchmark_group(format!("vertical-{}", vertical.as_str()));
        group.throughput(criterion::Throughput::Bytes(body.len() as u64));
        group.bench_function("serde_json", |b| {
            b.iter(|| {
                serde_json::from_slice::<serde_json::Value>(black_box(&body)).expect("valid JSON")
            })
        });
        group.bench_function("leadhub", |b| {
            b.iter(|| vertical.parse(black_box(&body)).expect("a valid lead"))
        });
        group.finish();
    }
}

fn estimate(group: &str, function: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target
        .join("criterion")
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    println!(
        "\n{:<13} {:>7} {:>14} {:>14} {:>7}",
        "vertical", "bytes", "serde_json", "leadhub", "ratio"
    );
    for vertical in Vertical::ALL {
        let group = format!("vertical-{}", vertical.as_str());
        let bytes = serde_json::to_vec(&vertical.example())
            .map(|b| b.len())
            .unwrap_or(0);
        match (estimate(&group, "serde_json"), estimate(&group, "leadhub")) {
            (Some(plain), Some(ours)) => println!(
                "{:<13} {:>7} {:>11.2} µs {:>11.2} µs {:>6.2}x",
                vertical.as_str(),
                bytes,
                plain / 1000.0,
                ours / 1000.0,
                ours / plain
            ),
            _ => println!(
                "{:<13} (no estimates: run without a filter)",
                vertical.as_str()
            ),
        }
    }
}
