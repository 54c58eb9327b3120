//! Rebuilding read models beside the live ones, then switching atomically.
//!
//! A rebuild never empties a live table: the chosen projectors replay the
//! history into a *shadow* read store (a scratch database on the MySQL server,
//! a scratch file next to the SQLite one) while the server keeps answering
//! from the live tables. The switch then happens under the live checkpoints'
//! lock, so the live pipeline pauses for it:
//!
//! 1. lock the chosen projectors' checkpoint rows (the pipeline's next batch
//!    waits on them) and read them: positions `L`;
//! 2. bring the shadow to `T = max(L, where the shadow is)` per projector
//!    (the caller's closure: normally a few events, as the shadow was built
//!    up to the head just before);
//! 3. put the shadow tables in place of the live ones:
//!    - when `T = L` on MySQL (the usual case with a server running): one
//!      `RENAME TABLE` of every table, atomic and O(1); the checkpoints
//!      already say `L`;
//!    - when `T > L` on MySQL (live read models behind the shadow, e.g. a
//!      store seeded or restored with no server running) and every
//!      checkpoint row belongs to a rebuilt projector: the lock released,
//!      then one `RENAME TABLE` of every table *and of the checkpoints
//!      table*, so the shadow's checkpoints (`T`) arrive with its tables. A
//!      live pipeline that moved meanwhile finds its checkpoints changed and
//!      re-reads them (`T`, possibly behind where it was: it applies those
//!      events again, to the new tables, which lack them);
//!    - on SQLite when every projector is rebuilt: the shadow *file* put in
//!      place of the live one, O(1) whatever its size (see
//!      `crate::live_file`). What the rebuild does not rebuild (the
//!      reactors' checkpoints) is copied into the shadow under the lock; the
//!      shadow is made durable and switched to write-ahead logging, renamed
//!      to a generation file (`read.<n>.db`), and a symbolic link at the
//!      configured path (`read.db`) is renamed over the live one. Connections
//!      opened from then on are on the new file; the server's pools close the
//!      ones opened before as they come back, and its pipeline, which checks
//!      again once it holds the write lock, never writes to the old file;
//!    - otherwise (SQLite with a partial rebuild, or a partial rebuild behind
//!      the live read models on MySQL): the rows copied over and the
//!      checkpoints set to `T` in the transaction that holds the lock
//!      (readers see the old snapshot until it commits; the pipeline waits
//!      for the copy);
//! 4. commit, releasing the pipeline, which goes on from `T`.
//!
//! The tables and the checkpoints agree at every instant (a `RENAME` moves
//! them together, or happens only when they need not move; a file holds
//! both), so a crash at any step loses nothing and applies nothing twice, and
//! a query during the rebuild sees either the old complete read model or the
//! new complete one.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::{Acquire, Connection, Executor};

use crate::projector::Projector;
use crate::store::{Dialect, Durability, ReadStore, RowExt};

/// A scratch read store with the full schema, for one rebuild.
pub struct Shadow {
    store: ReadStore,
    place: Place,
    /// Held while the shadow exists: one rebuild per read store at a time.
    _lock: RebuildLock,
}

/// What keeps a second rebuild of the same read store out: the scratch
/// database or file has one fixed name, and the shadow has no journal to
/// survive two writers. On MySQL a named lock (`GET_LOCK`) held by a
/// connection of its own; on SQLite an advisory lock on a file beside the
/// shadow. Either goes with its holder, however the process ends.
enum RebuildLock {
    MySql(#[allow(dead_code)] sqlx::AnyConnection),
    Sqlite(#[allow(dead_code)] std::fs::File),
}

/// The message of a rebuild refused because another one is running.
fn busy() -> sqlx::Error {
    sqlx::Error::Protocol("another rebuild of this read store is running; wait for it to finish".into())
}

enum Place {
    MySql { live: String, shadow: String },
    Sqlite { path: PathBuf },
}

/// Attached name of the shadow file on SQLite.
const SQLITE_ALIAS: &str = "carelog_rebuild";

impl Shadow {
    /// The shadow store: replay into this.
    pub fn store(&self) -> &ReadStore {
        &self.store
    }

    /// Drops the scratch database or file (with whatever is left in it: after
    /// a MySQL switch, the old live tables).
    pub async fn discard(self) -> Result<(), sqlx::Error> {
        match &self.place {
            Place::MySql { shadow, .. } => {
                // MySQL lets a connection drop its own database.
                self.store
                    .pool()
                    .execute(format!("DROP DATABASE IF EXISTS {}", quote(shadow)).as_str())
                    .await?;
                self.store.close().await;
                Ok(())
            }
            Place::Sqlite { path } => {
                self.store.close().await;
                remove_sqlite_files(path);
                Ok(())
            }
        }
    }
}

/// A character set or collation name as the server reported it (letters,
/// digits, underscores), refused otherwise rather than quoted.
fn plain_name(name: String) -> Result<String, sqlx::Error> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(name)
    } else {
        Err(sqlx::Error::Protocol(format!("unexpected character set name {name:?}")))
    }
}

