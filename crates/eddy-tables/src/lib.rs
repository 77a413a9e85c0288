//! eddy's tables: declared schemas with typed columns and a primary key, rows stored in real
//! SQLite tables (which `sqlite3` can read), and one row-change event — `INSERT`, `MODIFY` or
//! `REMOVE`, with the key and the new and old images — committed with every change.
//!
//! No SQL is ever built from a user value: identifiers pass a strict pattern and are quoted,
//! values are always bound.

mod error;
mod schema;
mod sql;
mod store;
mod values;

pub use eddy_core::{Column, ColumnType, MAX_COLUMNS, SchemaError, TableSchema};
pub use error::TableError;
pub use sql::{Declaration, SqlRows, TableRows};
pub use store::{
    Change, Declared, MAX_BATCH_ROWS, MAX_PAGE_ROWS, Page, Query, TableStore, inserted_event,
};
pub use values::{Key, Row};
