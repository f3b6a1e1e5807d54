//! `leadhub-admin notifications failed|replay|disabled|enable`: partner notifications that will not be
//! tried again on their own, and endpoints disabled by a `410 Gone`, on the table (`--table`, default
//! `LEADHUB_TABLE`) and dispatch queue (`--dispatch-queue`, default `LEADHUB_DISPATCH_QUEUE_URL`). The work
//! is [`leadhub::operator`]'s and the [`NotificationLog`] port's; this module parses and prints.

use std::fmt::Write as _;

use anyhow::Context;
use clap::Subcommand;
use leadhub::operator;
use leadhub::queue::sqs::SqsQueue;
use leadhub::store::dynamodb::DynamoStore;
use leadhub::store::{DisabledEndpoint, FailedNotification, NotificationLog};

use crate::table::{one_line, table, time};

#[derive(Subcommand)]
pub enum NotificationsCommand {
    /// List failed notifications, newest first: when, webhook id, partner, event, lead, attempts, why.
    Failed {
        /// Only this partner's.
        #[arg(long)]
        partner: Option<String>,
        /// List at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
    },
    /// Send failed notifications again (as a first attempt, with the same webhook id and body): those
    /// named, or with --all every listed one (of --partner). Enable a disabled endpoint first.
    Replay {
        /// Webhook ids (msg_...), as listed.
        webhook_ids: Vec<String>,
        /// Every failed notification (of --partner when given).
        #[arg(long, conflicts_with = "webhook_ids")]
        all: bool,
        #[arg(long, requires = "all")]
        partner: Option<String>,
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
        /// The dispatch queue's URL (bootstrap exports LEADHUB_DISPATCH_QUEUE_URL).
        #[arg(long, env = "LEADHUB_DISPATCH_QUEUE_URL")]
        dispatch_queue: String,
    },
    /// List endpoints disabled by a 410 Gone.
    Disabled {
        #[arg(long)]
        partner: Option<String>,
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
    },
    /// Enable a partner's disabled endpoints again (then replay what failed meanwhile).
    Enable {
        partner: String,
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
    },
}

/// Run one command; `Ok(false)` when some of it could not be done (reported).
pub async fn run(
    command: NotificationsCommand,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<bool> {
    let store = |table: &str| DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table);
    match command {
        NotificationsCommand::Failed {
            partner,
            limit,
            table,
        } => {
            let listed = store(&table)
                .failed(partner.as_deref(), limit.saturating_add(1))
                .await
                .with_context(|| format!("listing the failed notifications of table {table}"))?;
            print!("{}", failed_listing(&listed, limit));
        }
        NotificationsCommand::Replay {
            webhook_ids,
            all,
            partner,
            table,
            dispatch_queue,
        } => {
            let store = store(&table);
            let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), dispatch_queue);
            let ids = if all {
                store
                    .failed(partner.as_deref(), 10_000)
                    .await
                    .with_context(|| format!("listing the failed notifications of table {table}"))?
                    .into_iter()
                    .map(|failed| failed.job.webhook_id)
                    .collect()
            } else {
                webhook_ids
            };
            if ids.is_empty() {
                anyhow::bail!("name the webhook ids to replay, or give --all");
            }
            return replay(&store, &queue, &ids).await;
        }
        NotificationsCommand::Disabled { partner, table } => {
            let listed = store(&table)
                .disabled_endpoints(partner.as_deref())
                .await
                .with_context(|| format!("listing the disabled endpoints of table {table}"))?;
            print!("{}", disabled_listing(&listed));
        }
        NotificationsCommand::Enable { partner, table } => {
            let enabled = store(&table).enable_endpoints(&partner).await?;
            match enabled {
                0 => println!("partner {partner} has no disabled endpoint"),
                n => println!(
                    "enabled {n} endpoint{} of partner {partner}; replay what failed meanwhile with \
                     `leadhub-admin notifications replay --all --partner {partner}`",
                    if n == 1 { "" } else { "s" }
                ),
            }
        }
    }
    Ok(true)
}

/// Replay each of `ids`, saying what happened to each; `Ok(false)` when one was not found or failed.
pub async fn replay(
    log: &dyn NotificationLog,
    queue: &dyn leadhub::queue::JobQueue,
    ids: &[String],
) -> anyhow::Result<bool> {
    let mut all_done = true;
    for id in ids {
        match operator::replay_notification(log, queue, id).await {
            Ok(true) => println!("{id}: queued again"),
            Ok(false) => {
                all_done = false;
                eprintln!("{id}: no such failed notification");
            }
            Err(error) => {
                all_done = false;
                eprintln!("{id}: not replayed: {error}");
            }
        }
    }
    Ok(all_done)
}

