//! Several `eddy serve` nodes as one: each on its own folder, all on one real PostgreSQL and
//! one real S3 store (SeaweedFS's `weed mini`), started and stopped by the tests. What a write
//! on one node does is seen on every node; triggers fire once across the nodes; a dead node's
//! deliveries, and the duties it led, move to the others; PostgreSQL and the blob store can go
//! away and come back under running nodes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use eddy_tests::postgres::Postgres;
use eddy_tests::seaweed::{self, Seaweed};
use serde_json::{Value, json};

const BUCKET: &str = "eddy-blobs";

/// One database, one blob store and one app for the nodes of a test.
struct Cluster {
    postgres: Postgres,
    seaweed: Seaweed,
    /// The app's manifest and code, at the same path for every node, as a deployment puts
    /// them (the stored app names its code by path).
    app: tempfile::TempDir,
}

impl Cluster {
    fn start(manifest: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let app = tempfile::tempdir().unwrap();
        std::fs::set_permissions(app.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(app.path().join("app.yaml"), manifest).unwrap();
        Self {
            postgres: Postgres::start(),
            seaweed: Seaweed::start(BUCKET),
            app,
        }
    }

    /// Starts node `n` in a folder of its own (its data, its log), with function user ids of
    /// its own (as two nodes on one host must have) and a short lease grace, so a dead node's
    /// deliveries move within seconds.
    /// The variables that put a node on this database and on the bucket under `prefix`.
    fn storage_env(&self, prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("EDDY_DATABASE_URL", self.postgres.url("eddy")),
            ("EDDY_BLOBS", format!("s3://{BUCKET}/{prefix}")),
            ("EDDY_BLOBS_ENDPOINT", self.seaweed.endpoint()),
            ("EDDY_BLOBS_ACCESS_KEY_ID", seaweed::ACCESS_KEY_ID.into()),
            (
                "EDDY_BLOBS_SECRET_ACCESS_KEY",
                seaweed::SECRET_ACCESS_KEY.into(),
            ),
        ]
    }

    /// Starts eddy in `dir` on `manifest` with this storage (blobs under `prefix`).
    fn start_node(
        &self,
        dir: tempfile::TempDir,
        manifest: &str,
        prefix: &str,
        args: &[&str],
    ) -> Eddy {
        let env = self.storage_env(prefix);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        start(
            dir,
            manifest,
            Options {
                env: &env,
                args,
                user: None,
            },
        )
    }

    fn node(&self, n: u32) -> Eddy {
        let dir = tempfile::tempdir().unwrap();
        let manifest = self.app.path().join("app.yaml");
        let first = 2_100_000_000 + n * 10_000;
        let (id, uids) = (format!("node-{n}"), format!("{first}-{}", first + 9_999));
        let args = [
            "--node-id",
            &id,
            "--function-uids",
            &uids,
            "--lease-grace",
            "2s",
        ];
        self.start_node(dir, manifest.to_str().unwrap(), "cluster", &args)
    }

    fn nodes(&self, count: u32) -> Vec<Eddy> {
        (1..=count).map(|n| self.node(n)).collect()
    }
}

const APP: &str = r#"
buckets: [{name: inbox}, {name: outbox}]
tables:
  - {name: orders, primary_key: id, columns: {id: integer, status: text}}
  - {name: jobs, primary_key: id, columns: {id: integer}}
  - {name: tasks, primary_key: id, columns: {id: integer}}
functions:
  - {name: audit, runtime: exec, command: [sh, -c, 'cat >&2']}
  - {name: slow, runtime: exec, command: [sh, -c, 'sleep 0.3; cat >&2'], concurrency: 2, timeout: 5s}
  - {name: long, runtime: exec, command: [sh, -c, 'sleep 1; cat >&2'], timeout: 5s}
  - name: keys
    runtime: exec
    command: [sh, -c, 'printf "{\"id\":\"%s\",\"secret\":\"%s\"}" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"']
    role: [{allow: [objects:read], resources: [bucket/inbox]}]
triggers:
  - {function: audit, source: bucket/inbox, events: ['object:created:*']}
  - {function: audit, source: table/orders, events: [row:insert, row:modify], ordering: per_key}
  - {function: slow, source: table/jobs, events: [row:insert]}
  - {function: long, source: table/tasks, events: [row:insert]}
"#;

