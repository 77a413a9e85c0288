//! Reading one manifest file: the YAML tree to declarations, every mistake reported at its
//! place with what was found and what would be accepted. References between declarations
//! (a trigger's function, its source) are checked later, once every file is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eddy_core::{
    BucketName, Column, ColumnName, ColumnType, FunctionName, InvalidName, TableName, TableSchema,
};
use serde_json::Value as Json;

use crate::app::*;
use crate::filter::{
    EVENT_PATTERNS, EventSet, Filter, Image, ObjectFilter, Predicate, RowFilter, Test,
};
use crate::findings::{Finding, Findings, Severity, did_you_mean};
use crate::policy::{ACTIONS, Effect, Statement, glob};
use crate::yaml::{Key, Node, Pos, Value};

mod function;
mod schedule;
mod trigger;
pub(crate) use schedule::ScheduleDraft;

/// A trigger as one file declares it. Its references are checked against the whole app even
/// when other parts of it are wrong, so that every mistake is reported at once.
#[derive(Clone, Debug)]
pub(crate) struct TriggerDraft {
    /// The whole trigger, when every part of it was right.
    pub spec: Option<TriggerSpec>,
    /// The name it was given, if any.
    pub name: Option<String>,
    pub function: Option<(FunctionName, Pos)>,
    pub source: Option<(eddy_core::Source, Pos)>,
    /// Row-filter columns with their places, for checking against the table.
    pub columns: Vec<(String, Pos)>,
    pub at: Origin,
}

/// What one file declares.
#[derive(Default)]
pub(crate) struct Declarations {
    pub buckets: Vec<BucketSpec>,
    pub tables: Vec<TableSpec>,
    pub functions: Vec<FunctionSpec>,
    pub triggers: Vec<TriggerDraft>,
    pub schedules: Vec<ScheduleDraft>,
    pub access_keys: Vec<AccessKeySpec>,
    /// The journal's settings, with where they were given.
    pub journal: Vec<(JournalSpec, Origin)>,
    /// Destinations, with the function whose records go there and where they were named,
    /// checked once every file is read.
    pub destinations: Vec<NamedDestination>,
    /// `bucket/NAME`, `table/NAME`, `function/NAME` of every declaration whose name was valid,
    /// even if the rest of it was not: references to it are then not reported as missing.
    pub declared: Vec<String>,
}

pub(crate) struct Reader<'a> {
    file: &'a str,
    dir: &'a Path,
    findings: &'a mut Findings,
    declared: Vec<String>,
    destinations: Vec<NamedDestination>,
}

/// A destination as a manifest names it.
pub(crate) struct NamedDestination {
    pub target: Target,
    /// The function whose outcomes go there (its role must allow writing to a bucket or
    /// table); `None` when the function itself was declared wrongly.
    pub from: Option<FunctionName>,
    pub at: Origin,
}

const TOP: [&str; 7] = [
    "buckets",
    "tables",
    "functions",
    "triggers",
    "schedules",
    "access_keys",
    "journal",
];
const ACCESS_KEY: [&str; 6] = [
    "name",
    "id",
    "secret_env",
    "secret_file",
    "policy",
    "secret",
];
const BUCKET: [&str; 2] = ["name", "watch"];
const TABLE: [&str; 3] = ["name", "primary_key", "columns"];
const COLUMN: [&str; 2] = ["type", "nullable"];
const DESTINATIONS: [&str; 2] = ["on_success", "on_failure"];
const JOURNAL: [&str; 1] = ["retain"];
/// The shortest journal retention: a replay or a slow dispatcher needs some history.
const MIN_RETAIN: Duration = Duration::from_secs(3600);
const RETRY: [&str; 3] = ["max_attempts", "backoff", "max_event_age"];
const COLUMN_TYPES: [&str; 5] = ["text", "integer", "real", "boolean", "json"];

/// A mapping's entries, checked for unknown and repeated keys.
struct Fields<'n> {
    pos: Pos,
    entries: &'n [(Key, Node)],
}

