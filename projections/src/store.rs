//! The read store. MySQL in production, SQLite when embedded; both speak `?`
//! placeholders, so queries are written once against sqlx's `Any` driver.
//! Differences that matter (insert-or-ignore, locking reads) go through [`Dialect`].

use std::str::FromStr;
use std::time::Duration;

use serde::de::value::StrDeserializer;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};

use crate::live_file::LiveFile;

static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/read/mysql");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/read/sqlite");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    Full,
    Scratch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    MySql,
    Sqlite,
}

impl Dialect {
    /// The dialect of a connection (a projector sees only its connection).
    pub(crate) fn of(c: &sqlx::AnyConnection) -> Dialect {
        match c.backend_name() {
            "MySQL" => Dialect::MySql,
            _ => Dialect::Sqlite,
        }
    }
}

#[derive(Clone)]
pub struct ReadStore {
    pool: AnyPool,
    /// Where every write goes. On SQLite one connection, so the pipeline,
    /// the reactors' checkpoints and a rebuild's switch queue in-process
    /// instead of sleeping in SQLite's busy handler; on MySQL `pool` itself.
    writer: AnyPool,
    dialect: Dialect,
    /// How it was reached (may hold a password: never logged).
    url: std::sync::Arc<str>,
    /// Batches are bulk-loaded (`Projector::load_all`): see [`ReadStore::for_load`].
    loading: bool,
    /// The embedded store's file, which a full rebuild replaces whole
    /// (`crate::live_file`); `None` on MySQL and for a rebuild's shadow.
    live: Option<std::sync::Arc<LiveFile>>,
}

