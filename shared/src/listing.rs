//! `GET /v1/leads?since=&status=&limit=&cursor=`: the query a partner's listing of its own leads takes, and
//! its opaque cursor.
//!
//! - `since`: an RFC 3339 time (`2026-12-02T10:00:00Z`, `2026-12-02T12:00:00+02:00`); leads created at or
//!   after it. A `+` of the offset sent unencoded arrives as a space and is read back as `+`.
//! - `status`: one of the lead statuses ([`LeadStatus::ALL`]).
//! - `limit`: 1 to [`MAX_PAGE`], default [`DEFAULT_LIMIT`].
//! - `cursor`: the `nextCursor` of the previous page. It is `<base64url(created millis "." lead id)>.<base64url
//!   HMAC>`, the HMAC under the hub's hash key binding the position to the partner: a cursor of another
//!   partner, or one altered or made up, is refused (400 naming `cursor`) and tells nothing.
//!
//! Every problem is a [`FieldError`] naming its parameter; a parameter given twice, or one the listing does
//! not take (a typo must not silently widen the listing), is refused too. No message repeats a value.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use crate::crypto::KeyedHasher;
use crate::lead::{LeadId, LeadStatus};
use crate::store::lead_listing::MAX_PAGE;
use crate::store::{LeadListQuery, ListPosition};
use crate::verticals::FieldError;

/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 25;

/// The query parameters the listing takes.
pub const PARAMETERS: [&str; 4] = ["since", "status", "limit", "cursor"];

const CURSOR_LABEL: &str = "lead-listing-cursor-v1";

/// The cursor that resumes `partner_id`'s listing after `position`.
pub fn cursor(hasher: &KeyedHasher, partner_id: &str, position: &ListPosition) -> String {
    let payload = format!(
        "{}.{}",
        position.created_at.timestamp_millis(),
        position.lead_id
    );
    let mac = hasher.digest(&[CURSOR_LABEL, partner_id, &payload]);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(mac)
    )
}

/// The position a cursor names, if this hub issued it to `partner_id`.
pub fn read_cursor(hasher: &KeyedHasher, partner_id: &str, cursor: &str) -> Option<ListPosition> {
    let (payload, mac) = cursor.split_once('.')?;
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    if !hasher.verify(&[CURSOR_LABEL, partner_id, &payload], &mac) {
        return None;
    }
    let (millis, lead_id) = payload.split_once('.')?;
    Some(ListPosition {
        created_at: DateTime::from_timestamp_millis(millis.parse().ok()?)?,
        lead_id: lead_id.parse::<LeadId>().ok()?,
    })
}

/// `since` as given: RFC 3339, with a space where the offset's `+` was (an unencoded `+` in a query string
/// is a space).
fn parse_since(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Some(at.with_timezone(&Utc));
    }
    // `2026-12-02T12:00:00 02:00`: the space past the date (10 characters) stood for `+`.
    let space = value.rfind(' ').filter(|&at| at > 10)?;
    let repaired = format!("{}+{}", &value[..space], &value[space + 1..]);
    DateTime::parse_from_rfc3339(&repaired)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// A parameter's name, as an error may name it: plainly a name, or `$query` for the query as a whole.
fn shown_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        name.to_owned()
    } else {
        "$query".to_owned()
    }
}

