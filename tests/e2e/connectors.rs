//! Each vertical through its seed's buyer API (sandboxes on loopback), in the exact format of the seed;
//! Lofty's rate limit; nTherm's final verdict through callback; credentials kept out of sight.

use std::time::Duration;

use leadhub::verticals::Vertical;
use leadhub_local::{Options, Stack};
use serde_json::Value;

use crate::support::*;

fn seed_options() -> Options {
    Options {
        buyers: Vec::new(),
        seed_sandboxes: true,
        ..options()
    }
}

async fn post_example(stack: &Stack, vertical: Vertical) -> String {
    let answer = post_lead(stack, vertical.as_str(), &vertical.example()).await;
    assert_eq!(answer.status, 202, "{vertical}: {}", answer.body);
    answer.body["leadId"].as_str().expect("leadId").to_owned()
}

/// The value at `pointer` in the normalised lead the hub stored.
async fn stored(stack: &Stack, lead_id: &str) -> Value {
    stack
        .store
        .get_lead(&lead_id.parse().expect("id"))
        .await
        .expect("store")
        .expect("stored")
        .lead
        .value()
}

#[tokio::test]
async fn every_vertical_reaches_its_seed_buyer_in_the_seeds_format() {
    let stack = stack_with(seed_options()).await;
    let sandboxes = stack.sandboxes.as_ref().expect("seed sandboxes");
    let secrets = |name: &str| {
        stack
            .config
            .destination(name)
            .expect("destination")
            .credentials
            .clone()
    };

    // HELOC -> the HELOC lender: seed 001's schema, as normalised.
    let heloc = post_example(&stack, Vertical::Heloc).await;
    wait_for_status(&stack, &heloc, &["delivered"], Duration::from_secs(5)).await;
    let quotes = sandboxes.heloc_lender.0.quotes();
    assert_eq!(quotes.len(), 1);
    let lead = stored(&stack, &heloc).await;
    for field in [
        "buildingType",
        "propertyUnits",
        "loanPurpose",
        "propertyUsage",
        "contactInfo",
        "address",
        "residentialAddress",
        "listedForSaleIn6Months",
        "purchasedOrSubjectToMortgageIn6Months",
        "liabilitiesIn4Years",
    ] {
        assert_eq!(quotes[0].lead[field], lead[field], "heloc field {field}");
    }
    let exchange = &sandboxes.heloc_lender.0.received()[0];
    let key = secrets("heloc-lender")["api_key"].expose().to_owned();
    assert_eq!(
        exchange.header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );

    // Mortgage -> Sonar: the seed's required fields, the client secret as the Authorization header.
    let mortgage = post_example(&stack, Vertical::Mortgage).await;
    wait_for_status(&stack, &mortgage, &["delivered"], Duration::from_secs(5)).await;
    let sonar = &sandboxes.sonar.0.leads()[0].body;
    let lead = stored(&stack, &mortgage).await;
    assert_eq!(sonar["purpose"], lead["purpose"]);
    for field in ["firstName", "lastName", "email"] {
        assert_eq!(
            sonar["borrower"][field], lead["borrower"][field],
            "borrower.{field}"
        );
    }
    assert_eq!(sonar["property"]["city"], lead["property"]["city"]);
    assert_eq!(sonar["property"]["state"], lead["property"]["state"]);
    assert!(
        !sonar.to_string().contains("6789"),
        "no SSN ever leaves the hub"
    );
    let secret = secrets("sonar")["client_secret"].expose().to_owned();
    assert_eq!(
        sandboxes.sonar.0.received()[0].header("authorization"),
        Some(secret.as_str())
    );

    // Solar -> nTherm: every postLead field, our callback URL, Basic auth.
    let solar = post_example(&stack, Vertical::Solar).await;
    wait_for_status(
        &stack,
        &solar,
        &["delivered", "confirmed"],
        Duration::from_secs(5),
    )
    .await;
    let posted = &sandboxes.ntherm.0.leads()[0];
    let lead = stored(&stack, &solar).await;
    for field in [
        "customer_name",
        "state",
        "city",
        "zip",
        "certificate_url",
        "dm_name",
        "utility",
        "mailing_street",
        "mailing_city",
        "mailing_zip",
        "mailing_state",
        "vendor_campaign_name",
        "email",
        "extra_data",
    ] {
        assert_eq!(posted.body[field], lead[field], "ntherm field {field}");
    }
    assert_eq!(posted.body["street"], lead["street"]);
    assert_eq!(posted.body["customer_address"], lead["street"]);
    assert_eq!(posted.body["phone_number"], "7275550134");
    assert!(
        posted
            .call_back_url
            .starts_with(&stack.url("/v1/callbacks/ntherm/")),
        "{}",
        posted.call_back_url
    );
    assert!(sandboxes.ntherm.0.received()[0]
        .header("authorization")
        .is_some_and(|h| h.starts_with("Basic ")));

    // Real estate -> Lofty: a duplicate lookup, then a LeadRequest with the destination's routing and tags.
    let real_estate = post_example(&stack, Vertical::RealEstate).await;
    wait_for_status(&stack, &real_estate, &["delivered"], Duration::from_secs(5)).await;
    let calls: Vec<(String, String)> = sandboxes
        .lofty
        .0
        .received()
        .iter()
        .map(|e| (e.method.clone(), e.path.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            ("GET".to_owned(), "/v1.0/leads".to_owned()),
            ("POST".to_owned(), "/v1.0/leads".to_owned())
        ]
    );
    let created = &sandboxes.lofty.0.leads()[0].request;
    let lead = stored(&stack, &real_estate).await;
    for field in [
        "firstName",
        "lastName",
        "emails",
        "phones",
        "leadType",
        "leadTypes",
        "birthday",
        "inquiry",
        "property",
        "source",
    ] {
        assert_eq!(created[field], lead[field], "lofty field {field}");
    }
    assert_eq!(created["leadRouting"], true);
    assert!(created["tags"]
        .as_array()
        .expect("tags")
        .contains(&"leadhub-demo".into()));

    // The same contact again: a note on the existing Lofty lead, not a second lead.
    let mut again = Vertical::RealEstate.example();
    again["content"] = "Second inquiry".into();
    let answer = post_lead(&stack, "real-estate", &again).await;
    let second = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &second, &["delivered"], Duration::from_secs(5)).await;
    assert_eq!(sandboxes.lofty.0.leads().len(), 1);
    assert_eq!(sandboxes.lofty.0.notes().len(), 1);
}

