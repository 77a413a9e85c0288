//! Running out of disk space without falling over. When the disk under the data directory
//! fills, writes that would add data are refused with a clear, retryable error while reads and
//! deletes go on; writes resume by themselves once space returns.
//!
//! Deletes need a little space of their own (the database writes its log before it frees
//! anything), so eddy keeps a *ballast* file: room set aside at start and given up the moment
//! the disk is found full, so deletes and eddy's own bookkeeping can still commit. The ballast
//! is laid down again when space returns.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::sync::watch;

use crate::BusError;

/// The ballast file in the data directory.
pub const BALLAST_FILE: &str = "ballast";
/// The ballast's size: 5% of the file system, at least 256 KiB and at most 64 MiB.
const BALLAST_SHARE: u64 = 20;
const BALLAST_MIN: u64 = 256 << 10;
const BALLAST_MAX: u64 = 64 << 20;

/// How the storage under eddy is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageState {
    Ok,
    /// The disk is full: writes that add data are refused until space returns.
    Full {
        reason: String,
    },
    /// The last write failed with an I/O error (the database was opened again); writes are
    /// still tried, and the next that commits clears this.
    Faulty {
        reason: String,
    },
    /// The database could not be kept consistent (it could not be reopened after an I/O
    /// error): nothing more is written, and the process should stop.
    Failed {
        reason: String,
    },
}

/// The data directory's space: its state, and the ballast.
pub(crate) struct Space {
    dir: PathBuf,
    ballast: PathBuf,
    ballast_bytes: u64,
    state: watch::Sender<StorageState>,
    /// Serialises giving up and laying down the ballast.
    changing: Mutex<()>,
    /// Whether the database lives on this disk (SQLite): only then is a full disk a state that
    /// lasts until space returns, with a ballast to give up. (PostgreSQL's disk is not in
    /// sight: each statement that finds it full is refused on its own.)
    local: bool,
}

impl Space {
    /// Watches the space of `dir` (when the database lives there: `local`), laying down the
    /// ballast if it is missing and there is room.
    pub(crate) fn open(dir: &Path, local: bool) -> Self {
        let total = statvfs(dir).map_or(0, |s| s.total);
        let ballast_bytes = (total / BALLAST_SHARE).clamp(BALLAST_MIN, BALLAST_MAX);
        let space = Self {
            dir: dir.to_path_buf(),
            ballast: dir.join(BALLAST_FILE),
            ballast_bytes,
            state: watch::Sender::new(StorageState::Ok),
            changing: Mutex::new(()),
            local,
        };
        space.recheck();
        space
    }

