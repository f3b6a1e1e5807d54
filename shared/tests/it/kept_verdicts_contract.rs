//! Kept verdicts on the `LeadStore`: a buyer's verdict kept while its delivery is open
//! (`KeptVerdictChange::Keep`) and dropped once applied (`KeptVerdictChange::Drop`), each under its
//! condition, race-free, and never overwritten by a write of the delivery itself — the same on every adapter.

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use leadhub::callbacks::Verdict;
use leadhub::lead::{DeliveryState, DeliveryStatus, KeptVerdict, LeadId, LeadRecord, LeadStatus};
use leadhub::store::{
    apply_update, preconditions_hold, DeliveryExpect, LeadStore, LeadUpdate, UpdateOutcome,
};
use leadhub::verticals::Vertical;
use serde_json::json;

store_contract!(
    a_verdict_is_kept_while_its_delivery_is_open_and_dropped_once,
    a_write_of_the_delivery_leaves_the_kept_verdict_alone,
    racing_keeps_keep_one_and_racing_drops_drop_once,
);

const OPEN: [DeliveryStatus; 3] = [
    DeliveryStatus::Pending,
    DeliveryStatus::InFlight,
    DeliveryStatus::Retrying,
];

fn now() -> DateTime<Utc> {
    leadhub::lead::now()
}

/// A routing lead with an in-flight delivery to `destination`, stored.
async fn stored(store: &dyn LeadStore, destination: &str) -> LeadRecord {
    let at = now();
    let mut lead = LeadRecord::received(
        LeadId::generate(at),
        "partner-1",
        Vertical::Solar,
        json!({}),
        at,
        Some(at + Duration::days(30)),
    );
    lead.status = LeadStatus::Routing;
    let mut state = DeliveryState::pending(at);
    state.status = DeliveryStatus::InFlight;
    state.attempts = 1;
    lead.deliveries.insert(destination.to_owned(), state);
    store.create_lead(&lead, None).await.expect("create");
    lead
}

fn kept(verdict: Verdict, reason: Option<&str>, at: DateTime<Utc>) -> KeptVerdict {
    KeptVerdict {
        verdict,
        reason: reason.map(str::to_owned),
        received_at: at,
    }
}

/// Write `update`, checking that the store agrees with the reference semantics on `expected`.
async fn write(store: &dyn LeadStore, lead: &LeadRecord, update: &LeadUpdate) -> UpdateOutcome {
    let current = store
        .get_lead(&lead.id)
        .await
        .expect("get")
        .expect("stored");
    let holds = preconditions_hold(&current, update);
    let outcome = store.update_lead(&lead.id, update).await.expect("update");
    match &outcome {
        UpdateOutcome::Applied(after) => {
            assert!(
                holds,
                "applied although the reference says it does not hold"
            );
            let mut expected = current.clone();
            apply_update(&mut expected, update);
            assert_eq!(after, &expected);
        }
        UpdateOutcome::Conflict(_) => assert!(!holds, "a conflict although the reference holds"),
        UpdateOutcome::NotFound => panic!("the lead is there"),
    }
    outcome
}