#[tokio::test]
async fn ntherms_final_verdict_arrives_through_callback_and_shows_on_the_timeline() {
    let stack = stack_with(seed_options()).await;
    let ntherm = stack
        .sandboxes
        .as_ref()
        .expect("sandboxes")
        .ntherm
        .0
        .clone();
    let accepted = post_example(&stack, Vertical::Solar).await;
    let view = wait_for_status(&stack, &accepted, &["confirmed"], Duration::from_secs(5)).await;
    let verdict = view["timeline"]
        .as_array()
        .expect("timeline")
        .last()
        .expect("event")
        .clone();
    assert_eq!(verdict["kind"], "buyer_verdict");
    assert_eq!(verdict["destination"], "ntherm");
    assert_eq!(verdict["reason"], "Lead accepted.");

    // Rejected after posting: the lead moves to rejected_after_post.
    ntherm.reject_all_after_post(true);
    let mut lead = Vertical::Solar.example();
    lead["phone_number"] = "8135550142".into();
    let answer = post_lead(&stack, "solar", &lead).await;
    let rejected = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let view = wait_for_status(
        &stack,
        &rejected,
        &["rejected_after_post"],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        view["timeline"]
            .as_array()
            .expect("timeline")
            .last()
            .expect("event")["reason"],
        "Lead rejected after review."
    );
    assert!(
        ntherm.callbacks().iter().all(|c| c.status == Some(200)),
        "{:?}",
        ntherm.callbacks()
    );
}

