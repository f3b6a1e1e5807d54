//! Keeps each vertical's published JSON Schema in step with its parser: for every property the schema
//! lists (recursively, into objects and arrays of objects present in the example), the parser must agree
//! on requiredness, type, enum values, length limits and unknown fields.

use serde_json::{json, Value};

use super::{FieldError, Vertical};

fn errors_at(vertical: Vertical, lead: &Value, path: &str) -> Vec<FieldError> {
    match vertical.parse_value(lead) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .0
            .into_iter()
            .filter(|e| {
                e.field == path
                    || e.field.starts_with(&format!("{path}."))
                    || e.field.starts_with(&format!("{path}["))
            })
            .collect(),
    }
}

fn pointer_of(path: &[String]) -> String {
    path.iter().map(|p| format!("/{p}")).collect()
}

fn field_of(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

fn with(example: &Value, pointer: &str, value: Option<Value>) -> Value {
    let mut lead = example.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    if let Some(target) = lead.pointer_mut(parent) {
        match (target, value) {
            (Value::Object(object), Some(value)) => {
                object.insert(key.to_owned(), value);
            }
            (Value::Object(object), None) => {
                object.remove(key);
            }
            (Value::Array(items), Some(value)) => {
                if let Ok(index) = key.parse::<usize>() {
                    items[index] = value;
                }
            }
            _ => {}
        }
    }
    lead
}

fn wrong_type(schema: &Value) -> Value {
    match schema["type"].as_str() {
        Some("string") => json!(12345),
        Some("object") | Some("array") | Some("integer") | Some("number") | Some("boolean") => {
            json!("not-the-right-type")
        }
        _ => json!(12345),
    }
}

/// Check `vertical`'s schema against its parser, panicking with every disagreement.
pub fn assert_in_step(vertical: Vertical) {
    let example = vertical.example();
    if let Err(errors) = vertical.parse_value(&example) {
        panic!("{vertical}: the example must be valid: {errors:?}");
    }
    let schema = vertical.schema();
    let mut problems = Vec::new();
    check_object(vertical, &example, &schema, &mut Vec::new(), &mut problems);
    assert!(
        problems.is_empty(),
        "{vertical}: schema and parser disagree:\n{}",
        problems.join("\n")
    );
}

fn check_object(
    vertical: Vertical,
    example: &Value,
    schema: &Value,
    path: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    // Unknown fields are refused unless the object is an open bag.
    if schema["additionalProperties"] == json!(false) {
        path.push("zzUnknownField".into());
        let lead = with(example, &pointer_of(path), Some(json!("x")));
        let field = field_of(path);
        if !errors_at(vertical, &lead, &field)
            .iter()
            .any(|e| e.code == "unknown_field")
        {
            problems.push(format!("{field}: an unknown field is not refused"));
        }
        path.pop();
    } else {
        problems.push(format!(
            "{}: the schema must say additionalProperties: false",
            field_of(path)
        ));
    }
    for name in required.iter() {
        if !properties.contains_key(*name) {
            problems.push(format!(
                "{}: required `{name}` is not a property",
                field_of(path)
            ));
        }
    }
    for (name, property) in properties {
        path.push(name.clone());
        let pointer = pointer_of(path);
        let field = field_of(path);
        let present = example.pointer(&pointer).is_some();
        if !present {
            if required.contains(&name.as_str()) {
                problems.push(format!("{field}: required but absent from the example"));
            }
            // An optional property the example lacks: at least its type must be checked.
            let lead = with(example, &pointer, Some(wrong_type(property)));
            if errors_at(vertical, &lead, &field).is_empty() && property["type"].is_string() {
                problems.push(format!("{field}: a value of the wrong type is accepted"));
            }
            path.pop();
            continue;
        }
        // Requiredness.
        let without = with(example, &pointer, None);
        let missing = errors_at(vertical, &without, &field);
        let is_required = missing
            .iter()
            .any(|e| e.field == field && e.code == "required");
        if required.contains(&name.as_str()) != is_required {
            problems.push(format!(
                "{field}: the schema says {}required, the parser {}",
                if required.contains(&name.as_str()) {
                    ""
                } else {
                    "not "
                },
                if is_required {
                    "requires it"
                } else {
                    "does not"
                }
            ));
        }
        // Type.
        if property["type"].is_string() {
            let lead = with(example, &pointer, Some(wrong_type(property)));
            if errors_at(vertical, &lead, &field).is_empty() {
                problems.push(format!("{field}: a value of the wrong type is accepted"));
            }
        }
        // Enums: every value accepted, others refused.
        if let Some(values) = property["enum"].as_array() {
            for value in values {
                let lead = with(example, &pointer, Some(value.clone()));
                if errors_at(vertical, &lead, &field)
                    .iter()
                    .any(|e| e.field == field)
                {
                    problems.push(format!("{field}: enum value {value} is refused"));
                }
            }
            let outside = if property["type"] == "string" {
                json!("zzNotAnEnumValue")
            } else {
                json!(987_654)
            };
            let lead = with(example, &pointer, Some(outside));
            if errors_at(vertical, &lead, &field).is_empty() {
                problems.push(format!("{field}: a value outside the enum is accepted"));
            }
        }
        // Length limits.
        if let Some(max) = property["maxLength"].as_u64() {
            let lead = with(example, &pointer, Some(json!("a".repeat(max as usize + 1))));
            if errors_at(vertical, &lead, &field).is_empty() {
                problems.push(format!(
                    "{field}: a string longer than maxLength {max} is accepted"
                ));
            }
        }
        if let Some(max) = property["maxItems"].as_u64() {
            let item = example
                .pointer(&format!("{pointer}/0"))
                .cloned()
                .unwrap_or(json!("x"));
            let lead = with(
                example,
                &pointer,
                Some(Value::Array(vec![item; max as usize + 1])),
            );
            if errors_at(vertical, &lead, &field).is_empty() {
                problems.push(format!(
                    "{field}: an array longer than maxItems {max} is accepted"
                ));
            }
        }
        // Recurse.
        match property["type"].as_str() {
            Some("object") => check_object(vertical, example, property, path, problems),
            Some("array") => {
                let items = &property["items"];
                if example.pointer(&format!("{pointer}/0")).is_some() {
                    path.push("0".into());
                    if items["type"] == "object" {
                        check_object(vertical, example, items, path, problems);
                    } else if items["type"].is_string() {
                        let item_field = field_of(path);
                        let lead = with(example, &pointer_of(path), Some(wrong_type(items)));
                        if errors_at(vertical, &lead, &item_field).is_empty() {
                            problems.push(format!(
                                "{item_field}: an item of the wrong type is accepted"
                            ));
                        }
                        if let Some(values) = items["enum"].as_array() {
                            for value in values {
                                let lead = with(example, &pointer_of(path), Some(value.clone()));
                                if !errors_at(vertical, &lead, &item_field).is_empty() {
                                    problems.push(format!(
                                        "{item_field}: enum value {value} is refused"
                                    ));
                                }
                            }
                        }
                        if let Some(max) = items["maxLength"].as_u64() {
                            let lead = with(
                                example,
                                &pointer_of(path),
                                Some(json!("1".repeat(max as usize + 1))),
                            );
                            if errors_at(vertical, &lead, &item_field).is_empty() {
                                problems.push(format!(
                                    "{item_field}: an item longer than maxLength {max} is accepted"
                                ));
                            }
                        }
                    }
                    path.pop();
                }
            }
            _ => {}
        }
        path.pop();
    }
}
