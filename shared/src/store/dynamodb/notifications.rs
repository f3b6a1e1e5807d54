//! [`NotificationLog`] on the table: a failed notification is one item, `pk` `NOTIFYFAIL#<webhookId>`, listed
//! by time through `gsi1`; a disabled endpoint is one item in its partner's partition `NOTIFYEP#<partnerId>`
//! (the parent module's docs give the items).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use sha2::{Digest, Sha256};

use super::dead_deliveries::time_key;
use super::{
    applied, millis, sdk_error, string, ttl_seconds, DynamoStore, Item, ItemReader, GSI1,
    TTL_ATTRIBUTE,
};
use crate::notifications::NotifyJob;
use crate::store::{DisabledEndpoint, FailedNotification, NotificationLog, StoreError};

const FAILED_SK: &str = "NOTIFYFAIL";
const FAILED_GSI1PK: &str = "NOTIFYFAIL";
const ENDPOINT_GSI1PK: &str = "NOTIFYEP";
/// The most items one `Query` page asks for.
const PAGE: usize = 500;

fn failed_pk(webhook_id: &str) -> String {
    format!("NOTIFYFAIL#{webhook_id}")
}

fn endpoint_pk(partner_id: &str) -> String {
    format!("NOTIFYEP#{partner_id}")
}

/// `URL#<SHA-256 of the URL, hex>`: a key of fixed length, whatever the URL.
fn endpoint_sk(url: &str) -> String {
    format!("URL#{}", hex::encode(Sha256::digest(url.as_bytes())))
}

fn failed_to_item(failed: &FailedNotification) -> Result<Item, StoreError> {
    let job = serde_json::to_string(&failed.job).map_err(|error| {
        StoreError::Unavailable(format!("a notification did not serialise: {error}"))
    })?;
    let id = &failed.job.webhook_id;
    let mut item = Item::new();
    item.insert("pk".to_owned(), string(failed_pk(id)));
    item.insert("sk".to_owned(), string(FAILED_SK));
    item.insert("gsi1pk".to_owned(), string(FAILED_GSI1PK));
    item.insert(
        "gsi1sk".to_owned(),
        string(format!("{}#{id}", time_key(failed.failed_at))),
    );
    item.insert("webhook_id".to_owned(), string(id));
    item.insert("partner_id".to_owned(), string(&failed.job.partner_id));
    item.insert("job".to_owned(), string(job));
    item.insert("code".to_owned(), string(&failed.code));
    item.insert("reason".to_owned(), string(&failed.reason));
    item.insert("failed_at".to_owned(), millis(failed.failed_at));
    item.insert("expires_at".to_owned(), millis(failed.expires_at));
    item.insert(TTL_ATTRIBUTE.to_owned(), ttl_seconds(failed.expires_at));
    Ok(item)
}

fn failed_from_item(item: &Item) -> Result<FailedNotification, StoreError> {
    let reader = ItemReader::new("failed notification", item);
    let job: NotifyJob = serde_json::from_str(reader.string("job")?).map_err(|_| {
        StoreError::Corrupt(
            "failed notification item: attribute `job` is not a notification".into(),
        )
    })?;
    Ok(FailedNotification {
        job,
        code: reader.string("code")?.to_owned(),
        reason: reader.string("reason")?.to_owned(),
        failed_at: reader.time("failed_at")?,
        expires_at: reader.time("expires_at")?,
    })
}

fn endpoint_to_item(endpoint: &DisabledEndpoint) -> Item {
    let sk = endpoint_sk(&endpoint.url);
    let mut item = Item::new();
    item.insert("pk".to_owned(), string(endpoint_pk(&endpoint.partner_id)));
    item.insert("gsi1pk".to_owned(), string(ENDPOINT_GSI1PK));
    item.insert(
        "gsi1sk".to_owned(),
        string(format!("{}#{sk}", endpoint.partner_id)),
    );
    item.insert("sk".to_owned(), string(sk));
    item.insert("partner_id".to_owned(), string(&endpoint.partner_id));
    item.insert("url".to_owned(), string(&endpoint.url));
    item.insert("disabled_at".to_owned(), millis(endpoint.disabled_at));
    item.insert("webhook_id".to_owned(), string(&endpoint.webhook_id));
    item
}

