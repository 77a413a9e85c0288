//! Small objects, durable, through the S3 API over HTTP — kept inline (eddy's default) and in
//! blobs (`--inline-objects-up-to 0`) — against the floor of per-object durability on this
//! disk: a file created, written, fsynced and its directory fsynced, per object.
//!
//! - 1 KiB PUTs from 8 clients at once (each on its own keep-alive connection, every request
//!   signed with its body's SHA-256, as SDKs sign over plain HTTP): PUTs per second;
//! - 1 KiB PUTs from 1 client: the median latency of a PUT.
//!
//! Run with `cargo bench -p eddy-tests --bench small_objects`. Each figure is the median of
//! `RUNS` runs, the sides alternating, every run in a fresh directory.
//!
//! Where a peer S3 server is installed — s3s-fs (`cargo install s3s-fs --features binary`; found
//! on the PATH, or named by `EDDY_BENCH_S3S_FS`) — it is driven the same way as a fourth side:
//! a store that writes a file per object without an fsync.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use eddy_tests::bench::{
    Dirs, PeerServer, machine, median, ms, peer_s3_server, percentile, runtime, s3_request,
    small_body, start_server,
};

const RUNS: usize = 3;
const CLIENTS: u64 = 8;
/// PUTs per run of the concurrent case and of the single client.
const PUTS: u64 = 2_000;
const SINGLE: u64 = 500;

fn main() {
    let rt = runtime();
    let mut dirs = Dirs::new();
    println!("{}", machine());
    let peer = peer_s3_server();
    let mut figures: [Vec<(f64, f64)>; 4] = Default::default();
    for _ in 0..RUNS {
        figures[0].push(files(&dirs.fresh()));
        for (side, inline) in [(1, eddy_objects::DEFAULT_INLINE_BYTES), (2, 0)] {
            let address = rt.block_on(start_server(dirs.fresh(), inline));
            figures[side].push(through_http(address));
        }
        if let Some(program) = &peer {
            let server = PeerServer::start(program, &dirs.fresh());
            figures[3].push(through_http(server.address));
        }
    }
    // The peer's side is empty when no peer is installed (and not printed).
    let [files, inline, blobs, peer_figures] = figures.map(|runs| {
        if runs.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        let (rates, p50s): (Vec<f64>, Vec<f64>) = runs.into_iter().unzip();
        (median(rates), median(p50s))
    });
    println!("| 1 KiB PUT | file + fsync per object (floor) | eddy, inline | eddy, blobs |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| {CLIENTS} clients, PUTs/s | {:.0} | {:.0} ({:.2}×) | {:.0} ({:.2}×) |",
        files.0,
        inline.0,
        inline.0 / files.0,
        blobs.0,
        blobs.0 / files.0
    );
    println!(
        "| 1 client, p50 ms | {:.3} | {:.3} | {:.3} |",
        files.1, inline.1, blobs.1
    );
    if peer.is_some() {
        println!("| 1 KiB PUT | s3s-fs (a file per object, no fsync) | eddy inline / s3s-fs |");
        println!("| --- | --- | --- |");
        println!(
            "| {CLIENTS} clients, PUTs/s | {:.0} | {:.2}× |",
            peer_figures.0,
            inline.0 / peer_figures.0
        );
        println!(
            "| 1 client, p50 ms | {:.3} | {:.2}× |",
            peer_figures.1,
            inline.1 / peer_figures.1
        );
    } else {
        println!(
            "(no s3s-fs found: install it with `cargo install s3s-fs --features binary` for the peer's column)"
        );
    }
}

/// Runs `put(client, i)` for `count` objects from `clients` threads and returns PUTs per
/// second and the median latency of one.
fn timed(
    clients: u64,
    count: u64,
    put: impl Fn(u64, u64) + Send + Sync + Clone + 'static,
) -> (f64, f64) {
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let put = put.clone();
            std::thread::spawn(move || {
                let mut took = Vec::new();
                for i in (c..count).step_by(clients as usize) {
                    let one = Instant::now();
                    put(c, i);
                    took.push(one.elapsed());
                }
                took
            })
        })
        .collect();
    let mut took: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let rate = count as f64 / start.elapsed().as_secs_f64();
    took.sort();
    (rate, ms(percentile(&took, 0.5)))
}

/// The floor: each object a file of its own, durable before the next (the file and the
/// directory entry fsynced), as a store without group commit pays per object.
fn files(dir: &Path) -> (f64, f64) {
    let dir = dir.to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let write = move |dir: &Path, i: u64| {
        use std::io::Write;
        let path = dir.join(format!("obj-{i}"));
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&small_body(i)).unwrap();
        file.sync_all().unwrap();
        std::fs::File::open(dir).unwrap().sync_all().unwrap();
    };
    let many = std::sync::Arc::new(dir.join("many"));
    let one = std::sync::Arc::new(dir.join("one"));
    std::fs::create_dir_all(&*many).unwrap();
    std::fs::create_dir_all(&*one).unwrap();
    let (rate, _) = timed(CLIENTS, PUTS, move |_, i| write(&many, i));
    let (_, p50) = timed(1, SINGLE, move |_, i| write(&one, i));
    (rate, p50)
}

fn through_http(address: SocketAddr) -> (f64, f64) {
    let agent = || -> ureq::Agent { ureq::Agent::config_builder().build().into() };
    s3_request(&agent(), &address.to_string(), "PUT", "/bench", b"", false);
    let put = move |prefix: &'static str| {
        move |_: u64, i: u64| {
            thread_local! {
                static AGENT: ureq::Agent = ureq::Agent::config_builder().build().into();
            }
            AGENT.with(|agent| {
                s3_request(
                    agent,
                    &address.to_string(),
                    "PUT",
                    &format!("/bench/{prefix}/{i}"),
                    &small_body(i),
                    false,
                );
            });
        }
    };
    let (rate, _) = timed(CLIENTS, PUTS, put("many"));
    let (_, p50) = timed(1, SINGLE, put("one"));
    (rate, p50)
}
