//! The access log: every read of a patient's data leaves a record of who read
//! which patient, through which endpoint, when and from where.
//!
//! # Why it looks like this
//! - It lives in the event store database (`access_reads` and
//!   `access_read_patients`, append-only by trigger): it is audit evidence,
//!   not a read model, and cannot be rebuilt.
//! - One row per request, not per patient (migration 0024): a request's facts
//!   and the patients it read, in the order read, plus a narrow key per
//!   patient (`patient_id, at, read_id`) for auditors' questions about one
//!   patient. A recorder's day names about ten patients; as ten wide rows in
//!   three indexes each, their writes were a quarter of the server's CPU.
//!   Auditors still see one record per patient read ([`AccessRecord`]).
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

/// The request facts each read keeps, after `at` and before its patients,
/// in [`push_facts`] order.
const FACTS: &str = "actor_id, actor_role, endpoint, path, ip, user_agent, request_id";

/// The most patients one read row names. A request that read more is
/// recorded as several reads of the same facts. It also makes a record's id:
/// the read's id times this, plus the patient's place in the read
/// ([`record_id`]).
pub const PATIENTS_PER_READ: usize = 1000;

/// One request's read of the data of one or more patients, as handed to the
/// writer: a row of `access_reads`, and one key in `access_read_patients`
/// per patient. Auditors see one record per patient ([`AccessRecord`]).
#[derive(Debug, Clone)]
pub struct AccessRead {
    pub at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_role: String,
    /// In the order read (see [`AccessLog::append`] for repeats and long lists).
    pub patients: Vec<String>,
    pub endpoint: String,
    pub path: String,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// One record of one patient's data read, as auditors see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessRecord {
    /// Unique and in the log's order: the read's number times 1000 plus the
    /// patient's place in it (a request that read three patients has
    /// records `n000`, `n001` and `n002`).
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

/// A request's reads and the way to tell it they are durable.
struct Pending {
    reads: Vec<AccessRead>,
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
        let read = AccessRead {
            at: Utc::now(),
            actor_id: principal.user_id.to_string(),
            actor_role: principal.role.as_str().to_string(),
            patients: patients.into_iter().map(|patient| patient.to_string()).collect(),
            endpoint: origin.endpoint.clone(),
            path: origin.path.clone(),
            ip: origin.ip.clone(),
            user_agent: origin.user_agent.clone(),
            request_id: origin.request_id.clone(),
        };
        self.append(vec![read]).await.map_err(AppError::internal)
    }

    /// Queues `reads` for the next write and waits until it committed. A
    /// patient named twice in one read is recorded once; a read of more than
    /// [`PATIENTS_PER_READ`] patients is recorded as several; a read of none
    /// is not recorded.
    pub async fn append(&self, reads: Vec<AccessRead>) -> Result<(), AccessLogError> {
        let reads: Vec<AccessRead> = reads.into_iter().flat_map(split).collect();
        if reads.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.queue
            .send(Pending { reads, ack })
            .await
            .map_err(|_| AccessLogError::Stopped)?;
        done.await.map_err(|_| AccessLogError::Stopped)?
    }