fn endpoint_from_item(item: &Item) -> Result<DisabledEndpoint, StoreError> {
    let reader = ItemReader::new("disabled endpoint", item);
    Ok(DisabledEndpoint {
        partner_id: reader.string("partner_id")?.to_owned(),
        url: reader.string("url")?.to_owned(),
        disabled_at: reader.time("disabled_at")?,
        webhook_id: reader.string("webhook_id")?.to_owned(),
    })
}

impl DynamoStore {
    /// Every item of a `Query` (all pages), `build` making each page's request.
    async fn query_all(
        &self,
        operation: &str,
        build: impl Fn(
            Option<HashMap<String, AttributeValue>>,
        ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = build(start.take())
                .send()
                .await
                .map_err(|error| sdk_error(operation, &error))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

#[async_trait]
impl NotificationLog for DynamoStore {
    async fn record_failed(&self, failed: &FailedNotification) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(failed_to_item(failed)?))
            .send()
            .await
            .map_err(|error| sdk_error("PutItem (failed notification)", &error))?;
        Ok(())
    }

    async fn failed(
        &self,
        partner_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FailedNotification>, StoreError> {
        let mut listed = Vec::new();
        let now = Utc::now();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        while listed.len() < limit {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#gsi1pk = :failed")
                .expression_attribute_names("#gsi1pk", "gsi1pk")
                .expression_attribute_values(":failed", string(FAILED_GSI1PK))
                .scan_index_forward(false)
                .limit(i32::try_from(PAGE).unwrap_or(500))
                .set_exclusive_start_key(start.take());
            if let Some(partner_id) = partner_id {
                query = query
                    .filter_expression("#partner = :partner")
                    .expression_attribute_names("#partner", "partner_id")
                    .expression_attribute_values(":partner", string(partner_id));
            }
            let output = query
                .send()
                .await
                .map_err(|error| sdk_error("Query (failed notifications)", &error))?;
            for item in output.items() {
                let failed = failed_from_item(item)?;
                // DynamoDB's TTL is lazy: an expired item may still be there.
                if failed.expires_at > now && listed.len() < limit {
                    listed.push(failed);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(listed)
    }

    async fn failed_notification(
        &self,
        webhook_id: &str,
    ) -> Result<Option<FailedNotification>, StoreError> {
        let item = self
            .get_item(
                "GetItem (failed notification)",
                failed_pk(webhook_id),
                FAILED_SK,
            )
            .await?;
        let now = Utc::now();
        Ok(item
            .as_ref()
            .map(failed_from_item)
            .transpose()?
            .filter(|failed| failed.expires_at > now))
    }

    async fn remove_failed(&self, webhook_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", string(failed_pk(webhook_id)))
            .key("sk", string(FAILED_SK))
            .send()
            .await
            .map_err(|error| sdk_error("DeleteItem (failed notification)", &error))?;
        Ok(())
    }

    async fn disable_endpoint(&self, endpoint: &DisabledEndpoint) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(endpoint_to_item(endpoint)))
            .condition_expression("attribute_not_exists(#pk) OR #at <= :at")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#at", "disabled_at")
            .expression_attribute_values(":at", millis(endpoint.disabled_at))
            .send()
            .await;
        // A failed condition: it was disabled later, which stays.
        applied(result, "PutItem (disabled endpoint)", |e| {
            e.is_conditional_check_failed_exception()
        })?;
        Ok(())
    }

    async fn disabled_endpoint(
        &self,
        partner_id: &str,
        url: &str,
    ) -> Result<Option<DisabledEndpoint>, StoreError> {
        self.get_item(
            "GetItem (disabled endpoint)",
            endpoint_pk(partner_id),
            &endpoint_sk(url),
        )
        .await?
        .as_ref()
        .map(endpoint_from_item)
        .transpose()
    }

    async fn disabled_endpoints(
        &self,
        partner_id: Option<&str>,
    ) -> Result<Vec<DisabledEndpoint>, StoreError> {
        let items = match partner_id {
            Some(partner_id) => {
                self.query_all("Query (disabled endpoints)", |start| {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("#pk = :pk")
                        .expression_attribute_names("#pk", "pk")
                        .expression_attribute_values(":pk", string(endpoint_pk(partner_id)))
                        .consistent_read(true)
                        .set_exclusive_start_key(start)
                })
                .await?
            }
            None => {
                self.query_all("Query (disabled endpoints)", |start| {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .index_name(GSI1)
                        .key_condition_expression("#gsi1pk = :endpoints")
                        .expression_attribute_names("#gsi1pk", "gsi1pk")
                        .expression_attribute_values(":endpoints", string(ENDPOINT_GSI1PK))
                        .set_exclusive_start_key(start)
                })
                .await?
            }
        };
        let mut endpoints = items
            .iter()
            .map(endpoint_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        endpoints.sort_by(|a, b| (&a.partner_id, &a.url).cmp(&(&b.partner_id, &b.url)));
        Ok(endpoints)
    }

    async fn enable_endpoints(&self, partner_id: &str) -> Result<usize, StoreError> {
        let endpoints = self.disabled_endpoints(Some(partner_id)).await?;
        for endpoint in &endpoints {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", string(endpoint_pk(partner_id)))
                .key("sk", string(endpoint_sk(&endpoint.url)))
                .send()
                .await
                .map_err(|error| sdk_error("DeleteItem (disabled endpoint)", &error))?;
        }
        Ok(endpoints.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::{LeadId, LeadStatus};
    use crate::notifications::{Payload, PayloadData};
    use crate::vertical::Vertical;
    use chrono::DateTime;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).expect("valid time")
    }

    #[test]
    fn items_round_trip() {
        let lead_id = LeadId::generate(at(1_700_000_000_000));
        let failed = FailedNotification {
            job: NotifyJob {
                webhook_id: format!("msg_{lead_id}_3_0"),
                partner_id: "acme".to_owned(),
                url: Some("https://installer.example/r".to_owned()),
                payload: Payload {
                    event: "lead.delivered".to_owned(),
                    timestamp: at(1_700_000_000_100),
                    data: PayloadData {
                        lead_id: lead_id.clone(),
                        vertical: Vertical::Solar,
                        status: LeadStatus::Delivered,
                        reason: None,
                        affiliate_id: None,
                        status_url: format!("/v1/leads/{lead_id}"),
                    },
                },
                attempt: 8,
                not_before: None,
            },
            code: "exhausted".to_owned(),
            reason: "gave up after 8 attempts: the endpoint answered HTTP 500".to_owned(),
            failed_at: at(1_700_000_123_456),
            expires_at: at(1_800_000_000_500),
        };
        let item = failed_to_item(&failed).expect("item");
        assert_eq!(
            item["gsi1sk"],
            string(format!("1700000123456#msg_{lead_id}_3_0"))
        );
        assert_eq!(
            item[TTL_ATTRIBUTE],
            AttributeValue::N("1800000001".to_owned())
        );
        assert_eq!(failed_from_item(&item).expect("reads back"), failed);

        let endpoint = DisabledEndpoint {
            partner_id: "acme".to_owned(),
            url: "https://partner.example/hook?token=x".to_owned(),
            disabled_at: at(1_700_000_000_000),
            webhook_id: "msg_1".to_owned(),
        };
        let item = endpoint_to_item(&endpoint);
        assert_eq!(item["pk"], string("NOTIFYEP#acme"));
        assert_eq!(
            item["sk"].as_s().map(String::len).expect("a string"),
            "URL#".len() + 64
        );
        assert_eq!(endpoint_from_item(&item).expect("reads back"), endpoint);
    }
}