/// `partner_id`'s listing as asked for by the raw query string `query` (`None`: no query), or every
/// problem with it.
pub fn parse_query(
    query: Option<&str>,
    hasher: &KeyedHasher,
    partner_id: &str,
) -> Result<LeadListQuery, Vec<FieldError>> {
    let pairs: Vec<(String, String)> = match query.filter(|q| !q.is_empty()) {
        None => Vec::new(),
        Some(query) => reqwest::Url::parse(&format!("http://listing.invalid/?{query}"))
            .map(|url| url.query_pairs().into_owned().collect())
            .map_err(|_| {
                vec![FieldError::new(
                    "$query",
                    "invalid_format",
                    "the query string could not be read",
                )]
            })?,
    };
    let mut errors = Vec::new();
    let mut values: [Option<&str>; 4] = [None; 4];
    for (name, value) in &pairs {
        match PARAMETERS.iter().position(|known| known == name) {
            Some(index) if values[index].is_some() => errors.push(FieldError::new(
                name.as_str(),
                "invalid_value",
                "is given more than once",
            )),
            Some(index) => values[index] = Some(value.as_str()),
            None => errors.push(FieldError::new(
                shown_name(name),
                "unknown_field",
                "is not a parameter of the listing (since, status, limit, cursor)",
            )),
        }
    }
    let [since, status, limit, cursor] = values;
    let since = since.and_then(|value| {
        let parsed = parse_since(value);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "since",
                "invalid_format",
                "must be an RFC 3339 time, such as 2026-12-02T10:00:00Z",
            ));
        }
        parsed
    });
    let status = status.and_then(|value| match value.parse::<LeadStatus>() {
        Ok(status) => Some(status),
        Err(_) => {
            let allowed: Vec<&str> = LeadStatus::ALL.iter().map(|s| s.as_str()).collect();
            errors.push(FieldError::new(
                "status",
                "invalid_value",
                format!("must be one of: {}", allowed.join(", ")),
            ));
            None
        }
    });
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(value) => match value.trim().parse::<usize>() {
            Ok(limit) if (1..=MAX_PAGE).contains(&limit) => limit,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    "out_of_range",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                ));
                DEFAULT_LIMIT
            }
        },
    };
    let after = cursor.and_then(|value| {
        let position = read_cursor(hasher, partner_id, value.trim());
        if position.is_none() {
            errors.push(FieldError::new(
                "cursor",
                "invalid_value",
                "must be the nextCursor of an earlier page of this listing",
            ));
        }
        position
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(LeadListQuery {
        partner_id: partner_id.to_owned(),
        since,
        status,
        limit,
        after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> KeyedHasher {
        KeyedHasher::new(b"listing-test-key-0123456789abcdef")
    }

    fn position() -> ListPosition {
        let at = DateTime::from_timestamp_millis(1_764_669_600_123).expect("a time");
        ListPosition {
            created_at: at,
            lead_id: "lead_01KBF82CBVT1312NKWK1ZD21QX"
                .parse()
                .expect("a lead id"),
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect()
    }

    #[test]
    fn no_query_is_the_newest_page_of_the_default_size() {
        for query in [None, Some("")] {
            let parsed = parse_query(query, &hasher(), "p1").expect("valid");
            assert_eq!(
                parsed,
                LeadListQuery {
                    partner_id: "p1".into(),
                    since: None,
                    status: None,
                    limit: DEFAULT_LIMIT,
                    after: None,
                }
            );
        }
    }

    #[test]
    fn every_parameter_is_read() {
        let cursor = cursor(&hasher(), "p1", &position());
        let query = format!("since=2026-12-02T12%3A00%3A00%2B02%3A00&status=rejected_after_post&limit=100&cursor={cursor}");
        let parsed = parse_query(Some(&query), &hasher(), "p1").expect("valid");
        assert_eq!(
            parsed.since,
            DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
                .ok()
                .map(|t| t.with_timezone(&Utc))
        );
        assert_eq!(parsed.status, Some(LeadStatus::RejectedAfterPost));
        assert_eq!(parsed.limit, 100);
        assert_eq!(parsed.after, Some(position()));
    }

    #[test]
    fn an_unencoded_plus_of_the_offset_is_read_as_plus() {
        for (given, utc) in [
            ("2026-12-02T12:00:00+02:00", "2026-12-02T10:00:00Z"),
            ("2026-12-02T10:00:00Z", "2026-12-02T10:00:00Z"),
            ("2026-12-02 10:00:00Z", "2026-12-02T10:00:00Z"),
            ("2026-12-02T08:00:00-02:00", "2026-12-02T10:00:00Z"),
        ] {
            let parsed = parse_query(Some(&format!("since={given}")), &hasher(), "p1")
                .unwrap_or_else(|e| panic!("{given}: {e:?}"));
            assert_eq!(
                parsed.since.map(|t| t.to_rfc3339()),
                Some(
                    DateTime::parse_from_rfc3339(utc)
                        .expect("a time")
                        .with_timezone(&Utc)
                        .to_rfc3339()
                ),
                "{given}"
            );
        }
    }

    #[test]
    fn bad_values_name_their_parameter_and_never_repeat_the_value() {
        let rows: &[(&str, (&str, &str))] = &[
            ("since=yesterday", ("since", "invalid_format")),
            ("since=2026-12-02", ("since", "invalid_format")),
            ("status=gone", ("status", "invalid_value")),
            ("status=", ("status", "invalid_value")),
            ("limit=0", ("limit", "out_of_range")),
            ("limit=101", ("limit", "out_of_range")),
            ("limit=-1", ("limit", "out_of_range")),
            ("limit=ten", ("limit", "out_of_range")),
            ("cursor=garbage", ("cursor", "invalid_value")),
            ("cursor=", ("cursor", "invalid_value")),
            ("statuss=delivered", ("statuss", "unknown_field")),
            ("limit=1&limit=2", ("limit", "invalid_value")),
            ("%3Cscript%3E=1", ("$query", "unknown_field")),
        ];
        for (query, expected) in rows {
            let errors = parse_query(Some(query), &hasher(), "p1").expect_err(query);
            assert_eq!(fields(&errors), vec![*expected], "{query}");
            for error in &errors {
                for secret in ["yesterday", "gone", "garbage", "ten", "script"] {
                    assert!(!error.message.contains(secret), "{query}: {error:?}");
                }
            }
        }
        let status = parse_query(Some("status=gone"), &hasher(), "p1").expect_err("bad");
        for allowed in LeadStatus::ALL {
            assert!(status[0].message.contains(allowed.as_str()), "{status:?}");
        }
        let all = parse_query(Some("since=x&status=y&limit=0&cursor=z"), &hasher(), "p1")
            .expect_err("bad");
        assert_eq!(
            fields(&all),
            vec![
                ("since", "invalid_format"),
                ("status", "invalid_value"),
                ("limit", "out_of_range"),
                ("cursor", "invalid_value")
            ],
            "every problem at once"
        );
    }

    #[test]
    fn a_cursor_is_bound_to_its_partner_and_cannot_be_altered() {
        let issued = cursor(&hasher(), "p1", &position());
        assert_eq!(read_cursor(&hasher(), "p1", &issued), Some(position()));
        assert_eq!(
            read_cursor(&hasher(), "p2", &issued),
            None,
            "another partner"
        );
        let other_key = KeyedHasher::new(b"another-key-0123456789abcdef-0000");
        assert_eq!(read_cursor(&other_key, "p1", &issued), None, "another hub");
        // The same position for another lead, with the MAC of the first: refused.
        let (_, mac) = issued.split_once('.').expect("two parts");
        let forged_payload = format!(
            "{}.{}",
            position().created_at.timestamp_millis(),
            LeadId::generate(position().created_at)
        );
        let forged = format!("{}.{mac}", URL_SAFE_NO_PAD.encode(forged_payload));
        assert_eq!(read_cursor(&hasher(), "p1", &forged), None);
        assert_eq!(read_cursor(&hasher(), "p1", "a.b.c"), None);
        assert_eq!(read_cursor(&hasher(), "p1", ""), None);
    }
}
