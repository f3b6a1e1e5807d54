//! `GET /v1/leads`: a partner's own leads, newest first, a page at a time; and another partner's lead is
//! a 404 exactly like a missing one, on every partner endpoint that takes a lead id.

use std::collections::BTreeSet;
use std::time::Duration;

use leadhub_local::Stack;
use serde_json::Value;

use crate::support::*;

async fn post_as(stack: &Stack, key: &str, secret: &str, tag: &str) -> String {
    let answer = send(
        client()
            .post(stack.url("/v1/leads/heloc"))
            .basic_auth(key, Some(secret))
            .json(&heloc_lead(tag)),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    answer.body["leadId"].as_str().expect("leadId").to_owned()
}

async fn list_as(stack: &Stack, key: &str, secret: &str, query: &str) -> Answer {
    send(
        client()
            .get(stack.url(&format!("/v1/leads{query}")))
            .basic_auth(key, Some(secret)),
    )
    .await
}

async fn list(stack: &Stack, query: &str) -> Answer {
    list_as(stack, KEY, SECRET, query).await
}

fn ids(page: &Value) -> Vec<String> {
    page["leads"]
        .as_array()
        .unwrap_or_else(|| panic!("no leads: {page}"))
        .iter()
        .map(|lead| lead["leadId"].as_str().expect("leadId").to_owned())
        .collect()
}

/// Every page of the demo partner's listing of `query` (`&`-joined parameters, may be empty).
async fn all_pages(stack: &Stack, key: &str, secret: &str, query: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let mut parameters: Vec<String> = Vec::new();
        if !query.is_empty() {
            parameters.push(query.to_owned());
        }
        if let Some(cursor) = &cursor {
            parameters.push(format!("cursor={cursor}"));
        }
        let joined = if parameters.is_empty() {
            String::new()
        } else {
            format!("?{}", parameters.join("&"))
        };
        let page = list_as(stack, key, secret, &joined).await;
        assert_eq!(page.status, 200, "{}", page.body);
        pages.push(ids(&page.body));
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(page.body["nextCursor"].is_null(), "{}", page.body);
                return pages;
            }
        }
    }
    panic!("the listing never ended");
}

