//! The `LeadStore::list_partner_leads` contract: a partner's own leads, newest first, a page at a time,
//! filtered by creation time and status, the same on every adapter (the reference is
//! `LeadListQuery::matches` and the memory store's order).
//!
//! Each check is an async function of `&dyn LeadStore`; `store_contract!` runs it against the memory store
//! and (ignored unless moto is up) against DynamoDB, each on a fresh store.

use chrono::{DateTime, Duration, Utc};
use leadhub::lead::{LeadId, LeadRecord, LeadStatus};
use leadhub::store::{
    CreateOutcome, LeadListQuery, LeadPage, LeadStore, LeadSummary, LeadUpdate, ListPosition,
    UpdateOutcome,
};
use leadhub::verticals::Vertical;
use serde_json::json;

store_contract!(
    only_the_partners_own_leads_are_listed_newest_first_without_their_data,
    pages_follow_each_other_without_gaps_or_repeats,
    a_full_last_page_has_no_next_position,
    since_keeps_leads_created_at_or_after_it,
    a_status_filter_pages_through_the_matching_leads_only,
    leads_of_one_millisecond_order_by_id,
    expired_leads_are_not_listed,
    a_position_before_since_ends_the_listing,
    an_update_keeps_the_leads_place_and_shows_its_new_status,
);

// ---------------------------------------------------------------------------------------------------------
// Helpers.

/// Now, truncated to whole milliseconds.
fn now() -> DateTime<Utc> {
    leadhub::lead::now()
}

fn lead(partner: &str, vertical: Vertical, at: DateTime<Utc>) -> LeadRecord {
    LeadRecord::received(
        LeadId::generate(at),
        partner,
        vertical,
        json!({"firstName": "Zoë", "email": "zoe@example.com"}),
        at,
        Some(at + Duration::days(30)),
    )
}

async fn create(store: &dyn LeadStore, lead: &LeadRecord) {
    assert_eq!(
        store.create_lead(lead, None).await.expect("create_lead"),
        CreateOutcome::Created
    );
}

/// `count` leads of `partner`, one second apart, the newest `count - 1` seconds after `start`.
async fn leads(
    store: &dyn LeadStore,
    partner: &str,
    start: DateTime<Utc>,
    count: i64,
) -> Vec<LeadRecord> {
    let mut made = Vec::new();
    for i in 0..count {
        let lead = lead(
            partner,
            Vertical::ALL[i as usize % 4],
            start + Duration::seconds(i),
        );
        create(store, &lead).await;
        made.push(lead);
    }
    made
}

fn query(partner: &str, limit: usize) -> LeadListQuery {
    LeadListQuery {
        partner_id: partner.to_owned(),
        since: None,
        status: None,
        limit,
        after: None,
    }
}

async fn page(store: &dyn LeadStore, query: &LeadListQuery) -> LeadPage {
    store.list_partner_leads(query).await.expect("list")
}

/// Every page of `query` in turn until `next` is `None`: the leads, and each page's size.
async fn all_pages(store: &dyn LeadStore, mut query: LeadListQuery) -> (Vec<LeadId>, Vec<usize>) {
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..100 {
        let page = page(store, &query).await;
        assert!(page.leads.len() <= query.limit, "{page:?}");
        sizes.push(page.leads.len());
        ids.extend(page.leads.iter().map(|lead| lead.id.clone()));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return (ids, sizes),
        }
    }
    panic!("the listing never ended");
}

/// Ids newest first.
fn newest_first(leads: &[LeadRecord]) -> Vec<LeadId> {
    let mut sorted: Vec<&LeadRecord> = leads.iter().collect();
    sorted.sort_by(|a, b| (b.created_at, b.id.as_str()).cmp(&(a.created_at, a.id.as_str())));
    sorted.into_iter().map(|lead| lead.id.clone()).collect()
}

// ---------------------------------------------------------------------------------------------------------
// Checks.

pub async fn only_the_partners_own_leads_are_listed_newest_first_without_their_data(
    store: &dyn LeadStore,
) {
    let start = now() - Duration::minutes(10);
    assert_eq!(
        page(store, &query("p1", 25)).await,
        LeadPage {
            leads: Vec::new(),
            next: None
        },
        "nothing yet"
    );
    let mine = leads(store, "p1", start, 4).await;
    leads(store, "p2", start, 3).await;
    // A partner whose id extends another's is a partner of its own.
    leads(store, "p10", start, 2).await;
    let listed = page(store, &query("p1", 25)).await;
    assert_eq!(listed.next, None);
    let expected: Vec<LeadSummary> = mine.iter().rev().map(LeadSummary::from).collect();
    assert_eq!(listed.leads, expected, "every summary field, newest first");
    assert_eq!(
        all_pages(store, query("p2", 25)).await.0.len(),
        3,
        "the other partner sees its own"
    );
    assert!(page(store, &query("nobody", 25)).await.leads.is_empty());
}

