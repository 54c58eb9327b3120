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
//! - **Client commands at most once.** A job may carry the [`CommandMark`] of
//!   the offline command it applies (`POST /sync/push`); the mark is inserted
//!   into `sync_commands` in the same transaction as the job's events, so a
//!   command id already applied makes that job fail with
//!   [`AppendError::Duplicate`] and nothing of it is written.
//! - **A data key is stored with the first events sealed with it.** A job
//!   carries the keys its command made for subjects that had none
//!   (`Privacy::seal`); they are inserted in the job's transaction, and one
//!   whose subject has a row by then (a concurrent first writer, an erasure)
//!   makes the job a conflict, retried by its command with the stored key.
//! - **The followers read fresh commits from memory.** Each committed batch's
//!   rows, with the positions and `recorded_at` the database gave them, go to
//!   the store's tail (`crate::tail`) before the followers are woken.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{QueryBuilder, Sqlite};
use tokio::sync::{mpsc, oneshot};

use crate::backend::{Backend, SqliteDb};
use crate::store::RawEvent;
use crate::tail::Tail;

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

/// An offline client command, recorded with the events that apply it (see
/// the module's guarantees): who sent it, its id, and the answer its first
/// application gave, known before the commit because the ids it creates are
/// derived from the command id.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandMark {
    pub recorder_id: String,
    pub command_id: String,
    pub device_id: String,
    pub command_type: String,
    /// JSON text: `{code, data}`.
    pub result: String,
    /// Instant the device captured the command (RFC 3339), added to the
    /// metadata of the events it appends (which keep the server's `time`).
    pub captured_at: String,
}

/// What became of a client command's mark while its use case ran.
#[derive(Debug, Clone, PartialEq)]
pub enum MarkOutcome {
    /// Recorded with the events of the use case's first append.
    Written,
    /// Its command was applied already: that append wrote nothing.
    Duplicate,
    /// No append took it (the use case wrote no event, or failed before).
    NotWritten(CommandMark),
}

enum MarkState {
    Waiting(CommandMark),
    /// Taken by an append not settled yet.
    InFlight,
    Written,
    Duplicate,
}

tokio::task_local! {
    /// The mark of the client command being applied by this task: the first
    /// append of its use case takes it (a use case may run several commands;
    /// the first one that writes is the one the client command stands for).
    static MARK: RefCell<MarkState>;
}

/// Runs `f` with `mark` waiting for the first append of this task; returns
/// what `f` returns and what became of the mark.
pub async fn with_mark<F: std::future::Future>(mark: CommandMark, f: F) -> (F::Output, MarkOutcome) {
    let copy = mark.clone();
    MARK.scope(RefCell::new(MarkState::Waiting(mark)), async move {
        let out = f.await;
        let outcome = MARK.with(|m| match std::mem::replace(&mut *m.borrow_mut(), MarkState::InFlight) {
            MarkState::Written => MarkOutcome::Written,
            MarkState::Duplicate => MarkOutcome::Duplicate,
            MarkState::Waiting(mark) => MarkOutcome::NotWritten(mark),
            MarkState::InFlight => MarkOutcome::NotWritten(copy),
        });
        (out, outcome)
    })
    .await
}

/// The mark waiting in this task, if any (see [`with_mark`]); the caller
/// appends it and then [`settle_mark`]s it.
pub fn take_mark() -> Option<CommandMark> {
    MARK.try_with(|m| {
        let mut m = m.borrow_mut();
        match std::mem::replace(&mut *m, MarkState::InFlight) {
            MarkState::Waiting(mark) => Some(mark),
            other => {
                *m = other;
                None
            }
        }
    })
    .ok()
    .flatten()
}

/// Settles a taken mark by its append's result: written, a duplicate, or (the
/// append wrote nothing: a conflict to retry, a failure) waiting again.
pub fn settle_mark(mark: CommandMark, result: &Result<i64, AppendError>) {
    let _ = MARK.try_with(|m| {
        *m.borrow_mut() = match result {
            Ok(_) => MarkState::Written,
            Err(AppendError::Duplicate) => MarkState::Duplicate,
            Err(_) => MarkState::Waiting(mark),
        }
    });
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to the same aggregate at this sequence first.
    #[error("a concurrent append to the same aggregate won")]
    Conflict,
    /// The job's client command was applied already (its mark exists).
    #[error("the client command was applied already")]
    Duplicate,
    #[error("event store write failed: {0}")]
    Db(String),
    #[error("the event writer has stopped")]
    Stopped,
}

