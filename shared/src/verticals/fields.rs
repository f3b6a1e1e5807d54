//! Field errors, an error-collecting reader over JSON objects, and the typed values every vertical shares:
//! emails, US phone numbers (E.164), state codes and ZIP codes. Once a value of these types exists, it is valid.

use serde::Serialize;
use serde_json::{Map, Value};

/// One problem with one field. `message` never repeats the submitted value, so it never echoes PII.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field, `address.unitNumber`; empty for the body as a whole.
    pub field: String,
    /// Stable machine-readable code: `required`, `invalid_type`, `invalid_value`, `invalid_format`,
    /// `out_of_range`, `too_long`, `unknown_field`, `invalid_json`.
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// Every problem found in one lead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn one(error: FieldError) -> Self {
        FieldErrors(vec![error])
    }

    pub fn push(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// For a parser whose every missing piece already recorded an error: should one still be missing,
    /// report it rather than panic.
    pub fn unreadable() -> Self {
        FieldErrors::one(FieldError::new(
            ROOT,
            "invalid_value",
            "the lead could not be read",
        ))
    }
}

/// The field name of the body as a whole (JSONPath's root).
pub const ROOT: &str = "$";

/// The longest free-text value the hub takes in any field, unless a vertical says otherwise.
pub const MAX_TEXT_LEN: usize = 255;

