//! Table operations. Each write runs in the writer's transaction, reads the old image there,
//! changes the row and appends exactly one event — or, when it fails, does none of these.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use eddy_bus::sql::Value as SqlValue;
use eddy_bus::{Bus, WriteTx};
use eddy_core::{EventKind, Lineage, NewEvent, RowChange, Source, TableName, TableSchema};
use serde_json::Value;

use crate::TableError;
use crate::schema::migration;
use crate::sql::{SqlRows, TableRows, filter_value};
use crate::values::{Key, Row, encode, encode_row, normalize};

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
    rows: Arc<dyn TableRows>,
    /// Every declared schema. Schemas change only through [`TableStore::declare`], which
    /// updates this after its commit.
    schemas: Arc<RwLock<HashMap<TableName, Arc<TableSchema>>>>,
}

impl TableStore {
    /// The tables of the platform database that `bus` has open.
    pub async fn open(bus: Bus) -> Result<Self, TableError> {
        Self::new(bus, Arc::new(SqlRows)).await
    }

    /// The tables a [`TableRows`] backend holds.
    pub async fn new(bus: Bus, rows: Arc<dyn TableRows>) -> Result<Self, TableError> {
        let declared = rows.catalog(&mut bus.readers()).await?;
        let schemas = declared
            .into_iter()
            .map(|d| (d.schema.name().clone(), Arc::new(d.schema)))
            .collect();
        Ok(Self {
            bus,
            rows,
            schemas: Arc::new(RwLock::new(schemas)),
        })
    }

