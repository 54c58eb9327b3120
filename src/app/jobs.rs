//! The scheduled jobs as use cases: each runs one period "as if at" an
//! instant, and records the run as the first event of its `JobRun` aggregate
//! (`"{job}:{period}"`), which refuses a second run of the period.
//!
//! Jobs that change other aggregates (expire subscriptions, flag missed
//! visits, discard uploads) sweep everything due as of the instant with
//! idempotent commands first, then record the run: a crash in between leaves
//! the period unrecorded and the next run sweeps again, changing only what is
//! still due. Jobs that only notify (reminders, certificates, the weekly
//! report) carry their recipients in the `JobRan` event itself, whose
//! notifications `projections::orders::notices` derives: they are sent once,
//! with the run, or not at all.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use domain::file::{FileCommand, StoredFile};
use domain::ids::UserId;
use domain::job::{
    ExpiringCertificate, JobOutcome, JobRun, JobRunCommand, JobRunError, MissedVisit, RemindedVisit, Reminder,
};
use domain::subscription::{Subscription, SubscriptionCommand};
use domain::visit::{Visit, VisitCommand};
use domain::DomainError;

use crate::app::error::AppError;
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};
use crate::store::CommandError;
use domain::user::Role;

/// How many items one run sweeps at most (the rest go to the next run).
const SWEEP_LIMIT: i64 = 1000;
/// How many days before its due date a recorder hears of their certificate.
pub const CERTIFICATE_NOTICE_DAYS: u64 = 30;

/// The scheduled jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    VisitReminders,
    CertificateExpiry,
    SubscriptionExpiry,
    FileCleanup,
    MissedVisits,
    WeeklyReport,
}

impl Job {
    pub const ALL: [Job; 6] = [
        Job::VisitReminders,
        Job::CertificateExpiry,
        Job::SubscriptionExpiry,
        Job::FileCleanup,
        Job::MissedVisits,
        Job::WeeklyReport,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::VisitReminders => "visit_reminders",
            Job::CertificateExpiry => "certificate_expiry",
            Job::SubscriptionExpiry => "subscription_expiry",
            Job::FileCleanup => "file_cleanup",
            Job::MissedVisits => "missed_visits",
            Job::WeeklyReport => "weekly_report",
        }
    }

    /// Its schedule, a cron expression (minute hour day-of-month month
    /// day-of-week) in the configured timezone.
    pub fn schedule(self) -> &'static str {
        match self {
            Job::VisitReminders => "0 20 * * *",
            Job::CertificateExpiry => "0 9 * * *",
            Job::SubscriptionExpiry => "5 0 * * *",
            Job::FileCleanup => "0 2 * * *",
            Job::MissedVisits => "10 0 * * *",
            Job::WeeklyReport => "0 8 * * SUN",
        }
    }

    pub fn weekly(self) -> bool {
        self == Job::WeeklyReport
    }

    /// The period a run as of `at` stands for: its local date, or its ISO
    /// week (`2026-W49`) for a weekly job.
    pub fn period(self, at: DateTime<Utc>, tz: Tz) -> String {
        let day = at.with_timezone(&tz).date_naive();
        if self.weekly() {
            iso_week(day)
        } else {
            day.to_string()
        }
    }

    /// The `JobRun` aggregate id of a period.
    pub fn run_id(self, period: &str) -> String {
        format!("{}:{period}", self.name())
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Job {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Job::ALL.into_iter().find(|j| j.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Job::ALL.iter().map(|j| j.name()).collect();
            format!("unknown job {s:?}; known: {}", names.join(", "))
        })
    }
}

/// `YYYY-Www` of a date.
pub fn iso_week(day: NaiveDate) -> String {
    let w = day.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// The Monday and Sunday of an ISO week written `YYYY-Www`.
pub fn parse_iso_week(raw: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (year, week) = raw.split_once("-W")?;
    if year.len() != 4 || week.len() != 2 {
        return None;
    }
    let monday = NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, chrono::Weekday::Mon)?;
    Some((monday, monday.checked_add_days(Days::new(6))?))
}

/// What running a period did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunResult {
    /// This call ran the period; a one-line summary.
    Ran { period: String, summary: String },
    /// The period had run already (here or in another instance): nothing done.
    AlreadyRan { period: String },
}

