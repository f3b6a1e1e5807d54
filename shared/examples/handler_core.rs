//! The handler core of ingest, per vertical, without I/O: what `POST /v1/leads/{vertical}` does to a body
//! between reading it and the two AWS calls. For each lead:
//!
//! - `Vertical::parse_with` (JSON parse, the vertical's rules, the control-character check, normalisation,
//!   the lead as posted kept for `original`);
//! - valid: the [`LeadRecord`] ingest builds (a new lead id from the OS generator, times, retention, the SSN's
//!   keyed hash for mortgage), the DynamoDB item `DynamoStore::create_lead` writes for it
//!   ([`leadhub::store::dynamodb::lead_item`]), and the validate queue's message (the `ValidateJob` JSON);
//! - invalid: the 400 answer with every field error (`Problem::invalid(..).into_response()`), as ingest sends.
//!
//! ```text
//! cargo run -q -p leadhub --release --example handler_core -- MS ROUNDS
//!     one JSON line per vertical: nanoseconds per lead on its valid fixtures alone and on all its fixtures
//!     (valid and invalid) in turn, medians of ROUNDS rounds of MS ms each (after MS/2 ms of warm-up);
//!     the verticals interleave within each round
//! cargo run -q -p leadhub --release --example handler_core -- --list
//!     one JSON line per fixture: vertical, name, and whether it is valid (what the timing runs on)
//! ```
//!
//! Fixtures: HELOC's are the peer benchmark's (infra/bench/fixtures/heloc, 82 bodies). The other verticals'
//! are infra/examples/<vertical>.json and variants made from it here (a few valid, a few invalid); every one
//! is checked to get the verdict its name says before any timing.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use leadhub::crypto::KeyedHasher;
use leadhub::delivery::ValidateJob;
use leadhub::http::Problem;
use leadhub::lead::{later, now, LeadId, LeadRecord};
use leadhub::ssrf::UrlPolicy;
use leadhub::suppression::{self, SuppressionKind};
use leadhub::verticals::Vertical;
use serde_json::{json, Value};

struct Fixture {
    name: String,
    valid: bool,
    body: Vec<u8>,
}

/// What ingest makes of one body: (the stored item's attribute count, queue message bytes) or the 400's
/// body bytes. Returned so that nothing is optimised away.
fn handle(vertical: Vertical, body: &[u8], hasher: &KeyedHasher) -> Result<(usize, usize), usize> {
    let parsed = match vertical.parse_with(body, UrlPolicy::default()) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let errors = errors.into_vec();
            let detail = match errors.len() {
                1 => "the lead breaks 1 rule".to_owned(),
                n => format!("the lead breaks {n} rules"),
            };
            return Err(Problem::invalid(detail, errors)
                .into_response()
                .body()
                .len());
        }
    };
    let now = now();
    let id = LeadId::generate(now);
    let mut lead = LeadRecord::received(
        id.clone(),
        "partner-bench",
        vertical,
        parsed.lead,
        now,
        Some(later(now, Duration::from_secs(365 * 24 * 3600))),
    );
    lead.original = Some(parsed.original);
    lead.ssn_hash = parsed
        .ssn
        .as_deref()
        .map(|ssn| suppression::hash(hasher, SuppressionKind::Ssn, ssn));
    let item = leadhub::store::dynamodb::lead_item(&lead).map_err(|_| 0usize)?;
    let job = serde_json::to_string(&ValidateJob::new(id)).map_err(|_| 0usize)?;
    Ok((item.len(), job.len()))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn set(lead: &mut Value, pointer: &str, value: Value) {
    if let Some(slot) = lead.pointer_mut(pointer) {
        *slot = value;
    }
}

fn remove(lead: &mut Value, pointer: &str) {
    if let Some((parent, key)) = pointer.rsplit_once('/') {
        if let Some(Value::Object(object)) = lead.pointer_mut(parent) {
            object.remove(key);
        }
    }
}

