//! `Idempotency-Key` for commands. The first request with a key (per user)
//! reserves it in the event store's database, runs, and stores its response; a
//! repeat with the same body gets that response back and writes nothing; a
//! repeat with another body gets 422. Concurrent repeats wait for the first.
//!
//! Creates derive the new aggregate's id from the key, so even if the process
//! dies between committing the events and storing the response, a retry lands
//! on the same aggregate (and is refused as existing) instead of making a twin.
//!
//! # What a repeat must pass again
//! A stored response may hold health data, so it is never handed out on the
//! strength of the key alone:
//! - The caller is authenticated *before* anything is buffered or reserved, with
//!   the same check as every handler (a revoked session or a suspended user
//!   gets 401; an auditor 403 where auditors may not go). Anonymous requests
//!   reserve nothing.
//! - Every access check the first request passed ([`Guard`]s, remembered by
//!   [`crate::policy`]) is stored with the response and run again for the
//!   repeat: a recorder who has lost the patient since gets 404, like the
//!   original request would now.
//! - The body is buffered only up to the route's own limit (JSON or multipart),
//!   refused with 413 beyond it.
//! - Keys expire (`CARELOG_IDEMPOTENCY_TTL_SECS`, 24 h by default): an expired
//!   key is a new request, and expired rows are deleted by [`purge_expired`].
//! - `/auth/*` is never stored: its responses are live tokens.

use std::time::Duration;

use uuid::Uuid;

use crate::auth::Principal;
use crate::policy::Guard;
use crate::state::RequestMeta;
use crate::store::{on_backend, on_writer, Backend, EventStore, SqliteDb};

/// How long a repeat waits for the first request to finish.
pub(crate) const WAIT_FOR_FIRST: Duration = Duration::from_secs(30);
/// A reservation without a response older than this is considered abandoned.
const ABANDONED_SECS: i64 = 60;

const NAMESPACE: Uuid = Uuid::from_u128(0x6361_7265_6c6f_6700_0000_0000_0000_0001);

/// The id of a new aggregate: derived from the caller and the idempotency key
/// when there is one, else time-ordered and random (UUIDv7, as
/// `domain::ids`: new rows land at the end of the indexes keyed by them).
pub fn new_id(meta: &RequestMeta, p: &Principal) -> Uuid {
    match &meta.idempotency_key {
        Some(key) => Uuid::new_v5(&NAMESPACE, format!("{}:{key}", p.user_id).as_bytes()),
        None => Uuid::now_v7(),
    }
}

/// fingerprint, response status, response body, guards (JSON), position.
type StoredRow = (String, Option<i32>, Option<String>, Option<String>, Option<i64>);

pub(crate) enum Reservation {
    New,
    Done {
        fingerprint: String,
        status: u16,
        body: String,
        /// `None` when the stored checks cannot be read: the repeat is refused.
        guards: Option<Vec<Guard>>,
        /// The position the first answer named (0: none).
        position: i64,
    },
    InFlight,
}

/// Takes over a row whose response was never stored (abandoned) or that has
/// expired: `older_than` seconds since it was reserved.
pub(crate) async fn take_over(
    store: &EventStore,
    scope: &str,
    key: &str,
    fingerprint: &str,
    older_than: i64,
    only_unanswered: bool,
) -> Result<bool, sqlx::Error> {
    let unanswered = if only_unanswered {
        " AND response_status IS NULL"
    } else {
        ""
    };
    let n = match store.backend() {
        Backend::Postgres(pool) => sqlx::query(&format!(
            "UPDATE idempotency_keys SET created_at = now(), fingerprint = $3, response_status = NULL,
                    response_body = NULL, guards = NULL, response_position = NULL
             WHERE scope = $1 AND key = $2{unanswered} AND created_at < now() - make_interval(secs => $4)"
        ))
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(older_than as f64)
        .execute(pool)
        .await?
        .rows_affected(),
        Backend::Sqlite(SqliteDb { write: pool, .. }) => sqlx::query(&format!(
            "UPDATE idempotency_keys SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), fingerprint = $3,
                    response_status = NULL, response_body = NULL, guards = NULL, response_position = NULL
             WHERE scope = $1 AND key = $2{unanswered}
               AND created_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || $4 || ' seconds')"
        ))
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(older_than)
        .execute(pool)
        .await?
        .rows_affected(),
    };
    Ok(n == 1)
}

