//! [`BuyerTokens`] on the table: one item per destination, `pk` `BUYERTOKEN#<destination>`, sort key
//! `TOKEN`, with `version` N, the token's `access_token` S, `expires_at` N, `refresh_after` N,
//! `refresh_token` S, `refresh_expires_at` N, `seed` S (each when known), and the lease's `lease_holder` S
//! and `lease_until` N while one is held. The lease and the refresh are conditional `UpdateItem`s on the
//! version and the lease (the parent module's docs give the item).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{applied, millis, number, sdk_error, string, DynamoStore, Item, ItemReader};
use crate::config::Secret;
use crate::store::{BuyerToken, BuyerTokens, StoreError, StoredToken};

const TOKEN_SK: &str = "TOKEN";

fn token_pk(destination: &str) -> String {
    format!("BUYERTOKEN#{destination}")
}

fn token_from_item(item: &Item) -> Result<StoredToken, StoreError> {
    let reader = ItemReader::new("buyer token", item);
    let token = match reader.opt_string("access_token")? {
        Some(access_token) => Some(BuyerToken {
            access_token: Secret::new(access_token),
            expires_at: reader.opt_time("expires_at")?,
            refresh_after: reader.opt_time("refresh_after")?,
            refresh_token: reader.opt_string("refresh_token")?.map(Secret::new),
            refresh_expires_at: reader.opt_time("refresh_expires_at")?,
            seed: reader.opt_string("seed")?.unwrap_or_default().to_owned(),
        }),
        None => None,
    };
    let lease = match (
        reader.opt_string("lease_holder")?,
        reader.opt_time("lease_until")?,
    ) {
        (Some(holder), Some(until)) => Some((holder.to_owned(), until)),
        _ => None,
    };
    Ok(StoredToken {
        token,
        version: reader.parse("version")?,
        lease,
    })
}

#[async_trait]
impl BuyerTokens for DynamoStore {
    async fn buyer_token(&self, destination: &str) -> Result<Option<StoredToken>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", string(token_pk(destination)))
            .key("sk", string(TOKEN_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| sdk_error("GetItem (buyer token)", &error))?;
        output.item.as_ref().map(token_from_item).transpose()
    }

    async fn take_refresh_lease(
        &self,
        destination: &str,
        version: u64,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let at_version = if version == 0 {
            "(attribute_not_exists(#version) OR #version = :version)"
        } else {
            "#version = :version"
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", string(token_pk(destination)))
            .key("sk", string(TOKEN_SK))
            .condition_expression(format!(
                "{at_version} AND (attribute_not_exists(#lease_until) OR #lease_until <= :now)"
            ))
            .update_expression(
                "SET #lease_holder = :holder, #lease_until = :until, #version = if_not_exists(#version, :version)",
            )
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#lease_holder", "lease_holder")
            .expression_attribute_names("#lease_until", "lease_until")
            .expression_attribute_values(":version", number(version))
            .expression_attribute_values(":holder", string(holder))
            .expression_attribute_values(":until", millis(until))
            .expression_attribute_values(":now", millis(now))
            .send()
            .await;
        applied(result, "UpdateItem (buyer token lease)", |e| {
            e.is_conditional_check_failed_exception()
        })
    }

    async fn put_refreshed(
        &self,
        destination: &str,
        token: &BuyerToken,
        version: u64,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let mut set = vec![
            "#version = :next".to_owned(),
            "#access_token = :access_token".to_owned(),
            "#seed = :seed".to_owned(),
        ];
        let mut remove = vec!["#lease_holder".to_owned(), "#lease_until".to_owned()];
        let mut values: Vec<(String, AttributeValue)> = vec![
            (":next".into(), number(version + 1)),
            (":version".into(), number(version)),
            (":holder".into(), string(holder)),
            (":access_token".into(), string(token.access_token.expose())),
            (":seed".into(), string(&token.seed)),
        ];
        let mut names: Vec<&str> = vec![
            "version",
            "access_token",
            "seed",
            "lease_holder",
            "lease_until",
        ];
        let optional: [(&str, Option<AttributeValue>); 4] = [
            ("expires_at", token.expires_at.map(millis)),
            ("refresh_after", token.refresh_after.map(millis)),
            (
                "refresh_token",
                token.refresh_token.as_ref().map(|s| string(s.expose())),
            ),
            ("refresh_expires_at", token.refresh_expires_at.map(millis)),
        ];
        for (name, value) in optional {
            names.push(name);
            match value {
                Some(value) => {
                    set.push(format!("#{name} = :{name}"));
                    values.push((format!(":{name}"), value));
                }
                None => remove.push(format!("#{name}")),
            }
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", string(token_pk(destination)))
            .key("sk", string(TOKEN_SK))
            .condition_expression("#version = :version AND #lease_holder = :holder")
            .update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ));
        for name in names {
            update = update.expression_attribute_names(format!("#{name}"), name);
        }
        for (key, value) in values {
            update = update.expression_attribute_values(key, value);
        }
        applied(update.send().await, "UpdateItem (buyer token)", |e| {
            e.is_conditional_check_failed_exception()
        })
    }

    async fn release_refresh_lease(
        &self,
        destination: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", string(token_pk(destination)))
            .key("sk", string(TOKEN_SK))
            .condition_expression("#lease_holder = :holder")
            .update_expression("REMOVE #lease_holder, #lease_until")
            .expression_attribute_names("#lease_holder", "lease_holder")
            .expression_attribute_names("#lease_until", "lease_until")
            .expression_attribute_values(":holder", string(holder))
            .send()
            .await;
        applied(result, "UpdateItem (buyer token lease release)", |e| {
            e.is_conditional_check_failed_exception()
        })?;
        Ok(())
    }
}
