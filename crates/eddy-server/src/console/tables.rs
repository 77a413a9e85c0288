//! Tables: those the viewer may read; browsing one a keyset page at a time, filtered by a
//! column's value (through the table API's own handler); a row, edited as JSON and saved as
//! the table API's PUT saves it; and the row's changes from the journal.

use std::collections::HashMap;

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use eddy_core::{Lineage, TableName};
use eddy_tables::Key;
use serde::Deserialize;
use serde_json::Value;

use super::page::{self, Html, Nav, render};
use super::session::Viewer;
use super::{BASE, ConsoleError};
use crate::auth::WriteLineage;
use crate::{Shared, tables};

pub struct TableRow {
    pub name: String,
    pub href: String,
    pub key: String,
    pub columns: usize,
}

#[derive(Template)]
#[template(path = "console/tables.html")]
pub struct Tables {
    pub nav: Nav,
    pub rows: Vec<TableRow>,
}

/// `GET /_eddy/console/tables`: the tables the viewer may read.
pub async fn list(viewer: Viewer, State(s): State<Shared>) -> Result<Html, ConsoleError> {
    let rows = s
        .tables
        .schemas()
        .iter()
        .filter(|t| viewer.allows("tables:read", &format!("table/{}", t.name())))
        .map(|t| TableRow {
            name: t.name().to_string(),
            href: format!("{BASE}/tables/{}", t.name()),
            key: t
                .primary_key()
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            columns: t.columns().len(),
        })
        .collect();
    Ok(render(&Tables {
        nav: Nav::new(&viewer, "tables"),
        rows,
    }))
}

#[derive(Template)]
#[template(path = "console/table.html")]
pub struct TablePage {
    pub nav: Nav,
    pub table: String,
    pub columns: Vec<String>,
    /// Each row's cells, and the link to it.
    pub rows: Vec<(String, Vec<String>)>,
    pub column: String,
    pub value: String,
    pub next: Option<String>,
    pub can_write: bool,
    pub new_row: String,
}

#[derive(Deserialize)]
pub struct BrowseQuery {
    #[serde(default)]
    column: String,
    #[serde(default)]
    value: String,
    after: Option<String>,
}

/// Rows on a page.
const PAGE: usize = 50;

fn table_name(name: &str) -> Result<TableName, ConsoleError> {
    Ok(TableName::new(name)?)
}

/// `GET /_eddy/console/tables/{table}?column=C&value=V&after=KEY`.
pub async fn browse(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<BrowseQuery>,
) -> Result<Html, ConsoleError> {
    let table = table_name(&name)?;
    viewer.require("tables:read", &format!("table/{table}"))?;
    let schema = s.tables.schema(&table)?;
    let mut params = HashMap::from([("limit".to_string(), PAGE.to_string())]);
    if let Some(after) = &q.after {
        params.insert("after".into(), after.clone());
    }
    if !q.column.is_empty() {
        if schema.column(&q.column).is_none() || ["limit", "after"].contains(&q.column.as_str()) {
            return Err(ConsoleError::bad_request(format!(
                "table {table} has no column {:?}",
                q.column
            )));
        }
        params.insert(q.column.clone(), q.value.clone());
    }
    let listed = tables::list(State(s.clone()), Path(name.clone()), Query(params))
        .await?
        .0;
    let columns: Vec<String> = schema
        .columns()
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    let rows = listed["rows"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|row| {
            let key: Vec<Value> = schema
                .primary_key()
                .iter()
                .map(|c| row[c.as_str()].clone())
                .collect();
            let href = format!(
                "{BASE}/tables/{table}/row?{}",
                page::query(&[("key", &Value::Array(key).to_string())])
            );
            let cells = columns.iter().map(|c| cell(&row[c.as_str()])).collect();
            (href, cells)
        })
        .collect();
    let next = listed["next"].as_str().map(|after| {
        format!(
            "{BASE}/tables/{table}?{}",
            page::query(&[("column", &q.column), ("value", &q.value), ("after", after)])
        )
    });
    let blank: serde_json::Map<String, Value> =
        columns.iter().map(|c| (c.clone(), Value::Null)).collect();
    Ok(render(&TablePage {
        nav: Nav::new(&viewer, "tables"),
        can_write: viewer.allows("tables:write", &format!("table/{table}")),
        new_row: page::pretty(&Value::Object(blank)),
        table: table.to_string(),
        columns,
        rows,
        column: q.column,
        value: q.value,
        next,
    }))
}

/// A value as a cell shows it.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub struct Change {
    pub sequence: u64,
    pub href: String,
    pub kind: String,
    pub time: String,
    pub images: String,
}

#[derive(Template)]
#[template(path = "console/row.html")]
pub struct RowPage {
    pub nav: Nav,
    pub table: String,
    pub key: String,
    pub row: String,
    pub exists: bool,
    pub can_write: bool,
    pub history: Vec<Change>,
    pub scanned: u64,
}

#[derive(Deserialize)]
pub struct RowQuery {
    key: String,
}

/// `GET /_eddy/console/tables/{table}/row?key=[VALUES]`: the row, to edit, and its changes.
pub async fn row(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<RowQuery>,
) -> Result<Html, ConsoleError> {
    let table = table_name(&name)?;
    viewer.require("tables:read", &format!("table/{table}"))?;
    let schema = s.tables.schema(&table)?;
    let values: Vec<Value> = serde_json::from_str(&q.key).map_err(|_| {
        ConsoleError::bad_request(format!(
            "the key {:?} is not a JSON array of the key's values",
            q.key
        ))
    })?;
    let key = Key::new(&schema, values)?;
    let found = s.tables.get(&table, &key).await?;
    let mut history = Vec::new();
    if viewer.allows("admin:read", "*") {
        let source = format!("table/{table}");
        history = super::events::latest_of(&s, &source, &key.canonical())
            .await?
            .iter()
            .map(|e| Change {
                sequence: e.sequence,
                href: page::event_href(e.sequence),
                kind: e.kind.clone(),
                time: page::time(e.time_ms),
                images: page::pretty(&e.payload),
            })
            .collect();
    }
    Ok(render(&RowPage {
        nav: Nav::new(&viewer, "tables"),
        table: table.to_string(),
        key: key.canonical(),
        exists: found.is_some(),
        row: found.map_or_else(String::new, |r| page::pretty(&Value::Object(r))),
        can_write: viewer.allows("tables:write", &format!("table/{table}")),
        history,
        scanned: super::events::KEY_SCAN,
    }))
}

#[derive(Deserialize)]
pub struct SaveForm {
    csrf: String,
    row: String,
}

/// `POST /_eddy/console/tables/{table}/row`: the form's row (JSON) replaces the row with its
/// key, or is inserted, through the table API's PUT; then to the row's page.
pub async fn save(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<SaveForm>,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(&form.csrf)?;
    let table = table_name(&name)?;
    viewer.require("tables:write", &format!("table/{table}"))?;
    let row: Value = serde_json::from_str(&form.row)
        .map_err(|e| ConsoleError::bad_request(format!("the row is not JSON: {e}")))?;
    let saved = tables::upsert(
        State(s.clone()),
        Path(name),
        WriteLineage(Lineage::root()),
        Json(row),
    )
    .await?
    .0;
    let schema = s.tables.schema(&table)?;
    let key: Vec<Value> = schema
        .primary_key()
        .iter()
        .map(|c| saved[c.as_str()].clone())
        .collect();
    Ok(Redirect::to(&format!(
        "{BASE}/tables/{table}/row?{}",
        page::query(&[("key", &Value::Array(key).to_string())])
    ))
    .into_response())
}
