//! The S3 API over HTTP against the object store called directly, in the same process: what
//! the wire protocol, Signature V4 and `s3s` add to a put and a get.
//!
//! - 1 KiB puts and gets from 16 concurrent clients (each with its own keep-alive connection,
//!   every request signed, payloads hashed) against the same puts and gets through the library
//!   from 16 concurrent tasks;
//! - one 64 MiB put and get over HTTP (streamed, `UNSIGNED-PAYLOAD`) against the library.
//!
//! - 16 MiB puts from 2 clients at once (streamed, `UNSIGNED-PAYLOAD`), each durable, against
//!   the plain `write + fsync` of the same bytes into files from 2 threads, and against a peer
//!   S3 server where one is installed (s3s-fs, which does not fsync).
//!
//! Run with `cargo bench -p eddy-tests --bench s3`. Each figure is the median of `RUNS` runs,
//! the sides alternating, every run in a fresh directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use eddy_core::{BucketName, ObjectKey};
use eddy_objects::PutOptions;
use eddy_tests::Eddy;
use eddy_tests::bench::{
    Dirs, PeerServer, machine, median, peer_s3_server, rate, runtime, small_body, start_server,
};

fn s3(
    agent: &ureq::Agent,
    address: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    unsigned: bool,
) -> Vec<u8> {
    eddy_tests::bench::s3_request(agent, &address.to_string(), method, path, body, unsigned)
}
use tokio::io::AsyncReadExt;

const RUNS: usize = 3;
const SMALL: u64 = 2_000;
const CLIENTS: u64 = 16;
const LARGE: usize = 64 * 1024 * 1024;

fn main() {
    let rt = runtime();
    let mut dirs = Dirs::new();
    println!("{}", machine());
    let mut library = Figures::default();
    let mut http = Figures::default();
    let peer = peer_s3_server();
    let mut parallel: [Vec<f64>; 3] = Default::default();
    for _ in 0..RUNS {
        library.add(rt.block_on(through_library(dirs.fresh())));
        http.add(through_http(&rt, dirs.fresh()));
        parallel[0].push(files_in_parallel(&dirs.fresh()));
        let address = rt.block_on(start_server(
            dirs.fresh(),
            eddy_objects::DEFAULT_INLINE_BYTES,
        ));
        parallel[1].push(puts_in_parallel(address));
        if let Some(program) = &peer {
            let server = PeerServer::start(program, &dirs.fresh());
            parallel[2].push(puts_in_parallel(server.address));
        }
    }
    let rows = [
        ("1 KiB puts/s", library.puts, http.puts),
        ("1 KiB gets/s", library.gets, http.gets),
        ("64 MiB put MB/s", library.large_put, http.large_put),
        ("64 MiB get MB/s", library.large_get, http.large_get),
    ];
    println!("| | library (baseline) | S3 API over HTTP | ratio |");
    println!("| --- | --- | --- | --- |");
    for (what, base, wire) in rows {
        let (base, wire) = (median(base), median(wire));
        println!("| {what} | {base:.0} | {wire:.0} | {:.2}× |", wire / base);
    }
    let [floor, eddy, peer_rate] =
        parallel.map(|v| if v.is_empty() { f64::NAN } else { median(v) });
    println!();
    println!(
        "| {PARALLEL_PUTS} × 16 MiB from {PARALLEL_CLIENTS} clients, MB/s | write + fsync (floor) | eddy over HTTP | s3s-fs (no fsync) |"
    );
    println!("| --- | --- | --- | --- |");
    println!(
        "| | {floor:.0} | {eddy:.0} ({:.2}×) | {} |",
        eddy / floor,
        if peer.is_some() {
            format!("{peer_rate:.0} (eddy {:.2}×)", eddy / peer_rate)
        } else {
            "not installed".into()
        }
    );
}

/// Large objects at once: how many, and from how many clients.
const PARALLEL_PUTS: usize = 8;
const PARALLEL_CLIENTS: usize = 2;
const PARALLEL_SIZE: usize = 16 * 1024 * 1024;

/// The large objects, each with bytes of its own (eddy names a blob by its bytes' digest:
/// identical bodies would all be written over one file, which no real workload does).
fn parallel_bodies() -> std::sync::Arc<Vec<Vec<u8>>> {
    let body = |i: usize| {
        let mut body = vec![7u8; PARALLEL_SIZE];
        body[..8].copy_from_slice(&i.to_le_bytes());
        body
    };
    std::sync::Arc::new((0..PARALLEL_PUTS).map(body).collect())
}

