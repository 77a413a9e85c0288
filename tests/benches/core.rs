//! Core write-path benchmarks, each against a baseline measured in the same run:
//!
//! - durable row inserts through the writer (one row per request, 64 concurrent requesters)
//!   against raw SQLite with one durable transaction per row;
//! - 1 KiB object puts against writing and fsyncing the same 1 KiB files by hand;
//! - a 64 MiB object put against one `write` + `fsync` of the same bytes.
//!
//! Run with `cargo bench -p eddy-tests --bench core`. Each figure is the median of `RUNS` runs,
//! the two sides alternating, every run in a fresh directory (this machine's disk slows file
//! creation for minutes after many deletions, so nothing is deleted between runs).

use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_core::{BucketName, Lineage, ObjectKey, TableName};
use eddy_objects::PutOptions;
use eddy_tables::ColumnType;
use eddy_tests::bench::{Dirs, machine, median, ms, percentile, rate, runtime, small_body};
use eddy_tests::{Eddy, schema};
use serde_json::json;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};

const RUNS: usize = 3;
const ROWS: u64 = 20_000;
const REQUESTERS: u64 = 64;
const SMALL_OBJECTS: u64 = 2_000;
const LARGE: usize = 64 * 1024 * 1024;

fn main() {
    let rt = runtime();
    let mut dirs = Dirs::new();
    let mut fresh = move || dirs.fresh();
    println!("{}", machine());
    // `cargo bench --bench core -- rows` runs only that part; likewise `small` and `large`.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    if wanted("rows") {
        bench_rows(&rt, &mut fresh);
    }
    if wanted("small") {
        bench_small(&rt, &mut fresh);
    }
    if wanted("large") {
        bench_large(&rt, &mut fresh);
    }
}

fn bench_rows(rt: &tokio::runtime::Runtime, fresh: &mut impl FnMut() -> std::path::PathBuf) {
    let (mut raw, mut eddy_rows, mut latencies) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        raw.push(rt.block_on(raw_sqlite_inserts(&fresh())));
        let (rate, lat) = rt.block_on(eddy_inserts(&fresh()));
        eddy_rows.push(rate);
        latencies.extend(lat);
    }
    latencies.sort();
    let (raw, eddy) = (median(raw), median(eddy_rows));
    println!("durable row inserts, 1 row per request:");
    println!("  raw SQLite, one transaction per row: {raw:>9.0} rows/s");
    println!(
        "  eddy writer, {REQUESTERS} requesters:        {eddy:>9.0} rows/s  ({:.1}x)  request latency p50 {:.2} ms, p99 {:.2} ms",
        eddy / raw,
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99))
    );
}

fn bench_small(rt: &tokio::runtime::Runtime, fresh: &mut impl FnMut() -> std::path::PathBuf) {
    let (mut files, mut puts) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        files.push(small_files(&fresh()));
        puts.push(rt.block_on(small_puts(&fresh())));
    }
    let (files, puts) = (median(files), median(puts));
    println!("1 KiB objects:");
    println!("  create + write + fsync + rename, one at a time: {files:>7.0} files/s");
    println!(
        "  eddy put_object, {REQUESTERS} requesters:             {puts:>7.0} puts/s  ({:.1}x)",
        puts / files
    );
}

fn bench_large(rt: &tokio::runtime::Runtime, fresh: &mut impl FnMut() -> std::path::PathBuf) {
    let data: Vec<u8> = (0..LARGE).map(|i| (i * 31 % 251) as u8).collect();
    let data = Arc::new(data);
    let (mut plain, mut large) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        plain.push(write_fsync(&fresh(), &data));
        large.push(rt.block_on(large_put(&fresh(), data.clone())));
    }
    let (plain, large) = (median(plain), median(large));
    println!("64 MiB object:");
    println!("  write + fsync:            {plain:>7.0} MB/s");
    println!(
        "  eddy put_object (hashed): {large:>7.0} MB/s  ({:.2}x)",
        large / plain
    );
}

async fn raw_sqlite_inserts(dir: &Path) -> f64 {
    let options = SqliteConnectOptions::from_str("sqlite://")
        .unwrap()
        .filename(dir.join("raw.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL) STRICT")
        .execute(&mut conn)
        .await
        .unwrap();
    // The baseline gets the same budget of time as eddy would need for ROWS, but as it is much
    // slower, a quarter of the rows is enough for a stable rate.
    let n = ROWS / 4;
    let start = Instant::now();
    for i in 0..n as i64 {
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (id, v) VALUES (?, ?)")
            .bind(i)
            .bind(i)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn eddy_inserts(dir: &Path) -> (f64, Vec<Duration>) {
    let eddy = Eddy::open(dir).await;
    let table = TableName::new("t").unwrap();
    let schema = schema(
        "t",
        &[("id", ColumnType::Integer), ("v", ColumnType::Integer)],
    );
    eddy.tables.declare(schema).await.unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..REQUESTERS {
        let (tables, table) = (eddy.tables.clone(), table.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in (r..ROWS).step_by(REQUESTERS as usize) {
                let t = Instant::now();
                tables
                    .insert(&table, vec![json!({"id": i, "v": i})], Lineage::root())
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    (ROWS as f64 / start.elapsed().as_secs_f64(), latencies)
}

fn small_files(dir: &Path) -> f64 {
    let body = [7u8; 1024];
    let start = Instant::now();
    for i in 0..SMALL_OBJECTS {
        let tmp = dir.join(format!("{i}.tmp"));
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(&body).unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp, dir.join(format!("{i}"))).unwrap();
    }
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
    SMALL_OBJECTS as f64 / start.elapsed().as_secs_f64()
}

async fn small_puts(dir: &Path) -> f64 {
    let eddy = Eddy::open(dir).await;
    let bucket = BucketName::new("bench").unwrap();
    eddy.objects.create_bucket(&bucket).await.unwrap();
    let objects = eddy.objects.clone();
    rate(REQUESTERS, SMALL_OBJECTS, move |i| {
        let (objects, bucket) = (objects.clone(), bucket.clone());
        async move {
            let key = ObjectKey::new(format!("obj/{i}")).unwrap();
            let body = small_body(i);
            objects
                .put_object(&bucket, &key, &mut &body[..], PutOptions::default())
                .await
                .unwrap();
        }
    })
    .await
}

fn write_fsync(dir: &Path, data: &[u8]) -> f64 {
    let start = Instant::now();
    let mut f = std::fs::File::create(dir.join("plain.bin")).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
    data.len() as f64 / 1e6 / start.elapsed().as_secs_f64()
}

async fn large_put(dir: &Path, data: Arc<Vec<u8>>) -> f64 {
    let eddy = Eddy::open(dir).await;
    let bucket = BucketName::new("bench").unwrap();
    eddy.objects.create_bucket(&bucket).await.unwrap();
    let start = Instant::now();
    let key = ObjectKey::new("large.bin").unwrap();
    eddy.objects
        .put_object(&bucket, &key, &mut data.as_slice(), PutOptions::default())
        .await
        .unwrap();
    data.len() as f64 / 1e6 / start.elapsed().as_secs_f64()
}
