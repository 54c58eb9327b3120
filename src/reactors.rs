//! Reactors: followers of the event store that answer events with commands or
//! side effects. Each has a checkpoint in the read store and runs once across
//! instances (leader lock). Their effects are idempotent, so the checkpoint may
//! lag or repeat without harm: at-least-once in, exactly-once in effect.
//!
//! - **alerts**: every abnormal health record (created, or amended into abnormal
//!   vitals) has its order request, even if the process died between committing
//!   the record and raising the request in the same HTTP call (the request's id
//!   is derived from the record).
//! - **erasure**: every `PatientErased` is completed — key destroyed, files
//!   deleted, household erased when it has no patient left — even if the process
//!   died right after recording the erasure.

use std::future::Future;
use std::time::Duration;

use domain::health_record::{HealthRecord, HealthRecordEvent};
use projections::StoredEvent;
use tokio::task::JoinHandle;

use crate::api::records::raise_alert;
use crate::runner::LeaderLock;
use crate::state::{AppState, RequestMeta};

/// How long the erasure reactor leaves a fresh erasure to the request that recorded it.
const ERASURE_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// Starts every reactor.
pub fn start_reactors(state: AppState) -> Vec<JoinHandle<()>> {
    vec![
        start(
            state.clone(),
            "alerts",
            |state, e| async move { alert(&state, &e).await },
        ),
        start(state, "erasure", |state, e| async move { erasure(&state, &e).await }),
    ]
}

fn start<F, Fut>(state: AppState, name: &'static str, handle: F) -> JoinHandle<()>
where
    F: Fn(AppState, StoredEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    tokio::spawn(async move {
        let _lock = LeaderLock::acquire(&state.store, &format!("reactor:{name}")).await;
        let wake = state.store.appended();
        loop {
            let notified = wake.notified();
            match step(&state, name, &handle).await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, reactor = name, "reactor failed; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    })
}

/// Handles one batch; `false` when there was nothing new.
async fn step<F, Fut>(state: &AppState, name: &str, handle: &F) -> anyhow::Result<bool>
where
    F: Fn(AppState, StoredEvent) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let checkpoint = state.read.reactor_checkpoint(name).await?;
    let events = state.store.read_after(checkpoint, 200).await?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(false);
    };
    for e in events {
        handle(state.clone(), e).await?;
    }
    state.read.set_reactor_checkpoint(name, last).await?;
    Ok(true)
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
    raise_alert(
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
    crate::api::erasure::complete(state, &e.aggregate_id, &reason, &system_context("ErasePatient", e))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