    /// Creates the table, or brings an existing one up to `schema` by adding nullable columns.
    /// Any change that would lose or reinterpret data is refused with the reasons.
    pub async fn declare(&self, schema: TableSchema) -> Result<Declared, TableError> {
        let existing = self.schema(schema.name()).ok();
        let (outcome, stored, added) = match existing {
            None => (Declared::Created, schema, Vec::new()),
            Some(old) => match migration(&old, &schema) {
                Ok(added) if added.is_empty() => return Ok(Declared::Unchanged),
                Ok(added) => (
                    Declared::Migrated {
                        added: added.iter().map(|c| c.name.to_string()).collect(),
                    },
                    old.with_added_columns(&added)?,
                    added,
                ),
                Err(changes) => {
                    return Err(TableError::DestructiveChange {
                        table: schema.name().to_string(),
                        changes,
                    });
                }
            },
        };
        let input = (self.rows.clone(), stored, added);
        let stored = self
            .bus
            .write(input, |tx, (rows, stored, added)| {
                Box::pin(async move {
                    if added.is_empty() {
                        rows.create(tx, stored, eddy_bus::now_ms()).await?;
                    } else {
                        rows.add_columns(tx, stored, added).await?;
                    }
                    Ok::<_, TableError>(stored.clone())
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
        let declared = self.rows.catalog(&mut self.bus.readers()).await?;
        Ok(declared
            .into_iter()
            .map(|d| (d.schema.name().to_string(), d.created_ms))
            .collect())
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
        self.bus.check_room()?;
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
        let input = (self.rows.clone(), schema, checked, lineage);
        self.bus
            .write(input, |tx, (rows, schema, checked, lineage)| {
                Box::pin(async move {
                    let mut changes = Vec::with_capacity(checked.len());
                    for (key, row, values) in checked {
                        rows.insert(tx, schema, key, values.clone()).await?;
                        changes.push(
                            record(tx, schema, key, None, Some(row.clone()), lineage.clone())
                                .await?,
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
        self.bus.check_room()?;
        let schema = self.schema(table)?;
        let row = into_row(row)?;
        let values = encode_row(&schema, &row)?;
        let key = Key::of_row(&schema, &row)?;
        let row = normalize(&schema, &row);
        let input = (self.rows.clone(), schema, key, values, row, lineage);
        self.bus
            .write(input, |tx, (rows, schema, key, values, row, lineage)| {
                Box::pin(async move {
                    let lineage = lineage.clone();
                    put_row(rows.as_ref(), tx, schema, key, values, row, lineage).await
                })
            })
            .await
    }

    /// [`TableStore::put`] in the caller's transaction: for what eddy writes itself in a
    /// transaction of its own (a destination's record). `None` when the table is not
    /// declared; an error when the row does not fit it. Both are found before anything is
    /// written.
    pub async fn put_in(
        &self,
        tx: &mut WriteTx,
        table: &TableName,
        row: Value,
        lineage: Lineage,
    ) -> Result<Option<Change>, TableError> {
        let schema = match self.schema(table) {
            Ok(schema) => schema,
            Err(TableError::NoSuchTable(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let row = into_row(row)?;
        let values = encode_row(&schema, &row)?;
        let key = Key::of_row(&schema, &row)?;
        let row = normalize(&schema, &row);
        put_row(
            self.rows.as_ref(),
            tx,
            &schema,
            &key,
            &values,
            &row,
            lineage,
        )
        .await
        .map(Some)
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
        self.bus.check_room()?;
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
        let input = (self.rows.clone(), schema, key, patch, lineage);
        self.bus
            .write(input, |tx, (rows, schema, key, patch, lineage)| {
                Box::pin(async move {
                    let old = rows
                        .get(tx, schema, key)
                        .await?
                        .ok_or_else(|| TableError::NoSuchRow(key.to_string()))?;
                    let mut merged = old.clone();
                    merged.extend(patch.clone());
                    let merged = normalize(schema, &merged);
                    if merged == old {
                        return Ok(unchanged(&old));
                    }
                    rows.update(tx, schema, key, encode_row(schema, &merged)?)
                        .await?;
                    record(tx, schema, key, Some(old), Some(merged), lineage.clone()).await
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
        let input = (self.rows.clone(), schema, key, lineage);
        self.bus
            .write(input, |tx, (rows, schema, key, lineage)| {
                Box::pin(async move {
                    let Some(old) = rows.get(tx, schema, key).await? else {
                        return Ok(None);
                    };
                    rows.delete(tx, schema, key).await?;
                    Ok(Some(
                        record(tx, schema, key, Some(old), None, lineage.clone()).await?,
                    ))
                })
            })
            .await
    }

    /// The row with `key`, if there is one.
    pub async fn get(&self, table: &TableName, key: &Key) -> Result<Option<Row>, TableError> {
        let schema = self.schema(table)?;
        self.rows.get(&mut self.bus.readers(), &schema, key).await
    }

    /// Rows in key order that equal every filter, a page at a time.
    pub async fn list(&self, table: &TableName, query: &Query) -> Result<Page, TableError> {
        let schema = self.schema(table)?;
        let limit = match query.limit {
            0 => 100,
            n => n.min(MAX_PAGE_ROWS),
        };
        let filters = query
            .filters
            .iter()
            .map(|(column, value)| Ok((column.clone(), filter_value(&schema, column, value)?)))
            .collect::<Result<Vec<_>, TableError>>()?;
        let mut rows = self
            .rows
            .list(
                &mut self.bus.readers(),
                &schema,
                &filters,
                query.after.as_ref(),
                limit + 1,
            )
            .await?;
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

/// The event of a row's change from `old` to `new`.
fn change_event(
    schema: &TableSchema,
    key: &Key,
    old: Option<Row>,
    new: Option<Row>,
    lineage: Lineage,
) -> NewEvent {
    let kind = match (&old, &new) {
        (None, _) => EventKind::RowInsert,
        (Some(_), Some(_)) => EventKind::RowModify,
        (Some(_), None) => EventKind::RowRemove,
    };
    let change = RowChange {
        keys: key.to_map(schema),
        new,
        old,
    };
    NewEvent {
        source: Source::Table(schema.name().clone()),
        kind,
        key: key.canonical(),
        payload: change.into(),
        lineage,
    }
}

/// The event of a row's insertion, as an insert makes it (for a trigger's backfill).
/// Inserts `row` or replaces the row with its key, and journals the change.
async fn put_row(
    rows: &dyn TableRows,
    tx: &mut WriteTx,
    schema: &TableSchema,
    key: &Key,
    values: &[SqlValue],
    row: &Row,
    lineage: Lineage,
) -> Result<Change, TableError> {
    let old = rows.get(tx, schema, key).await?;
    match &old {
        None => rows.insert(tx, schema, key, values.to_vec()).await?,
        Some(old) if old == row => return Ok(unchanged(old)),
        Some(_) => rows.update(tx, schema, key, values.to_vec()).await?,
    }
    record(tx, schema, key, old, Some(row.clone()), lineage).await
}

pub fn inserted_event(schema: &TableSchema, row: Row) -> Result<NewEvent, TableError> {
    let key = Key::of_row(schema, &row)?;
    Ok(change_event(schema, &key, None, Some(row), Lineage::root()))
}

/// Appends the change's event in the caller's transaction.
pub(crate) async fn record(
    tx: &mut WriteTx,
    schema: &TableSchema,
    key: &Key,
    old: Option<Row>,
    new: Option<Row>,
    lineage: Lineage,
) -> Result<Change, TableError> {
    let event = tx
        .append(change_event(schema, key, old.clone(), new.clone(), lineage))
        .await?;
    Ok(Change {
        old,
        new,
        seq: Some(event.seq),
    })
}
