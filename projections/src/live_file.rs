//! The embedded read store's file, which a full rebuild replaces whole.
//!
//! A full rebuild on SQLite writes its shadow into a file of its own and then
//! puts it in place by renaming a symbolic link over the configured path
//! (`read.db` → `read.<generation>.db`), under the live file's write lock
//! (see `rebuild`). SQLite resolves the link when it opens a database and names
//! the `-wal` and `-shm` files after the target, so every connection opened
//! afterwards is on the new file, while the connections opened before stay on
//! the old one (unlinked, still readable, complete as of the switch).
//!
//! [`LiveFile`] is how a process notices: it looks at what the path names
//! (`stat`, following the link: device and inode) each time a pooled
//! connection is handed out, and notes the instant it first saw another file
//! there. A connection opened before that instant may be on the old file: the
//! pools close it instead of handing it out (`before_acquire`), and the
//! pipeline, which can have taken its connection just before the switch and
//! then waited for the write lock, checks again once it holds that lock
//! ([`LiveFile::outdated`] with the writer's age) and writes nothing on an
//! old file. An inode number cannot come back while a connection holds the
//! old file open, so a change is never missed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the read store's path points, as this process last saw it.
#[derive(Debug)]
pub(crate) struct LiveFile {
    path: PathBuf,
    /// The origin of the instants below.
    base: Instant,
    seen: Mutex<Seen>,
    /// When the writer's connection (one, see `ReadStore::writer`) was opened,
    /// in nanoseconds since `base`.
    writer_opened: AtomicU64,
}

#[derive(Debug)]
struct Seen {
    file: Option<(u64, u64)>,
    /// When another file was first seen at the path (since `base`).
    switched: Option<Duration>,
}

impl LiveFile {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            base: Instant::now(),
            seen: Mutex::new(Seen {
                file: identity(path),
                switched: None,
            }),
            writer_opened: AtomicU64::new(0),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a connection opened `age` ago may be on a file the path no
    /// longer names. Errs on the safe side: a connection opened between the
    /// switch and the moment this process noticed it counts as old.
    pub(crate) fn outdated(&self, age: Duration) -> bool {
        let now = self.base.elapsed();
        let switched = self.look(now);
        match switched {
            Some(at) => now.saturating_sub(age) <= at,
            None => false,
        }
    }

    /// Notes that the writer's connection was opened now.
    pub(crate) fn writer_opened(&self) {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.writer_opened.store(now, Ordering::Release);
    }

    /// Whether the writer's connection may be on a file the path no longer
    /// names (see [`LiveFile::outdated`]).
    pub(crate) fn writer_outdated(&self) -> bool {
        let opened = Duration::from_nanos(self.writer_opened.load(Ordering::Acquire));
        self.outdated(self.base.elapsed().saturating_sub(opened))
    }

    fn look(&self, now: Duration) -> Option<Duration> {
        let file = identity(&self.path);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if file.is_some() && file != seen.file {
            if seen.file.is_some() {
                seen.switched = Some(now);
            }
            seen.file = file;
        }
        seen.switched
    }
}

/// Device and inode of the file `path` names, following links.
fn identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_the_path_named_another_file_are_outdated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read.db");
        std::fs::write(&path, b"old").unwrap();
        let live = LiveFile::new(&path);
        std::thread::sleep(Duration::from_millis(2));
        assert!(!live.outdated(Duration::from_secs(3600)), "nothing switched yet");

        std::fs::write(dir.path().join("read.1.db"), b"new").unwrap();
        let link = dir.path().join("read.db.link");
        std::os::unix::fs::symlink("read.1.db", &link).unwrap();
        std::fs::rename(&link, &path).unwrap();

        assert!(live.outdated(Duration::from_secs(3600)), "opened before the switch");
        std::thread::sleep(Duration::from_millis(2));
        assert!(!live.outdated(Duration::from_micros(10)), "opened after it was noticed");

        // The writer's connection is judged by when it was opened.
        assert!(live.writer_outdated(), "opened at the origin, before the switch");
        live.writer_opened();
        assert!(!live.writer_outdated());

        // A second switch, from link to link.
        std::fs::write(dir.path().join("read.2.db"), b"newer").unwrap();
        std::os::unix::fs::symlink("read.2.db", &link).unwrap();
        std::fs::rename(&link, &path).unwrap();
        assert!(live.writer_outdated());
    }
}
