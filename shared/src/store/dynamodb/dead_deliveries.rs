//! [`DeadDeliveries`] on the table: one marker item per dead delivery, `pk` `DEAD#<leadId>#<destination>`,
//! sort key `DEAD`, listed by time through `gsi1` (the parent module's docs give the item and the calls).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{
    applied, millis, number, sdk_error, string, ttl_seconds, DynamoStore, Item, ItemReader, GSI1,
    TTL_ATTRIBUTE,
};
use crate::lead::LeadId;
use crate::store::{DeadDeliveries, DeadDelivery, StoreError};

const DEAD_SK: &str = "DEAD";
/// The index partition every marker is in.
const DEAD_GSI1PK: &str = "DEAD";
/// The most items one `Query` page asks for.
const PAGE: usize = 500;

fn dead_pk(lead_id: &LeadId, destination: &str) -> String {
    format!("DEAD#{lead_id}#{destination}")
}

/// `<died-at millis, 13 digits>`: the index sort key's time part, which orders lexically as it does in time
/// (13 digits last until the year 2286; times before 1970 count as 1970).
pub(super) fn time_key(at: DateTime<Utc>) -> String {
    format!("{:013}", at.timestamp_millis().max(0))
}

/// `gsi1sk`: `<died-at millis>#<leadId>#<destination>`, so the index lists markers by time.
fn dead_gsi1sk(dead: &DeadDelivery) -> String {
    format!(
        "{}#{}#{}",
        time_key(dead.died_at),
        dead.lead_id,
        dead.destination
    )
}

fn dead_to_item(dead: &DeadDelivery) -> Item {
    let mut item = Item::new();
    item.insert(
        "pk".to_owned(),
        string(dead_pk(&dead.lead_id, &dead.destination)),
    );
    item.insert("sk".to_owned(), string(DEAD_SK));
    item.insert("gsi1pk".to_owned(), string(DEAD_GSI1PK));
    item.insert("gsi1sk".to_owned(), string(dead_gsi1sk(dead)));
    item.insert("lead_id".to_owned(), string(dead.lead_id.as_str()));
    item.insert("destination".to_owned(), string(&dead.destination));
    item.insert("died_at".to_owned(), millis(dead.died_at));
    item.insert("attempts".to_owned(), number(dead.attempts));
    item.insert("code".to_owned(), string(&dead.code));
    item.insert("reason".to_owned(), string(&dead.reason));
    if let Some(at) = dead.expires_at {
        item.insert("expires_at".to_owned(), millis(at));
        item.insert(TTL_ATTRIBUTE.to_owned(), ttl_seconds(at));
    }
    item
}

fn dead_from_item(item: &Item) -> Result<DeadDelivery, StoreError> {
    let reader = ItemReader::new("dead delivery", item);
    Ok(DeadDelivery {
        lead_id: reader.parse("lead_id")?,
        destination: reader.string("destination")?.to_owned(),
        died_at: reader.time("died_at")?,
        attempts: reader.parse("attempts")?,
        code: reader.string("code")?.to_owned(),
        reason: reader.string("reason")?.to_owned(),
        expires_at: reader.opt_time("expires_at")?,
    })
}

#[async_trait]
impl DeadDeliveries for DynamoStore {
    async fn record(&self, dead: &DeadDelivery) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(dead_to_item(dead)))
            .condition_expression("attribute_not_exists(#pk) OR #died_at <= :died_at")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#died_at", "died_at")
            .expression_attribute_values(":died_at", millis(dead.died_at))
            .send()
            .await;
        // A failed condition: the marker records a later death, which stays.
        applied(result, "PutItem (dead delivery)", |e| {
            e.is_conditional_check_failed_exception()
        })?;
        Ok(())
    }

    async fn list(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeadDelivery>, StoreError> {
        let mut listed = Vec::new();
        let now = Utc::now();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        while listed.len() < limit {
            let page = i32::try_from((limit - listed.len()).min(PAGE)).unwrap_or(1);
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#gsi1pk = :dead AND #gsi1sk >= :since")
                .expression_attribute_names("#gsi1pk", "gsi1pk")
                .expression_attribute_names("#gsi1sk", "gsi1sk")
                .expression_attribute_values(":dead", string(DEAD_GSI1PK))
                .expression_attribute_values(":since", string(time_key(since)))
                .scan_index_forward(false)
                .limit(page)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| sdk_error("Query (dead deliveries)", &error))?;
            for item in output.items() {
                let dead = dead_from_item(item)?;
                // DynamoDB's TTL is lazy: an expired marker may still be there.
                if dead.expires_at.is_none_or(|at| at > now) && listed.len() < limit {
                    listed.push(dead);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(listed)
    }

    async fn remove(
        &self,
        lead_id: &LeadId,
        destination: &str,
        died_by: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", string(dead_pk(lead_id, destination)))
            .key("sk", string(DEAD_SK))
            .condition_expression("#died_at <= :died_by")
            .expression_attribute_names("#died_at", "died_at")
            .expression_attribute_values(":died_by", millis(died_by))
            .send()
            .await;
        // A failed condition: no marker, or one of a later death, which stays.
        applied(result, "DeleteItem (dead delivery)", |e| {
            e.is_conditional_check_failed_exception()
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).expect("valid time")
    }

    fn dead() -> DeadDelivery {
        DeadDelivery {
            lead_id: LeadId::generate(at(1_700_000_000_000)),
            destination: "dest #1".to_owned(),
            died_at: at(1_700_000_123_456),
            attempts: 3,
            code: "http_500".to_owned(),
            reason: "gave up after 3 attempts: HTTP 500".to_owned(),
            expires_at: Some(at(1_800_000_000_500)),
        }
    }

    #[test]
    fn marker_items_round_trip_and_sort_by_time() {
        let dead = dead();
        let item = dead_to_item(&dead);
        assert_eq!(item["pk"], string(format!("DEAD#{}#dest #1", dead.lead_id)));
        assert_eq!(item["gsi1pk"], string("DEAD"));
        assert_eq!(
            item["gsi1sk"],
            string(format!("1700000123456#{}#dest #1", dead.lead_id))
        );
        assert_eq!(
            item[TTL_ATTRIBUTE],
            AttributeValue::N("1800000001".to_owned())
        );
        assert_eq!(dead_from_item(&item).expect("reads back"), dead);

        let mut forever = dead.clone();
        forever.expires_at = None;
        let item = dead_to_item(&forever);
        assert!(!item.contains_key(TTL_ATTRIBUTE));
        assert_eq!(dead_from_item(&item).expect("reads back"), forever);

        // Zero-padded: an earlier time with fewer digits still sorts first.
        assert!(time_key(at(999)) < time_key(at(1_000)));
        assert_eq!(time_key(at(-5)), "0000000000000");
    }

    #[test]
    fn unreadable_markers_name_the_attribute() {
        let mut item = dead_to_item(&dead());
        item.insert("attempts".to_owned(), string("many"));
        let message = dead_from_item(&item).expect_err("corrupt").to_string();
        assert!(message.contains("dead delivery item"), "{message}");
        assert!(message.contains("`attempts`"), "{message}");
    }
}