/// Every invocation of `function` recorded so far (the records are shared: any node answers).
fn invocations(node: &Eddy, function: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = node
            .get(&format!(
                "/_eddy/v1/invocations?function={function}&after={after}&limit=1000"
            ))
            .body;
        let runs = page["invocations"].as_array().cloned().unwrap_or_default();
        if runs.is_empty() {
            return all;
        }
        all.extend(runs);
        after = page["next"].as_i64().unwrap();
    }
}

/// How many successful invocations each journal event had.
fn successes_per_event(node: &Eddy, function: &str) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for run in invocations(node, function) {
        if run["outcome"] == "success" {
            *seen
                .entry(run["event_sequence"].as_u64().unwrap())
                .or_default() += 1;
        }
    }
    seen
}

/// The journal's events of `source`, in journal order.
fn events(node: &Eddy, source: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = node.get(&format!("/_eddy/v1/events?after={after}&limit=1000"));
        assert_eq!(page.status, 200, "{}", page.body);
        let events = page.body["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return all;
        }
        after = page.body["next"].as_u64().unwrap();
        all.extend(events.into_iter().filter(|e| e["source"] == source));
    }
}

/// Waits until every event of `source` has had a successful invocation of `function`.
fn wait_until_delivered(node: &Eddy, source: &str, function: &str) -> BTreeMap<u64, usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let wanted: BTreeSet<u64> = events(node, source)
            .iter()
            .map(|e| e["sequence"].as_u64().unwrap())
            .collect();
        let seen = successes_per_event(node, function);
        if !wanted.is_empty() && wanted.iter().all(|seq| seen.contains_key(seq)) {
            return seen
                .into_iter()
                .filter(|(seq, _)| wanted.contains(seq))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "events of {source} never delivered to {function}: wanted {wanted:?}, ran {seen:?}; \
             other outcomes: {:?}; dead letters: {}; the node logged:\n{}",
            invocations(node, function)
                .iter()
                .filter(|run| run["outcome"] != "success")
                .collect::<Vec<_>>(),
            node.get(&format!("/_eddy/v1/dead-letters?function={function}"))
                .body,
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn health(node: &Eddy) -> Value {
    node.get("/_eddy/health").body
}

fn node_name(node: &Eddy) -> String {
    health(node)["node"].as_str().unwrap().to_string()
}

/// The one node that leads the singleton duties, once exactly one does.
fn leader(nodes: &[&Eddy]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leading: Vec<usize> = (0..nodes.len())
            .filter(|&i| health(nodes[i])["leading"] == true)
            .collect();
        if let [one] = leading[..] {
            return one;
        }
        assert!(
            Instant::now() < deadline,
            "expected one leading node, found {leading:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn insert(node: &Eddy, table: &str, row: Value) {
    let put = node.json("POST", &format!("/_eddy/v1/tables/{table}/rows"), row);
    assert_eq!(put.status, 201, "{}", put.body);
}

#[test]
fn three_nodes_serve_one_app_as_one() {
    let cluster = Cluster::start(APP);
    let nodes = cluster.nodes(3);
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    let ids: BTreeSet<String> = nodes
        .iter()
        .map(|n| health(n)["node"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "each node has a name of its own: {ids:?}");
    for node in &nodes {
        assert_eq!(
            health(node)["app_version"],
            1,
            "the first node stored the app; the others found it unchanged"
        );
    }
    leader(&[a, b, c]);

    // An object written through one node is read through the others: its bytes are in the
    // shared bucket, its metadata in the shared database.
    let put = a.call("PUT", "/inbox/hello.txt", &[], Some("hello from a"));
    assert_eq!(put.status, 200, "{}", put.body);
    for node in [b, c] {
        let got = node.get("/inbox/hello.txt");
        assert_eq!(got.body, json!("hello from a"));
    }
    assert!(
        cluster
            .postgres
            .psql("eddy", "SELECT count(*) FROM _eddy_objects")
            .starts_with('1'),
        "psql reads eddy's state"
    );

    // A console session made through one node is good on the others (behind a load balancer):
    // it is sealed with the key's secret, which every node knows, not kept in a node's memory.
    let cookie = console_cookie(&a.base);
    let browser = ureq::Agent::new_with_defaults();
    for node in [b, c] {
        let mut page = browser
            .get(format!("{}/_eddy/console/buckets/inbox", node.base))
            .header("cookie", &cookie)
            .call()
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let text = page.body_mut().read_to_string().unwrap();
        assert!(text.contains("hello.txt"), "{text}");
    }

    // Rows written through every node, with concurrent writers on the same keys: each
    // writer's changes to a key are journaled in the order they were acknowledged, and the
    // per-key trigger runs them in journal order, one at a time, across the nodes.
    std::thread::scope(|scope| {
        for (w, node) in nodes.iter().enumerate() {
            scope.spawn(move || {
                for round in 0..10 {
                    for id in 1..=3 {
                        let status = format!("w{w}-{round}");
                        let put = node.json(
                            "PUT",
                            &format!("/_eddy/v1/tables/orders/rows/{id}"),
                            json!({ "status": status }),
                        );
                        assert!(put.status == 200 || put.status == 201, "{}", put.body);
                    }
                }
            });
        }
    });
    let journal = events(c, "table/orders");
    assert_eq!(journal.len(), 90);
    for id in 1..=3 {
        for w in 0..3 {
            let rounds: Vec<u64> = journal
                .iter()
                .filter(|e| e["payload"]["keys"]["id"] == id)
                .filter_map(|e| {
                    let status = e["payload"]["new"]["status"].as_str()?;
                    let (writer, round) = status.split_once('-')?;
                    (writer == format!("w{w}")).then(|| round.parse().unwrap())
                })
                .collect();
            assert_eq!(rounds, (0..10).collect::<Vec<_>>(), "key {id}, writer {w}");
        }
    }
    let delivered = wait_until_delivered(b, "table/orders", "audit");
    assert!(
        delivered.values().all(|&n| n == 1),
        "each event ran once: {delivered:?}"
    );
    let runs = invocations(a, "audit");
    for id in 1..=3 {
        let keyed: BTreeSet<u64> = journal
            .iter()
            .filter(|e| e["payload"]["keys"]["id"] == id)
            .map(|e| e["sequence"].as_u64().unwrap())
            .collect();
        let mut previous_end = f64::MIN;
        let mut order: Vec<(f64, u64, f64)> = runs
            .iter()
            .filter(|r| keyed.contains(&r["event_sequence"].as_u64().unwrap()))
            .map(|r| {
                let start = r["start_ms"].as_f64().unwrap();
                (
                    start,
                    r["event_sequence"].as_u64().unwrap(),
                    start + r["duration_ms"].as_f64().unwrap(),
                )
            })
            .collect();
        order.sort_by(|x, y| x.partial_cmp(y).unwrap());
        let sequences: Vec<u64> = order.iter().map(|(_, seq, _)| *seq).collect();
        assert!(
            sequences.is_sorted(),
            "key {id} ran in journal order: {sequences:?}"
        );
        for (start, _, end) in order {
            // Start times are whole milliseconds: a millisecond of slack.
            assert!(start + 1.0 >= previous_end, "key {id}: one at a time");
            previous_end = end;
        }
    }
    assert_eq!(wait_until_delivered(c, "bucket/inbox", "audit").len(), 1);

    // `concurrency: 2` holds across the nodes: twelve jobs written through all three never
    // run three at once.
    for id in 0..12 {
        insert(&nodes[id % 3], "jobs", json!({ "id": id }));
    }
    wait_until_delivered(a, "table/jobs", "slow");
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for run in invocations(a, "slow") {
        let start = run["start_ms"].as_f64().unwrap();
        let end = start + run["duration_ms"].as_f64().unwrap();
        // A millisecond of slack at each end for whole-millisecond start times.
        edges.push((start + 1.0, 1));
        edges.push((end - 1.0, -1));
    }
    edges.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let (mut running, mut most) = (0, 0);
    for (_, step) in edges {
        running += step;
        most = most.max(running);
    }
    assert_eq!(
        most, 2,
        "slow ran at most (and, with 12 jobs, exactly) two at once"
    );

    // Credentials issued to a function on one node are accepted by the others, and hold the
    // function to its role there too.
    let issued = a.json("POST", "/2015-03-31/functions/keys/invocations", json!({}));
    assert_eq!(issued.status, 200, "{}", issued.body);
    let (id, secret) = (
        issued.body["id"].as_str().unwrap(),
        issued.body["secret"].as_str().unwrap(),
    );
    let out = boto3(
        c,
        &format!(
            r#"
s3 = client("s3", key="{id}", secret="{secret}")
out["read"] = s3.get_object(Bucket="inbox", Key="hello.txt")["Body"].read().decode()
out["write"] = error(s3.put_object, Bucket="outbox", Key="x", Body=b"x")
"#
        ),
    );
    assert_eq!(out["read"], "hello from a");
    assert_eq!(out["write"], json!([403, "AccessDenied"]));

    // A deploy through one node is in effect on all of them.
    let manifest = APP.replacen(
        "functions:\n",
        "functions:\n  - {name: late, runtime: exec, command: [cat]}\n",
        1,
    );
    let deployed = cluster.app.path().join("deploy.yaml");
    std::fs::write(&deployed, manifest).unwrap();
    cli_ok(a, &["deploy", deployed.to_str().unwrap()]);
    for node in [b, c] {
        node.wait_for("the deployed app", |n| {
            n.json(
                "POST",
                "/2015-03-31/functions/late/invocations",
                json!({"deployed": "through a"}),
            )
            .body
                == json!({"deployed": "through a"})
        });
    }
}

#[test]
fn a_killed_node_leaves_nothing_behind() {
    let cluster = Cluster::start(APP);
    let mut nodes = cluster.nodes(3);
    let first_leader = node_name(&nodes[leader(&nodes.iter().collect::<Vec<_>>())]);
    for id in 0..30 {
        insert(&nodes[id % 3], "tasks", json!({ "id": id }));
    }
    // The node running a task dies (SIGKILL) in the middle of it; then the leader, if that
    // was another node. The one left must finish everything.
    let deadline = Instant::now() + Duration::from_secs(30);
    let holder = loop {
        let holder = cluster.postgres.psql(
            "eddy",
            "SELECT lease_node FROM _eddy_deliveries WHERE state = 'leased' LIMIT 1",
        );
        if !holder.is_empty() {
            break holder;
        }
        assert!(Instant::now() < deadline, "no node ever leased a task");
        std::thread::sleep(Duration::from_millis(10));
    };
    for name in [holder, first_leader.clone()] {
        if let Some(i) = nodes.iter().position(|n| node_name(n) == name) {
            let mut dead = nodes.remove(i);
            dead.child.kill().unwrap();
            dead.child.wait().unwrap();
        }
    }

    let survivors: Vec<&Eddy> = nodes.iter().collect();
    let new_leader = leader(&survivors);
    assert_ne!(
        node_name(survivors[new_leader]),
        first_leader,
        "the lead moved"
    );
    // Every task runs, the dead node's leased ones once its leases expire (timeout 5 s plus a
    // grace of 2 s); a task may have run twice (its run ended with the node), never not at all.
    let delivered = wait_until_delivered(survivors[0], "table/tasks", "long");
    assert_eq!(delivered.len(), 30);
    for id in 0..30 {
        assert_eq!(
            survivors[survivors.len() - 1]
                .get(&format!("/_eddy/v1/tables/tasks/rows/{id}"))
                .status,
            200
        );
    }
}

#[test]
fn a_schedule_runs_once_on_whichever_node_leads() {
    // Due ten whole seconds after PostgreSQL and the blob store are up; the leader dies
    // before then (or, on a slow machine, after: a run is missed or made, never twice), and
    // the other node runs it.
    let cluster = Cluster::start(APP);
    let due_ms = (eddy_bus::now_ms() / 1000 + 10) * 1000;
    let due = &eddy_core::time::iso8601_millis(due_ms)[..19];
    std::fs::write(
        cluster.app.path().join("app.yaml"),
        format!("{APP}schedules:\n  - {{name: soon, function: audit, expression: 'at({due})'}}\n"),
    )
    .unwrap();
    let mut nodes = cluster.nodes(2);
    let first = leader(&nodes.iter().collect::<Vec<_>>());
    nodes[first].wait_for("the schedule to be kept", |n| {
        n.get("/_eddy/v1/schedules").body["schedules"][0]["last_run_ms"].is_i64()
    });
    let mut dead = nodes.remove(first);
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let survivor = &nodes[0];
    assert_eq!(leader(&[survivor]), 0, "the lead moved");
    let delivered = wait_until_delivered(survivor, "schedule/soon", "audit");
    assert_eq!(delivered.len(), 1, "one run: {delivered:?}");
    let run = &events(survivor, "schedule/soon")[0];
    assert_eq!(run["payload"]["time"], format!("{due}Z"));
}

#[test]
fn nodes_ride_through_database_and_blob_store_outages() {
    let mut cluster = Cluster::start(APP);
    let mut nodes = cluster.nodes(2);
    let [a, b] = [&nodes[0], &nodes[1]];

    // PostgreSQL crashes (no checkpoint) and comes back while a writer runs: writes fail
    // meanwhile, the nodes reconnect by themselves, and every acknowledged write is there.
    let acknowledged = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut acknowledged = Vec::new();
            let mut refused = 0;
            let mut id = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while acknowledged.len() < 60 || refused == 0 {
                assert!(Instant::now() < deadline, "the writer never got through");
                id += 1;
                let put = a.json(
                    "PUT",
                    &format!("/_eddy/v1/tables/orders/rows/{id}"),
                    json!({"status": "new"}),
                );
                match put.status {
                    200 | 201 => acknowledged.push(id),
                    503 => refused += 1,
                    other => panic!("unexpected {other}: {}\n{}", put.body, a.log()),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            acknowledged
        });
        std::thread::sleep(Duration::from_millis(500));
        cluster.postgres.stop_immediately();
        std::thread::sleep(Duration::from_secs(2));
        cluster.postgres.start_again();
        writer.join().unwrap()
    });
    for node in &nodes {
        node.wait_for("the node to be healthy again", |n| {
            health(n)["status"] == "ok"
        });
    }
    for id in &acknowledged {
        assert_eq!(
            b.get(&format!("/_eddy/v1/tables/orders/rows/{id}")).status,
            200,
            "row {id} was acknowledged"
        );
    }
    wait_until_delivered(b, "table/orders", "audit");

    // The blob store goes away: a PUT too large to keep inline is refused with a 503 that says
    // why, and nothing of it is stored, while small objects (kept in the database) still go
    // through; when the store is back, large PUTs go through again.
    cluster.seaweed.kill();
    let large = "x".repeat(eddy_objects::DEFAULT_INLINE_BYTES as usize + 1);
    let refused = a.call("PUT", "/inbox/lost.txt", &[], Some(&large));
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.body.to_string().contains("blob store"),
        "{}",
        refused.body
    );
    assert_eq!(b.get("/inbox/lost.txt").status, 404);
    let small = a.call("PUT", "/inbox/small.txt", &[], Some("kept inline"));
    assert_eq!(small.status, 200, "{}", small.body);
    assert_eq!(b.get("/inbox/small.txt").body, json!("kept inline"));
    cluster.seaweed.restart(BUCKET);
    a.wait_for("PUTs to go through again", |n| {
        n.call("PUT", "/inbox/back.txt", &[], Some(&large)).status == 200
    });
    assert_eq!(b.get("/inbox/back.txt").body, json!(large));
    assert_eq!(b.get("/inbox/lost.txt").status, 404);
    for node in &mut nodes {
        assert!(
            node.child.try_wait().unwrap().is_none(),
            "no node stopped:\n{}",
            node.log()
        );
    }
}

