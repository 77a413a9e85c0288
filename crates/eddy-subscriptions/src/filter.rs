//! What a trigger listens to: a set of event kinds and a filter on the event's content. Each
//! clause can be evaluated quickly (for matching) or with its reason (for explaining).

use std::cell::OnceCell;

use eddy_core::{Event, EventKind, ObjectChange, RowChangeRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A set of event kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "Vec<EventKind>", from = "Vec<EventKind>")]
pub struct EventSet(u16);

const OBJECT_CREATED: [EventKind; 3] = [
    EventKind::ObjectCreatedPut,
    EventKind::ObjectCreatedCopy,
    EventKind::ObjectCreatedCompleteMultipartUpload,
];

/// The patterns a trigger's `events` may name, and the kinds each covers.
pub const EVENT_PATTERNS: [(&str, &[EventKind]); 14] = [
    (
        "object:*",
        &[
            EventKind::ObjectCreatedPut,
            EventKind::ObjectCreatedCopy,
            EventKind::ObjectCreatedCompleteMultipartUpload,
            EventKind::ObjectRemovedDelete,
        ],
    ),
    ("object:created", &OBJECT_CREATED),
    ("object:created:*", &OBJECT_CREATED),
    ("object:created:put", &[EventKind::ObjectCreatedPut]),
    ("object:created:copy", &[EventKind::ObjectCreatedCopy]),
    (
        "object:created:multipart",
        &[EventKind::ObjectCreatedCompleteMultipartUpload],
    ),
    ("object:removed", &[EventKind::ObjectRemovedDelete]),
    ("object:removed:*", &[EventKind::ObjectRemovedDelete]),
    ("object:removed:delete", &[EventKind::ObjectRemovedDelete]),
    (
        "row:*",
        &[
            EventKind::RowInsert,
            EventKind::RowModify,
            EventKind::RowRemove,
        ],
    ),
    ("row:insert", &[EventKind::RowInsert]),
    ("row:modify", &[EventKind::RowModify]),
    ("row:remove", &[EventKind::RowRemove]),
    ("*", &[]),
];

impl EventSet {
    pub fn of(kinds: &[EventKind]) -> Self {
        Self(kinds.iter().fold(0, |bits, k| bits | bit(*k)))
    }

    /// The set a pattern names (`*` is resolved by the caller, who knows the source).
    pub fn pattern(pattern: &str) -> Option<Self> {
        EVENT_PATTERNS
            .iter()
            .find(|(p, _)| *p == pattern)
            .map(|(_, kinds)| Self::of(kinds))
    }

    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & bit(kind) != 0
    }

    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn kinds(self) -> impl Iterator<Item = EventKind> {
        EventKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

impl From<EventSet> for Vec<EventKind> {
    fn from(set: EventSet) -> Self {
        set.kinds().collect()
    }
}

impl From<Vec<EventKind>> for EventSet {
    fn from(kinds: Vec<EventKind>) -> Self {
        EventSet::of(&kinds)
    }
}

fn bit(kind: EventKind) -> u16 {
    1 << EventKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is listed")
}

/// A trigger's filter on the event's content.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Filter {
    #[default]
    None,
    Object(ObjectFilter),
    Row(RowFilter),
}

/// Object events: the key starts with one of the prefixes and ends with one of the suffixes
/// (an empty list allows any), and the size is within bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectFilter {
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
}

/// Row events: every predicate holds, and (if listed) one of the `changed` columns changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RowFilter {
    pub predicates: Vec<Predicate>,
    pub changed: Vec<String>,
}

/// A test of one column of the new or old image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    pub image: Image,
    pub column: String,
    pub test: Test,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Image {
    New,
    Old,
}

