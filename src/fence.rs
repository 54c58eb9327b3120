//! Read-your-writes by position: a command answers as soon as its events are
//! committed, and a read of the read models first waits until they show every
//! event its reader may have seen committed (Marten's `QueryForNonStaleData`,
//! Commanded's `include_aggregate_version`).
//!
//! # What a read waits for
//! The highest of:
//! - every event this process has committed (its requests' commands, its jobs
//!   and reactors: [`crate::tail::Tail::last_committed`]);
//! - the position the request names in `X-Carelog-Position` (see
//!   `crate::api::consistency`), no higher than the store's head;
//! - the store's head, once another writer has been heard on the same store
//!   (PostgreSQL: another instance, a CLI command; see
//!   `EventStore::others_write`), asked once per request.
//!
//! So a client's read after a command's answer sees that command on any
//! instance: the command committed before it answered, and whichever instance
//! serves the read either committed it itself or asks the head. A command that
//! only writes (a family created) no longer waits for the read models; a read
//! made while nothing is being written waits for nothing.
//!
//! # Why
//! A command used to wait, before it answered, until every read model showed
//! it: on PostgreSQL + MySQL about one and a half projection steps, two thirds
//! of a creation's time at 32 clients (docs/performance.md, "Read-your-writes
//! at the read"). The wait now falls on the reads that need it.

use std::cell::Cell;
use std::future::Future;

use crate::runner::ProjectionWaiter;
use crate::store::EventStore;

tokio::task_local! {
    static REQUEST: Request;
}

/// What one request named, committed and has already waited for.
#[derive(Default)]
struct Request {
    /// The position its reads must show (`X-Carelog-Position`; 0: none).
    named: i64,
    /// The position of the last event it committed (0: none).
    committed: Cell<i64>,
    /// What its reads have waited for already.
    reached: Cell<i64>,
    /// Whether it has read already: its later reads wait only for its own
    /// commits since (what others committed meanwhile is not the caller's
    /// write, and chasing it would make a busy store's requests wait on
    /// and on).
    began: Cell<bool>,
}

/// Runs `f` as one request whose reads must show `named` (0: nothing more
/// than this process knows); returns its output and the position of the last
/// event it committed (0: none).
pub async fn scope<F: Future>(named: i64, f: F) -> (F::Output, i64) {
    let request = Request {
        named,
        ..Request::default()
    };
    REQUEST
        .scope(request, async move {
            let out = f.await;
            (out, REQUEST.with(|r| r.committed.get()))
        })
        .await
}

/// Records a commit made by the current request, for its answer's header.
/// Outside a request there is nothing to record: the process's commits are
/// in its tail either way.
pub fn committed(position: i64) {
    let _ = REQUEST.try_with(|r| r.committed.set(r.committed.get().max(position)));
}

/// The position of the last event the current request has committed (0:
/// none, or outside a request).
pub fn committed_so_far() -> i64 {
    REQUEST.try_with(|r| r.committed.get()).unwrap_or(0)
}

/// Waits (bounded, see `ProjectionWaiter::wait_for`) until the read models
/// show what a read of the current request must see (module docs). Outside a
/// request (jobs, reactors): what this process has committed.
pub async fn before_read(store: &EventStore, waiter: &ProjectionWaiter) {
    let request = REQUEST
        .try_with(|r| (r.named, r.committed.get(), r.reached.get(), r.began.replace(true)))
        .ok();
    let (target, reached) = match request {
        Some((_, committed, reached, true)) => (committed, reached),
        Some((named, committed, reached, false)) => (first_read(store, named).await.max(committed), reached),
        None => (store.last_committed(), 0),
    };
    if target > reached {
        let started = std::time::Instant::now();
        waiter.wait_for(target).await;
        crate::metrics::read_your_writes(started.elapsed());
        let _ = REQUEST.try_with(|r| r.reached.set(target));
    }
}

/// What a request's first read must show: this process's commits, the named
/// position up to the store's head, and the head if another writer shares the
/// store.
async fn first_read(store: &EventStore, named: i64) -> i64 {
    let mine = store.last_committed();
    let others = store.others_write();
    if !others && named <= mine {
        return mine;
    }
    match store.head().await {
        Ok(head) if others => mine.max(head),
        Ok(head) => mine.max(named.min(head)),
        // A position that cannot be checked is not waited for: a client
        // cannot hold a read for the whole bound by naming one.
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the event store's head; reading without it");
            mine
        }
    }
}
