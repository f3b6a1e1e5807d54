//! Routing: which buyers a lead is offered to, in what order, and why the others were left out.
//!
//! [`route`] is a pure function of the lead, the configuration, the current cap usage, the time and a
//! sequence number; it writes nothing. It returns a [`RoutingPlan`]: steps of buyers offered at once, and,
//! for every configured buyer left out, a [`SkipReason`], rendered for operators
//! ([`RoutingPlan::operator_explanations`]) and for partners ([`RoutingPlan::partner_explanations`], in words a
//! partner can act on and without buyer ids, names, prices or credentials).
//!
//! # Configuration (checked at load; every problem names its key)
//!
//! ```toml
//! [routing.heloc]            # one table per vertical; absent: waterfall
//! strategy = "waterfall"     # "waterfall" | "weighted" | "broadcast"
//! max_buyers = 3             # broadcast only (ignored otherwise): shared buyers one lead may go to; default 1
//! resell_returns = false     # a lead a buyer returns goes on to the next buyer in line; default false
//!
//! [[destinations]]
//! priority = 1               # waterfall order, lower first; ties in file order (default 100)
//! weight = 3                 # weighted share, 1 to 1000 (default 1)
//! price = 18.50              # USD per accepted lead, at most 2 decimal places, kept as cents
//! exclusive = false          # an exclusive buyer is offered the lead alone
//! [destinations.filters]
//! states = ["TX", "FL"]      # or exclude_states (not both)
//! zip_prefixes = ["787"]     # or exclude_zip_prefixes (not both); 1 to 5 digits
//! fields = [ { field = "loanPurpose", one_of = ["homeImprovement"] }, { field = "propertyUnits", min = 1, max = 2 } ]
//! [destinations.schedule]
//! timezone = "America/Chicago"
//! days = ["mon", "tue", "wed", "thu", "fri"]
//! hours = "08:00-20:00"      # local; an end before the start spans midnight; "24:00" ends at midnight
//! [destinations.caps]       # leads counted per window, each cap from 1 to 10000 (MAX_CAP)
//! hour = 10
//! day = 100
//! month = 2000
//! ```
//!
//! # Rules, and the choices made where the brief was silent
//!
//! - Eligibility is checked in this order and the first failure is the reason given: vertical, disabled,
//!   state filter, ZIP filter, field filters (in the order written), schedule, caps.
//! - State and ZIP filters read the property's address, found per vertical in [`property_address`]. A lead
//!   that gives no property state (or ZIP) fails a state (or ZIP) filter of either kind, `exclude_...`
//!   included: a buyer with a geographic rule gets only leads it can place.
//! - Field filters name fields as partners post them (`contactInfo.email`), checked against the vertical's
//!   JSON Schema at load: a field that none of the destination's verticals has, a value of the wrong type,
//!   a text value outside the field's enum, or `min`/`max` on a field that is not a number are errors. Paths
//!   pass through lists (`inquiry.locations.city`): the filter holds when any value found holds. A field the
//!   lead does not give (or gives as null) fails the filter. Text compares exactly (the lead is normalised).
//!   Numbers compare exactly ([`Decimal`], at most 6 decimal places in the configuration); `min` and `max`
//!   are inclusive. Open bags such as solar's `extra_data` cannot be filtered on.
//! - Schedules: hours have minute precision; the start is included and the end is not. A span over
//!   midnight (`22:00-06:00`) belongs to the day it started: with `days = ["fri"]`, Friday 23:30 and
//!   Saturday 05:59 are open, Friday 05:59 is not. `days` absent: every day; `hours` absent: all day. Times
//!   are always read from the instant (UTC to local), so daylight-saving changes never produce a time that
//!   does not exist: on a spring-forward day a span starting in the skipped hour opens when the clock
//!   reaches a time after its start.
//! - Caps count leads per window of the local clock in the schedule's time zone (UTC without a schedule).
//!   A day is 23 or 25 hours on DST days, and on fall-back day the hour that happens twice is one window of
//!   two real hours (`hour:2026-11-01T01`, ending when the clock first shows 02:00 after it). A buyer is
//!   left out when its usage is at or over a cap; [`DestinationRouting::cap_windows`] gives the keys and
//!   end instants a store reserves against.
//! - Strategies: see [`Strategy`]. The plan's steps are offered one after another; a step in which a buyer
//!   accepts ends routing ([`RoutingPlan::next_step`]).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone,
    Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;

use crate::config::{Config, ConfigError, Destination};
use crate::ids::DestinationId;
use crate::lead::LeadRecord;
use crate::verticals::fields::StateCode;
use crate::verticals::Vertical;

// ---- where each vertical keeps the property's address ------------------------------------------------

/// Where a vertical's normalised lead keeps the property's state and ZIP code: JSON pointers, the first
/// present one wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropertyAddress {
    pub state: &'static [&'static str],
    pub zip: &'static [&'static str],
}

/// The one table of property addresses, per vertical.
///
/// - heloc: `address` is the property (`residentialAddress` is the borrower's home).
/// - mortgage: `property` is the subject property.
/// - solar: the customer's address is where the panels go (`mailing_*` is only for mail).
/// - real-estate: the lead's own `property` when given, else the lead's address (`state`, `zipCode`).
pub fn property_address(vertical: Vertical) -> PropertyAddress {
    match vertical {
        Vertical::Heloc => PropertyAddress {
            state: &["/address/state"],
            zip: &["/address/zip"],
        },
        Vertical::Mortgage => PropertyAddress {
            state: &["/property/state"],
            zip: &["/property/zip"],
        },
        Vertical::Solar => PropertyAddress {
            state: &["/state"],
            zip: &["/zip"],
        },
        Vertical::RealEstate => PropertyAddress {
            state: &["/property/state", "/state"],
            zip: &["/property/zipCode", "/zipCode"],
        },
    }
}

fn first_text<'a>(lead: &'a Value, pointers: &[&str]) -> Option<&'a str> {
    pointers
        .iter()
        .find_map(|pointer| lead.pointer(pointer).and_then(Value::as_str))
        .filter(|text| !text.is_empty())
}

// ---- money and numbers ---------------------------------------------------------------------------------

/// An amount of US dollars in whole cents (a buyer's price per accepted lead). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cents(pub u64);

impl Cents {
    /// The most a price may be: $100,000.00.
    pub const MAX: Cents = Cents(10_000_000);
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}.{:02}", self.0 / 100, self.0 % 100)
    }
}

const MICROS_PER_UNIT: i128 = 1_000_000;
/// Configured numbers stay below 10^15 in magnitude.
const DECIMAL_LIMIT: i128 = 1_000_000_000_000_000 * MICROS_PER_UNIT;

/// An exact decimal number with at most six decimal places, for filter values and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal {
    micros: i128,
}

impl Decimal {
    pub fn from_integer(value: i64) -> Decimal {
        Decimal {
            micros: i128::from(value) * MICROS_PER_UNIT,
        }
    }

    /// A plain decimal (`-12`, `18.5`, `0.000001`): no exponent, at most six decimal places, magnitude
    /// below 10^15.
    pub fn parse(text: &str) -> Option<Decimal> {
        let digits = parse_plain_decimal(text)?;
        if digits.fraction.len() > 6 || digits.integer.len() > 15 {
            return None;
        }
        let mut micros: i128 = 0;
        for digit in digits.integer.bytes() {
            micros = micros * 10 + i128::from(digit - b'0');
        }
        for i in 0..6 {
            let digit = digits.fraction.as_bytes().get(i).map_or(0, |d| d - b'0');
            micros = micros * 10 + i128::from(digit);
        }
        if micros >= DECIMAL_LIMIT {
            return None;
        }
        Some(Decimal {
            micros: if digits.negative { -micros } else { micros },
        })
    }

    /// How a number in a lead compares with this one, exactly.
    fn compare_lead(self, number: &serde_json::Number) -> Ordering {
        match LeadNumber::from_json(number) {
            LeadNumber::Exact(micros) => micros.cmp(&self.micros),
            // The value lies strictly between `floor` and `floor + 1` micro-units.
            LeadNumber::Between(floor) => {
                if floor >= self.micros {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            LeadNumber::Huge { negative: true } => Ordering::Less,
            LeadNumber::Huge { negative: false } => Ordering::Greater,
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.micros < 0 { "-" } else { "" };
        let magnitude = self.micros.unsigned_abs();
        let whole = magnitude / 1_000_000;
        let fraction = magnitude % 1_000_000;
        if fraction == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let text = format!("{fraction:06}");
            write!(f, "{sign}{whole}.{}", text.trim_end_matches('0'))
        }
    }
}

struct PlainDecimal<'a> {
    negative: bool,
    integer: &'a str,
    fraction: &'a str,
}

/// `[-]digits[.digits]`, leading zeros of the integer part dropped.
fn parse_plain_decimal(text: &str) -> Option<PlainDecimal<'_>> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if integer.is_empty()
        || !integer.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || (unsigned.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let integer = integer.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    Some(PlainDecimal {
        negative: negative && !(integer.is_empty() && fraction.is_empty()),
        integer,
        fraction,
    })
}

/// A number from a lead, in micro-units, for exact comparison with a [`Decimal`].
enum LeadNumber {
    Exact(i128),
    Between(i128),
    Huge { negative: bool },
}

impl LeadNumber {
    fn from_json(number: &serde_json::Number) -> LeadNumber {
        if let Some(value) = number.as_i64() {
            return LeadNumber::Exact(i128::from(value) * MICROS_PER_UNIT);
        }
        if let Some(value) = number.as_u64() {
            return LeadNumber::Exact(i128::from(value) * MICROS_PER_UNIT);
        }
        // Rust prints a float in plain digits (never an exponent), the shortest text that reads back.
        let text = number.as_f64().map(|value| value.to_string());
        let Some(digits) = text.as_deref().and_then(parse_plain_decimal) else {
            return LeadNumber::Huge { negative: false };
        };
        if digits.integer.len() > 30 {
            return LeadNumber::Huge {
                negative: digits.negative,
            };
        }
        let mut micros: i128 = 0;
        for digit in digits.integer.bytes() {
            micros = micros * 10 + i128::from(digit - b'0');
        }
        for i in 0..6 {
            let digit = digits.fraction.as_bytes().get(i).map_or(0, |d| d - b'0');
            micros = micros * 10 + i128::from(digit);
        }
        let exact = digits.fraction.len() <= 6;
        match (exact, digits.negative) {
            (true, false) => LeadNumber::Exact(micros),
            (true, true) => LeadNumber::Exact(-micros),
            (false, false) => LeadNumber::Between(micros),
            (false, true) => LeadNumber::Between(-micros - 1),
        }
    }
}

// ---- the checked model ---------------------------------------------------------------------------------

/// How a vertical's eligible buyers are ordered into a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Every eligible buyer by priority (ties in file order), one at a time: the next on rejection or a
    /// dead delivery, until one accepts.
    #[default]
    Waterfall,
    /// Smooth weighted round robin (nginx's SWRR) over the eligible buyers, evaluated at the caller's
    /// sequence number: the chosen buyer first, then the others in the order the rotation would reach them,
    /// one at a time as in a waterfall. A capped or closed buyer's share goes to the others.
    Weighted,
    /// Eligible exclusive buyers first, one at a time by priority; then one wave of up to `max_buyers`
    /// shared buyers by priority, offered at once. The rest are left out ([`SkipReason::OverMaxBuyers`]).
    Broadcast,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Waterfall, Strategy::Weighted, Strategy::Broadcast];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Waterfall => "waterfall",
            Strategy::Weighted => "weighted",
            Strategy::Broadcast => "broadcast",
        }
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == s)
            .ok_or_else(|| {
                format!("unknown strategy `{s}` (known: waterfall, weighted, broadcast)")
            })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A vertical's routing settings (`[routing.<vertical>]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerticalRouting {
    pub strategy: Strategy,
    /// Broadcast only: how many shared buyers one lead may go to (at least 1).
    pub max_buyers: u32,
    /// A lead a buyer returns is offered to the next buyer in line (`resell_returns`, default false: it
    /// stays `returned`).
    pub resell_returns: bool,
}

impl Default for VerticalRouting {
    fn default() -> Self {
        VerticalRouting {
            strategy: Strategy::Waterfall,
            max_buyers: 1,
            resell_returns: false,
        }
    }
}

/// A destination's routing settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRouting {
    /// Lower first; ties in file order.
    pub priority: i64,
    /// Weighted share, 1 to [`MAX_WEIGHT`].
    pub weight: u32,
    /// USD per accepted lead, recorded on the delivery.
    pub price: Option<Cents>,
    /// Offered the lead alone.
    pub exclusive: bool,
    /// Takes leads LeadSafe rated Amber when the vertical's policy is `amber = "amber_buyers"`.
    pub accepts_amber: bool,
    pub filters: Filters,
    /// `None`: always open.
    pub schedule: Option<Schedule>,
    pub caps: Caps,
}

impl Default for DestinationRouting {
    fn default() -> Self {
        DestinationRouting {
            priority: 100,
            weight: 1,
            price: None,
            exclusive: false,
            accepts_amber: false,
            filters: Filters::default(),
            schedule: None,
            caps: Caps::default(),
        }
    }
}

/// The largest weight a destination may have (it bounds the weighted rotation's period).
pub const MAX_WEIGHT: u32 = 1000;

/// The largest cap (`[destinations.caps]` `hour`, `day` or `month`) a destination may set. A cap counter
/// holds one entry per lead counted (see [`crate::store::Counters`]), so this bounds a counter item: about
/// 160 KB at most on DynamoDB (16 bytes a holder), well below its 400 KB item limit.
pub const MAX_CAP: u64 = 10_000;

impl DestinationRouting {
    /// The zone cap windows are counted in: the schedule's, else UTC.
    pub fn cap_zone(&self) -> Tz {
        self.schedule.as_ref().map_or(Tz::UTC, |s| s.timezone)
    }

