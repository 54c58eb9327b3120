//! Followers of the event store. The projector runner applies events to each
//! read model in position order; `ProjectionWaiter` lets a command's response
//! wait until the read models include it.
//!
//! Only one process runs the projectors at a time (a leader lock in the event
//! store), but correctness does not depend on it: each batch moves the
//! projector's checkpoint with a compare-and-set in the batch's transaction.

use std::sync::Arc;
use std::time::Duration;

use projections::{ProjectionError, Projector, ReadStore};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::store::{Backend, EventStore};

const BATCH: i64 = 500;
const POLL: Duration = Duration::from_millis(250);
/// A command never waits longer than this for its read models; past it the
/// response is sent anyway (the write is durable) and a warning is logged.
const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until every projector has passed a position.
#[derive(Clone)]
pub struct ProjectionWaiter {
    read: ReadStore,
    /// False for one-shot CLI commands, which run no projectors and do not wait.
    enabled: bool,
    /// Lowest checkpoint among the local projectors, when this process runs them.
    local: watch::Receiver<i64>,
}

impl ProjectionWaiter {
    /// A waiter that never waits (CLI commands).
    pub fn detached(read: ReadStore) -> Self {
        let (_, local) = watch::channel(0);
        Self {
            read,
            enabled: false,
            local,
        }
    }

    /// Waits (bounded) until every read model has passed `position`; false if
    /// they had not when the time ran out.
    pub async fn wait_for(&self, position: i64) -> bool {
        if position <= 0 || !self.enabled {
            return true;
        }
        let mut local = self.local.clone();
        let deadline = tokio::time::Instant::now() + READ_YOUR_WRITES_TIMEOUT;
        loop {
            if *local.borrow_and_update() >= position {
                return true;
            }
            // Another instance may be the leader: its progress is only in the database.
            if matches!(self.read.min_checkpoint().await, Ok(p) if p >= position) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(position, "read models did not catch up in time");
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), local.changed()).await;
        }
    }
}

/// Runs every projector until the process stops.
pub struct ProjectorRunner {
    pub waiter: ProjectionWaiter,
    pub handle: JoinHandle<()>,
}

pub async fn start_projectors(
    store: EventStore,
    read: ReadStore,
    projectors: Vec<Arc<dyn Projector>>,
) -> Result<ProjectorRunner, sqlx::Error> {
    read.init_checkpoints(&projectors).await?;
    let (tx, rx) = watch::channel(read.min_checkpoint().await?);
    let waiter = ProjectionWaiter {
        read: read.clone(),
        enabled: true,
        local: rx,
    };
    let handle = tokio::spawn(async move {
        let lock = LeaderLock::acquire(&store, "projectors").await;
        tracing::info!("projector runner is the leader");
        let wake = store.appended();
        spawn_listener(&store, wake.clone());
        let progress = Arc::new(tokio::sync::Mutex::new(vec![0i64; projectors.len()]));
        let mut tasks = Vec::new();
        for (i, p) in projectors.into_iter().enumerate() {
            let (store, read, wake, tx, progress) =
                (store.clone(), read.clone(), wake.clone(), tx.clone(), progress.clone());
            tasks.push(tokio::spawn(async move {
                follow(&store, &read, p.as_ref(), &wake, |pos| {
                    let progress = progress.clone();
                    let tx = tx.clone();
                    async move {
                        let mut all = progress.lock().await;
                        all[i] = pos;
                        let min = all.iter().copied().min().unwrap_or(0);
                        tx.send_if_modified(|cur| {
                            let changed = *cur != min;
                            *cur = min;
                            changed
                        });
                    }
                })
                .await
            }));
        }
        futures::future::join_all(tasks).await;
        drop(lock);
    });
    Ok(ProjectorRunner { waiter, handle })
}

/// Follows the store for one projector, forever.
async fn follow<F, Fut>(store: &EventStore, read: &ReadStore, p: &dyn Projector, wake: &Notify, on_progress: F)
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        let notified = wake.notified();
        match catch_up(store, read, p, &on_progress).await {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                let _ = tokio::time::timeout(POLL, notified).await;
            }
            Err(e) => {
                tracing::error!(projector = p.name(), error = ?e, "projection failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Applies everything after the projector's checkpoint, batch by batch.
pub async fn catch_up<F, Fut>(
    store: &EventStore,
    read: &ReadStore,
    p: &dyn Projector,
    on_progress: &F,
) -> Result<(), FollowError>
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        let checkpoint = read.checkpoint(p.name()).await?;
        on_progress(checkpoint).await;
        let events = store.read_after(checkpoint, BATCH).await?;
        if events.is_empty() {
            return Ok(());
        }
        match read.apply_batch(p, checkpoint, &events).await {
            Ok(_) | Err(ProjectionError::CheckpointMoved(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// On PostgreSQL, commits by other instances wake the followers at once.
fn spawn_listener(store: &EventStore, wake: Arc<Notify>) {
    if let Backend::Postgres(pool) = store.backend() {
        let pool = pool.clone();
        tokio::spawn(async move {
            loop {
                let result: Result<(), sqlx::Error> = async {
                    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                    listener.listen("carelog_events").await?;
                    loop {
                        listener.recv().await?;
                        wake.notify_waiters();
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
