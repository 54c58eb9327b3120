//! `carelog backup <FILE>` and `carelog restore <FILE>`: copies of the event
//! store, the system of record (procedure: `docs/operations.md`).
//!
//! A backup is the WHOLE event-store database, every table: the events and
//! their position counter, the unique claims and idempotency records that
//! guard commands, the relay checkpoint, the subject keys of crypto-shredding,
//! the hash chain, the access log, and the migration history. Copying only
//! `events` would restore a store that accepts duplicate usernames, replays no
//! idempotent response and can decrypt nothing.
//!
//! Read models are never backed up: they are a function of the events, so a
//! restore ends by rebuilding all of them (every projector emptied and
//! replayed, the alert reactor set back to the start, whose commands are
//! idempotent) in the configured read store.
//!
//! - Embedded (SQLite, `<data dir>/events.db`): `VACUUM INTO` writes a
//!   consistent snapshot while the server runs. Restore copies the file into
//!   the data dir under the data-dir lock (so no server is running), refusing
//!   a store that holds events unless `--force`, which keeps the old file aside.
//! - PostgreSQL: `pg_dump --format=custom` (one consistent snapshot, online).
//!   Restore needs an empty database and runs `pg_restore` in one transaction,
//!   so a failed restore leaves the database as it was.
//!
//! What a backup does not hold: the master key (`CARELOG_MASTER_KEY`), the
//! JWT secret and uploaded files. Keeping the master key out is deliberate:
//! a stolen backup then reveals no personal field.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::config::{Secret, Settings, MASTER_KEY_FILE};
use crate::data_dir::{self, EVENTS_DB};
use crate::runner::{catch_up, LeaderLock, REBUILD_BATCH};
use crate::startup::Stores;
use crate::store::Backend;

/// The first bytes of a `pg_dump --format=custom` archive.
const PG_ARCHIVE_MAGIC: &[u8] = b"PGDMP";
/// The first bytes of an SQLite database file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// `carelog backup <FILE>`: writes the event-store database to `file`, which
/// must not exist yet. Safe while servers run.
pub async fn backup(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        bail!("{} already exists; choose a new file name", file.display());
    }
    // Written under a temporary name, renamed when complete: a file with the
    // final name is always a whole backup.
    let partial = partial_path(file);
    create_private(&partial)?;
    let written = match &settings.stores.event_store_url {
        None => backup_sqlite(&settings.stores.data_dir.join(EVENTS_DB), &partial).await,
        Some(url) => backup_postgres(url, &partial).await,
    };
    let summary = match written {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, file)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), file.display()))?;
    println!("backup written to {}: {summary}", file.display());
    println!("the file holds personal data (encrypted fields, the wrapped subject keys): keep it encrypted at rest, with limited retention");
    Ok(())
}

/// `carelog restore <FILE> [--force]`: loads a backup into the configured
/// event store, which must hold no events (embedded: unless `force`), then
/// rebuilds every read model from it. Servers must be stopped.
pub async fn restore(settings: &Settings, file: &Path, force: bool) -> anyhow::Result<()> {
    let meta = std::fs::metadata(file).with_context(|| format!("cannot read backup {}", file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", file.display());
    }
    // Held until the rebuild is done, so no embedded server starts on a
    // half-restored dir.
    let _lock = data_dir::lock(settings)?;
    match &settings.stores.event_store_url {
        None => restore_sqlite(settings, file, force).await?,
        Some(url) => {
            if force {
                bail!("--force only applies to the embedded store; with PostgreSQL, restore into a new empty database (createdb) instead");
            }
            restore_postgres(url, file).await?
        }
    }
    rebuild_read_models(settings).await.context(
        "the event store is restored, but rebuilding the read models failed; fix the cause and run `carelog rebuild`",
    )?;
    Ok(())
}

// ---- embedded (SQLite) ------------------------------------------------------

async fn backup_sqlite(db: &Path, out: &Path) -> anyhow::Result<String> {
    if !db.is_file() {
        bail!(
            "no embedded event store at {} (set CARELOG_DATA_DIR, or CARELOG_EVENT_STORE_URL for PostgreSQL)",
            db.display()
        );
    }
    // A reader among the server's connections: WAL mode lets it work while the
    // server writes, and VACUUM INTO copies one read transaction's snapshot.
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot open {}", db.display()))?;
    sqlx::query("VACUUM INTO $1")
        .bind(out.display().to_string())
        .execute(&mut conn)
        .await
        .with_context(|| format!("VACUUM INTO {} failed", out.display()))?;
    conn.close().await?;
    let (events, head) = check_sqlite_copy(out).await?;
    Ok(format!(
        "{events} events up to position {head}, all tables of the embedded event store"
    ))
}

/// Opens a copy read-only, checks it is whole and an event store; returns the
/// number of events and the highest position.
async fn check_sqlite_copy(path: &Path) -> anyhow::Result<(i64, i64)> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("cannot open {} as an SQLite database", path.display()))?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is not a readable SQLite database", path.display()))?;
    if integrity != "ok" {
        bail!("{} failed the integrity check: {integrity}", path.display());
    }
    let counts: Result<(i64, i64), _> = sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(position), 0) FROM events")
        .fetch_one(&mut conn)
        .await;
    conn.close().await?;
    counts.map_err(|_| {
        anyhow::anyhow!(
            "{} is not a carelog event-store backup (no events table)",
            path.display()
        )
    })
}

