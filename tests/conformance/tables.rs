//! Table pages: a keyset walk in primary-key order sees every row once, whatever the page
//! size, for integer and compound keys, and filters hold on every page.

use eddy_core::{Lineage, TableName};
use eddy_tables::{Query, TableSchema};
use serde_json::{Value, json};

use super::Stores;

fn schema(yaml_json: Value) -> TableSchema {
    serde_json::from_value(yaml_json).unwrap()
}

async fn walk(
    stores: &Stores,
    table: &TableName,
    limit: usize,
    filters: Vec<(String, Value)>,
) -> Vec<Value> {
    let mut query = Query {
        filters,
        limit,
        after: None,
    };
    let mut rows = Vec::new();
    loop {
        let page = stores.tables.list(table, &query).await.unwrap();
        assert!(page.rows.len() <= limit);
        rows.extend(page.rows.into_iter().map(Value::Object));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return rows,
        }
    }
}

pub async fn keyset_pages_cover_every_row_once_in_key_order(stores: Stores) {
    let tables = &stores.tables;
    tables
        .declare(schema(json!({
            "name": "lines",
            "columns": [
                {"name": "order_id", "type": "integer", "nullable": false},
                {"name": "n", "type": "integer", "nullable": false},
                {"name": "colour", "type": "text", "nullable": true}
            ],
            "primary_key": ["order_id", "n"]
        })))
        .await
        .unwrap();
    let table = TableName::new("lines").unwrap();
    // Inserted out of order, with negative and large keys.
    let mut rows = Vec::new();
    for order_id in [3i64, -2, 1_000_000_000_000, 1] {
        for n in [2i64, 0, 1] {
            let colour = if (order_id + n) % 2 == 0 {
                "red"
            } else {
                "blue"
            };
            rows.push(json!({"order_id": order_id, "n": n, "colour": colour}));
        }
    }
    tables
        .insert(&table, rows.clone(), Lineage::root())
        .await
        .unwrap();
    let key = |r: &Value| (r["order_id"].as_i64().unwrap(), r["n"].as_i64().unwrap());
    let mut expected: Vec<Value> = rows;
    expected.sort_by_key(key);
    for limit in [1, 2, 5, 100] {
        assert_eq!(
            walk(&stores, &table, limit, vec![]).await,
            expected,
            "pages of {limit}"
        );
    }
    let red: Vec<Value> = expected
        .iter()
        .filter(|r| r["colour"] == "red")
        .cloned()
        .collect();
    let filtered = walk(&stores, &table, 2, vec![("colour".into(), json!("red"))]).await;
    assert_eq!(filtered, red, "a filter holds on every page");
}
