//! What `eddy serve` follows on disk: its manifests and the code folders of their functions (a
//! change reloads the app), and each bucket's `watch` folder (its files become objects).
//!
//! Changes arrive debounced, so an editor's burst of writes or a file still being copied is
//! seen once, after it settles.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::folder::{Folder, Found};
use std::sync::Arc;

use eddy_objects::ObjectStore;

use crate::NodeError;
use eddy_core::{BucketName, ObjectKey};
use eddy_objects::{ListParams, ObjectError, PutOptions};
use eddy_subscriptions::{App, Runtime};
use notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

/// How long the disk must be quiet before a change is acted on.
const SETTLE: Duration = Duration::from_millis(200);
/// Batches of changes waiting to be handled before the watcher thread waits for room.
const QUEUE: usize = 64;

/// Follows the disk while it lives.
pub struct Watching {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The paths that matter for one app.
#[derive(Default)]
struct Targets {
    manifests: Vec<PathBuf>,
    code: Vec<PathBuf>,
    buckets: Vec<(BucketName, PathBuf)>,
}

impl Targets {
    fn of(manifests: &[PathBuf], app: &App) -> Self {
        let code = app.functions.iter().filter_map(|f| match &f.runtime {
            Runtime::Nodejs { code, .. } | Runtime::Python { code, .. } => Some(code),
            Runtime::Provided { dir, .. } => Some(dir),
            _ => None,
        });
        let buckets = app
            .buckets
            .iter()
            .filter_map(|b| Some((b.name.clone(), canonical(b.watch.as_ref()?))));
        Self {
            manifests: manifests.iter().map(canonical).collect(),
            code: code.map(canonical).collect(),
            buckets: buckets.collect(),
        }
    }

    /// Each folder to watch, and whether to watch below it. A manifest's folder is watched
    /// rather than the file, which editors replace by renaming.
    fn roots(&self) -> HashSet<(PathBuf, bool)> {
        let parents = self
            .manifests
            .iter()
            .filter_map(|m| Some((m.parent()?.to_path_buf(), false)));
        let below = self.code.iter().chain(self.buckets.iter().map(|(_, d)| d));
        parents.chain(below.map(|d| (d.clone(), true))).collect()
    }

    fn reloads(&self, path: &Path) -> bool {
        self.manifests.iter().any(|m| m == path)
            || (self.code.iter().any(|d| path.starts_with(d))
                && !eddy_subscriptions::locked::generated(path))
    }

    fn bucket_of(&self, path: &Path) -> Option<&(BucketName, PathBuf)> {
        self.buckets.iter().find(|(_, dir)| path.starts_with(dir))
    }
}

fn canonical(path: &PathBuf) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.clone())
}

/// The file watcher and the folders it has been told to watch.
struct Roots {
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    watched: HashSet<(PathBuf, bool)>,
}

impl Roots {
    /// Watches what `targets` needs and is not watched yet. (Folders an old app needed stay
    /// watched; changes there are ignored.)
    fn follow(&mut self, targets: &Targets) {
        for (root, recursive) in targets.roots() {
            if self.watched.contains(&(root.clone(), recursive)) {
                continue;
            }
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match self.debouncer.watch(&root, mode) {
                Ok(()) => {
                    self.watched.insert((root, recursive));
                }
                Err(e) => tracing::warn!(path = %root.display(), error = %e, "cannot watch"),
            }
        }
    }
}

/// What the watcher follows and whom it tells.
pub(crate) struct Followed {
    pub manifests: Vec<PathBuf>,
    /// Changes under here are eddy's own.
    pub data_dir: PathBuf,
    pub objects: ObjectStore,
    /// The app in service, as it changes (a reload, a deploy, another node's app).
    pub app: tokio::sync::watch::Receiver<Arc<App>>,
    /// Told when the manifests or the functions' code changed.
    pub reload: tokio::sync::mpsc::Sender<()>,
}

/// Starts following the manifests, code folders and watch folders of the app in service (and
/// of each app after it). Files already in the watch folders are ingested before this returns
/// (those whose object differs), so eddy serves a bucket that matches its folder.
pub(crate) async fn start(mut followed: Followed) -> Result<Watching, NodeError> {
    let (changes, mut queue) = tokio::sync::mpsc::channel::<DebounceEventResult>(QUEUE);
    let debouncer = new_debouncer(SETTLE, None, move |result| {
        let _ = changes.blocking_send(result);
    })
    .map_err(|e| NodeError::Watcher(e.to_string()))?;
    let mut roots = Roots {
        debouncer,
        watched: HashSet::new(),
    };
    let data_dir = canonical(&followed.data_dir);
    let objects = followed.objects.clone();
    let current = followed.app.borrow_and_update().clone();
    let mut targets = Targets::of(&followed.manifests, &current);
    roots.follow(&targets);
    for (bucket, dir) in &targets.buckets {
        sync_path(&objects, bucket, dir, dir).await;
    }
    let task = tokio::spawn(async move {
        loop {
            let result = tokio::select! {
                result = queue.recv() => match result {
                    Some(result) => result,
                    None => return,
                },
                changed = followed.app.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // A new app may declare other code and watch folders.
                    let app = followed.app.borrow_and_update().clone();
                    let before: HashSet<_> = targets.buckets.iter().cloned().collect();
                    targets = Targets::of(&followed.manifests, &app);
                    roots.follow(&targets);
                    for (bucket, dir) in targets.buckets.iter().filter(|b| !before.contains(b)) {
                        sync_path(&objects, bucket, dir, dir).await;
                    }
                    continue;
                }
            };
            let paths = match result {
                Ok(events) => changed_paths(events),
                Err(errors) => {
                    errors
                        .iter()
                        .for_each(|e| tracing::warn!(error = %e, "file watcher"));
                    continue;
                }
            };
            let mut reload = false;
            for path in paths.iter().filter(|p| !p.starts_with(&data_dir)) {
                if let Some((bucket, dir)) = targets.bucket_of(path) {
                    sync_path(&objects, bucket, dir, path).await;
                } else if targets.reloads(path) {
                    reload = true;
                }
            }
            if reload {
                tracing::info!("manifests or function code changed; reloading");
                // A reload already asked for covers this change too.
                let _ = followed.reload.try_send(());
            }
        }
    });
    Ok(Watching { task })
}

