use eddy_core::{Classify, ErrorKind};
use thiserror::Error;

/// Failures of the database handle, the writer and the journal. No driver type appears here:
/// a database failure says what kind it was and what the database said.
#[derive(Debug, Error)]
pub enum BusError {
    #[error("database error: {message}")]
    Database { failure: Failure, message: String },
    #[error("a row holds something unexpected: {0}")]
    Decode(String),
    #[error("cannot copy the data: {0}")]
    Copy(String),
    #[error("could not apply the platform schema: {0}")]
    Migrate(String),
    #[error(
        "{dir} was written by a newer eddy (schema version {found}; this eddy knows up to {supported}); run the newer eddy, or give this one another data directory or database"
    )]
    SchemaTooNew {
        dir: String,
        found: i64,
        supported: i64,
    },
    #[error(
        "the data directory {dir} is in use by another eddy process (it holds {dir}/eddy.lock)"
    )]
    DataDirInUse { dir: String },
    #[error("the database cannot be reached: {0}")]
    Unreachable(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the journal holds a record it cannot read (seq {seq}): {reason}")]
    CorruptRecord { seq: i64, reason: String },
    #[error("the write was not committed: {0}")]
    NotCommitted(String),
    #[error("the writer has stopped; eddy is shutting down")]
    WriterStopped,
    #[error("eddy's storage is full: {reason}")]
    StorageFull { reason: String },
    #[error("eddy's storage has failed: {reason}")]
    StorageFailed { reason: String },
    #[error("eddy's storage failed this write ({reason}); nothing was stored; retry")]
    StorageFault { reason: String },
}

/// What kind of database failure happened: what a caller may do about it differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A unique or primary key constraint: the row exists.
    UniqueViolation,
    /// Another constraint (foreign key, check, not null).
    Constraint,
    /// The disk (or the database's quota) is full.
    Full,
    /// Reading or writing the database's files failed.
    Io,
    /// The database was busy or locked; trying again may work.
    Busy,
    Other,
}

impl Classify for BusError {
    fn kind(&self) -> ErrorKind {
        match self {
            BusError::WriterStopped
            | BusError::Unreachable(_)
            | BusError::DataDirInUse { .. }
            | BusError::StorageFailed { .. }
            | BusError::StorageFault { .. } => ErrorKind::Unavailable,
            BusError::StorageFull { .. } => ErrorKind::StorageFull,
            BusError::Database {
                failure: Failure::Full,
                ..
            } => ErrorKind::StorageFull,
            // Nothing was stored, and trying again may work: the database was busy, could not
            // be reached or read, or the transaction the write shared failed.
            BusError::Database {
                failure: Failure::Busy | Failure::Io,
                ..
            }
            | BusError::NotCommitted(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

impl BusError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        BusError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// Whether the write failed because the row's key exists.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            BusError::Database {
                failure: Failure::UniqueViolation,
                ..
            }
        )
    }

    /// Whether the database (or a file beside it) could not be read or written: the disk, not
    /// the statement, failed.
    pub fn is_io_fault(&self) -> bool {
        matches!(
            self,
            BusError::Database {
                failure: Failure::Io,
                ..
            } | BusError::Io { .. }
        )
    }

    /// Whether the disk (or a quota) is full.
    pub fn is_out_of_space(&self) -> bool {
        matches!(
            self,
            BusError::Database {
                failure: Failure::Full,
                ..
            } | BusError::StorageFull { .. }
        ) || matches!(self, BusError::Io { source, .. } if crate::space::is_out_of_space(source))
    }
}
