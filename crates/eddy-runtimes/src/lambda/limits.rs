//! The memory and CPU limits of a worker, and what it used.
//!
//! Where eddy may create cgroups (cgroup v2, else v1, as root), each worker gets its own: a
//! memory limit of `memory_mb` (the kernel kills the worker when it goes over: eddy reports
//! `Runtime.OutOfMemory`), and a CPU weight proportional to `memory_mb`, as Lambda shares CPU
//! (256 MB gets twice the share of 128 MB, which gets an ordinary process's share); in strict mode also a hard cap of one core per
//! 1,769 MB. Elsewhere `memory_mb` is enforced with `RLIMIT_DATA` (the heap and private writable
//! mappings): the next allocation past it fails — Node's heap reports `JavaScript heap out of
//! memory`, a large `Buffer` throws `RangeError`, Python raises `MemoryError`. (`RLIMIT_AS`
//! would kill Node at start: V8 reserves far more address space than it uses.) The worker joins
//! its cgroup, or takes its rlimit, between fork and exec, so it never runs unconfined.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::resource::{Resource, setrlimit};
use tokio::process::Command;

const MIB: u64 = 1024 * 1024;
/// Lambda gives a function one full core at this memory size.
const MB_PER_CORE: u64 = 1769;
/// The memory size whose worker gets the kernel's default CPU weight (cgroup v1 shares 1024,
/// v2 weight 100), the weight of any ordinary process; the weight scales with memory from there.
const WEIGHT_UNIT_MB: u64 = 128;
/// The CFS period of the strict CPU cap.
const CPU_PERIOD_US: u64 = 100_000;

/// How limits are enforced on this machine, found once.
#[derive(Clone, Debug)]
pub enum Mechanism {
    /// cgroup v2: one group per worker under `root` (memory and cpu controllers enabled).
    CgroupV2 { root: PathBuf },
    /// cgroup v1: one group per worker under each hierarchy that could be prepared.
    CgroupV1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
    },
    /// No writable cgroup: `RLIMIT_DATA`.
    Rlimit,
}

impl Mechanism {
    /// Prepares eddy's parent group (`eddy-<pid>`) where cgroups are writable, after removing
    /// those that eddy processes no longer running left behind.
    pub fn detect() -> Self {
        let base = Path::new("/sys/fs/cgroup");
        for hierarchy in [base.to_path_buf(), base.join("memory"), base.join("cpu")] {
            remove_stale(&hierarchy);
        }
        let name = format!("eddy-{}", std::process::id());
        if base.join("cgroup.controllers").exists() {
            let root = base.join(&name);
            let enabled = std::fs::write(base.join("cgroup.subtree_control"), "+memory +cpu")
                .and_then(|()| std::fs::create_dir_all(&root))
                .and_then(|()| std::fs::write(root.join("cgroup.subtree_control"), "+memory +cpu"));
            if enabled.is_ok() {
                return Mechanism::CgroupV2 { root };
            }
        }
        let memory = base.join("memory").join(&name);
        if std::fs::create_dir_all(&memory).is_ok() && memory.join("memory.limit_in_bytes").exists()
        {
            let cpu = base.join("cpu").join(&name);
            let cpu = (std::fs::create_dir_all(&cpu).is_ok() && cpu.join("cpu.shares").exists())
                .then_some(cpu);
            return Mechanism::CgroupV1 { memory, cpu };
        }
        Mechanism::Rlimit
    }

    /// What is active, for the log and the docs.
    pub fn describe(&self) -> String {
        match self {
            Mechanism::CgroupV2 { root } => format!(
                "memory and CPU weight by cgroup v2 under {}",
                root.display()
            ),
            Mechanism::CgroupV1 { memory, cpu } => format!(
                "memory by cgroup v1 under {}; CPU weight {}{}",
                memory.display(),
                cpu.as_ref()
                    .map_or("not set (no writable cpu cgroup)".to_string(), |c| format!(
                        "by cgroup v1 under {}",
                        c.display()
                    )),
                join_cost(
                    std::fs::read_to_string(RCU_EXPEDITED).ok().as_deref(),
                    &std::fs::read_to_string("/proc/mounts").unwrap_or_default()
                )
            ),
            Mechanism::Rlimit => {
                "memory by RLIMIT_DATA (no writable cgroup); CPU not shared by memory".into()
            }
        }
    }

