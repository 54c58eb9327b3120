//! The timed side of alerts: every `CARELOG_ALERT_ESCALATION_TICK_SECS`, the
//! instance holding the `alert-escalation` leader lock escalates the alerts
//! whose wait for an acknowledgement is over (`app::alerts::escalate_due`).
//!
//! Time drives it, not events, so it is a loop rather than a follower; it
//! reads what is due from the read model, so after downtime the first pass
//! escalates everything that fell due meanwhile. The lock makes one instance
//! do it; were two to try (a lock lost mid-pass), each escalation names the
//! level it escalates from and the alert aggregate records it once.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::runner::LeaderLock;
use crate::state::AppState;

/// The leader lock's name.
const LOCK: &str = "alert-escalation";

/// Starts the escalation loop.
pub fn start(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _lock = LeaderLock::acquire(&state.store, LOCK).await;
        let every = state.settings.alerts.escalation_tick;
        tracing::info!(every_secs = every.as_secs(), "escalating unacknowledged alerts");
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match crate::app::alerts::escalate_due(&state, chrono::Utc::now()).await {
                Ok(escalated) if !escalated.is_empty() => {
                    tracing::info!(count = escalated.len(), "alerts escalated");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = ?e, "alert escalation failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })
}
