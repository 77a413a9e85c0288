//! How fast the console's pages render with 100,000 events in the journal: a real `eddy
//! serve`, 100,000 rows written through the table API (1,000 to a request, no trigger), and
//! 200 more to a table whose trigger runs an `exec` function (so the pages have invocations,
//! deliveries and a dead letter to show). Each page is fetched `FETCHES` times with a session
//! cookie, as a browser fetches it; the times are from request to the whole answer read.
//!
//! Run with `cargo bench -p eddy-cli --bench console`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::serve_quietly;
use eddy_tests::bench::{machine, ms, percentile};
use serde_json::json;

const BULK: u64 = 100_000;
const PER_REQUEST: u64 = 1_000;
const TRIGGERED: u64 = 200;
const FETCHES: usize = 21;

const APP: &str = r#"
buckets: [{name: inbox}]
tables:
  - {name: bulk, primary_key: id, columns: {id: integer, note: text}}
  - {name: rows, primary_key: id, columns: {id: integer}}
functions:
  - name: work
    runtime: exec
    command: [sh, -c, 'read -r e; case "$e" in *\"N\":\"7\"*) exit 3;; esac; echo "{}"']
triggers:
  - {function: work, source: table/rows, events: [row:insert], retry: {max_attempts: 1}}
"#;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.yaml");
    std::fs::write(&manifest, APP).unwrap();
    let eddy = serve_quietly(&manifest);
    let started = Instant::now();
    for first in (0..BULK).step_by(PER_REQUEST as usize) {
        let rows: Vec<_> = (first..first + PER_REQUEST)
            .map(|id| json!({"id": id, "note": format!("row {id}")}))
            .collect();
        let answer = eddy.json("POST", "/_eddy/v1/tables/bulk/rows", json!(rows));
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    for id in 0..TRIGGERED {
        assert_eq!(
            eddy.json("POST", "/_eddy/v1/tables/rows/rows", json!({"id": id}))
                .status,
            201
        );
    }
    eddy.wait_for("every triggered row to be handled", |e| {
        let usage = e.get("/_eddy/v1/usage").body;
        usage["functions"][0]["invocations"].as_u64() == Some(TRIGGERED)
    });
    eprintln!(
        "{} events written in {:.1} s",
        BULK + TRIGGERED,
        started.elapsed().as_secs_f64()
    );

    let agent = ureq::Agent::new_with_defaults();
    let cookie = common::console_cookie(&eddy.base);
    let pages = [
        "/_eddy/v1/activity",
        "/_eddy/v1/usage",
        "/_eddy/console/",
        "/_eddy/console/events",
        "/_eddy/console/events?outcome=dead",
        "/_eddy/console/events?source=table%2Frows",
        "/_eddy/console/events/100100",
        "/_eddy/console/functions/work",
        "/_eddy/console/dead-letters",
        "/_eddy/console/tables/bulk",
        "/_eddy/console/tables/bulk/row?key=%5B99999%5D",
        "/_eddy/console/usage",
    ];
    println!(
        "console pages, {} events in the journal; {}",
        BULK + TRIGGERED,
        machine()
    );
    println!(
        "{:<48} {:>10} {:>10} {:>10}",
        "page", "p50 ms", "p90 ms", "bytes"
    );
    for page in pages {
        let mut times: Vec<Duration> = Vec::with_capacity(FETCHES);
        let mut bytes = 0;
        for _ in 0..FETCHES {
            let start = Instant::now();
            let mut answer = agent
                .get(format!("{}{page}", eddy.base))
                .header("cookie", &cookie)
                // The admin API's pages, measured beside the console's, take a token.
                .header("authorization", "Bearer eddy-dev-secret")
                .call()
                .unwrap();
            assert_eq!(answer.status().as_u16(), 200, "{page}");
            bytes = answer.body_mut().read_to_string().unwrap().len();
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "{page:<48} {:>10.2} {:>10.2} {bytes:>10}",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.9))
        );
    }
}
