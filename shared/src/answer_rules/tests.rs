//! The answer rules, rule kind by rule kind, from the module docs: each row one documented behaviour.

use http::header::HeaderValue;
use serde_json::{json, Value};

use super::*;
use crate::connectors::test_support::response;

const KEY: &str = "destinations[3].response";

fn rules(text: &str) -> AnswerRules {
    let value: toml::Value = toml::from_str(text).expect("the row is TOML");
    AnswerRules::load(KEY, &value).unwrap_or_else(|error| panic!("{text}: {error}"))
}

/// Whether `accepted_when = <test>` matches the answer: accepted, or else unrecognised.
fn accepts(test: &str, answer: &BuyerResponse) -> bool {
    let rules = rules(&format!("accepted_when = {test}"));
    match rules.apply(answer, Outcome::accepted(None)) {
        Outcome::Accepted { .. } => true,
        other => {
            assert!(is_unrecognised(&other), "{test}: {other:?}");
            false
        }
    }
}

fn json_answer(body: Value) -> BuyerResponse {
    response(
        200,
        &[("content-type", "application/json")],
        &body.to_string(),
    )
}

#[test]
fn paths_select_what_the_subset_says() {
    let body = json!({
        "a": {"b": 1, "b c": 2, "x'y": 3},
        "items": [{"id": "i0"}, {"id": "i1"}, {"id": "i2"}],
        "naïve": true
    });
    let rows: Vec<(&str, Vec<Value>)> = vec![
        ("$", vec![body.clone()]),
        ("$.a.b", vec![json!(1)]),
        (r#"$["a"]["b c"]"#, vec![json!(2)]),
        (r"$['a']['x\'y']", vec![json!(3)]),
        ("$.items[0].id", vec![json!("i0")]),
        ("$.items[-1].id", vec![json!("i2")]),
        ("$.items[5].id", vec![]),
        ("$.items[-4]", vec![]),
        ("$.items[*].id", vec![json!("i0"), json!("i1"), json!("i2")]),
        ("$.a.*", vec![json!(1), json!(2), json!(3)]),
        ("$.items.id", vec![]),
        ("$.a[0]", vec![]),
        ("$.naïve", vec![json!(true)]),
        ("$.missing.deeper", vec![]),
    ];
    for (text, expected) in rows {
        let path = JsonPath::parse(text).unwrap_or_else(|problem| panic!("{text}: {problem}"));
        let got: Vec<Value> = path.select(&body).into_iter().cloned().collect();
        assert_eq!(got, expected, "{text}");
        assert_eq!(path.to_string(), text);
    }
    let bad = [
        "data.id",
        "",
        "$.",
        "$[",
        "$[x]",
        "$['a",
        "$['a']x",
        "$.a b",
        "$[1",
        "$..a",
        "$.a[?(@.x)]",
        "$.a[1:2]",
        r"$['a\n']",
    ];
    for text in bad {
        let problem = JsonPath::parse(text).expect_err(text);
        assert!(problem.contains(text), "{text}: {problem}");
    }
    let long = format!("${}", ".a".repeat(MAX_PATH_CHARS));
    assert!(JsonPath::parse(&long).is_err());
}

#[test]
fn path_tests_read_nested_values_arrays_and_case() {
    let rows: Vec<(&str, Value, bool)> = vec![
        // Nested paths; strings compared ignoring case and surrounding spaces.
        (
            r#"{ path = "$.result.status", equals = "created" }"#,
            json!({"result": {"status": "created"}}),
            true,
        ),
        (
            r#"{ path = "$.result.status", equals = "created" }"#,
            json!({"result": {"status": " CREATED "}}),
            true,
        ),
        (
            r#"{ path = "$.result.status", equals = "Created" }"#,
            json!({"result": {"status": "created"}}),
            true,
        ),
        (
            r#"{ path = "$.result.status", equals = "created" }"#,
            json!({"result": {"status": "created-later"}}),
            false,
        ),
        (
            r#"{ path = "$.result.status", equals = "created" }"#,
            json!({"status": "created"}),
            false,
        ),
        (
            r#"{ path = "$.result.status", equals = "created" }"#,
            json!({"result": "created"}),
            false,
        ),
        // Arrays: `[*]` is any element, `[n]` one; a list itself never equals a value.
        (
            r#"{ path = "$.results[*].status", equals = "ok" }"#,
            json!({"results": [{"status": "failed"}, {"status": "ok"}]}),
            true,
        ),
        (
            r#"{ path = "$.results[*].status", equals = "ok" }"#,
            json!({"results": []}),
            false,
        ),
        (
            r#"{ path = "$.results[0].status", equals = "ok" }"#,
            json!({"results": [{"status": "failed"}, {"status": "ok"}]}),
            false,
        ),
        (
            r#"{ path = "$.results[-1].status", equals = "ok" }"#,
            json!({"results": [{"status": "failed"}, {"status": "ok"}]}),
            true,
        ),
        (
            r#"{ path = "$.tags", equals = "vip" }"#,
            json!({"tags": ["vip"]}),
            false,
        ),
        (
            r#"{ path = "$.tags[*]", equals = "vip" }"#,
            json!({"tags": ["new", "VIP"]}),
            true,
        ),
        (r#"{ path = "$[0].id" }"#, json!([{"id": "A-1"}]), true),
        // one_of: any of the values.
        (
            r#"{ path = "$.status", one_of = ["created", "duplicate"] }"#,
            json!({"status": "Duplicate"}),
            true,
        ),
        (
            r#"{ path = "$.status", one_of = ["created", "duplicate"] }"#,
            json!({"status": "failed"}),
            false,
        ),
        (
            r#"{ path = "$.code", one_of = [1, "yes"] }"#,
            json!({"code": 1.0}),
            true,
        ),
        (
            r#"{ path = "$.code", one_of = [1, "yes"] }"#,
            json!({"code": "YES"}),
            true,
        ),
        // Numbers compare by value, with JSON numbers or strings that read as them.
        (
            r#"{ path = "$.code", equals = 1 }"#,
            json!({"code": 1}),
            true,
        ),
        (
            r#"{ path = "$.code", equals = 1 }"#,
            json!({"code": 1.0}),
            true,
        ),
        (
            r#"{ path = "$.code", equals = 1 }"#,
            json!({"code": " 1 "}),
            true,
        ),
        (
            r#"{ path = "$.code", equals = 1 }"#,
            json!({"code": 2}),
            false,
        ),
        (
            r#"{ path = "$.code", equals = 1 }"#,
            json!({"code": true}),
            false,
        ),
        (
            r#"{ path = "$.code", equals = 1 }"#,
            json!({"code": "one"}),
            false,
        ),
        (
            r#"{ path = "$.code", equals = "1" }"#,
            json!({"code": 1}),
            true,
        ),
        (
            r#"{ path = "$.code", equals = 2.5 }"#,
            json!({"code": 2.50}),
            true,
        ),
        // Booleans: JSON booleans, or the words; 1 and 0 are not booleans.
        (
            r#"{ path = "$.ok", equals = true }"#,
            json!({"ok": true}),
            true,
        ),
        (
            r#"{ path = "$.ok", equals = true }"#,
            json!({"ok": "TRUE"}),
            true,
        ),
        (
            r#"{ path = "$.ok", equals = true }"#,
            json!({"ok": false}),
            false,
        ),
        (
            r#"{ path = "$.ok", equals = true }"#,
            json!({"ok": 1}),
            false,
        ),
        (
            r#"{ path = "$.ok", equals = false }"#,
            json!({"ok": false}),
            true,
        ),
        (
            r#"{ path = "$.ok", equals = "true" }"#,
            json!({"ok": true}),
            true,
        ),
        (
            r#"{ path = "$.ok", equals = "false" }"#,
            json!({"ok": null}),
            false,
        ),
        // Presence: anything but null or a blank string.
        (r#"{ path = "$.id" }"#, json!({"id": "A"}), true),
        (r#"{ path = "$.id" }"#, json!({"id": 0}), true),
        (r#"{ path = "$.id" }"#, json!({"id": false}), true),
        (r#"{ path = "$.id" }"#, json!({"id": null}), false),
        (r#"{ path = "$.id" }"#, json!({"id": "  "}), false),
        (r#"{ path = "$.id" }"#, json!({}), false),
        // Regular expressions: a search, case-sensitive unless (?i), on strings, numbers and booleans.
        (
            r#"{ path = "$.id", matches = '^LD-\d{4}$' }"#,
            json!({"id": "LD-1234"}),
            true,
        ),
        (
            r#"{ path = "$.id", matches = '^LD-\d{4}$' }"#,
            json!({"id": "ld-1234"}),
            false,
        ),
        (
            r#"{ path = "$.id", matches = '^LD-\d{4}$' }"#,
            json!({"id": "xLD-1234"}),
            false,
        ),
        (
            r#"{ path = "$.id", matches = '(?i)^ld-' }"#,
            json!({"id": "LD-1"}),
            true,
        ),
        (
            r#"{ path = "$.message", matches = "accept" }"#,
            json!({"message": "lead accepted"}),
            true,
        ),
        (
            r#"{ path = "$.code", matches = '^2\d\d$' }"#,
            json!({"code": 201}),
            true,
        ),
        (
            r#"{ path = "$.ok", matches = "^true$" }"#,
            json!({"ok": true}),
            true,
        ),
        (
            r#"{ path = "$.data", matches = "." }"#,
            json!({"data": {"id": 1}}),
            false,
        ),
    ];
    for (test, body, expected) in rows {
        assert_eq!(
            accepts(test, &json_answer(body.clone())),
            expected,
            "{test} on {body}"
        );
    }
}

#[test]
fn a_path_rule_does_not_match_a_body_that_is_not_json() {
    let test = r#"{ path = "$.result.status", equals = "created" }"#;
    let rows: Vec<(BuyerResponse, bool)> = vec![
        (
            response(
                200,
                &[("content-type", "text/html")],
                "<html>status: created</html>",
            ),
            false,
        ),
        (
            response(
                200,
                &[("content-type", "text/plain")],
                "result.status=created",
            ),
            false,
        ),
        (response(200, &[], ""), false),
        (
            response(
                200,
                &[("content-type", "application/json")],
                r#"{"result":{"status":"created""#,
            ),
            false,
        ),
        // JSON mislabelled as text is still read as JSON.
        (
            response(
                200,
                &[("content-type", "text/plain")],
                r#"{"result":{"status":"created"}}"#,
            ),
            true,
        ),
        (
            response(
                200,
                &[("content-type", "text/html")],
                r#"{"result":{"status":"created"}}"#,
            ),
            true,
        ),
    ];
    for (answer, expected) in rows {
        assert_eq!(accepts(test, &answer), expected, "{:?}", answer.body);
    }
    // Nor do the paths find a reason, a reference or a price in it.
    let paths = rules(
        "rejected_when = { contains = \"declined\" }\nreason_path = \"$.reason\"\nreference_path = \"$.id\"\nprice_path = \"$.price\"\naccepted_when = { contains = \"thank you\" }",
    );
    assert_eq!(
        paths.apply(
            &response(200, &[], "Thank you! id=7 price=2.00"),
            Outcome::accepted(Some("x".into()))
        ),
        Outcome::accepted(None)
    );
    assert_eq!(
        paths.apply(
            &response(200, &[], "<p>Declined</p>"),
            Outcome::accepted(None)
        ),
        Outcome::rejected(
            ANSWER_REJECTED,
            "the buyer declined the lead: no reason given",
            true
        )
    );
    assert_eq!(
        paths.apply(
            &response(200, &[], "declined: state not served"),
            Outcome::accepted(None)
        ),
        Outcome::rejected(
            ANSWER_REJECTED,
            "the buyer declined the lead: declined: state not served",
            true
        )
    );
}

#[test]
fn header_and_plain_text_rules() {
    let rows: Vec<(&str, BuyerResponse, bool)> = vec![
        (
            r#"{ header = "X-Result", equals = "accepted" }"#,
            response(200, &[("x-result", "Accepted")], ""),
            true,
        ),
        (
            r#"{ header = "X-Result", equals = "accepted" }"#,
            response(200, &[("x-result", "accepted-later")], ""),
            false,
        ),
        (
            r#"{ header = "X-Result", equals = "accepted" }"#,
            response(200, &[], r#"{"X-Result":"accepted"}"#),
            false,
        ),
        (
            r#"{ header = "x-lead-id" }"#,
            response(200, &[("X-Lead-Id", "77")], ""),
            true,
        ),
        (r#"{ header = "x-lead-id" }"#, response(200, &[], ""), false),
        (
            r#"{ header = "X-Result", matches = "^acc" }"#,
            response(200, &[("x-result", "accepted")], ""),
            true,
        ),
        (
            r#"{ header = "X-Result", matches = "^acc" }"#,
            response(200, &[("x-result", "Accepted")], ""),
            false,
        ),
        (
            r#"{ header = "X-Code", equals = 201 }"#,
            response(200, &[("x-code", "201")], ""),
            true,
        ),
        (
            r#"{ header = "X-Result", one_of = ["sold", "accepted"] }"#,
            response(200, &[("x-result", "SOLD")], ""),
            true,
        ),
        // A plain-text search term, any content type, ignoring case.
        (
            r#"{ contains = "Thank you" }"#,
            response(
                200,
                &[("content-type", "text/html")],
                "<html>THANK YOU for your lead</html>",
            ),
            true,
        ),
        (
            r#"{ contains = "Thank you" }"#,
            response(200, &[], "Thanks"),
            false,
        ),
        (
            r#"{ contains = "thank you" }"#,
            json_answer(json!({"message": "Thank You"})),
            true,
        ),
        (
            r#"{ contains = "Über" }"#,
            response(200, &[], "über alles"),
            true,
        ),
        (r#"{ contains = "ok" }"#, response(200, &[], ""), false),
        // A list: any of its tests.
        (
            r#"[{ path = "$.ok", equals = true }, { header = "x-ok" }]"#,
            response(200, &[("x-ok", "1")], "not json"),
            true,
        ),
        (
            r#"[{ path = "$.ok", equals = true }, { header = "x-ok" }]"#,
            json_answer(json!({"ok": true})),
            true,
        ),
        (
            r#"[{ path = "$.ok", equals = true }, { header = "x-ok" }]"#,
            json_answer(json!({"ok": false})),
            false,
        ),
    ];
    for (test, answer, expected) in rows {
        assert_eq!(
            accepts(test, &answer),
            expected,
            "{test} on {:?}",
            answer.body
        );
    }
    // Every value of a repeated header is read.
    let mut repeated = response(200, &[], "");
    repeated
        .headers
        .append("x-result", HeaderValue::from_static("pending"));
    repeated
        .headers
        .append("x-result", HeaderValue::from_static("accepted"));
    assert!(accepts(
        r#"{ header = "X-Result", equals = "accepted" }"#,
        &repeated
    ));
}

#[test]
fn an_answer_becomes_an_outcome_in_the_documented_order() {
    let all = rules(
        r#"
accepted_when = { path = "$.result.status", one_of = ["created", "duplicate"] }
rejected_when = [{ path = "$.result.status", equals = "declined" }, { header = "X-Result", equals = "declined" }]
reason_path = "$.errors[*].message"
reference_path = "$.data.id"
price_path = "$.bid.price"
"#,
    );
    let connector_ref = || Outcome::accepted(Some("connector-ref".into()));
    let accepted = |reference: Option<&str>, cents: Option<u64>| Outcome::Accepted {
        buyer_ref: reference.map(str::to_owned),
        price: cents.map(Cents),
    };
    let created = |extra: Value| {
        let mut body = json!({"result": {"status": "created"}});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        json_answer(body)
    };
    let rows: Vec<(BuyerResponse, Outcome, Outcome)> = vec![
        // Accepted: the reference and the price from their paths.
        (
            created(json!({"data": {"id": "B-1"}, "bid": {"price": 12.5}})),
            connector_ref(),
            accepted(Some("B-1"), Some(1250)),
        ),
        (created(json!({"data": {"id": 42}, "bid": {"price": "$7.05"}})), connector_ref(), accepted(Some("42"), Some(705))),
        (created(json!({"data": {"id": " B-2 "}, "bid": {"price": "18"}})), connector_ref(), accepted(Some("B-2"), Some(1800))),
        (created(json!({"bid": {"price": "12.345"}})), connector_ref(), accepted(None, None)),
        (created(json!({"bid": {"price": -1}})), connector_ref(), accepted(None, None)),
        (created(json!({"bid": {"price": "free"}})), connector_ref(), accepted(None, None)),
        (created(json!({"data": {"id": {"deep": 1}}})), connector_ref(), accepted(None, None)),
        // accepted_when even when the connector would not have accepted it.
        (created(json!({})), Outcome::rejected("sonar_not_created", "x", true), accepted(None, None)),
        // Rejected before accepted, with the reasons at reason_path.
        (
            json_answer(json!({"result": {"status": "Declined"}, "errors": [{"message": "State not served"}, {"message": "Phone invalid"}]})),
            connector_ref(),
            Outcome::rejected(ANSWER_REJECTED, "the buyer declined the lead: State not served; Phone invalid", true),
        ),
        (
            response(200, &[("x-result", "declined")], r#"{"result":{"status":"created"}}"#),
            connector_ref(),
            Outcome::rejected(ANSWER_REJECTED, "the buyer declined the lead: no reason given", true),
        ),
        (
            response(200, &[("x-result", "declined")], r#"{"result":{"status":"created"},"message":"Over the daily cap"}"#),
            connector_ref(),
            Outcome::rejected(ANSWER_REJECTED, "the buyer declined the lead: Over the daily cap", true),
        ),
        // Neither: failed, unrecognised.
        (
            json_answer(json!({"result": {"status": "pending"}, "email": "jane@example.com"})),
            connector_ref(),
            Outcome::failed(
                UNRECOGNISED_ANSWER,
                "unrecognised answer: the buyer answered 200 with JSON {email: text, result: {status: text}}, \
                 which says neither that it took the lead nor that it declined it; the lead is not counted as \
                 sold (check with the buyer, and the destination's [destinations.response] rules)",
            ),
        ),
        // Transport statuses keep the connector's handling, whatever the body says.
        (
            response(500, &[], r#"{"result":{"status":"created"}}"#),
            Outcome::retry("http_500", "server error", None),
            Outcome::retry("http_500", "server error", None),
        ),
        (
            response(429, &[("x-result", "declined")], ""),
            Outcome::retry("http_429", "later", None),
            Outcome::retry("http_429", "later", None),
        ),
        (
            response(401, &[], r#"{"result":{"status":"created"}}"#),
            Outcome::failed("http_401", "credentials"),
            Outcome::failed("http_401", "credentials"),
        ),
        // A 4xx the connector rejected: reason_path gives the reason, the connector keeps its code.
        (
            response(422, &[], r#"{"errors":[{"message":"Zip not served"}]}"#),
            Outcome::rejected("http_422", "the buyer declined the lead (422): no reason given", true),
            Outcome::rejected("http_422", "the buyer declined the lead (422): Zip not served", true),
        ),
        (
            response(422, &[], r#"{"problem":"x"}"#),
            Outcome::rejected("http_422", "as the connector said", true),
            Outcome::rejected("http_422", "as the connector said", true),
        ),
    ];
    for (answer, default, expected) in rows {
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(
            all.apply(&answer, default),
            expected,
            "{} {body}",
            answer.status
        );
    }
}

#[test]
fn a_rule_not_given_keeps_the_connectors_reading_for_its_side() {
    let answer = json_answer(json!({"id": "W-1", "data": {"ref": "R-9"}, "error": "Duplicate"}));
    // No rules: the connector's outcome as it is.
    let none = AnswerRules::default();
    assert!(none.is_empty());
    assert_eq!(
        none.apply(&answer, Outcome::accepted(Some("W-1".into()))),
        Outcome::accepted(Some("W-1".into()))
    );

    // Only paths: they refine the connector's outcome.
    let paths = rules("reference_path = \"$.data.ref\"\nreason_path = \"$.error\"");
    assert_eq!(
        paths.apply(&answer, Outcome::accepted(Some("W-1".into()))),
        Outcome::accepted(Some("R-9".into()))
    );
    assert_eq!(
        paths.apply(
            &answer,
            Outcome::rejected("sonar_not_created", "Sonar said no", true)
        ),
        Outcome::rejected(
            "sonar_not_created",
            "the buyer declined the lead: Duplicate",
            true
        )
    );
    let odd = Outcome::retry("http_202", "later", None);
    assert_eq!(
        paths.apply(&answer, odd.clone()),
        odd,
        "no condition: the connector's outcome"
    );

    // Only rejected_when: what it does not reject keeps the connector's acceptance.
    let rejecting = rules("rejected_when = { path = \"$.error\", equals = \"duplicate\" }");
    assert_eq!(
        rejecting.apply(
            &json_answer(json!({"id": "W-1"})),
            Outcome::accepted(Some("W-1".into()))
        ),
        Outcome::accepted(Some("W-1".into()))
    );
    assert_eq!(
        rejecting.apply(&answer, Outcome::accepted(Some("W-1".into()))),
        Outcome::rejected(
            ANSWER_REJECTED,
            "the buyer declined the lead: Duplicate",
            true
        )
    );
    // ...and a connector's rejection it does not confirm is no acceptance either.
    assert!(is_unrecognised(&rejecting.apply(
        &json_answer(json!({"error": "other"})),
        Outcome::rejected("sonar_not_created", "x", true)
    )));
    // A connector's own "unrecognised" keeps its words.
    let sonar = unrecognised(&json_answer(json!({"status": "received"})), "Sonar");
    assert_eq!(
        rejecting.apply(&json_answer(json!({"status": "received"})), sonar.clone()),
        sonar
    );
}

#[test]
fn an_unrecognised_answer_shows_the_bodys_shape_never_its_values() {
    let rows: Vec<(BuyerResponse, &str)> = vec![
        (response(200, &[], "  \n"), "an empty body"),
        (response(200, &[("content-type", "text/plain")], "Jane Doe 555-0134"), "a text/plain body of 17 bytes"),
        (response(200, &[("content-type", "weird type; x=1")], "Jane"), "a body of 4 bytes that is not JSON"),
        (json_answer(json!({"a": {"b": {"c": "Jane"}}, "n": null, "list": []})), "JSON {a: {b: {…}}, list: [], n: null}"),
        (json_answer(json!([1, 2])), "JSON [2 items]"),
        (json_answer(json!({"jane@example.com": "x", "7275550134": "y", "ok": {}})), "JSON {…: text, …: text, ok: {}}"),
        (
            json_answer(json!({"a1": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1, "h": 1, "i": 1})),
            "JSON {…: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, …}",
        ),
    ];
    for (answer, expected) in rows {
        assert_eq!(shape(&answer), expected);
        let Outcome::Failed { reason, .. } = unrecognised(&answer, "the buyer") else {
            panic!("failed");
        };
        for pii in ["Jane", "555-0134", "jane@example.com", "7275550134"] {
            assert!(!reason.contains(pii), "{reason}");
        }
    }
}

#[test]
fn bad_rules_are_config_errors_naming_their_key() {
    let rows: Vec<(&str, &str, &str)> = vec![
        (
            "accepted_when = { path = \"data.id\" }",
            "accepted_when.path",
            "must start with `$`",
        ),
        (
            "accepted_when = { path = \"$.a[\" }",
            "accepted_when.path",
            "not closed",
        ),
        (
            "accepted_when = { path = 5 }",
            "accepted_when.path",
            "must be a string",
        ),
        (
            "accepted_when = { path = \"$.a\", matches = \"(\" }",
            "accepted_when.matches",
            "not a valid regular expression",
        ),
        (
            "accepted_when = { path = \"$.a\", matches = 1 }",
            "accepted_when.matches",
            "regular expression",
        ),
        (
            "accepted_when = { path = \"$.a\", equals = \"x\", one_of = [\"y\"] }",
            "accepted_when",
            "at most one of",
        ),
        (
            "accepted_when = { path = \"$.a\", header = \"x\" }",
            "accepted_when",
            "exactly one of",
        ),
        (
            "accepted_when = { equals = \"x\" }",
            "accepted_when",
            "exactly one of",
        ),
        (
            "accepted_when = { contains = \" \" }",
            "accepted_when.contains",
            "blank",
        ),
        (
            "accepted_when = { contains = \"x\", equals = \"y\" }",
            "accepted_when.equals",
            "takes no comparison",
        ),
        (
            "accepted_when = { path = \"$.a\", one_of = [] }",
            "accepted_when.one_of",
            "non-empty list",
        ),
        (
            "accepted_when = { path = \"$.a\", one_of = [[1]] }",
            "accepted_when.one_of",
            "non-empty list",
        ),
        (
            "accepted_when = { path = \"$.a\", one_of = \"x\" }",
            "accepted_when.one_of",
            "non-empty list",
        ),
        (
            "accepted_when = { path = \"$.a\", equals = 2024-01-01 }",
            "accepted_when.equals",
            "a string, a number or a boolean",
        ),
        (
            "accepted_when = { path = \"$.a\", equal = \"x\" }",
            "accepted_when.equal",
            "unknown key",
        ),
        (
            "accepted_when = \"created\"",
            "accepted_when",
            "or a list of them",
        ),
        (
            "rejected_when = { header = \"bad header\" }",
            "rejected_when.header",
            "not a valid header name",
        ),
        (
            "rejected_when = [{ path = \"$.a\" }, { path = \"$.b\", matches = \"[\" }]",
            "rejected_when[1].matches",
            "not a valid regular expression",
        ),
        (
            "rejected_when = [{ path = \"$.a\" }, \"x\"]",
            "rejected_when[1]",
            "must be a test",
        ),
        ("rejected_when = []", "rejected_when", "1 to 8 tests"),
        (
            "reason_path = \"$.errors[0\"",
            "reason_path",
            "`]` is expected",
        ),
        (
            "reference_path = 5",
            "reference_path",
            "must be a JSON path",
        ),
        (
            "price_path = \"$..price\"",
            "price_path",
            "a key is expected",
        ),
        (
            "accepted = { path = \"$.a\" }",
            "accepted",
            "unknown answer rule",
        ),
    ];
    for (text, key, problem) in rows {
        let value: toml::Value = toml::from_str(text).expect("the row is TOML");
        let error = AnswerRules::load(KEY, &value).expect_err(text);
        assert_eq!(error.key, format!("{KEY}.{key}"), "{text}: {error}");
        assert!(error.problem.contains(problem), "{text}: {error}");
    }
    let error = AnswerRules::load(KEY, &toml::Value::String("x".into())).expect_err("not a table");
    assert_eq!(error.key, KEY);
    let many = format!(
        "accepted_when = [{}]",
        ["{ path = \"$.a\" }"; MAX_TESTS + 1].join(", ")
    );
    let error =
        AnswerRules::load(KEY, &toml::from_str(&many).expect("toml")).expect_err("too many");
    assert_eq!(error.key, format!("{KEY}.accepted_when"));
    assert!(AnswerRules::load(KEY, &toml::from_str("").expect("toml"))
        .expect("empty")
        .is_empty());
}

/// Through the hub's own loader: a destination's `[destinations.response]` is checked at load, naming the
/// destination; any connector takes it.
#[test]
fn the_loader_checks_every_destinations_answer_rules() {
    use crate::config::tests::{secrets, VALID};
    let load = |document: &str| {
        crate::config::Config::load(document, &secrets(), &crate::connectors::Rules)
    };
    let with = |table: &str| format!("{VALID}\n[destinations.response]\n{table}\n");
    let config = load(&with(
        "accepted_when = { path = \"$.id\", matches = '^wh-' }\nreference_path = \"$.id\"",
    ))
    .expect("valid");
    let rules = &config.destinations[0].response;
    assert!(!rules.is_empty());
    assert_eq!(
        rules.apply(&json_answer(json!({"id": "wh-1"})), Outcome::accepted(None)),
        Outcome::accepted(Some("wh-1".into()))
    );
    assert!(load(VALID).expect("valid").destinations[0]
        .response
        .is_empty());
    let error =
        load(&with("accepted_when = { path = \"$.id\", matches = '(' }")).expect_err("bad regex");
    assert_eq!(
        error.key, "destinations[0].response.accepted_when.matches",
        "{error}"
    );
    let error = load(&format!("{VALID}response = \"x\"\n")).expect_err("not a table");
    assert_eq!(error.key, "destinations[0].response", "{error}");
}
