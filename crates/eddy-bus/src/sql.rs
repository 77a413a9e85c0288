//! The statement interface that storage modules speak: a statement and its arguments in, rows
//! out, with eddy's own value types. Only this crate knows the database driver; every other
//! crate's storage module writes SQL (in its dialect) against [`Sql`], so no driver type
//! reaches a public signature, and a backend is added here, once, for every concept.
//!
//! Arguments are written `?` in the statement text whatever the backend: a backend whose
//! driver numbers them (`$1`) renumbers them.

use std::sync::Arc;

use async_trait::async_trait;

use crate::BusError;

/// `LIMIT n`, the number written into the statement's text rather than bound as an argument.
/// SQLite plans a statement with `LIMIT ?` for the value bound (as it may for a constant), so
/// binding that argument expires the prepared statement: a `LIMIT ?` query was parsed and
/// planned again at every execution, however often it ran. A limit comes from eddy's own
/// configuration or a checked request, never from free text, and takes few values, each
/// prepared once.
pub fn limit(n: impl Into<u64>) -> String {
    format!("LIMIT {}", n.into())
}

/// The SQL dialect a backend speaks, for the few statements that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `IN (…)` over one argument holding a JSON array of integers ([`Value::integers`]): the
    /// statement's text is the same whatever the list's length, so it is prepared once.
    pub fn in_integers(self) -> &'static str {
        match self {
            Dialect::Sqlite => "IN (SELECT value FROM json_each(?))",
            Dialect::Postgres => "IN (SELECT jsonb_array_elements_text(?::jsonb)::bigint)",
        }
    }

    /// `IN (…)` over one argument holding a JSON array of strings ([`Value::texts`]).
    pub fn in_texts(self) -> &'static str {
        match self {
            Dialect::Sqlite => "IN (SELECT value FROM json_each(?))",
            Dialect::Postgres => "IN (SELECT jsonb_array_elements_text(?::jsonb))",
        }
    }
}

/// A value bound to a statement or read from a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    /// A list of integers as one argument, for [`Dialect::in_integers`].
    pub fn integers(values: &[i64]) -> Value {
        Value::Text(serde_json::to_string(values).expect("integers serialize"))
    }

    /// A list of strings as one argument, for [`Dialect::in_texts`].
    pub fn texts(values: &[impl AsRef<str>]) -> Value {
        let values: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
        Value::Text(serde_json::to_string(&values).expect("strings serialize"))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}

/// Counts and sizes are stored as signed 64-bit integers (both engines' widest).
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v as i64)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(v as i64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The arguments of a statement, in order: `args![a, b, c]`.
#[macro_export]
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        &[$($crate::sql::Value::from($value)),*][..]
    };
}

/// A type a column's value can be read as.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
    /// What the column was expected to hold, for error messages.
    const EXPECTED: &'static str;
}

impl FromValue for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl FromValue for u64 {
    const EXPECTED: &'static str = "a non-negative integer";
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).and_then(|i| u64::try_from(i).ok())
    }
}

impl FromValue for u32 {
    const EXPECTED: &'static str = "a non-negative 32-bit integer";
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).and_then(|i| u32::try_from(i).ok())
    }
}

impl FromValue for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Real(r) => Some(*r),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromValue for bool {
    const EXPECTED: &'static str = "a boolean";
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).map(|i| i != 0)
    }
}

impl FromValue for String {
    const EXPECTED: &'static str = "text";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    const EXPECTED: &'static str = "bytes";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl FromValue for Value {
    const EXPECTED: &'static str = "any value";
    fn from_value(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A row read from a query: its values by position, and its columns' names.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        Self { columns, values }
    }

    /// The value of column `name`, read as `T`.
    pub fn get<T: FromValue>(&self, name: &str) -> Result<T, BusError> {
        let index = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| BusError::Decode(format!("the query read no column {name:?}")))?;
        self.at(index)
    }

    /// The value at position `index`, read as `T`.
    pub fn at<T: FromValue>(&self, index: usize) -> Result<T, BusError> {
        let value = self
            .values
            .get(index)
            .ok_or_else(|| BusError::Decode(format!("the query read no column {index}")))?;
        T::from_value(value).ok_or_else(|| {
            BusError::Decode(format!(
                "column {:?} holds {value:?}, not {}",
                self.columns.get(index).map_or("?", |c| c.as_str()),
                T::EXPECTED
            ))
        })
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The columns' names, in the order of [`values`](Self::values).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn into_values(self) -> Vec<Value> {
        self.values
    }
}

