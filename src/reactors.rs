//! Reactors: followers of the event store that answer events with commands or
//! side effects. Each has a checkpoint in the read store and runs once across
//! instances (leader lock). Their effects are idempotent, so the checkpoint may
//! lag or repeat without harm: at-least-once in, exactly-once in effect.
//!
//! - **alerts**: every abnormal health record (created, or amended into abnormal
//!   vitals) has its alert and order request, even if the process died between
//!   committing the record and raising them in the same HTTP call (their ids
//!   are derived from the record).
//! - **evv**: visit verification exceptions are raised from check-ins,
//!   check-outs and visits' records as they are committed (`app::evv::react`);
//!   with [`start_missing_check_out_sweep`], the timed end-of-day check.
//! - **erasure**: every `PatientErased` is completed — key destroyed, files
//!   deleted, household erased when it has no patient left — even if the process
//!   died right after recording the erasure.

use std::future::Future;
use std::time::{Duration, Instant};

use domain::health_record::{HealthRecord, HealthRecordEvent};
use projections::StoredEvent;
use tokio::task::JoinHandle;

use crate::follower::{Follower, Step};
use crate::state::{AppState, RequestMeta};

/// How long the erasure reactor leaves a fresh erasure to the request that recorded it.
const ERASURE_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// Starts every reactor.
pub fn start_reactors(state: AppState) -> Vec<JoinHandle<()>> {
    vec![
        start(
            state.clone(),
            "alerts",
            |aggregate, _| aggregate == "health_record",
            |state, e| async move { alert(&state, &e).await },
        ),
        start(state.clone(), "evv", crate::app::evv::wants, |state, e| async move {
            crate::app::evv::react(&state, &e, &system_context("RaiseEvvException", &e)).await
        }),
        start_missing_check_out_sweep(state.clone()),
        start(
            state,
            "erasure",
            |aggregate, event| aggregate == "patient" && event == "PatientErased",
            |state, e| async move { erasure(&state, &e).await },
        ),
    ]
}

/// Starts one reactor: `handle` for each event that `wants` (aggregate type,
/// event type) names, its checkpoint under `name` in `reactor_checkpoints`.
pub(crate) fn start<F, Fut>(
    state: AppState,
    name: &'static str,
    wants: fn(&str, &str) -> bool,
    handle: F,
) -> JoinHandle<()>
where
    F: Fn(AppState, StoredEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let store = state.store.clone();
    let reactor = Reactor {
        state,
        name,
        wants,
        handle,
        position: None,
        saved: (0, Instant::now()),
    };
    crate::follower::spawn(store, reactor)
}

/// Events a reactor reads per step.
const BATCH: i64 = 500;

/// How often a reactor stores a position it only passed (no effect since).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// A reactor as a follower: not replayable (its effects are commands), its
/// checkpoint in the read store's `reactor_checkpoints`. Only the events it
/// `wants` are decrypted and handled; the checkpoint is stored after every
/// batch that had an effect and at most every [`SAVE_EVERY`] otherwise (a
/// crash repeats at most that much, and its commands are idempotent).
struct Reactor<F> {
    state: AppState,
    name: &'static str,
    /// (aggregate type, event type) of the events it acts on.
    wants: fn(&str, &str) -> bool,
    handle: F,
    /// Where it has got to (read from the store on the first step).
    position: Option<i64>,
    /// The last stored position, and when.
    saved: (i64, Instant),
}

impl<F> Reactor<F> {
    async fn save(&mut self, position: i64) -> anyhow::Result<()> {
        if position > self.saved.0 {
            self.state
                .read_now()
                .set_reactor_checkpoint(self.name, position)
                .await?;
        }
        self.saved = (position, Instant::now());
        Ok(())
    }
}

