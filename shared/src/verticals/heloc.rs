//! HELOC / home-equity leads: seed `001_fe0d22b72b37bc1d.txt`, rule for rule.
//!
//! Field names and enums are the seed's. Choices where the seed is silent, written down here:
//! - `propertyUnits` defaults to 1 when absent; for `multiUnit` it is required and must be 2 to 4; otherwise,
//!   when given, it must be 1 to 4 (the schema's `1 | 2 | 3 | 4`).
//! - `unitNumber` is a JSON number per the seed; a whole number of at least 1 is accepted.
//! - `monthlyRentalIncome` must be greater than 0 for a non-vacant investment property (the seed's rule) and
//!   may not be negative anywhere.
//! - "Must not already exist in the system": the normalised email is returned in [`ParsedLead::unique`];
//!   validate enforces it race-free with a conditional write (ingest cannot, without a read on the hot path).

use serde::Serialize;
use serde_json::json;

use super::fields::{Email, FieldErrors, ObjectReader, Phone, StateCode, Zip, MAX_TEXT_LEN};
use super::ParsedLead;

pub(crate) mod fast;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BuildingType {
    SingleFamily,
    MultiUnit,
    Condo,
    Townhouse,
    Other,
}

const BUILDING_TYPES: [(&str, BuildingType); 5] = [
    ("singleFamily", BuildingType::SingleFamily),
    ("multiUnit", BuildingType::MultiUnit),
    ("condo", BuildingType::Condo),
    ("townhouse", BuildingType::Townhouse),
    ("other", BuildingType::Other),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LoanPurpose {
    DebtConsolidation,
    HomeImprovement,
    Investment,
    Education,
    Other,
}

const LOAN_PURPOSES: [(&str, LoanPurpose); 5] = [
    ("debtConsolidation", LoanPurpose::DebtConsolidation),
    ("homeImprovement", LoanPurpose::HomeImprovement),
    ("investment", LoanPurpose::Investment),
    ("education", LoanPurpose::Education),
    ("other", LoanPurpose::Other),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PropertyUsage {
    PrimaryResidence,
    SecondHome,
    Investment,
}

const PROPERTY_USAGES: [(&str, PropertyUsage); 3] = [
    ("primaryResidence", PropertyUsage::PrimaryResidence),
    ("secondHome", PropertyUsage::SecondHome),
    ("investment", PropertyUsage::Investment),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RentalOccupancy {
    LongTerm,
    ShortTerm,
    Vacant,
}

const RENTAL_OCCUPANCIES: [(&str, RentalOccupancy); 3] = [
    ("longTerm", RentalOccupancy::LongTerm),
    ("shortTerm", RentalOccupancy::ShortTerm),
    ("vacant", RentalOccupancy::Vacant),
];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactInfo {
    pub first_name: String,
    pub last_name: String,
    pub email: Email,
    pub phone: Phone,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub street: String,
    pub city: String,
    pub state: StateCode,
    pub zip: Zip,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub county: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_number: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatedInformation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_rental_income: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rental_occupancy: Option<RentalOccupancy>,
}

/// A HELOC lead that satisfies every rule of seed 001.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelocLead {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affiliate_id: Option<String>,
    pub building_type: BuildingType,
    pub property_units: u8,
    pub loan_purpose: LoanPurpose,
    pub property_usage: PropertyUsage,
    pub contact_info: ContactInfo,
    pub address: Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stated_information: Option<StatedInformation>,
    pub residential_address: Address,
    pub listed_for_sale_in6_months: bool,
    pub purchased_or_subject_to_mortgage_in6_months: bool,
    pub liabilities_in4_years: bool,
}

impl HelocLead {
    pub fn into_parsed(self) -> ParsedLead {
        let unique = vec![("email", self.contact_info.email.normalized())];
        ParsedLead::new(&self, unique)
    }
}

fn address_schema(description: &str, unit_description: &str) -> serde_json::Value {
    json!({
        "type": "object",
        "description": description,
        "additionalProperties": false,
        "required": ["street", "city", "state", "zip"],
        "properties": {
            "street": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN, "description": "Street address"},
            "city": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN, "description": "City"},
            "state": {"type": "string", "description": "State: 2-letter USPS code of a US state, DC or territory (case-insensitive; upper-cased)", "pattern": "^[A-Za-z]{2}$"},
            "zip": {"type": "string", "description": "ZIP code: 5 digits or ZIP+4 (12345-6789); normalised to 12345 or 12345-6789", "pattern": "^\\s*[0-9]{5}([- ]?[0-9]{4})?\\s*$"},
            "county": {"type": "string", "maxLength": MAX_TEXT_LEN, "description": "County name"},
            "unitNumber": {"type": "integer", "minimum": 1, "description": unit_description}
        }
    })
}

