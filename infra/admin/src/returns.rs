//! `leadhub-admin returns rate`: each destination's return rate — the leads it returned over the
//! deliveries it accepted, per UTC day since a date, from the tallies that commit counts for each
//! acceptance and each return (`DeliveryTallies`: one small item per destination and day, read with one
//! index query) — on the table (`--table`, default `LEADHUB_TABLE`).
//!
//! Both counts are by the day they happened: a lead accepted on the 30th and returned on the 2nd counts as
//! accepted in a window from the 30th and as returned in a window from the 1st. Over windows longer than
//! the return window the rate is that of the leads accepted in it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::Subcommand;
use leadhub::operator;
use leadhub::store::dynamodb::DynamoStore;
use leadhub::store::{DayTally, DeliveryTallies};

/// How far back `returns rate` looks by default.
pub const DEFAULT_DAYS: i64 = 30;

#[derive(Subcommand)]
pub enum ReturnsCommand {
    /// Each destination's accepted and returned deliveries, and its return rate (returned / accepted),
    /// over the UTC days since a date.
    Rate {
        /// The table (bootstrap exports LEADHUB_TABLE).
        #[arg(long, env = "LEADHUB_TABLE")]
        table: String,
        /// Only this destination.
        #[arg(long)]
        destination: Option<String>,
        /// From the UTC day of this time: RFC 3339 (2026-12-01T00:00:00Z), a date (2026-12-01) or back
        /// from now (24h, 30d). Default: the last 30 days.
        #[arg(long)]
        since: Option<String>,
    },
}

pub async fn run(command: ReturnsCommand, sdk: &aws_config::SdkConfig) -> anyhow::Result<()> {
    match command {
        ReturnsCommand::Rate {
            table,
            destination,
            since,
        } => {
            let since = since_day(since.as_deref())?;
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &table);
            let tallies = store
                .tallies_since(since, destination.as_deref())
                .await
                .with_context(|| format!("reading the tallies of table {table}"))?;
            print!("{}", report(&tallies, since, destination.as_deref()));
        }
    }
    Ok(())
}

/// `--since` as a UTC day: a date, or anything `deliveries dead --since` takes.
pub fn since_day(since: Option<&str>) -> anyhow::Result<NaiveDate> {
    let now = Utc::now();
    Ok(match since {
        None => (now - chrono::Duration::days(DEFAULT_DAYS)).date_naive(),
        Some(text) => match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
            Ok(day) => day,
            Err(_) => operator::parse_since(text, now)
                .map_err(|_| {
                    anyhow::anyhow!(
                        "`{text}` is not a date: give a date such as 2026-12-01, an RFC 3339 time such as \
                         2026-12-01T00:00:00Z, or a span back from now such as 24h or 30d"
                    )
                })?
                .date_naive(),
        },
    })
}

/// One destination's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub destination: String,
    pub accepted: u64,
    pub returned: u64,
}

impl Rate {
    /// Returned over accepted, in percent; `None` with nothing accepted.
    pub fn percent(&self) -> Option<f64> {
        (self.accepted > 0).then(|| self.returned as f64 * 100.0 / self.accepted as f64)
    }
}

/// Each destination's totals over `tallies`, by destination.
pub fn rates(tallies: &[DayTally]) -> Vec<Rate> {
    let mut totals: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for tally in tallies {
        let total = totals.entry(&tally.destination).or_default();
        total.0 = total.0.saturating_add(tally.accepted);
        total.1 = total.1.saturating_add(tally.returned);
    }
    totals
        .into_iter()
        .map(|(destination, (accepted, returned))| Rate {
            destination: destination.to_owned(),
            accepted,
            returned,
        })
        .collect()
}

/// The report as printed.
pub fn report(tallies: &[DayTally], since: NaiveDate, destination: Option<&str>) -> String {
    let rates = rates(tallies);
    let scope = match destination {
        Some(destination) => format!("for {destination} "),
        None => String::new(),
    };
    if rates.is_empty() {
        return format!("no accepted or returned deliveries {scope}since {since} (UTC days)\n");
    }
    let header = ["DESTINATION", "ACCEPTED", "RETURNED", "RATE"];
    let rows: Vec<[String; 4]> = rates
        .iter()
        .map(|rate| {
            [
                rate.destination.clone(),
                rate.accepted.to_string(),
                rate.returned.to_string(),
                rate.percent()
                    .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%")),
            ]
        })
        .collect();
    let mut out = crate::table::table(header, &rows);
    let _ = writeln!(
        out,
        "since {since} (UTC days); returned leads over accepted deliveries, each counted on the day it happened"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    fn tally(destination: &str, on: &str, accepted: u64, returned: u64) -> DayTally {
        DayTally {
            destination: destination.to_owned(),
            day: day(on),
            accepted,
            returned,
        }
    }

    #[test]
    fn rates_add_up_the_days_per_destination() {
        let tallies = [
            tally("sonar", "2026-12-01", 10, 1),
            tally("ntherm", "2026-12-01", 0, 1),
            tally("sonar", "2026-12-02", 30, 2),
            tally("lofty", "2026-12-02", 8, 0),
        ];
        let rates = rates(&tallies);
        assert_eq!(
            rates,
            [
                Rate {
                    destination: "lofty".into(),
                    accepted: 8,
                    returned: 0
                },
                Rate {
                    destination: "ntherm".into(),
                    accepted: 0,
                    returned: 1
                },
                Rate {
                    destination: "sonar".into(),
                    accepted: 40,
                    returned: 3
                },
            ]
        );
        assert_eq!(rates[2].percent(), Some(7.5));
        assert_eq!(rates[1].percent(), None);

        let text = report(&tallies, day("2026-12-01"), None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "DESTINATION  ACCEPTED  RETURNED  RATE");
        assert_eq!(lines[1], "lofty        8         0         0.0%");
        assert_eq!(lines[2], "ntherm       0         1         -");
        assert_eq!(lines[3], "sonar        40        3         7.5%");
        assert!(
            lines[4].starts_with("since 2026-12-01 (UTC days)"),
            "{text}"
        );
        assert_eq!(
            report(&[], day("2026-12-01"), Some("sonar")),
            "no accepted or returned deliveries for sonar since 2026-12-01 (UTC days)\n"
        );
    }

    #[test]
    fn since_is_a_date_a_time_or_a_span() {
        assert_eq!(
            since_day(Some("2026-12-01")).expect("a date"),
            day("2026-12-01")
        );
        assert_eq!(
            since_day(Some("2026-12-01T23:30:00-02:00")).expect("a time"),
            day("2026-12-02"),
            "the UTC day"
        );
        let thirty = (Utc::now() - chrono::Duration::days(30)).date_naive();
        assert_eq!(since_day(None).expect("default"), thirty);
        assert_eq!(since_day(Some("30d")).expect("a span"), thirty);
        let error = since_day(Some("last month")).expect_err("not a date");
        assert!(error.to_string().contains("such as 2026-12-01"), "{error}");
    }
}