struct Job {
    rows: Vec<Row>,
    mark: Option<CommandMark>,
    /// `(subject, wrapped key)`: data keys made for these events, stored with
    /// them (see `Privacy::seal`); one already stored is a conflict.
    keys: Vec<(String, String)>,
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
    /// Committed events go to `tail` (see `crate::tail`) before `committed`
    /// wakes the followers.
    pub fn start(backend: Backend, tail: Arc<Tail>, committed: impl Fn() + Send + 'static) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(backend, rx, tail, committed));
        Self { queue }
    }

    /// Appends one command's events, all or none; returns the position of the
    /// last one once it is committed.
    pub async fn append(&self, rows: Vec<Row>) -> Result<i64, AppendError> {
        self.append_marked(rows, None).await
    }

    /// Like [`Appender::append`], recording `mark` in the same transaction
    /// (alone when `rows` is empty: a client command that changed nothing is
    /// still applied once).
    pub async fn append_marked(&self, rows: Vec<Row>, mark: Option<CommandMark>) -> Result<i64, AppendError> {
        self.append_sealed(rows, mark, Vec::new()).await
    }

    /// Like [`Appender::append_marked`], also storing the data keys `keys`
    /// (`(subject, wrapped key)`) the events were sealed with, in the same
    /// transaction. A subject that has a row already (a concurrent command
    /// made its key first, or it was erased) makes this append a
    /// [`AppendError::Conflict`]: the command retries and seals with what is
    /// stored.
    pub async fn append_sealed(
        &self,
        rows: Vec<Row>,
        mark: Option<CommandMark>,
        keys: Vec<(String, String)>,
    ) -> Result<i64, AppendError> {
        if rows.is_empty() && mark.is_none() {
            return Ok(0);
        }
        let (done, result) = oneshot::channel();
        self.queue
            .send(Job { rows, mark, keys, done })
            .await
            .map_err(|_| AppendError::Stopped)?;
        result.await.map_err(|_| AppendError::Stopped)?
    }
}

async fn writer(backend: Backend, mut rx: mpsc::Receiver<Job>, tail: Arc<Tail>, committed: impl Fn()) {
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
            Ok(stored) => {
                let last = stored.last.clone();
                tail.push(stored.into_events(&mut batch));
                last.into_iter().map(Ok).collect::<Vec<_>>()
            }
            Err(Outcome::Conflict | Outcome::Duplicate) if batch.len() > 1 => {
                // Someone's command lost a race (or was applied already): find
                // whose, one job at a time.
                let mut each = Vec::with_capacity(batch.len());
                for job in &mut batch {
                    each.push(match write(&backend, std::slice::from_ref(job)).await {
                        Ok(stored) => {
                            let last = stored.last.first().copied().unwrap_or(0);
                            tail.push(stored.into_events(std::slice::from_mut(job)));
                            Ok(last)
                        }
                        Err(e) => Err(e.into()),
                    });
                }
                each
            }
            Err(Outcome::Conflict) => vec![Err(AppendError::Conflict)],
            Err(Outcome::Duplicate) => vec![Err(AppendError::Duplicate)],
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
    Duplicate,
    Db(sqlx::Error),
}

