//! The verticals the hub takes leads for: names, order, parsing and serde. A leaf module (it imports nothing
//! of the crate), so both the lead model ([`crate::lead`]) and the vertical schemas ([`crate::verticals`],
//! which also holds each vertical's rules: `parse`, `schema`, `example`, unique fields) can name it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The verticals the hub takes leads for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vertical {
    Heloc,
    Mortgage,
    Solar,
    RealEstate,
}

impl Vertical {
    pub const ALL: [Vertical; 4] = [
        Vertical::Heloc,
        Vertical::Mortgage,
        Vertical::Solar,
        Vertical::RealEstate,
    ];

    /// The name used in URLs and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Vertical::Heloc => "heloc",
            Vertical::Mortgage => "mortgage",
            Vertical::Solar => "solar",
            Vertical::RealEstate => "real-estate",
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
