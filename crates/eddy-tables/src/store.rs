//! Table operations. Each write runs in the writer's transaction, reads the old image there,
//! changes the row and appends exactly one event — or, when it fails, does none of these.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use eddy_bus::{Bus, WriteTx};
use eddy_core::{EventKind, Lineage, NewEvent, RowChange, Source, TableName};
use serde_json::Value;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Row as _, SqliteConnection};

use crate::TableError;
use crate::schema::{add_column_sql, create_sql, migration, quote, quote_list};
use crate::values::{Key, Row, SqlValue, decode_row, encode, encode_row, normalize};
use eddy_core::TableSchema;

/// The most rows one batch insert takes.
pub const MAX_BATCH_ROWS: usize = 1000;
/// The most rows one list page returns.
pub const MAX_PAGE_ROWS: usize = 1000;

/// What declaring a table did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Declared {
    Created,
    Unchanged,
    /// Nullable columns were added.
    Migrated {
        added: Vec<String>,
    },
}

/// What a write did to one row.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub old: Option<Row>,
    pub new: Option<Row>,
    /// The sequence number of the change's event; `None` when nothing changed.
    pub seq: Option<u64>,
}

/// A list request: equality filters, a page size and where to resume.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Column name and the value it must equal (`null` matches empty).
    pub filters: Vec<(String, Value)>,
    /// At most [`MAX_PAGE_ROWS`]; 0 means 100.
    pub limit: usize,
    /// Resume after this key.
    pub after: Option<Key>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub rows: Vec<Row>,
    /// The key to pass as `after` for the next page, when there may be more.
    pub next: Option<Key>,
}

/// The declared tables of one data directory and their rows.
#[derive(Clone)]
pub struct TableStore {
    bus: Bus,
    /// Every declared schema. Schemas change only through [`TableStore::declare`], which
    /// updates this after its commit.
    schemas: Arc<RwLock<HashMap<TableName, Arc<TableSchema>>>>,
}

impl TableStore {
    pub async fn open(bus: Bus) -> Result<Self, TableError> {
        let stored = sqlx::query("SELECT name, schema FROM _eddy_tables")
            .fetch_all(bus.readers())
            .await?;
        let mut schemas = HashMap::new();
        for row in stored {
            let schema: TableSchema =
                serde_json::from_str(row.try_get("schema")?).map_err(|e| {
                    TableError::CorruptCatalog {
                        table: row.try_get("name").unwrap_or_default(),
                        reason: e.to_string(),
                    }
                })?;
            schemas.insert(schema.name().clone(), Arc::new(schema));
        }
        Ok(Self {
            bus,
            schemas: Arc::new(RwLock::new(schemas)),
        })
    }

    /// Creates the table, or brings an existing one up to `schema` by adding nullable columns.
    /// Any change that would lose or reinterpret data is refused with the reasons.
    pub async fn declare(&self, schema: TableSchema) -> Result<Declared, TableError> {
        let existing = self.schema(schema.name()).ok();
        let (outcome, stored) = match existing {
            None => (Declared::Created, schema),
            Some(old) => match migration(&old, &schema) {
                Ok(added) if added.is_empty() => return Ok(Declared::Unchanged),
                Ok(added) => (
                    Declared::Migrated {
                        added: added.iter().map(|c| c.name.to_string()).collect(),
                    },
                    old.with_added_columns(&added)?,
                ),
                Err(changes) => {
                    return Err(TableError::DestructiveChange {
                        table: schema.name().to_string(),
                        changes,
                    });
                }
            },
        };
        let ddl: Vec<String> = match &outcome {
            Declared::Created => vec![create_sql(&stored)],
            _ => stored
                .columns()
                .iter()
                .filter(|c| outcome_adds(&outcome, c.name.as_str()))
                .map(|c| add_column_sql(&stored, c))
                .collect(),
        };
        let record = serde_json::to_string(&stored).expect("schemas serialize");
        let name = stored.name().to_string();
        self.bus
            .write(move |tx| {
                let (ddl, name, record) = (ddl.clone(), name.clone(), record.clone());
                Box::pin(async move {
                    for statement in ddl {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                            .execute(tx.conn())
                            .await?;
                    }
                    sqlx::query(
                        "INSERT INTO _eddy_tables (name, schema, created_ms) VALUES (?, ?, ?)
                         ON CONFLICT (name) DO UPDATE SET schema = excluded.schema",
                    )
                    .bind(name)
                    .bind(record)
                    .bind(eddy_bus::now_ms())
                    .execute(tx.conn())
                    .await?;
                    Ok::<_, TableError>(())
                })
            })
            .await?;
        self.schemas
            .write()
            .expect("schema lock")
            .insert(stored.name().clone(), Arc::new(stored));
        Ok(outcome)
    }

