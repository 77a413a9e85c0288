//! Reading a schedule: its expression, time zone, window, input, missed-run policy and retries.

use eddy_core::{FunctionName, ScheduleName};
use jiff::tz::TimeZone;
use serde_json::Value as Json;

use super::{Reader, label};
use crate::app::*;
use crate::expression::{EXPRESSION_FORMS, ScheduleExpression};
use crate::yaml::{Node, Pos, Value};

const SCHEDULE: [&str; 10] = [
    "name",
    "function",
    "expression",
    "timezone",
    "start",
    "end",
    "input",
    "missed",
    "retry",
    "enabled",
];

/// A schedule as one file declares it; its function is checked once every file is read.
#[derive(Clone, Debug)]
pub(crate) struct ScheduleDraft {
    /// The whole schedule, when every part of it was right.
    pub spec: Option<ScheduleSpec>,
    pub function: Option<(FunctionName, Pos)>,
    pub at: Origin,
}

impl Reader<'_> {
    pub(super) fn schedule(&mut self, node: &Node) -> Option<ScheduleDraft> {
        let what = label(node, "schedule");
        let f = self.fields(node, &what, &SCHEDULE, &["name", "function", "expression"])?;
        let name = f
            .get("name")
            .and_then(|n| self.name(n, "name", ScheduleName::new));
        let function = f
            .get("function")
            .and_then(|n| Some((self.name(n, "function", FunctionName::new)?, n.pos)));
        let expression = f.get("expression").and_then(|n| self.expression(n));
        let timezone = match f.get("timezone") {
            Some(n) => self.timezone(n),
            None => Some(TimeZone::UTC),
        };
        let instant = |this: &mut Self, field: &str| match (f.get(field), &timezone) {
            (None, _) => Some(None),
            (Some(n), Some(tz)) => this.instant(n, field, tz).map(Some),
            (Some(_), None) => None,
        };
        let (start_ms, end_ms) = (instant(self, "start"), instant(self, "end"));
        if let (Some(Some(start)), Some(Some(end)), Some(n)) = (start_ms, end_ms, f.get("end"))
            && end <= start
        {
            self.error(n.pos, "the schedule ends before it starts")
                .note("expected: an `end` later than `start`");
        }
        let missed = match f.get("missed") {
            Some(n) => self.choice(
                n,
                "missed",
                &[("run_once", Missed::RunOnce), ("skip", Missed::Skip)],
            ),
            None => Some(Missed::default()),
        };
        let retry = match f.get("retry") {
            Some(n) => self.retry(n),
            None => Some(RetryPolicy::default()),
        };
        let enabled = match f.get("enabled") {
            Some(n) => self.boolean(n, "enabled"),
            None => Some(true),
        };
        let at = self.origin(f.pos);
        let spec = (|| {
            let ends_before_start = matches!((start_ms?, end_ms?), (Some(s), Some(e)) if e <= s);
            if ends_before_start {
                return None;
            }
            Some(ScheduleSpec {
                name: name?,
                function: function.clone()?.0,
                expression: expression?,
                timezone: timezone?.iana_name().unwrap_or("UTC").to_string(),
                start_ms: start_ms?,
                end_ms: end_ms?,
                input: f.get("input").map(json),
                missed: missed?,
                retry: retry?,
                enabled: enabled?,
                at: at.clone(),
            })
        })();
        Some(ScheduleDraft { spec, function, at })
    }

    fn expression(&mut self, node: &Node) -> Option<ScheduleExpression> {
        let text = self.string(node, "expression")?;
        match text.parse() {
            Ok(expression) => Some(expression),
            Err(reason) => {
                self.error(node.pos, format!("invalid schedule expression `{text}`"))
                    .note(reason)
                    .note(format!("expected: {EXPRESSION_FORMS}"));
                None
            }
        }
    }

    fn timezone(&mut self, node: &Node) -> Option<TimeZone> {
        let text = self.string(node, "timezone")?;
        // `UTC` and the IANA names (`Europe/Paris`); not fixed offsets or POSIX rules, which
        // EventBridge does not take either.
        let found = (text == "UTC" || text.contains('/'))
            .then(|| TimeZone::get(&text).ok())
            .flatten();
        if found.is_none() {
            self.error(node.pos, format!("unknown time zone `{text}`"))
                .note("expected: UTC or an IANA time zone name, like Europe/Paris or America/New_York");
        }
        found
    }

    /// `2027-01-01T00:00:00Z` (or with an offset), or a wall-clock time in the schedule's zone.
    fn instant(&mut self, node: &Node, what: &str, tz: &TimeZone) -> Option<i64> {
        let text = self.string(node, what)?;
        let parsed = text
            .parse::<jiff::Timestamp>()
            .ok()
            .or_else(|| {
                let civil = text.parse::<jiff::civil::DateTime>().ok()?;
                civil
                    .to_zoned_datetime(tz.clone())
                    .ok()
                    .map(|z| z.timestamp())
            })
            .map(|t| t.as_millisecond());
        if parsed.is_none() {
            self.error(node.pos, format!("`{what}` is not a date and time"))
                .note(format!("found: {text}"))
                .note("expected: YYYY-MM-DDTHH:MM:SS in the schedule's time zone, or with Z or an offset (2027-01-01T00:00:00Z)");
        }
        parsed
    }
}

/// Any YAML value as JSON (a schedule's input).
fn json(node: &Node) -> Json {
    match &node.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), json(v)))
                .collect(),
        ),
    }
}