/// Runs `job` for the period of `at`, as if at `at`; once per period.
pub async fn run(state: &AppState, job: Job, at: DateTime<Utc>) -> anyhow::Result<RunResult> {
    let tz = state.settings.field_work.timezone;
    let period = job.period(at, tz);
    let id = job.run_id(&period);
    if let Some((JobRun { ran: Some(_) }, _)) = state.store.load::<JobRun>(&id).await? {
        return Ok(RunResult::AlreadyRan { period });
    }
    let today = at.with_timezone(&tz).date_naive();
    let outcome = match job {
        Job::VisitReminders => visit_reminders(state, today).await?,
        Job::CertificateExpiry => certificate_expiry(state, today).await?,
        Job::SubscriptionExpiry => subscription_expiry(state, today).await?,
        Job::FileCleanup => file_cleanup(state, at).await?,
        Job::MissedVisits => missed_visits(state, today).await?,
        Job::WeeklyReport => JobOutcome::WeeklyReport {
            week: period.clone(),
            admins: admins(state).await?,
        },
    };
    let summary = projections::jobs::summary(&outcome, None);
    let command = JobRunCommand::Run {
        job: job.name().into(),
        period: period.clone(),
        at,
        outcome,
    };
    match state
        .store
        .execute::<JobRun>(&id, command, &RequestMeta::system("RunJob"))
        .await
    {
        Ok(committed) => {
            crate::metrics::job_ran(job.name());
            state.waiter.wait_for(committed.position).await;
            Ok(RunResult::Ran { period, summary })
        }
        Err(CommandError::Domain(DomainError::JobRun(JobRunError::AlreadyRan { .. }))) => {
            Ok(RunResult::AlreadyRan { period })
        }
        Err(e) => Err(anyhow::anyhow!("recording the run of {job} for {period}: {e}")),
    }
}

async fn admins(state: &AppState) -> anyhow::Result<Vec<UserId>> {
    Ok(state.read().await.users().active_admins().await?)
}

/// Tomorrow's scheduled and confirmed visits, one reminder per recorder.
async fn visit_reminders(state: &AppState, today: NaiveDate) -> anyhow::Result<JobOutcome> {
    let day = today.succ_opt().unwrap_or(today);
    // By recorder in the order of their ids' text, as the read model sorts them.
    let mut by: BTreeMap<String, (UserId, Vec<RemindedVisit>)> = BTreeMap::new();
    for v in state.read().await.jobs().due_visits_on(day).await? {
        let Ok(time) = chrono::NaiveTime::parse_from_str(&v.time, "%H:%M") else {
            continue;
        };
        by.entry(v.recorder_id.to_string())
            .or_insert_with(|| (v.recorder_id, Vec::new()))
            .1
            .push(RemindedVisit {
                visit_id: v.visit_id,
                patient_id: v.patient_id,
                date: day,
                time,
            });
    }
    let reminders = by
        .into_values()
        .map(|(recorder_id, visits)| Reminder { recorder_id, visits })
        .collect();
    Ok(JobOutcome::VisitReminders { day, reminders })
}

/// Recorders whose certificate expires within 30 days, and the admins.
async fn certificate_expiry(state: &AppState, today: NaiveDate) -> anyhow::Result<JobOutcome> {
    let until = today
        .checked_add_days(Days::new(CERTIFICATE_NOTICE_DAYS))
        .unwrap_or(today);
    let expiring = state
        .read()
        .await
        .jobs()
        .certificates_expiring(today, until)
        .await?
        .into_iter()
        .map(|(recorder_id, expires_on)| ExpiringCertificate {
            recorder_id,
            expires_on,
        })
        .collect();
    Ok(JobOutcome::CertificateExpiry {
        expiring,
        admins: admins(state).await?,
    })
}

/// Expires every active or paused subscription whose end date is before today.
async fn subscription_expiry(state: &AppState, today: NaiveDate) -> anyhow::Result<JobOutcome> {
    let mut expired = Vec::new();
    for sid in state
        .read()
        .await
        .jobs()
        .subscriptions_ended_before(today, SWEEP_LIMIT)
        .await?
    {
        let id = sid.to_string();
        match state
            .store
            .execute::<Subscription>(
                &id,
                SubscriptionCommand::Expire { today },
                &RequestMeta::system("ExpireSubscription"),
            )
            .await
        {
            Ok(c) => {
                if c.position > 0 {
                    expired.push(sid);
                }
            }
            Err(e) => tracing::warn!(subscription = %id, error = %e, "subscription not expired"),
        }
    }
    Ok(JobOutcome::SubscriptionExpiry { expired })
}

/// Flags every visit still scheduled or confirmed after its day as missed.
async fn missed_visits(state: &AppState, today: NaiveDate) -> anyhow::Result<JobOutcome> {
    let mut missed = Vec::new();
    for visit_id in state.read().await.jobs().open_visits_before(today, SWEEP_LIMIT).await? {
        let id = visit_id.to_string();
        let Some((Visit { plan: Some(plan), .. }, _)) = state.store.load::<Visit>(&id).await? else {
            continue;
        };
        match state
            .store
            .execute::<Visit>(
                &id,
                VisitCommand::MarkMissed { today },
                &RequestMeta::system("MarkVisitMissed"),
            )
            .await
        {
            Ok(c) => {
                if c.position > 0 {
                    missed.push(MissedVisit {
                        visit_id,
                        recorder_id: plan.recorder_id,
                        date: plan.scheduled_date,
                    });
                }
            }
            Err(e) => tracing::warn!(visit = %id, error = %e, "visit not flagged missed"),
        }
    }
    Ok(JobOutcome::MissedVisits {
        day: today.pred_opt().unwrap_or(today),
        missed,
        admins: admins(state).await?,
    })
}

