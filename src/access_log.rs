//! The access log: every read of a patient's data leaves a record of who read
//! which patient, through which endpoint, when and from where.
//!
//! # Why it looks like this
//! - It lives in the event store database (`access_log`, append-only by
//!   trigger): it is audit evidence, not a read model, and cannot be rebuilt.
//! - No record, no response. A handler awaits [`AccessLog::patients`] before it
//!   answers, and that returns only once the record is committed. A crash can
//!   therefore lose a read's record only if the read was never answered. When
//!   the record cannot be written the read fails (500): a read that cannot be
//!   audited is not served.
//! - Group commit keeps that cheap. One writer task takes every record queued
//!   while its previous write was in flight (up to [`MAX_BATCH`]), writes them
//!   in one multi-row `INSERT`, and then acknowledges each waiting request.
//!   Concurrent reads share one commit (one fsync) instead of queueing for
//!   one each.

use std::collections::HashSet;
use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use projections::page::{capped_count_limit, whole_total, AUDIT_TOTAL_CAP};
use projections::{Page, PageParams};
use serde::Serialize;
use sqlx::query_builder::Separated;
use sqlx::{Database, Encode, Postgres, QueryBuilder, Sqlite, Type};
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::auth::Principal;
use crate::store::{Backend, SqliteDb};

/// The most records one write takes; the rest wait for the next write.
pub const MAX_BATCH: usize = 500;

/// Rows per `INSERT` statement: 9 parameters each stays far below the
/// parameter limits (SQLite 32766, PostgreSQL 65535). Only a single request
/// naming more patients than this (a huge family) needs a second statement,
/// in the same transaction.
const ROWS_PER_INSERT: usize = 500;

/// Requests waiting for the writer. Full means the database is far behind;
/// further reads then wait for room rather than pile up without bound.
const QUEUE: usize = 10_000;

/// The longest user agent kept (the header is the client's to fill).
pub const MAX_USER_AGENT: usize = 512;

/// `at` as text (SQLite storage and every response): RFC 3339, UTC,
/// microseconds, fixed width, so text order is time order.
pub(crate) const INSTANT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// `at` rendered by PostgreSQL in the same format as [`INSTANT`].
pub(crate) const PG_AT: &str = r#"to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#;

const COLUMNS: &str = "actor_id, actor_role, patient_id, endpoint, path, ip, user_agent, request_id";

