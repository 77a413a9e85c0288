//! The table API: `/_eddy/v1/tables/{table}/rows[/{key}]`.
//!
//! A row's key in the path is one segment per key column, in key order
//! (`/rows/42`, `/rows/tenant-a/7`), each percent-decoded on its own, so a value may contain
//! an encoded `/`.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use eddy_core::{ColumnType, TableName, TableSchema};
use eddy_tables::{Key, Query as RowQuery};
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::Shared;
use crate::auth::WriteLineage;
use crate::error::ApiError;

type Result<T> = std::result::Result<T, ApiError>;

fn table(name: &str) -> Result<TableName> {
    Ok(TableName::new(name)?)
}

/// `POST …/rows`: one row (an object) or several (an array, one transaction). 409 when a key
/// exists.
pub async fn insert(
    State(s): State<Shared>,
    Path(name): Path<String>,
    WriteLineage(lineage): WriteLineage,
    Json(body): Json<Value>,
) -> Result<Response> {
    let table = table(&name)?;
    let rows = match body {
        Value::Array(rows) => rows,
        row => vec![row],
    };
    let changes = s.tables.insert(&table, rows, lineage).await?;
    let rows: Vec<Value> = changes
        .into_iter()
        .filter_map(|c| c.new.map(Value::Object))
        .collect();
    Ok((StatusCode::CREATED, Json(json!({ "rows": rows }))).into_response())
}

/// `PUT …/rows`: inserts or replaces the row whose key the body's key columns give.
pub async fn upsert(
    State(s): State<Shared>,
    Path(name): Path<String>,
    WriteLineage(lineage): WriteLineage,
    Json(body): Json<Value>,
) -> Result<Json<Value>> {
    let change = s.tables.put(&table(&name)?, body, lineage).await?;
    Ok(Json(change.new.map(Value::Object).unwrap_or_default()))
}

/// `GET …/rows?col=value&limit=&after=`: rows in key order, a page at a time.
pub async fn list(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let table = table(&name)?;
    let schema = s.tables.schema(&table)?;
    let mut query = RowQuery::default();
    for (param, text) in params {
        match param.as_str() {
            "limit" => {
                query.limit = text.parse().map_err(|_| {
                    bad(
                        "InvalidQuery",
                        format!("limit must be a whole number; got {text:?}"),
                    )
                })?;
            }
            "after" => {
                let values: Vec<Value> = serde_json::from_str(&text).map_err(|_| {
                    bad(
                        "InvalidQuery",
                        "after must be the `next` value of the previous page",
                    )
                })?;
                query.after = Some(Key::new(&schema, values)?);
            }
            column => {
                let value = match schema.column(column) {
                    Some(c) => typed(c.ty, &text, column)?,
                    None => Value::String(text),
                };
                query.filters.push((column.to_string(), value));
            }
        }
    }
    let page = s.tables.list(&table, &query).await?;
    Ok(Json(json!({
        "rows": page.rows,
        "next": page.next.map(|k| k.canonical()),
    })))
}

/// `GET …/rows/{key}`
pub async fn get(
    State(s): State<Shared>,
    KeyedRow { table, key }: KeyedRow,
) -> Result<Json<Value>> {
    match s.tables.get(&table, &key).await? {
        Some(row) => Ok(Json(Value::Object(row))),
        None => Err(no_row(&key)),
    }
}

/// `PUT …/rows/{key}`: inserts or replaces the row. Key columns may be left out of the body;
/// given, they must match the path.
pub async fn put(
    State(s): State<Shared>,
    KeyedRow { table, key }: KeyedRow,
    WriteLineage(lineage): WriteLineage,
    Json(body): Json<Value>,
) -> Result<Json<Value>> {
    let schema = s.tables.schema(&table)?;
    let row = with_key(&schema, &key, body)?;
    let change = s.tables.put(&table, row, lineage).await?;
    Ok(Json(change.new.map(Value::Object).unwrap_or_default()))
}

/// `PATCH …/rows/{key}`: merges the body into the row; 404 when there is none.
pub async fn patch(
    State(s): State<Shared>,
    KeyedRow { table, key }: KeyedRow,
    WriteLineage(lineage): WriteLineage,
    Json(body): Json<Value>,
) -> Result<Json<Value>> {
    let change = s.tables.update(&table, key, body, lineage).await?;
    Ok(Json(change.new.map(Value::Object).unwrap_or_default()))
}

