//! A watch folder read without ever following a symbolic link.
//!
//! Changes arrive as paths, a moment after they happened; by then any directory on the way may
//! have been swapped for a link to somewhere else. So nothing is opened by path: the folder is
//! opened once per pass, and every file below it is reached from that descriptor, one
//! component at a time, each opened with `O_NOFOLLOW`. A link anywhere on the way — a file, a
//! directory, a parent replaced in the middle of a pass — ends the walk there: whatever it
//! points at is not part of the folder.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AT_FDCWD, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat};

/// A watch folder, opened.
pub struct Folder {
    root: OwnedFd,
}

/// What a path below the folder names now.
pub enum Found {
    File(File),
    Dir(OwnedFd),
    /// Nothing, a link, or something that is neither a file nor a folder.
    Absent,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
/// A FIFO must not block the walk; a device is never read.
const ENTRY_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY);

impl Folder {
    /// Opens the folder the operator named (following a link there: that path is theirs).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let root = openat(
            AT_FDCWD,
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self { root })
    }

    /// What `relative` (a path below the folder) names now.
    pub fn find(&self, relative: &Path) -> Found {
        let mut names = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(name) => names.push(name),
                Component::CurDir => {}
                _ => return Found::Absent,
            }
        }
        let Some((last, parents)) = names.split_last() else {
            return self.root.try_clone().map_or(Found::Absent, Found::Dir);
        };
        let mut dir = match self.root.try_clone() {
            Ok(fd) => fd,
            Err(_) => return Found::Absent,
        };
        for name in parents {
            match openat(dir.as_fd(), *name, DIR_FLAGS, Mode::empty()) {
                Ok(next) => dir = next,
                Err(_) => return Found::Absent,
            }
        }
        classify(openat(dir.as_fd(), *last, ENTRY_FLAGS, Mode::empty()).ok())
    }

    /// Every regular file at or below `relative`, by its path below the folder, in path order,
    /// each already open.
    pub fn files(&self, relative: &Path) -> Vec<(PathBuf, File)> {
        let mut found = Vec::new();
        match self.find(relative) {
            Found::File(file) => found.push((relative.to_path_buf(), file)),
            Found::Dir(dir) => walk(dir, relative, &mut found),
            Found::Absent => {}
        }
        found
    }
}

fn classify(fd: Option<OwnedFd>) -> Found {
    let Some(fd) = fd else { return Found::Absent };
    let Ok(stat) = fstat(&fd) else {
        return Found::Absent;
    };
    match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => Found::File(File::from(fd)),
        SFlag::S_IFDIR => Found::Dir(fd),
        _ => Found::Absent,
    }
}

fn walk(dir: OwnedFd, at: &Path, found: &mut Vec<(PathBuf, File)>) {
    let Ok(listing) = dir
        .try_clone()
        .map_err(|_| ())
        .and_then(|fd| Dir::from_fd(fd).map_err(|_| ()))
    else {
        return;
    };
    let mut names: Vec<std::ffi::OsString> = listing
        .into_iter()
        .flatten()
        .map(|entry| {
            use std::os::unix::ffi::OsStrExt;
            std::ffi::OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string()
        })
        .filter(|name| name != "." && name != "..")
        .collect();
    names.sort();
    for name in names {
        let path = at.join(&name);
        match classify(openat(dir.as_fd(), name.as_os_str(), ENTRY_FLAGS, Mode::empty()).ok()) {
            Found::File(file) => found.push((path, file)),
            Found::Dir(sub) => walk(sub, &path, found),
            Found::Absent => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read(mut file: &File) -> String {
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn links_anywhere_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (watched, outside) = (dir.path().join("in"), dir.path().join("outside"));
        std::fs::create_dir_all(watched.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), "outside").unwrap();
        std::fs::write(watched.join("sub/a.txt"), "inside").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), watched.join("file-link")).unwrap();
        std::os::unix::fs::symlink(&outside, watched.join("dir-link")).unwrap();
        let folder = Folder::open(&watched).unwrap();
        let files: Vec<(PathBuf, String)> = folder
            .files(Path::new(""))
            .iter()
            .map(|(p, f)| (p.clone(), read(f)))
            .collect();
        assert_eq!(files, [(PathBuf::from("sub/a.txt"), "inside".to_string())]);
        assert!(matches!(
            folder.find(Path::new("dir-link/secret.txt")),
            Found::Absent
        ));
        assert!(matches!(folder.find(Path::new("file-link")), Found::Absent));
        assert!(matches!(
            folder.find(Path::new("../outside/secret.txt")),
            Found::Absent
        ));
        // A parent swapped for a link after the change was seen: the path now leads outside.
        std::fs::rename(watched.join("sub"), watched.join("sub.old")).unwrap();
        std::os::unix::fs::symlink(&outside, watched.join("sub")).unwrap();
        assert!(folder.files(Path::new("sub")).is_empty());
        assert!(matches!(
            folder.find(Path::new("sub/secret.txt")),
            Found::Absent
        ));
    }
}