/// The JSON Schema of a HELOC lead (seed 001).
pub fn schema() -> serde_json::Value {
    let names = |pairs: &[(&str, _)]| {
        pairs
            .iter()
            .map(|(name, _)| json!(name))
            .collect::<Vec<_>>()
    };
    let building: Vec<_> = names(&BUILDING_TYPES.map(|(n, _)| (n, ())));
    let purposes: Vec<_> = names(&LOAN_PURPOSES.map(|(n, _)| (n, ())));
    let usages: Vec<_> = names(&PROPERTY_USAGES.map(|(n, _)| (n, ())));
    let occupancies: Vec<_> = names(&RENTAL_OCCUPANCIES.map(|(n, _)| (n, ())));
    json!({
        "type": "object",
        "title": "HelocLead",
        "description": "A HELOC / home-equity lead (seed 001). Conditional rules: buildingType condo requires address.unitNumber; multiUnit requires propertyUnits 2-4 (otherwise 1-4, default 1); propertyUsage investment requires statedInformation.rentalOccupancy, and unless it is vacant, statedInformation.monthlyRentalIncome > 0. The email must not already exist in the system (checked after the 202: a duplicate ends `rejected`).",
        "additionalProperties": false,
        "required": ["buildingType", "loanPurpose", "propertyUsage", "contactInfo", "address", "residentialAddress", "listedForSaleIn6Months", "purchasedOrSubjectToMortgageIn6Months", "liabilitiesIn4Years"],
        "properties": {
            "affiliateId": {"type": "string", "maxLength": MAX_TEXT_LEN, "description": "Identifier for the lead in the partner's system"},
            "buildingType": {"type": "string", "enum": building, "description": "Type of property"},
            "propertyUnits": {"type": "integer", "minimum": 1, "maximum": 4, "description": "Number of units (1-4), defaults to 1; 2-4 and required for multiUnit"},
            "loanPurpose": {"type": "string", "enum": purposes, "description": "Purpose of the loan"},
            "propertyUsage": {"type": "string", "enum": usages, "description": "How the property will be used"},
            "contactInfo": {
                "type": "object",
                "additionalProperties": false,
                "required": ["firstName", "lastName", "email", "phone"],
                "properties": {
                    "firstName": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN, "description": "Contact's first name"},
                    "lastName": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN, "description": "Contact's last name"},
                    "email": {"type": "string", "format": "email", "maxLength": MAX_TEXT_LEN, "description": "Valid email address; must not already exist in the system"},
                    "phone": {"type": "string", "maxLength": MAX_TEXT_LEN, "description": "US phone number (10 digits, optional +1; spaces, dots, dashes, parentheses allowed); normalised to E.164"}
                }
            },
            "address": address_schema("Property address", "Unit number (required for condos)"),
            "statedInformation": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "monthlyRentalIncome": {"type": "number", "minimum": 0, "description": "Monthly rental income (required and > 0 for non-vacant investment properties)"},
                    "rentalOccupancy": {"type": "string", "enum": occupancies, "description": "Occupancy type (required for investment properties)"}
                }
            },
            "residentialAddress": address_schema("Borrower's address", "Unit number"),
            "listedForSaleIn6Months": {"type": "boolean", "description": "Property listed for sale in last 6 months"},
            "purchasedOrSubjectToMortgageIn6Months": {"type": "boolean", "description": "Property purchased or mortgaged in last 6 months"},
            "liabilitiesIn4Years": {"type": "boolean", "description": "Any liabilities in last 4 years"}
        }
    })
}

