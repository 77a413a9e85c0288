//! EventBridge's schedule expressions: `rate(5 minutes)`, `cron(0 12 * * ? *)` with its six
//! fields, and `at(2027-01-01T00:00:00)`; what each accepts is AWS's, and each mistake is told
//! with what would be accepted. [`ScheduleExpression::next_after`] gives the run times, in a
//! time zone, daylight-saving changes included.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// What any schedule expression looks like, for messages.
pub const EXPRESSION_FORMS: &str = "rate(VALUE UNIT) with UNIT minute(s), hour(s) or day(s); \
     cron(MINUTES HOURS DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR); or at(YYYY-MM-DDTHH:MM:SS)";

/// The years a cron expression may name, as on EventBridge.
const YEARS: (u32, u32) = (1970, 2199);

/// A checked schedule expression; it is stored (and shown) as it was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ScheduleExpression {
    text: String,
    when: When,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum When {
    /// Every so many milliseconds, counted from an anchor (the schedule's start).
    Rate(i64),
    Cron(Box<Cron>),
    /// Once, at this wall-clock time of the schedule's time zone.
    At(DateTime),
}

/// A set of small numbers (up to 230: the years), one bit each.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Bits([u64; 4]);

impl Bits {
    fn set(&mut self, n: u32) {
        self.0[(n / 64) as usize] |= 1 << (n % 64);
    }

    fn has(&self, n: u32) -> bool {
        n < 256 && self.0[(n / 64) as usize] & (1 << (n % 64)) != 0
    }

    fn iter(&self, range: (u32, u32)) -> impl Iterator<Item = u32> + '_ {
        (range.0..=range.1).filter(|n| self.has(*n))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Cron {
    minutes: Bits,
    hours: Bits,
    days: Days,
    months: Bits,
    /// Years less 1970.
    years: Bits,
}

/// The day fields: one of them is `?`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Days {
    OfMonth {
        days: Bits,
        /// `L`: the month's last day.
        last: bool,
        /// `LW`: the month's last weekday (Monday to Friday).
        last_weekday: bool,
        /// `15W`: the weekday nearest the 15th, within the month.
        nearest_weekday: Vec<u32>,
    },
    OfWeek {
        /// 1 = Sunday … 7 = Saturday.
        days: Bits,
        /// `5L`: the month's last Thursday.
        last: Vec<u32>,
        /// `3#2`: the month's second Tuesday.
        nth: Vec<(u32, u32)>,
    },
}

impl ScheduleExpression {
    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the expression runs once (`at`).
    pub fn is_one_time(&self) -> bool {
        matches!(self.when, When::At(_))
    }

    /// The first run strictly after `after_ms` (milliseconds since the Unix epoch), in time zone
    /// `tz`; a rate counts its periods from `anchor_ms`. `None` when there is none (an `at`
    /// in the past, a cron expression whose years are over).
    ///
    /// A wall-clock time that a daylight-saving change skips runs when the clocks have moved
    /// on (02:30 becomes 03:30); one that happens twice runs the first time only.
    pub fn next_after(&self, after_ms: i64, tz: &TimeZone, anchor_ms: i64) -> Option<i64> {
        match &self.when {
            When::Rate(every) => {
                let periods = (after_ms - anchor_ms).div_euclid(*every) + 1;
                Some(anchor_ms + periods * every)
            }
            When::At(at) => instant(*at, tz).filter(|ms| *ms > after_ms),
            When::Cron(cron) => cron.next_after(after_ms, tz),
        }
    }
}