/// `eddy serve` with `env` added, expected to exit at start: what it printed.
fn refused_start(cluster: &Cluster, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args([
            "serve",
            cluster.app.path().join("app.yaml").to_str().unwrap(),
        ])
        .args(["--data-dir", "data", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "eddy started:\n{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "eddy never listens half-connected"
    );
    stderr
}

#[test]
fn a_node_that_cannot_use_its_storage_says_why_and_does_not_start() {
    let cluster = Cluster::start(APP);
    let socket = cluster.postgres.socket_dir().display().to_string();
    let endpoint = cluster.seaweed.endpoint();
    let database = cluster.postgres.url("eddy");
    let blobs = |bucket: &'static str, secret: &'static str, endpoint: &str| {
        vec![
            ("EDDY_DATABASE_URL", database.clone()),
            ("EDDY_BLOBS", format!("s3://{bucket}")),
            ("EDDY_BLOBS_ENDPOINT", endpoint.to_string()),
            (
                "EDDY_BLOBS_ACCESS_KEY_ID",
                seaweed::ACCESS_KEY_ID.to_string(),
            ),
            ("EDDY_BLOBS_SECRET_ACCESS_KEY", secret.to_string()),
        ]
    };
    let refused = |env: Vec<(&str, String)>| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        refused_start(&cluster, &env)
    };
    let cases = [
        (
            vec![("EDDY_DATABASE_URL", "mysql://eddy@db/eddy".to_string())],
            "is not a PostgreSQL URL",
        ),
        (
            vec![(
                "EDDY_DATABASE_URL",
                format!("postgres://eddy@localhost/missing?host={socket}"),
            )],
            "\"missing\" does not exist",
        ),
        (
            vec![(
                "EDDY_DATABASE_URL",
                "postgres://eddy:hunter2@localhost/eddy?host=/nonexistent".to_string(),
            )],
            "eddy@localhost/eddy",
        ),
        (
            blobs("no-such-bucket", seaweed::SECRET_ACCESS_KEY, &endpoint),
            "no-such-bucket",
        ),
        (
            blobs(BUCKET, "a-wrong-secret", &endpoint),
            "check the access key, its secret",
        ),
        (
            blobs(BUCKET, seaweed::SECRET_ACCESS_KEY, "http://127.0.0.1:9"),
            "cannot be reached",
        ),
    ];
    for (env, expected) in cases {
        let said = refused(env.clone());
        assert!(said.contains(expected), "{env:?}: {said}");
        assert!(
            !said.contains("hunter2"),
            "passwords are never printed: {said}"
        );
    }
    assert_eq!(
        cluster.postgres.psql(
            "eddy",
            "SELECT count(*) FROM pg_tables WHERE tablename = '_eddy_objects'"
        ),
        "1",
        "the database was migrated by the start that got as far as the blob store"
    );
}