    /// Creates the groups of one worker, set to `memory_mb`.
    pub fn confine(&self, worker: &str, memory_mb: u32, strict_cpu: bool) -> Confinement {
        let bytes = u64::from(memory_mb) * MIB;
        let cores = |period: u64| (period * u64::from(memory_mb) / MB_PER_CORE).max(1000);
        let mut confinement = Confinement::bare(memory_mb);
        let made = match self {
            Mechanism::Rlimit => Ok(()),
            Mechanism::CgroupV2 { root } => {
                let dir = root.join(worker);
                confinement.add(&dir).and_then(|()| {
                    std::fs::write(dir.join("memory.max"), bytes.to_string())?;
                    let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                    let weight = (u64::from(memory_mb) * 100 / WEIGHT_UNIT_MB).clamp(1, 10_000);
                    std::fs::write(dir.join("cpu.weight"), weight.to_string())?;
                    if strict_cpu {
                        let max = format!("{} {CPU_PERIOD_US}", cores(CPU_PERIOD_US));
                        std::fs::write(dir.join("cpu.max"), max)?;
                    }
                    confinement.peak = Some(dir.join("memory.peak"));
                    Ok(())
                })
            }
            Mechanism::CgroupV1 { memory, cpu } => {
                let dir = memory.join(worker);
                confinement.add(&dir).and_then(|()| {
                    std::fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                    // With swap accounting, swap counts too: the limit is the whole memory.
                    let _ =
                        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
                    confinement.peak = Some(dir.join("memory.max_usage_in_bytes"));
                    if let Some(cpu) = cpu {
                        let dir = cpu.join(worker);
                        confinement.add(&dir)?;
                        let shares = (u64::from(memory_mb) * 1024 / WEIGHT_UNIT_MB).max(2);
                        std::fs::write(dir.join("cpu.shares"), shares.to_string())?;
                        if strict_cpu {
                            std::fs::write(
                                dir.join("cpu.cfs_period_us"),
                                CPU_PERIOD_US.to_string(),
                            )?;
                            std::fs::write(
                                dir.join("cpu.cfs_quota_us"),
                                cores(CPU_PERIOD_US).to_string(),
                            )?;
                        }
                    }
                    Ok(())
                })
            }
        };
        if let Err(error) = made {
            tracing::warn!(%error, worker, "a worker's cgroup could not be set up; it gets RLIMIT_DATA instead");
            confinement.release();
            confinement = Confinement::bare(memory_mb);
        }
        confinement
    }
}

/// Whether the kernel expedites RCU grace periods (`1`) or not (`0`).
const RCU_EXPEDITED: &str = "/sys/kernel/rcu_expedited";

/// What joining its groups costs each new worker, given what [`RCU_EXPEDITED`] holds and the
/// mounts (`/proc/mounts`). The move takes the kernel's cgroup-wide thread-group lock, whose
/// writer waits for an RCU grace period — unless grace periods are expedited, or a cgroup2
/// hierarchy (a hybrid host's `unified` one too) is mounted with `favordynmods`, which keeps the
/// lock cheap to write. Measured on cgroup v1, kernel 6.18: 7–13 ms of a cold start; either
/// way out, 0.3 ms.
fn join_cost(rcu_expedited: Option<&str>, mounts: &str) -> &'static str {
    let favoured = mounts.lines().any(|mount| {
        let fields: Vec<&str> = mount.split_whitespace().collect();
        fields.get(2) == Some(&"cgroup2")
            && fields
                .get(3)
                .is_some_and(|options| options.split(',').any(|o| o == "favordynmods"))
    });
    match rcu_expedited.map(str::trim) {
        Some("0") if !favoured => {
            "; a new worker's process waits ~10 ms for an RCU grace period to join its groups, which each function's spare process takes ahead of need, so only a cold start that finds no spare ready pays it (mounting cgroup2 with favordynmods, or `echo 1 > /sys/kernel/rcu_expedited`, makes that ~0.3 ms; see docs/runtimes.md)"
        }
        _ => "",
    }
}

/// Removes `eddy-<pid>` groups (and the worker groups in them) of processes that are gone.
fn remove_stale(hierarchy: &Path) {
    let Ok(entries) = std::fs::read_dir(hierarchy) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("eddy-") else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        if let Ok(workers) = std::fs::read_dir(entry.path()) {
            for worker in workers.flatten().filter(|w| w.path().is_dir()) {
                let _ = std::fs::remove_dir(worker.path());
            }
        }
        let _ = std::fs::remove_dir(entry.path());
    }
}

/// One worker's groups: the `cgroup.procs` files it joins at start, and where its peak memory
/// is read. Without groups, the worker gets `RLIMIT_DATA`.
pub struct Confinement {
    dirs: Vec<PathBuf>,
    procs: Vec<File>,
    peak: Option<PathBuf>,
    memory_mb: u32,
}

impl Confinement {
    /// No groups: the worker gets `RLIMIT_DATA`.
    fn bare(memory_mb: u32) -> Self {
        Self {
            dirs: Vec::new(),
            procs: Vec::new(),
            peak: None,
            memory_mb,
        }
    }

