//! Real-estate leads: the part of Lofty's `LeadRequest` (seed `004_1f54f89eb6518f00.txt`, section 6.44, with
//! 6.38 `LeadInquiryReq`, 6.42 `LeadPropertyReq` and 6.49 `Location`) that a lead seller supplies, in the
//! seed's own camelCase field names, so that the outbound `lofty` connector can post it as it stands.
//!
//! What a seller may send, and what not:
//! - Accepted: `firstName`, `lastName`, `emails`, `phones`, `leadType`, `leadTypes`, `source`, `tags`,
//!   `content`, `streetAddress`, `city`, `state`, `zipCode`, `birthday`, `buyingTimeFrame`,
//!   `sellingTimeFrame`, `cannotCall`, `cannotEmail`, `cannotText`, the free-text qualification fields
//!   ([`QUALIFICATION_FIELDS`]: `buyHouse`, `fthb`, `houseToSell`, `language`, `mortgage`, `preQual`,
//!   `referredBy`, `withBuyerAgent`, `withListingAgent`; strings the seed does not constrain further),
//!   `inquiry` and `property`.
//! - Refused as `unknown_field`: the routing and assignment fields ([`ROUTING_FIELDS`]: `assignGroupId`,
//!   `assignedUserId`, `leadRouting`, `groups`, `segments`, `leadAlert`, `welcomeEmail`, `isPin`,
//!   `isPrivate`, `stage`, `customAttributeList`, `leadTransaction`, `leadFamilyMemberList`, `tagsAdd`,
//!   `unsubscription`). Who gets a lead, and how the buyer's CRM files it, is the hub's and the buyer's
//!   business, not the seller's; these get a message saying so.
//! - Refused as `unknown_field`: the read-only fields of the inquiry ([`INQUIRY_READ_ONLY`]) and of the
//!   property ([`PROPERTY_READ_ONLY`]), which Lofty sets itself.
//!
//! Rules from the seed: `leadType` and `leadTypes` take only the seed's ids; a phone is at most 20 characters;
//! `birthday` follows the seed's pattern `MMM d, yyyy`; nothing is required by Lofty itself.
//!
//! Choices where the seed is silent, written down here:
//! - At least one email or phone must be given (a lead nobody can contact is worth nothing); when both arrays
//!   are absent or empty the error is on `emails` (`required`).
//! - Emails are kept as given (trimmed, valid); phones must be US numbers and are sent as E.164. The 20
//!   character limit applies to the phone as given (trimmed), before normalisation. At most 10 of each.
//!   Duplicates are kept.
//! - `leadTypes`: at most 8 items (there are 8 ids) and no id twice. `leadType` and `leadTypes` are not
//!   cross-checked (their id sets differ in the seed: 3 exists only in one, 6 to 9 only in the other).
//! - `tags`: at most 50, each at most 100 characters; `content` at most 2000 characters; every other free
//!   text at most 255 ([`MAX_TEXT_LEN`]). `inquiry.propertyType`: at most 20 items of at most 255 characters.
//!   `inquiry.locations`: at most 20. An empty location object is accepted (all its fields are optional).
//! - `birthday`: the English month abbreviation in any case, the day with or without a leading zero; the
//!   date must exist, be in 1900 or later and not after today (UTC). Normalised to `Jan 5, 1980`. Every
//!   failure is `invalid_format`, with a message naming the pattern and never the value.
//! - Counts and prices are whole numbers of at least 0; the seed's `int32` fields (`bedroomsMin`,
//!   `bedroomsMax`, `bedrooms`, `floors`) are also at most 2147483647. `priceMin <= priceMax`,
//!   `bedroomsMin <= bedroomsMax` and `bathroomsMin <= bathroomsMax` wherever both are given (in the inquiry
//!   and, for prices, in the property too), else `out_of_range` on the `...Max` field.
//! - `inquiry.bathroomsMin`/`bathroomsMax` are strings in the seed: a string holding a non-negative decimal
//!   (`2`, `2.5`), at most 10 characters; a JSON number is `invalid_type`, a negative one `out_of_range`.
//! - Empty strings and empty arrays are treated as absent and left out of the normalised lead; an empty
//!   `inquiry` or `property` object is kept as `{}`. There is no unique field.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, NaiveDate, Utc};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use super::fields::{
    object_item, string_item, type_name, Email, FieldErrors, ObjectReader, Phone, StateCode, Zip,
    MAX_TEXT_LEN,
};
use super::ParsedLead;

pub const MAX_EMAILS: usize = 10;
pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_PHONES: usize = 10;
/// The seed's rule: "No more than 20 characters per phone".
pub const MAX_PHONE_LEN: usize = 20;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 100;
pub const MAX_CONTENT_LEN: usize = 2000;
pub const MAX_LOCATIONS: usize = 20;
pub const MAX_PROPERTY_TYPES: usize = 20;
pub const MAX_BATHROOMS_LEN: usize = 10;
/// The largest value of the seed's `integer(int32)` fields.
const INT32_MAX: i64 = i32::MAX as i64;

/// The seed's birthday pattern (Java `SimpleDateFormat`).
pub const BIRTHDAY_PATTERN: &str = "MMM d, yyyy";

/// Routing and assignment fields of `LeadRequest`: the hub's and the buyer's business, refused from sellers.
pub const ROUTING_FIELDS: [&str; 15] = [
    "assignGroupId",
    "assignedUserId",
    "leadRouting",
    "groups",
    "segments",
    "leadAlert",
    "welcomeEmail",
    "isPin",
    "isPrivate",
    "stage",
    "customAttributeList",
    "leadTransaction",
    "leadFamilyMemberList",
    "tagsAdd",
    "unsubscription",
];

/// Fields of `LeadInquiryReq` that Lofty sets itself.
pub const INQUIRY_READ_ONLY: [&str; 5] = [
    "id",
    "leadUserId",
    "createTime",
    "updateTime",
    "modifyByAgent",
];

/// Fields of `LeadPropertyReq` that Lofty sets itself or that describe its own listings.
pub const PROPERTY_READ_ONLY: [&str; 11] = [
    "id",
    "leadUserId",
    "autoListingId",
    "listingId",
    "label",
    "labelList",
    "labelType",
    "note",
    "pictureUrl",
    "siteListingUrl",
    "listingStatus",
];

/// `LeadRequest`'s free-text qualification fields with the seed's descriptions (6.44; plain strings):
/// accepted as given (trimmed, at most 255 characters) and passed on to Lofty.
pub const QUALIFICATION_FIELDS: [(&str, &str); 9] = [
    ("buyHouse", "Buy a house"),
    ("fthb", "First time home buyer"),
    ("houseToSell", "House to sell"),
    ("language", "The lead's abbreviated language"),
    ("mortgage", "Mortgage"),
    ("preQual", "Pre-qual"),
    ("referredBy", "The referee of the lead"),
    ("withBuyerAgent", "With buyer agent"),
    ("withListingAgent", "With listing agent"),
];

const ROUTING_MESSAGE: &str =
    "is not accepted from lead sellers: routing and assignment are decided by the hub and the buyer";
const READ_ONLY_MESSAGE: &str = "is not accepted from lead sellers: Lofty sets it itself";

/// A Lofty lead type, sent as its numeric id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadTypeId {
    Other,
    Seller,
    Buyer,
    BuyerAndSeller,
    Renter,
    Investor,
    Agent,
    Homeowner,
    Landlord,
}

impl LeadTypeId {
    /// The seed's id.
    pub fn id(self) -> i32 {
        match self {
            LeadTypeId::Other => -1,
            LeadTypeId::Seller => 1,
            LeadTypeId::Buyer => 2,
            LeadTypeId::BuyerAndSeller => 3,
            LeadTypeId::Renter => 5,
            LeadTypeId::Investor => 6,
            LeadTypeId::Agent => 7,
            LeadTypeId::Homeowner => 8,
            LeadTypeId::Landlord => 9,
        }
    }

    /// The seed's name.
    pub fn name(self) -> &'static str {
        match self {
            LeadTypeId::Other => "Other",
            LeadTypeId::Seller => "Seller",
            LeadTypeId::Buyer => "Buyer",
            LeadTypeId::BuyerAndSeller => "Buyer & Seller",
            LeadTypeId::Renter => "Renter",
            LeadTypeId::Investor => "Investor",
            LeadTypeId::Agent => "Agent",
            LeadTypeId::Homeowner => "Homeowner",
            LeadTypeId::Landlord => "Landlord",
        }
    }
}

impl Serialize for LeadTypeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.id())
    }
}

/// The ids `leadType` takes (seed: Other (-1), Seller (1), Buyer (2), Buyer & Seller (3), Renter (5)).
pub const LEAD_TYPE: [LeadTypeId; 5] = [
    LeadTypeId::Other,
    LeadTypeId::Seller,
    LeadTypeId::Buyer,
    LeadTypeId::BuyerAndSeller,
    LeadTypeId::Renter,
];

/// The ids `leadTypes` items take (seed: Other (-1), Seller (1), Buyer (2), Renter (5), Investor (6),
/// Agent (7), Homeowner (8), Landlord (9)).
pub const LEAD_TYPES: [LeadTypeId; 8] = [
    LeadTypeId::Other,
    LeadTypeId::Seller,
    LeadTypeId::Buyer,
    LeadTypeId::Renter,
    LeadTypeId::Investor,
    LeadTypeId::Agent,
    LeadTypeId::Homeowner,
    LeadTypeId::Landlord,
];

