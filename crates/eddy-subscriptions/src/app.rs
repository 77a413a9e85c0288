//! The validated, resolved app that manifests declare: buckets, tables, functions, triggers.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use eddy_core::{BucketName, FunctionName, Source, TableSchema};
use serde::{Deserialize, Serialize};

use crate::filter::{EventSet, Filter};
use crate::policy::Statement;
use crate::yaml::Pos;

/// Where something was declared.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub buckets: Vec<BucketSpec>,
    pub tables: Vec<TableSpec>,
    pub functions: Vec<FunctionSpec>,
    pub triggers: Vec<TriggerSpec>,
    /// Keys for client applications, each limited by its policy.
    pub access_keys: Vec<AccessKeySpec>,
}

/// An access key for a client application. Its secret is read when the app is applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessKeySpec {
    pub name: String,
    pub id: String,
    pub secret: SecretSource,
    pub policy: Vec<Statement>,
    pub at: Origin,
}

/// Where a secret lives: never in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketSpec {
    pub name: BucketName,
    /// A folder whose files become objects of this bucket.
    pub watch: Option<PathBuf>,
    pub at: Origin,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableSpec {
    pub schema: TableSchema,
    pub at: Origin,
}

/// The smallest and largest memory a function may have, in MB, as on Lambda.
pub const MEMORY_MB: (u32, u32) = (128, 10_240);
/// The longest timeout, as on Lambda.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    pub name: FunctionName,
    pub runtime: Runtime,
    pub memory_mb: u32,
    #[serde(rename = "timeout_ms", with = "crate::locked::millis")]
    pub timeout: Duration,
    /// Parallel invocations at most; further work waits.
    pub concurrency: u32,
    /// Workers kept started and initialised ahead of invocations (nodejs, python and
    /// provided); `None` takes the default, [`FunctionSpec::warm_workers`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<u32>,
    pub environment: BTreeMap<String, String>,
    pub role: Vec<Statement>,
    pub at: Origin,
}

impl FunctionSpec {
    /// How many warm workers the function keeps: as declared, or one for a function that
    /// runs in workers and has triggers (so the first event after a quiet spell does not wait
    /// for a process to start), none otherwise.
    pub fn warm_workers(&self, has_triggers: bool) -> u32 {
        let in_workers = matches!(
            self.runtime,
            Runtime::Nodejs { .. } | Runtime::Python { .. } | Runtime::Provided { .. }
        );
        match (in_workers, self.warm) {
            (false, _) => 0,
            (true, Some(n)) => n,
            (true, None) => u32::from(has_triggers),
        }
    }

    pub const DEFAULT_MEMORY_MB: u32 = 128;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
    pub const DEFAULT_CONCURRENCY: u32 = 4;
}

/// How a function runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    #[serde(rename = "backoff_min_ms", with = "crate::locked::millis")]
    pub backoff_min: Duration,
    #[serde(rename = "backoff_max_ms", with = "crate::locked::millis")]
    pub backoff_max: Duration,
    /// An event older than this is dead-lettered instead of tried again.
    #[serde(rename = "max_event_age_ms", with = "crate::locked::millis")]
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Deliveries run in parallel, in any order.
    #[default]
    Unordered,
    /// The events of one object key or primary key run one at a time, in commit order.
    PerKey,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// S3 notifications and DynamoDB-Streams records.
    #[default]
    Aws,
    /// eddy's plain records.
    Plain,
}