/// One read of one patient's data, as handed to the writer.
#[derive(Debug, Clone)]
pub struct AccessEntry {
    pub at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_role: String,
    pub patient_id: String,
    pub endpoint: String,
    pub path: String,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// One stored record, as auditors see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessRecord {
    pub id: i64,
    /// RFC 3339, UTC, microseconds.
    pub at: String,
    /// Same as `at`.
    pub time: String,
    /// Who read (user id); same as `actor_id`.
    pub actor: String,
    pub actor_id: String,
    pub actor_role: String,
    /// Whose data were read (patient id); same as `patient_id`.
    pub patient: String,
    pub patient_id: String,
    /// Method and route pattern, e.g. `GET /api/v1/patients/{id}`.
    pub endpoint: String,
    pub path: String,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// What `GET /audit/access` asks for; absent fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct AccessFilter {
    pub patient_id: Option<String>,
    pub actor_id: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Inclusive.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AccessLogError {
    #[error("cannot write the access log")]
    Write(#[source] Arc<sqlx::Error>),
    #[error("the access log writer has stopped")]
    Stopped,
}

/// A request's records and the way to tell it they are durable.
struct Pending {
    entries: Vec<AccessEntry>,
    ack: oneshot::Sender<Result<(), AccessLogError>>,
}

/// The handle handlers use. Cheap to clone; all clones feed one writer task,
/// which ends when the last clone is dropped.
#[derive(Clone)]
pub struct AccessLog {
    backend: Backend,
    queue: mpsc::Sender<Pending>,
    stats: Arc<Stats>,
}

/// Counters for tests and diagnostics: how well commits are shared.
#[derive(Debug, Default)]
struct Stats {
    writes: AtomicU64,
    records: AtomicU64,
}

/// Where a read of patient data came from: the request facts each access
/// record keeps (the same the event metadata records, see `RequestMeta`).
/// The HTTP layer extracts it from the request (`api::extract`).
#[derive(Debug, Clone, Default)]
pub struct ReadOrigin {
    /// `METHOD /route/{pattern}`.
    pub endpoint: String,
    /// The path as requested.
    pub path: String,
    pub ip: String,
    /// At most [`MAX_USER_AGENT`] characters.
    pub user_agent: String,
    pub request_id: String,
}

impl AccessLog {
    /// Starts the writer task on the current Tokio runtime.
    pub fn start(backend: Backend) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(Stats::default());
        tokio::spawn(writer(backend.clone(), rx, stats.clone()));
        Self { backend, queue, stats }
    }

    /// Records that `principal` read the data of `patients` through the
    /// request `origin` describes (one record per distinct patient), and
    /// returns once that is durable. Call it after the caller was found allowed
    /// and the data found, right before answering. No patients, nothing recorded.
    pub async fn patients<I>(&self, principal: &Principal, origin: &ReadOrigin, patients: I) -> Result<(), AppError>
    where
        I: IntoIterator,
        I::Item: Display,
    {
        let at = Utc::now();
        let mut seen = HashSet::new();
        let entries: Vec<AccessEntry> = patients
            .into_iter()
            .map(|patient| patient.to_string())
            .filter(|patient| seen.insert(patient.clone()))
            .map(|patient_id| AccessEntry {
                at,
                actor_id: principal.user_id.to_string(),
                actor_role: principal.role.as_str().to_string(),
                patient_id,
                endpoint: origin.endpoint.clone(),
                path: origin.path.clone(),
                ip: origin.ip.clone(),
                user_agent: origin.user_agent.clone(),
                request_id: origin.request_id.clone(),
            })
            .collect();
        self.append(entries).await.map_err(AppError::internal)
    }

    /// Queues `entries` for the next write and waits until it committed.
    pub async fn append(&self, entries: Vec<AccessEntry>) -> Result<(), AccessLogError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.queue
            .send(Pending { entries, ack })
            .await
            .map_err(|_| AccessLogError::Stopped)?;
        done.await.map_err(|_| AccessLogError::Stopped)?
    }

    /// (writes, records) committed so far by this handle's writer.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.writes.load(Ordering::Relaxed),
            self.stats.records.load(Ordering::Relaxed),
        )
    }

    /// The records matching `f`, oldest first.
    pub async fn query(&self, f: &AccessFilter, page: PageParams) -> Result<Page<AccessRecord>, sqlx::Error> {
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
        );
        let select = |at: &str| format!("SELECT id, {at}, {COLUMNS} FROM access_log");
        let limit = capped_count_limit(AUDIT_TOTAL_CAP, page);
        let (rows, counted): (Vec<Row>, Option<i64>) = match &self.backend {
            Backend::Postgres(pool) => {
                let mut list = QueryBuilder::<Postgres>::new(select(PG_AT));
                push_filters(&mut list, f, |t| t);
                push_page(&mut list, page);
                let rows: Vec<Row> = list.build_query_as().fetch_all(pool).await?;
                let counted = match whole_total(page, rows.len()) {
                    Some(_) => None,
                    None => {
                        let mut count = capped_count::<Postgres>("access_log");
                        push_filters(&mut count, f, |t| t);
                        Some(end_count(count, limit).build_query_scalar().fetch_one(pool).await?)
                    }
                };
                (rows, counted)
            }
            Backend::Sqlite(SqliteDb { read: pool, .. }) => {
                let mut list = QueryBuilder::<Sqlite>::new(select("at"));
                push_filters(&mut list, f, stamp);
                push_page(&mut list, page);
                let rows: Vec<Row> = list.build_query_as().fetch_all(pool).await?;
                let counted = match whole_total(page, rows.len()) {
                    Some(_) => None,
                    None => {
                        let mut count = capped_count::<Sqlite>("access_log");
                        push_filters(&mut count, f, stamp);
                        Some(end_count(count, limit).build_query_scalar().fetch_one(pool).await?)
                    }
                };
                (rows, counted)
            }
        };
        let items = rows
            .into_iter()
            .map(
                |(id, at, actor_id, actor_role, patient_id, endpoint, path, ip, user_agent, request_id)| AccessRecord {
                    id,
                    time: at.clone(),
                    at,
                    actor: actor_id.clone(),
                    actor_id,
                    actor_role,
                    patient: patient_id.clone(),
                    patient_id,
                    endpoint,
                    path,
                    ip,
                    user_agent,
                    request_id,
                },
            )
            .collect();
        Ok(Page::from_count(items, counted, limit, page))
    }
}

