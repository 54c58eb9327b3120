//! The event store: cqrs-es aggregates persisted by postgres-es (PostgreSQL) or
//! sqlite-es (embedded), plus what those crates do not give and carelog needs:
//! a global position to follow, expected versions, cross-aggregate unique
//! claims and idempotency records, all in the same database as the events.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{
    EventStoreAggregateContext, PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream,
    SerializedEvent, SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateError, DomainEvent as _, EventStore as _};
use domain::patient::PatientError;
use domain::DomainError;
use postgres_es::PostgresEventRepository;
use projections::StoredEvent;
use sqlite_es::SqliteEventRepository;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::appender::{AppendError, Appender};
use crate::privacy::{MasterKey, Privacy, PrivacyError};
use crate::tail::Tail;

/// Where the event store lives; re-exported for the modules that run SQL on it.
pub use crate::backend::{Backend, SqliteDb};

static PG_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/events/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/events/sqlite");

/// How many times a command is retried when a concurrent append to the same
/// aggregate won (only for commands without `If-Match`).
const CONFLICT_RETRIES: usize = 60;

#[derive(Clone)]
pub struct EventStore {
    backend: Backend,
    /// Seals personal fields on the way in, opens them on the way out.
    privacy: Arc<Privacy>,
    /// Woken after every local commit so followers do not wait for their poll.
    appended: Arc<Notify>,
    /// The one writer of events: group commit (see `crate::appender`).
    appender: Appender,
    /// Whether the cross-instance commit listener runs.
    listening: Arc<std::sync::atomic::AtomicBool>,
    /// The events this process committed last (see `crate::tail`).
    tail: Arc<Tail>,
    /// This store's writer id: the payload of its commits' notifications
    /// (PostgreSQL), so its listener knows its own commits from others'.
    writer: Arc<str>,
    /// Whether another writer (an instance, a CLI command) has been heard on
    /// this store: from then on a read asks the store's head.
    others: Arc<AtomicBool>,
    /// True once the commit listener listens and has announced this writer.
    listener_up: Arc<tokio::sync::watch::Sender<bool>>,
}

/// `recorded_at` as SQLite's column default writes it (milliseconds).
pub(crate) const SQLITE_RECORDED_AT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// On PostgreSQL, commits by other instances (one notification per
/// transaction, see the migrations) wake this process's followers at once,
/// as its own commits do.
///
/// Another writer's commit empties the tail before the wake-up (see
/// `crate::tail`); this store's own commits woke the followers already and
/// are left alone. Other writers' commits made while the listener was down
/// were not heard: a reconnect empties the tail and wakes the followers too.
///
/// The listener also tells `others` that another writer shares the store, so
/// that reads ask the store's head (`crate::fence`): each listener announces
/// itself when it connects (a notification with its writer id and no commit),
/// and answers the first other writer it hears with one more, so that two
/// instances know of each other before either has committed.
fn listen_for_commits(
    pool: PgPool,
    wake: Arc<Notify>,
    tail: Arc<Tail>,
    writer: Arc<str>,
    others: Arc<AtomicBool>,
    heard: Arc<tokio::sync::watch::Sender<bool>>,
) {
    let announce = |pool: PgPool, writer: Arc<str>| async move {
        sqlx::query("SELECT pg_notify('carelog_events', $1)")
            .bind(&*writer)
            .execute(&pool)
            .await
            .map(|_| ())
    };
    tokio::spawn(async move {
        let mut reconnect = false;
        loop {
            let result: Result<(), sqlx::Error> = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen("carelog_events").await?;
                announce(pool.clone(), writer.clone()).await?;
                heard.send_replace(true);
                if reconnect {
                    tail.clear();
                    wake.notify_waiters();
                }
                reconnect = true;
                loop {
                    match listener.try_recv().await? {
                        Some(n) if n.payload() == &*writer => {}
                        // Another writer's commit or announcement, or the
                        // connection was lost (and is made again by the next
                        // call): what happened meanwhile was not heard.
                        n => {
                            if n.is_some() && !others.swap(true, Ordering::AcqRel) {
                                tracing::info!("another writer shares the event store; reads ask its head");
                                announce(pool.clone(), writer.clone()).await?;
                            }
                            tail.clear();
                            wake.notify_waiters();
                        }
                    }
                }
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "event listener lost; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// The outcome of a command: the aggregate's new version and the global
/// position of its last event (0 when the command changed nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    pub version: i64,
    pub position: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("expected version {expected}, aggregate is at {actual}")]
    VersionConflict { expected: i64, actual: i64 },
    /// The client command this command applies was applied already (by a
    /// resend or a concurrent twin); nothing was written.
    #[error("the client command was applied already")]
    DuplicateCommand,
    #[error("event store error: {0}")]
    Store(String),
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        CommandError::Store(e.to_string())
    }
}

/// Metadata recorded with every event, and the expected version if any.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    pub metadata: HashMap<String, String>,
    pub expected_version: Option<i64>,
    /// The aggregate's id was made for this command (a creation): its first
    /// attempt assumes the aggregate has no events and its own data key does
    /// not exist, and reads neither. The append's uniqueness checks (the
    /// first sequence, the subject's key row) turn a wrong assumption into a
    /// conflict, retried from a real load.
    pub fresh: bool,
}

impl CommandContext {
    /// This context for a command that creates the aggregate under an id
    /// made for it (see [`CommandContext::fresh`]).
    pub fn creating(mut self) -> Self {
        self.fresh = true;
        self
    }
}

enum Attempt {
    Done(i64),
    Conflict,
}