#[tokio::test]
async fn a_partner_lists_only_its_own_leads_newest_first_a_page_at_a_time() {
    lists_own_leads_a_page_at_a_time(options()).await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_a_partner_lists_only_its_own_leads_on_dynamodb() {
    lists_own_leads_a_page_at_a_time(leadhub_local::Options {
        backend: aws_backend("listing"),
        ..options()
    })
    .await;
}

async fn lists_own_leads_a_page_at_a_time(options: leadhub_local::Options) {
    let stack = stack_with(options).await;
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(post_as(&stack, KEY, SECRET, &format!("list-{i}")).await);
        // Distinct milliseconds, so that "newest first" is the posting order reversed.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let theirs = [
        post_as(&stack, OTHER_KEY, OTHER_SECRET, "other-0").await,
        post_as(&stack, OTHER_KEY, OTHER_SECRET, "other-1").await,
    ];
    let newest_first: Vec<String> = mine.iter().rev().cloned().collect();

    let pages = all_pages(&stack, KEY, SECRET, "limit=2").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), newest_first);
    let other_pages = all_pages(&stack, OTHER_KEY, OTHER_SECRET, "").await;
    assert_eq!(
        other_pages.concat(),
        theirs.iter().rev().cloned().collect::<Vec<_>>()
    );

    // Each item: ids, vertical, status, times and where to read more; nothing of the lead itself.
    let page = list(&stack, "").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "application/json");
    assert!(page.body["nextCursor"].is_null());
    assert_eq!(
        ids(&page.body),
        newest_first,
        "default page size holds all five"
    );
    let first = &page.body["leads"][0];
    let keys: BTreeSet<&str> = first
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "leadId",
            "vertical",
            "status",
            "createdAt",
            "updatedAt",
            "statusUrl"
        ])
    );
    assert_eq!(first["vertical"], "heloc");
    assert_eq!(first["statusUrl"], format!("/v1/leads/{}", newest_first[0]));
    let view = get_lead(&stack, &newest_first[0]).await;
    assert_eq!(first["createdAt"], view.body["createdAt"]);
    let text = page.body.to_string();
    for pii in ["Jane", "Doe", "example.com", "Bayshore", "727"] {
        assert!(find_token(&text, pii).is_none(), "{pii} in {text}");
    }

    // A cursor is the partner's own: another partner's, or one made up, is a 400 naming `cursor`.
    let first_page = list(&stack, "?limit=2").await;
    let cursor = first_page.body["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let stolen = list_as(
        &stack,
        OTHER_KEY,
        OTHER_SECRET,
        &format!("?limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    assert_eq!(stolen.headers["content-type"], "application/problem+json");
    assert_eq!(stolen.body["errors"][0]["field"], "cursor");
    assert!(!stolen.body.to_string().contains(&mine[0]));
    for forged in ["garbage", "bGVhZA.bGVhZA", &cursor[1..]] {
        let answer = list(&stack, &format!("?cursor={forged}")).await;
        assert_eq!(answer.status, 400, "{forged}: {}", answer.body);
        assert_eq!(answer.body["errors"][0]["field"], "cursor");
    }
}

#[tokio::test]
async fn the_listing_filters_by_status_and_creation_time() {
    let stack = stack().await;
    let delivered = post_as(&stack, KEY, SECRET, "filter-a").await;
    wait_for_status(&stack, &delivered, &["delivered"], Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    let lead_b = heloc_lead("filter-b");
    let later = post_accepted(&stack, "heloc", &lead_b).await;
    let view = wait_for_status(&stack, &later, &["delivered"], Duration::from_secs(5)).await;
    // The same consumer again: screening refuses it as a duplicate.
    let mut duplicate = lead_b.clone();
    duplicate["affiliateId"] = serde_json::json!("aff-filter-c");
    let rejected = post_accepted(&stack, "heloc", &duplicate).await;
    wait_for_status(&stack, &rejected, &["rejected"], Duration::from_secs(5)).await;

    let pages = all_pages(&stack, KEY, SECRET, "status=delivered&limit=1").await;
    assert_eq!(pages, vec![vec![later.clone()], vec![delivered.clone()]]);
    assert_eq!(
        all_pages(&stack, KEY, SECRET, "status=rejected").await,
        vec![vec![rejected.clone()]]
    );
    assert_eq!(
        all_pages(&stack, KEY, SECRET, "status=returned").await,
        vec![Vec::<String>::new()]
    );

    // `since` is inclusive; an offset's `+` may come encoded or not.
    let since = view["createdAt"].as_str().expect("createdAt").to_owned();
    let since_pages = all_pages(&stack, KEY, SECRET, &format!("since={since}")).await;
    assert_eq!(since_pages.concat(), vec![rejected.clone(), later.clone()]);
    let at: chrono::DateTime<chrono::Utc> = since.parse().expect("a time");
    let offset = at
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).expect("an offset"))
        .to_rfc3339();
    for written in [offset.replace('+', "%2B"), offset.clone()] {
        assert_eq!(
            all_pages(
                &stack,
                KEY,
                SECRET,
                &format!("since={written}&status=delivered")
            )
            .await
            .concat(),
            vec![later.clone()],
            "{written}"
        );
    }
}

