//! LeadSafe screening (seed 003): the hub's client against the LeadSafe sandbox over real HTTP, seeded with
//! the seed's CSV sample.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use leadhub::config::Secret;
use leadhub::connectors::leadsafe::{
    csv, read_add, read_search, read_search_detailed, Detail, LeadSafeClient, LeadSafeError,
    LeadSafeRecord, Rag, Reason,
};
use leadhub::connectors::{BuyerRequest, BuyerResponse};
use leadhub_sandbox::leadsafe::{LeadSafe, LeadSafeConfig};
use leadhub_sandbox::{Failure, Running};

const API_KEY: &str = "e2e-leadsafe-key";
const CLIENT_SECRET: &str = "e2e-leadsafe-secret-5b7c";

/// The seed's CSV upload sample, line for line (the local stack seeds its LeadSafe sandbox with it).
const SEED_CSV: &str = leadhub_local::LEADSAFE_SEED_CSV;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

fn record(ssn: &str, reason: Reason, start: &str, end: Option<&str>) -> LeadSafeRecord {
    LeadSafeRecord::new(ssn, reason, day(start), end.map(day)).expect("a valid record")
}

/// The sandbox on loopback, seeded with the seed's CSV sample as the client writes it.
async fn sandbox() -> (LeadSafe, Running) {
    let leadsafe = LeadSafe::new(LeadSafeConfig::new(API_KEY, CLIENT_SECRET));
    let running = leadsafe
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("the sandbox starts");
    let records = [
        record("123456789", Reason::Default, "2024-01-05", None),
        record(
            "111222333",
            Reason::RevokePaymentAuth,
            "2024-01-06",
            Some("2024-02-12"),
        ),
        record("240120120", Reason::Lawsuit, "2024-01-07", None),
        record("411411411", Reason::RegulatoryComplaint, "2024-01-08", None),
        record("910910910", Reason::DebtConsolidation, "2024-01-09", None),
        record(
            "761789231",
            Reason::Default,
            "2024-01-10",
            Some("2024-02-19"),
        ),
        record("123123123", Reason::SuspectedIdTheft, "2024-01-11", None),
        record("412421341", Reason::Bankruptcy, "2024-01-12", None),
    ];
    let upload = csv("exampleco", &records).expect("writes the CSV");
    assert_eq!(
        upload.lines().collect::<Vec<_>>(),
        SEED_CSV.lines().collect::<Vec<_>>()
    );
    assert_eq!(leadsafe.load_csv(&upload), Ok(8));
    (leadsafe, running)
}

fn client_of(running: &Running, api_key: &str, client_secret: &str) -> LeadSafeClient {
    LeadSafeClient::with_base_url(
        reqwest::Url::parse(&running.url("/")).expect("url"),
        Secret::new(api_key),
        Secret::new(client_secret),
    )
    .expect("a client")
}

/// Send a built request as it is: method, URL, headers, body.
async fn send(request: BuyerRequest) -> BuyerResponse {
    let response = reqwest::Client::new()
        .request(request.method, request.url)
        .headers(request.headers)
        .body(request.body)
        .send()
        .await
        .expect("the sandbox answers");
    BuyerResponse {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.expect("a body"),
    }
}

async fn search(client: &LeadSafeClient, ssn: &str) -> Result<Rag, LeadSafeError> {
    let answer = send(client.search(ssn).expect("builds")).await;
    read_search(&answer, Utc::now())
}

async fn search_detailed(
    client: &LeadSafeClient,
    ssn: &str,
) -> Result<(Rag, Vec<Detail>), LeadSafeError> {
    let answer = send(client.search_detailed(ssn).expect("builds")).await;
    read_search_detailed(&answer, Utc::now())
}

