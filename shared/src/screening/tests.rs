use std::sync::Arc;

use chrono::{Duration as Days, TimeZone};
use futures::future::join_all;
use serde_json::json;

use super::policy::*;
use super::*;
use crate::config::SecretSource;
use crate::connectors::leadsafe::Reason;
use crate::store::memory::MemoryStore;

const RETENTION: std::time::Duration = std::time::Duration::from_secs(180 * 86_400);

fn hasher() -> KeyedHasher {
    KeyedHasher::new(b"screening-test-key-screening-test-key")
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("a time")
}

fn lead(
    vertical: Vertical,
    partner: &str,
    body: serde_json::Value,
    at: DateTime<Utc>,
) -> LeadRecord {
    LeadRecord::received(LeadId::generate(at), partner, vertical, body, at, None)
}

fn mortgage(email: &str, phone: &str) -> serde_json::Value {
    json!({"borrower": {"email": email, "phone": phone}})
}

fn rule(fields: &[ContactField], window_days: u32, scope: Scope) -> Duplicates {
    Duplicates {
        fields: fields.to_vec(),
        window_days,
        scope,
    }
}

#[test]
fn every_verticals_example_gives_its_email_and_phone() {
    for vertical in Vertical::ALL {
        let parsed = vertical
            .parse_value(&vertical.example())
            .expect("the example is valid");
        let body = parsed.lead.value();
        for field in ContactField::ALL {
            assert!(
                !contact_values(vertical, &body, field).is_empty(),
                "{vertical}: no {field} found at {:?}",
                contact_pointers(vertical, field)
            );
        }
    }
}

#[test]
fn values_are_normalised_for_matching() {
    assert_eq!(
        normalize(ContactField::Email, "  Jane.Doe@Example.COM "),
        Some("jane.doe@example.com".into())
    );
    for phone in [
        "(727) 555-0134",
        "+1 727 555 0134",
        "17275550134",
        "727.555.0134",
    ] {
        assert_eq!(
            normalize(ContactField::Phone, phone),
            Some("7275550134".into()),
            "{phone}"
        );
    }
    assert_eq!(normalize(ContactField::Phone, "555-0134"), None);
    assert_eq!(normalize(ContactField::Email, "   "), None);
    let body = json!({"emails": ["A@x.co", "a@X.co ", "b@x.co"], "phones": ["+17275550134", "7275550134"]});
    assert_eq!(
        contact_values(Vertical::RealEstate, &body, ContactField::Email),
        vec!["a@x.co".to_owned(), "b@x.co".to_owned()]
    );
    assert_eq!(
        contact_values(Vertical::RealEstate, &body, ContactField::Phone),
        vec!["7275550134".to_owned()]
    );
}

#[test]
fn keys_are_hashes_that_depend_on_scope_and_never_hold_the_value() {
    let h = hasher();
    let a = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("jane@example.com", "7275550134"),
        t0(),
    );
    let all = duplicate_keys(&h, &rule(&ContactField::ALL, 30, Scope::All), &a);
    assert_eq!(all.len(), 2);
    for key in &all {
        assert!(key
            .key
            .starts_with(&format!("DEDUPE#mortgage#{}#", key.field)));
        assert!(!key.key.contains("jane") && !key.key.contains("7275550134"));
        assert_eq!(key.expires_at, Some(t0() + Days::days(30)));
    }
    let b = lead(
        Vertical::Mortgage,
        "other",
        mortgage("jane@example.com", "7275550134"),
        t0(),
    );
    assert_eq!(
        duplicate_keys(&h, &rule(&ContactField::ALL, 30, Scope::All), &b)[0].key,
        all[0].key,
        "scope all: partners share the key"
    );
    let mine = duplicate_keys(&h, &rule(&ContactField::ALL, 30, Scope::Partner), &a);
    let theirs = duplicate_keys(&h, &rule(&ContactField::ALL, 30, Scope::Partner), &b);
    assert_ne!(
        mine[0].key, theirs[0].key,
        "scope partner: each partner its own key"
    );
    let forever = duplicate_keys(&h, &rule(&[ContactField::Email], 0, Scope::All), &a);
    assert_eq!(forever.len(), 1);
    assert_eq!(forever[0].expires_at, None);
}

