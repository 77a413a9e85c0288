//! What a function's private view of the file system looks like: which directories are
//! covered by an empty, private tmpfs (masks) and which directories it needs are bound back in,
//! read-only, at their own paths (exposures). Pure: the tests check plans without mounting.
//!
//! Masks hide: the data directory (never visible to a function), the world-writable scratch
//! directories (`/tmp`, `/var/tmp`, `/dev/shm`: each worker gets its own, so functions cannot
//! leave files for each other), and — when the function runs as a user of its own — every
//! directory on the way to something it needs that such a user could not pass through (`/root`,
//! a 0700 home). Exposures bring back exactly what the function needs under those masks: its
//! code folder and its interpreter's installation, at the same paths, so shared-library paths
//! and `sys.prefix` stay right.

use std::path::{Path, PathBuf};

/// A tmpfs of this mode over a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mask {
    pub path: PathBuf,
    pub kind: MaskKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MaskKind {
    /// Scratch space the function may write (mode 1777), private to the worker.
    Scratch,
    /// Nothing to see, nothing to write (mode 000, read-only): the data directory.
    Hidden,
    /// A directory on the way to something exposed (mode 0755, read-only once populated).
    Passage,
}

/// One step of setting up the view, in the order they run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Mask(Mask),
    /// Bind the real directory `path` back at `path`, read-only, after creating `create`
    /// (mount points inside the tmpfs that covers it) in order.
    Expose {
        path: PathBuf,
        create: Vec<PathBuf>,
    },
}

impl Step {
    fn path(&self) -> &Path {
        match self {
            Step::Mask(m) => &m.path,
            Step::Expose { path, .. } => path,
        }
    }
}

/// Why a function's view cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{0} is inside the data directory, which functions never see; keep function code outside it"
    )]
    InsideDataDir(PathBuf),
}

