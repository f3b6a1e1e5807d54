//! The operator's suppression list: SSNs, emails and phones that must not be sold, each with a reason and
//! the dates it holds. Pure: values, records, the CSV import; the records live behind the
//! [`Suppressions`] port, and [`active_match`] is what screening asks.
//!
//! # Values are kept only as keyed hashes
//!
//! A value is normalised ([`normalize`]) and hashed under the hub's hash key ([`hash`]): the list holds
//! `HMAC(kind, normalised value)`, never the value. The hash of an SSN is the lead's own `ssn_hash` (ingest
//! computes `hasher.hex(&["ssn", digits])`), so screening probes with what the lead already holds; for a
//! lead's email and phone it calls [`normalize`] and [`hash`] itself. No error of this module repeats a
//! value: not the one being parsed, nor any cell of a CSV row (a shifted row can put an SSN under any
//! column).
//!
//! Normal forms:
//! - SSN: 9 ASCII digits, dashes and spaces dropped (`123-45-6789`, `123 45 6789`), as
//!   [`Ssn::parse`] takes them. No "issuable" check: LeadSafe's own sample lists `910910910`.
//! - email: trimmed and lower-cased; exactly one `@` with text on both sides, no spaces or control
//!   characters inside.
//! - phone: a US number as its 10 digits: every non-digit dropped, and the leading `1` of an 11-digit number
//!   (`+1 (555) 201-0000` is `5552010000`, as is a lead's E.164 `+15552010000`).
//!
//! # Records and their dates
//!
//! A [`SuppressionRecord`] says that the holder of a value entered the status `reason` on `start_date`
//! and, if `end_date` is set, left it on `end_date` (LeadSafe's words: "EndDate ... specifies the date on
//! which the customer left the status"). So a record is active from its start date, inclusive, until its
//! end date, exclusive: `start_date <= today < end_date` ([`SuppressionRecord::is_active`]). A record that
//! ends the day it starts is never active.
//!
//! SSN records carry one of LeadSafe's nine reasons (they have LeadSafe's shape and can be sent on);
//! emails and phones may carry those or [`SuppressionReason::OptOut`] and
//! [`SuppressionReason::DoNotContact`].
//!
//! # CSV import
//!
//! [`SuppressionCsv`] reads a file row by row ([`parse_import`] collects it). The header line says which of
//! two formats it is:
//!
//! - LeadSafe's SFTP upload (seed 003): `ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason`; every
//!   row is an SSN record whose source is its client code.
//! - the simple form: `kind,value,start_date,end_date,reason`, `kind` being `ssn`, `email` or `phone`; the
//!   source is `import`.
//!
//! Header names are matched as spelled here (case matters), each may have surrounding whitespace, and the
//! file may start with a UTF-8 byte-order mark. Any other header is one error on line 1, and nothing is
//! read. Values are trimmed; dates are `YYYY-MM-DD`; `EndDate`/`end_date` may be empty, every other column
//! is required; fields may be quoted as CSV allows. Lines are counted from 1, the header being line 1. A
//! line that holds nothing is skipped. A bad row is refused with its line, the column (as the header spells
//! it) and the first problem found: a missing column first (the row has fewer fields than the header: the
//! first missing one is named), then each column in order, then the end before the start (on the end date's
//! column) and an email/phone-only reason on an SSN (on the reason's column). A row with more fields than
//! the header is refused on the first extra field's number. Good rows are kept whatever the bad ones.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::connectors::leadsafe::{LeadSafeRecord, Reason, Ssn};
use crate::crypto::KeyedHasher;
use crate::store::{StoreError, Suppressions};

/// What a suppressed value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuppressionKind {
    Ssn,
    Email,
    Phone,
}

impl SuppressionKind {
    pub const ALL: [SuppressionKind; 3] = [
        SuppressionKind::Ssn,
        SuppressionKind::Email,
        SuppressionKind::Phone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionKind::Ssn => "ssn",
            SuppressionKind::Email => "email",
            SuppressionKind::Phone => "phone",
        }
    }
}

