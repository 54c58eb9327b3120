//! The event store: cqrs-es aggregates persisted by postgres-es (PostgreSQL) or
//! sqlite-es (embedded), plus what those crates do not give and carelog needs:
//! a global position to follow, expected versions, cross-aggregate unique
//! claims and idempotency records, all in the same database as the events.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, EventStore as _};
use domain::DomainError;
use postgres_es::PostgresEventRepository;
use projections::StoredEvent;
use sqlite_es::SqliteEventRepository;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::Notify;

static PG_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/events/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/events/sqlite");

/// How many times a command is retried when a concurrent append to the same
/// aggregate won (only for commands without `If-Match`).
const CONFLICT_RETRIES: usize = 60;

#[derive(Clone)]
pub enum Backend {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs the same statement on whichever backend is configured. The SQL must be
/// valid for both (PostgreSQL and SQLite both accept `$1` placeholders).
macro_rules! on_backend {
    ($backend:expr, |$pool:ident| $body:expr) => {
        match $backend {
            Backend::Postgres($pool) => $body,
            Backend::Sqlite($pool) => $body,
        }
    };
}

#[derive(Clone)]
pub struct EventStore {
    backend: Backend,
    /// Woken after every local commit so followers do not wait for their poll.
    appended: Arc<Notify>,
}

/// The outcome of a command: the aggregate's new version and the global
/// position of its last event (0 when the command changed nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

enum Attempt {
    Done(i64),
    Conflict,
}

impl EventStore {
    /// PostgreSQL when `url` is given, else SQLite at `data_dir/events.db`.
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> Result<Self, sqlx::Error> {
        let backend = match url {
            Some(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(20)
                    .acquire_timeout(Duration::from_secs(10))
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
                    .busy_timeout(Duration::from_secs(30));
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(options)
                    .await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
                Backend::Sqlite(pool)
            }
        };
        Ok(Self {
            backend,
            appended: Arc::new(Notify::new()),
        })
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
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
        A: Aggregate<Error = DomainError, Services = ()>,
        A::Command: Clone,
    {
        for attempt in 0..=CONFLICT_RETRIES {
            let outcome = match &self.backend {
                Backend::Postgres(pool) => {
                    let store =
                        PersistedEventStore::<_, A>::new_event_store(PostgresEventRepository::new(pool.clone()));
                    attempt_command(&store, id, command.clone(), ctx).await?
                }
                Backend::Sqlite(pool) => {
                    let store = PersistedEventStore::<_, A>::new_event_store(SqliteEventRepository::new(pool.clone()));
                    attempt_command(&store, id, command.clone(), ctx).await?
                }
            };
            match outcome {
                (Attempt::Done(version), wrote) => {
                    let position = if wrote {
                        self.appended.notify_waiters();
                        self.last_position(A::TYPE, id).await?
                    } else {
                        0
                    };
                    return Ok(Committed { version, position });
                }
                (Attempt::Conflict, _) => {
                    if let Some(expected) = ctx.expected_version {
                        let actual = self.version(A::TYPE, id).await?;
                        return Err(CommandError::VersionConflict { expected, actual });
                    }
                    // Back off a little, with jitter, so racing writers spread out.
                    let jitter = rand::random::<u64>() % (5 + 5 * attempt as u64);
                    tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
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
        A: Aggregate<Error = DomainError, Services = ()>,
    {
        let ctx = match &self.backend {
            Backend::Postgres(pool) => {
                PersistedEventStore::<_, A>::new_event_store(PostgresEventRepository::new(pool.clone()))
                    .load_aggregate(id)
                    .await
            }
            Backend::Sqlite(pool) => {
                PersistedEventStore::<_, A>::new_event_store(SqliteEventRepository::new(pool.clone()))
                    .load_aggregate(id)
                    .await
            }
        }
        .map_err(store_error)?;
        Ok((ctx.current_sequence > 0).then_some((ctx.aggregate, ctx.current_sequence as i64)))
    }

    async fn last_position(&self, aggregate_type: &str, id: &str) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COALESCE(MAX(position), 0) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2";
        on_backend!(&self.backend, |pool| sqlx::query_scalar::<_, i64>(sql)
            .bind(aggregate_type)
            .bind(id)
            .fetch_one(pool)
            .await)
    }

    async fn version(&self, aggregate_type: &str, id: &str) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COALESCE(MAX(sequence), 0) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2";
        on_backend!(&self.backend, |pool| sqlx::query_scalar::<_, i64>(sql)
            .bind(aggregate_type)
            .bind(id)
            .fetch_one(pool)
            .await)
    }

    /// The highest committed position.
    pub async fn head(&self) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
        on_backend!(&self.backend, |pool| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await)
    }

    /// Up to `limit` events after `position`, in position order. Commit order
    /// equals position order (see the event store migration), so a reader never
    /// sees a position before all smaller ones that will ever exist.
    pub async fn read_after(&self, position: i64, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
        type Row = (i64, String, String, i64, String, String, String, String, String);
        let rows: Vec<Row> = match &self.backend {
            Backend::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                        payload::text, metadata::text,
                        to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
                     FROM events WHERE position > $1 ORDER BY position LIMIT $2",
                )
                .bind(position)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
            Backend::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                        payload, metadata, recorded_at
                     FROM events WHERE position > $1 ORDER BY position LIMIT $2",
                )
                .bind(position)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        };
        rows.into_iter()
            .map(
                |(
                    position,
                    aggregate_type,
                    aggregate_id,
                    sequence,
                    event_type,
                    event_version,
                    payload,
                    metadata,
                    at,
                )| {
                    let decode = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
                    Ok(StoredEvent {
                        position,
                        aggregate_type,
                        aggregate_id,
                        sequence,
                        event_type,
                        event_version,
                        payload: serde_json::from_str(&payload).map_err(decode)?,
                        metadata: serde_json::from_str(&metadata).map_err(decode)?,
                        recorded_at: chrono::DateTime::parse_from_rfc3339(&at)
                            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
                            .with_timezone(&chrono::Utc),
                    })
                },
            )
            .collect()
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
        let inserted = on_backend!(&self.backend, |pool| sqlx::query(insert)
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
            Backend::Sqlite(pool) => sqlx::query(
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
        on_backend!(&self.backend, |pool| sqlx::query(sql)
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
        on_backend!(&self.backend, |pool| sqlx::query(sql)
            .bind(scope)
            .bind(value)
            .bind(owner)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

pub(crate) use on_backend;

async fn attempt_command<A, ES>(
    store: &ES,
    id: &str,
    command: A::Command,
    ctx: &CommandContext,
) -> Result<(Attempt, bool), CommandError>
where
    A: Aggregate<Error = DomainError, Services = ()>,
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
    context.aggregate.handle(command, &(), &sink).await?;
    let events = sink.collect().await;
    if events.is_empty() {
        return Ok((Attempt::Done(current), false));
    }
    let written = events.len() as i64;
    match store.commit(events, context, ctx.metadata.clone()).await {
        Ok(_) => Ok((Attempt::Done(current + written), true)),
        Err(AggregateError::AggregateConflict) => Ok((Attempt::Conflict, false)),
        Err(e) => Err(store_error(e)),
    }
}

fn store_error(e: AggregateError<DomainError>) -> CommandError {
    match e {
        AggregateError::UserError(d) => CommandError::Domain(d),
        AggregateError::AggregateConflict => CommandError::Store("aggregate conflict".into()),
        other => CommandError::Store(other.to_string()),
    }
}