/// The paths that were created, changed or removed (not merely read).
fn changed_paths(events: Vec<notify_debouncer_full::DebouncedEvent>) -> BTreeSet<PathBuf> {
    events
        .into_iter()
        .filter(|e| !matches!(e.kind, EventKind::Access(_)))
        .flat_map(|e| e.event.paths)
        .collect()
}

/// Brings the objects under `path` in line with the disk: each regular file there becomes the
/// object named by its path below `dir` (unless the object already holds the same bytes), and
/// a path that is gone takes its object, and the objects below it, away. The folder is read
/// without following links (see [`crate::folder`]): a link is as good as gone.
async fn sync_path(objects: &ObjectStore, bucket: &BucketName, dir: &Path, path: &Path) {
    let Ok(relative) = path.strip_prefix(dir).map(Path::to_path_buf) else {
        return;
    };
    let opened = {
        let (dir, relative) = (dir.to_path_buf(), relative.clone());
        tokio::task::spawn_blocking(move || {
            let folder = Folder::open(&dir)?;
            let files = folder.files(&relative);
            let gone = files.is_empty() && matches!(folder.find(&relative), Found::Absent);
            Ok::<_, std::io::Error>((files, gone))
        })
        .await
    };
    let (files, gone) = match opened {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!(bucket = %bucket, dir = %dir.display(), error = %e, "watch folder cannot be opened");
            return;
        }
        Err(_) => return,
    };
    let outcome = if gone {
        remove_below(objects, bucket, &key_of(&relative)).await
    } else {
        let mut result = Ok(());
        for (path, file) in files {
            result = result.and(ingest(objects, bucket, &key_of(&path), file).await);
        }
        result
    };
    if let Err(e) = outcome {
        tracing::warn!(bucket = %bucket, path = %path.display(), error = %e, "watch folder not synced");
    }
}

/// The object key of a file's path below its watch folder: its parts joined with `/`.
fn key_of(relative: &Path) -> String {
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Stores the bytes of `file` (already open: never reopened by path) as `key`, unless the
/// object holds them already.
async fn ingest(
    objects: &ObjectStore,
    bucket: &BucketName,
    key: &str,
    file: std::fs::File,
) -> Result<(), ObjectError> {
    let key = ObjectKey::new(key)?;
    let Some((same, file)) = holds_same_bytes(objects, bucket, &key, file).await else {
        return Ok(());
    };
    if same {
        return Ok(());
    }
    let mut reader = tokio::fs::File::from_std(file);
    let meta = objects
        .put_object(bucket, &key, &mut reader, PutOptions::default())
        .await?;
    tracing::info!(bucket = %bucket, key = %key, size = meta.size, "ingested from the watch folder");
    Ok(())
}

/// Whether the object already has the file's bytes: same size, and the same MD5 when the
/// ETag is one. Gives the file back, rewound (`None` if it could not be read).
async fn holds_same_bytes(
    objects: &ObjectStore,
    bucket: &BucketName,
    key: &ObjectKey,
    file: std::fs::File,
) -> Option<(bool, std::fs::File)> {
    let Ok(meta) = objects.head_object(bucket, key).await else {
        return Some((false, file));
    };
    let size = file.metadata().map(|m| m.len()).ok();
    if size != Some(meta.size) || meta.etag.contains('-') {
        return Some((false, file));
    }
    let hashed = tokio::task::spawn_blocking(move || {
        use std::io::Seek;
        let mut file = file;
        let md5 = eddy_objects::md5_of(&mut file).ok().map(hex::encode);
        let _ = file.rewind();
        (md5, file)
    })
    .await
    .ok()?;
    let (md5, file) = hashed;
    Some((md5.as_deref() == Some(meta.etag.as_str()), file))
}

/// Removes the object `key` and every object below `key/`.
async fn remove_below(
    objects: &ObjectStore,
    bucket: &BucketName,
    key: &str,
) -> Result<(), ObjectError> {
    if key.is_empty() {
        return Ok(()); // the watch folder itself went away: keep what was ingested
    }
    let mut doomed = vec![key.to_string()];
    let mut params = ListParams {
        prefix: format!("{key}/"),
        max_keys: eddy_objects::MAX_LIST_KEYS,
        ..ListParams::default()
    };
    loop {
        let page = objects.list_objects(bucket, &params).await?;
        doomed.extend(page.objects.iter().map(|o| o.key.to_string()));
        match page.next {
            Some(next) => params.start = Some(next),
            None => break,
        }
    }
    for key in doomed {
        let key = ObjectKey::new(key)?;
        if objects
            .delete_object(bucket, &key, Default::default())
            .await?
            .is_some()
        {
            tracing::info!(bucket = %bucket, key = %key, "removed: its file left the watch folder");
        }
    }
    Ok(())
}