impl ReadStore {
    /// Connects to `mysql://…` or `sqlite:…` and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        Self::connect_with(url, Durability::Full).await
    }

    /// As [`ReadStore::connect`]; `Durability::Scratch` skips SQLite's fsyncs
    /// (for a rebuild's shadow file, thrown away if the process dies).
    pub(crate) async fn connect_with(url: &str, durability: Durability) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Dialect::MySql
        } else if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            return Err(sqlx::Error::Configuration(
                "read store URL must start with mysql:// or sqlite:".into(),
            ));
        };
        let url = url.replacen("mariadb:", "mysql:", 1);
        let given = url.clone();
        if dialect == Dialect::Sqlite {
            let options = crate::pool::embedded::<sqlx::Any>().acquire_timeout(Duration::from_secs(10));
            let pragmas = match durability {
                Durability::Full => {
                    "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;
                     PRAGMA secure_delete = ON;"
                }
                // A rebuild's shadow, thrown away if the rebuild fails: no
                // write-ahead log (a page is written once, at commit, not to
                // the log and again at its checkpoint; the rollback journal
                // is kept in memory), no fsync, no zeroing of freed pages
                // (the file is deleted), and a larger page cache (128 MiB, in
                // the rebuilding process only) that keeps the index pages of
                // a bulk load in memory instead of re-reading them.
                Durability::Scratch => {
                    "PRAGMA journal_mode = OFF; PRAGMA busy_timeout = 10000; PRAGMA synchronous = OFF;
                     PRAGMA secure_delete = OFF; PRAGMA cache_size = -131072;"
                }
            };
            // The file a full rebuild may replace (see `crate::live_file`):
            // a pooled connection opened before it was replaced is closed
            // instead of handed out.
            let live = match durability {
                Durability::Full => sqlite_file(&url).map(|path| std::sync::Arc::new(LiveFile::new(&path))),
                Durability::Scratch => None,
            };
            if let Some(live) = &live {
                let live = std::sync::Arc::downgrade(live);
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(crate::live_file::LOOK_EVERY);
                    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        every.tick().await;
                        match live.upgrade() {
                            Some(live) => live.look(),
                            None => break,
                        }
                    }
                });
            }
            let with_pragmas = |options: AnyPoolOptions, writer: bool| {
                let (opened, fresh) = (live.clone(), live.clone());
                options
                    .after_connect(move |conn, _| {
                        let opened = opened.clone();
                        Box::pin(async move {
                            conn.execute(pragmas).await?;
                            if let (true, Some(live)) = (writer, opened) {
                                live.writer_opened();
                            }
                            Ok(())
                        })
                    })
                    .before_acquire(move |_, meta| {
                        let fresh = fresh.clone();
                        Box::pin(async move { Ok(fresh.is_none_or(|live| !live.outdated(meta.age))) })
                    })
            };
            let writer = with_pragmas(
                crate::pool::embedded::<sqlx::Any>().acquire_timeout(Duration::from_secs(30)),
                true,
            )
            .max_connections(1)
            .connect(&url)
            .await?;
            let pool = with_pragmas(options, false).max_connections(8).connect(&url).await?;
            let store = Self {
                pool,
                writer,
                dialect,
                url: given.into(),
                loading: false,
                live,
            };
            store.migrate().await?;
            store.fill_family_grams().await?;
            // Statistics for the planner where it has none (a store that grew
            // without a rebuild): bounded sampling, cheap at any size.
            if let Err(e) = store
                .writer
                .execute("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;")
                .await
            {
                tracing::warn!(error = %e, "the read store's statistics were not refreshed");
            }
            return Ok(store);
        }
        let pool = crate::pool::networked::<sqlx::Any>()
            // A household's subscription windows are one `GROUP_CONCAT` of
            // 56 characters a subscription (`families::WINDOW`): far past
            // MariaDB's default cut of 1,024 bytes before it truncates.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION group_concat_max_len = 4194304").await?;
                    Ok(())
                })
            })
            .acquire_timeout(Duration::from_secs(10))
            // Eight, not sixteen: at 32 clients on 2 cores, sixteen busy MariaDB
            // threads queued behind one another for the CPU. Eight served an
            // admin's family page at p99 10.4–10.5 ms where sixteen gave
            // 17.6–25.1 ms (and 11.8 ms for four), for 15 % fewer requests; a
            // recorder's list at p99 26–28 ms where sixteen gave 57–87
            // (docs/performance.md, thirty-first session).
            .max_connections(8)
            .connect(&url)
            .await?;
        let store = Self {
            writer: pool.clone(),
            pool,
            dialect,
            url: given.into(),
            loading: false,
            live: None,
        };
        store.migrate().await?;
        store.fill_family_grams().await?;
        Ok(store)
    }

    /// After an erasure: move SQLite's write-ahead log into the main file so no
    /// old page image with erased text stays in the log (freed pages are
    /// zeroed by `secure_delete`). Nothing to do on MySQL.
    pub async fn flush_erased(&self) -> Result<(), sqlx::Error> {
        if self.dialect == Dialect::Sqlite {
            // Readers can hold a checkpoint back: retry a little (bounded).
            for _ in 0..50 {
                let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&self.pool)
                    .await?;
                if row.try_get::<i64, _>(0)? == 0 {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tracing::warn!("the read store's write-ahead log could not be emptied after an erasure");
        }
        Ok(())
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let migrator = match self.dialect {
            Dialect::MySql => &MYSQL_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator
            .run(&self.writer)
            .await
            .map_err(|e| sqlx::Error::Migrate(Box::new(e)))
    }

    /// This store, applying batches as a bulk load (`Projector::load_all`),
    /// for a rebuild's shadow before anything reads it; each projector's
    /// `finish_load` must run before the store is used as usual.
    pub fn for_load(&self) -> ReadStore {
        ReadStore {
            loading: true,
            ..self.clone()
        }
    }

    pub(crate) fn loading(&self) -> bool {
        self.loading
    }

    /// For queries. Writes go through [`ReadStore::writer`].
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// For writes (see the field).
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// The embedded store's file, when it is one a rebuild may replace.
    pub(crate) fn live_file(&self) -> Option<&LiveFile> {
        self.live.as_deref()
    }

    /// Whether the writer's connection, which holds the write lock when this
    /// is asked inside a transaction, is on a file a full rebuild has replaced
    /// since it was opened (see `crate::live_file`): anything written there
    /// would be lost with the old file. Always false on MySQL.
    pub(crate) fn writer_outdated(&self) -> bool {
        self.live.as_ref().is_some_and(|live| live.writer_outdated())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Refreshes the planner's statistics of `tables` (after a bulk load).
    pub async fn analyze(&self, tables: &[&str]) -> Result<(), sqlx::Error> {
        match self.dialect {
            Dialect::MySql => {
                let sql = format!("ANALYZE TABLE {}", tables.join(", "));
                sqlx::query(&sql).fetch_all(&self.writer).await.map(|_| ())
            }
            Dialect::Sqlite => {
                for t in tables {
                    sqlx::query(&format!("ANALYZE {t}")).execute(&self.writer).await?;
                }
                Ok(())
            }
        }
    }

    /// A cheap liveness probe for `/health`.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// The file a `sqlite:` URL opens; `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

impl Dialect {
    /// `INSERT` that does nothing when the key exists.
    pub fn insert_ignore(&self) -> &'static str {
        match self {
            Dialect::MySql => "INSERT IGNORE",
            Dialect::Sqlite => "INSERT OR IGNORE",
        }
    }
}

/// Typed access to `Any` rows. MySQL reports `TEXT` columns as blobs through the
/// `Any` driver, so text is read as a string or, failing that, as UTF-8 bytes.
pub trait RowExt {
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.opt_text(col)?
            .ok_or_else(|| sqlx::Error::ColumnNotFound(format!("{col} is NULL")))
    }
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn opt_f64(&self, col: &str) -> Result<Option<f64>, sqlx::Error>;
    /// A JSON column, or `null` when the column is NULL or unparseable.
    fn json(&self, col: &str) -> Result<serde_json::Value, sqlx::Error> {
        Ok(self
            .opt_text(col)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null))
    }
    /// A text column parsed with `FromStr`; a bad value is a decode error.
    fn parse<T>(&self, col: &str) -> Result<T, sqlx::Error>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        let raw = self.text(col)?;
        raw.parse().map_err(|e| decode_error(col, e))
    }
    /// As [`RowExt::parse`], `None` when the column is NULL.
    fn opt_parse<T>(&self, col: &str) -> Result<Option<T>, sqlx::Error>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.opt_text(col)?
            .map(|raw| raw.parse().map_err(|e| decode_error(col, e)))
            .transpose()
    }
    /// A typed id (`domain::ids::*`) stored as its UUID text.
    fn id<T>(&self, col: &str) -> Result<T, sqlx::Error>
    where
        T: FromStr<Err = uuid::Error>,
    {
        self.parse(col)
    }
    /// As [`RowExt::id`], `None` when the column is NULL.
    fn opt_id<T>(&self, col: &str) -> Result<Option<T>, sqlx::Error>
    where
        T: FromStr<Err = uuid::Error>,
    {
        self.opt_parse(col)
    }
    /// A status (or any unit-variant enum of the domain) stored as the string
    /// it serializes to, e.g. `in_progress`; any other value is a decode error.
    fn status<T: DeserializeOwned>(&self, col: &str) -> Result<T, sqlx::Error> {
        let raw = self.text(col)?;
        variant(col, &raw)
    }
    /// As [`RowExt::status`], `None` when the column is NULL.
    fn opt_status<T: DeserializeOwned>(&self, col: &str) -> Result<Option<T>, sqlx::Error> {
        self.opt_text(col)?.map(|raw| variant(col, &raw)).transpose()
    }
}

