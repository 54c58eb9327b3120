//! Reactors: followers of the event store that answer events with commands.
//!
//! The alert reactor makes sure every abnormal health record has its order
//! request even if the process died between committing the record and raising
//! the request in the same HTTP call. Its commands are idempotent (the
//! request's id is derived from the record), so its checkpoint may lag or
//! repeat without harm: at-least-once in, exactly-once in effect.

use std::time::Duration;

use domain::health_record::HealthRecordEvent;
use tokio::task::JoinHandle;

use crate::api::records::raise_alert;
use crate::runner::LeaderLock;
use crate::state::{AppState, RequestMeta};

const ALERTS: &str = "alerts";

pub fn start_alert_reactor(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _lock = LeaderLock::acquire(&state.store, "reactor:alerts").await;
        let wake = state.store.appended();
        loop {
            let notified = wake.notified();
            match step(&state).await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "alert reactor failed; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    })
}

/// Handles one batch; `false` when there was nothing new.
async fn step(state: &AppState) -> anyhow::Result<bool> {
    let checkpoint = state.read.reactor_checkpoint(ALERTS).await?;
    let events = state.store.read_after(checkpoint, 200).await?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(false);
    };
    for e in events.iter().filter(|e| e.aggregate_type == "health_record") {
        let Ok(HealthRecordEvent::HealthRecordCreated(content)) = e.decode::<HealthRecordEvent>() else {
            continue;
        };
        if content.alerts.is_empty() {
            continue;
        }
        let record = e.aggregate_id.parse()?;
        let mut ctx = RequestMeta::system("RaiseAlertRequest");
        if let Some(c) = e.metadata.get("correlation_id") {
            ctx.metadata.insert("correlation_id".into(), c.clone());
        }
        raise_alert(state, record, &content, ctx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    state.read.set_reactor_checkpoint(ALERTS, last).await?;
    Ok(true)
}