/// `parent.child` paths.
pub fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// Every string in a lead (at any depth, open bags such as solar's `extra_data` included) that holds a
/// control character (`char::is_control`, Unicode's `Cc`: C0 U+0000 to U+001F with NUL, tab and line breaks, DEL
/// U+007F and C1 U+0080 to U+009F), as an `invalid_value` error naming its field (`contactInfo.firstName`,
/// `extra_data.items[2]`). No vertical has a multi-line field, so tabs and line breaks are refused too; a
/// buyer's API must never receive a NUL or an escape sequence from a seller. Object keys with control
/// characters are reported at their object (the key itself is not echoed). The value is never repeated.
pub fn control_characters(value: &Value) -> FieldErrors {
    fn walk(value: &Value, path: &mut String, errors: &mut FieldErrors) {
        match value {
            Value::String(s) if s.chars().any(char::is_control) => {
                let field = if path.is_empty() { ROOT } else { path.as_str() };
                errors.push(
                    field,
                    "invalid_value",
                    "must not contain control characters (U+0000 to U+001F, U+007F to U+009F)",
                );
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path, errors);
                    path.truncate(len);
                }
            }
            Value::Object(object) => {
                for (key, item) in object {
                    if key.chars().any(char::is_control) {
                        let field = if path.is_empty() { ROOT } else { path.as_str() };
                        errors.push(
                            field,
                            "invalid_value",
                            "a field name in this object contains control characters",
                        );
                        continue;
                    }
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    walk(item, path, errors);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut errors = FieldErrors::default();
    walk(value, &mut String::new(), &mut errors);
    errors
}

/// How an error message names a JSON value's type.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON number as a finite `f64` ([`ObjectReader::number`]'s rule).
pub fn finite_number(n: &serde_json::Number) -> Option<f64> {
    n.as_f64().filter(|f| f.is_finite())
}

/// A JSON number without a fractional part as an `i64` ([`ObjectReader::integer`]'s rule): an integer, or a
/// whole float below 9e15 in magnitude (`2.0`).
pub fn whole_number(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// Reads the fields of one JSON object, recording every problem in a shared error list, and finally
/// reports any field it was never asked for as `unknown_field`.
pub struct ObjectReader<'a> {
    object: &'a Map<String, Value>,
    path: String,
    /// The keys of `object` some reader asked for (each once): usually all of them.
    claimed: Vec<&'static str>,
    /// Why a known-but-refused field is refused (instead of the generic message).
    explain: Option<fn(&str) -> Option<&'static str>>,
}

impl<'a> ObjectReader<'a> {
    /// The object at `path`, or an `invalid_type` error when `value` is not an object.
    pub fn new(value: &'a Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        match value {
            Value::Object(object) => Some(ObjectReader {
                object,
                path: path.to_owned(),
                claimed: Vec::new(),
                explain: None,
            }),
            other => {
                let field = if path.is_empty() { ROOT } else { path };
                let what = if path.is_empty() {
                    "the body"
                } else {
                    "this field"
                };
                errors.push(
                    field,
                    "invalid_type",
                    format!("{what} must be a JSON object, not {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn path(&self, name: &str) -> String {
        join(&self.path, name)
    }

    /// The raw value of `name`, treating JSON `null` as absent.
    pub fn get(&mut self, name: &'static str) -> Option<&'a Value> {
        let value = self.object.get(name)?;
        if !self.claimed.contains(&name) {
            self.claimed.push(name);
        }
        (!value.is_null()).then_some(value)
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value, errors: &mut FieldErrors) {
        errors.push(
            &self.path(name),
            "invalid_type",
            format!("must be {expected}, not {}", type_name(got)),
        );
    }

    pub fn required(&self, name: &str, errors: &mut FieldErrors) {
        errors.push(&self.path(name), "required", "is required");
    }

    /// A trimmed, non-empty string of at most `max` characters.
    pub fn string(
        &mut self,
        name: &'static str,
        required: bool,
        max: usize,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        match self.get(name) {
            None if required => {
                self.required(name, errors);
                None
            }
            None => None,
            Some(Value::String(s)) => {
                let trimmed = s.trim();
                if trimmed.is_empty() {
                    if required {
                        errors.push(&self.path(name), "required", "must not be empty");
                    }
                    None
                } else if trimmed.chars().count() > max {
                    errors.push(
                        &self.path(name),
                        "too_long",
                        format!("must be at most {max} characters"),
                    );
                    None
                } else {
                    Some(trimmed.to_owned())
                }
            }
            Some(other) => {
                self.wrong_type(name, "a string", other, errors);
                None
            }
        }
    }

    pub fn boolean(
        &mut self,
        name: &'static str,
        required: bool,
        errors: &mut FieldErrors,
    ) -> Option<bool> {
        match self.get(name) {
            None if required => {
                self.required(name, errors);
                None
            }
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.wrong_type(name, "a boolean (true or false)", other, errors);
                None
            }
        }
    }

    /// A finite JSON number.
    pub fn number(
        &mut self,
        name: &'static str,
        required: bool,
        errors: &mut FieldErrors,
    ) -> Option<f64> {
        match self.get(name) {
            None if required => {
                self.required(name, errors);
                None
            }
            None => None,
            Some(Value::Number(n)) => match finite_number(n) {
                Some(f) => Some(f),
                None => {
                    errors.push(&self.path(name), "invalid_value", "must be a finite number");
                    None
                }
            },
            Some(other) => {
                self.wrong_type(name, "a number", other, errors);
                None
            }
        }
    }

    /// A whole number (a JSON number without a fractional part).
    pub fn integer(
        &mut self,
        name: &'static str,
        required: bool,
        errors: &mut FieldErrors,
    ) -> Option<i64> {
        match self.get(name) {
            None if required => {
                self.required(name, errors);
                None
            }
            None => None,
            Some(Value::Number(n)) => {
                let whole = whole_number(n);
                if whole.is_none() {
                    errors.push(&self.path(name), "invalid_type", "must be a whole number");
                }
                whole
            }
            Some(other) => {
                self.wrong_type(name, "a whole number", other, errors);
                None
            }
        }
    }

    /// One of `allowed`, spelled exactly.
    pub fn one_of<T: Copy>(
        &mut self,
        name: &'static str,
        required: bool,
        allowed: &[(&str, T)],
        errors: &mut FieldErrors,
    ) -> Option<T> {
        match self.get(name) {
            None if required => {
                self.required(name, errors);
                None
            }
            None => None,
            Some(Value::String(s)) => match allowed.iter().find(|(spelling, _)| *spelling == s) {
                Some((_, value)) => Some(*value),
                None => {
                    let names: Vec<&str> = allowed.iter().map(|(spelling, _)| *spelling).collect();
                    errors.push(
                        &self.path(name),
                        "invalid_value",
                        format!("must be one of: {}", names.join(", ")),
                    );
                    None
                }
            },
            Some(other) => {
                self.wrong_type(name, "a string", other, errors);
                None
            }
        }
    }

    /// A nested object, read by `read` with its own reader (whose unknown fields are reported too).
    pub fn object<T>(
        &mut self,
        name: &'static str,
        required: bool,
        errors: &mut FieldErrors,
        read: impl FnOnce(&mut ObjectReader<'a>, &mut FieldErrors) -> Option<T>,
    ) -> Option<T> {
        let path = self.path(name);
        match self.get(name) {
            None if required => {
                self.required(name, errors);
                None
            }
            None => None,
            Some(value) => {
                let mut reader = ObjectReader::new(value, &path, errors)?;
                let result = read(&mut reader, errors);
                reader.finish(errors);
                result
            }
        }
    }

    /// An array of at most `max_items` items, each read by `read_item` with its path (`name[i]`).
    /// Every item is read, so every bad item is reported.
    pub fn array<T>(
        &mut self,
        name: &'static str,
        required: bool,
        max_items: usize,
        errors: &mut FieldErrors,
        mut read_item: impl FnMut(&'a Value, &str, &mut FieldErrors) -> Option<T>,
    ) -> Option<Vec<T>> {
        let path = self.path(name);
        match self.get(name) {
            None if required => {
                self.required(name, errors);
                None
            }
            None => None,
            Some(Value::Array(items)) => {
                if items.len() > max_items {
                    errors.push(
                        &path,
                        "too_long",
                        format!("must have at most {max_items} items"),
                    );
                    return None;
                }
                let before = errors.0.len();
                let read: Vec<Option<T>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| read_item(item, &format!("{path}[{i}]"), errors))
                    .collect();
                if errors.0.len() > before {
                    return None;
                }
                read.into_iter().collect()
            }
            Some(other) => {
                self.wrong_type(name, "an array", other, errors);
                None
            }
        }
    }

    /// Explain some unknown fields with their own message (fields of the source schema that are refused on
    /// purpose). Costs nothing unless an unknown field is present.
    pub fn explain_unknown(&mut self, explain: fn(&str) -> Option<&'static str>) {
        self.explain = Some(explain);
    }

    /// Report every field of the object that no reader asked for.
    pub fn finish(self, errors: &mut FieldErrors) {
        if self.claimed.len() == self.object.len() {
            return;
        }
        for name in self.object.keys() {
            if !self.claimed.contains(&name.as_str()) {
                let message = self
                    .explain
                    .and_then(|explain| explain(name))
                    .unwrap_or("is not a field of this schema");
                errors.push(&join(&self.path, name), "unknown_field", message);
            }
        }
    }

    /// Parse a string field into a typed value.
    pub fn parsed<T>(
        &mut self,
        name: &'static str,
        required: bool,
        errors: &mut FieldErrors,
        parse: impl FnOnce(&str) -> Result<T, &'static str>,
    ) -> Option<T> {
        let raw = self.string(name, required, MAX_TEXT_LEN, errors)?;
        match parse(&raw) {
            Ok(value) => Some(value),
            Err(message) => {
                errors.push(&self.path(name), "invalid_format", message);
                None
            }
        }
    }
}

/// A trimmed, non-empty string item of at most `max` characters (for arrays of strings).
pub fn string_item(
    value: &Value,
    path: &str,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<String> {
    match value {
        Value::String(s) if s.trim().is_empty() => {
            errors.push(path, "required", "must not be empty");
            None
        }
        Value::String(s) if s.trim().chars().count() > max => {
            errors.push(
                path,
                "too_long",
                format!("must be at most {max} characters"),
            );
            None
        }
        Value::String(s) => Some(s.trim().to_owned()),
        other => {
            errors.push(
                path,
                "invalid_type",
                format!("must be a string, not {}", type_name(other)),
            );
            None
        }
    }
}

/// An object item of an array, read by `read` with its own reader.
pub fn object_item<'a, T>(
    value: &'a Value,
    path: &str,
    errors: &mut FieldErrors,
    read: impl FnOnce(&mut ObjectReader<'a>, &mut FieldErrors) -> Option<T>,
) -> Option<T> {
    let mut reader = ObjectReader::new(value, path, errors)?;
    let result = read(&mut reader, errors);
    reader.finish(errors);
    result
}

/// An email address in a practical RFC 5321 shape: `local@domain.tld`, at most 254 characters.
/// The original spelling is kept for delivery; [`Email::normalized`] is trimmed and lower-cased for matching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const RULE: &'static str = "must be a valid email address";

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Self::RULE);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(Self::RULE)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels.last().is_some_and(|tld| {
                // Letters, or an internationalised top-level domain in its ASCII form (`xn--p1ai`).
                tld.len() >= 2
                    && (tld.chars().all(|c| c.is_ascii_alphabetic())
                        || tld.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--")))
            });
        if local_ok && domain_ok {
            Ok(Email(s.to_owned()))
        } else {
            Err(Self::RULE)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Trimmed and lower-cased: the form used for duplicate matching.
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A US (NANP) phone number in E.164 form: `+1` and ten digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub const RULE: &'static str =
        "must be a US phone number of 10 digits (optionally +1), using only digits, spaces, dots, dashes and parentheses";

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let mut digits = String::with_capacity(11);
        for c in raw.trim().chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                '+' if digits.is_empty() => {}
                _ => return Err(Self::RULE),
            }
        }
        let national = match digits.len() {
            10 => digits.as_str(),
            11 if digits.starts_with('1') => &digits[1..],
            _ => return Err(Self::RULE),
        };
        let bytes = national.as_bytes();
        // NANP: area code and exchange both start with 2-9.
        if bytes[0] < b'2' || bytes[3] < b'2' {
            return Err(Self::RULE);
        }
        Ok(Phone(format!("+1{national}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// US states, the District of Columbia and the inhabited territories (USPS codes).
pub const US_STATE_CODES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "VI", "GU", "AS", "MP",
];

/// A 2-letter USPS state or territory code, upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StateCode(String);

impl StateCode {
    pub const RULE: &'static str = "must be a 2-letter US state or territory code";

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let upper = raw.trim().to_ascii_uppercase();
        if US_STATE_CODES.contains(&upper.as_str()) {
            Ok(StateCode(upper))
        } else {
            Err(Self::RULE)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A US ZIP code: five digits, or ZIP+4 kept as `12345-6789`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Zip(String);

impl Zip {
    pub const RULE: &'static str = "must be a US ZIP code: 5 digits, or ZIP+4 as 12345-6789";

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        let digits: String = s.chars().filter(|c| *c != '-' && *c != ' ').collect();
        let shape_ok = match s.len() {
            5 | 9 => s.chars().all(|c| c.is_ascii_digit()),
            10 => s.as_bytes()[5] == b'-' || s.as_bytes()[5] == b' ',
            _ => false,
        };
        if !shape_ok || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(Self::RULE);
        }
        match digits.len() {
            5 => Ok(Zip(digits)),
            9 => Ok(Zip(format!("{}-{}", &digits[..5], &digits[5..]))),
            _ => Err(Self::RULE),
        }
    }

    /// The 5-digit ZIP.
    pub fn five(&self) -> &str {
        &self.0[..5]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_at_any_depth_and_named_by_path() {
        let value = serde_json::json!({
            "a": "fine",
            "b": {"c": "bad\u{0}", "d": ["ok", "also\u{9f}bad", {"e": "\t"}]},
            "f": 3,
            "g\u{1}": "a key with one",
            "h": "Zoë \u{200b}"
        });
        let fields: Vec<String> = control_characters(&value)
            .into_vec()
            .into_iter()
            .map(|e| format!("{}:{}", e.field, e.code))
            .collect();
        assert_eq!(
            fields,
            [
                "b.c:invalid_value",
                "b.d[1]:invalid_value",
                "b.d[2].e:invalid_value",
                "$:invalid_value"
            ]
        );
        assert!(control_characters(&serde_json::json!("\u{7}")).0[0].field == ROOT);
        assert!(control_characters(&serde_json::json!({"x": ["a", 1, null, true]})).is_empty());
    }

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "John.Doe+tag@Example.COM",
            " x_y@sub.domain.org ",
            "user@example.xn--p1ai",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "plain", "@b.co", "a@", "a@b", "a@b.c", "a b@c.co", "a@b..co", ".a@b.co",
            "a.@b.co", "a@-b.co", "a@b.c0", "a@@b.co",
        ] {
            assert_eq!(Email::parse(bad), Err(Email::RULE), "{bad}");
        }
        assert_eq!(
            Email::parse(" John.Doe@Example.COM").map(|e| e.normalized()),
            Ok("john.doe@example.com".to_owned())
        );
    }

    #[test]
    fn phones_become_e164() {
        for (raw, e164) in [
            ("(727) 323-4567", "+17273234567"),
            ("727.323.4567", "+17273234567"),
            ("+1 727 323 4567", "+17273234567"),
            ("17273234567", "+17273234567"),
        ] {
            assert_eq!(
                Phone::parse(raw).map(|p| p.as_str().to_owned()),
                Ok(e164.to_owned())
            );
        }
        for bad in [
            "7271234567x",
            "999999999",
            "7271234567",
            "0271234567",
            "7270234567",
            "27271234567",
            "+44 20 7946 0958",
            "",
        ] {
            assert_eq!(Phone::parse(bad), Err(Phone::RULE), "{bad}");
        }
    }

    #[test]
    fn states_and_zips() {
        assert_eq!(
            StateCode::parse("ca").map(|s| s.as_str().to_owned()),
            Ok("CA".to_owned())
        );
        assert_eq!(
            StateCode::parse("PR").map(|s| s.as_str().to_owned()),
            Ok("PR".to_owned())
        );
        for bad in ["C", "CA3", "XX", "California", ""] {
            assert_eq!(StateCode::parse(bad), Err(StateCode::RULE), "{bad}");
        }
        assert_eq!(
            Zip::parse("90001").map(|z| z.as_str().to_owned()),
            Ok("90001".to_owned())
        );
        assert_eq!(
            Zip::parse("90001-1234").map(|z| z.as_str().to_owned()),
            Ok("90001-1234".to_owned())
        );
        assert_eq!(
            Zip::parse("900011234").map(|z| z.five().to_owned()),
            Ok("90001".to_owned())
        );
        for bad in ["9000", "900012", "9000A", "90001-12", "ABCDE", ""] {
            assert_eq!(Zip::parse(bad), Err(Zip::RULE), "{bad}");
        }
    }
}
