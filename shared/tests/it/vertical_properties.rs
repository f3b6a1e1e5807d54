//! Property tests: arbitrary JSON, and arbitrary mutations of valid leads, fed to every vertical's parser.
//! No input panics, and every rejection names at least one field.

use leadhub::verticals::Vertical;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        "[0-9() +.-]{0,22}".prop_map(Value::String),
        "[A-Za-z]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[A-Za-z_]{1,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every path to a value inside `value`, as JSON pointers.
fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let pointer = format!("{prefix}/{key}");
                out.push(pointer.clone());
                pointers(child, pointer, out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                let pointer = format!("{prefix}/{index}");
                out.push(pointer.clone());
                pointers(child, pointer, out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Replace(Value),
    AddField(String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Remove),
        arbitrary_json().prop_map(Mutation::Replace),
        ("[A-Za-z_]{1,12}", arbitrary_json()).prop_map(|(k, v)| Mutation::AddField(k, v)),
    ]
}

fn mutate(lead: &mut Value, pointer: &str, mutation: &Mutation) {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    match (lead.pointer_mut(parent), mutation) {
        (Some(Value::Object(object)), Mutation::Remove) => {
            object.remove(key);
        }
        (Some(Value::Array(items)), Mutation::Remove) => {
            if let Ok(index) = key.parse::<usize>() {
                if index < items.len() {
                    items.remove(index);
                }
            }
        }
        (Some(_), Mutation::Replace(value)) => {
            if let Some(target) = lead.pointer_mut(pointer) {
                *target = value.clone();
            }
        }
        (_, Mutation::AddField(name, value)) => {
            if let Some(Value::Object(object)) = lead.pointer_mut(pointer) {
                object.insert(name.clone(), value.clone());
            } else if let Value::Object(object) = lead {
                object.insert(name.clone(), value.clone());
            }
        }
        _ => {}
    }
}

fn check(vertical: Vertical, body: &[u8]) -> Result<(), TestCaseError> {
    match vertical.parse(body) {
        Ok(parsed) => prop_assert!(
            parsed.lead.value().is_object(),
            "{vertical}: a parsed lead is an object"
        ),
        Err(errors) => {
            prop_assert!(
                !errors.0.is_empty(),
                "{vertical}: a rejection without errors"
            );
            for error in &errors.0 {
                prop_assert!(
                    !error.field.is_empty(),
                    "{vertical}: an error names no field: {error:?}"
                );
                prop_assert!(
                    !error.code.is_empty() && !error.message.is_empty(),
                    "{vertical}: {error:?}"
                );
            }
        }
    }
    Ok(())
}

// 256 cases per property (proptest's default); search longer with e.g. `PROPTEST_CASES=20000`.
proptest! {

    #[test]
    fn arbitrary_json_never_panics_and_rejections_name_fields(value in arbitrary_json()) {
        let body = serde_json::to_vec(&value).expect("serialises");
        for vertical in Vertical::ALL {
            check(vertical, &body)?;
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for vertical in Vertical::ALL {
            check(vertical, &bytes)?;
        }
    }

    #[test]
    fn mutated_valid_leads_never_panic_and_rejections_name_fields(
        picks in prop::collection::vec((any::<prop::sample::Index>(), mutation()), 1..4),
    ) {
        for vertical in Vertical::ALL {
            let mut lead = vertical.example();
            for (pick, mutation) in &picks {
                let mut all = vec![String::new()];
                pointers(&lead, String::new(), &mut all);
                let pointer = pick.get(&all).clone();
                mutate(&mut lead, &pointer, mutation);
            }
            let body = serde_json::to_vec(&lead).expect("serialises");
            check(vertical, &body)?;
        }
    }
}

#[test]
fn every_example_is_valid() {
    for vertical in Vertical::ALL {
        let body = serde_json::to_vec(&vertical.example()).expect("serialises");
        assert!(vertical.parse(&body).is_ok(), "{vertical}");
    }
}

/// Values that have broken parsers elsewhere: extremes, odd Unicode, near-misses of every format the
/// verticals read (URLs, SSNs, dates, phones), deep and empty containers.
fn odd_values() -> Vec<Value> {
    let mut odd = vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-0.0),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(-1e308),
        json!(0.5),
        json!([]),
        json!([null]),
        json!([[[]]]),
        json!({}),
        json!({"a": {"b": [1, "2", null]}}),
        json!("x".repeat(5000)),
    ];
    for text in [
        "",
        " ",
        "           ",
        "\u{0}",
        "日本語の文字列",
        "é",
        "éééééééééé",
        "+",
        "-",
        ".",
        "-.",
        ", ",
        "+1",
        "(((",
        "7275550134x\u{202e}",
        "１２３４５６７８９",
        "---------",
        "é23-45-6789",
        "123-45-678é",
        "123é45-6789",
        "123-45-67890",
        "Jän 5, 1980",
        "Jan 5, 19８0",
        "Jan , ",
        "é1234-5678",
        "1234é5678",
        "http://",
        "https://",
        "http://[",
        "http://[::ffff:1.2.3.4",
        "http://[zz]/",
        "https://%/",
        "https://é.com/",
        "https://xn--/",
        "ééééé://a.b",
        "httpé://a.b",
        "HTTPS://EXAMPLE.COM/CB",
        "http://.",
        "http://..localhost/",
    ] {
        odd.push(json!(text));
    }
    odd
}

#[test]
fn odd_values_at_every_position_never_panic_and_rejections_name_fields() {
    let odd = odd_values();
    for vertical in Vertical::ALL {
        let example = vertical.example();
        let mut all = vec![String::new()];
        pointers(&example, String::new(), &mut all);
        for pointer in &all {
            for value in &odd {
                let mut lead = example.clone();
                if let Some(target) = lead.pointer_mut(pointer) {
                    *target = value.clone();
                }
                let body = serde_json::to_vec(&lead).expect("serialises");
                if let Err(error) = check(vertical, &body) {
                    panic!("{vertical} at {pointer:?}: {error}");
                }
            }
        }
    }
}
