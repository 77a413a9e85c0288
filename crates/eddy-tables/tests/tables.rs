//! Tables through the store's API: typed rows in real SQLite tables, one event per change
//! with the right images, clear errors that change nothing.

use eddy_bus::Bus;
use eddy_core::{ColumnName, EventKind, Lineage, RowChange, TableName};
use eddy_tables::*;
use serde_json::{Value, json};

struct Fixture {
    dir: tempfile::TempDir,
    bus: Bus,
    tables: TableStore,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::open(dir.path()).await.unwrap();
    let tables = TableStore::open(bus.clone()).await.unwrap();
    let f = Fixture { dir, bus, tables };
    f.tables.declare(orders_schema(&[])).await.unwrap();
    f
}

fn col(name: &str, ty: ColumnType, nullable: bool) -> Column {
    Column {
        name: ColumnName::new(name).unwrap(),
        ty,
        nullable,
    }
}

/// `orders(id integer key, customer text, total real, shipped boolean, meta json)` plus extras.
fn orders_schema(extra: &[Column]) -> TableSchema {
    let mut columns = vec![
        col("id", ColumnType::Integer, false),
        col("customer", ColumnType::Text, false),
        col("total", ColumnType::Real, true),
        col("shipped", ColumnType::Boolean, true),
        col("meta", ColumnType::Json, true),
    ];
    columns.extend_from_slice(extra);
    TableSchema::new(t("orders"), columns, vec![ColumnName::new("id").unwrap()]).unwrap()
}

fn t(name: &str) -> TableName {
    TableName::new(name).unwrap()
}

fn id(f: &Fixture, n: i64) -> Key {
    Key::new(&f.tables.schema(&t("orders")).unwrap(), vec![json!(n)]).unwrap()
}

async fn changes(f: &Fixture) -> Vec<(EventKind, RowChange)> {
    f.bus
        .read_after(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.kind, e.row_change().unwrap()))
        .collect()
}

