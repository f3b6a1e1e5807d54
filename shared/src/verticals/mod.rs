//! Inbound lead schemas, one module per vertical.
//!
//! A vertical turns the bytes a partner posted into a normalised lead or the complete list of field
//! errors, never half of each. Adding a vertical is one module here plus one arm in [`Vertical`].

pub mod fields;
pub mod heloc;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use fields::{FieldError, FieldErrors, ObjectReader};

/// The verticals the hub takes leads for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vertical {
    Heloc,
}

impl Vertical {
    pub const ALL: [Vertical; 1] = [Vertical::Heloc];

    /// The name used in URLs and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Vertical::Heloc => "heloc",
        }
    }

    /// The fields whose values must be unique across the system, as (name, JSON pointer into the lead).
    pub fn unique_fields(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Vertical::Heloc => &[("email", "/contactInfo/email")],
        }
    }

    /// The normalised (trimmed, lower-cased) unique values of a stored lead.
    pub fn unique_values(self, lead: &serde_json::Value) -> Vec<(&'static str, String)> {
        self.unique_fields()
            .iter()
            .filter_map(|(name, pointer)| {
                let value = lead.pointer(pointer)?.as_str()?.trim().to_lowercase();
                (!value.is_empty()).then_some((*name, value))
            })
            .collect()
    }

    /// Parse, check and normalise a lead of this vertical.
    pub fn parse(self, body: &[u8]) -> Result<ParsedLead, FieldErrors> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
            FieldErrors::one(FieldError::new(
                "",
                "invalid_json",
                format!(
                    "the body is not valid JSON (line {}, column {})",
                    error.line(),
                    error.column()
                ),
            ))
        })?;
        match self {
            Vertical::Heloc => heloc::parse(&value).map(heloc::HelocLead::into_parsed),
        }
    }
}

impl FromStr for Vertical {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vertical::ALL
            .into_iter()
            .find(|vertical| vertical.as_str() == s)
            .ok_or_else(|| format!("unknown vertical `{s}`"))
    }
}

impl fmt::Display for Vertical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lead that passed its vertical's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLead {
    /// The lead in the vertical's own schema and field names, normalised.
    pub lead: serde_json::Value,
    /// Values that must be unique across the system for this vertical (field name, normalised value).
    /// The values are PII: they are only ever stored as keyed hashes.
    pub unique: Vec<(&'static str, String)>,
}
