//! [`LeadSafeReports`] on the table: one item per report, `pk` `LSREPORT#<reportId>`, sort key `REPORT`,
//! listed by time through `gsi1` (the parent module's docs give the item and the calls).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::dead_deliveries::time_key;
use super::{
    applied, millis, sdk_error, string, ttl_seconds, DynamoStore, Item, ItemReader, GSI1,
    TTL_ATTRIBUTE,
};
use crate::crypto::SealedSsn;
use crate::leadsafe_reports::{LeadSafeReport, ReportId, ReportSource};
use crate::store::{LeadSafeReports, StoreError};

const REPORT_SK: &str = "REPORT";
/// The index partition every report is in.
const REPORT_GSI1PK: &str = "LSREPORT";
/// The most items one `Query` page asks for.
const PAGE: i32 = 500;
/// Dates as stored: ISO 8601.
const DATE_FORMAT: &str = "%Y-%m-%d";

fn report_pk(id: &ReportId) -> String {
    format!("LSREPORT#{id}")
}

/// `gsi1sk`: `<reported-at millis, 13 digits>#<reportId>`, so the index lists reports by time.
fn report_gsi1sk(report: &LeadSafeReport) -> String {
    format!("{}#{}", time_key(report.reported_at), report.id)
}

fn date(day: NaiveDate) -> String {
    day.format(DATE_FORMAT).to_string()
}

fn report_to_item(report: &LeadSafeReport) -> Item {
    let mut item = Item::new();
    item.insert("pk".to_owned(), string(report_pk(&report.id)));
    item.insert("sk".to_owned(), string(REPORT_SK));
    item.insert("gsi1pk".to_owned(), string(REPORT_GSI1PK));
    item.insert("gsi1sk".to_owned(), string(report_gsi1sk(report)));
    item.insert("report_id".to_owned(), string(report.id.as_str()));
    item.insert("sealed".to_owned(), string(report.sealed.to_stored()));
    item.insert("reason".to_owned(), string(report.reason.as_str()));
    item.insert("start_date".to_owned(), string(date(report.start_date)));
    if let Some(end) = report.end_date {
        item.insert("end_date".to_owned(), string(date(end)));
    }
    item.insert("source".to_owned(), string(report.source.kind()));
    if let ReportSource::Buyer {
        destination,
        lead_id,
    } = &report.source
    {
        item.insert("destination".to_owned(), string(destination));
        item.insert("lead_id".to_owned(), string(lead_id.as_str()));
    }
    item.insert("reported_at".to_owned(), millis(report.reported_at));
    if let Some(at) = report.sent_at {
        item.insert("sent_at".to_owned(), millis(at));
    }
    item.insert("expires_at".to_owned(), millis(report.expires_at));
    item.insert(TTL_ATTRIBUTE.to_owned(), ttl_seconds(report.expires_at));
    item
}

/// The report. A problem names the attribute, never its value.
fn report_from_item(item: &Item) -> Result<LeadSafeReport, StoreError> {
    let reader = ItemReader::new("LeadSafe report", item);
    let sealed = SealedSsn::parse(reader.string("sealed")?)
        .map_err(|_| reader.corrupt("sealed", "a sealed SSN"))?;
    let day = |attribute: &str| -> Result<Option<NaiveDate>, StoreError> {
        reader
            .opt_string(attribute)?
            .map(|text| {
                NaiveDate::parse_from_str(text, DATE_FORMAT)
                    .map_err(|_| reader.corrupt(attribute, "a date"))
            })
            .transpose()
    };
    let source = match reader.string("source")? {
        "operator" => ReportSource::Operator,
        "buyer" => ReportSource::Buyer {
            destination: reader.string("destination")?.to_owned(),
            lead_id: reader.parse("lead_id")?,
        },
        _ => return Err(reader.corrupt("source", "`buyer` or `operator`")),
    };
    Ok(LeadSafeReport {
        id: reader.parse("report_id")?,
        sealed,
        reason: reader.parse("reason")?,
        start_date: day("start_date")?.ok_or_else(|| reader.corrupt("start_date", "a date"))?,
        end_date: day("end_date")?,
        source,
        reported_at: reader.time("reported_at")?,
        sent_at: reader.opt_time("sent_at")?,
        expires_at: reader.time("expires_at")?,
    })
}

