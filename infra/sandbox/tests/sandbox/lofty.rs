use std::time::Duration;

use leadhub_sandbox::lofty::{Lofty, LoftyConfig};
use leadhub_sandbox::Failure;
use serde_json::{json, Value};

use crate::{answer, client, eventually, loopback, Receiver};

fn config() -> LoftyConfig {
    LoftyConfig {
        rate_limit: 100,
        ..LoftyConfig::new("tok")
    }
}

fn lead(email: &str) -> Value {
    json!({"firstName": "Kunkun", "lastName": "An", "emails": [email], "phones": ["+17275550100"], "source": "leadhub", "leadRouting": true})
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    answer(request.bearer_auth("tok").send().await.expect("send")).await
}

#[tokio::test]
async fn lofty_refuses_without_the_bearer_token_and_still_sends_rate_limit_headers() {
    let lofty = Lofty::new(config());
    let server = lofty.start(loopback()).await.expect("start");
    for request in [
        client().get(server.url("/v1.0/leads")),
        client()
            .get(server.url("/v1.0/leads"))
            .header("authorization", "Bearer nope"),
        client()
            .get(server.url("/v1.0/leads"))
            .header("authorization", "tok"),
    ] {
        let response = request.send().await.expect("send");
        assert_eq!(response.headers()["x-ratelimit-limit"], "100");
        assert_eq!(
            response.headers()["x-ratelimit-remaining"],
            "100",
            "a 401 does not count"
        );
        assert!(response.headers().contains_key("x-ratelimit-reset"));
        assert_eq!(
            answer(response).await,
            (401, json!({"message": "Unauthorized"}))
        );
    }
}