    fn add(&mut self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir(dir)?;
        self.dirs.push(dir.to_path_buf());
        self.procs.push(
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))?,
        );
        Ok(())
    }

    /// Makes the process `command` starts join the groups (or take the rlimit) before it runs.
    pub fn apply(&self, command: &mut Command) {
        let fds: Vec<i32> = self.procs.iter().map(AsRawFd::as_raw_fd).collect();
        let bytes = u64::from(self.memory_mb) * MIB;
        // SAFETY: the closure runs in the child between fork and exec. It only calls write(2)
        // on descriptors opened before the fork and setrlimit(2), both async-signal-safe, and
        // allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if fds.is_empty() {
                    return setrlimit(Resource::RLIMIT_DATA, bytes, bytes)
                        .map_err(std::io::Error::from);
                }
                for &fd in &fds {
                    // "0" moves the writing process: the child itself.
                    nix::unistd::write(BorrowedFd::borrow_raw(fd), b"0")
                        .map_err(std::io::Error::from)?;
                }
                Ok(())
            });
        }
    }

    /// The peak memory of the worker's group in MB (rounded up), or, when it has no group, the
    /// largest peak resident set (`VmHWM`) among `pid` and the processes below it (a sandbox's
    /// init comes first; the function's program is below it).
    pub fn peak_memory_mb(&self, pid: u32) -> Option<u64> {
        if let Some(peak) = &self.peak {
            let bytes: u64 = std::fs::read_to_string(peak).ok()?.trim().parse().ok()?;
            return Some(bytes.div_ceil(MIB));
        }
        crate::sandbox::descendants(pid)
            .into_iter()
            .filter_map(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
                let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kb.div_ceil(1024))
            })
            .max()
    }

    /// Removes the groups once their processes are gone (a group with a process in it cannot
    /// be removed; a killed process leaves it a moment later).
    fn release(&mut self) {
        self.procs.clear();
        let dirs = std::mem::take(&mut self.dirs);
        if dirs.is_empty() {
            return;
        }
        std::thread::spawn(move || {
            for _ in 0..100 {
                if dirs
                    .iter()
                    .all(|d| std::fs::remove_dir(d).is_ok() || !d.exists())
                {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
    }
}

impl Drop for Confinement {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a group, `memory_mb` holds as an rlimit: an allocation past it fails.
    #[tokio::test]
    async fn the_rlimit_stops_an_allocation_past_the_memory_size() {
        let confinement = Confinement::bare(64);
        let run = |bytes: u64| {
            let mut command = Command::new("python3");
            command.args(["-c", &format!("bytearray({bytes})")]);
            confinement.apply(&mut command);
            command.output()
        };
        let small = run(8 * MIB).await.unwrap();
        assert!(small.status.success(), "{small:?}");
        let large = run(200 * MIB).await.unwrap();
        assert!(!large.status.success());
        assert!(
            String::from_utf8_lossy(&large.stderr).contains("MemoryError"),
            "{large:?}"
        );
    }

    /// Where cgroups are writable, a worker's group holds its memory size and a CPU weight
    /// proportional to it.
    #[test]
    fn groups_hold_memory_and_a_cpu_weight_that_follows_it() {
        let mechanism = Mechanism::detect();
        let Mechanism::CgroupV1 {
            memory,
            cpu: Some(cpu),
        } = &mechanism
        else {
            eprintln!("not checked here: {}", mechanism.describe());
            return;
        };
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap().trim().to_string();
        let small = mechanism.confine("test-small", 128, false);
        let large = mechanism.confine("test-large", 256, true);
        assert_eq!(
            read(memory.join("test-small/memory.limit_in_bytes")),
            (128 * MIB).to_string()
        );
        assert_eq!(read(cpu.join("test-small/cpu.shares")), "1024");
        assert_eq!(
            read(cpu.join("test-large/cpu.shares")),
            "2048",
            "twice the memory, twice the share"
        );
        assert_eq!(
            read(cpu.join("test-large/cpu.cfs_quota_us")),
            (CPU_PERIOD_US * 256 / MB_PER_CORE).to_string()
        );
        drop((small, large));
    }

    /// The log says what joining a group costs only where nothing spares the wait.
    #[test]
    fn the_join_cost_is_told_only_when_nothing_spares_the_wait() {
        let hybrid = "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
        let favoured = "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n\
                        cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime,favordynmods 0 0\n";
        let v1_named_so = "favordynmods /sys/fs/cgroup/cpu cgroup rw,favordynmods 0 0\n";
        assert!(join_cost(Some("0\n"), hybrid).contains("rcu_expedited"));
        assert!(
            !join_cost(Some("0\n"), v1_named_so).is_empty(),
            "only a cgroup2 mount's option counts"
        );
        assert_eq!(join_cost(Some("1\n"), hybrid), "");
        assert_eq!(join_cost(Some("0\n"), favoured), "");
        assert_eq!(
            join_cost(None, hybrid),
            "",
            "a kernel without the knob says nothing"
        );
    }

    #[test]
    fn reads_its_own_peak_memory_without_a_group() {
        let mb = Confinement::bare(128)
            .peak_memory_mb(std::process::id())
            .unwrap();
        assert!(mb > 0 && mb < 64 * 1024, "{mb}");
    }
}