/// Discards every upload attached to no record for a day, then deletes its
/// bytes (after the event commits; a crash between leaves bytes the next run
/// deletes again).
async fn file_cleanup(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<JobOutcome> {
    let grace = TimeDelta::hours(domain::file::UNATTACHED_GRACE_HOURS);
    let mut discarded = Vec::new();
    for f in state
        .read()
        .await
        .jobs()
        .unattached_files(now - grace, now - grace * 2, SWEEP_LIMIT)
        .await?
    {
        let file_id = f.id;
        if !f.discarded {
            let Ok(uploaded_at) = DateTime::parse_from_rfc3339(&f.created_at) else {
                continue;
            };
            let command = FileCommand::Discard {
                uploaded_at: uploaded_at.to_utc(),
                attached: state.read().await.files().attached(file_id).await?,
                now,
            };
            match state
                .store
                .execute::<StoredFile>(&f.id.to_string(), command, &RequestMeta::system("DiscardFile"))
                .await
            {
                Ok(c) => {
                    if c.position > 0 {
                        discarded.push(file_id);
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %f.id, error = %e, "upload not discarded");
                    continue;
                }
            }
        }
        for key in std::iter::once(&f.storage_key).chain(f.thumbnail_key.as_ref()) {
            if let Err(e) = state.blobs.delete(key).await {
                tracing::warn!(file = %f.id, error = %e, "discarded upload not deleted from storage; the next run retries");
            }
        }
    }
    Ok(JobOutcome::FileCleanup { discarded })
}

/// `GET /reports/weekly`: admins get the agency's totals and every
/// recorder's, a recorder their own; others are refused. `week` defaults to
/// the current one.
pub async fn weekly_report(
    state: &AppState,
    p: &Principal,
    week: Option<&str>,
) -> Result<projections::jobs::WeeklyReport, AppError> {
    p.require(&[Role::Admin, Role::Recorder])?;
    let tz = state.settings.field_work.timezone;
    let week = match week.map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => w.to_string(),
        None => iso_week(state.today()),
    };
    let (monday, sunday, bounds) =
        week_bounds(&week, tz).ok_or_else(|| AppError::field("week", "应为YYYY-Www格式的ISO周，如2026-W49"))?;
    let recorder = p.is(Role::Recorder).then_some(p.user_id);
    Ok(state
        .read()
        .await
        .jobs()
        .weekly_report(&week, monday, sunday, bounds, recorder)
        .await?)
}

/// A week's Monday and Sunday (local dates), and the same as `[start, end)` instants.
pub type WeekBounds = (NaiveDate, NaiveDate, (DateTime<Utc>, DateTime<Utc>));

/// The weekly report of `week` (`YYYY-Www`): its local days, and the same as instants.
pub fn week_bounds(week: &str, tz: Tz) -> Option<WeekBounds> {
    let (monday, sunday) = parse_iso_week(week)?;
    let start = crate::app::evv::day_start(monday, tz);
    let end = crate::app::evv::day_start(sunday.succ_opt()?, tz);
    Some((monday, sunday, (start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_local_dates_and_iso_weeks() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-12-05 17:00 UTC is Sunday 2026-12-06 01:00 in Shanghai.
        let at = DateTime::parse_from_rfc3339("2026-12-05T17:00:00Z").unwrap().to_utc();
        assert_eq!(Job::VisitReminders.period(at, tz), "2026-12-06");
        assert_eq!(Job::WeeklyReport.period(at, tz), "2026-W49");
        assert_eq!(Job::WeeklyReport.run_id("2026-W49"), "weekly_report:2026-W49");
    }

    #[test]
    fn iso_weeks_parse_to_their_monday_and_sunday() {
        let (mon, sun) = parse_iso_week("2026-W49").unwrap();
        assert_eq!(mon, NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
        assert_eq!(sun, NaiveDate::from_ymd_opt(2026, 12, 6).unwrap());
        for bad in ["2026-W54", "2026W49", "26-W49", "2026-W4", "2026-W00", ""] {
            assert_eq!(parse_iso_week(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_job_has_a_name_that_parses_back() {
        for job in Job::ALL {
            assert_eq!(job.name().parse::<Job>(), Ok(job));
            assert!(job.schedule().parse::<croner::Cron>().is_ok(), "{job}");
        }
    }
}