/// `DELETE …/rows/{key}`: 204, or 404 when there is no such row.
pub async fn delete(
    State(s): State<Shared>,
    KeyedRow { table, key }: KeyedRow,
    WriteLineage(lineage): WriteLineage,
) -> Result<StatusCode> {
    match s.tables.delete(&table, key.clone(), lineage).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(no_row(&key)),
    }
}

fn bad(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn no_row(key: &Key) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NoSuchRow",
        format!("no row with key {key}"),
    )
}

/// The table and row key a `…/rows/{key}` request names. The key comes from the raw path:
/// the segments after `/rows/`, each percent-decoded on its own.
pub struct KeyedRow {
    table: TableName,
    key: Key,
}

impl FromRequestParts<Shared> for KeyedRow {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &Shared,
    ) -> Result<Self> {
        let Path((name, _)) = Path::<(String, String)>::from_request_parts(parts, s)
            .await
            .map_err(|e| bad("InvalidPath", e.body_text()))?;
        let (table, key) = keyed(s, &name, &parts.uri)?;
        Ok(Self { table, key })
    }
}

fn keyed(s: &Shared, name: &str, uri: &Uri) -> Result<(TableName, Key)> {
    let table = table(name)?;
    let schema = s.tables.schema(&table)?;
    let raw = uri
        .path()
        .split_once("/rows/")
        .map(|(_, k)| k)
        .unwrap_or("");
    let segments: Vec<String> = raw.split('/').map(decode).collect::<Result<_>>()?;
    if segments.len() != schema.primary_key().len() {
        let columns: Vec<&str> = schema.primary_key().iter().map(|c| c.as_str()).collect();
        return Err(bad(
            "KeyShape",
            format!(
                "the path names {} key values; table {name:?} has a key of {} columns ({}), one path segment each",
                segments.len(),
                columns.len(),
                columns.join(", ")
            ),
        ));
    }
    let values = schema
        .key_columns()
        .zip(&segments)
        .map(|(c, text)| typed(c.ty, text, c.name.as_str()))
        .collect::<Result<Vec<_>>>()?;
    Ok((table, Key::new(&schema, values)?))
}

/// A text from a URL (path segment or query value) as a value of a column's type.
fn typed(ty: ColumnType, text: &str, column: &str) -> Result<Value> {
    let wrong = || {
        bad(
            "WrongType",
            format!("column {column:?} expects {}; got {text:?}", ty.expected()),
        )
    };
    Ok(match ty {
        ColumnType::Integer => Value::from(text.parse::<i64>().map_err(|_| wrong())?),
        ColumnType::Real => serde_json::Number::from_f64(text.parse::<f64>().map_err(|_| wrong())?)
            .map(Value::Number)
            .ok_or_else(wrong)?,
        ColumnType::Boolean => Value::Bool(text.parse::<bool>().map_err(|_| wrong())?),
        ColumnType::Text | ColumnType::Json => Value::String(text.to_string()),
    })
}

fn decode(segment: &str) -> Result<String> {
    let mut bytes = Vec::with_capacity(segment.len());
    let mut iter = segment.bytes();
    while let Some(b) = iter.next() {
        if b == b'%' {
            let hex: String = iter.by_ref().take(2).map(char::from).collect();
            let byte = u8::from_str_radix(&hex, 16).map_err(|_| {
                bad(
                    "InvalidKey",
                    format!("the key segment {segment:?} has a bad %-escape"),
                )
            })?;
            bytes.push(byte);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).map_err(|_| bad("InvalidKey", "the key is not UTF-8"))
}

/// The body with the path's key columns filled in; a conflicting key column is an error.
fn with_key(schema: &TableSchema, key: &Key, body: Value) -> Result<Value> {
    let Value::Object(mut row) = body else {
        return Err(bad(
            "NotAnObject",
            "a row must be a JSON object of column names to values",
        ));
    };
    for (column, value) in key.to_map(schema) {
        match row.get(&column) {
            Some(given) if given != &value => {
                return Err(bad(
                    "KeyChange",
                    format!("the body's {column:?} is {given}, but the path says {value}"),
                ));
            }
            _ => {
                row.insert(column, value);
            }
        }
    }
    Ok(Value::Object(row))
}
