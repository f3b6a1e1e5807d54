//! Duplicate screening over each store adapter (`store_contract!`): the claims `screening` makes are
//! race-free and expire by the caller's clock on DynamoDB as in memory.

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::future::join_all;
use leadhub::crypto::KeyedHasher;
use leadhub::lead::{LeadId, LeadRecord};
use leadhub::screening::policy::{ContactField, Duplicates, Scope};
use leadhub::screening::{claim_duplicates, duplicate_keys, DuplicateCheck};
use leadhub::store::LeadStore;
use leadhub::verticals::Vertical;
use serde_json::json;

store_contract!(
    fifty_identical_leads_at_once_one_is_unique,
    partner_scope_lets_each_partner_sell_the_consumer_once,
    a_duplicate_after_its_window_passes,
);

fn hasher() -> KeyedHasher {
    KeyedHasher::new(b"screening-contract-key-screening-contract")
}

/// A time of its own per test run, so runs against one moto table never meet.
fn start() -> DateTime<Utc> {
    let offset = i64::from(rand::random::<u16>());
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a time")
        + Duration::minutes(offset)
}

fn fresh_email() -> String {
    format!("jane.{:016x}@example.com", rand::random::<u64>())
}

fn lead(partner: &str, email: &str, at: DateTime<Utc>) -> LeadRecord {
    LeadRecord::received(
        LeadId::generate(at),
        partner,
        Vertical::Mortgage,
        json!({"borrower": {"email": email, "phone": "(727) 555-0134"}}),
        at,
        None,
    )
}

async fn screen(
    store: &dyn LeadStore,
    rule: &Duplicates,
    lead: &LeadRecord,
    now: DateTime<Utc>,
) -> DuplicateCheck {
    store.create_lead(lead, None).await.expect("create");
    let retention = std::time::Duration::from_secs(180 * 86_400);
    claim_duplicates(
        store,
        &duplicate_keys(&hasher(), rule, lead),
        lead,
        retention,
        now,
    )
    .await
    .expect("screen")
}

fn email_rule(window_days: u32, scope: Scope) -> Duplicates {
    Duplicates {
        fields: vec![ContactField::Email],
        window_days,
        scope,
    }
}

pub async fn fifty_identical_leads_at_once_one_is_unique(store: &dyn LeadStore) {
    let t0 = start();
    let rule = email_rule(30, Scope::All);
    let email = fresh_email();
    let leads: Vec<LeadRecord> = (0..50).map(|_| lead("acme", &email, t0)).collect();
    let outcomes = join_all(leads.iter().map(|l| screen(store, &rule, l, t0))).await;
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == DuplicateCheck::Unique)
            .count(),
        1,
        "{outcomes:?}"
    );
}

pub async fn partner_scope_lets_each_partner_sell_the_consumer_once(store: &dyn LeadStore) {
    let t0 = start();
    let rule = email_rule(30, Scope::Partner);
    let email = fresh_email();
    assert_eq!(
        screen(store, &rule, &lead("acme", &email, t0), t0).await,
        DuplicateCheck::Unique
    );
    assert_eq!(
        screen(store, &rule, &lead("other", &email, t0), t0).await,
        DuplicateCheck::Unique
    );
    assert_eq!(
        screen(store, &rule, &lead("acme", &email, t0), t0).await,
        DuplicateCheck::Duplicate {
            field: ContactField::Email
        }
    );
}

pub async fn a_duplicate_after_its_window_passes(store: &dyn LeadStore) {
    let t0 = start();
    let rule = email_rule(30, Scope::All);
    let email = fresh_email();
    assert_eq!(
        screen(store, &rule, &lead("acme", &email, t0), t0).await,
        DuplicateCheck::Unique
    );
    let day29 = t0 + Duration::days(29);
    assert_eq!(
        screen(store, &rule, &lead("acme", &email, day29), day29).await,
        DuplicateCheck::Duplicate {
            field: ContactField::Email
        }
    );
    let day30 = t0 + Duration::days(30);
    assert_eq!(
        screen(store, &rule, &lead("acme", &email, day30), day30).await,
        DuplicateCheck::Unique,
        "the window has passed"
    );
    // Forever means forever.
    let forever = email_rule(0, Scope::All);
    let other = fresh_email();
    assert_eq!(
        screen(store, &forever, &lead("acme", &other, t0), t0).await,
        DuplicateCheck::Unique
    );
    let years = t0 + Duration::days(3000);
    assert_eq!(
        screen(store, &forever, &lead("acme", &other, years), years).await,
        DuplicateCheck::Duplicate {
            field: ContactField::Email
        }
    );
}
