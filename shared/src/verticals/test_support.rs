//! Helpers of the vertical parsers' table tests.

use serde_json::{json, Value};

use super::fields::{FieldError, FieldErrors};

/// Set (or, with `null`, remove) the field at a dotted path, creating objects on the way.
pub fn set(value: &mut Value, path: &str, new: Value) {
    let mut target = value;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        target = target
            .as_object_mut()
            .expect("object")
            .entry(part.to_string())
            .or_insert_with(|| json!({}));
    }
    let object = target.as_object_mut().expect("object");
    let last = parts[parts.len() - 1];
    if new.is_null() {
        object.remove(last);
    } else {
        object.insert(last.to_owned(), new);
    }
}

/// The errors of a parse, none when it succeeded.
pub fn errors<T>(result: Result<T, FieldErrors>) -> Vec<FieldError> {
    result.err().map(FieldErrors::into_vec).unwrap_or_default()
}

/// The (field, code) of every error of a parse.
pub fn codes<T>(result: Result<T, FieldErrors>) -> Vec<(String, String)> {
    errors(result)
        .into_iter()
        .map(|error| (error.field, error.code))
        .collect()
}
