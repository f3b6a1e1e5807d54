//! Placeholder: being written.

use super::{FieldError, FieldErrors, ParsedLead};

pub fn parse(_value: &serde_json::Value) -> Result<ParsedLead, FieldErrors> {
    Err(FieldErrors::one(FieldError::new(
        "$",
        "not_implemented",
        "not yet",
    )))
}

pub fn schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "additionalProperties": false, "properties": {}})
}

pub fn example() -> serde_json::Value {
    serde_json::json!({})
}