pub async fn pages_follow_each_other_without_gaps_or_repeats(store: &dyn LeadStore) {
    let made = leads(store, "p1", now() - Duration::minutes(10), 7).await;
    let (ids, sizes) = all_pages(store, query("p1", 3)).await;
    assert_eq!(ids, newest_first(&made));
    assert_eq!(sizes, vec![3, 3, 1]);
    // A lead created after the first page was read is not in the pages that follow it.
    let first = page(store, &query("p1", 3)).await;
    create(store, &lead("p1", Vertical::Solar, now())).await;
    let mut rest = query("p1", 3);
    rest.after = first.next.clone();
    let (later, _) = all_pages(store, rest).await;
    assert_eq!(later, newest_first(&made)[3..].to_vec());
}

pub async fn a_full_last_page_has_no_next_position(store: &dyn LeadStore) {
    let made = leads(store, "p1", now() - Duration::minutes(10), 6).await;
    let first = page(store, &query("p1", 3)).await;
    let next = first.next.clone().expect("a second page");
    assert_eq!(
        next,
        ListPosition {
            created_at: made[3].created_at,
            lead_id: made[3].id.clone()
        },
        "the next page starts after the first page's last lead"
    );
    let mut second = query("p1", 3);
    second.after = Some(next);
    let second = page(store, &second).await;
    assert_eq!(second.leads.len(), 3);
    assert_eq!(second.next, None, "no lead is left");
    let everything = page(store, &query("p1", 6)).await;
    assert_eq!((everything.leads.len(), everything.next), (6, None));
}

pub async fn since_keeps_leads_created_at_or_after_it(store: &dyn LeadStore) {
    let made = leads(store, "p1", now() - Duration::minutes(10), 5).await;
    let mut since = query("p1", 25);
    since.since = Some(made[2].created_at);
    let (ids, _) = all_pages(store, since.clone()).await;
    assert_eq!(ids, newest_first(&made[2..]), "inclusive");
    since.since = Some(made[2].created_at + Duration::milliseconds(1));
    assert_eq!(
        all_pages(store, since.clone()).await.0,
        newest_first(&made[3..])
    );
    since.since = Some(now() + Duration::days(1));
    assert!(page(store, &since).await.leads.is_empty());
    since.since = Some(DateTime::from_timestamp(0, 0).expect("1970"));
    assert_eq!(all_pages(store, since.clone()).await.0.len(), 5);
    since.since = Some(
        DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
            .expect("a time")
            .into(),
    );
    assert!(
        page(store, &since).await.leads.is_empty(),
        "far in the future"
    );
    // Paging with since: the pages still join up.
    let mut paged = query("p1", 2);
    paged.since = Some(made[1].created_at);
    let (ids, sizes) = all_pages(store, paged).await;
    assert_eq!(ids, newest_first(&made[1..]));
    assert_eq!(sizes, vec![2, 2]);
}

pub async fn a_status_filter_pages_through_the_matching_leads_only(store: &dyn LeadStore) {
    let made = leads(store, "p1", now() - Duration::minutes(10), 12).await;
    let mut rejected_leads = Vec::new();
    for (i, lead) in made.iter().enumerate() {
        let status = match i % 3 {
            0 => LeadStatus::Routing,
            1 => LeadStatus::Rejected,
            _ => continue,
        };
        let update = LeadUpdate::new(lead.created_at + Duration::seconds(30)).status(status);
        assert!(matches!(
            store.update_lead(&lead.id, &update).await.expect("update"),
            UpdateOutcome::Applied(_)
        ));
        if status == LeadStatus::Rejected {
            rejected_leads.push(lead.clone());
        }
    }
    let mut rejected = query("p1", 2);
    rejected.status = Some(LeadStatus::Rejected);
    let (ids, sizes) = all_pages(store, rejected).await;
    assert_eq!(ids, newest_first(&rejected_leads));
    assert_eq!(sizes, vec![2, 2], "full pages, the last one without a next");
    let mut received = query("p1", 25);
    received.status = Some(LeadStatus::Received);
    let listed = page(store, &received).await;
    assert_eq!(listed.leads.len(), 4);
    assert!(listed
        .leads
        .iter()
        .all(|lead| lead.status == LeadStatus::Received));
    received.status = Some(LeadStatus::Returned);
    assert!(page(store, &received).await.leads.is_empty());
}