    /// The schema of a declared table.
    pub fn schema(&self, table: &TableName) -> Result<Arc<TableSchema>, TableError> {
        self.schemas
            .read()
            .expect("schema lock")
            .get(table)
            .cloned()
            .ok_or_else(|| TableError::NoSuchTable(table.to_string()))
    }

    /// When each table was first declared (milliseconds since the Unix epoch), by name: the
    /// time DynamoDB-Streams records name their stream by.
    pub async fn created(&self) -> Result<HashMap<String, i64>, TableError> {
        let rows = sqlx::query("SELECT name, created_ms FROM _eddy_tables")
            .fetch_all(self.bus.readers())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("created_ms")?)))
            .collect()
    }

    /// Every declared table's schema, by name.
    pub fn schemas(&self) -> Vec<Arc<TableSchema>> {
        let mut all: Vec<_> = self
            .schemas
            .read()
            .expect("schema lock")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// Inserts rows in one transaction: all or none. A key that exists fails the whole batch.
    pub async fn insert(
        &self,
        table: &TableName,
        rows: Vec<Value>,
        lineage: Lineage,
    ) -> Result<Vec<Change>, TableError> {
        if rows.len() > MAX_BATCH_ROWS {
            return Err(TableError::BatchTooLarge {
                max: MAX_BATCH_ROWS,
                found: rows.len(),
            });
        }
        let schema = self.schema(table)?;
        let checked = rows
            .into_iter()
            .map(|v| {
                let row = into_row(v)?;
                let values = encode_row(&schema, &row)?;
                Ok((
                    Key::of_row(&schema, &row)?,
                    normalize(&schema, &row),
                    values,
                ))
            })
            .collect::<Result<Vec<_>, TableError>>()?;
        self.bus
            .write(move |tx| {
                let (checked, schema, lineage) = (checked.clone(), schema.clone(), lineage.clone());
                Box::pin(async move {
                    let mut changes = Vec::with_capacity(checked.len());
                    for (key, row, values) in checked {
                        insert_row(tx.conn(), &schema, &key, values).await?;
                        changes.push(
                            record(tx, &schema, &key, None, Some(row), lineage.clone()).await?,
                        );
                    }
                    Ok(changes)
                })
            })
            .await
    }

    /// Inserts the row, or replaces the row with its key (an `INSERT` or `MODIFY` event).
    pub async fn put(
        &self,
        table: &TableName,
        row: Value,
        lineage: Lineage,
    ) -> Result<Change, TableError> {
        let schema = self.schema(table)?;
        let row = into_row(row)?;
        let values = encode_row(&schema, &row)?;
        let key = Key::of_row(&schema, &row)?;
        let row = normalize(&schema, &row);
        self.bus
            .write(move |tx| {
                let (schema, key, values, row, lineage) = (
                    schema.clone(),
                    key.clone(),
                    values.clone(),
                    row.clone(),
                    lineage.clone(),
                );
                Box::pin(async move {
                    let old = select(tx.conn(), &schema, &key).await?;
                    match &old {
                        None => insert_row(tx.conn(), &schema, &key, values).await?,
                        Some(old) if *old == row => return Ok(unchanged(old)),
                        Some(_) => update_row(tx.conn(), &schema, &key, values).await?,
                    }
                    record(tx, &schema, &key, old, Some(row), lineage).await
                })
            })
            .await
    }

    /// Merges `patch` into the row with `key` (a `MODIFY` event). Fails if there is no such
    /// row, or if the patch changes a key column.
    pub async fn update(
        &self,
        table: &TableName,
        key: Key,
        patch: Value,
        lineage: Lineage,
    ) -> Result<Change, TableError> {
        let schema = self.schema(table)?;
        let patch = into_row(patch)?;
        crate::values::check_known(&schema, &patch)?;
        for (column, value) in &patch {
            let col = schema.column(column).expect("checked known");
            encode(col, value)?;
            if schema.is_key(column) && key.to_map(&schema).get(column) != Some(value) {
                return Err(TableError::KeyChange {
                    column: column.clone(),
                });
            }
        }
        self.bus
            .write(move |tx| {
                let (schema, key, patch, lineage) =
                    (schema.clone(), key.clone(), patch.clone(), lineage.clone());
                Box::pin(async move {
                    let old = select(tx.conn(), &schema, &key)
                        .await?
                        .ok_or_else(|| TableError::NoSuchRow(key.to_string()))?;
                    let mut merged = old.clone();
                    merged.extend(patch);
                    let merged = normalize(&schema, &merged);
                    if merged == old {
                        return Ok(unchanged(&old));
                    }
                    update_row(tx.conn(), &schema, &key, encode_row(&schema, &merged)?).await?;
                    record(tx, &schema, &key, Some(old), Some(merged), lineage).await
                })
            })
            .await
    }

    /// Deletes the row with `key` (a `REMOVE` event). Returns `None`, and records nothing, when
    /// there is no such row.
    pub async fn delete(
        &self,
        table: &TableName,
        key: Key,
        lineage: Lineage,
    ) -> Result<Option<Change>, TableError> {
        let schema = self.schema(table)?;
        self.bus
            .write(move |tx| {
                let (schema, key, lineage) = (schema.clone(), key.clone(), lineage.clone());
                Box::pin(async move {
                    let Some(old) = select(tx.conn(), &schema, &key).await? else {
                        return Ok(None);
                    };
                    let sql = format!(
                        "DELETE FROM {} WHERE {}",
                        quote(schema.name().as_str()),
                        key_match(&schema)
                    );
                    let mut args = SqliteArguments::default();
                    key.bind_all(&schema, &mut args);
                    sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
                        .execute(tx.conn())
                        .await?;
                    Ok(Some(
                        record(tx, &schema, &key, Some(old), None, lineage).await?,
                    ))
                })
            })
            .await
    }

    /// The row with `key`, if there is one.
    pub async fn get(&self, table: &TableName, key: &Key) -> Result<Option<Row>, TableError> {
        let schema = self.schema(table)?;
        let mut conn = self.bus.readers().acquire().await?;
        select(&mut conn, &schema, key).await
    }

    /// Rows in key order that equal every filter, a page at a time.
    pub async fn list(&self, table: &TableName, query: &Query) -> Result<Page, TableError> {
        let schema = self.schema(table)?;
        let limit = match query.limit {
            0 => 100,
            n => n.min(MAX_PAGE_ROWS),
        };
        let mut clauses = Vec::new();
        let mut args = SqliteArguments::default();
        for (column, value) in &query.filters {
            let col = schema
                .column(column)
                .ok_or_else(|| TableError::UnknownColumn {
                    table: schema.name().to_string(),
                    column: column.chars().take(64).collect(),
                    accepted: schema.column_list(),
                })?;
            if value.is_null() {
                clauses.push(format!("{} IS NULL", quote(column)));
                continue;
            }
            if col.ty == crate::ColumnType::Json {
                return Err(TableError::InvalidQuery(format!(
                    "column {column:?} holds JSON and cannot be filtered by equality; filter on a text, integer, real or boolean column"
                )));
            }
            clauses.push(format!("{} = ?", quote(column)));
            encode(col, value)?.bind(&mut args);
        }
        if let Some(after) = &query.after {
            clauses.push(format!(
                "({}) > ({})",
                quote_list(schema.primary_key().iter()),
                placeholders(schema.primary_key().len())
            ));
            after.bind_all(&schema, &mut args);
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {} FROM {} {filter} ORDER BY {} LIMIT {}",
            quote_list(schema.columns().iter().map(|c| &c.name)),
            quote(schema.name().as_str()),
            quote_list(schema.primary_key().iter()),
            limit + 1
        );
        let found = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_all(self.bus.readers())
            .await?;
        let mut rows = found
            .iter()
            .map(|r| decode_row(&schema, r))
            .collect::<Result<Vec<_>, _>>()?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            Some(Key::of_row(
                &schema,
                rows.last().expect("limit is at least 1"),
            )?)
        } else {
            None
        };
        Ok(Page { rows, next })
    }
}