#[tokio::test]
async fn bad_listing_parameters_are_400_problem_json_naming_each() {
    let stack = stack().await;
    let rows = [
        ("?status=sold_out", "status"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=many", "limit"),
        ("?since=yesterday", "since"),
        ("?since=2026-13-01T00:00:00Z", "since"),
        ("?cursor=", "cursor"),
        ("?stat=delivered", "stat"),
        ("?limit=5&limit=6", "limit"),
    ];
    for (query, field) in rows {
        let answer = list(&stack, query).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert_eq!(answer.headers["content-type"], "application/problem+json");
        assert_eq!(answer.body["errors"][0]["field"], field, "{query}");
        assert_eq!(answer.body["errors"].as_array().map(Vec::len), Some(1));
    }
    let status = list(&stack, "?status=sold_out").await;
    let message = status.body["errors"][0]["message"]
        .as_str()
        .expect("message");
    for allowed in ["received", "delivered", "rejected_after_post", "test"] {
        assert!(message.contains(allowed), "{message}");
    }
    assert!(!status.body.to_string().contains("sold_out"));
    let every = list(&stack, "?status=x&limit=0&since=y&cursor=z").await;
    assert_eq!(every.status, 400);
    assert_eq!(every.body["errors"].as_array().map(Vec::len), Some(4));

    let anonymous = send(client().get(stack.url("/v1/leads"))).await;
    assert_eq!(anonymous.status, 401);
    let wrong = send(
        client()
            .get(stack.url("/v1/leads?limit=1"))
            .basic_auth(KEY, Some("wrong")),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let post = send(
        client()
            .post(stack.url("/v1/leads"))
            .basic_auth(KEY, Some(SECRET))
            .json(&heloc_lead("listing-post")),
    )
    .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.headers["allow"], "GET");
}

/// What a partner is told about a lead id: status, content type and body.
async fn answer_for(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    key: &str,
    secret: &str,
) -> (u16, String, Value) {
    let answer = send(
        client()
            .request(method, stack.url(path))
            .basic_auth(key, Some(secret))
            .json(&heloc_lead("probe")),
    )
    .await;
    let content_type = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (answer.status, content_type, answer.body)
}

#[tokio::test]
async fn another_partners_lead_is_a_404_exactly_like_a_missing_one_on_every_endpoint() {
    let stack = stack().await;
    let theirs = post_as(&stack, OTHER_KEY, OTHER_SECRET, "not-yours").await;
    wait_for_status_as(&stack, &theirs, OTHER_KEY, OTHER_SECRET).await;
    // A well-formed id no lead has, of the same time.
    let missing = format!("{}0000000000000000", &theirs[..theirs.len() - 16]);
    assert_ne!(missing, theirs);

    // GET /v1/leads/{leadId}, the id as issued, in lower case (ids are case-insensitive), with a trailing
    // slash: the other partner's lead answers exactly what a missing lead answers.
    for shape in [
        |id: &str| format!("/v1/leads/{id}"),
        |id: &str| format!("/v1/leads/{}", id.to_lowercase()),
        |id: &str| format!("/v1/leads/{id}/"),
    ] {
        let not_mine = answer_for(&stack, reqwest::Method::GET, &shape(&theirs), KEY, SECRET).await;
        let nothing = answer_for(&stack, reqwest::Method::GET, &shape(&missing), KEY, SECRET).await;
        assert_eq!(not_mine.0, 404, "{}", shape(&theirs));
        assert_eq!(not_mine, nothing, "{}", shape(&theirs));
        assert!(!not_mine.2.to_string().contains("other"), "{}", not_mine.2);
        // Its owner reads it.
        let own = answer_for(
            &stack,
            reqwest::Method::GET,
            &shape(&theirs),
            OTHER_KEY,
            OTHER_SECRET,
        )
        .await;
        assert_eq!(own.0, 200, "{}: {}", shape(&theirs), own.2);
    }
    // The other methods on a lead's URL tell nothing either.
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
    ] {
        let path = |id: &str| format!("/v1/leads/{id}");
        let not_mine = answer_for(&stack, method.clone(), &path(&theirs), KEY, SECRET).await;
        let nothing = answer_for(&stack, method.clone(), &path(&missing), KEY, SECRET).await;
        assert_eq!(not_mine, nothing, "{method}");
        assert_ne!(not_mine.0 / 100, 2, "{method}");
    }
    // And the listing never shows it, whatever the filters.
    for query in ["", "?status=delivered", "?status=received", "?limit=100"] {
        let page = list(&stack, query).await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        assert!(!ids(&page.body).contains(&theirs), "{query}");
        assert!(!page.body.to_string().contains(&theirs), "{query}");
    }
}

/// Wait until the other partner's lead is delivered (so that it has its whole life on record).
async fn wait_for_status_as(stack: &Stack, lead_id: &str, key: &str, secret: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let view = send(
            client()
                .get(stack.url(&format!("/v1/leads/{lead_id}")))
                .basic_auth(key, Some(secret)),
        )
        .await;
        assert_eq!(view.status, 200, "{}", view.body);
        if view.body["status"] == "delivered" {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered: {}",
            view.body
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
