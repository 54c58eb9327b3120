//! The data directory (`CARELOG_DATA_DIR`) of an embedded deployment: the
//! SQLite databases, the secrets generated on first start, and the lock that
//! allows one carelog process per data dir.
//!
//! The lock is one function, [`lock`], taken by the server for its whole life
//! (`Stores::open` with `exclusive`) and by `carelog restore` until its
//! rebuild is done, so no embedded server starts on a half-restored dir.
//! `carelog backup` takes no lock: it copies a consistent snapshot online.

use std::fs::File;
use std::path::Path;

use anyhow::Context;

use crate::config::{Settings, JWT_SECRET_FILE, MASTER_KEY_FILE};

/// The embedded event store's file.
pub const EVENTS_DB: &str = "events.db";
/// The embedded read store's file.
pub const READ_DB: &str = "read.db";
/// The file whose advisory lock says a process uses the data dir.
const LOCK_FILE: &str = "carelog.lock";

/// Whether these settings keep a database in the data dir (either store
/// without a server URL): only then does the data dir need its lock.
pub fn in_use(settings: &Settings) -> bool {
    settings.stores.event_store_url.is_none() || settings.stores.read_store_url.is_none()
}

/// The data-dir lock, held for as long as this value lives (the operating
/// system releases it when the process ends, however it ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Takes the data-dir lock when the settings use the data dir, creating the
/// dir if needed; `None` when both stores are servers. Fails at once, naming
/// the dir, when another process holds it.
pub fn lock(settings: &Settings) -> anyhow::Result<Option<DataDirLock>> {
    if !in_use(settings) {
        return Ok(None);
    }
    let dir = &settings.stores.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data dir {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.try_lock()
        .map_err(|_| anyhow::anyhow!("another carelog process is using {}; stop it first", dir.display()))?;
    Ok(Some(DataDirLock { _file: file }))
}

/// Creates the data dir and makes it private. The embedded databases hold ID
/// numbers, phones and password hashes: the dir is 0700 and its database
/// files 0600, whatever the umask. The files are created 0600 before SQLite
/// opens them (SQLite gives its `-wal` and `-shm` files the database's own
/// mode); files made by older versions are tightened on every start.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data dir {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let set = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot restrict {}", path.display()))
        };
        set(dir, 0o700)?;
        for db in [EVENTS_DB, READ_DB] {
            let path = dir.join(db);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            for suffix in ["", "-wal", "-shm"] {
                let file = dir.join(format!("{db}{suffix}"));
                if file.exists() {
                    set(&file, 0o600)?;
                }
            }
        }
        for name in [JWT_SECRET_FILE, MASTER_KEY_FILE, LOCK_FILE] {
            let file = dir.join(name);
            if file.exists() {
                set(&file, 0o600)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded_in(dir: &Path) -> Settings {
        let vars = [("CARELOG_DATA_DIR".to_string(), dir.display().to_string())].into();
        Settings::from_map(&vars).unwrap()
    }

    #[test]
    fn one_process_per_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let settings = embedded_in(&dir.path().join("data"));
        let held = lock(&settings).unwrap();
        assert!(held.is_some(), "embedded settings take the lock");
        let err = lock(&settings).unwrap_err().to_string();
        assert!(err.contains("another carelog process"), "{err}");
        drop(held);
        assert!(lock(&settings).unwrap().is_some(), "released with its holder");
    }

    #[test]
    fn servers_need_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = embedded_in(dir.path());
        settings.stores.event_store_url = Some(crate::config::Secret::new("postgres://h/db"));
        settings.stores.read_store_url = Some(crate::config::Secret::new("mysql://h/db"));
        assert!(lock(&settings).unwrap().is_none());
        assert!(!dir.path().join(LOCK_FILE).exists());
    }
}
