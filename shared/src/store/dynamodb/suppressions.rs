//! [`Suppressions`] on the table: one item per record, `pk` `SUPPRESS#<kind>#<hash>`, sort key
//! `<reason>#<start_date>`, counted per kind through `gsi1` (the parent module's docs give the item and
//! the calls).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, Select, WriteRequest};
use chrono::NaiveDate;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::{built, sdk_error, string, DynamoStore, Item, ItemReader, GSI1};
use crate::store::{StoreError, SuppressionCounts, Suppressions};
use crate::suppression::{SuppressionKind, SuppressionRecord};

/// The most requests one `BatchWriteItem` may carry.
const BATCH_WRITE_ITEMS: usize = 25;
/// How many `BatchWriteItem`s of one call are in flight at once.
const BATCH_WRITES_IN_FLIGHT: usize = 4;
/// How often unprocessed items are sent again (with backoff) before giving up.
const BATCH_WRITE_ATTEMPTS: u32 = 8;
/// Dates as stored: ISO 8601, which orders lexically as it does in time.
const DATE_FORMAT: &str = "%Y-%m-%d";

fn suppression_pk(kind: SuppressionKind, hash: &str) -> String {
    format!("SUPPRESS#{}#{hash}", kind.as_str())
}

fn suppression_sk(record: &SuppressionRecord) -> String {
    format!("{}#{}", record.reason.as_str(), date(record.start_date))
}

/// The index partition of one kind's records.
fn suppression_gsi1pk(kind: SuppressionKind) -> String {
    format!("SUPPRESS#{}", kind.as_str())
}

fn date(day: NaiveDate) -> String {
    day.format(DATE_FORMAT).to_string()
}

fn key_of(record: &SuppressionRecord) -> (String, String) {
    (
        suppression_pk(record.kind, &record.hash),
        suppression_sk(record),
    )
}

fn suppression_to_item(record: &SuppressionRecord) -> Item {
    let (pk, sk) = key_of(record);
    let mut item = Item::new();
    item.insert("gsi1pk".to_owned(), string(suppression_gsi1pk(record.kind)));
    item.insert("gsi1sk".to_owned(), string(format!("{pk}#{sk}")));
    item.insert("pk".to_owned(), string(pk));
    item.insert("sk".to_owned(), string(sk));
    item.insert("reason".to_owned(), string(record.reason.as_str()));
    item.insert("start_date".to_owned(), string(date(record.start_date)));
    if let Some(end) = record.end_date {
        item.insert("end_date".to_owned(), string(date(end)));
    }
    item.insert("source".to_owned(), string(&record.source));
    item
}

fn suppression_from_item(item: &Item) -> Result<SuppressionRecord, StoreError> {
    let reader = ItemReader::new("suppression", item);
    let (kind, hash) = reader
        .string("pk")?
        .strip_prefix("SUPPRESS#")
        .and_then(|rest| rest.split_once('#'))
        .and_then(|(kind, hash)| Some((kind.parse::<SuppressionKind>().ok()?, hash)))
        .filter(|(_, hash)| !hash.is_empty())
        .ok_or_else(|| reader.corrupt("pk", "a suppression key"))?;
    let day = |attribute: &str| -> Result<Option<NaiveDate>, StoreError> {
        reader
            .opt_string(attribute)?
            .map(|text| {
                NaiveDate::parse_from_str(text, DATE_FORMAT)
                    .map_err(|_| reader.corrupt(attribute, "a date"))
            })
            .transpose()
    };
    Ok(SuppressionRecord {
        kind,
        hash: hash.to_owned(),
        reason: reader.parse("reason")?,
        start_date: day("start_date")?.ok_or_else(|| reader.corrupt("start_date", "a date"))?,
        end_date: day("end_date")?,
        source: reader.string("source")?.to_owned(),
    })
}

fn key_item(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), string(pk)), ("sk".to_owned(), string(sk))])
}

impl DynamoStore {
    /// One `BatchWriteItem` of at most [`BATCH_WRITE_ITEMS`] requests, sending unprocessed ones again with
    /// exponential backoff.
    async fn batch_write(
        &self,
        operation: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut pending = requests;
        let mut attempt = 0;
        while !pending.is_empty() {
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|error| sdk_error(operation, &error))?;
            pending = output
                .unprocessed_items
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .unwrap_or_default();
            if !pending.is_empty() {
                attempt += 1;
                if attempt >= BATCH_WRITE_ATTEMPTS {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB {operation}: {} items left unprocessed on every attempt",
                        pending.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
            }
        }
        Ok(())
    }