/// Where statements run: a transaction of the writer, or the readers.
#[async_trait]
pub trait Sql: Send {
    fn dialect(&self) -> Dialect;

    /// Runs a statement; returns how many rows it changed.
    async fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, BusError>;

    /// Runs a query; returns its rows.
    async fn fetch(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, BusError>;

    /// Runs statements that take no arguments (schema changes), one after another.
    async fn run_script(&mut self, sql: &str) -> Result<(), BusError>;

    /// The first row a query returns, if any.
    async fn fetch_optional(&mut self, sql: &str, args: &[Value]) -> Result<Option<Row>, BusError> {
        Ok(self.fetch(sql, args).await?.into_iter().next())
    }

    /// The one row a query returns.
    async fn fetch_one(&mut self, sql: &str, args: &[Value]) -> Result<Row, BusError> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or_else(|| BusError::Decode("the query returned no row".into()))
    }
}

/// Implements [`Sql`] for `$type` by handing each statement to the calling module's
/// `execute`, `fetch` and `script`, on the executor `$db` makes of `$this`.
macro_rules! sql_through {
    ($type:ty, $dialect:expr, |$this:ident| $db:expr) => {
        #[async_trait::async_trait]
        impl $crate::sql::Sql for $type {
            fn dialect(&self) -> $crate::sql::Dialect {
                $dialect
            }

            async fn execute(
                &mut self,
                sql: &str,
                args: &[$crate::sql::Value],
            ) -> Result<u64, $crate::BusError> {
                let $this = self;
                execute($db, sql, args).await
            }

            async fn fetch(
                &mut self,
                sql: &str,
                args: &[$crate::sql::Value],
            ) -> Result<Vec<$crate::sql::Row>, $crate::BusError> {
                let $this = self;
                fetch($db, sql, args).await
            }

            async fn run_script(&mut self, sql: &str) -> Result<(), $crate::BusError> {
                let $this = self;
                script($db, sql).await
            }
        }
    };
}
pub(crate) use sql_through;

/// Reading single values, for any [`Sql`].
#[async_trait]
pub trait SqlExt: Sql {
    /// The first column of the one row a query returns.
    async fn scalar<T: FromValue + Send>(
        &mut self,
        sql: &str,
        args: &[Value],
    ) -> Result<T, BusError> {
        self.fetch_one(sql, args).await?.at(0)
    }
}

impl<S: Sql + ?Sized> SqlExt for S {}

/// A driver's rows as eddy's, the column names shared by every row (each engine's `decode`
/// turns one row's values into eddy's).
pub(crate) fn decoded<R: sqlx::Row>(
    found: Vec<R>,
    decode: fn(&R, &Arc<[String]>) -> Result<Row, BusError>,
) -> Result<Vec<Row>, BusError> {
    use sqlx::Column as _;
    let Some(first) = found.first() else {
        return Ok(Vec::new());
    };
    let columns: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    found.iter().map(|r| decode(r, &columns)).collect()
}

/// Quotes an identifier for SQL. Only names eddy validated (table and column names, and its
/// own tables' names) reach here, and those hold no quote; the assertion keeps it that way.
pub fn quote_identifier(identifier: &str) -> String {
    assert!(
        identifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "unvalidated identifier {identifier:?}"
    );
    format!("\"{identifier}\"")
}

/// `(?, ?, …)` repeated: the placeholders of a multi-row insert.
pub fn rows_of(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_their_columns_by_name_and_type() {
        let row = Row::new(
            vec!["id".to_string(), "name".to_string(), "gone".to_string()].into(),
            vec![Value::Int(7), Value::Text("a".into()), Value::Null],
        );
        assert_eq!(row.get::<i64>("id").unwrap(), 7);
        assert_eq!(row.get::<u64>("id").unwrap(), 7);
        assert_eq!(row.get::<String>("name").unwrap(), "a");
        assert_eq!(row.get::<Option<String>>("gone").unwrap(), None);
        assert!(
            row.get::<String>("id")
                .unwrap_err()
                .to_string()
                .contains("not text")
        );
        assert!(row.get::<i64>("nope").is_err());
        assert_eq!(
            args![1i64, "x", None::<i64>, true],
            &[
                Value::Int(1),
                Value::Text("x".into()),
                Value::Null,
                Value::Int(1)
            ]
        );
        assert_eq!(rows_of(2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