async fn screen(
    store: &MemoryStore,
    rule: &Duplicates,
    lead: &LeadRecord,
    now: DateTime<Utc>,
) -> DuplicateCheck {
    store.create_lead(lead, None).await.expect("create");
    let keys = duplicate_keys(&hasher(), rule, lead);
    claim_duplicates(store, &keys, lead, RETENTION, now)
        .await
        .expect("claim")
}

#[tokio::test]
async fn fifty_identical_leads_at_once_one_is_unique() {
    let store = Arc::new(MemoryStore::new());
    let rule = rule(&ContactField::ALL, 30, Scope::All);
    let leads: Vec<LeadRecord> = (0..50)
        .map(|_| {
            lead(
                Vertical::Mortgage,
                "acme",
                mortgage("jane@example.com", "7275550134"),
                t0(),
            )
        })
        .collect();
    let outcomes = join_all(leads.iter().map(|l| screen(&store, &rule, l, t0()))).await;
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == DuplicateCheck::Unique)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_duplicate_after_its_window_passes_and_partner_scope_keeps_partners_apart() {
    let store = MemoryStore::new();
    let window = rule(&ContactField::ALL, 30, Scope::All);
    let first = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("jane@example.com", "7275550134"),
        t0(),
    );
    assert_eq!(
        screen(&store, &window, &first, t0()).await,
        DuplicateCheck::Unique
    );
    let day29 = t0() + Days::days(29);
    let inside = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("JANE@example.com", "000"),
        day29,
    );
    assert_eq!(
        screen(&store, &window, &inside, day29).await,
        DuplicateCheck::Duplicate {
            field: ContactField::Email
        }
    );
    let day31 = t0() + Days::days(31);
    let after = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("jane@example.com", "7275550134"),
        day31,
    );
    assert_eq!(
        screen(&store, &window, &after, day31).await,
        DuplicateCheck::Unique
    );

    let partner = rule(&ContactField::ALL, 30, Scope::Partner);
    let a = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("p@example.com", "8135550199"),
        t0(),
    );
    let b = lead(
        Vertical::Mortgage,
        "other",
        mortgage("p@example.com", "8135550199"),
        t0(),
    );
    let a2 = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("p@example.com", "8135550199"),
        t0(),
    );
    assert_eq!(
        screen(&store, &partner, &a, t0()).await,
        DuplicateCheck::Unique
    );
    assert_eq!(
        screen(&store, &partner, &b, t0()).await,
        DuplicateCheck::Unique
    );
    assert_eq!(
        screen(&store, &partner, &a2, t0()).await,
        DuplicateCheck::Duplicate {
            field: ContactField::Email
        }
    );
}

#[tokio::test]
async fn a_duplicate_releases_what_it_claimed_and_stale_holders_are_cleared() {
    let store = MemoryStore::new();
    let both = rule(&[ContactField::Email, ContactField::Phone], 30, Scope::All);
    let first = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("a@example.com", "7275550134"),
        t0(),
    );
    assert_eq!(
        screen(&store, &both, &first, t0()).await,
        DuplicateCheck::Unique
    );
    // New email, same phone: a duplicate on phone, and its email claim is given back.
    let second = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("b@example.com", "7275550134"),
        t0(),
    );
    assert_eq!(
        screen(&store, &both, &second, t0()).await,
        DuplicateCheck::Duplicate {
            field: ContactField::Phone
        }
    );
    let third = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("b@example.com", "8135550199"),
        t0(),
    );
    assert_eq!(
        screen(&store, &both, &third, t0()).await,
        DuplicateCheck::Unique
    );

    // A holder that no longer exists (ingest discarded it) does not block the next lead.
    let email_only = rule(&[ContactField::Email], 0, Scope::All);
    let ghost = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("ghost@example.com", ""),
        t0(),
    );
    let keys = duplicate_keys(&hasher(), &email_only, &ghost);
    store
        .claim_unique(&keys[0].key, &ghost.id, None, t0())
        .await
        .expect("claim");
    let real = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("ghost@example.com", ""),
        t0(),
    );
    assert_eq!(
        screen(&store, &email_only, &real, t0()).await,
        DuplicateCheck::Unique
    );

    // A holder gone because it outlived the store's retention (TTL) still holds a "for ever" claim.
    let long_ago = t0() - Days::days(400);
    let expired = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("old@example.com", ""),
        long_ago,
    );
    let keys = duplicate_keys(&hasher(), &email_only, &expired);
    store
        .claim_unique(&keys[0].key, &expired.id, None, long_ago)
        .await
        .expect("claim");
    let again = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("old@example.com", ""),
        t0(),
    );
    assert_eq!(
        screen(&store, &email_only, &again, t0()).await,
        DuplicateCheck::Duplicate {
            field: ContactField::Email
        },
        "for ever outlives the lead item"
    );
}

