//! The DynamoDB adapter of [`LeadStore`], [`Counters`](super::Counters),
//! [`DeadDeliveries`](super::DeadDeliveries), [`BuyerRefs`](super::BuyerRefs), [`Suppressions`](super::Suppressions),
//! [`SealedSsns`](super::SealedSsns) and [`LeadSafeReports`](super::LeadSafeReports): one table, every race
//! settled by a conditional write.
//!
//! # Table
//!
//! Keys `pk` (S, hash) and `sk` (S, range); global secondary index `gsi1` on `gsi1pk` (S, hash) and `gsi1sk`
//! (S, range), projecting all attributes; on-demand billing; DynamoDB TTL on `ttl` (epoch seconds).
//! [`create_table`] makes it.
//!
//! # Items
//!
//! Times are stored as epoch milliseconds (N), so they come back truncated to the millisecond. `ttl` is the
//! expiry in epoch seconds rounded up, so that DynamoDB never deletes an item before it expired; TTL deletion
//! is lazy (up to days late), so every read that cares about expiry also compares `expires_at` itself.
//!
//! | item | `pk` | `sk` | other attributes |
//! | --- | --- | --- | --- |
//! | lead | `LEAD#<leadId>` | `META` | see below |
//! | idempotency record | `IDEMP#<partnerId>#<key>` | `IDEMP` | `partner_id` S, `idem_key` S, `request_hash` S, `lead_id` S, `created_at` N, `in_flight_until` N, `expires_at` N, `ttl` N |
//! | uniqueness claim | the claimed key, e.g. `DEDUPE#heloc#email#<hex>` | `CLAIM` | `owner` S (a lead id), optional `expires_at` N and `ttl` N |
//! | configuration | `CONFIG#active` | `CONFIG` | `document` S (TOML) |
//! | cap counter | `CAP#<destination>#<window key>`, e.g. `CAP#sonar-east#day:2026-12-02` | `COUNTER` | `holders` SS (each holder as a 16-character digest; absent when none), `count` N (the number of holders), `expires_at` N, `ttl` N |
//! | sequence | `SEQ#<vertical>` | `COUNTER` | `seq` N (how many values were handed out); never expires |
//! | dead-delivery marker | `DEAD#<leadId>#<destination>` | `DEAD` | `gsi1pk` S `DEAD`, `gsi1sk` S `<died-at epoch ms, zero-padded to 13 digits>#<leadId>#<destination>`, `lead_id` S, `destination` S, `died_at` N, `attempts` N, `code` S, `reason` S (the timeline's words: no PII); when the lead expires, its `expires_at` N and `ttl` N |
//! | suppression record | `SUPPRESS#<kind>#<hash>` (`kind` `ssn`, `email` or `phone`; `hash` the value's keyed hash, 64 hex digits) | `<reason>#<start_date>`, e.g. `RevokePaymentAuth#2024-04-02` | `gsi1pk` S `SUPPRESS#<kind>`, `gsi1sk` S `<pk>#<sk>`, `reason` S, `start_date` S (`YYYY-MM-DD`), `end_date` S (absent when none), `source` S (a client code or `import`); never expires |
//! | buyer reference | `BUYERREF#<destination>#<buyerRef>` (destination ids hold no `#`) | the lead id | `destination` S, `buyer_ref` S, `lead_id` S; when the lead expires, its `expires_at` N and `ttl` N |
//! | buyer token | `BUYERTOKEN#<destination>` | `TOKEN` | `version` N; the token's `access_token` S, `expires_at` N, `refresh_after` N, `refresh_token` S, `refresh_expires_at` N, `seed` S (each when known); `lease_holder` S, `lease_until` N while a refresh is leased |
//! | sealed SSN | `SSN#<leadId>` | `SEALED` | `sealed` S (the [`SealedSsn`](crate::crypto::SealedSsn)'s stored form, `v1:<base64>`: never the digits), `expires_at` N, `ttl` N |
//! | failed notification | `NOTIFYFAIL#<webhookId>` | `NOTIFYFAIL` | `gsi1pk` S `NOTIFYFAIL`, `gsi1sk` S `<failed-at epoch ms, zero-padded to 13 digits>#<webhookId>`, `webhook_id` S, `partner_id` S, `job` S (the notification job as JSON: its payload holds no personal data beyond the partner's own reference), `code` S, `reason` S, `failed_at` N, `expires_at` N, `ttl` N |
//! | disabled endpoint | `NOTIFYEP#<partnerId>` | `URL#<SHA-256 of the URL, 64 hex digits>` | `gsi1pk` S `NOTIFYEP`, `gsi1sk` S `<partnerId>#<sk>`, `partner_id` S, `url` S, `disabled_at` N, `webhook_id` S; never expires |
//! | unparsed callback | `UNPARSED#<callbackId>` | `UNPARSED` | `gsi1pk` S `UNPARSED`, `gsi1sk` S `<received-at epoch ms, zero-padded to 13 digits>#<callbackId>`, `callback_id` S, `destination` S, `lead_id` S (when known), `content_type` S (when sent), `size` N (the body's full size), `body` B (its first 64 KiB, as sent: may hold PII), `problem` S, `received_at` N, `expires_at` N, `ttl` N |
//! | tally | `TALLY#<destination>#<YYYY-MM-DD>` | `TALLY` | `gsi1pk` S `TALLY`, `gsi1sk` S `<YYYY-MM-DD>#<destination>`, `destination` S, `day` S, `accepted` N and `returned` N (each absent until counted), `expires_at` N and `ttl` N (400 days after the day) |
//! | LeadSafe report | `LSREPORT#<reportId>` | `REPORT` | `gsi1pk` S `LSREPORT`, `gsi1sk` S `<reported-at epoch ms, zero-padded to 13 digits>#<reportId>`, `report_id` S, `sealed` S (the SSN sealed for the report, its id as associated data: the stored form `v1:<base64>`, never the digits), `reason` S (one of LeadSafe's nine), `start_date` S and `end_date` S (`YYYY-MM-DD`; `end_date` absent when none), `source` S (`buyer` or `operator`), for a buyer's `destination` S and `lead_id` S, `reported_at` N, `sent_at` N (absent until LeadSafe added it), `expires_at` N (`reported_at` + `report_retention_days`), `ttl` N |
//!
//! A lead item holds:
//!
//! - `partner_id` S; `vertical` S (the vertical's serde name, e.g. `heloc`); `status` S (the lead status's
//!   name); `created_at` N, `updated_at` N;
//! - `lead` S: the normalised lead as JSON. It holds PII and lives only here;
//! - `events` L of S: the timeline, each event as JSON, oldest first;
//! - `deliveries` M: destination id -> M of `status` S (delivery status name), `attempts` N, `updated_at` N,
//!   `step` N (the routing plan's step; absent in items written before plans had steps: 0), and when set
//!   `lease_until` N, `next_attempt_at` N, `reason` S, `buyer_ref` S, `price_cents` N, `cap_keys` L of S,
//!   `rate_limit_wait_ms` N. Always present (empty M
//!   when there are none) so that updates can `SET deliveries.#d = :v`;
//! - `gsi1pk` S `PARTNER#<partnerId>` and `gsi1sk` S `<created-at epoch ms, zero-padded to 13
//!   digits>#<leadId>`: a partner's leads by creation time, listed newest first by `list_partner_leads`
//!   (dead-delivery markers share the index under `gsi1pk` `DEAD`, suppression records under
//!   `SUPPRESS#<kind>`, LeadSafe reports under `LSREPORT`). Lead items written before the listing existed
//!   had the bare lead id as `gsi1sk`: they sort above the key range the listing reads and are not listed
//!   until their item is written again (unparsed callbacks share the index under `UNPARSED`, tallies under
//!   `TALLY`, failed notifications under `NOTIFYFAIL`, disabled endpoints under `NOTIFYEP`);
//! - for each verdict kept before its buyer's answer to the delivery was recorded
//!   ([`KeptVerdict`](crate::lead::KeptVerdict)): a top-level attribute `kept_verdict#<destination>` M of
//!   `verdict` S, `reason` S (when given) and `received_at` N. Top-level rather than in a map, so that an
//!   update can set or remove one in any lead item (a nested path needs its parent map to exist), and apart
//!   from `deliveries` so that dispatch's writes of a whole delivery never overwrite it;
//! - when the lead expires: `expires_at` N and `ttl` N;
//! - for a test lead (`Leadhub-Test: true`): `test` BOOL true.
//!
//! `expires_at` (milliseconds) sits beside `ttl` (seconds) so that expiries round-trip and are compared to
//! the millisecond, as the memory store does.
//!
//! # Writes
//!
//! - `create_lead`: one `PutItem` conditional on `attribute_not_exists(pk)`; with an idempotency record, one
//!   `TransactWriteItems` of both puts, each conditional on `attribute_not_exists(pk)`. A live record that
//!   cancels it is read back (consistently) and returned; an expired one is overwritten by a retried
//!   transaction whose condition names that record (`request_hash`, `lead_id`, `created_at`).
//! - `update_lead`: one `UpdateItem` (`ReturnValues=ALL_NEW`) whose condition expression is
//!   [`preconditions_hold`](super::preconditions_hold) and whose update is
//!   [`apply_update`](super::apply_update); every attribute name goes through `ExpressionAttributeNames`.
//!   When the condition fails, a consistent read tells `Conflict` from `NotFound`. A kept verdict is set
//!   with `SET #kv = :v` conditional on `attribute_not_exists(#kv)` and the delivery's status, and dropped
//!   with `REMOVE #kv` conditional on `#kv.received_at = :at`.
//! - `put_unparsed`: an unconditional `PutItem`. `list_unparsed`: a `Query` of `gsi1` on `gsi1pk = UNPARSED
//!   AND gsi1sk >= <since, 13-digit ms>`, newest first, filtered on `expires_at > :now` (and `destination =
//!   :d` when asked), paged until the limit. Index reads are eventually consistent.
//! - `add_tally`: one `UpdateItem` `ADD <accepted|returned> :one SET` the index keys, `destination`, `day`,
//!   `expires_at` and `ttl`. `tallies_since`: a `Query` of `gsi1` on `gsi1pk = TALLY AND gsi1sk >= <since
//!   day>` (oldest first, filtered on `destination = :d` when asked), paged to the end; expired ones are
//!   skipped.
//! - `discard_lead`: a `DeleteItem` of the lead conditional on `status = received`, then an unconditional
//!   `DeleteItem` of the idempotency record (two calls: the first failing must not keep the record).
//! - `list_partner_leads`: a `Query` of `gsi1` on `gsi1pk = PARTNER#<partnerId> AND gsi1sk BETWEEN <since,
//!   13-digit ms> AND 9999999999999#~`, `ScanIndexForward=false` (newest first), projecting only the
//!   summary's attributes (never `lead`), filtered on `expires_at` (and `status` when asked), resuming after
//!   the previous page's last lead (its index key rebuilt as `ExclusiveStartKey`). It asks for one lead more
//!   than the page to know whether a next page exists, and pages on (a status filter may match few of the
//!   items a page reads) for at most 8 `Query` pages, after which the listing page ends at the last key
//!   read. Index reads are eventually consistent.
//! - `claim_unique`: a `PutItem` conditional on `attribute_not_exists(pk) OR expires_at <= now` (`now` is
//!   the caller's clock); when it fails, a consistent read says who holds the key (the holder itself gets
//!   `Claimed`, and, as in the memory store, its expiry is not moved). `release_unique`: a `DeleteItem`
//!   conditional on `owner = :owner` (a failed condition is a no-op).
//! - `reserve` (counters): one `UpdateItem` `ADD count :one, holders :h` (and `SET expires_at, ttl` if not
//!   set) conditional on `(attribute_not_exists(pk) OR (count < :limit AND expires_at > :now)) AND NOT
//!   contains(holders, :h)`: a new counter, or a live one with room. When it fails, a consistent read tells
//!   `Reserved` (already a holder) from `Full`; a counter that has expired (TTL is lazy) is started afresh by
//!   an `UpdateItem` that `SET`s `holders` to the new holder alone and `count` to 1, conditional on
//!   `expires_at <= :now`, so of racing restarts exactly one applies and the others count on the live
//!   counter it made. Each holder is stored as a digest of fixed length (see `holder_member`), so that a
//!   counter of [`MAX_CAP`](super::counters::MAX_CAP) holders stays near 160 KB.
//! - `release`: `ADD count :minus_one DELETE holders :h` conditional on `contains(holders, :h)`; a failed
//!   condition (not held) is a no-op.
//! - `counts`: `BatchGetItem`s of up to 100 keys, consistent reads, unprocessed keys asked again with
//!   backoff; an expired counter counts 0.
//! - `next_sequence`: `ADD seq :one` with `ReturnValues=UPDATED_NEW`, answering the new value minus one.
//! - `record` (dead deliveries): one `PutItem` of the marker conditional on `attribute_not_exists(pk) OR
//!   died_at <= :died_at`: the same marker again, or a later death, replaces it; a stale earlier one is a
//!   no-op.
//! - `list`: a `Query` of `gsi1` on `gsi1pk = DEAD AND gsi1sk >= <since, 13-digit ms>` with
//!   `ScanIndexForward=false` (newest first), paged until the limit; markers past `expires_at` are skipped.
//!   Index reads are eventually consistent: a marker written a moment ago may not be listed yet.
//! - `remove`: a `DeleteItem` of the marker conditional on `died_at <= :died_by`; a failed condition (no
//!   marker, or one of a later death) is a no-op.
//! - `put_suppressions`: `PutItem` requests (each replacing the record of its key) in `BatchWriteItem`s of
//!   25, four at once, unprocessed items sent again with exponential backoff; two records of one key in one
//!   call are written once, the later one (BatchWriteItem refuses duplicate keys).
//! - `find_suppressions`: a consistent `Query` on `pk`, paged (ordered by `sk`: reason, then start date).
//! - `remove_suppressions`: the same `Query` (keys only), then `DeleteRequest`s in `BatchWriteItem`s as for
//!   puts.
//! - `suppression_counts`: per kind, a `Query` of `gsi1` on `gsi1pk = SUPPRESS#<kind>` with
//!   `Select=COUNT` and a filter on the dates (`start_date <= today AND (no end_date OR end_date >
//!   today)`; ISO dates compare as strings), paged: `ScannedCount` adds up to the records, `Count` to the
//!   active ones. Index reads are eventually consistent.
//! - `record_buyer_ref`: an unconditional `PutItem` (the same entry again replaces it).
//!   `leads_for_buyer_ref`: a consistent `Query` of the entry's partition, newest lead first, filtered on
//!   `expires_at`, paged until the limit.
//! - `put_sealed_ssn`: an unconditional `PutItem` (a lead has one sealed SSN; putting again replaces it).
//!   `get_sealed_ssn`: a consistent `GetItem`; an item past `expires_at` answers `None`.
//!   `delete_sealed_ssn`: an unconditional `DeleteItem` (deleting what is not there succeeds).
//! - `put_report` (LeadSafe reports): an unconditional `PutItem`. `mark_report_sent`: an `UpdateItem`
//!   `SET sent_at` conditional on `attribute_exists(pk) AND expires_at > :at` (a failed condition: no such
//!   live report, `false`). `reports_since`: a `Query` of `gsi1` on `gsi1pk = LSREPORT AND gsi1sk >=
//!   <since, 13-digit ms>`, oldest first, filtered on `expires_at > :now`, paged to the end;
//!   `unsent_reports`: the same from the start of time, also filtered on `attribute_not_exists(sent_at)`,
//!   paged until the limit. Index reads are eventually consistent.
//!
//! Items that cannot be read give [`StoreError::Corrupt`] naming the attribute, never its value (it may be
//! PII). SDK failures give [`StoreError::Unavailable`] naming the operation and the service's error code.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    ClaimOutcome, CreateOutcome, DeliveryExpect, IdempotencyRecord, KeptVerdictChange,
    LeadListQuery, LeadPage, LeadStore, LeadUpdate, StoreError, UpdateOutcome,
};
use crate::lead::{
    DeliveryState, DeliveryStatus, KeptVerdict, LeadId, LeadRecord, LeadStatus, TimelineEvent,
};
use crate::verticals::Vertical;

