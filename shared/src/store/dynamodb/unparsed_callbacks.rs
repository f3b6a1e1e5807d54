//! [`UnparsedCallbacks`] on the table: one item per callback, `pk` `UNPARSED#<callbackId>`, sort key
//! `UNPARSED`, listed by time through `gsi1` (the parent module's docs give the item and the calls). The body
//! is a binary attribute, as it came: it may hold PII and is never logged.

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::dead_deliveries::time_key;
use super::{
    millis, number, sdk_error, string, ttl_seconds, DynamoStore, Item, ItemReader, GSI1,
    TTL_ATTRIBUTE,
};
use crate::store::{StoreError, UnparsedCallback, UnparsedCallbackId, UnparsedCallbacks};

const UNPARSED_SK: &str = "UNPARSED";
/// The index partition every unparsed callback is in.
const UNPARSED_GSI1PK: &str = "UNPARSED";
/// The most items one `Query` page asks for (items hold up to 64 KiB: a page is at most 1 MB anyway).
const PAGE: i32 = 100;

fn unparsed_pk(id: &UnparsedCallbackId) -> String {
    format!("UNPARSED#{id}")
}

fn unparsed_to_item(callback: &UnparsedCallback) -> Item {
    let mut item = Item::new();
    item.insert("pk".to_owned(), string(unparsed_pk(&callback.id)));
    item.insert("sk".to_owned(), string(UNPARSED_SK));
    item.insert("gsi1pk".to_owned(), string(UNPARSED_GSI1PK));
    item.insert(
        "gsi1sk".to_owned(),
        string(format!(
            "{}#{}",
            time_key(callback.received_at),
            callback.id
        )),
    );
    item.insert("callback_id".to_owned(), string(callback.id.as_str()));
    item.insert("destination".to_owned(), string(&callback.destination));
    if let Some(lead_id) = &callback.lead_id {
        item.insert("lead_id".to_owned(), string(lead_id.as_str()));
    }
    if let Some(content_type) = &callback.content_type {
        item.insert("content_type".to_owned(), string(content_type));
    }
    item.insert("size".to_owned(), number(callback.size));
    item.insert(
        "body".to_owned(),
        AttributeValue::B(Blob::new(callback.body.clone())),
    );
    item.insert("problem".to_owned(), string(&callback.problem));
    item.insert("received_at".to_owned(), millis(callback.received_at));
    item.insert("expires_at".to_owned(), millis(callback.expires_at));
    item.insert(TTL_ATTRIBUTE.to_owned(), ttl_seconds(callback.expires_at));
    item
}

/// The callback. A problem names the attribute, never its value.
fn unparsed_from_item(item: &Item) -> Result<UnparsedCallback, StoreError> {
    let reader = ItemReader::new("unparsed callback", item);
    let body = match item.get("body") {
        Some(AttributeValue::B(blob)) => blob.as_ref().to_vec(),
        _ => return Err(reader.corrupt("body", "binary")),
    };
    Ok(UnparsedCallback {
        id: reader.parse("callback_id")?,
        received_at: reader.time("received_at")?,
        destination: reader.string("destination")?.to_owned(),
        lead_id: match reader.opt_string("lead_id")? {
            Some(_) => Some(reader.parse("lead_id")?),
            None => None,
        },
        content_type: reader.opt_string("content_type")?.map(str::to_owned),
        size: reader.parse("size")?,
        body,
        problem: reader.string("problem")?.to_owned(),
        expires_at: reader.time("expires_at")?,
    })
}

#[async_trait]
impl UnparsedCallbacks for DynamoStore {
    async fn put_unparsed(&self, callback: &UnparsedCallback) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(unparsed_to_item(callback)))
            .send()
            .await
            .map_err(|error| sdk_error("PutItem (unparsed callback)", &error))?;
        Ok(())
    }

    async fn list_unparsed(
        &self,
        since: DateTime<Utc>,
        destination: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<UnparsedCallback>, StoreError> {
        let mut listed = Vec::new();
        let mut start: Option<Item> = None;
        while listed.len() < limit {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#gsi1pk = :unparsed AND #gsi1sk >= :since")
                .expression_attribute_names("#gsi1pk", "gsi1pk")
                .expression_attribute_names("#gsi1sk", "gsi1sk")
                .expression_attribute_names("#expires_at", "expires_at")
                .expression_attribute_values(":unparsed", string(UNPARSED_GSI1PK))
                .expression_attribute_values(":since", string(time_key(since)))
                .expression_attribute_values(":now", millis(now))
                .scan_index_forward(false)
                .limit(PAGE)
                .set_exclusive_start_key(start.take());
            query = match destination {
                Some(destination) => query
                    .filter_expression("#expires_at > :now AND #destination = :destination")
                    .expression_attribute_names("#destination", "destination")
                    .expression_attribute_values(":destination", string(destination)),
                None => query.filter_expression("#expires_at > :now"),
            };
            let output = query
                .send()
                .await
                .map_err(|error| sdk_error("Query (unparsed callbacks)", &error))?;
            for item in output.items() {
                if listed.len() < limit {
                    listed.push(unparsed_from_item(item)?);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::LeadId;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).expect("valid time")
    }

    #[test]
    fn unparsed_items_round_trip_and_sort_by_time() {
        let lead_id = LeadId::generate(at(1_700_000_000_000));
        let callback = UnparsedCallback::new(
            "ntherm",
            Some(lead_id.clone()),
            Some("text/plain"),
            b"success_bit=1",
            "not_json",
            at(1_700_000_123_456),
        );
        let item = unparsed_to_item(&callback);
        assert_eq!(item["pk"], string(format!("UNPARSED#{}", callback.id)));
        assert_eq!(item["gsi1pk"], string("UNPARSED"));
        assert_eq!(
            item["gsi1sk"],
            string(format!("1700000123456#{}", callback.id))
        );
        assert_eq!(item["lead_id"], string(lead_id.as_str()));
        assert!(
            matches!(&item["body"], AttributeValue::B(blob) if blob.as_ref() == b"success_bit=1"),
            "the body is binary, as sent"
        );
        assert_eq!(unparsed_from_item(&item).expect("reads back"), callback);

        let bare = UnparsedCallback::new("ntherm", None, None, b"", "unknown_shape", at(5));
        let item = unparsed_to_item(&bare);
        assert!(!item.contains_key("lead_id") && !item.contains_key("content_type"));
        assert_eq!(unparsed_from_item(&item).expect("reads back"), bare);

        let mut broken = unparsed_to_item(&callback);
        broken.insert("body".to_owned(), string("text"));
        let message = unparsed_from_item(&broken)
            .expect_err("corrupt")
            .to_string();
        assert!(message.contains("`body`"), "{message}");
    }
}