impl fmt::Display for SuppressionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind that is not `ssn`, `email` or `phone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be ssn, email or phone")]
pub struct UnknownKind;

impl FromStr for SuppressionKind {
    type Err = UnknownKind;
    /// `ssn`, `email` or `phone`, as spelled.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SuppressionKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or(UnknownKind)
    }
}

const EMAIL_RULE: &str =
    "not an email address: it needs one @ with text on both sides and no spaces inside";
const PHONE_RULE: &str =
    "not a US phone number: it needs 10 digits, or 11 starting with 1 (other characters are ignored)";
const SSN_RULE: &str = "not an SSN: it needs 9 digits (dashes and spaces are ignored)";

/// The normal form of `raw` as a value of `kind` (see the module docs), or why it is not one. The error
/// never repeats the value.
pub fn normalize(kind: SuppressionKind, raw: &str) -> Result<String, &'static str> {
    match kind {
        SuppressionKind::Ssn => Ssn::parse(raw.trim())
            .map(|ssn| ssn.expose().to_owned())
            .map_err(|_| SSN_RULE),
        SuppressionKind::Email => {
            let email = raw.trim().to_lowercase();
            let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            }) && !email.chars().any(|c| c.is_whitespace() || c.is_control());
            if well_formed {
                Ok(email)
            } else {
                Err(EMAIL_RULE)
            }
        }
        SuppressionKind::Phone => {
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            match digits.len() {
                10 => Ok(digits),
                11 if digits.starts_with('1') => Ok(digits[1..].to_owned()),
                _ => Err(PHONE_RULE),
            }
        }
    }
}

/// The stored form of a normalised value: `hasher.hex(&[kind, normalized])`. For an SSN this is the lead's
/// `ssn_hash`.
pub fn hash(hasher: &KeyedHasher, kind: SuppressionKind, normalized: &str) -> String {
    hasher.hex(&[kind.as_str(), normalized])
}

/// Why a value is on the list: LeadSafe's nine reasons, spelled as LeadSafe spells them, and two of the
/// operator's own for emails and phones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SuppressionReason {
    Default,
    RevokePaymentAuth,
    Lawsuit,
    RegulatoryComplaint,
    DebtConsolidation,
    SuspectedIdTheft,
    Bankruptcy,
    Abusive,
    Deceased,
    /// The customer asked not to be contacted about offers (emails and phones only).
    OptOut,
    /// The customer must not be contacted at all (emails and phones only).
    DoNotContact,
}

impl SuppressionReason {
    pub const ALL: [SuppressionReason; 11] = [
        SuppressionReason::Default,
        SuppressionReason::RevokePaymentAuth,
        SuppressionReason::Lawsuit,
        SuppressionReason::RegulatoryComplaint,
        SuppressionReason::DebtConsolidation,
        SuppressionReason::SuspectedIdTheft,
        SuppressionReason::Bankruptcy,
        SuppressionReason::Abusive,
        SuppressionReason::Deceased,
        SuppressionReason::OptOut,
        SuppressionReason::DoNotContact,
    ];

    /// LeadSafe's reason of the same name; `None` for [`OptOut`](Self::OptOut) and
    /// [`DoNotContact`](Self::DoNotContact).
    pub fn leadsafe(self) -> Option<Reason> {
        Some(match self {
            SuppressionReason::Default => Reason::Default,
            SuppressionReason::RevokePaymentAuth => Reason::RevokePaymentAuth,
            SuppressionReason::Lawsuit => Reason::Lawsuit,
            SuppressionReason::RegulatoryComplaint => Reason::RegulatoryComplaint,
            SuppressionReason::DebtConsolidation => Reason::DebtConsolidation,
            SuppressionReason::SuspectedIdTheft => Reason::SuspectedIdTheft,
            SuppressionReason::Bankruptcy => Reason::Bankruptcy,
            SuppressionReason::Abusive => Reason::Abusive,
            SuppressionReason::Deceased => Reason::Deceased,
            SuppressionReason::OptOut | SuppressionReason::DoNotContact => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::OptOut => "OptOut",
            SuppressionReason::DoNotContact => "DoNotContact",
            leadsafe => leadsafe.leadsafe().map_or("", |reason| reason.as_str()),
        }
    }

    /// Whether a record of `kind` may carry this reason: an SSN only LeadSafe's nine, emails and phones any.
    pub fn allowed_for(self, kind: SuppressionKind) -> bool {
        kind != SuppressionKind::Ssn || self.leadsafe().is_some()
    }
}

impl From<Reason> for SuppressionReason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::Default => SuppressionReason::Default,
            Reason::RevokePaymentAuth => SuppressionReason::RevokePaymentAuth,
            Reason::Lawsuit => SuppressionReason::Lawsuit,
            Reason::RegulatoryComplaint => SuppressionReason::RegulatoryComplaint,
            Reason::DebtConsolidation => SuppressionReason::DebtConsolidation,
            Reason::SuspectedIdTheft => SuppressionReason::SuspectedIdTheft,
            Reason::Bankruptcy => SuppressionReason::Bankruptcy,
            Reason::Abusive => SuppressionReason::Abusive,
            Reason::Deceased => SuppressionReason::Deceased,
        }
    }
}

impl fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason that is not one of the eleven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a suppression reason: it must be one of LeadSafe's nine (Default, RevokePaymentAuth, Lawsuit, RegulatoryComplaint, DebtConsolidation, SuspectedIdTheft, Bankruptcy, Abusive, Deceased), or OptOut or DoNotContact for an email or phone")]
pub struct UnknownReason;

impl FromStr for SuppressionReason {
    type Err = UnknownReason;
    /// Exactly as spelled (`RevokePaymentAuth`, `OptOut`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SuppressionReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == s)
            .ok_or(UnknownReason)
    }
}

/// One entry of the list: the holder of the value hashed as `hash` entered `reason` on `start_date` and,
/// if `end_date` is set, left it on `end_date`. A record is identified by (`kind`, `hash`, `reason`,
/// `start_date`): stored again, it replaces the one before (its end date and source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionRecord {
    pub kind: SuppressionKind,
    /// [`hash`] of the normalised value.
    pub hash: String,
    pub reason: SuppressionReason,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    /// Who said so: the client code of a LeadSafe-format file, or `import`.
    pub source: String,
}

impl SuppressionRecord {
    /// Whether the record holds on `today`: `start_date <= today` and, when it has ended, `today <
    /// end_date` (the end date is the day the customer left the status, so it no longer holds that day).
    pub fn is_active(&self, today: NaiveDate) -> bool {
        self.start_date <= today && self.end_date.is_none_or(|end| today < end)
    }
}

/// A value named for removal: every record of it goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SuppressedValue {
    pub kind: SuppressionKind,
    /// [`hash`] of the normalised value.
    pub hash: String,
}

/// The first record, over `probes` in order (each a kind and a [`hash`]), that is active on `today`: what
/// screening asks with a lead's `ssn_hash` and its email and phone hashes. `None` when no probe is
/// suppressed today.
pub async fn active_match(
    store: &dyn Suppressions,
    probes: &[(SuppressionKind, String)],
    today: NaiveDate,
) -> Result<Option<SuppressionRecord>, StoreError> {
    for (kind, hash) in probes {
        let found = store.find_suppressions(*kind, hash).await?;
        if let Some(record) = found.into_iter().find(|record| record.is_active(today)) {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------------------
// CSV import.

/// LeadSafe's SFTP upload header (seed 003).
pub const LEADSAFE_HEADER: [&str; 5] = [
    "ClientCode",
    "SocialSecurityNumber",
    "StartDate",
    "EndDate",
    "Reason",
];

/// The simple form's header.
pub const SIMPLE_HEADER: [&str; 5] = ["kind", "value", "start_date", "end_date", "reason"];

/// The source of records read from a simple-form file.
pub const IMPORT_SOURCE: &str = "import";

/// Which of the two formats a file is, by its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvFormat {
    /// `ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason`: SSN records, source the client code.
    LeadSafe,
    /// `kind,value,start_date,end_date,reason`: any kind, source `import`.
    Simple,
}

impl CsvFormat {
    /// Its header's column names.
    pub fn header(self) -> [&'static str; 5] {
        match self {
            CsvFormat::LeadSafe => LEADSAFE_HEADER,
            CsvFormat::Simple => SIMPLE_HEADER,
        }
    }
}

/// A refused row (or header): where, and why. It never holds a value of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based; the header is line 1.
    pub line: u64,
    /// The column as the header spells it (`header` for the header line itself, a field number for a field
    /// past the header's last column).
    pub column: String,
    pub problem: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.problem
        )
    }
}

impl std::error::Error for RowError {}

/// A whole file read at once (for small files and tests; [`SuppressionCsv`] streams).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportParse {
    /// The good rows' records, in file order.
    pub records: Vec<SuppressionRecord>,
    /// The refused rows (or the header), in file order.
    pub errors: Vec<RowError>,
    /// Data rows read, good and bad (the header and empty lines are not counted).
    pub rows: u64,
}

/// Read a whole import file: every good row's record and every bad row's error.
pub fn parse_import<R: Read>(reader: R, hasher: &KeyedHasher) -> ImportParse {
    let mut csv = match SuppressionCsv::new(reader, hasher) {
        Ok(csv) => csv,
        Err(error) => {
            return ImportParse {
                errors: vec![error],
                ..ImportParse::default()
            }
        }
    };
    let mut parse = ImportParse::default();
    for row in csv.by_ref() {
        match row {
            Ok(record) => parse.records.push(record),
            Err(error) => parse.errors.push(error),
        }
    }
    parse.rows = csv.rows();
    parse
}