impl Image {
    pub fn as_str(self) -> &'static str {
        match self {
            Image::New => "new",
            Image::Old => "old",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// Equals one of these values.
    OneOf(Vec<Value>),
    /// Equals none of these values (and is present).
    AnythingBut(Vec<Value>),
    /// A number within the bounds.
    Range {
        gt: Option<f64>,
        gte: Option<f64>,
        lt: Option<f64>,
        lte: Option<f64>,
    },
    /// Present (not null) or absent.
    Exists(bool),
}

/// One clause of a filter, evaluated, for explanations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    pub clause: String,
    pub passed: bool,
    /// The values the clause looked at.
    pub detail: String,
}

/// An event with its payload decoded at most once, shared by every trigger that looks at it:
/// decoded when a filter first reads it (most triggers have none), a row's images borrowed.
pub struct EventView<'a> {
    pub event: &'a Event,
    object: OnceCell<Option<ObjectChange>>,
    row: OnceCell<Option<RowChangeRef<'a>>>,
}

impl<'a> EventView<'a> {
    pub fn new(event: &'a Event) -> Self {
        Self {
            event,
            object: OnceCell::new(),
            row: OnceCell::new(),
        }
    }

    fn object(&self) -> Option<&ObjectChange> {
        self.object
            .get_or_init(|| self.event.object_change().ok())
            .as_ref()
    }

    fn row(&self) -> Option<RowChangeRef<'a>> {
        *self.row.get_or_init(|| self.event.row_change_ref().ok())
    }
}

impl Filter {
    pub fn matches(&self, view: &EventView) -> bool {
        match self {
            Filter::None => true,
            Filter::Object(f) => f.clauses(view, false).all(|(passed, _, _)| passed),
            Filter::Row(f) => f.clauses(view, false).all(|(passed, _, _)| passed),
        }
    }

    /// Every clause with its outcome and the values it saw.
    pub fn explain(&self, view: &EventView) -> Vec<Clause> {
        let explained = |(passed, clause, detail): (bool, String, String)| Clause {
            clause,
            passed,
            detail,
        };
        match self {
            Filter::None => Vec::new(),
            Filter::Object(f) => f.clauses(view, true).map(explained).collect(),
            Filter::Row(f) => f.clauses(view, true).map(explained).collect(),
        }
    }
}

/// A clause's outcome, its text and what it saw. The texts are written only when explaining;
/// matching leaves them empty and stops at the first clause that fails.
type Outcome = (bool, String, String);

fn say(explain: bool, text: impl FnOnce() -> String) -> String {
    if explain { text() } else { String::new() }
}

impl ObjectFilter {
    fn clauses<'v>(
        &'v self,
        view: &'v EventView,
        explain: bool,
    ) -> impl Iterator<Item = Outcome> + 'v {
        let key = view.event.key.as_str();
        let size = view.object().map(|o| o.size);
        let prefix = (!self.prefixes.is_empty()).then(|| {
            let passed = self.prefixes.iter().any(|p| key.starts_with(p.as_str()));
            (
                passed,
                say(explain, || format!("prefix one of {:?}", self.prefixes)),
                say(explain, || format!("key {key:?}")),
            )
        });
        let suffix = (!self.suffixes.is_empty()).then(|| {
            let passed = self.suffixes.iter().any(|s| key.ends_with(s.as_str()));
            (
                passed,
                say(explain, || format!("suffix one of {:?}", self.suffixes)),
                say(explain, || format!("key {key:?}")),
            )
        });
        let bounds = (self.min_size.is_some() || self.max_size.is_some()).then(|| {
            let passed = size.is_some_and(|s| {
                self.min_size.is_none_or(|m| s >= m) && self.max_size.is_none_or(|m| s <= m)
            });
            let range = say(explain, || {
                format!(
                    "size from {} to {} bytes",
                    self.min_size.map_or("0".into(), |m| m.to_string()),
                    self.max_size.map_or("any".into(), |m| m.to_string())
                )
            });
            (
                passed,
                range,
                say(explain, || {
                    format!("size {}", size.map_or("unknown".into(), |s| s.to_string()))
                }),
            )
        });
        [prefix, suffix, bounds].into_iter().flatten()
    }
}

