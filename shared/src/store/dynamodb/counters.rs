//! [`Counters`] on the table: one item per key, sort key `COUNTER` (the parent module's docs give the items
//! and the writes).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{
    applied, built, millis, number, sdk_error, string, ttl_seconds, DynamoStore, Item, ItemReader,
    MAX_ATTEMPTS, TTL_ATTRIBUTE,
};
use crate::store::{Counters, Reservation, StoreError};

const COUNTER_SK: &str = "COUNTER";

/// The most keys one `BatchGetItem` may ask for.
const BATCH_GET_KEYS: usize = 100;

/// How often `BatchGetItem`'s unprocessed keys are asked for again (with backoff) before giving up.
const BATCH_GET_ATTEMPTS: u32 = 6;

/// What the `holders` set stores for `holder`: the first 96 bits of its SHA-256, base64url (16
/// characters). Holders of any length then cost 16 bytes each, so a counter of
/// [`MAX_CAP`](crate::store::counters::MAX_CAP) holders stays near 160 KB, well below DynamoDB's 400 KB item
/// limit (`<leadId>#<destination>` itself can be 96 bytes). Two holders of one full counter sharing a
/// digest is a chance of about 1 in 10^21.
fn holder_member(holder: &str) -> String {
    let digest = Sha256::digest(holder.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// A cap counter item as read back.
struct CounterItem {
    count: u64,
    members: Vec<String>,
    expires_at: DateTime<Utc>,
}

impl CounterItem {
    fn read(item: &Item) -> Result<CounterItem, StoreError> {
        let reader = ItemReader::new("counter", item);
        // DynamoDB keeps no empty sets: the last holder released removes the attribute.
        let members = match item.get("holders") {
            None => Vec::new(),
            Some(AttributeValue::Ss(members)) => members.clone(),
            Some(_) => return Err(reader.corrupt("holders", "a string set")),
        };
        Ok(CounterItem {
            count: reader.parse("count")?,
            members,
            expires_at: reader.time("expires_at")?,
        })
    }
}

impl DynamoStore {
    /// Count `member` on a counter that does not exist or is live with room, and not counting it already.
    /// A new counter expires at `expires_at`; a live one keeps its expiry.
    async fn add_member(
        &self,
        key: &str,
        member: &str,
        limit: u64,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", string(key))
            .key("sk", string(COUNTER_SK))
            .condition_expression(
                "(attribute_not_exists(#pk) OR (#count < :limit AND #expires_at > :now)) \
                 AND NOT contains(#holders, :member)",
            )
            .update_expression(
                "ADD #count :one, #holders :members \
                 SET #expires_at = if_not_exists(#expires_at, :expires_at), #ttl = if_not_exists(#ttl, :ttl)",
            )
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#holders", "holders")
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":limit", number(limit))
            .expression_attribute_values(":now", millis(now))
            .expression_attribute_values(":member", string(member))
            .expression_attribute_values(":members", AttributeValue::Ss(vec![member.to_owned()]))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":expires_at", millis(expires_at))
            .expression_attribute_values(":ttl", ttl_seconds(expires_at))
            .send()
            .await;
        applied(result, "UpdateItem (reserve counter)", |e| {
            e.is_conditional_check_failed_exception()
        })
    }

    /// Start an expired counter afresh with `member` alone: an overwrite guarded by the expiry, so of
    /// racing restarts one applies and the others find a live counter.
    async fn restart_counter(
        &self,
        key: &str,
        member: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", string(key))
            .key("sk", string(COUNTER_SK))
            .condition_expression("#expires_at <= :now")
            .update_expression(
                "SET #holders = :members, #count = :one, #expires_at = :expires_at, #ttl = :ttl",
            )
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#holders", "holders")
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", millis(now))
            .expression_attribute_values(":members", AttributeValue::Ss(vec![member.to_owned()]))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":expires_at", millis(expires_at))
            .expression_attribute_values(":ttl", ttl_seconds(expires_at))
            .send()
            .await;
        applied(result, "UpdateItem (restart expired counter)", |e| {
            e.is_conditional_check_failed_exception()
        })
    }

    /// One `BatchGetItem` of at most [`BATCH_GET_KEYS`] counters, asking again for unprocessed keys; the
    /// live ones' counts go into `counts`.
    async fn read_counts(
        &self,
        keys: &[&String],
        now: DateTime<Utc>,
        counts: &mut BTreeMap<String, u64>,
    ) -> Result<(), StoreError> {
        let mut request = KeysAndAttributes::builder()
            .consistent_read(true)
            .projection_expression("#pk, #count, #expires_at")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#expires_at", "expires_at");
        for key in keys {
            request = request.keys(HashMap::from([
                ("pk".to_owned(), string(key.as_str())),
                ("sk".to_owned(), string(COUNTER_SK)),
            ]));
        }
        let mut pending = Some(built(request.build())?);
        let mut attempt = 0;
        while let Some(request) = pending.take() {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|error| sdk_error("BatchGetItem (counters)", &error))?;
            let items = output
                .responses
                .and_then(|mut responses| responses.remove(&self.table))
                .unwrap_or_default();
            for item in &items {
                let reader = ItemReader::new("counter", item);
                let key = reader.string("pk")?;
                if reader.time("expires_at")? <= now {
                    continue;
                }
                if let Some(count) = counts.get_mut(key) {
                    *count = reader.parse("count")?;
                }
            }
            pending = output
                .unprocessed_keys
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .filter(|request| !request.keys().is_empty());
            if pending.is_some() {
                attempt += 1;
                if attempt >= BATCH_GET_ATTEMPTS {
                    return Err(StoreError::Unavailable(
                        "DynamoDB BatchGetItem (counters): keys left unprocessed on every attempt"
                            .to_owned(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Counters for DynamoStore {
    async fn reserve(
        &self,
        key: &str,
        holder: &str,
        limit: u64,
        expires_at: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        let member = holder_member(holder);
        for _ in 0..MAX_ATTEMPTS {
            let now = Utc::now();
            // A limit of 0 admits no one: only the read below can answer (`Reserved` for a holder counted
            // before the limit came down).
            if limit > 0
                && self
                    .add_member(key, &member, limit, expires_at, now)
                    .await?
            {
                return Ok(Reservation::Reserved);
            }
            // The holder is counted already, the counter is full or has expired, or (limit 0) unknown.
            let Some(item) = self
                .get_item("GetItem (counter)", key.to_owned(), COUNTER_SK)
                .await?
            else {
                if limit == 0 {
                    return Ok(Reservation::Full { used: 0 });
                }
                continue; // removed by TTL since: try again
            };
            let counter = CounterItem::read(&item)?;
            if counter.expires_at > now {
                if counter.members.contains(&member) {
                    return Ok(Reservation::Reserved);
                }
                if counter.count >= limit {
                    return Ok(Reservation::Full {
                        used: counter.count,
                    });
                }
                continue; // a place was released since: try again
            }
            // Expired (DynamoDB's TTL is lazy): its holders no longer count.
            if limit == 0 {
                return Ok(Reservation::Full { used: 0 });
            }
            if self.restart_counter(key, &member, expires_at, now).await? {
                return Ok(Reservation::Reserved);
            }
        }
        Err(StoreError::Unavailable(
            "DynamoDB UpdateItem (reserve counter): the counter changed on every attempt"
                .to_owned(),
        ))
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let member = holder_member(holder);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", string(key))
            .key("sk", string(COUNTER_SK))
            .condition_expression("contains(#holders, :member)")
            .update_expression("ADD #count :minus_one DELETE #holders :members")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#holders", "holders")
            .expression_attribute_values(":member", string(member.as_str()))
            .expression_attribute_values(":members", AttributeValue::Ss(vec![member]))
            .expression_attribute_values(":minus_one", number(-1))
            .send()
            .await;
        // Not held (or no such counter): nothing to release.
        applied(result, "UpdateItem (release counter)", |e| {
            e.is_conditional_check_failed_exception()
        })?;
        Ok(())
    }

    async fn counts(&self, keys: &[String]) -> Result<BTreeMap<String, u64>, StoreError> {
        // Every key, once (BatchGetItem refuses duplicates), 0 until read live.
        let mut counts: BTreeMap<String, u64> = keys.iter().map(|key| (key.clone(), 0)).collect();
        let unique: Vec<String> = counts.keys().cloned().collect();
        let now = Utc::now();
        for chunk in unique.chunks(BATCH_GET_KEYS) {
            let chunk: Vec<&String> = chunk.iter().collect();
            self.read_counts(&chunk, now, &mut counts).await?;
        }
        Ok(counts)
    }

    async fn next_sequence(&self, key: &str) -> Result<u64, StoreError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", string(key))
            .key("sk", string(COUNTER_SK))
            .update_expression("ADD #seq :one")
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_values(":one", number(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|error| sdk_error("UpdateItem (next sequence)", &error))?;
        let attributes = output.attributes.unwrap_or_default();
        let reader = ItemReader::new("sequence", &attributes);
        let taken: u64 = reader.parse("seq")?;
        // The first call makes it 1 and answers 0.
        taken
            .checked_sub(1)
            .ok_or_else(|| reader.corrupt("seq", "a positive whole number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_members_are_short_fixed_and_distinct() {
        let long = format!("lead_01JCZ0000000000000000000000#{}", "d".repeat(64));
        let members: Vec<String> = ["a", "b", long.as_str(), "lead_x#dest", "lead_x#dest2"]
            .into_iter()
            .map(holder_member)
            .collect();
        assert!(members.iter().all(|member| member.len() == 16));
        assert_eq!(holder_member(&long), members[2], "deterministic");
        let mut distinct = members.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), members.len());
    }

    #[test]
    fn counter_items_read_back_and_name_bad_attributes() {
        let mut item = Item::new();
        item.insert("pk".to_owned(), string("CAP#d#day:2026-12-02"));
        item.insert("sk".to_owned(), string(COUNTER_SK));
        item.insert("count".to_owned(), number(2));
        item.insert(
            "holders".to_owned(),
            AttributeValue::Ss(vec!["x".to_owned(), "y".to_owned()]),
        );
        item.insert("expires_at".to_owned(), number(1_800_000_000_000_i64));
        let counter = CounterItem::read(&item).expect("reads");
        assert_eq!(counter.count, 2);
        assert_eq!(counter.members, ["x", "y"]);
        item.remove("holders");
        assert!(CounterItem::read(&item).expect("reads").members.is_empty());
        item.insert("holders".to_owned(), string("x"));
        let message = CounterItem::read(&item).err().expect("corrupt").to_string();
        assert!(message.contains("`holders`"), "{message}");
    }
}