mod buyer_refs;
mod buyer_tokens;
mod counters;
mod dead_deliveries;
mod lead_listing;
mod leadsafe_reports;
mod notifications;
mod sealed_ssns;
mod suppressions;
mod tallies;
mod unparsed_callbacks;

/// The global secondary index listing a partner's leads, dead deliveries by time, suppression records by
/// kind, LeadSafe reports by time, unparsed callbacks by time and tallies by day.
pub const GSI1: &str = "gsi1";
/// The attribute DynamoDB's TTL reads.
pub const TTL_ATTRIBUTE: &str = "ttl";
const CONFIG_PK: &str = "CONFIG#active";

/// How often a conditional write that lost a race with a concurrent write is tried again.
const MAX_ATTEMPTS: usize = 4;

type Item = HashMap<String, AttributeValue>;

/// A [`LeadStore`] on one DynamoDB table (see the module docs for its layout).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// How much one listing page may read (see `lead_listing`).
    listing_budget: lead_listing::ReadBudget,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            listing_budget: lead_listing::ReadBudget::default(),
        }
    }

    /// The same store with a listing page reading at most `pages` `Query` pages of `items` each when a
    /// status filter is set (defaults: 8 of 250), for tests of a page that ends on its budget.
    pub fn with_listing_budget(mut self, pages: usize, items: i32) -> Self {
        self.listing_budget = lead_listing::ReadBudget {
            pages: pages.max(1),
            filtered_page: items.max(1),
        };
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_item(
        &self,
        operation: &str,
        pk: String,
        sk: &str,
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| sdk_error(operation, &error))?;
        Ok(output.item)
    }

    async fn get_idempotency(
        &self,
        partner_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.get_item(
            "GetItem (idempotency record)",
            idempotency_pk(partner_id, key),
            "IDEMP",
        )
        .await?
        .map(|item| idempotency_from_item(&item))
        .transpose()
    }

    /// One attempt at writing a lead and its idempotency record together. `replacing` is an expired record
    /// that may be overwritten (DynamoDB's TTL had not removed it yet).
    async fn create_with_idempotency(
        &self,
        lead: &Item,
        idempotency: &Item,
        replacing: Option<&IdempotencyRecord>,
    ) -> Result<Result<(), Cancelled>, StoreError> {
        let mut idempotency_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(idempotency.clone()))
            .expression_attribute_names("#pk", "pk");
        idempotency_put = match replacing {
            None => idempotency_put.condition_expression("attribute_not_exists(#pk)"),
            Some(old) => idempotency_put
                .condition_expression(
                    "attribute_not_exists(#pk) OR \
                     (#request_hash = :old_hash AND #lead_id = :old_lead AND #created_at = :old_created)",
                )
                .expression_attribute_names("#request_hash", "request_hash")
                .expression_attribute_names("#lead_id", "lead_id")
                .expression_attribute_names("#created_at", "created_at")
                .expression_attribute_values(":old_hash", AttributeValue::S(old.request_hash.clone()))
                .expression_attribute_values(":old_lead", AttributeValue::S(old.lead_id.to_string()))
                .expression_attribute_values(":old_created", millis(old.created_at)),
        };
        let lead_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(lead.clone()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "pk");
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(built(idempotency_put.build())?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .put(built(lead_put.build())?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(error) => match error.as_service_error() {
                Some(service) if service.is_transaction_canceled_exception() => {
                    let codes: Vec<&str> = match service {
                        TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                            cancelled
                                .cancellation_reasons()
                                .iter()
                                .map(|reason| reason.code().unwrap_or("None"))
                                .collect()
                        }
                        _ => Vec::new(),
                    };
                    Cancelled::from_codes(&codes)
                        .map(Err)
                        .ok_or_else(|| sdk_error("TransactWriteItems (create lead)", &error))
                }
                _ => Err(sdk_error("TransactWriteItems (create lead)", &error)),
            },
        }
    }

    async fn delete_item(
        &self,
        operation: &str,
        pk: String,
        sk: &str,
        received_only: bool,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_owned()));
        if received_only {
            request = request
                .condition_expression("attribute_not_exists(#pk) OR #status = :received")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":received", string(LeadStatus::Received.as_str()));
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(sdk_error(operation, &error)),
        }
    }
}

