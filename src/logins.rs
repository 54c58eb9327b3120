//! Login attempts: the record of every failed, throttled and successful login,
//! and the throttle that reads it.
//!
//! # Why it looks like this
//! - A failed login has no known actor and often no user at all (a guessed
//!   username), so it is not an event of an aggregate. It is audit evidence
//!   like the access log: an append-only table in the event-store database
//!   (`login_attempts`, triggers refuse UPDATE and DELETE), shared by every
//!   instance, shown to auditors by `GET /audit/logins`.
//! - The username is kept only as a keyed hash (HMAC-SHA256 under a key
//!   derived from the server's secret), so the table does not list who has an
//!   account or what people mistype, yet an auditor asking about one username
//!   finds all its attempts.
//! - Throttling counts the failures of one username since the later of "a
//!   window ago" and its last successful login. At the limit, every attempt is
//!   refused with 429 (and recorded as `throttled`) until the oldest counted
//!   failure leaves the window; throttled attempts do not extend it. Because
//!   the count lives in the shared database, the limit holds across instances.
//! - Attempts for one username are serialized on an instance (a striped lock),
//!   so 30 concurrent guesses are counted one after another, not all against
//!   the same old count.

use chrono::{DateTime, Duration, Utc};
use hmac::Mac;
use projections::{Page, PageParams};
use serde::Serialize;
use sqlx::{Database, Encode, Postgres, QueryBuilder, Sqlite, Type};
use utoipa::ToSchema;

use crate::access_log::{capped_count, end_count, pg_instant, push_page, push_where, stamp};
use crate::app::error::AppError;
use crate::store::{Backend, SqliteDb};
use projections::page::{capped_count_limit, whole_total, AUDIT_TOTAL_CAP};

/// Lock stripes: attempts whose usernames hash alike wait for each other.
const STRIPES: usize = 64;
const MAX_USER_AGENT: usize = 512;

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Wrong password, unknown username or a user who may not log in.
    Failed(FailReason),
    /// Refused unchecked: too many failures in the window.
    Throttled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    WrongPassword,
    UnknownUser,
    InactiveUser,
}

impl Outcome {
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Outcome::Succeeded => ("succeeded", ""),
            Outcome::Failed(FailReason::WrongPassword) => ("failed", "wrong_password"),
            Outcome::Failed(FailReason::UnknownUser) => ("failed", "unknown_user"),
            Outcome::Failed(FailReason::InactiveUser) => ("failed", "inactive_user"),
            Outcome::Throttled => ("throttled", "throttled"),
        }
    }
}