/// The listing as printed (at most `limit` of `listed`, which may hold one more to say there are more).
fn failed_listing(listed: &[FailedNotification], limit: usize) -> String {
    let shown = &listed[..listed.len().min(limit)];
    if shown.is_empty() {
        return "no failed notifications\n".to_owned();
    }
    let rows: Vec<[String; 7]> = shown
        .iter()
        .map(|failed| {
            [
                time(failed.failed_at),
                failed.job.webhook_id.clone(),
                one_line(&failed.job.partner_id),
                failed.job.payload.event.clone(),
                failed.job.lead_id().to_string(),
                failed.job.attempt.to_string(),
                one_line(&format!("{}: {}", failed.code, failed.reason)),
            ]
        })
        .collect();
    let mut out = table(
        [
            "FAILED AT",
            "WEBHOOK ID",
            "PARTNER",
            "EVENT",
            "LEAD",
            "ATTEMPTS",
            "REASON",
        ],
        &rows,
    );
    let count = shown.len();
    let noun = if count == 1 {
        "notification"
    } else {
        "notifications"
    };
    if listed.len() > limit {
        let _ = writeln!(
            out,
            "the newest {count} failed {noun}; there are more: raise --limit"
        );
    } else {
        let _ = writeln!(out, "{count} failed {noun}");
    }
    out
}

fn disabled_listing(listed: &[DisabledEndpoint]) -> String {
    if listed.is_empty() {
        return "no disabled endpoints\n".to_owned();
    }
    let rows: Vec<[String; 4]> = listed
        .iter()
        .map(|endpoint| {
            [
                one_line(&endpoint.partner_id),
                time(endpoint.disabled_at),
                endpoint.webhook_id.clone(),
                one_line(&endpoint.url),
            ]
        })
        .collect();
    let mut out = table(["PARTNER", "DISABLED AT", "BY WEBHOOK ID", "URL"], &rows);
    let _ = writeln!(
        out,
        "{} disabled; enable with `leadhub-admin notifications enable PARTNER`",
        listed.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use leadhub::lead::{LeadId, LeadStatus};
    use leadhub::notifications::{NotifyJob, Payload, PayloadData};
    use leadhub::queue::JobQueue;
    use leadhub::store::memory::MemoryStore;
    use leadhub::verticals::Vertical;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn failed(webhook_id: &str, reason: &str) -> FailedNotification {
        let lead_id: LeadId = "lead_01JD0000000000000000000000".parse().expect("an id");
        FailedNotification {
            job: NotifyJob {
                webhook_id: webhook_id.to_owned(),
                partner_id: "acme".to_owned(),
                url: None,
                payload: Payload {
                    event: "lead.delivered".to_owned(),
                    timestamp: at("2026-12-02T10:00:00Z"),
                    data: PayloadData {
                        lead_id: lead_id.clone(),
                        vertical: Vertical::Heloc,
                        status: LeadStatus::Delivered,
                        reason: None,
                        affiliate_id: None,
                        status_url: format!("/v1/leads/{lead_id}"),
                    },
                },
                attempt: 8,
                not_before: None,
            },
            code: "exhausted".to_owned(),
            reason: reason.to_owned(),
            failed_at: at("2026-12-02T10:00:00.250Z"),
            expires_at: Utc::now() + chrono::Duration::days(30),
        }
    }

    #[test]
    fn listings_are_tables_with_a_count() {
        assert_eq!(failed_listing(&[], 10), "no failed notifications\n");
        let listed = [
            failed("msg_a", "gave up after 8 attempts: HTTP 500"),
            failed("msg_b", "two\nlines"),
        ];
        let text = failed_listing(&listed, 10);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("FAILED AT"), "{text}");
        assert!(
            lines[1].starts_with("2026-12-02T10:00:00.250Z  msg_a"),
            "{text}"
        );
        assert!(lines[1].ends_with("exhausted: gave up after 8 attempts: HTTP 500"));
        assert!(lines[2].ends_with("exhausted: two lines"), "{text}");
        assert_eq!(lines[0].find("REASON"), lines[1].find("exhausted"));
        assert_eq!(lines[3], "2 failed notifications");
        assert!(failed_listing(&listed, 1).ends_with("there are more: raise --limit\n"));
        assert_eq!(disabled_listing(&[]), "no disabled endpoints\n");
    }

    #[tokio::test]
    async fn replay_queues_each_named_one_and_reports_the_unknown() {
        let store = MemoryStore::new();
        let queue = leadhub::queue::memory::MemoryQueue::new(
            "dispatch",
            std::time::Duration::from_secs(30),
        );
        store
            .record_failed(&failed("msg_a", "gone"))
            .await
            .expect("record");
        let done = replay(&store, &queue, &["msg_a".to_owned(), "msg_none".to_owned()])
            .await
            .expect("runs");
        assert!(!done, "one was unknown");
        assert!(store.failed(None, 10).await.expect("list").is_empty());
        let messages = queue
            .receive(10, std::time::Duration::ZERO)
            .await
            .expect("receive");
        assert_eq!(messages.len(), 1);
        assert!(messages[0].body.contains("\"webhookId\":\"msg_a\""));
        assert!(messages[0].body.contains("\"attempt\":1"));
    }
}
