//! Table schemas: typed columns, nullability and a primary key. The declaration is shared
//! vocabulary — manifests declare tables, the table store creates them — so it lives here; the
//! SQL that realises a schema lives in `eddy-tables`.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::{Classify, ErrorKind};
use crate::names::{ColumnName, TableName};

/// A schema that breaks a rule.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("invalid schema for table {table:?}: {reason}")]
pub struct SchemaError {
    pub table: String,
    pub reason: String,
}

impl Classify for SchemaError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

/// The most columns a table may have.
pub const MAX_COLUMNS: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Text,
    Integer,
    Real,
    Boolean,
    Json,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Real => "real",
            ColumnType::Boolean => "boolean",
            ColumnType::Json => "json",
        }
    }

    /// A phrase for error messages: what a value of this type looks like in JSON.
    pub fn expected(self) -> &'static str {
        match self {
            ColumnType::Text => "a string",
            ColumnType::Integer => "an integer (a JSON number without fraction, within 64 bits)",
            ColumnType::Real => "a number",
            ColumnType::Boolean => "true or false",
            ColumnType::Json => "any JSON value",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: ColumnName,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    #[serde(default)]
    pub nullable: bool,
}

/// A validated table schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableSchema {
    name: TableName,
    columns: Vec<Column>,
    primary_key: Vec<ColumnName>,
}

impl TableSchema {
    /// Checks and builds a schema: at least one column and at most [`MAX_COLUMNS`], names
    /// unique without regard to case, a primary key of existing `text` or `integer` columns,
    /// which are never nullable.
    pub fn new(
        name: TableName,
        columns: Vec<Column>,
        primary_key: Vec<ColumnName>,
    ) -> Result<Self, SchemaError> {
        let invalid = |reason: String| SchemaError {
            table: name.to_string(),
            reason,
        };
        if columns.is_empty() || columns.len() > MAX_COLUMNS {
            return Err(invalid(format!(
                "it has {} columns; a table has 1 to {MAX_COLUMNS}",
                columns.len()
            )));
        }
        for (i, c) in columns.iter().enumerate() {
            if let Some(dup) = columns[..i]
                .iter()
                .find(|d| d.name.as_str().eq_ignore_ascii_case(c.name.as_str()))
            {
                return Err(invalid(format!(
                    "columns {:?} and {:?} clash (column names ignore case)",
                    dup.name.as_str(),
                    c.name.as_str()
                )));
            }
        }
        if primary_key.is_empty() {
            return Err(invalid(
                "it needs a primary key of one or more columns".into(),
            ));
        }
        for (i, k) in primary_key.iter().enumerate() {
            if primary_key[..i].contains(k) {
                return Err(invalid(format!(
                    "primary key column {:?} is listed twice",
                    k.as_str()
                )));
            }
            let Some(col) = columns.iter().find(|c| &c.name == k) else {
                return Err(invalid(format!(
                    "primary key column {:?} is not one of its columns ({})",
                    k.as_str(),
                    names(&columns)
                )));
            };
            if !matches!(col.ty, ColumnType::Text | ColumnType::Integer) {
                return Err(invalid(format!(
                    "primary key column {:?} is {}; key columns are text or integer",
                    k.as_str(),
                    col.ty
                )));
            }
            if col.nullable {
                return Err(invalid(format!(
                    "primary key column {:?} is declared nullable; key columns never are",
                    k.as_str()
                )));
            }
        }
        Ok(Self {
            name,
            columns,
            primary_key,
        })
    }

    pub fn name(&self) -> &TableName {
        &self.name
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn primary_key(&self) -> &[ColumnName] {
        &self.primary_key
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name.as_str() == name)
    }

    pub fn is_key(&self, name: &str) -> bool {
        self.primary_key.iter().any(|k| k.as_str() == name)
    }

    /// The key columns, in key order.
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.primary_key.iter().map(|k| {
            self.column(k.as_str())
                .expect("validated: key columns exist")
        })
    }

    /// All column names, comma separated, for error messages.
    pub fn column_list(&self) -> String {
        names(&self.columns)
    }

    /// This schema with `added` columns appended.
    pub fn with_added_columns(&self, added: &[Column]) -> Result<TableSchema, SchemaError> {
        let mut columns = self.columns.clone();
        columns.extend(added.iter().cloned());
        TableSchema::new(self.name.clone(), columns, self.primary_key.clone())
    }
}

/// The stored form. Deserializing validates again, so a schema read back is as good as new.
impl<'de> Deserialize<'de> for TableSchema {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            name: TableName,
            columns: Vec<Column>,
            primary_key: Vec<ColumnName>,
        }
        let raw = Raw::deserialize(d)?;
        TableSchema::new(raw.name, raw.columns, raw.primary_key).map_err(serde::de::Error::custom)
    }
}

fn names(columns: &[Column]) -> String {
    list(columns.iter().map(|c| &c.name))
}

/// Names, comma separated, for messages.
pub fn list<'a>(names: impl Iterator<Item = &'a ColumnName>) -> String {
    names.map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: ColumnType, nullable: bool) -> Column {
        Column {
            name: ColumnName::new(name).unwrap(),
            ty,
            nullable,
        }
    }

    fn schema(columns: Vec<Column>, key: &[&str]) -> Result<TableSchema, SchemaError> {
        TableSchema::new(
            TableName::new("orders").unwrap(),
            columns,
            key.iter().map(|k| ColumnName::new(*k).unwrap()).collect(),
        )
    }

    #[test]
    fn schemas_are_checked() {
        let id = || col("id", ColumnType::Integer, false);
        assert!(schema(vec![id()], &["id"]).is_ok());
        let cases = [
            (schema(vec![], &["id"]), "1 to 200"),
            (
                schema(vec![id(), col("ID", ColumnType::Text, true)], &["id"]),
                "clash",
            ),
            (schema(vec![id()], &[]), "needs a primary key"),
            (
                schema(vec![id()], &["other"]),
                "not one of its columns (id)",
            ),
            (
                schema(vec![id(), col("meta", ColumnType::Json, false)], &["meta"]),
                "text or integer",
            ),
            (
                schema(vec![col("id", ColumnType::Text, true)], &["id"]),
                "never are",
            ),
            (schema(vec![id()], &["id", "id"]), "listed twice"),
        ];
        for (result, expected) in cases {
            let msg = result.unwrap_err().to_string();
            assert!(
                msg.contains(expected),
                "{msg:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn stored_schemas_are_validated_when_read() {
        let bad = r#"{"name":"t","columns":[{"name":"id","type":"integer","nullable":true}],"primary_key":["id"]}"#;
        let err = serde_json::from_str::<TableSchema>(bad).unwrap_err();
        assert!(err.to_string().contains("nullable"), "{err}");
    }
}