const SINGLE: &str = r#"
buckets: [{name: inbox}]
tables:
  - {name: things, primary_key: id, columns: {id: integer, name: text, doc: json, flag: boolean, score: real}}
functions:
  - {name: audit, runtime: exec, command: [sh, -c, 'cat >&2']}
  - {name: broken, runtime: exec, command: [sh, -c, 'exit 1']}
  - {name: later, runtime: exec, command: [sh, -c, 'exit 1']}
triggers:
  - {function: audit, source: bucket/inbox, events: ['object:*']}
  - {function: broken, source: table/things, events: [row:insert], retry: {max_attempts: 1}}
  - {function: later, source: table/things, events: [row:modify], retry: {max_attempts: 5, backoff: 1h..2h}}
"#;

/// Every object of `inbox` with its metadata and the MD5 of its bytes, through boto3.
fn objects_seen(node: &Eddy) -> Value {
    boto3(
        node,
        r#"
listed = s3.list_objects_v2(Bucket="inbox").get("Contents", [])
out["objects"] = []
for o in listed:
    got = s3.get_object(Bucket="inbox", Key=o["Key"])
    out["objects"].append([o["Key"], o["Size"], o["ETag"], got["ContentType"], got["Metadata"],
                           hashlib.md5(got["Body"].read()).hexdigest()])
"#,
    )
}

