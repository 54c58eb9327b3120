//! Followers of the event store. The projector runner applies events to each
//! read model in position order; `ProjectionWaiter` lets a command's response
//! wait until the read models include it.
//!
//! Only one process runs the projectors at a time (a leader lock in the event
//! store), but correctness does not depend on it: each batch moves the
//! projector's checkpoint with a compare-and-set in the batch's transaction.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use projections::{ProjectionError, Projector, ReadStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::EventStore;

/// The leader lock lives with the followers it elects; re-exported for the CLI and backup.
pub use crate::follower::LeaderLock;

/// Events per batch while following the head.
const BATCH: i64 = 500;
/// Events per batch when replaying a whole history (rebuild, restore).
pub const REBUILD_BATCH: i64 = 5000;
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
    /// Whether this process holds the projectors' leader lock: then `local` is
    /// the whole truth and the read store need not be asked.
    leader: Arc<std::sync::atomic::AtomicBool>,
    /// The lowest checkpoint last read from the read store (another instance
    /// leads): checkpoints only move on, so a position at or below it needs
    /// no query.
    seen: Arc<std::sync::atomic::AtomicI64>,
}

impl ProjectionWaiter {
    /// A waiter that never waits (CLI commands).
    pub fn detached(read: ReadStore) -> Self {
        let (_, local) = watch::channel(0);
        Self {
            read,
            enabled: false,
            local,
            leader: Arc::default(),
            seen: Arc::default(),
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
            if *local.borrow_and_update() >= position || self.seen.load(Ordering::Acquire) >= position {
                return true;
            }
            let leader = self.leader.load(Ordering::Acquire);
            // Another instance may be the leader: its progress is only in the database.
            if !leader {
                if let Ok(p) = self.read.min_checkpoint().await {
                    self.seen.fetch_max(p, Ordering::AcqRel);
                    if p >= position {
                        return true;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(position, "read models did not catch up in time");
                return false;
            }
            // The local pipeline says when it moves; another leader is polled.
            let wait = if leader {
                deadline - tokio::time::Instant::now()
            } else {
                Duration::from_millis(20)
            };
            let _ = tokio::time::timeout(wait, local.changed()).await;
        }
    }
}

/// Runs every projector until the process stops.
pub struct ProjectorRunner {
    pub waiter: ProjectionWaiter,
    pub handle: JoinHandle<()>,
}

/// Starts the projection pipeline: one follower that reads each batch of
/// events once and applies it to every read model in one transaction (see
/// `ReadStore::apply_batch_all`), under the `projectors` leader lock.
pub async fn start_projectors(
    store: EventStore,
    read: ReadStore,
    projectors: Vec<Arc<dyn Projector>>,
) -> Result<ProjectorRunner, sqlx::Error> {
    read.init_checkpoints(&projectors).await?;
    let (tx, rx) = watch::channel(read.min_checkpoint().await?);
    let leader = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waiter = ProjectionWaiter {
        read: read.clone(),
        enabled: true,
        local: rx,
        leader: leader.clone(),
        seen: Arc::default(),
    };
    let pipeline = Pipeline {
        store: store.clone(),
        read,
        projectors,
        progress: tx,
        leader,
        checkpoints: None,
    };
    let handle = crate::follower::spawn(store, pipeline);
    Ok(ProjectorRunner { waiter, handle })
}

/// The projection pipeline as a follower: replayable (read models are
/// rebuilt from the events), its checkpoints in the read store, moved in each
/// batch's transaction with the rows they cover.
struct Pipeline {
    store: EventStore,
    read: ReadStore,
    projectors: Vec<Arc<dyn Projector>>,
    /// The lowest checkpoint, for the local read-your-writes waiters.
    progress: watch::Sender<i64>,
    leader: Arc<std::sync::atomic::AtomicBool>,
    /// The checkpoints after the last step (`None`: read them).
    checkpoints: Option<Vec<i64>>,
}

#[async_trait::async_trait]
impl crate::follower::Follower for Pipeline {
    fn name(&self) -> String {
        "projectors".into()
    }
    fn replayable(&self) -> bool {
        true
    }
    fn idle(&self) -> Duration {
        POLL
    }
    async fn lead(&mut self) {
        self.leader.store(true, Ordering::Release);
    }
    async fn checkpoint(&self) -> anyhow::Result<i64> {
        Ok(self.read.min_checkpoint().await?)
    }
    async fn step(&mut self) -> anyhow::Result<crate::follower::Step> {
        let progress = &self.progress;
        let publish = |pos: i64| {
            progress.send_if_modified(|cur| {
                let changed = *cur != pos;
                *cur = pos;
                changed
            });
            async {}
        };
        // The checkpoints are kept between busy steps: this process leads,
        // and whoever else moves them (a rebuild's switch, a reset) makes the
        // next batch's transaction fail with `CheckpointMoved`, which re-reads
        // them; an idle step forgets them (see `catch_up_from`).
        let known = self.checkpoints.take();
        self.checkpoints = catch_up_from(&self.store, &self.read, &self.projectors, BATCH, known, &publish).await?;
        Ok(crate::follower::Step::CaughtUp)
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

/// Applies everything after the lowest checkpoint to every projector, batch
/// by batch (each batch read once), until the head; `on_progress` hears the
/// lowest checkpoint after each batch.
pub async fn catch_up<F, Fut>(
    store: &EventStore,
    read: &ReadStore,
    projectors: &[Arc<dyn Projector>],
    batch: i64,
    on_progress: &F,
) -> Result<(), FollowError>
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    catch_up_from(store, read, projectors, batch, None, on_progress)
        .await
        .map(|_| ())
}

/// [`catch_up`] from `known` checkpoints (read from the read store when
/// `None`, or when they turn out to have moved); returns where they are now,
/// or `None` when there was nothing to apply: an idle follower reads them
/// afresh on its next step, so a checkpoint set back (a projector reset to be
/// replayed) is seen without waiting for a new event. A batch neither full
/// nor cut at its byte budget ([`crate::store::Batch`]) reached the head: no
/// read to find nothing.
async fn catch_up_from<F, Fut>(
    store: &EventStore,
    read: &ReadStore,
    projectors: &[Arc<dyn Projector>],
    batch: i64,
    known: Option<Vec<i64>>,
    on_progress: &F,
) -> Result<Option<Vec<i64>>, FollowError>
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut checkpoints = match known {
        Some(c) => c,
        None => read.checkpoints(projectors).await?,
    };
    loop {
        let lowest = checkpoints.iter().copied().min().unwrap_or(0);
        on_progress(lowest).await;
        let crate::store::Batch { events, more } = store.next_raw_batch(lowest, batch).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(None);
        };
        // The batch's sealed fields are opened (their keys read from the
        // event store) while the read store claims its checkpoints: two round
        // trips at once instead of one after the other.
        let (opened, claim) = tokio::join!(
            store.open_many(events),
            read.claim_batch(projectors, &checkpoints, last)
        );
        let events = opened?;
        let applied = match claim {
            Ok(claim) => claim.apply(&events).await,
            Err(e) => Err(e),
        };
        match applied {
            Ok(moved) => {
                checkpoints = moved;
                if let Some(oldest) = events.first() {
                    crate::metrics::projection_delay(chrono::Utc::now() - oldest.recorded_at);
                }
            }
            // A rebuild reset some, or another runner got there first: re-read.
            Err(ProjectionError::CheckpointMoved(_)) => {
                checkpoints = read.checkpoints(projectors).await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        if !more {
            on_progress(checkpoints.iter().copied().min().unwrap_or(0)).await;
            return Ok(Some(checkpoints));
        }
    }
}

/// Applies events up to `target` (inclusive) to every projector below it,
/// batch by batch; projectors already at or past it are left alone. The next
/// batch is read (and decrypted and parsed) on another worker while the read
/// store applies this one: a replay keeps both cores busy. Each batch is read
/// once and applied to the projectors' groups ([`side_by_side`]) at once.
pub async fn catch_up_to(
    store: &EventStore,
    read: &ReadStore,
    projectors: &[Arc<dyn Projector>],
    batch: i64,
    target: i64,
) -> Result<(), FollowError> {
    let (below, checkpoints): (Vec<Arc<dyn Projector>>, Vec<i64>) = projectors
        .iter()
        .cloned()
        .zip(read.checkpoints(projectors).await?)
        .filter(|(_, c)| *c < target)
        .unzip();
    if below.is_empty() {
        return Ok(());
    }
    let mut groups = side_by_side(read, below, checkpoints);
    let fetch = |from: i64| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut events = store.next_batch(from, batch.min(target - from)).await?.events;
            events.retain(|e| e.position <= target);
            Ok::<_, anyhow::Error>(events)
        })
    };
    // The batch being read ahead: (where it starts, the read).
    let mut ahead: Option<(i64, JoinHandle<anyhow::Result<Vec<projections::StoredEvent>>>)> = None;
    let abort = |ahead: Option<(i64, JoinHandle<_>)>| {
        if let Some((_, read)) = ahead {
            read.abort();
        }
    };
    loop {
        let lowest = groups.iter().flat_map(|(_, c)| c.iter().copied()).min().unwrap_or(0);
        if lowest >= target {
            return Ok(());
        }
        let events = match ahead.take() {
            Some((from, read)) if from == lowest => read.await.map_err(anyhow::Error::from)??,
            stale => {
                abort(stale);
                fetch(lowest).await.map_err(anyhow::Error::from)??
            }
        };
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(());
        };
        if last < target {
            ahead = Some((last, fetch(last)));
        }
        let applied = futures::future::join_all(
            groups
                .iter()
                .map(|(group, checkpoints)| read.apply_batch_all(group, checkpoints, &events)),
        )
        .await;
        for ((group, checkpoints), result) in groups.iter_mut().zip(applied) {
            match result {
                Ok(moved) => *checkpoints = moved,
                Err(ProjectionError::CheckpointMoved(_)) => *checkpoints = read.checkpoints(group).await?,
                Err(e) => {
                    abort(ahead);
                    return Err(e.into());
                }
            }
        }
    }
}