/// Events in an existing embedded store (0 if it has no events table yet).
async fn sqlite_event_count(path: &Path) -> anyhow::Result<i64> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot open the event store {}", path.display()))?;
    let has_table: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'")
            .fetch_optional(&mut conn)
            .await?;
    let count = match has_table {
        Some(_) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM events")
                .fetch_one(&mut conn)
                .await?
        }
        None => 0,
    };
    conn.close().await?;
    Ok(count)
}

async fn restore_sqlite(settings: &Settings, file: &Path, force: bool) -> anyhow::Result<()> {
    let mut magic = [0u8; 16];
    let read = std::io::Read::read(&mut File::open(file)?, &mut magic)?;
    if read < SQLITE_MAGIC.len() || magic != SQLITE_MAGIC {
        bail!(
            "{} is not an embedded (SQLite) backup; a PostgreSQL backup restores with CARELOG_EVENT_STORE_URL set",
            file.display()
        );
    }
    let (events, head) = check_sqlite_copy(file).await?;
    let data_dir = &settings.stores.data_dir;
    let target = data_dir.join(EVENTS_DB);
    let existing = match target.exists() {
        true => sqlite_event_count(&target).await?,
        false => 0,
    };
    if existing > 0 && !force {
        bail!(
            "the event store {} already holds {existing} events; restore refuses to replace it (use --force to replace it, keeping the old file aside)",
            target.display()
        );
    }
    // Staged next to the target (same file system, so the final rename is
    // atomic) and checked against the master key before anything is replaced.
    let staging = data_dir.join(format!("{EVENTS_DB}.restoring"));
    std::fs::copy(file, &staging)
        .with_context(|| format!("cannot copy {} to {}", file.display(), staging.display()))?;
    let staged = async {
        File::open(&staging)?.sync_all()?;
        check_master_key(settings, &staging).await
    };
    if let Err(e) = staged.await {
        let _ = std::fs::remove_file(&staging);
        return Err(e);
    }
    let sidecars = |p: &Path| [p.to_path_buf(), suffixed(p, "-wal"), suffixed(p, "-shm")];
    if existing > 0 {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let aside = data_dir.join(format!("{EVENTS_DB}.replaced-{stamp}"));
        // The -wal and -shm files belong to the old database: they move with it.
        for (from, to) in sidecars(&target).iter().zip(sidecars(&aside).iter()) {
            if from.exists() {
                std::fs::rename(from, to).with_context(|| format!("cannot move {} aside", from.display()))?;
            }
        }
        println!(
            "the previous event store ({existing} events) was moved to {}",
            aside.display()
        );
    } else {
        // An empty store (a server started once): nothing to keep, and its
        // -wal must not be replayed into the restored file.
        for f in sidecars(&target).iter().filter(|f| f.exists()) {
            std::fs::remove_file(f).with_context(|| format!("cannot remove {}", f.display()))?;
        }
    }
    std::fs::rename(&staging, &target)?;
    println!(
        "event store restored to {}: {events} events up to position {head}",
        target.display()
    );
    Ok(())
}

