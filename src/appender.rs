//! Group commit: one writer task per event store appends the events of many
//! commands in one transaction.
//!
//! # Why
//! Positions come from one counter row whose lock is held until the appending
//! transaction ends (commit order = position order, see the migration), so
//! appends are serialized: with one transaction per command, a command costs a
//! whole commit (an fsync) and 32 clients queue for one commit each. Here the
//! commands that arrive while a transaction is in flight are written together
//! by the next one: one transaction, one multi-row `INSERT`, one fsync and one
//! notification for all of them. On SQLite the same task is the one writer of
//! the event log, so commands never fight for its write lock.
//!
//! # Guarantees kept
//! - **All or nothing per command.** A command's events are in one job; the
//!   transaction commits every job of the batch or none.
//! - **Conflict-checked per command.** A job whose `(aggregate, sequence)` is
//!   taken (a concurrent writer won) makes the multi-row insert fail; the batch
//!   is then rolled back and each job written alone, so only that command sees
//!   [`AppendError::Conflict`] (and is retried from a fresh load by the caller).
//! - **Positions in commit order**, as before: the trigger still takes them
//!   from the counter row, once per row, inside the batch's transaction.

use std::time::Duration;

use sqlx::{Postgres, QueryBuilder, Sqlite};
use tokio::sync::{mpsc, oneshot};

use crate::backend::{Backend, SqliteDb};

/// Most events one transaction takes; the rest wait for the next.
const MAX_BATCH_EVENTS: usize = 2000;
/// Rows per SQLite `INSERT` (7 parameters each, far below SQLite's limit).
const SQLITE_ROWS_PER_INSERT: usize = 1000;
/// Commands waiting for the writer; full means the database is far behind.
const QUEUE: usize = 10_000;

/// One event as stored: the columns of `events` that the appender writes
/// (`position` and `recorded_at` are the database's).
#[derive(Debug, Clone)]
pub struct Row {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// JSON text.
    pub payload: String,
    /// JSON text.
    pub metadata: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to the same aggregate at this sequence first.
    #[error("a concurrent append to the same aggregate won")]
    Conflict,
    #[error("event store write failed: {0}")]
    Db(String),
    #[error("the event writer has stopped")]
    Stopped,
}

struct Job {
    rows: Vec<Row>,
    done: oneshot::Sender<Result<i64, AppendError>>,
}

/// The handle commands append through. Cheap to clone; all clones feed one
/// writer task, which ends when the last clone is dropped.
#[derive(Clone)]
pub struct Appender {
    queue: mpsc::Sender<Job>,
}

impl Appender {
    /// Starts the writer on the current Tokio runtime; `committed` is called
    /// after every committed batch (to wake the followers).
    pub fn start(backend: Backend, committed: impl Fn() + Send + 'static) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(backend, rx, committed));
        Self { queue }
    }

    /// Appends one command's events, all or none; returns the position of the
    /// last one once it is committed.
    pub async fn append(&self, rows: Vec<Row>) -> Result<i64, AppendError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let (done, result) = oneshot::channel();
        self.queue
            .send(Job { rows, done })
            .await
            .map_err(|_| AppendError::Stopped)?;
        result.await.map_err(|_| AppendError::Stopped)?
    }
}

