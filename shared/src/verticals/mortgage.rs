//! Mortgage leads: the hub's own inbound shape, built around the required fields of seed
//! `000_30a5a1304ad505d7.txt` (Sonar's generic Leads API) plus the optional fields a mortgage lead usually
//! carries. Sonar's full field list is "attached below" in the seed but not included, so the body is ours:
//!
//! ```text
//! {
//!   "purpose": "Purchase" | "RefinanceCashOut" | "RefinanceRateAndTerm" | "PreApproval",  // required (Sonar's enum)
//!   "borrower": {                                                                       // required
//!     "firstName": string,          // required (Sonar: Borrower FirstName)
//!     "lastName": string,           // required (Sonar: Borrower LastName)
//!     "email": email,               // required (Sonar: Borrower Email)
//!     "phone": US phone,            // optional, normalised to E.164
//!     "ssn": "123-45-6789"          // optional, screening only: never in the normalised lead
//!   },
//!   "property": {                                                                       // required
//!     "city": string,               // required (Sonar: City, the subject property's)
//!     "state": USPS code,           // required (Sonar: State), upper-cased
//!     "zip": ZIP or ZIP+4,          // optional
//!     "value": number > 0           // optional, estimated value in USD
//!   },
//!   "loanAmount": number > 0,       // optional, USD
//!   "creditBand": "Excellent" | "Good" | "Fair" | "Poor",  // optional, self-reported
//!   "affiliateId": string           // optional, the lead's id in the partner's system
//! }
//! ```
//!
//! Choices where the seed is silent, written down here:
//! - Enum values are spelled exactly as Sonar's (`Purchase`, ...; case-sensitive), and `creditBand` likewise.
//! - Sonar only says "State": it must be a USPS code of a US state, DC or territory, as everywhere in the hub.
//! - The SSN is accepted as 9 digits, optionally separated at the usual places by a dash or a space
//!   (`123456789`, `123-45-6789`, `123 45 6789`); other separators or placements are refused. It must also be
//!   a number the SSA could have issued: area not 000, 666 or 900-999, group not 00, serial not 0000. It is
//!   returned (digits only) in [`ParsedLead::ssn`] for screening and is never part of [`MortgageLead`]; the
//!   registry strips `/borrower/ssn` from the stored original. Its messages never repeat it.
//! - `value` and `loanAmount` must be finite numbers greater than 0; there is no upper bound (none given).

use serde::Serialize;
use serde_json::{json, Value};

use super::fields::{Email, FieldErrors, ObjectReader, Phone, StateCode, Zip, MAX_TEXT_LEN};
use super::ParsedLead;

/// Sonar's loan purpose ("the transaction type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Purpose {
    Purchase,
    RefinanceCashOut,
    RefinanceRateAndTerm,
    PreApproval,
}

const PURPOSES: [(&str, Purpose); 4] = [
    ("Purchase", Purpose::Purchase),
    ("RefinanceCashOut", Purpose::RefinanceCashOut),
    ("RefinanceRateAndTerm", Purpose::RefinanceRateAndTerm),
    ("PreApproval", Purpose::PreApproval),
];

/// The borrower's self-reported credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CreditBand {
    Excellent,
    Good,
    Fair,
    Poor,
}

const CREDIT_BANDS: [(&str, CreditBand); 4] = [
    ("Excellent", CreditBand::Excellent),
    ("Good", CreditBand::Good),
    ("Fair", CreditBand::Fair),
    ("Poor", CreditBand::Poor),
];

/// The message for an SSN of the wrong shape or one that cannot have been issued. It never repeats the value.
pub const SSN_RULE: &str = "must be a valid SSN (9 digits)";

/// The borrower, without the SSN (which is never part of the normalised lead).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Borrower {
    pub first_name: String,
    pub last_name: String,
    pub email: Email,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
}

/// The subject property.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    pub city: String,
    pub state: StateCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<Zip>,
    /// Estimated value, USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// A mortgage lead that satisfies Sonar's required fields and the hub's rules, normalised.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MortgageLead {
    pub purpose: Purpose,
    pub borrower: Borrower,
    pub property: Property,
    /// USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loan_amount: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_band: Option<CreditBand>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affiliate_id: Option<String>,
}