fn lead_type_of(id: i64, allowed: &[LeadTypeId]) -> Option<LeadTypeId> {
    allowed.iter().copied().find(|t| i64::from(t.id()) == id)
}

fn lead_type_rule(allowed: &[LeadTypeId]) -> String {
    let ids: Vec<String> = allowed
        .iter()
        .map(|t| format!("{} ({})", t.id(), t.name()))
        .collect();
    format!("must be one of the lead type ids {}", ids.join(", "))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A birthday in the seed's pattern `MMM d, yyyy`: a real date, 1900 or later, not in the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Birthday(NaiveDate);

impl Birthday {
    pub const SHAPE_RULE: &'static str = "must be a date in the pattern MMM d, yyyy: an English 3-letter month, the day and a 4-digit year, e.g. Jan 5, 1980";
    pub const DATE_RULE: &'static str =
        "must be a real calendar date in the pattern MMM d, yyyy, e.g. Jan 5, 1980";
    pub const FUTURE_RULE: &'static str =
        "must not be in the future (pattern MMM d, yyyy, e.g. Jan 5, 1980)";
    pub const EARLY_RULE: &'static str =
        "must be in 1900 or later (pattern MMM d, yyyy, e.g. Jan 5, 1980)";

    /// Parse `raw` (trimmed) against the pattern, with `today` as the latest date allowed.
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, &'static str> {
        let s = raw.trim();
        let (month, rest) = s.split_once(' ').ok_or(Self::SHAPE_RULE)?;
        let (day, year) = rest.split_once(", ").ok_or(Self::SHAPE_RULE)?;
        let month = MONTHS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(month))
            .ok_or(Self::SHAPE_RULE)?;
        let digits = |text: &str, lengths: std::ops::RangeInclusive<usize>| {
            lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(day, 1..=2) || !digits(year, 4..=4) {
            return Err(Self::SHAPE_RULE);
        }
        let day: u32 = day.parse().map_err(|_| Self::SHAPE_RULE)?;
        let year: i32 = year.parse().map_err(|_| Self::SHAPE_RULE)?;
        let month = u32::try_from(month + 1).map_err(|_| Self::SHAPE_RULE)?;
        let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(Self::DATE_RULE)?;
        if year < 1900 {
            return Err(Self::EARLY_RULE);
        }
        if date > today {
            return Err(Self::FUTURE_RULE);
        }
        Ok(Birthday(date))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

impl fmt::Display for Birthday {
    /// `MMM d, yyyy`: `Jan 5, 1980`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let month = MONTHS.get(self.0.month0() as usize).copied().unwrap_or("");
        write!(f, "{month} {}, {:04}", self.0.day(), self.0.year())
    }
}

impl Serialize for Birthday {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One location of interest (seed 6.49 `Location`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub county: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_code: Option<StateCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<Zip>,
}

/// What the lead is looking for (seed 6.38 `LeadInquiryReq`, without its read-only fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inquiry {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bedrooms_min: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bedrooms_max: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bathrooms_min: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bathrooms_max: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub property_type: Vec<String>,
}

/// The lead's own property (seed 6.42 `LeadPropertyReq`, without its read-only and listing fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub county: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<Zip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bedrooms: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bathrooms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub square_feet: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lot_size: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floors: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parking_space: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_address: Option<bool>,
}

/// A real-estate lead: the seller-supplied subset of Lofty's `LeadRequest`, checked and normalised.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RealEstateLead {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Email>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Phone>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_type: Option<LeadTypeId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lead_types: Vec<LeadTypeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<Zip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday: Option<Birthday>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buying_time_frame: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selling_time_frame: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cannot_call: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cannot_email: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cannot_text: Option<bool>,
    /// The [`QUALIFICATION_FIELDS`] given, by their seed names.
    #[serde(flatten)]
    pub qualification: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inquiry: Option<Inquiry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property: Option<Property>,
}

impl RealEstateLead {
    /// The lead for the registry; this vertical has no unique field.
    pub fn into_parsed(self) -> ParsedLead {
        ParsedLead::new(&self, Vec::new())
    }
}

const STATE_PATTERN: &str = "^\\s*[A-Za-z]{2}\\s*$";
const ZIP_PATTERN: &str = "^\\s*[0-9]{5}([- ]?[0-9]{4})?\\s*$";
const BIRTHDAY_REGEX: &str = "^\\s*[A-Za-z]{3} [0-9]{1,2}, [0-9]{4}\\s*$";
const BATHROOMS_PATTERN: &str = "^\\s*[0-9]+(\\.[0-9]+)?\\s*$";

fn text_schema(max: usize, description: &str) -> Value {
    json!({"type": "string", "maxLength": max, "description": description})
}

fn state_schema(description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": STATE_PATTERN,
        "description": format!("{description}: 2-letter USPS code of a US state, DC or territory (case-insensitive; upper-cased)")
    })
}

fn zip_schema(description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": ZIP_PATTERN,
        "description": format!("{description}: 5 digits or ZIP+4 (12345-6789); normalised to 12345 or 12345-6789")
    })
}

fn whole_schema(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "description": description})
}

fn int32_schema(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": INT32_MAX, "description": description})
}

fn bathrooms_schema(description: &str) -> Value {
    json!({
        "type": "string",
        "maxLength": MAX_BATHROOMS_LEN,
        "pattern": BATHROOMS_PATTERN,
        "description": format!("{description}, as a string holding a non-negative number (\"2\", \"2.5\"), as Lofty types it")
    })
}

fn ids(types: &[LeadTypeId]) -> Vec<Value> {
    types.iter().map(|t| json!(t.id())).collect()
}

fn ids_description(types: &[LeadTypeId]) -> String {
    let ids: Vec<String> = types
        .iter()
        .map(|t| format!("{} ({})", t.name(), t.id()))
        .collect();
    ids.join(", ")
}

fn location_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": [],
        "properties": {
            "city": text_schema(MAX_TEXT_LEN, "The city"),
            "county": text_schema(MAX_TEXT_LEN, "The county"),
            "description": text_schema(MAX_TEXT_LEN, "Description of the location"),
            "stateCode": state_schema("The state code"),
            "streetAddress": text_schema(MAX_TEXT_LEN, "The street address"),
            "zipCode": zip_schema("The ZIP code")
        }
    })
}

fn inquiry_schema() -> Value {
    json!({
        "type": "object",
        "description": "What the lead is looking for (Lofty LeadInquiryReq, without its read-only fields)",
        "additionalProperties": false,
        "required": [],
        "properties": {
            "locations": {
                "type": "array",
                "maxItems": MAX_LOCATIONS,
                "description": "Locations of interest",
                "items": location_schema()
            },
            "priceMin": whole_schema("Price range lower end (at most priceMax)"),
            "priceMax": whole_schema("Price range higher end"),
            "bedroomsMin": int32_schema("Bedrooms, at least (at most bedroomsMax)"),
            "bedroomsMax": int32_schema("Bedrooms, at most"),
            "bathroomsMin": bathrooms_schema("Bathrooms, at least (at most bathroomsMax)"),
            "bathroomsMax": bathrooms_schema("Bathrooms, at most"),
            "propertyType": {
                "type": "array",
                "maxItems": MAX_PROPERTY_TYPES,
                "description": "Property types of interest",
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN}
            }
        }
    })
}

fn property_schema() -> Value {
    json!({
        "type": "object",
        "description": "The lead's own property (Lofty LeadPropertyReq, without its read-only and listing fields)",
        "additionalProperties": false,
        "required": [],
        "properties": {
            "streetAddress": text_schema(MAX_TEXT_LEN, "The street address"),
            "city": text_schema(MAX_TEXT_LEN, "The city"),
            "county": text_schema(MAX_TEXT_LEN, "The county"),
            "state": state_schema("The state"),
            "zipCode": zip_schema("The ZIP code"),
            "price": whole_schema("The price"),
            "priceMin": whole_schema("The minimum price (at most priceMax)"),
            "priceMax": whole_schema("The maximum price"),
            "bedrooms": int32_schema("Bedrooms"),
            "bathrooms": {"type": "number", "minimum": 0, "description": "Bathrooms"},
            "squareFeet": whole_schema("Square feet"),
            "lotSize": {"type": "number", "minimum": 0, "description": "Lot size (acreage)"},
            "floors": int32_schema("Floors"),
            "parkingSpace": whole_schema("The parking space"),
            "propertyType": text_schema(MAX_TEXT_LEN, "Property type"),
            "mailAddress": {"type": "boolean", "description": "Whether this is the mailing address"}
        }
    })
}

