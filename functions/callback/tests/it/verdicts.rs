//! Verdicts as buyers really send them: nTherm's final result with a textual `success_bit`, with no
//! content type or as text/plain; early (before the buyer's answer to the POST is recorded); repeated; and
//! bodies of an unknown shape, kept for the operator. Returns within the window and with a listed reason.

use std::sync::Arc;

use callback::Callback;
use chrono::{DateTime, Duration, Utc};
use leadhub::callbacks;
use leadhub::lead::{
    now, DeliveryState, DeliveryStatus, EventKind, LeadId, LeadRecord, LeadStatus, TimelineEvent,
};
use leadhub::lifecycle::{self, Ports, VerdictRules};
use leadhub::live_config::LiveConfig;
use leadhub::queue::memory::MemoryQueue;
use leadhub::settings::Config;
use leadhub::store::memory::MemoryStore;
use leadhub::store::{
    DeliveryExpect, DeliveryTallies, LeadStore, LeadUpdate, UnparsedCallbacks, UpdateOutcome,
};
use leadhub::transport::{Scripted, Transport};
use leadhub::vertical::Vertical;
use serde_json::{json, Value};

fn secrets() -> std::collections::BTreeMap<String, String> {
    [
        ("HASH_KEY", "verdicts-test-hash-key-0123456789abcdef"),
        ("CALLBACK_KEY", "verdicts-test-callback-key-0123456789"),
        ("HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

const CONFIG: &str = r#"
[hub]
public_base_url = "http://127.0.0.1:3000"
hash_key = "env:HASH_KEY"
callback_key = "env:CALLBACK_KEY"

[[destinations]]
id = "ntherm"
kind = "webhook"
url = "https://buyer.example/leads"
signing_secret = "env:HOOK_SECRET"
verticals = ["solar"]
return_reasons = ["Bad phone", "Duplicate"]
return_window_days = 3
"#;

struct Setup {
    callback: Callback,
    store: Arc<MemoryStore>,
    config: Arc<Config>,
    lead: LeadRecord,
}

/// A solar lead whose delivery to `ntherm` is in `status` (accepted `accepted_days_ago` days ago when
/// accepted), the lead `lead_status`.
async fn setup(status: DeliveryStatus, lead_status: LeadStatus, accepted_days_ago: i64) -> Setup {
    let config = Arc::new(Config::from_toml(CONFIG, &secrets()).expect("a valid configuration"));
    let store = Arc::new(MemoryStore::new());
    let at = now();
    let mut lead = LeadRecord::received(
        LeadId::generate(at),
        "partner",
        Vertical::Solar,
        json!({}),
        at,
        None,
    );
    lead.status = lead_status;
    let mut state = DeliveryState::pending(at);
    state.status = status;
    state.attempts = 1;
    lead.deliveries.insert("ntherm".to_owned(), state);
    if status == DeliveryStatus::Accepted {
        lead.events.push(
            TimelineEvent::new(
                at - Duration::days(accepted_days_ago),
                EventKind::DeliveryAccepted,
                LeadStatus::Routing,
            )
            .destination("ntherm")
            .attempt(1),
        );
    }
    store.create_lead(&lead, None).await.expect("create");
    let callback = Callback {
        config: LiveConfig::fixed(config.clone()),
        store: store.clone(),
        dispatch_queue: Arc::new(MemoryQueue::new(
            "dispatch",
            std::time::Duration::from_secs(5),
        )),
        suppressions: store.clone(),
        leadsafe_reports: store.clone(),
        transport: Arc::new(Scripted::new([])) as Arc<dyn Transport>,
        buyer_refs: store.clone(),
        tallies: store.clone(),
        unparsed_callbacks: store.clone(),
    };
    Setup {
        callback,
        store,
        config,
        lead,
    }
}

impl Setup {
    fn url(&self) -> String {
        let token = callbacks::token(&self.config.callback_signer, "ntherm", &self.lead.id);
        format!("/v1/callbacks/ntherm/{token}")
    }

    async fn send(&self, uri: &str, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
        let mut request = http::Request::builder().method("POST").uri(uri);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request.body(body.to_vec()).expect("a request");
        let response = self.callback.handle(request).await;
        let status = response.status().as_u16();
        let body = serde_json::from_str(response.body()).expect("a JSON answer");
        (status, body)
    }

    async fn post(&self, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
        self.send(&self.url(), content_type, body).await
    }

    async fn post_json(&self, body: &Value) -> (u16, Value) {
        self.post(
            Some("application/json"),
            &serde_json::to_vec(body).expect("encodes"),
        )
        .await
    }

    async fn lead(&self) -> LeadRecord {
        self.store
            .get_lead(&self.lead.id)
            .await
            .expect("get")
            .expect("the lead")
    }

    fn verdicts(lead: &LeadRecord) -> Vec<(String, String)> {
        lead.events
            .iter()
            .filter(|e| e.kind == EventKind::BuyerVerdict)
            .map(|e| {
                (
                    e.code.clone().unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    async fn unparsed(&self) -> Vec<leadhub::store::UnparsedCallback> {
        self.store
            .list_unparsed(now() - Duration::days(1), None, 100, now())
            .await
            .expect("list")
    }
}

#[tokio::test]
async fn nterms_final_result_is_taken_with_a_textual_success_bit_and_without_a_content_type() {
    for (content_type, body, status) in [
        (
            None,
            r#"{"success_bit": "true", "message": "Lead accepted."}"#,
            "confirmed",
        ),
        (
            Some("text/plain; charset=utf-8"),
            r#"{"success_bit": "1", "message": "Lead accepted."}"#,
            "confirmed",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            r#"{"success_bit": "false", "message": [{"error": "Lead rejected after review."}]}"#,
            "rejected_after_post",
        ),
    ] {
        let setup = setup(DeliveryStatus::Accepted, LeadStatus::Delivered, 0).await;
        let (code, answer) = setup.post(content_type, body.as_bytes()).await;
        assert_eq!(code, 200, "{content_type:?}: {answer}");
        assert_eq!(answer["status"], status);
        assert_eq!(answer["recorded"], true);
        assert_eq!(setup.lead().await.status.as_str(), status);
        assert!(setup.unparsed().await.is_empty(), "nothing kept unparsed");
    }
}

#[tokio::test]
async fn a_repeated_verdict_changes_nothing_and_is_answered_200() {
    let setup = setup(DeliveryStatus::Accepted, LeadStatus::Delivered, 0).await;
    let body = br#"{"success_bit": true, "message": "Lead accepted."}"#;
    let (code, first) = setup.post(None, body).await;
    assert_eq!((code, first["recorded"].clone()), (200, json!(true)));
    let before = setup.lead().await;
    let (code, again) = setup.post(None, body).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["recorded"], false);
    assert_eq!(again["status"], "confirmed");
    assert_eq!(setup.lead().await, before, "nothing changed");
}

#[tokio::test]
async fn an_early_verdict_is_kept_and_applied_once_the_acceptance_is_recorded() {
    let setup = setup(DeliveryStatus::InFlight, LeadStatus::Routing, 0).await;
    let body =
        br#"{"success_bit": "false", "message": [{"error": "Lead rejected after review."}]}"#;
    let (code, answer) = setup.post(None, body).await;
    assert_eq!(code, 202, "{answer}");
    assert_eq!(answer["kept"], true);
    assert_eq!(answer["recorded"], false);
    assert_eq!(answer["status"], "routing");
    let kept = setup.lead().await;
    assert_eq!(
        kept.kept_verdicts["ntherm"].reason.as_deref(),
        Some("Lead rejected after review.")
    );
    assert_eq!(
        kept.events.last().map(|e| e.kind),
        Some(EventKind::VerdictKept)
    );
    // Sent again: still kept (202), nothing new; another verdict is refused while it is.
    let (code, again) = setup.post(None, body).await;
    assert_eq!((code, again["kept"].clone()), (202, json!(true)));
    assert_eq!(setup.lead().await, kept);
    let (code, other) = setup.post_json(&json!({"verdict": "confirmed"})).await;
    assert_eq!(code, 409, "{other}");
    assert_eq!(other["code"], "other_verdict_kept");

    // Dispatch records the acceptance (its write of the delivery leaves the kept verdict alone), then
    // applies the kept verdict through the lifecycle.
    let stale = setup.lead.deliveries["ntherm"].clone();
    let accepted = LeadUpdate::new(now()).delivery(
        "ntherm",
        DeliveryExpect::InFlight { attempt: 1 },
        DeliveryState {
            status: DeliveryStatus::Accepted,
            ..stale
        },
    );
    let UpdateOutcome::Applied(lead) = setup
        .store
        .update_lead(&setup.lead.id, &accepted)
        .await
        .expect("update")
    else {
        panic!("applied")
    };
    let rules = |destination: &str| VerdictRules::of(&setup.config, destination, Vertical::Solar);
    let transition = lifecycle::apply_kept(&lead, &rules, now()).expect("a kept verdict to apply");
    let ports = Ports {
        store: setup.store.as_ref(),
        queue: None,
        counters: None,
        dead_deliveries: None,
        subscribers: None,
        tallies: Some(setup.store.as_ref()),
    };
    let UpdateOutcome::Applied(after) = lifecycle::commit(ports, &lead.id, &transition)
        .await
        .expect("commit")
    else {
        panic!("applied")
    };
    assert_eq!(after.status, LeadStatus::RejectedAfterPost);
    assert!(after.kept_verdicts.is_empty());
    assert_eq!(
        Setup::verdicts(&after),
        [(
            "rejected".to_owned(),
            "Lead rejected after review.".to_owned()
        )]
    );
    // Applied once: nothing left, and the buyer's repeat is already recorded.
    assert_eq!(lifecycle::apply_kept(&after, &rules, now()), None);
    let (code, repeat) = setup.post(None, body).await;
    assert_eq!((code, repeat["recorded"].clone()), (200, json!(false)));
}

#[tokio::test]
async fn a_verdict_after_the_acceptance_applies_a_kept_one_first() {
    let setup = setup(DeliveryStatus::InFlight, LeadStatus::Routing, 0).await;
    let (code, _) = setup
        .post_json(&json!({"verdict": "confirmed", "reason": "sold"}))
        .await;
    assert_eq!(code, 202);
    // The acceptance is recorded but the dispatch job that would apply the kept verdict has not run yet.
    let stale = setup.lead.deliveries["ntherm"].clone();
    let accepted = LeadUpdate::new(now()).delivery(
        "ntherm",
        DeliveryExpect::InFlight { attempt: 1 },
        DeliveryState {
            status: DeliveryStatus::Accepted,
            ..stale
        },
    );
    setup
        .store
        .update_lead(&setup.lead.id, &accepted)
        .await
        .expect("update");
    let (code, answer) = setup
        .post_json(&json!({"verdict": "returned", "reason": "duplicate"}))
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["status"], "returned");
    let lead = setup.lead().await;
    assert!(lead.kept_verdicts.is_empty());
    assert_eq!(
        Setup::verdicts(&lead),
        [
            ("confirmed".to_owned(), "sold".to_owned()),
            ("returned".to_owned(), "Duplicate".to_owned())
        ],
        "in the order the buyer sent them"
    );
}

#[tokio::test]
async fn bodies_that_are_not_verdicts_are_kept_for_the_operator_never_lost() {
    let setup = setup(DeliveryStatus::Accepted, LeadStatus::Delivered, 0).await;
    let before = setup.lead().await;
    let rows: [(Option<&str>, &[u8], u16, &str); 5] = [
        (
            Some("application/json"),
            br#"{"result": "ok", "email": "jane@example.com"}"#,
            202,
            "unknown_shape",
        ),
        (None, b"{\"success_bit\": ", 202, "not_json"),
        (Some("text/plain"), b"success_bit=1", 202, "not_json"),
        (
            Some("application/x-www-form-urlencoded"),
            b"success_bit=1&phone=7275550134",
            415,
            "unsupported_media_type",
        ),
        (
            Some("application/json"),
            &[b' '; callback::MAX_CALLBACK_BYTES + 1],
            413,
            "too_large",
        ),
    ];
    for (content_type, body, status, problem) in rows {
        let (code, answer) = setup.post(content_type, body).await;
        assert_eq!(code, status, "{problem}: {answer}");
        let text = answer.to_string();
        assert!(
            !text.contains("jane@") && !text.contains("7275550134"),
            "nothing of the body is echoed: {text}"
        );
        // The answer names the callback it kept (ids of one millisecond are not ordered among themselves).
        let kept = setup.unparsed().await;
        let newest = kept
            .iter()
            .find(|kept| text.contains(kept.id.as_str()))
            .expect("the answer names the kept callback");
        assert_eq!(newest.destination, "ntherm");
        assert_eq!(newest.lead_id.as_ref(), Some(&setup.lead.id));
        assert_eq!(newest.content_type.as_deref(), content_type);
        assert_eq!(newest.size, body.len() as u64);
        assert_eq!(newest.body, body);
        let id = newest.id.to_string();
        if status == 202 {
            assert_eq!(answer["kept"], "for_operator");
            assert_eq!(answer["callbackId"], id.as_str());
            assert_eq!(answer["code"], problem);
            assert_eq!(answer["recorded"], false);
        } else {
            // The problem+json codes the callback always answered these with.
            let code = if status == 413 {
                "body_too_large"
            } else {
                "unsupported_media_type"
            };
            assert_eq!(answer["code"], code);
            assert!(
                answer["detail"].as_str().is_some_and(|d| d.contains(&id)),
                "{answer}"
            );
        }
    }
    assert_eq!(setup.unparsed().await.len(), rows.len());
    assert_eq!(setup.lead().await, before, "the lead is unchanged");

    // A wrong token is refused first: nothing is kept.
    let forged = format!("/v1/callbacks/ntherm/{}.AAAA", setup.lead.id);
    let (code, _) = setup.send(&forged, None, b"not json").await;
    assert_eq!(code, 401);
    let other = setup.url().replace("/ntherm/", "/sonar/");
    let (code, _) = setup.send(&other, None, b"not json").await;
    assert_eq!(code, 401);
    assert_eq!(setup.unparsed().await.len(), rows.len());
}

#[tokio::test]
async fn a_return_within_the_window_with_a_listed_reason_is_recorded_and_tallied() {
    let setup = setup(DeliveryStatus::Accepted, LeadStatus::Delivered, 2).await;
    let (code, answer) = setup
        .post_json(&json!({"verdict": "returned", "reason": "bad PHONE"}))
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["status"], "returned");
    let lead = setup.lead().await;
    assert_eq!(
        Setup::verdicts(&lead),
        [("returned".to_owned(), "Bad phone".to_owned())]
    );
    let tallies = setup
        .store
        .tallies_since(Utc::now().date_naive(), None)
        .await
        .expect("tallies");
    assert_eq!(tallies.len(), 1);
    assert_eq!(
        (tallies[0].destination.as_str(), tallies[0].returned),
        ("ntherm", 1)
    );
}

#[tokio::test]
async fn a_return_after_the_window_or_with_an_unknown_reason_is_409_saying_which() {
    let setup = setup(DeliveryStatus::Accepted, LeadStatus::Delivered, 4).await;
    let (code, answer) = setup
        .post_json(&json!({"verdict": "returned", "reason": "Duplicate"}))
        .await;
    assert_eq!(code, 409, "{answer}");
    assert_eq!(answer["code"], "return_window_closed");
    let detail = answer["detail"].as_str().expect("detail");
    assert!(detail.contains("within 3 days"), "{detail}");
    let accepted: DateTime<Utc> = setup
        .lead
        .events
        .iter()
        .find(|e| e.kind == EventKind::DeliveryAccepted)
        .map(|e| e.at)
        .expect("accepted");
    let closed =
        (accepted + Duration::days(3)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert!(detail.contains(&closed), "{detail}");

    let setup = self::setup(DeliveryStatus::Accepted, LeadStatus::Delivered, 1).await;
    let (code, answer) = setup
        .post_json(&json!({"verdict": "returned", "reason": "too expensive"}))
        .await;
    assert_eq!(code, 409, "{answer}");
    assert_eq!(answer["code"], "unknown_return_reason");
    assert!(answer["detail"]
        .as_str()
        .is_some_and(|d| d.contains("`Bad phone`, `Duplicate`")));
    assert_eq!(answer["errors"][0]["field"], "reason");
    assert_eq!(answer["errors"][0]["code"], "invalid_value");
    assert!(!answer.to_string().contains("too expensive"), "not echoed");
    let (code, answer) = setup.post_json(&json!({"verdict": "returned"})).await;
    assert_eq!(code, 409);
    assert_eq!(answer["errors"][0]["code"], "required");
    assert_eq!(
        setup.lead().await.status,
        LeadStatus::Delivered,
        "unchanged"
    );
}
