//! Table schemas: typed columns, nullability and a primary key; the SQL that creates them; and
//! what may change between two declarations of one table.

use std::fmt;

use eddy_core::{ColumnName, TableName};
use serde::{Deserialize, Serialize};

use crate::TableError;

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
    ) -> Result<Self, TableError> {
        let invalid = |reason: String| TableError::InvalidSchema {
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

    pub(crate) fn create_sql(&self) -> String {
        let mut defs: Vec<String> = self.columns.iter().map(column_sql).collect();
        defs.push(format!(
            "PRIMARY KEY ({})",
            quote_list(self.primary_key.iter())
        ));
        format!(
            "CREATE TABLE {} ({}) STRICT",
            quote(self.name.as_str()),
            defs.join(", ")
        )
    }

    pub(crate) fn add_column_sql(&self, column: &Column) -> String {
        format!(
            "ALTER TABLE {} ADD COLUMN {}",
            quote(self.name.as_str()),
            column_sql(column)
        )
    }

    /// What changes from `self` (stored) to `next` (declared): the columns to add, or the
    /// reasons the change is refused.
    pub(crate) fn migration_to(&self, next: &TableSchema) -> Result<Vec<Column>, Vec<String>> {
        let mut refused = Vec::new();
        if next.primary_key != self.primary_key {
            refused.push(format!(
                "the primary key changes from ({}) to ({})",
                list(self.primary_key.iter()),
                list(next.primary_key.iter())
            ));
        }
        for old in &self.columns {
            match next.column(old.name.as_str()) {
                None => refused.push(format!("column {:?} is removed", old.name.as_str())),
                Some(new) if new.ty != old.ty => refused.push(format!(
                    "column {:?} changes type from {} to {}",
                    old.name.as_str(),
                    old.ty,
                    new.ty
                )),
                Some(new) if new.nullable != old.nullable => refused.push(format!(
                    "column {:?} changes from {} to {}",
                    old.name.as_str(),
                    nullability(old.nullable),
                    nullability(new.nullable)
                )),
                Some(_) => {}
            }
        }
        let added: Vec<Column> = next
            .columns
            .iter()
            .filter(|c| self.column(c.name.as_str()).is_none())
            .cloned()
            .collect();
        for c in added.iter().filter(|c| !c.nullable) {
            refused.push(format!(
                "new column {:?} is not nullable, but existing rows have no value for it; declare it nullable",
                c.name.as_str()
            ));
        }
        if refused.is_empty() {
            Ok(added)
        } else {
            Err(refused)
        }
    }

    /// The stored schema extended by `added` columns, in the stored order.
    pub(crate) fn with_columns(&self, added: &[Column]) -> TableSchema {
        let mut next = self.clone();
        next.columns.extend(added.iter().cloned());
        next
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

fn nullability(nullable: bool) -> &'static str {
    if nullable { "nullable" } else { "not nullable" }
}

fn names(columns: &[Column]) -> String {
    list(columns.iter().map(|c| &c.name))
}

fn list<'a>(names: impl Iterator<Item = &'a ColumnName>) -> String {
    names.map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
}

fn column_sql(c: &Column) -> String {
    let name = quote(c.name.as_str());
    let (sql_type, check) = match c.ty {
        ColumnType::Text => ("TEXT", None),
        ColumnType::Integer => ("INTEGER", None),
        ColumnType::Real => ("REAL", None),
        ColumnType::Boolean => ("INTEGER", Some(format!("CHECK ({name} IN (0, 1))"))),
        ColumnType::Json => ("TEXT", Some(format!("CHECK (json_valid({name}))"))),
    };
    let mut sql = format!("{name} {sql_type}");
    if !c.nullable {
        sql.push_str(" NOT NULL");
    }
    if let Some(check) = check {
        sql.push(' ');
        sql.push_str(&check);
    }
    sql
}

/// Quotes an identifier. Only names that passed [`TableName`] or [`ColumnName`] validation
/// reach here, and those contain no quote; the assertion keeps it that way.
pub(crate) fn quote(identifier: &str) -> String {
    assert!(
        identifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "unvalidated identifier {identifier:?}"
    );
    format!("\"{identifier}\"")
}

pub(crate) fn quote_list<'a>(names: impl Iterator<Item = &'a ColumnName>) -> String {
    names
        .map(|n| quote(n.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
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

    fn schema(columns: Vec<Column>, key: &[&str]) -> Result<TableSchema, TableError> {
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
    fn ddl_quotes_every_identifier_and_uses_strict_tables() {
        let s = schema(
            vec![
                col("id", ColumnType::Integer, false),
                col("done", ColumnType::Boolean, true),
                col("meta", ColumnType::Json, true),
            ],
            &["id"],
        )
        .unwrap();
        assert_eq!(
            s.create_sql(),
            "CREATE TABLE \"orders\" (\"id\" INTEGER NOT NULL, \"done\" INTEGER CHECK (\"done\" IN (0, 1)), \
             \"meta\" TEXT CHECK (json_valid(\"meta\")), PRIMARY KEY (\"id\")) STRICT"
        );
    }

    #[test]
    fn only_nullable_additions_migrate() {
        let base = schema(
            vec![
                col("id", ColumnType::Integer, false),
                col("a", ColumnType::Text, true),
            ],
            &["id"],
        )
        .unwrap();
        let added = schema(
            vec![
                col("id", ColumnType::Integer, false),
                col("a", ColumnType::Text, true),
                col("b", ColumnType::Real, true),
            ],
            &["id"],
        )
        .unwrap();
        assert_eq!(
            base.migration_to(&added).unwrap(),
            vec![col("b", ColumnType::Real, true)]
        );
        assert_eq!(base.migration_to(&base).unwrap(), vec![]);
        let destructive = schema(
            vec![
                col("id", ColumnType::Text, false),
                col("c", ColumnType::Text, false),
            ],
            &["id"],
        )
        .unwrap();
        let reasons = base.migration_to(&destructive).unwrap_err();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("changes type from integer to text"));
        assert!(reasons[1].contains("\"a\" is removed"));
        assert!(reasons[2].contains("declare it nullable"));
    }

    #[test]
    fn stored_schemas_are_validated_when_read() {
        let bad = r#"{"name":"t","columns":[{"name":"id","type":"integer","nullable":true}],"primary_key":["id"]}"#;
        let err = serde_json::from_str::<TableSchema>(bad).unwrap_err();
        assert!(err.to_string().contains("nullable"), "{err}");
    }
}
