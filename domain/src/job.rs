//! Scheduled jobs: one `JobRun` aggregate per job and period (aggregate id
//! `"{job}:{period}"`, e.g. `visit_reminders:2026-12-03`, `weekly_report:2026-W49`).
//! Running a period is a command on it: the first run records `JobRan` with
//! what the run found (the reminders to send, the expiring certificates, …);
//! any later run of the same period is refused. Two instances that race both
//! try to append the aggregate's first event and the event store lets one win,
//! so a period runs once however many servers, restarts or operators try.
//! The outcome holds ids, dates and times only: no personal data in the event.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{FileId, PatientId, SubscriptionId, UserId, VisitId};

/// A visit listed in a recorder's reminder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemindedVisit {
    pub visit_id: VisitId,
    pub patient_id: PatientId,
    pub date: NaiveDate,
    pub time: NaiveTime,
}

/// One recorder's reminder: tomorrow's scheduled and confirmed visits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminder {
    pub recorder_id: UserId,
    pub visits: Vec<RemindedVisit>,
}

/// A recorder whose certificate expires soon (or has expired).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpiringCertificate {
    pub recorder_id: UserId,
    pub expires_on: NaiveDate,
}

/// A visit flagged missed by the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissedVisit {
    pub visit_id: VisitId,
    pub recorder_id: UserId,
    pub date: NaiveDate,
}

/// What one run found and did; the notifications follow from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum JobOutcome {
    /// One reminder per recorder with visits on `day`.
    VisitReminders { day: NaiveDate, reminders: Vec<Reminder> },
    /// Recorders told of their certificate, and the admins given the summary.
    CertificateExpiry {
        expiring: Vec<ExpiringCertificate>,
        admins: Vec<UserId>,
    },
    /// Subscriptions the run expired.
    SubscriptionExpiry { expired: Vec<SubscriptionId> },
    /// Unattached uploads the run discarded.
    FileCleanup { discarded: Vec<FileId> },
    /// Visits of `day` flagged missed, and the admins told.
    MissedVisits {
        day: NaiveDate,
        missed: Vec<MissedVisit>,
        admins: Vec<UserId>,
    },
    /// The week's report is ready; the admins told.
    WeeklyReport { week: String, admins: Vec<UserId> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobRunCommand {
    /// Records that `job` ran for `period` as of `at`, with its outcome.
    Run {
        job: String,
        period: String,
        at: DateTime<Utc>,
        outcome: JobOutcome,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JobRunEvent {
    JobRan {
        job: String,
        period: String,
        /// The instant the run stands for (its scheduled time, or `--at`).
        at: DateTime<Utc>,
        outcome: JobOutcome,
    },
}

impl DomainEvent for JobRunEvent {
    fn event_type(&self) -> String {
        "JobRan".into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct JobRun {
    pub ran: Option<(String, String)>,
}

/// Every way a job run refuses a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobRunError {
    /// The period ran already (409; the CLI reports it and succeeds).
    #[error("job {job} already ran for {period}")]
    AlreadyRan { job: String, period: String },
}

impl Aggregate for JobRun {
    const TYPE: &'static str = "job_run";
    type Command = JobRunCommand;
    type Event = JobRunEvent;
    type Error = JobRunError;
    type Services = ();

    async fn handle(&mut self, command: JobRunCommand, _: &(), sink: &EventSink<Self>) -> Result<(), JobRunError> {
        let JobRunCommand::Run {
            job,
            period,
            at,
            outcome,
        } = command;
        if let Some((job, period)) = &self.ran {
            return Err(JobRunError::AlreadyRan {
                job: job.clone(),
                period: period.clone(),
            });
        }
        sink.write(
            JobRunEvent::JobRan {
                job,
                period,
                at,
                outcome,
            },
            self,
        )
        .await;
        Ok(())
    }

    fn apply(&mut self, event: JobRunEvent) {
        let JobRunEvent::JobRan { job, period, .. } = event;
        self.ran = Some((job, period));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<JobRun>;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z").unwrap().to_utc()
    }
    fn outcome() -> JobOutcome {
        JobOutcome::VisitReminders {
            day: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
            reminders: vec![Reminder {
                recorder_id: UserId::default(),
                visits: vec![],
            }],
        }
    }
    fn run() -> JobRunCommand {
        JobRunCommand::Run {
            job: "visit_reminders".into(),
            period: "2026-12-03".into(),
            at: at(),
            outcome: outcome(),
        }
    }
    fn ran() -> JobRunEvent {
        JobRunEvent::JobRan {
            job: "visit_reminders".into(),
            period: "2026-12-03".into(),
            at: at(),
            outcome: outcome(),
        }
    }

    #[test]
    fn it_should_record_the_first_run_of_a_period() {
        T::with(())
            .given_no_previous_events()
            .when(run())
            .then_expect_events(vec![ran()]);
    }

    #[test]
    fn it_should_not_run_a_period_twice() {
        T::with(())
            .given(vec![ran()])
            .when(run())
            .then_expect_error(JobRunError::AlreadyRan {
                job: "visit_reminders".into(),
                period: "2026-12-03".into(),
            });
    }
}