/// Why a create transaction was cancelled, from its cancellation reasons (idempotency put first, lead put
/// second).
#[derive(Debug, Clone, Copy)]
struct Cancelled {
    /// The idempotency record exists (or, when the service gave no reasons, may exist).
    idempotency_exists: bool,
    /// The lead exists (or, when the service gave no reasons, may exist).
    lead_exists: bool,
    /// Only a concurrent transaction got in the way: try again.
    conflict: bool,
}

impl Cancelled {
    /// `None` when a reason is neither a failed condition nor a conflict (validation, throughput...).
    fn from_codes(codes: &[&str]) -> Option<Cancelled> {
        if codes.is_empty() {
            return Some(Cancelled {
                idempotency_exists: true,
                lead_exists: true,
                conflict: false,
            });
        }
        if codes.iter().any(|code| {
            !matches!(
                *code,
                "None" | "ConditionalCheckFailed" | "TransactionConflict"
            )
        }) {
            return None;
        }
        let failed = |index: usize| codes.get(index) == Some(&"ConditionalCheckFailed");
        Some(Cancelled {
            idempotency_exists: failed(0),
            lead_exists: failed(1),
            conflict: codes.contains(&"TransactionConflict"),
        })
    }
}

#[async_trait]
impl LeadStore for DynamoStore {
    async fn create_lead(
        &self,
        lead: &LeadRecord,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        let item = lead_to_item(lead)?;
        let Some(record) = idempotency else {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", "pk")
                .send()
                .await;
            return match result {
                Ok(_) => Ok(CreateOutcome::Created),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Err(StoreError::AlreadyExists(lead.id.to_string()))
                }
                Err(error) => Err(sdk_error("PutItem (create lead)", &error)),
            };
        };