impl EventStore {
    /// PostgreSQL when `url` is given, else SQLite at `data_dir/events.db`.
    /// `master` unwraps the data subjects' keys (see `crate::privacy`).
    pub async fn connect(url: Option<&str>, data_dir: &Path, master: &MasterKey) -> anyhow::Result<Self> {
        let writer: Arc<str> = format!("carelog-{}", uuid::Uuid::new_v4().simple()).into();
        let backend = match url {
            Some(url) => {
                let id = writer.clone();
                let pool = projections::pool::networked::<sqlx::Postgres>()
                    .max_connections(20)
                    .acquire_timeout(Duration::from_secs(10))
                    // Names this store's commits in their notifications.
                    .after_connect(move |conn, _| {
                        let id = id.clone();
                        Box::pin(async move {
                            sqlx::query("SELECT set_config('carelog.writer', $1, false)")
                                .bind(&*id)
                                .execute(conn)
                                .await
                                .map(|_| ())
                        })
                    })
                    .connect(url)
                    .await?;
                PG_MIGRATIONS.run(&pool).await?;
                Backend::Postgres(pool)
            }
            None => {
                let path = data_dir.join("events.db");
                let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    // Erased keys must not linger in freed pages of the file.
                    .pragma("secure_delete", "ON")
                    .busy_timeout(Duration::from_secs(30));
                let write = projections::pool::embedded::<sqlx::Sqlite>()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    // A multi-row statement inside a transaction (a batch of
                    // appends, of access records) keeps a statement journal
                    // to undo itself alone; past 64 KiB SQLite spills it to a
                    // temporary file, written page by page on every commit.
                    // The writer's journals stay in memory: they are as large
                    // as the pages one batch changes.
                    .connect_with(options.clone().pragma("temp_store", "MEMORY"))
                    .await?;
                SQLITE_MIGRATIONS.run(&write).await?;
                let read = projections::pool::embedded::<sqlx::Sqlite>()
                    .max_connections(8)
                    .connect_with(options)
                    .await?;
                Backend::Sqlite(SqliteDb { read, write })
            }
        };
        let privacy = Privacy::open(backend.clone(), master).await?;
        let appended = Arc::new(Notify::new());
        let wake = appended.clone();
        let tail = Arc::new(Tail::default());
        let appender = Appender::start(backend.clone(), tail.clone(), move || wake.notify_waiters());
        Ok(Self {
            backend,
            privacy,
            appended,
            appender,
            listening: Arc::default(),
            tail,
            writer,
            others: Arc::default(),
            listener_up: Arc::new(tokio::sync::watch::channel(false).0),
        })
    }

    pub fn privacy(&self) -> &Privacy {
        &self.privacy
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The events this process committed last (see `crate::tail`).
    pub fn tail(&self) -> &Tail {
        &self.tail
    }

    /// The highest position this process has committed (0: none yet).
    pub fn last_committed(&self) -> i64 {
        self.tail.last_committed()
    }

    /// Whether another writer has been heard on this store (PostgreSQL: other
    /// instances, CLI commands). Embedded, one process owns the data dir.
    pub fn others_write(&self) -> bool {
        self.others.load(Ordering::Acquire)
    }

    /// Waits (at most a few seconds) until the commit listener listens and
    /// has announced this writer, so that an instance serves only once the
    /// others sharing its store know of it (`crate::fence`). If it does not
    /// come up in time, this process reads as if others wrote.
    pub async fn listening(&self) {
        if !self.listening.load(Ordering::Acquire) {
            return;
        }
        let mut up = self.listener_up.subscribe();
        if tokio::time::timeout(Duration::from_secs(5), up.wait_for(|v| *v))
            .await
            .is_err()
        {
            tracing::warn!("the commit listener is not up; reads ask the event store's head");
            self.others.store(true, Ordering::Release);
        }
    }

    /// Appends the sealed events of new aggregates as one all-or-nothing
    /// write, skipping the command path (the bench seeder, `crate::seed`):
    /// the rows must be sealed already and start their aggregates at 1.
    pub async fn append_new(&self, rows: Vec<crate::appender::Row>) -> Result<i64, AppendError> {
        self.appender.append(rows).await
    }

    /// Starts (once per store) the task that wakes this process's followers
    /// when another instance commits; called by `follower::spawn`, so one-shot
    /// tools never hold a listening connection.
    pub fn listen_for_commits(&self) {
        if let Backend::Postgres(pool) = &self.backend {
            if !self.listening.swap(true, Ordering::AcqRel) {
                listen_for_commits(
                    pool.clone(),
                    self.appended.clone(),
                    self.tail.clone(),
                    self.writer.clone(),
                    self.others.clone(),
                    self.listener_up.clone(),
                );
            }
        }
    }

    pub fn appended(&self) -> Arc<Notify> {
        self.appended.clone()
    }

    /// Runs a command on aggregate `id`: load, check the expected version,
    /// handle, commit all events or none. A lost race with a concurrent append
    /// is retried from a fresh load unless the caller pinned a version.
    #[tracing::instrument(skip_all, fields(aggregate = A::TYPE, aggregate_id = %id))]
    pub async fn execute<A>(
        &self,
        id: &str,
        command: A::Command,
        ctx: &CommandContext,
    ) -> Result<Committed, CommandError>
    where
        A: Aggregate<Services = ()>,
        DomainError: From<A::Error>,
        A::Command: Clone,
    {
        for attempt in 0..=CONFLICT_RETRIES {
            let last = Arc::new(AtomicI64::new(0));
            let assume_new = ctx.fresh && ctx.expected_version.is_none() && attempt == 0;
            let outcome = match &self.backend {
                Backend::Postgres(pool) => {
                    let repo = || self.appending(PostgresEventRepository::new(pool.clone()), &last, assume_new);
                    let store = PersistedEventStore::<_, A>::new_event_store(repo());
                    attempt_command(&store, &repo(), id, command.clone(), ctx).await?
                }
                Backend::Sqlite(SqliteDb { read: pool, .. }) => {
                    let repo = || self.appending(SqliteEventRepository::new(pool.clone()), &last, assume_new);
                    let store = PersistedEventStore::<_, A>::new_event_store(repo());
                    attempt_command(&store, &repo(), id, command.clone(), ctx).await?
                }
            };
            match outcome {
                (Attempt::Done(version), _) => {
                    return Ok(Committed {
                        version,
                        position: last.load(Ordering::Acquire),
                    });
                }
                (Attempt::Conflict, _) => {
                    if let Some(expected) = ctx.expected_version {
                        let actual = self.version(A::TYPE, id).await?;
                        return Err(CommandError::VersionConflict { expected, actual });
                    }
                    // Back off a little, with jitter, so racing writers spread out.
                    tokio::time::sleep(crate::appender::conflict_backoff(attempt)).await;
                }
            }
        }
        Err(CommandError::Store(format!(
            "{} {id}: too many concurrent writers",
            A::TYPE
        )))
    }

    /// Loads an aggregate; `None` when it has no events.
    pub async fn load<A>(&self, id: &str) -> Result<Option<(A, i64)>, CommandError>
    where
        A: Aggregate<Services = ()>,
        DomainError: From<A::Error>,
    {
        let ctx = match &self.backend {
            Backend::Postgres(pool) => {
                PersistedEventStore::<_, A>::new_event_store(self.protected(PostgresEventRepository::new(pool.clone())))
                    .load_aggregate(id)
                    .await
            }
            Backend::Sqlite(SqliteDb { read: pool, .. }) => {
                PersistedEventStore::<_, A>::new_event_store(self.protected(SqliteEventRepository::new(pool.clone())))
                    .load_aggregate(id)
                    .await
            }
        }
        .map_err(store_error)?;
        Ok((ctx.current_sequence > 0).then_some((ctx.aggregate, ctx.current_sequence as i64)))
    }

    /// The repository for reads only (loading aggregates).
    fn protected<R>(&self, inner: R) -> Protected<R> {
        Protected {
            inner,
            privacy: self.privacy.clone(),
            appender: None,
            assume_new: false,
        }
    }

    /// The repository a command writes through: its events go to the group
    /// committer, and the position of its last event lands in `last`. With
    /// `assume_new`, see [`CommandContext::fresh`].
    fn appending<R>(&self, inner: R, last: &Arc<AtomicI64>, assume_new: bool) -> Protected<R> {
        Protected {
            inner,
            privacy: self.privacy.clone(),
            appender: Some((self.appender.clone(), last.clone())),
            assume_new,
        }
    }

    async fn version(&self, aggregate_type: &str, id: &str) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COALESCE(MAX(sequence), 0) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2";
        on_backend!(&self.backend, |pool| sqlx::query_scalar::<_, i64>(sql)
            .bind(aggregate_type)
            .bind(id)
            .fetch_one(pool)
            .await)
    }

