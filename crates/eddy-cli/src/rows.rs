//! `eddy table put|get|scan|delete`: rows through the table API.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::client::{Client, encode};

/// A JSON argument given inline or as `@FILE`.
pub fn json_argument(text: &str, what: &str) -> anyhow::Result<Value> {
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => text.to_string(),
    };
    serde_json::from_str(&text).with_context(|| format!("{what} is not valid JSON"))
}

fn rows_path(table: &str) -> String {
    format!("/_eddy/v1/tables/{}/rows", encode(table))
}

/// The path of one row: one segment per key value, in key order.
fn row_path(table: &str, key: &[String]) -> anyhow::Result<String> {
    if key.is_empty() {
        bail!("name the row by its key: one value per key column, in key order");
    }
    let segments: Vec<String> = key.iter().map(|k| encode(k)).collect();
    Ok(format!("{}/{}", rows_path(table), segments.join("/")))
}

/// `eddy table put TABLE ROW`: inserts or replaces the row its key columns name.
pub fn put(client: &Client, table: &str, row: &str) -> anyhow::Result<Value> {
    let row = json_argument(row, "the row")?;
    if !row.is_object() {
        bail!("the row must be a JSON object of column names to values");
    }
    client.api("PUT", &rows_path(table), "", Some(&row))
}

pub fn get(client: &Client, table: &str, key: &[String]) -> anyhow::Result<Value> {
    client.api("GET", &row_path(table, key)?, "", None)
}

pub fn delete(client: &Client, table: &str, key: &[String]) -> anyhow::Result<Value> {
    client.api("DELETE", &row_path(table, key)?, "", None)?;
    Ok(json!({"deleted": {"table": table, "key": key}}))
}

/// `eddy table scan TABLE [--where COL=VALUE]… [--limit N]`: every matching row, page after
/// page, or the first `limit`.
pub fn scan(
    client: &Client,
    table: &str,
    filters: &[String],
    limit: Option<usize>,
) -> anyhow::Result<Value> {
    let mut query: Vec<String> = Vec::new();
    for filter in filters {
        let (column, value) = filter
            .split_once('=')
            .with_context(|| format!("--where {filter:?} must be COLUMN=VALUE"))?;
        query.push(format!("{}={}", encode(column), encode(value)));
    }
    let mut rows = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let wanted = limit.map_or(1000, |l| (l - rows.len()).min(1000));
        let mut page_query = query.clone();
        page_query.push(format!("limit={wanted}"));
        if let Some(after) = &after {
            page_query.push(format!("after={}", encode(after)));
        }
        let page = client.api("GET", &rows_path(table), &page_query.join("&"), None)?;
        rows.extend(page["rows"].as_array().cloned().unwrap_or_default());
        after = match &page["next"] {
            Value::Null => None,
            Value::String(next) => Some(next.clone()),
            next => Some(next.to_string()),
        };
        if after.is_none() || limit.is_some_and(|l| rows.len() >= l) {
            break;
        }
    }
    Ok(json!({ "rows": rows }))
}
