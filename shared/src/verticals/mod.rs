//! Inbound lead schemas, one module per vertical.
//!
//! A vertical turns the bytes a partner posted into a normalised lead or the complete list of field
//! errors, never half of each. Each module has `parse` (rules and normalisation), `schema` (the JSON Schema
//! of its body, published in the OpenAPI document) and `example` (a valid lead); a test keeps the schema in
//! step with the parser. Adding a vertical is one module here, one variant of [`Vertical`] (declared in
//! [`crate::vertical`], a leaf module, so that the lead model can name it without importing this one) and its
//! arms here.

pub mod fields;
pub mod heloc;
pub mod mortgage;
pub mod real_estate;
pub mod solar;

#[cfg(test)]
pub(crate) mod schema_check;
#[cfg(test)]
pub(crate) mod test_support;

use serde::Serialize;

pub use crate::vertical::Vertical;
pub use fields::{FieldError, FieldErrors, ObjectReader};

/// The rules of each vertical (the enum itself is [`crate::vertical`], which imports nothing of the crate).
impl Vertical {
    /// Where a lead of this vertical may carry an SSN (JSON pointers). It is used for screening only and
    /// never part of the stored lead: the parser hands it over in [`ParsedLead::ssn`] and it is removed from
    /// `original` (ingest keeps its keyed hash, and a sealed copy until screening has decided).
    pub fn ssn_pointers(self) -> &'static [&'static str] {
        match self {
            Vertical::Mortgage => &["/borrower/ssn"],
            Vertical::Heloc | Vertical::Solar | Vertical::RealEstate => &[],
        }
    }

    /// Parse, check and normalise a lead of this vertical (partner-supplied URLs public only).
    pub fn parse(self, body: &[u8]) -> Result<ParsedLead, FieldErrors> {
        self.parse_with(body, crate::ssrf::UrlPolicy::default())
    }

    /// [`Vertical::parse`], partner-supplied URLs in the lead (solar's `call_back_url`) checked under
    /// `policy` (the hub's `allow_loopback_urls`).
    pub fn parse_with(
        self,
        body: &[u8],
        policy: crate::ssrf::UrlPolicy,
    ) -> Result<ParsedLead, FieldErrors> {
        // HELOC's fast path takes the valid leads it can prove valid, straight from the bytes; anything else
        // (every invalid lead among them) goes the `Value` way, which lists every error.
        if self == Vertical::Heloc {
            if let Some(parsed) = heloc::fast::parse(body) {
                return Ok(parsed);
            }
        }
        self.parse_via_value(body, policy)
    }

    /// [`Vertical::parse_with`] through a `serde_json::Value` always (no fast path): the parser that decides
    /// every lead the fast path does not take, and lists every error. Public for the equivalence tests and
    /// the benchmarks, which compare both paths.
    pub fn parse_via_value(
        self,
        body: &[u8],
        policy: crate::ssrf::UrlPolicy,
    ) -> Result<ParsedLead, FieldErrors> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
            FieldErrors::one(FieldError::new(
                fields::ROOT,
                "invalid_json",
                format!(
                    "the body is not valid JSON (line {}, column {})",
                    error.line(),
                    error.column()
                ),
            ))
        })?;
        let mut parsed = self.parse_value_with(&value, policy)?;
        parsed.original = match self.ssn_pointers() {
            // The lead as posted, its text kept (it parsed, so it is JSON: the fallback is never taken).
            [] => std::str::from_utf8(body)
                .ok()
                .and_then(|text| crate::lead::LeadJson::from_text(text.to_owned()).ok())
                .unwrap_or_else(|| crate::lead::LeadJson::from(value)),
            pointers => {
                let mut original = value;
                for pointer in pointers {
                    remove_pointer(&mut original, pointer);
                }
                crate::lead::LeadJson::from(original)
            }
        };
        Ok(parsed)
    }

    /// [`Vertical::parse`] of an already parsed JSON value (`original` is left empty).
    pub fn parse_value(self, value: &serde_json::Value) -> Result<ParsedLead, FieldErrors> {
        self.parse_value_with(value, crate::ssrf::UrlPolicy::default())
    }

    /// [`Vertical::parse_value`] under `policy` for partner-supplied URLs.
    pub fn parse_value_with(
        self,
        value: &serde_json::Value,
        policy: crate::ssrf::UrlPolicy,
    ) -> Result<ParsedLead, FieldErrors> {
        // Control characters are refused in every string of every vertical, before (and beside) the
        // vertical's own rules: the answer lists both, one error per field.
        let controls = fields::control_characters(value);
        let parsed = match self {
            Vertical::Heloc => heloc::parse(value).map(heloc::HelocLead::into_parsed),
            Vertical::Mortgage => mortgage::parse(value),
            Vertical::Solar => solar::parse_with(value, policy),
            Vertical::RealEstate => real_estate::parse(value),
        };
        if controls.is_empty() {
            return parsed;
        }
        let mut errors = controls;
        if let Err(others) = parsed {
            for error in others.into_vec() {
                if !errors.0.iter().any(|known| known.field == error.field) {
                    errors.0.push(error);
                }
            }
        }
        Err(errors)
    }

    /// The JSON Schema (2020-12) of this vertical's body.
    pub fn schema(self) -> serde_json::Value {
        match self {
            Vertical::Heloc => heloc::schema(),
            Vertical::Mortgage => mortgage::schema(),
            Vertical::Solar => solar::schema(),
            Vertical::RealEstate => real_estate::schema(),
        }
    }

    /// A valid lead of this vertical.
    pub fn example(self) -> serde_json::Value {
        match self {
            Vertical::Heloc => heloc::example(),
            Vertical::Mortgage => mortgage::example(),
            Vertical::Solar => solar::example(),
            Vertical::RealEstate => real_estate::example(),
        }
    }
}