/// The JSON Schema (2020-12) of a real-estate lead (seed 004, `LeadRequest`).
pub fn schema() -> Value {
    let mut schema = json!({
        "type": "object",
        "title": "RealEstateLead",
        "description": "A real-estate lead: the part of Lofty's LeadRequest (seed 004) a lead seller supplies, in Lofty's field names. At least one email or phone must be given: `emails` and `phones` may not both be absent or empty. Routing and assignment fields (assignGroupId, assignedUserId, leadRouting, groups, segments, leadAlert, welcomeEmail, isPin, isPrivate, stage, customAttributeList, leadTransaction, leadFamilyMemberList, tagsAdd, unsubscription) are set by the hub and the buyer, and refused as unknown fields. Minimum values must not exceed their maximum (priceMin/priceMax, bedroomsMin/bedroomsMax, bathroomsMin/bathroomsMax).",
        "additionalProperties": false,
        "required": [],
        "properties": {
            "firstName": text_schema(MAX_TEXT_LEN, "The first/given name of the lead"),
            "lastName": text_schema(MAX_TEXT_LEN, "The last/family name of the lead"),
            "emails": {
                "type": "array",
                "maxItems": MAX_EMAILS,
                "description": "Email addresses of the lead. At least one email or phone is required (emails and phones may not both be absent or empty).",
                "items": {"type": "string", "format": "email", "minLength": 1, "maxLength": MAX_EMAIL_LEN, "description": "A valid email address"}
            },
            "phones": {
                "type": "array",
                "maxItems": MAX_PHONES,
                "description": "Phone numbers of the lead. At least one email or phone is required (emails and phones may not both be absent or empty).",
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_PHONE_LEN, "description": "US phone number, at most 20 characters as given (10 digits, optional +1; spaces, dots, dashes, parentheses allowed); normalised to E.164"}
            },
            "leadType": {
                "type": "integer",
                "enum": ids(&LEAD_TYPE),
                "description": format!("Type of lead, by id: {}", ids_description(&LEAD_TYPE))
            },
            "leadTypes": {
                "type": "array",
                "maxItems": LEAD_TYPES.len(),
                "uniqueItems": true,
                "description": format!("Types of lead, by id, each at most once: {}", ids_description(&LEAD_TYPES)),
                "items": {"type": "integer", "enum": ids(&LEAD_TYPES)}
            },
            "source": text_schema(MAX_TEXT_LEN, "The source of the lead"),
            "tags": {
                "type": "array",
                "maxItems": MAX_TAGS,
                "description": "Tags for the lead",
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_LEN}
            },
            "content": text_schema(MAX_CONTENT_LEN, "A note about the lead"),
            "streetAddress": text_schema(MAX_TEXT_LEN, "The lead's street address"),
            "city": text_schema(MAX_TEXT_LEN, "The lead's city"),
            "state": state_schema("The lead's state"),
            "zipCode": zip_schema("The lead's ZIP code"),
            "birthday": {
                "type": "string",
                "pattern": BIRTHDAY_REGEX,
                "description": "The lead's birthday in Lofty's pattern MMM d, yyyy (e.g. Jan 5, 1980, Dec 25, 1975): English 3-letter month abbreviation (any case), day of 1 or 2 digits, 4-digit year; a real calendar date, 1900 or later, not in the future. Normalised to e.g. Jan 5, 1980."
            },
            "buyingTimeFrame": text_schema(MAX_TEXT_LEN, "Buying time frame"),
            "sellingTimeFrame": text_schema(MAX_TEXT_LEN, "Selling time frame"),
            "cannotCall": {"type": "boolean", "description": "true: the lead must not be called (consent)"},
            "cannotEmail": {"type": "boolean", "description": "true: the lead must not be emailed (consent)"},
            "cannotText": {"type": "boolean", "description": "true: the lead must not be sent text messages (consent)"},
            "inquiry": inquiry_schema(),
            "property": property_schema()
        }
    });
    if let Some(properties) = schema["properties"].as_object_mut() {
        for (name, description) in QUALIFICATION_FIELDS {
            properties.insert(name.to_owned(), text_schema(MAX_TEXT_LEN, description));
        }
    }
    schema
}

/// A valid real-estate lead with every field present.
pub fn example() -> Value {
    let mut example = json!({
        "firstName": "Jane",
        "lastName": "Doe",
        "emails": ["jane.doe@example.com", "jdoe@example.org"],
        "phones": ["(727) 555-0134", "+1 813 555 0199"],
        "leadType": 2,
        "leadTypes": [2, 6],
        "source": "Example Leads Co.",
        "tags": ["first-time buyer", "pre-approved"],
        "content": "Looking for a 3-bedroom house near good schools; prefers calls after 5pm.",
        "streetAddress": "1 Main St",
        "city": "Tampa",
        "state": "FL",
        "zipCode": "33601",
        "birthday": "Jan 5, 1980",
        "buyingTimeFrame": "1-3 months",
        "sellingTimeFrame": "3-6 months",
        "cannotCall": false,
        "cannotEmail": false,
        "cannotText": true,
        "inquiry": {
            "locations": [{
                "city": "Tampa",
                "county": "Hillsborough",
                "description": "Downtown Tampa, near the river",
                "stateCode": "FL",
                "streetAddress": "100 N Ashley Dr",
                "zipCode": "33602"
            }],
            "priceMin": 250000,
            "priceMax": 400000,
            "bedroomsMin": 3,
            "bedroomsMax": 4,
            "bathroomsMin": "2",
            "bathroomsMax": "2.5",
            "propertyType": ["Single Family", "Townhouse"]
        },
        "property": {
            "streetAddress": "9 Oak Ave",
            "city": "Tampa",
            "county": "Hillsborough",
            "state": "FL",
            "zipCode": "33603-1234",
            "price": 320000,
            "priceMin": 300000,
            "priceMax": 340000,
            "bedrooms": 3,
            "bathrooms": 2.5,
            "squareFeet": 1850,
            "lotSize": 0.25,
            "floors": 2,
            "parkingSpace": 2,
            "propertyType": "Single Family",
            "mailAddress": false
        }
    });
    let qualification = [
        "Yes",
        "Yes",
        "No",
        "en",
        "Pre-approved",
        "Yes",
        "Open house",
        "No",
        "No",
    ];
    for ((name, _), value) in QUALIFICATION_FIELDS.iter().zip(qualification) {
        example[*name] = json!(value);
    }
    example
}

/// A whole number from 0 to `max`.
fn count(
    r: &mut ObjectReader<'_>,
    name: &'static str,
    max: i64,
    errors: &mut FieldErrors,
) -> Option<i64> {
    let n = r.integer(name, false, errors)?;
    if n < 0 {
        errors.push(&r.path(name), "out_of_range", "must not be negative");
        None
    } else if n > max {
        errors.push(
            &r.path(name),
            "out_of_range",
            format!("must be at most {max}"),
        );
        None
    } else {
        Some(n)
    }
}

/// A whole number from 0 to 2147483647 (the seed's `int32`).
fn count32(r: &mut ObjectReader<'_>, name: &'static str, errors: &mut FieldErrors) -> Option<i32> {
    count(r, name, INT32_MAX, errors).and_then(|n| i32::try_from(n).ok())
}

/// A finite number of at least 0.
fn measure(r: &mut ObjectReader<'_>, name: &'static str, errors: &mut FieldErrors) -> Option<f64> {
    let n = r.number(name, false, errors)?;
    if n < 0.0 {
        errors.push(&r.path(name), "out_of_range", "must not be negative");
        None
    } else {
        // -0.0 becomes 0.
        Some(n + 0.0)
    }
}

fn is_decimal(s: &str) -> bool {
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('.') {
        Some((whole, fraction)) => all_digits(whole) && all_digits(fraction),
        None => all_digits(s),
    }
}

/// A string holding a non-negative decimal (`2`, `2.5`): the trimmed string and its value.
fn bathrooms(
    r: &mut ObjectReader<'_>,
    name: &'static str,
    errors: &mut FieldErrors,
) -> Option<(String, f64)> {
    let raw = r.string(name, false, MAX_BATHROOMS_LEN, errors)?;
    if raw.strip_prefix('-').is_some_and(is_decimal) {
        errors.push(&r.path(name), "out_of_range", "must not be negative");
        return None;
    }
    match raw.parse::<f64>() {
        Ok(value) if is_decimal(&raw) && value.is_finite() => Some((raw, value)),
        _ => {
            errors.push(
                &r.path(name),
                "invalid_format",
                "must be a string holding a non-negative number, such as \"2\" or \"2.5\"",
            );
            None
        }
    }
}

/// `min <= max` when both are given, else `out_of_range` on `max_name`.
fn in_order<T: PartialOrd>(
    r: &ObjectReader<'_>,
    min: Option<T>,
    min_name: &str,
    max: Option<T>,
    max_name: &str,
    errors: &mut FieldErrors,
) {
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            errors.push(
                &r.path(max_name),
                "out_of_range",
                format!("must not be less than {min_name}"),
            );
        }
    }
}

/// A whole-number array item.
fn integer_item(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<i64> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i)
            } else if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                Some(f as i64)
            } else {
                errors.push(path, "invalid_type", "must be a whole number");
                None
            }
        }
        other => {
            errors.push(
                path,
                "invalid_type",
                format!("must be a whole number, not {}", type_name(other)),
            );
            None
        }
    }
}

fn read_location(r: &mut ObjectReader<'_>, errors: &mut FieldErrors) -> Option<Location> {
    let city = r.string("city", false, MAX_TEXT_LEN, errors);
    let county = r.string("county", false, MAX_TEXT_LEN, errors);
    let description = r.string("description", false, MAX_TEXT_LEN, errors);
    let state_code = r.parsed("stateCode", false, errors, StateCode::parse);
    let street_address = r.string("streetAddress", false, MAX_TEXT_LEN, errors);
    let zip_code = r.parsed("zipCode", false, errors, Zip::parse);
    Some(Location {
        city,
        county,
        description,
        state_code,
        street_address,
        zip_code,
    })
}

