//! Several nodes, measured from outside: real `eddy serve` processes, a real PostgreSQL and a
//! real S3 server (SeaweedFS), as the scale-out tests start them.
//!
//! - **Events end to end**: `EVENTS` rows inserted through the table API (one durable write per
//!   request, `WRITERS` clients spread over the nodes), each triggering a warm Node.js no-op
//!   handler; timed from the first write until every delivery is done. The SQLite single node
//!   and 1, 2 and 3 nodes on PostgreSQL, in the same run. CPU per event is the whole machine's
//!   busy time (eddy, PostgreSQL, the handlers and this load generator) over the events.
//! - **PUTs**: 1 KiB objects (`CLIENTS` clients, payloads signed) and 16 MiB objects (2
//!   clients, `UNSIGNED-PAYLOAD`) on one node, with blobs on its disk and in the S3 bucket.
//!
//! Run with `cargo bench -p eddy-cli --bench scale_out`. Each figure is the median of `RUNS`
//! runs, the configurations alternating.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Eddy, Options, start};
use eddy_tests::bench::{machine, median, s3_request, small_body};
use eddy_tests::postgres::Postgres;
use eddy_tests::seaweed::{self, Seaweed};
use serde_json::json;

const RUNS: usize = 3;
const EVENTS: u64 = 2_000;
const WRITERS: u64 = 8;
const SMALL: u64 = 2_000;
const CLIENTS: u64 = 8;
const LARGE: usize = 16 << 20;
const LARGE_COUNT: u64 = 16;

const APP: &str = r#"
buckets: [{name: bench}]
tables: [{name: events, primary_key: id, columns: {id: integer}}]
functions:
  - {name: noop, runtime: nodejs, handler: index.handler, code: ./noop, concurrency: 8}
triggers:
  - {function: noop, source: table/events, events: [row:insert]}
"#;

/// Where the nodes' state goes.
#[derive(Clone, Copy, Debug)]
enum Storage {
    Sqlite,
    Postgres,
}

struct Servers {
    postgres: Postgres,
    seaweed: Seaweed,
    app: tempfile::TempDir,
    databases: std::cell::Cell<u32>,
}

impl Servers {
    /// A node on `storage` (a fresh database for each first node), blobs in the bucket if
    /// `shared_blobs`.
    fn node(&self, n: u32, database: Option<&str>, shared_blobs: bool) -> Eddy {
        let url = database.map(|d| self.postgres.url(d));
        let endpoint = self.seaweed.endpoint();
        let mut env: Vec<(&str, &str)> = vec![("EDDY_LOG", "warn")];
        if let Some(url) = &url {
            env.push(("EDDY_DATABASE_URL", url));
        }
        if shared_blobs {
            env.extend([
                ("EDDY_BLOBS", "s3://eddy-blobs/bench"),
                ("EDDY_BLOBS_ENDPOINT", endpoint.as_str()),
                ("EDDY_BLOBS_ACCESS_KEY_ID", seaweed::ACCESS_KEY_ID),
                ("EDDY_BLOBS_SECRET_ACCESS_KEY", seaweed::SECRET_ACCESS_KEY),
            ]);
        }
        let first = 2_200_000_000 + n * 10_000;
        let uids = format!("{first}-{}", first + 9_999);
        let manifest = self.app.path().join("app.yaml");
        start(
            tempfile::tempdir().unwrap(),
            manifest.to_str().unwrap(),
            Options {
                env: &env,
                args: &["--function-uids", &uids],
                user: None,
            },
        )
    }

    fn nodes(&self, storage: Storage, count: u32) -> Vec<Eddy> {
        let database = match storage {
            Storage::Sqlite => None,
            Storage::Postgres => {
                let n = self.databases.get() + 1;
                self.databases.set(n);
                Some(format!("bench{n}"))
            }
        };
        if let Some(name) = &database {
            self.postgres.create_database(name);
        }
        (1..=count)
            .map(|n| self.node(n, database.as_deref(), false))
            .collect()
    }
}

/// The machine's busy CPU time so far (all cores), from /proc/stat.
fn busy_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap())
        .collect();
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    let busy: u64 = fields[..8]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Duration::from_secs_f64(busy as f64 / clock_ticks() as f64)
}

/// The kernel's clock ticks per second, the unit of /proc/stat.
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    })
}