/// A valid HELOC lead.
pub fn example() -> serde_json::Value {
    json!({
        "affiliateId": "aff-123",
        "buildingType": "singleFamily",
        "loanPurpose": "debtConsolidation",
        "propertyUsage": "primaryResidence",
        "contactInfo": {"firstName": "Jane", "lastName": "Doe", "email": "jane.doe@example.com", "phone": "(727) 555-0134"},
        "address": {"street": "1 Main St", "city": "Tampa", "state": "FL", "zip": "33601", "county": "Hillsborough"},
        "statedInformation": {"monthlyRentalIncome": 0, "rentalOccupancy": "longTerm"},
        "residentialAddress": {"street": "1 Main St", "city": "Tampa", "state": "FL", "zip": "33601", "unitNumber": 2},
        "listedForSaleIn6Months": false,
        "purchasedOrSubjectToMortgageIn6Months": false,
        "liabilitiesIn4Years": false
    })
}

fn read_address(r: &mut ObjectReader<'_>, errors: &mut FieldErrors) -> Option<Address> {
    let street = r.string("street", true, MAX_TEXT_LEN, errors);
    let city = r.string("city", true, MAX_TEXT_LEN, errors);
    let state = r.parsed("state", true, errors, StateCode::parse);
    let zip = r.parsed("zip", true, errors, Zip::parse);
    let county = r.string("county", false, MAX_TEXT_LEN, errors);
    let unit_number = r.integer("unitNumber", false, errors);
    if unit_number.is_some_and(|n| n < 1) {
        errors.push(&r.path("unitNumber"), "out_of_range", "must be at least 1");
    }
    Some(Address {
        street: street?,
        city: city?,
        state: state?,
        zip: zip?,
        county,
        unit_number: unit_number.filter(|n| *n >= 1),
    })
}