/// A MySQL identifier, quoted.
pub(crate) fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// `mysql://user@host:port/db?opts` with another database.
fn with_database(url: &str, db: &str) -> Result<String, sqlx::Error> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    let mut out = format!("{prefix}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    if prefix.is_empty() {
        return Err(sqlx::Error::Configuration("read store URL has no host".into()));
    }
    Ok(out)
}

impl ReadStore {
    /// Creates an empty shadow read store (full schema, no rows) beside this
    /// one, replacing any left by an earlier rebuild that did not finish.
    pub async fn create_shadow(&self) -> Result<Shadow, sqlx::Error> {
        match self.dialect() {
            Dialect::MySql => {
                let row = sqlx::query(
                    "SELECT DATABASE() AS db, @@character_set_database AS charset, @@collation_database AS collation",
                )
                .fetch_one(self.pool())
                .await?;
                let live = row.text("db")?;
                let shadow = format!("{live}__rebuild");
                let mut holder = self.pool().acquire().await?.detach();
                let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
                    .bind(format!("carelog:{shadow}"))
                    .fetch_one(&mut holder)
                    .await?;
                if got != Some(1) {
                    let _ = holder.close().await;
                    return Err(busy());
                }
                self.pool()
                    .execute(format!("DROP DATABASE IF EXISTS {}", quote(&shadow)).as_str())
                    .await?;
                // The live database's character set, so text round-trips alike.
                let create = format!(
                    "CREATE DATABASE {} CHARACTER SET {} COLLATE {}",
                    quote(&shadow),
                    plain_name(row.text("charset")?)?,
                    plain_name(row.text("collation")?)?
                );
                self.pool().execute(create.as_str()).await?;
                let store = ReadStore::connect_with(&with_database(self.url(), &shadow)?, Durability::Scratch).await?;
                Ok(Shadow {
                    store,
                    place: Place::MySql { live, shadow },
                    _lock: RebuildLock::MySql(holder),
                })
            }
            Dialect::Sqlite => {
                // The configured path (a link to the current generation after
                // a switch by file), so that the shadow and its lock keep one
                // name whatever the generation.
                let live = match self.live_file() {
                    Some(live) => live.path().to_path_buf(),
                    None => {
                        let rows = sqlx::query("PRAGMA database_list").fetch_all(self.pool()).await?;
                        let main = rows
                            .iter()
                            .find(|r| r.text("name").ok().as_deref() == Some("main"))
                            .and_then(|r| r.opt_text("file").ok().flatten())
                            .filter(|f| !f.is_empty())
                            .ok_or_else(|| sqlx::Error::Configuration("the read store is not a file".into()))?;
                        PathBuf::from(main)
                    }
                };
                let path = live.with_extension("rebuild.db");
                let lock = std::fs::File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(live.with_extension("rebuild.lock"))?;
                lock.try_lock().map_err(|_| busy())?;
                remove_sqlite_files(&path);
                remove_stray_generations(&live);
                private_file(&path)?;
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let store = ReadStore::connect_with(&url, Durability::Scratch).await?;
                Ok(Shadow {
                    store,
                    place: Place::Sqlite { path },
                    _lock: RebuildLock::Sqlite(lock),
                })
            }
        }
    }