    pub(crate) fn state(&self) -> StorageState {
        self.state.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<StorageState> {
        self.state.subscribe()
    }

    /// `Ok` when a write that adds data may go ahead.
    pub(crate) fn check_room(&self) -> Result<(), BusError> {
        match &*self.state.borrow() {
            StorageState::Ok | StorageState::Faulty { .. } => Ok(()),
            StorageState::Full { reason } => Err(BusError::StorageFull {
                reason: reason.clone(),
            }),
            StorageState::Failed { reason } => Err(BusError::StorageFailed {
                reason: reason.clone(),
            }),
        }
    }

    /// The disk was found full: writes that add data are refused from now on, and the ballast
    /// is given up so deletes can commit.
    pub(crate) fn full(&self, cause: &str) {
        if !self.local {
            return;
        }
        let _changing = self.changing.lock().expect("space lock");
        if !matches!(
            *self.state.borrow(),
            StorageState::Ok | StorageState::Faulty { .. }
        ) {
            return;
        }
        let released = std::fs::remove_file(&self.ballast).is_ok();
        let free = statvfs(&self.dir).map_or(0, |s| s.free);
        let reason = format!(
            "the disk under the data directory {} is full ({cause}); writes that add data are refused until space returns, reads and deletes go on",
            self.dir.display()
        );
        tracing::error!(free_bytes = free, ballast_released = released, "{reason}");
        self.state.send_replace(StorageState::Full { reason });
    }

    /// A write failed with an I/O error and the database was opened again.
    pub(crate) fn faulty(&self, reason: String) {
        self.state.send_if_modified(|state| match state {
            StorageState::Ok | StorageState::Faulty { .. } => {
                *state = StorageState::Faulty { reason };
                true
            }
            _ => false,
        });
    }

    /// A write committed: an I/O fault before it has passed.
    pub(crate) fn committed(&self) {
        self.state.send_if_modified(|state| {
            let faulty = matches!(state, StorageState::Faulty { .. });
            if faulty {
                tracing::info!("writes commit again after an I/O error");
                *state = StorageState::Ok;
            }
            faulty
        });
    }

    /// The database cannot be written any more.
    pub(crate) fn failed(&self, reason: String) {
        tracing::error!("{reason}");
        self.state.send_replace(StorageState::Failed { reason });
    }

    /// Looks at the free space: a full disk with room again (the ballast's size twice over)
    /// gets its ballast back and takes writes; a disk with less free than the ballast and no
    /// ballast left counts as full. A missing ballast is laid down when there is room.
    pub(crate) fn recheck(&self) {
        if !self.local {
            return;
        }
        let Ok(stats) = statvfs(&self.dir) else {
            return;
        };
        let state = self.state();
        let has_ballast = self.ballast.exists();
        match state {
            StorageState::Failed { .. } => {}
            StorageState::Full { .. } => {
                if stats.free >= 2 * self.ballast_bytes && self.lay_ballast() {
                    let _changing = self.changing.lock().expect("space lock");
                    tracing::info!(free_bytes = stats.free, "space returned: writes resume");
                    self.state.send_replace(StorageState::Ok);
                }
            }
            StorageState::Ok | StorageState::Faulty { .. } if !has_ballast => {
                if stats.free >= 2 * self.ballast_bytes {
                    self.lay_ballast();
                } else if stats.free < self.ballast_bytes {
                    self.full(&format!("{} bytes free", stats.free));
                }
            }
            StorageState::Ok | StorageState::Faulty { .. } => {}
        }
    }

    /// Sets the ballast's room aside (allocated, so the file system really holds it).
    fn lay_ballast(&self) -> bool {
        let _changing = self.changing.lock().expect("space lock");
        let laid = (|| {
            let staged = self.dir.join(format!("{BALLAST_FILE}.new"));
            let file = crate::private_file(
                &staged,
                std::fs::File::options()
                    .write(true)
                    .create(true)
                    .truncate(true),
            )?;
            let allocated = nix::fcntl::posix_fallocate(&file, 0, self.ballast_bytes as i64);
            if let Err(e) = allocated {
                let _ = std::fs::remove_file(&staged);
                return Err(std::io::Error::from(e));
            }
            std::fs::rename(&staged, &self.ballast)
        })();
        match laid {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "the ballast could not be laid down");
                false
            }
        }
    }
}

struct Stats {
    total: u64,
    /// Bytes an unprivileged process may still write.
    free: u64,
}

fn statvfs(dir: &Path) -> std::io::Result<Stats> {
    let s = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    let unit = s.fragment_size() as u64;
    Ok(Stats {
        total: s.blocks() as u64 * unit,
        free: s.blocks_available() as u64 * unit,
    })
}

/// Whether an I/O error means the disk (or a quota) is full.
pub fn is_out_of_space(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == nix::libc::ENOSPC || code == nix::libc::EDQUOT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ballast_is_laid_given_up_when_full_and_laid_again() {
        let dir = tempfile::tempdir().unwrap();
        let space = Space::open(dir.path(), true);
        assert_eq!(space.state(), StorageState::Ok);
        let ballast = dir.path().join(BALLAST_FILE);
        assert!(ballast.exists());
        assert!(std::fs::metadata(&ballast).unwrap().len() >= BALLAST_MIN);
        space.full("a test");
        assert!(!ballast.exists(), "given up for deletes");
        let err = space.check_room().unwrap_err();
        assert!(err.to_string().contains("is full (a test)"), "{err}");
        // This disk has room: the next look takes writes again.
        space.recheck();
        assert_eq!(space.state(), StorageState::Ok);
        assert!(ballast.exists());
        assert!(space.check_room().is_ok());
    }
}