    /// The capped windows `at` falls in, each with its limit: what a store reserves against (one counter
    /// per key, expiring at `ends_at`).
    pub fn cap_windows(&self, at: DateTime<Utc>) -> Vec<(CapWindow, u64)> {
        CapPeriod::ALL
            .into_iter()
            .filter_map(|period| {
                let limit = self.caps.limit(period)?;
                Some((cap_window(self.cap_zone(), period, at), limit))
            })
            .collect()
    }
}

/// A list of allowed or excluded values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    Only(Vec<String>),
    Except(Vec<String>),
}

/// What a destination takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filters {
    /// Property state codes (upper case).
    pub states: Option<Listed>,
    /// Property ZIP code prefixes (1 to 5 digits).
    pub zip_prefixes: Option<Listed>,
    pub fields: Vec<FieldFilter>,
    /// `skip_if_sold_within_days`: leave the buyer out when it bought the same consumer (same email or
    /// phone) within this many days.
    pub sold_within_days: Option<u32>,
}

/// A rule on one field of the lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldFilter {
    /// As partners post it: `contactInfo.email`.
    pub field: String,
    segments: Vec<String>,
    pub rule: FieldRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRule {
    OneOf(Vec<FieldValue>),
    Equals(FieldValue),
    /// Inclusive bounds; at least one is given.
    Range {
        min: Option<Decimal>,
        max: Option<Decimal>,
    },
}

/// A value a field filter compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    Number(Decimal),
    Bool(bool),
}

impl FieldValue {
    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (FieldValue::Text(expected), Value::String(text)) => expected == text,
            (FieldValue::Number(expected), Value::Number(number)) => {
                expected.compare_lead(number) == Ordering::Equal
            }
            (FieldValue::Bool(expected), Value::Bool(flag)) => expected == flag,
            _ => false,
        }
    }
}

impl FieldRule {
    fn holds(&self, value: &Value) -> bool {
        match self {
            FieldRule::OneOf(values) => values.iter().any(|v| v.matches(value)),
            FieldRule::Equals(expected) => expected.matches(value),
            FieldRule::Range { min, max } => {
                let Value::Number(number) = value else {
                    return false;
                };
                min.is_none_or(|min| min.compare_lead(number) != Ordering::Less)
                    && max.is_none_or(|max| max.compare_lead(number) != Ordering::Greater)
            }
        }
    }
}

impl FieldFilter {
    /// `Ok(())` when the lead passes; otherwise whether the lead gave the field at all.
    fn check(&self, lead: &Value) -> Result<(), bool> {
        let mut found = Vec::new();
        values_at(lead, &self.segments, &mut found);
        found.retain(|value| !value.is_null());
        if found.is_empty() {
            Err(false)
        } else if found.iter().any(|value| self.rule.holds(value)) {
            Ok(())
        } else {
            Err(true)
        }
    }
}

/// Every value at `segments` below `value`, through lists.
fn values_at<'a>(value: &'a Value, segments: &[String], out: &mut Vec<&'a Value>) {
    if let Value::Array(items) = value {
        for item in items {
            values_at(item, segments, out);
        }
        return;
    }
    match segments.split_first() {
        None => out.push(value),
        Some((first, rest)) => {
            if let Some(child) = value.get(first.as_str()) {
                values_at(child, rest, out);
            }
        }
    }
}

/// Days of the week, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Days(u8);

impl Days {
    pub const EVERY: Days = Days(0b111_1111);
    const NAMES: [(&'static str, Weekday); 7] = [
        ("mon", Weekday::Mon),
        ("tue", Weekday::Tue),
        ("wed", Weekday::Wed),
        ("thu", Weekday::Thu),
        ("fri", Weekday::Fri),
        ("sat", Weekday::Sat),
        ("sun", Weekday::Sun),
    ];

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    fn with(self, day: Weekday) -> Days {
        Days(self.0 | (1 << day.num_days_from_monday()))
    }
}

/// Opening hours in minutes after local midnight: `start` included, `end` not; `end < start` spans
/// midnight and belongs to the day it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hours {
    /// 0 to 1439.
    pub start: u16,
    /// 0 to 1440 (`24:00`), not equal to `start`.
    pub end: u16,
}

impl Hours {
    /// `HH:MM-HH:MM`, 24-hour clock; the end may be `24:00`.
    pub fn parse(text: &str) -> Result<Hours, String> {
        let shape = "must be HH:MM-HH:MM on the 24-hour clock, e.g. 08:00-20:00";
        let (start, end) = text.split_once('-').ok_or(shape)?;
        let minute = |part: &str| -> Option<u16> {
            let (h, m) = part.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let h: u16 = h.parse().ok()?;
            let m: u16 = m.parse().ok()?;
            match (h, m) {
                (24, 0) => Some(1440),
                (0..=23, 0..=59) => Some(h * 60 + m),
                _ => None,
            }
        };
        let (Some(start), Some(end)) = (minute(start), minute(end)) else {
            return Err(shape.to_owned());
        };
        if start == 1440 {
            return Err("the start must be 00:00 to 23:59".to_owned());
        }
        if start == end {
            return Err(
                "the start and the end are the same: leave `hours` out to be open all day"
                    .to_owned(),
            );
        }
        Ok(Hours { start, end })
    }

    fn spans_midnight(self) -> bool {
        self.end < self.start
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end) = (self.start, self.end);
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            start / 60,
            start % 60,
            end / 60,
            end % 60
        )
    }
}

/// When a buyer takes leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub timezone: Tz,
    pub days: Days,
    /// `None`: all day on its days.
    pub hours: Option<Hours>,
}

/// Why a schedule is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Closed {
    /// Not one of its days (for a span over midnight: the day the span started).
    Day,
    /// A day of its, outside its hours.
    Hours,
}

impl Schedule {
    /// Open at `at`, or why not.
    pub fn check(&self, at: DateTime<Utc>) -> Result<(), Closed> {
        let local = local_clock(self.timezone, at);
        let today = local.weekday();
        let Some(hours) = self.hours else {
            return if self.days.contains(today) {
                Ok(())
            } else {
                Err(Closed::Day)
            };
        };
        // Seconds within a minute do not matter: 05:59:59 is still before a 06:00 end.
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let span_day = if !hours.spans_midnight() {
            (hours.start..hours.end).contains(&minute).then_some(today)
        } else if minute >= hours.start {
            Some(today)
        } else if minute < hours.end {
            Some(today.pred())
        } else {
            None
        };
        match span_day {
            None => Err(Closed::Hours),
            Some(day) if self.days.contains(day) => Ok(()),
            Some(_) => Err(Closed::Day),
        }
    }

    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.check(at).is_ok()
    }
}

/// A cap window's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CapPeriod {
    Hour,
    Day,
    Month,
}

impl CapPeriod {
    pub const ALL: [CapPeriod; 3] = [CapPeriod::Hour, CapPeriod::Day, CapPeriod::Month];

    /// The configuration key, and the window key's prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            CapPeriod::Hour => "hour",
            CapPeriod::Day => "day",
            CapPeriod::Month => "month",
        }
    }

    /// "hourly", "daily" or "monthly".
    pub fn adjective(self) -> &'static str {
        match self {
            CapPeriod::Hour => "hourly",
            CapPeriod::Day => "daily",
            CapPeriod::Month => "monthly",
        }
    }
}

/// Most leads per window; `None`: no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    pub hour: Option<u64>,
    pub day: Option<u64>,
    pub month: Option<u64>,
}

impl Caps {
    pub fn limit(&self, period: CapPeriod) -> Option<u64> {
        match period {
            CapPeriod::Hour => self.hour,
            CapPeriod::Day => self.day,
            CapPeriod::Month => self.month,
        }
    }
}

/// One cap window: its stable key (`hour:2026-12-02T08`, `day:2026-12-02`, `month:2026-12`, on the local
/// clock of the zone) and the instant it ends (a TTL for the counter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapWindow {
    pub period: CapPeriod,
    pub key: String,
    pub ends_at: DateTime<Utc>,
}

/// The window of `period` that `at` falls in, on the local clock of `zone`. Pure; never panics (a window
/// past the calendar's end ends at the latest representable instant).
pub fn cap_window(zone: Tz, period: CapPeriod, at: DateTime<Utc>) -> CapWindow {
    let local = local_clock(zone, at);
    let date = local.date();
    let (key, next) = match period {
        CapPeriod::Hour => (
            format!("hour:{}", local.format("%Y-%m-%dT%H")),
            date.and_hms_opt(local.hour(), 0, 0)
                .and_then(|start| start.checked_add_signed(Duration::hours(1))),
        ),
        CapPeriod::Day => (
            format!("day:{}", date.format("%Y-%m-%d")),
            date.succ_opt().and_then(|next| next.and_hms_opt(0, 0, 0)),
        ),
        CapPeriod::Month => {
            let next = if date.month() == 12 {
                NaiveDate::from_ymd_opt(date.year().saturating_add(1), 1, 1)
            } else {
                NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
            };
            (
                format!("month:{}", date.format("%Y-%m")),
                next.and_then(|next| next.and_hms_opt(0, 0, 0)),
            )
        }
    };
    let ends_at = next.map_or(DateTime::<Utc>::MAX_UTC, |next| {
        first_instant_at(zone, next)
    });
    CapWindow {
        period,
        key,
        ends_at,
    }
}

/// Every window of `zone` that `at` falls in, hour, day and month.
pub fn cap_windows(zone: Tz, at: DateTime<Utc>) -> [CapWindow; 3] {
    CapPeriod::ALL.map(|period| cap_window(zone, period, at))
}

/// What the clock of `zone` shows at `at` (UTC's at the very edges of the calendar, where the local time
/// cannot be represented; chrono's own conversion panics there).
fn local_clock(zone: Tz, at: DateTime<Utc>) -> NaiveDateTime {
    let utc = at.naive_utc();
    let offset = zone.offset_from_utc_datetime(&utc).fix();
    utc.checked_add_offset(offset).unwrap_or(utc)
}

/// The first instant at which the local clock of `zone` shows `local` or later: the earlier of a time that
/// happens twice, the end of the gap for a time that does not exist.
fn first_instant_at(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut candidate = local;
    // Gaps are at most a day or so (Samoa skipped one in 2011); look a little further than that.
    for _ in 0..(3 * 24 * 60) {
        // Offsets only: chrono's `from_local_datetime` panics when the result is out of range.
        match zone.offset_from_local_datetime(&candidate) {
            LocalResult::Single(offset) | LocalResult::Ambiguous(offset, _) => {
                return candidate
                    .checked_sub_offset(offset.fix())
                    .map_or(DateTime::<Utc>::MAX_UTC, |utc| Utc.from_utc_datetime(&utc));
            }
            LocalResult::None => {}
        }
        match candidate.checked_add_signed(Duration::minutes(1)) {
            Some(next) => candidate = next,
            None => break,
        }
    }
    Utc.from_utc_datetime(&local)
}

// ---- cap usage -----------------------------------------------------------------------------------------

/// The cap usage routing reads: how many leads have been counted against a destination in a window.
pub trait CapUsage {
    fn used(&self, destination: &str, window_key: &str) -> u64;
}

/// No lead counted anywhere (a test lead, or a caller that does not track caps).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUsage;

impl CapUsage for NoUsage {
    fn used(&self, _destination: &str, _window_key: &str) -> u64 {
        0
    }
}

/// Usage by (destination id, window key).
impl CapUsage for BTreeMap<(String, String), u64> {
    fn used(&self, destination: &str, window_key: &str) -> u64 {
        self.get(&(destination.to_owned(), window_key.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

// ---- the plan ------------------------------------------------------------------------------------------

/// One buyer offered the lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub destination: DestinationId,
    /// To record on the delivery when the buyer accepts.
    pub price: Option<Cents>,
}

/// Buyers offered the lead at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub offers: Vec<Offer>,
    /// The one buyer here is exclusive: it is offered the lead alone.
    pub exclusive: bool,
}

/// Which filter left a buyer out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FilterMiss {
    /// `state`: the lead's property state (not PII), `None` when the lead gives none.
    State { state: Option<String> },
    /// The ZIP code is not kept here (it is location data); `given`: the lead has one.
    Zip { given: bool },
    /// `given`: the lead has the field (its value is not taken).
    Field { field: String, given: bool },
}

/// Why a configured buyer was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Does not take the lead's vertical (left out of the partner's view).
    Vertical,
    Disabled,
    Filter {
        which: FilterMiss,
    },
    Schedule {
        closed: Closed,
    },
    Cap {
        window: CapPeriod,
        key: String,
        used: u64,
        limit: u64,
    },
    /// Broadcast: the shared wave was full.
    OverMaxBuyers {
        max_buyers: u32,
    },
    /// LeadSafe rated the lead Amber and the buyer does not take Amber leads (`accepts_amber`).
    NotAmber,
    /// The buyer bought the same consumer within `days` (`skip_if_sold_within_days`).
    SoldBefore {
        days: u32,
    },
}

impl fmt::Display for SkipReason {
    /// The operator's words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Vertical => f.write_str("does not take this vertical"),
            SkipReason::Disabled => f.write_str("is disabled"),
            SkipReason::Filter { which } => match which {
                FilterMiss::State { state: Some(state) } => {
                    write!(f, "state filter: does not take {state}")
                }
                FilterMiss::State { state: None } => {
                    f.write_str("state filter: the lead has no property state")
                }
                FilterMiss::Zip { given: true } => {
                    f.write_str("ZIP filter: does not take the property's ZIP code")
                }
                FilterMiss::Zip { given: false } => {
                    f.write_str("ZIP filter: the lead has no property ZIP code")
                }
                FilterMiss::Field { field, given: true } => {
                    write!(f, "field filter on {field}: the lead's value is not taken")
                }
                FilterMiss::Field {
                    field,
                    given: false,
                } => write!(f, "field filter on {field}: the lead does not give it"),
            },
            SkipReason::Schedule {
                closed: Closed::Day,
            } => f.write_str("schedule: not open on this day"),
            SkipReason::Schedule {
                closed: Closed::Hours,
            } => f.write_str("schedule: outside its hours"),
            SkipReason::Cap {
                window,
                key,
                used,
                limit,
            } => write!(
                f,
                "{} cap reached: {used} of {limit} in {key}",
                window.adjective()
            ),
            SkipReason::OverMaxBuyers { max_buyers } => {
                write!(f, "broadcast wave already full (max_buyers = {max_buyers})")
            }
            SkipReason::NotAmber => f.write_str(
                "LeadSafe rated the lead Amber and this buyer does not take Amber leads",
            ),
            SkipReason::SoldBefore { days } => write!(
                f,
                "bought the same consumer within {days} days (skip_if_sold_within_days)"
            ),
        }
    }
}