        let idempotency_item = idempotency_to_item(record);
        let mut replacing: Option<IdempotencyRecord> = None;
        for _ in 0..MAX_ATTEMPTS {
            let cancelled = match self
                .create_with_idempotency(&item, &idempotency_item, replacing.as_ref())
                .await?
            {
                Ok(()) => return Ok(CreateOutcome::Created),
                Err(cancelled) => cancelled,
            };
            // As in the memory store, a live idempotency record wins over an existing lead.
            if cancelled.idempotency_exists {
                match self
                    .get_idempotency(&record.partner_id, &record.key)
                    .await?
                {
                    Some(existing) if existing.expires_at > Utc::now() => {
                        return Ok(CreateOutcome::IdempotencyKeyUsed(existing));
                    }
                    // Expired but not yet removed by TTL: overwrite exactly that record. Or gone since.
                    existing => replacing = existing,
                }
            }
            let lead_exists = cancelled.lead_exists
                && self
                    .get_item("GetItem (lead)", lead_pk(&lead.id), "META")
                    .await?
                    .is_some();
            if lead_exists {
                return Err(StoreError::AlreadyExists(lead.id.to_string()));
            }
            if cancelled.conflict {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Err(StoreError::Unavailable(
            "DynamoDB TransactWriteItems (create lead): cancelled by concurrent writes on every attempt"
                .to_owned(),
        ))
    }

    async fn get_lead(&self, id: &LeadId) -> Result<Option<LeadRecord>, StoreError> {
        self.get_item("GetItem (lead)", lead_pk(id), "META")
            .await?
            .map(|item| lead_from_item(&item))
            .transpose()
    }

    async fn update_lead(
        &self,
        id: &LeadId,
        update: &LeadUpdate,
    ) -> Result<UpdateOutcome, StoreError> {
        let expression = UpdateExpression::build(update)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(lead_pk(id)))
            .key("sk", AttributeValue::S("META".to_owned()))
            .condition_expression(expression.condition)
            .update_expression(expression.update)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output.attributes.ok_or_else(|| {
                    StoreError::Corrupt("UpdateItem (lead) returned no attributes".to_owned())
                })?;
                Ok(UpdateOutcome::Applied(lead_from_item(&item)?))
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(match self.get_lead(id).await? {
                    Some(record) => UpdateOutcome::Conflict(record),
                    None => UpdateOutcome::NotFound,
                })
            }
            Err(error) => Err(sdk_error("UpdateItem (lead)", &error)),
        }
    }

    async fn discard_lead(
        &self,
        id: &LeadId,
        idempotency: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        // The idempotency record goes only with its lead: a lead that moved on (its send only looked like it
        // failed) keeps answering replays with the first answer instead of being posted a second time.
        let discarded = self
            .delete_item("DeleteItem (discard lead)", lead_pk(id), "META", true)
            .await?;
        if let (true, Some((partner_id, key))) = (discarded, idempotency) {
            self.delete_item(
                "DeleteItem (discard idempotency record)",
                idempotency_pk(partner_id, key),
                "IDEMP",
                false,
            )
            .await?;
        }
        Ok(())
    }

    async fn claim_unique(
        &self,
        key: &str,
        owner: &LeadId,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut item = Item::new();
        item.insert("pk".to_owned(), string(key));
        item.insert("sk".to_owned(), string("CLAIM"));
        item.insert("owner".to_owned(), string(owner.as_str()));
        if let Some(at) = expires_at {
            item.insert("expires_at".to_owned(), millis(at));
            item.insert(TTL_ATTRIBUTE.to_owned(), ttl_seconds(at));
        }
        for _ in 0..MAX_ATTEMPTS {
            // Like the memory store, a holder claiming again gets `Claimed` without moving its expiry: the
            // put only takes a free or expired key, the holder is found by the read after a failed condition.
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#pk) OR #expires_at <= :now")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#expires_at", "expires_at")
                .expression_attribute_values(":now", millis(now))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(ClaimOutcome::Claimed),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(error) => return Err(sdk_error("PutItem (claim)", &error)),
            }
            let Some(existing) = self
                .get_item("GetItem (claim)", key.to_owned(), "CLAIM")
                .await?
            else {
                continue; // released since: try again
            };
            let reader = ItemReader::new("claim", &existing);
            let holder: LeadId = reader.parse("owner")?;
            let live = reader.opt_time("expires_at")?.is_none_or(|at| at > now);
            if live {
                return Ok(if &holder == owner {
                    ClaimOutcome::Claimed
                } else {
                    ClaimOutcome::HeldBy(holder)
                });
            }
        }
        Err(StoreError::Unavailable(
            "DynamoDB PutItem (claim): the claim changed hands on every attempt".to_owned(),
        ))
    }

    async fn unique_holder(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LeadId>, StoreError> {
        let Some(existing) = self
            .get_item("GetItem (claim)", key.to_owned(), "CLAIM")
            .await?
        else {
            return Ok(None);
        };
        let reader = ItemReader::new("claim", &existing);
        let live = reader.opt_time("expires_at")?.is_none_or(|at| at > now);
        Ok(if live {
            Some(reader.parse("owner")?)
        } else {
            None
        })
    }

    async fn release_unique(&self, key: &str, owner: &LeadId) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", string(key))
            .key("sk", string("CLAIM"))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", string(owner.as_str()))
            .send()
            .await;
        // A failed condition: the key is free or another lead holds it; either way it is not ours.
        applied(result, "DeleteItem (claim)", |e| {
            e.is_conditional_check_failed_exception()
        })?;
        Ok(())
    }

    async fn get_config_document(&self) -> Result<Option<String>, StoreError> {
        self.get_item("GetItem (config)", CONFIG_PK.to_owned(), "CONFIG")
            .await?
            .map(|item| {
                ItemReader::new("config", &item)
                    .string("document")
                    .map(str::to_owned)
            })
            .transpose()
    }

    async fn put_config_document(&self, document: &str) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", string(CONFIG_PK))
            .item("sk", string("CONFIG"))
            .item("document", string(document))
            .send()
            .await
            .map_err(|error| sdk_error("PutItem (config)", &error))?;
        Ok(())
    }

    async fn list_partner_leads(&self, query: &LeadListQuery) -> Result<LeadPage, StoreError> {
        self.query_partner_leads(query).await
    }
}