#[tokio::test]
async fn every_change_records_its_images() {
    let f = fixture().await;
    let row =
        json!({"id": 1, "customer": "ann", "total": 10, "shipped": false, "meta": {"tags": ["a"]}});
    f.tables
        .insert(&t("orders"), vec![row], Lineage::root())
        .await
        .unwrap();
    f.tables
        .update(
            &t("orders"),
            id(&f, 1),
            json!({"shipped": true}),
            Lineage::root(),
        )
        .await
        .unwrap();
    f.tables
        .put(
            &t("orders"),
            json!({"id": 1, "customer": "bob"}),
            Lineage::root(),
        )
        .await
        .unwrap();
    let removed = f
        .tables
        .delete(&t("orders"), id(&f, 1), Lineage::root())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(removed.old.unwrap()["customer"], "bob");

    let events = changes(&f).await;
    let kinds: Vec<_> = events.iter().map(|e| e.0).collect();
    assert_eq!(
        kinds,
        [
            EventKind::RowInsert,
            EventKind::RowModify,
            EventKind::RowModify,
            EventKind::RowRemove
        ]
    );
    let insert = &events[0].1;
    assert_eq!(insert.keys, json!({"id": 1}).as_object().unwrap().clone());
    assert!(insert.old.is_none());
    assert_eq!(
        Value::Object(insert.new.clone().unwrap()),
        json!({"id": 1, "customer": "ann", "total": 10.0, "shipped": false, "meta": {"tags": ["a"]}})
    );
    let modify = &events[1].1;
    assert_eq!(modify.old.as_ref().unwrap()["shipped"], false);
    assert_eq!(modify.new.as_ref().unwrap()["shipped"], true);
    let replaced = &events[2].1;
    assert_eq!(
        replaced.new.as_ref().unwrap()["meta"],
        Value::Null,
        "put replaces the whole row"
    );
    let remove = &events[3].1;
    assert!(remove.new.is_none() && remove.old.is_some());
    assert!(
        f.tables
            .get(&t("orders"), &id(&f, 1))
            .await
            .unwrap()
            .is_none()
    );
    // Deleting a missing row changes nothing and records nothing.
    assert!(
        f.tables
            .delete(&t("orders"), id(&f, 1), Lineage::root())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(f.bus.last_seq(), 4);
}

#[tokio::test]
async fn writes_that_change_nothing_record_nothing() {
    let f = fixture().await;
    let row = json!({"id": 7, "customer": "ann", "total": 1.5});
    f.tables
        .put(&t("orders"), row.clone(), Lineage::root())
        .await
        .unwrap();
    let same = f
        .tables
        .put(&t("orders"), row, Lineage::root())
        .await
        .unwrap();
    assert_eq!(same.seq, None);
    let same = f
        .tables
        .update(
            &t("orders"),
            id(&f, 7),
            json!({"total": 1.5}),
            Lineage::root(),
        )
        .await
        .unwrap();
    assert_eq!(same.seq, None);
    assert_eq!(f.bus.last_seq(), 1);
}

#[tokio::test]
async fn a_batch_is_one_transaction() {
    let f = fixture().await;
    f.tables
        .insert(
            &t("orders"),
            vec![json!({"id": 2, "customer": "x"})],
            Lineage::root(),
        )
        .await
        .unwrap();
    let batch = vec![
        json!({"id": 3, "customer": "y"}),
        json!({"id": 2, "customer": "dup"}),
    ];
    let err = f
        .tables
        .insert(&t("orders"), batch, Lineage::root())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TableError::KeyExists(ref k) if k == "[2]"),
        "{err}"
    );
    assert!(
        f.tables
            .get(&t("orders"), &id(&f, 3))
            .await
            .unwrap()
            .is_none(),
        "the batch rolled back whole"
    );
    assert_eq!(f.bus.last_seq(), 1);
    let many: Vec<Value> = (100..1100)
        .map(|i| json!({"id": i, "customer": "c"}))
        .collect();
    assert_eq!(
        f.tables
            .insert(&t("orders"), many, Lineage::root())
            .await
            .unwrap()
            .len(),
        1000
    );
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"id": -i, "customer": "c"}))
        .collect();
    assert!(matches!(
        f.tables
            .insert(&t("orders"), too_many, Lineage::root())
            .await,
        Err(TableError::BatchTooLarge { .. })
    ));
    assert_eq!(f.bus.last_seq(), 1001);
}

