//! One way to follow the event store.
//!
//! Everything that acts on committed events after the fact — the projection
//! pipeline (read models), the reactors (alerts, erasure), the Kafka relay and
//! the audit sealer — is a [`Follower`] run by [`spawn`], which gives each the
//! same guarantees:
//!
//! - **once across instances**: it runs only in the process holding its
//!   leader lock (`LeaderLock`, a PostgreSQL advisory lock; the data-dir lock
//!   when embedded); another instance takes over when that process dies;
//! - **in position order from a checkpoint**: a step handles the next events
//!   after [`Follower::checkpoint`] and moves it; where the checkpoint is kept
//!   is the follower's business (next to the rows it covers, in the same
//!   transaction, for read models; beside its effects for the others);
//! - **woken at commit**: by the appender in-process and, on PostgreSQL, by
//!   `LISTEN` across instances (`EventStore::listen_for_commits`), with a poll as
//!   the safety net, and an exponential backoff after failures.
//!
//! [`Follower::replayable`] says what a rebuild may do with it: a read model
//! can be thrown away and replayed from the first event; a message sent or a
//! command issued cannot, so such a follower only ever moves forward.

use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;

use crate::store::{Backend, EventStore};

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Handled events; there may be more right away.
    Moved,
    /// Nothing left after the checkpoint: wait for the next commit.
    CaughtUp,
}

#[async_trait]
pub trait Follower: Send + 'static {
    /// Its leader lock's name.
    fn name(&self) -> String;
    /// Whether its effects may be replayed from the first event (see the
    /// module docs).
    fn replayable(&self) -> bool;
    /// How long it waits for a commit before looking anyway.
    fn idle(&self) -> Duration {
        Duration::from_secs(1)
    }
    /// The first and the longest wait after a failed step (doubling between).
    fn backoff(&self) -> (Duration, Duration) {
        (Duration::from_millis(100), Duration::from_secs(30))
    }
    /// Called once, when this process has become its leader.
    async fn lead(&mut self) {}
    /// The position of the last event it has handled.
    async fn checkpoint(&self) -> anyhow::Result<i64>;
    /// Handles the next events after the checkpoint and moves it.
    async fn step(&mut self) -> anyhow::Result<Step>;
}

/// Runs `follower` until the process stops (see the module docs).
pub fn spawn<F: Follower>(store: EventStore, mut follower: F) -> JoinHandle<()> {
    store.listen_for_commits();
    tokio::spawn(async move {
        let name = follower.name();
        let _lock = LeaderLock::acquire(&store, &name).await;
        tracing::info!(follower = %name, replayable = follower.replayable(), "following the event store");
        follower.lead().await;
        let wake = store.appended();
        let (first, longest) = follower.backoff();
        let mut backoff = first;
        loop {
            let committed = wake.notified();
            match follower.step().await {
                Ok(Step::Moved) => backoff = first,
                Ok(Step::CaughtUp) => {
                    backoff = first;
                    let _ = tokio::time::timeout(follower.idle(), committed).await;
                }
                Err(e) => {
                    tracing::error!(follower = %name, error = ?e, retry_in_ms = backoff.as_millis() as u64, "follower failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(longest);
                }
            }
        }
    })
}

/// Makes one process the runner of a follower. On PostgreSQL: a session-level
/// advisory lock on a dedicated connection (released if the process dies). In
/// embedded mode the data-directory lock taken at start-up already makes this
/// process the only one.
pub enum LeaderLock {
    Postgres(#[allow(dead_code)] sqlx::pool::PoolConnection<sqlx::Postgres>),
    Embedded,
}

impl LeaderLock {
    /// One attempt; `None` if another process holds the lock.
    pub async fn try_acquire(store: &EventStore, name: &str) -> Result<Option<LeaderLock>, sqlx::Error> {
        let Backend::Postgres(pool) = store.backend() else {
            return Ok(Some(LeaderLock::Embedded));
        };
        let mut conn = pool.acquire().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(lock_key(name))
            .fetch_one(&mut *conn)
            .await?;
        Ok(got.then_some(LeaderLock::Postgres(conn)))
    }

    pub async fn acquire(store: &EventStore, name: &str) -> LeaderLock {
        let Backend::Postgres(pool) = store.backend() else {
            return LeaderLock::Embedded;
        };
        let key = lock_key(name);
        loop {
            match pool.acquire().await {
                Ok(mut conn) => {
                    let got: Result<bool, _> = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                        .bind(key)
                        .fetch_one(&mut *conn)
                        .await;
                    if let Ok(true) = got {
                        return LeaderLock::Postgres(conn);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "leader lock: no connection"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

fn lock_key(name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("carelog:{name}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}
