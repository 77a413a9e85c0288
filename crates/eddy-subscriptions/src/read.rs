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

mod schedule;
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
    /// Functions named as destinations, with where, checked once every file is read.
    pub destinations: Vec<(FunctionName, Origin)>,
    /// `bucket/NAME`, `table/NAME`, `function/NAME` of every declaration whose name was valid,
    /// even if the rest of it was not: references to it are then not reported as missing.
    pub declared: Vec<String>,
}

pub(crate) struct Reader<'a> {
    file: &'a str,
    dir: &'a Path,
    findings: &'a mut Findings,
    declared: Vec<String>,
    destinations: Vec<(FunctionName, Origin)>,
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
const FUNCTION: [&str; 15] = [
    "name",
    "runtime",
    "handler",
    "code",
    "command",
    "url",
    "secret_env",
    "private_hosts",
    "memory_mb",
    "timeout",
    "concurrency",
    "warm",
    "environment",
    "role",
    "destinations",
];
const RUNTIMES: [&str; 6] = [
    "nodejs",
    "python",
    "provided",
    "exec",
    "webhook",
    "in_process",
];
const STATEMENT: [&str; 3] = ["allow", "deny", "resources"];
const TRIGGER: [&str; 11] = [
    "name",
    "function",
    "source",
    "events",
    "filter",
    "retry",
    "ordering",
    "format",
    "enabled",
    "on_failure",
    "backfill",
];
const DESTINATIONS: [&str; 2] = ["on_success", "on_failure"];
const JOURNAL: [&str; 1] = ["retain"];
/// The shortest journal retention: a replay or a slow dispatcher needs some history.
const MIN_RETAIN: Duration = Duration::from_secs(3600);
const RETRY: [&str; 3] = ["max_attempts", "backoff", "max_event_age"];
const OBJECT_FILTER: [&str; 3] = ["prefix", "suffix", "size"];
const SIZE_RANGE: [&str; 2] = ["min", "max"];
const TEST_KEYS: [&str; 6] = ["anything_but", "exists", "gt", "gte", "lt", "lte"];
const COLUMN_TYPES: [&str; 5] = ["text", "integer", "real", "boolean", "json"];
/// Environment names Lambda reserves for itself.
const RESERVED_ENV: [&str; 8] = [
    "_HANDLER",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

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

    fn function(&mut self, node: &Node) -> Option<FunctionSpec> {
        let what = label(node, "function");
        let f = self.fields(node, &what, &FUNCTION, &["name", "runtime"])?;
        let name = self.name(f.get("name")?, "name", FunctionName::new);
        self.declared
            .extend(name.as_ref().map(|n| format!("function/{n}")));
        let runtime = self.runtime(&f, &what);
        let memory_mb = match f.get("memory_mb") {
            Some(n) => self
                .uint(
                    n,
                    "memory_mb",
                    (u64::from(MEMORY_MB.0), u64::from(MEMORY_MB.1)),
                )
                .map(|m| m as u32),
            None => Some(FunctionSpec::DEFAULT_MEMORY_MB),
        };
        let timeout = match f.get("timeout") {
            Some(n) => self.duration(n, "timeout").and_then(|t| {
                if t.is_zero() || t > MAX_TIMEOUT {
                    self.error(n.pos, "`timeout` is out of range")
                        .note("expected: more than 0 and at most 15m (900s), as on Lambda");
                    None
                } else {
                    Some(t)
                }
            }),
            None => Some(FunctionSpec::DEFAULT_TIMEOUT),
        };
        let concurrency = match f.get("concurrency") {
            Some(n) => self.uint(n, "concurrency", (1, 1000)).map(|c| c as u32),
            None => Some(FunctionSpec::DEFAULT_CONCURRENCY),
        };
        let warm = match f.get("warm") {
            Some(n) => self.warm(n, runtime.as_ref(), concurrency).map(Some),
            None => Some(None),
        };
        let environment = match f.get("environment") {
            Some(n) => self.environment(n),
            None => Some(BTreeMap::new()),
        };
        let role = match f.get("role") {
            Some(n) => self.role(n),
            None => Some(Vec::new()),
        };
        let destinations = match f.get("destinations") {
            Some(n) => self.destinations(n),
            None => Some(Destinations::default()),
        };
        Some(FunctionSpec {
            name: name?,
            runtime: runtime?,
            memory_mb: memory_mb?,
            timeout: timeout?,
            concurrency: concurrency?,
            warm: warm?,
            environment: environment?,
            role: role?,
            destinations: destinations?,
            at: self.origin(f.pos),
        })
    }

    /// `warm: N`: workers kept ready, for the runtimes that run in workers, at most the
    /// function's concurrency.
    fn warm(
        &mut self,
        node: &Node,
        runtime: Option<&Runtime>,
        concurrency: Option<u32>,
    ) -> Option<u32> {
        let count = self.uint(node, "warm", (0, 1000))? as u32;
        if let Some(
            runtime @ (Runtime::Exec { .. } | Runtime::Webhook { .. } | Runtime::InProcess),
        ) = runtime
        {
            self.error(node.pos, format!("`warm` does not apply to {} functions", runtime.name()))
                .note("workers are kept warm for nodejs, python and provided functions; the others start nothing ahead of an invocation");
            return None;
        }
        if let Some(limit) = concurrency.filter(|c| count > *c) {
            self.error(node.pos, "`warm` is more than the function's `concurrency`")
                .note(format!(
                    "found: {count}; expected: 0 to {limit}, as more could never all be busy"
                ));
            return None;
        }
        Some(count)
    }

    fn runtime(&mut self, f: &Fields, what: &str) -> Option<Runtime> {
        let node = f.get("runtime")?;
        let name = self.string(node, "runtime")?;
        // The fields each runtime uses; any other runtime-specific field is a mistake.
        let (uses, required): (&[&str], &[&str]) = match name.as_str() {
            "exec" | "provided" => (&["command", "code"], &["command"]),
            "nodejs" | "python" => (&["handler", "code"], &["handler", "code"]),
            "webhook" => (&["url", "secret_env", "private_hosts"], &["url"]),
            "in_process" => (&[], &[]),
            other => {
                let finding = self
                    .error(node.pos, format!("unknown runtime `{other}`"))
                    .suggest(did_you_mean(other, RUNTIMES));
                finding.note(format!("expected one of: {}", RUNTIMES.join(", ")));
                return None;
            }
        };
        let mut ok = true;
        for field in [
            "handler",
            "code",
            "command",
            "url",
            "secret_env",
            "private_hosts",
        ] {
            if let Some(n) = f.get(field).filter(|_| !uses.contains(&field)) {
                self.error(
                    n.pos,
                    format!("`{field}` is not used by the {name} runtime"),
                )
                .note(format!(
                    "the {name} runtime uses: {}",
                    if uses.is_empty() {
                        "none of handler, code, command, url".to_string()
                    } else {
                        uses.join(", ")
                    }
                ));
                ok = false;
            }
        }
        for field in required {
            if f.get(field).is_none() {
                self.error(
                    f.pos,
                    format!("{what} is missing `{field}`, which the {name} runtime needs"),
                );
                ok = false;
            }
        }
        let code = match f.get("code") {
            Some(n) => Some(self.path(n, "code")?),
            None => None,
        };
        let command = match f.get("command") {
            Some(n) => Some(self.command(n)?),
            None => None,
        };
        if !ok {
            return None;
        }
        let dir = code
            .clone()
            .unwrap_or_else(|| absolute(self.dir.to_path_buf()));
        Some(match name.as_str() {
            "exec" => Runtime::Exec {
                command: command?,
                dir,
            },
            "provided" => Runtime::Provided {
                command: command?,
                dir,
            },
            "nodejs" => Runtime::Nodejs {
                handler: self.string(f.get("handler")?, "handler")?,
                code: code?,
            },
            "python" => Runtime::Python {
                handler: self.string(f.get("handler")?, "handler")?,
                code: code?,
            },
            "webhook" => Runtime::Webhook {
                url: self.string(f.get("url")?, "url")?,
                secret_env: match f.get("secret_env") {
                    Some(n) => Some(self.string(n, "secret_env")?),
                    None => None,
                },
                private_hosts: match f.get("private_hosts") {
                    Some(n) => self.strings(n, "private_hosts")?,
                    None => Vec::new(),
                },
            },
            _ => Runtime::InProcess,
        })
    }

    fn command(&mut self, node: &Node) -> Option<Vec<String>> {
        // A program without arguments may be written alone; with arguments it must be a list
        // (eddy does not split a command line as a shell would).
        if let Value::Str(program) = &node.value {
            let words: Vec<&str> = program.split_whitespace().collect();
            if words.len() == 1 && words[0] == program {
                return Some(vec![program.clone()]);
            }
            self.error(
                node.pos,
                format!(
                    "`command` {program:?} is one string; eddy does not split it into arguments"
                ),
            )
            .note(format!(
                "write the program and its arguments as a list: [{}]",
                words.join(", ")
            ));
            return None;
        }
        let Value::Seq(_) = node.value else {
            self.wrong(
                node,
                "command",
                "a list of arguments, like [python3, handler.py]",
            );
            return None;
        };
        let args = self.strings(node, "command")?;
        if args.is_empty() {
            self.error(node.pos, "`command` is empty")
                .note("expected: the program and its arguments, like [python3, handler.py]");
            return None;
        }
        Some(args)
    }

    fn environment(&mut self, node: &Node) -> Option<BTreeMap<String, String>> {
        let Value::Map(entries) = &node.value else {
            self.wrong(node, "environment", "a mapping of variable names to values");
            return None;
        };
        let mut env = BTreeMap::new();
        let mut ok = true;
        for (k, v) in entries {
            let valid = k
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.error(
                    k.pos,
                    format!("`{}` is not a valid environment variable name", k.name),
                )
                .note("expected: letters, digits and `_`, not starting with a digit");
                ok = false;
            } else if RESERVED_ENV.contains(&k.name.as_str()) || k.name.starts_with("AWS_LAMBDA_") {
                self.error(
                    k.pos,
                    format!("`{}` is reserved: eddy sets it for every function", k.name),
                );
                ok = false;
            } else if let Some(value) = self.scalar_text(v, &k.name) {
                env.insert(k.name.clone(), value);
            } else {
                ok = false;
            }
        }
        ok.then_some(env)
    }

    fn role(&mut self, node: &Node) -> Option<Vec<Statement>> {
        let Value::Seq(items) = &node.value else {
            self.wrong(
                node,
                "role",
                "a list of statements, like - {allow: [objects:read], resources: [bucket/photos]}",
            );
            return None;
        };
        let mut statements = Vec::new();
        let mut ok = true;
        for item in items {
            match self.statement(item) {
                Some(s) => statements.push(s),
                None => ok = false,
            }
        }
        ok.then_some(statements)
    }

    fn statement(&mut self, node: &Node) -> Option<Statement> {
        let f = self.fields(node, "a role statement", &STATEMENT, &["resources"])?;
        let (effect, actions_node) = match (f.get("allow"), f.get("deny")) {
            (Some(a), None) => (Effect::Allow, a),
            (None, Some(d)) => (Effect::Deny, d),
            _ => {
                self.error(
                    f.pos,
                    "a role statement has exactly one of `allow` or `deny`",
                );
                return None;
            }
        };
        let actions = self.strings_at(actions_node, "actions")?;
        let mut ok = true;
        for (action, pos) in &actions {
            if !valid_action(action) {
                let finding = self
                    .error(*pos, format!("unknown action `{action}`"))
                    .suggest(did_you_mean(action, ACTIONS));
                finding.note(format!(
                    "expected one of: {}, or a pattern such as objects:* or * (a * matches any run of characters)",
                    ACTIONS.join(", ")
                ));
                ok = false;
            }
        }
        let resources_node = f.get("resources")?;
        let resources = self.strings_at(resources_node, "resources")?;
        for (resource, pos) in &resources {
            if let Err(reason) = check_resource(resource) {
                self.error(*pos, format!("invalid resource `{resource}`"))
                    .note(reason)
                    .note("expected: *, bucket/NAME, bucket/NAME/KEY (a * matches any run of characters, e.g. bucket/NAME/logs/*/private/*), table/NAME or function/NAME");
                ok = false;
            }
        }
        let names = |list: Vec<(String, Pos)>| list.into_iter().map(|(s, _)| s).collect();
        ok.then(|| Statement {
            effect,
            actions: names(actions),
            resources: names(resources),
        })
    }

    fn trigger(&mut self, node: &Node) -> Option<TriggerDraft> {
        let f = self.fields(
            node,
            &label(node, "trigger"),
            &TRIGGER,
            &["function", "source", "events"],
        )?;
        let function = f
            .get("function")
            .and_then(|n| Some((self.name(n, "function", FunctionName::new)?, n.pos)));
        let source = f.get("source").and_then(|n| Some((self.source(n)?, n.pos)));
        let events = match (f.get("events"), &source) {
            (Some(n), Some((s, _))) => self.events(n, s),
            _ => None,
        };
        let mut columns = Vec::new();
        let filter = match (f.get("filter"), &source) {
            (None, _) => Some(Filter::None),
            (Some(n), Some((s, _))) => self.filter(n, s, &mut columns),
            (Some(_), None) => None,
        };
        let retry = match f.get("retry") {
            Some(n) => self.retry(n),
            None => Some(RetryPolicy::default()),
        };
        let ordering = match f.get("ordering") {
            Some(n) => self.choice(
                n,
                "ordering",
                &[
                    ("per_key", Ordering::PerKey),
                    ("unordered", Ordering::Unordered),
                ],
            ),
            None => Some(Ordering::default()),
        };
        let format = match f.get("format") {
            Some(n) => self.choice(
                n,
                "format",
                &[("aws", Format::Aws), ("plain", Format::Plain)],
            ),
            None => Some(Format::default()),
        };
        let enabled = match f.get("enabled") {
            Some(n) => self.boolean(n, "enabled"),
            None => Some(true),
        };
        let name = match f.get("name") {
            Some(n) => self.trigger_name(n).ok_or(()),
            None => Ok(None),
        };
        let backfill = match f.get("backfill") {
            Some(n) => self.boolean(n, "backfill"),
            None => Some(false),
        };
        let on_failure = match (f.get("on_failure"), &source) {
            (None, _) => Some(None),
            (Some(n), Some((eddy_core::Source::Table(_), _))) => {
                self.destination(n, "on_failure").map(Some)
            }
            (Some(n), Some(_)) => {
                self.error(n.pos, "`on_failure` is for table triggers")
                    .note("an object trigger's deliveries are asynchronous invocations: their failures go to the function's `destinations: {on_failure: function/NAME}`");
                None
            }
            (Some(_), None) => None,
        };
        let at = self.origin(f.pos);
        let spec = (|| {
            Some(TriggerSpec {
                name: name.clone().ok()?.unwrap_or_default(),
                function: function.clone()?.0,
                source: source.clone()?.0,
                events: events?,
                filter: filter?,
                retry: retry?,
                ordering: ordering?,
                format: format?,
                enabled: enabled?,
                on_failure: on_failure.clone()?,
                backfill: backfill?,
                at: at.clone(),
            })
        })();
        Some(TriggerDraft {
            spec,
            name: name.ok().flatten(),
            function,
            source,
            columns,
            at,
        })
    }

    fn trigger_name(&mut self, node: &Node) -> Option<Option<String>> {
        let name = self.string(node, "name")?;
        let ok = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            self.error(node.pos, format!("invalid trigger name {name:?}"))
                .note("expected: 1 to 64 letters, digits, `-`, `_` or `.`");
            return None;
        }
        Some(Some(name))
    }

    fn choice<T: Copy>(&mut self, node: &Node, what: &str, options: &[(&str, T)]) -> Option<T> {
        let text = self.string(node, what)?;
        if let Some((_, value)) = options.iter().find(|(name, _)| *name == text) {
            return Some(*value);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let finding = self
            .error(node.pos, format!("unknown {what} `{text}`"))
            .suggest(did_you_mean(&text, names.iter().copied()));
        finding.note(format!("expected one of: {}", names.join(", ")));
        None
    }

    fn source(&mut self, node: &Node) -> Option<eddy_core::Source> {
        let text = self.string(node, "source")?;
        let parsed = match text.split_once('/') {
            Some((kind @ ("bucket" | "table"), name)) => {
                eddy_core::Source::from_parts(kind, name).map_err(Some)
            }
            _ => Err(None),
        };
        match parsed {
            Ok(source) => Some(source),
            Err(reason) => {
                let finding = self.error(node.pos, format!("invalid source `{text}`"));
                if let Some(reason) = reason {
                    finding.note(reason);
                }
                finding.note("expected: bucket/NAME or table/NAME");
                None
            }
        }
    }

    fn events(&mut self, node: &Node, source: &eddy_core::Source) -> Option<EventSet> {
        let patterns = self.strings_at(node, "events")?;
        if patterns.is_empty() {
            self.error(node.pos, "`events` is empty")
                .note("expected: at least one event type, like object:created or row:insert");
            return None;
        }
        let (family, all) = match source {
            eddy_core::Source::Table(_) => ("row:", EventSet::pattern("row:*")),
            _ => ("object:", EventSet::pattern("object:*")),
        };
        let mut set = EventSet::default();
        let mut ok = true;
        for (pattern, pos) in patterns {
            let names = EVENT_PATTERNS.iter().map(|(p, _)| *p);
            match EventSet::pattern(&pattern) {
                Some(_) if pattern == "*" => set = set.union(all.expect("listed")),
                Some(kinds) if pattern.starts_with(family) => set = set.union(kinds),
                Some(_) => {
                    self.error(pos, format!("`{pattern}` events never come from {source}"))
                        .note(format!("expected: {family}… events for this source"));
                    ok = false;
                }
                None => {
                    let finding = self
                        .error(pos, format!("unknown event type `{pattern}`"))
                        .suggest(did_you_mean(&pattern, names.clone()));
                    finding.note(format!(
                        "expected one of: {}",
                        names.collect::<Vec<_>>().join(", ")
                    ));
                    ok = false;
                }
            }
        }
        ok.then_some(set)
    }

    fn filter(
        &mut self,
        node: &Node,
        source: &eddy_core::Source,
        columns: &mut Vec<(String, Pos)>,
    ) -> Option<Filter> {
        match source {
            eddy_core::Source::Table(_) => self.row_filter(node, columns).map(Filter::Row),
            _ => self.object_filter(node).map(Filter::Object),
        }
    }

    fn object_filter(&mut self, node: &Node) -> Option<ObjectFilter> {
        let f = self.fields(node, "an object filter", &OBJECT_FILTER, &[])?;
        let mut filter = ObjectFilter::default();
        if let Some(n) = f.get("prefix") {
            filter.prefixes = self.strings(n, "prefix")?;
        }
        if let Some(n) = f.get("suffix") {
            filter.suffixes = self.strings(n, "suffix")?;
        }
        if let Some(n) = f.get("size") {
            let range = self.fields(n, "a size range", &SIZE_RANGE, &[])?;
            if let Some(m) = range.get("min") {
                filter.min_size = Some(self.bytes(m, "min")?);
            }
            if let Some(m) = range.get("max") {
                filter.max_size = Some(self.bytes(m, "max")?);
            }
        }
        Some(filter)
    }

    /// `{new.status: [shipped], old.total: {gt: 10}, changed: [status]}`
    fn row_filter(&mut self, node: &Node, columns: &mut Vec<(String, Pos)>) -> Option<RowFilter> {
        let Value::Map(entries) = &node.value else {
            self.wrong(
                node,
                "filter",
                "a mapping like {new.status: [shipped], changed: [status]}",
            );
            return None;
        };
        let mut filter = RowFilter::default();
        let mut ok = true;
        for (key, value) in entries {
            if key.name == "changed" {
                match self.strings_at(value, "changed") {
                    Some(cols) => {
                        filter.changed = cols.iter().map(|(c, _)| c.clone()).collect();
                        columns.extend(cols);
                    }
                    None => ok = false,
                }
                continue;
            }
            let image = match key.name.split_once('.') {
                Some(("new", column)) => Some((Image::New, column)),
                Some(("old", column)) => Some((Image::Old, column)),
                _ => None,
            };
            let Some((image, column)) = image else {
                self.error(key.pos, format!("unknown filter key `{}`", key.name))
                    .note("expected: new.COLUMN, old.COLUMN or changed");
                ok = false;
                continue;
            };
            columns.push((column.to_string(), key.pos));
            match self.test(value, &key.name) {
                Some(test) => filter.predicates.push(Predicate {
                    image,
                    column: column.to_string(),
                    test,
                }),
                None => ok = false,
            }
        }
        ok.then_some(filter)
    }

    fn test(&mut self, node: &Node, what: &str) -> Option<Test> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .map(json)
                .collect::<Option<Vec<_>>>()
                .map(Test::OneOf)
                .or_else(|| {
                    self.wrong(node, what, "a list of plain values");
                    None
                }),
            Value::Map(_) => {
                let f = self.fields(node, &format!("the test of `{what}`"), &TEST_KEYS, &[])?;
                if let Some(n) = f.get("anything_but") {
                    let Value::Seq(items) = &n.value else {
                        self.wrong(n, "anything_but", "a list of plain values");
                        return None;
                    };
                    return items
                        .iter()
                        .map(json)
                        .collect::<Option<Vec<_>>>()
                        .map(Test::AnythingBut);
                }
                if let Some(n) = f.get("exists") {
                    return self.boolean(n, "exists").map(Test::Exists);
                }
                let mut bound = |name: &str| -> Option<Option<f64>> {
                    match f.get(name).map(|n| (n, &n.value)) {
                        None => Some(None),
                        Some((_, Value::Int(i))) => Some(Some(*i as f64)),
                        Some((_, Value::Float(x))) => Some(Some(*x)),
                        Some((n, _)) => {
                            self.wrong(n, name, "a number");
                            None
                        }
                    }
                };
                let (gt, gte, lt, lte) = (bound("gt")?, bound("gte")?, bound("lt")?, bound("lte")?);
                if [gt, gte, lt, lte].iter().all(Option::is_none) {
                    self.error(node.pos, format!("the test of `{what}` is empty"))
                        .note("expected one of: anything_but, exists, gt, gte, lt, lte");
                    return None;
                }
                Some(Test::Range { gt, gte, lt, lte })
            }
            _ => json(node).map(|v| Test::OneOf(vec![v])),
        }
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

    fn destinations(&mut self, node: &Node) -> Option<Destinations> {
        let f = self.fields(node, "`destinations`", &DESTINATIONS, &[])?;
        let mut ok = true;
        let mut read = |this: &mut Self, field: &str| match f.get(field) {
            None => None,
            Some(n) => {
                let found = this.destination(n, field);
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

    /// `function/NAME`: a destination (remembered, to check that the function is declared).
    fn destination(&mut self, node: &Node, what: &str) -> Option<FunctionName> {
        let text = self.string(node, what)?;
        let function = text
            .strip_prefix("function/")
            .and_then(|name| FunctionName::new(name).ok());
        match function {
            Some(function) => {
                let at = self.origin(node.pos);
                self.destinations.push((function.clone(), at));
                Some(function)
            }
            None => {
                self.error(node.pos, format!("invalid destination `{text}`"))
                    .note("expected: function/NAME, a declared function (bucket and table destinations are not supported yet)");
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