#[tokio::test]
async fn lofty_creates_leads_finds_them_by_email_and_paginates() {
    let lofty = Lofty::new(config());
    let server = lofty.start(loopback()).await.expect("start");
    for i in 0..5 {
        let email = if i < 3 {
            "dup@example.com".to_owned()
        } else {
            format!("other{i}@example.com")
        };
        let request = client()
            .post(server.url("/v1.0/leads"))
            .header("vendorKey", "vk-1")
            .json(&lead(&email));
        assert_eq!(send(request).await, (200, json!({"leadId": i + 1})));
    }
    let (status, page) =
        send(client().get(server.url("/v1.0/leads?email=DUP@example.com&offset=1&limit=1"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        page["_metadata"],
        json!({"collection": "leads", "limit": 1, "offset": 1, "total": 3})
    );
    assert_eq!(page["leads"].as_array().expect("leads").len(), 1);
    assert_eq!(page["leads"][0]["lead"]["leadId"], 2);
    assert_eq!(page["leads"][0]["lead"]["firstName"], "Kunkun");
    let (_, all) = send(client().get(server.url("/v1.0/leads?offset=0&limit=10"))).await;
    assert_eq!(
        all["_metadata"],
        json!({"collection": "leads", "limit": 10, "offset": 0, "total": 5})
    );
    assert_eq!(all["leads"].as_array().expect("leads").len(), 5);
    let (_, beyond) = send(client().get(server.url("/v1.0/leads?offset=4"))).await;
    assert_eq!(
        beyond["_metadata"],
        json!({"collection": "leads", "limit": 10, "offset": 4, "total": 5})
    );
    assert_eq!(beyond["leads"][0]["lead"]["leadId"], 5);
    let (_, none) = send(
        client().get(server.url("/v1.0/leads?email=nobody@example.com&preciseSearchFlag=true")),
    )
    .await;
    assert_eq!(none["_metadata"]["total"], 0);
    assert_eq!(none["leads"], json!([]));
    let (_, by_phone) = send(client().get(server.url("/v1.0/leads?phone=727-555-0100"))).await;
    assert_eq!(by_phone["_metadata"]["total"], 5);
    for bad in ["limit=0", "limit=101", "offset=-1"] {
        let (status, _) = send(client().get(server.url(&format!("/v1.0/leads?{bad}")))).await;
        assert_eq!(status, 400, "{bad}");
    }
    let leads = lofty.leads();
    assert_eq!(leads.len(), 5);
    assert_eq!(leads[0].request["leadRouting"], true);
    assert_eq!(leads[0].emails, ["dup@example.com"]);
    assert_eq!(lofty.received()[0].header("vendorkey"), Some("vk-1"));
}

#[tokio::test]
async fn lofty_refuses_a_lead_nobody_can_contact() {
    let lofty = Lofty::new(config());
    let server = lofty.start(loopback()).await.expect("start");
    let (status, _) = send(
        client()
            .post(server.url("/v1.0/leads"))
            .json(&json!({"firstName": "X", "emails": [], "phones": [""]})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(
        client()
            .post(server.url("/v1.0/leads"))
            .json(&json!({"phones": ["123456789012345678901"]})),
    )
    .await;
    assert_eq!(status, 400, "a phone over 20 characters");
    let (status, _) = send(
        client()
            .post(server.url("/v1.0/leads"))
            .json(&json!({"phones": ["7275550100"]})),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn lofty_adds_notes_to_existing_leads() {
    let lofty = Lofty::new(config());
    let server = lofty.start(loopback()).await.expect("start");
    send(
        client()
            .post(server.url("/v1.0/leads"))
            .json(&lead("a@example.com")),
    )
    .await;
    let (status, body) = send(
        client()
            .post(server.url("/v1.0/notes"))
            .json(&json!({"leadId": 1, "content": "Called back", "isPin": true})),
    )
    .await;
    assert_eq!((status, body), (200, json!({"noteId": 1})));
    let (status, _) = send(
        client()
            .post(server.url("/v1.0/notes"))
            .json(&json!({"leadId": 99, "content": "x"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        client()
            .post(server.url("/v1.0/notes"))
            .json(&json!({"leadId": 1})),
    )
    .await;
    assert_eq!(status, 400);
    let notes = lofty.notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].lead_id, notes[0].content.as_str(), notes[0].is_pin),
        (1, "Called back", true)
    );
}

#[tokio::test]
async fn lofty_webhooks_subscribe_list_emit_and_delete() {
    let (receiver, hook_server) = Receiver::start(200).await;
    let lofty = Lofty::new(config());
    let server = lofty.start(loopback()).await.expect("start");
    let url = hook_server.url("/lofty/events");
    let (status, created) = send(
        client()
            .post(server.url("/v1.0/webhook"))
            .json(&json!({"listId": 2, "callbackUrl": url, "limit": 100})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        created,
        json!({"subscribeId": 1, "listId": 2, "callbackUrl": url, "limit": 100, "teamId": 1, "vendorId": 1})
    );
    for bad in [
        json!({"listId": 9, "callbackUrl": url}),
        json!({"listId": 2, "callbackUrl": "not a url"}),
        json!({"listId": 2, "callbackUrl": url, "limit": 5001}),
    ] {
        assert_eq!(
            send(client().post(server.url("/v1.0/webhook")).json(&bad))
                .await
                .0,
            400,
            "{bad}"
        );
    }
    let (status, list) = send(client().get(server.url("/v1.0/webhooks"))).await;
    assert_eq!((status, list), (200, json!([created])));
    let deliveries = lofty
        .emit(2, &json!({"leadId": 7, "event": "lead.updated"}))
        .await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, Some(200));
    assert!(
        lofty.emit(3, &json!({})).await.is_empty(),
        "nobody subscribed to list 3"
    );
    let bodies = eventually(|| {
        let bodies = receiver.bodies();
        (!bodies.is_empty()).then_some(bodies)
    })
    .await;
    assert_eq!(
        bodies[0],
        (
            "/lofty/events".to_owned(),
            json!({"leadId": 7, "event": "lead.updated"})
        )
    );
    let (status, body) = send(client().delete(server.url("/v1.0/webhook/1"))).await;
    assert_eq!((status, body), (200, json!({"subscribeId": 1})));
    assert_eq!(
        send(client().delete(server.url("/v1.0/webhook/1"))).await.0,
        404
    );
    assert_eq!(
        send(client().get(server.url("/v1.0/webhooks"))).await,
        (200, json!([]))
    );
}

#[tokio::test]
async fn lofty_rate_limit_answers_429_with_headers_until_the_window_resets() {
    let lofty = Lofty::new(LoftyConfig {
        rate_limit: 3,
        window: Duration::from_secs(2),
        ..LoftyConfig::new("tok")
    });
    let server = lofty.start(loopback()).await.expect("start");
    let get = || {
        client()
            .get(server.url("/v1.0/leads"))
            .bearer_auth("tok")
            .send()
    };
    let mut resets = Vec::new();
    for remaining in ["2", "1", "0"] {
        let response = get().await.expect("send");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-limit"], "3");
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
        resets.push(
            response.headers()["x-ratelimit-reset"]
                .to_str()
                .expect("reset")
                .to_owned(),
        );
    }
    let response = get().await.expect("send");
    assert_eq!(response.headers()["x-ratelimit-limit"], "3");
    assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
    let reset: i64 = response.headers()["x-ratelimit-reset"]
        .to_str()
        .expect("reset")
        .parse()
        .expect("epoch seconds");
    assert!(
        resets.iter().all(|r| *r == reset.to_string()),
        "one window, one reset time"
    );
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now..=now + 3).contains(&reset),
        "the window's end in epoch seconds: {reset} vs {now}"
    );
    assert_eq!(
        answer(response).await,
        (429, json!({"message": "Too Many Requests"}))
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = get().await.expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-ratelimit-remaining"], "2");
}

#[tokio::test]
async fn lofty_scripted_answers_carry_the_rate_limit_headers() {
    let lofty = Lofty::new(config());
    let server = lofty.start(loopback()).await.expect("start");
    lofty.fail_next(Failure {
        retry_after: Some("1".into()),
        ..Failure::status(429, 1)
    });
    let response = client()
        .post(server.url("/v1.0/leads"))
        .bearer_auth("tok")
        .json(&lead("a@example.com"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["x-ratelimit-remaining"], "99");
    assert!(lofty.leads().is_empty());
    let (status, _) = send(
        client()
            .post(server.url("/v1.0/leads"))
            .json(&lead("a@example.com")),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn lofty_counts_calls_with_a_valid_vendor_key_against_the_vendor_limit() {
    let lofty = Lofty::new(LoftyConfig {
        rate_limit: 2,
        vendor_key: Some("vk-1".into()),
        vendor_rate_limit: 4,
        ..LoftyConfig::new("tok")
    });
    let server = lofty.start(loopback()).await.expect("start");
    let get = |vendor_key: Option<&str>| {
        let request = client().get(server.url("/v1.0/leads")).bearer_auth("tok");
        match vendor_key {
            Some(key) => request.header("vendorKey", key),
            None => request,
        }
        .send()
    };
    // Keyless (and wrong-key) calls share the keyless limit of 2.
    for (key, remaining) in [(None, "1"), (Some("not-the-key"), "0")] {
        let response = get(key).await.expect("send");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-limit"], "2");
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
    }
    assert_eq!(get(None).await.expect("send").status(), 429);
    // The vendor's calls have their own window and limit.
    for remaining in ["3", "2", "1", "0"] {
        let response = get(Some("vk-1")).await.expect("send");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-limit"], "4");
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
    }
    let response = get(Some("vk-1")).await.expect("send");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["x-ratelimit-limit"], "4");
}

async fn subscribe(server: &leadhub_sandbox::Running, list_id: i64, url: &str, limit: Option<i64>) {
    let mut body = json!({"listId": list_id, "callbackUrl": url});
    if let Some(limit) = limit {
        body["limit"] = json!(limit);
    }
    let (status, _) = send(client().post(server.url("/v1.0/webhook")).json(&body)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn lofty_sends_lead_information_when_a_lead_is_created_noted_or_moved_and_activity_on_a_trigger(
) {
    let (receiver, hook_server) = Receiver::start(202).await;
    let lofty = Lofty::new(config());
    let server = lofty.start(loopback()).await.expect("start");
    subscribe(&server, 2, &hook_server.url("/info"), None).await;
    subscribe(&server, 3, &hook_server.url("/activity"), None).await;

    assert_eq!(
        send(
            client()
                .post(server.url("/v1.0/leads"))
                .json(&lead("a@example.com"))
        )
        .await,
        (200, json!({"leadId": 1}))
    );
    let created = eventually(|| {
        receiver
            .bodies()
            .into_iter()
            .find(|(path, _)| path == "/info")
    })
    .await;
    assert_eq!(created.1["teamId"], 1);
    assert_eq!(created.1["listId"], 2);
    assert_eq!(created.1["eventType"], "created");
    assert_eq!(created.1["lead"]["leadId"], 1);
    assert_eq!(created.1["lead"]["stage"], "New Lead");
    assert_eq!(created.1["lead"]["emails"], json!(["a@example.com"]));
    assert!(created.1["lead"]["lastUpdateTime"].is_string());

    // A note updates the lead.
    let (status, _) = send(
        client()
            .post(server.url("/v1.0/notes"))
            .json(&json!({"leadId": 1, "content": "Called back"})),
    )
    .await;
    assert_eq!(status, 200);
    eventually(|| {
        receiver
            .bodies()
            .into_iter()
            .find(|(path, body)| path == "/info" && body["eventType"] == "updated")
    })
    .await;

    // An agent moves it on: a Lead Information event with its stage, answered once sent.
    let (status, moved) = answer(
        client()
            .post(server.url("/_sandbox/leads/1/stage"))
            .json(&json!({"stage": "Contacted"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["deliveries"][0]["status"], 202);
    assert_eq!(moved["deliveries"][0]["listId"], 2);
    assert_eq!(lofty.leads()[0].stage, "Contacted");

    // The consumer browses the agent's site: a Lead Activity event.
    let deliveries = lofty
        .lead_activity(1, json!({"type": "View Property", "pageName": "Listing 9"}))
        .await
        .expect("a lead");
    assert_eq!(deliveries.len(), 1, "only the list 3 subscriber");
    assert_eq!(deliveries[0].status, Some(202));
    let activity = receiver
        .bodies()
        .into_iter()
        .find(|(path, _)| path == "/activity")
        .expect("sent before the trigger answered");
    assert_eq!(activity.1["listId"], 3);
    assert_eq!(activity.1["leadId"], 1);
    assert_eq!(activity.1["activity"]["type"], "View Property");
    assert_eq!(activity.1["activity"]["pageName"], "Listing 9");
    assert!(
        activity.1["activity"]["created"].is_i64(),
        "epoch ms set by the sandbox"
    );
    assert!(
        lofty.lead_activity(99, json!({})).await.is_none(),
        "no such lead"
    );
    let (status, _) = answer(
        client()
            .post(server.url("/_sandbox/leads/99/activity"))
            .json(&json!({}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(lofty.deliveries().len() >= 4);
}

#[tokio::test]
async fn lofty_keeps_a_subscriptions_limit_per_30_minutes() {
    let (receiver, hook_server) = Receiver::start(200).await;
    let lofty = Lofty::new(config());
    let server = lofty.start(loopback()).await.expect("start");
    assert_eq!(
        send(
            client()
                .post(server.url("/v1.0/leads"))
                .json(&lead("b@example.com"))
        )
        .await
        .0,
        200
    );
    subscribe(&server, 3, &hook_server.url("/limited"), Some(2)).await;
    subscribe(&server, 3, &hook_server.url("/open"), None).await;
    for _ in 0..3 {
        lofty
            .lead_activity(1, json!({"type": "Search"}))
            .await
            .expect("a lead");
    }
    let bodies = receiver.bodies();
    let count = |path: &str| bodies.iter().filter(|(p, _)| p == path).count();
    assert_eq!((count("/limited"), count("/open")), (2, 3));
    let held = lofty
        .deliveries()
        .into_iter()
        .filter(|d| d.error.as_deref() == Some("over the subscription's limit"))
        .count();
    assert_eq!(held, 1);
}

#[tokio::test]
async fn lofty_keeps_its_newest_leads_notes_deliveries_and_requests_up_to_its_log_capacity() {
    let (receiver, hook_server) = Receiver::start(200).await;
    let lofty = Lofty::new(config()).with_log_capacity(2);
    let server = lofty.start(loopback()).await.expect("start");
    subscribe(&server, 2, &hook_server.url("/lofty"), None).await;
    for n in 1..=3 {
        let (status, body) = send(
            client()
                .post(server.url("/v1.0/leads"))
                .json(&lead(&format!("buyer{n}@example.com"))),
        )
        .await;
        assert_eq!((status, body), (200, json!({"leadId": n})));
    }
    for n in 1..=3 {
        let (status, _) = send(
            client()
                .post(server.url("/v1.0/notes"))
                .json(&json!({"leadId": 3, "content": format!("note {n}")})),
        )
        .await;
        assert_eq!(status, 200);
    }
    let leads: Vec<i64> = lofty.leads().into_iter().map(|l| l.lead_id).collect();
    assert_eq!(leads, [2, 3], "the oldest lead is dropped");
    let notes: Vec<i64> = lofty.notes().into_iter().map(|n| n.note_id).collect();
    assert_eq!(notes, [2, 3]);
    // A dropped lead is unknown from then on.
    let (status, _) = send(
        client()
            .post(server.url("/v1.0/notes"))
            .json(&json!({"leadId": 1, "content": "late"})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(lofty.received().len(), 2);
    // Three creations and three notes were sent; two deliveries are kept.
    eventually(|| (receiver.bodies().len() == 6).then_some(())).await;
    eventually(|| (lofty.deliveries().len() == 2).then_some(())).await;
}