/// The request facts an attempt is recorded with.
#[derive(Debug, Clone, Default)]
pub struct AttemptFacts {
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// One recorded attempt, as auditors see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoginAttemptView {
    pub id: i64,
    /// RFC 3339, UTC, microseconds.
    pub at: String,
    /// The keyed hash of the username (the username itself is not kept).
    pub username_hash: String,
    /// succeeded | failed | throttled
    pub outcome: String,
    /// wrong_password | unknown_user | inactive_user | throttled | "" (succeeded)
    pub reason: String,
    /// The user, for a successful login; null otherwise (actor unknown).
    pub user_id: Option<String>,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// What `GET /audit/logins` asks for.
#[derive(Debug, Clone, Default)]
pub struct LoginFilter {
    pub username: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// The handle on the attempts table and the throttle.
#[derive(Clone)]
pub struct LoginAttempts {
    backend: Backend,
    key: std::sync::Arc<[u8; 32]>,
    max_failures: u32,
    window: Duration,
    stripes: std::sync::Arc<Vec<tokio::sync::Mutex<()>>>,
}

impl LoginAttempts {
    /// `key` keys the username hashes; `max_failures` within `window_secs`
    /// throttle a username.
    pub fn new(backend: Backend, key: [u8; 32], max_failures: u32, window_secs: i64) -> Self {
        Self {
            backend,
            key: std::sync::Arc::new(key),
            max_failures: max_failures.max(1),
            window: Duration::seconds(window_secs),
            stripes: std::sync::Arc::new((0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect()),
        }
    }

    /// The keyed hash of a username (case-insensitive, trimmed).
    pub fn username_hash(&self, username: &str) -> String {
        let mut mac = crate::privacy::hmac_sha256(&self.key[..]);
        mac.update(username.trim().to_lowercase().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Holds attempts for `username` on this instance one at a time.
    pub async fn serialize(&self, username: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let h = self.username_hash(username);
        let stripe = usize::from_str_radix(&h[..4], 16).unwrap_or(0) % STRIPES;
        self.stripes[stripe].lock().await
    }

    /// `Some(seconds)` to wait when `username` is throttled now, else `None`.
    pub async fn throttled(&self, username: &str) -> Result<Option<u64>, sqlx::Error> {
        let hash = self.username_hash(username);
        let now = Utc::now();
        let since = now - self.window;
        let limit = i64::from(self.max_failures);
        // The failures that count: within the window and after the last success.
        let counted = "SELECT at FROM login_attempts
             WHERE username_hash = $1 AND outcome = 'failed' AND at > $2
               AND at > COALESCE((SELECT MAX(at) FROM login_attempts
                                  WHERE username_hash = $1 AND outcome = 'succeeded'), $2)
             ORDER BY at DESC LIMIT $3";
        let oldest: Vec<DateTime<Utc>> = match &self.backend {
            Backend::Postgres(pool) => {
                sqlx::query_scalar(counted)
                    .bind(&hash)
                    .bind(since)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Backend::Sqlite(SqliteDb { read: pool, .. }) => {
                let rows: Vec<String> = sqlx::query_scalar(counted)
                    .bind(&hash)
                    .bind(stamp(since))
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .collect()
            }
        };
        if (oldest.len() as i64) < limit {
            return Ok(None);
        }
        let Some(first) = oldest.last() else { return Ok(None) };
        let wait = (*first + self.window - now).num_milliseconds().max(0);
        Ok(Some(((wait + 999) / 1000).max(1) as u64))
    }

    /// Records one attempt (committed before the login is answered).
    pub async fn record(
        &self,
        username: &str,
        outcome: Outcome,
        user_id: Option<&str>,
        facts: &AttemptFacts,
    ) -> Result<(), sqlx::Error> {
        let (outcome, reason) = outcome.columns();
        let hash = self.username_hash(username);
        let user_agent: String = facts.user_agent.chars().take(MAX_USER_AGENT).collect();
        let sql = "INSERT INTO login_attempts (at, username_hash, outcome, reason, user_id, ip, user_agent, request_id)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let now = Utc::now();
        macro_rules! insert {
            ($pool:expr, $at:expr) => {
                sqlx::query(sql)
                    .bind($at)
                    .bind(&hash)
                    .bind(outcome)
                    .bind(reason)
                    .bind(user_id)
                    .bind(&facts.ip)
                    .bind(&user_agent)
                    .bind(&facts.request_id)
                    .execute($pool)
                    .await
            };
        }
        match &self.backend {
            Backend::Postgres(pool) => insert!(pool, now).map(|_| ()),
            Backend::Sqlite(SqliteDb { write: pool, .. }) => insert!(pool, stamp(now)).map(|_| ()),
        }
    }

    /// The attempts matching `f`, oldest first.
    pub async fn query(&self, f: &LoginFilter, page: PageParams) -> Result<Page<LoginAttemptView>, sqlx::Error> {
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            String,
        );
        let hash = f.username.as_deref().map(|u| self.username_hash(u));
        let cols = "username_hash, outcome, reason, user_id, ip, user_agent, request_id";
        let limit = capped_count_limit(AUDIT_TOTAL_CAP, page);
        let (rows, counted): (Vec<Row>, Option<i64>) = match &self.backend {
            Backend::Postgres(pool) => {
                let mut list = QueryBuilder::<Postgres>::new(format!(
                    "SELECT id, {}, {cols} FROM login_attempts",
                    pg_instant("at")
                ));
                push_filters(&mut list, &hash, f, |t| t);
                push_page(&mut list, page);
                let rows: Vec<Row> = list.build_query_as().fetch_all(pool).await?;
                let counted = match whole_total(page, rows.len()) {
                    Some(_) => None,
                    None => {
                        let mut count = capped_count::<Postgres>("login_attempts");
                        push_filters(&mut count, &hash, f, |t| t);
                        Some(end_count(count, limit).build_query_scalar().fetch_one(pool).await?)
                    }
                };
                (rows, counted)
            }
            Backend::Sqlite(SqliteDb { read: pool, .. }) => {
                let mut list = QueryBuilder::<Sqlite>::new(format!("SELECT id, at, {cols} FROM login_attempts"));
                push_filters(&mut list, &hash, f, stamp);
                push_page(&mut list, page);
                let rows: Vec<Row> = list.build_query_as().fetch_all(pool).await?;
                let counted = match whole_total(page, rows.len()) {
                    Some(_) => None,
                    None => {
                        let mut count = capped_count::<Sqlite>("login_attempts");
                        push_filters(&mut count, &hash, f, stamp);
                        Some(end_count(count, limit).build_query_scalar().fetch_one(pool).await?)
                    }
                };
                (rows, counted)
            }
        };
        let items = rows
            .into_iter()
            .map(
                |(id, at, username_hash, outcome, reason, user_id, ip, user_agent, request_id)| LoginAttemptView {
                    id,
                    at,
                    username_hash,
                    outcome,
                    reason,
                    user_id,
                    ip,
                    user_agent,
                    request_id,
                },
            )
            .collect();
        Ok(Page::from_count(items, counted, limit, page))
    }
}

fn push_filters<'a, DB, T>(
    q: &mut QueryBuilder<'a, DB>,
    hash: &Option<String>,
    f: &LoginFilter,
    at: fn(DateTime<Utc>) -> T,
) where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
    T: 'a + Encode<'a, DB> + Type<DB>,
{
    push_where(q, &[("username_hash", hash.clone())], ("at", f.from, f.to), at);
}

/// A throttled login: 429 with the seconds to wait.
pub fn throttled_error(retry_after: u64) -> AppError {
    AppError::RateLimited { retry_after }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    async fn attempts(dir: &tempfile::TempDir, max: u32, window: i64) -> LoginAttempts {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("events.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new().connect_with(options).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE idempotency_keys (scope text, key text, fingerprint text, response_status integer,
             response_body text, created_at text);",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::raw_sql(include_str!("../migrations/events/sqlite/0007_front_door.sql"))
            .execute(&pool)
            .await
            .unwrap();
        LoginAttempts::new(Backend::Sqlite(SqliteDb::single(pool)), [7; 32], max, window)
    }

    #[tokio::test]
    async fn a_username_is_throttled_after_the_failures_allowed_and_a_success_resets_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = attempts(&dir, 3, 900).await;
        let facts = AttemptFacts::default();
        for _ in 0..2 {
            a.record("Alice", Outcome::Failed(FailReason::WrongPassword), None, &facts)
                .await
                .unwrap();
        }
        assert_eq!(a.throttled("alice").await.unwrap(), None);
        a.record("alice", Outcome::Succeeded, Some("u1"), &facts).await.unwrap();
        for _ in 0..2 {
            a.record("alice", Outcome::Failed(FailReason::WrongPassword), None, &facts)
                .await
                .unwrap();
        }
        assert_eq!(
            a.throttled("alice").await.unwrap(),
            None,
            "a success starts the count again"
        );
        a.record("ALICE ", Outcome::Failed(FailReason::WrongPassword), None, &facts)
            .await
            .unwrap();
        let wait = a.throttled("alice").await.unwrap().expect("throttled");
        assert!((890..=900).contains(&wait), "{wait}");
        assert_eq!(a.throttled("bob").await.unwrap(), None, "other usernames are not");
        // Throttled attempts are recorded but do not count as failures.
        a.record("alice", Outcome::Throttled, None, &facts).await.unwrap();
        let page = a
            .query(
                &LoginFilter {
                    username: Some("Alice".into()),
                    ..Default::default()
                },
                PageParams::default(),
            )
            .await
            .unwrap();
        assert_eq!(page.total, 7);
        assert_eq!(page.items.last().unwrap().outcome, "throttled");
        assert!(page.items.iter().all(|i| !i.username_hash.contains("alice")));
    }

    #[tokio::test]
    async fn the_throttle_lifts_when_the_window_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let a = attempts(&dir, 2, 1).await;
        let facts = AttemptFacts::default();
        for _ in 0..2 {
            a.record("carol", Outcome::Failed(FailReason::UnknownUser), None, &facts)
                .await
                .unwrap();
        }
        assert!(a.throttled("carol").await.unwrap().is_some());
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_eq!(a.throttled("carol").await.unwrap(), None);
    }
}