pub(crate) async fn reserve(
    store: &EventStore,
    scope: &str,
    key: &str,
    fingerprint: &str,
    ttl_secs: i64,
) -> Result<Reservation, sqlx::Error> {
    let insert = "INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    let n = on_writer!(store.backend(), |pool| sqlx::query(insert)
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .execute(pool)
        .await?
        .rows_affected());
    if n == 1 || take_over(store, scope, key, fingerprint, ttl_secs, false).await? {
        return Ok(Reservation::New);
    }
    let select = "SELECT fingerprint, response_status, response_body, guards, response_position FROM idempotency_keys
                  WHERE scope = $1 AND key = $2";
    let row: Option<StoredRow> = on_backend!(store.backend(), |pool| sqlx::query_as(select)
        .bind(scope)
        .bind(key)
        .fetch_optional(pool)
        .await?);
    match row {
        None => Ok(Reservation::InFlight),
        Some((fingerprint, Some(status), body, guards, position)) => Ok(Reservation::Done {
            fingerprint,
            status: status as u16,
            body: body.unwrap_or_default(),
            guards: match guards.as_deref() {
                None => Some(Vec::new()),
                Some(text) => serde_json::from_str(text).ok(),
            },
            position: position.unwrap_or(0),
        }),
        Some((_, None, _, _, _)) => Ok(
            if take_over(store, scope, key, fingerprint, ABANDONED_SECS, true).await? {
                Reservation::New
            } else {
                Reservation::InFlight
            },
        ),
    }
}

/// The first request's answer: its status and body, the checks it passed,
/// and the position it committed (0: none).
pub(crate) struct Answer<'a> {
    pub status: u16,
    pub body: &'a str,
    pub guards: &'a [Guard],
    pub position: i64,
}

pub(crate) async fn complete(
    store: &EventStore,
    scope: &str,
    key: &str,
    answer: Answer<'_>,
) -> Result<(), sqlx::Error> {
    let guards = serde_json::to_string(answer.guards).unwrap_or_else(|_| "[]".into());
    let position = (answer.position > 0).then_some(answer.position);
    let sql = "UPDATE idempotency_keys SET response_status = $3, response_body = $4, guards = $5,
                      response_position = $6
               WHERE scope = $1 AND key = $2";
    on_writer!(store.backend(), |pool| sqlx::query(sql)
        .bind(scope)
        .bind(key)
        .bind(i32::from(answer.status))
        .bind(answer.body)
        .bind(&guards)
        .bind(position)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

pub(crate) async fn release(store: &EventStore, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND response_status IS NULL";
    on_writer!(store.backend(), |pool| sqlx::query(sql)
        .bind(scope)
        .bind(key)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Drops every stored response or guard that mentions `subject` (an erased
/// patient's or household's id): a replay must not hand back erased data.
pub async fn forget_mentions(store: &EventStore, subject: &str) -> Result<(), sqlx::Error> {
    let pattern = format!("%{subject}%");
    on_writer!(store.backend(), |pool| sqlx::query(
        "DELETE FROM idempotency_keys WHERE response_body LIKE $1 OR guards LIKE $1"
    )
    .bind(&pattern)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Deletes keys older than `ttl_secs`; returns how many. Every instance runs
/// it now and then (see [`start_purger`]); running it twice is harmless.
pub async fn purge_expired(store: &EventStore, ttl_secs: i64) -> Result<u64, sqlx::Error> {
    Ok(match store.backend() {
        Backend::Postgres(pool) => {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)")
                .bind(ttl_secs as f64)
                .execute(pool)
                .await?
                .rows_affected()
        }
        Backend::Sqlite(SqliteDb { write: pool, .. }) => sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE created_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || $1 || ' seconds')",
        )
        .bind(ttl_secs)
        .execute(pool)
        .await?
        .rows_affected(),
    })
}

/// Deletes expired keys every few minutes for the life of the server.
pub fn start_purger(store: EventStore, ttl_secs: i64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_secs((ttl_secs as u64 / 4).clamp(1, 600));
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match purge_expired(&store, ttl_secs).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "expired idempotency keys deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot delete expired idempotency keys"),
            }
        }
    })
}
