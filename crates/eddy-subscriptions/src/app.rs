//! The validated, resolved app that manifests declare: buckets, tables, functions, triggers.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use eddy_core::{BucketName, FunctionName, Source, TableSchema};

use crate::filter::{EventSet, Filter};
use crate::yaml::Pos;

/// Where something was declared.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub file: String,
    pub pos: Pos,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.pos.line, self.pos.column)
    }
}

/// Everything the manifests declare, checked and with references resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct App {
    pub buckets: Vec<BucketSpec>,
    pub tables: Vec<TableSpec>,
    pub functions: Vec<FunctionSpec>,
    pub triggers: Vec<TriggerSpec>,
    /// Keys for client applications, each limited by its policy.
    pub access_keys: Vec<AccessKeySpec>,
}

/// An access key for a client application. Its secret is read when the app is applied.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessKeySpec {
    pub name: String,
    pub id: String,
    pub secret: SecretSource,
    pub policy: Vec<Statement>,
    pub at: Origin,
}

/// Where a secret lives: never in the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// The value of this environment variable of eddy's.
    Env(String),
    /// The contents of this file (trailing whitespace removed).
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret; the error says where it looked, never what it found.
    pub fn read(&self) -> Result<String, String> {
        let secret = match self {
            SecretSource::Env(name) => eddy_core::secrets::var(name)
                .ok_or_else(|| format!("the environment variable {name} is not set"))?,
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .trim_end()
                .to_string(),
        };
        if secret.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(secret)
    }
}