    /// Puts the shadow's tables of `projectors` in place of the live ones (see
    /// the module docs). `catch_up` gets the live checkpoints of `projectors`
    /// (in order), taken under their lock, must bring the shadow's checkpoints
    /// to at least those, and returns where it brought them; the switch is
    /// refused if the shadow is not there. Returns the checkpoints switched
    /// in (the shadow's checkpoints table may have gone with its tables).
    pub async fn switch_to<F, Fut, E>(
        &self,
        shadow: &Shadow,
        projectors: &[Arc<dyn Projector>],
        catch_up: F,
    ) -> Result<Vec<i64>, E>
    where
        F: FnOnce(Vec<i64>) -> Fut,
        Fut: Future<Output = Result<Vec<i64>, E>>,
        E: From<sqlx::Error>,
    {
        let names: Vec<&'static str> = projectors.iter().map(|p| p.name()).collect();
        let marks = vec!["?"; names.len()].join(", ");
        let tables: Vec<&'static str> = projectors.iter().flat_map(|p| p.tables().iter().copied()).collect();
        match (&shadow.place, self.dialect()) {
            (Place::MySql { live, shadow: scratch }, Dialect::MySql) => {
                let mut tx = self.writer().begin().await?;
                let sql =
                    format!("SELECT name, position FROM projection_checkpoints WHERE name IN ({marks}) FOR UPDATE");
                let live_positions = positions(&mut *tx, &sql, &names).await?;
                let targets = catch_up(live_positions.clone()).await?;
                ensure_reached(shadow, projectors, &live_positions, &targets).await?;
                let rename = |tables: &[&str]| {
                    let renames: Vec<String> = tables
                        .iter()
                        .flat_map(|t| {
                            [
                                format!(
                                    "{}.{} TO {}.{}",
                                    quote(live),
                                    quote(t),
                                    quote(scratch),
                                    quote(&format!("{t}__old"))
                                ),
                                format!("{}.{} TO {}.{}", quote(scratch), quote(t), quote(live), quote(t)),
                            ]
                        })
                        .collect();
                    format!("RENAME TABLE {}", renames.join(", "))
                };
                if targets == live_positions {
                    // Another connection: DDL would commit the transaction holding the lock.
                    self.writer().execute(rename(&tables).as_str()).await?;
                    tx.commit().await?;
                    return Ok(targets);
                }
                // The live read models are behind the shadow. When every
                // checkpoint row belongs to a rebuilt projector, the
                // checkpoints table is renamed in with the tables, in the
                // same statement: they arrive together, whatever the live
                // pipeline did meanwhile (it finds its checkpoints moved and
                // re-reads them). Renaming a table needs every transaction on
                // it ended, the lock's too.
                let every: Vec<(String,)> = sqlx::query_as("SELECT name FROM projection_checkpoints")
                    .fetch_all(&mut *tx)
                    .await?;
                if every.iter().all(|(n,)| names.contains(&n.as_str())) {
                    tx.commit().await?;
                    let mut all = tables.clone();
                    all.push("projection_checkpoints");
                    self.writer().execute(rename(&all).as_str()).await?;
                    return Ok(targets);
                }
                // Otherwise the rows are copied, under the lock.
                for t in &tables {
                    let (to, from) = (
                        format!("{}.{}", quote(live), quote(t)),
                        format!("{}.{}", quote(scratch), quote(t)),
                    );
                    (&mut *tx).execute(format!("DELETE FROM {to}").as_str()).await?;
                    (&mut *tx)
                        .execute(format!("INSERT INTO {to} SELECT * FROM {from}").as_str())
                        .await?;
                }
                set_checkpoints(&mut tx, "projection_checkpoints", &names, &targets).await?;
                tx.commit().await?;
                Ok(targets)
            }
            (Place::Sqlite { path }, Dialect::Sqlite) if self.switches_file(projectors) => {
                self.switch_file(shadow, path, projectors, catch_up).await
            }
            (Place::Sqlite { path }, Dialect::Sqlite) => {
                // A connection of its own, closed afterwards: it ends with a
                // database attached and, on an error, possibly a transaction.
                let mut conn = self.writer().acquire().await?.detach();
                sqlx::query(&format!("ATTACH DATABASE ? AS {SQLITE_ALIAS}"))
                    .bind(path.display().to_string())
                    .execute(&mut conn)
                    .await?;
                let result = async {
                    let live_positions = lock_checkpoints(&mut conn, "main", &names).await?;
                    let targets = catch_up(live_positions.clone()).await?;
                    ensure_reached(shadow, projectors, &live_positions, &targets).await?;
                    for t in &tables {
                        conn.execute(format!("DELETE FROM main.{t}").as_str()).await?;
                        conn.execute(format!("INSERT INTO main.{t} SELECT * FROM {SQLITE_ALIAS}.{t}").as_str())
                            .await?;
                    }
                    set_checkpoints(&mut conn, "main.projection_checkpoints", &names, &targets).await?;
                    conn.execute("COMMIT").await?;
                    Ok::<Vec<i64>, E>(targets)
                }
                .await;
                if result.is_err() {
                    let _ = conn.execute("ROLLBACK").await;
                }
                let _ = conn.close().await;
                result
            }
            _ => Err(sqlx::Error::Configuration("the shadow belongs to another kind of read store".into()).into()),
        }
    }
}