/// A buyer left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub destination: DestinationId,
    pub reason: SkipReason,
}

/// Who a lead is offered to, in what order, and why the other buyers were left out.
///
/// Dispatch offers `steps[0]`, then follows [`RoutingPlan::next_step`]: a step in which a buyer accepts
/// ends routing (in a waterfall the lead is sold; an exclusive buyer has it alone; the broadcast wave is
/// the last step); a step in which every buyer rejects or dies passes to the next step; no step left means
/// the lead is unsold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingPlan {
    pub vertical: Vertical,
    pub strategy: Strategy,
    pub steps: Vec<Step>,
    pub skipped: Vec<Skipped>,
}

impl RoutingPlan {
    /// What comes after step `index`: `None` ends routing.
    pub fn next_step(&self, index: usize, accepted: bool) -> Option<usize> {
        let next = index.checked_add(1)?;
        (!accepted && next < self.steps.len()).then_some(next)
    }

    /// Every buyer of every step, in plan order.
    pub fn destinations(&self) -> impl Iterator<Item = &str> {
        self.steps
            .iter()
            .flat_map(|step| step.offers.iter().map(|offer| offer.destination.as_str()))
    }

    /// No buyer to offer the lead to.
    pub fn is_unsold(&self) -> bool {
        self.steps.is_empty()
    }

    /// One line per buyer left out, for operators: (destination id, reason).
    pub fn operator_explanations(&self) -> Vec<(String, String)> {
        self.skipped
            .iter()
            .map(|skipped| (skipped.destination.to_string(), skipped.reason.to_string()))
            .collect()
    }

    /// Why buyers were left out, for the partner who posted the lead: counted by reason, in words the
    /// partner can act on, with no buyer ids, names, prices or credentials. Buyers that do not take the
    /// vertical are not mentioned.
    pub fn partner_explanations(&self) -> Vec<String> {
        let mut counted: Vec<(PartnerReason, usize)> = Vec::new();
        for skipped in &self.skipped {
            let Some(reason) = PartnerReason::of(&skipped.reason) else {
                continue;
            };
            match counted.iter_mut().find(|(seen, _)| *seen == reason) {
                Some((_, count)) => *count += 1,
                None => counted.push((reason, 1)),
            }
        }
        counted
            .into_iter()
            .map(|(reason, count)| reason.render(count))
            .collect()
    }
}

/// A reason as a partner reads it: nothing that identifies a buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PartnerReason {
    Paused,
    State(Option<String>),
    Zip { given: bool },
    Field { field: String, given: bool },
    Closed(Closed),
    Cap(CapPeriod),
    Enough,
    NotAmber,
    SoldBefore,
}

impl PartnerReason {
    fn of(reason: &SkipReason) -> Option<PartnerReason> {
        Some(match reason {
            SkipReason::Vertical => return None,
            SkipReason::Disabled => PartnerReason::Paused,
            SkipReason::Filter { which } => match which {
                FilterMiss::State { state } => PartnerReason::State(state.clone()),
                FilterMiss::Zip { given } => PartnerReason::Zip { given: *given },
                FilterMiss::Field { field, given } => PartnerReason::Field {
                    field: field.clone(),
                    given: *given,
                },
            },
            SkipReason::Schedule { closed } => PartnerReason::Closed(*closed),
            SkipReason::Cap { window, .. } => PartnerReason::Cap(*window),
            SkipReason::OverMaxBuyers { .. } => PartnerReason::Enough,
            SkipReason::NotAmber => PartnerReason::NotAmber,
            SkipReason::SoldBefore { .. } => PartnerReason::SoldBefore,
        })
    }

    fn render(&self, count: usize) -> String {
        let one = count == 1;
        let buyers = if one { "buyer" } else { "buyers" };
        let verb =
            |singular: &'static str, plural: &'static str| if one { singular } else { plural };
        let its = verb("its", "their");
        let subject = format!("{count} {buyers}");
        match self {
            PartnerReason::Paused => {
                format!(
                    "{subject} {} not taking leads at the moment",
                    verb("is", "are")
                )
            }
            PartnerReason::State(Some(state)) => {
                format!(
                    "{subject} {} not take leads from {state}",
                    verb("does", "do")
                )
            }
            PartnerReason::State(None) => format!(
                "{subject} {} the property's state, which the lead does not give",
                verb("needs", "need")
            ),
            PartnerReason::Zip { given: true } => format!(
                "{subject} {} not take leads from this ZIP code area",
                verb("does", "do")
            ),
            PartnerReason::Zip { given: false } => format!(
                "{subject} {} the property's ZIP code, which the lead does not give",
                verb("needs", "need")
            ),
            PartnerReason::Field { field, given: true } => format!(
                "{subject} {} not take leads with this {field}",
                verb("does", "do")
            ),
            PartnerReason::Field {
                field,
                given: false,
            } => format!(
                "{subject} {} {field}, which the lead does not give",
                verb("needs", "need")
            ),
            PartnerReason::Closed(Closed::Day) => {
                format!("{subject} {} closed on this day", verb("was", "were"))
            }
            PartnerReason::Closed(Closed::Hours) => {
                format!("{subject} {} outside {its} hours", verb("was", "were"))
            }
            PartnerReason::Cap(period) => {
                format!("{subject} had reached {its} {} cap", period.adjective())
            }
            PartnerReason::Enough => format!(
                "{subject} {} not needed: the lead was offered to as many buyers as it may go to",
                verb("was", "were")
            ),
            PartnerReason::NotAmber => format!(
                "{subject} {} not take leads LeadSafe rates Amber",
                verb("does", "do")
            ),
            PartnerReason::SoldBefore => {
                format!("{subject} had already bought this consumer recently")
            }
        }
    }
}

// ---- route ---------------------------------------------------------------------------------------------

/// What screening found that routing must respect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screened {
    /// LeadSafe rated the lead Amber and the policy offers it only to buyers with `accepts_amber`.
    pub amber_only: bool,
    /// Buyers with `skip_if_sold_within_days` that bought the same consumer within their window.
    pub sold_to: BTreeSet<DestinationId>,
}

/// Why `destination` cannot take `lead` now, or `None` when it can.
fn ineligible<C>(
    destination: &Destination<C>,
    vertical: Vertical,
    lead: &Value,
    usage: &dyn CapUsage,
    screened: &Screened,
    now: DateTime<Utc>,
) -> Option<SkipReason> {
    if !destination.verticals.contains(&vertical) {
        return Some(SkipReason::Vertical);
    }
    if !destination.enabled {
        return Some(SkipReason::Disabled);
    }
    if screened.amber_only && !destination.routing.accepts_amber {
        return Some(SkipReason::NotAmber);
    }
    if let Some(days) = destination.routing.filters.sold_within_days {
        if screened.sold_to.contains(&destination.id) {
            return Some(SkipReason::SoldBefore { days });
        }
    }
    let routing = &destination.routing;
    let address = property_address(vertical);
    if let Some(states) = &routing.filters.states {
        let state = first_text(lead, address.state);
        let taken = state.is_some_and(|state| match states {
            Listed::Only(list) => list.iter().any(|s| s == state),
            Listed::Except(list) => !list.iter().any(|s| s == state),
        });
        if !taken {
            return Some(SkipReason::Filter {
                which: FilterMiss::State {
                    state: state.map(str::to_owned),
                },
            });
        }
    }
    if let Some(prefixes) = &routing.filters.zip_prefixes {
        let zip = first_text(lead, address.zip);
        let taken = zip.is_some_and(|zip| match prefixes {
            Listed::Only(list) => list.iter().any(|p| zip.starts_with(p.as_str())),
            Listed::Except(list) => !list.iter().any(|p| zip.starts_with(p.as_str())),
        });
        if !taken {
            return Some(SkipReason::Filter {
                which: FilterMiss::Zip {
                    given: zip.is_some(),
                },
            });
        }
    }
    for filter in &routing.filters.fields {
        if let Err(given) = filter.check(lead) {
            return Some(SkipReason::Filter {
                which: FilterMiss::Field {
                    field: filter.field.clone(),
                    given,
                },
            });
        }
    }
    if let Some(schedule) = &routing.schedule {
        if let Err(closed) = schedule.check(now) {
            return Some(SkipReason::Schedule { closed });
        }
    }
    for (window, limit) in routing.cap_windows(now) {
        let used = usage.used(&destination.id, &window.key);
        if used >= limit {
            return Some(SkipReason::Cap {
                window: window.period,
                key: window.key,
                used,
                limit,
            });
        }
    }
    None
}

fn offer<C>(destination: &Destination<C>) -> Offer {
    Offer {
        destination: destination.id.clone(),
        price: destination.routing.price,
    }
}

fn single<C>(destination: &Destination<C>) -> Step {
    Step {
        offers: vec![offer(destination)],
        exclusive: destination.routing.exclusive,
    }
}

/// The eligible buyers in smooth-weighted-round-robin order at `sequence`: the buyer nginx's SWRR picks
/// in round `sequence` (counting from 0, from a fresh state), then the others in the order the following
/// rounds first pick them. `buyers` are in priority order, which breaks ties. The rotation repeats every
/// `sum of weights` rounds, so only `sequence mod total` rounds are played.
fn weighted_order<'a, C>(buyers: &[&'a Destination<C>], sequence: u64) -> Vec<&'a Destination<C>> {
    let weights: Vec<i64> = buyers
        .iter()
        .map(|d| i64::from(d.routing.weight.max(1)))
        .collect();
    let total: i64 = weights.iter().sum();
    if buyers.is_empty() || total <= 0 {
        return Vec::new();
    }
    let mut current = vec![0i64; buyers.len()];
    let round = |current: &mut Vec<i64>| -> usize {
        let mut best = 0;
        for (i, weight) in weights.iter().enumerate() {
            current[i] += weight;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        best
    };
    let skip = sequence % total.unsigned_abs();
    for _ in 0..skip {
        round(&mut current);
    }
    let mut order: Vec<usize> = Vec::with_capacity(buyers.len());
    // Every buyer is picked at least once per period.
    for _ in 0..total {
        let pick = round(&mut current);
        if !order.contains(&pick) {
            order.push(pick);
            if order.len() == buyers.len() {
                break;
            }
        }
    }
    order.into_iter().map(|i| buyers[i]).collect()
}

/// The routing decision for `lead`: a pure function of the lead, the configuration, the cap usage, the time
/// and `sequence` (the vertical's weighted-rotation counter, which a store increments atomically per lead;
/// only [`Strategy::Weighted`] reads it). Every configured destination is either in a step or in
/// `skipped` with its reason.
pub fn route<C>(
    config: &Config<C>,
    lead: &LeadRecord,
    usage: &dyn CapUsage,
    now: DateTime<Utc>,
    sequence: u64,
) -> RoutingPlan {
    route_screened(config, lead, usage, &Screened::default(), now, sequence)
}

/// [`route`], leaving out the buyers screening's findings exclude (Amber, bought before).
pub fn route_screened<C>(
    config: &Config<C>,
    lead: &LeadRecord,
    usage: &dyn CapUsage,
    screened: &Screened,
    now: DateTime<Utc>,
    sequence: u64,
) -> RoutingPlan {
    let vertical = lead.vertical;
    let settings = config.routing.get(&vertical).copied().unwrap_or_default();
    let body = lead.lead.value();
    let mut skipped = Vec::new();
    let mut eligible: Vec<&Destination<C>> = Vec::new();
    for destination in &config.destinations {
        match ineligible(destination, vertical, &body, usage, screened, now) {
            Some(reason) => skipped.push(Skipped {
                destination: destination.id.clone(),
                reason,
            }),
            None => eligible.push(destination),
        }
    }
    // A stable sort: ties keep file order.
    eligible.sort_by_key(|d| d.routing.priority);
    let steps = match settings.strategy {
        Strategy::Waterfall => eligible.iter().map(|d| single(d)).collect(),
        Strategy::Weighted => weighted_order(&eligible, sequence)
            .into_iter()
            .map(single)
            .collect(),
        Strategy::Broadcast => {
            let (exclusive, shared): (Vec<&Destination<C>>, Vec<&Destination<C>>) =
                eligible.iter().partition(|d| d.routing.exclusive);
            let mut steps: Vec<Step> = exclusive.into_iter().map(single).collect();
            let max = usize::try_from(settings.max_buyers).unwrap_or(usize::MAX);
            let wave: Vec<Offer> = shared.iter().take(max).map(|d| offer(d)).collect();
            for left_out in shared.iter().skip(max) {
                skipped.push(Skipped {
                    destination: left_out.id.clone(),
                    reason: SkipReason::OverMaxBuyers {
                        max_buyers: settings.max_buyers,
                    },
                });
            }
            if !wave.is_empty() {
                steps.push(Step {
                    offers: wave,
                    exclusive: false,
                });
            }
            steps
        }
    };
    RoutingPlan {
        vertical,
        strategy: settings.strategy,
        steps,
        skipped,
    }
}

// ---- configuration: the document as written, and its checking ------------------------------------------

/// `[routing.<vertical>]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoutingDoc {
    #[serde(default)]
    strategy: Option<String>,
    #[serde(default)]
    max_buyers: Option<i64>,
    /// Read as a value, so that a wrong type is named by its key.
    #[serde(default)]
    resell_returns: Option<toml::Value>,
}