/// `raw` as the unit variant of `T` it names (serde's spelling of it).
fn variant<T: DeserializeOwned>(col: &str, raw: &str) -> Result<T, sqlx::Error> {
    T::deserialize(StrDeserializer::<serde::de::value::Error>::new(raw)).map_err(|e| decode_error(col, e))
}

fn decode_error(col: &str, e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: Box::new(e),
    }
}

impl RowExt for AnyRow {
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        match self.try_get::<Option<String>, _>(col) {
            Ok(v) => Ok(v),
            Err(sqlx::Error::ColumnDecode { .. }) => {
                let bytes: Option<Vec<u8>> = self.try_get(col)?;
                Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
            }
            Err(e) => Err(e),
        }
    }
    fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.try_get::<i64, _>(col)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get::<Option<i64>, _>(col)
    }
    fn opt_f64(&self, col: &str) -> Result<Option<f64>, sqlx::Error> {
        self.try_get::<Option<f64>, _>(col)
    }
}

/// [`instant`]'s layout, as `chrono` writes it.
const INSTANT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// Formats an instant the way every read model stores it: RFC 3339, UTC,
/// milliseconds, fixed width (so text order is time order).
///
/// Written digit by digit: a replay formats every event's time, and chrono's
/// `format` (which parses its pattern each time) was 3.5 % of a rebuild's CPU
/// at 1,000,000 patients. Years outside 0–9999 and leap seconds, which the
/// fixed width does not cover, go through `format`.
pub fn instant(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return t.format(INSTANT).to_string();
    }
    fn digits(out: &mut [u8], mut v: u32) {
        for d in out.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    let mut out = *b"0000-00-00T00:00:00.000Z";
    digits(&mut out[0..4], year as u32);
    digits(&mut out[5..7], t.month());
    digits(&mut out[8..10], t.day());
    digits(&mut out[11..13], t.hour());
    digits(&mut out[14..16], t.minute());
    digits(&mut out[17..19], t.second());
    digits(&mut out[20..23], nanos / 1_000_000);
    out.iter().map(|b| char::from(*b)).collect()
}

/// A `LIKE` pattern matching `search` anywhere, with `!` as the escape
/// character (a backslash means different things in MySQL and SQLite literals).
pub(crate) fn like_pattern(search: &str) -> String {
    let escaped = search.replace('!', "!!").replace('%', "!%").replace('_', "!_");
    format!("%{escaped}%")
}

/// A time of day as stored in read models: `HH:MM`.
pub(crate) fn hhmm(t: chrono::NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use domain::visit::VisitStatus;

    use super::*;

    #[test]
    fn an_instant_is_written_as_chrono_writes_it() {
        use chrono::TimeZone;
        // Instants spread over years 0 to 9999, at any nanosecond.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let secs = (x >> 16) % 315_537_897_600;
            let t = chrono::DateTime::from_timestamp(secs as i64 - 62_167_219_200, (x % 1_000_000_000) as u32).unwrap();
            assert_eq!(super::instant(t), t.format(INSTANT).to_string(), "{t:?}");
        }
        for t in [
            chrono::Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            chrono::Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
            chrono::Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            chrono::Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_milli_opt(23, 59, 59, 1_500)
                .unwrap()
                .and_utc(),
        ] {
            assert_eq!(super::instant(t), t.format(INSTANT).to_string(), "{t:?}");
        }
    }

    #[test]
    fn a_status_is_read_as_it_serializes_and_anything_else_is_a_decode_error() {
        assert_eq!(
            variant::<VisitStatus>("status", "in_progress").unwrap(),
            VisitStatus::InProgress
        );
        assert!(matches!(
            variant::<VisitStatus>("status", "InProgress"),
            Err(sqlx::Error::ColumnDecode { index, .. }) if index == "status"
        ));
    }
}