fn outcome_adds(outcome: &Declared, column: &str) -> bool {
    matches!(outcome, Declared::Migrated { added } if added.iter().any(|a| a == column))
}

fn into_row(value: Value) -> Result<Row, TableError> {
    match value {
        Value::Object(map) => Ok(map),
        other => {
            let mut shown = other.to_string();
            shown.truncate(shown.char_indices().nth(40).map_or(shown.len(), |(i, _)| i));
            Err(TableError::NotAnObject(shown))
        }
    }
}

fn unchanged(row: &Row) -> Change {
    Change {
        old: Some(row.clone()),
        new: Some(row.clone()),
        seq: None,
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn key_match(schema: &TableSchema) -> String {
    schema
        .primary_key()
        .iter()
        .map(|k| format!("{} = ?", quote(k.as_str())))
        .collect::<Vec<_>>()
        .join(" AND ")
}

async fn select(
    conn: &mut SqliteConnection,
    schema: &TableSchema,
    key: &Key,
) -> Result<Option<Row>, TableError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE {}",
        quote_list(schema.columns().iter().map(|c| &c.name)),
        quote(schema.name().as_str()),
        key_match(schema)
    );
    let mut args = SqliteArguments::default();
    key.bind_all(schema, &mut args);
    let row = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(|r| decode_row(schema, r)).transpose()
}

