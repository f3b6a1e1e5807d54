//! [`SealedSsns`] on the table: one item per lead, `pk` `SSN#<leadId>`, sort key `SEALED` (the parent
//! module's docs give the item and the calls).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{millis, sdk_error, string, ttl_seconds, DynamoStore, Item, ItemReader, TTL_ATTRIBUTE};
use crate::crypto::SealedSsn;
use crate::lead::LeadId;
use crate::store::{SealedSsns, StoreError};

const SEALED_SK: &str = "SEALED";

fn sealed_pk(lead: &LeadId) -> String {
    format!("SSN#{lead}")
}

fn sealed_to_item(lead: &LeadId, sealed: &SealedSsn, expires_at: DateTime<Utc>) -> Item {
    let mut item = Item::new();
    item.insert("pk".to_owned(), string(sealed_pk(lead)));
    item.insert("sk".to_owned(), string(SEALED_SK));
    item.insert("sealed".to_owned(), string(sealed.to_stored()));
    item.insert("expires_at".to_owned(), millis(expires_at));
    item.insert(TTL_ATTRIBUTE.to_owned(), ttl_seconds(expires_at));
    item
}

/// The sealed SSN and its expiry. A problem names the attribute, never its value.
fn sealed_from_item(item: &Item) -> Result<(SealedSsn, DateTime<Utc>), StoreError> {
    let reader = ItemReader::new("sealed SSN", item);
    let sealed = SealedSsn::parse(reader.string("sealed")?).map_err(|_| {
        StoreError::Corrupt("sealed SSN item: attribute `sealed` is not a sealed SSN".to_owned())
    })?;
    Ok((sealed, reader.time("expires_at")?))
}

#[async_trait]
impl SealedSsns for DynamoStore {
    async fn put_sealed_ssn(
        &self,
        lead: &LeadId,
        sealed: &SealedSsn,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(sealed_to_item(lead, sealed, expires_at)))
            .send()
            .await
            .map_err(|error| sdk_error("PutItem (sealed SSN)", &error))?;
        Ok(())
    }

    async fn get_sealed_ssn(
        &self,
        lead: &LeadId,
        now: DateTime<Utc>,
    ) -> Result<Option<SealedSsn>, StoreError> {
        let Some(item) = self
            .get_item("GetItem (sealed SSN)", sealed_pk(lead), SEALED_SK)
            .await?
        else {
            return Ok(None);
        };
        // DynamoDB's TTL is lazy: an expired item may still be there.
        let (sealed, expires_at) = sealed_from_item(&item)?;
        Ok((expires_at > now).then_some(sealed))
    }

    async fn delete_sealed_ssn(&self, lead: &LeadId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", string(sealed_pk(lead)))
            .key("sk", string(SEALED_SK))
            .send()
            .await
            .map_err(|error| sdk_error("DeleteItem (sealed SSN)", &error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).expect("valid time")
    }

    #[test]
    fn sealed_items_round_trip_and_hold_no_digits() {
        let lead = LeadId::generate(at(1_700_000_000_000));
        let sealer = crate::crypto::SsnSealer::new(&"k".repeat(32)).expect("key");
        let sealed = sealer.seal(lead.as_str(), "219099999");
        let item = sealed_to_item(&lead, &sealed, at(1_700_086_400_500));
        assert_eq!(item["pk"], string(format!("SSN#{lead}")));
        assert_eq!(item["sk"], string("SEALED"));
        assert_eq!(
            item["expires_at"],
            AttributeValue::N("1700086400500".into())
        );
        assert_eq!(item[TTL_ATTRIBUTE], AttributeValue::N("1700086401".into()));
        assert!(!format!("{item:?}").contains("219099999"));
        let (read, expires_at) = sealed_from_item(&item).expect("reads back");
        assert_eq!((read, expires_at), (sealed, at(1_700_086_400_500)));
    }

    #[test]
    fn unreadable_items_name_the_attribute_not_the_value() {
        let lead = LeadId::generate(at(1_700_000_000_000));
        let sealer = crate::crypto::SsnSealer::new(&"k".repeat(32)).expect("key");
        let mut item = sealed_to_item(&lead, &sealer.seal(lead.as_str(), "219099999"), at(0));
        item.insert("sealed".to_owned(), string("v9:garbage-value"));
        let message = sealed_from_item(&item).expect_err("corrupt").to_string();
        assert!(message.contains("`sealed`"), "{message}");
        assert!(!message.contains("garbage-value"), "{message}");
        item.remove("expires_at");
        item.insert(
            "sealed".to_owned(),
            string(sealer.seal("x", "1").to_stored()),
        );
        let message = sealed_from_item(&item).expect_err("corrupt").to_string();
        assert!(message.contains("`expires_at`"), "{message}");
    }
}