/// The rows of `things`, the journal and the dead letters, as the API gives them.
fn state_seen(node: &Eddy) -> Value {
    let rows = node.get("/_eddy/v1/tables/things/rows?limit=1000").body["rows"].clone();
    let journal: Vec<Value> = (1..)
        .map_while(|page: u64| {
            let events = node.get(&format!(
                "/_eddy/v1/events?after={}&limit=1000",
                (page - 1) * 1000
            ));
            let events = events.body["events"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (!events.is_empty()).then_some(events)
        })
        .flatten()
        .collect();
    let dead = node.get("/_eddy/v1/dead-letters").body;
    json!({ "rows": rows, "journal": journal, "dead": dead })
}

const DELIVERIES: &str = "SELECT id, event_seq, trigger, function, state, attempts, next_attempt_ms, coalesce(dead_reason, '') FROM _eddy_deliveries ORDER BY id";

#[test]
fn a_single_node_moves_to_postgresql_and_s3_with_everything_it_holds() {
    let cluster = Cluster::start(SINGLE);
    let mut single = serve(SINGLE);
    // Objects (an empty one, one with metadata, one in parts), rows of every column type, and
    // deliveries finished, dead and waiting for their next attempt an hour from now.
    boto3(
        &single,
        r#"
s3.put_object(Bucket="inbox", Key="a/notes.txt", Body=b"notes", ContentType="text/plain",
              Metadata={"owner": "ada"})
upload = s3.create_multipart_upload(Bucket="inbox", Key="big.bin")
parts = []
for n in (1, 2):
    body = bytes([n]) * (5 * 1024 * 1024 + n)
    etag = s3.upload_part(Bucket="inbox", Key="big.bin", UploadId=upload["UploadId"],
                          PartNumber=n, Body=body)["ETag"]
    parts.append({"PartNumber": n, "ETag": etag})
s3.complete_multipart_upload(Bucket="inbox", Key="big.bin", UploadId=upload["UploadId"],
                             MultipartUpload={"Parts": parts})
# Last: a request after an empty PUT on the same connection stalls (the S3 issue's first item).
s3.put_object(Bucket="inbox", Key="empty", Body=b"")
"#,
    );
    for id in 1..=40 {
        insert(
            &single,
            "things",
            json!({"id": id, "name": format!("thing {id}"), "doc": {"n": id, "tags": ["x", "y"]},
                   "flag": id % 2 == 0, "score": id as f64 / 3.0}),
        );
    }
    for id in 1..=5 {
        let put = single.json(
            "PATCH",
            &format!("/_eddy/v1/tables/things/rows/{id}"),
            json!({"name": "renamed"}),
        );
        assert_eq!(put.status, 200, "{}", put.body);
    }
    single.wait_for("the dead letters and the waiting retries", |n| {
        n.get("/_eddy/v1/dead-letters").body["dead_letters"]
            .as_array()
            .is_some_and(|d| d.len() == 40)
            && invocations(n, "later").len() == 5
    });
    let objects = objects_seen(&single);
    let state = state_seen(&single);
    let database = single.dir.path().join("data").join("eddy.db");
    let sqlite3 = |statement: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(&database)
            .arg(statement)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };

    let url = cluster.postgres.url("eddy");
    let migrate = |dir: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["migrate", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--to", &url, "--blobs", "s3://eddy-blobs/migrated"])
            .envs(cluster.storage_env("migrated").into_iter().skip(2))
            .output()
            .unwrap()
    };
    let refused = migrate(single.dir.path());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use by another eddy process"),
        "a running node's directory is not copied: {}",
        String::from_utf8_lossy(&refused.stderr)
    );

    single.child.kill().unwrap();
    single.child.wait().unwrap();
    let deliveries = sqlite3(DELIVERIES);
    let copied = migrate(single.dir.path());
    let said = String::from_utf8_lossy(&copied.stdout);
    assert!(
        copied.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    assert!(said.contains("_eddy_journal"), "{said}");
    assert!(said.contains("blobs copied"), "{said}");
    assert_eq!(
        cluster.postgres.psql("eddy", DELIVERIES),
        deliveries,
        "every delivery, pending and dead, as it was"
    );
    assert_eq!(
        cluster.postgres.psql(
            "eddy",
            "SELECT count(*) FROM _eddy_deliveries WHERE state = 'ready'"
        ),
        "5"
    );
    let again = migrate(single.dir.path());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds eddy's data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A node on PostgreSQL and the bucket, on the same folder without its blobs, sees it all.
    std::fs::remove_dir_all(single.dir.path().join("data").join("blobs")).unwrap();
    let dir = std::mem::replace(&mut single.dir, tempfile::tempdir().unwrap());
    drop(single);
    let moved = cluster.start_node(dir, "app.yaml", "migrated", &[]);
    assert_eq!(
        health(&moved)["app_version"],
        1,
        "the same app, not a new one"
    );
    assert_eq!(objects_seen(&moved), objects);
    assert_eq!(state_seen(&moved), state);
    // It carries on: a new row is journaled after the copied ones and triggers as before.
    insert(
        &moved,
        "things",
        json!({"id": 41, "name": "new", "doc": null, "flag": true}),
    );
    let last = state_seen(&moved)["journal"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        last["sequence"].as_u64().unwrap(),
        state["journal"].as_array().unwrap().len() as u64 + 1
    );
    moved.wait_for("the new row's trigger", |n| {
        n.get("/_eddy/v1/dead-letters").body["dead_letters"]
            .as_array()
            .is_some_and(|d| d.len() == 41)
    });
}

