use eddy_bus::BusError;
use eddy_core::{Classify, ErrorKind, InvalidName};
use thiserror::Error;

/// Failures of the table store. Messages say what was wrong and what would be accepted.
#[derive(Debug, Error)]
pub enum TableError {
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error("table {0:?} does not exist")]
    NoSuchTable(String),
    #[error(transparent)]
    InvalidSchema(#[from] eddy_core::SchemaError),
    #[error("the stored schema of table {table:?} cannot be read: {reason}")]
    CorruptCatalog { table: String, reason: String },
    #[error("table {table:?} cannot change this way without losing data: {}; declare a new table instead", changes.join("; "))]
    DestructiveChange { table: String, changes: Vec<String> },
    #[error("table {table:?} has no column {column:?}; its columns are {accepted}")]
    UnknownColumn {
        table: String,
        column: String,
        accepted: String,
    },
    #[error("column {column:?} is required (it is not nullable)")]
    MissingColumn { column: String },
    #[error("column {column:?} expects {expected}; got {found}")]
    WrongType {
        column: String,
        expected: &'static str,
        found: String,
    },
    #[error("a row must be a JSON object of column names to values; got {0}")]
    NotAnObject(String),
    #[error("a row with key {0} already exists")]
    KeyExists(String),
    #[error("no row with key {0}")]
    NoSuchRow(String),
    #[error("column {column:?} is part of the primary key and cannot be changed by an update")]
    KeyChange { column: String },
    #[error(
        "the key has {found} values; table {table:?} has a primary key of {expected} columns ({columns})"
    )]
    KeyShape {
        table: String,
        expected: usize,
        found: usize,
        columns: String,
    },
    #[error("{0}")]
    InvalidQuery(String),
    #[error("a batch holds at most {max} rows; got {found}")]
    BatchTooLarge { max: usize, found: usize },
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl Classify for TableError {
    fn kind(&self) -> ErrorKind {
        use TableError::*;
        match self {
            NoSuchTable(_) | NoSuchRow(_) => ErrorKind::NotFound,
            KeyExists(_) | DestructiveChange { .. } => ErrorKind::Conflict,
            BatchTooLarge { .. } => ErrorKind::TooLarge,
            CorruptCatalog { .. } => ErrorKind::Internal,
            Bus(e) => e.kind(),
            _ => ErrorKind::InvalidInput,
        }
    }
}