async fn writer(backend: Backend, mut rx: mpsc::Receiver<Job>, committed: impl Fn()) {
    while let Some(first) = rx.recv().await {
        let mut events = first.rows.len();
        let mut batch = vec![first];
        while events < MAX_BATCH_EVENTS {
            match rx.try_recv() {
                Ok(job) => {
                    events += job.rows.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let outcomes = match write(&backend, &batch).await {
            Ok(last) => last.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(Outcome::Conflict) if batch.len() > 1 => {
                // Someone's command lost a race: find whose, one job at a time.
                let mut each = Vec::with_capacity(batch.len());
                for job in &batch {
                    each.push(match write(&backend, std::slice::from_ref(job)).await {
                        Ok(last) => Ok(last.first().copied().unwrap_or(0)),
                        Err(e) => Err(e.into()),
                    });
                }
                each
            }
            Err(Outcome::Conflict) => vec![Err(AppendError::Conflict)],
            Err(Outcome::Db(e)) => {
                tracing::error!(error = %e, commands = batch.len(), "appending events failed");
                batch.iter().map(|_| Err(AppendError::Db(e.to_string()))).collect()
            }
        };
        if outcomes.iter().any(Result::is_ok) {
            committed();
        }
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            // A command whose caller went away needs no answer.
            let _ = job.done.send(outcome);
        }
    }
}

enum Outcome {
    Conflict,
    Db(sqlx::Error),
}

impl From<Outcome> for AppendError {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Conflict => AppendError::Conflict,
            Outcome::Db(e) => AppendError::Db(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for Outcome {
    fn from(e: sqlx::Error) -> Self {
        let unique = matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation());
        if unique {
            Outcome::Conflict
        } else {
            Outcome::Db(e)
        }
    }
}

/// One transaction for `batch`; the last position of each job, in order.
async fn write(backend: &Backend, batch: &[Job]) -> Result<Vec<i64>, Outcome> {
    let rows: Vec<&Row> = batch.iter().flat_map(|j| &j.rows).collect();
    let positions: Vec<i64> = match backend {
        Backend::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let mut q = QueryBuilder::<Postgres>::new(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
            );
            q.push_values(&rows, |mut b, r| {
                b.push_bind(&r.aggregate_type)
                    .push_bind(&r.aggregate_id)
                    .push_bind(r.sequence)
                    .push_bind(&r.event_type)
                    .push_bind(&r.event_version)
                    .push_bind(&r.payload)
                    .push_unseparated("::json")
                    .push_bind(&r.metadata)
                    .push_unseparated("::json");
            });
            q.push(" RETURNING aggregate_type, aggregate_id, sequence, position");
            let returned: Vec<(String, String, i64, i64)> = q.build_query_as().fetch_all(&mut *tx).await?;
            tx.commit().await?;
            // RETURNING promises no order: match the positions to the rows.
            let by_row: std::collections::HashMap<(&str, &str, i64), i64> = returned
                .iter()
                .map(|(t, i, s, p)| ((t.as_str(), i.as_str(), *s), *p))
                .collect();
            rows.iter()
                .filter_map(|r| {
                    by_row
                        .get(&(r.aggregate_type.as_str(), r.aggregate_id.as_str(), r.sequence))
                        .copied()
                })
                .collect()
        }
        Backend::Sqlite(SqliteDb { write: pool, .. }) => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.aggregate_type)
                        .push_bind(&r.aggregate_id)
                        .push_bind(r.sequence)
                        .push_bind(&r.event_type)
                        .push_bind(&r.event_version)
                        .push_bind(&r.payload)
                        .push_bind(&r.metadata);
                });
                q.build().execute(&mut *tx).await?;
            }
            // Read inside the write transaction (the write lock is ours): the
            // trigger numbered these rows one by one, in order, up to `after`.
            let after: i64 = sqlx::query_scalar("SELECT last FROM event_position WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            let first = after - rows.len() as i64 + 1;
            (first..=after).collect()
        }
    };
    if positions.len() != rows.len() {
        return Err(Outcome::Db(sqlx::Error::Protocol(format!(
            "{} events written, {} positions returned",
            rows.len(),
            positions.len()
        ))));
    }
    let mut last = Vec::with_capacity(batch.len());
    let mut at = 0;
    for job in batch {
        at += job.rows.len();
        last.push(positions[at - 1]);
    }
    Ok(last)
}

/// How long a caller should wait before retrying after [`AppendError::Conflict`].
pub fn conflict_backoff(attempt: usize) -> Duration {
    let jitter = rand::random::<u64>() % (5 + 5 * attempt as u64);
    Duration::from_millis(1 + jitter)
}