#[tokio::test]
async fn lofty_429_waits_for_the_reset_and_then_succeeds() {
    let window = Duration::from_secs(2);
    let stack = stack_with(Options {
        lofty_rate_limit: (3, window),
        // One attempt only: a 429's wait must not use it up.
        max_attempts: 1,
        ..seed_options()
    })
    .await;
    let lofty = stack.sandboxes.as_ref().expect("sandboxes").lofty.0.clone();
    // Another integration of the same account has used the window up: the hub, which paces on what Lofty's
    // answers announce, learns of it only from a 429.
    let server = &stack.sandboxes.as_ref().expect("sandboxes").lofty.1;
    for _ in 0..3 {
        let answer = client()
            .get(server.url("/v1.0/leads"))
            .bearer_auth(lofty.config().access_token.clone())
            .send()
            .await
            .expect("the sandbox answers");
        assert_eq!(answer.status(), 200);
    }
    // Two leads take four calls (lookup + create each) against a limit of three per window.
    let first = post_example(&stack, Vertical::RealEstate).await;
    let mut other = Vertical::RealEstate.example();
    other["emails"] = serde_json::json!(["someone.else@example.com"]);
    other["phones"] = serde_json::json!(["(813) 555-0142"]);
    let answer = post_lead(&stack, "real-estate", &other).await;
    let second = answer.body["leadId"].as_str().expect("leadId").to_owned();
    for id in [&first, &second] {
        wait_for_status(&stack, id, &["delivered"], Duration::from_secs(15)).await;
    }
    let exchanges = lofty.received();
    let limited = exchanges
        .iter()
        .position(|e| e.status == 429)
        .expect("the rate limit was reached");
    let window_start = exchanges[0].at;
    let after = &exchanges[limited + 1..];
    assert!(!after.is_empty(), "the delivery went on after the 429");
    assert!(
        after
            .iter()
            .all(|e| e.at >= window_start + chrono::Duration::from_std(window).expect("duration")),
        "no call before the window reset: {:?}",
        exchanges
            .iter()
            .map(|e| (e.at, e.status))
            .collect::<Vec<_>>()
    );
    let mut saw_retry = false;
    for id in [&first, &second] {
        let view = get_lead(&stack, id).await.body;
        saw_retry |= view["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["code"] == "http_429");
    }
    assert!(saw_retry, "a 429 retry is on a timeline");
    assert_eq!(lofty.leads().len(), 2);
    for id in [&first, &second] {
        let view = get_lead(&stack, id).await.body;
        assert_eq!(
            view["deliveries"][0]["attempts"], 1,
            "the wait used no attempt: {view}"
        );
    }
}

#[tokio::test]
async fn buyer_credentials_never_appear_in_logs_timelines_or_the_status_api() {
    let stack = stack_with(seed_options()).await;
    let logs = logs();
    let mut views = String::new();
    for vertical in Vertical::ALL {
        let id = post_example(&stack, vertical).await;
        let view = wait_for_status(
            &stack,
            &id,
            &["delivered", "confirmed"],
            Duration::from_secs(5),
        )
        .await;
        views.push_str(&view.to_string());
        let record = stack
            .store
            .get_lead(&id.parse().expect("id"))
            .await
            .expect("store")
            .expect("stored");
        views.push_str(&format!("{:?}", record.events));
    }
    let text = String::from_utf8(logs.lock().expect("logs").clone()).expect("utf-8");
    for destination in &stack.config.destinations {
        for (name, secret) in &destination.credentials {
            let value = secret.expose();
            assert!(
                !text.contains(value),
                "{}.{name} is in a log line",
                destination.id
            );
            assert!(
                !views.contains(value),
                "{}.{name} is in a timeline or the status API",
                destination.id
            );
        }
    }
}