impl RowFilter {
    fn clauses<'v>(
        &'v self,
        view: &'v EventView,
        explain: bool,
    ) -> impl Iterator<Item = Outcome> + 'v {
        let row = view.row();
        let predicates = self.predicates.iter().map(move |p| {
            let image = row.and_then(|r| match p.image {
                Image::New => r.new,
                Image::Old => r.old,
            });
            let value = column(image, &p.column);
            let clause = say(explain, || {
                format!("{}.{} {}", p.image.as_str(), p.column, p.test.describe())
            });
            let seen = say(explain, || match (image, value) {
                (None, _) => format!("the event has no {} image", p.image.as_str()),
                (Some(_), None) => format!("{}.{} is absent", p.image.as_str(), p.column),
                (Some(_), Some(v)) => format!("{}.{} = {v}", p.image.as_str(), p.column),
            });
            (p.test.holds(value), clause, seen)
        });
        let changed = (!self.changed.is_empty()).then(|| {
            let differs: Vec<&String> = self
                .changed
                .iter()
                .filter(|c| row.is_some_and(|r| !same(column(r.new, c), column(r.old, c))))
                .collect();
            let seen = say(explain, || {
                if differs.is_empty() {
                    "none of them changed".to_string()
                } else {
                    format!("changed: {differs:?}")
                }
            });
            (
                !differs.is_empty(),
                say(explain, || format!("changed one of {:?}", self.changed)),
                seen,
            )
        });
        predicates.chain(changed)
    }
}

impl Test {
    fn holds(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Test::Exists(wanted), v) => v.is_some() == *wanted,
            (_, None) => false,
            (Test::OneOf(options), Some(v)) => options.iter().any(|o| same(Some(o), Some(v))),
            (Test::AnythingBut(options), Some(v)) => {
                !options.iter().any(|o| same(Some(o), Some(v)))
            }
            (Test::Range { gt, gte, lt, lte }, Some(v)) => v.as_f64().is_some_and(|n| {
                gt.is_none_or(|b| n > b)
                    && gte.is_none_or(|b| n >= b)
                    && lt.is_none_or(|b| n < b)
                    && lte.is_none_or(|b| n <= b)
            }),
        }
    }

    fn describe(&self) -> String {
        let list = |values: &[Value]| {
            values
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Test::OneOf(values) => format!("is one of [{}]", list(values)),
            Test::AnythingBut(values) => format!("is anything but [{}]", list(values)),
            Test::Range { gt, gte, lt, lte } => {
                let bounds: Vec<String> = [(">", gt), (">=", gte), ("<", lt), ("<=", lte)]
                    .iter()
                    .filter_map(|(op, b)| b.map(|b| format!("{op} {b}")))
                    .collect();
                format!("is a number {}", bounds.join(" and "))
            }
            Test::Exists(true) => "exists".into(),
            Test::Exists(false) => "does not exist".into(),
        }
    }
}

