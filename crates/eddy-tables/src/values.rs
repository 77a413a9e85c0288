//! Values: JSON in, checked against the column's type, bound as statement arguments (never
//! spliced into SQL), and read back as the same JSON.

use eddy_bus::sql::Value as SqlValue;
use serde_json::{Map, Number, Value};

use crate::TableError;
use eddy_core::{Column, ColumnType, TableSchema};

/// A row: column names to JSON values.
pub type Row = Map<String, Value>;

/// Checks a JSON value against a column and converts it for binding.
pub(crate) fn encode(column: &Column, value: &Value) -> Result<SqlValue, TableError> {
    let wrong = || TableError::WrongType {
        column: column.name.to_string(),
        expected: column.ty.expected(),
        found: describe(value),
    };
    if value.is_null() {
        return if column.nullable {
            Ok(SqlValue::Null)
        } else {
            Err(TableError::MissingColumn {
                column: column.name.to_string(),
            })
        };
    }
    Ok(match column.ty {
        ColumnType::Text => SqlValue::Text(value.as_str().ok_or_else(wrong)?.to_string()),
        ColumnType::Integer => SqlValue::Int(value.as_i64().ok_or_else(wrong)?),
        ColumnType::Real => SqlValue::Real(value.as_f64().ok_or_else(wrong)?),
        ColumnType::Boolean => SqlValue::from(value.as_bool().ok_or_else(wrong)?),
        ColumnType::Json => SqlValue::Text(value.to_string()),
    })
}

/// A short description of a value for error messages, never longer than about 60 bytes.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let mut shown = value.to_string();
    if shown.len() > 40 {
        let cut = (0..=40)
            .rev()
            .find(|i| shown.is_char_boundary(*i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push('…');
    }
    format!("{kind} ({shown})")
}

/// Checks a complete row: every column known, every required column present, every value of
/// its column's type. Returns the values in the schema's column order.
pub(crate) fn encode_row(schema: &TableSchema, row: &Row) -> Result<Vec<SqlValue>, TableError> {
    check_known(schema, row)?;
    schema
        .columns()
        .iter()
        .map(|c| encode(c, row.get(c.name.as_str()).unwrap_or(&Value::Null)))
        .collect()
}

/// Refuses columns the table does not have.
pub(crate) fn check_known(schema: &TableSchema, row: &Row) -> Result<(), TableError> {
    match row.keys().find(|k| schema.column(k).is_none()) {
        Some(unknown) => Err(TableError::UnknownColumn {
            table: schema.name().to_string(),
            column: unknown.chars().take(64).collect(),
            accepted: schema.column_list(),
        }),
        None => Ok(()),
    }
}

/// The row as JSON, every column present (`null` where empty), in schema order.
pub(crate) fn normalize(schema: &TableSchema, row: &Row) -> Row {
    schema
        .columns()
        .iter()
        .map(|c| {
            let v = row.get(c.name.as_str()).cloned().unwrap_or(Value::Null);
            // Reals read back as floats: normalise now so images compare equal to stored rows.
            let v = match (c.ty, &v) {
                (ColumnType::Real, Value::Number(n)) => n
                    .as_f64()
                    .and_then(Number::from_f64)
                    .map_or(v, Value::Number),
                _ => v,
            };
            (c.name.to_string(), v)
        })
        .collect()
}

/// Reads a stored row (its columns in schema order) back as JSON.
pub(crate) fn decode_row(
    schema: &TableSchema,
    row: &eddy_bus::sql::Row,
) -> Result<Row, TableError> {
    let mut out = Map::with_capacity(schema.columns().len());
    for (i, c) in schema.columns().iter().enumerate() {
        let value = match c.ty {
            ColumnType::Text => row.at::<Option<String>>(i)?.map(Value::String),
            ColumnType::Integer => row.at::<Option<i64>>(i)?.map(Value::from),
            ColumnType::Real => row
                .at::<Option<f64>>(i)?
                .and_then(Number::from_f64)
                .map(Value::Number),
            ColumnType::Boolean => row.at::<Option<bool>>(i)?.map(Value::Bool),
            ColumnType::Json => row
                .at::<Option<String>>(i)?
                .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text))),
        };
        out.insert(c.name.to_string(), value.unwrap_or(Value::Null));
    }
    Ok(out)
}

/// A primary key: one value per key column, in key order, each checked against its column.
#[derive(Clone, Debug, PartialEq)]
pub struct Key(Vec<Value>);

impl Key {
    /// A key from its values in key-column order.
    pub fn new(schema: &TableSchema, values: Vec<Value>) -> Result<Self, TableError> {
        if values.len() != schema.primary_key().len() {
            return Err(TableError::KeyShape {
                table: schema.name().to_string(),
                expected: schema.primary_key().len(),
                found: values.len(),
                columns: schema
                    .primary_key()
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        for (column, value) in schema.key_columns().zip(&values) {
            encode(column, value)?;
        }
        Ok(Self(values))
    }

    /// The key of a row (which must hold the key columns).
    pub fn of_row(schema: &TableSchema, row: &Row) -> Result<Self, TableError> {
        let values = schema
            .key_columns()
            .map(|c| {
                row.get(c.name.as_str())
                    .cloned()
                    .ok_or_else(|| TableError::MissingColumn {
                        column: c.name.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(schema, values)
    }

    /// The canonical text form, as the journal stores it: a JSON array of the values.
    pub fn canonical(&self) -> String {
        Value::Array(self.0.clone()).to_string()
    }

    /// The key as a map from key column to value, as events carry it.
    pub fn to_map(&self, schema: &TableSchema) -> Row {
        schema
            .primary_key()
            .iter()
            .zip(&self.0)
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    pub fn values(&self) -> &[Value] {
        &self.0
    }

    /// The key's values as statement arguments, in key order.
    pub(crate) fn arguments(&self, schema: &TableSchema) -> Vec<SqlValue> {
        schema
            .key_columns()
            .zip(&self.0)
            .map(|(column, value)| encode(column, value).expect("checked when the key was made"))
            .collect()
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical())
    }
}