    /// The first answer of client command `command_id` of `recorder`, if it
    /// was applied: `(command_type, result JSON)`.
    pub async fn applied_command(
        &self,
        recorder: &str,
        command_id: &str,
    ) -> Result<Option<(String, String)>, sqlx::Error> {
        let sql = "SELECT command_type, result FROM sync_commands WHERE recorder_id = $1 AND command_id = $2";
        on_backend!(&self.backend, |pool| sqlx::query_as::<_, (String, String)>(sql)
            .bind(recorder)
            .bind(command_id)
            .fetch_optional(pool)
            .await)
    }

    /// Records a client command that appended no event (it changed nothing),
    /// so it too is applied once; `Duplicate` if it was applied already.
    pub async fn record_command(&self, mark: crate::appender::CommandMark) -> Result<(), AppendError> {
        self.appender.append_marked(Vec::new(), Some(mark)).await.map(|_| ())
    }

    /// The highest committed position.
    pub async fn head(&self) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
        on_backend!(&self.backend, |pool| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await)
    }

    /// How many events have a position up to `position`.
    pub async fn count_up_to(&self, position: i64) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COUNT(*) FROM events WHERE position <= $1";
        on_backend!(&self.backend, |pool| sqlx::query_scalar::<_, i64>(sql)
            .bind(position)
            .fetch_one(pool)
            .await)
    }

    /// Up to `limit` events after `position`, in position order, with their
    /// personal fields decrypted (or erased). Commit order equals position
    /// order (see the event store migration), so a reader never sees a
    /// position before all smaller ones that will ever exist.
    pub async fn read_after(&self, position: i64, limit: i64) -> anyhow::Result<Vec<StoredEvent>> {
        let raw = self.read_raw_after(position, limit).await?;
        self.open_many(raw).await
    }

    /// Decodes raw rows and decrypts their personal fields, with one key
    /// lookup for the whole batch.
    pub async fn open_many(&self, raw: Vec<RawEvent>) -> anyhow::Result<Vec<StoredEvent>> {
        let mut payloads = raw
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(&r.payload))
            .collect::<Result<Vec<_>, _>>()?;
        self.privacy.open_payloads(&mut payloads).await?;
        raw.into_iter()
            .zip(payloads)
            .map(|(r, payload)| {
                Ok(StoredEvent {
                    position: r.position,
                    aggregate_type: r.aggregate_type,
                    aggregate_id: r.aggregate_id,
                    sequence: r.sequence,
                    event_type: r.event_type,
                    event_version: r.event_version,
                    payload,
                    metadata: serde_json::from_str(&r.metadata)?,
                    recorded_at: chrono::DateTime::parse_from_rfc3339(&r.recorded_at)?.with_timezone(&chrono::Utc),
                })
            })
            .collect()
    }

    /// Events exactly as stored (personal fields sealed), after `position`.
    pub async fn read_raw_after(&self, position: i64, limit: i64) -> Result<Vec<RawEvent>, sqlx::Error> {
        self.query_raw(&EventFilter::default(), position, limit, 0).await
    }

    /// A follower's next batch as stored: up to `limit` events after
    /// `position`, and no more text than [`batch_bytes`]`(limit)` (see
    /// [`Batch`]). From the tail when it holds them, cloning no further.
    pub async fn next_raw_batch(&self, position: i64, limit: i64) -> Result<Batch<RawEvent>, sqlx::Error> {
        let budget = batch_bytes(limit);
        let mut events = match self.tail.after_within(position, limit, budget) {
            Some(events) => events,
            None => self.query_raw(&EventFilter::default(), position, limit, 0).await?,
        };
        let more = cut_to_budget(&mut events, limit, budget);
        Ok(Batch { events, more })
    }

    /// As [`EventStore::next_raw_batch`], with the personal fields decrypted
    /// (or erased): only the events the budget keeps are parsed.
    pub async fn next_batch(&self, position: i64, limit: i64) -> anyhow::Result<Batch<StoredEvent>> {
        let raw = self.next_raw_batch(position, limit).await?;
        Ok(Batch {
            more: raw.more,
            events: self.open_many(raw.events).await?,
        })
    }

    /// Stored events matching `filter` with position > `after`, oldest first,
    /// skipping `offset`.
    pub async fn query_raw(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<RawEvent>, sqlx::Error> {
        if filter.is_empty() && offset == 0 {
            if let Some(events) = self.tail.after(after, limit) {
                return Ok(events);
            }
        }
        // With an empty filter (the followers' query, after every commit) the
        // statement has no `$n IS NULL OR …` filters for the planner to see
        // through, just the position index.
        let (sql, values) = self.filtered_sql(filter);
        let rows: Vec<RawRow> = self.fetch_page(&sql, &values, after, limit, offset).await?;
        Ok(rows.into_iter().map(RawEvent::from).collect())
    }

    /// One page of the events `filter` selects, as stored, each with its link
    /// in the hash chain (`None` until the sealer has reached it): the
    /// auditor's history in one statement.
    pub async fn query_sealed(
        &self,
        filter: &EventFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<(RawEvent, Option<String>)>, sqlx::Error> {
        let (sql, values) = self.sealed_sql(filter);
        let rows: Vec<SealedRow> = self.fetch_page(&sql, &values, 0, limit, offset).await?;
        Ok(rows
            .into_iter()
            .map(|(p, t, id, seq, ty, v, payload, meta, at, hash)| {
                (RawEvent::from((p, t, id, seq, ty, v, payload, meta, at)), hash)
            })
            .collect())
    }

    /// The statement [`Self::query_raw`] runs when its page is not in the
    /// tail cache, and its values: the filter's, then `after`, `limit` and
    /// `offset` (`$n` placeholders). Public for the plan tests.
    pub fn filtered_sql(&self, filter: &EventFilter) -> (String, Vec<FilterValue>) {
        self.page_sql(raw_select(&self.backend), filter)
    }

    /// The rows of a page statement ([`Self::page_sql`]): `values`, then
    /// `after`, `limit` and `offset`.
    async fn fetch_page<R>(
        &self,
        sql: &str,
        values: &[FilterValue],
        after: i64,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + Send
            + Unpin,
    {
        match &self.backend {
            Backend::Postgres(pool) => {
                bind_values!(sqlx::query_as(sql), values, |t| t)
                    .bind(after)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(pool)
                    .await
            }
            Backend::Sqlite(SqliteDb { read: pool, .. }) => {
                bind_values!(sqlx::query_as(sql), values, sqlite_instant)
                    .bind(after)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// The statement [`Self::query_sealed`] runs: [`Self::filtered_sql`]'s,
    /// with each event's link in the hash chain (a lookup by key in
    /// `event_hashes`, null until sealed) as a tenth column. Public for the
    /// plan tests.
    pub fn sealed_sql(&self, filter: &EventFilter) -> (String, Vec<FilterValue>) {
        self.page_sql(sealed_select(&self.backend), filter)
    }

    /// `select` (of the events table) with `filter`'s conditions, after a
    /// position, in position order, one page.
    fn page_sql(&self, select: &str, filter: &EventFilter) -> (String, Vec<FilterValue>) {
        let (mut conditions, values) = filter_sql(matches!(self.backend, Backend::Postgres(_)), filter);
        let n = values.len();
        conditions.push(format!("position > ${}", n + 1));
        let sql = format!(
            "{select} WHERE {} ORDER BY position LIMIT ${} OFFSET ${}",
            conditions.join(" AND "),
            n + 2,
            n + 3
        );
        (sql, values)
    }

    /// Refreshes the planner's statistics of the event store, after a bulk
    /// load (`bench seed`, `restore`): PostgreSQL's autovacuum may be off or
    /// not yet round, and SQLite keeps none until asked.
    pub async fn analyze(&self) -> Result<(), sqlx::Error> {
        match &self.backend {
            Backend::Postgres(pool) => sqlx::query("ANALYZE").execute(pool).await.map(|_| ()),
            Backend::Sqlite(db) => sqlx::raw_sql("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;")
                .execute(&db.write)
                .await
                .map(|_| ()),
        }
    }

    /// How many stored events match `filter`, counting at most `limit`
    /// (see `projections::page::capped_count_limit`).
    pub async fn count(&self, filter: &EventFilter, limit: i64) -> Result<i64, sqlx::Error> {
        let (conditions, values) = filter_sql(matches!(self.backend, Backend::Postgres(_)), filter);
        let conditions = match conditions.is_empty() {
            true => "TRUE".to_string(),
            false => conditions.join(" AND "),
        };
        let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE {conditions} LIMIT {limit}) capped");
        match &self.backend {
            Backend::Postgres(pool) => {
                bind_values!(sqlx::query_scalar(&sql), &values, |t| t)
                    .fetch_one(pool)
                    .await
            }
            Backend::Sqlite(SqliteDb { read: pool, .. }) => {
                bind_values!(sqlx::query_scalar(&sql), &values, sqlite_instant)
                    .fetch_one(pool)
                    .await
            }
        }
    }

    pub async fn ping(&self) -> bool {
        on_backend!(&self.backend, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .is_ok())
    }

    /// Claims `value` in `scope` (e.g. a username) for aggregate `owner`.
    /// Returns false when another live aggregate holds it. A claim whose owner
    /// never got an event (the create failed or the process died) is taken over
    /// after a grace period.
    pub async fn claim(&self, scope: &str, value: &str, owner: &str) -> Result<bool, sqlx::Error> {
        let insert = "INSERT INTO unique_claims (scope, value, owner) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        let inserted = on_writer!(&self.backend, |pool| sqlx::query(insert)
            .bind(scope)
            .bind(value)
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected());
        if inserted == 1 {
            return Ok(true);
        }
        let current: Option<String> = on_backend!(&self.backend, |pool| sqlx::query_scalar(
            "SELECT owner FROM unique_claims WHERE scope = $1 AND value = $2"
        )
        .bind(scope)
        .bind(value)
        .fetch_optional(pool)
        .await?);
        let Some(current) = current else {
            // Released in between: try once more.
            return Box::pin(self.claim(scope, value, owner)).await;
        };
        if current == owner {
            return Ok(true);
        }
        let owner_exists: Option<i64> = on_backend!(&self.backend, |pool| sqlx::query_scalar(
            "SELECT sequence FROM events WHERE aggregate_id = $1 LIMIT 1"
        )
        .bind(&current)
        .fetch_optional(pool)
        .await?);
        if owner_exists.is_some() {
            return Ok(false);
        }
        let stale = match &self.backend {
            Backend::Postgres(pool) => sqlx::query(
                "UPDATE unique_claims SET owner = $3, claimed_at = now()
                     WHERE scope = $1 AND value = $2 AND owner = $4 AND claimed_at < now() - interval '60 seconds'",
            )
            .bind(scope)
            .bind(value)
            .bind(owner)
            .bind(&current)
            .execute(pool)
            .await?
            .rows_affected(),
            Backend::Sqlite(SqliteDb { write: pool, .. }) => sqlx::query(
                "UPDATE unique_claims SET owner = $3, claimed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                     WHERE scope = $1 AND value = $2 AND owner = $4
                       AND claimed_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds')",
            )
            .bind(scope)
            .bind(value)
            .bind(owner)
            .bind(&current)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(stale == 1)
    }

    /// Gives back the claims of `owner` in `scope` whose value starts with
    /// `prefix` (all of them with an empty prefix), e.g. a cancelled visit's place.
    pub async fn release_all(&self, scope: &str, owner: &str, prefix: &str) -> Result<(), sqlx::Error> {
        let sql = "DELETE FROM unique_claims WHERE scope = $1 AND owner = $2 AND substr(value, 1, length($3)) = $3";
        on_writer!(&self.backend, |pool| sqlx::query(sql)
            .bind(scope)
            .bind(owner)
            .bind(prefix)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Gives a claim back (the create it guarded failed).
    pub async fn release(&self, scope: &str, value: &str, owner: &str) -> Result<(), sqlx::Error> {
        let sql = "DELETE FROM unique_claims WHERE scope = $1 AND value = $2 AND owner = $3";
        on_writer!(&self.backend, |pool| sqlx::query(sql)
            .bind(scope)
            .bind(value)
            .bind(owner)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

pub(crate) use crate::backend::{on_backend, on_writer};

async fn attempt_command<A, ES, R>(
    store: &ES,
    writer: &Protected<R>,
    id: &str,
    command: A::Command,
    ctx: &CommandContext,
) -> Result<(Attempt, bool), CommandError>
where
    A: Aggregate<Services = ()>,
    DomainError: From<A::Error>,
    ES: cqrs_es::EventStore<A, AC = EventStoreAggregateContext<A>>,
{
    let mut context = store.load_aggregate(id).await.map_err(store_error)?;
    let current = context.current_sequence as i64;
    if let Some(expected) = ctx.expected_version {
        if expected != current {
            return Err(CommandError::VersionConflict {
                expected,
                actual: current,
            });
        }
    }
    let sink = EventSink::<A>::default();
    context
        .aggregate
        .handle(command, &(), &sink)
        .await
        .map_err(|refused| CommandError::Domain(refused.into()))?;
    let events = sink.collect().await;
    if events.is_empty() {
        return Ok((Attempt::Done(current), false));
    }
    let written = events.len() as i64;
    // Not `store.commit`: see `Protected::commit`.
    let committed = writer
        .commit::<A>(id, context.current_sequence, &events, &ctx.metadata)
        .await
        .map_err(AggregateError::<A::Error>::from);
    match committed {
        Ok(()) => Ok((Attempt::Done(current + written), true)),
        Err(AggregateError::AggregateConflict) => Ok((Attempt::Conflict, false)),
        Err(e) => Err(store_error(e)),
    }
}

fn store_error<E>(e: AggregateError<E>) -> CommandError
where
    E: std::error::Error,
    DomainError: From<E>,
{
    match e {
        AggregateError::UserError(d) => CommandError::Domain(d.into()),
        AggregateError::UnexpectedError(e)
            if matches!(e.downcast_ref::<PrivacyError>(), Some(PrivacyError::Erased(_))) =>
        {
            CommandError::Domain(PatientError::Erased.into())
        }
        AggregateError::UnexpectedError(e)
            if matches!(e.downcast_ref::<AppendError>(), Some(AppendError::Duplicate)) =>
        {
            CommandError::DuplicateCommand
        }
        AggregateError::AggregateConflict => CommandError::Store("aggregate conflict".into()),
        other => CommandError::Store(other.to_string()),
    }
}

/// The most text (payload and metadata) a follower's batch of `limit` events
/// holds: 2 KiB an event (three times the average event of a seeded store), or
/// one [`domain::job::MAX_PART_BYTES`] part for a small batch. A run of large
/// events, such as a day's reminders recorded in 256 KiB parts, is read in
/// several batches: no follower holds the whole run, or its parsed values, at
/// once (at 1,000,000 patients the day's run is 58 parts, 7 MB of text and
/// 33 MB once parsed).
pub fn batch_bytes(limit: i64) -> usize {
    usize::try_from(limit.max(1))
        .unwrap_or(usize::MAX)
        .saturating_mul(2048)
        .max(domain::job::MAX_PART_BYTES)
}

/// The size an event counts for in a batch's budget.
pub fn event_bytes(e: &RawEvent) -> usize {
    e.payload.len() + e.metadata.len()
}

/// A follower's batch: events in position order, and whether more may follow
/// at once (the batch is full, or cut at its byte budget) so that a follower
/// steps again instead of waiting for the next commit.
#[derive(Debug)]
pub struct Batch<T> {
    pub events: Vec<T>,
    pub more: bool,
}

/// How many of `events` a batch keeps: up to the event that brings their text
/// to `budget`, and at least the first; and whether the budget was reached.
/// The one rule of the tail's clones and the database's reads.
pub fn within_budget<'a>(events: impl IntoIterator<Item = &'a RawEvent>, budget: usize) -> (usize, bool) {
    let (mut kept, mut total) = (0, 0_usize);
    for e in events {
        if total >= budget {
            break;
        }
        total = total.saturating_add(event_bytes(e));
        kept += 1;
    }
    (kept, total >= budget)
}

/// Cuts `events` (read with `limit`) to what a batch keeps ([`within_budget`]);
/// whether more may follow at once.
fn cut_to_budget(events: &mut Vec<RawEvent>, limit: i64, budget: usize) -> bool {
    let (keep, reached) = within_budget(events.iter(), budget);
    events.truncate(keep);
    reached || events.len() as i64 >= limit
}

/// One event row as stored: payload and metadata as their JSON text, the
/// instant as RFC 3339 text. What the hash chain covers.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: String,
}

type RawRow = (i64, String, String, i64, String, String, String, String, String);
/// A [`RawRow`] and the event's hash (see [`EventStore::query_sealed`]).
type SealedRow = (
    i64,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

impl From<RawRow> for RawEvent {
    fn from(r: RawRow) -> Self {
        RawEvent {
            position: r.0,
            aggregate_type: r.1,
            aggregate_id: r.2,
            sequence: r.3,
            event_type: r.4,
            event_version: r.5,
            payload: r.6,
            metadata: r.7,
            recorded_at: r.8,
        }
    }
}

/// Filters of the auditor's event search; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub actor_id: Option<String>,
    /// Recorded at or after (RFC 3339, UTC).
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Recorded at or before.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Events about this patient: the patient's own, and those of every
    /// aggregate whose first event names them (visits, records, orders, bookings).
    pub patient_id: Option<String>,
}

impl EventFilter {
    /// No condition at all: every event.
    pub fn is_empty(&self) -> bool {
        self.aggregate_type.is_none()
            && self.aggregate_id.is_none()
            && self.actor_id.is_none()
            && self.from.is_none()
            && self.to.is_none()
            && self.patient_id.is_none()
    }
}

/// The columns of a [`RawRow`], as each store renders them.
macro_rules! raw_columns {
    // `recorded_at` as `carelog_append` returns it (migration 0020), for the
    // tail.
    (postgres) => {
        "position, aggregate_type, aggregate_id, sequence, event_type, event_version,
         payload::text, metadata::text,
         to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    };
    (sqlite) => {
        "position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at"
    };
}

/// The SELECT of a [`RawRow`] from the events table, as each store renders it.
fn raw_select(backend: &Backend) -> &'static str {
    match backend {
        Backend::Postgres(_) => concat!("SELECT ", raw_columns!(postgres), " FROM events"),
        Backend::Sqlite(_) => concat!("SELECT ", raw_columns!(sqlite), " FROM events"),
    }
}

/// [`raw_select`] with each event's link in the hash chain as a tenth column:
/// a read by key of `event_hashes`, null until the sealer reaches the event.
fn sealed_select(backend: &Backend) -> &'static str {
    macro_rules! sealed {
        ($backend:ident) => {
            concat!(
                "SELECT ",
                raw_columns!($backend),
                ", (SELECT h.hash FROM event_hashes h WHERE h.position = events.position) FROM events"
            )
        };
    }
    match backend {
        Backend::Postgres(_) => sealed!(postgres),
        Backend::Sqlite(_) => sealed!(sqlite),
    }
}

/// A value of an [`EventFilter`] condition, bound in order.
pub enum FilterValue {
    Text(String),
    Instant(chrono::DateTime<chrono::Utc>),
}

/// The conditions of `filter` that are set (placeholders `$1`, `$2`, … in
/// order), for the caller to join with `AND`, and their values; none when no
/// field is set. Only what was asked is in the SQL, so the planner can use the
/// primary key (an aggregate) or `events_recorded_at` (a time range); a
/// `$n IS NULL OR …` per filter would defeat both.
fn filter_sql(postgres: bool, filter: &EventFilter) -> (Vec<String>, Vec<FilterValue>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut values = Vec::new();
    let mut push = |condition: &dyn Fn(usize) -> String, value: FilterValue| {
        values.push(value);
        conditions.push(condition(values.len()));
    };
    if let Some(t) = &filter.aggregate_type {
        push(&|n| format!("aggregate_type = ${n}"), FilterValue::Text(t.clone()));
    }
    if let Some(id) = &filter.aggregate_id {
        push(&|n| format!("aggregate_id = ${n}"), FilterValue::Text(id.clone()));
    }
    if let Some(actor) = &filter.actor_id {
        // The expression of the `events_actor` index, and its condition, so
        // that both planners read the user's events from it in order.
        let actor_sql = match postgres {
            true => |n| format!("(metadata ->> 'actor_id') = ${n} AND (metadata ->> 'actor_id') IS NOT NULL"),
            false => {
                |n| {
                    format!("json_extract(metadata, '$.actor_id') = ${n} AND json_extract(metadata, '$.actor_id') IS NOT NULL")
                }
            }
        };
        push(&actor_sql, FilterValue::Text(actor.clone()));
    }
    if let Some(from) = filter.from {
        push(&|n| format!("recorded_at >= ${n}"), FilterValue::Instant(from));
    }
    if let Some(to) = filter.to {
        push(&|n| format!("recorded_at <= ${n}"), FilterValue::Instant(to));
    }
    if let Some(patient) = &filter.patient_id {
        // The patient's own events, and those of every aggregate whose first
        // event names them (`event_subjects`, written at append): both by
        // primary key, then taken by position.
        //
        // On PostgreSQL the plan must not depend on statistics: without them
        // (a bulk load, a restore, autovacuum off or not yet round) the
        // planner hashed the subjects against a scan of every event and
        // merged the positions with a walk of the whole position index,
        // 0.26 s a page at 300,000 events. So the aggregates' events are
        // taken per subject by key (a lateral subquery kept apart by
        // `OFFSET 0`), and the positions are gathered once into an array
        // that the position index is probed with.
        let patient_sql = match postgres {
            true => |n| {
                format!(
                    "position = ANY(ARRAY(SELECT o.position FROM events o WHERE o.aggregate_type = 'patient' AND o.aggregate_id = ${n}
                        UNION ALL SELECT e.position FROM event_subjects s CROSS JOIN LATERAL
                          (SELECT x.position FROM events x
                           WHERE x.aggregate_type = s.aggregate_type AND x.aggregate_id = s.aggregate_id OFFSET 0) e
                        WHERE s.patient_id = ${n}))"
                )
            },
            false => |n| {
                format!(
                    "position IN (SELECT o.position FROM events o WHERE o.aggregate_type = 'patient' AND o.aggregate_id = ${n}
                        UNION ALL SELECT e.position FROM event_subjects s JOIN events e
                          ON e.aggregate_type = s.aggregate_type AND e.aggregate_id = s.aggregate_id
                        WHERE s.patient_id = ${n})"
                )
            },
        };
        push(&patient_sql, FilterValue::Text(patient.clone()));
    }
    (conditions, values)
}

/// Binds [`filter_sql`]'s values on a query, instants converted by `$instant`
/// (SQLite keeps instants as RFC 3339 text with milliseconds, PostgreSQL as
/// timestamptz).
macro_rules! bind_values {
    ($q:expr, $values:expr, $instant:expr) => {{
        let mut q = $q;
        for v in $values {
            q = match v {
                FilterValue::Text(s) => q.bind(s.clone()),
                FilterValue::Instant(t) => q.bind(($instant)(*t)),
            };
        }
        q
    }};
}
use bind_values;

fn sqlite_instant(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A cqrs-es repository that seals personal fields before they are stored and
/// opens them when an aggregate is loaded (see `crate::privacy`).
struct Protected<R> {
    inner: R,
    privacy: Arc<Privacy>,
    /// Where commands append (and the slot for their last position); `None`
    /// for a read-only repository, which must not write.
    appender: Option<(Appender, Arc<AtomicI64>)>,
    /// Loads find no events and the aggregate's own data key is made without
    /// a lookup (see [`CommandContext::fresh`]).
    assume_new: bool,
}

fn persistence(e: PrivacyError) -> PersistenceError {
    PersistenceError::UnknownError(Box::new(e))
}

impl<R: PersistedEventRepository> Protected<R> {
    /// Opens an aggregate's events with one key lookup for all of them.
    async fn open_all(&self, mut events: Vec<SerializedEvent>) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut payloads: Vec<serde_json::Value> = events.iter_mut().map(|e| std::mem::take(&mut e.payload)).collect();
        self.privacy.open_payloads(&mut payloads).await.map_err(persistence)?;
        for (e, p) in events.iter_mut().zip(payloads) {
            e.payload = p;
        }
        Ok(events)
    }
}

/// One event on its way to the appender.
struct Outgoing<'a> {
    aggregate_id: &'a str,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Payload,
    metadata: &'a serde_json::Value,
}

enum Payload {
    /// To be sealed (its aggregate type has personal fields), then written out.
    Open(serde_json::Value),
    /// Its JSON text as stored: nothing in it to seal.
    Text(String),
}

impl<R> Protected<R> {
    /// Commits `events` (the typed events a command decided, after
    /// `last_sequence`) as cqrs-es's `commit` would, without its detour
    /// through a `serde_json::Value` per event where there is nothing to seal:
    /// those are written straight to their JSON text. A value tree takes
    /// several times the memory of its text (a day's visit reminders: ~30 MB
    /// of values for 7 MB of text) and the time to build it.
    async fn commit<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
        events: &[A::Event],
        metadata: &HashMap<String, String>,
    ) -> Result<(), PersistenceError> {
        let metadata = serde_json::to_value(metadata)?;
        let sealed = Privacy::protects(A::TYPE);
        let mut outgoing = Vec::with_capacity(events.len());
        for (event, sequence) in events.iter().zip(last_sequence as i64 + 1..) {
            let payload = match sealed {
                true => Payload::Open(serde_json::to_value(event)?),
                false => Payload::Text(fitted(serde_json::to_string(event)?)),
            };
            outgoing.push(Outgoing {
                aggregate_id,
                sequence,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload,
                metadata: &metadata,
            });
        }
        self.append::<A>(outgoing).await
    }

    /// Seals what needs it and appends, all or nothing.
    async fn append<A: Aggregate>(&self, events: Vec<Outgoing<'_>>) -> Result<(), PersistenceError> {
        let Some((appender, last)) = &self.appender else {
            return Err(PersistenceError::UnknownError(
                "a read-only repository cannot write".into(),
            ));
        };
        // The client command these events apply, if any (see `crate::appender::with_mark`):
        // recorded with them, and named in their metadata beside the server's time.
        let mark = crate::appender::take_mark();
        let mut rows = Vec::with_capacity(events.len());
        let mut fresh = match self.assume_new {
            true => crate::privacy::FreshKeys::for_new(events.first().map(|e| e.aggregate_id.to_string())),
            false => crate::privacy::FreshKeys::default(),
        };
        let json =
            |v: &serde_json::Value| serde_json::to_string(v).map_err(|e| PersistenceError::UnknownError(Box::new(e)));
        for e in events {
            let payload = match e.payload {
                Payload::Text(text) => text,
                Payload::Open(mut payload) => {
                    self.privacy
                        .seal(A::TYPE, e.aggregate_id, &mut payload, &mut fresh)
                        .await
                        .map_err(persistence)?;
                    fitted(json(&payload)?)
                }
            };
            let metadata = match (&mark, e.metadata.as_object()) {
                (Some(m), Some(fields)) => {
                    let mut fields = fields.clone();
                    fields.insert("sync_command_id".into(), m.command_id.clone().into());
                    fields.insert("device_id".into(), m.device_id.clone().into());
                    fields.insert("captured_at".into(), m.captured_at.clone().into());
                    json(&serde_json::Value::Object(fields))?
                }
                _ => json(e.metadata)?,
            };
            rows.push(crate::appender::Row {
                aggregate_type: A::TYPE.to_string(),
                aggregate_id: e.aggregate_id.to_string(),
                sequence: e.sequence,
                event_type: e.event_type,
                event_version: e.event_version,
                payload,
                metadata,
            });
        }
        let result = appender.append_sealed(rows, mark.clone(), fresh.rows()).await;
        if let Some(m) = mark {
            crate::appender::settle_mark(m, &result);
        }
        match result {
            Ok(position) => {
                last.store(position, Ordering::Release);
                Ok(())
            }
            Err(AppendError::Conflict) => Err(PersistenceError::OptimisticLockError),
            Err(e) => Err(PersistenceError::UnknownError(Box::new(e))),
        }
    }
}