/// A column's value in an image; null counts as absent.
fn column<'a>(image: Option<&'a serde_json::Map<String, Value>>, name: &str) -> Option<&'a Value> {
    image.and_then(|i| i.get(name)).filter(|v| !v.is_null())
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::{BucketName, EventId, Lineage, Source, TableName};
    use serde_json::json;

    fn event(source: Source, kind: EventKind, key: &str, payload: Value) -> Event {
        Event {
            seq: 1,
            id: EventId::generate(),
            source,
            kind,
            key: key.into(),
            time_ms: 0,
            payload,
            lineage: Lineage::root(),
        }
    }

    fn object(key: &str, size: u64) -> Event {
        event(
            Source::Bucket(BucketName::new("photos").unwrap()),
            EventKind::ObjectCreatedPut,
            key,
            json!({"size": size, "etag": "x"}),
        )
    }

    fn row(kind: EventKind, new: Value, old: Value) -> Event {
        let table = Source::Table(TableName::new("orders").unwrap());
        event(
            table,
            kind,
            "[1]",
            json!({"keys": {"id": 1}, "new": new, "old": old}),
        )
    }

    #[test]
    fn patterns_cover_their_kinds() {
        let created = EventSet::pattern("object:created").unwrap();
        assert!(created.contains(EventKind::ObjectCreatedCopy));
        assert!(!created.contains(EventKind::ObjectRemovedDelete));
        assert!(
            EventSet::pattern("row:*")
                .unwrap()
                .contains(EventKind::RowRemove)
        );
        assert!(EventSet::pattern("s3:ObjectCreated:*").is_none());
        assert!(created.intersects(EventSet::pattern("object:created:put").unwrap()));
        assert!(!created.intersects(EventSet::pattern("row:*").unwrap()));
    }

    #[test]
    fn object_filters() {
        let f = Filter::Object(ObjectFilter {
            prefixes: vec!["uploads/".into(), "in/".into()],
            suffixes: vec![".jpg".into()],
            min_size: Some(10),
            max_size: Some(100),
        });
        assert!(f.matches(&EventView::new(&object("uploads/a.jpg", 50))));
        assert!(!f.matches(&EventView::new(&object("other/a.jpg", 50))));
        assert!(!f.matches(&EventView::new(&object("in/a.png", 50))));
        assert!(!f.matches(&EventView::new(&object("in/a.jpg", 101))));
        let e = object("other/a.jpg", 5);
        let why = f.explain(&EventView::new(&e));
        assert_eq!(
            why.iter().map(|c| c.passed).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert_eq!(why[0].detail, "key \"other/a.jpg\"");
        assert_eq!(why[2].clause, "size from 10 to 100 bytes");
    }

    #[test]
    fn row_filters() {
        let f = Filter::Row(RowFilter {
            predicates: vec![
                Predicate {
                    image: Image::New,
                    column: "status".into(),
                    test: Test::OneOf(vec![json!("shipped")]),
                },
                Predicate {
                    image: Image::New,
                    column: "total".into(),
                    test: Test::Range {
                        gt: Some(0.0),
                        gte: None,
                        lt: None,
                        lte: Some(100.0),
                    },
                },
            ],
            changed: vec!["status".into()],
        });
        let shipped = row(
            EventKind::RowModify,
            json!({"status": "shipped", "total": 10}),
            json!({"status": "paid", "total": 10}),
        );
        assert!(f.matches(&EventView::new(&shipped)));
        let unchanged = row(
            EventKind::RowModify,
            json!({"status": "shipped", "total": 12}),
            json!({"status": "shipped", "total": 10}),
        );
        assert!(
            !f.matches(&EventView::new(&unchanged)),
            "status did not change"
        );
        let why = f.explain(&EventView::new(&unchanged));
        assert_eq!(
            why[2],
            Clause {
                clause: "changed one of [\"status\"]".into(),
                passed: false,
                detail: "none of them changed".into()
            }
        );
        let removed = row(
            EventKind::RowRemove,
            Value::Null,
            json!({"status": "shipped", "total": 10}),
        );
        let why = f.explain(&EventView::new(&removed));
        assert_eq!(why[0].detail, "the event has no new image");
        assert!(!why[0].passed);
    }

    #[test]
    fn tests_on_values() {
        let v = json!(5);
        assert!(
            Test::OneOf(vec![json!(5.0)]).holds(Some(&v)),
            "numbers compare by value"
        );
        assert!(Test::AnythingBut(vec![json!(4)]).holds(Some(&v)));
        assert!(
            !Test::AnythingBut(vec![json!(4)]).holds(None),
            "anything-but needs a value"
        );
        assert!(Test::Exists(false).holds(None));
        assert!(!Test::Exists(true).holds(None));
        assert!(
            !Test::Range {
                gt: None,
                gte: Some(6.0),
                lt: None,
                lte: None
            }
            .holds(Some(&v))
        );
        assert!(
            !Test::Range {
                gt: Some(1.0),
                gte: None,
                lt: None,
                lte: None
            }
            .holds(Some(&json!("7")))
        );
    }
}