/// `[destinations.filters]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FiltersDoc {
    #[serde(default)]
    states: Option<Vec<String>>,
    #[serde(default)]
    exclude_states: Option<Vec<String>>,
    #[serde(default)]
    zip_prefixes: Option<Vec<String>>,
    #[serde(default)]
    exclude_zip_prefixes: Option<Vec<String>>,
    #[serde(default)]
    fields: Vec<FieldFilterDoc>,
    #[serde(default)]
    skip_if_sold_within_days: Option<i64>,
}

/// One `fields` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldFilterDoc {
    field: String,
    #[serde(default)]
    one_of: Option<Vec<toml::Value>>,
    #[serde(default)]
    equals: Option<toml::Value>,
    #[serde(default)]
    min: Option<toml::Value>,
    #[serde(default)]
    max: Option<toml::Value>,
}

/// `[destinations.schedule]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleDoc {
    timezone: String,
    #[serde(default)]
    days: Option<Vec<String>>,
    #[serde(default)]
    hours: Option<String>,
}

/// `[destinations.caps]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CapsDoc {
    #[serde(default)]
    hour: Option<i64>,
    #[serde(default)]
    day: Option<i64>,
    #[serde(default)]
    month: Option<i64>,
}

/// A destination's routing keys as written (config.rs hands them over from its `DestinationDoc`).
#[derive(Debug, Default)]
pub(crate) struct DestinationRoutingDoc {
    pub priority: Option<i64>,
    pub weight: Option<i64>,
    pub price: Option<toml::Value>,
    pub exclusive: bool,
    pub accepts_amber: bool,
    pub filters: Option<FiltersDoc>,
    pub schedule: Option<ScheduleDoc>,
    pub caps: Option<CapsDoc>,
}

/// Check `[routing.*]`: every vertical gets its settings (defaults where not written).
pub(crate) fn vertical_routing(
    doc: BTreeMap<String, RoutingDoc>,
) -> Result<BTreeMap<Vertical, VerticalRouting>, ConfigError> {
    let mut routing: BTreeMap<Vertical, VerticalRouting> = Vertical::ALL
        .into_iter()
        .map(|vertical| (vertical, VerticalRouting::default()))
        .collect();
    for (name, table) in doc {
        let key = |field: &str| format!("routing.{name}.{field}");
        let vertical: Vertical = name.parse().map_err(|_| {
            let known: Vec<&str> = Vertical::ALL.iter().map(|v| v.as_str()).collect();
            ConfigError::new(
                format!("routing.{name}"),
                format!("unknown vertical `{name}` (known: {})", known.join(", ")),
            )
        })?;
        let mut settings = VerticalRouting::default();
        if let Some(strategy) = &table.strategy {
            settings.strategy = strategy
                .parse()
                .map_err(|problem: String| ConfigError::new(key("strategy"), problem))?;
        }
        if let Some(max_buyers) = table.max_buyers {
            settings.max_buyers = u32::try_from(max_buyers)
                .ok()
                .filter(|max| *max >= 1)
                .ok_or_else(|| {
                    ConfigError::new(key("max_buyers"), "must be a whole number of at least 1")
                })?;
        }
        match table.resell_returns {
            None => {}
            Some(toml::Value::Boolean(resell)) => settings.resell_returns = resell,
            Some(_) => {
                return Err(ConfigError::new(
                    key("resell_returns"),
                    "must be true or false",
                ))
            }
        }
        routing.insert(vertical, settings);
    }
    Ok(routing)
}

/// Check a destination's routing keys. `key` turns a field name into its full key
/// (`destinations[2].filters.states`); `verticals` are the destination's, for field filters.
pub(crate) fn destination_routing(
    key: &dyn Fn(&str) -> String,
    verticals: &std::collections::BTreeSet<Vertical>,
    doc: DestinationRoutingDoc,
) -> Result<DestinationRouting, ConfigError> {
    let defaults = DestinationRouting::default();
    let weight = match doc.weight {
        None => defaults.weight,
        Some(weight) => u32::try_from(weight)
            .ok()
            .filter(|w| (1..=MAX_WEIGHT).contains(w))
            .ok_or_else(|| {
                ConfigError::new(
                    key("weight"),
                    format!("must be a whole number from 1 to {MAX_WEIGHT}"),
                )
            })?,
    };
    let price = doc
        .price
        .as_ref()
        .map(|price| parse_price(price).map_err(|problem| ConfigError::new(key("price"), problem)))
        .transpose()?;
    let filters = match doc.filters {
        None => Filters::default(),
        Some(filters) => check_filters(
            &|field| key(&format!("filters.{field}")),
            verticals,
            filters,
        )?,
    };
    let schedule = doc
        .schedule
        .map(|schedule| check_schedule(&|field| key(&format!("schedule.{field}")), schedule))
        .transpose()?;
    let caps = match doc.caps {
        None => Caps::default(),
        Some(caps) => {
            let limit = |field: &str, value: Option<i64>| -> Result<Option<u64>, ConfigError> {
                value
                    .map(|v| {
                        u64::try_from(v)
                            .ok()
                            .filter(|v| (1..=MAX_CAP).contains(v))
                            .ok_or_else(|| {
                                ConfigError::new(
                                    key(&format!("caps.{field}")),
                                    format!(
                                        "must be a whole number from 1 to {MAX_CAP} (disable the destination to stop its leads)"
                                    ),
                                )
                            })
                    })
                    .transpose()
            };
            Caps {
                hour: limit("hour", caps.hour)?,
                day: limit("day", caps.day)?,
                month: limit("month", caps.month)?,
            }
        }
    };
    Ok(DestinationRouting {
        priority: doc.priority.unwrap_or(defaults.priority),
        weight,
        price,
        exclusive: doc.exclusive,
        accepts_amber: doc.accepts_amber,
        filters,
        schedule,
        caps,
    })
}

/// A price in USD: a number (`18.50`, `18`) or a string (`"18.50"`), not negative, at most 2 decimal places.
fn parse_price(value: &toml::Value) -> Result<Cents, String> {
    let problem = || {
        format!(
            "must be an amount of US dollars from 0 to {} with at most 2 decimal places, e.g. 18.50",
            Cents::MAX
        )
    };
    let text = match value {
        toml::Value::Integer(whole) => whole.to_string(),
        toml::Value::Float(float) if float.is_finite() => float.to_string(),
        toml::Value::String(text) => text.trim().to_owned(),
        _ => return Err(problem()),
    };
    Cents::parse_usd(&text).ok_or_else(problem)
}

impl Cents {
    /// An amount of US dollars written as plain decimal digits (`18.50`, `18`, `0.1`): not negative, at
    /// most 2 decimal places, at most [`Cents::MAX`]. `None` for anything else (exponents, `$`, commas).
    pub fn parse_usd(text: &str) -> Option<Cents> {
        let digits = parse_plain_decimal(text)?;
        if digits.negative || digits.fraction.len() > 2 || digits.integer.len() > 7 {
            return None;
        }
        let whole: u64 = if digits.integer.is_empty() {
            0
        } else {
            digits.integer.parse().ok()?
        };
        let fraction: u64 = format!("{:0<2}", digits.fraction).parse().ok()?;
        let cents = Cents(whole * 100 + fraction);
        (cents <= Cents::MAX).then_some(cents)
    }
}

fn listed(
    key: &dyn Fn(&str) -> String,
    (only_name, only): (&str, Option<Vec<String>>),
    (except_name, except): (&str, Option<Vec<String>>),
    check: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Option<Listed>, ConfigError> {
    let (name, values, only_these) = match (only, except) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                key(except_name),
                format!("give `{only_name}` or `{except_name}`, not both"),
            ))
        }
        (Some(values), None) => (only_name, values, true),
        (None, Some(values)) => (except_name, values, false),
    };
    if values.is_empty() {
        return Err(ConfigError::new(
            key(name),
            "must list at least one value (leave the key out to take all)",
        ));
    }
    let values = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            check(value).map_err(|problem| ConfigError::new(format!("{}[{i}]", key(name)), problem))
        })
        .collect::<Result<Vec<String>, ConfigError>>()?;
    Ok(Some(if only_these {
        Listed::Only(values)
    } else {
        Listed::Except(values)
    }))
}

fn check_filters(
    key: &dyn Fn(&str) -> String,
    verticals: &std::collections::BTreeSet<Vertical>,
    doc: FiltersDoc,
) -> Result<Filters, ConfigError> {
    let states = listed(
        key,
        ("states", doc.states),
        ("exclude_states", doc.exclude_states),
        &|state| {
            StateCode::parse(state)
                .map(|code| code.as_str().to_owned())
                .map_err(|_| format!("`{state}` is not a 2-letter US state or territory code"))
        },
    )?;
    let zip_prefixes = listed(
        key,
        ("zip_prefixes", doc.zip_prefixes),
        ("exclude_zip_prefixes", doc.exclude_zip_prefixes),
        &|prefix| {
            if (1..=5).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_digit()) {
                Ok(prefix.to_owned())
            } else {
                Err(format!(
                    "`{prefix}` is not a ZIP code prefix (1 to 5 digits)"
                ))
            }
        },
    )?;
    let schemas: Vec<(Vertical, Value)> = verticals.iter().map(|v| (*v, v.schema())).collect();
    let fields = doc
        .fields
        .into_iter()
        .enumerate()
        .map(|(i, filter)| {
            check_field_filter(
                &|field| key(&format!("fields[{i}]{field}")),
                &schemas,
                filter,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sold_within_days = doc
        .skip_if_sold_within_days
        .map(|days| {
            u32::try_from(days)
                .ok()
                .filter(|d| (1..=MAX_SOLD_WITHIN_DAYS).contains(d))
                .ok_or_else(|| {
                    ConfigError::new(
                        key("skip_if_sold_within_days"),
                        format!("must be a whole number of days from 1 to {MAX_SOLD_WITHIN_DAYS}"),
                    )
                })
        })
        .transpose()?;
    Ok(Filters {
        states,
        zip_prefixes,
        fields,
        sold_within_days,
    })
}

/// The longest `skip_if_sold_within_days` (two years).
pub const MAX_SOLD_WITHIN_DAYS: u32 = 730;

/// The schema of the value at `segments`, through objects' `properties` and lists' `items`.
fn field_schema<'a>(schema: &'a Value, segments: &[String]) -> Option<&'a Value> {
    fn through_lists(mut node: &Value) -> &Value {
        while let Some(items) = node.get("items") {
            node = items;
        }
        node
    }
    let mut node = schema;
    for segment in segments {
        node = through_lists(node)
            .get("properties")?
            .get(segment.as_str())?;
    }
    Some(through_lists(node))
}

