use eddy_bus::BusError;
use eddy_core::{Classify, ErrorKind};
use eddy_executor::ExecError;
use eddy_objects::ObjectError;
use eddy_subscriptions::LockError;
use eddy_tables::TableError;
use thiserror::Error;

/// Why the node could not do what it was asked. Whatever failed, the app in service stays.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The manifests have errors; the findings, as the checker prints them.
    #[error("{0}")]
    InvalidManifests(String),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("creating bucket {bucket}: {source}")]
    Bucket {
        bucket: String,
        #[source]
        source: ObjectError,
    },
    #[error("declaring table {table} ({at}): {source}")]
    Table {
        table: String,
        at: String,
        #[source]
        source: TableError,
    },
    #[error("reading the tables' creation times: {0}")]
    Tables(#[source] TableError),
    #[error("reading rows to backfill: {0}")]
    Rows(#[source] TableError),
    /// An access key's secret could not be read.
    #[error("{0}")]
    Secret(String),
    #[error("the stored node state holds something unreadable: {0}")]
    Corrupt(String),
    #[error("node id {0:?} is not valid: use 1 to 64 letters, digits, `-`, `_` or `.`")]
    InvalidNodeId(String),
    #[error("the node id file {path}: {source}")]
    NodeIdFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the database already holds eddy's data ({table} has {rows} rows): migrate into an empty database"
    )]
    TargetNotEmpty { table: String, rows: u64 },
    #[error("copying {what}: {count} there, {copied} copied")]
    Incomplete {
        what: String,
        count: u64,
        copied: u64,
    },
    #[error(transparent)]
    Executor(#[from] ExecError),
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error(transparent)]
    Store(#[from] BusError),
    #[error("starting the file watcher: {0}")]
    Watcher(String),
}

impl Classify for NodeError {
    fn kind(&self) -> ErrorKind {
        match self {
            NodeError::InvalidManifests(_) | NodeError::InvalidNodeId(_) => ErrorKind::InvalidInput,
            NodeError::Lock(LockError::Code { .. }) => ErrorKind::InvalidInput,
            NodeError::Bucket { source, .. } => source.kind(),
            NodeError::Table { source, .. } => match source.kind() {
                // A declaration the stored table cannot take (a changed key, a dropped column).
                ErrorKind::InvalidInput => ErrorKind::Conflict,
                kind => kind,
            },
            NodeError::Tables(e) | NodeError::Rows(e) => e.kind(),
            NodeError::Secret(_) | NodeError::TargetNotEmpty { .. } => ErrorKind::Conflict,
            NodeError::Executor(e) => e.kind(),
            NodeError::Objects(e) => e.kind(),
            NodeError::Store(e) => e.kind(),
            NodeError::Lock(_)
            | NodeError::Corrupt(_)
            | NodeError::NodeIdFile { .. }
            | NodeError::Incomplete { .. }
            | NodeError::Watcher(_) => ErrorKind::Internal,
        }
    }
}
