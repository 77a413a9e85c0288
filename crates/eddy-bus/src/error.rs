use eddy_core::{Classify, ErrorKind};
use thiserror::Error;

/// Failures of the database handle, the writer and the journal.
#[derive(Debug, Error)]
pub enum BusError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("could not apply the platform schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the data directory {dir} was written by a newer eddy (schema version {found}; this eddy knows up to {supported}); run the newer eddy, or point --data-dir elsewhere"
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
}

impl Classify for BusError {
    fn kind(&self) -> ErrorKind {
        match self {
            BusError::WriterStopped | BusError::DataDirInUse { .. } => ErrorKind::Unavailable,
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
}