/// (name, valid, change) variants of a vertical's example.
type Variant = (&'static str, bool, fn(&mut Value));

fn variants(vertical: Vertical) -> Vec<Variant> {
    let common: Vec<Variant> = vec![
        ("invalid-unknown-field", false, |l| {
            if let Value::Object(o) = l {
                o.insert("notAField".into(), json!(1));
            }
        }),
        ("invalid-empty-object", false, |l| *l = json!({})),
        ("invalid-body-array", false, |l| *l = json!([l.clone()])),
    ];
    let own: Vec<Variant> = match vertical {
        Vertical::Heloc => vec![],
        Vertical::Mortgage => vec![
            ("valid-no-ssn", true, |l| remove(l, "/borrower/ssn")),
            ("valid-padded-names", true, |l| {
                set(l, "/borrower/firstName", json!("  Jane  "))
            }),
            ("invalid-bad-email-and-phone", false, |l| {
                set(l, "/borrower/email", json!("jane@"));
                set(l, "/borrower/phone", json!("12"));
            }),
            ("invalid-missing-borrower", false, |l| {
                remove(l, "/borrower")
            }),
            ("invalid-control-in-name", false, |l| {
                set(l, "/borrower/lastName", json!("Doe\u{0}"))
            }),
        ],
        Vertical::Solar => vec![
            ("valid-no-extra-data", true, |l| remove(l, "/extra_data")),
            ("valid-padded-name", true, |l| {
                set(l, "/customer_name", json!("  John Doe "))
            }),
            ("invalid-bad-email-and-zip", false, |l| {
                set(l, "/email", json!("john@"));
                set(l, "/zip", json!("1"));
            }),
            ("invalid-missing-name", false, |l| {
                remove(l, "/customer_name")
            }),
            ("invalid-loopback-callback", false, |l| {
                set(l, "/call_back_url", json!("http://127.0.0.1/cb"))
            }),
        ],
        Vertical::RealEstate => vec![
            ("valid-no-inquiry", true, |l| remove(l, "/inquiry")),
            ("valid-padded-name", true, |l| {
                set(l, "/firstName", json!("  Jane "))
            }),
            ("invalid-bad-emails", false, |l| {
                set(l, "/emails", json!(["jane@", 3]))
            }),
            ("invalid-no-email-or-phone", false, |l| {
                remove(l, "/emails");
                remove(l, "/phones");
            }),
            ("invalid-control-in-content", false, |l| {
                set(l, "/content", json!("call\u{1b}[31m me"))
            }),
        ],
    };
    common.into_iter().chain(own).collect()
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn fixtures(vertical: Vertical) -> Result<Vec<Fixture>, String> {
    let root = root();
    if vertical == Vertical::Heloc {
        let dir = root.join("infra/bench/fixtures/heloc");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        return paths
            .iter()
            .map(|path| {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok(Fixture {
                    valid: name.starts_with("valid-"),
                    body: read(path)?,
                    name,
                })
            })
            .collect();
    }
    let path = root.join(format!("infra/examples/{}.json", vertical.as_str()));
    let posted = read(&path)?;
    let example: Value =
        serde_json::from_slice(&posted).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = vec![
        Fixture {
            name: "valid-example".into(),
            valid: true,
            body: posted.clone(),
        },
        Fixture {
            name: "valid-example-compact".into(),
            valid: true,
            body: serde_json::to_vec(&example).map_err(|e| e.to_string())?,
        },
        Fixture {
            name: "invalid-body-json-truncated".into(),
            valid: false,
            body: posted[..posted.len() / 2].to_vec(),
        },
    ];
    for (name, valid, change) in variants(vertical) {
        let mut lead = example.clone();
        change(&mut lead);
        out.push(Fixture {
            name: name.into(),
            valid,
            body: serde_json::to_vec(&lead).map_err(|e| e.to_string())?,
        });
    }
    Ok(out)
}

/// Handle every body in turn until `budget` has passed: nanoseconds per lead.
fn per_lead_ns(
    vertical: Vertical,
    bodies: &[&[u8]],
    hasher: &KeyedHasher,
    budget: Duration,
) -> f64 {
    let start = Instant::now();
    let mut leads = 0u64;
    let mut out = 0usize;
    loop {
        for body in bodies {
            out += match black_box(handle(vertical, black_box(body), hasher)) {
                Ok((a, b)) => a + b,
                Err(n) => n,
            };
        }
        leads += bodies.len() as u64;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            black_box(out);
            return elapsed.as_nanos() as f64 / leads as f64;
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let hasher = KeyedHasher::new(b"handler-core-benchmark-key-32-bytes!");
    let mut sets = Vec::new();
    for vertical in Vertical::ALL {
        let fixtures = fixtures(vertical)?;
        for fixture in &fixtures {
            let got = handle(vertical, &fixture.body, &hasher).is_ok();
            if got != fixture.valid {
                return Err(format!(
                    "{vertical} {}: valid={got}, but its name says otherwise",
                    fixture.name
                ));
            }
        }
        sets.push((vertical, fixtures));
    }
    if args.first().map(String::as_str) == Some("--list") {
        for (vertical, fixtures) in &sets {
            for f in fixtures {
                println!(
                    "{}",
                    json!({"vertical": vertical.as_str(), "fixture": f.name, "valid": f.valid, "bytes": f.body.len()})
                );
            }
        }
        return Ok(());
    }
    let (ms, rounds) = match args {
        [ms, rounds] => (
            ms.parse::<u64>()
                .map_err(|_| format!("MS: not a number: {ms}"))?,
            rounds
                .parse::<usize>()
                .map_err(|_| format!("ROUNDS: not a number: {rounds}"))?,
        ),
        _ => return Err("usage: handler_core MS ROUNDS | --list".into()),
    };
    let budget = Duration::from_millis(ms);
    let mut valid_runs = vec![Vec::new(); sets.len()];
    let mut mix_runs = vec![Vec::new(); sets.len()];
    for (vertical, fixtures) in &sets {
        let all: Vec<&[u8]> = fixtures.iter().map(|f| f.body.as_slice()).collect();
        per_lead_ns(*vertical, &all, &hasher, budget / 2);
    }
    for _ in 0..rounds.max(1) {
        for (i, (vertical, fixtures)) in sets.iter().enumerate() {
            let valid: Vec<&[u8]> = fixtures
                .iter()
                .filter(|f| f.valid)
                .map(|f| f.body.as_slice())
                .collect();
            let all: Vec<&[u8]> = fixtures.iter().map(|f| f.body.as_slice()).collect();
            valid_runs[i].push(per_lead_ns(*vertical, &valid, &hasher, budget));
            mix_runs[i].push(per_lead_ns(*vertical, &all, &hasher, budget));
        }
    }
    for (i, (vertical, fixtures)) in sets.iter().enumerate() {
        let valid = fixtures.iter().filter(|f| f.valid).count();
        let line = json!({
            "vertical": vertical.as_str(),
            "valid_fixtures": valid,
            "invalid_fixtures": fixtures.len() - valid,
            "valid_ns_median": median(valid_runs[i].clone()),
            "mix_ns_median": median(mix_runs[i].clone()),
            "valid_ns_runs": valid_runs[i],
            "mix_ns_runs": mix_runs[i],
            "rounds": rounds.max(1),
            "ms_per_loop": ms,
        });
        println!("{line}");
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = run(&args) {
        eprintln!("handler_core: {error}");
        std::process::exit(2);
    }
}