impl From<Outcome> for AppendError {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Conflict => AppendError::Conflict,
            Outcome::Duplicate => AppendError::Duplicate,
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

/// The SQLSTATE `carelog_append` raises for a client command applied already.
const DUPLICATE_COMMAND: &str = "CL001";

/// A unique violation while recording a client command: it was applied already.
fn duplicate(e: sqlx::Error) -> Outcome {
    match Outcome::from(e) {
        Outcome::Conflict => Outcome::Duplicate,
        other => other,
    }
}

/// The patients each aggregate's first event names: every string under a
/// `patient_id` key, at any depth of its payload (`event_subjects`, the
/// auditor's search by patient). A payload that is not JSON names none.
fn subjects<'r>(rows: &[&'r Row]) -> Vec<(&'r str, &'r str, String)> {
    fn collect(value: &serde_json::Value, into: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("patient_id", serde_json::Value::String(p)) => into.push(p.clone()),
                        _ => collect(v, into),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, into)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| r.sequence == 1) {
        let Ok(payload) = serde_json::from_str::<serde_json::Value>(&row.payload) else {
            continue;
        };
        let mut patients = Vec::new();
        collect(&payload, &mut patients);
        patients.sort_unstable();
        patients.dedup();
        out.extend(
            patients
                .into_iter()
                .map(|p| (row.aggregate_type.as_str(), row.aggregate_id.as_str(), p)),
        );
    }
    out
}

/// What one transaction stored.
struct Stored {
    /// The last position of each job, in order (0 for a job that only records
    /// a client command).
    last: Vec<i64>,
    /// Each row's position and `recorded_at`, in the jobs' and their rows' order.
    positions: Vec<(i64, String)>,
}

impl Stored {
    /// The events as stored, in position order, for the tail: the jobs' rows
    /// are moved in, not copied (a scheduled job's run is megabytes of text).
    fn into_events(self, jobs: &mut [Job]) -> Vec<RawEvent> {
        let rows = jobs.iter_mut().flat_map(|j| std::mem::take(&mut j.rows));
        let mut events: Vec<RawEvent> = rows
            .zip(self.positions)
            .map(|(r, (position, recorded_at))| RawEvent {
                position,
                aggregate_type: r.aggregate_type,
                aggregate_id: r.aggregate_id,
                sequence: r.sequence,
                event_type: r.event_type,
                event_version: r.event_version,
                payload: r.payload,
                metadata: r.metadata,
                recorded_at,
            })
            .collect();
        events.sort_unstable_by_key(|e| e.position);
        events
    }
}

