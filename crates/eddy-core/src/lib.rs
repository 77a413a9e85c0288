//! eddy's vocabulary, shared by every other crate: validated names, event ids, the event
//! envelope that the journal stores, and the error kinds that the server maps to wire codes.

pub mod error;
pub mod event;
pub mod names;
pub mod schema;
pub mod secrets;
pub mod time;

pub use error::{Classify, ErrorKind, InvalidName};
pub use event::{
    BACKFILL_FIELD, Event, EventId, EventKind, Lineage, NewEvent, ObjectChange, RowChange,
    RowChangeRef, Source,
};
pub use names::{BucketName, ColumnName, FunctionName, ObjectKey, ScheduleName, TableName};
pub use schema::{Column, ColumnType, MAX_COLUMNS, SchemaError, TableSchema};