/// The instant of a wall-clock time in `tz` (see [`ScheduleExpression::next_after`]).
fn instant(at: DateTime, tz: &TimeZone) -> Option<i64> {
    Some(
        at.to_zoned_datetime(tz.clone())
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

impl Cron {
    fn next_after(&self, after_ms: i64, tz: &TimeZone) -> Option<i64> {
        let local = jiff::Timestamp::from_millisecond(after_ms)
            .ok()?
            .to_zoned_datetime(tz.clone())
            .datetime();
        // A wall-clock time that a daylight-saving change moved may fall a day earlier than
        // `after`'s date: start looking the day before.
        let mut date = local.date().yesterday().ok()?;
        let last_year = self
            .years
            .iter((0, YEARS.1 - YEARS.0))
            .last()
            .map(|y| y + YEARS.0)?;
        while (date.year() as u32) <= last_year {
            if !self.years.has((date.year() as u32).wrapping_sub(YEARS.0)) {
                date = Date::new(date.year() + 1, 1, 1).ok()?;
                continue;
            }
            if !self.months.has(date.month() as u32) {
                date = date.last_of_month().tomorrow().ok()?;
                continue;
            }
            if self.days.match_date(date) {
                for hour in self.hours.iter((0, 23)) {
                    for minute in self.minutes.iter((0, 59)) {
                        let at = date.at(hour as i8, minute as i8, 0, 0);
                        if let Some(ms) = instant(at, tz).filter(|ms| *ms > after_ms) {
                            return Some(ms);
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

impl Days {
    fn match_date(&self, date: Date) -> bool {
        match self {
            Days::OfMonth {
                days,
                last,
                last_weekday,
                nearest_weekday,
            } => {
                let end = date.last_of_month();
                days.has(date.day() as u32)
                    || (*last && date == end)
                    || (*last_weekday && date == weekday_at_or_before(end))
                    || nearest_weekday
                        .iter()
                        .any(|day| nearest_weekday_of(date, *day) == Some(date))
            }
            Days::OfWeek { days, last, nth } => {
                let weekday = date.weekday().to_sunday_one_offset() as u32;
                let nth_of_month = (date.day() as u32 - 1) / 7 + 1;
                let in_last_week = date.day() + 7 > date.days_in_month();
                days.has(weekday)
                    || (in_last_week && last.contains(&weekday))
                    || nth.contains(&(weekday, nth_of_month))
            }
        }
    }
}

/// The last Monday-to-Friday at or before `date`.
fn weekday_at_or_before(mut date: Date) -> Date {
    while matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
        date = date
            .yesterday()
            .expect("a weekday precedes any date eddy schedules");
    }
    date
}

/// The Monday-to-Friday nearest day `day` of `date`'s month, without leaving the month (as
/// Quartz and EventBridge have it); `None` when the month has no such day.
fn nearest_weekday_of(date: Date, day: u32) -> Option<Date> {
    let target = Date::new(date.year(), date.month(), day as i8).ok()?;
    Some(match target.weekday() {
        Weekday::Saturday if day == 1 => target.checked_add(jiff::Span::new().days(2)).ok()?,
        Weekday::Saturday => target.yesterday().ok()?,
        Weekday::Sunday if day as i8 == target.days_in_month() => {
            target.checked_sub(jiff::Span::new().days(2)).ok()?
        }
        Weekday::Sunday => target.tomorrow().ok()?,
        _ => target,
    })
}

impl fmt::Display for ScheduleExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<ScheduleExpression> for String {
    fn from(e: ScheduleExpression) -> String {
        e.text
    }
}

impl TryFrom<String> for ScheduleExpression {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl FromStr for ScheduleExpression {
    type Err = String;

    /// Parses an expression; the error says what is wrong with it.
    fn from_str(text: &str) -> Result<Self, String> {
        let inner = |name: &str| {
            text.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('('))
                .and_then(|rest| rest.strip_suffix(')'))
        };
        let when = if let Some(body) = inner("rate") {
            When::Rate(rate(body)?)
        } else if let Some(body) = inner("cron") {
            When::Cron(Box::new(cron(body)?))
        } else if let Some(body) = inner("at") {
            When::At(
                body.parse::<DateTime>()
                    .ok()
                    .filter(|_| body.len() == 19)
                    .ok_or_else(|| {
                        format!("`{body}` is not a date and time of the form YYYY-MM-DDTHH:MM:SS")
                    })?,
            )
        } else {
            return Err("it is not rate(…), cron(…) or at(…)".into());
        };
        Ok(Self {
            text: text.to_string(),
            when,
        })
    }
}

/// `5 minutes` → the period in milliseconds.
fn rate(body: &str) -> Result<i64, String> {
    let (value, unit) = body
        .split_once(' ')
        .ok_or("a rate is a value and a unit, like rate(5 minutes)")?;
    let value: i64 = value
        .parse()
        .ok()
        .filter(|v| *v > 0 && *v <= 1_000_000)
        .ok_or_else(|| format!("the rate's value `{value}` is not a whole number above 0"))?;
    let (unit_ms, singular) = match unit {
        "minute" | "minutes" => (60_000, "minute"),
        "hour" | "hours" => (3_600_000, "hour"),
        "day" | "days" => (86_400_000, "day"),
        other => {
            return Err(format!(
                "the rate's unit `{other}` is not minute(s), hour(s) or day(s)"
            ));
        }
    };
    // EventBridge insists: `1 minute`, `2 minutes`.
    if (value == 1) != (unit == singular) {
        let right = if value == 1 {
            singular.to_string()
        } else {
            format!("{singular}s")
        };
        return Err(format!(
            "write `{value} {right}`: the unit is singular for 1 and plural otherwise"
        ));
    }
    Ok(value * unit_ms)
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The six fields of `cron(…)`.
fn cron(body: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [minutes, hours, day_of_month, month, day_of_week, year] = fields[..] else {
        return Err(format!(
            "it has {} fields; cron expressions have six: minutes, hours, day-of-month, month, \
             day-of-week and year",
            fields.len()
        ));
    };
    let days = match (day_of_month, day_of_week) {
        ("?", "?") => return Err("only one of day-of-month and day-of-week may be `?`".into()),
        (dom, "?") => days_of_month(dom)?,
        ("?", dow) => days_of_week(dow)?,
        _ => {
            return Err(
                "one of day-of-month and day-of-week must be `?` (they cannot both be given)"
                    .into(),
            );
        }
    };
    Ok(Cron {
        minutes: numbers(minutes, "minutes", (0, 59), &[])?,
        hours: numbers(hours, "hours", (0, 23), &[])?,
        days,
        months: numbers(month, "month", (1, 12), &MONTHS)?,
        years: numbers(year, "year", YEARS, &[])?,
    })
}

/// One number or name of a field.
fn value(text: &str, field: &str, range: (u32, u32), names: &[&str]) -> Result<u32, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(i) = names.iter().position(|n| *n == upper) {
        return Ok(range.0 + i as u32);
    }
    let names_too = if names.is_empty() {
        String::new()
    } else {
        format!(" or {}-{}", names[0], names[names.len() - 1])
    };
    text.parse::<u32>()
        .ok()
        .filter(|n| (range.0..=range.1).contains(n))
        .ok_or_else(|| {
            format!(
                "the {field} field's `{text}` is not {}-{}{names_too}",
                range.0, range.1
            )
        })
}

/// A field of `*`, values, ranges `A-B` and steps `A/N`, `A-B/N`, `*/N`, separated by commas.
/// Years are kept less 1970 (every other field's values fit as they are).
fn numbers(text: &str, field: &str, range: (u32, u32), names: &[&str]) -> Result<Bits, String> {
    let mut bits = Bits::default();
    for item in text.split(',') {
        range_item(item, field, range, names, &mut bits)?;
    }
    Ok(bits)
}

fn range_item(
    item: &str,
    field: &str,
    range: (u32, u32),
    names: &[&str],
    bits: &mut Bits,
) -> Result<(), String> {
    let base = if range == YEARS { YEARS.0 } else { 0 };
    let (span, step) = match item.split_once('/') {
        Some((span, step)) => {
            let step = step.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!("the {field} field's step `{step}` is not a number above 0")
            })?;
            (span, Some(step))
        }
        None => (item, None),
    };
    let (first, last) = match span {
        "*" => range,
        _ => match span.split_once('-') {
            Some((a, b)) => (
                value(a, field, range, names)?,
                value(b, field, range, names)?,
            ),
            // `5/15`: from 5 to the end, every 15.
            None if step.is_some() => (value(span, field, range, names)?, range.1),
            None => {
                let v = value(span, field, range, names)?;
                (v, v)
            }
        },
    };
    if first > last {
        return Err(format!("the {field} field's range `{span}` runs backwards"));
    }
    for n in (first..=last).step_by(step.unwrap_or(1) as usize) {
        bits.set(n - base);
    }
    Ok(())
}

fn days_of_month(text: &str) -> Result<Days, String> {
    let (mut days, mut last, mut last_weekday, mut nearest) =
        (Bits::default(), false, false, Vec::new());
    for item in text.split(',') {
        match item {
            "L" => last = true,
            "LW" => last_weekday = true,
            _ => match item.strip_suffix('W') {
                Some(day) => nearest.push(value(day, "day-of-month", (1, 31), &[])?),
                None => range_item(item, "day-of-month", (1, 31), &[], &mut days)?,
            },
        }
    }
    Ok(Days::OfMonth {
        days,
        last,
        last_weekday,
        nearest_weekday: nearest,
    })
}

fn days_of_week(text: &str) -> Result<Days, String> {
    let (mut days, mut last, mut nth) = (Bits::default(), Vec::new(), Vec::new());
    let weekday = |t: &str| value(t, "day-of-week", (1, 7), &WEEKDAYS);
    for item in text.split(',') {
        if item == "L" {
            // Alone, `L` is the week's last day: Saturday.
            days.set(7);
        } else if let Some(day) = item.strip_suffix('L') {
            last.push(weekday(day)?);
        } else if let Some((day, n)) = item.split_once('#') {
            let n = n
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=5).contains(n))
                .ok_or_else(|| format!("in `{item}`, `#{n}` is not #1 to #5"))?;
            nth.push((weekday(day)?, n));
        } else {
            range_item(item, "day-of-week", (1, 7), &WEEKDAYS, &mut days)?;
        }
    }
    Ok(Days::OfWeek { days, last, nth })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn shown(ms: i64, tz: &TimeZone) -> String {
        jiff::Timestamp::from_millisecond(ms)
            .unwrap()
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M %a %Z")
            .to_string()
    }

    /// The next `n` runs after `from`, shown in `zone`.
    fn runs(expression: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
        let e: ScheduleExpression = expression.parse().unwrap();
        let tz = TimeZone::get(zone).unwrap();
        let mut at = ms(from);
        let mut out = Vec::new();
        for _ in 0..n {
            match e.next_after(at, &tz, 0) {
                Some(next) => {
                    out.push(shown(next, &tz));
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    #[test]
    fn aws_examples_run_when_aws_says() {
        // Every weekday at 18:00 (AWS's `cron(0 18 ? * MON-FRI *)`), from a Friday afternoon.
        assert_eq!(
            runs("cron(0 18 ? * MON-FRI *)", "UTC", "2026-12-04T12:00:00Z", 3),
            [
                "2026-12-04 18:00 Fri UTC",
                "2026-12-07 18:00 Mon UTC",
                "2026-12-08 18:00 Tue UTC"
            ]
        );
        // 10:15 on the first day of each month.
        assert_eq!(
            runs("cron(15 10 1 * ? *)", "UTC", "2026-12-01T10:15:00Z", 2),
            ["2027-01-01 10:15 Fri UTC", "2027-02-01 10:15 Mon UTC"]
        );
        // Every 10 minutes on weekdays, 08:00 to 17:50 (`0/10 8-17`).
        assert_eq!(
            runs(
                "cron(0/10 8-17 ? * MON-FRI *)",
                "UTC",
                "2026-12-04T17:45:00Z",
                2
            ),
            ["2026-12-04 17:50 Fri UTC", "2026-12-07 08:00 Mon UTC"]
        );
        // Every 5 minutes between 08:00 and 17:55, Monday to Friday, in 2027 only.
        assert_eq!(
            runs(
                "cron(*/5 8-17 ? * 2-6 2027)",
                "UTC",
                "2026-12-31T23:59:00Z",
                1
            ),
            ["2027-01-01 08:00 Fri UTC"]
        );
    }

    #[test]
    fn last_nearest_and_nth_days() {
        assert_eq!(
            runs("cron(0 0 L * ? *)", "UTC", "2027-01-31T00:00:00Z", 3),
            [
                "2027-02-28 00:00 Sun UTC",
                "2027-03-31 00:00 Wed UTC",
                "2027-04-30 00:00 Fri UTC"
            ]
        );
        // The last weekday: July 2027 ends on a Saturday.
        assert_eq!(
            runs("cron(0 9 LW 7 ? 2027)", "UTC", "2027-01-01T00:00:00Z", 1),
            ["2027-07-30 09:00 Fri UTC"]
        );
        // The weekday nearest the 1st, not leaving the month: May 1st 2027 is a Saturday.
        assert_eq!(
            runs("cron(0 9 1W 5 ? 2027)", "UTC", "2027-01-01T00:00:00Z", 1),
            ["2027-05-03 09:00 Mon UTC"]
        );
        // The weekday nearest the 15th: August 15th 2027 is a Sunday.
        assert_eq!(
            runs("cron(0 9 15W 8 ? 2027)", "UTC", "2027-01-01T00:00:00Z", 1),
            ["2027-08-16 09:00 Mon UTC"]
        );
        // The last Friday of each month, and the second Tuesday.
        assert_eq!(
            runs("cron(0 12 ? * 6L *)", "UTC", "2026-12-01T00:00:00Z", 2),
            ["2026-12-25 12:00 Fri UTC", "2027-01-29 12:00 Fri UTC"]
        );
        assert_eq!(
            runs("cron(0 12 ? * TUE#2 *)", "UTC", "2026-12-01T00:00:00Z", 2),
            ["2026-12-08 12:00 Tue UTC", "2027-01-12 12:00 Tue UTC"]
        );
        // February 30th never comes.
        assert!(runs("cron(0 0 30 2 ? *)", "UTC", "2026-12-01T00:00:00Z", 1).is_empty());
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        // Noon in Paris is 11:00 UTC in winter, 10:00 UTC in summer.
        let e: ScheduleExpression = "cron(0 12 * * ? *)".parse().unwrap();
        let paris = TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(
            e.next_after(ms("2026-12-01T00:00:00Z"), &paris, 0),
            Some(ms("2026-12-01T11:00:00Z"))
        );
        assert_eq!(
            e.next_after(ms("2027-07-01T00:00:00Z"), &paris, 0),
            Some(ms("2027-07-01T10:00:00Z"))
        );
        // 02:30 does not exist on 2027-03-28 in Paris: it runs at 03:30, once.
        assert_eq!(
            runs(
                "cron(30 2 * * ? *)",
                "Europe/Paris",
                "2027-03-27T12:00:00Z",
                3
            ),
            [
                "2027-03-28 03:30 Sun CEST",
                "2027-03-29 02:30 Mon CEST",
                "2027-03-30 02:30 Tue CEST"
            ]
        );
        // 02:30 happens twice on 2027-10-31 in Paris: it runs the first time only.
        assert_eq!(
            runs(
                "cron(30 2 * * ? *)",
                "Europe/Paris",
                "2027-10-30T12:00:00Z",
                2
            ),
            ["2027-10-31 02:30 Sun CEST", "2027-11-01 02:30 Mon CET"]
        );
    }

    #[test]
    fn rates_count_from_their_anchor_and_at_runs_once() {
        let e: ScheduleExpression = "rate(5 minutes)".parse().unwrap();
        let utc = TimeZone::UTC;
        let anchor = ms("2026-12-01T00:01:00Z");
        assert_eq!(
            e.next_after(ms("2026-12-01T00:03:00Z"), &utc, anchor),
            Some(ms("2026-12-01T00:06:00Z"))
        );
        assert_eq!(
            e.next_after(ms("2026-12-01T00:06:00Z"), &utc, anchor),
            Some(ms("2026-12-01T00:11:00Z"))
        );
        let once: ScheduleExpression = "at(2027-01-01T09:00:00)".parse().unwrap();
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(
            once.next_after(ms("2026-12-01T00:00:00Z"), &tokyo, 0),
            Some(ms("2027-01-01T00:00:00Z"))
        );
        assert_eq!(once.next_after(ms("2027-01-01T00:00:00Z"), &tokyo, 0), None);
        assert!(once.is_one_time());
    }

    #[test]
    fn mistakes_are_told() {
        let error = |text: &str| text.parse::<ScheduleExpression>().unwrap_err();
        for (text, told) in [
            ("every 5 minutes", "it is not rate(…), cron(…) or at(…)"),
            (
                "rate(5)",
                "a rate is a value and a unit, like rate(5 minutes)",
            ),
            (
                "rate(0 minutes)",
                "the rate's value `0` is not a whole number above 0",
            ),
            (
                "rate(1 minutes)",
                "write `1 minute`: the unit is singular for 1 and plural otherwise",
            ),
            (
                "rate(5 minute)",
                "write `5 minutes`: the unit is singular for 1 and plural otherwise",
            ),
            (
                "rate(5 seconds)",
                "the rate's unit `seconds` is not minute(s), hour(s) or day(s)",
            ),
            (
                "cron(0 12 * * *)",
                "it has 5 fields; cron expressions have six: minutes, hours, day-of-month, month, day-of-week and year",
            ),
            (
                "cron(0 12 * * * *)",
                "one of day-of-month and day-of-week must be `?` (they cannot both be given)",
            ),
            (
                "cron(0 12 ? * ? *)",
                "only one of day-of-month and day-of-week may be `?`",
            ),
            (
                "cron(60 12 * * ? *)",
                "the minutes field's `60` is not 0-59",
            ),
            ("cron(0 24 * * ? *)", "the hours field's `24` is not 0-23"),
            (
                "cron(0 12 * FOO ? *)",
                "the month field's `FOO` is not 1-12 or JAN-DEC",
            ),
            (
                "cron(0 12 ? * 8 *)",
                "the day-of-week field's `8` is not 1-7 or SUN-SAT",
            ),
            ("cron(0 12 ? * MON#6 *)", "in `MON#6`, `#6` is not #1 to #5"),
            (
                "cron(0/0 12 * * ? *)",
                "the minutes field's step `0` is not a number above 0",
            ),
            (
                "cron(0 17-9 * * ? *)",
                "the hours field's range `17-9` runs backwards",
            ),
            (
                "cron(0 12 * * ? 2300)",
                "the year field's `2300` is not 1970-2199",
            ),
            (
                "at(2027-01-01)",
                "`2027-01-01` is not a date and time of the form YYYY-MM-DDTHH:MM:SS",
            ),
            (
                "at(2027-02-30T00:00:00)",
                "`2027-02-30T00:00:00` is not a date and time of the form YYYY-MM-DDTHH:MM:SS",
            ),
        ] {
            assert_eq!(error(text), told, "{text}");
        }
        // Names and lists are accepted in any case, as on EventBridge.
        for ok in [
            "cron(0,30 8,20 ? jan-mar mon,wed,FRI *)",
            "cron(0 0 1,15,L * ? *)",
            "rate(1 day)",
        ] {
            ok.parse::<ScheduleExpression>().unwrap();
        }
    }
}