/// The problem of a header that is neither format's.
fn header_problem() -> String {
    format!(
        "the header must be `{}` (LeadSafe's upload) or `{}`",
        LEADSAFE_HEADER.join(","),
        SIMPLE_HEADER.join(",")
    )
}

/// An import file read row by row: the header is read by [`SuppressionCsv::new`]; then it is an iterator
/// of each row's record or error ([`SuppressionCsv::next_value`] reads rows for removal instead). A file
/// that cannot be read any further (an I/O error) gives one last error, on the line it stopped at.
pub struct SuppressionCsv<R> {
    reader: csv::Reader<R>,
    format: CsvFormat,
    hasher: KeyedHasher,
    row: csv::ByteRecord,
    rows: u64,
    done: bool,
}

impl<R: Read> fmt::Debug for SuppressionCsv<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SuppressionCsv")
            .field("format", &self.format)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// A row's fields, trimmed, as text; or the first column that is not UTF-8.
struct Fields<'a> {
    header: [&'static str; 5],
    fields: Vec<&'a str>,
    line: u64,
}

impl Fields<'_> {
    fn refuse(&self, column: usize, problem: impl Into<String>) -> RowError {
        RowError {
            line: self.line,
            column: self.header[column].to_owned(),
            problem: problem.into(),
        }
    }

    /// Column `index`'s value, required to be non-empty.
    fn required(&self, index: usize) -> Result<&str, RowError> {
        match self.fields[index] {
            "" => Err(self.refuse(index, "is empty: a value is required")),
            value => Ok(value),
        }
    }

    fn date(&self, index: usize) -> Result<NaiveDate, RowError> {
        parse_date(self.required(index)?).ok_or_else(|| {
            self.refuse(
                index,
                "not a date: dates are YYYY-MM-DD, such as 2024-01-05",
            )
        })
    }

    fn end_date(&self, index: usize, start: NaiveDate) -> Result<Option<NaiveDate>, RowError> {
        let end = match self.fields[index] {
            "" => None,
            _ => Some(self.date(index)?),
        };
        if end.is_some_and(|end| end < start) {
            return Err(self.refuse(index, "is before the start date"));
        }
        Ok(end)
    }

    fn value(&self, index: usize, kind: SuppressionKind) -> Result<String, RowError> {
        normalize(kind, self.required(index)?).map_err(|problem| self.refuse(index, problem))
    }
}

/// `YYYY-MM-DD`, exactly: four digits, two, two.
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    shaped
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
}

impl<R: Read> SuppressionCsv<R> {
    /// Read the header and tell the format; a file without either header (or empty, or unreadable) is one
    /// error on line 1.
    pub fn new(reader: R, hasher: &KeyedHasher) -> Result<Self, RowError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let header_error = |problem: String| RowError {
            line: 1,
            column: "header".to_owned(),
            problem,
        };
        let mut header = csv::ByteRecord::new();
        match reader.read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) => {
                return Err(header_error(format!(
                    "the file is empty: {}",
                    header_problem()
                )))
            }
            Err(error) => {
                return Err(header_error(format!(
                    "the file could not be read: {}",
                    read_problem(&error)
                )))
            }
        }
        // The csv crate drops a byte-order mark itself; dropping it here too costs nothing.
        let names: Vec<&[u8]> = header
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let name = if i == 0 {
                    name.strip_prefix(b"\xef\xbb\xbf".as_slice())
                        .unwrap_or(name)
                } else {
                    name
                };
                name.trim_ascii()
            })
            .collect();
        let format = [CsvFormat::LeadSafe, CsvFormat::Simple]
            .into_iter()
            .find(|format| {
                names.len() == 5
                    && format
                        .header()
                        .iter()
                        .zip(&names)
                        .all(|(expected, name)| expected.as_bytes() == *name)
            })
            .ok_or_else(|| header_error(header_problem()))?;
        Ok(SuppressionCsv {
            reader,
            format,
            hasher: hasher.clone(),
            row: csv::ByteRecord::new(),
            rows: 0,
            done: false,
        })
    }

    pub fn format(&self) -> CsvFormat {
        self.format
    }

    /// Data rows read so far, good and bad.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// How far into the file reading has got, in bytes (for a progress bar).
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The next row that is not empty, checked for its number of fields, with its line: `None` at the end.
    fn next_fields(&mut self) -> Option<Result<Fields<'_>, RowError>> {
        if self.done {
            return None;
        }
        loop {
            match self.reader.read_byte_record(&mut self.row) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(error) => {
                    self.done = true;
                    let line = error
                        .position()
                        .map_or_else(|| self.reader.position().line(), csv::Position::line);
                    return Some(Err(RowError {
                        line,
                        column: "-".to_owned(),
                        problem: format!(
                            "the file could not be read past this line: {}",
                            read_problem(&error)
                        ),
                    }));
                }
            }
            // A line of nothing but spaces is one empty field.
            if self.row.len() == 1 && self.row[0].is_empty() {
                continue;
            }
            break;
        }
        self.rows += 1;
        let header = self.format.header();
        let line = self.row.position().map_or(0, csv::Position::line);
        let refuse = |column: String, problem: String| {
            Some(Err(RowError {
                line,
                column,
                problem,
            }))
        };
        if self.row.len() < header.len() {
            return refuse(
                header[self.row.len()].to_owned(),
                format!(
                    "is missing: the row has {} of the header's {} columns",
                    self.row.len(),
                    header.len()
                ),
            );
        }
        if self.row.len() > header.len() {
            return refuse(
                (header.len() + 1).to_string(),
                format!(
                    "the row has {} fields, the header {} columns (is a value holding an unquoted comma?)",
                    self.row.len(),
                    header.len()
                ),
            );
        }
        let mut fields = Vec::with_capacity(header.len());
        for (index, field) in self.row.iter().enumerate() {
            match std::str::from_utf8(field) {
                Ok(text) => fields.push(text),
                Err(_) => return refuse(header[index].to_owned(), "is not UTF-8 text".to_owned()),
            }
        }
        Some(Ok(Fields {
            header,
            fields,
            line,
        }))
    }

    /// The next row as a record to import, or why it is refused; `None` at the end.
    pub fn next_record(&mut self) -> Option<Result<SuppressionRecord, RowError>> {
        let format = self.format;
        let hasher = self.hasher.clone();
        let fields = match self.next_fields()? {
            Ok(fields) => fields,
            Err(error) => return Some(Err(error)),
        };
        Some(match format {
            CsvFormat::LeadSafe => leadsafe_record(&fields, &hasher),
            CsvFormat::Simple => simple_record(&fields, &hasher),
        })
    }

    /// The next row of a LeadSafe-format file as itself, its SSN too (for `leadhub-admin leadsafe report`),
    /// or why it is refused, with the same checks and words as [`next_record`](Self::next_record); `None`
    /// at the end. A simple-form file has no such rows: its first row is refused, and reading ends.
    pub fn next_leadsafe_row(&mut self) -> Option<Result<LeadSafeRow, RowError>> {
        if self.format != CsvFormat::LeadSafe {
            if self.done {
                return None;
            }
            self.done = true;
            return Some(Err(RowError {
                line: 1,
                column: "header".to_owned(),
                problem: format!(
                    "a file of statuses for LeadSafe is in LeadSafe's upload format: `{}`",
                    LEADSAFE_HEADER.join(",")
                ),
            }));
        }
        Some(match self.next_fields()? {
            Ok(fields) => leadsafe_row(&fields),
            Err(error) => Err(error),
        })
    }

    /// The next row's value, for removal: only its value columns (`kind` and `value`, or
    /// `SocialSecurityNumber`) are read and checked, so a removal file may leave the others empty (they
    /// must still be there). `None` at the end.
    pub fn next_value(&mut self) -> Option<Result<SuppressedValue, RowError>> {
        let format = self.format;
        let hasher = self.hasher.clone();
        let fields = match self.next_fields()? {
            Ok(fields) => fields,
            Err(error) => return Some(Err(error)),
        };
        let value = |kind: SuppressionKind, index: usize| {
            fields.value(index, kind).map(|normalized| SuppressedValue {
                kind,
                hash: hash(&hasher, kind, &normalized),
            })
        };
        Some(match format {
            CsvFormat::LeadSafe => value(SuppressionKind::Ssn, 1),
            CsvFormat::Simple => fields
                .required(0)
                .and_then(|kind| {
                    kind.parse()
                        .map_err(|e: UnknownKind| fields.refuse(0, e.to_string()))
                })
                .and_then(|kind| value(kind, 1)),
        })
    }
}