/// The records each key's batches carried to `function`, in the order its invocations were
/// recorded, once `expected` records have been carried.
fn batched_records_per_key(
    node: &Eddy,
    function: &str,
    expected: usize,
) -> BTreeMap<i64, Vec<u64>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut per_key: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        let mut total = 0;
        for run in invocations(node, function) {
            assert_eq!(run["outcome"], "success", "{run}");
            let log = run["log"].as_str().unwrap();
            let batch: Value = log
                .lines()
                .find_map(|line| serde_json::from_str(line).ok())
                .unwrap_or_else(|| panic!("no batch in {log}"));
            for record in batch["Records"].as_array().unwrap() {
                let id = record["dynamodb"]["Keys"]["id"]["N"].as_str().unwrap();
                let seq = record["dynamodb"]["SequenceNumber"].as_str().unwrap();
                per_key
                    .entry(id.parse().unwrap())
                    .or_default()
                    .push(seq.parse().unwrap());
                total += 1;
            }
        }
        if total >= expected {
            return per_key;
        }
        assert!(
            Instant::now() < deadline,
            "{total} of {expected} delivered to {function}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn nodes_share_a_batched_stream_and_keep_each_keys_order() {
    let manifest = r#"
tables: [{name: ledger, primary_key: id, columns: {id: integer, n: integer}}]
functions:
  - {name: tally, runtime: exec, command: [sh, -c, 'cat >&2'], concurrency: 4}
  - {name: serial, runtime: exec, command: [sh, -c, 'sleep 0.05; cat >&2'], concurrency: 4}
triggers:
  - {function: tally, source: table/ledger, events: ['row:*'], batch: {size: 10, parallel: 3}}
  - {function: serial, source: table/ledger, events: ['row:*'], batch: {size: 4}}
"#;
    let cluster = Cluster::start(manifest);
    let nodes = cluster.nodes(2);
    // Eight keys, each written five times, the writes spread over both nodes.
    let mut written = 0;
    for round in 0..5 {
        for id in 0..8 {
            let node = &nodes[(id + round) % 2];
            let row = json!({"id": id, "n": round});
            let put = node.json("PUT", &format!("/_eddy/v1/tables/ledger/rows/{id}"), row);
            assert!(put.status < 300, "{}", put.body);
            written += 1;
        }
    }
    let sequences: BTreeMap<i64, Vec<u64>> =
        events(&nodes[1], "table/ledger")
            .iter()
            .fold(BTreeMap::new(), |mut keys, e| {
                // The journal keys a row by its key's values as a JSON list: `[7]`.
                let key: Vec<i64> = serde_json::from_str(e["key"].as_str().unwrap()).unwrap();
                let id = key[0];
                keys.entry(id)
                    .or_insert_with(Vec::new)
                    .push(e["sequence"].as_u64().unwrap());
                keys
            });
    // Every record once, whichever node ran its batch; the batches' records per key in
    // commit order (a key's next batch is leased only once its previous one is settled, and
    // records are recorded in settling order).
    for function in ["tally", "serial"] {
        assert_eq!(
            batched_records_per_key(&nodes[0], function, written),
            sequences,
            "{function}: each key's records once, in commit order"
        );
    }
    // The trigger that runs one batch at a time leases its next one ahead, on the node that
    // runs it: still never two at once, on either node.
    assert_one_at_a_time(&nodes[1], "serial");
}