fn schema_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn check_field_filter(
    key: &dyn Fn(&str) -> String,
    schemas: &[(Vertical, Value)],
    doc: FieldFilterDoc,
) -> Result<FieldFilter, ConfigError> {
    let error = |field: &str, problem: String| ConfigError::new(key(field), problem);
    let segments: Vec<String> = doc.field.split('.').map(str::to_owned).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(error(
            ".field",
            "must name a field as partners post it, e.g. contactInfo.email".to_owned(),
        ));
    }
    let found: Vec<(Vertical, &Value)> = schemas
        .iter()
        .filter_map(|(vertical, schema)| Some((*vertical, field_schema(schema, &segments)?)))
        .collect();
    if found.is_empty() {
        let names: Vec<&str> = schemas.iter().map(|(v, _)| v.as_str()).collect();
        return Err(error(
            ".field",
            format!(
                "no field `{}` in the destination's verticals ({})",
                doc.field,
                names.join(", ")
            ),
        ));
    }
    let value_kinds = |vertical: Vertical, schema: &Value| -> Result<Vec<&'static str>, String> {
        let types = schema_types(schema);
        let mut kinds = Vec::new();
        if types.contains(&"string") {
            kinds.push("text");
        }
        if types.contains(&"number") || types.contains(&"integer") {
            kinds.push("number");
        }
        if types.contains(&"boolean") {
            kinds.push("boolean");
        }
        if kinds.is_empty() {
            return Err(format!(
                "`{}` is not a single value in {vertical} leads (a group of fields or an open bag)",
                doc.field
            ));
        }
        Ok(kinds)
    };
    let kinds = found
        .iter()
        .map(|(vertical, schema)| value_kinds(*vertical, schema))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|problem| error(".field", problem))?;
    // A value must fit the field in every vertical that has it, and be one of its enum values if it has one.
    let check_value = |field: &str, value: &toml::Value| -> Result<FieldValue, ConfigError> {
        let value = field_value(value).map_err(|problem| error(field, problem))?;
        let kind = match &value {
            FieldValue::Text(_) => "text",
            FieldValue::Number(_) => "number",
            FieldValue::Bool(_) => "boolean",
        };
        for ((vertical, schema), kinds) in found.iter().zip(&kinds) {
            if !kinds.contains(&kind) {
                return Err(error(
                    field,
                    format!(
                        "`{}` takes {} in {vertical} leads, not {kind}",
                        doc.field,
                        kinds.join(" or ")
                    ),
                ));
            }
            if let Some(Value::Array(allowed)) = schema.get("enum") {
                if !allowed.iter().any(|a| value.matches(a)) {
                    let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
                    return Err(error(
                        field,
                        format!(
                            "{} is not a value of `{}` in {vertical} leads (it is one of: {})",
                            display_value(&value),
                            doc.field,
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(value)
    };
    let given = [
        doc.one_of.is_some(),
        doc.equals.is_some(),
        doc.min.is_some() || doc.max.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(error(
            "",
            "give exactly one of `one_of`, `equals`, or `min`/`max` (either or both)".to_owned(),
        ));
    }
    let rule = if let Some(values) = &doc.one_of {
        if values.is_empty() {
            return Err(error(".one_of", "must list at least one value".to_owned()));
        }
        FieldRule::OneOf(
            values
                .iter()
                .enumerate()
                .map(|(i, value)| check_value(&format!(".one_of[{i}]"), value))
                .collect::<Result<_, _>>()?,
        )
    } else if let Some(value) = &doc.equals {
        FieldRule::Equals(check_value(".equals", value)?)
    } else {
        if let Some(((vertical, _), _)) = found
            .iter()
            .zip(&kinds)
            .find(|(_, k)| !k.contains(&"number"))
        {
            let field = if doc.min.is_some() { ".min" } else { ".max" };
            return Err(error(
                field,
                format!(
                    "`{}` is not a number in {vertical} leads: use one_of or equals",
                    doc.field
                ),
            ));
        }
        let bound =
            |field: &str, value: &Option<toml::Value>| -> Result<Option<Decimal>, ConfigError> {
                value
                    .as_ref()
                    .map(|value| match field_value(value) {
                        Ok(FieldValue::Number(number)) => Ok(number),
                        Ok(_) => Err(error(field, "must be a number".to_owned())),
                        Err(problem) => Err(error(field, problem)),
                    })
                    .transpose()
            };
        let min = bound(".min", &doc.min)?;
        let max = bound(".max", &doc.max)?;
        if let (Some(low), Some(high)) = (min, max) {
            if low > high {
                return Err(error(".max", format!("must be at least min ({low})")));
            }
        }
        FieldRule::Range { min, max }
    };
    Ok(FieldFilter {
        field: doc.field,
        segments,
        rule,
    })
}

fn display_value(value: &FieldValue) -> String {
    match value {
        FieldValue::Text(text) => format!("\"{text}\""),
        FieldValue::Number(number) => number.to_string(),
        FieldValue::Bool(flag) => flag.to_string(),
    }
}

fn field_value(value: &toml::Value) -> Result<FieldValue, String> {
    match value {
        toml::Value::String(text) => Ok(FieldValue::Text(text.clone())),
        toml::Value::Boolean(flag) => Ok(FieldValue::Bool(*flag)),
        toml::Value::Integer(whole) => Ok(FieldValue::Number(Decimal::from_integer(*whole))),
        toml::Value::Float(float) if float.is_finite() => Decimal::parse(&float.to_string())
            .map(FieldValue::Number)
            .ok_or_else(|| "numbers must be below 10^15 with at most 6 decimal places".to_owned()),
        _ => Err("must be text, a number or true/false".to_owned()),
    }
}

fn check_schedule(key: &dyn Fn(&str) -> String, doc: ScheduleDoc) -> Result<Schedule, ConfigError> {
    let timezone: Tz = doc.timezone.parse().map_err(|_| {
        ConfigError::new(
            key("timezone"),
            format!(
                "`{}` is not an IANA time zone name (e.g. America/Chicago, UTC)",
                doc.timezone
            ),
        )
    })?;
    let days = match doc.days {
        None => Days::EVERY,
        Some(names) => {
            if names.is_empty() {
                return Err(ConfigError::new(
                    key("days"),
                    "must list at least one day (leave it out for every day)",
                ));
            }
            let mut days = Days(0);
            for (i, name) in names.iter().enumerate() {
                let day = Days::NAMES
                    .iter()
                    .find(|(known, _)| known == name)
                    .map(|(_, day)| *day)
                    .ok_or_else(|| {
                        ConfigError::new(
                            format!("{}[{i}]", key("days")),
                            format!("unknown day `{name}` (mon, tue, wed, thu, fri, sat, sun)"),
                        )
                    })?;
                days = days.with(day);
            }
            days
        }
    };
    let hours = doc
        .hours
        .as_deref()
        .map(|text| Hours::parse(text).map_err(|problem| ConfigError::new(key("hours"), problem)))
        .transpose()?;
    Ok(Schedule {
        timezone,
        days,
        hours,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::LeadId;
    use crate::settings::{Config, Destination};
    use crate::verticals::test_support::set;
    use serde_json::json;

    fn secrets() -> BTreeMap<String, String> {
        [
            ("HASH_KEY", "h".repeat(40)),
            ("CALLBACK_KEY", "c".repeat(40)),
            (
                "HOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    const HUB: &str = r#"
[hub]
public_base_url = "http://127.0.0.1:3000"
hash_key = "env:HASH_KEY"
callback_key = "env:CALLBACK_KEY"
"#;

    /// A webhook buyer `id` for `verticals` (a TOML array) with extra `keys` (plain keys first, then tables).
    fn buyer(id: &str, verticals: &str, keys: &str) -> String {
        format!(
            "\n[[destinations]]\nid = \"{id}\"\nkind = \"webhook\"\nurl = \"https://{id}.example/leads\"\n\
             signing_secret = \"env:HOOK_SECRET\"\nverticals = {verticals}\n{keys}\n"
        )
    }

    fn load(routing: &str, buyers: &[String]) -> Result<Config, ConfigError> {
        Config::from_toml(&format!("{HUB}{routing}{}", buyers.concat()), &secrets())
    }

    fn config(routing: &str, buyers: &[String]) -> Config {
        match load(routing, buyers) {
            Ok(config) => config,
            Err(error) => panic!("the test configuration must load: {error}"),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 time")
    }

    /// The vertical's example lead with `edits` (dotted path, value; null removes), normalised.
    fn lead(vertical: Vertical, edits: &[(&str, Value)]) -> LeadRecord {
        let mut body = vertical.example();
        for (path, value) in edits {
            set(&mut body, path, value.clone());
        }
        let parsed = vertical.parse_value(&body).expect("a valid lead");
        let created = at("2026-12-02T15:00:00Z");
        LeadRecord::received(
            LeadId::generate(created),
            "acme",
            vertical,
            parsed.lead,
            created,
            None,
        )
    }

    fn steps(plan: &RoutingPlan) -> Vec<Vec<&str>> {
        plan.steps
            .iter()
            .map(|step| step.offers.iter().map(|o| o.destination.as_str()).collect())
            .collect()
    }

    fn reason_of<'a>(plan: &'a RoutingPlan, id: &str) -> Option<&'a SkipReason> {
        plan.skipped
            .iter()
            .find(|s| s.destination == id)
            .map(|s| &s.reason)
    }

    const NOON: &str = "2026-12-02T15:00:00Z";

    fn state(state: &str) -> Option<SkipReason> {
        Some(SkipReason::Filter {
            which: FilterMiss::State {
                state: Some(state.to_owned()),
            },
        })
    }

    fn zip(given: bool) -> Option<SkipReason> {
        Some(SkipReason::Filter {
            which: FilterMiss::Zip { given },
        })
    }

    fn field(name: &str, given: bool) -> Option<SkipReason> {
        Some(SkipReason::Filter {
            which: FilterMiss::Field {
                field: name.to_owned(),
                given,
            },
        })
    }

    /// (case, vertical, the buyer's `[destinations.filters]` lines, edits to the example lead, expected reason)
    type FilterRow<'a> = (
        &'a str,
        Vertical,
        &'a str,
        Vec<(&'a str, Value)>,
        Option<SkipReason>,
    );

    /// Cap usage by (destination, window key).
    type Usage = BTreeMap<(String, String), u64>;

    #[test]
    fn every_filter_kind_on_leads_of_every_vertical() {
        use Vertical::{Heloc, Mortgage, RealEstate, Solar};
        let rows: Vec<FilterRow> = vec![
            ("heloc states taken", Heloc, r#"states = ["TX", "FL"]"#, vec![], None),
            ("heloc states: codes are case-insensitive", Heloc, r#"states = ["fl"]"#, vec![], None),
            ("heloc states not taken", Heloc, r#"states = ["TX"]"#, vec![], state("FL")),
            ("heloc exclude_states hit", Heloc, r#"exclude_states = ["FL"]"#, vec![], state("FL")),
            ("heloc exclude_states miss", Heloc, r#"exclude_states = ["TX"]"#, vec![], None),
            ("heloc reads the property, not the borrower", Heloc, r#"states = ["TX"]"#, vec![("address.state", json!("TX"))], None),
            ("heloc zip_prefixes taken", Heloc, r#"zip_prefixes = ["787", "336"]"#, vec![], None),
            ("heloc zip_prefixes not taken", Heloc, r#"zip_prefixes = ["787"]"#, vec![], zip(true)),
            ("heloc exclude_zip_prefixes hit", Heloc, r#"exclude_zip_prefixes = ["33"]"#, vec![], zip(true)),
            ("heloc exclude_zip_prefixes miss", Heloc, r#"exclude_zip_prefixes = ["787"]"#, vec![], None),
            ("mortgage states taken", Mortgage, r#"states = ["TX"]"#, vec![("property.state", json!("tx"))], None),
            ("mortgage exclude_states hit", Mortgage, r#"exclude_states = ["FL"]"#, vec![], state("FL")),
            ("mortgage zip_prefixes, ZIP+4", Mortgage, r#"zip_prefixes = ["78701"]"#, vec![("property.zip", json!("78701-1234"))], None),
            ("mortgage zip_prefixes, no zip", Mortgage, r#"zip_prefixes = ["336"]"#, vec![("property.zip", Value::Null)], zip(false)),
            ("mortgage exclude_zip_prefixes, no zip", Mortgage, r#"exclude_zip_prefixes = ["787"]"#, vec![("property.zip", Value::Null)], zip(false)),
            ("solar states", Solar, r#"states = ["CA"]"#, vec![], None),
            ("solar reads the install address, not the mailing one", Solar, r#"states = ["NV"]"#, vec![("mailing_state", json!("NV"))], state("CA")),
            ("solar exclude_zip_prefixes", Solar, r#"exclude_zip_prefixes = ["900"]"#, vec![], zip(true)),
            ("real estate: the property first", RealEstate, r#"states = ["FL"]"#, vec![("property.state", json!("TX"))], state("TX")),
            ("real estate: else the lead's address", RealEstate, r#"states = ["FL"]"#, vec![("property.state", Value::Null)], None),
            ("real estate zip of the property", RealEstate, r#"zip_prefixes = ["33603"]"#, vec![], None),
            ("field one_of taken", Heloc, r#"fields = [{ field = "loanPurpose", one_of = ["homeImprovement", "debtConsolidation"] }]"#, vec![], None),
            ("field one_of not taken", Heloc, r#"fields = [{ field = "loanPurpose", one_of = ["homeImprovement"] }]"#, vec![], field("loanPurpose", true)),
            ("field equals", Heloc, r#"fields = [{ field = "buildingType", equals = "singleFamily" }]"#, vec![], None),
            ("field equals, other value", Heloc, r#"fields = [{ field = "buildingType", equals = "singleFamily" }]"#, vec![("buildingType", json!("townhouse"))], field("buildingType", true)),
            ("field equals a boolean", Heloc, r#"fields = [{ field = "listedForSaleIn6Months", equals = false }]"#, vec![], None),
            ("field min and max", Heloc, r#"fields = [{ field = "propertyUnits", min = 1, max = 2 }]"#, vec![], None),
            ("field over max", Heloc, r#"fields = [{ field = "propertyUnits", min = 1, max = 2 }]"#, vec![("buildingType", json!("multiUnit")), ("propertyUnits", json!(3))], field("propertyUnits", true)),
            ("field nested, dotted", Heloc, r#"fields = [{ field = "address.county", equals = "Hillsborough" }]"#, vec![], None),
            ("field missing fails", Heloc, r#"fields = [{ field = "address.county", equals = "Hillsborough" }]"#, vec![("address.county", Value::Null)], field("address.county", false)),
            ("mortgage min is inclusive", Mortgage, r#"fields = [{ field = "loanAmount", min = 150000 }]"#, vec![], None),
            ("mortgage min with cents", Mortgage, r#"fields = [{ field = "loanAmount", min = 150000.01 }]"#, vec![], field("loanAmount", true)),
            ("mortgage max is inclusive", Mortgage, r#"fields = [{ field = "loanAmount", max = 150000 }]"#, vec![], None),
            ("mortgage max, decimal lead", Mortgage, r#"fields = [{ field = "property.value", max = 425000.4 }]"#, vec![("property.value", json!(425000.5))], field("property.value", true)),
            ("mortgage missing field fails", Mortgage, r#"fields = [{ field = "creditBand", one_of = ["Good", "Excellent"] }]"#, vec![("creditBand", Value::Null)], field("creditBand", false)),
            ("real estate through a list", RealEstate, r#"fields = [{ field = "inquiry.locations.city", one_of = ["Tampa"] }]"#, vec![], None),
            ("real estate through a list, no match", RealEstate, r#"fields = [{ field = "inquiry.locations.city", one_of = ["Miami"] }]"#, vec![], field("inquiry.locations.city", true)),
            ("real estate decimal min", RealEstate, r#"fields = [{ field = "property.bathrooms", min = 2.5 }]"#, vec![], None),
            ("real estate decimal min, below", RealEstate, r#"fields = [{ field = "property.bathrooms", min = 2.6 }]"#, vec![], field("property.bathrooms", true)),
            ("real estate list of numbers", RealEstate, r#"fields = [{ field = "leadTypes", equals = 6 }]"#, vec![], None),
            ("every filter must pass, in order", Heloc, "states = [\"FL\"]\nfields = [{ field = \"loanPurpose\", equals = \"debtConsolidation\" }, { field = \"propertyUsage\", equals = \"investment\" }]", vec![], field("propertyUsage", true)),
        ];
        for (case, vertical, filters, edits, expected) in rows {
            let verticals = format!("[\"{vertical}\"]");
            let config = config(
                "",
                &[buyer(
                    "buyer",
                    &verticals,
                    &format!("[destinations.filters]\n{filters}"),
                )],
            );
            let plan = route(&config, &lead(vertical, &edits), &NoUsage, at(NOON), 0);
            match expected {
                None => assert_eq!(steps(&plan), vec![vec!["buyer"]], "{case}: {plan:?}"),
                Some(reason) => {
                    assert!(plan.is_unsold(), "{case}: {plan:?}");
                    assert_eq!(reason_of(&plan, "buyer"), Some(&reason), "{case}");
                }
            }
        }
    }

    fn schedule(zone: &str, days: Option<&str>, hours: Option<&str>) -> Schedule {
        let doc = ScheduleDoc {
            timezone: zone.to_owned(),
            days: days.map(|d| d.split(',').map(str::to_owned).collect()),
            hours: hours.map(str::to_owned),
        };
        check_schedule(&|field| field.to_owned(), doc).expect("a valid schedule")
    }

    #[test]
    fn a_span_over_midnight_belongs_to_the_day_it_started() {
        let friday_nights = schedule("UTC", Some("fri"), Some("22:00-06:00"));
        // 2026-12-03 is a Thursday, 12-04 a Friday, 12-05 a Saturday.
        let rows = [
            ("friday 21:59", "2026-12-04T21:59:00Z", Err(Closed::Hours)),
            ("friday 22:00", "2026-12-04T22:00:00Z", Ok(())),
            ("friday 23:30", "2026-12-04T23:30:00Z", Ok(())),
            ("saturday 00:00", "2026-12-05T00:00:00Z", Ok(())),
            ("saturday 05:59:59", "2026-12-05T05:59:59Z", Ok(())),
            ("saturday 06:00", "2026-12-05T06:00:00Z", Err(Closed::Hours)),
            (
                "friday 05:59 belongs to thursday",
                "2026-12-04T05:59:00Z",
                Err(Closed::Day),
            ),
            (
                "saturday 23:30 starts a saturday span",
                "2026-12-05T23:30:00Z",
                Err(Closed::Day),
            ),
            ("thursday 23:30", "2026-12-03T23:30:00Z", Err(Closed::Day)),
        ];
        for (case, instant, expected) in rows {
            assert_eq!(friday_nights.check(at(instant)), expected, "{case}");
        }
        let weekdays = schedule("UTC", Some("mon,tue,wed,thu,fri"), Some("08:00-20:00"));
        assert_eq!(weekdays.check(at("2026-12-04T19:59:00Z")), Ok(()));
        assert_eq!(
            weekdays.check(at("2026-12-04T20:00:00Z")),
            Err(Closed::Hours)
        );
        assert_eq!(weekdays.check(at("2026-12-05T12:00:00Z")), Err(Closed::Day));
        let until_midnight = schedule("UTC", None, Some("18:00-24:00"));
        assert!(until_midnight.is_open(at("2026-12-05T23:59:59Z")));
        assert!(!until_midnight.is_open(at("2026-12-06T00:00:00Z")));
        let every_day = schedule("UTC", None, None);
        assert!(every_day.is_open(at("2026-12-05T03:00:00Z")));
    }

    #[test]
    fn the_same_instant_is_open_in_one_zone_and_closed_in_another() {
        let instant = at("2026-12-02T15:00:00Z");
        let rows = [
            ("America/Chicago", true),      // 09:00
            ("Europe/London", true),        // 15:00
            ("America/Los_Angeles", false), // 07:00
            ("Asia/Tokyo", false),          // 00:00 on the 3rd
            ("Asia/Kolkata", false),        // 20:30
        ];
        for (zone, open) in rows {
            let hours = schedule(zone, None, Some("09:00-17:00"));
            assert_eq!(hours.is_open(instant), open, "{zone}");
        }
        // A buyer closed by its schedule is left out with that reason.
        let config = config(
            "",
            &[
                buyer("chicago", "[\"heloc\"]", "[destinations.schedule]\ntimezone = \"America/Chicago\"\nhours = \"09:00-17:00\""),
                buyer("tokyo", "[\"heloc\"]", "[destinations.schedule]\ntimezone = \"Asia/Tokyo\"\nhours = \"09:00-17:00\""),
            ],
        );
        let plan = route(&config, &lead(Vertical::Heloc, &[]), &NoUsage, instant, 0);
        assert_eq!(steps(&plan), vec![vec!["chicago"]]);
        assert_eq!(
            reason_of(&plan, "tokyo"),
            Some(&SkipReason::Schedule {
                closed: Closed::Hours
            })
        );
    }

    fn window(zone: &str, period: CapPeriod, instant: &str) -> (String, DateTime<Utc>) {
        let zone: Tz = zone.parse().expect("a zone");
        let window = cap_window(zone, period, at(instant));
        (window.key, window.ends_at)
    }

    #[test]
    fn spring_forward_in_chicago() {
        // 2026-03-08: at 02:00 CST the clock jumps to 03:00 CDT; 02:30 does not exist.
        let skipped_hour = schedule("America/Chicago", Some("sun"), Some("02:30-03:30"));
        let rows = [
            ("01:59 CST", "2026-03-08T07:59:00Z", false),
            (
                "03:00 CDT, after the start that never came",
                "2026-03-08T08:00:00Z",
                true,
            ),
            ("03:29 CDT", "2026-03-08T08:29:00Z", true),
            ("03:30 CDT", "2026-03-08T08:30:00Z", false),
        ];
        for (case, instant, open) in rows {
            assert_eq!(skipped_hour.is_open(at(instant)), open, "{case}");
        }
        let never = schedule("America/Chicago", None, Some("02:10-02:50"));
        let mut instant = at("2026-03-08T06:00:00Z");
        while instant < at("2026-03-08T10:00:00Z") {
            assert!(!never.is_open(instant), "{instant}");
            instant += Duration::minutes(1);
        }
        let zone = "America/Chicago";
        let rows = [
            (
                CapPeriod::Hour,
                "2026-03-08T07:30:00Z",
                "hour:2026-03-08T01",
                "2026-03-08T08:00:00Z",
            ),
            (
                CapPeriod::Hour,
                "2026-03-08T08:00:00Z",
                "hour:2026-03-08T03",
                "2026-03-08T09:00:00Z",
            ),
            (
                CapPeriod::Day,
                "2026-03-08T05:59:59Z",
                "day:2026-03-07",
                "2026-03-08T06:00:00Z",
            ),
            (
                CapPeriod::Day,
                "2026-03-08T08:00:00Z",
                "day:2026-03-08",
                "2026-03-09T05:00:00Z",
            ),
            (
                CapPeriod::Month,
                "2026-03-08T08:00:00Z",
                "month:2026-03",
                "2026-04-01T05:00:00Z",
            ),
        ];
        for (period, instant, key, ends) in rows {
            assert_eq!(
                window(zone, period, instant),
                (key.to_owned(), at(ends)),
                "{instant} {period:?}"
            );
        }
    }

    #[test]
    fn fall_back_in_chicago() {
        // 2026-11-01: at 02:00 CDT the clock goes back to 01:00 CST; 01:30 happens twice.
        let first = "2026-11-01T06:30:00Z"; // 01:30 CDT
        let second = "2026-11-01T07:30:00Z"; // 01:30 CST
        let one_to_two = schedule("America/Chicago", Some("sun"), Some("01:00-02:00"));
        for (instant, open) in [
            ("2026-11-01T05:59:00Z", false),
            (first, true),
            (second, true),
            ("2026-11-01T08:00:00Z", false),
        ] {
            assert_eq!(one_to_two.is_open(at(instant)), open, "{instant}");
        }
        let zone = "America/Chicago";
        let rows = [
            (
                CapPeriod::Hour,
                "2026-11-01T05:30:00Z",
                "hour:2026-11-01T00",
                "2026-11-01T06:00:00Z",
            ),
            // The hour that happens twice is one window of the local clock, two real hours long.
            (
                CapPeriod::Hour,
                first,
                "hour:2026-11-01T01",
                "2026-11-01T08:00:00Z",
            ),
            (
                CapPeriod::Hour,
                second,
                "hour:2026-11-01T01",
                "2026-11-01T08:00:00Z",
            ),
            (
                CapPeriod::Hour,
                "2026-11-01T08:30:00Z",
                "hour:2026-11-01T02",
                "2026-11-01T09:00:00Z",
            ),
            (
                CapPeriod::Day,
                first,
                "day:2026-11-01",
                "2026-11-02T06:00:00Z",
            ),
            (
                CapPeriod::Day,
                "2026-11-01T04:59:00Z",
                "day:2026-10-31",
                "2026-11-01T05:00:00Z",
            ),
            (
                CapPeriod::Month,
                "2026-11-01T04:59:00Z",
                "month:2026-10",
                "2026-11-01T05:00:00Z",
            ),
            (
                CapPeriod::Month,
                first,
                "month:2026-11",
                "2026-12-01T06:00:00Z",
            ),
        ];
        for (period, instant, key, ends) in rows {
            assert_eq!(
                window(zone, period, instant),
                (key.to_owned(), at(ends)),
                "{instant} {period:?}"
            );
        }
    }

    #[test]
    fn cap_windows_are_keyed_on_the_zone_clock() {
        let chicago: Tz = "America/Chicago".parse().expect("a zone");
        let keys = |zone: Tz, instant: &str| -> Vec<String> {
            cap_windows(zone, at(instant))
                .into_iter()
                .map(|w| w.key)
                .collect()
        };
        assert_eq!(
            keys(chicago, "2026-12-02T05:30:00Z"),
            ["hour:2026-12-01T23", "day:2026-12-01", "month:2026-12"]
        );
        assert_eq!(
            keys(Tz::UTC, "2026-12-02T05:30:00Z"),
            ["hour:2026-12-02T05", "day:2026-12-02", "month:2026-12"]
        );
        assert_eq!(
            window("America/Chicago", CapPeriod::Month, "2027-01-01T05:30:00Z"),
            ("month:2026-12".to_owned(), at("2027-01-01T06:00:00Z"))
        );
        // Every window ends after the instant and after the window before it, in zones with odd changes:
        // Lord Howe moves by 30 minutes, Samoa skipped 2011-12-30 entirely.
        for (zone, from) in [
            ("America/Chicago", "2026-01-01T00:00:00Z"),
            ("Australia/Lord_Howe", "2026-01-01T00:00:00Z"),
            ("Pacific/Apia", "2011-12-01T00:00:00Z"),
            ("UTC", "2026-01-01T00:00:00Z"),
        ] {
            let zone: Tz = zone.parse().expect("a zone");
            let mut instant = at(from);
            let end = instant + Duration::days(366);
            while instant < end {
                for window in cap_windows(zone, instant) {
                    assert!(window.ends_at > instant, "{zone} {instant} {window:?}");
                    let next = cap_window(zone, window.period, window.ends_at);
                    assert_ne!(next.key, window.key, "{zone} {instant}");
                }
                instant += Duration::minutes(30);
            }
        }
        // The edges of the calendar do not panic.
        for instant in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            for zone in [chicago, Tz::UTC, "Asia/Tokyo".parse().expect("a zone")] {
                let _ = cap_windows(zone, instant);
            }
        }
    }

    #[test]
    fn caps_at_the_limit_leave_a_buyer_out() {
        let config = config(
            "",
            &[
                buyer("capped", "[\"heloc\"]", "[destinations.schedule]\ntimezone = \"America/Chicago\"\n[destinations.caps]\nhour = 10\nday = 100"),
                buyer("utc", "[\"heloc\"]", "[destinations.caps]\nmonth = 5"),
            ],
        );
        let capped = config.destination("capped").expect("configured");
        let windows: Vec<(String, u64)> = capped
            .routing
            .cap_windows(at(NOON))
            .into_iter()
            .map(|(w, limit)| (w.key, limit))
            .collect();
        assert_eq!(
            windows,
            [
                ("hour:2026-12-02T09".to_owned(), 10),
                ("day:2026-12-02".to_owned(), 100)
            ]
        );
        let usage = |entries: &[(&str, &str, u64)]| -> Usage {
            entries
                .iter()
                .map(|(d, k, n)| ((d.to_string(), k.to_string()), *n))
                .collect()
        };
        let day_cap = |used| SkipReason::Cap {
            window: CapPeriod::Day,
            key: "day:2026-12-02".to_owned(),
            used,
            limit: 100,
        };
        let rows: Vec<(&str, Usage, Option<SkipReason>)> = vec![
            ("no usage", usage(&[]), None),
            ("cap - 1", usage(&[("capped", "day:2026-12-02", 99)]), None),
            (
                "at the cap",
                usage(&[("capped", "day:2026-12-02", 100)]),
                Some(day_cap(100)),
            ),
            (
                "over the cap",
                usage(&[("capped", "day:2026-12-02", 150)]),
                Some(day_cap(150)),
            ),
            (
                "another day's count",
                usage(&[("capped", "day:2026-12-01", 100)]),
                None,
            ),
            (
                "the UTC day is not the buyer's",
                usage(&[("capped", "day:2026-12-03", 100)]),
                None,
            ),
            (
                "hour cap - 1",
                usage(&[("capped", "hour:2026-12-02T09", 9)]),
                None,
            ),
            (
                "hour cap",
                usage(&[("capped", "hour:2026-12-02T09", 10)]),
                Some(SkipReason::Cap {
                    window: CapPeriod::Hour,
                    key: "hour:2026-12-02T09".to_owned(),
                    used: 10,
                    limit: 10,
                }),
            ),
            (
                "another buyer's count",
                usage(&[("utc", "day:2026-12-02", 100)]),
                None,
            ),
        ];
        for (case, usage, expected) in rows {
            let plan = route(&config, &lead(Vertical::Heloc, &[]), &usage, at(NOON), 0);
            assert_eq!(reason_of(&plan, "capped"), expected.as_ref(), "{case}");
            assert_eq!(
                plan.destinations().any(|d| d == "capped"),
                expected.is_none(),
                "{case}"
            );
        }
        // Without a schedule, windows are UTC.
        let utc = route(
            &config,
            &lead(Vertical::Heloc, &[]),
            &usage(&[("utc", "month:2026-12", 5)]),
            at(NOON),
            0,
        );
        assert!(matches!(
            reason_of(&utc, "utc"),
            Some(SkipReason::Cap {
                window: CapPeriod::Month,
                ..
            })
        ));
    }

    #[test]
    fn waterfall_orders_by_priority_with_ties_in_file_order() {
        let config = config(
            "[routing.heloc]\nstrategy = \"waterfall\"\n",
            &[
                buyer("five-a", "[\"heloc\"]", "priority = 5"),
                buyer("default", "[\"heloc\"]", ""),
                buyer("five-b", "[\"heloc\"]", "priority = 5\nexclusive = true"),
                buyer("first", "[\"heloc\"]", "priority = 1\nprice = 18.50"),
                buyer("paused", "[\"heloc\"]", "priority = 0\nenabled = false"),
                buyer("mortgage-only", "[\"mortgage\"]", "priority = 0"),
            ],
        );
        let plan = route(&config, &lead(Vertical::Heloc, &[]), &NoUsage, at(NOON), 0);
        assert_eq!(plan.strategy, Strategy::Waterfall);
        assert_eq!(
            steps(&plan),
            vec![
                vec!["first"],
                vec!["five-a"],
                vec!["five-b"],
                vec!["default"]
            ]
        );
        assert_eq!(plan.steps[0].offers[0].price, Some(Cents(1850)));
        assert_eq!(
            plan.steps[0].offers[0]
                .price
                .map(|p| p.to_string())
                .as_deref(),
            Some("$18.50")
        );
        assert!(plan.steps[2].exclusive && !plan.steps[1].exclusive);
        assert_eq!(reason_of(&plan, "paused"), Some(&SkipReason::Disabled));
        assert_eq!(
            reason_of(&plan, "mortgage-only"),
            Some(&SkipReason::Vertical)
        );
        // Dispatch: the next buyer on rejection, none after an acceptance or after the last.
        assert_eq!(plan.next_step(0, false), Some(1));
        assert_eq!(plan.next_step(0, true), None);
        assert_eq!(plan.next_step(3, false), None);
        // The default strategy is the waterfall too.
        let default = config_without_routing();
        assert_eq!(
            default.routing.get(&Vertical::Solar),
            Some(&VerticalRouting::default())
        );
    }

    fn config_without_routing() -> Config {
        config("", &[buyer("only", "[\"heloc\"]", "")])
    }

    #[test]
    fn weighted_follows_smooth_weighted_round_robin_over_eligible_buyers() {
        let config = config(
            "[routing.heloc]\nstrategy = \"weighted\"\n",
            &[
                buyer("a", "[\"heloc\"]", "weight = 5"),
                buyer("b", "[\"heloc\"]", ""),
                buyer("c", "[\"heloc\"]", "weight = 1"),
            ],
        );
        let heloc = lead(Vertical::Heloc, &[]);
        let chosen: Vec<String> = (0..14)
            .map(|n| {
                let plan = route(&config, &heloc, &NoUsage, at(NOON), n);
                plan.steps[0].offers[0].destination.to_string()
            })
            .collect();
        // nginx's sequence for weights 5, 1, 1: a a b a c a a, repeating.
        assert_eq!(chosen.concat(), "aabacaaaabacaa");
        // The rest follow in the order the rotation reaches them, one at a time.
        let plan = route(&config, &heloc, &NoUsage, at(NOON), 2);
        assert_eq!(steps(&plan), vec![vec!["b"], vec!["a"], vec!["c"]]);
        assert_eq!(plan.next_step(0, false), Some(1));
        // A pure function of its inputs.
        assert_eq!(plan, route(&config, &heloc, &NoUsage, at(NOON), 2));
        assert_eq!(
            steps(&route(
                &config,
                &heloc,
                &NoUsage,
                at(NOON),
                2 + 7 * 1_000_000_000
            )),
            steps(&plan)
        );
        assert_eq!(
            steps(&route(&config, &heloc, &NoUsage, at(NOON), u64::MAX)).len(),
            3
        );
    }

    /// Route `leads` weighted leads, counting each chosen buyer's use; the share (in %) each buyer got.
    fn weighted_shares(config: &Config, leads: u64) -> BTreeMap<String, f64> {
        let heloc = lead(Vertical::Heloc, &[]);
        let mut usage = Usage::new();
        let mut chosen: BTreeMap<String, u64> = BTreeMap::new();
        for n in 0..leads {
            let plan = route(config, &heloc, &usage, at(NOON), n);
            let Some(first) = plan.steps.first() else {
                continue;
            };
            let id = first.offers[0].destination.to_string();
            let destination = config.destination(&id).expect("configured");
            for (window, _) in destination.routing.cap_windows(at(NOON)) {
                *usage.entry((id.clone(), window.key)).or_default() += 1;
            }
            *chosen.entry(id).or_default() += 1;
        }
        chosen
            .into_iter()
            .map(|(id, count)| (id, count as f64 * 100.0 / leads as f64))
            .collect()
    }

    #[test]
    fn ten_thousand_weighted_leads_land_on_the_weights() {
        let weights = |cap: &str| {
            config(
                "[routing.heloc]\nstrategy = \"weighted\"\n",
                &[
                    buyer("one", "[\"heloc\"]", "weight = 1"),
                    buyer("three", "[\"heloc\"]", &format!("weight = 3\n{cap}")),
                    buyer("six", "[\"heloc\"]", "weight = 6"),
                ],
            )
        };
        let shares = weighted_shares(&weights(""), 10_000);
        for (id, expected) in [("one", 10.0), ("three", 30.0), ("six", 60.0)] {
            let share = shares.get(id).copied().unwrap_or(0.0);
            assert!(
                (share - expected).abs() <= 3.0,
                "{id}: {share}% (expected {expected}%)"
            );
        }
        // "three" reaches its cap of 1,500 halfway (30% of 5,000); its share goes to the others, 1:6.
        let shares = weighted_shares(&weights("[destinations.caps]\nday = 1500"), 10_000);
        let rest = 5_000.0 / 7.0;
        for (id, expected) in [
            ("one", (500.0 + rest) / 100.0),
            ("three", 15.0),
            ("six", (3_000.0 + 6.0 * rest) / 100.0),
        ] {
            let share = shares.get(id).copied().unwrap_or(0.0);
            assert!(
                (share - expected).abs() <= 3.0,
                "{id}: {share}% (expected {expected:.1}%)"
            );
        }
        assert_eq!(shares.get("three").copied(), Some(15.0), "exactly the cap");
    }

    #[test]
    fn broadcast_offers_exclusive_buyers_alone_then_one_shared_wave() {
        let config = config(
            "[routing.heloc]\nstrategy = \"broadcast\"\nmax_buyers = 2\n",
            &[
                buyer("shared-3", "[\"heloc\"]", "priority = 3"),
                buyer("shared-1", "[\"heloc\"]", "priority = 1"),
                buyer(
                    "exclusive-50",
                    "[\"heloc\"]",
                    "priority = 50\nexclusive = true",
                ),
                buyer("shared-2", "[\"heloc\"]", "priority = 2"),
                buyer(
                    "exclusive-10",
                    "[\"heloc\"]",
                    "priority = 10\nexclusive = true",
                ),
            ],
        );
        let plan = route(&config, &lead(Vertical::Heloc, &[]), &NoUsage, at(NOON), 0);
        assert_eq!(plan.strategy, Strategy::Broadcast);
        assert_eq!(
            steps(&plan),
            vec![
                vec!["exclusive-10"],
                vec!["exclusive-50"],
                vec!["shared-1", "shared-2"]
            ]
        );
        let exclusive: Vec<bool> = plan.steps.iter().map(|s| s.exclusive).collect();
        assert_eq!(exclusive, [true, true, false]);
        assert_eq!(
            reason_of(&plan, "shared-3"),
            Some(&SkipReason::OverMaxBuyers { max_buyers: 2 })
        );
        // An exclusive buyer that accepts ends routing; one that rejects passes the lead on.
        assert_eq!(plan.next_step(0, true), None);
        assert_eq!(plan.next_step(1, false), Some(2));
        assert_eq!(plan.next_step(2, false), None);
        // The default max_buyers is 1.
        let one = config_with_broadcast_default();
        let plan = route(&one, &lead(Vertical::Heloc, &[]), &NoUsage, at(NOON), 0);
        assert_eq!(steps(&plan), vec![vec!["a"]]);
        assert_eq!(
            reason_of(&plan, "b"),
            Some(&SkipReason::OverMaxBuyers { max_buyers: 1 })
        );
    }

    fn config_with_broadcast_default() -> Config {
        config(
            "[routing.heloc]\nstrategy = \"broadcast\"\n",
            &[buyer("a", "[\"heloc\"]", ""), buyer("b", "[\"heloc\"]", "")],
        )
    }

    #[test]
    fn explanations_for_operators_and_for_partners() {
        let config = config(
            "",
            &[
                buyer("acme-lending", "[\"heloc\"]", "price = 18.50\nenabled = false"),
                buyer("bigbank-tx", "[\"heloc\"]", "price = 22.75\n[destinations.filters]\nstates = [\"TX\"]"),
                buyer("night-owl", "[\"heloc\"]", "[destinations.schedule]\ntimezone = \"UTC\"\nhours = \"22:00-06:00\""),
                buyer("weekend-co", "[\"heloc\"]", "[destinations.schedule]\ntimezone = \"UTC\"\ndays = [\"sat\", \"sun\"]"),
                buyer("early-bird", "[\"heloc\"]", "[destinations.schedule]\ntimezone = \"America/Chicago\"\nhours = \"05:00-07:00\""),
                buyer("capped-co", "[\"heloc\"]", "price = 9.99\n[destinations.caps]\nday = 40"),
                buyer("purpose-co", "[\"heloc\"]", "[destinations.filters]\nfields = [{ field = \"loanPurpose\", equals = \"education\" }]"),
                buyer("sonar-mortgage", "[\"mortgage\"]", ""),
                buyer("winner", "[\"heloc\"]", "price = 30"),
            ],
        );
        let usage: Usage = [(("capped-co".to_owned(), "day:2026-12-02".to_owned()), 40)].into();
        let plan = route(&config, &lead(Vertical::Heloc, &[]), &usage, at(NOON), 0);
        assert_eq!(steps(&plan), vec![vec!["winner"]]);
        let operator = plan.operator_explanations();
        let operator: Vec<(&str, &str)> = operator
            .iter()
            .map(|(d, r)| (d.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            operator,
            [
                ("acme-lending", "is disabled"),
                ("bigbank-tx", "state filter: does not take FL"),
                ("night-owl", "schedule: outside its hours"),
                ("weekend-co", "schedule: not open on this day"),
                ("early-bird", "schedule: outside its hours"),
                ("capped-co", "daily cap reached: 40 of 40 in day:2026-12-02"),
                (
                    "purpose-co",
                    "field filter on loanPurpose: the lead's value is not taken"
                ),
                ("sonar-mortgage", "does not take this vertical"),
            ]
        );
        let partner = plan.partner_explanations();
        assert_eq!(
            partner,
            [
                "1 buyer is not taking leads at the moment",
                "1 buyer does not take leads from FL",
                "2 buyers were outside their hours",
                "1 buyer was closed on this day",
                "1 buyer had reached its daily cap",
                "1 buyer does not take leads with this loanPurpose",
            ]
        );
        let text = partner.join("\n");
        for destination in &config.destinations {
            assert!(!text.contains(destination.id.as_str()), "{text}");
        }
        for internal in [
            "$", "18.5", "22.75", "9.99", "1850", "40", "mortgage", "day:",
        ] {
            assert!(!text.contains(internal), "`{internal}` in {text}");
        }
        // Plural and singular wording.
        assert_eq!(
            PartnerReason::Cap(CapPeriod::Hour).render(3),
            "3 buyers had reached their hourly cap"
        );
        assert_eq!(
            PartnerReason::Field {
                field: "creditBand".to_owned(),
                given: false
            }
            .render(1),
            "1 buyer needs creditBand, which the lead does not give"
        );
    }

    #[test]
    fn odd_lead_bodies_never_panic() {
        let config = config(
            "[routing.heloc]\nstrategy = \"weighted\"\n",
            &[
                buyer("filters", "[\"heloc\"]", "[destinations.filters]\nstates = [\"FL\"]\nexclude_zip_prefixes = [\"9\"]\nfields = [{ field = \"propertyUnits\", min = 1 }, { field = \"address.county\", one_of = [\"X\"] }]"),
                buyer("open", "[\"heloc\"]", "weight = 1000"),
            ],
        );
        let created = at(NOON);
        for body in [
            json!(null),
            json!([]),
            json!("text"),
            json!({"address": [1, {"state": 5}], "propertyUnits": "2"}),
            json!({"address": {"state": null, "zip": 33601, "county": [[["X"]]]}, "propertyUnits": 1e300}),
            json!({"propertyUnits": -1e-300}),
        ] {
            let record = LeadRecord::received(
                LeadId::generate(created),
                "acme",
                Vertical::Heloc,
                body,
                created,
                None,
            );
            let plan = route(&config, &record, &NoUsage, created, u64::MAX);
            assert_eq!(plan.steps.len() + plan.skipped.len(), 2, "{plan:?}");
        }
    }

    #[test]
    fn numbers_compare_exactly() {
        let decimal = |text: &str| Decimal::parse(text).expect("a decimal");
        let number = |value: Value| match value {
            Value::Number(n) => n,
            _ => unreachable!("a number"),
        };
        let rows = [
            (json!(150000), "150000", Ordering::Equal),
            (json!(150000.000001), "150000", Ordering::Greater),
            (json!(150000.0000001), "150000", Ordering::Greater),
            (json!(149999.9999999), "150000", Ordering::Less),
            (json!(-0.5), "-1", Ordering::Greater),
            (json!(-1.0000001), "-1", Ordering::Less),
            (json!(-1.0), "-1", Ordering::Equal),
            (json!(0.1), "0.1", Ordering::Equal),
            (json!(1e300), "999999999999999", Ordering::Greater),
            (json!(-1e300), "-999999999999999", Ordering::Less),
            (json!(u64::MAX), "1", Ordering::Greater),
        ];
        for (value, threshold, expected) in rows {
            let n = number(value.clone());
            assert_eq!(
                decimal(threshold).compare_lead(&n),
                expected,
                "{value} vs {threshold}"
            );
        }
        for bad in [
            "",
            "-",
            "1.",
            ".5",
            "1e5",
            "1.0000001",
            "1000000000000000",
            "12a",
        ] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
        assert_eq!(decimal("-0.000").to_string(), "0");
        assert_eq!(decimal("2.50").to_string(), "2.5");
    }

    #[test]
    fn routing_keys_load_with_their_defaults() {
        let config = config(
            "[routing.solar]\nstrategy = \"broadcast\"\nmax_buyers = 3\n[routing.real-estate]\nstrategy = \"weighted\"\n",
            &[
                buyer("defaults", "[\"heloc\"]", ""),
                buyer("everything", "[\"heloc\", \"mortgage\"]", "priority = -2\nweight = 3\nprice = 18.50\nexclusive = true\n[destinations.filters]\nexclude_states = [\"ny\"]\nzip_prefixes = [\"787\", \"336\"]\nfields = [ { field = \"loanPurpose\", one_of = [\"homeImprovement\", \"debtConsolidation\"] }, { field = \"propertyUnits\", min = 1, max = 2 }, { field = \"creditBand\", equals = \"Good\" } ]\n[destinations.schedule]\ntimezone = \"America/Chicago\"\ndays = [\"mon\", \"fri\"]\nhours = \"22:00-06:00\"\n[destinations.caps]\nhour = 10\nday = 100\nmonth = 2000"),
                buyer("whole-price", "[\"heloc\"]", "price = 18"),
                buyer("text-price", "[\"heloc\"]", "price = \"0.10\""),
                buyer("float-price", "[\"heloc\"]", "price = 0.1"),
            ],
        );
        let routing = |id: &str| config.destination(id).expect("configured").routing.clone();
        assert_eq!(routing("defaults"), DestinationRouting::default());
        let everything = routing("everything");
        assert_eq!((everything.priority, everything.weight), (-2, 3));
        assert_eq!(everything.price, Some(Cents(1850)));
        assert!(everything.exclusive);
        assert_eq!(
            everything.filters.states,
            Some(Listed::Except(vec!["NY".to_owned()]))
        );
        assert_eq!(everything.filters.fields.len(), 3);
        let schedule = everything.schedule.expect("a schedule");
        assert_eq!(schedule.timezone, chrono_tz::America::Chicago);
        assert!(schedule.days.contains(Weekday::Fri) && !schedule.days.contains(Weekday::Sat));
        assert_eq!(
            schedule.hours.map(|h| h.to_string()).as_deref(),
            Some("22:00-06:00")
        );
        assert_eq!(
            everything.caps,
            Caps {
                hour: Some(10),
                day: Some(100),
                month: Some(2000)
            }
        );
        assert_eq!(everything.cap_zone(), chrono_tz::America::Chicago);
        assert_eq!(routing("whole-price").price, Some(Cents(1800)));
        assert_eq!(routing("text-price").price, Some(Cents(10)));
        assert_eq!(routing("float-price").price, Some(Cents(10)));
        assert_eq!(
            config.routing.get(&Vertical::Solar),
            Some(&VerticalRouting {
                strategy: Strategy::Broadcast,
                max_buyers: 3,
                resell_returns: false,
            })
        );
        assert_eq!(
            config
                .routing
                .get(&Vertical::RealEstate)
                .map(|r| r.strategy),
            Some(Strategy::Weighted)
        );
        assert_eq!(
            config.routing.get(&Vertical::Heloc),
            Some(&VerticalRouting::default())
        );
        assert_eq!(config.routing.len(), Vertical::ALL.len());
    }

    #[test]
    fn resell_returns_is_per_vertical_and_off_by_default() {
        let config = config(
            "[routing.heloc]\nresell_returns = true\n[routing.solar]\nresell_returns = false\n",
            &[buyer("defaults", "[\"heloc\"]", "")],
        );
        let resell = |vertical| config.routing[&vertical].resell_returns;
        assert!(resell(Vertical::Heloc));
        assert!(!resell(Vertical::Solar));
        assert!(!resell(Vertical::Mortgage), "not configured: off");
        let error = load(
            "[routing.heloc]\nresell_returns = \"yes\"\n",
            &[buyer("defaults", "[\"heloc\"]", "")],
        )
        .expect_err("not a boolean");
        assert_eq!(error.key, "routing.heloc.resell_returns", "{error}");
    }

    #[test]
    fn every_bad_routing_key_is_named() {
        // Two good buyers, then the buyer under test at destinations[2].
        let good = [
            buyer("good-1", "[\"heloc\"]", ""),
            buyer("good-2", "[\"heloc\"]", ""),
        ];
        let rows: Vec<(&str, &str, &str)> = vec![
            ("[routing.heloc]\nstrategy = \"roundrobin\"\n", "", "routing.heloc.strategy"),
            ("[routing.boats]\nstrategy = \"waterfall\"\n", "", "routing.boats"),
            ("[routing.heloc]\nstrategy = \"broadcast\"\nmax_buyers = 0\n", "", "routing.heloc.max_buyers"),
            ("", "weight = 0", "destinations[2].weight"),
            ("", "weight = 1001", "destinations[2].weight"),
            ("", "price = -1", "destinations[2].price"),
            ("", "price = -0.5", "destinations[2].price"),
            ("", "price = 18.555", "destinations[2].price"),
            ("", "price = \"12,50\"", "destinations[2].price"),
            ("", "price = 1e12", "destinations[2].price"),
            ("", "price = nan", "destinations[2].price"),
            ("", "[destinations.schedule]\ntimezone = \"America/Chicgo\"", "destinations[2].schedule.timezone"),
            ("", "[destinations.schedule]\ntimezone = \"CST\"", "destinations[2].schedule.timezone"),
            ("", "[destinations.schedule]\ntimezone = \"UTC\"\nhours = \"8-20\"", "destinations[2].schedule.hours"),
            ("", "[destinations.schedule]\ntimezone = \"UTC\"\nhours = \"08:00-24:01\"", "destinations[2].schedule.hours"),
            ("", "[destinations.schedule]\ntimezone = \"UTC\"\nhours = \"24:00-06:00\"", "destinations[2].schedule.hours"),
            ("", "[destinations.schedule]\ntimezone = \"UTC\"\nhours = \"08:00-08:00\"", "destinations[2].schedule.hours"),
            ("", "[destinations.schedule]\ntimezone = \"UTC\"\ndays = [\"mon\", \"funday\"]", "destinations[2].schedule.days[1]"),
            ("", "[destinations.schedule]\ntimezone = \"UTC\"\ndays = [\"Monday\"]", "destinations[2].schedule.days[0]"),
            ("", "[destinations.schedule]\ntimezone = \"UTC\"\ndays = []", "destinations[2].schedule.days"),
            ("", "[destinations.caps]\nday = 0", "destinations[2].caps.day"),
            ("", "[destinations.caps]\nhour = -5", "destinations[2].caps.hour"),
            ("", "[destinations.caps]\nday = 100\nmonth = 10001", "destinations[2].caps.month"),
            ("", "[destinations.filters]\nstates = [\"TX\"]\nexclude_states = [\"FL\"]", "destinations[2].filters.exclude_states"),
            ("", "[destinations.filters]\nzip_prefixes = [\"7\"]\nexclude_zip_prefixes = [\"3\"]", "destinations[2].filters.exclude_zip_prefixes"),
            ("", "[destinations.filters]\nstates = [\"TX\", \"XX\"]", "destinations[2].filters.states[1]"),
            ("", "[destinations.filters]\nexclude_states = [\"Texas\"]", "destinations[2].filters.exclude_states[0]"),
            ("", "[destinations.filters]\nstates = []", "destinations[2].filters.states"),
            ("", "[destinations.filters]\nzip_prefixes = [\"123456\"]", "destinations[2].filters.zip_prefixes[0]"),
            ("", "[destinations.filters]\nzip_prefixes = [\"78a\"]", "destinations[2].filters.zip_prefixes[0]"),
            ("", "[destinations.filters]\nfields = [{ field = \"loanPurpos\", equals = \"other\" }]", "destinations[2].filters.fields[0].field"),
            ("", "[destinations.filters]\nfields = [{ field = \"propertyUnits\", min = 1 }, { field = \"creditBand\", equals = \"Good\" }]", "destinations[2].filters.fields[1].field"),
            ("", "[destinations.filters]\nfields = [{ field = \"address\", equals = \"x\" }]", "destinations[2].filters.fields[0].field"),
            ("", "[destinations.filters]\nfields = [{ field = \"contactInfo..email\", equals = \"x\" }]", "destinations[2].filters.fields[0].field"),
            ("", "[destinations.filters]\nfields = [{ field = \"loanPurpose\" }]", "destinations[2].filters.fields[0]"),
            ("", "[destinations.filters]\nfields = [{ field = \"loanPurpose\", equals = \"other\", one_of = [\"other\"] }]", "destinations[2].filters.fields[0]"),
            ("", "[destinations.filters]\nfields = [{ field = \"propertyUnits\", equals = 1, max = 2 }]", "destinations[2].filters.fields[0]"),
            ("", "[destinations.filters]\nfields = [{ field = \"loanPurpose\", equals = \"homeimprovement\" }]", "destinations[2].filters.fields[0].equals"),
            ("", "[destinations.filters]\nfields = [{ field = \"loanPurpose\", one_of = [\"other\", 3] }]", "destinations[2].filters.fields[0].one_of[1]"),
            ("", "[destinations.filters]\nfields = [{ field = \"loanPurpose\", one_of = [] }]", "destinations[2].filters.fields[0].one_of"),
            ("", "[destinations.filters]\nfields = [{ field = \"loanPurpose\", min = 1 }]", "destinations[2].filters.fields[0].min"),
            ("", "[destinations.filters]\nfields = [{ field = \"propertyUnits\", min = 3, max = 2 }]", "destinations[2].filters.fields[0].max"),
            ("", "[destinations.filters]\nfields = [{ field = \"propertyUnits\", min = \"1\" }]", "destinations[2].filters.fields[0].min"),
            ("", "[destinations.filters]\nfields = [{ field = \"propertyUnits\", max = 1.0000001 }]", "destinations[2].filters.fields[0].max"),
            ("", "[destinations.filters]\nfields = [{ field = \"listedForSaleIn6Months\", equals = \"no\" }]", "destinations[2].filters.fields[0].equals"),
        ];
        for (routing, keys, key) in rows {
            let buyers = [
                good[0].clone(),
                good[1].clone(),
                buyer("bad", "[\"heloc\"]", keys),
            ];
            match load(routing, &buyers) {
                Ok(_) => panic!("{key}: the document must be refused"),
                Err(error) => assert_eq!(error.key, key, "{error}"),
            }
        }
    }

    #[test]
    fn the_example_configuration_loads_with_its_routing() {
        let secrets: BTreeMap<String, String> = [
            ("LEADHUB_HASH_KEY", "h".repeat(40)),
            ("LEADHUB_CALLBACK_KEY", "c".repeat(40)),
            ("LEADHUB_SSN_KEY", "s".repeat(40)),
            (
                "LENDER_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
            ),
            ("SONAR_CLIENT_SECRET", "sonar-secret".to_owned()),
            ("NTHERM_USERNAME", "hub".to_owned()),
            ("NTHERM_PASSWORD", "ntherm-password".to_owned()),
            ("HELOC_LENDER_API_KEY", "lender-key".to_owned()),
            ("LOFTY_ACCESS_TOKEN", "lofty-token".to_owned()),
            ("LOFTY_VENDOR_KEY", "lofty-vendor".to_owned()),
            ("LEADSAFE_API_KEY", "leadsafe-key".to_owned()),
            ("LEADSAFE_CLIENT_SECRET", "leadsafe-secret".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let document = include_str!("../../infra/config.example.toml");
        let config = match Config::from_toml(document, &secrets) {
            Ok(config) => config,
            Err(error) => panic!("infra/config.example.toml must load: {error}"),
        };
        assert!(config.ssn_sealer.is_some(), "the example seals SSNs");
        // Its commented answer rules load as written once uncommented.
        let with_rules = [
            "[destinations.response]",
            "accepted_when",
            "rejected_when",
            "reason_path",
            "reference_path",
            "price_path",
        ]
        .iter()
        .fold(document.to_owned(), |doc, key| {
            doc.replace(&format!("\n# {key}"), &format!("\n{key}"))
        });
        assert_ne!(with_rules, document);
        match Config::from_toml(&with_rules, &secrets) {
            Ok(config) => assert!(config
                .destination("sonar")
                .is_some_and(|d| !d.response.is_empty())),
            Err(error) => panic!("the example's answer rules must load: {error}"),
        }
        assert!(
            config.screening.uses_leadsafe(),
            "the example screens mortgage with LeadSafe"
        );
        assert_eq!(
            config.routing.get(&Vertical::Heloc).map(|r| r.strategy),
            Some(Strategy::Waterfall)
        );
        let lender = config.destination("lender-webhook").expect("the lender");
        assert_eq!(lender.returns.reasons.as_ref().map(Vec::len), Some(3));
        assert_eq!(lender.returns.window_days, 7);
        let heloc: Vec<&Destination> = config
            .destinations
            .iter()
            .filter(|d| d.verticals.contains(&Vertical::Heloc))
            .collect();
        assert!(heloc
            .iter()
            .any(|d| d.routing.filters.states.is_some() && d.routing.caps.day.is_some()));
        assert!(heloc.iter().any(|d| d.routing.schedule.is_some()));
        // A Florida HELOC lead on a weekday afternoon in Chicago goes down the waterfall.
        let plan = route(&config, &lead(Vertical::Heloc, &[]), &NoUsage, at(NOON), 0);
        assert!(!plan.is_unsold(), "{plan:?}");
    }
}