pub async fn leads_of_one_millisecond_order_by_id(store: &dyn LeadStore) {
    let at = now() - Duration::minutes(5);
    let mut made = Vec::new();
    for _ in 0..5 {
        let lead = lead("p1", Vertical::Heloc, at);
        create(store, &lead).await;
        made.push(lead);
    }
    let (ids, sizes) = all_pages(store, query("p1", 2)).await;
    assert_eq!(ids, newest_first(&made));
    assert_eq!(sizes, vec![2, 2, 1]);
}

pub async fn expired_leads_are_not_listed(store: &dyn LeadStore) {
    let start = now() - Duration::days(40);
    let mut expired = lead("p1", Vertical::Heloc, start);
    expired.expires_at = Some(now() - Duration::minutes(1));
    create(store, &expired).await;
    let mut forever = lead("p1", Vertical::Mortgage, start + Duration::seconds(1));
    forever.expires_at = None;
    create(store, &forever).await;
    let mut live = lead("p1", Vertical::Solar, start + Duration::seconds(2));
    live.expires_at = Some(now() + Duration::days(1));
    create(store, &live).await;
    let (ids, _) = all_pages(store, query("p1", 1)).await;
    assert_eq!(ids, vec![live.id.clone(), forever.id.clone()]);
}

pub async fn a_position_before_since_ends_the_listing(store: &dyn LeadStore) {
    let made = leads(store, "p1", now() - Duration::minutes(10), 4).await;
    let mut narrowed = query("p1", 25);
    narrowed.since = Some(made[2].created_at);
    narrowed.after = Some(ListPosition::of(&made[1]));
    assert_eq!(
        page(store, &narrowed).await,
        LeadPage {
            leads: Vec::new(),
            next: None
        }
    );
    // A position of a lead that no longer exists still resumes where it was.
    let gone = ListPosition {
        created_at: made[2].created_at + Duration::milliseconds(500),
        lead_id: LeadId::generate(made[2].created_at + Duration::milliseconds(500)),
    };
    let mut resumed = query("p1", 25);
    resumed.after = Some(gone);
    assert_eq!(all_pages(store, resumed).await.0, newest_first(&made[..3]));
}

pub async fn an_update_keeps_the_leads_place_and_shows_its_new_status(store: &dyn LeadStore) {
    let made = leads(store, "p1", now() - Duration::minutes(10), 3).await;
    let later = now();
    let update = LeadUpdate::new(later).status(LeadStatus::Routing);
    assert!(matches!(
        store
            .update_lead(&made[0].id, &update)
            .await
            .expect("update"),
        UpdateOutcome::Applied(_)
    ));
    let listed = page(store, &query("p1", 25)).await;
    assert_eq!(
        listed
            .leads
            .iter()
            .map(|l| l.id.clone())
            .collect::<Vec<_>>(),
        newest_first(&made),
        "listed by creation, not by update"
    );
    let oldest = listed.leads.last().expect("three");
    assert_eq!(
        (oldest.status, oldest.updated_at, oldest.created_at),
        (LeadStatus::Routing, later, made[0].created_at)
    );
}

/// A status filter that matches few of a partner's leads: a DynamoDB page that spends its read budget ends
/// early, with fewer leads than asked for and a next position, and paging on still lists every match
/// exactly once.
#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn dynamodb_a_page_that_spends_its_read_budget_ends_early_and_paging_goes_on() {
    let store = crate::aws::dynamo_store().await.with_listing_budget(2, 2);
    let made = leads(&store, "p1", now() - Duration::minutes(10), 11).await;
    // Only the oldest and the fifth-newest match.
    let mut matching = Vec::new();
    for lead in [&made[0], &made[6]] {
        let update = LeadUpdate::new(now()).status(LeadStatus::Unsold);
        assert!(matches!(
            store.update_lead(&lead.id, &update).await.expect("update"),
            UpdateOutcome::Applied(_)
        ));
        matching.push(lead.clone());
    }
    let mut unsold = query("p1", 25);
    unsold.status = Some(LeadStatus::Unsold);
    let first = page(&store, &unsold).await;
    assert!(
        first.leads.is_empty(),
        "four leads read, none matching: {first:?}"
    );
    assert_eq!(
        first.next,
        Some(ListPosition::of(&made[7])),
        "the page ends at the last key it read"
    );
    let (ids, sizes) = all_pages(&store, unsold).await;
    assert_eq!(ids, newest_first(&matching));
    assert!(sizes.len() > 2, "{sizes:?}");
}