impl ReadStore {
    /// Whether [`ReadStore::switch_to`] puts the shadow in place as a whole
    /// file: on SQLite (on Unix, which has symbolic links), when `projectors`
    /// are every projector, so that what comes along besides is small. The
    /// caller refreshes the shadow's statistics before such a switch (they
    /// come with the file) and the live ones after any other.
    pub fn switches_file(&self, projectors: &[Arc<dyn Projector>]) -> bool {
        let every = crate::all_projectors();
        cfg!(unix)
            && self.live_file().is_some()
            && every.iter().all(|p| projectors.iter().any(|q| q.name() == p.name()))
    }

    /// The switch by file (see the module docs).
    async fn switch_file<F, Fut, E>(
        &self,
        shadow: &Shadow,
        scratch: &Path,
        projectors: &[Arc<dyn Projector>],
        catch_up: F,
    ) -> Result<Vec<i64>, E>
    where
        F: FnOnce(Vec<i64>) -> Fut,
        Fut: Future<Output = Result<Vec<i64>, E>>,
        E: From<sqlx::Error>,
    {
        let link = self
            .live_file()
            .ok_or_else(|| sqlx::Error::Configuration("the read store is not a file".into()))?
            .path()
            .to_path_buf();
        // Most of the shadow's pages onto the disk before the lock, so that
        // the flush under it has only the catch-up's pages left.
        sync_file(scratch).await?;
        let names: Vec<&'static str> = projectors.iter().map(|p| p.name()).collect();
        let rebuilt: Vec<&'static str> = projectors.iter().flat_map(|p| p.tables().iter().copied()).collect();
        let mut conn = self.writer().acquire().await?.detach();
        let result = async {
            let live_positions = lock_checkpoints(&mut conn, "main", &names).await?;
            let targets = catch_up(live_positions.clone()).await?;
            ensure_reached(shadow, projectors, &live_positions, &targets).await?;
            carry_over(shadow.store(), &link, &rebuilt, &names).await?;
            shadow.store().close().await;
            seal(scratch).await?;
            let generation = next_generation(&link)?;
            std::fs::rename(scratch, &generation).map_err(sqlx::Error::Io)?;
            let old = point(&link, &generation)?;
            // Nothing was written but the touch; ending it lets the pipeline
            // go on, on the new file.
            conn.execute("COMMIT").await?;
            remove_old(&link, old.as_deref());
            Ok::<Vec<i64>, E>(targets)
        }
        .await;
        if result.is_err() {
            let _ = conn.execute("ROLLBACK").await;
        }
        let _ = conn.close().await;
        result
    }
}