/// A mortgage lead and the SSN given with it for screening (9 digits), kept apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub lead: MortgageLead,
    pub ssn: Option<String>,
}

impl Parsed {
    pub fn into_parsed(self) -> ParsedLead {
        let mut parsed = ParsedLead::new(&self.lead, vec![]);
        parsed.ssn = self.ssn;
        parsed
    }
}

/// Check a mortgage lead and normalise it; every broken rule is reported.
pub fn parse(value: &Value) -> Result<ParsedLead, FieldErrors> {
    parse_lead(value).map(Parsed::into_parsed)
}

/// An SSN as 9 digits: `123456789`, `123-45-6789` or `123 45 6789`, issuable (see the module docs).
pub fn parse_ssn(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim().as_bytes();
    let separator = |b: u8| b == b'-' || b == b' ';
    let (area, group, serial) = match s.len() {
        9 => (&s[..3], &s[3..5], &s[5..]),
        10 if separator(s[3]) => (&s[..3], &s[4..6], &s[6..]),
        10 if separator(s[5]) => (&s[..3], &s[3..5], &s[6..]),
        11 if separator(s[3]) && separator(s[6]) => (&s[..3], &s[4..6], &s[7..]),
        _ => return Err(SSN_RULE),
    };
    let digits = [area, group, serial];
    if !digits
        .iter()
        .all(|part| part.iter().all(u8::is_ascii_digit))
    {
        return Err(SSN_RULE);
    }
    let issuable =
        area != b"000" && area != b"666" && area[0] != b'9' && group != b"00" && serial != b"0000";
    if !issuable {
        return Err(SSN_RULE);
    }
    // Nine ASCII digits.
    Ok(digits.concat().into_iter().map(char::from).collect())
}

fn positive(r: &mut ObjectReader<'_>, name: &'static str, errors: &mut FieldErrors) -> Option<f64> {
    let number = r.number(name, false, errors)?;
    if number > 0.0 {
        Some(number)
    } else {
        errors.push(&r.path(name), "out_of_range", "must be greater than 0");
        None
    }
}

/// [`parse`], returning the typed lead and the SSN apart.
pub fn parse_lead(value: &Value) -> Result<Parsed, FieldErrors> {
    let mut errors = FieldErrors::default();
    let Some(mut root) = ObjectReader::new(value, "", &mut errors) else {
        return Err(errors);
    };

    let purpose = root.one_of("purpose", true, &PURPOSES, &mut errors);
    let mut ssn = None;
    let borrower = root.object("borrower", true, &mut errors, |r, errors| {
        let first_name = r.string("firstName", true, MAX_TEXT_LEN, errors);
        let last_name = r.string("lastName", true, MAX_TEXT_LEN, errors);
        let email = r.parsed("email", true, errors, Email::parse);
        let phone = r.parsed("phone", false, errors, Phone::parse);
        ssn = r.parsed("ssn", false, errors, parse_ssn);
        Some(Borrower {
            first_name: first_name?,
            last_name: last_name?,
            email: email?,
            phone,
        })
    });
    let property = root.object("property", true, &mut errors, |r, errors| {
        let city = r.string("city", true, MAX_TEXT_LEN, errors);
        let state = r.parsed("state", true, errors, StateCode::parse);
        let zip = r.parsed("zip", false, errors, Zip::parse);
        let value = positive(r, "value", errors);
        Some(Property {
            city: city?,
            state: state?,
            zip,
            value,
        })
    });
    let loan_amount = positive(&mut root, "loanAmount", &mut errors);
    let credit_band = root.one_of("creditBand", false, &CREDIT_BANDS, &mut errors);
    let affiliate_id = root.string("affiliateId", false, MAX_TEXT_LEN, &mut errors);
    root.finish(&mut errors);

    if !errors.is_empty() {
        return Err(errors);
    }
    match (purpose, borrower, property) {
        (Some(purpose), Some(borrower), Some(property)) => Ok(Parsed {
            lead: MortgageLead {
                purpose,
                borrower,
                property,
                loan_amount,
                credit_band,
                affiliate_id,
            },
            ssn,
        }),
        // Unreachable in practice: every missing piece above recorded an error. Report it rather than panic.
        _ => Err(FieldErrors::unreadable()),
    }
}

