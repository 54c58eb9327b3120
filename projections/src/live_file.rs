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
//! (`stat`, following the link: device and inode) and notes the instant it
//! first saw another file there. It looks twice a second, and each time the
//! pipeline holds the write lock. A connection opened before that instant may
//! be on the old file: the pools close it instead of handing it out
//! (`before_acquire`, an atomic load), and the pipeline, which can have taken
//! its connection just before the switch and then waited for the write lock,
//! writes nothing on an old file ([`LiveFile::writer_outdated`]). So the
//! pipeline always moves first, and a query that waits for its own write
//! (read-your-writes) is on the new file. Until the next look, other queries
//! may still read the old file, which is complete as of the switch: the
//! switch happens at the live checkpoints, and a server behind them has a
//! pipeline at work that looks at once. An inode number cannot come back
//! while a connection holds the old file open, so a change is never missed.
//! (A `stat` per hand-out instead cost 8-10 % of a list's throughput.)

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
    /// The file the path named at the last look.
    file: Mutex<Option<(u64, u64)>>,
    /// When another file was first seen at the path, in nanoseconds since
    /// `base`; 0 when never.
    switched: AtomicU64,
    /// When the writer's connection (one, see `ReadStore::writer`) was opened,
    /// in nanoseconds since `base`.
    writer_opened: AtomicU64,
}

/// How often a process looks at the path besides the pipeline's looks.
pub(crate) const LOOK_EVERY: Duration = Duration::from_millis(500);

impl LiveFile {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            base: Instant::now(),
            file: Mutex::new(identity(path)),
            switched: AtomicU64::new(0),
            writer_opened: AtomicU64::new(0),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    /// Looks at what the path names; the first time it is another file than
    /// at the last look, notes the instant.
    pub(crate) fn look(&self) {
        let file = identity(&self.path);
        let mut seen = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if file.is_some() && file != *seen {
            if seen.is_some() {
                self.switched.store(self.now(), Ordering::Release);
            }
            *seen = file;
        }
    }

    /// Whether a connection opened `age` ago may be on a file the path no
    /// longer names, as of the last look. Errs on the safe side: a connection
    /// opened between the switch and the look that noticed it counts as old.
    pub(crate) fn outdated(&self, age: Duration) -> bool {
        let switched = self.switched.load(Ordering::Acquire);
        let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
        switched != 0 && self.now().saturating_sub(age) <= switched
    }

    /// Notes that the writer's connection was opened now.
    pub(crate) fn writer_opened(&self) {
        self.writer_opened.store(self.now(), Ordering::Release);
    }

    /// Looks at the path, then says whether the writer's connection may be
    /// on a file the path no longer names (see [`LiveFile::outdated`]).
    pub(crate) fn writer_outdated(&self) -> bool {
        self.look();
        let switched = self.switched.load(Ordering::Acquire);
        switched != 0 && self.writer_opened.load(Ordering::Acquire) <= switched
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
        live.look();
        assert!(!live.outdated(Duration::from_secs(3600)), "nothing switched yet");

        std::fs::write(dir.path().join("read.1.db"), b"new").unwrap();
        let link = dir.path().join("read.db.link");
        std::os::unix::fs::symlink("read.1.db", &link).unwrap();
        std::fs::rename(&link, &path).unwrap();
        assert!(!live.outdated(Duration::from_secs(3600)), "not looked yet");

        // The pipeline looks under the lock: its connection is old.
        assert!(live.writer_outdated(), "opened at the origin, before the switch");
        assert!(live.outdated(Duration::from_secs(3600)), "opened before the switch");
        std::thread::sleep(Duration::from_millis(2));
        assert!(!live.outdated(Duration::from_micros(10)), "opened after it was noticed");
        live.writer_opened();
        assert!(!live.writer_outdated());

        // A second switch, from link to link.
        std::fs::write(dir.path().join("read.2.db"), b"newer").unwrap();
        std::os::unix::fs::symlink("read.2.db", &link).unwrap();
        std::fs::rename(&link, &path).unwrap();
        live.look();
        assert!(live.outdated(Duration::from_millis(1)));
        assert!(live.writer_outdated());
    }
}
