//! [`LeadStore::list_partner_leads`](crate::store::LeadStore::list_partner_leads) on the table: a `Query`
//! of `gsi1` on the lead items' `gsi1pk` `PARTNER#<partnerId>` and `gsi1sk` `<created millis, 13
//! digits>#<leadId>`, newest first (the parent module's docs give the item).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::dead_deliveries::time_key;
use super::{
    lead_id_and_vertical, lead_pk, millis, sdk_error, string, DynamoStore, Item, ItemReader, GSI1,
};
use crate::lead::LeadId;
use crate::store::{LeadListQuery, LeadPage, LeadSummary, ListPosition, StoreError};

/// How much one listing page may read.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadBudget {
    /// The most `Query` pages: with a status filter that matches few leads, a listing page ends there
    /// (with a `next` position) rather than read the partner's whole history in one request.
    pub(super) pages: usize,
    /// Items one `Query` page evaluates when a status filter is set (without one: exactly what is still
    /// wanted). Leads read beyond what is listed are not lost: the next position is the last listed lead's
    /// own key, or, when the budget ran out, the last key read.
    pub(super) filtered_page: i32,
}

impl Default for ReadBudget {
    fn default() -> Self {
        ReadBudget {
            pages: 8,
            filtered_page: 250,
        }
    }
}
/// Above every `gsi1sk` of the listing (`9999999999999` is the year 2286): the upper end of the key range.
const TOP: &str = "9999999999999#~";

/// The index partition of a partner's leads.
pub(super) fn partner_gsi1pk(partner_id: &str) -> String {
    format!("PARTNER#{partner_id}")
}

/// The index sort key of a lead: `<created millis, 13 digits>#<leadId>`, so that the index orders a
/// partner's leads by creation time (ties by id).
pub(super) fn partner_gsi1sk(created_at: DateTime<Utc>, lead_id: &LeadId) -> String {
    format!("{}#{lead_id}", time_key(created_at))
}

/// The index key of the item at `position` (the `ExclusiveStartKey` of the query that resumes after it).
fn start_key(partner_id: &str, position: &ListPosition) -> Item {
    let mut key = Item::new();
    key.insert("pk".to_owned(), string(lead_pk(&position.lead_id)));
    key.insert("sk".to_owned(), string("META"));
    key.insert("gsi1pk".to_owned(), string(partner_gsi1pk(partner_id)));
    key.insert(
        "gsi1sk".to_owned(),
        string(partner_gsi1sk(position.created_at, &position.lead_id)),
    );
    key
}

/// The position of an index key (a `LastEvaluatedKey`, or a listed item).
fn position_of(item: &Item) -> Result<ListPosition, StoreError> {
    let reader = ItemReader::new("lead index", item);
    let sort_key = reader.string("gsi1sk")?;
    let (time, id) = sort_key
        .split_once('#')
        .ok_or_else(|| reader.corrupt("gsi1sk", "`<millis>#<leadId>`"))?;
    let created_at = time
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| reader.corrupt("gsi1sk", "`<millis>#<leadId>`"))?;
    let lead_id = id
        .parse::<LeadId>()
        .map_err(|_| reader.corrupt("gsi1sk", "`<millis>#<leadId>`"))?;
    Ok(ListPosition {
        created_at,
        lead_id,
    })
}

fn summary_from_item(item: &Item) -> Result<LeadSummary, StoreError> {
    let reader = ItemReader::new("lead", item);
    let (id, vertical) = lead_id_and_vertical(&reader)?;
    Ok(LeadSummary {
        id,
        vertical,
        status: reader.parse("status")?,
        created_at: reader.time("created_at")?,
        updated_at: reader.time("updated_at")?,
    })
}

