//! The emulators are written from their seeds, not from the hub: no source file of the sandbox crate may
//! reach into the `leadhub` crate for anything but its log setup. Its parsers (`verticals`), connectors,
//! field and lead types, webhook signer and the rest would let an emulator agree with the code under test
//! by construction.

use std::path::{Path, PathBuf};

/// The only parts of the hub a sandbox may use: none of them knows a buyer API or a lead.
const ALLOWED: &[&str] = &["telemetry"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read the sandbox sources") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `leadhub::<module>` path in `text` (grouped imports, `use leadhub::{...}`, and a bare `use leadhub;`
/// or `leadhub::*` are reported as `{` and `*`; `leadhub_sandbox` is this crate, not the hub).
fn hub_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("leadhub") {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + "leadhub".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(path) = after.strip_prefix("::") {
            let module: String = path
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if module.is_empty() {
                // `leadhub::{...}` or `leadhub::*`: what it brings in is not checked, so it is refused.
                found.push(path.chars().take(1).collect());
            } else {
                found.push(module);
            }
        } else if after.trim_start().starts_with(';')
            && is_use(&text[..text.len() - rest.len() - "leadhub".len()])
        {
            found.push("*".into());
        }
    }
    found
}

/// Whether the text before a bare `leadhub` ends in `use` or `extern crate`.
fn is_use(before: &str) -> bool {
    let before = before.trim_end();
    before.ends_with("use") || before.ends_with("extern crate")
}

#[test]
fn no_sandbox_source_uses_the_hubs_parsers_connectors_or_types() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() >= 8, "the sandbox sources are found: {files:?}");
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        for module in hub_paths(&text) {
            if !ALLOWED.contains(&module.as_str()) {
                offences.push(format!("{}: leadhub::{module}", file.display()));
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

#[test]
fn the_check_sees_every_form_of_use() {
    assert_eq!(
        hub_paths("use leadhub::verticals::Vertical;"),
        ["verticals"]
    );
    assert_eq!(hub_paths("use leadhub::{connectors, lead};"), ["{"]);
    assert_eq!(
        hub_paths("let x = leadhub::lead::LeadStatus::Routing;"),
        ["lead"]
    );
    assert_eq!(hub_paths("use leadhub::*;"), ["*"]);
    assert_eq!(hub_paths("use leadhub;"), ["*"]);
    assert_eq!(
        hub_paths("use leadhub_sandbox::sonar; leadhub::telemetry::init_text();"),
        ["telemetry"]
    );
    assert!(hub_paths("// the leadhub sandbox").is_empty());
}
