//! Medians, ratios to hello-world, verdicts against the targets, and the Markdown section.

use serde::Serialize;

use crate::measure::Run;

/// Issue 12's targets.
pub const READY_RATIO_TARGET: f64 = 1.5;
pub const PEAK_RSS_TARGET_MIB: f64 = 32.0;

/// The median of `values` (NaN when empty); the mean of the middle two for an even count.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// "met", or "missed by N%" (how far over the limit the figure is).
pub fn verdict(figure: f64, limit: f64) -> String {
    if figure.is_nan() {
        "not measured".into()
    } else if figure <= limit {
        "met".into()
    } else {
        format!("missed by {:.0}%", (figure / limit - 1.0) * 100.0)
    }
}

/// One bootstrap's figures over every round.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub name: String,
    pub bootstrap: String,
    /// What the event exercises, in words.
    pub event: String,
    pub runs: Vec<Run>,
    pub ready_ms: f64,
    pub ready_ms_min: f64,
    pub ready_ms_max: f64,
    pub first_answer_ms: f64,
    /// Median VmHWM after the long runs (`invocations` each).
    pub peak_rss_mib: f64,
    /// Median VmHWM after a single invocation.
    pub peak_rss_one_mib: f64,
    pub warm_us_per_invocation: f64,
    pub ready_ratio: f64,
    pub first_answer_ratio: f64,
    /// The first answer the bootstrap posted (truncated), to show what the handler did.
    pub first_answer: String,
    pub errors: u64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl CaseSummary {
    pub fn new(
        name: &str,
        bootstrap: &str,
        event: &str,
        runs: Vec<Run>,
        first_answer: String,
    ) -> Self {
        let of = |f: fn(&Run) -> f64| -> Vec<f64> { runs.iter().map(f).collect() };
        let ready = of(|r| r.ready_ms);
        let long: Vec<f64> = runs
            .iter()
            .filter(|r| r.invocations > 1)
            .map(|r| mib(r.peak_rss_kib))
            .collect();
        let one: Vec<f64> = runs
            .iter()
            .filter(|r| r.invocations == 1)
            .map(|r| mib(r.peak_rss_kib))
            .collect();
        let warm: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.warm_us_per_invocation)
            .collect();
        CaseSummary {
            name: name.into(),
            bootstrap: bootstrap.into(),
            event: event.into(),
            ready_ms: median(&ready),
            ready_ms_min: ready.iter().copied().fold(f64::INFINITY, f64::min),
            ready_ms_max: ready.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            first_answer_ms: median(&of(|r| r.first_answer_ms)),
            peak_rss_mib: median(&long),
            peak_rss_one_mib: median(&one),
            warm_us_per_invocation: median(&warm),
            ready_ratio: f64::NAN,
            first_answer_ratio: f64::NAN,
            errors: runs.iter().map(|r| r.errors).sum(),
            runs,
            first_answer,
        }
    }
}

/// The whole measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: String,
    pub rounds: usize,
    pub invocations: u64,
    pub long_rounds: usize,
    pub cpus: usize,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub config_file: String,
    pub ready_ratio_target: f64,
    pub peak_rss_target_mib: f64,
    pub cases: Vec<CaseSummary>,
}

impl Report {
    /// Fill in each case's ratios to the case named `baseline`.
    pub fn with_ratios(mut self, baseline: &str) -> Self {
        let base = self
            .cases
            .iter()
            .find(|c| c.name == baseline)
            .map(|c| (c.ready_ms, c.first_answer_ms));
        if let Some((ready, answer)) = base {
            for case in &mut self.cases {
                case.ready_ratio = case.ready_ms / ready;
                case.first_answer_ratio = case.first_answer_ms / answer;
            }
        }
        self
    }

