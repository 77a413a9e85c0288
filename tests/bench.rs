//! What the benchmarks share: a runtime, fresh directories, the machine's description, and
//! the statistics they report.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// A multi-threaded tokio runtime, as `eddy serve` runs.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// Fresh directories for runs, under `EDDY_BENCH_DIR` (default `/tmp`). Nothing is deleted
/// between runs: this machine's disk slows file creation for minutes after many deletions.
pub struct Dirs {
    root: tempfile::TempDir,
    made: usize,
}

impl Dirs {
    pub fn new() -> Self {
        let base = std::env::var("EDDY_BENCH_DIR").unwrap_or_else(|_| "/tmp".into());
        Self {
            root: tempfile::tempdir_in(base).expect("a benchmark directory"),
            made: 0,
        }
    }

    pub fn fresh(&mut self) -> PathBuf {
        self.made += 1;
        let dir = self.root.path().join(format!("run-{}", self.made));
        std::fs::create_dir_all(&dir).expect("a run directory");
        dir
    }
}

impl Default for Dirs {
    fn default() -> Self {
        Self::new()
    }
}

/// `machine: N cores, CPU model`, the first line of every benchmark's report.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "machine: {} cores, {model}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// The `p` quantile (0–1) of durations sorted ascending.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `work(i)` for every `i` below `count`, spread over `tasks` concurrent tasks (task `t`
/// takes `t`, `t + tasks`, …), and returns how many ran per second.
pub async fn rate<F, Fut>(tasks: u64, count: u64, work: F) -> f64
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = std::time::Instant::now();
    let running: Vec<_> = (0..tasks)
        .map(|t| {
            let work = work.clone();
            tokio::spawn(async move {
                for i in (t..count).step_by(tasks as usize) {
                    work(i).await;
                }
            })
        })
        .collect();
    for task in running {
        task.await.expect("a benchmark task panicked");
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// A 1 KiB body of its own for each `i`, so every put writes its own blob.
pub fn small_body(i: u64) -> Vec<u8> {
    let mut body = vec![7u8; 1024];
    body[..8].copy_from_slice(&i.to_le_bytes());
    body
}

/// One S3 request to `address` (`HOST:PORT`) with the development credentials, signed as an
/// SDK signs it (the payload hashed, or `UNSIGNED-PAYLOAD`); panics unless it succeeds.
pub fn s3_request(
    agent: &ureq::Agent,
    address: &str,
    method: &str,
    path: &str,
    body: &[u8],
    unsigned: bool,
) -> Vec<u8> {
    let hash = if unsigned {
        "UNSIGNED-PAYLOAD".to_string()
    } else {
        eddy_sigv4::sha256_hex(body)
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{address}{path}"))
        .header("host", address)
        .header("content-length", body.len())
        .body(())
        .unwrap();
    let signed = eddy_sigv4::Request {
        method,
        path,
        query: "",
        headers: request.headers(),
        payload_sha256: &hash,
    };
    let headers = eddy_sigv4::sign(
        &eddy_node::development_credentials(),
        "us-east-1",
        "s3",
        &signed,
        SystemTime::now(),
    );
    for (name, value) in headers {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let (parts, ()) = request.into_parts();
    let mut response = agent
        .run(http::Request::from_parts(parts, body))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert!(
        response.status().is_success(),
        "{method} {path}: {response:?}"
    );
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// Starts the HTTP surfaces on a free loopback port, as `eddy serve` does, keeping objects up
/// to `inline_objects_up_to` bytes inline.
pub async fn start_server(dir: PathBuf, inline_objects_up_to: u64) -> std::net::SocketAddr {
    let bus = eddy_bus::Bus::open(&dir).await.unwrap();
    let config = eddy_node::NodeConfig {
        id: None,
        root: eddy_node::development_credentials(),
        manifests: Vec::new(),
        watch: false,
        executor: eddy_executor::ExecutorConfig::default(),
        blobs: None,
        inline_objects_up_to,
        duties: eddy_node::Duties::default(),
    };
    let node = eddy_node::Node::start(bus, eddy_subscriptions::App::default(), config)
        .await
        .unwrap();
    let services = std::sync::Arc::new(eddy_server::Services::new(
        node,
        eddy_server::Hosts::new(&[]),
        eddy_server::BODY_IDLE_TIMEOUT,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(eddy_server::serve(
        listener,
        services,
        std::future::pending(),
    ));
    address
}

/// A peer S3 server to compare with, if one is installed: s3s-fs (`cargo install s3s-fs
/// --features binary`), on the PATH or named by `EDDY_BENCH_S3S_FS`.
pub fn peer_s3_server() -> Option<std::path::PathBuf> {
    if let Ok(path) = std::env::var("EDDY_BENCH_S3S_FS") {
        return Some(path.into());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join("s3s-fs"))
        .find(|candidate| candidate.is_file())
}

/// s3s-fs on a free loopback port, serving `dir` with the development credentials; stopped by
/// its process id when dropped.
pub struct PeerServer {
    child: std::process::Child,
    pub address: std::net::SocketAddr,
}

impl PeerServer {
    pub fn start(program: &std::path::Path, dir: &std::path::Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let credentials = eddy_node::development_credentials();
        let child = std::process::Command::new(program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &credentials.access_key_id])
            .args(["--secret-key", &credentials.secret_access_key])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(address).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "s3s-fs did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, address }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