/// The projectors (with their checkpoints) a replay applies side by side,
/// each group in its own transaction on its own connection. On MySQL each
/// projector alone: MariaDB works on several at once where one transaction
/// after another left it waiting on each round trip and page read (the replay
/// of 1,029,448 events went from 25.6-27.6 s to 21.6 s; docs/performance.md).
/// SQLite has one writer: one group.
#[allow(clippy::type_complexity)]
fn side_by_side(
    read: &ReadStore,
    projectors: Vec<Arc<dyn Projector>>,
    checkpoints: Vec<i64>,
) -> Vec<(Vec<Arc<dyn Projector>>, Vec<i64>)> {
    match read.dialect() {
        projections::Dialect::Sqlite => vec![(projectors, checkpoints)],
        projections::Dialect::MySql => projectors
            .into_iter()
            .zip(checkpoints)
            .map(|(p, c)| (vec![p], vec![c]))
            .collect(),
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy)]
pub struct Rebuilt {
    /// The live position the rebuilt read models were switched in at.
    pub position: i64,
    /// Events replayed into the shadow (each once, for every projector).
    pub events: i64,
    pub elapsed: Duration,
}

/// Rebuilds `projectors` from the whole history without taking their read
/// models away: the history is replayed into a shadow read store while the
/// live one keeps serving (and following the store), then the shadow's tables
/// are switched in atomically at the live checkpoint (see
/// `projections::rebuild`). Safe with a server running, on either backend.
pub async fn rebuild_beside(
    store: &EventStore,
    read: &ReadStore,
    projectors: &[Arc<dyn Projector>],
) -> Result<Rebuilt, FollowError> {
    let started = std::time::Instant::now();
    read.init_checkpoints(projectors).await?;
    let shadow = read.create_shadow().await?;
    let result = async {
        let replica = shadow.store();
        replica.init_checkpoints(projectors).await?;
        // Up to the head, as a bulk load (derived rows written at its end).
        let loading = replica.for_load();
        // The list indexes wait for the last row (see `projections::deferred`).
        let deferred = replica.defer_indexes(projectors).await?;
        // Replay the history up to the head without holding anything (the
        // head moves on meanwhile: chase it a few times), so that the switch,
        // which pauses the live pipeline, has only a few events left.
        for _ in 0..5 {
            let head = store.head().await?;
            let reached = replica.checkpoints(projectors).await?.into_iter().min().unwrap_or(0);
            if head - reached <= BATCH && reached > 0 {
                break;
            }
            catch_up_to(store, &loading, projectors, REBUILD_BATCH, head).await?;
            tracing::info!(
                head,
                elapsed_s = started.elapsed().as_secs_f64(),
                "rebuild: the shadow reached the head"
            );
            if head == 0 {
                break;
            }
        }
        let built = deferred.len();
        replica.restore_indexes(deferred).await?;
        tracing::info!(
            statements = built,
            elapsed_s = started.elapsed().as_secs_f64(),
            "rebuild: the shadow's list indexes built"
        );
        for p in projectors {
            p.finish_load(replica).await?;
        }
        tracing::info!(
            elapsed_s = started.elapsed().as_secs_f64(),
            "rebuild: the shadow's derived rows written"
        );
        // Statistics for the planner: in the shadow when the whole file is
        // switched in (they come with it), else in the live tables after.
        let tables: Vec<&str> = projectors.iter().flat_map(|p| p.tables().iter().copied()).collect();
        let by_file = read.switches_file(projectors);
        if by_file {
            replica.analyze(&tables).await?;
        }
        let reached = read
            .switch_to(&shadow, projectors, |live: Vec<i64>| async move {
                // Never behind the live read models; never back from where the shadow is.
                let reached = replica.checkpoints(projectors).await?;
                let targets: Vec<i64> = live.iter().zip(&reached).map(|(l, r)| (*l).max(*r)).collect();
                let mut steps = targets.clone();
                steps.sort_unstable();
                steps.dedup();
                for step in steps {
                    let due: Vec<Arc<dyn Projector>> = projectors
                        .iter()
                        .zip(&targets)
                        .filter(|(_, t)| **t >= step)
                        .map(|(p, _)| p.clone())
                        .collect();
                    catch_up_to(store, replica, &due, REBUILD_BATCH, step).await?;
                }
                Ok::<Vec<i64>, FollowError>(targets)
            })
            .await?;
        tracing::info!(
            elapsed_s = started.elapsed().as_secs_f64(),
            "rebuild: the shadow switched in"
        );
        if !by_file {
            if let Err(e) = read.analyze(&tables).await {
                tracing::warn!(error = %e, "statistics of the rebuilt read models not refreshed");
            }
        }
        Ok::<i64, FollowError>(reached.into_iter().max().unwrap_or(0))
    }
    .await;
    if let Err(e) = shadow.discard().await {
        tracing::warn!(error = %e, "the rebuild's scratch read store could not be removed");
    }
    let position = result?;
    Ok(Rebuilt {
        position,
        events: store.count_up_to(position).await?,
        elapsed: started.elapsed(),
    })
}