impl<R: PersistedEventRepository> PersistedEventRepository for Protected<R> {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        if self.assume_new {
            return Ok(Vec::new());
        }
        let events = self.inner.get_events::<A>(aggregate_id).await?;
        self.open_all(events).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        if self.assume_new {
            return Ok(Vec::new());
        }
        let events = self.inner.get_last_events::<A>(aggregate_id, last_sequence).await?;
        self.open_all(events).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        // carelog takes no snapshots (a snapshot would hold personal data in clear).
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, serde_json::Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError("carelog takes no snapshots".into()));
        }
        let outgoing = events
            .iter()
            .map(|e| Outgoing {
                aggregate_id: &e.aggregate_id,
                sequence: e.sequence as i64,
                event_type: e.event_type.clone(),
                event_version: e.event_version.clone(),
                payload: Payload::Open(e.payload.clone()),
                metadata: &e.metadata,
            })
            .collect();
        self.append::<A>(outgoing).await
    }

    async fn stream_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<ReplayStream, PersistenceError> {
        // Raw (sealed) form; carelog replays through `read_after` instead.
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}

/// `text` without the spare capacity its serializer's doubling left, when
/// that is more than a few kilobytes: a large event (a scheduled job's part of
/// up to 256 KiB) is held until its commit and then by the tail, and would
/// otherwise hold up to twice its size.
fn fitted(mut text: String) -> String {
    if text.capacity() - text.len() > 4096 {
        text.shrink_to_fit();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{batch_bytes, cut_to_budget, filter_sql, EventFilter, FilterValue, RawEvent};

    fn sized(position: i64, bytes: usize) -> RawEvent {
        RawEvent {
            position,
            aggregate_type: "job_run".into(),
            aggregate_id: "visit_reminders:2026-12-06".into(),
            sequence: position,
            event_type: "JobRan".into(),
            event_version: "1.0".into(),
            payload: "x".repeat(bytes),
            metadata: "{}".into(),
            recorded_at: "2026-12-06T00:00:00.000000Z".into(),
        }
    }

    fn cut(sizes: &[usize], limit: i64, budget: usize) -> (Vec<i64>, bool) {
        let mut events: Vec<RawEvent> = (1..).zip(sizes).map(|(p, b)| sized(p, *b)).collect();
        let more = cut_to_budget(&mut events, limit, budget);
        (events.iter().map(|e| e.position).collect(), more)
    }

    #[test]
    fn a_batch_ends_at_the_event_that_reaches_its_budget() {
        // Each event counts its payload and its 2 bytes of metadata.
        assert_eq!(cut(&[98, 98, 98], 10, 1_000), (vec![1, 2, 3], false), "short: the head");
        assert_eq!(cut(&[98, 98, 98], 3, 1_000), (vec![1, 2, 3], true), "full: step again");
        assert_eq!(cut(&[98, 98, 98], 10, 200), (vec![1, 2], true), "cut: step again");
        assert_eq!(cut(&[5_000, 98], 10, 200), (vec![1], true), "at least one");
        assert_eq!(cut(&[], 10, 200), (vec![], false));
        // A follower's batch of 500 holds about 1 MB, a rebuild's of 5,000 ten times that,
        // and even a batch of one holds a scheduled job's largest part.
        assert_eq!(batch_bytes(500), 1_024_000);
        assert_eq!(batch_bytes(5_000), 10_240_000);
        assert_eq!(batch_bytes(1), domain::job::MAX_PART_BYTES);
    }

    fn texts(values: &[FilterValue]) -> Vec<String> {
        values
            .iter()
            .map(|v| match v {
                FilterValue::Text(s) => s.clone(),
                FilterValue::Instant(t) => t.to_rfc3339(),
            })
            .collect()
    }

    #[test]
    fn only_the_conditions_asked_for_are_in_the_sql_numbered_in_order() {
        for postgres in [true, false] {
            let (conditions, values) = filter_sql(postgres, &EventFilter::default());
            assert!(conditions.is_empty(), "{conditions:?}");
            assert!(values.is_empty());

            let by_aggregate = EventFilter {
                aggregate_type: Some("visit".into()),
                aggregate_id: Some("v1".into()),
                ..EventFilter::default()
            };
            let (conditions, values) = filter_sql(postgres, &by_aggregate);
            assert_eq!(conditions.join(" AND "), "aggregate_type = $1 AND aggregate_id = $2");
            assert_eq!(texts(&values), ["visit", "v1"]);

            let from = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .unwrap()
                .to_utc();
            let by_actor_since = EventFilter {
                actor_id: Some("u1".into()),
                from: Some(from),
                patient_id: Some("p1".into()),
                ..EventFilter::default()
            };
            let (conditions, values) = filter_sql(postgres, &by_actor_since);
            let sql = conditions.join(" AND ");
            assert!(!sql.contains("IS NULL"), "{sql}");
            // PostgreSQL probes the position index with an array (see `filter_sql`).
            let (actor, positions, closing) = match postgres {
                true => (
                    "(metadata ->> 'actor_id')",
                    "position = ANY(ARRAY(",
                    "WHERE s.patient_id = $3))",
                ),
                false => (
                    "json_extract(metadata, '$.actor_id')",
                    "position IN (",
                    "WHERE s.patient_id = $3)",
                ),
            };
            // The actor as the `events_actor` index holds it, with its condition.
            assert!(
                sql.starts_with(&format!(
                    "{actor} = $1 AND {actor} IS NOT NULL AND recorded_at >= $2 AND {positions}"
                )),
                "{sql}"
            );
            assert!(sql.contains("o.aggregate_id = $3"), "{sql}");
            assert!(sql.ends_with(closing), "{sql}");
            assert!(!sql.contains("LIKE"), "{sql}");
            assert_eq!(texts(&values), ["u1", "2026-01-01T00:00:00+00:00", "p1"]);
        }
    }
}