#[tokio::test]
async fn bad_rows_get_clear_errors_and_change_nothing() {
    let f = fixture().await;
    let cases = [
        (
            json!({"id": "one", "customer": "a"}),
            "column \"id\" expects an integer",
        ),
        (json!({"id": 1.5, "customer": "a"}), "got a number (1.5)"),
        (
            json!({"id": 1, "customer": 5}),
            "column \"customer\" expects a string; got an integer (5)",
        ),
        (
            json!({"id": 1, "customer": "a", "shipped": "yes"}),
            "expects true or false",
        ),
        (
            json!({"id": 1, "customer": "a", "total": "3"}),
            "expects a number",
        ),
        (json!({"id": 1}), "column \"customer\" is required"),
        (
            json!({"id": 1, "customer": null}),
            "column \"customer\" is required",
        ),
        (json!({"customer": "a"}), "column \"id\" is required"),
        (
            json!({"id": 1, "customer": "a", "colour": "red"}),
            "has no column \"colour\"; its columns are id, customer, total, shipped, meta",
        ),
        (
            json!({"id": 1, "customer": "a", "x\"; DROP TABLE orders; --": 1}),
            "has no column",
        ),
        (json!([1, 2]), "must be a JSON object"),
        (
            json!({"id": 9_223_372_036_854_775_808u64, "customer": "a"}),
            "within 64 bits",
        ),
    ];
    for (row, expected) in cases {
        let err = f
            .tables
            .insert(&t("orders"), vec![row.clone()], Lineage::root())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{row}: {err}");
        let err = f
            .tables
            .put(&t("orders"), row.clone(), Lineage::root())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{row}: {err}");
    }
    let err = f
        .tables
        .insert(&t("missing"), vec![json!({})], Lineage::root())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "table \"missing\" does not exist");
    f.tables
        .put(
            &t("orders"),
            json!({"id": 1, "customer": "a"}),
            Lineage::root(),
        )
        .await
        .unwrap();
    let err = f
        .tables
        .update(&t("orders"), id(&f, 1), json!({"id": 2}), Lineage::root())
        .await
        .unwrap_err();
    assert!(matches!(err, TableError::KeyChange { .. }), "{err}");
    let err = f
        .tables
        .update(
            &t("orders"),
            id(&f, 5),
            json!({"total": 2}),
            Lineage::root(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no row with key [5]");
    let err = f
        .tables
        .update(
            &t("orders"),
            id(&f, 1),
            json!({"customer": null}),
            Lineage::root(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("required"), "{err}");
    let schema = f.tables.schema(&t("orders")).unwrap();
    assert!(Key::new(&schema, vec![json!("1")]).is_err());
    assert!(
        Key::new(&schema, vec![json!(1), json!(2)])
            .unwrap_err()
            .to_string()
            .contains("primary key of 1 columns (id)")
    );
    assert_eq!(
        f.bus.last_seq(),
        1,
        "only the one good put recorded an event"
    );
}

#[tokio::test]
async fn values_with_sql_in_them_are_just_values() {
    let f = fixture().await;
    let nasty = "'); DROP TABLE orders; --";
    f.tables
        .put(
            &t("orders"),
            json!({"id": 1, "customer": nasty}),
            Lineage::root(),
        )
        .await
        .unwrap();
    let page = f
        .tables
        .list(
            &t("orders"),
            &Query {
                filters: vec![("customer".into(), json!(nasty))],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    let err = f
        .tables
        .list(
            &t("orders"),
            &Query {
                filters: vec![("1=1; --".into(), json!(1))],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TableError::UnknownColumn { .. }), "{err}");
    let err = f
        .tables
        .list(
            &t("orders"),
            &Query {
                filters: vec![("meta".into(), json!({}))],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("holds JSON"), "{err}");
}

#[tokio::test]
async fn composite_keys_list_in_pages() {
    let f = fixture().await;
    let schema = TableSchema::new(
        t("events"),
        vec![
            col("tenant", ColumnType::Text, false),
            col("n", ColumnType::Integer, false),
            col("kind", ColumnType::Text, true),
        ],
        vec![
            ColumnName::new("tenant").unwrap(),
            ColumnName::new("n").unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(
        f.tables.declare(schema.clone()).await.unwrap(),
        Declared::Created
    );
    let rows: Vec<Value> = ["b", "a"]
        .iter()
        .flat_map(|tenant| (0..5).map(move |n| json!({"tenant": tenant, "n": n, "kind": if n % 2 == 0 { "even" } else { "odd" }})))
        .collect();
    f.tables
        .insert(&t("events"), rows, Lineage::root())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut query = Query {
        limit: 3,
        ..Default::default()
    };
    loop {
        let page = f.tables.list(&t("events"), &query).await.unwrap();
        seen.extend(
            page.rows
                .iter()
                .map(|r| format!("{}{}", r["tenant"].as_str().unwrap(), r["n"])),
        );
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "b3", "b4"]
    );
    let evens = Query {
        filters: vec![
            ("kind".into(), json!("even")),
            ("tenant".into(), json!("b")),
        ],
        ..Default::default()
    };
    let page = f.tables.list(&t("events"), &evens).await.unwrap();
    assert_eq!(
        page.rows
            .iter()
            .map(|r| r["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 2, 4]
    );
    let key = Key::new(&schema, vec![json!("a"), json!(3)]).unwrap();
    assert_eq!(key.canonical(), "[\"a\",3]");
    assert_eq!(
        f.tables.get(&t("events"), &key).await.unwrap().unwrap()["kind"],
        "odd"
    );
}

#[tokio::test]
async fn schemas_migrate_by_adding_nullable_columns_only() {
    let f = fixture().await;
    f.tables
        .put(
            &t("orders"),
            json!({"id": 1, "customer": "a"}),
            Lineage::root(),
        )
        .await
        .unwrap();
    assert_eq!(
        f.tables.declare(orders_schema(&[])).await.unwrap(),
        Declared::Unchanged
    );
    let added = orders_schema(&[col("status", ColumnType::Text, true)]);
    assert_eq!(
        f.tables.declare(added.clone()).await.unwrap(),
        Declared::Migrated {
            added: vec!["status".into()]
        }
    );
    f.tables
        .update(
            &t("orders"),
            id(&f, 1),
            json!({"status": "paid"}),
            Lineage::root(),
        )
        .await
        .unwrap();
    let err = f
        .tables
        .declare(orders_schema(&[col("status", ColumnType::Integer, true)]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table \"orders\" cannot change this way without losing data: column \"status\" changes type from text to integer; declare a new table instead"
    );
    let err = f.tables.declare(orders_schema(&[])).await.unwrap_err();
    assert!(
        err.to_string().contains("column \"status\" is removed"),
        "{err}"
    );
    let err = f
        .tables
        .declare(orders_schema(&[
            col("status", ColumnType::Text, true),
            col("x", ColumnType::Text, false),
        ]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("declare it nullable"), "{err}");

    // The schema and the rows survive a restart; the table is a real SQLite table.
    let Fixture {
        dir: tempdir,
        bus,
        tables,
    } = f;
    drop((bus, tables));
    let dir = tempdir.path();
    let bus = loop {
        match Bus::open(dir).await {
            Ok(bus) => break bus,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    let tables = TableStore::open(bus).await.unwrap();
    assert_eq!(*tables.schema(&t("orders")).unwrap(), added);
    let out = std::process::Command::new("sqlite3")
        .arg(dir.join(eddy_bus::DB_FILE))
        .arg("SELECT id, customer, status FROM orders")
        .output()
        .expect("sqlite3 is installed");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1|a|paid");
}

/// Schemas arrive as data (manifests, HTTP); hostile names are refused with a clear message
/// before any SQL exists.
#[test]
fn hostile_names_in_schemas_are_refused() {
    let schema = |name: &str, column: &str| json!({"name": name, "columns": [{"name": "id", "type": "integer"}, {"name": column, "type": "text", "nullable": true}], "primary_key": ["id"]});
    let cases = [
        (
            schema("orders; DROP TABLE x", "c"),
            "invalid table name \"orders; DROP TABLE x\"",
        ),
        (schema("orders\"", "c"), "invalid table name"),
        (schema("my orders", "c"), "invalid table name"),
        (schema("_eddy_journal", "c"), "invalid table name"),
        (schema("sqlite_master", "c"), "reserved by SQLite"),
        (schema("orders", "a\"b"), "invalid column name \"a\\\"b\""),
        (schema("orders", "x'); --"), "invalid column name"),
        (schema("orders", "has space"), "invalid column name"),
        (
            schema("orders", &"c".repeat(2000)),
            "column names are a letter followed by up to 62",
        ),
        (schema("orders", "ID"), "clash"),
        (
            json!({"name": "orders", "columns": [{"name": "id", "type": "uuid"}], "primary_key": ["id"]}),
            "unknown variant `uuid`",
        ),
        (
            json!({"name": "orders", "columns": [{"name": "id", "type": "integer"}], "primary_key": ["id"], "extra": 1}),
            "unknown field `extra`",
        ),
    ];
    for (input, expected) in cases {
        let err = serde_json::from_value::<TableSchema>(input.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(expected),
            "{err:?} should contain {expected:?}"
        );
        assert!(
            err.len() < 400,
            "the error quotes a bounded part of the input: {}",
            err.len()
        );
    }
}