impl<'n> Fields<'n> {
    fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a str, dir: &'a Path, findings: &'a mut Findings) -> Self {
        Self {
            file,
            dir,
            findings,
            declared: Vec::new(),
            destinations: Vec::new(),
        }
    }

    fn origin(&self, pos: Pos) -> Origin {
        Origin {
            file: self.file.to_string(),
            pos,
        }
    }

    fn error(&mut self, pos: Pos, message: impl Into<String>) -> &mut Finding {
        let at = self.origin(pos);
        self.findings.push(Severity::Error, at, message)
    }

    /// Reads the whole file.
    pub fn read(&mut self, root: &Node) -> Declarations {
        let mut out = Declarations::default();
        if root.value == Value::Null {
            return out;
        }
        let Some(top) = self.fields(root, "the manifest", &TOP, &[]) else {
            return out;
        };
        for item in self.list(top.get("buckets"), "buckets") {
            out.buckets.extend(self.bucket(item));
        }
        for item in self.list(top.get("tables"), "tables") {
            out.tables.extend(self.table(item));
        }
        for item in self.list(top.get("functions"), "functions") {
            out.functions.extend(self.function(item));
        }
        for item in self.list(top.get("triggers"), "triggers") {
            out.triggers.extend(self.trigger(item));
        }
        for item in self.list(top.get("schedules"), "schedules") {
            out.schedules.extend(self.schedule(item));
        }
        for item in self.list(top.get("access_keys"), "access_keys") {
            out.access_keys.extend(self.access_key(item));
        }
        if let Some(node) = top.get("journal") {
            let at = self.origin(node.pos);
            out.journal.extend(self.journal(node).map(|j| (j, at)));
        }
        out.declared = std::mem::take(&mut self.declared);
        out.destinations = std::mem::take(&mut self.destinations);
        out
    }

    /// The items of a section that must be a list.
    fn list<'n>(&mut self, node: Option<&'n Node>, what: &str) -> &'n [Node] {
        match node.map(|n| (n, &n.value)) {
            None | Some((_, Value::Null)) => &[],
            Some((_, Value::Seq(items))) => items,
            Some((n, other)) => {
                let found = other.describe();
                self.error(n.pos, format!("`{what}` must be a list"))
                    .note(format!("found: {found}"))
                    .note("expected: a list, each item starting with `- `");
                &[]
            }
        }
    }

    /// A mapping with only `known` keys, each once, and every `required` key present.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&str],
        required: &[&str],
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            let found = node.value.describe();
            self.error(node.pos, format!("{what} must be a mapping of fields"))
                .note(format!("found: {found}"))
                .note(format!("expected fields: {}", known.join(", ")));
            return None;
        };
        for (i, (key, _)) in entries.iter().enumerate() {
            if let Some((first, _)) = entries[..i].iter().find(|(k, _)| k.name == key.name) {
                let first = self.origin(first.pos);
                self.error(key.pos, format!("`{}` is given twice in {what}", key.name))
                    .note(format!("first given at {first}"));
            } else if !known.contains(&key.name.as_str()) {
                self.error(key.pos, format!("unknown field `{}` in {what}", key.name))
                    .suggest(did_you_mean(&key.name, known.iter().copied()))
                    .note(format!("expected one of: {}", known.join(", ")));
            }
        }
        for name in required {
            if !entries.iter().any(|(k, _)| k.name == *name) {
                self.error(
                    node.pos,
                    format!("{what} is missing the required field `{name}`"),
                );
            }
        }
        Some(Fields {
            pos: node.pos,
            entries,
        })
    }

    fn wrong(&mut self, node: &Node, what: &str, expected: &str) {
        let found = node.value.describe();
        self.error(node.pos, format!("`{what}` has the wrong type"))
            .note(format!("found: {found}"))
            .note(format!("expected: {expected}"));
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.wrong(node, what, "a string");
                None
            }
        }
    }

    /// A scalar as text: environment values may be written as numbers or booleans.
    fn scalar_text(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                self.wrong(node, what, "a string, number or boolean");
                None
            }
        }
    }

    /// One string or a list of strings.
    fn strings(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        match &node.value {
            Value::Str(s) => Some(vec![s.clone()]),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.string(item, what)?);
                }
                Some(out)
            }
            _ => {
                self.wrong(node, what, "a string or a list of strings");
                None
            }
        }
    }

    /// One string or a list of strings, each with its own place.
    fn strings_at(&mut self, node: &Node, what: &str) -> Option<Vec<(String, Pos)>> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .map(|i| self.string(i, what).map(|s| (s, i.pos)))
                .collect(),
            _ => self
                .strings(node, what)
                .map(|v| v.into_iter().map(|s| (s, node.pos)).collect()),
        }
    }

    fn name<T>(
        &mut self,
        node: &Node,
        what: &str,
        make: fn(String) -> Result<T, InvalidName>,
    ) -> Option<T> {
        let text = self.string(node, what)?;
        match make(text) {
            Ok(name) => Some(name),
            Err(e) => {
                self.error(node.pos, format!("invalid {} {}", e.what, e.value))
                    .note(e.reason);
                None
            }
        }
    }

    fn uint(&mut self, node: &Node, what: &str, range: (u64, u64)) -> Option<u64> {
        match node.value {
            Value::Int(i) if i >= range.0 as i64 && i <= range.1 as i64 => Some(i as u64),
            Value::Int(i) => {
                self.error(node.pos, format!("`{what}` is out of range"))
                    .note(format!("found: {i}"))
                    .note(format!(
                        "expected: a whole number from {} to {}",
                        range.0, range.1
                    ));
                None
            }
            _ => {
                self.wrong(
                    node,
                    what,
                    &format!("a whole number from {} to {}", range.0, range.1),
                );
                None
            }
        }
    }

    fn bytes(&mut self, node: &Node, what: &str) -> Option<u64> {
        match node.value {
            Value::Int(i) if i >= 0 => Some(i as u64),
            _ => {
                self.wrong(node, what, "a size in bytes, 0 or more");
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong(node, what, "true or false");
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let expected = "a duration with a unit, like 500ms, 10s, 5m, 6h or 1d";
        let parsed = match &node.value {
            Value::Str(s) => parse_duration(s),
            _ => None,
        };
        if parsed.is_none() {
            self.wrong(node, what, expected);
        }
        parsed
    }

    fn path(&mut self, node: &Node, what: &str) -> Option<PathBuf> {
        let text = self.string(node, what)?;
        let relative: PathBuf = Path::new(&text)
            .components()
            .filter(|c| *c != std::path::Component::CurDir)
            .collect();
        let path = self.dir.join(relative);
        if path.is_dir() {
            Some(absolute(path))
        } else {
            self.error(
                node.pos,
                format!("`{what}` names a folder that does not exist: {text}"),
            )
            .note(format!("looked for {}", path.display()))
            .note("paths are relative to the manifest's own folder");
            None
        }
    }

    fn bucket(&mut self, node: &Node) -> Option<BucketSpec> {
        let f = self.fields(node, &label(node, "bucket"), &BUCKET, &["name"])?;
        let name = self.name(f.get("name")?, "name", BucketName::new)?;
        self.declared.push(format!("bucket/{name}"));
        let watch = match f.get("watch") {
            Some(w) => Some(self.path(w, "watch")?),
            None => None,
        };
        Some(BucketSpec {
            name,
            watch,
            at: self.origin(f.pos),
        })
    }

    /// A client's access key: its id, where its secret is (never the manifest), its policy.
    fn access_key(&mut self, node: &Node) -> Option<AccessKeySpec> {
        let f = self.fields(
            node,
            &label(node, "access key"),
            &ACCESS_KEY,
            &["name", "id", "policy"],
        )?;
        if let Some(inline) = f.get("secret") {
            self.error(inline.pos, "an access key's secret is never written in the manifest")
                .note("put it in an environment variable and name it with `secret_env`, or in a file named by `secret_file`");
            return None;
        }
        let name = self.string(f.get("name")?, "name")?;
        let id_node = f.get("id")?;
        let id = self.string(id_node, "id")?;
        let valid_id = (3..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_id {
            self.error(id_node.pos, format!("invalid access key id `{id}`"))
                .note("expected: 3 to 128 letters, digits, `-` or `_`, like AKIAEXAMPLE123");
            return None;
        }
        let secret = match (f.get("secret_env"), f.get("secret_file")) {
            (Some(env), None) => self.string(env, "secret_env").map(SecretSource::Env),
            (None, Some(file)) => self
                .string(file, "secret_file")
                .map(|text| SecretSource::File(absolute(self.dir.join(text)))),
            _ => {
                let message = format!(
                    "access key `{name}` needs exactly one of `secret_env` or `secret_file`"
                );
                self.error(f.pos, message);
                None
            }
        };
        // Checked even when the secret is wrong, so every mistake is reported at once.
        let policy = self.role(f.get("policy")?);
        Some(AccessKeySpec {
            name,
            id,
            secret: secret?,
            policy: policy?,
            at: self.origin(f.pos),
        })
    }

    fn table(&mut self, node: &Node) -> Option<TableSpec> {
        let f = self.fields(node, &label(node, "table"), &TABLE, &TABLE)?;
        let name = self.name(f.get("name")?, "name", TableName::new);
        self.declared
            .extend(name.as_ref().map(|n| format!("table/{n}")));
        let key_node = f.get("primary_key")?;
        let key: Option<Vec<ColumnName>> = self.strings(key_node, "primary_key").and_then(|keys| {
            keys.into_iter()
                .map(|k| self.column_name(key_node, k))
                .collect()
        });
        let columns = self.columns(f.get("columns")?, key.as_deref().unwrap_or(&[]));
        let (name, key, columns) = (name?, key?, columns?);
        match TableSchema::new(name, columns, key) {
            Ok(schema) => Some(TableSpec {
                schema,
                at: self.origin(f.pos),
            }),
            Err(e) => {
                self.error(f.pos, e.to_string());
                None
            }
        }
    }

    fn column_name(&mut self, node: &Node, name: String) -> Option<ColumnName> {
        match ColumnName::new(name) {
            Ok(n) => Some(n),
            Err(e) => {
                self.error(node.pos, format!("invalid {} {}", e.what, e.value))
                    .note(e.reason);
                None
            }
        }
    }

    /// `columns: {id: integer, note: text, total: {type: real, nullable: false}}`. A short
    /// form column is nullable unless it is part of the primary key.
    fn columns(&mut self, node: &Node, key: &[ColumnName]) -> Option<Vec<Column>> {
        let Value::Map(entries) = &node.value else {
            self.wrong(
                node,
                "columns",
                "a mapping of column names to types, like {id: integer, name: text}",
            );
            return None;
        };
        let mut columns = Vec::new();
        let mut ok = true;
        for (k, v) in entries {
            let Some(name) = self.column_name(v, k.name.clone()) else {
                ok = false;
                continue;
            };
            let in_key = key.contains(&name);
            let (ty_node, nullable) = match &v.value {
                Value::Map(_) => {
                    let Some(f) =
                        self.fields(v, &format!("column `{}`", k.name), &COLUMN, &["type"])
                    else {
                        ok = false;
                        continue;
                    };
                    let nullable = match f.get("nullable") {
                        Some(n) => self.boolean(n, "nullable"),
                        None => Some(!in_key),
                    };
                    (f.get("type"), nullable)
                }
                _ => (Some(v), Some(!in_key)),
            };
            let ty = ty_node.and_then(|t| self.column_type(t));
            match (ty, nullable) {
                (Some(ty), Some(nullable)) => columns.push(Column { name, ty, nullable }),
                _ => ok = false,
            }
        }
        ok.then_some(columns)
    }

    fn column_type(&mut self, node: &Node) -> Option<ColumnType> {
        let text = self.string(node, "type")?;
        let ty = match text.as_str() {
            "text" => ColumnType::Text,
            "integer" => ColumnType::Integer,
            "real" => ColumnType::Real,
            "boolean" => ColumnType::Boolean,
            "json" => ColumnType::Json,
            other => {
                let synonym = match other {
                    "string" | "varchar" | "str" => Some("text"),
                    "int" | "bigint" | "number" => Some("integer"),
                    "float" | "double" | "decimal" => Some("real"),
                    "bool" => Some("boolean"),
                    "object" | "map" | "array" => Some("json"),
                    _ => None,
                };
                self.error(node.pos, format!("unknown column type `{other}`"))
                    .suggest(synonym.or_else(|| did_you_mean(other, COLUMN_TYPES)))
                    .note(format!("expected one of: {}", COLUMN_TYPES.join(", ")));
                return None;
            }
        };
        Some(ty)
    }

    fn journal(&mut self, node: &Node) -> Option<JournalSpec> {
        let f = self.fields(node, "`journal`", &JOURNAL, &[])?;
        let Some(n) = f.get("retain") else {
            return Some(JournalSpec::default());
        };
        let retain = self.duration(n, "retain")?;
        if retain < MIN_RETAIN {
            self.error(n.pos, "`retain` is too short")
                .note("expected: at least 1h, so that replays and a lagging node have history");
            return None;
        }
        Some(JournalSpec {
            retain_ms: Some(retain.as_millis() as u64),
        })
    }

    fn destinations(&mut self, node: &Node, from: Option<&FunctionName>) -> Option<Destinations> {
        let f = self.fields(node, "`destinations`", &DESTINATIONS, &[])?;
        let mut ok = true;
        let mut read = |this: &mut Self, field: &str| match f.get(field) {
            None => None,
            Some(n) => {
                let found = this.destination(n, field, from);
                ok &= found.is_some();
                found
            }
        };
        let on_success = read(self, "on_success");
        let on_failure = read(self, "on_failure");
        ok.then_some(Destinations {
            on_success,
            on_failure,
        })
    }

    /// `function/NAME`, `bucket/NAME` or `table/NAME`: a destination for `from`'s records
    /// (remembered, to check what it names once every file is read).
    pub(crate) fn destination(
        &mut self,
        node: &Node,
        what: &str,
        from: Option<&FunctionName>,
    ) -> Option<Target> {
        let text = self.string(node, what)?;
        match Target::parse(&text) {
            Ok(target) => {
                let at = self.origin(node.pos);
                self.destinations.push(NamedDestination {
                    target: target.clone(),
                    from: from.cloned(),
                    at,
                });
                Some(target)
            }
            Err(why) => {
                self.error(node.pos, format!("invalid destination `{text}`: {why}"))
                    .note(
                        "expected: function/NAME, bucket/NAME or table/NAME, declared in the app",
                    );
                None
            }
        }
    }

    fn retry(&mut self, node: &Node) -> Option<RetryPolicy> {
        let f = self.fields(node, "a retry policy", &RETRY, &[])?;
        let mut policy = RetryPolicy::default();
        let mut ok = true;
        if let Some(n) = f.get("max_attempts") {
            match self.uint(n, "max_attempts", (1, 100)) {
                Some(m) => policy.max_attempts = m as u32,
                None => ok = false,
            }
        }
        if let Some(n) = f.get("backoff") {
            let text = self.string(n, "backoff").unwrap_or_default();
            let parsed = text
                .split_once("..")
                .and_then(|(a, b)| Some((parse_duration(a.trim())?, parse_duration(b.trim())?)));
            match parsed {
                Some((min, max)) if min <= max => {
                    (policy.backoff_min, policy.backoff_max) = (min, max)
                }
                _ => {
                    self.error(n.pos, format!("invalid backoff `{text}`"))
                        .note("expected: MIN..MAX with units and MIN at most MAX, like 1s..5m");
                    ok = false;
                }
            }
        }
        if let Some(n) = f.get("max_event_age") {
            match self.duration(n, "max_event_age") {
                Some(age) if !age.is_zero() && age <= Duration::from_secs(6 * 3600) => {
                    policy.max_event_age = age
                }
                Some(_) => {
                    self.error(n.pos, "`max_event_age` is out of range")
                        .note("expected: more than 0 and at most 6h, as on Lambda");
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(policy)
    }
}

/// How messages name a declaration: by its name when it has one.
fn label(node: &Node, kind: &str) -> String {
    let named = match &node.value {
        Value::Map(entries) => entries.iter().find_map(|(k, v)| match &v.value {
            Value::Str(name) if k.name == "name" => Some(name.clone()),
            _ => None,
        }),
        _ => None,
    };
    match named {
        Some(name) => format!("{kind} `{name}`"),
        None if kind.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {kind}"),
        None => format!("a {kind}"),
    }
}

/// A plain YAML value as JSON (for filter values).
fn json(node: &Node) -> Option<Json> {
    match &node.value {
        Value::Null => Some(Json::Null),
        Value::Bool(b) => Some(Json::Bool(*b)),
        Value::Int(i) => Some(Json::from(*i)),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(Json::Number),
        Value::Str(s) => Some(Json::String(s.clone())),
        Value::Seq(_) | Value::Map(_) => None,
    }
}

/// An action is one eddy knows, or a pattern (`*` matching any run of characters) that matches
/// at least one.
fn valid_action(action: &str) -> bool {
    ACTIONS.contains(&action)
        || (action.contains('*')
            && ACTIONS
                .iter()
                .any(|known| glob(action, known) || glob(known, action)))
}

/// A resource: `*`, or `bucket/…`, `table/…`, `function/…` whose name is a valid name (or, with
/// a `*` in it, made of the characters such names have: the `*` matches any run of them).
fn check_resource(resource: &str) -> Result<(), String> {
    if resource == "*" {
        return Ok(());
    }
    let Some((kind, rest)) = resource.split_once('/') else {
        return Err("a resource is `*` or starts with bucket/, table/ or function/".into());
    };
    let (name, key) = match kind {
        "bucket" => rest
            .split_once('/')
            .map_or((rest, None), |(b, k)| (b, Some(k))),
        _ => (rest, None),
    };
    if name.is_empty() && key.is_none() {
        return Err(format!(
            "`{kind}/` names nothing; write {kind}/NAME or {kind}/*"
        ));
    }
    let pattern = |allowed: fn(char) -> bool, rule: &str| match name
        .chars()
        .find(|c| *c != '*' && !allowed(*c))
    {
        Some(c) => Err(format!("{c:?} cannot be part of a {kind} name ({rule})")),
        None => Ok(()),
    };
    match kind {
        "bucket" if name.contains('*') || (name.is_empty() && key.is_some()) => pattern(
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-',
            "lowercase letters, digits, '.' and '-'",
        ),
        "bucket" => BucketName::new(name).map(|_| ()).map_err(|e| e.to_string()),
        "table" if name.contains('*') => pattern(
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
            "lowercase letters, digits and '_'",
        ),
        "table" => TableName::new(name).map(|_| ()).map_err(|e| e.to_string()),
        "function" if name.contains('*') => pattern(
            |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
            "letters, digits, '-' and '_'",
        ),
        "function" => FunctionName::new(name)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown resource type `{other}`")),
    }
}

/// `500ms`, `10s`, `5m`, `6h`, `1d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

/// A resolved path is absolute, so the locked app means the same wherever it is read (the
/// working folder of the process that reads it does not matter).
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("6h"), Some(Duration::from_secs(21_600)));
        for bad in ["10", "s", "1.5s", "10 s", "-1s", "10x", ""] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn actions_and_resources() {
        for ok in [
            "objects:read",
            "objects:*",
            "*",
            "admin:*",
            "functions:invoke",
        ] {
            assert!(valid_action(ok), "{ok}");
        }
        for bad in ["objects:reed", "buckets:*", "objects", "", "objects:zz*"] {
            assert!(!valid_action(bad), "{bad}");
        }
        assert!(valid_action("*:read") && valid_action("objects:re*"));
        for ok in [
            "*",
            "bucket/photos",
            "bucket/photos/uploads/*",
            "bucket/*",
            "table/orders",
            "function/f-1",
            "table/*",
            "bucket/logs/*/private/*",
            "bucket/logs-*/x",
            "function/ingest-*",
            "bucket/*/public/*",
        ] {
            assert!(check_resource(ok).is_ok(), "{ok}");
        }
        for bad in [
            "photos",
            "bucket/Photos",
            "queue/x",
            "table/Orders;--",
            "bucket/Logs*",
            "table/*;drop",
            "bucket/",
        ] {
            assert!(check_resource(bad).is_err(), "{bad}");
        }
    }
}