fn remove_pointer(value: &mut serde_json::Value, pointer: &str) {
    if let Some((parent, key)) = pointer.rsplit_once('/') {
        if let Some(serde_json::Value::Object(object)) = value.pointer_mut(parent) {
            object.remove(key);
        }
    }
}

/// A lead that passed its vertical's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLead {
    /// The lead in the vertical's own schema and field names, normalised, as JSON text.
    pub lead: crate::lead::LeadJson,
    /// The lead as posted, without any SSN: the posted text itself where the vertical has no SSN field,
    /// otherwise the posted JSON re-serialised without it. `null` from [`Vertical::parse_value`].
    pub original: crate::lead::LeadJson,
    /// Values that must be unique across the system for this vertical (field name, normalised value).
    /// The values are PII: they are only ever stored as keyed hashes.
    pub unique: Vec<(&'static str, String)>,
    /// An SSN (9 digits) given for screening: never part of the stored lead, only its keyed hash (and,
    /// apart from the lead, a sealed copy until screening has decided: [`crate::store::SealedSsns`]).
    pub ssn: Option<String>,
}

impl ParsedLead {
    /// A parsed lead from a typed, normalised value.
    pub fn new(lead: &impl Serialize, unique: Vec<(&'static str, String)>) -> Self {
        ParsedLead {
            // Serialising plain data cannot fail; fall back to null rather than panic.
            lead: crate::lead::LeadJson::from_serialize(lead)
                .unwrap_or_else(|_| crate::lead::LeadJson::from(serde_json::Value::Null)),
            original: crate::lead::LeadJson::from(serde_json::Value::Null),
            unique,
            ssn: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn set(lead: &mut Value, pointer: &str, text: &str) {
        *lead
            .pointer_mut(pointer)
            .expect("the example has this field") = json!(text);
    }

    fn errors_of(vertical: Vertical, lead: &Value) -> Vec<FieldError> {
        let body = serde_json::to_vec(lead).expect("json");
        match vertical.parse(&body) {
            Ok(_) => panic!("{vertical}: a lead with a control character was accepted"),
            Err(errors) => errors.into_vec(),
        }
    }

    #[test]
    fn a_control_character_in_any_text_field_of_each_vertical_is_an_error_naming_it() {
        // One text field per vertical, and each kind of control character: NUL, another C0 (ESC), a line
        // break, DEL and a C1 (NEL, U+0085).
        let cases: [(Vertical, &str, &str); 8] = [
            (
                Vertical::Heloc,
                "/contactInfo/firstName",
                "contactInfo.firstName",
            ),
            (Vertical::Heloc, "/address/city", "address.city"),
            (
                Vertical::Mortgage,
                "/borrower/firstName",
                "borrower.firstName",
            ),
            (Vertical::Mortgage, "/property/city", "property.city"),
            (Vertical::Solar, "/customer_name", "customer_name"),
            (
                Vertical::Solar,
                "/extra_data/0/questions/1",
                "extra_data[0].questions[1]",
            ),
            (Vertical::RealEstate, "/firstName", "firstName"),
            (Vertical::RealEstate, "/tags/1", "tags[1]"),
        ];
        for (vertical, pointer, field) in cases {
            for bad in [
                "Jo\u{0}hn",
                "\u{1b}[31mJohn",
                "John\nDoe",
                "John\u{7f}",
                "John\u{85}",
            ] {
                let mut lead = vertical.example();
                set(&mut lead, pointer, bad);
                let errors = errors_of(vertical, &lead);
                let error = errors.iter().find(|e| e.field == field).unwrap_or_else(|| {
                    panic!("{vertical} {bad:?}: no error on {field}: {errors:?}")
                });
                assert_eq!(error.code, "invalid_value", "{vertical} {field}");
                assert!(error.message.contains("control characters"), "{error:?}");
                assert!(!error.message.contains("John"), "the value is not echoed");
                assert_eq!(
                    errors.iter().filter(|e| e.field == field).count(),
                    1,
                    "one error per field: {errors:?}"
                );
            }
            // The same lead without it is fine: the error came from the character.
            let lead = vertical.example();
            let body = serde_json::to_vec(&lead).expect("json");
            assert!(vertical.parse(&body).is_ok(), "{vertical} example");
        }
    }

    #[test]
    fn control_characters_are_reported_beside_the_verticals_own_errors() {
        let mut lead = Vertical::Heloc.example();
        set(&mut lead, "/contactInfo/lastName", "Doe\u{0}");
        set(&mut lead, "/contactInfo/email", "not-an-email");
        let errors = errors_of(Vertical::Heloc, &lead);
        let mut fields: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                ("contactInfo.email", "invalid_format"),
                ("contactInfo.lastName", "invalid_value"),
            ]
        );
    }

    #[test]
    fn printable_unicode_is_not_a_control_character() {
        let mut lead = Vertical::Heloc.example();
        set(&mut lead, "/contactInfo/firstName", "Zoë Ångström-Nuñez 李");
        let body = serde_json::to_vec(&lead).expect("json");
        assert!(Vertical::Heloc.parse(&body).is_ok());
    }
}