    pub fn markdown(&self, baseline: &str) -> String {
        let mut md = String::new();
        let push = |md: &mut String, line: &str| {
            md.push_str(line);
            md.push('\n');
        };
        push(&mut md, "## Cold start");
        push(&mut md, "");
        push(&mut md, &format!(
            "Each function's release bootstrap was exec'd against a minimal Lambda Runtime API emulator on loopback \
             (`infra/bench/coldstart/src/runtime_api.rs`, written from AWS's Runtime API contract), beside a \
             hello-world `lambda_runtime` function (`hello-lambda`) built with the same profile in the same run, \
             {} rounds interleaved (the order rotates each round). Ready = exec to its first \
             `GET /2018-06-01/runtime/invocation/next`; first answer = exec to its first \
             `POST .../invocation/{{id}}/response`. In {} of the rounds each bootstrap then answered {} invocations \
             and its peak RSS (`VmHWM` in /proc/PID/status) was read while it waited for the next; in the others it \
             answered one. Every function loads its configuration from a file (`LEADHUB_CONFIG_FILE={}`) and \
             builds its AWS clients as on Lambda (`leadhub::runtime::aws_dependencies`), with dummy credentials \
             and the Lambda environment variables of a 256 MB function.",
            self.rounds, self.long_rounds, self.invocations, self.config_file
        ));
        push(&mut md, "");
        push(&mut md, &format!("Rerun alone: `{}`", self.command));
        push(&mut md, "");
        push(&mut md, &format!(
            "Machine: {} CPUs, load average {} before and {} after (shared with other builds: absolute \
             milliseconds move with the load; the ratios to hello-world, measured interleaved, less so).",
            self.cpus, self.loadavg_before.trim(), self.loadavg_after.trim()
        ));
        push(&mut md, "");
        push(&mut md, &format!(
            "| Bootstrap | Ready, median ms (min-max) | Ready / {baseline} | Target | Verdict | First answer, median ms | First answer / {baseline} | Peak RSS after {} invocations, MiB | Target | Verdict | Peak RSS after 1, MiB | Warm µs per invocation |",
            self.invocations
        ));
        push(&mut md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for case in &self.cases {
            let is_base = case.name == baseline;
            let (ratio_target, ratio_verdict) = if is_base {
                ("-".to_owned(), "-".to_owned())
            } else {
                (
                    format!("<= {READY_RATIO_TARGET}x"),
                    verdict(case.ready_ratio, READY_RATIO_TARGET),
                )
            };
            let (rss_target, rss_verdict) = if is_base {
                ("-".to_owned(), "-".to_owned())
            } else {
                (
                    format!("< {PEAK_RSS_TARGET_MIB} MiB"),
                    verdict(case.peak_rss_mib, PEAK_RSS_TARGET_MIB),
                )
            };
            push(&mut md, &format!(
                "| {} | {:.2} ({:.2}-{:.2}) | {:.2}x | {} | {} | {:.2} | {:.2}x | {:.1} | {} | {} | {:.1} | {:.0} |",
                case.name, case.ready_ms, case.ready_ms_min, case.ready_ms_max, case.ready_ratio, ratio_target,
                ratio_verdict, case.first_answer_ms, case.first_answer_ratio, case.peak_rss_mib, rss_target,
                rss_verdict, case.peak_rss_one_mib, case.warm_us_per_invocation
            ));
        }
        push(&mut md, "");
        push(&mut md, "What each was invoked with and what it answered (its first answer, as posted to the emulator):");
        push(&mut md, "");
        for case in &self.cases {
            let errors = if case.errors > 0 {
                format!(" ({} invocations answered on `/error`)", case.errors)
            } else {
                String::new()
            };
            push(
                &mut md,
                &format!(
                    "- **{}**: {}{errors}. Answered: `{}`",
                    case.name, case.event, case.first_answer
                ),
            );
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_verdicts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[f64::NAN, 1.0]), 1.0);
        assert_eq!(verdict(1.2, 1.5), "met");
        assert_eq!(verdict(1.5, 1.5), "met");
        assert_eq!(verdict(3.0, 1.5), "missed by 100%");
        assert_eq!(verdict(f64::NAN, 1.5), "not measured");
    }

    fn run(case: &str, ready: f64, invocations: u64, hwm_kib: u64) -> Run {
        Run {
            case: case.into(),
            ready_ms: ready,
            first_answer_ms: ready + 1.0,
            invocations,
            responses: invocations,
            errors: 0,
            warm_us_per_invocation: (invocations > 1).then_some(100.0),
            peak_rss_kib: hwm_kib,
            rss_kib: hwm_kib,
        }
    }

    #[test]
    fn ratios_are_to_the_baseline_and_rss_comes_from_the_long_runs() {
        let hello = CaseSummary::new(
            "hello",
            "h",
            "e",
            vec![run("hello", 2.0, 1000, 4096), run("hello", 2.0, 1, 3072)],
            "{}".into(),
        );
        let ingest = CaseSummary::new(
            "ingest",
            "i",
            "e",
            vec![
                run("ingest", 5.0, 1000, 40 * 1024),
                run("ingest", 5.0, 1, 10 * 1024),
            ],
            "{}".into(),
        );
        assert_eq!(ingest.peak_rss_mib, 40.0);
        assert_eq!(ingest.peak_rss_one_mib, 10.0);
        let report = Report {
            command: "c".into(),
            rounds: 2,
            invocations: 1000,
            long_rounds: 1,
            cpus: 2,
            loadavg_before: "0".into(),
            loadavg_after: "0".into(),
            config_file: "f".into(),
            ready_ratio_target: READY_RATIO_TARGET,
            peak_rss_target_mib: PEAK_RSS_TARGET_MIB,
            cases: vec![hello, ingest],
        }
        .with_ratios("hello");
        assert_eq!(report.cases[1].ready_ratio, 2.5);
        let md = report.markdown("hello");
        assert!(md.starts_with("## Cold start\n"));
        assert!(
            md.contains("| ingest | 5.00 (5.00-5.00) | 2.50x | <= 1.5x | missed by 67% |"),
            "{md}"
        );
        assert!(md.contains("| 40.0 | < 32 MiB | missed by 25% |"), "{md}");
    }
}