/// The start of a `COUNT(*)` of at most a number of rows of `table`: push
/// the filters, then close it with [`end_count`].
pub(crate) fn capped_count<'a, DB: Database>(table: &str) -> QueryBuilder<'a, DB> {
    QueryBuilder::new(format!("SELECT COUNT(*) FROM (SELECT 1 FROM {table}"))
}

/// Closes a [`capped_count`] at `limit` rows (see
/// [`projections::page::capped_count_limit`]).
pub(crate) fn end_count<DB: Database>(mut count: QueryBuilder<'_, DB>, limit: i64) -> QueryBuilder<'_, DB> {
    count.push(format!(" LIMIT {limit}) capped"));
    count
}

/// `at` as SQLite stores it (see [`INSTANT`]).
pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.format(INSTANT).to_string()
}

/// `WHERE` for the filters that are set; `at` converts instants to the
/// backend's column type.
fn push_filters<'a, DB, T>(q: &mut QueryBuilder<'a, DB>, f: &AccessFilter, at: fn(DateTime<Utc>) -> T)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    T: 'a + Encode<'a, DB> + Type<DB>,
{
    let equal = [("patient_id", f.patient_id.clone()), ("actor_id", f.actor_id.clone())];
    push_where(q, &equal, f.from, f.to, at);
}

/// `WHERE` over an append-only audit table (this one, `login_attempts`): the
/// equality filters that are set, then `at` within `from..=to`.
pub(crate) fn push_where<'a, DB, T>(
    q: &mut QueryBuilder<'a, DB>,
    equal: &[(&'static str, Option<String>)],
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    at: fn(DateTime<Utc>) -> T,
) where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    T: 'a + Encode<'a, DB> + Type<DB>,
{
    let mut sep = " WHERE ";
    for (column, value) in equal {
        if let Some(v) = value {
            q.push(sep).push(*column).push(" = ").push_bind(v.clone());
            sep = " AND ";
        }
    }
    if let Some(from) = from {
        q.push(sep).push("at >= ").push_bind(at(from));
        sep = " AND ";
    }
    if let Some(to) = to {
        q.push(sep).push("at <= ").push_bind(at(to));
    }
}

/// Oldest first, one page.
pub(crate) fn push_page<'a, DB>(q: &mut QueryBuilder<'a, DB>, page: PageParams)
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
{
    q.push(" ORDER BY at, id LIMIT ")
        .push_bind(page.limit())
        .push(" OFFSET ")
        .push_bind(page.offset());
}

/// Binds the columns after `at`, in [`COLUMNS`] order.
fn push_facts<'a, DB>(row: &mut Separated<'_, 'a, DB, &'static str>, e: &'a AccessEntry)
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    row.push_bind(e.actor_id.as_str())
        .push_bind(e.actor_role.as_str())
        .push_bind(e.patient_id.as_str())
        .push_bind(e.endpoint.as_str())
        .push_bind(e.path.as_str())
        .push_bind(e.ip.as_str())
        .push_bind(e.user_agent.as_str())
        .push_bind(e.request_id.as_str());
}

