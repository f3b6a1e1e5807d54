//! HELOC's fast path: the posted bytes deserialised straight into borrowed, typed structs (no
//! `serde_json::Value`), seed 001's rules checked on them, and the same [`HelocLead`] built.
//!
//! It only ever *accepts*. Anything it does not take — a serde error (malformed JSON, a wrong type, an unknown
//! field, a duplicate key: serde's derive refuses a field given twice, where a `Value` keeps the last), a string
//! with a control character, or any broken rule — makes [`parse`] return `None`, and the caller falls back to
//! the `Value`-based parser ([`super::parse`] beside [`crate::verticals::fields::control_characters`]), which
//! then produces the complete error list exactly as before. So the error semantics are the slow path's by
//! construction; what needs proving is only that the fast path never accepts a body the slow path refuses, and
//! that it builds the same [`ParsedLead`] when both accept. The tests at the end of this file prove it on every
//! fixture and on mutated bodies (a proptest), comparing both paths' outcomes.
//!
//! Why each acceptance condition implies the slow path's:
//! - Valid JSON: serde_json's typed and `Value` parsers read the same grammar (same reader, same number and
//!   string rules); every value of the body lands in a field here (`deny_unknown_fields` at every level), so
//!   none is skipped unchecked.
//! - No control characters: every key is one of the field names (none has one: an escaped key decodes to
//!   the same name in both parsers), and every string value is held here and checked, decoded, with the
//!   slow path's definition ([`has_control`], `char::is_control`).
//! - The rules: each check below is the slow path's check on the same decoded value, written for the
//!   accepting case only (null counts as absent in both: `Option` takes `null` as `None`).

use std::borrow::Cow;

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Number;

use super::{
    Address, BuildingType, ContactInfo, HelocLead, LoanPurpose, PropertyUsage, RentalOccupancy,
    StatedInformation, BUILDING_TYPES, LOAN_PURPOSES, PROPERTY_USAGES, RENTAL_OCCUPANCIES,
};
use crate::verticals::fields::{self, Email, Phone, StateCode, Zip, MAX_TEXT_LEN};
use crate::verticals::ParsedLead;

/// A JSON string, borrowed from the body unless it has escapes (then decoded, owned).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Body<'a> {
    #[serde(borrow)]
    affiliate_id: Option<Text<'a>>,
    #[serde(borrow)]
    building_type: Option<Text<'a>>,
    property_units: Option<Number>,
    #[serde(borrow)]
    loan_purpose: Option<Text<'a>>,
    #[serde(borrow)]
    property_usage: Option<Text<'a>>,
    #[serde(borrow)]
    contact_info: Option<ContactBody<'a>>,
    #[serde(borrow)]
    address: Option<AddressBody<'a>>,
    #[serde(borrow)]
    stated_information: Option<StatedBody<'a>>,
    #[serde(borrow)]
    residential_address: Option<AddressBody<'a>>,
    listed_for_sale_in6_months: Option<bool>,
    purchased_or_subject_to_mortgage_in6_months: Option<bool>,
    liabilities_in4_years: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContactBody<'a> {
    #[serde(borrow)]
    first_name: Option<Text<'a>>,
    #[serde(borrow)]
    last_name: Option<Text<'a>>,
    #[serde(borrow)]
    email: Option<Text<'a>>,
    #[serde(borrow)]
    phone: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddressBody<'a> {
    #[serde(borrow)]
    street: Option<Text<'a>>,
    #[serde(borrow)]
    city: Option<Text<'a>>,
    #[serde(borrow)]
    state: Option<Text<'a>>,
    #[serde(borrow)]
    zip: Option<Text<'a>>,
    #[serde(borrow)]
    county: Option<Text<'a>>,
    unit_number: Option<Number>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StatedBody<'a> {
    monthly_rental_income: Option<Number>,
    #[serde(borrow)]
    rental_occupancy: Option<Text<'a>>,
}

