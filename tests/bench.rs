//! What the benchmarks share: a runtime, fresh directories, the machine's description, and
//! the statistics they report.

use std::path::PathBuf;
use std::time::Duration;

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