/// Asserts that no two recorded invocations of `function` overlapped in time.
fn assert_one_at_a_time(node: &Eddy, function: &str) {
    let mut runs: Vec<(f64, f64)> = invocations(node, function)
        .iter()
        .map(|run| {
            let start = run["start_ms"].as_f64().unwrap();
            (start, start + run["duration_ms"].as_f64().unwrap())
        })
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in runs.windows(2) {
        // A start is in whole milliseconds: a run may seem to start up to 1 ms early.
        assert!(
            pair[1].0 >= pair[0].1 - 1.0,
            "two runs of {function} at once: {pair:?}"
        );
    }
}

#[test]
fn a_busy_batched_trigger_keeps_its_functions_concurrency() {
    // Two batches may run at once, but the function only one invocation.
    let manifest = r#"
tables: [{name: feed, primary_key: id, columns: {id: integer}}]
functions:
  - {name: chain, runtime: exec, command: [sh, -c, 'sleep 0.2; cat >&2'], concurrency: 1, timeout: 1s}
triggers:
  - {function: chain, source: table/feed, events: [row:insert], batch: {size: 1, parallel: 2}}
"#;
    let cluster = Cluster::start(manifest);
    let nodes = cluster.nodes(1);
    let node = &nodes[0];
    // Batch after batch, each handing the function's one slot to the next, for longer than a
    // slot is held unrenewed (the timeout and the nodes' 2 s lease grace: 3 s).
    let rows: Vec<Value> = (0..25).map(|id| json!({ "id": id })).collect();
    let put = node.json("POST", "/_eddy/v1/tables/feed/rows", json!(rows));
    assert_eq!(put.status, 201, "{}", put.body);
    node.wait_for("every invocation", |n| invocations(n, "chain").len() == 25);
    assert_one_at_a_time(node, "chain");
}
