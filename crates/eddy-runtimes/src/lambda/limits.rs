//! The memory limit of a worker, and what it used.
//!
//! `memory_mb` is enforced with `RLIMIT_DATA` (the process's heap and private writable
//! mappings), set in the child between fork and exec. `RLIMIT_AS` would be simpler but kills
//! Node at start: V8 reserves far more address space than it uses. Going over makes the next
//! allocation fail: Node's heap reports `JavaScript heap out of memory` and aborts (eddy reports
//! `Runtime.OutOfMemory`), a large `Buffer` throws `RangeError`, Python raises `MemoryError`.

use nix::sys::resource::{Resource, setrlimit};
use tokio::process::Command;

const MIB: u64 = 1024 * 1024;

/// Limits the process `command` starts to `memory_mb` of data.
pub(super) fn apply(command: &mut Command, memory_mb: u32) {
    let bytes = u64::from(memory_mb) * MIB;
    // SAFETY: the closure runs in the child between fork and exec and only calls setrlimit,
    // which is async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            setrlimit(Resource::RLIMIT_DATA, bytes, bytes).map_err(std::io::Error::from)
        });
    }
}

/// The peak resident memory of process `pid` in MB, rounded up (`VmHWM` in `/proc`).
pub(super) fn peak_memory_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_peak_memory() {
        let mb = peak_memory_mb(std::process::id()).unwrap();
        assert!(mb > 0 && mb < 64 * 1024, "{mb}");
    }
}