/// The steps that give a function its view. `masks` are the directories always covered;
/// `needed` the directories it must see; `passable(dir)` says whether the function's user may
/// pass through `dir` (search permission), which decides which ancestors get a passage.
pub(crate) fn plan(
    masks: &[Mask],
    needed: &[PathBuf],
    data_dir: &Path,
    passable: impl Fn(&Path) -> bool,
) -> Result<Vec<Step>, PlanError> {
    let mut masks: Vec<Mask> = masks.to_vec();
    for dir in needed {
        if dir.starts_with(data_dir) {
            return Err(PlanError::InsideDataDir(dir.clone()));
        }
        // Every ancestor the function could not pass through becomes a passage: a fresh
        // directory holding only the way to what it needs.
        for ancestor in dir.ancestors().skip(1) {
            if ancestor.parent().is_some() && !passable(ancestor) {
                masks.push(Mask {
                    path: ancestor.to_path_buf(),
                    kind: MaskKind::Passage,
                });
            }
        }
    }
    let mut steps: Vec<Step> = masks.into_iter().map(Step::Mask).collect();
    steps.extend(needed.iter().map(|path| Step::Expose {
        path: path.clone(),
        create: Vec::new(),
    }));
    // Outer directories first; at one path, a mask before an exposure of the same directory.
    steps.sort_by(|a, b| {
        let depth = |s: &Step| s.path().components().count();
        let rank = |s: &Step| matches!(s, Step::Expose { .. }) as u8;
        (depth(a), a.path(), rank(a)).cmp(&(depth(b), b.path(), rank(b)))
    });
    steps.dedup_by(|a, b| {
        a.path() == b.path() && std::mem::discriminant(a) == std::mem::discriminant(b)
    });
    let mut done: Vec<Step> = Vec::with_capacity(steps.len());
    for step in steps {
        // The nearest step already taken that covers this path decides what is there now.
        let enclosing = done
            .iter()
            .filter(|d| step.path().starts_with(d.path()) && d.path() != step.path())
            .max_by_key(|d| d.path().components().count());
        match (step, enclosing) {
            // Under a fresh tmpfs: an exposure needs its mount point made; a mask is moot
            // (nothing is there to hide) unless something exposed lies under it.
            (Step::Expose { path, .. }, Some(Step::Mask(m))) => {
                let create = path
                    .ancestors()
                    .take_while(|a| *a != m.path)
                    .map(Path::to_path_buf)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                done.push(Step::Expose { path, create });
            }
            // Already visible as it is (outside every mask, or inside an exposed directory).
            (Step::Expose { .. }, _) => {}
            // Under a fresh tmpfs there is nothing to hide, and the way to anything exposed
            // further in is created by that exposure.
            (Step::Mask(_), Some(Step::Mask(_))) => {}
            (Step::Mask(mask), _) => done.push(Step::Mask(mask)),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(path: &str, kind: MaskKind) -> Mask {
        Mask {
            path: path.into(),
            kind,
        }
    }

    fn scratch() -> Vec<Mask> {
        vec![
            mask("/tmp", MaskKind::Scratch),
            mask("/srv/app/.eddy", MaskKind::Hidden),
        ]
    }

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn code_under_a_private_tmp_is_bound_back_in() {
        let steps = plan(
            &scratch(),
            &paths(&["/tmp/t1/code"]),
            Path::new("/srv/app/.eddy"),
            |_| true,
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::Mask(mask("/tmp", MaskKind::Scratch)),
                Step::Mask(mask("/srv/app/.eddy", MaskKind::Hidden)),
                Step::Expose {
                    path: "/tmp/t1/code".into(),
                    create: paths(&["/tmp/t1", "/tmp/t1/code"]),
                },
            ]
        );
    }

    #[test]
    fn the_data_dir_is_hidden_even_inside_an_exposed_folder() {
        // An exec function runs in the manifest's folder, which holds the data directory.
        let masks = vec![
            mask("/tmp", MaskKind::Scratch),
            mask("/tmp/p/.eddy", MaskKind::Hidden),
        ];
        let steps = plan(
            &masks,
            &paths(&["/tmp/p"]),
            Path::new("/tmp/p/.eddy"),
            |_| true,
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::Mask(mask("/tmp", MaskKind::Scratch)),
                Step::Expose {
                    path: "/tmp/p".into(),
                    create: paths(&["/tmp/p"]),
                },
                Step::Mask(mask("/tmp/p/.eddy", MaskKind::Hidden)),
            ]
        );
    }

    #[test]
    fn a_closed_home_becomes_a_passage_to_the_interpreter_only() {
        let needed = paths(&["/root/.pyenv/versions/3.11.7", "/work/app/code"]);
        let steps = plan(&scratch(), &needed, Path::new("/srv/app/.eddy"), |p| {
            p != Path::new("/root")
        })
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::Mask(mask("/root", MaskKind::Passage)),
                Step::Mask(mask("/tmp", MaskKind::Scratch)),
                Step::Mask(mask("/srv/app/.eddy", MaskKind::Hidden)),
                Step::Expose {
                    path: "/root/.pyenv/versions/3.11.7".into(),
                    create: paths(&[
                        "/root/.pyenv",
                        "/root/.pyenv/versions",
                        "/root/.pyenv/versions/3.11.7"
                    ]),
                },
            ]
        );
    }

    #[test]
    fn nested_needs_bind_once_and_hidden_things_stay_hidden() {
        let needed = paths(&["/tmp/a", "/tmp/a/b/c"]);
        let steps = plan(&scratch(), &needed, Path::new("/srv/app/.eddy"), |_| true).unwrap();
        let exposed: Vec<_> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Expose { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            exposed,
            paths(&["/tmp/a"]),
            "the inner folder is visible through the outer"
        );
        // A data directory under a private /tmp that nothing exposes needs no mask of its own.
        let masks = vec![
            mask("/tmp", MaskKind::Scratch),
            mask("/tmp/d", MaskKind::Hidden),
        ];
        let steps = plan(&masks, &paths(&["/tmp/code"]), Path::new("/tmp/d"), |_| {
            true
        })
        .unwrap();
        assert!(
            !steps.iter().any(|s| s.path() == Path::new("/tmp/d")),
            "{steps:?}"
        );
    }

    /// As root, a function's user cannot pass a 0700 folder under /tmp (a test's): it is
    /// created anew, open, inside the private /tmp, with the code bound below it.
    #[test]
    fn a_closed_folder_under_tmp_is_made_again_inside_it() {
        let steps = plan(
            &scratch(),
            &paths(&["/tmp/closed/code"]),
            Path::new("/srv/app/.eddy"),
            |p| p != Path::new("/tmp/closed"),
        )
        .unwrap();
        assert!(
            steps.contains(&Step::Expose {
                path: "/tmp/closed/code".into(),
                create: paths(&["/tmp/closed", "/tmp/closed/code"]),
            }),
            "{steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|s| s.path() == Path::new("/tmp/closed") && matches!(s, Step::Mask(_))),
            "{steps:?}"
        );
    }

    #[test]
    fn code_inside_the_data_dir_is_refused() {
        let err = plan(
            &scratch(),
            &paths(&["/srv/app/.eddy/runtimes"]),
            Path::new("/srv/app/.eddy"),
            |_| true,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("inside the data directory"),
            "{err}"
        );
    }
}
