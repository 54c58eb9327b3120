//! The scheduled jobs' clock: a loop, in every server, that runs only in the
//! process holding the `scheduled-jobs` leader lock (as `escalation` does).
//! Each tick it works out, from each job's cron schedule (the `croner` crate)
//! in the configured timezone (`CARELOG_TIMEZONE`), the periods due since the
//! job's last recorded run, and runs each once, oldest first, as if at its
//! scheduled instant (`app::jobs::run`). After downtime that catches up every
//! missed period (one per day for a daily job, at most [`CATCH_UP_DAYS`]
//! back); a job that never ran starts with its latest period.
//!
//! Once per period across instances is the `JobRun` aggregate's business: a
//! run is recorded as its first event, so a second leader (a lock lost
//! mid-run) or a restart finds the period taken and does nothing.
//! `CARELOG_JOBS_ENABLED=false` keeps this loop off (`carelog jobs run`
//! still works).

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use tokio::task::JoinHandle;

use crate::app::jobs::{Job, RunResult};
use crate::follower::LeaderLock;
use crate::state::AppState;

/// The leader lock's name.
const LOCK: &str = "scheduled-jobs";
/// How often the loop looks at the clock.
const TICK: Duration = Duration::from_secs(30);
/// How far back missed periods are caught up.
pub const CATCH_UP_DAYS: i64 = 7;

/// The instants `job` was due at after `last` (its last recorded run, if
/// any) and up to `now`, oldest first, one per period; without `last`, only
/// the latest. Never more than [`CATCH_UP_DAYS`] back.
pub fn due(job: Job, now: DateTime<Utc>, tz: Tz, last: Option<DateTime<Utc>>) -> Vec<DateTime<Utc>> {
    let Ok(cron) = Cron::from_str(job.schedule()) else {
        return Vec::new();
    };
    let horizon = now - TimeDelta::days(if job.weekly() { 7 * 5 } else { CATCH_UP_DAYS });
    let from = last.map_or(horizon, |l| l.max(horizon));
    let mut out: Vec<DateTime<Utc>> = Vec::new();
    for at in cron.iter_after(from.with_timezone(&tz)) {
        let at = at.to_utc();
        if at > now {
            break;
        }
        // One run per period: a schedule firing twice in a period runs it once.
        if out.last().is_some_and(|p| job.period(*p, tz) == job.period(at, tz)) {
            continue;
        }
        out.push(at);
    }
    if last.is_none() {
        out = out.pop().into_iter().collect();
    }
    out
}

/// Starts the scheduler loop (not when `CARELOG_JOBS_ENABLED` is false).
pub fn start(state: AppState) -> Option<JoinHandle<()>> {
    if !state.settings.jobs.enabled {
        tracing::info!("scheduled jobs are off (CARELOG_JOBS_ENABLED=false)");
        return None;
    }
    Some(tokio::spawn(async move {
        let _lock = LeaderLock::acquire(&state.store, LOCK).await;
        tracing::info!("running the scheduled jobs");
        let mut done: HashSet<String> = HashSet::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = pass(&state, Utc::now(), &mut done).await {
                tracing::error!(error = ?e, "scheduled jobs failed; retrying at the next tick");
            }
        }
    }))
}

/// Runs every period due as of `now` that `done` does not know ran.
async fn pass(state: &AppState, now: DateTime<Utc>, done: &mut HashSet<String>) -> anyhow::Result<()> {
    let tz = state.settings.field_work.timezone;
    let last_runs = state.read().await.jobs().latest_runs().await?;
    for job in Job::ALL {
        let last = last_runs
            .iter()
            .find(|r| r.job == job.name())
            .and_then(|r| DateTime::parse_from_rfc3339(&r.ran_at).ok())
            .map(|t| t.to_utc());
        for at in due(job, now, tz, last) {
            let id = job.run_id(&job.period(at, tz));
            if done.contains(&id) {
                continue;
            }
            match crate::app::jobs::run(state, job, at).await? {
                RunResult::Ran { period, summary } => {
                    tracing::info!(job = job.name(), %period, %summary, "scheduled job ran");
                }
                RunResult::AlreadyRan { .. } => {}
            }
            done.insert(id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }
    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    #[test]
    fn a_job_that_never_ran_runs_its_latest_period_only() {
        // 2026-12-03 21:00 in Shanghai: today's 20:00 reminder is due.
        let due = due(Job::VisitReminders, utc("2026-12-03T13:00:00Z"), SHANGHAI, None);
        assert_eq!(due, vec![utc("2026-12-03T12:00:00Z")]);
    }

    #[test]
    fn nothing_is_due_before_the_scheduled_time() {
        let last = Some(utc("2026-12-02T12:00:00Z"));
        // 19:59 in Shanghai.
        assert!(due(Job::VisitReminders, utc("2026-12-03T11:59:00Z"), SHANGHAI, last).is_empty());
    }

    #[test]
    fn missed_days_are_caught_up_once_each_oldest_first() {
        let last = Some(utc("2026-11-30T12:00:00Z"));
        let due = due(Job::VisitReminders, utc("2026-12-03T13:00:00Z"), SHANGHAI, last);
        assert_eq!(
            due,
            vec![
                utc("2026-12-01T12:00:00Z"),
                utc("2026-12-02T12:00:00Z"),
                utc("2026-12-03T12:00:00Z")
            ]
        );
    }

    #[test]
    fn catching_up_goes_back_a_week_at_most() {
        let last = Some(utc("2026-01-01T12:00:00Z"));
        let due = due(Job::VisitReminders, utc("2026-12-03T13:00:00Z"), SHANGHAI, last);
        assert_eq!(due.len(), CATCH_UP_DAYS as usize);
    }

    #[test]
    fn the_weekly_report_is_due_on_sunday_morning_local_time() {
        // Sunday 2026-12-06 08:00 in Shanghai is 00:00 UTC.
        let due = due(Job::WeeklyReport, utc("2026-12-06T00:30:00Z"), SHANGHAI, None);
        assert_eq!(due, vec![utc("2026-12-06T00:00:00Z")]);
        assert_eq!(Job::WeeklyReport.period(due[0], SHANGHAI), "2026-W49");
    }
}