impl<R: Read> Iterator for SuppressionCsv<R> {
    type Item = Result<SuppressionRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

/// A read failure in words without the file's contents.
fn read_problem(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Io(error) => error.to_string(),
        _ => "the CSV is malformed".to_owned(),
    }
}

/// One row of LeadSafe's upload read as itself, its SSN too: what `leadhub-admin leadsafe report` keeps
/// (sealed) and sends on to LeadSafe. Its `Debug` shows the SSN as `Ssn(***)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSafeRow {
    /// 1-based; the header is line 1.
    pub line: u64,
    pub client_code: String,
    pub record: LeadSafeRecord,
}

/// `ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason`, checked: the row as itself.
fn leadsafe_row(fields: &Fields<'_>) -> Result<LeadSafeRow, RowError> {
    let client_code = fields.required(0)?;
    if client_code.chars().any(char::is_control) {
        return Err(fields.refuse(0, "holds a control character"));
    }
    let ssn = fields.value(1, SuppressionKind::Ssn)?;
    let start_date = fields.date(2)?;
    let end_date = fields.end_date(3, start_date)?;
    let reason: SuppressionReason = fields.required(4)?.parse().map_err(|_| {
        fields.refuse(
            4,
            "not one of LeadSafe's nine reasons (Default, RevokePaymentAuth, Lawsuit, RegulatoryComplaint, \
             DebtConsolidation, SuspectedIdTheft, Bankruptcy, Abusive, Deceased)",
        )
    })?;
    check_reason(fields, 4, SuppressionKind::Ssn, reason)?;
    let (Some(reason), Ok(ssn)) = (reason.leadsafe(), Ssn::parse(&ssn)) else {
        // `check_reason` took only LeadSafe's nine, and `value` only an SSN.
        return Err(fields.refuse(4, "not one of LeadSafe's nine reasons"));
    };
    Ok(LeadSafeRow {
        line: fields.line,
        client_code: client_code.to_owned(),
        record: LeadSafeRecord {
            ssn,
            reason,
            start_date,
            end_date,
        },
    })
}

/// `ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason`.
fn leadsafe_record(
    fields: &Fields<'_>,
    hasher: &KeyedHasher,
) -> Result<SuppressionRecord, RowError> {
    let row = leadsafe_row(fields)?;
    Ok(SuppressionRecord {
        kind: SuppressionKind::Ssn,
        hash: hash(hasher, SuppressionKind::Ssn, row.record.ssn.expose()),
        reason: row.record.reason.into(),
        start_date: row.record.start_date,
        end_date: row.record.end_date,
        source: row.client_code,
    })
}

/// `kind,value,start_date,end_date,reason`.
fn simple_record(fields: &Fields<'_>, hasher: &KeyedHasher) -> Result<SuppressionRecord, RowError> {
    let kind: SuppressionKind = fields
        .required(0)?
        .parse()
        .map_err(|e: UnknownKind| fields.refuse(0, e.to_string()))?;
    let value = fields.value(1, kind)?;
    let start_date = fields.date(2)?;
    let end_date = fields.end_date(3, start_date)?;
    let reason: SuppressionReason = fields
        .required(4)?
        .parse()
        .map_err(|e: UnknownReason| fields.refuse(4, e.to_string()))?;
    check_reason(fields, 4, kind, reason)?;
    Ok(SuppressionRecord {
        kind,
        hash: hash(hasher, kind, &value),
        reason,
        start_date,
        end_date,
        source: IMPORT_SOURCE.to_owned(),
    })
}