    /// `requests` in `BatchWriteItem`s of [`BATCH_WRITE_ITEMS`], a few at once.
    async fn batch_write_all(
        &self,
        operation: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut chunks = Vec::new();
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            chunks.push(
                requests
                    .by_ref()
                    .take(BATCH_WRITE_ITEMS)
                    .collect::<Vec<_>>(),
            );
        }
        stream::iter(chunks)
            .map(|chunk| self.batch_write(operation, chunk))
            .buffer_unordered(BATCH_WRITES_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// The keys of every record of one value (a consistent `Query`, paged).
    async fn suppression_items(
        &self,
        kind: SuppressionKind,
        hash: &str,
        keys_only: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", string(suppression_pk(kind, hash)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if keys_only {
                query = query
                    .projection_expression("#pk, #sk")
                    .expression_attribute_names("#sk", "sk");
            }
            let output = query
                .send()
                .await
                .map_err(|error| sdk_error("Query (suppressions)", &error))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// One kind's records and how many are active on `today`: a `Query` of `gsi1` with `Select=COUNT`,
    /// filtered on the dates (`ScannedCount` is every record, `Count` the active ones), paged.
    async fn count_kind(
        &self,
        kind: SuppressionKind,
        today: NaiveDate,
    ) -> Result<(u64, u64), StoreError> {
        let (mut records, mut active) = (0u64, 0u64);
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#gsi1pk = :kind")
                .filter_expression(
                    "#start_date <= :today AND (attribute_not_exists(#end_date) OR #end_date > :today)",
                )
                .expression_attribute_names("#gsi1pk", "gsi1pk")
                .expression_attribute_names("#start_date", "start_date")
                .expression_attribute_names("#end_date", "end_date")
                .expression_attribute_values(":kind", string(suppression_gsi1pk(kind)))
                .expression_attribute_values(":today", string(date(today)))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| sdk_error("Query (count suppressions)", &error))?;
            records += u64::try_from(output.scanned_count).unwrap_or(0);
            active += u64::try_from(output.count).unwrap_or(0);
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok((records, active)),
            }
        }
    }
}

#[async_trait]
impl Suppressions for DynamoStore {
    async fn put_suppressions(&self, records: &[SuppressionRecord]) -> Result<(), StoreError> {
        // BatchWriteItem refuses two requests for one key: the last record of each key is written.
        let mut last: HashMap<(String, String), usize> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            last.insert(key_of(record), index);
        }
        let mut requests = Vec::with_capacity(last.len());
        for (index, record) in records.iter().enumerate() {
            if last.get(&key_of(record)) != Some(&index) {
                continue;
            }
            let put = built(
                PutRequest::builder()
                    .set_item(Some(suppression_to_item(record)))
                    .build(),
            )?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write_all("BatchWriteItem (put suppressions)", requests)
            .await
    }

    async fn find_suppressions(
        &self,
        kind: SuppressionKind,
        hash: &str,
    ) -> Result<Vec<SuppressionRecord>, StoreError> {
        self.suppression_items(kind, hash, false)
            .await?
            .iter()
            .map(suppression_from_item)
            .collect()
    }

    async fn remove_suppressions(
        &self,
        kind: SuppressionKind,
        hash: &str,
    ) -> Result<usize, StoreError> {
        let items = self.suppression_items(kind, hash, true).await?;
        let mut requests = Vec::with_capacity(items.len());
        for item in &items {
            let reader = ItemReader::new("suppression", item);
            let key = key_item(
                reader.string("pk")?.to_owned(),
                reader.string("sk")?.to_owned(),
            );
            let delete = built(DeleteRequest::builder().set_key(Some(key)).build())?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.batch_write_all("BatchWriteItem (remove suppressions)", requests)
            .await?;
        Ok(items.len())
    }

    async fn suppression_counts(&self, today: NaiveDate) -> Result<SuppressionCounts, StoreError> {
        let mut counts = SuppressionCounts::default();
        for kind in SuppressionKind::ALL {
            let (records, active) = self.count_kind(kind, today).await?;
            *counts.of_mut(kind) = crate::store::KindCounts { records, active };
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suppression::SuppressionReason;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, DATE_FORMAT).expect("a date")
    }

    fn record() -> SuppressionRecord {
        SuppressionRecord {
            kind: SuppressionKind::Email,
            hash: "ab".repeat(32),
            reason: SuppressionReason::OptOut,
            start_date: day("2024-01-05"),
            end_date: Some(day("2024-02-12")),
            source: "exampleco".to_owned(),
        }
    }

    #[test]
    fn items_have_the_documented_keys_and_round_trip() {
        let record = record();
        let item = suppression_to_item(&record);
        let pk = format!("SUPPRESS#email#{}", "ab".repeat(32));
        assert_eq!(item["pk"], string(&pk));
        assert_eq!(item["sk"], string("OptOut#2024-01-05"));
        assert_eq!(item["gsi1pk"], string("SUPPRESS#email"));
        assert_eq!(item["gsi1sk"], string(format!("{pk}#OptOut#2024-01-05")));
        assert_eq!(item["reason"], string("OptOut"));
        assert_eq!(item["start_date"], string("2024-01-05"));
        assert_eq!(item["end_date"], string("2024-02-12"));
        assert_eq!(item["source"], string("exampleco"));
        assert_eq!(suppression_from_item(&item).expect("reads back"), record);

        let open = SuppressionRecord {
            end_date: None,
            ..record
        };
        let item = suppression_to_item(&open);
        assert!(!item.contains_key("end_date"));
        assert_eq!(suppression_from_item(&item).expect("reads back"), open);
    }

    #[test]
    fn unreadable_items_name_the_attribute() {
        for (attribute, value, named) in [
            ("pk", string("SUPPRESS#fax#abc"), "`pk`"),
            ("pk", string("SUPPRESS#email#"), "`pk`"),
            ("reason", string("Fraud"), "`reason`"),
            ("start_date", string("05/01/2024"), "`start_date`"),
            ("end_date", AttributeValue::N("1".to_owned()), "`end_date`"),
        ] {
            let mut item = suppression_to_item(&record());
            item.insert(attribute.to_owned(), value);
            let message = suppression_from_item(&item)
                .expect_err("corrupt")
                .to_string();
            assert!(message.contains("suppression item"), "{message}");
            assert!(message.contains(named), "{message}");
        }
    }
}