fn read_inquiry(
    raw: Option<&Value>,
    r: &mut ObjectReader<'_>,
    errors: &mut FieldErrors,
) -> Option<Inquiry> {
    let _ = raw;
    r.explain_unknown(|name| {
        INQUIRY_READ_ONLY
            .contains(&name)
            .then_some(READ_ONLY_MESSAGE)
    });
    let locations = r.array(
        "locations",
        false,
        MAX_LOCATIONS,
        errors,
        |item, path, errors| object_item(item, path, errors, read_location),
    );
    let price_min = count(r, "priceMin", i64::MAX, errors);
    let price_max = count(r, "priceMax", i64::MAX, errors);
    in_order(r, price_min, "priceMin", price_max, "priceMax", errors);
    let bedrooms_min = count32(r, "bedroomsMin", errors);
    let bedrooms_max = count32(r, "bedroomsMax", errors);
    in_order(
        r,
        bedrooms_min,
        "bedroomsMin",
        bedrooms_max,
        "bedroomsMax",
        errors,
    );
    let bathrooms_min = bathrooms(r, "bathroomsMin", errors);
    let bathrooms_max = bathrooms(r, "bathroomsMax", errors);
    in_order(
        r,
        bathrooms_min.as_ref().map(|(_, v)| *v),
        "bathroomsMin",
        bathrooms_max.as_ref().map(|(_, v)| *v),
        "bathroomsMax",
        errors,
    );
    let property_type = r.array(
        "propertyType",
        false,
        MAX_PROPERTY_TYPES,
        errors,
        |item, path, errors| string_item(item, path, MAX_TEXT_LEN, errors),
    );
    Some(Inquiry {
        locations: locations.unwrap_or_default(),
        price_min,
        price_max,
        bedrooms_min,
        bedrooms_max,
        bathrooms_min: bathrooms_min.map(|(s, _)| s),
        bathrooms_max: bathrooms_max.map(|(s, _)| s),
        property_type: property_type.unwrap_or_default(),
    })
}

fn read_property(
    raw: Option<&Value>,
    r: &mut ObjectReader<'_>,
    errors: &mut FieldErrors,
) -> Option<Property> {
    let _ = raw;
    r.explain_unknown(|name| {
        PROPERTY_READ_ONLY
            .contains(&name)
            .then_some(READ_ONLY_MESSAGE)
    });
    let street_address = r.string("streetAddress", false, MAX_TEXT_LEN, errors);
    let city = r.string("city", false, MAX_TEXT_LEN, errors);
    let county = r.string("county", false, MAX_TEXT_LEN, errors);
    let state = r.parsed("state", false, errors, StateCode::parse);
    let zip_code = r.parsed("zipCode", false, errors, Zip::parse);
    let price = count(r, "price", i64::MAX, errors);
    let price_min = count(r, "priceMin", i64::MAX, errors);
    let price_max = count(r, "priceMax", i64::MAX, errors);
    in_order(r, price_min, "priceMin", price_max, "priceMax", errors);
    let bedrooms = count32(r, "bedrooms", errors);
    let bathrooms = measure(r, "bathrooms", errors);
    let square_feet = count(r, "squareFeet", i64::MAX, errors);
    let lot_size = measure(r, "lotSize", errors);
    let floors = count32(r, "floors", errors);
    let parking_space = count(r, "parkingSpace", i64::MAX, errors);
    let property_type = r.string("propertyType", false, MAX_TEXT_LEN, errors);
    let mail_address = r.boolean("mailAddress", false, errors);
    Some(Property {
        street_address,
        city,
        county,
        state,
        zip_code,
        price,
        price_min,
        price_max,
        bedrooms,
        bathrooms,
        square_feet,
        lot_size,
        floors,
        parking_space,
        property_type,
        mail_address,
    })
}

/// Check a real-estate lead against seed 004 and normalise it, for the registry.
pub fn parse(value: &Value) -> Result<ParsedLead, FieldErrors> {
    parse_lead(value).map(RealEstateLead::into_parsed)
}

/// Check a real-estate lead against seed 004 and normalise it; every broken rule is reported.
pub fn parse_lead(value: &Value) -> Result<RealEstateLead, FieldErrors> {
    parse_on(value, Utc::now().date_naive())
}