/// The JSON Schema of a mortgage lead.
pub fn schema() -> Value {
    let purposes: Vec<&str> = PURPOSES.iter().map(|(name, _)| *name).collect();
    let bands: Vec<&str> = CREDIT_BANDS.iter().map(|(name, _)| *name).collect();
    json!({
        "type": "object",
        "title": "MortgageLead",
        "description": "A mortgage lead: Sonar's required fields (seed 000: loan purpose, borrower first and last name and email, subject property city and state) plus optional fields. borrower.ssn is used for screening only and never part of the stored lead.",
        "additionalProperties": false,
        "required": ["purpose", "borrower", "property"],
        "properties": {
            "purpose": {"type": "string", "enum": purposes, "description": "Loan purpose: the transaction type (Sonar's enum, case-sensitive)"},
            "borrower": {
                "type": "object",
                "additionalProperties": false,
                "required": ["firstName", "lastName", "email"],
                "properties": {
                    "firstName": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN, "description": "Borrower's first name"},
                    "lastName": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN, "description": "Borrower's last name"},
                    "email": {"type": "string", "format": "email", "maxLength": MAX_TEXT_LEN, "description": "Borrower's email address"},
                    "phone": {"type": "string", "maxLength": MAX_TEXT_LEN, "description": "Borrower's US phone number (10 digits, optional +1; spaces, dots, dashes, parentheses allowed); normalised to E.164"},
                    "ssn": {"type": "string", "pattern": "^\\s*[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}\\s*$", "description": "Borrower's SSN: 9 digits, optionally as 123-45-6789 or 123 45 6789; area not 000, 666 or 9xx, group not 00, serial not 0000. Used for screening only: never part of the stored lead (only a keyed hash), and kept encrypted only until screening has decided"}
                }
            },
            "property": {
                "type": "object",
                "description": "The subject property",
                "additionalProperties": false,
                "required": ["city", "state"],
                "properties": {
                    "city": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN, "description": "Subject property city"},
                    "state": {"type": "string", "pattern": "^[A-Za-z]{2}$", "description": "Subject property state: 2-letter USPS code of a US state, DC or territory (case-insensitive; upper-cased)"},
                    "zip": {"type": "string", "pattern": "^\\s*[0-9]{5}([- ]?[0-9]{4})?\\s*$", "description": "Subject property ZIP code: 5 digits or ZIP+4; normalised to 12345 or 12345-6789"},
                    "value": {"type": "number", "exclusiveMinimum": 0, "description": "Estimated property value, USD"}
                }
            },
            "loanAmount": {"type": "number", "exclusiveMinimum": 0, "description": "Requested loan amount, USD"},
            "creditBand": {"type": "string", "enum": bands, "description": "Borrower's self-reported credit"},
            "affiliateId": {"type": "string", "maxLength": MAX_TEXT_LEN, "description": "Identifier for the lead in the partner's system"}
        }
    })
}