impl DynamoStore {
    /// The reports of the index from `since` on, oldest first, not expired at `now`, that `keep` keeps,
    /// until there are `limit`: `Query`s of `gsi1`, paged.
    async fn query_reports(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: usize,
        unsent_only: bool,
    ) -> Result<Vec<LeadSafeReport>, StoreError> {
        let mut reports = Vec::new();
        let mut start: Option<Item> = None;
        while reports.len() < limit {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#gsi1pk = :reports AND #gsi1sk >= :since")
                .expression_attribute_names("#gsi1pk", "gsi1pk")
                .expression_attribute_names("#gsi1sk", "gsi1sk")
                .expression_attribute_names("#expires_at", "expires_at")
                .expression_attribute_values(":reports", string(REPORT_GSI1PK))
                .expression_attribute_values(":since", string(time_key(since)))
                .expression_attribute_values(":now", millis(now))
                .scan_index_forward(true)
                .limit(PAGE)
                .set_exclusive_start_key(start.take());
            query = if unsent_only {
                query
                    .filter_expression("#expires_at > :now AND attribute_not_exists(#sent_at)")
                    .expression_attribute_names("#sent_at", "sent_at")
            } else {
                query.filter_expression("#expires_at > :now")
            };
            let output = query
                .send()
                .await
                .map_err(|error| sdk_error("Query (LeadSafe reports)", &error))?;
            for item in output.items() {
                if reports.len() < limit {
                    reports.push(report_from_item(item)?);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(reports)
    }
}

#[async_trait]
impl LeadSafeReports for DynamoStore {
    async fn put_report(&self, report: &LeadSafeReport) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(report_to_item(report)))
            .send()
            .await
            .map_err(|error| sdk_error("PutItem (LeadSafe report)", &error))?;
        Ok(())
    }

    async fn mark_report_sent(&self, id: &ReportId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", string(report_pk(id)))
            .key("sk", string(REPORT_SK))
            .update_expression("SET #sent_at = :at")
            .condition_expression("attribute_exists(#pk) AND #expires_at > :at")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sent_at", "sent_at")
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_values(":at", millis(at))
            .send()
            .await;
        // A failed condition: no such report, or it has expired.
        applied(result, "UpdateItem (LeadSafe report sent)", |e| {
            e.is_conditional_check_failed_exception()
        })
    }

    async fn reports_since(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<LeadSafeReport>, StoreError> {
        self.query_reports(since, now, usize::MAX, false).await
    }

    async fn unsent_reports(
        &self,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<LeadSafeReport>, StoreError> {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        self.query_reports(epoch, now, limit, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::leadsafe::{LeadSafeRecord, Reason};
    use crate::crypto::SsnSealer;
    use crate::lead::LeadId;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).expect("valid time")
    }

    fn sealer() -> SsnSealer {
        SsnSealer::new(&"k".repeat(32)).expect("key")
    }

    fn report(source: ReportSource, end: Option<&str>) -> LeadSafeReport {
        let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date");
        let record = LeadSafeRecord::new(
            "219-09-9999",
            Reason::Lawsuit,
            day("2026-11-01"),
            end.map(day),
        )
        .expect("a record");
        LeadSafeReport::new(
            &sealer(),
            &record,
            source,
            at(1_700_000_123_456),
            std::time::Duration::from_secs(30 * 86_400),
        )
        .expect("a report")
    }

    #[test]
    fn report_items_round_trip_sort_by_time_and_hold_no_digits() {
        let lead_id = LeadId::generate(at(1_700_000_000_000));
        let buyer = ReportSource::Buyer {
            destination: "sonar".to_owned(),
            lead_id: lead_id.clone(),
        };
        let mut sent = report(buyer, Some("2026-12-01"));
        sent.sent_at = Some(at(1_700_000_200_000));
        let item = report_to_item(&sent);
        assert_eq!(item["pk"], string(format!("LSREPORT#{}", sent.id)));
        assert_eq!(item["sk"], string("REPORT"));
        assert_eq!(item["gsi1pk"], string("LSREPORT"));
        assert_eq!(item["gsi1sk"], string(format!("1700000123456#{}", sent.id)));
        assert_eq!(item["source"], string("buyer"));
        assert_eq!(item["lead_id"], string(lead_id.as_str()));
        assert_eq!(item["end_date"], string("2026-12-01"));
        // 30 days later, in seconds for TTL.
        assert_eq!(
            item["expires_at"],
            AttributeValue::N("1702592123456".into())
        );
        assert_eq!(item[TTL_ATTRIBUTE], AttributeValue::N("1702592124".into()));
        let text = format!("{item:?}");
        for digits in ["219099999", "219-09-9999"] {
            assert!(!text.contains(digits), "{text}");
        }
        assert_eq!(report_from_item(&item).expect("reads back"), sent);

        let operator = report(ReportSource::Operator, None);
        let item = report_to_item(&operator);
        for absent in ["end_date", "sent_at", "destination", "lead_id"] {
            assert!(!item.contains_key(absent), "{absent}");
        }
        assert_eq!(report_from_item(&item).expect("reads back"), operator);
        let opened = operator.to_record(&sealer()).expect("opens");
        assert_eq!(opened.ssn.expose(), "219099999");
    }

    #[test]
    fn unreadable_reports_name_the_attribute_not_the_value() {
        let mut item = report_to_item(&report(ReportSource::Operator, None));
        item.insert("sealed".to_owned(), string("v9:garbage-value"));
        let message = report_from_item(&item).expect_err("corrupt").to_string();
        assert!(message.contains("`sealed`"), "{message}");
        assert!(!message.contains("garbage-value"), "{message}");
        let mut item = report_to_item(&report(ReportSource::Operator, None));
        item.insert("source".to_owned(), string("partner"));
        let message = report_from_item(&item).expect_err("corrupt").to_string();
        assert!(message.contains("`source`"), "{message}");
        let mut item = report_to_item(&report(ReportSource::Operator, None));
        item.insert("reason".to_owned(), string("Fraud"));
        let message = report_from_item(&item).expect_err("corrupt").to_string();
        assert!(message.contains("`reason`"), "{message}");
    }
}