/// [`parse_lead`] with `today` as the latest birthday allowed.
fn parse_on(value: &Value, today: NaiveDate) -> Result<RealEstateLead, FieldErrors> {
    let mut errors = FieldErrors::default();
    let Some(mut root) = ObjectReader::new(value, "", &mut errors) else {
        return Err(errors);
    };

    root.explain_unknown(|name| ROUTING_FIELDS.contains(&name).then_some(ROUTING_MESSAGE));

    let first_name = root.string("firstName", false, MAX_TEXT_LEN, &mut errors);
    let last_name = root.string("lastName", false, MAX_TEXT_LEN, &mut errors);
    let emails = root.array(
        "emails",
        false,
        MAX_EMAILS,
        &mut errors,
        |item, path, errors| {
            let raw = string_item(item, path, MAX_EMAIL_LEN, errors)?;
            Email::parse(&raw)
                .map_err(|rule| errors.push(path, "invalid_format", rule))
                .ok()
        },
    );
    let phones = root.array(
        "phones",
        false,
        MAX_PHONES,
        &mut errors,
        |item, path, errors| {
            let raw = string_item(item, path, MAX_PHONE_LEN, errors)?;
            Phone::parse(&raw)
                .map_err(|rule| errors.push(path, "invalid_format", rule))
                .ok()
        },
    );
    // At least one way to reach the lead. A present value of the wrong type has its own error already.
    let given = |name: &str| match value.get(name) {
        None | Some(Value::Null) => false,
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    };
    if !given("emails") && !given("phones") {
        errors.push("emails", "required", "give at least one email or phone");
    }

    let lead_type = match root.integer("leadType", false, &mut errors) {
        None => None,
        Some(id) => {
            let found = lead_type_of(id, &LEAD_TYPE);
            if found.is_none() {
                errors.push(
                    &root.path("leadType"),
                    "invalid_value",
                    lead_type_rule(&LEAD_TYPE),
                );
            }
            found
        }
    };
    let mut seen = Vec::new();
    let lead_types = root.array(
        "leadTypes",
        false,
        LEAD_TYPES.len(),
        &mut errors,
        |item, path, errors| {
            let id = integer_item(item, path, errors)?;
            let Some(found) = lead_type_of(id, &LEAD_TYPES) else {
                errors.push(path, "invalid_value", lead_type_rule(&LEAD_TYPES));
                return None;
            };
            if seen.contains(&found) {
                errors.push(path, "invalid_value", "repeats an earlier lead type");
                return None;
            }
            seen.push(found);
            Some(found)
        },
    );

    let source = root.string("source", false, MAX_TEXT_LEN, &mut errors);
    let tags = root.array(
        "tags",
        false,
        MAX_TAGS,
        &mut errors,
        |item, path, errors| string_item(item, path, MAX_TAG_LEN, errors),
    );
    let content = root.string("content", false, MAX_CONTENT_LEN, &mut errors);
    let street_address = root.string("streetAddress", false, MAX_TEXT_LEN, &mut errors);
    let city = root.string("city", false, MAX_TEXT_LEN, &mut errors);
    let state = root.parsed("state", false, &mut errors, StateCode::parse);
    let zip_code = root.parsed("zipCode", false, &mut errors, Zip::parse);
    let birthday = root.parsed("birthday", false, &mut errors, |raw| {
        Birthday::parse(raw, today)
    });
    let buying_time_frame = root.string("buyingTimeFrame", false, MAX_TEXT_LEN, &mut errors);
    let selling_time_frame = root.string("sellingTimeFrame", false, MAX_TEXT_LEN, &mut errors);
    let cannot_call = root.boolean("cannotCall", false, &mut errors);
    let cannot_email = root.boolean("cannotEmail", false, &mut errors);
    let cannot_text = root.boolean("cannotText", false, &mut errors);
    let mut qualification = BTreeMap::new();
    for (name, _) in QUALIFICATION_FIELDS {
        if let Some(text) = root.string(name, false, MAX_TEXT_LEN, &mut errors) {
            qualification.insert(name, text);
        }
    }
    let inquiry = root.object("inquiry", false, &mut errors, |r, errors| {
        read_inquiry(value.get("inquiry"), r, errors)
    });
    let property = root.object("property", false, &mut errors, |r, errors| {
        read_property(value.get("property"), r, errors)
    });
    root.finish(&mut errors);

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RealEstateLead {
        first_name,
        last_name,
        emails: emails.unwrap_or_default(),
        phones: phones.unwrap_or_default(),
        lead_type,
        lead_types: lead_types.unwrap_or_default(),
        source,
        tags: tags.unwrap_or_default(),
        content,
        street_address,
        city,
        state,
        zip_code,
        birthday,
        buying_time_frame,
        selling_time_frame,
        cannot_call,
        cannot_email,
        cannot_text,
        qualification,
        inquiry,
        property,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::verticals::fields::{FieldError, ROOT};
    use crate::verticals::test_support::{codes, set};

    #[test]
    fn schema_is_in_step_with_the_parser() {
        crate::verticals::schema_check::assert_in_step(crate::verticals::Vertical::RealEstate);
    }

    /// A fixed "today" for the table, so that the future-date rows do not depend on the clock.
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 6, 15).expect("a date")
    }

    /// A complete lead in the shape a seller posts it, needing normalisation.
    fn valid() -> Value {
        json!({
            "firstName": "  Jane ",
            "lastName": "Doe",
            "emails": [" Jane.Doe@Example.com ", "jdoe@example.org"],
            "phones": ["(727) 555-0134", "1-813-555-0199"],
            "leadType": 3,
            "leadTypes": [1, 2],
            "source": "Example Leads Co.",
            "tags": ["first-time buyer", " pre-approved "],
            "content": "Looking for a 3-bedroom house.",
            "streetAddress": "1 Main St",
            "city": "Tampa",
            "state": "fl",
            "zipCode": "336011234",
            "birthday": "jan 05, 1980",
            "buyingTimeFrame": "1-3 months",
            "sellingTimeFrame": "3-6 months",
            "cannotCall": false,
            "cannotEmail": false,
            "cannotText": true,
            "inquiry": {
                "locations": [{"city": "Tampa", "county": "Hillsborough", "description": "Downtown", "stateCode": "fl", "streetAddress": "100 N Ashley Dr", "zipCode": "33602 1234"}],
                "priceMin": 250000,
                "priceMax": 400000,
                "bedroomsMin": 3,
                "bedroomsMax": 4,
                "bathroomsMin": "2",
                "bathroomsMax": " 2.5 ",
                "propertyType": ["Single Family", "Condo"]
            },
            "property": {
                "streetAddress": "9 Oak Ave",
                "city": "Tampa",
                "county": "Hillsborough",
                "state": "Fl",
                "zipCode": "33603",
                "price": 320000,
                "priceMin": 300000,
                "priceMax": 340000,
                "bedrooms": 3,
                "bathrooms": 2.5,
                "squareFeet": 1850,
                "lotSize": 0.25,
                "floors": 2,
                "propertyType": "Single Family",
                "mailAddress": true
            }
        })
    }

    fn birthday(date: NaiveDate) -> Value {
        json!(Birthday(date).to_string())
    }

    /// One row per rule of seed 004 (and of this vertical's choices): (what, changes to the valid lead,
    /// expected errors, in order).
    #[test]
    fn every_rule_of_seed_004() {
        type Row = (
            String,
            Vec<(&'static str, Value)>,
            Vec<(&'static str, &'static str)>,
        );
        let phone_20 = "1 (727) - 555 - 0134";
        let phone_21 = "+1 (727) - 555 - 0134";
        assert_eq!(phone_20.chars().count(), 20);
        assert_eq!(phone_21.chars().count(), 21);
        let tomorrow = today().succ_opt().expect("a date");
        let mut rows: Vec<Row> = vec![
            ("valid lead".into(), vec![], vec![]),
            // Contact: at least one email or phone.
            ("only a phone".into(), vec![("emails", Value::Null)], vec![]),
            (
                "only an email".into(),
                vec![("phones", Value::Null)],
                vec![],
            ),
            (
                "empty emails with a phone".into(),
                vec![("emails", json!([]))],
                vec![],
            ),
            (
                "neither email nor phone".into(),
                vec![("emails", Value::Null), ("phones", Value::Null)],
                vec![("emails", "required")],
            ),
            (
                "empty arrays are neither email nor phone".into(),
                vec![("emails", json!([])), ("phones", json!([]))],
                vec![("emails", "required")],
            ),
            (
                "empty emails and no phones".into(),
                vec![("emails", json!([])), ("phones", Value::Null)],
                vec![("emails", "required")],
            ),
            // emails.
            (
                "emails must be an array".into(),
                vec![("emails", json!("jane@example.com"))],
                vec![("emails", "invalid_type")],
            ),
            (
                "bad email item".into(),
                vec![("emails", json!(["jane@example.com", "jane.doe@"]))],
                vec![("emails[1]", "invalid_format")],
            ),
            (
                "email item must be a string".into(),
                vec![("emails", json!([42]))],
                vec![("emails[0]", "invalid_type")],
            ),
            (
                "email item must not be blank".into(),
                vec![("emails", json!(["  "]))],
                vec![("emails[0]", "required")],
            ),
            (
                "email item at most 254 characters".into(),
                vec![(
                    "emails",
                    json!([format!("{}@example.com", "a".repeat(250))]),
                )],
                vec![("emails[0]", "too_long")],
            ),
            (
                "10 emails".into(),
                vec![("emails", json!(vec!["a@example.com"; 10]))],
                vec![],
            ),
            (
                "at most 10 emails".into(),
                vec![("emails", json!(vec!["a@example.com"; 11]))],
                vec![("emails", "too_long")],
            ),
            // phones.
            (
                "phones must be an array".into(),
                vec![("phones", json!("(727) 555-0134"))],
                vec![("phones", "invalid_type")],
            ),
            (
                "bad phone".into(),
                vec![("phones", json!(["(727) 555-0134", "(727) 123-4567"]))],
                vec![("phones[1]", "invalid_format")],
            ),
            (
                "phone with letters".into(),
                vec![("phones", json!(["727-555-CALL"]))],
                vec![("phones[0]", "invalid_format")],
            ),
            (
                "phone of 20 characters".into(),
                vec![("phones", json!([phone_20]))],
                vec![],
            ),
            (
                "phone of 21 characters".into(),
                vec![("phones", json!([phone_21]))],
                vec![("phones[0]", "too_long")],
            ),
            (
                "phone item must be a string".into(),
                vec![("phones", json!([7_275_550_134_i64]))],
                vec![("phones[0]", "invalid_type")],
            ),
            (
                "at most 10 phones".into(),
                vec![("phones", json!(vec!["(727) 555-0134"; 11]))],
                vec![("phones", "too_long")],
            ),
            // leadType: every id, and others refused.
            (
                "leadType Other (-1)".into(),
                vec![("leadType", json!(-1))],
                vec![],
            ),
            (
                "leadType Seller (1)".into(),
                vec![("leadType", json!(1))],
                vec![],
            ),
            (
                "leadType Buyer (2)".into(),
                vec![("leadType", json!(2))],
                vec![],
            ),
            (
                "leadType Buyer & Seller (3)".into(),
                vec![("leadType", json!(3))],
                vec![],
            ),
            (
                "leadType Renter (5)".into(),
                vec![("leadType", json!(5))],
                vec![],
            ),
            (
                "leadType 0".into(),
                vec![("leadType", json!(0))],
                vec![("leadType", "invalid_value")],
            ),
            (
                "leadType 4".into(),
                vec![("leadType", json!(4))],
                vec![("leadType", "invalid_value")],
            ),
            (
                "leadType 6 is only a leadTypes id".into(),
                vec![("leadType", json!(6))],
                vec![("leadType", "invalid_value")],
            ),
            (
                "leadType -2".into(),
                vec![("leadType", json!(-2))],
                vec![("leadType", "invalid_value")],
            ),
            (
                "leadType is a number, not a string".into(),
                vec![("leadType", json!("2"))],
                vec![("leadType", "invalid_type")],
            ),
            (
                "leadType is a whole number".into(),
                vec![("leadType", json!(2.5))],
                vec![("leadType", "invalid_type")],
            ),
            (
                "leadType optional".into(),
                vec![("leadType", Value::Null)],
                vec![],
            ),
            // leadTypes: every id, and others refused.
            (
                "leadTypes Other (-1)".into(),
                vec![("leadTypes", json!([-1]))],
                vec![],
            ),
            (
                "leadTypes Seller (1)".into(),
                vec![("leadTypes", json!([1]))],
                vec![],
            ),
            (
                "leadTypes Buyer (2)".into(),
                vec![("leadTypes", json!([2]))],
                vec![],
            ),
            (
                "leadTypes Renter (5)".into(),
                vec![("leadTypes", json!([5]))],
                vec![],
            ),
            (
                "leadTypes Investor (6)".into(),
                vec![("leadTypes", json!([6]))],
                vec![],
            ),
            (
                "leadTypes Agent (7)".into(),
                vec![("leadTypes", json!([7]))],
                vec![],
            ),
            (
                "leadTypes Homeowner (8)".into(),
                vec![("leadTypes", json!([8]))],
                vec![],
            ),
            (
                "leadTypes Landlord (9)".into(),
                vec![("leadTypes", json!([9]))],
                vec![],
            ),
            (
                "leadTypes all eight".into(),
                vec![("leadTypes", json!([-1, 1, 2, 5, 6, 7, 8, 9]))],
                vec![],
            ),
            (
                "leadTypes 3 is only a leadType id".into(),
                vec![("leadTypes", json!([2, 3]))],
                vec![("leadTypes[1]", "invalid_value")],
            ),
            (
                "leadTypes 4".into(),
                vec![("leadTypes", json!([4]))],
                vec![("leadTypes[0]", "invalid_value")],
            ),
            (
                "leadTypes 0 and 10".into(),
                vec![("leadTypes", json!([0, 10]))],
                vec![
                    ("leadTypes[0]", "invalid_value"),
                    ("leadTypes[1]", "invalid_value"),
                ],
            ),
            (
                "leadTypes items are numbers".into(),
                vec![("leadTypes", json!(["2"]))],
                vec![("leadTypes[0]", "invalid_type")],
            ),
            (
                "leadTypes items are whole numbers".into(),
                vec![("leadTypes", json!([1.5]))],
                vec![("leadTypes[0]", "invalid_type")],
            ),
            (
                "leadTypes no id twice".into(),
                vec![("leadTypes", json!([2, 6, 2]))],
                vec![("leadTypes[2]", "invalid_value")],
            ),
            (
                "leadTypes at most 8".into(),
                vec![("leadTypes", json!([-1, 1, 2, 5, 6, 7, 8, 9, 1]))],
                vec![("leadTypes", "too_long")],
            ),
            (
                "leadTypes must be an array".into(),
                vec![("leadTypes", json!(2))],
                vec![("leadTypes", "invalid_type")],
            ),
            // Names and free text.
            (
                "firstName optional".into(),
                vec![("firstName", Value::Null)],
                vec![],
            ),
            (
                "lastName optional".into(),
                vec![("lastName", Value::Null)],
                vec![],
            ),
            (
                "firstName at most 255".into(),
                vec![("firstName", json!("J".repeat(256)))],
                vec![("firstName", "too_long")],
            ),
            (
                "lastName at most 255".into(),
                vec![("lastName", json!("D".repeat(256)))],
                vec![("lastName", "too_long")],
            ),
            (
                "firstName is a string".into(),
                vec![("firstName", json!(["Jane"]))],
                vec![("firstName", "invalid_type")],
            ),
            (
                "source at most 255".into(),
                vec![("source", json!("s".repeat(256)))],
                vec![("source", "too_long")],
            ),
            (
                "source is a string".into(),
                vec![("source", json!(7))],
                vec![("source", "invalid_type")],
            ),
            (
                "50 tags".into(),
                vec![("tags", json!(vec!["t"; 50]))],
                vec![],
            ),
            (
                "at most 50 tags".into(),
                vec![("tags", json!(vec!["t"; 51]))],
                vec![("tags", "too_long")],
            ),
            (
                "tag at most 100".into(),
                vec![("tags", json!(["ok", "t".repeat(101)]))],
                vec![("tags[1]", "too_long")],
            ),
            (
                "tag of 100".into(),
                vec![("tags", json!(["t".repeat(100)]))],
                vec![],
            ),
            (
                "tag is a string".into(),
                vec![("tags", json!([true]))],
                vec![("tags[0]", "invalid_type")],
            ),
            (
                "tags must be an array".into(),
                vec![("tags", json!("buyer"))],
                vec![("tags", "invalid_type")],
            ),
            (
                "content of 2000".into(),
                vec![("content", json!("c".repeat(2000)))],
                vec![],
            ),
            (
                "content at most 2000".into(),
                vec![("content", json!("c".repeat(2001)))],
                vec![("content", "too_long")],
            ),
            (
                "buyingTimeFrame at most 255".into(),
                vec![("buyingTimeFrame", json!("b".repeat(256)))],
                vec![("buyingTimeFrame", "too_long")],
            ),
            (
                "sellingTimeFrame is a string".into(),
                vec![("sellingTimeFrame", json!(3))],
                vec![("sellingTimeFrame", "invalid_type")],
            ),
            // Address.
            (
                "streetAddress is a string".into(),
                vec![("streetAddress", json!(1))],
                vec![("streetAddress", "invalid_type")],
            ),
            (
                "city at most 255".into(),
                vec![("city", json!("c".repeat(256)))],
                vec![("city", "too_long")],
            ),
            (
                "state 2-letter code".into(),
                vec![("state", json!("Florida"))],
                vec![("state", "invalid_format")],
            ),
            (
                "state unknown code".into(),
                vec![("state", json!("ZZ"))],
                vec![("state", "invalid_format")],
            ),
            (
                "zipCode format".into(),
                vec![("zipCode", json!("3360"))],
                vec![("zipCode", "invalid_format")],
            ),
            (
                "zipCode is a string".into(),
                vec![("zipCode", json!(33601))],
                vec![("zipCode", "invalid_type")],
            ),
            // Birthday: the seed's pattern MMM d, yyyy.
            (
                "birthday Jan 5, 1980".into(),
                vec![("birthday", json!("Jan 5, 1980"))],
                vec![],
            ),
            (
                "birthday Dec 25, 1975".into(),
                vec![("birthday", json!("Dec 25, 1975"))],
                vec![],
            ),
            (
                "birthday leading zero".into(),
                vec![("birthday", json!("Jan 05, 1980"))],
                vec![],
            ),
            (
                "birthday month in any case".into(),
                vec![("birthday", json!("MAY 1, 1990"))],
                vec![],
            ),
            (
                "birthday leap day".into(),
                vec![("birthday", json!("Feb 29, 2000"))],
                vec![],
            ),
            (
                "birthday Jan 1, 1900".into(),
                vec![("birthday", json!("Jan 1, 1900"))],
                vec![],
            ),
            (
                "birthday today".into(),
                vec![("birthday", birthday(today()))],
                vec![],
            ),
            (
                "birthday ISO form".into(),
                vec![("birthday", json!("1980-01-05"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday Jan 32, 1980".into(),
                vec![("birthday", json!("Jan 32, 1980"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday Feb 30, 1981".into(),
                vec![("birthday", json!("Feb 30, 1981"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday Feb 29 of a common year".into(),
                vec![("birthday", json!("Feb 29, 1981"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday Jan 0, 1980".into(),
                vec![("birthday", json!("Jan 0, 1980"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday Foo 5, 1980".into(),
                vec![("birthday", json!("Foo 5, 1980"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday full month name".into(),
                vec![("birthday", json!("January 5, 1980"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday without the comma".into(),
                vec![("birthday", json!("Jan 5 1980"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday 2-digit year".into(),
                vec![("birthday", json!("Jan 5, 80"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday 3-digit day".into(),
                vec![("birthday", json!("Jan 005, 1980"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday tomorrow is in the future".into(),
                vec![("birthday", birthday(tomorrow))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday far in the future".into(),
                vec![("birthday", json!("Dec 31, 9999"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday before 1900".into(),
                vec![("birthday", json!("Dec 31, 1899"))],
                vec![("birthday", "invalid_format")],
            ),
            (
                "birthday is a string".into(),
                vec![("birthday", json!(19_800_105))],
                vec![("birthday", "invalid_type")],
            ),
            // Consent flags.
            (
                "cannotCall true".into(),
                vec![("cannotCall", json!(true))],
                vec![],
            ),
            (
                "cannotCall is a boolean".into(),
                vec![("cannotCall", json!("no"))],
                vec![("cannotCall", "invalid_type")],
            ),
            (
                "cannotEmail is a boolean".into(),
                vec![("cannotEmail", json!(0))],
                vec![("cannotEmail", "invalid_type")],
            ),
            (
                "cannotText is a boolean".into(),
                vec![("cannotText", json!("true"))],
                vec![("cannotText", "invalid_type")],
            ),
            // inquiry.
            (
                "inquiry optional".into(),
                vec![("inquiry", Value::Null)],
                vec![],
            ),
            (
                "inquiry may be empty".into(),
                vec![("inquiry", json!({}))],
                vec![],
            ),
            (
                "inquiry is an object".into(),
                vec![("inquiry", json!([]))],
                vec![("inquiry", "invalid_type")],
            ),
            (
                "inquiry.locations is an array".into(),
                vec![("inquiry.locations", json!({"city": "Tampa"}))],
                vec![("inquiry.locations", "invalid_type")],
            ),
            (
                "inquiry.locations item is an object".into(),
                vec![("inquiry.locations", json!(["Tampa"]))],
                vec![("inquiry.locations[0]", "invalid_type")],
            ),
            (
                "inquiry.locations item may be empty".into(),
                vec![("inquiry.locations", json!([{}]))],
                vec![],
            ),
            (
                "inquiry.locations at most 20".into(),
                vec![(
                    "inquiry.locations",
                    json!(vec![json!({"city": "Tampa"}); 21]),
                )],
                vec![("inquiry.locations", "too_long")],
            ),
            (
                "location stateCode".into(),
                vec![(
                    "inquiry.locations",
                    json!([{"city": "Tampa"}, {"stateCode": "XX"}]),
                )],
                vec![("inquiry.locations[1].stateCode", "invalid_format")],
            ),
            (
                "location zipCode".into(),
                vec![("inquiry.locations", json!([{"zipCode": "ABCDE"}]))],
                vec![("inquiry.locations[0].zipCode", "invalid_format")],
            ),
            (
                "location city is a string".into(),
                vec![("inquiry.locations", json!([{"city": 5}]))],
                vec![("inquiry.locations[0].city", "invalid_type")],
            ),
            (
                "location description at most 255".into(),
                vec![(
                    "inquiry.locations",
                    json!([{"description": "d".repeat(256)}]),
                )],
                vec![("inquiry.locations[0].description", "too_long")],
            ),
            (
                "location unknown field".into(),
                vec![("inquiry.locations", json!([{"city": "Tampa", "radius": 5}]))],
                vec![("inquiry.locations[0].radius", "unknown_field")],
            ),
            (
                "inquiry priceMin equal to priceMax".into(),
                vec![("inquiry.priceMin", json!(400_000))],
                vec![],
            ),
            (
                "inquiry priceMin above priceMax".into(),
                vec![("inquiry.priceMin", json!(400_001))],
                vec![("inquiry.priceMax", "out_of_range")],
            ),
            (
                "inquiry priceMin negative".into(),
                vec![("inquiry.priceMin", json!(-1))],
                vec![("inquiry.priceMin", "out_of_range")],
            ),
            (
                "inquiry priceMax negative (no ordering error on top)".into(),
                vec![("inquiry.priceMax", json!(-1))],
                vec![("inquiry.priceMax", "out_of_range")],
            ),
            (
                "inquiry priceMin alone".into(),
                vec![("inquiry.priceMax", Value::Null)],
                vec![],
            ),
            (
                "inquiry price is a number".into(),
                vec![("inquiry.priceMax", json!("400000"))],
                vec![("inquiry.priceMax", "invalid_type")],
            ),
            (
                "inquiry price is a whole number".into(),
                vec![("inquiry.priceMin", json!(1000.5))],
                vec![("inquiry.priceMin", "invalid_type")],
            ),
            (
                "inquiry bedroomsMin above bedroomsMax".into(),
                vec![("inquiry.bedroomsMin", json!(5))],
                vec![("inquiry.bedroomsMax", "out_of_range")],
            ),
            (
                "inquiry bedroomsMin negative".into(),
                vec![("inquiry.bedroomsMin", json!(-2))],
                vec![("inquiry.bedroomsMin", "out_of_range")],
            ),
            (
                "inquiry bedroomsMax within int32".into(),
                vec![("inquiry.bedroomsMax", json!(2_147_483_648_i64))],
                vec![("inquiry.bedroomsMax", "out_of_range")],
            ),
            (
                "inquiry bedrooms whole number".into(),
                vec![("inquiry.bedroomsMax", json!(3.5))],
                vec![("inquiry.bedroomsMax", "invalid_type")],
            ),
            (
                "inquiry bathroomsMin decimal string".into(),
                vec![("inquiry.bathroomsMin", json!("1.5"))],
                vec![],
            ),
            (
                "inquiry bathroomsMin not a number".into(),
                vec![("inquiry.bathroomsMin", json!("two"))],
                vec![("inquiry.bathroomsMin", "invalid_format")],
            ),
            (
                "inquiry bathroomsMin no exponent".into(),
                vec![("inquiry.bathroomsMin", json!("1e1"))],
                vec![("inquiry.bathroomsMin", "invalid_format")],
            ),
            (
                "inquiry bathroomsMin negative".into(),
                vec![("inquiry.bathroomsMin", json!("-1"))],
                vec![("inquiry.bathroomsMin", "out_of_range")],
            ),
            (
                "inquiry bathroomsMax is a string".into(),
                vec![("inquiry.bathroomsMax", json!(2.5))],
                vec![("inquiry.bathroomsMax", "invalid_type")],
            ),
            (
                "inquiry bathroomsMax at most 10 characters".into(),
                vec![("inquiry.bathroomsMax", json!("12345678901"))],
                vec![("inquiry.bathroomsMax", "too_long")],
            ),
            (
                "inquiry bathroomsMin above bathroomsMax".into(),
                vec![("inquiry.bathroomsMin", json!("3"))],
                vec![("inquiry.bathroomsMax", "out_of_range")],
            ),
            (
                "inquiry propertyType is an array".into(),
                vec![("inquiry.propertyType", json!("Condo"))],
                vec![("inquiry.propertyType", "invalid_type")],
            ),
            (
                "inquiry propertyType items are strings".into(),
                vec![("inquiry.propertyType", json!(["Condo", 2]))],
                vec![("inquiry.propertyType[1]", "invalid_type")],
            ),
            (
                "inquiry propertyType at most 20".into(),
                vec![("inquiry.propertyType", json!(vec!["Condo"; 21]))],
                vec![("inquiry.propertyType", "too_long")],
            ),
            (
                "inquiry unknown field".into(),
                vec![("inquiry.schoolDistrict", json!("North"))],
                vec![("inquiry.schoolDistrict", "unknown_field")],
            ),
            // property.
            (
                "property optional".into(),
                vec![("property", Value::Null)],
                vec![],
            ),
            (
                "property is an object".into(),
                vec![("property", json!("9 Oak Ave"))],
                vec![("property", "invalid_type")],
            ),
            (
                "property state".into(),
                vec![("property.state", json!("F"))],
                vec![("property.state", "invalid_format")],
            ),
            (
                "property zipCode".into(),
                vec![("property.zipCode", json!("33603-12"))],
                vec![("property.zipCode", "invalid_format")],
            ),
            (
                "property county is a string".into(),
                vec![("property.county", json!(false))],
                vec![("property.county", "invalid_type")],
            ),
            (
                "property price negative".into(),
                vec![("property.price", json!(-5))],
                vec![("property.price", "out_of_range")],
            ),
            (
                "property price zero".into(),
                vec![("property.price", json!(0))],
                vec![],
            ),
            (
                "property priceMin above priceMax".into(),
                vec![("property.priceMin", json!(350_000))],
                vec![("property.priceMax", "out_of_range")],
            ),
            (
                "property bedrooms negative".into(),
                vec![("property.bedrooms", json!(-1))],
                vec![("property.bedrooms", "out_of_range")],
            ),
            (
                "property bedrooms whole number".into(),
                vec![("property.bedrooms", json!(2.5))],
                vec![("property.bedrooms", "invalid_type")],
            ),
            (
                "property bathrooms negative".into(),
                vec![("property.bathrooms", json!(-0.5))],
                vec![("property.bathrooms", "out_of_range")],
            ),
            (
                "property bathrooms is a number".into(),
                vec![("property.bathrooms", json!("2"))],
                vec![("property.bathrooms", "invalid_type")],
            ),
            (
                "property squareFeet negative".into(),
                vec![("property.squareFeet", json!(-1))],
                vec![("property.squareFeet", "out_of_range")],
            ),
            (
                "property lotSize negative".into(),
                vec![("property.lotSize", json!(-0.1))],
                vec![("property.lotSize", "out_of_range")],
            ),
            (
                "property floors negative".into(),
                vec![("property.floors", json!(-1))],
                vec![("property.floors", "out_of_range")],
            ),
            (
                "property propertyType is a string".into(),
                vec![("property.propertyType", json!(["Condo"]))],
                vec![("property.propertyType", "invalid_type")],
            ),
            (
                "property mailAddress is a boolean".into(),
                vec![("property.mailAddress", json!("yes"))],
                vec![("property.mailAddress", "invalid_type")],
            ),
            (
                "property unknown field".into(),
                vec![("property.pool", json!(true))],
                vec![("property.pool", "unknown_field")],
            ),
            // Unknown fields, wrong types at the root.
            (
                "unknown root field".into(),
                vec![("middleName", json!("Q"))],
                vec![("middleName", "unknown_field")],
            ),
            (
                "typo is not silently dropped".into(),
                vec![("email", json!("jane@example.com"))],
                vec![("email", "unknown_field")],
            ),
        ];
        for name in ROUTING_FIELDS {
            rows.push((
                format!("routing field {name} is refused"),
                vec![(name, json!(1))],
                vec![(name, "unknown_field")],
            ));
        }
        for (name, _) in QUALIFICATION_FIELDS {
            rows.push((
                format!("qualification field {name} is a string"),
                vec![(name, json!(true))],
                vec![(name, "invalid_type")],
            ));
            rows.push((
                format!("qualification field {name} at most 255"),
                vec![(name, json!("q".repeat(256)))],
                vec![(name, "too_long")],
            ));
            rows.push((
                format!("qualification field {name} is accepted"),
                vec![(name, json!(" Yes "))],
                vec![],
            ));
        }
        rows.push((
            "property parkingSpace is a whole number".into(),
            vec![("property.parkingSpace", json!(1.5))],
            vec![("property.parkingSpace", "invalid_type")],
        ));
        rows.push((
            "property parkingSpace negative".into(),
            vec![("property.parkingSpace", json!(-1))],
            vec![("property.parkingSpace", "out_of_range")],
        ));
        for name in INQUIRY_READ_ONLY {
            let path: &'static str = Box::leak(format!("inquiry.{name}").into_boxed_str());
            rows.push((
                format!("read-only {path} is refused"),
                vec![(path, json!(1))],
                vec![(path, "unknown_field")],
            ));
        }
        for name in PROPERTY_READ_ONLY {
            let path: &'static str = Box::leak(format!("property.{name}").into_boxed_str());
            rows.push((
                format!("read-only {path} is refused"),
                vec![(path, json!(1))],
                vec![(path, "unknown_field")],
            ));
        }
        for (what, changes, expected) in rows {
            let mut lead = valid();
            for (path, value) in changes {
                set(&mut lead, path, value);
            }
            let got = codes(parse_on(&lead, today()));
            let expected: Vec<(String, String)> = expected
                .into_iter()
                .map(|(field, code)| (field.to_owned(), code.to_owned()))
                .collect();
            assert_eq!(got, expected, "row: {what}");
        }
    }

    #[test]
    fn a_refused_field_is_refused_even_when_null() {
        let mut lead = valid();
        lead["leadRouting"] = Value::Null;
        lead["inquiry"]["id"] = Value::Null;
        let mut got = codes(parse_on(&lead, today()));
        got.sort();
        assert_eq!(
            got,
            vec![
                ("inquiry.id".to_owned(), "unknown_field".to_owned()),
                ("leadRouting".to_owned(), "unknown_field".to_owned()),
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let lead = json!({
            "firstName": 7,
            "emails": ["nope"],
            "phones": ["12", "+1 (727) - 555 - 0134"],
            "leadType": 4,
            "leadTypes": [3, "x"],
            "state": "ZZ",
            "birthday": "Feb 30, 1981",
            "cannotCall": "no",
            "leadRouting": true,
            "assignedUserId": 5,
            "inquiry": {"locations": [{"stateCode": "XX"}], "priceMin": 10, "priceMax": 5, "id": 1},
            "property": {"bathrooms": -1, "listingId": "L1", "bedrooms": "3"},
            "extra": 1
        });
        let got = codes(parse_on(&lead, today()));
        let expected: Vec<(String, String)> = [
            ("assignedUserId", "unknown_field"),
            ("leadRouting", "unknown_field"),
            ("firstName", "invalid_type"),
            ("emails[0]", "invalid_format"),
            ("phones[0]", "invalid_format"),
            ("phones[1]", "too_long"),
            ("leadType", "invalid_value"),
            ("leadTypes[0]", "invalid_value"),
            ("leadTypes[1]", "invalid_type"),
            ("state", "invalid_format"),
            ("birthday", "invalid_format"),
            ("cannotCall", "invalid_type"),
            ("inquiry.id", "unknown_field"),
            ("inquiry.locations[0].stateCode", "invalid_format"),
            ("inquiry.priceMax", "out_of_range"),
            ("property.listingId", "unknown_field"),
            ("property.bedrooms", "invalid_type"),
            ("property.bathrooms", "out_of_range"),
            ("extra", "unknown_field"),
        ]
        .into_iter()
        .map(|(field, code)| (field.to_owned(), code.to_owned()))
        .collect();
        // Unknown fields are reported when their object is finished, after the others.
        let (mut got, mut expected) = (got, expected);
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn normalises_the_lead() {
        let parsed = parse_on(&valid(), today()).expect("valid").into_parsed();
        let lead = &parsed.lead.value();
        assert_eq!(lead["firstName"], json!("Jane"));
        assert_eq!(
            lead["emails"],
            json!(["Jane.Doe@Example.com", "jdoe@example.org"])
        );
        assert_eq!(lead["phones"], json!(["+17275550134", "+18135550199"]));
        assert_eq!(lead["leadType"], json!(3));
        assert_eq!(lead["leadTypes"], json!([1, 2]));
        assert_eq!(lead["tags"], json!(["first-time buyer", "pre-approved"]));
        assert_eq!(lead["state"], json!("FL"));
        assert_eq!(lead["zipCode"], json!("33601-1234"));
        assert_eq!(lead["birthday"], json!("Jan 5, 1980"));
        assert_eq!(lead["cannotText"], json!(true));
        assert_eq!(lead["inquiry"]["locations"][0]["stateCode"], json!("FL"));
        assert_eq!(
            lead["inquiry"]["locations"][0]["zipCode"],
            json!("33602-1234")
        );
        assert_eq!(lead["inquiry"]["bathroomsMax"], json!("2.5"));
        assert_eq!(lead["inquiry"]["priceMax"], json!(400_000));
        assert_eq!(lead["property"]["state"], json!("FL"));
        assert_eq!(lead["property"]["bathrooms"], json!(2.5));
        assert_eq!(lead["property"]["mailAddress"], json!(true));
        assert!(parsed.unique.is_empty());
        assert_eq!(parsed.ssn, None);
    }

    #[test]
    fn absent_optionals_are_omitted() {
        let lead = json!({
            "phones": ["727.555.0134"],
            "emails": [],
            "firstName": "  ",
            "tags": [],
            "inquiry": {"locations": [], "propertyType": []},
            "property": {}
        });
        let parsed = parse_on(&lead, today()).expect("valid").into_parsed();
        assert_eq!(
            parsed.lead,
            json!({"phones": ["+17275550134"], "inquiry": {}, "property": {}}).into()
        );
    }

    #[test]
    fn the_example_parses_through_the_registry_and_uses_every_field() {
        use crate::verticals::Vertical;
        let body = serde_json::to_vec(&example()).expect("json");
        let parsed = Vertical::RealEstate.parse(&body).expect("valid example");
        assert_eq!(parsed.original.value(), example());
        assert!(parsed.unique.is_empty());
        // Every property the schema lists is present in the example, at every level.
        fn walk(schema: &Value, example: &Value, path: &str) {
            let Some(properties) = schema["properties"].as_object() else {
                return;
            };
            for (name, property) in properties {
                let value = &example[name.as_str()];
                assert!(!value.is_null(), "{path}{name} missing from the example");
                match property["type"].as_str() {
                    Some("object") => walk(property, value, &format!("{path}{name}.")),
                    Some("array") => {
                        assert!(
                            value.as_array().is_some_and(|a| !a.is_empty()),
                            "{path}{name} is empty in the example"
                        );
                        walk(&property["items"], &value[0], &format!("{path}{name}[0]."));
                    }
                    _ => {}
                }
            }
        }
        walk(&schema(), &example(), "");
        let example = example();
        assert!(example["emails"].as_array().is_some_and(|a| a.len() >= 2));
        assert!(example["phones"].as_array().is_some_and(|a| a.len() >= 2));
    }

    #[test]
    fn the_schema_is_closed_and_requires_nothing_at_every_level() {
        fn walk(schema: &Value, path: &str) {
            if schema["type"] == "object" {
                assert_eq!(
                    schema["additionalProperties"],
                    json!(false),
                    "{path}: additionalProperties"
                );
                assert_eq!(schema["required"], json!([]), "{path}: required");
                for (name, property) in schema["properties"].as_object().expect("properties") {
                    walk(property, &format!("{path}.{name}"));
                }
            }
            if schema["type"] == "array" {
                walk(&schema["items"], &format!("{path}[]"));
            }
        }
        let schema = schema();
        walk(&schema, "$");
        assert_eq!(
            schema["properties"]["leadType"]["enum"],
            json!([-1, 1, 2, 3, 5])
        );
        assert_eq!(
            schema["properties"]["leadTypes"]["items"]["enum"],
            json!([-1, 1, 2, 5, 6, 7, 8, 9])
        );
        for name in ROUTING_FIELDS {
            assert!(schema["properties"].get(name).is_none(), "{name}");
        }
        assert!(schema["properties"]["birthday"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("MMM d, yyyy")));
        assert!(schema["description"]
            .as_str()
            .is_some_and(|d| d.contains("At least one email or phone")));
    }

    #[test]
    fn messages_never_echo_submitted_values() {
        let lead = json!({
            "firstName": "SECRETNAME".repeat(30),
            "lastName": ["SECRETLAST"],
            "emails": ["secret-person@@example.com", "SECRETMAIL"],
            "phones": ["555-SECRET", "SECRET-0000000000000000"],
            "streetAddress": "SECRETSTREET".repeat(30),
            "state": "SECRETSTATE",
            "zipCode": "SECRETZIP",
            "birthday": "SECRET 5, 1980",
            "inquiry": {
                "locations": [{"stateCode": "SECRETCODE", "zipCode": "SECRET1", "streetAddress": "SECRETLOC".repeat(40)}],
                "bathroomsMin": "SECRET"
            },
            "property": {"zipCode": "SECRETPZ", "state": "SECRETPS", "city": "SECRETCITY".repeat(30)}
        });
        for birthday in ["Feb 30, 1981", "Dec 31, 9999", "Dec 31, 1899", "SECRET"] {
            let mut lead = lead.clone();
            lead["birthday"] = json!(birthday);
            let errors = parse_on(&lead, today()).expect_err("invalid");
            assert!(errors.0.len() >= 12, "{errors:?}");
            let messages: Vec<String> = errors.0.iter().map(|e| e.message.clone()).collect();
            let text = format!("{errors:?}").to_lowercase();
            assert!(!text.contains("secret"), "{text}");
            for value in ["feb 30", "9999", "1899", "1981"] {
                assert!(
                    !messages.iter().any(|m| m.to_lowercase().contains(value)),
                    "{messages:?}"
                );
            }
        }
    }

    #[test]
    fn birthday_messages_show_the_pattern() {
        for (raw, rule) in [
            ("1980-01-05", Birthday::SHAPE_RULE),
            ("Foo 5, 1980", Birthday::SHAPE_RULE),
            ("Jan 32, 1980", Birthday::DATE_RULE),
            ("Feb 30, 1981", Birthday::DATE_RULE),
            ("Dec 31, 9999", Birthday::FUTURE_RULE),
            ("Dec 31, 1899", Birthday::EARLY_RULE),
        ] {
            assert_eq!(Birthday::parse(raw, today()), Err(rule), "{raw}");
            assert!(rule.contains(BIRTHDAY_PATTERN), "{rule}");
        }
        assert_eq!(
            Birthday::parse(" dec 25, 1975 ", today()).map(|b| b.to_string()),
            Ok("Dec 25, 1975".to_owned())
        );
    }

    #[test]
    fn non_object_bodies_are_root_errors() {
        for body in [json!([]), json!("lead"), json!(1), json!(true), Value::Null] {
            let errors = parse(&body).expect_err("not an object");
            assert_eq!(
                errors.0,
                vec![FieldError::new(
                    ROOT,
                    "invalid_type",
                    format!("the body must be a JSON object, not {}", type_name(&body))
                )]
            );
        }
    }
}