/// One transaction for `batch`.
async fn write(backend: &Backend, batch: &[Job]) -> Result<Stored, Outcome> {
    let rows: Vec<&Row> = batch.iter().flat_map(|j| &j.rows).collect();
    let marks: Vec<&CommandMark> = batch.iter().filter_map(|j| j.mark.as_ref()).collect();
    let keys: Vec<&(String, String)> = batch.iter().flat_map(|j| &j.keys).collect();
    let positions: Vec<(i64, String)> = match backend {
        Backend::Postgres(pool) => {
            // One call, its own transaction (migration 0020): the marks, the
            // keys, the events numbered in this order, their subjects.
            let column = |f: fn(&Row) -> &str| rows.iter().map(|r| f(r)).collect::<Vec<&str>>();
            let subjects = subjects(&rows);
            let mut returned: Vec<(i64, String)> = sqlx::query_as(
                "SELECT out_position, out_recorded_at FROM carelog_append(
                    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            )
            .bind(column(|r| &r.aggregate_type))
            .bind(column(|r| &r.aggregate_id))
            .bind(rows.iter().map(|r| r.sequence).collect::<Vec<i64>>())
            .bind(column(|r| &r.event_type))
            .bind(column(|r| &r.event_version))
            .bind(column(|r| &r.payload))
            .bind(column(|r| &r.metadata))
            .bind(keys.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>())
            .bind(keys.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>())
            .bind(subjects.iter().map(|(t, _, _)| *t).collect::<Vec<_>>())
            .bind(subjects.iter().map(|(_, i, _)| *i).collect::<Vec<_>>())
            .bind(subjects.iter().map(|(_, _, p)| p.as_str()).collect::<Vec<_>>())
            .bind(marks.iter().map(|m| m.recorder_id.as_str()).collect::<Vec<_>>())
            .bind(marks.iter().map(|m| m.command_id.as_str()).collect::<Vec<_>>())
            .bind(marks.iter().map(|m| m.device_id.as_str()).collect::<Vec<_>>())
            .bind(marks.iter().map(|m| m.command_type.as_str()).collect::<Vec<_>>())
            .bind(marks.iter().map(|m| m.result.as_str()).collect::<Vec<_>>())
            .fetch_all(pool)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.code().as_deref() == Some(DUPLICATE_COMMAND) => Outcome::Duplicate,
                _ => Outcome::from(e),
            })?;
            if rows.is_empty() {
                return Ok(Stored {
                    last: batch.iter().map(|_| 0).collect(),
                    positions: Vec::new(),
                });
            }
            // Numbered in the order given: by position is the rows' order.
            returned.sort_unstable_by_key(|(position, _)| *position);
            returned
        }
        Backend::Sqlite(SqliteDb { write: pool, .. }) => {
            // The column's default, written by us so the tail knows it.
            let at = chrono::Utc::now().format(crate::store::SQLITE_RECORDED_AT).to_string();
            let mut tx = pool.begin().await?;
            for m in &marks {
                sqlx::query(
                    "INSERT INTO sync_commands (recorder_id, command_id, device_id, command_type, result)
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&m.recorder_id)
                .bind(&m.command_id)
                .bind(&m.device_id)
                .bind(&m.command_type)
                .bind(&m.result)
                .execute(&mut *tx)
                .await
                .map_err(duplicate)?;
            }
            for chunk in keys.chunks(SQLITE_ROWS_PER_INSERT) {
                let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO subject_keys (subject_id, wrapped_key) ");
                q.push_values(chunk, |mut b, (subject, wrapped)| {
                    b.push_bind(subject).push_bind(wrapped);
                });
                q.push(" ON CONFLICT DO NOTHING");
                if q.build().execute(&mut *tx).await?.rows_affected() < chunk.len() as u64 {
                    return Err(Outcome::Conflict);
                }
            }
            for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.aggregate_type)
                        .push_bind(&r.aggregate_id)
                        .push_bind(r.sequence)
                        .push_bind(&r.event_type)
                        .push_bind(&r.event_version)
                        .push_bind(&r.payload)
                        .push_bind(&r.metadata)
                        .push_bind(&at);
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in subjects(&rows).chunks(SQLITE_ROWS_PER_INSERT) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT OR IGNORE INTO event_subjects (aggregate_type, aggregate_id, patient_id) ",
                );
                q.push_values(chunk, |mut b, (kind, aggregate, patient)| {
                    b.push_bind(*kind).push_bind(*aggregate).push_bind(patient);
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
            (first..=after).map(|p| (p, at.clone())).collect()
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
        last.push(if job.rows.is_empty() { 0 } else { positions[at - 1].0 });
    }
    Ok(Stored { last, positions })
}

/// How long a caller should wait before retrying after [`AppendError::Conflict`].
pub fn conflict_backoff(attempt: usize) -> Duration {
    let jitter = rand::random::<u64>() % (5 + 5 * attempt as u64);
    Duration::from_millis(1 + jitter)
}

#[cfg(test)]
mod tests {
    use super::{subjects, Row};

    fn row(id: &str, sequence: i64, payload: &str) -> Row {
        Row {
            aggregate_type: "visit".into(),
            aggregate_id: id.into(),
            sequence,
            event_type: "E".into(),
            event_version: "1".into(),
            payload: payload.into(),
            metadata: "{}".into(),
        }
    }

    #[test]
    fn first_events_name_every_patient_under_a_patient_id_key_at_any_depth() {
        let rows = [
            row("v1", 1, r#"{"VisitScheduled":{"patient_id":"p1","recorder_id":"r1"}}"#),
            row("v1", 2, r#"{"VisitStarted":{"patient_id":"p9"}}"#),
            row(
                "b1",
                1,
                r#"{"Requested":{"request":{"patient_id":"p2"},"stops":[{"patient_id":"p3"},{"patient_id":"p2"}]}}"#,
            ),
            row("x1", 1, r#"{"Created":{"patient_id":null,"name":"patient_id"}}"#),
            row("y1", 1, "not json"),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        assert_eq!(
            subjects(&refs),
            [
                ("visit", "v1", "p1".to_string()),
                ("visit", "b1", "p2".to_string()),
                ("visit", "b1", "p3".to_string())
            ]
        );
    }
}