/// Check a HELOC lead against seed 001 and normalise it; every broken rule is reported.
pub fn parse(value: &serde_json::Value) -> Result<HelocLead, FieldErrors> {
    let mut errors = FieldErrors::default();
    let Some(mut root) = ObjectReader::new(value, "", &mut errors) else {
        return Err(errors);
    };

    let affiliate_id = root.string("affiliateId", false, MAX_TEXT_LEN, &mut errors);
    let building_type = root.one_of("buildingType", true, &BUILDING_TYPES, &mut errors);
    let property_units = root.integer("propertyUnits", false, &mut errors);
    let loan_purpose = root.one_of("loanPurpose", true, &LOAN_PURPOSES, &mut errors);
    let property_usage = root.one_of("propertyUsage", true, &PROPERTY_USAGES, &mut errors);
    let contact_info = root.object("contactInfo", true, &mut errors, |r, errors| {
        let first_name = r.string("firstName", true, MAX_TEXT_LEN, errors);
        let last_name = r.string("lastName", true, MAX_TEXT_LEN, errors);
        let email = r.parsed("email", true, errors, Email::parse);
        let phone = r.parsed("phone", true, errors, Phone::parse);
        Some(ContactInfo {
            first_name: first_name?,
            last_name: last_name?,
            email: email?,
            phone: phone?,
        })
    });
    let address = root.object("address", true, &mut errors, read_address);
    let stated_information = root.object("statedInformation", false, &mut errors, |r, errors| {
        let monthly_rental_income = r.number("monthlyRentalIncome", false, errors);
        if monthly_rental_income.is_some_and(|income| income < 0.0) {
            errors.push(
                &r.path("monthlyRentalIncome"),
                "out_of_range",
                "must not be negative",
            );
        }
        let rental_occupancy = r.one_of("rentalOccupancy", false, &RENTAL_OCCUPANCIES, errors);
        Some(StatedInformation {
            monthly_rental_income,
            rental_occupancy,
        })
    });
    let residential_address = root.object("residentialAddress", true, &mut errors, read_address);
    let listed = root.boolean("listedForSaleIn6Months", true, &mut errors);
    let purchased = root.boolean("purchasedOrSubjectToMortgageIn6Months", true, &mut errors);
    let liabilities = root.boolean("liabilitiesIn4Years", true, &mut errors);
    let address_present = root.get("address").is_some_and(|a| a.is_object());
    let unit_present = value
        .get("address")
        .and_then(|address| address.get("unitNumber"))
        .is_some_and(|unit| !unit.is_null());
    root.finish(&mut errors);

    // Rule 1: condo -> address.unitNumber.
    if building_type == Some(BuildingType::Condo) && address_present && !unit_present {
        errors.push(
            "address.unitNumber",
            "required",
            "is required when buildingType is condo",
        );
    }

    // Rule 2: multiUnit -> propertyUnits in 2..=4; otherwise 1..=4, default 1.
    let units = match (building_type, property_units) {
        (Some(BuildingType::MultiUnit), None) => {
            errors.push(
                "propertyUnits",
                "required",
                "is required when buildingType is multiUnit",
            );
            None
        }
        (Some(BuildingType::MultiUnit), Some(n)) if !(2..=4).contains(&n) => {
            errors.push(
                "propertyUnits",
                "out_of_range",
                "must be between 2 and 4 when buildingType is multiUnit",
            );
            None
        }
        (_, Some(n)) if !(1..=4).contains(&n) => {
            errors.push("propertyUnits", "out_of_range", "must be between 1 and 4");
            None
        }
        (_, Some(n)) => u8::try_from(n).ok(),
        (_, None) => Some(1),
    };

    // Rule 3: investment -> rentalOccupancy; unless vacant, monthlyRentalIncome > 0.
    if property_usage == Some(PropertyUsage::Investment) {
        let occupancy = stated_information.as_ref().and_then(|s| s.rental_occupancy);
        let occupancy_given = value
            .get("statedInformation")
            .and_then(|s| s.get("rentalOccupancy"))
            .is_some_and(|o| !o.is_null());
        if !occupancy_given {
            errors.push(
                "statedInformation.rentalOccupancy",
                "required",
                "is required when propertyUsage is investment",
            );
        }
        let income_given = value
            .get("statedInformation")
            .and_then(|s| s.get("monthlyRentalIncome"))
            .is_some_and(|i| !i.is_null());
        match occupancy {
            Some(RentalOccupancy::Vacant) | None => {}
            Some(_) => {
                let income = stated_information
                    .as_ref()
                    .and_then(|s| s.monthly_rental_income);
                if !income_given {
                    errors.push(
                        "statedInformation.monthlyRentalIncome",
                        "required",
                        "is required when propertyUsage is investment and rentalOccupancy is not vacant",
                    );
                } else if income.is_some_and(|income| income == 0.0) {
                    errors.push(
                        "statedInformation.monthlyRentalIncome",
                        "out_of_range",
                        "must be greater than 0 when propertyUsage is investment and rentalOccupancy is not vacant",
                    );
                }
            }
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    match (
        building_type,
        units,
        loan_purpose,
        property_usage,
        contact_info,
        address,
        residential_address,
        listed,
        purchased,
        liabilities,
    ) {
        (
            Some(building_type),
            Some(property_units),
            Some(loan_purpose),
            Some(property_usage),
            Some(contact_info),
            Some(address),
            Some(residential_address),
            Some(listed_for_sale_in6_months),
            Some(purchased_or_subject_to_mortgage_in6_months),
            Some(liabilities_in4_years),
        ) => Ok(HelocLead {
            affiliate_id,
            building_type,
            property_units,
            loan_purpose,
            property_usage,
            contact_info,
            address,
            stated_information,
            residential_address,
            listed_for_sale_in6_months,
            purchased_or_subject_to_mortgage_in6_months,
            liabilities_in4_years,
        }),
        // Unreachable in practice: every missing piece above recorded an error. Report it rather than panic.
        _ => Err(FieldErrors::unreadable()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::verticals::test_support::{codes, set};

    #[test]
    fn schema_is_in_step_with_the_parser() {
        crate::verticals::schema_check::assert_in_step(crate::verticals::Vertical::Heloc);
    }

    /// The seed's example shape, valid.
    pub fn valid() -> Value {
        json!({
            "affiliateId": "aff-123",
            "buildingType": "singleFamily",
            "loanPurpose": "debtConsolidation",
            "propertyUsage": "primaryResidence",
            "contactInfo": {
                "firstName": "Jane",
                "lastName": "Doe",
                "email": "Jane.Doe@Example.com",
                "phone": "(727) 555-0134"
            },
            "address": {"street": "1 Main St", "city": "Tampa", "state": "fl", "zip": "33601"},
            "residentialAddress": {"street": "1 Main St", "city": "Tampa", "state": "FL", "zip": "33601-1234"},
            "listedForSaleIn6Months": false,
            "purchasedOrSubjectToMortgageIn6Months": false,
            "liabilitiesIn4Years": false
        })
    }

    /// One row per rule of seed 001: (what, changes to the valid lead, expected errors).
    #[test]
    fn every_rule_of_seed_001() {
        type Row = (
            &'static str,
            Vec<(&'static str, Value)>,
            Vec<(&'static str, &'static str)>,
        );
        let rows: Vec<Row> = vec![
            ("valid lead", vec![], vec![]),
            (
                "affiliateId is optional",
                vec![("affiliateId", Value::Null)],
                vec![],
            ),
            (
                "affiliateId must be a string",
                vec![("affiliateId", json!(12))],
                vec![("affiliateId", "invalid_type")],
            ),
            // Required root fields.
            (
                "buildingType required",
                vec![("buildingType", Value::Null)],
                vec![("buildingType", "required")],
            ),
            (
                "loanPurpose required",
                vec![("loanPurpose", Value::Null)],
                vec![("loanPurpose", "required")],
            ),
            (
                "propertyUsage required",
                vec![("propertyUsage", Value::Null)],
                vec![("propertyUsage", "required")],
            ),
            (
                "contactInfo required",
                vec![("contactInfo", Value::Null)],
                vec![("contactInfo", "required")],
            ),
            (
                "address required",
                vec![("address", Value::Null)],
                vec![("address", "required")],
            ),
            (
                "residentialAddress required",
                vec![("residentialAddress", Value::Null)],
                vec![("residentialAddress", "required")],
            ),
            (
                "listedForSaleIn6Months required",
                vec![("listedForSaleIn6Months", Value::Null)],
                vec![("listedForSaleIn6Months", "required")],
            ),
            (
                "purchasedOrSubjectToMortgageIn6Months required",
                vec![("purchasedOrSubjectToMortgageIn6Months", Value::Null)],
                vec![("purchasedOrSubjectToMortgageIn6Months", "required")],
            ),
            (
                "liabilitiesIn4Years required",
                vec![("liabilitiesIn4Years", Value::Null)],
                vec![("liabilitiesIn4Years", "required")],
            ),
            (
                "booleans are booleans",
                vec![("liabilitiesIn4Years", json!("no"))],
                vec![("liabilitiesIn4Years", "invalid_type")],
            ),
            // Enums: every value accepted, others refused.
            (
                "buildingType singleFamily",
                vec![("buildingType", json!("singleFamily"))],
                vec![],
            ),
            (
                "buildingType multiUnit",
                vec![
                    ("buildingType", json!("multiUnit")),
                    ("propertyUnits", json!(2)),
                ],
                vec![],
            ),
            (
                "buildingType condo",
                vec![
                    ("buildingType", json!("condo")),
                    ("address.unitNumber", json!(4)),
                ],
                vec![],
            ),
            (
                "buildingType townhouse",
                vec![("buildingType", json!("townhouse"))],
                vec![],
            ),
            (
                "buildingType other",
                vec![("buildingType", json!("other"))],
                vec![],
            ),
            (
                "buildingType unknown",
                vec![("buildingType", json!("castle"))],
                vec![("buildingType", "invalid_value")],
            ),
            (
                "buildingType is case-sensitive",
                vec![("buildingType", json!("SingleFamily"))],
                vec![("buildingType", "invalid_value")],
            ),
            (
                "loanPurpose debtConsolidation",
                vec![("loanPurpose", json!("debtConsolidation"))],
                vec![],
            ),
            (
                "loanPurpose homeImprovement",
                vec![("loanPurpose", json!("homeImprovement"))],
                vec![],
            ),
            (
                "loanPurpose investment",
                vec![("loanPurpose", json!("investment"))],
                vec![],
            ),
            (
                "loanPurpose education",
                vec![("loanPurpose", json!("education"))],
                vec![],
            ),
            (
                "loanPurpose other",
                vec![("loanPurpose", json!("other"))],
                vec![],
            ),
            (
                "loanPurpose unknown",
                vec![("loanPurpose", json!("vacation"))],
                vec![("loanPurpose", "invalid_value")],
            ),
            (
                "propertyUsage primaryResidence",
                vec![("propertyUsage", json!("primaryResidence"))],
                vec![],
            ),
            (
                "propertyUsage secondHome",
                vec![("propertyUsage", json!("secondHome"))],
                vec![],
            ),
            (
                "propertyUsage investment (longTerm)",
                vec![
                    ("propertyUsage", json!("investment")),
                    (
                        "statedInformation",
                        json!({"rentalOccupancy": "longTerm", "monthlyRentalIncome": 1800}),
                    ),
                ],
                vec![],
            ),
            (
                "propertyUsage unknown",
                vec![("propertyUsage", json!("rental"))],
                vec![("propertyUsage", "invalid_value")],
            ),
            (
                "rentalOccupancy shortTerm",
                vec![
                    ("propertyUsage", json!("investment")),
                    (
                        "statedInformation",
                        json!({"rentalOccupancy": "shortTerm", "monthlyRentalIncome": 2500.5}),
                    ),
                ],
                vec![],
            ),
            (
                "rentalOccupancy vacant needs no income",
                vec![
                    ("propertyUsage", json!("investment")),
                    ("statedInformation", json!({"rentalOccupancy": "vacant"})),
                ],
                vec![],
            ),
            (
                "rentalOccupancy unknown",
                vec![("statedInformation", json!({"rentalOccupancy": "sometimes"}))],
                vec![("statedInformation.rentalOccupancy", "invalid_value")],
            ),
            // contactInfo.
            (
                "firstName required",
                vec![("contactInfo.firstName", Value::Null)],
                vec![("contactInfo.firstName", "required")],
            ),
            (
                "firstName not blank",
                vec![("contactInfo.firstName", json!("   "))],
                vec![("contactInfo.firstName", "required")],
            ),
            (
                "lastName required",
                vec![("contactInfo.lastName", Value::Null)],
                vec![("contactInfo.lastName", "required")],
            ),
            (
                "email required",
                vec![("contactInfo.email", Value::Null)],
                vec![("contactInfo.email", "required")],
            ),
            (
                "email format",
                vec![("contactInfo.email", json!("jane.doe@"))],
                vec![("contactInfo.email", "invalid_format")],
            ),
            (
                "phone required",
                vec![("contactInfo.phone", Value::Null)],
                vec![("contactInfo.phone", "required")],
            ),
            (
                "phone format",
                vec![("contactInfo.phone", json!("7271234567x"))],
                vec![("contactInfo.phone", "invalid_format")],
            ),
            // address (property).
            (
                "address.street required",
                vec![("address.street", Value::Null)],
                vec![("address.street", "required")],
            ),
            (
                "address.city required",
                vec![("address.city", Value::Null)],
                vec![("address.city", "required")],
            ),
            (
                "address.state required",
                vec![("address.state", Value::Null)],
                vec![("address.state", "required")],
            ),
            (
                "address.state 2-letter code",
                vec![("address.state", json!("C"))],
                vec![("address.state", "invalid_format")],
            ),
            (
                "address.zip required",
                vec![("address.zip", Value::Null)],
                vec![("address.zip", "required")],
            ),
            (
                "address.zip format",
                vec![("address.zip", json!("3360"))],
                vec![("address.zip", "invalid_format")],
            ),
            (
                "address.county optional",
                vec![("address.county", json!("Hillsborough"))],
                vec![],
            ),
            (
                "address.unitNumber is a number",
                vec![("address.unitNumber", json!("4B"))],
                vec![("address.unitNumber", "invalid_type")],
            ),
            // residentialAddress (borrower).
            (
                "residentialAddress.street required",
                vec![("residentialAddress.street", Value::Null)],
                vec![("residentialAddress.street", "required")],
            ),
            (
                "residentialAddress.city required",
                vec![("residentialAddress.city", Value::Null)],
                vec![("residentialAddress.city", "required")],
            ),
            (
                "residentialAddress.state required",
                vec![("residentialAddress.state", Value::Null)],
                vec![("residentialAddress.state", "required")],
            ),
            (
                "residentialAddress.state 2-letter code",
                vec![("residentialAddress.state", json!("CA3"))],
                vec![("residentialAddress.state", "invalid_format")],
            ),
            (
                "residentialAddress.zip required",
                vec![("residentialAddress.zip", Value::Null)],
                vec![("residentialAddress.zip", "required")],
            ),
            (
                "residentialAddress.unitNumber optional",
                vec![("residentialAddress.unitNumber", json!(12))],
                vec![],
            ),
            // Conditional rule 1: condo.
            (
                "condo requires address.unitNumber",
                vec![("buildingType", json!("condo"))],
                vec![("address.unitNumber", "required")],
            ),
            (
                "condo unit in residentialAddress does not count",
                vec![
                    ("buildingType", json!("condo")),
                    ("residentialAddress.unitNumber", json!(3)),
                ],
                vec![("address.unitNumber", "required")],
            ),
            // Conditional rule 2: multiUnit.
            (
                "multiUnit requires propertyUnits",
                vec![("buildingType", json!("multiUnit"))],
                vec![("propertyUnits", "required")],
            ),
            (
                "multiUnit propertyUnits 1 too few",
                vec![
                    ("buildingType", json!("multiUnit")),
                    ("propertyUnits", json!(1)),
                ],
                vec![("propertyUnits", "out_of_range")],
            ),
            (
                "multiUnit propertyUnits 4 ok",
                vec![
                    ("buildingType", json!("multiUnit")),
                    ("propertyUnits", json!(4)),
                ],
                vec![],
            ),
            (
                "multiUnit propertyUnits 5 too many",
                vec![
                    ("buildingType", json!("multiUnit")),
                    ("propertyUnits", json!(5)),
                ],
                vec![("propertyUnits", "out_of_range")],
            ),
            (
                "propertyUnits outside 1-4",
                vec![("propertyUnits", json!(0))],
                vec![("propertyUnits", "out_of_range")],
            ),
            (
                "propertyUnits whole number",
                vec![("propertyUnits", json!(2.5))],
                vec![("propertyUnits", "invalid_type")],
            ),
            // Conditional rule 3: investment.
            (
                "investment requires rentalOccupancy",
                vec![("propertyUsage", json!("investment"))],
                vec![("statedInformation.rentalOccupancy", "required")],
            ),
            (
                "investment requires rentalOccupancy inside statedInformation",
                vec![
                    ("propertyUsage", json!("investment")),
                    ("statedInformation", json!({"monthlyRentalIncome": 100})),
                ],
                vec![("statedInformation.rentalOccupancy", "required")],
            ),
            (
                "non-vacant investment requires income",
                vec![
                    ("propertyUsage", json!("investment")),
                    ("statedInformation", json!({"rentalOccupancy": "longTerm"})),
                ],
                vec![("statedInformation.monthlyRentalIncome", "required")],
            ),
            (
                "non-vacant investment income > 0",
                vec![
                    ("propertyUsage", json!("investment")),
                    (
                        "statedInformation",
                        json!({"rentalOccupancy": "shortTerm", "monthlyRentalIncome": 0}),
                    ),
                ],
                vec![("statedInformation.monthlyRentalIncome", "out_of_range")],
            ),
            (
                "income never negative",
                vec![("statedInformation", json!({"monthlyRentalIncome": -5}))],
                vec![("statedInformation.monthlyRentalIncome", "out_of_range")],
            ),
            (
                "income is a number",
                vec![
                    ("propertyUsage", json!("investment")),
                    (
                        "statedInformation",
                        json!({"rentalOccupancy": "longTerm", "monthlyRentalIncome": "1800"}),
                    ),
                ],
                vec![("statedInformation.monthlyRentalIncome", "invalid_type")],
            ),
            // Unknown fields, everywhere.
            (
                "unknown root field",
                vec![("loanAmount", json!(50000))],
                vec![("loanAmount", "unknown_field")],
            ),
            (
                "unknown nested field",
                vec![("contactInfo.middleName", json!("Q"))],
                vec![("contactInfo.middleName", "unknown_field")],
            ),
            (
                "typo is not silently dropped",
                vec![("adress", json!({}))],
                vec![("adress", "unknown_field")],
            ),
            // Types.
            (
                "contactInfo must be an object",
                vec![("contactInfo", json!("Jane"))],
                vec![("contactInfo", "invalid_type")],
            ),
        ];
        for (what, changes, expected) in rows {
            let mut lead = valid();
            for (path, value) in changes {
                set(&mut lead, path, value);
            }
            let got = codes(parse(&lead));
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
            "buildingType": "condo",
            "propertyUsage": "investment",
            "contactInfo": {"firstName": "J", "lastName": "D", "email": "nope", "phone": "12"},
            "address": {"street": "1 Main", "city": "X", "state": "ZZ", "zip": "1"},
            "residentialAddress": {"street": "1 Main", "city": "X", "state": "CA", "zip": "90001"},
            "listedForSaleIn6Months": false,
            "purchasedOrSubjectToMortgageIn6Months": false,
            "liabilitiesIn4Years": false
        });
        let fields: Vec<String> = match parse(&lead) {
            Ok(_) => panic!("must be rejected"),
            Err(errors) => errors.0.into_iter().map(|e| e.field).collect(),
        };
        for field in [
            "loanPurpose",
            "contactInfo.email",
            "contactInfo.phone",
            "address.state",
            "address.zip",
            "address.unitNumber",
            "statedInformation.rentalOccupancy",
        ] {
            assert!(
                fields.contains(&field.to_owned()),
                "{field} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn normalises_and_defaults() {
        let parsed = parse(&valid()).expect("valid").into_parsed();
        assert_eq!(parsed.lead.value()["propertyUnits"], json!(1));
        assert_eq!(parsed.lead.value()["address"]["state"], json!("FL"));
        assert_eq!(
            parsed.lead.value()["residentialAddress"]["zip"],
            json!("33601-1234")
        );
        assert_eq!(
            parsed.lead.value()["contactInfo"]["phone"],
            json!("+17275550134")
        );
        assert_eq!(
            parsed.lead.value()["contactInfo"]["email"],
            json!("Jane.Doe@Example.com")
        );
        assert_eq!(
            parsed.unique,
            vec![("email", "jane.doe@example.com".to_owned())]
        );
    }

    #[test]
    fn messages_never_echo_submitted_values() {
        let mut lead = valid();
        set(
            &mut lead,
            "contactInfo.email",
            json!("secret-person@@example.com"),
        );
        set(&mut lead, "contactInfo.phone", json!("555-SECRET"));
        set(&mut lead, "address.zip", json!("SECRETZIP"));
        let errors = parse(&lead).expect_err("invalid");
        let text = format!("{errors:?}");
        for secret in ["secret-person", "SECRET"] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn non_object_bodies_are_field_errors() {
        for body in [json!([]), json!("lead"), json!(1), Value::Null] {
            let errors = parse(&body).expect_err("not an object");
            assert_eq!(errors.0[0].code, "invalid_type");
        }
    }
}