#[async_trait::async_trait]
impl<F, Fut> Follower for Reactor<F>
where
    F: Fn(AppState, StoredEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    fn name(&self) -> String {
        format!("reactor:{}", self.name)
    }
    fn replayable(&self) -> bool {
        false
    }
    fn backoff(&self) -> (Duration, Duration) {
        (Duration::from_secs(2), Duration::from_secs(30))
    }
    async fn checkpoint(&self) -> anyhow::Result<i64> {
        match self.position {
            Some(p) => Ok(p),
            None => Ok(self.state.read_now().reactor_checkpoint(self.name).await?),
        }
    }
    async fn step(&mut self) -> anyhow::Result<Step> {
        let after = self.checkpoint().await?;
        if self.position.is_none() {
            self.position = Some(after);
            self.saved = (after, Instant::now());
        }
        let crate::store::Batch { events: raw, more } = self.state.store.next_raw_batch(after, BATCH).await?;
        // A batch neither full nor cut at its budget reached the head: wait
        // for the next commit rather than read again to find nothing.
        let Some(last) = raw.last().map(|e| e.position) else {
            if self.saved.0 < after && self.saved.1.elapsed() >= SAVE_EVERY {
                self.save(after).await?;
            }
            return Ok(Step::CaughtUp);
        };
        let wanted: Vec<_> = raw
            .into_iter()
            .filter(|r| (self.wants)(&r.aggregate_type, &r.event_type))
            .collect();
        let acted = !wanted.is_empty();
        for e in self.state.store.open_many(wanted).await? {
            (self.handle)(self.state.clone(), e).await?;
        }
        self.position = Some(last);
        if acted || self.saved.1.elapsed() >= SAVE_EVERY {
            self.save(last).await?;
        }
        Ok(if more { Step::Moved } else { Step::CaughtUp })
    }
}

/// How often the end-of-day check for visits never checked out runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The end-of-day check (`missing_check_out`): once a minute, in the one
/// process holding its leader lock, it raises the exception of every visit
/// checked in before today and still open — including the days missed while
/// no server ran. Raising is idempotent per visit, so a new leader that
/// repeats a sweep changes nothing.
pub fn start_missing_check_out_sweep(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _lock = crate::follower::LeaderLock::acquire(&state.store, "evv-day-end").await;
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            let ctx = RequestMeta::system("RaiseEvvException");
            if let Err(e) = crate::app::evv::sweep_missing_check_outs(&state, chrono::Utc::now(), &ctx).await {
                tracing::error!(error = ?e, "the end-of-day EVV check failed; retrying at the next tick");
            }
        }
    })
}

fn system_context(command: &str, e: &StoredEvent) -> crate::store::CommandContext {
    let mut ctx = RequestMeta::system(command);
    if let Some(c) = e.metadata.get("correlation_id") {
        ctx.metadata.insert("correlation_id".into(), c.clone());
    }
    ctx
}

async fn alert(state: &AppState, e: &StoredEvent) -> anyhow::Result<()> {
    if e.aggregate_type != "health_record" {
        return Ok(());
    }
    let content = match e.decode::<HealthRecordEvent>() {
        Ok(HealthRecordEvent::HealthRecordCreated(content)) => content,
        Ok(HealthRecordEvent::HealthRecordAmended { alerts: Some(a), .. }) if !a.is_empty() => {
            // The record as amended (a later amendment may have cleared it again:
            // then there is nothing to raise).
            match state.store.load::<HealthRecord>(&e.aggregate_id).await? {
                Some((r, _)) => match r.content {
                    Some(c) => c,
                    None => return Ok(()),
                },
                None => return Ok(()),
            }
        }
        _ => return Ok(()),
    };
    if content.alerts.is_empty() {
        return Ok(());
    }
    crate::app::alerts::raise(
        state,
        e.aggregate_id.parse()?,
        &content,
        system_context("RaiseAlertRequest", e),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

async fn erasure(state: &AppState, e: &StoredEvent) -> anyhow::Result<()> {
    if e.aggregate_type != "patient" || e.event_type != "PatientErased" {
        return Ok(());
    }
    let reason = e
        .payload
        .pointer("/PatientErased/reason")
        .and_then(|r| r.as_str())
        .unwrap_or("erasure")
        .to_string();
    // The HTTP call that recorded the erasure normally completes it itself
    // within milliseconds (with its admin as the actor of what follows): give
    // it that chance, and only finish what a crashed process left undone.
    let age = chrono::Utc::now() - e.recorded_at;
    if let Ok(left) = (ERASURE_GRACE - age).to_std() {
        tokio::time::sleep(left).await;
    }
    // The household check reads the read models: let them show this erasure.
    state.waiter.wait_for(e.position).await;
    crate::app::erasure::complete(state, &e.aggregate_id, &reason, &system_context("ErasePatient", e))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