/// The subject keys in a backup are wrapped under the master key of the
/// deployment it came from, which the backup deliberately does not hold. A
/// restore refuses a copy the configured key cannot open, instead of
/// generating a new key (embedded) and leaving a store that cannot start.
async fn check_master_key(settings: &Settings, db: &Path) -> anyhow::Result<()> {
    let options = SqliteConnectOptions::new().filename(db);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let checked: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'master_key_check'")
            .fetch_one(&pool)
            .await?;
    let keyed = checked > 0
        && sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM master_key_check")
            .fetch_one(&pool)
            .await?
            > 0;
    let result = if !keyed {
        // From before crypto-shredding: whatever key the server uses will do.
        Ok(())
    } else if settings.privacy.master_key.is_none() && !settings.stores.data_dir.join(MASTER_KEY_FILE).is_file() {
        Err(anyhow::anyhow!(
            "the backup's data keys are wrapped under the master key of the deployment it came from: copy its master_key file into {} (or set CARELOG_MASTER_KEY) and restore again",
            settings.stores.data_dir.display()
        ))
    } else {
        let key = settings.master_key()?;
        crate::privacy::Privacy::open(Backend::Sqlite(crate::store::SqliteDb::single(pool.clone())), &key)
            .await
            .map(|_| ())
            .context("the configured master key does not open this backup")
    };
    pool.close().await;
    result
}

// ---- PostgreSQL -------------------------------------------------------------

async fn backup_postgres(url: &Secret, out: &Path) -> anyhow::Result<String> {
    let tool = pg_tool("pg_dump").await?;
    let head = {
        let mut conn = PgConnection::connect(url.expose())
            .await
            .context("cannot connect to the event store (CARELOG_EVENT_STORE_URL)")?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&mut conn)
            .await
            .context("the database of CARELOG_EVENT_STORE_URL has no carelog event store")?;
        conn.close().await?;
        head
    };
    let conn = LibpqTarget::from_url(url.expose())?;
    let mut cmd = conn.command(&tool);
    // One snapshot of every table of the database; ownership and grants are
    // left out so the backup restores into a database owned by another role.
    cmd.args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
        .arg(out)
        .arg("--dbname")
        .arg(&conn.url);
    run(cmd, "pg_dump").await?;
    // The archive's table of contents must be readable, and hold the events.
    let toc = pg_restore_list(out).await?;
    if !toc
        .lines()
        .any(|l| l.contains("TABLE DATA") && l.split_whitespace().any(|w| w == "events"))
    {
        bail!("pg_dump wrote {} but it holds no events table", out.display());
    }
    Ok(format!(
        "the whole event-store database in pg_dump custom format (head at position {head} when it started)"
    ))
}

async fn restore_postgres(url: &Secret, file: &Path) -> anyhow::Result<()> {
    let mut magic = [0u8; 5];
    let read = std::io::Read::read(&mut File::open(file)?, &mut magic)?;
    if read < magic.len() || magic != PG_ARCHIVE_MAGIC {
        bail!(
            "{} is not a PostgreSQL (pg_dump custom format) backup; an embedded backup restores without CARELOG_EVENT_STORE_URL",
            file.display()
        );
    }
    let tool = pg_tool("pg_restore").await?;
    pg_restore_list(file).await?;
    // Connected without running migrations: the schema must come from the backup.
    let mut conn = PgConnection::connect(url.expose())
        .await
        .context("cannot connect to the target database (CARELOG_EVENT_STORE_URL)")?;
    let others: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await?;
    if others > 0 {
        bail!(
            "{others} other sessions are connected to the target database; stop every carelog process using it first"
        );
    }
    let has_events: bool = sqlx::query_scalar("SELECT to_regclass('events') IS NOT NULL")
        .fetch_one(&mut conn)
        .await?;
    let existing: i64 = if has_events {
        sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&mut conn)
            .await?
    } else {
        0
    };
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    if existing > 0 {
        bail!(
            "the target database {db} already holds {existing} events; restore only into an empty database (createdb a new one and point CARELOG_EVENT_STORE_URL at it)"
        );
    }
    let target = LibpqTarget::from_url(url.expose())?;
    let mut cmd = target.command(&tool);
    cmd.args([
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
    ]);
    if has_events {
        // A server already ran its migrations here (empty schema, no events):
        // the backup's objects replace those.
        cmd.args(["--clean", "--if-exists"]);
    }
    cmd.arg("--dbname").arg(&target.url).arg(file);
    run(cmd, "pg_restore").await?;
    println!("event store restored into database {db}");
    Ok(())
}

/// `pg_restore --list`: checks the archive is whole and readable.
async fn pg_restore_list(file: &Path) -> anyhow::Result<String> {
    let tool = pg_tool("pg_restore").await?;
    let mut cmd = tokio::process::Command::new(tool);
    cmd.arg("--list").arg(file);
    run(cmd, "pg_restore --list").await
}