#[tokio::test]
async fn leadsafe_searches_the_seeds_csv_sample() {
    let (leadsafe, running) = sandbox().await;
    let client = client_of(&running, API_KEY, CLIENT_SECRET);
    // The sandbox's mapping: Red for an active record of any reason but DebtConsolidation; Amber for
    // records that are all DebtConsolidation or ended; Green for none.
    let rows = [
        ("123456789", Rag::Red),
        ("123-45-6789", Rag::Red),
        ("240120120", Rag::Red),
        ("411411411", Rag::Red),
        ("123123123", Rag::Red),
        ("412421341", Rag::Red),
        ("910910910", Rag::Amber),
        ("111222333", Rag::Amber),
        ("761789231", Rag::Amber),
        ("555443333", Rag::Green),
    ];
    for (ssn, expected) in rows {
        assert_eq!(search(&client, ssn).await, Ok(expected), "{ssn}");
    }
    // Every request carried the seed's body and Basic auth.
    let searched = leadsafe.searched();
    assert_eq!(searched.len(), rows.len());
    assert_eq!(searched[1], "123456789", "sent as 9 digits");
    assert!(leadsafe.received().iter().all(|exchange| exchange
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic "))));

    assert_eq!(
        search_detailed(&client, "111222333").await,
        Ok((
            Rag::Amber,
            vec![Detail {
                reason: Reason::RevokePaymentAuth,
                start_date: day("2024-01-06"),
                end_date: Some(day("2024-02-12")),
            }]
        ))
    );
    assert_eq!(
        search_detailed(&client, "123456789").await,
        Ok((
            Rag::Red,
            vec![Detail {
                reason: Reason::Default,
                start_date: day("2024-01-05"),
                end_date: None,
            }]
        ))
    );
    assert_eq!(
        search_detailed(&client, "555443333").await,
        Ok((Rag::Green, vec![]))
    );
}

#[tokio::test]
async fn leadsafe_add_then_search_finds_the_record() {
    let (leadsafe, running) = sandbox().await;
    let client = client_of(&running, API_KEY, CLIENT_SECRET);
    assert_eq!(search(&client, "111111222").await, Ok(Rag::Green));

    // The seed's add sample: RevokePaymentAuth from 2024-04-02, no end.
    let added = [record(
        "111-11-1222",
        Reason::RevokePaymentAuth,
        "2024-04-02",
        None,
    )];
    let answer = send(client.add(&added).expect("builds")).await;
    assert_eq!(read_add(&answer, Utc::now()), Ok(()));
    assert_eq!(search(&client, "111111222").await, Ok(Rag::Red));
    assert_eq!(
        search_detailed(&client, "111111222").await,
        Ok((
            Rag::Red,
            vec![Detail {
                reason: Reason::RevokePaymentAuth,
                start_date: day("2024-04-02"),
                end_date: None,
            }]
        ))
    );

    // The customer left the status: the same record with an end date updates it.
    let ended = [record(
        "111111222",
        Reason::RevokePaymentAuth,
        "2024-04-02",
        Some("2024-05-01"),
    )];
    let answer = send(client.add(&ended).expect("builds")).await;
    assert_eq!(read_add(&answer, Utc::now()), Ok(()));
    assert_eq!(search(&client, "111111222").await, Ok(Rag::Amber));
    assert_eq!(
        leadsafe
            .records()
            .iter()
            .filter(|r| r.ssn == "111111222")
            .count(),
        1,
        "updated, not added twice"
    );
}

#[tokio::test]
async fn leadsafe_wrong_credentials_are_unauthorized() {
    let (_leadsafe, running) = sandbox().await;
    for (key, secret) in [
        (API_KEY, "wrong-secret"),
        ("wrong-key", CLIENT_SECRET),
        (CLIENT_SECRET, API_KEY),
    ] {
        let client = client_of(&running, key, secret);
        assert_eq!(
            search(&client, "123456789").await,
            Err(LeadSafeError::Unauthorized)
        );
        assert_eq!(
            search_detailed(&client, "123456789").await,
            Err(LeadSafeError::Unauthorized)
        );
        let add = [record("222333444", Reason::Abusive, "2024-06-01", None)];
        let answer = send(client.add(&add).expect("builds")).await;
        assert_eq!(
            read_add(&answer, Utc::now()),
            Err(LeadSafeError::Unauthorized)
        );
    }
    // Nothing was added with the wrong credentials.
    let client = client_of(&running, API_KEY, CLIENT_SECRET);
    assert_eq!(search(&client, "222333444").await, Ok(Rag::Green));
}

#[tokio::test]
async fn leadsafe_passing_trouble_is_retried_and_refusals_carry_the_message() {
    let (leadsafe, running) = sandbox().await;
    let client = client_of(&running, API_KEY, CLIENT_SECRET);
    leadsafe.fail_next(Failure {
        status: 429,
        times: 1,
        delay_ms: 0,
        retry_after: Some("7".into()),
        body: None,
    });
    assert_eq!(
        search(&client, "123456789").await,
        Err(LeadSafeError::Retry {
            after: Some(Duration::from_secs(7))
        })
    );
    leadsafe.fail_next(Failure::status(503, 1));
    assert_eq!(
        search(&client, "123456789").await,
        Err(LeadSafeError::Retry { after: None })
    );
    leadsafe.fail_next(Failure {
        status: 400,
        times: 1,
        delay_ms: 0,
        retry_after: None,
        body: Some(serde_json::json!({"code": 400, "message": "SocialSecurityNumber 123456789 is blocked"})),
    });
    assert_eq!(
        search(&client, "123456789").await,
        Err(LeadSafeError::Refused {
            status: 400,
            message: "SocialSecurityNumber *** is blocked".into()
        })
    );
    // And then it answers again.
    assert_eq!(search(&client, "123456789").await, Ok(Rag::Red));
}