/// Whether `s` holds a control character: exactly `s.chars().any(char::is_control)` (Unicode `Cc`: U+0000 to
/// U+001F, U+007F, and U+0080 to U+009F, whose UTF-8 form is 0xC2 then 0x80..=0x9F), on bytes.
fn has_control(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b < 0x20
            || b == 0x7f
            || (b == 0xc2
                && bytes
                    .get(i + 1)
                    .is_some_and(|next| (0x80..=0x9f).contains(next)))
    })
}

/// [`fields::ObjectReader::string`]'s value when it records no error and finds text: the string trimmed
/// (`None` to fall back: a control character, or longer than `max` characters). May be empty.
fn trimmed<'t>(text: &'t Text<'_>, max: usize) -> Option<&'t str> {
    if has_control(&text.0) {
        return None;
    }
    let trimmed = text.0.trim();
    // Bytes bound characters: count only when the bytes alone do not decide.
    (trimmed.len() <= max || trimmed.chars().count() <= max).then_some(trimmed)
}

/// A required text field: present, not blank, within `max` characters.
fn required(text: &Option<Text<'_>>, max: usize) -> Option<String> {
    let trimmed = trimmed(text.as_ref()?, max)?;
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// An optional text field: absent or blank is `None` (as the slow path: no error).
fn optional(text: &Option<Text<'_>>, max: usize) -> Option<Option<String>> {
    match text {
        None => Some(None),
        Some(text) => {
            let trimmed = trimmed(text, max)?;
            Some((!trimmed.is_empty()).then(|| trimmed.to_owned()))
        }
    }
}

/// A required text field parsed into a typed value ([`fields::ObjectReader::parsed`]).
fn required_parsed<T>(
    text: &Option<Text<'_>>,
    parse: impl FnOnce(&str) -> Result<T, &'static str>,
) -> Option<T> {
    let trimmed = trimmed(text.as_ref()?, MAX_TEXT_LEN)?;
    if trimmed.is_empty() {
        return None;
    }
    parse(trimmed).ok()
}

/// One of `allowed`, spelled exactly (the string as posted, untrimmed, as [`fields::ObjectReader::one_of`]).
fn one_of<T: Copy>(text: &Text<'_>, allowed: &[(&str, T)]) -> Option<T> {
    allowed
        .iter()
        .find(|(spelling, _)| *spelling == text.0)
        .map(|(_, value)| *value)
}

fn address(body: &AddressBody<'_>) -> Option<Address> {
    let unit_number = match &body.unit_number {
        None => None,
        Some(n) => Some(fields::whole_number(n).filter(|n| *n >= 1)?),
    };
    Some(Address {
        street: required(&body.street, MAX_TEXT_LEN)?,
        city: required(&body.city, MAX_TEXT_LEN)?,
        state: required_parsed(&body.state, StateCode::parse)?,
        zip: required_parsed(&body.zip, Zip::parse)?,
        county: optional(&body.county, MAX_TEXT_LEN)?,
        unit_number,
    })
}

fn lead(body: &Body<'_>) -> Option<HelocLead> {
    let affiliate_id = optional(&body.affiliate_id, MAX_TEXT_LEN)?;
    let building_type = one_of(body.building_type.as_ref()?, &BUILDING_TYPES)?;
    let property_units = match &body.property_units {
        None => None,
        Some(n) => Some(fields::whole_number(n)?),
    };
    let loan_purpose: LoanPurpose = one_of(body.loan_purpose.as_ref()?, &LOAN_PURPOSES)?;
    let property_usage = one_of(body.property_usage.as_ref()?, &PROPERTY_USAGES)?;

    let contact = body.contact_info.as_ref()?;
    let contact_info = ContactInfo {
        first_name: required(&contact.first_name, MAX_TEXT_LEN)?,
        last_name: required(&contact.last_name, MAX_TEXT_LEN)?,
        email: required_parsed(&contact.email, Email::parse)?,
        phone: required_parsed(&contact.phone, Phone::parse)?,
    };
    let address_ = address(body.address.as_ref()?)?;
    let stated_information = match &body.stated_information {
        None => None,
        Some(stated) => {
            let monthly_rental_income = match &stated.monthly_rental_income {
                None => None,
                Some(n) => Some(fields::finite_number(n).filter(|income| *income >= 0.0)?),
            };
            let rental_occupancy = match &stated.rental_occupancy {
                None => None,
                Some(text) => Some(one_of(text, &RENTAL_OCCUPANCIES)?),
            };
            Some(StatedInformation {
                monthly_rental_income,
                rental_occupancy,
            })
        }
    };
    let residential_address = address(body.residential_address.as_ref()?)?;
    let listed_for_sale_in6_months = body.listed_for_sale_in6_months?;
    let purchased_or_subject_to_mortgage_in6_months =
        body.purchased_or_subject_to_mortgage_in6_months?;
    let liabilities_in4_years = body.liabilities_in4_years?;

    // Rule 1: condo -> address.unitNumber.
    if building_type == BuildingType::Condo && address_.unit_number.is_none() {
        return None;
    }
    // Rule 2: multiUnit -> propertyUnits in 2..=4; otherwise 1..=4, default 1.
    let property_units = match (building_type, property_units) {
        (BuildingType::MultiUnit, None) => return None,
        (BuildingType::MultiUnit, Some(n)) if !(2..=4).contains(&n) => return None,
        (_, Some(n)) if !(1..=4).contains(&n) => return None,
        (_, Some(n)) => u8::try_from(n).ok()?,
        (_, None) => 1,
    };
    // Rule 3: investment -> rentalOccupancy; unless vacant, monthlyRentalIncome > 0.
    if property_usage == PropertyUsage::Investment {
        let stated = stated_information.as_ref()?;
        match stated.rental_occupancy? {
            RentalOccupancy::Vacant => {}
            RentalOccupancy::LongTerm | RentalOccupancy::ShortTerm => {
                if stated.monthly_rental_income? == 0.0 {
                    return None;
                }
            }
        }
    }
    Some(HelocLead {
        affiliate_id,
        building_type,
        property_units,
        loan_purpose,
        property_usage,
        contact_info,
        address: address_,
        stated_information,
        residential_address,
        listed_for_sale_in6_months,
        purchased_or_subject_to_mortgage_in6_months,
        liabilities_in4_years,
    })
}

/// The lead parsed from `body`, when the fast path takes it; `None` to fall back to the `Value`-based parser
/// (which then decides: it may still accept, or it lists every error).
pub(crate) fn parse(body: &[u8]) -> Option<ParsedLead> {
    let text = std::str::from_utf8(body).ok()?;
    let typed: Body<'_> = serde_json::from_str(text).ok()?;
    let mut parsed = lead(&typed)?.into_parsed();
    parsed.original = crate::lead::LeadJson::from_text(text.to_owned()).ok()?;
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::ssrf::UrlPolicy;
    use crate::verticals::{FieldErrors, Vertical};

    #[test]
    fn has_control_is_char_is_control() {
        for code in 0..=0x10_ffffu32 {
            if let Some(c) = char::from_u32(code) {
                let s = format!("a{c}b");
                assert_eq!(has_control(&s), c.is_control(), "U+{code:04X}");
            }
        }
    }

    /// The slow path's outcome, comparable: the lead and original as exact text, or every error.
    type Outcome =
        Result<(String, String, Vec<(&'static str, String)>, Option<String>), FieldErrors>;

    fn outcome(result: Result<ParsedLead, FieldErrors>) -> Outcome {
        result.map(|p| {
            (
                p.lead.as_str().to_owned(),
                p.original.as_str().to_owned(),
                p.unique,
                p.ssn,
            )
        })
    }

    /// The whole proof obligation for one body: whenever the fast path takes it, the slow path accepts it
    /// with the same lead, original, unique values and SSN; and `parse` (fast path first) answers exactly as
    /// the slow path alone, errors included. Returns whether the fast path took it.
    fn assert_equivalent(body: &[u8]) -> bool {
        let slow = outcome(Vertical::Heloc.parse_via_value(body, UrlPolicy::default()));
        let fast = parse(body).map(|p| outcome(Ok(p)));
        if let Some(fast) = &fast {
            assert_eq!(
                fast,
                &slow,
                "fast path differs on {}",
                String::from_utf8_lossy(body)
            );
        }
        let both = outcome(Vertical::Heloc.parse(body));
        assert_eq!(
            both,
            slow,
            "parse differs on {}",
            String::from_utf8_lossy(body)
        );
        fast.is_some()
    }

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn json_files(dir: &str) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(repo().join(dir))
            .expect("the fixture directory")
            .map(|entry| entry.expect("an entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .map(|path| {
                let name = path
                    .file_name()
                    .expect("a name")
                    .to_string_lossy()
                    .into_owned();
                (name, std::fs::read(&path).expect("readable"))
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn fast_and_slow_agree_on_every_heloc_fixture_and_the_fast_path_takes_every_valid_one() {
        let fixtures = json_files("infra/bench/fixtures/heloc");
        assert!(fixtures.len() >= 80, "{} fixtures", fixtures.len());
        for (name, body) in &fixtures {
            let taken = assert_equivalent(body);
            // Every valid fixture goes the fast way (the benchmark measures what partners get); no invalid
            // one can (the fast path only accepts).
            assert_eq!(taken, name.starts_with("valid-"), "{name}");
        }
    }

    #[test]
    fn fast_and_slow_agree_on_every_example_body() {
        let examples = json_files("infra/examples");
        assert!(examples.iter().any(|(name, _)| name == "heloc.json"));
        for (name, body) in &examples {
            // The other verticals' examples are invalid HELOC leads (unknown fields): both refuse alike.
            let taken = assert_equivalent(body);
            assert_eq!(taken, name == "heloc.json", "{name}");
        }
        assert!(assert_equivalent(
            &serde_json::to_vec(&super::super::example()).expect("json")
        ));
    }

    #[test]
    fn duplicate_keys_fall_back_and_the_value_path_decides() {
        // serde's typed path refuses a field given twice; the Value path keeps the last. The fast path
        // must not take either reading: it falls back and the answer is the slow path's.
        let example =
            std::fs::read_to_string(repo().join("infra/examples/heloc.json")).expect("example");
        for (dup, slow_accepts) in [
            (r#"{"buildingType": "other","#, true),
            (r#"{"buildingType": "not-a-type","#, true),
            (r#"{"liabilitiesIn4Years": "yes","#, true),
        ] {
            let body = example.replacen('{', dup, 1);
            assert!(parse(body.as_bytes()).is_none(), "{dup}");
            assert_eq!(
                Vertical::Heloc.parse(body.as_bytes()).is_ok(),
                slow_accepts,
                "{dup}"
            );
            assert_equivalent(body.as_bytes());
        }
        // The last of two is wrong: refused, with the slow path's errors.
        let body = example.replacen(
            r#""buildingType": "condo","#,
            r#""buildingType": "condo", "buildingType": "castle","#,
            1,
        );
        assert_ne!(body, example);
        assert!(Vertical::Heloc.parse(body.as_bytes()).is_err());
        assert_equivalent(body.as_bytes());
    }

    #[test]
    fn escapes_are_decoded_and_checked_like_the_slow_path() {
        let example =
            std::fs::read_to_string(repo().join("infra/examples/heloc.json")).expect("example");
        for (from, to, fast_takes) in [
            // Escaped text, escaped key, escaped slash: decoded, taken.
            (r#""Jane""#, r#""J\u0061ne \"JJ\" \/""#, true),
            (r#""firstName""#, r#""first\u004eame""#, true),
            (r#""Doe""#, r#""D\u00f6e""#, true),
            // Escapes that decode to control characters: refused (by the slow path, with its errors).
            (r#""Doe""#, r#""D\u0000oe""#, false),
            (r#""Doe""#, r#""D\noe""#, false),
            (r#""Doe""#, r#""D\toe""#, false),
            (r#""Doe""#, r#""D\u0085oe""#, false),
            (r#""Doe""#, r#""D\u007foe""#, false),
            (r#""Doe""#, "\"D\u{7f}oe\"", false),
            (r#""Doe""#, "\"D\u{85}oe\"", false),
            (r#""Doe""#, "\"D\u{9f}oe\"", false),
            // A lone surrogate is not JSON text for either.
            (r#""Doe""#, r#""D\ud800oe""#, false),
        ] {
            let body = example.replacen(from, to, 1);
            assert_ne!(body, example, "{to}");
            assert_eq!(assert_equivalent(body.as_bytes()), fast_takes, "{to}");
        }
    }

    #[test]
    fn edge_values_agree() {
        let example: Value = serde_json::from_slice(
            &std::fs::read(repo().join("infra/examples/heloc.json")).expect("example"),
        )
        .expect("json");
        let cases: Vec<(&str, Value)> = vec![
            ("/address/unitNumber", json!(1.0)),
            ("/address/unitNumber", json!(1e300)),
            ("/address/unitNumber", json!(9007199254740993u64)),
            ("/address/unitNumber", json!(u64::MAX)),
            ("/address/unitNumber", json!(-0.0)),
            ("/address/unitNumber", json!(8.99e15)),
            ("/address/unitNumber", json!(9.1e15)),
            ("/propertyUnits", json!(4.0)),
            ("/propertyUnits", json!(-0.0)),
            ("/propertyUnits", json!(i64::MIN)),
            ("/affiliateId", json!("")),
            ("/affiliateId", json!("   ")),
            ("/affiliateId", json!("é".repeat(255))),
            ("/affiliateId", json!("é".repeat(256))),
            ("/affiliateId", json!(format!(" {} ", "x".repeat(255)))),
            ("/affiliateId", json!("\u{a0}x\u{2028}")),
            (
                "/contactInfo/email",
                json!(format!("{}@example.com", "a".repeat(250))),
            ),
            ("/contactInfo/phone", json!("+1 727 555 0134")),
            ("/address/state", json!(" fl ")),
            ("/address/zip", json!("33606 1234")),
        ];
        for (pointer, value) in cases {
            let mut lead = example.clone();
            let path = pointer.trim_start_matches('/').replace('/', ".");
            set_path(&mut lead, &path, Some(value));
            assert_equivalent(&serde_json::to_vec(&lead).expect("json"));
        }
    }

    const PATHS: &[&str] = &[
        "affiliateId",
        "buildingType",
        "propertyUnits",
        "loanPurpose",
        "propertyUsage",
        "contactInfo",
        "contactInfo.firstName",
        "contactInfo.lastName",
        "contactInfo.email",
        "contactInfo.phone",
        "contactInfo.middleName",
        "address",
        "address.street",
        "address.city",
        "address.state",
        "address.zip",
        "address.county",
        "address.unitNumber",
        "address.extra",
        "statedInformation",
        "statedInformation.monthlyRentalIncome",
        "statedInformation.rentalOccupancy",
        "statedInformation.other",
        "residentialAddress",
        "residentialAddress.street",
        "residentialAddress.zip",
        "residentialAddress.unitNumber",
        "listedForSaleIn6Months",
        "purchasedOrSubjectToMortgageIn6Months",
        "liabilitiesIn4Years",
        "loanAmount",
    ];

    fn pool() -> Vec<Value> {
        vec![
            Value::Null,
            json!(""),
            json!("  "),
            json!(" x "),
            json!("condo"),
            json!("multiUnit"),
            json!("singleFamily"),
            json!("investment"),
            json!("primaryResidence"),
            json!("vacant"),
            json!("longTerm"),
            json!("shortTerm"),
            json!(0),
            json!(-1),
            json!(1),
            json!(2),
            json!(4),
            json!(5),
            json!(2.0),
            json!(2.5),
            json!(1e20),
            json!(-0.0),
            json!(1800),
            json!(0.01),
            json!(true),
            json!(false),
            json!([]),
            json!({}),
            json!([1]),
            json!({"a": 1}),
            json!({"street": "2 Oak", "city": "X", "state": "ca", "zip": "90001"}),
            json!({"rentalOccupancy": "longTerm", "monthlyRentalIncome": 10}),
            json!("fl"),
            json!("ZZ"),
            json!("33606-1234"),
            json!("3360"),
            json!("(727) 555-0134"),
            json!("1-727-555-0134"),
            json!("a@b.co"),
            json!("a@b"),
            json!("Zoë \"Q\" Ångström/李"),
            json!("x".repeat(256)),
            json!("é".repeat(255)),
            json!("Jane\u{a0}"),
            json!("\u{feff}Jane"),
            json!("a\u{0}"),
            json!("a\nb"),
            json!("a\u{7f}"),
            json!("a\u{85}"),
            json!("a\u{9f}"),
            json!("\u{2028}"),
            json!("1800"),
        ]
    }

    fn set_path(lead: &mut Value, path: &str, value: Option<Value>) {
        let parts: Vec<&str> = path.split('.').collect();
        let mut node = lead;
        for part in &parts[..parts.len() - 1] {
            let Value::Object(object) = node else { return };
            let child = object.entry(part.to_string()).or_insert_with(|| json!({}));
            if !child.is_object() {
                *child = json!({});
            }
            node = child;
        }
        let Value::Object(object) = node else { return };
        let last = parts[parts.len() - 1].to_owned();
        match value {
            Some(value) => {
                object.insert(last, value);
            }
            None => {
                object.remove(&last);
            }
        }
    }

    /// `text` with some letters inside strings (keys too) written as `\u00XX` escapes, chosen by `mask`.
    fn escape_some(text: &str, mask: u64) -> String {
        let mut out = String::with_capacity(text.len() * 2);
        let (mut in_string, mut escaped, mut letter) = (false, false, 0u32);
        for c in text.chars() {
            if in_string && !escaped && c.is_ascii_alphanumeric() {
                letter += 1;
                if mask & (1 << (letter % 64)) != 0 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                    continue;
                }
            }
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' && in_string {
                escaped = true;
            } else if c == '"' {
                in_string = !in_string;
            }
        }
        out
    }

    fn bases() -> Vec<Value> {
        let example: Value = serde_json::from_slice(
            &std::fs::read(repo().join("infra/examples/heloc.json")).expect("example"),
        )
        .expect("json");
        let mut investment = example.clone();
        investment["buildingType"] = json!("multiUnit");
        investment["propertyUnits"] = json!(3);
        investment["propertyUsage"] = json!("investment");
        investment["statedInformation"] =
            json!({"rentalOccupancy": "shortTerm", "monthlyRentalIncome": 2500.5});
        let mut minimal = example.clone();
        minimal["buildingType"] = json!("singleFamily");
        minimal
            .as_object_mut()
            .expect("object")
            .remove("affiliateId");
        vec![example, investment, minimal]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn fast_path_never_accepts_what_the_slow_path_refuses_and_agrees_when_both_accept(
            base in 0usize..3,
            changes in proptest::collection::vec((0..PATHS.len(), 0usize..60), 0..5),
            duplicate in proptest::option::of((0..PATHS.len(), 0usize..52)),
            escapes in proptest::option::of(any::<u64>()),
            pretty in any::<bool>(),
            truncate in proptest::option::weighted(0.05, 0usize..400),
        ) {
            let pool = pool();
            let mut lead = bases().swap_remove(base);
            for (path, value) in changes {
                // Indexes past the pool remove the field.
                set_path(&mut lead, PATHS[path], pool.get(value).cloned());
            }
            let mut text = if pretty {
                serde_json::to_string_pretty(&lead).expect("json")
            } else {
                serde_json::to_string(&lead).expect("json")
            };
            if let Some((path, value)) = duplicate {
                // The same key twice in one object: a second member put before the first.
                let (parent, key) = match PATHS[path].rsplit_once('.') {
                    Some((parent, key)) => (Some(parent), key),
                    None => (None, PATHS[path]),
                };
                let member = format!("\"{key}\":{},", pool[value % pool.len()]);
                let at = match parent {
                    None => text.find('{').map(|i| i + 1),
                    Some(parent) => text
                        .find(&format!("\"{parent}\""))
                        .and_then(|i| text[i..].find('{').map(|j| i + j + 1)),
                };
                if let Some(at) = at {
                    text.insert_str(at, &member);
                }
            }
            if let Some(mask) = escapes {
                text = escape_some(&text, mask);
            }
            let mut body = text.into_bytes();
            if let Some(at) = truncate {
                body.truncate(at.min(body.len()));
            }
            assert_equivalent(&body);
        }
    }
}
