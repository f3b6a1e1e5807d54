//! [`BuyerRefs`] on the table: one item per (destination, buyer reference, lead), `pk`
//! `BUYERREF#<destination>#<buyerRef>`, sort key the lead id, so that one consistent `Query` of the partition
//! answers every lead a reference maps to, newest first (the parent module's docs give the item).

use async_trait::async_trait;
use chrono::Utc;

use super::{millis, sdk_error, string, ttl_seconds, DynamoStore, Item, ItemReader, TTL_ATTRIBUTE};
use crate::lead::LeadId;
use crate::store::{BuyerRef, BuyerRefs, StoreError};

/// `BUYERREF#<destination>#<buyerRef>`: destination ids hold no `#`, so the first one after the prefix
/// ends the destination whatever the reference holds.
fn buyer_ref_pk(destination: &str, buyer_ref: &str) -> String {
    format!("BUYERREF#{destination}#{buyer_ref}")
}

fn entry_to_item(entry: &BuyerRef) -> Item {
    let mut item = Item::new();
    item.insert(
        "pk".to_owned(),
        string(buyer_ref_pk(&entry.destination, &entry.buyer_ref)),
    );
    item.insert("sk".to_owned(), string(entry.lead_id.as_str()));
    item.insert("destination".to_owned(), string(&entry.destination));
    item.insert("buyer_ref".to_owned(), string(&entry.buyer_ref));
    item.insert("lead_id".to_owned(), string(entry.lead_id.as_str()));
    if let Some(at) = entry.expires_at {
        item.insert("expires_at".to_owned(), millis(at));
        item.insert(TTL_ATTRIBUTE.to_owned(), ttl_seconds(at));
    }
    item
}

#[async_trait]
impl BuyerRefs for DynamoStore {
    async fn record_buyer_ref(&self, entry: &BuyerRef) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(entry_to_item(entry)))
            .send()
            .await
            .map_err(|error| sdk_error("PutItem (buyer reference)", &error))?;
        Ok(())
    }

    async fn leads_for_buyer_ref(
        &self,
        destination: &str,
        buyer_ref: &str,
        limit: usize,
    ) -> Result<Vec<LeadId>, StoreError> {
        let mut leads = Vec::new();
        let mut start = None;
        while leads.len() < limit {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .filter_expression("attribute_not_exists(#expires_at) OR #expires_at > :now")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#expires_at", "expires_at")
                .expression_attribute_values(":pk", string(buyer_ref_pk(destination, buyer_ref)))
                .expression_attribute_values(":now", millis(Utc::now()))
                .consistent_read(true)
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| sdk_error("Query (buyer reference)", &error))?;
            for item in output.items() {
                if leads.len() < limit {
                    leads.push(ItemReader::new("buyer reference", item).parse("lead_id")?);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(leads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn entry_items_have_the_documented_keys() {
        let at = DateTime::from_timestamp_millis(1_800_000_000_500).expect("a time");
        let lead_id = LeadId::generate(at);
        let entry = BuyerRef {
            destination: "lofty".to_owned(),
            buyer_ref: "42#x".to_owned(),
            lead_id: lead_id.clone(),
            expires_at: Some(at),
        };
        let item = entry_to_item(&entry);
        assert_eq!(item["pk"], string("BUYERREF#lofty#42#x"));
        assert_eq!(item["sk"], string(lead_id.as_str()));
        assert_eq!(
            item[TTL_ATTRIBUTE],
            aws_sdk_dynamodb::types::AttributeValue::N("1800000001".to_owned())
        );
        let reader = ItemReader::new("buyer reference", &item);
        assert_eq!(reader.parse::<LeadId>("lead_id").expect("reads"), lead_id);
    }
}