    /// (writes, records) committed so far by this handle's writer; a record
    /// is one patient of one read.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.writes.load(Ordering::Relaxed),
            self.stats.records.load(Ordering::Relaxed),
        )
    }

    /// The records matching `f`, oldest first (by time, then read, then the
    /// patient's place in the read).
    ///
    /// With a patient, the records come from that patient's keys in
    /// `access_read_patients` (in `at` order), each joined to its read by
    /// primary key. Without one, they come from `access_reads` (by actor or by
    /// time), each read unfolded into its patients.
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
        let limit = capped_count_limit(AUDIT_TOTAL_CAP, page);
        let (rows, counted): (Vec<Row>, Option<i64>) = match &self.backend {
            Backend::Postgres(pool) => {
                let mut list = list_statement::<Postgres, _>(f, true, page, |t| t);
                let rows: Vec<Row> = list.build_query_as().fetch_all(pool).await?;
                let counted = match whole_total(page, rows.len()) {
                    Some(_) => None,
                    None => {
                        let mut count = capped_count::<Postgres>(source(f, true, true));
                        push_filters(&mut count, f, |t| t);
                        Some(end_count(count, limit).build_query_scalar().fetch_one(pool).await?)
                    }
                };
                (rows, counted)
            }
            Backend::Sqlite(SqliteDb { read: pool, .. }) => {
                let mut list = list_statement::<Sqlite, _>(f, false, page, stamp);
                let rows: Vec<Row> = list.build_query_as().fetch_all(pool).await?;
                let counted = match whole_total(page, rows.len()) {
                    Some(_) => None,
                    None => {
                        let mut count = capped_count::<Sqlite>(source(f, false, true));
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

    /// The statement [`Self::query`] runs for a page of `f`'s records, for the
    /// plan tests: placeholders in order for `f`'s values (patient, actor,
    /// from, to, as set), then the limit and the offset.
    pub fn list_sql(&self, f: &AccessFilter) -> String {
        let page = PageParams::default();
        match &self.backend {
            Backend::Postgres(_) => list_statement::<Postgres, _>(f, true, page, |t| t).sql().to_string(),
            Backend::Sqlite(_) => list_statement::<Sqlite, _>(f, false, page, stamp).sql().to_string(),
        }
    }
}

/// One page of the records of `f`: see [`AccessLog::query`].
fn list_statement<'a, DB, T>(
    f: &AccessFilter,
    postgres: bool,
    page: PageParams,
    at: fn(DateTime<Utc>) -> T,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    T: 'a + Encode<'a, DB> + Type<DB>,
{
    let rendered = match postgres {
        true => pg_instant(at_of(f)),
        false => at_of(f).to_string(),
    };
    let mut q = QueryBuilder::new(select(f, postgres, &rendered));
    push_filters(&mut q, f, at);
    push_order(&mut q, f, postgres, page);
    q
}

/// `read` as the writer takes it: its patients distinct, in the order first
/// named, in reads of at most [`PATIENTS_PER_READ`] (none for none), so that
/// one caller's list cannot fail a batch shared with others on the keys'
/// primary key.
fn split(mut read: AccessRead) -> Vec<AccessRead> {
    let mut seen = HashSet::with_capacity(read.patients.len());
    read.patients.retain(|patient| seen.insert(patient.clone()));
    if read.patients.len() <= PATIENTS_PER_READ {
        // Every request today: the read as it came, nothing copied.
        return match read.patients.is_empty() {
            true => Vec::new(),
            false => vec![read],
        };
    }
    read.patients
        .chunks(PATIENTS_PER_READ)
        .map(|chunk| AccessRead {
            patients: chunk.to_vec(),
            ..read.clone()
        })
        .collect()
}

/// A record's id: see [`AccessRecord::id`].
fn record_id(read: &str, place: &str) -> String {
    format!("{read} * {PATIENTS_PER_READ} + {place}")
}

/// The `at` a query filters and orders by: the patient's keys' when it asks
/// for a patient, else the reads'.
fn at_of(f: &AccessFilter) -> &'static str {
    match f.patient_id {
        Some(_) => "k.at",
        None => "r.at",
    }
}

/// The rows a query reads, before its `WHERE`: a patient's keys joined to
/// their reads, or the reads unfolded into their patients (`k.value`, at
/// place `k.key`: a JSON array on SQLite, an array on PostgreSQL). A count
/// without the actor needs only the keys.
fn source(f: &AccessFilter, postgres: bool, count: bool) -> &'static str {
    match (&f.patient_id, &f.actor_id, postgres) {
        (Some(_), None, _) if count => "access_read_patients k",
        (Some(_), _, _) => "access_read_patients k JOIN access_reads r ON r.id = k.read_id",
        (None, _, true) => "access_reads r CROSS JOIN LATERAL unnest(r.patients) WITH ORDINALITY AS k(value, key)",
        (None, _, false) => "access_reads r CROSS JOIN json_each(r.patients) k",
    }
}

/// `SELECT` of the records' columns, in [`AccessLog::query`]'s row order,
/// `at` rendered by `at`.
fn select(f: &AccessFilter, postgres: bool, at: &str) -> String {
    let (id, patient) = match (&f.patient_id, postgres) {
        (Some(_), _) => (record_id("k.read_id", "k.place"), "k.patient_id"),
        // `WITH ORDINALITY` counts from 1, `json_each` from 0.
        (None, true) => (record_id("r.id", "(k.key - 1)"), "k.value"),
        (None, false) => (record_id("r.id", "k.key"), "k.value"),
    };
    format!(
        "SELECT {id}, {at}, r.actor_id, r.actor_role, {patient}, r.endpoint, r.path, r.ip, r.user_agent, r.request_id \
         FROM {}",
        source(f, postgres, false)
    )
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

/// `column` (a timestamptz) rendered by PostgreSQL in the same format as
/// [`INSTANT`].
pub(crate) fn pg_instant(column: &str) -> String {
    format!(r#"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#)
}

/// `WHERE` for the filters that are set; `at` converts instants to the
/// backend's column type.
fn push_filters<'a, DB, T>(q: &mut QueryBuilder<'a, DB>, f: &AccessFilter, at: fn(DateTime<Utc>) -> T)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    T: 'a + Encode<'a, DB> + Type<DB>,
{
    let equal = [
        ("k.patient_id", f.patient_id.clone()),
        ("r.actor_id", f.actor_id.clone()),
    ];
    push_where(q, &equal, (at_of(f), f.from, f.to), at);
}

/// `WHERE` over an append-only audit table (this one, `login_attempts`): the
/// equality filters that are set, then the time column within `from..=to`.
pub(crate) fn push_where<'a, DB, T>(
    q: &mut QueryBuilder<'a, DB>,
    equal: &[(&'static str, Option<String>)],
    (column, from, to): (&'static str, Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    at: fn(DateTime<Utc>) -> T,
) where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    T: 'a + Encode<'a, DB> + Type<DB>,
{
    let mut sep = " WHERE ";
    for (name, value) in equal {
        if let Some(v) = value {
            q.push(sep).push(*name).push(" = ").push_bind(v.clone());
            sep = " AND ";
        }
    }
    if let Some(from) = from {
        q.push(sep).push(column).push(" >= ").push_bind(at(from));
        sep = " AND ";
    }
    if let Some(to) = to {
        q.push(sep).push(column).push(" <= ").push_bind(at(to));
    }
}

/// Oldest first, one page.
pub(crate) fn push_page<'a, DB>(q: &mut QueryBuilder<'a, DB>, page: PageParams)
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
{
    push_limit(q.push(" ORDER BY at, id"), page);
}

/// ` LIMIT … OFFSET …` of one page.
fn push_limit<'a, DB>(q: &mut QueryBuilder<'a, DB>, page: PageParams)
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
{
    q.push(" LIMIT ")
        .push_bind(page.limit())
        .push(" OFFSET ")
        .push_bind(page.offset());
}

/// The records' order, in the order of the index the query walks: a
/// patient's keys (`patient_id, at, read_id`), or the reads (`at` or
/// `actor_id, at`, then their id), then the places within a read.
///
/// SQLite cannot tell that `json_each` gives an array's elements in order,
/// so a place named in `ORDER BY` made it sort every record the index gave
/// (all of an actor's, or the whole log); it is left out there, and the nested
/// loop (each read, then its elements in order) gives the places' order.
/// PostgreSQL sorts only within each read (an incremental sort).
fn push_order<'a, DB>(q: &mut QueryBuilder<'a, DB>, f: &AccessFilter, postgres: bool, page: PageParams)
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
{
    let order = match (&f.patient_id, postgres) {
        (Some(_), _) => " ORDER BY k.at, k.read_id",
        (None, true) => " ORDER BY r.at, r.id, k.key",
        (None, false) => " ORDER BY r.at, r.id",
    };
    push_limit(q.push(order), page);
}

/// Binds the facts after `at` and before the patients, in [`FACTS`] order.
fn push_facts<'a, DB>(row: &mut Separated<'_, 'a, DB, &'static str>, r: &'a AccessRead)
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    row.push_bind(r.actor_id.as_str())
        .push_bind(r.actor_role.as_str())
        .push_bind(r.endpoint.as_str())
        .push_bind(r.path.as_str())
        .push_bind(r.ip.as_str())
        .push_bind(r.user_agent.as_str())
        .push_bind(r.request_id.as_str());
}

