//! Typed ids of the hub's own things (svix's `create_id_type!` habit): a destination id and a partner id
//! are parsed once — at configuration load, or when a job is read off a queue — and cannot be mixed up
//! afterwards. Both are 1 to 64 ASCII letters, digits, `-` or `_` (the configuration's rule). Each derefs
//! to `&str` for lookups and logs. Lead ids are [`crate::lead::LeadId`].

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Whether `id` is 1 to 64 ASCII letters, digits, `-` or `_`.
pub fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a bad id is told.
pub const RULE: &str = "must be 1-64 letters, digits, - or _";

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id, if `id` follows the rule ([`RULE`]).
            pub fn parse(id: &str) -> Result<Self, String> {
                if is_valid(id) {
                    Ok($name(id.to_owned()))
                } else {
                    Err(RULE.to_owned())
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// An id the hub wrote itself (a key of a stored lead's deliveries, say): not checked again.
            #[allow(dead_code)] // not every id type has such a use yet
            pub(crate) fn trusted(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(id: String) -> Result<Self, String> {
                if is_valid(&id) {
                    Ok($name(id))
                } else {
                    Err(format!("`{}`: {RULE}", id.chars().take(64).collect::<String>()))
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(id: &str) -> Result<Self, String> {
                $name::parse(id)
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

typed_id!(
    /// A destination (buyer endpoint) as the configuration names it.
    DestinationId
);
typed_id!(
    /// A partner (lead seller) as the configuration names it.
    PartnerId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_configuration_rule_everywhere_they_are_read() {
        assert!(DestinationId::parse("heloc-lender_2").is_ok());
        for bad in ["", "a b", "ä", "x/y", &"x".repeat(65)] {
            assert!(DestinationId::parse(bad).is_err(), "{bad:?}");
            assert!(serde_json::from_value::<PartnerId>(serde_json::json!(bad)).is_err());
        }
        let id: DestinationId = serde_json::from_str("\"sonar\"").expect("an id");
        assert_eq!(id, "sonar");
        assert_eq!(serde_json::to_string(&id).expect("json"), "\"sonar\"");
        let map = std::collections::BTreeMap::from([(id.clone(), 1)]);
        assert_eq!(map.get("sonar"), Some(&1), "looked up by &str");
    }
}
