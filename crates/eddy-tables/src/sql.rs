//! User tables in a SQL database (the storage module of this crate: no SQL elsewhere). Each
//! declared table is a real table of the same name, its columns typed, so the database's own
//! tools read it; identifiers are validated and quoted, values always bound.

use async_trait::async_trait;
use eddy_bus::args;
use eddy_bus::sql::{Dialect, Sql, Value as SqlValue};
use eddy_core::{Column, TableSchema};
use serde_json::Value;

use crate::TableError;
use crate::schema::{add_column_sql, create_sql, quote, quote_list};
use crate::values::{Key, Row, decode_row, encode};

/// A declared table as the catalog holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Declaration {
    pub schema: TableSchema,
    pub created_ms: i64,
}

/// Where user tables live. `db` is the writer's transaction for writes and anything that reads
/// for reads.
#[async_trait]
pub trait TableRows: Send + Sync + 'static {
    /// Every declared table.
    async fn catalog(&self, db: &mut dyn Sql) -> Result<Vec<Declaration>, TableError>;
    /// Creates a table and records its schema.
    async fn create(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        now_ms: i64,
    ) -> Result<(), TableError>;
    /// Adds nullable columns to a table; `schema` is the table's schema with them.
    async fn add_columns(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        added: &[Column],
    ) -> Result<(), TableError>;
    /// The row with `key`.
    async fn get(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        key: &Key,
    ) -> Result<Option<Row>, TableError>;
    /// Inserts a row whose values are in schema order; `KeyExists` when its key is taken.
    async fn insert(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        key: &Key,
        values: Vec<SqlValue>,
    ) -> Result<(), TableError>;
    /// Replaces the non-key columns of the row with `key` (values in schema order).
    async fn update(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        key: &Key,
        values: Vec<SqlValue>,
    ) -> Result<(), TableError>;
    async fn delete(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        key: &Key,
    ) -> Result<(), TableError>;
    /// Up to `limit` rows in key order after `after`, each equal to every filter (a column
    /// and a value already checked against the column, `Null` matching empty).
    async fn list(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        filters: &[(String, SqlValue)],
        after: Option<&Key>,
        limit: usize,
    ) -> Result<Vec<Row>, TableError>;
}

/// The user tables of the platform database.
pub struct SqlRows;

fn key_match(schema: &TableSchema) -> String {
    schema
        .primary_key()
        .iter()
        .map(|k| format!("{} = ?", quote(k.as_str())))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Where a column's value goes in a statement: a JSON column on PostgreSQL takes its text
/// converted (`jsonb`); everything else takes the value as bound.
fn slot(column: &Column, dialect: Dialect) -> &'static str {
    match (dialect, column.ty) {
        (Dialect::Postgres, eddy_core::ColumnType::Json) => "CAST(? AS JSONB)",
        _ => "?",
    }
}

