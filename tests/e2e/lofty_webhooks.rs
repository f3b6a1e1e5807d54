//! Lofty's webhooks end to end: a real-estate lead delivered to the Lofty sandbox, the hub subscribed to
//! its events by the admin command's own code, the sandbox's events recorded on the lead's timeline.

use std::time::Duration;

use leadhub::connectors::lofty::webhooks::intake_token;
use leadhub::transport::ReqwestTransport;
use leadhub::verticals::Vertical;
use leadhub_admin::lofty::{self as admin, Subscribed};
use leadhub_local::{Options, Stack};
use serde_json::{json, Value};

use crate::support::*;

fn lofty_options() -> Options {
    Options {
        buyers: Vec::new(),
        seed_sandboxes: true,
        // Delivery, subscribing, listing and deleting all count against the sandbox's rate limit.
        lofty_rate_limit: (100, Duration::from_secs(60)),
        ..options()
    }
}

async fn intake(stack: &Stack, destination: &str, token: &str, body: &Value) -> Answer {
    send(
        client()
            .post(stack.url(&format!("/v1/lofty/{destination}/{token}")))
            .json(body),
    )
    .await
}

#[tokio::test]
async fn a_lofty_lead_activity_reaches_the_leads_timeline_through_the_subscribed_webhook() {
    lead_activity_reaches_the_timeline(lofty_options()).await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_a_lofty_lead_activity_reaches_the_leads_timeline_on_dynamodb() {
    lead_activity_reaches_the_timeline(Options {
        backend: aws_backend("lofty"),
        ..lofty_options()
    })
    .await;
}

async fn lead_activity_reaches_the_timeline(options: Options) {
    let stack = stack_with(options).await;
    let lofty = stack.sandboxes.as_ref().expect("sandboxes").lofty.0.clone();
    let transport = ReqwestTransport::new();

    let lead_id = post_accepted(&stack, "real-estate", &Vertical::RealEstate.example()).await;
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(30)).await;
    let lofty_lead_id = lofty.leads()[0].lead_id;
    // The delivery recorded Lofty's id for the lead, and the hub maps it back.
    assert_eq!(
        stack
            .buyer_refs
            .leads_for_buyer_ref("lofty", &lofty_lead_id.to_string(), 5)
            .await
            .expect("store")
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![lead_id.clone()]
    );

    // `leadhub-admin lofty webhooks subscribe lofty`: both lists, once.
    let subscribed = admin::subscribe(&stack.config, "lofty", &[], None, &transport)
        .await
        .expect("subscribed");
    assert_eq!(subscribed.len(), 2);
    assert!(subscribed
        .iter()
        .all(|(_, outcome)| matches!(outcome, Subscribed::New(_))));
    let hooks = lofty.webhooks();
    assert_eq!(
        hooks.iter().map(|h| h.list_id).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let token = intake_token(&stack.config.callback_signer, "lofty");
    let url = stack.url(&format!("/v1/lofty/lofty/{token}"));
    assert!(hooks.iter().all(|h| h.callback_url == url), "{hooks:?}");
    let again = admin::subscribe(&stack.config, "lofty", &[], None, &transport)
        .await
        .expect("subscribed");
    assert!(
        again
            .iter()
            .all(|(_, outcome)| matches!(outcome, Subscribed::Already(_))),
        "{again:?}"
    );
    assert_eq!(lofty.webhooks().len(), 2, "nothing subscribed twice");
    let listed = admin::list(&stack.config, "lofty", &transport)
        .await
        .expect("listed");
    assert!(listed.iter().all(|l| l.ours) && listed.len() == 2);
    assert!(listed.iter().all(|l| admin::shown_target(l) == "this hub"));

    // The consumer browses the agent's site: Lofty posts a Lead Activity event.
    let deliveries = lofty
        .lead_activity(
            lofty_lead_id,
            json!({"type": "View Property", "text": "3 bed near 100 Bayshore Blvd", "pageName": "Jane's search"}),
        )
        .await
        .expect("a Lofty lead");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, Some(202), "{deliveries:?}");
    let answered: Value =
        serde_json::from_str(deliveries[0].answer.as_deref().unwrap_or("{}")).expect("json");
    assert_eq!(answered, json!({"received": true, "recorded": 1}));
    let view = get_lead(&stack, &lead_id).await.body;
    let event = last_event(&view);
    assert_eq!(event["kind"], "buyer_activity");
    assert_eq!(event["code"], "lead_activity");
    assert_eq!(event["destination"], "lofty");
    assert_eq!(event["status"], "delivered");
    assert_eq!(view["status"], "delivered", "activity changes no status");
    let reason = event["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("Lofty: lead activity View Property (at "),
        "{reason}"
    );
    for pii in ["Bayshore", "Jane", "3 bed"] {
        assert!(
            !view.to_string().contains(pii),
            "{pii} on the timeline: {view}"
        );
    }

    // The same event delivered again is not recorded twice.
    let last_body = json!({
        "teamId": 1, "listId": 3, "leadId": lofty_lead_id,
        "activity": {"type": "View Property", "created": 1_764_669_600_000_i64}
    });
    let first = intake(&stack, "lofty", &token, &last_body).await;
    assert_eq!(
        (first.status, first.body["recorded"].clone()),
        (202, json!(1))
    );
    let repeat = intake(&stack, "lofty", &token, &last_body).await;
    assert_eq!(
        (repeat.status, repeat.body["recorded"].clone()),
        (202, json!(0))
    );

    // An agent moves the lead on in Lofty: a Lead Information event with its stage.
    let moved = lofty
        .set_stage(lofty_lead_id, "Contacted")
        .await
        .expect("a Lofty lead");
    assert_eq!(moved[0].status, Some(202), "{moved:?}");
    let view = get_lead(&stack, &lead_id).await.body;
    let event = last_event(&view);
    assert_eq!(event["code"], "lead_information");
    let reason = event["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("Lofty: lead information updated (stage Contacted, at "),
        "{reason}"
    );
    assert_eq!(
        timeline_kinds(&view)
            .iter()
            .filter(|k| *k == "buyer_activity")
            .count(),
        3
    );

    // Neither the intake token nor anything of Lofty's payload reached a log line.
    let logged = String::from_utf8_lossy(&logs().lock().expect("logs")).into_owned();
    for secret in [token.as_str(), "Bayshore", "Jane's search", "3 bed"] {
        assert!(find_token(&logged, secret).is_none(), "{secret} logged");
    }

    // `leadhub-admin lofty webhooks delete lofty`: the hub's subscriptions go.
    let deleted = admin::delete(&stack.config, "lofty", None, &transport)
        .await
        .expect("deleted");
    assert_eq!(deleted.len(), 2);
    assert!(lofty.webhooks().is_empty());
}

#[tokio::test]
async fn the_lofty_intake_refuses_wrong_tokens_and_bad_events_and_keeps_unknown_leads_out() {
    let stack = stack_with(lofty_options()).await;
    let token = intake_token(&stack.config.callback_signer, "lofty");
    let activity =
        json!({"teamId": 1, "listId": 3, "leadId": 424242, "activity": {"type": "Search"}});

    // A wrong token, another destination's token, a token for a destination that is not Lofty's, an
    // unknown destination: all the 404 of a path the hub does not serve.
    let nowhere = send(client().post(stack.url("/v1/nowhere")).json(&activity)).await;
    assert_eq!(nowhere.status, 404);
    let sonar_token = intake_token(&stack.config.callback_signer, "sonar");
    for (destination, token) in [
        ("lofty", "not-the-token".to_owned()),
        ("lofty", token[1..].to_owned()),
        ("lofty", sonar_token.clone()),
        ("sonar", sonar_token.clone()),
        (
            "no-such-buyer",
            intake_token(&stack.config.callback_signer, "no-such-buyer"),
        ),
    ] {
        let answer = intake(&stack, destination, &token, &activity).await;
        assert_eq!(answer.status, 404, "{destination}: {}", answer.body);
        assert_eq!(answer.body, nowhere.body, "{destination}");
        assert_eq!(answer.headers["content-type"], "application/problem+json");
    }

    // A Lofty lead the hub never delivered: received, recorded nowhere.
    let unknown = intake(&stack, "lofty", &token, &activity).await;
    assert_eq!(unknown.status, 202, "{}", unknown.body);
    assert_eq!(unknown.body, json!({"received": true, "recorded": 0}));
    // A list the hub does not take.
    let agents = intake(
        &stack,
        "lofty",
        &token,
        &json!({"listId": 1, "user": {"id": 5}}),
    )
    .await;
    assert_eq!(
        (agents.status, agents.body["recorded"].clone()),
        (202, json!(0))
    );

    // Events the hub cannot read: 400 naming the field, never the values.
    for (body, field) in [
        (json!({"leadId": 5}), "listId"),
        (json!({"listId": 3, "activity": {"type": "x"}}), "leadId"),
        (json!({"listId": 3, "leadId": 5}), "activity"),
        (
            json!({"listId": 2, "lead": {"firstName": "Jane", "emails": ["jane@example.com"]}}),
            "lead.leadId",
        ),
        (json!(["not", "an", "object"]), "$"),
    ] {
        let answer = intake(&stack, "lofty", &token, &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(answer.body["errors"][0]["field"], field, "{body}");
        assert!(!answer.body.to_string().contains("jane"), "{}", answer.body);
    }
    let text = send(
        client()
            .post(stack.url(&format!("/v1/lofty/lofty/{token}")))
            .header("content-type", "text/plain")
            .body(activity.to_string()),
    )
    .await;
    assert_eq!(text.status, 415);
    let big = json!({"listId": 2, "lead": {"leadId": 1, "notes": "x".repeat(70 * 1024)}});
    assert_eq!(intake(&stack, "lofty", &token, &big).await.status, 413);
    let get = send(client().get(stack.url(&format!("/v1/lofty/lofty/{token}")))).await;
    assert_eq!(get.status, 405);
}