impl DynamoStore {
    /// See the module docs. Reads only the attributes a summary needs (never the lead itself).
    pub(super) async fn query_partner_leads(
        &self,
        query: &LeadListQuery,
    ) -> Result<LeadPage, StoreError> {
        let size = query.page_size();
        // DynamoDB refuses an empty key value: the start of time is `0000000000000`.
        // A `since` past the 13 digits' reach (the year 2286) asks for nothing that is stored.
        let latest =
            DateTime::from_timestamp_millis(9_999_999_999_999).unwrap_or(DateTime::UNIX_EPOCH);
        let since = time_key(query.since.unwrap_or(DateTime::UNIX_EPOCH).min(latest));
        if let Some(after) = &query.after {
            // A position before `since` (the partner narrowed the listing while paging) has nothing after
            // it, and DynamoDB refuses a start key outside the key condition.
            if query.since.is_some_and(|since| after.created_at < since) {
                return Ok(LeadPage {
                    leads: Vec::new(),
                    next: None,
                });
            }
        }
        let now = Utc::now();
        let mut filter = "(attribute_not_exists(#expires_at) OR #expires_at > :now)".to_owned();
        if query.status.is_some() {
            filter.push_str(" AND #status = :status");
        }
        // One more than the page: whether it exists says whether there is a next page.
        let wanted = size + 1;
        let mut listed: Vec<(LeadSummary, ListPosition)> = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = query
            .after
            .as_ref()
            .map(|after| start_key(&query.partner_id, after));
        let budget = self.listing_budget;
        for _ in 0..budget.pages {
            let limit = if query.status.is_some() {
                budget.filtered_page
            } else {
                i32::try_from(wanted - listed.len()).unwrap_or(i32::MAX)
            };
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#gsi1pk = :partner AND #gsi1sk BETWEEN :since AND :top")
                .filter_expression(&filter)
                .projection_expression(
                    "#pk, #sk, #gsi1pk, #gsi1sk, #vertical, #status, #created_at, #updated_at",
                )
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_names("#gsi1pk", "gsi1pk")
                .expression_attribute_names("#gsi1sk", "gsi1sk")
                .expression_attribute_names("#vertical", "vertical")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#created_at", "created_at")
                .expression_attribute_names("#updated_at", "updated_at")
                .expression_attribute_names("#expires_at", "expires_at")
                .expression_attribute_values(":partner", string(partner_gsi1pk(&query.partner_id)))
                .expression_attribute_values(":since", string(since.clone()))
                .expression_attribute_values(":top", string(TOP))
                .expression_attribute_values(":now", millis(now))
                .scan_index_forward(false)
                .limit(limit)
                .set_exclusive_start_key(start.take());
            if let Some(status) = query.status {
                request = request.expression_attribute_values(":status", string(status.as_str()));
            }
            let output = request
                .send()
                .await
                .map_err(|error| sdk_error("Query (partner leads)", &error))?;
            for item in output.items() {
                listed.push((summary_from_item(item)?, position_of(item)?));
                if listed.len() == wanted {
                    listed.truncate(size);
                    let next = listed.last().map(|(_, position)| position.clone());
                    return Ok(LeadPage {
                        leads: listed.into_iter().map(|(lead, _)| lead).collect(),
                        next,
                    });
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => {
                    return Ok(LeadPage {
                        leads: listed.into_iter().map(|(lead, _)| lead).collect(),
                        next: None,
                    })
                }
            }
        }
        // The read budget is spent with leads still unread: the page ends where the reading stopped.
        let next = match &start {
            Some(key) => Some(position_of(key)?),
            None => None,
        };
        Ok(LeadPage {
            leads: listed.into_iter().map(|(lead, _)| lead).collect(),
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).expect("valid time")
    }

    #[test]
    fn index_keys_order_by_time_then_id_and_read_back_as_positions() {
        let early = LeadId::generate(at(999));
        let late = LeadId::generate(at(1_700_000_000_000));
        assert!(partner_gsi1sk(at(999), &early) < partner_gsi1sk(at(1_700_000_000_000), &late));
        assert!(partner_gsi1sk(at(1_700_000_000_000), &late).as_str() < TOP);
        let position = ListPosition {
            created_at: at(1_700_000_000_123),
            lead_id: late.clone(),
        };
        let key = start_key("partner-1", &position);
        assert_eq!(key["gsi1pk"], string("PARTNER#partner-1"));
        assert_eq!(key["pk"], string(format!("LEAD#{late}")));
        assert_eq!(position_of(&key).expect("reads back"), position);
        let mut bad = key.clone();
        bad.insert("gsi1sk".to_owned(), string(late.as_str()));
        assert!(position_of(&bad).is_err(), "an id alone is not a position");
    }
}
