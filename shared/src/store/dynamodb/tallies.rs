//! [`DeliveryTallies`] on the table: one item per destination and day, `pk` `TALLY#<destination>#<day>`,
//! sort key `TALLY`, each count an atomic `ADD`, listed by day through `gsi1` (the parent module's docs give
//! the item and the calls).

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};

use super::{
    millis, number, sdk_error, string, ttl_seconds, DynamoStore, Item, ItemReader, GSI1,
    TTL_ATTRIBUTE,
};
use crate::store::tallies::tally_expiry;
use crate::store::{DayTally, DeliveryTallies, StoreError, Tally};

const TALLY_SK: &str = "TALLY";
/// The index partition every tally is in.
const TALLY_GSI1PK: &str = "TALLY";
/// The most items one `Query` page asks for.
const PAGE: i32 = 500;
/// Days as stored: ISO 8601, which sorts as time does.
const DATE_FORMAT: &str = "%Y-%m-%d";

fn day_key(day: NaiveDate) -> String {
    day.format(DATE_FORMAT).to_string()
}

fn tally_pk(destination: &str, day: NaiveDate) -> String {
    format!("TALLY#{destination}#{}", day_key(day))
}

/// The day's tallies. A problem names the attribute, never its value.
fn tally_from_item(item: &Item) -> Result<DayTally, StoreError> {
    let reader = ItemReader::new("tally", item);
    let count = |attribute: &str| -> Result<u64, StoreError> {
        match reader.opt_i64(attribute)? {
            None => Ok(0),
            Some(n) => u64::try_from(n).map_err(|_| reader.corrupt(attribute, "a count")),
        }
    };
    Ok(DayTally {
        destination: reader.string("destination")?.to_owned(),
        day: NaiveDate::parse_from_str(reader.string("day")?, DATE_FORMAT)
            .map_err(|_| reader.corrupt("day", "a date"))?,
        accepted: count("accepted")?,
        returned: count("returned")?,
    })
}

#[async_trait]
impl DeliveryTallies for DynamoStore {
    async fn add_tally(
        &self,
        destination: &str,
        day: NaiveDate,
        tally: Tally,
    ) -> Result<(), StoreError> {
        let expires_at = tally_expiry(day);
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", string(tally_pk(destination, day)))
            .key("sk", string(TALLY_SK))
            .update_expression(
                "ADD #count :one SET #gsi1pk = :gsi1pk, #gsi1sk = :gsi1sk, #destination = :destination, \
                 #day = :day, #expires_at = :expires_at, #ttl = :ttl",
            )
            .expression_attribute_names("#count", tally.as_str())
            .expression_attribute_names("#gsi1pk", "gsi1pk")
            .expression_attribute_names("#gsi1sk", "gsi1sk")
            .expression_attribute_names("#destination", "destination")
            .expression_attribute_names("#day", "day")
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":gsi1pk", string(TALLY_GSI1PK))
            .expression_attribute_values(
                ":gsi1sk",
                string(format!("{}#{destination}", day_key(day))),
            )
            .expression_attribute_values(":destination", string(destination))
            .expression_attribute_values(":day", string(day_key(day)))
            .expression_attribute_values(":expires_at", millis(expires_at))
            .expression_attribute_values(":ttl", ttl_seconds(expires_at))
            .send()
            .await
            .map_err(|error| sdk_error("UpdateItem (tally)", &error))?;
        Ok(())
    }

    async fn tallies_since(
        &self,
        since: NaiveDate,
        destination: Option<&str>,
    ) -> Result<Vec<DayTally>, StoreError> {
        let now = Utc::now();
        let mut listed = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#gsi1pk = :tally AND #gsi1sk >= :since")
                .expression_attribute_names("#gsi1pk", "gsi1pk")
                .expression_attribute_names("#gsi1sk", "gsi1sk")
                .expression_attribute_values(":tally", string(TALLY_GSI1PK))
                .expression_attribute_values(":since", string(day_key(since)))
                .scan_index_forward(true)
                .limit(PAGE)
                .set_exclusive_start_key(start.take());
            if let Some(destination) = destination {
                query = query
                    .filter_expression("#destination = :destination")
                    .expression_attribute_names("#destination", "destination")
                    .expression_attribute_values(":destination", string(destination));
            }
            let output = query
                .send()
                .await
                .map_err(|error| sdk_error("Query (tallies)", &error))?;
            for item in output.items() {
                let tally = tally_from_item(item)?;
                // DynamoDB's TTL is lazy: an expired day may still be there.
                if tally_expiry(tally.day) > now {
                    listed.push(tally);
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
    use aws_sdk_dynamodb::types::AttributeValue;

    #[test]
    fn tally_items_read_back_and_name_a_bad_attribute() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 2).expect("a date");
        assert_eq!(tally_pk("sonar #1", day), "TALLY#sonar #1#2026-12-02");
        let mut item = Item::new();
        item.insert("destination".to_owned(), string("sonar #1"));
        item.insert("day".to_owned(), string("2026-12-02"));
        item.insert("accepted".to_owned(), AttributeValue::N("12".to_owned()));
        assert_eq!(
            tally_from_item(&item).expect("reads"),
            DayTally {
                destination: "sonar #1".into(),
                day,
                accepted: 12,
                returned: 0
            }
        );
        item.insert("returned".to_owned(), AttributeValue::N("-1".to_owned()));
        let message = tally_from_item(&item).expect_err("corrupt").to_string();
        assert!(message.contains("`returned`"), "{message}");
    }
}
