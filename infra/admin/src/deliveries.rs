//! `leadhub-admin deliveries dead` and `deliveries replay`: list dead deliveries and replay one, on the
//! table (`--table`, default `LEADHUB_TABLE`) and dispatch queue (`--dispatch-queue`, default
//! `LEADHUB_DISPATCH_QUEUE_URL`). The work is [`leadhub::operator`]'s; this module parses and prints.

use std::fmt::Write as _;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use leadhub::lead::LeadId;
use leadhub::operator::{self, ReplayPorts};
use leadhub::queue::sqs::SqsQueue;
use leadhub::store::dynamodb::DynamoStore;
use leadhub::store::DeadDelivery;

use crate::table::{one_line, table, time};

#[derive(Subcommand)]
pub enum DeliveriesCommand {
    /// List dead deliveries, newest first: when each died, lead, destination, attempts and reason.
    Dead {
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
        /// Only deliveries that died at or after this time: RFC 3339 (2026-12-01T00:00:00Z) or back from
        /// now (24h, 7d). Default: the last 7 days.
        #[arg(long)]
        since: Option<String>,
        /// List at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Make a dead delivery pending again (same idempotency key, fresh attempt count) and queue its first
    /// attempt; an unsold lead goes back to routing.
    Replay {
        /// The lead's id (lead_...).
        lead: String,
        /// The destination's id, as listed.
        destination: String,
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
        /// The dispatch queue's URL (bootstrap exports LEADHUB_DISPATCH_QUEUE_URL).
        #[arg(long, env = "LEADHUB_DISPATCH_QUEUE_URL")]
        dispatch_queue: String,
    },
}

pub async fn run(command: DeliveriesCommand, sdk: &aws_config::SdkConfig) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::Dead {
            table,
            since,
            limit,
        } => {
            let now = Utc::now();
            let since = match since {
                Some(text) => operator::parse_since(&text, now)?,
                None => now - operator::DEFAULT_SINCE,
            };
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &table);
            // One more than asked for says whether there are more.
            let listed = operator::dead_deliveries(&store, since, limit.saturating_add(1))
                .await
                .with_context(|| format!("listing the dead deliveries of table {table}"))?;
            print!("{}", listing(&listed, since, limit));
        }
        DeliveriesCommand::Replay {
            lead,
            destination,
            table,
            dispatch_queue,
        } => {
            let lead_id: LeadId = lead
                .parse()
                .with_context(|| format!("`{lead}` is not a lead id"))?;
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &table);
            let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), dispatch_queue);
            let replayed = operator::replay_delivery(
                ReplayPorts {
                    store: &store,
                    dispatch_queue: &queue,
                    dead_deliveries: &store,
                },
                &lead_id,
                &destination,
            )
            .await?;
            println!(
                "replayed: lead {} to {} is pending again (attempt 1 queued); the lead is {}",
                replayed.lead_id, replayed.destination, replayed.lead_status
            );
        }
    }
    Ok(())
}

/// The listing as printed: a header and one row per delivery (at most `limit`, of `listed`, which may hold
/// one more to say that there are more), then a count.
fn listing(listed: &[DeadDelivery], since: DateTime<Utc>, limit: usize) -> String {
    let shown = &listed[..listed.len().min(limit)];
    let since = time(since);
    if shown.is_empty() {
        return format!("no dead deliveries since {since}\n");
    }
    let header = ["DIED AT", "LEAD", "DESTINATION", "ATTEMPTS", "REASON"];
    let rows: Vec<[String; 5]> = shown
        .iter()
        .map(|dead| {
            [
                time(dead.died_at),
                dead.lead_id.to_string(),
                one_line(&dead.destination),
                dead.attempts.to_string(),
                one_line(&format!("{}: {}", dead.code, dead.reason)),
            ]
        })
        .collect();
    let mut out = table(header, &rows);
    let count = shown.len();
    let noun = if count == 1 { "delivery" } else { "deliveries" };
    if listed.len() > limit {
        let _ = writeln!(
            out,
            "the newest {count} dead {noun} since {since}; there are more: raise --limit"
        );
    } else {
        let _ = writeln!(out, "{count} dead {noun} since {since}");
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

    fn dead(destination: &str, died_at: &str, reason: &str) -> DeadDelivery {
        DeadDelivery {
            lead_id: "lead_01JD0000000000000000000000".parse().expect("an id"),
            destination: destination.to_owned(),
            died_at: at(died_at),
            attempts: 2,
            code: "http_500".to_owned(),
            reason: reason.to_owned(),
            expires_at: None,
        }
    }

    #[test]
    fn the_listing_is_a_table_with_a_count() {
        let since = at("2026-12-01T00:00:00Z");
        assert_eq!(
            listing(&[], since, 100),
            "no dead deliveries since 2026-12-01T00:00:00.000Z\n"
        );
        let listed = [
            dead(
                "sonar-east",
                "2026-12-02T10:00:00.250Z",
                "gave up after 2 attempts: down",
            ),
            dead("x", "2026-12-02T09:00:00Z", "line one\nline two"),
        ];
        let text = listing(&listed, since, 100);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("DIED AT"), "{text}");
        assert_eq!(
            lines[1],
            "2026-12-02T10:00:00.250Z  lead_01JD0000000000000000000000  sonar-east   2         http_500: gave up after 2 attempts: down"
        );
        assert!(lines[2].ends_with("http_500: line one line two"), "{text}");
        // Columns line up.
        assert_eq!(lines[0].find("REASON"), lines[1].find("http_500"));
        assert_eq!(lines[3], "2 dead deliveries since 2026-12-01T00:00:00.000Z");
        // Asked for one: the extra row only says there are more.
        let text = listing(&listed, since, 1);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.ends_with("the newest 1 dead delivery since 2026-12-01T00:00:00.000Z; there are more: raise --limit\n"),
            "{text}"
        );
    }
}