pub async fn a_verdict_is_kept_while_its_delivery_is_open_and_dropped_once(store: &dyn LeadStore) {
    let destination = "nt herm #1";
    let lead = stored(store, destination).await;
    let at = now();
    let verdict = kept(Verdict::Rejected, Some("Lead rejected after review."), at);
    let keep = LeadUpdate::new(at).keep_verdict(destination, verdict.clone(), &OPEN);
    assert!(matches!(
        write(store, &lead, &keep).await,
        UpdateOutcome::Applied(_)
    ));
    let read = store.get_lead(&lead.id).await.expect("get").expect("lead");
    assert_eq!(read.kept_verdicts.get(destination), Some(&verdict));
    // One per destination: keeping again conflicts.
    let again = LeadUpdate::new(at).keep_verdict(
        destination,
        kept(Verdict::Confirmed, None, at + Duration::seconds(1)),
        &OPEN,
    );
    assert!(matches!(
        write(store, &lead, &again).await,
        UpdateOutcome::Conflict(_)
    ));
    // Not for a delivery that is not open, nor one that does not exist.
    let other = LeadUpdate::new(at).keep_verdict(
        destination,
        kept(Verdict::Confirmed, None, at),
        &[DeliveryStatus::Accepted],
    );
    assert!(matches!(
        write(store, &lead, &other).await,
        UpdateOutcome::Conflict(_)
    ));
    let nobody =
        LeadUpdate::new(at).keep_verdict("nobody", kept(Verdict::Confirmed, None, at), &OPEN);
    assert!(matches!(
        write(store, &lead, &nobody).await,
        UpdateOutcome::Conflict(_)
    ));
    // Dropped only as the verdict received at that time.
    let stale = LeadUpdate::new(at).drop_kept_verdict(destination, at - Duration::seconds(1));
    assert!(matches!(
        write(store, &lead, &stale).await,
        UpdateOutcome::Conflict(_)
    ));
    let drop = LeadUpdate::new(at).drop_kept_verdict(destination, at);
    let UpdateOutcome::Applied(after) = write(store, &lead, &drop).await else {
        panic!("dropped")
    };
    assert!(after.kept_verdicts.is_empty());
    assert!(matches!(
        write(store, &lead, &drop).await,
        UpdateOutcome::Conflict(_)
    ));
    let read = store.get_lead(&lead.id).await.expect("get").expect("lead");
    assert!(read.kept_verdicts.is_empty());
}

pub async fn a_write_of_the_delivery_leaves_the_kept_verdict_alone(store: &dyn LeadStore) {
    let lead = stored(store, "ntherm").await;
    // Dispatch read the lead before the verdict was kept, and writes the delivery's whole state from it.
    let stale = lead.deliveries["ntherm"].clone();
    let at = now();
    let verdict = kept(Verdict::Confirmed, None, at);
    let keep = LeadUpdate::new(at).keep_verdict("ntherm", verdict.clone(), &OPEN);
    assert!(matches!(
        write(store, &lead, &keep).await,
        UpdateOutcome::Applied(_)
    ));
    let accepted = LeadUpdate::new(at).delivery(
        "ntherm",
        DeliveryExpect::InFlight { attempt: 1 },
        DeliveryState {
            status: DeliveryStatus::Accepted,
            ..stale
        },
    );
    let UpdateOutcome::Applied(after) = write(store, &lead, &accepted).await else {
        panic!("the outcome is recorded")
    };
    assert_eq!(after.deliveries["ntherm"].status, DeliveryStatus::Accepted);
    assert_eq!(
        after.kept_verdicts.get("ntherm"),
        Some(&verdict),
        "the kept verdict is still there, for the settling to apply"
    );
}

pub async fn racing_keeps_keep_one_and_racing_drops_drop_once(store: &dyn LeadStore) {
    let lead = stored(store, "ntherm").await;
    let at = now();
    let keeps: Vec<LeadUpdate> = (0..8)
        .map(|n| {
            LeadUpdate::new(at).keep_verdict(
                "ntherm",
                kept(
                    if n % 2 == 0 {
                        Verdict::Confirmed
                    } else {
                        Verdict::Rejected
                    },
                    None,
                    at + Duration::milliseconds(n),
                ),
                &OPEN,
            )
        })
        .collect();
    let outcomes = join_all(keeps.iter().map(|u| store.update_lead(&lead.id, u))).await;
    let applied = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(UpdateOutcome::Applied(_))))
        .count();
    assert_eq!(applied, 1, "{outcomes:?}");
    let read = store.get_lead(&lead.id).await.expect("get").expect("lead");
    let received_at = read.kept_verdicts["ntherm"].received_at;
    let drops: Vec<LeadUpdate> = (0..8)
        .map(|_| LeadUpdate::new(at).drop_kept_verdict("ntherm", received_at))
        .collect();
    let outcomes = join_all(drops.iter().map(|u| store.update_lead(&lead.id, u))).await;
    let applied = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(UpdateOutcome::Applied(_))))
        .count();
    assert_eq!(applied, 1, "dropped (applied) once: {outcomes:?}");
}
