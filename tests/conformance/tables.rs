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

/// Every column type round-trips (JSON of any shape, booleans, reals to the last bit, nulls),
/// updates keep the key and change the rest, deletes remove, and filters on each scalar type
/// hold.
pub async fn every_column_type_round_trips_and_changes(stores: Stores) {
    let tables = &stores.tables;
    let schema = schema(json!({
        "name": "things",
        "columns": [
            {"name": "id", "type": "text", "nullable": false},
            {"name": "n", "type": "integer", "nullable": true},
            {"name": "x", "type": "real", "nullable": true},
            {"name": "ok", "type": "boolean", "nullable": true},
            {"name": "doc", "type": "json", "nullable": true}
        ],
        "primary_key": ["id"]
    }));
    tables.declare(schema.clone()).await.unwrap();
    let table = TableName::new("things").unwrap();
    let rows = [
        json!({"id": "a", "n": -5, "x": 1.5, "ok": true, "doc": {"tags": ["x", "y"], "deep": {"k": null}}}),
        json!({"id": "b", "n": 9_007_199_254_740_993i64, "x": -0.25, "ok": false, "doc": [1, "two", 3.5]}),
        json!({"id": "c", "n": null, "x": null, "ok": null, "doc": "just a string"}),
        json!({"id": "é", "n": 0, "x": 0.0, "ok": true, "doc": null}),
        // Floats whose shortest text takes 17 digits, or at the ends of the range: each comes
        // back the float it was, from a `real` column and from inside a `json` one.
        json!({"id": "f", "n": 1, "x": 1.1362275116276523e-8, "ok": false,
               "doc": [0.30000000000000004, 1.862392953319225e-60, 5e-324, 1.7976931348623157e308]}),
    ];
    tables
        .insert(&table, rows.to_vec(), Lineage::root())
        .await
        .unwrap();
    for row in &rows {
        let key = eddy_tables::Key::new(&schema, vec![row["id"].clone()]).unwrap();
        let found = tables.get(&table, &key).await.unwrap().unwrap();
        assert_eq!(Value::Object(found), *row, "round trip of {}", row["id"]);
    }
    let only = |column: &str, value: Value| vec![(column.to_string(), value)];
    let ids = |rows: Vec<Value>| -> Vec<String> {
        rows.iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(walk(&stores, &table, 10, only("ok", json!(true))).await),
        ["a", "é"]
    );
    assert_eq!(
        ids(walk(&stores, &table, 10, only("x", json!(-0.25))).await),
        ["b"]
    );
    assert_eq!(
        ids(walk(&stores, &table, 10, only("n", json!(null))).await),
        ["c"]
    );

    let key = |id: &str| eddy_tables::Key::new(&schema, vec![json!(id)]).unwrap();
    tables
        .update(
            &table,
            key("a"),
            json!({"doc": {"changed": true}, "ok": false}),
            Lineage::root(),
        )
        .await
        .unwrap();
    let a = tables.get(&table, &key("a")).await.unwrap().unwrap();
    assert_eq!(a["doc"], json!({"changed": true}));
    assert_eq!((a["ok"].clone(), a["n"].clone()), (json!(false), json!(-5)));
    tables
        .put(
            &table,
            json!({"id": "b", "doc": {"replaced": 1}}),
            Lineage::root(),
        )
        .await
        .unwrap();
    let b = tables.get(&table, &key("b")).await.unwrap().unwrap();
    assert_eq!(
        (b["doc"].clone(), b["n"].clone()),
        (json!({"replaced": 1}), Value::Null)
    );
    assert!(
        tables
            .delete(&table, key("c"), Lineage::root())
            .await
            .unwrap()
            .is_some()
    );
    assert!(tables.get(&table, &key("c")).await.unwrap().is_none());
    assert_eq!(
        ids(walk(&stores, &table, 1, vec![]).await),
        ["a", "b", "f", "é"]
    );
}