#[tokio::test]
async fn a_test_lead_claims_nothing() {
    let store = MemoryStore::new();
    let email_only = rule(&[ContactField::Email], 0, Scope::All);
    let mut probe = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("t@example.com", ""),
        t0(),
    );
    probe.test = true;
    assert_eq!(
        screen(&store, &email_only, &probe, t0()).await,
        DuplicateCheck::Unique
    );
    let real = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("t@example.com", ""),
        t0(),
    );
    assert_eq!(
        screen(&store, &email_only, &real, t0()).await,
        DuplicateCheck::Unique
    );
    let mut again = lead(
        Vertical::Mortgage,
        "acme",
        mortgage("t@example.com", ""),
        t0(),
    );
    again.test = true;
    assert_eq!(
        screen(&store, &email_only, &again, t0()).await,
        DuplicateCheck::Duplicate {
            field: ContactField::Email
        }
    );
}

#[test]
fn rejections_name_the_rule_and_window_never_the_value() {
    let r = rule(&ContactField::ALL, 30, Scope::All);
    let refusal = duplicate_check(
        &r,
        &DuplicateCheck::Duplicate {
            field: ContactField::Phone,
        },
    )
    .expect_err("a refusal");
    assert_eq!(refusal.code, "duplicate_phone");
    assert_eq!(
        refusal.reason,
        "a lead with this phone was already posted within the last 30 days (duplicate rule: same email or phone within 30 days)"
    );
    let heloc = duplicate_check(
        &Duplicates::heloc_default(),
        &DuplicateCheck::Duplicate {
            field: ContactField::Email,
        },
    )
    .expect_err("a refusal");
    assert_eq!(
        heloc.reason,
        "a lead with this email already exists in the system (duplicate rule: same email at any time)"
    );
}

fn policy(amber: AmberPolicy, on_error: OnError) -> LeadSafePolicy {
    LeadSafePolicy {
        detailed: true,
        amber,
        on_error,
    }
}

fn answer(result: Rag) -> Result<LeadSafeAnswer, LeadSafeFailure> {
    Ok(LeadSafeAnswer {
        result,
        details: vec![Detail {
            reason: Reason::Bankruptcy,
            start_date: chrono::NaiveDate::from_ymd_opt(2024, 1, 12).expect("a day"),
            end_date: None,
        }],
    })
}

#[test]
fn leadsafe_answers_under_each_policy() {
    let retry = policy(AmberPolicy::AmberBuyers, OnError::Retry);
    assert!(matches!(
        leadsafe_step(&retry, answer(Rag::Green)),
        LeadSafeStep::Pass { amber_only: false, ref check } if check.code == "leadsafe_green"
    ));
    match leadsafe_step(&retry, answer(Rag::Red)) {
        LeadSafeStep::Reject(check) => {
            assert_eq!(check.code, "leadsafe_red");
            assert_eq!(
                check.reason,
                "LeadSafe rated the consumer Red (Bankruptcy since 2024-01-12)"
            );
        }
        other => panic!("Red is refused, not {other:?}"),
    }
    assert!(matches!(
        leadsafe_step(&retry, answer(Rag::Amber)),
        LeadSafeStep::Pass {
            amber_only: true,
            ..
        }
    ));
    assert!(matches!(
        leadsafe_step(&policy(AmberPolicy::Reject, OnError::Retry), answer(Rag::Amber)),
        LeadSafeStep::Reject(ref check) if check.code == "leadsafe_amber"
    ));
    assert!(matches!(
        leadsafe_step(
            &policy(AmberPolicy::Pass, OnError::Retry),
            answer(Rag::Amber)
        ),
        LeadSafeStep::Pass {
            amber_only: false,
            ..
        }
    ));
    let down = || {
        Err(LeadSafeFailure::Unavailable {
            what: "no answer within 5000 ms".into(),
            after: None,
        })
    };
    assert!(matches!(
        leadsafe_step(&retry, down()),
        LeadSafeStep::Wait {
            configuration: false,
            ..
        }
    ));
    assert!(matches!(
        leadsafe_step(&policy(AmberPolicy::Pass, OnError::FailOpen), down()),
        LeadSafeStep::Pass { ref check, .. } if check.code == "leadsafe_fail_open"
    ));
    // Refused credentials are a configuration failure: the lead waits even under fail_open.
    assert!(matches!(
        leadsafe_step(
            &policy(AmberPolicy::Pass, OnError::FailOpen),
            Err(LeadSafeFailure::Unauthorized)
        ),
        LeadSafeStep::Wait {
            configuration: true,
            ..
        }
    ));
}

