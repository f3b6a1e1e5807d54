//! `leadhub-admin callbacks unparsed`: the buyer callbacks the hub could not read as a verdict, kept for the
//! operator (`UnparsedCallbacks`), newest first, on the table (`--table`, default `LEADHUB_TABLE`). A body
//! may hold PII: it is shown only with `--show-body`, and then only its first bytes, escaped.

use std::fmt::Write as _;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use leadhub::operator;
use leadhub::store::dynamodb::DynamoStore;
use leadhub::store::{UnparsedCallback, UnparsedCallbacks};

use crate::table::{one_line, time, widths, write_row};

/// The most of a body `--show-body` prints.
pub const SHOWN_BODY_BYTES: usize = 256;

#[derive(Subcommand)]
pub enum CallbacksCommand {
    /// List callbacks whose body was not a verdict (kept 30 days), newest first: when, destination, lead,
    /// content type, size and why it was not read.
    Unparsed {
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
        /// Only this destination's.
        #[arg(long)]
        destination: Option<String>,
        /// Only callbacks received at or after this time: RFC 3339 (2026-12-01T00:00:00Z) or back from now
        /// (24h, 7d). Default: the last 7 days.
        #[arg(long)]
        since: Option<String>,
        /// List at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Also print the first bytes of each body (it may hold PII: mind where the output goes).
        #[arg(long)]
        show_body: bool,
    },
}

pub async fn run(command: CallbacksCommand, sdk: &aws_config::SdkConfig) -> anyhow::Result<()> {
    match command {
        CallbacksCommand::Unparsed {
            table,
            destination,
            since,
            limit,
            show_body,
        } => {
            let now = Utc::now();
            let since = match since {
                Some(text) => operator::parse_since(&text, now)?,
                None => now - operator::DEFAULT_SINCE,
            };
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &table);
            // One more than asked for says whether there are more.
            let listed = store
                .list_unparsed(since, destination.as_deref(), limit.saturating_add(1), now)
                .await
                .with_context(|| format!("listing the unparsed callbacks of table {table}"))?;
            print!("{}", listing(&listed, since, limit, show_body));
        }
    }
    Ok(())
}

/// The first [`SHOWN_BODY_BYTES`] of a body, printable ASCII as is and every other byte as `\xNN`, with `…`
/// when there is more.
pub fn body_excerpt(callback: &UnparsedCallback) -> String {
    let mut out = String::new();
    for byte in callback.body.iter().take(SHOWN_BODY_BYTES) {
        match byte {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(*byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    if u64::try_from(callback.body.len().min(SHOWN_BODY_BYTES)).unwrap_or(u64::MAX) < callback.size
    {
        out.push('…');
    }
    out
}

/// The listing as printed: a header and one row per callback (at most `limit` of `listed`, which may hold
/// one more to say that there are more), each followed by its body's first bytes with `show_body`, then a
/// count.
pub fn listing(
    listed: &[UnparsedCallback],
    since: DateTime<Utc>,
    limit: usize,
    show_body: bool,
) -> String {
    let shown = &listed[..listed.len().min(limit)];
    let since = time(since);
    if shown.is_empty() {
        return format!("no unparsed callbacks since {since}\n");
    }
    let header = [
        "RECEIVED AT",
        "DESTINATION",
        "LEAD",
        "CONTENT TYPE",
        "SIZE",
        "PROBLEM",
        "ID",
    ];
    let rows: Vec<[String; 7]> = shown
        .iter()
        .map(|callback| {
            [
                time(callback.received_at),
                one_line(&callback.destination),
                callback
                    .lead_id
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
                callback
                    .content_type
                    .as_deref()
                    .map_or_else(|| "(none)".to_owned(), one_line),
                format!("{} B", callback.size),
                callback.problem.clone(),
                callback.id.to_string(),
            ]
        })
        .collect();
    let widths = widths(header, &rows);
    let mut out = String::new();
    write_row(&mut out, header, &widths);
    for (row, callback) in rows.iter().zip(shown) {
        write_row(&mut out, row.each_ref().map(String::as_str), &widths);
        if show_body {
            let _ = writeln!(out, "    body: {}", body_excerpt(callback));
        }
    }
    let count = shown.len();
    let noun = if count == 1 { "callback" } else { "callbacks" };
    if listed.len() > limit {
        let _ = writeln!(
            out,
            "the newest {count} unparsed {noun} since {since}; there are more: raise --limit"
        );
    } else {
        let _ = writeln!(out, "{count} unparsed {noun} since {since}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    #[test]
    fn the_listing_shows_no_body_unless_asked_and_then_only_its_first_bytes() {
        let since = at("2026-12-01T00:00:00Z");
        assert_eq!(
            listing(&[], since, 100, false),
            "no unparsed callbacks since 2026-12-01T00:00:00.000Z\n"
        );
        let lead = "lead_01JD0000000000000000000000".parse().expect("an id");
        let first = UnparsedCallback::new(
            "ntherm",
            Some(lead),
            Some("text/plain"),
            b"{\"email\":\"jane@example.com\"}\n\xff",
            "not_json",
            at("2026-12-02T10:00:00.250Z"),
        );
        let big = UnparsedCallback::new(
            "sonar",
            None,
            None,
            &vec![b'a'; 1000],
            "too_large",
            at("2026-12-02T09:00:00Z"),
        );
        let listed = [first.clone(), big.clone()];
        let text = listing(&listed, since, 100, false);
        assert!(!text.contains("jane"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("RECEIVED AT"), "{text}");
        assert!(lines[1].starts_with(
            "2026-12-02T10:00:00.250Z  ntherm       lead_01JD0000000000000000000000  text/plain    30 B"
        ), "{text}");
        assert!(lines[1].ends_with(first.id.as_str()), "{text}");
        assert!(
            lines[2].contains("(none)") && lines[2].contains("1000 B"),
            "{text}"
        );
        assert!(lines[2].contains("  -  "), "no lead: {text}");
        assert_eq!(lines[0].find("ID"), lines[1].find("ucb_"));
        assert_eq!(
            lines[3],
            "2 unparsed callbacks since 2026-12-01T00:00:00.000Z"
        );

        let text = listing(&listed, since, 100, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2],
            "    body: {\"email\":\"jane@example.com\"}\\x0a\\xff"
        );
        assert_eq!(
            lines[4],
            format!("    body: {}…", "a".repeat(SHOWN_BODY_BYTES))
        );
        let text = listing(&listed, since, 1, false);
        assert!(
            text.ends_with("the newest 1 unparsed callback since 2026-12-01T00:00:00.000Z; there are more: raise --limit\n"),
            "{text}"
        );
    }
}