impl App {
    pub fn function(&self, name: &FunctionName) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| &f.name == name)
    }

    pub fn table(&self, name: &str) -> Option<&TableSpec> {
        self.tables
            .iter()
            .find(|t| t.schema.name().as_str() == name)
    }

    pub fn bucket(&self, name: &str) -> Option<&BucketSpec> {
        self.buckets.iter().find(|b| b.name.as_str() == name)
    }

    pub fn trigger(&self, name: &str) -> Option<&TriggerSpec> {
        self.triggers.iter().find(|t| t.name == name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BucketSpec {
    pub name: BucketName,
    /// A folder whose files become objects of this bucket.
    pub watch: Option<PathBuf>,
    pub at: Origin,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableSpec {
    pub schema: TableSchema,
    pub at: Origin,
}

/// The smallest and largest memory a function may have, in MB, as on Lambda.
pub const MEMORY_MB: (u32, u32) = (128, 10_240);
/// The longest timeout, as on Lambda.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Clone, Debug, PartialEq)]
pub struct FunctionSpec {
    pub name: FunctionName,
    pub runtime: Runtime,
    pub memory_mb: u32,
    pub timeout: Duration,
    /// Parallel invocations at most; further work waits.
    pub concurrency: u32,
    pub environment: BTreeMap<String, String>,
    pub role: Vec<Statement>,
    pub at: Origin,
}

impl FunctionSpec {
    pub const DEFAULT_MEMORY_MB: u32 = 128;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
    pub const DEFAULT_CONCURRENCY: u32 = 4;
}

/// How a function runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// One process per invocation: the event on stdin, the result on stdout.
    Exec {
        command: Vec<String>,
        dir: PathBuf,
    },
    Nodejs {
        handler: String,
        code: PathBuf,
    },
    Python {
        handler: String,
        code: PathBuf,
    },
    /// Any executable that speaks the Lambda Runtime API.
    Provided {
        command: Vec<String>,
        dir: PathBuf,
    },
    /// POST the event to a URL; the signing secret comes from an environment variable.
    Webhook {
        url: String,
        secret_env: Option<String>,
        /// Hosts the webhook may reach although they are loopback, private, link-local or a
        /// metadata address (refused otherwise).
        private_hosts: Vec<String>,
    },
    /// A handler registered in the embedding Rust program under the function's name.
    InProcess,
}

impl Runtime {
    pub fn name(&self) -> &'static str {
        match self {
            Runtime::Exec { .. } => "exec",
            Runtime::Nodejs { .. } => "nodejs",
            Runtime::Python { .. } => "python",
            Runtime::Provided { .. } => "provided",
            Runtime::Webhook { .. } => "webhook",
            Runtime::InProcess => "in_process",
        }
    }
}

/// One statement of a role: allow or deny these actions on these resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// The actions a role can name; `*` after a colon, or alone, is a wildcard.
pub const ACTIONS: [&str; 8] = [
    "objects:read",
    "objects:write",
    "objects:delete",
    "objects:list",
    "tables:read",
    "tables:write",
    "functions:invoke",
    "admin:*",
];

impl Statement {
    /// Whether this statement names `action` on `resource` (wildcards: a trailing `*`).
    /// Resources are `bucket/NAME` (a bucket), `bucket/NAME/KEY` (an object), `table/NAME`,
    /// `function/NAME`; a statement naming a bucket covers every object in it.
    pub fn covers(&self, action: &str, resource: &str) -> bool {
        self.actions.iter().any(|a| glob(a, action))
            && self.resources.iter().any(|r| resource_matches(r, resource))
    }
}

/// Whether the statement resource `pattern` covers `resource`: equal, a trailing `*` matching
/// any rest, and `bucket/NAME` covering the objects `bucket/NAME/…`. Names are compared as
/// they are (bucket, table and function names are lowercase by their rules; keys keep case).
pub fn resource_matches(pattern: &str, resource: &str) -> bool {
    if glob(pattern, resource) {
        return true;
    }
    let whole_bucket = pattern.starts_with("bucket/")
        && !pattern.ends_with('*')
        && pattern.matches('/').count() == 1;
    whole_bucket
        && resource
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Deny wins over allow; nothing allowed means denied.
pub fn role_allows(role: &[Statement], action: &str, resource: &str) -> bool {
    let named = |effect| {
        role.iter()
            .any(|s| s.effect == effect && s.covers(action, resource))
    };
    named(Effect::Allow) && !named(Effect::Deny)
}

/// `pattern` with an optional trailing `*` matching any rest.
pub(crate) fn glob(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TriggerSpec {
    /// Unique; handlers see it as the S3 event's `configurationId`.
    pub name: String,
    pub function: FunctionName,
    pub source: Source,
    pub events: EventSet,
    pub filter: Filter,
    pub retry: RetryPolicy,
    pub ordering: Ordering,
    pub format: Format,
    pub enabled: bool,
    pub at: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// An event older than this is dead-lettered instead of tried again.
    pub max_event_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            max_event_age: Duration::from_secs(6 * 3600),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ordering {
    /// Deliveries run in parallel, in any order.
    #[default]
    Unordered,
    /// The events of one object key or primary key run one at a time, in commit order.
    PerKey,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// S3 notifications and DynamoDB-Streams records.
    #[default]
    Aws,
    /// eddy's plain records.
    Plain,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(effect: Effect, actions: &[&str], resources: &[&str]) -> Statement {
        Statement {
            effect,
            actions: actions.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn deny_wins_and_nothing_allowed_is_denied() {
        let role = vec![
            statement(Effect::Allow, &["objects:*"], &["bucket/photos/*"]),
            statement(Effect::Deny, &["objects:delete"], &["*"]),
        ];
        assert!(role_allows(&role, "objects:read", "bucket/photos/a.jpg"));
        assert!(!role_allows(&role, "objects:delete", "bucket/photos/a.jpg"));
        assert!(!role_allows(&role, "objects:read", "bucket/other/a.jpg"));
        assert!(!role_allows(&role, "tables:read", "table/orders"));
        assert!(!role_allows(&[], "objects:read", "bucket/photos/a"));
    }

    #[test]
    fn a_bucket_covers_its_objects_and_no_other_bucket() {
        assert!(resource_matches("bucket/photos", "bucket/photos"));
        assert!(resource_matches("bucket/photos", "bucket/photos/a/b.jpg"));
        assert!(!resource_matches("bucket/photos", "bucket/photos2/a.jpg"));
        assert!(!resource_matches("bucket/photos", "bucket/photo"));
        assert!(resource_matches(
            "bucket/uploads/incoming/*",
            "bucket/uploads/incoming/x"
        ));
        assert!(!resource_matches(
            "bucket/uploads/incoming/*",
            "bucket/uploads/other/x"
        ));
        assert!(!resource_matches(
            "bucket/uploads/incoming/*",
            "bucket/uploads"
        ));
        assert!(!resource_matches(
            "bucket/uploads/a.txt",
            "bucket/uploads/a.txt/b"
        ));
        assert!(!resource_matches("table/orders", "table/orders/x"));
        assert!(resource_matches("*", "function/f"));
        assert!(
            !resource_matches("bucket/b/Key*", "bucket/b/key"),
            "case is never folded"
        );
    }

    proptest::proptest! {
        /// The matcher against a model: a trailing `*` is a prefix test, a bare bucket covers
        /// its objects, and nothing else matches but equality (case included: names mix cases).
        #[test]
        fn the_matcher_follows_its_model(
            kind in proptest::sample::select(vec!["bucket", "table", "function"]),
            name in "[a-cA-C]{1,3}",
            rest in proptest::option::of("[a-cA-C/]{0,4}"),
            star in proptest::bool::ANY,
            other in "[a-cA-C/]{0,8}",
        ) {
            let mut pattern = format!("{kind}/{name}");
            if let Some(rest) = &rest { pattern.push('/'); pattern.push_str(rest); }
            if star { pattern.push('*'); }
            let resource = format!("{kind}/{other}");
            let expected = match pattern.strip_suffix('*') {
                Some(prefix) => resource.starts_with(prefix),
                None => resource == pattern
                    || (kind == "bucket" && rest.is_none() && resource.starts_with(&format!("{pattern}/"))),
            };
            proptest::prop_assert_eq!(resource_matches(&pattern, &resource), expected);
        }

        /// Deny wins: adding a deny that covers a request never turns it into an allow, and
        /// removing every allow denies.
        #[test]
        fn deny_always_wins(allow_all in proptest::bool::ANY, action in "objects:(read|write|delete|list)", key in "[a-z/]{1,6}") {
            let resource = format!("bucket/b/{key}");
            let allow = statement(Effect::Allow, &[if allow_all { "*" } else { "objects:*" }], &["bucket/b"]);
            let deny = statement(Effect::Deny, &[action.as_str()], &[resource.as_str()]);
            proptest::prop_assert!(role_allows(std::slice::from_ref(&allow), &action, &resource));
            proptest::prop_assert!(!role_allows(&[allow.clone(), deny.clone()], &action, &resource));
            proptest::prop_assert!(!role_allows(&[deny], &action, &resource));
        }
    }
}