fn check_reason(
    fields: &Fields<'_>,
    index: usize,
    kind: SuppressionKind,
    reason: SuppressionReason,
) -> Result<(), RowError> {
    if reason.allowed_for(kind) {
        Ok(())
    } else {
        Err(fields.refuse(
            index,
            format!(
                "{reason} is for emails and phones only: an SSN record carries one of LeadSafe's nine \
                 reasons"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    use crate::connectors::leadsafe::SEED_CSV;

    fn hasher() -> KeyedHasher {
        KeyedHasher::new(b"suppression-test-key-of-32-bytes")
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    fn parse(text: &str) -> ImportParse {
        parse_import(text.as_bytes(), &hasher())
    }

    /// `(line, column)` of each error.
    fn places(parse: &ImportParse) -> Vec<(u64, &str)> {
        parse
            .errors
            .iter()
            .map(|error| (error.line, error.column.as_str()))
            .collect()
    }

    fn record(
        kind: SuppressionKind,
        value: &str,
        reason: SuppressionReason,
        start: &str,
        end: Option<&str>,
        source: &str,
    ) -> SuppressionRecord {
        let normalized = normalize(kind, value).expect("a valid value");
        SuppressionRecord {
            kind,
            hash: hash(&hasher(), kind, &normalized),
            reason,
            start_date: day(start),
            end_date: end.map(day),
            source: source.to_owned(),
        }
    }

    #[test]
    fn kinds_are_spelled_in_lower_case() {
        for (kind, name) in SuppressionKind::ALL
            .into_iter()
            .zip(["ssn", "email", "phone"])
        {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(name.parse::<SuppressionKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).expect("encodes"),
                serde_json::json!(name)
            );
        }
        for bad in ["SSN", "Email", "fax", "", " ssn"] {
            assert_eq!(bad.parse::<SuppressionKind>(), Err(UnknownKind), "{bad:?}");
        }
    }

    #[test]
    fn values_are_normalised_or_refused_without_echo() {
        use SuppressionKind::{Email, Phone, Ssn};
        let good = [
            (Ssn, "123456789", "123456789"),
            (Ssn, "123-45-6789", "123456789"),
            (Ssn, "123 45 6789", "123456789"),
            (Ssn, " 123-45-6789 ", "123456789"),
            (Ssn, "910910910", "910910910"),
            (Email, "Jane.Doe@Example.COM", "jane.doe@example.com"),
            (Email, "  x@y  ", "x@y"),
            (Email, "ÉLODIE@EXEMPLE.FR", "élodie@exemple.fr"),
            (Phone, "5552010000", "5552010000"),
            (Phone, "(555) 201-0000", "5552010000"),
            (Phone, "+1 555.201.0000", "5552010000"),
            (Phone, "15552010000", "5552010000"),
            (Phone, "+15552010000", "5552010000"),
        ];
        for (kind, raw, normal) in good {
            assert_eq!(
                normalize(kind, raw).as_deref(),
                Ok(normal),
                "{kind} {raw:?}"
            );
        }
        let bad = [
            (Ssn, "12345678"),
            (Ssn, "1234567890"),
            (Ssn, "123-45-678x"),
            (Ssn, "123.45.6789"),
            (Ssn, ""),
            (Email, "jane.doe"),
            (Email, "@example.com"),
            (Email, "jane@"),
            (Email, "a@b@c"),
            (Email, "jane doe@example.com"),
            (Email, "jane\u{7}@example.com"),
            (Email, ""),
            (Phone, "555201000"),
            (Phone, "25552010000"),
            (Phone, "155520100001"),
            (Phone, ""),
        ];
        for (kind, raw) in bad {
            let problem = normalize(kind, raw).expect_err(raw);
            for part in raw.split(['@', ' ', '-']).filter(|part| part.len() > 1) {
                assert!(!problem.contains(part), "{problem} repeats {raw:?}");
            }
        }
        assert_eq!(normalize(Ssn, "12345678"), Err(SSN_RULE));
        assert_eq!(normalize(Email, "jane"), Err(EMAIL_RULE));
        assert_eq!(normalize(Phone, "12"), Err(PHONE_RULE));
    }

    #[test]
    fn hashes_are_the_keyed_hash_of_kind_and_value() {
        let hasher = hasher();
        // Ingest's `ssn_hash`: `config.hasher.hex(&["ssn", digits])`.
        assert_eq!(
            hash(&hasher, SuppressionKind::Ssn, "123456789"),
            hasher.hex(&["ssn", "123456789"])
        );
        assert_eq!(
            hash(&hasher, SuppressionKind::Email, "x@y.co"),
            hasher.hex(&["email", "x@y.co"])
        );
        // The kind is part of it: a phone and an SSN of the same digits differ.
        assert_ne!(
            hash(&hasher, SuppressionKind::Phone, "5552010000"),
            hash(&hasher, SuppressionKind::Ssn, "5552010000")
        );
        let other = KeyedHasher::new(b"another-key-another-key-another!");
        assert_ne!(
            hash(&hasher, SuppressionKind::Ssn, "123456789"),
            hash(&other, SuppressionKind::Ssn, "123456789")
        );
        assert_eq!(hash(&hasher, SuppressionKind::Ssn, "123456789").len(), 64);
    }

    #[test]
    fn reasons_are_leadsafes_nine_and_two_for_emails_and_phones() {
        assert_eq!(SuppressionReason::ALL.len(), 11);
        for reason in Reason::ALL {
            let ours = SuppressionReason::from(reason);
            assert_eq!(ours.as_str(), reason.as_str());
            assert_eq!(ours.leadsafe(), Some(reason));
            assert_eq!(reason.as_str().parse::<SuppressionReason>(), Ok(ours));
            for kind in SuppressionKind::ALL {
                assert!(ours.allowed_for(kind), "{ours} {kind}");
            }
        }
        for (reason, name) in [
            (SuppressionReason::OptOut, "OptOut"),
            (SuppressionReason::DoNotContact, "DoNotContact"),
        ] {
            assert_eq!(reason.as_str(), name);
            assert_eq!(reason.to_string(), name);
            assert_eq!(name.parse::<SuppressionReason>(), Ok(reason));
            assert_eq!(reason.leadsafe(), None);
            assert!(!reason.allowed_for(SuppressionKind::Ssn));
            assert!(reason.allowed_for(SuppressionKind::Email));
            assert!(reason.allowed_for(SuppressionKind::Phone));
        }
        let names: Vec<&str> = SuppressionReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "Default",
                "RevokePaymentAuth",
                "Lawsuit",
                "RegulatoryComplaint",
                "DebtConsolidation",
                "SuspectedIdTheft",
                "Bankruptcy",
                "Abusive",
                "Deceased",
                "OptOut",
                "DoNotContact"
            ]
        );
        for bad in ["optout", "Opt-Out", "default", "Fraud", ""] {
            assert_eq!(
                bad.parse::<SuppressionReason>(),
                Err(UnknownReason),
                "{bad:?}"
            );
        }
        // Serde names are the same spellings.
        assert_eq!(
            serde_json::to_value(SuppressionReason::RevokePaymentAuth).expect("encodes"),
            serde_json::json!("RevokePaymentAuth")
        );
    }

    #[test]
    fn a_record_is_active_from_its_start_until_the_day_it_ended() {
        let ended = record(
            SuppressionKind::Ssn,
            "123456789",
            SuppressionReason::Default,
            "2024-01-06",
            Some("2024-02-12"),
            "exampleco",
        );
        let open = SuppressionRecord {
            end_date: None,
            ..ended.clone()
        };
        let same_day = SuppressionRecord {
            end_date: Some(day("2024-01-06")),
            ..ended.clone()
        };
        let rows = [
            ("2024-01-05", false, false, false),
            ("2024-01-06", true, true, false),
            ("2024-02-11", true, true, false),
            ("2024-02-12", false, true, false),
            ("2030-01-01", false, true, false),
        ];
        for (today, ended_active, open_active, same_day_active) in rows {
            assert_eq!(ended.is_active(day(today)), ended_active, "{today}");
            assert_eq!(open.is_active(day(today)), open_active, "{today}");
            assert_eq!(same_day.is_active(day(today)), same_day_active, "{today}");
        }
    }

    #[test]
    fn the_seeds_upload_sample_is_read_as_ssn_records() {
        let parse = parse(SEED_CSV);
        assert_eq!(parse.errors, []);
        assert_eq!(parse.rows, 8);
        assert_eq!(parse.records.len(), 8);
        assert_eq!(
            parse.records[1],
            record(
                SuppressionKind::Ssn,
                "111222333",
                SuppressionReason::RevokePaymentAuth,
                "2024-01-06",
                Some("2024-02-12"),
                "exampleco"
            )
        );
        assert!(parse
            .records
            .iter()
            .all(|r| r.kind == SuppressionKind::Ssn && r.source == "exampleco"));
        let reasons: Vec<&str> = parse.records.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "Default",
                "RevokePaymentAuth",
                "Lawsuit",
                "RegulatoryComplaint",
                "DebtConsolidation",
                "Default",
                "SuspectedIdTheft",
                "Bankruptcy"
            ]
        );
        // The hash is the lead's `ssn_hash`.
        assert_eq!(parse.records[0].hash, hasher().hex(&["ssn", "123456789"]));
        // With a final newline, CRLF line ends, and a byte-order mark: the same.
        let crlf = format!("\u{feff}{}\r\n", SEED_CSV.replace('\n', "\r\n"));
        assert_eq!(super::parse_import(crlf.as_bytes(), &hasher()), parse);
    }

    #[test]
    fn a_mixed_leadsafe_file_keeps_the_good_rows_and_places_the_bad_ones() {
        let file = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason
exampleco,123456789,2024-01-05,,Default
exampleco,111222333,2024-13-06,,Default
exampleco,240120120,2024-01-07,,Fraud
exampleco,41141141,2024-01-08,,Lawsuit
exampleco,910910910,2024-03-09,2024-02-01,DebtConsolidation
exampleco,761789231,2024-01-10,Default
exampleco,123-12-3123,2024-01-11,2024-01-20,SuspectedIdTheft
exampleco,412421341,2024-01-12,,OptOut
,412421341,2024-01-12,,Bankruptcy
exampleco,412421341,,,Bankruptcy
exampleco,412421341,2024-01-12,,
exampleco,412421341,2024/01/12,,Bankruptcy
exampleco,412421341,2024-01-12,2024-1-20,Bankruptcy
exampleco,412421341,2024-01-12,,Bankruptcy
";
        let parse = parse(file);
        assert_eq!(parse.rows, 14);
        assert_eq!(
            places(&parse),
            [
                (3, "StartDate"),
                (4, "Reason"),
                (5, "SocialSecurityNumber"),
                (6, "EndDate"),
                (7, "Reason"),
                (9, "Reason"),
                (10, "ClientCode"),
                (11, "StartDate"),
                (12, "Reason"),
                (13, "StartDate"),
                (14, "EndDate"),
            ]
        );
        let problems: Vec<&str> = parse.errors.iter().map(|e| e.problem.as_str()).collect();
        assert!(problems[0].contains("YYYY-MM-DD"), "{}", problems[0]);
        assert!(
            problems[1].contains("LeadSafe's nine reasons"),
            "{}",
            problems[1]
        );
        assert!(problems[2].contains("9 digits"), "{}", problems[2]);
        assert_eq!(problems[3], "is before the start date");
        assert!(problems[4].starts_with("is missing"), "{}", problems[4]);
        assert!(
            problems[5].contains("emails and phones only"),
            "{}",
            problems[5]
        );
        assert!(problems[6].contains("required"), "{}", problems[6]);
        assert!(problems[7].contains("required"), "{}", problems[7]);
        assert!(problems[8].contains("required"), "{}", problems[8]);
        assert_eq!(
            parse.records,
            [
                record(
                    SuppressionKind::Ssn,
                    "123456789",
                    SuppressionReason::Default,
                    "2024-01-05",
                    None,
                    "exampleco"
                ),
                record(
                    SuppressionKind::Ssn,
                    "123123123",
                    SuppressionReason::SuspectedIdTheft,
                    "2024-01-11",
                    Some("2024-01-20"),
                    "exampleco"
                ),
                record(
                    SuppressionKind::Ssn,
                    "412421341",
                    SuppressionReason::Bankruptcy,
                    "2024-01-12",
                    None,
                    "exampleco"
                ),
            ]
        );
        // Displayed as the admin prints them.
        assert_eq!(
            parse.errors[3].to_string(),
            "line 6, column EndDate: is before the start date"
        );
    }

    #[test]
    fn leadsafe_rows_are_read_as_themselves_with_the_imports_checks() {
        let file = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason
exampleco,123-45-6789,2024-01-05,,Default
exampleco,111222333,2024-13-06,,Default
exampleco,412421341,2024-01-12,,OptOut
exampleco,123123123,2024-01-11,2024-01-20,SuspectedIdTheft
";
        let read = |text: &str| {
            let mut csv = SuppressionCsv::new(text.as_bytes(), &hasher()).expect("a header");
            std::iter::from_fn(move || csv.next_leadsafe_row()).collect::<Vec<_>>()
        };
        let rows = read(file);
        let imported = parse(file);
        assert_eq!(rows.len(), 4);
        let good: Vec<&LeadSafeRow> = rows.iter().filter_map(|r| r.as_ref().ok()).collect();
        let bad: Vec<&RowError> = rows.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(
            bad,
            imported.errors.iter().collect::<Vec<_>>(),
            "the same refusals"
        );
        assert_eq!(good.len(), 2);
        assert_eq!(good[0].line, 2);
        assert_eq!(good[0].client_code, "exampleco");
        assert_eq!(good[0].record.ssn.expose(), "123456789");
        assert_eq!(good[0].record.reason, Reason::Default);
        assert_eq!(good[1].record.end_date, Some(day("2024-01-20")));
        assert!(!format!("{good:?}").contains("123456789"));
        // The same records as the import makes of it.
        for (row, record) in good.iter().zip(&imported.records) {
            assert_eq!(
                hash(&hasher(), SuppressionKind::Ssn, row.record.ssn.expose()),
                record.hash
            );
            assert_eq!(SuppressionReason::from(row.record.reason), record.reason);
        }
        // A simple-form file has no LeadSafe rows.
        let simple =
            read("kind,value,start_date,end_date,reason\nssn,123456789,2024-01-05,,Default\n");
        assert_eq!(simple.len(), 1);
        let error = simple[0].as_ref().expect_err("refused");
        assert_eq!((error.line, error.column.as_str()), (1, "header"));
        assert!(
            error.problem.contains("LeadSafe's upload format"),
            "{error}"
        );
    }

    #[test]
    fn a_mixed_simple_file_keeps_the_good_rows_and_places_the_bad_ones() {
        let file = "kind,value,start_date,end_date,reason
email,Jane.Doe@Example.com,2024-01-05,,OptOut
phone,(555) 201-0000,2024-01-05,2024-06-01,DoNotContact
ssn,123-45-6789,2024-01-05,,Lawsuit
fax,5552010000,2024-01-05,,OptOut
email,jane.doe,2024-01-05,,OptOut
phone,555-0100,2024-01-05,,OptOut
ssn,123456789,2024-01-05,,OptOut
email,x@y.co,2024-02-30,,OptOut
email,x@y.co,2024-01-05,2024-01-04,OptOut
email,x@y.co,2024-01-05,,Unsubscribed
email,x@y.co,2024-01-05
\"email\",\"a,b@y.co\",2024-01-05,,Abusive
";
        let parse = parse(file);
        assert_eq!(parse.rows, 12);
        assert_eq!(
            places(&parse),
            [
                (5, "kind"),
                (6, "value"),
                (7, "value"),
                (8, "reason"),
                (9, "start_date"),
                (10, "end_date"),
                (11, "reason"),
                (12, "end_date"),
            ]
        );
        assert!(parse.errors[0].problem.contains("ssn, email or phone"));
        assert!(parse.errors[1].problem.contains("email address"));
        assert!(parse.errors[2].problem.contains("US phone number"));
        assert!(parse.errors[3]
            .problem
            .contains("OptOut is for emails and phones only"));
        assert!(parse.errors[4].problem.contains("YYYY-MM-DD"));
        assert_eq!(parse.errors[5].problem, "is before the start date");
        assert!(parse.errors[6].problem.contains("OptOut or DoNotContact"));
        assert_eq!(
            parse.errors[7].problem,
            "is missing: the row has 3 of the header's 5 columns"
        );
        assert_eq!(
            parse.records,
            [
                record(
                    SuppressionKind::Email,
                    "jane.doe@example.com",
                    SuppressionReason::OptOut,
                    "2024-01-05",
                    None,
                    IMPORT_SOURCE
                ),
                record(
                    SuppressionKind::Phone,
                    "5552010000",
                    SuppressionReason::DoNotContact,
                    "2024-01-05",
                    Some("2024-06-01"),
                    IMPORT_SOURCE
                ),
                record(
                    SuppressionKind::Ssn,
                    "123456789",
                    SuppressionReason::Lawsuit,
                    "2024-01-05",
                    None,
                    IMPORT_SOURCE
                ),
                // Quoted as CSV allows.
                record(
                    SuppressionKind::Email,
                    "a,b@y.co",
                    SuppressionReason::Abusive,
                    "2024-01-05",
                    None,
                    IMPORT_SOURCE
                ),
            ]
        );
    }

    #[test]
    fn headers_are_matched_as_spelled_with_whitespace_and_a_bom_tolerated() {
        let row = "\nemail,x@y.co,2024-01-05,,OptOut\n";
        for header in [
            "kind,value,start_date,end_date,reason",
            " kind , value,start_date ,end_date,\treason ",
            "\u{feff}kind,value,start_date,end_date,reason",
            "\u{feff} kind,value,start_date,end_date,reason",
        ] {
            let parse = parse(&format!("{header}{row}"));
            assert_eq!(parse.errors, [], "{header:?}");
            assert_eq!(parse.records.len(), 1, "{header:?}");
        }
        let leadsafe = SuppressionCsv::new(
            " ClientCode , SocialSecurityNumber,StartDate,EndDate,Reason\n".as_bytes(),
            &hasher(),
        )
        .expect("a header");
        assert_eq!(leadsafe.format(), CsvFormat::LeadSafe);
        for header in [
            "Kind,Value,Start_Date,End_Date,Reason",
            "clientcode,socialsecuritynumber,startdate,enddate,reason",
            "kind,value,start_date,end_date",
            "kind,value,start_date,end_date,reason,note",
            "kind;value;start_date;end_date;reason",
            // A file without a header: its first row is not echoed.
            "exampleco,123456789,2024-01-05,,Default",
            "",
        ] {
            let parse = parse(&format!("{header}{row}"));
            assert_eq!(parse.records, [], "{header:?}");
            assert_eq!(parse.rows, 0, "{header:?}");
            assert_eq!(places(&parse), [(1, "header")], "{header:?}");
            assert!(
                parse.errors[0].problem.contains(&LEADSAFE_HEADER.join(","))
                    && parse.errors[0].problem.contains(&SIMPLE_HEADER.join(",")),
                "{}",
                parse.errors[0].problem
            );
            assert!(!parse.errors[0].problem.contains("123456789"));
        }
        let empty = parse("");
        assert_eq!(places(&empty), [(1, "header")]);
        assert!(empty.errors[0].problem.starts_with("the file is empty"));
    }

    #[test]
    fn lines_are_counted_past_blank_lines_and_quoted_line_breaks() {
        let file = "kind,value,start_date,end_date,reason\n\
                    \n\
                    email,a@y.co,2024-01-05,,OptOut\n\
                    \x20\x20\n\
                    email,\"b@y.co\n\",2024-01-05,,OptOut\n\
                    email,c@y.co,2024-01-05,,Nope\n\
                    email,d@y.co,2024-01-05,,OptOut,extra\n";
        let parse = parse_import(file.as_bytes(), &hasher());
        // The quoted value spans lines 5 and 6 (its line break is trimmed away).
        assert_eq!(places(&parse), [(7, "reason"), (8, "6")]);
        assert_eq!(parse.rows, 4, "blank lines are not rows");
        assert_eq!(parse.records.len(), 2);
        assert!(parse.errors[1].problem.contains("6 fields"));
        // Bytes that are not UTF-8: the column is named.
        let mut bytes =
            b"kind,value,start_date,end_date,reason\nemail,x@y.co,2024-01-05,,Opt".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let parse = parse_import(bytes.as_slice(), &hasher());
        assert_eq!(places(&parse), [(2, "reason")]);
        assert_eq!(parse.errors[0].problem, "is not UTF-8 text");
    }

    #[test]
    fn no_error_repeats_a_value_of_the_file() {
        // PII-looking values in every column of bad rows, of both formats.
        let secrets = [
            "987654320",
            "987-65-4320",
            "jane.secret@example.com",
            "5559876543",
        ];
        let simple = "kind,value,start_date,end_date,reason
987654320,987654320,987654320,987654320,987654320
ssn,987-65-4320x,2024-01-05,,Default
email,jane.secret@example.com@x,2024-01-05,,OptOut
phone,55598765431,2024-01-05,,OptOut
email,jane.secret@example.com,987-65-4320,,OptOut
email,jane.secret@example.com,2024-01-05,5559876543,OptOut
email,jane.secret@example.com,2024-01-05,,jane.secret@example.com
phone,5559876543,2024-01-05
ssn,987654320,2024-01-05,,OptOut
jane.secret@example.com,5559876543
";
        let leadsafe = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason
exampleco,98765432,2024-01-05,,Default
exampleco,987654320,987654320,,Default
exampleco,987654320,2024-01-05,987-65-4320,Default
exampleco,987654320,2024-01-05,,987654320
exampleco,987654320,2024-01-05,,DoNotContact
exampleco,987654320,2024-01-05,,Default,987654320
";
        let mut texts = Vec::new();
        for file in [simple, leadsafe] {
            let parse = parse(file);
            assert_eq!(parse.records, [], "{file}");
            assert_eq!(parse.errors.len() as u64, parse.rows, "{file}");
            texts.extend(parse.errors.iter().map(|e| e.to_string()));
            texts.extend(parse.errors.iter().map(|e| format!("{e:?}")));
            let mut values = SuppressionCsv::new(file.as_bytes(), &hasher()).expect("a header");
            while let Some(value) = values.next_value() {
                if let Err(error) = value {
                    texts.push(error.to_string());
                }
            }
        }
        // A headerless file.
        texts.extend(
            parse("987654320,jane.secret@example.com,5559876543\n")
                .errors
                .iter()
                .map(|e| e.to_string()),
        );
        assert!(texts.len() > 20);
        for text in &texts {
            for secret in secrets.iter().chain(&["98765432", "4320", "jane.secret"]) {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
    }

    #[test]
    fn removal_reads_only_the_value_columns() {
        let file = "kind,value,start_date,end_date,reason
email,Jane.Doe@Example.com,,,
phone,+1 555 201 0000,2024-01-05,,OptOut
ssn,123-45-6789,not a date,,Fraud
fax,x,,,
email,nope,,,
email,x@y.co
";
        let mut csv = SuppressionCsv::new(file.as_bytes(), &hasher()).expect("a header");
        let mut values = Vec::new();
        let mut errors = Vec::new();
        while let Some(row) = csv.next_value() {
            match row {
                Ok(value) => values.push(value),
                Err(error) => errors.push((error.line, error.column)),
            }
        }
        let value = |kind, raw| SuppressedValue {
            kind,
            hash: hash(&hasher(), kind, &normalize(kind, raw).expect("valid")),
        };
        assert_eq!(
            values,
            [
                value(SuppressionKind::Email, "jane.doe@example.com"),
                value(SuppressionKind::Phone, "5552010000"),
                value(SuppressionKind::Ssn, "123456789"),
            ]
        );
        assert_eq!(
            errors,
            [
                (5, "kind".to_owned()),
                (6, "value".to_owned()),
                (7, "start_date".to_owned())
            ]
        );
        assert_eq!(csv.rows(), 6);
        let leadsafe_file = format!("{}\n,123456789,,,\n", LEADSAFE_HEADER.join(","));
        let mut leadsafe =
            SuppressionCsv::new(leadsafe_file.as_bytes(), &hasher()).expect("a header");
        assert_eq!(
            leadsafe.next_value().map(|row| row.expect("a value")),
            Some(value(SuppressionKind::Ssn, "123456789"))
        );
        assert!(leadsafe.next_value().is_none());
    }

    /// A reader that gives `data` and then fails.
    struct Failing {
        data: std::io::Cursor<Vec<u8>>,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.data.read(buf)? {
                0 => Err(std::io::Error::other("disk on fire")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_read_failure_ends_the_file_with_one_error() {
        let data = "kind,value,start_date,end_date,reason\nemail,x@y.co,2024-01-05,,OptOut\nemail,y@y.co,2024-01-05,,OptOut\nemail,z@y";
        let mut csv = SuppressionCsv::new(
            Failing {
                data: std::io::Cursor::new(data.as_bytes().to_vec()),
            },
            &hasher(),
        )
        .expect("a header");
        let rows: Vec<_> = csv.by_ref().collect();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert!(rows[0].is_ok() && rows[1].is_ok());
        let error = rows[2].as_ref().expect_err("failed");
        assert!(error.problem.contains("disk on fire"), "{error}");
        assert!(!error.problem.contains("z@y"), "{error}");
        assert!(csv.next().is_none(), "nothing after the failure");
        assert!(csv.bytes_read() > 0);
    }

    #[tokio::test]
    async fn active_match_finds_the_first_active_record_over_the_probes() {
        let store = MemoryStore::new();
        let today = day("2024-03-01");
        let ssn = record(
            SuppressionKind::Ssn,
            "123456789",
            SuppressionReason::Default,
            "2024-01-01",
            Some("2024-02-01"),
            "exampleco",
        );
        let email_later = record(
            SuppressionKind::Email,
            "x@y.co",
            SuppressionReason::OptOut,
            "2024-04-01",
            None,
            IMPORT_SOURCE,
        );
        let email_now = record(
            SuppressionKind::Email,
            "x@y.co",
            SuppressionReason::DoNotContact,
            "2024-02-15",
            None,
            IMPORT_SOURCE,
        );
        let phone = record(
            SuppressionKind::Phone,
            "5552010000",
            SuppressionReason::Abusive,
            "2024-01-01",
            None,
            IMPORT_SOURCE,
        );
        store
            .put_suppressions(&[
                ssn.clone(),
                email_later.clone(),
                email_now.clone(),
                phone.clone(),
            ])
            .await
            .expect("put");
        let probe = |r: &SuppressionRecord| (r.kind, r.hash.clone());
        assert_eq!(active_match(&store, &[], today).await.expect("asks"), None);
        // The SSN's record ended, the email's OptOut has not started: DoNotContact holds.
        assert_eq!(
            active_match(
                &store,
                &[probe(&ssn), probe(&email_now), probe(&phone)],
                today
            )
            .await
            .expect("asks"),
            Some(email_now.clone())
        );
        assert_eq!(
            active_match(&store, &[probe(&phone), probe(&email_now)], today)
                .await
                .expect("asks"),
            Some(phone.clone())
        );
        assert_eq!(
            active_match(&store, &[probe(&ssn)], today)
                .await
                .expect("asks"),
            None
        );
        assert_eq!(
            active_match(&store, &[probe(&ssn)], day("2024-01-31"))
                .await
                .expect("asks"),
            Some(ssn.clone())
        );
        // A value not on the list, and a kind that does not match the hash.
        let unknown = (
            SuppressionKind::Email,
            hash(&hasher(), SuppressionKind::Email, "n@y.co"),
        );
        let wrong_kind = (SuppressionKind::Phone, email_now.hash.clone());
        assert_eq!(
            active_match(&store, &[unknown, wrong_kind], today)
                .await
                .expect("asks"),
            None
        );
    }
}