/// Copies into the shadow, as the live file holds them under the switch's
/// lock, the tables no rebuilt projector owns (the reactors' checkpoints, and
/// any table a projector not rebuilt owns) and the checkpoints of projectors
/// not rebuilt.
async fn carry_over(
    shadow: &ReadStore,
    live: &Path,
    rebuilt: &[&'static str],
    names: &[&'static str],
) -> Result<(), sqlx::Error> {
    const LIVE: &str = "carelog_live";
    let mut conn = shadow.writer().acquire().await?.detach();
    sqlx::query(&format!("ATTACH DATABASE ? AS {LIVE}"))
        .bind(live.display().to_string())
        .execute(&mut conn)
        .await?;
    let result = async {
        let tables: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT name FROM {LIVE}.sqlite_master WHERE type = 'table'
               AND name NOT LIKE 'sqlite_%' AND name NOT IN ('_sqlx_migrations', 'projection_checkpoints')
             ORDER BY name"
        ))
        .fetch_all(&mut conn)
        .await?;
        conn.execute("BEGIN").await?;
        for t in tables.iter().filter(|t| !rebuilt.contains(&t.as_str())) {
            conn.execute(format!("DELETE FROM main.\"{t}\"").as_str()).await?;
            conn.execute(format!("INSERT INTO main.\"{t}\" SELECT * FROM {LIVE}.\"{t}\"").as_str())
                .await?;
        }
        let marks = vec!["?"; names.len()].join(", ");
        let sql = format!(
            "INSERT OR REPLACE INTO main.projection_checkpoints (name, position)
             SELECT name, position FROM {LIVE}.projection_checkpoints WHERE name NOT IN ({marks})"
        );
        let mut q = sqlx::query(&sql);
        for n in names {
            q = q.bind(*n);
        }
        q.execute(&mut conn).await?;
        conn.execute("COMMIT").await?;
        Ok::<(), sqlx::Error>(())
    }
    .await;
    if result.is_err() {
        let _ = conn.execute("ROLLBACK").await;
    }
    let _ = conn.execute(format!("DETACH DATABASE {LIVE}").as_str()).await;
    let _ = conn.close().await;
    result
}

/// Makes the closed shadow file what a live one is: in write-ahead-log mode
/// (persistent in its header, set while nothing else has it open) and on the
/// disk, with no `-wal` or `-shm` file beside it.
async fn seal(path: &Path) -> Result<(), sqlx::Error> {
    let url = format!("sqlite://{}", path.display());
    let mut conn = <sqlx::AnyConnection as Connection>::connect(&url).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
        .fetch_one(&mut conn)
        .await?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(sqlx::Error::Protocol(format!(
            "the rebuilt read store stayed in journal mode {mode}"
        )));
    }
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    conn.close().await?;
    for suffix in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    sync_file(path).await
}

async fn sync_file(path: &Path) -> Result<(), sqlx::Error> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&path)?.sync_all())
        .await
        .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?
        .map_err(sqlx::Error::Io)
}

/// A file name for the next generation of the read store at `link`, beside
/// it: `<stem>.<milliseconds since the epoch>.db`, never one that exists.
fn next_generation(link: &Path) -> Result<PathBuf, sqlx::Error> {
    let stem = link
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| sqlx::Error::Configuration("the read store's file has no name".into()))?;
    let mut n = chrono::Utc::now().timestamp_millis();
    loop {
        let candidate = link.with_file_name(format!("{stem}.{n}.db"));
        if !candidate.exists() {
            return Ok(candidate);
        }
        n += 1;
    }
}

/// Whether `name` is a generation file of the read store at `link`.
fn is_generation(link: &Path, name: &str) -> bool {
    let Some(stem) = link.file_stem().and_then(|s| s.to_str()) else {
        return false;
    };
    name.strip_prefix(stem)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".db"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Points `link` at `target` (a file beside it): a new symbolic link renamed
/// over it, atomically, and the directory flushed. Returns the file `link`
/// named before when it was a link (a generation file), `None` when it was
/// the original regular file.
#[cfg(unix)]
fn point(link: &Path, target: &Path) -> Result<Option<PathBuf>, sqlx::Error> {
    let old = std::fs::read_link(link).ok().map(|t| link.with_file_name(t));
    let name = target
        .file_name()
        .ok_or_else(|| sqlx::Error::Configuration("the generation file has no name".into()))?;
    let mut tmp = link.as_os_str().to_owned();
    tmp.push(".switching");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp)?;
    std::fs::rename(&tmp, link)?;
    std::fs::File::open(parent(link))?.sync_all()?;
    Ok(old)
}