/// A valid mortgage lead.
pub fn example() -> Value {
    json!({
        "purpose": "RefinanceCashOut",
        "borrower": {
            "firstName": "Jane",
            "lastName": "Doe",
            "email": "jane.doe@example.com",
            "phone": "(727) 555-0134",
            "ssn": "123-45-6789"
        },
        "property": {"city": "Tampa", "state": "FL", "zip": "33601", "value": 425000},
        "loanAmount": 150000,
        "creditBand": "Good",
        "affiliateId": "aff-123"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verticals::fields::{FieldError, ROOT};
    use crate::verticals::test_support::{errors, set};

    #[test]
    fn schema_is_in_step_with_the_parser() {
        crate::verticals::schema_check::assert_in_step(crate::verticals::Vertical::Mortgage);
    }

    fn valid() -> Value {
        json!({
            "purpose": "Purchase",
            "borrower": {
                "firstName": "Jane",
                "lastName": "Doe",
                "email": "Jane.Doe@Example.com",
                "phone": "727.555.0134",
                "ssn": "123-45-6789"
            },
            "property": {"city": "Tampa", "state": "fl", "zip": "336011234", "value": 425000.5},
            "loanAmount": 150000,
            "creditBand": "Excellent",
            "affiliateId": " aff-123 "
        })
    }

    fn errors_of(lead: &Value) -> Vec<FieldError> {
        errors(parse(lead))
    }

    /// One row per rule: (what, changes to the valid lead, expected (field, code)).
    #[test]
    fn every_rule_of_seed_000() {
        type Row = (
            String,
            Vec<(&'static str, Value)>,
            Vec<(&'static str, &'static str)>,
        );
        let row = |what: &str, changes: Vec<(&'static str, Value)>, expected| -> Row {
            (what.to_owned(), changes, expected)
        };
        let long_text = json!("x".repeat(MAX_TEXT_LEN + 1));
        let mut rows: Vec<Row> = vec![
            row("valid lead", vec![], vec![]),
            row(
                "only Sonar's required fields",
                vec![
                    ("borrower.phone", Value::Null),
                    ("borrower.ssn", Value::Null),
                    ("property.zip", Value::Null),
                    ("property.value", Value::Null),
                    ("loanAmount", Value::Null),
                    ("creditBand", Value::Null),
                    ("affiliateId", Value::Null),
                ],
                vec![],
            ),
        ];
        // Every required field missing.
        for path in [
            "purpose",
            "borrower",
            "borrower.firstName",
            "borrower.lastName",
            "borrower.email",
            "property",
            "property.city",
            "property.state",
        ] {
            rows.push(row(
                &format!("{path} required"),
                vec![(path, Value::Null)],
                vec![(path, "required")],
            ));
        }
        for path in ["borrower.firstName", "borrower.lastName", "property.city"] {
            rows.push(row(
                &format!("{path} not blank"),
                vec![(path, json!("  "))],
                vec![(path, "required")],
            ));
            rows.push(row(
                &format!("{path} too long"),
                vec![(path, long_text.clone())],
                vec![(path, "too_long")],
            ));
        }
        // Enums: every value accepted, others refused.
        for (name, _) in PURPOSES {
            rows.push(row(
                &format!("purpose {name}"),
                vec![("purpose", json!(name))],
                vec![],
            ));
        }
        for (name, _) in CREDIT_BANDS {
            rows.push(row(
                &format!("creditBand {name}"),
                vec![("creditBand", json!(name))],
                vec![],
            ));
        }
        rows.extend(vec![
            row(
                "purpose unknown",
                vec![("purpose", json!("Refinance"))],
                vec![("purpose", "invalid_value")],
            ),
            row(
                "purpose is case-sensitive",
                vec![("purpose", json!("purchase"))],
                vec![("purpose", "invalid_value")],
            ),
            row(
                "purpose is a string",
                vec![("purpose", json!(1))],
                vec![("purpose", "invalid_type")],
            ),
            row(
                "creditBand unknown",
                vec![("creditBand", json!("Superb"))],
                vec![("creditBand", "invalid_value")],
            ),
            row(
                "creditBand is case-sensitive",
                vec![("creditBand", json!("GOOD"))],
                vec![("creditBand", "invalid_value")],
            ),
            row(
                "creditBand is a string",
                vec![("creditBand", json!(700))],
                vec![("creditBand", "invalid_type")],
            ),
            // Borrower.
            row(
                "email format",
                vec![("borrower.email", json!("jane.doe@"))],
                vec![("borrower.email", "invalid_format")],
            ),
            row(
                "phone optional",
                vec![("borrower.phone", Value::Null)],
                vec![],
            ),
            row(
                "phone format",
                vec![("borrower.phone", json!("7271234567x"))],
                vec![("borrower.phone", "invalid_format")],
            ),
            row(
                "phone must be a US number",
                vec![("borrower.phone", json!("+44 20 7946 0958"))],
                vec![("borrower.phone", "invalid_format")],
            ),
            row(
                "phone is a string",
                vec![("borrower.phone", json!(7275550134_u64))],
                vec![("borrower.phone", "invalid_type")],
            ),
            // Property.
            row(
                "state must be a USPS code",
                vec![("property.state", json!("XX"))],
                vec![("property.state", "invalid_format")],
            ),
            row(
                "state DC accepted",
                vec![("property.state", json!("dc"))],
                vec![],
            ),
            row("zip optional", vec![("property.zip", Value::Null)], vec![]),
            row(
                "zip format",
                vec![("property.zip", json!("3360"))],
                vec![("property.zip", "invalid_format")],
            ),
            row(
                "value optional",
                vec![("property.value", Value::Null)],
                vec![],
            ),
            row(
                "value 0",
                vec![("property.value", json!(0))],
                vec![("property.value", "out_of_range")],
            ),
            row(
                "value negative",
                vec![("property.value", json!(-1.5))],
                vec![("property.value", "out_of_range")],
            ),
            row(
                "value is a number",
                vec![("property.value", json!("425000"))],
                vec![("property.value", "invalid_type")],
            ),
            row(
                "value just above 0",
                vec![("property.value", json!(0.01))],
                vec![],
            ),
            // Loan amount.
            row(
                "loanAmount 0",
                vec![("loanAmount", json!(0))],
                vec![("loanAmount", "out_of_range")],
            ),
            row(
                "loanAmount negative",
                vec![("loanAmount", json!(-150000))],
                vec![("loanAmount", "out_of_range")],
            ),
            row(
                "loanAmount is a number",
                vec![("loanAmount", json!("150000"))],
                vec![("loanAmount", "invalid_type")],
            ),
            // affiliateId.
            row(
                "affiliateId is a string",
                vec![("affiliateId", json!(12))],
                vec![("affiliateId", "invalid_type")],
            ),
            row(
                "affiliateId too long",
                vec![("affiliateId", long_text.clone())],
                vec![("affiliateId", "too_long")],
            ),
            // Unknown fields, everywhere.
            row(
                "unknown root field",
                vec![("loanPurpose", json!("Purchase"))],
                vec![("loanPurpose", "unknown_field")],
            ),
            row(
                "unknown borrower field",
                vec![("borrower.middleName", json!("Q"))],
                vec![("borrower.middleName", "unknown_field")],
            ),
            row(
                "unknown property field",
                vec![("property.street", json!("1 Main St"))],
                vec![("property.street", "unknown_field")],
            ),
            // Types.
            row(
                "borrower is an object",
                vec![("borrower", json!("Jane Doe"))],
                vec![("borrower", "invalid_type")],
            ),
            row(
                "property is an object",
                vec![("property", json!(["Tampa", "FL"]))],
                vec![("property", "invalid_type")],
            ),
            row(
                "ssn is a string",
                vec![("borrower.ssn", json!(123456789))],
                vec![("borrower.ssn", "invalid_type")],
            ),
        ]);
        // SSN shapes.
        for ok in [
            "123-45-6789",
            "123456789",
            "123 45 6789",
            "123-456789",
            "12345-6789",
            " 123-45-6789 ",
            "665-01-0001",
            "899-99-9999",
        ] {
            rows.push(row(
                &format!("ssn {ok:?} accepted"),
                vec![("borrower.ssn", json!(ok))],
                vec![],
            ));
        }
        for bad in [
            "000-45-6789",
            "666-45-6789",
            "900-45-6789",
            "999-45-6789",
            "123-00-6789",
            "123-45-0000",
            "12A-45-6789",
            "abc-de-fghi",
            "123-45-678",
            "12345678",
            "1234567890",
            "12-345-6789",
            "123--45-6789",
            "123/45/6789",
            "１２３-45-6789",
        ] {
            rows.push(row(
                &format!("ssn {bad:?} refused"),
                vec![("borrower.ssn", json!(bad))],
                vec![("borrower.ssn", "invalid_format")],
            ));
        }
        for (what, changes, expected) in rows {
            let mut lead = valid();
            for (path, value) in changes {
                set(&mut lead, path, value);
            }
            let got: Vec<(String, String)> = errors_of(&lead)
                .into_iter()
                .map(|e| (e.field, e.code))
                .collect();
            let expected: Vec<(String, String)> = expected
                .into_iter()
                .map(|(field, code)| (field.to_owned(), code.to_owned()))
                .collect();
            assert_eq!(got, expected, "row: {what}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let lead = json!({
            "purpose": "Buy",
            "borrower": {"firstName": "", "email": "nope", "phone": "12", "ssn": "000-00-0000", "nick": "J"},
            "property": {"state": "ZZ", "zip": "1", "value": -1},
            "loanAmount": 0,
            "creditBand": "Great",
            "extra": true
        });
        let got: Vec<(String, String)> = errors_of(&lead)
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect();
        let expected: Vec<(String, String)> = [
            ("purpose", "invalid_value"),
            ("borrower.firstName", "required"),
            ("borrower.lastName", "required"),
            ("borrower.email", "invalid_format"),
            ("borrower.phone", "invalid_format"),
            ("borrower.ssn", "invalid_format"),
            ("borrower.nick", "unknown_field"),
            ("property.city", "required"),
            ("property.state", "invalid_format"),
            ("property.zip", "invalid_format"),
            ("property.value", "out_of_range"),
            ("loanAmount", "out_of_range"),
            ("creditBand", "invalid_value"),
            ("extra", "unknown_field"),
        ]
        .into_iter()
        .map(|(f, c)| (f.to_owned(), c.to_owned()))
        .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_ssn_is_kept_out_of_the_lead() {
        let parsed = parse(&valid()).expect("valid");
        assert_eq!(parsed.ssn.as_deref(), Some("123456789"));
        let text = parsed.lead.as_str().to_owned();
        for digits in ["123456789", "123-45-6789", "6789"] {
            assert!(!text.contains(digits), "{text}");
        }
        assert!(parsed.lead.value()["borrower"].get("ssn").is_none());
        assert!(parsed.unique.is_empty());

        let mut without = valid();
        set(&mut without, "borrower.ssn", Value::Null);
        assert_eq!(parse(&without).expect("valid").ssn, None);
    }

    #[test]
    fn messages_never_echo_pii() {
        let lead = json!({
            "purpose": "Purchase",
            "borrower": {
                "firstName": format!("Zebediah{}", "z".repeat(MAX_TEXT_LEN)),
                "lastName": ["Quackenbush"],
                "email": "zebediah.quackenbush@@example.com",
                "phone": "555-QUACK-0134",
                "ssn": "078-05-112"
            },
            "property": {"city": "Springfield", "state": "Evergreen Terrace", "zip": "742 Evergreen"},
        });
        let errors = errors_of(&lead);
        assert_eq!(errors.len(), 7, "{errors:?}");
        for error in &errors {
            for secret in [
                "Zebediah",
                "Quackenbush",
                "quackenbush",
                "QUACK",
                "555",
                "0134",
                "078",
                "112",
                "Evergreen",
                "742",
            ] {
                assert!(
                    !error.message.contains(secret),
                    "{} echoes {secret}: {}",
                    error.field,
                    error.message
                );
            }
        }
        let ssn = errors
            .iter()
            .find(|e| e.field == "borrower.ssn")
            .expect("an SSN error");
        assert_eq!(
            (ssn.code.as_str(), ssn.message.as_str()),
            ("invalid_format", SSN_RULE)
        );
    }

    #[test]
    fn normalises() {
        let parsed = parse(&valid()).expect("valid");
        assert_eq!(
            parsed.lead.value(),
            json!({
                "purpose": "Purchase",
                "borrower": {
                    "firstName": "Jane",
                    "lastName": "Doe",
                    "email": "Jane.Doe@Example.com",
                    "phone": "+17275550134"
                },
                "property": {"city": "Tampa", "state": "FL", "zip": "33601-1234", "value": 425000.5},
                "loanAmount": 150000.0,
                "creditBand": "Excellent",
                "affiliateId": "aff-123"
            })
        );
    }

    #[test]
    fn the_example_is_valid_and_carries_an_ssn() {
        let parsed = parse(&example()).expect("the example is valid");
        assert_eq!(parsed.ssn.as_deref(), Some("123456789"));
        assert_eq!(
            parsed.lead.value()["borrower"]["phone"],
            json!("+17275550134")
        );
    }

    #[test]
    fn the_registry_strips_the_ssn_from_the_original() {
        let body = serde_json::to_vec(&example()).expect("json");
        let parsed = crate::verticals::Vertical::Mortgage
            .parse(&body)
            .expect("valid");
        assert_eq!(parsed.ssn.as_deref(), Some("123456789"));
        assert!(!parsed.original.as_str().contains("6789"));
        assert!(!parsed.lead.as_str().to_owned().contains("6789"));
    }

    #[test]
    fn non_object_bodies_are_root_errors() {
        for body in [json!([]), json!("lead"), json!(1), Value::Null] {
            let errors = parse(&body).expect_err("not an object").into_vec();
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, ROOT);
            assert_eq!(errors[0].code, "invalid_type");
        }
    }
}