#[async_trait]
impl TableRows for SqlRows {
    async fn catalog(&self, db: &mut dyn Sql) -> Result<Vec<Declaration>, TableError> {
        let rows = db
            .fetch(
                "SELECT name, schema, created_ms FROM _eddy_tables ORDER BY name",
                args![],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let text: String = row.get("schema")?;
                let schema: TableSchema =
                    serde_json::from_str(&text).map_err(|e| TableError::CorruptCatalog {
                        table: row.get("name").unwrap_or_default(),
                        reason: e.to_string(),
                    })?;
                Ok(Declaration {
                    schema,
                    created_ms: row.get("created_ms")?,
                })
            })
            .collect()
    }

    async fn create(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        now_ms: i64,
    ) -> Result<(), TableError> {
        db.run_script(&create_sql(schema, db.dialect())).await?;
        let record = serde_json::to_string(schema).expect("schemas serialize");
        db.execute(
            "INSERT INTO _eddy_tables (name, schema, created_ms) VALUES (?, ?, ?)",
            args![schema.name().as_str(), record, now_ms],
        )
        .await?;
        Ok(())
    }

    async fn add_columns(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        added: &[Column],
    ) -> Result<(), TableError> {
        for column in added {
            db.run_script(&add_column_sql(schema, column, db.dialect()))
                .await?;
        }
        let record = serde_json::to_string(schema).expect("schemas serialize");
        db.execute(
            "UPDATE _eddy_tables SET schema = ? WHERE name = ?",
            args![record, schema.name().as_str()],
        )
        .await?;
        Ok(())
    }

    async fn get(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        key: &Key,
    ) -> Result<Option<Row>, TableError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            quote_list(schema.columns().iter().map(|c| &c.name)),
            quote(schema.name().as_str()),
            key_match(schema)
        );
        let row = db.fetch_optional(&sql, &key.arguments(schema)).await?;
        row.as_ref().map(|r| decode_row(schema, r)).transpose()
    }

    async fn insert(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        key: &Key,
        values: Vec<SqlValue>,
    ) -> Result<(), TableError> {
        let dialect = db.dialect();
        let slots: Vec<&str> = schema.columns().iter().map(|c| slot(c, dialect)).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(schema.name().as_str()),
            quote_list(schema.columns().iter().map(|c| &c.name)),
            slots.join(", ")
        );
        match db.execute(&sql, &values).await {
            Err(e) if e.is_unique_violation() => Err(TableError::KeyExists(key.to_string())),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    async fn update(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        key: &Key,
        values: Vec<SqlValue>,
    ) -> Result<(), TableError> {
        let mut sets = Vec::new();
        let mut args = Vec::new();
        let dialect = db.dialect();
        for (column, value) in schema.columns().iter().zip(values) {
            if !schema.is_key(column.name.as_str()) {
                sets.push(format!(
                    "{} = {}",
                    quote(column.name.as_str()),
                    slot(column, dialect)
                ));
                args.push(value);
            }
        }
        if sets.is_empty() {
            // Only key columns: nothing to set.
            return Ok(());
        }
        args.extend(key.arguments(schema));
        let sql = format!(
            "UPDATE {} SET {} WHERE {}",
            quote(schema.name().as_str()),
            sets.join(", "),
            key_match(schema)
        );
        db.execute(&sql, &args).await?;
        Ok(())
    }

    async fn delete(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        key: &Key,
    ) -> Result<(), TableError> {
        let sql = format!(
            "DELETE FROM {} WHERE {}",
            quote(schema.name().as_str()),
            key_match(schema)
        );
        db.execute(&sql, &key.arguments(schema)).await?;
        Ok(())
    }

    async fn list(
        &self,
        db: &mut dyn Sql,
        schema: &TableSchema,
        filters: &[(String, SqlValue)],
        after: Option<&Key>,
        limit: usize,
    ) -> Result<Vec<Row>, TableError> {
        let mut clauses = Vec::new();
        let mut args = Vec::new();
        for (column, value) in filters {
            if *value == SqlValue::Null {
                clauses.push(format!("{} IS NULL", quote(column)));
            } else {
                clauses.push(format!("{} = ?", quote(column)));
                args.push(value.clone());
            }
        }
        if let Some(after) = after {
            clauses.push(format!(
                "({}) > ({})",
                quote_list(schema.primary_key().iter()),
                placeholders(schema.primary_key().len())
            ));
            args.extend(after.arguments(schema));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {} FROM {} {filter} ORDER BY {} LIMIT {limit}",
            quote_list(schema.columns().iter().map(|c| &c.name)),
            quote(schema.name().as_str()),
            quote_list(schema.primary_key().iter()),
        );
        let found = db.fetch(&sql, &args).await?;
        found.iter().map(|r| decode_row(schema, r)).collect()
    }
}

/// A filter's value checked against its column and made an argument.
pub(crate) fn filter_value(
    schema: &TableSchema,
    column: &str,
    value: &Value,
) -> Result<SqlValue, TableError> {
    let col = schema
        .column(column)
        .ok_or_else(|| TableError::UnknownColumn {
            table: schema.name().to_string(),
            column: column.chars().take(64).collect(),
            accepted: schema.column_list(),
        })?;
    if value.is_null() {
        return Ok(SqlValue::Null);
    }
    if col.ty == crate::ColumnType::Json {
        return Err(TableError::InvalidQuery(format!(
            "column {column:?} holds JSON and cannot be filtered by equality; filter on a text, integer, real or boolean column"
        )));
    }
    encode(col, value)
}