/// The writer: waits for a request, takes whatever else is queued, writes it
/// all in one transaction, acknowledges everyone with the outcome.
async fn writer(backend: Backend, mut rx: mpsc::Receiver<Pending>, stats: Arc<Stats>) {
    let records = |p: &Pending| p.reads.iter().map(|r| r.patients.len()).sum::<usize>();
    while let Some(first) = rx.recv().await {
        let mut taken = records(&first);
        let mut batch = vec![first];
        while taken < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => {
                    taken += records(&next);
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let reads: Vec<&AccessRead> = batch.iter().flat_map(|p| &p.reads).collect();
        let outcome = match write(&backend, &reads).await {
            Ok(()) => {
                stats.writes.fetch_add(1, Ordering::Relaxed);
                stats.records.fetch_add(taken as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, records = taken, "access log write failed; the reads are refused");
                Err(AccessLogError::Write(Arc::new(e)))
            }
        };
        drop(reads);
        for pending in batch {
            // A waiter that went away (client disconnected) needs no answer.
            let _ = pending.ack.send(outcome.clone());
        }
    }
}

/// One transaction; one `INSERT` of reads per [`ROWS_PER_INSERT`] reads. The
/// patients' keys follow from each read's list, written by a trigger in the
/// same statement (`access_reads_keys`, migration 0024): no ids to fetch, no
/// second statement.
async fn write(backend: &Backend, reads: &[&AccessRead]) -> Result<(), sqlx::Error> {
    let head = format!("INSERT INTO access_reads (at, {FACTS}, patients) ");
    match backend {
        Backend::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            for chunk in reads.chunks(ROWS_PER_INSERT) {
                let mut q = QueryBuilder::<Postgres>::new(&head);
                q.push_values(chunk, |mut row, r| {
                    row.push_bind(r.at);
                    push_facts(&mut row, r);
                    row.push_bind(&r.patients);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        Backend::Sqlite(SqliteDb { write: pool, .. }) => {
            let rows: Vec<(&AccessRead, String, String)> = reads
                .iter()
                .map(|r| {
                    let list = serde_json::to_string(&r.patients).expect("strings serialize");
                    (*r, stamp(r.at), list)
                })
                .collect();
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut q = QueryBuilder::<Sqlite>::new(&head);
                q.push_values(chunk, |mut row, (r, at, list)| {
                    row.push_bind(at.as_str());
                    push_facts(&mut row, r);
                    row.push_bind(list.as_str());
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

    /// A fresh SQLite file with only these tables (their migrations).
    async fn sqlite(dir: &tempfile::TempDir) -> sqlx::SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("events.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap();
        for migration in [
            include_str!("../migrations/events/sqlite/0005_access_log.sql"),
            include_str!("../migrations/events/sqlite/0024_access_reads.sql"),
        ] {
            sqlx::raw_sql(migration).execute(&pool).await.unwrap();
        }
        pool
    }

    fn by_patient(patient: &str) -> AccessFilter {
        AccessFilter {
            patient_id: Some(patient.into()),
            ..Default::default()
        }
    }

    fn by_actor(actor: &str) -> AccessFilter {
        AccessFilter {
            actor_id: Some(actor.into()),
            ..Default::default()
        }
    }

    fn entry(patient: &str, n: usize) -> AccessRead {
        read(&[patient], n)
    }

    fn read(patients: &[&str], n: usize) -> AccessRead {
        AccessRead {
            at: Utc::now(),
            actor_id: "actor".into(),
            actor_role: "admin".into(),
            patients: patients.iter().map(|p| p.to_string()).collect(),
            endpoint: "GET /api/v1/patients/{id}".into(),
            path: format!("/api/v1/patients/{}", patients.join(",")),
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
            .query(&by_patient("p1"), PageParams { page: 1, limit: 100 })
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
        let mut entries: Vec<AccessRead> = (0..5).map(|n| entry("p1", n)).collect();
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

    /// One row per request, one record per patient: the records of a read of
    /// three patients come out in the order read, under every filter, with
    /// ids that say which read and which place, and totals that count records
    /// (not reads) when a page is short of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_of_several_patients_is_one_row_and_a_record_each() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite(&dir).await;
        let log = AccessLog::start(Backend::Sqlite(SqliteDb::single(pool.clone())));
        let t0 = Utc::now();
        let mut family = read(&["p3", "p1", "p2"], 0);
        family.at = t0;
        let mut one = read(&["p1"], 1);
        one.at = t0 + chrono::Duration::seconds(1);
        one.actor_id = "other".into();
        log.append(vec![family, one]).await.unwrap();
        assert_eq!(log.stats(), (1, 4));
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_reads")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 2);

        let all = |f: AccessFilter, limit| {
            let log = log.clone();
            async move { log.query(&f, PageParams { page: 1, limit }).await.unwrap() }
        };
        let everything = all(AccessFilter::default(), 100).await;
        let got: Vec<(&str, &str, i64)> = everything
            .items
            .iter()
            .map(|r| (r.request_id.as_str(), r.patient_id.as_str(), r.id))
            .collect();
        let first = everything.items[0].id / 1000;
        assert_eq!(
            got,
            [
                ("r0", "p3", first * 1000),
                ("r0", "p1", first * 1000 + 1),
                ("r0", "p2", first * 1000 + 2),
                ("r1", "p1", (first + 1) * 1000),
            ]
        );
        assert_eq!(everything.items[1].path, "/api/v1/patients/p3,p1,p2");
        assert_eq!(everything.items[0].at, stamp(t0));

        // The patient's records are the same records, found by its keys.
        let p1 = all(by_patient("p1"), 100).await;
        let ids: Vec<i64> = p1.items.iter().map(|r| r.id).collect();
        assert_eq!(ids, [first * 1000 + 1, (first + 1) * 1000]);
        assert_eq!(p1.items[0].actor_id, "actor");
        assert_eq!(p1.items[1].at, stamp(t0 + chrono::Duration::seconds(1)));

        // Patient and actor together; the actor alone; time alone.
        let both = all(
            AccessFilter {
                patient_id: Some("p1".into()),
                actor_id: Some("other".into()),
                ..Default::default()
            },
            100,
        )
        .await;
        assert_eq!(
            both.items.iter().map(|r| r.id).collect::<Vec<_>>(),
            [(first + 1) * 1000]
        );
        let actors = all(by_actor("actor"), 100).await;
        assert_eq!(actors.items.len(), 3);
        let later = all(
            AccessFilter {
                from: Some(t0 + chrono::Duration::milliseconds(500)),
                ..Default::default()
            },
            100,
        )
        .await;
        assert_eq!(
            later.items.iter().map(|r| r.id).collect::<Vec<_>>(),
            [(first + 1) * 1000]
        );

        // Short pages count: records, not reads.
        let page = all(AccessFilter::default(), 2).await;
        assert_eq!((page.items.len(), page.total), (2, 4));
        let page = all(by_actor("actor"), 1).await;
        assert_eq!(page.total, 3);
        let page = all(by_patient("p1"), 1).await;
        assert_eq!(page.total, 2);
    }

    /// A read that names a patient twice (a caller's mistake) is recorded
    /// with the patient once, and does not fail the batch it shares with
    /// other requests on the keys' primary key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_patient_named_twice_in_a_read_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite(&dir).await;
        let log = AccessLog::start(Backend::Sqlite(SqliteDb::single(pool.clone())));
        log.append(vec![read(&["p1", "p2", "p1"], 0), read(&["p3"], 1), read(&[], 2)])
            .await
            .unwrap();
        assert_eq!(log.stats(), (1, 3));
        let page = log
            .query(&AccessFilter::default(), PageParams::default())
            .await
            .unwrap();
        let got: Vec<(&str, &str)> = page
            .items
            .iter()
            .map(|r| (r.request_id.as_str(), r.patient_id.as_str()))
            .collect();
        assert_eq!(got, [("r0", "p1"), ("r0", "p2"), ("r1", "p3")]);
    }

    /// A request that read more than [`PATIENTS_PER_READ`] patients is kept as
    /// several reads, so that every record's id stays its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_of_more_patients_than_a_read_holds_is_split() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite(&dir).await;
        let log = AccessLog::start(Backend::Sqlite(SqliteDb::single(pool.clone())));
        let principal = Principal {
            user_id: domain::ids::UserId::new(),
            role: domain::user::Role::Admin,
            session_id: domain::ids::SessionId::new(),
        };
        let patients: Vec<String> = (0..PATIENTS_PER_READ + 5).map(|n| format!("p{n:05}")).collect();
        log.patients(&principal, &ReadOrigin::default(), patients.iter().chain(&patients))
            .await
            .unwrap();
        let reads: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_reads")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(reads, 2);
        let (_, records) = log.stats();
        assert_eq!(records, patients.len() as u64, "each distinct patient once");
        let last = log
            .query(&AccessFilter::default(), PageParams { page: 11, limit: 100 })
            .await
            .unwrap();
        assert_eq!(last.total, patients.len() as i64);
        let tail: Vec<&str> = last.items.iter().map(|r| r.patient_id.as_str()).collect();
        assert_eq!(tail, patients[1000..].iter().map(String::as_str).collect::<Vec<_>>());
        let ids: HashSet<i64> = log
            .query(&AccessFilter::default(), PageParams { page: 10, limit: 100 })
            .await
            .unwrap()
            .items
            .iter()
            .chain(&last.items)
            .map(|r| r.id)
            .collect();
        assert_eq!(ids.len(), 105);
    }

    /// The records written before one row per request are carried over as
    /// they were, each a read of its one patient.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_of_the_old_table_are_carried_over() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("events.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::raw_sql(include_str!("../migrations/events/sqlite/0005_access_log.sql"))
            .execute(&pool)
            .await
            .unwrap();
        for (n, (at, patient, actor)) in [
            ("2026-01-01T00:00:00.000001Z", "p1", "a1"),
            ("2026-01-01T00:00:00.000001Z", "p2", "a1"),
            ("2026-01-02T00:00:00.000000Z", "p1", "a2"),
        ]
        .into_iter()
        .enumerate()
        {
            sqlx::query(&format!(
                "INSERT INTO access_log (at, {}) VALUES (?, ?, 'doctor', ?, 'GET /x', '/x', '10.0.0.1', 'ua', ?)",
                "actor_id, actor_role, patient_id, endpoint, path, ip, user_agent, request_id"
            ))
            .bind(at)
            .bind(actor)
            .bind(patient)
            .bind(format!("old{n}"))
            .execute(&pool)
            .await
            .unwrap();
        }
        let mut tx = pool.begin().await.unwrap();
        sqlx::raw_sql(include_str!("../migrations/events/sqlite/0024_access_reads.sql"))
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let log = AccessLog::start(Backend::Sqlite(SqliteDb::single(pool.clone())));
        let page = log
            .query(&AccessFilter::default(), PageParams::default())
            .await
            .unwrap();
        let got: Vec<(i64, &str, &str, &str, &str)> = page
            .items
            .iter()
            .map(|r| {
                (
                    r.id,
                    r.at.as_str(),
                    r.patient_id.as_str(),
                    r.actor_id.as_str(),
                    r.request_id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1000, "2026-01-01T00:00:00.000001Z", "p1", "a1", "old0"),
                (2000, "2026-01-01T00:00:00.000001Z", "p2", "a1", "old1"),
                (3000, "2026-01-02T00:00:00.000000Z", "p1", "a2", "old2"),
            ]
        );
        let p1 = log.query(&by_patient("p1"), PageParams::default()).await.unwrap();
        assert_eq!(p1.items.iter().map(|r| r.id).collect::<Vec<_>>(), [1000, 3000]);
        assert_eq!(p1.items[1].ip, "10.0.0.1");
        // New reads follow the old ones.
        log.append(vec![entry("p9", 9)]).await.unwrap();
        let page = log
            .query(&AccessFilter::default(), PageParams::default())
            .await
            .unwrap();
        assert_eq!(page.items.last().unwrap().id, 4000);
        let old: Option<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'access_log'")
            .fetch_optional(&pool)
            .await
            .unwrap();
        assert_eq!(old, None);
    }
}