#[cfg(not(unix))]
fn point(_: &Path, _: &Path) -> Result<Option<PathBuf>, sqlx::Error> {
    Err(sqlx::Error::Configuration("no symbolic links here".into()))
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// After a switch by file: the file the link named before, or the original
/// file's `-wal` and `-shm` (its main file went with the rename), and any
/// generation file left by a rebuild that stopped half-way. Processes that
/// still have them open keep reading them; nothing opens them again.
fn remove_old(link: &Path, old: Option<&Path>) {
    match old {
        Some(old) => remove_sqlite_files(old),
        None => {
            for suffix in ["-wal", "-shm"] {
                let mut p = link.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
        }
    }
    remove_stray_generations(link);
}

/// Generation files beside `link` that it does not name (a rebuild stopped
/// between renaming its shadow and pointing the link at it, or before
/// removing the old one). All of them while `link` is still the original
/// regular file.
fn remove_stray_generations(link: &Path) {
    let current = std::fs::read_link(link).ok();
    let Ok(entries) = std::fs::read_dir(parent(link)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_generation(link, name) && current.as_deref() != Some(Path::new(name)) {
            remove_sqlite_files(&parent(link).join(name));
        }
    }
}

/// Begins a transaction on `conn` that takes the write lock of the SQLite
/// database `schema` (its first write: the live pipeline's next batch waits;
/// any other attached file stays writable) and reads the checkpoints of
/// `names` under it, in order.
async fn lock_checkpoints(
    conn: &mut sqlx::AnyConnection,
    schema: &str,
    names: &[&'static str],
) -> Result<Vec<i64>, sqlx::Error> {
    let marks = vec!["?"; names.len()].join(", ");
    conn.execute("BEGIN").await?;
    let touch = format!("UPDATE {schema}.projection_checkpoints SET position = position WHERE name IN ({marks})");
    let mut q = sqlx::query(&touch);
    for n in names {
        q = q.bind(*n);
    }
    q.execute(&mut *conn).await?;
    let sql = format!("SELECT name, position FROM {schema}.projection_checkpoints WHERE name IN ({marks})");
    positions(&mut *conn, &sql, names).await
}

async fn set_checkpoints(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    names: &[&'static str],
    targets: &[i64],
) -> Result<(), sqlx::Error> {
    let sql = format!("UPDATE {table} SET position = ? WHERE name = ?");
    for (n, t) in names.iter().zip(targets) {
        sqlx::query(&sql).bind(*t).bind(*n).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The checkpoints of `names` (in order) read with `sql` (its `?` bound to them).
async fn positions<'c, C>(conn: C, sql: &str, names: &[&'static str]) -> Result<Vec<i64>, sqlx::Error>
where
    C: Acquire<'c, Database = sqlx::Any>,
{
    let mut conn = conn.acquire().await?;
    let mut q = sqlx::query_as::<_, (String, i64)>(sql);
    for n in names {
        q = q.bind(*n);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    Ok(names
        .iter()
        .map(|n| rows.iter().find(|(m, _)| m == n).map(|(_, p)| *p).unwrap_or(0))
        .collect())
}

async fn ensure_reached(
    shadow: &Shadow,
    projectors: &[Arc<dyn Projector>],
    live: &[i64],
    targets: &[i64],
) -> Result<(), sqlx::Error> {
    let reached = shadow.store().checkpoints(projectors).await?;
    if reached != targets || targets.iter().zip(live).any(|(t, l)| t < l) {
        return Err(sqlx::Error::Protocol(format!(
            "the rebuilt read models reached {reached:?} (meant {targets:?}), the live ones are at {live:?}: not switched"
        )));
    }
    Ok(())
}

/// Creates `path` empty with mode 0600 (it will hold personal data).
fn private_file(path: &std::path::Path) -> Result<(), sqlx::Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop).map_err(sqlx::Error::Io)
}

#[cfg(test)]
mod tests {
    use super::{is_generation, with_database};
    use std::path::Path;

    #[test]
    fn only_numbered_files_beside_the_read_store_are_its_generations() {
        let link = Path::new("/data/read.db");
        assert!(is_generation(link, "read.1796506687286.db"));
        for other in [
            "read.db",
            "read.rebuild.db",
            "read.db-wal",
            "read.12.db-wal",
            "read..db",
            "events.12.db",
        ] {
            assert!(!is_generation(link, other), "{other}");
        }
    }

    #[test]
    fn it_should_swap_only_the_database_of_a_mysql_url() {
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test", "test__rebuild").unwrap(),
            "mysql://root@127.0.0.1:3306/test__rebuild"
        );
        assert_eq!(
            with_database("mysql://u:p@db:3306/carelog?ssl-mode=required", "x").unwrap(),
            "mysql://u:p@db:3306/x?ssl-mode=required"
        );
        assert_eq!(with_database("mysql://db", "x").unwrap(), "mysql://db/x");
    }
}