/// Create the table (see the module docs) if it does not exist, wait until it is active, and enable TTL on
/// `ttl`. Safe to run again.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attribute = |name: &str| {
        built(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build(),
        )
    };
    let key = |name: &str, kind: KeyType| {
        built(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build(),
        )
    };
    let index = built(
        GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key("gsi1pk", KeyType::Hash)?)
            .key_schema(key("gsi1sk", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build(),
    )?;
    let result = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .attribute_definitions(attribute("gsi1pk")?)
        .attribute_definitions(attribute("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(index)
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(sdk_error("CreateTable", &error)),
    }

    wait_until_active(client, table).await?;

    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|error| sdk_error("DescribeTimeToLive", &error))?;
    let enabled = ttl.time_to_live_description().is_some_and(|description| {
        description.attribute_name() == Some(TTL_ATTRIBUTE)
            && matches!(
                description.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
    });
    if !enabled {
        let specification = built(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build(),
        )?;
        match client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(specification)
            .send()
            .await
        {
            Ok(_) => {}
            Err(error)
                if error
                    .message()
                    .is_some_and(|message| message.contains("already enabled")) => {}
            Err(error) => return Err(sdk_error("UpdateTimeToLive", &error)),
        }
    }
    Ok(())
}

async fn wait_until_active(client: &Client, table: &str) -> Result<(), StoreError> {
    for _ in 0..300 {
        let output = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|error| sdk_error("DescribeTable", &error))?;
        if output.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(StoreError::Unavailable(format!(
        "DynamoDB table `{table}` did not become active within 5 minutes"
    )))
}

// ---------------------------------------------------------------------------------------------------------
// Keys and item mapping.

fn lead_pk(id: &LeadId) -> String {
    format!("LEAD#{id}")
}

fn idempotency_pk(partner_id: &str, key: &str) -> String {
    format!("IDEMP#{partner_id}#{key}")
}

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn number(value: impl fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn millis(at: DateTime<Utc>) -> AttributeValue {
    number(at.timestamp_millis())
}

/// Epoch seconds, rounded up: TTL must not remove an item before it expired.
fn ttl_seconds(at: DateTime<Utc>) -> AttributeValue {
    let millis = at.timestamp_millis();
    number(millis.div_euclid(1000) + i64::from(millis.rem_euclid(1000) > 0))
}

fn to_json(value: &impl Serialize, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|_| StoreError::Corrupt(format!("{what} could not be serialised")))
}

fn built<T>(result: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StoreError> {
    result.map_err(|error| StoreError::Unavailable(format!("invalid DynamoDB request: {error}")))
}

/// The DynamoDB item [`DynamoStore::create_lead`] writes for `lead` (no AWS call: public for the handler-core
/// benchmark, shared/examples/handler_core.rs).
pub fn lead_item(lead: &LeadRecord) -> Result<HashMap<String, AttributeValue>, StoreError> {
    lead_to_item(lead)
}

fn lead_to_item(lead: &LeadRecord) -> Result<Item, StoreError> {
    let vertical = match serde_json::to_value(lead.vertical) {
        Ok(serde_json::Value::String(name)) => name,
        _ => {
            return Err(StoreError::Corrupt(
                "the lead's vertical has no name".to_owned(),
            ))
        }
    };
    let events = lead
        .events
        .iter()
        .map(|event| to_json(event, "a timeline event").map(AttributeValue::S))
        .collect::<Result<Vec<_>, _>>()?;
    let deliveries = lead
        .deliveries
        .iter()
        .map(|(destination, state)| (destination.clone(), delivery_to_value(state)))
        .collect();
    let mut item = Item::new();
    item.insert("pk".to_owned(), string(lead_pk(&lead.id)));
    item.insert("sk".to_owned(), string("META"));
    item.insert("partner_id".to_owned(), string(&lead.partner_id));
    item.insert("vertical".to_owned(), string(vertical));
    item.insert("status".to_owned(), string(lead.status.as_str()));
    item.insert("created_at".to_owned(), millis(lead.created_at));
    item.insert("updated_at".to_owned(), millis(lead.updated_at));
    item.insert(
        "lead".to_owned(),
        AttributeValue::S(lead.lead.as_str().to_owned()),
    );
    if let Some(original) = &lead.original {
        item.insert(
            "original".to_owned(),
            AttributeValue::S(original.as_str().to_owned()),
        );
    }
    if let Some(hash) = &lead.ssn_hash {
        item.insert("ssn_hash".to_owned(), string(hash));
    }
    item.insert("events".to_owned(), AttributeValue::L(events));
    item.insert("deliveries".to_owned(), AttributeValue::M(deliveries));
    for (destination, kept) in &lead.kept_verdicts {
        item.insert(kept_verdict_attribute(destination), kept_to_value(kept));
    }
    item.insert(
        "gsi1pk".to_owned(),
        string(lead_listing::partner_gsi1pk(&lead.partner_id)),
    );
    item.insert(
        "gsi1sk".to_owned(),
        string(lead_listing::partner_gsi1sk(lead.created_at, &lead.id)),
    );
    if lead.test {
        item.insert("test".to_owned(), AttributeValue::Bool(true));
    }
    if let Some(at) = lead.expires_at {
        item.insert("expires_at".to_owned(), millis(at));
        item.insert(TTL_ATTRIBUTE.to_owned(), ttl_seconds(at));
    }
    Ok(item)
}

/// A lead item's id (from `pk`) and vertical (the attribute holds its serde name).
fn lead_id_and_vertical(reader: &ItemReader<'_>) -> Result<(LeadId, Vertical), StoreError> {
    let id = reader
        .string("pk")?
        .strip_prefix("LEAD#")
        .and_then(|id| id.parse::<LeadId>().ok())
        .ok_or_else(|| reader.corrupt("pk", "a lead key"))?;
    let vertical: Vertical = serde_json::from_value(serde_json::Value::String(
        reader.string("vertical")?.to_owned(),
    ))
    .map_err(|_| reader.corrupt("vertical", "a vertical's name"))?;
    Ok((id, vertical))
}

fn lead_from_item(item: &Item) -> Result<LeadRecord, StoreError> {
    let reader = ItemReader::new("lead", item);
    let (id, vertical) = lead_id_and_vertical(&reader)?;
    let lead = crate::lead::LeadJson::from_text(reader.string("lead")?.to_owned())
        .map_err(|_| reader.corrupt("lead", "a JSON document"))?;
    let original = reader
        .opt_string("original")?
        .map(|json| {
            crate::lead::LeadJson::from_text(json.to_owned())
                .map_err(|_| reader.corrupt("original", "a JSON document"))
        })
        .transpose()?;
    let events = reader
        .list("events")?
        .iter()
        .enumerate()
        .map(|(index, value)| {
            value
                .as_s()
                .ok()
                .and_then(|json| serde_json::from_str::<TimelineEvent>(json).ok())
                .ok_or_else(|| reader.corrupt(&format!("events[{index}]"), "a timeline event"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let deliveries = reader
        .map("deliveries")?
        .iter()
        .map(|(destination, value)| {
            delivery_from_value(destination, value).map(|state| (destination.clone(), state))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let kept_verdicts = item
        .iter()
        .filter_map(|(attribute, value)| {
            attribute
                .strip_prefix(KEPT_VERDICT_PREFIX)
                .map(|destination| (destination, value))
        })
        .map(|(destination, value)| {
            kept_from_value(destination, value).map(|kept| (destination.to_owned(), kept))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let expires_at = match reader.opt_time("expires_at")? {
        Some(at) => Some(at),
        None => reader
            .opt_i64(TTL_ATTRIBUTE)?
            .map(|seconds| {
                DateTime::from_timestamp(seconds, 0)
                    .ok_or_else(|| reader.corrupt(TTL_ATTRIBUTE, "a time"))
            })
            .transpose()?,
    };
    Ok(LeadRecord {
        id,
        partner_id: reader.string("partner_id")?.to_owned(),
        vertical,
        status: reader.parse("status")?,
        created_at: reader.time("created_at")?,
        updated_at: reader.time("updated_at")?,
        lead,
        original,
        ssn_hash: reader.opt_string("ssn_hash")?.map(str::to_owned),
        events,
        deliveries,
        kept_verdicts,
        expires_at,
        test: match item.get("test") {
            None => false,
            Some(AttributeValue::Bool(test)) => *test,
            Some(_) => return Err(reader.corrupt("test", "a boolean")),
        },
    })
}

fn delivery_to_value(state: &DeliveryState) -> AttributeValue {
    let mut map = Item::new();
    map.insert("status".to_owned(), string(state.status.as_str()));
    map.insert("attempts".to_owned(), number(state.attempts));
    if let Some(at) = state.lease_until {
        map.insert("lease_until".to_owned(), millis(at));
    }
    if let Some(at) = state.next_attempt_at {
        map.insert("next_attempt_at".to_owned(), millis(at));
    }
    if let Some(reason) = &state.reason {
        map.insert("reason".to_owned(), string(reason));
    }
    if let Some(buyer_ref) = &state.buyer_ref {
        map.insert("buyer_ref".to_owned(), string(buyer_ref));
    }
    map.insert("updated_at".to_owned(), millis(state.updated_at));
    map.insert("step".to_owned(), number(state.step));
    if let Some(cents) = state.price_cents {
        map.insert("price_cents".to_owned(), number(cents));
    }
    if state.rate_limit_wait_ms > 0 {
        map.insert(
            "rate_limit_wait_ms".to_owned(),
            number(state.rate_limit_wait_ms),
        );
    }
    if !state.cap_keys.is_empty() {
        map.insert(
            "cap_keys".to_owned(),
            AttributeValue::L(state.cap_keys.iter().map(string).collect()),
        );
    }
    AttributeValue::M(map)
}

fn delivery_from_value(
    destination: &str,
    value: &AttributeValue,
) -> Result<DeliveryState, StoreError> {
    let what = format!("lead item: delivery to `{destination}`");
    let map = value
        .as_m()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a map")))?;
    let reader = ItemReader::new(&what, map);
    Ok(DeliveryState {
        status: reader.parse("status")?,
        attempts: reader.parse("attempts")?,
        lease_until: reader.opt_time("lease_until")?,
        next_attempt_at: reader.opt_time("next_attempt_at")?,
        reason: reader.opt_string("reason")?.map(str::to_owned),
        buyer_ref: reader.opt_string("buyer_ref")?.map(str::to_owned),
        updated_at: reader.time("updated_at")?,
        // Items written before routing had steps hold no `step`: they were all offered at once.
        step: match reader.opt_i64("step")? {
            Some(step) => {
                u32::try_from(step).map_err(|_| reader.corrupt("step", "a step number"))?
            }
            None => 0,
        },
        price_cents: match reader.opt_i64("price_cents")? {
            Some(cents) => {
                Some(u64::try_from(cents).map_err(|_| reader.corrupt("price_cents", "a price"))?)
            }
            None => None,
        },
        rate_limit_wait_ms: match reader.opt_i64("rate_limit_wait_ms")? {
            Some(ms) => {
                u64::try_from(ms).map_err(|_| reader.corrupt("rate_limit_wait_ms", "a duration"))?
            }
            None => 0,
        },
        cap_keys: match map.get("cap_keys") {
            None => Vec::new(),
            Some(_) => reader
                .list("cap_keys")?
                .iter()
                .map(|key| {
                    key.as_s()
                        .cloned()
                        .map_err(|_| reader.corrupt("cap_keys", "a list of strings"))
                })
                .collect::<Result<_, _>>()?,
        },
    })
}

/// The prefix of the attributes holding kept verdicts: `kept_verdict#<destination>`.
const KEPT_VERDICT_PREFIX: &str = "kept_verdict#";

fn kept_verdict_attribute(destination: &str) -> String {
    format!("{KEPT_VERDICT_PREFIX}{destination}")
}

fn kept_to_value(kept: &KeptVerdict) -> AttributeValue {
    let mut map = Item::new();
    map.insert("verdict".to_owned(), string(kept.verdict.as_str()));
    if let Some(reason) = &kept.reason {
        map.insert("reason".to_owned(), string(reason));
    }
    map.insert("received_at".to_owned(), millis(kept.received_at));
    AttributeValue::M(map)
}

fn kept_from_value(destination: &str, value: &AttributeValue) -> Result<KeptVerdict, StoreError> {
    let what = format!("lead item: verdict kept for `{destination}`");
    let map = value
        .as_m()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a map")))?;
    let reader = ItemReader::new(&what, map);
    Ok(KeptVerdict {
        verdict: reader.parse("verdict")?,
        reason: reader.opt_string("reason")?.map(str::to_owned),
        received_at: reader.time("received_at")?,
    })
}

fn idempotency_to_item(record: &IdempotencyRecord) -> Item {
    let mut item = Item::new();
    item.insert(
        "pk".to_owned(),
        string(idempotency_pk(&record.partner_id, &record.key)),
    );
    item.insert("sk".to_owned(), string("IDEMP"));
    item.insert("partner_id".to_owned(), string(&record.partner_id));
    item.insert("idem_key".to_owned(), string(&record.key));
    item.insert("request_hash".to_owned(), string(&record.request_hash));
    item.insert("lead_id".to_owned(), string(record.lead_id.as_str()));
    item.insert("created_at".to_owned(), millis(record.created_at));
    item.insert("in_flight_until".to_owned(), millis(record.in_flight_until));
    item.insert("expires_at".to_owned(), millis(record.expires_at));
    item.insert(TTL_ATTRIBUTE.to_owned(), ttl_seconds(record.expires_at));
    item
}

fn idempotency_from_item(item: &Item) -> Result<IdempotencyRecord, StoreError> {
    let reader = ItemReader::new("idempotency", item);
    let expires_at = match reader.opt_time("expires_at")? {
        Some(at) => at,
        None => DateTime::from_timestamp(reader.i64(TTL_ATTRIBUTE)?, 0)
            .ok_or_else(|| reader.corrupt(TTL_ATTRIBUTE, "a time"))?,
    };
    Ok(IdempotencyRecord {
        partner_id: reader.string("partner_id")?.to_owned(),
        key: reader.string("idem_key")?.to_owned(),
        request_hash: reader.string("request_hash")?.to_owned(),
        lead_id: reader.parse("lead_id")?,
        created_at: reader.time("created_at")?,
        in_flight_until: reader.time("in_flight_until")?,
        expires_at,
    })
}

/// Reads typed attributes of one item; every failure names the item kind and the attribute, not the value.
struct ItemReader<'a> {
    what: &'a str,
    item: &'a Item,
}

impl<'a> ItemReader<'a> {
    fn new(what: &'a str, item: &'a Item) -> Self {
        ItemReader { what, item }
    }

    fn corrupt(&self, attribute: &str, expected: &str) -> StoreError {
        StoreError::Corrupt(format!(
            "{} item: attribute `{attribute}` is missing or not {expected}",
            self.what
        ))
    }

    fn opt_string(&self, attribute: &str) -> Result<Option<&'a str>, StoreError> {
        self.item
            .get(attribute)
            .map(|value| {
                value
                    .as_s()
                    .map(String::as_str)
                    .map_err(|_| self.corrupt(attribute, "a string"))
            })
            .transpose()
    }

    fn string(&self, attribute: &str) -> Result<&'a str, StoreError> {
        self.opt_string(attribute)?
            .ok_or_else(|| self.corrupt(attribute, "a string"))
    }

    /// A string attribute parsed with `FromStr` (statuses, ids), or a number attribute.
    fn parse<T: FromStr>(&self, attribute: &str) -> Result<T, StoreError> {
        let text = match self.item.get(attribute) {
            Some(AttributeValue::S(text) | AttributeValue::N(text)) => text,
            _ => return Err(self.corrupt(attribute, "a known value")),
        };
        text.parse()
            .map_err(|_| self.corrupt(attribute, "a known value"))
    }

    fn opt_i64(&self, attribute: &str) -> Result<Option<i64>, StoreError> {
        self.item
            .get(attribute)
            .map(|value| {
                value
                    .as_n()
                    .ok()
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or_else(|| self.corrupt(attribute, "a whole number"))
            })
            .transpose()
    }

    fn i64(&self, attribute: &str) -> Result<i64, StoreError> {
        self.opt_i64(attribute)?
            .ok_or_else(|| self.corrupt(attribute, "a whole number"))
    }

    fn opt_time(&self, attribute: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.opt_i64(attribute)?
            .map(|ms| {
                DateTime::from_timestamp_millis(ms).ok_or_else(|| self.corrupt(attribute, "a time"))
            })
            .transpose()
    }

    fn time(&self, attribute: &str) -> Result<DateTime<Utc>, StoreError> {
        self.opt_time(attribute)?
            .ok_or_else(|| self.corrupt(attribute, "a time"))
    }

    fn list(&self, attribute: &str) -> Result<&'a [AttributeValue], StoreError> {
        match self.item.get(attribute) {
            Some(AttributeValue::L(list)) => Ok(list),
            _ => Err(self.corrupt(attribute, "a list")),
        }
    }

    fn map(&self, attribute: &str) -> Result<&'a Item, StoreError> {
        match self.item.get(attribute) {
            Some(AttributeValue::M(map)) => Ok(map),
            _ => Err(self.corrupt(attribute, "a map")),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The update: `preconditions_hold` and `apply_update` (in `store/mod.rs`) as one conditional UpdateItem.

struct UpdateExpression {
    condition: String,
    update: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// Expression attribute names and values, registered as they are used: DynamoDB refuses unused ones.
#[derive(Default)]
struct Placeholders {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    /// `#<attribute>` for a top-level or nested attribute name (several are reserved words).
    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// The path of the delivery to `destination`: `#deliveries.#dN`. Destination ids may hold any
    /// character, so each gets its own placeholder, the same one each time.
    fn delivery(&mut self, destination: &str) -> String {
        let deliveries = self.name("deliveries");
        let existing = self
            .names
            .iter()
            .find(|(placeholder, name)| {
                placeholder.starts_with("#d_") && name.as_str() == destination
            })
            .map(|(placeholder, _)| placeholder.clone());
        let placeholder = existing.unwrap_or_else(|| {
            let placeholder = format!("#d_{}", self.names.len());
            self.names
                .insert(placeholder.clone(), destination.to_owned());
            placeholder
        });
        format!("{deliveries}.{placeholder}")
    }

    /// The attribute of the verdict kept for `destination`: `#k_N` (its own placeholder, as for deliveries).
    fn kept_verdict(&mut self, destination: &str) -> String {
        let attribute = kept_verdict_attribute(destination);
        let existing = self
            .names
            .iter()
            .find(|(placeholder, name)| placeholder.starts_with("#k_") && **name == attribute)
            .map(|(placeholder, _)| placeholder.clone());
        existing.unwrap_or_else(|| {
            let placeholder = format!("#k_{}", self.names.len());
            self.names.insert(placeholder.clone(), attribute);
            placeholder
        })
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `a, b, c` for an `IN (...)` list.
    fn list<'a>(&mut self, statuses: impl Iterator<Item = &'a str>) -> String {
        statuses
            .map(|status| self.value(string(status)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl UpdateExpression {
    fn build(update: &LeadUpdate) -> Result<UpdateExpression, StoreError> {
        let mut p = Placeholders::default();

        let mut conditions = vec![format!("attribute_exists({})", p.name("pk"))];
        if !update.expect_status.is_empty() {
            let list = p.list(update.expect_status.iter().map(|status| status.as_str()));
            conditions.push(format!("{} IN ({list})", p.name("status")));
        }
        for change in &update.deliveries {
            let path = p.delivery(&change.destination);
            let condition = match &change.expect {
                DeliveryExpect::Absent => format!("attribute_not_exists({path})"),
                // No status can match an empty list, and `IN ()` is not valid syntax: `attribute_exists(#pk)`
                // is required too, so this clause is false.
                DeliveryExpect::StatusIn(statuses) if statuses.is_empty() => {
                    format!("attribute_not_exists({})", p.name("pk"))
                }
                DeliveryExpect::StatusIn(statuses) => {
                    let list = p.list(statuses.iter().map(|status| status.as_str()));
                    format!("{path}.{} IN ({list})", p.name("status"))
                }
                DeliveryExpect::InFlight { attempt } => format!(
                    "({path}.{} = {} AND {path}.{} = {})",
                    p.name("status"),
                    p.value(string(DeliveryStatus::InFlight.as_str())),
                    p.name("attempts"),
                    p.value(number(attempt)),
                ),
                DeliveryExpect::Claimable { attempt, now } => {
                    let status = format!("{path}.{}", p.name("status"));
                    let attempts = format!("{path}.{}", p.name("attempts"));
                    let lease_until = format!("{path}.{}", p.name("lease_until"));
                    let in_flight = format!(
                        "({status} = {} AND {attempts} = {} AND {lease_until} < {})",
                        p.value(string(DeliveryStatus::InFlight.as_str())),
                        p.value(number(attempt)),
                        p.value(millis(*now)),
                    );
                    match attempt.checked_sub(1) {
                        // Attempt 0 cannot follow a pending or retrying delivery.
                        None => in_flight,
                        Some(made) => format!(
                            "(({status} IN ({}, {}) AND {attempts} = {}) OR {in_flight})",
                            p.value(string(DeliveryStatus::Pending.as_str())),
                            p.value(string(DeliveryStatus::Retrying.as_str())),
                            p.value(number(made)),
                        ),
                    }
                }
            };
            conditions.push(condition);
        }
        for change in &update.kept_verdicts {
            let attribute = p.kept_verdict(change.destination());
            let condition = match change {
                KeptVerdictChange::Keep {
                    destination,
                    while_delivery_in,
                    ..
                } => {
                    let path = p.delivery(destination);
                    let delivery = if while_delivery_in.is_empty() {
                        // No status matches an empty list (see `StatusIn` above).
                        format!("attribute_not_exists({})", p.name("pk"))
                    } else {
                        let list = p.list(while_delivery_in.iter().map(|status| status.as_str()));
                        format!("{path}.{} IN ({list})", p.name("status"))
                    };
                    format!("(attribute_not_exists({attribute}) AND {delivery})")
                }
                KeptVerdictChange::Drop { received_at, .. } => format!(
                    "{attribute}.{} = {}",
                    p.name("received_at"),
                    p.value(millis(*received_at))
                ),
            };
            conditions.push(condition);
        }

        let mut sets = vec![format!(
            "{} = {}",
            p.name("updated_at"),
            p.value(millis(update.now))
        )];
        if let Some(status) = update.set_status {
            sets.push(format!(
                "{} = {}",
                p.name("status"),
                p.value(string(status.as_str()))
            ));
        }
        // Two changes to one destination: the last wins, as in `apply_update` (DynamoDB refuses two SETs of
        // one path).
        let mut last_change: Vec<(&str, &DeliveryState)> = Vec::new();
        for change in &update.deliveries {
            last_change.retain(|(destination, _)| *destination != change.destination);
            last_change.push((change.destination.as_str(), &change.state));
        }
        for (destination, state) in last_change {
            let path = p.delivery(destination);
            sets.push(format!("{path} = {}", p.value(delivery_to_value(state))));
        }
        if !update.events.is_empty() {
            let events = update
                .events
                .iter()
                .map(|event| to_json(event, "a timeline event").map(AttributeValue::S))
                .collect::<Result<Vec<_>, _>>()?;
            let name = p.name("events");
            let empty = p.value(AttributeValue::L(Vec::new()));
            let new = p.value(AttributeValue::L(events));
            sets.push(format!(
                "{name} = list_append(if_not_exists({name}, {empty}), {new})"
            ));
        }

        let mut removes = Vec::new();
        for change in &update.kept_verdicts {
            let attribute = p.kept_verdict(change.destination());
            match change {
                KeptVerdictChange::Keep { verdict, .. } => {
                    sets.push(format!("{attribute} = {}", p.value(kept_to_value(verdict))))
                }
                KeptVerdictChange::Drop { .. } => removes.push(attribute),
            }
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }

        Ok(UpdateExpression {
            condition: conditions.join(" AND "),
            update: expression,
            names: p.names,
            values: p.values,
        })
    }
}

/// A conditional write's answer: applied, or its condition did not hold.
fn applied<O, E, R>(
    result: Result<O, SdkError<E, R>>,
    operation: &str,
    condition_failed: impl Fn(&E) -> bool,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(error) if error.as_service_error().is_some_and(&condition_failed) => Ok(false),
        Err(error) => Err(sdk_error(operation, &error)),
    }
}

/// A failed SDK call as [`StoreError::Unavailable`] (see [`crate::sdk::describe`]).
fn sdk_error<E, R>(operation: &str, error: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    StoreError::Unavailable(crate::sdk::describe("DynamoDB", operation, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::EventKind;
    use crate::store::preconditions_hold;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).expect("valid time")
    }

    fn record() -> LeadRecord {
        let mut lead = LeadRecord::received(
            LeadId::generate(at(1_700_000_000_000)),
            "partner-1",
            Vertical::Heloc,
            serde_json::json!({"firstName": "Zoë", "loanAmount": 50000}),
            at(1_700_000_000_000),
            Some(at(1_800_000_000_500)),
        );
        lead.deliveries.insert(
            "dest.with-dots #1".to_owned(),
            DeliveryState {
                status: DeliveryStatus::InFlight,
                attempts: 2,
                lease_until: Some(at(1_700_000_060_000)),
                next_attempt_at: Some(at(1_700_000_030_000)),
                reason: Some("HTTP 503".to_owned()),
                buyer_ref: Some("B-1".to_owned()),
                updated_at: at(1_700_000_001_000),
                step: 2,
                price_cents: Some(1850),
                cap_keys: vec!["CAP#dest.with-dots #1#day:2023-11-14".to_owned()],
                rate_limit_wait_ms: 61_000,
            },
        );
        lead
    }

    #[test]
    fn lead_items_round_trip() {
        let lead = record();
        let item = lead_to_item(&lead).expect("maps");
        assert_eq!(
            item["ttl"],
            AttributeValue::N("1800000001".to_owned()),
            "TTL rounds up"
        );
        assert_eq!(
            item["gsi1pk"],
            AttributeValue::S("PARTNER#partner-1".to_owned())
        );
        assert_eq!(lead_from_item(&item).expect("reads back"), lead);
    }

    #[test]
    fn unreadable_items_name_the_attribute_not_the_value() {
        let mut item = lead_to_item(&record()).expect("maps");
        item.insert(
            "lead".to_owned(),
            AttributeValue::S("{not json: Zoë".to_owned()),
        );
        let message = lead_from_item(&item).expect_err("corrupt").to_string();
        assert!(message.contains("`lead`"), "{message}");
        assert!(!message.contains("Zoë"), "{message}");
        item.remove("lead");
        item.insert("status".to_owned(), AttributeValue::S("lost".to_owned()));
        assert!(lead_from_item(&item).is_err());
    }

    #[test]
    fn idempotency_items_round_trip() {
        let record = IdempotencyRecord {
            partner_id: "partner-1".to_owned(),
            key: "key #1".to_owned(),
            request_hash: "abc".to_owned(),
            lead_id: LeadId::generate(at(1_700_000_000_000)),
            created_at: at(1_700_000_000_001),
            in_flight_until: at(1_700_000_030_001),
            expires_at: at(1_700_086_400_001),
        };
        let item = idempotency_to_item(&record);
        assert_eq!(
            item["pk"],
            AttributeValue::S("IDEMP#partner-1#key #1".to_owned())
        );
        assert_eq!(idempotency_from_item(&item).expect("reads back"), record);
    }

    #[test]
    fn update_expression_names_every_destination_and_keeps_the_last_change() {
        let now = at(1_700_000_100_000);
        let state = DeliveryState::pending(now);
        let update = LeadUpdate::new(now)
            .expect(&[LeadStatus::Routing])
            .status(LeadStatus::Delivered)
            .delivery("a.b #c", DeliveryExpect::Absent, state.clone())
            .delivery("x", DeliveryExpect::StatusIn(vec![]), state.clone())
            .delivery(
                "a.b #c",
                DeliveryExpect::Claimable { attempt: 0, now },
                state,
            )
            .event(TimelineEvent::new(
                now,
                EventKind::Delivered,
                LeadStatus::Delivered,
            ));
        let expression = UpdateExpression::build(&update).expect("builds");
        let placeholder = |destination: &str| {
            expression
                .names
                .iter()
                .find(|(_, name)| name.as_str() == destination)
                .map(|(placeholder, _)| placeholder.clone())
                .expect("every destination has a placeholder")
        };
        let (first, second) = (placeholder("a.b #c"), placeholder("x"));
        assert_ne!(first, second);
        assert_eq!(
            expression
                .update
                .matches(&format!("#deliveries.{first} ="))
                .count(),
            1
        );
        assert!(expression
            .condition
            .contains(&format!("attribute_not_exists(#deliveries.{first})")));
        // Every name and value is used (DynamoDB refuses unused ones).
        let text = format!("{} {}", expression.condition, expression.update);
        assert!(expression
            .names
            .keys()
            .all(|name| text.contains(name.as_str())));
        assert!(expression
            .values
            .keys()
            .all(|value| text.contains(value.as_str())));
        assert!(!expression.condition.contains(" - 1"));
        // The reference semantics agree that this update cannot apply (the empty `StatusIn`).
        assert!(!preconditions_hold(&record(), &update));
    }

    #[test]
    fn kept_verdicts_are_top_level_attributes_set_and_removed_under_their_conditions() {
        use crate::callbacks::Verdict;
        let now = at(1_700_000_100_000);
        let mut lead = record();
        lead.kept_verdicts.insert(
            "nt #1".to_owned(),
            KeptVerdict {
                verdict: Verdict::Rejected,
                reason: Some("no".to_owned()),
                received_at: now,
            },
        );
        lead.kept_verdicts.insert(
            "b".to_owned(),
            KeptVerdict {
                verdict: Verdict::Confirmed,
                reason: None,
                received_at: now,
            },
        );
        let item = lead_to_item(&lead).expect("item");
        assert!(item.contains_key("kept_verdict#nt #1"));
        assert_eq!(lead_from_item(&item).expect("reads back"), lead);
        let mut broken = item.clone();
        broken.insert("kept_verdict#b".to_owned(), string("confirmed"));
        let message = lead_from_item(&broken).expect_err("corrupt").to_string();
        assert!(message.contains("verdict kept for `b`"), "{message}");

        let kept = KeptVerdict {
            verdict: Verdict::Confirmed,
            reason: None,
            received_at: now,
        };
        let update = LeadUpdate::new(now)
            .keep_verdict("a.b #c", kept, &[DeliveryStatus::InFlight])
            .drop_kept_verdict("x", now);
        let expression = UpdateExpression::build(&update).expect("builds");
        let placeholder = |attribute: &str| {
            expression
                .names
                .iter()
                .find(|(_, name)| name.as_str() == attribute)
                .map(|(placeholder, _)| placeholder.clone())
                .expect("a placeholder")
        };
        let (keep, drop) = (
            placeholder("kept_verdict#a.b #c"),
            placeholder("kept_verdict#x"),
        );
        assert!(expression
            .condition
            .contains(&format!("attribute_not_exists({keep})")));
        assert!(expression
            .condition
            .contains(&format!("{drop}.#received_at = ")));
        assert!(expression.update.contains(&format!("{keep} = :")));
        assert!(expression.update.ends_with(&format!(" REMOVE {drop}")));
        let text = format!("{} {}", expression.condition, expression.update);
        assert!(expression
            .names
            .keys()
            .all(|name| text.contains(name.as_str())));
        assert!(expression
            .values
            .keys()
            .all(|value| text.contains(value.as_str())));
    }
}