/// The PostgreSQL client tool, or a clear error naming it.
async fn pg_tool(name: &str) -> anyhow::Result<PathBuf> {
    let found = tokio::process::Command::new(name)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await;
    match found {
        Ok(out) if out.status.success() => Ok(PathBuf::from(name)),
        _ => bail!(
            "{name} was not found on PATH; install the PostgreSQL client tools (same major version as the server, or newer)"
        ),
    }
}

/// Runs a tool; its stderr becomes the error.
async fn run(mut cmd: tokio::process::Command, what: &str) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).take(5).collect();
        bail!("{what} failed ({}): {}", out.status, detail.join(" | "));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A connection URL for libpq tools, with the password moved out of the
/// command line (visible to every user in `ps`) into `PGPASSWORD`. Parsed as
/// sqlx parses it to connect (the `url` crate), so the tools reach the same
/// database the checks before them did.
struct LibpqTarget {
    url: String,
    password: Option<String>,
}

impl LibpqTarget {
    fn from_url(raw: &str) -> anyhow::Result<Self> {
        let mut url = url::Url::parse(raw).context("CARELOG_EVENT_STORE_URL is not a URL")?;
        let Some(password) = url.password().map(percent_decode) else {
            return Ok(Self {
                url: raw.to_string(),
                password: None,
            });
        };
        url.set_password(None)
            .map_err(|()| anyhow::anyhow!("CARELOG_EVENT_STORE_URL cannot hold a password"))?;
        Ok(Self {
            url: url.into(),
            password: Some(password),
        })
    }

    fn command(&self, tool: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(tool);
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        cmd
    }
}

/// The password as libpq wants it: URLs carry it percent-encoded.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

// ---- after a restore --------------------------------------------------------

/// Empties every read model and replays the restored history into it.
async fn rebuild_read_models(settings: &Settings) -> anyhow::Result<()> {
    // Not exclusive: `restore` already holds the data-dir lock when it matters.
    let stores = Stores::open(settings, false).await?;
    let Some(_leader) = LeaderLock::try_acquire(&stores.store, "projectors").await? else {
        bail!("a carelog server is running its projectors on this event store; stop it first");
    };
    let all = projections::all_projectors();
    stores.read.init_checkpoints(&all).await?;
    for p in &all {
        stores.read.reset(p.as_ref()).await?;
    }
    // A reused read store may hold a reactor position beyond the restored head,
    // which would skip the events appended from now on. Its commands are
    // idempotent, so it starts again from the beginning.
    sqlx::query("DELETE FROM reactor_checkpoints")
        .execute(stores.read.pool())
        .await?;
    // Statistics for the planner over the rows just loaded.
    stores.store.analyze().await?;
    let head = stores.store.head().await?;
    catch_up(&stores.store, &stores.read, &all, REBUILD_BATCH, &|_| async {}).await?;
    println!("read models rebuilt up to position {head}");
    let last = match head {
        0 => None,
        h => stores.store.read_after(h - 1, 1).await?.pop().map(|e| e.recorded_at),
    };
    if let Some(at) = last {
        println!(
            "the restored history ends at {}: erasures (POST /patients/{{id}}/erase) done after that are NOT in it; erase those patients again before opening the service (docs/operations.md)",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    Ok(())
}

// ---- files ------------------------------------------------------------------

fn partial_path(file: &Path) -> PathBuf {
    suffixed(file, ".partial")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates an empty file readable by its owner only: backups hold personal data.
/// `VACUUM INTO` and `pg_dump --file` both write into an existing empty file.
fn create_private(path: &Path) -> anyhow::Result<()> {
    let mut options = File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).with_context(|| {
        format!(
            "cannot create {} (left by an interrupted backup? remove it)",
            path.display()
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_command_line() {
        let t = LibpqTarget::from_url("postgres://carelog:p%40ss:w@db.internal:5432/events?sslmode=require").unwrap();
        assert_eq!(t.url, "postgres://carelog@db.internal:5432/events?sslmode=require");
        assert_eq!(t.password.as_deref(), Some("p@ss:w"));
    }

    #[test]
    fn a_url_without_password_is_kept() {
        for url in ["postgres://postgres@127.0.0.1/x", "postgresql://h/x", "postgres://h"] {
            let t = LibpqTarget::from_url(url).unwrap();
            assert_eq!(t.url, url);
            assert!(t.password.is_none());
        }
    }

    #[test]
    fn percent_decoding_leaves_broken_escapes_alone() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }
}