/// The writer: waits for a request, takes whatever else is queued, writes it
/// all in one transaction, acknowledges everyone with the outcome.
async fn writer(backend: Backend, mut rx: mpsc::Receiver<Pending>, stats: Arc<Stats>) {
    while let Some(first) = rx.recv().await {
        let mut records = first.entries.len();
        let mut batch = vec![first];
        while records < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => {
                    records += next.entries.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let entries: Vec<&AccessEntry> = batch.iter().flat_map(|p| &p.entries).collect();
        let outcome = match write(&backend, &entries).await {
            Ok(()) => {
                stats.writes.fetch_add(1, Ordering::Relaxed);
                stats.records.fetch_add(entries.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, records = entries.len(), "access log write failed; the reads are refused");
                Err(AccessLogError::Write(Arc::new(e)))
            }
        };
        drop(entries);
        for pending in batch {
            // A waiter that went away (client disconnected) needs no answer.
            let _ = pending.ack.send(outcome.clone());
        }
    }
}

/// One transaction; one `INSERT` unless more than [`ROWS_PER_INSERT`] records.
async fn write(backend: &Backend, entries: &[&AccessEntry]) -> Result<(), sqlx::Error> {
    let head = format!("INSERT INTO access_log (at, {COLUMNS}) ");
    match backend {
        Backend::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            for chunk in entries.chunks(ROWS_PER_INSERT) {
                let mut q = QueryBuilder::<Postgres>::new(&head);
                q.push_values(chunk, |mut row, e| {
                    row.push_bind(e.at);
                    push_facts(&mut row, e);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        Backend::Sqlite(SqliteDb { write: pool, .. }) => {
            let mut tx = pool.begin().await?;
            for chunk in entries.chunks(ROWS_PER_INSERT) {
                let mut q = QueryBuilder::<Sqlite>::new(&head);
                q.push_values(chunk, |mut row, e| {
                    row.push_bind(stamp(e.at));
                    push_facts(&mut row, e);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    /// A fresh SQLite file with only this table (the migration itself).
    async fn sqlite(dir: &tempfile::TempDir) -> sqlx::SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("events.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::raw_sql(include_str!("../migrations/events/sqlite/0005_access_log.sql"))
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    fn entry(patient: &str, n: usize) -> AccessEntry {
        AccessEntry {
            at: Utc::now(),
            actor_id: "actor".into(),
            actor_role: "admin".into(),
            patient_id: patient.into(),
            endpoint: "GET /api/v1/patients/{id}".into(),
            path: format!("/api/v1/patients/{patient}"),
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            request_id: format!("r{n}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_writes_and_all_land_once() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite(&dir).await;
        let log = AccessLog::start(Backend::Sqlite(SqliteDb::single(pool.clone())));
        let appends = (0..200).map(|n| {
            let log = log.clone();
            async move { log.append(vec![entry("p1", n)]).await }
        });
        for r in futures::future::join_all(appends).await {
            r.unwrap();
        }
        let (writes, records) = log.stats();
        assert_eq!(records, 200);
        assert!(writes < 50, "200 queued appends took {writes} writes");
        let page = log
            .query(
                &AccessFilter {
                    patient_id: Some("p1".into()),
                    ..Default::default()
                },
                PageParams { page: 1, limit: 100 },
            )
            .await
            .unwrap();
        assert_eq!(page.total, 200);
        assert!(page.items.windows(2).all(|w| (&w[0].at, w[0].id) < (&w[1].at, w[1].id)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_that_cannot_be_written_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite(&dir).await;
        let log = AccessLog::start(Backend::Sqlite(SqliteDb::single(pool.clone())));
        log.append(vec![entry("p1", 0)]).await.unwrap();
        pool.close().await;
        let err = log.append(vec![entry("p1", 1)]).await.unwrap_err();
        assert!(matches!(err, AccessLogError::Write(_)), "{err:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn time_bounds_are_inclusive() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite(&dir).await;
        let log = AccessLog::start(Backend::Sqlite(SqliteDb::single(pool.clone())));
        let t0 = Utc::now();
        let mut entries: Vec<AccessEntry> = (0..5).map(|n| entry("p1", n)).collect();
        for (n, e) in entries.iter_mut().enumerate() {
            e.at = t0 + chrono::Duration::seconds(n as i64);
        }
        log.append(entries).await.unwrap();
        let f = AccessFilter {
            from: Some(t0 + chrono::Duration::seconds(1)),
            to: Some(t0 + chrono::Duration::seconds(3)),
            ..Default::default()
        };
        let page = log.query(&f, PageParams::default()).await.unwrap();
        let ids: Vec<&str> = page.items.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["r1", "r2", "r3"]);
        assert_eq!(page.items[0].at, stamp(t0 + chrono::Duration::seconds(1)));
    }
}