async fn insert_row(
    conn: &mut SqliteConnection,
    schema: &TableSchema,
    key: &Key,
    values: Vec<SqlValue>,
) -> Result<(), TableError> {
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote(schema.name().as_str()),
        quote_list(schema.columns().iter().map(|c| &c.name)),
        placeholders(values.len())
    );
    let mut args = SqliteArguments::default();
    values.into_iter().for_each(|v| v.bind(&mut args));
    match sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
        .execute(conn)
        .await
    {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(TableError::KeyExists(key.to_string()))
        }
        other => other.map(|_| ()).map_err(Into::into),
    }
}

async fn update_row(
    conn: &mut SqliteConnection,
    schema: &TableSchema,
    key: &Key,
    values: Vec<SqlValue>,
) -> Result<(), TableError> {
    let mut sets = Vec::new();
    let mut args = SqliteArguments::default();
    for (column, value) in schema.columns().iter().zip(values) {
        if !schema.is_key(column.name.as_str()) {
            sets.push(format!("{} = ?", quote(column.name.as_str())));
            value.bind(&mut args);
        }
    }
    if sets.is_empty() {
        // Only key columns: nothing to set, and an unchanged row was handled by the caller.
        return Ok(());
    }
    key.bind_all(schema, &mut args);
    let sql = format!(
        "UPDATE {} SET {} WHERE {}",
        quote(schema.name().as_str()),
        sets.join(", "),
        key_match(schema)
    );
    sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends the change's event in the caller's transaction.
async fn record(
    tx: &mut WriteTx,
    schema: &TableSchema,
    key: &Key,
    old: Option<Row>,
    new: Option<Row>,
    lineage: Lineage,
) -> Result<Change, TableError> {
    let kind = match (&old, &new) {
        (None, _) => EventKind::RowInsert,
        (Some(_), Some(_)) => EventKind::RowModify,
        (Some(_), None) => EventKind::RowRemove,
    };
    let change = RowChange {
        keys: key.to_map(schema),
        new: new.clone(),
        old: old.clone(),
    };
    let event = tx
        .append(NewEvent {
            source: Source::Table(schema.name().clone()),
            kind,
            key: key.canonical(),
            payload: serde_json::to_value(change).expect("row changes serialize"),
            lineage,
        })
        .await?;
    Ok(Change {
        old,
        new,
        seq: Some(event.seq),
    })
}