struct Secrets;
impl SecretSource for Secrets {
    fn get(&self, name: &str) -> Option<String> {
        name.starts_with("LS_").then(|| format!("value-of-{name}"))
    }
}

fn load_doc(toml_text: &str) -> Result<ScreeningConfig, crate::config::ConfigError> {
    let doc: std::collections::BTreeMap<String, toml::Value> =
        toml::from_str(toml_text).expect("toml");
    policy::load(doc, &Secrets)
}

#[test]
fn screening_config_defaults_and_keys() {
    let defaults = load_doc("").expect("defaults");
    assert_eq!(
        defaults.for_vertical(Vertical::Heloc).duplicates,
        Some(Duplicates::heloc_default())
    );
    assert_eq!(defaults.for_vertical(Vertical::Mortgage).duplicates, None);
    assert!(defaults.for_vertical(Vertical::Mortgage).suppression);
    assert!(!defaults.uses_leadsafe());

    let full = load_doc(
        r#"
        [leadsafe]
        environment = "dev"
        provider = "acme"
        api_key = "env:LS_KEY"
        client_secret = "env:LS_SECRET"
        client_code = "acme"
        [mortgage]
        leadsafe = true
        detailed = true
        amber = "reject"
        on_error = "fail_open"
        [mortgage.duplicates]
        scope = "partner"
        "#,
    )
    .expect("valid");
    let mortgage = full.for_vertical(Vertical::Mortgage);
    assert_eq!(
        mortgage.duplicates,
        Some(rule(&ContactField::ALL, 30, Scope::Partner))
    );
    assert_eq!(
        mortgage.leadsafe,
        Some(policy(AmberPolicy::Reject, OnError::FailOpen))
    );
    let settings = full.leadsafe.as_ref().expect("leadsafe");
    assert_eq!(
        settings.client.base_url().as_str(),
        "https://acme.leadsafe-dev.tech/"
    );
    assert!(full.uses_leadsafe());

    for (doc, key) in [
        ("[mortgage]\nleadsafe = true", "screening.mortgage.leadsafe"),
        ("[heloc]\nleadsafe = true", "screening.heloc.leadsafe"),
        ("[mortgage]\namber = \"pass\"", "screening.mortgage.amber"),
        ("[mortgage]\nleadsafe = true\non_error = \"ignore\"\n[leadsafe]\nenvironment = \"dev\"\nprovider = \"a\"\napi_key = \"env:LS_A\"\nclient_secret = \"env:LS_B\"", "screening.mortgage.on_error"),
        ("[heloc.duplicates]\nfields = [\"phone\"]", "screening.heloc.duplicates.fields"),
        ("[solar.duplicates]\nfields = [\"ssn\"]", "screening.solar.duplicates.fields"),
        ("[solar.duplicates]\nscope = \"vertical\"", "screening.solar.duplicates.scope"),
        ("[solar.duplicates]\nwindow_days = 99999", "screening.solar.duplicates.window_days"),
        ("[boats]\nsuppression = false", "screening.boats"),
        ("[leadsafe]\nenvironment = \"staging\"\nprovider = \"a\"\napi_key = \"env:LS_A\"\nclient_secret = \"env:LS_B\"", "screening.leadsafe.environment"),
        ("[leadsafe]\nenvironment = \"dev\"\napi_key = \"env:LS_A\"\nclient_secret = \"env:LS_B\"", "screening.leadsafe.provider"),
        ("[leadsafe]\nenvironment = \"dev\"\nprovider = \"a\"\napi_key = \"plain\"\nclient_secret = \"env:LS_B\"", "screening.leadsafe.api_key"),
        ("[leadsafe]\nenvironment = \"dev\"\nprovider = \"a\"\napi_key = \"env:NOPE\"\nclient_secret = \"env:LS_B\"", "screening.leadsafe.api_key"),
    ] {
        let error = load_doc(doc).expect_err(doc);
        assert_eq!(error.key, key, "{doc}: {error}");
    }
}