/// How many deliveries are done, from a node's metrics.
fn done(node: &Eddy) -> u64 {
    let metrics = node.get("/_eddy/metrics").body;
    let text = metrics.as_str().unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("eddy_deliveries{state=\"done\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Events per second end to end, and busy CPU milliseconds per event.
fn events(nodes: &[Eddy]) -> (f64, f64) {
    // Warm the handler on every node first: cold starts are not what this measures.
    for node in nodes {
        let warm = node.json("POST", "/2015-03-31/functions/noop/invocations", json!({}));
        assert_eq!(warm.status, 200, "{}", warm.body);
    }
    let (cpu, start) = (busy_cpu(), Instant::now());
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let node = &nodes[w as usize % nodes.len()];
            scope.spawn(move || {
                for id in (w..EVENTS).step_by(WRITERS as usize) {
                    let put =
                        node.json("POST", "/_eddy/v1/tables/events/rows", json!({ "id": id }));
                    assert_eq!(put.status, 201, "{}", put.body);
                }
            });
        }
    });
    while done(&nodes[0]) < EVENTS {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "deliveries stalled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = (busy_cpu() - cpu).as_secs_f64();
    (EVENTS as f64 / elapsed, cpu * 1000.0 / EVENTS as f64)
}

/// 1 KiB PUTs per second and 16 MiB PUT MB/s against one node.
fn puts(node: &Eddy) -> (f64, f64) {
    let address = node.base.trim_start_matches("http://").to_string();
    let agent = || -> ureq::Agent { ureq::Agent::config_builder().build().into() };
    let clients = |count: u64, clients: u64, body: &(dyn Fn(u64) -> Vec<u8> + Sync), unsigned| {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for c in 0..clients {
                let address = &address;
                scope.spawn(move || {
                    let agent = agent();
                    for i in (c..count).step_by(clients as usize) {
                        let path = format!("/bench/{unsigned}/{i}");
                        s3_request(&agent, address, "PUT", &path, &body(i), unsigned);
                    }
                });
            }
        });
        start.elapsed().as_secs_f64()
    };
    let small = SMALL as f64 / clients(SMALL, CLIENTS, &small_body, false);
    let large = |i: u64| vec![(i % 251) as u8; LARGE];
    let seconds = clients(LARGE_COUNT, 2, &large, true);
    (small, (LARGE_COUNT as usize * LARGE) as f64 / 1e6 / seconds)
}

fn main() {
    println!("{}", machine());
    let app = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(app.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(app.path().join("noop")).unwrap();
        std::fs::write(
            app.path().join("noop/index.js"),
            "exports.handler = async () => ({});\n",
        )
        .unwrap();
        std::fs::write(app.path().join("app.yaml"), APP).unwrap();
    }
    let servers = Servers {
        postgres: Postgres::start(),
        seaweed: Seaweed::start("eddy-blobs"),
        app,
        databases: std::cell::Cell::new(0),
    };
    let configurations = [
        ("SQLite, 1 node", Storage::Sqlite, 1),
        ("PostgreSQL, 1 node", Storage::Postgres, 1),
        ("PostgreSQL, 2 nodes", Storage::Postgres, 2),
        ("PostgreSQL, 3 nodes", Storage::Postgres, 3),
    ];
    let mut figures = vec![(Vec::new(), Vec::new()); configurations.len()];
    let mut put_figures = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for _ in 0..RUNS {
        for (i, (_, storage, count)) in configurations.iter().enumerate() {
            let nodes = servers.nodes(*storage, *count);
            let (rate, cpu) = events(&nodes);
            figures[i].0.push(rate);
            figures[i].1.push(cpu);
        }
        for (i, shared) in [false, true].into_iter().enumerate() {
            let node = servers.node(1, None, shared);
            let (small, large) = puts(&node);
            put_figures[i].0.push(small);
            put_figures[i].1.push(large);
        }
    }
    println!(
        "\nEvents end to end ({EVENTS} rows, {WRITERS} writers, Node.js no-op, median of {RUNS})\n"
    );
    println!("| nodes | events/s | CPU ms per event (whole machine) | events/s vs SQLite |");
    println!("| --- | --- | --- | --- |");
    let base = median(figures[0].0.clone());
    for ((what, _, _), (rates, cpus)) in configurations.iter().zip(&figures) {
        let rate = median(rates.clone());
        println!(
            "| {what} | {rate:.0} | {:.2} | {:.2}× |",
            median(cpus.clone()),
            rate / base
        );
    }
    println!("\nPUTs on one node (SQLite metadata), median of {RUNS}\n");
    println!("| | blobs on the node's disk | blobs in S3 (SeaweedFS) | ratio |");
    println!("| --- | --- | --- | --- |");
    let (disk, s3) = (&put_figures[0], &put_figures[1]);
    for (what, a, b) in [
        (format!("1 KiB PUT/s, {CLIENTS} clients"), &disk.0, &s3.0),
        ("16 MiB PUT MB/s, 2 clients".to_string(), &disk.1, &s3.1),
    ] {
        let (a, b) = (median(a.clone()), median(b.clone()));
        println!("| {what} | {a:.0} | {b:.0} | {:.2}× |", b / a);
    }
}