/// The floor for large puts: the same bytes written into files and fsynced (with their
/// directory), `PARALLEL_CLIENTS` threads at once. MB/s.
fn files_in_parallel(dir: &std::path::Path) -> f64 {
    std::fs::create_dir_all(dir).unwrap();
    let bodies = parallel_bodies();
    let start = Instant::now();
    let threads: Vec<_> = (0..PARALLEL_CLIENTS)
        .map(|c| {
            let (dir, bodies) = (dir.to_path_buf(), bodies.clone());
            std::thread::spawn(move || {
                use std::io::Write;
                for i in (c..PARALLEL_PUTS).step_by(PARALLEL_CLIENTS) {
                    let mut file = std::fs::File::create(dir.join(format!("large-{i}"))).unwrap();
                    file.write_all(&bodies[i]).unwrap();
                    file.sync_all().unwrap();
                    std::fs::File::open(&dir).unwrap().sync_all().unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    (PARALLEL_PUTS * PARALLEL_SIZE) as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Large puts over HTTP to the S3 server at `address`, `PARALLEL_CLIENTS` at once. MB/s.
fn puts_in_parallel(address: SocketAddr) -> f64 {
    let agent = || -> ureq::Agent { ureq::Agent::config_builder().build().into() };
    s3(&agent(), address, "PUT", "/parallel", b"", false);
    let bodies = parallel_bodies();
    let start = Instant::now();
    let threads: Vec<_> = (0..PARALLEL_CLIENTS)
        .map(|c| {
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                let agent = agent();
                for i in (c..PARALLEL_PUTS).step_by(PARALLEL_CLIENTS) {
                    s3(
                        &agent,
                        address,
                        "PUT",
                        &format!("/parallel/large-{i}"),
                        &bodies[i],
                        true,
                    );
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    (PARALLEL_PUTS * PARALLEL_SIZE) as f64 / 1e6 / start.elapsed().as_secs_f64()
}

#[derive(Default)]
struct Figures {
    puts: Vec<f64>,
    gets: Vec<f64>,
    large_put: Vec<f64>,
    large_get: Vec<f64>,
}

impl Figures {
    fn add(&mut self, run: [f64; 4]) {
        self.puts.push(run[0]);
        self.gets.push(run[1]);
        self.large_put.push(run[2]);
        self.large_get.push(run[3]);
    }
}

fn large_body() -> Vec<u8> {
    (0..LARGE).map(|i| (i % 251) as u8).collect()
}

fn megabytes_per_second(start: Instant) -> f64 {
    LARGE as f64 / 1e6 / start.elapsed().as_secs_f64()
}

async fn through_library(dir: PathBuf) -> [f64; 4] {
    let eddy = Eddy::open(&dir).await;
    let bucket = BucketName::new("bench").unwrap();
    eddy.objects.create_bucket(&bucket).await.unwrap();
    let objects = eddy.objects.clone();
    let put = {
        let (objects, bucket) = (objects.clone(), bucket.clone());
        move |i: u64| {
            let (objects, bucket) = (objects.clone(), bucket.clone());
            async move {
                let key = ObjectKey::new(format!("obj/{i}")).unwrap();
                let body = small_body(i);
                objects
                    .put_object(&bucket, &key, &mut &body[..], PutOptions::default())
                    .await
                    .unwrap();
            }
        }
    };
    let puts = rate(CLIENTS, SMALL, put).await;
    let get = {
        let bucket = bucket.clone();
        move |i: u64| {
            let (objects, bucket) = (objects.clone(), bucket.clone());
            async move {
                let key = ObjectKey::new(format!("obj/{i}")).unwrap();
                let body = objects.get_object(&bucket, &key, None).await.unwrap();
                let mut bytes = Vec::new();
                body.into_reader().read_to_end(&mut bytes).await.unwrap();
                assert_eq!(bytes.len(), 1024);
            }
        }
    };
    let gets = rate(CLIENTS, SMALL, get).await;
    let body = large_body();
    let key = ObjectKey::new("large").unwrap();
    let start = Instant::now();
    let opts = PutOptions::default();
    eddy.objects
        .put_object(&bucket, &key, &mut &body[..], opts)
        .await
        .unwrap();
    let large_put = megabytes_per_second(start);
    let start = Instant::now();
    let mut bytes = Vec::with_capacity(LARGE);
    let found = eddy.objects.get_object(&bucket, &key, None).await.unwrap();
    found.into_reader().read_to_end(&mut bytes).await.unwrap();
    let large_get = megabytes_per_second(start);
    assert!(bytes == body);
    [puts, gets, large_put, large_get]
}

fn through_http(rt: &tokio::runtime::Runtime, dir: PathBuf) -> [f64; 4] {
    let address = rt.block_on(start_server(dir, eddy_objects::DEFAULT_INLINE_BYTES));
    let agent = || -> ureq::Agent { ureq::Agent::config_builder().build().into() };
    s3(&agent(), address, "PUT", "/bench", b"", false);
    let clients = |work: fn(&ureq::Agent, SocketAddr, u64)| {
        let start = Instant::now();
        let threads: Vec<_> = (0..CLIENTS)
            .map(|c| {
                std::thread::spawn(move || {
                    let agent = agent();
                    for i in (c..SMALL).step_by(CLIENTS as usize) {
                        work(&agent, address, i);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        SMALL as f64 / start.elapsed().as_secs_f64()
    };
    let puts = clients(|agent, address, i| {
        s3(
            agent,
            address,
            "PUT",
            &format!("/bench/obj/{i}"),
            &small_body(i),
            false,
        );
    });
    let gets = clients(|agent, address, i| {
        let body = s3(
            agent,
            address,
            "GET",
            &format!("/bench/obj/{i}"),
            b"",
            false,
        );
        assert_eq!(body.len(), 1024);
    });
    let body = large_body();
    let agent = agent();
    let start = Instant::now();
    s3(&agent, address, "PUT", "/bench/large", &body, true);
    let large_put = megabytes_per_second(start);
    let start = Instant::now();
    let got = s3(&agent, address, "GET", "/bench/large", b"", false);
    let large_get = megabytes_per_second(start);
    assert!(got == body);
    [puts, gets, large_put, large_get]
}
