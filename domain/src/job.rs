//! Scheduled jobs: one `JobRun` aggregate per job and period (aggregate id
//! `"{job}:{period}"`, e.g. `visit_reminders:2026-12-03`, `weekly_report:2026-W49`).
//! Running a period is a command on it: the first run records `JobRan` with
//! what the run found (the reminders to send, the expiring certificates, …);
//! any later run of the same period is refused. Two instances that race both
//! try to append the aggregate's first event and the event store lets one win,
//! so a period runs once however many servers, restarts or operators try.
//! The outcome holds ids, dates and times only: no personal data in the event.
//!
//! A run that finds many items (a day's reminders for thousands of recorders)
//! records them in parts: `JobRan` with the first part and the whole count,
//! then `JobRanContinued` events with the rest, in order, all in the same
//! commit. Every event stays under [`MAX_PART_BYTES`]: one unbounded event
//! would exceed a Kafka broker's message limit (1 MB by default) and hold the
//! relay at it, and every follower would parse it whole (a 7 MB `JobRan` at
//! 1,000,000 patients took the server from 75 to 270 MB).

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{FileId, PatientId, SubscriptionId, UserId, VisitId};

/// The most weight one part of a run's outcome holds ([`JobOutcome::into_parts`]):
/// an item weighs 1, a reminder 1 plus its visits.
pub const PART_WEIGHT: usize = 1_000;

/// What one event of a run stays under, serialized (with [`PART_WEIGHT`] and
/// the largest item, a reminder's visit, about 140 bytes as JSON).
pub const MAX_PART_BYTES: usize = 256 * 1024;

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

impl JobOutcome {
    /// How many items the run's list holds (recorders reminded, certificates,
    /// subscriptions, uploads, visits); none for the weekly report.
    pub fn items(&self) -> usize {
        match self {
            JobOutcome::VisitReminders { reminders, .. } => reminders.len(),
            JobOutcome::CertificateExpiry { expiring, .. } => expiring.len(),
            JobOutcome::SubscriptionExpiry { expired } => expired.len(),
            JobOutcome::FileCleanup { discarded } => discarded.len(),
            JobOutcome::MissedVisits { missed, .. } => missed.len(),
            JobOutcome::WeeklyReport { .. } => 0,
        }
    }

    /// The outcome cut into parts of at most [`PART_WEIGHT`] (a reminder,
    /// however many visits it lists, stays whole: its recorder is told once),
    /// in order, each of the same kind. The admins are in the first part
    /// only (they are told once, of the whole count); the day and the week
    /// are in every part. One part when it fits, and never none.
    pub fn into_parts(self) -> Vec<JobOutcome> {
        fn cut<T>(items: Vec<T>, weight: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
            let (mut parts, mut current, mut held) = (Vec::new(), Vec::new(), 0);
            for item in items {
                let w = weight(&item);
                if held > 0 && held + w > PART_WEIGHT {
                    parts.push(std::mem::take(&mut current));
                    held = 0;
                }
                held += w;
                current.push(item);
            }
            parts.push(current);
            parts
        }
        let first_only = |admins: &Vec<UserId>, i: usize| if i == 0 { admins.clone() } else { Vec::new() };
        match self {
            JobOutcome::VisitReminders { day, reminders } => cut(reminders, |r| 1 + r.visits.len())
                .into_iter()
                .map(|reminders| JobOutcome::VisitReminders { day, reminders })
                .collect(),
            JobOutcome::CertificateExpiry { expiring, admins } => cut(expiring, |_| 1)
                .into_iter()
                .enumerate()
                .map(|(i, expiring)| JobOutcome::CertificateExpiry {
                    expiring,
                    admins: first_only(&admins, i),
                })
                .collect(),
            JobOutcome::SubscriptionExpiry { expired } => cut(expired, |_| 1)
                .into_iter()
                .map(|expired| JobOutcome::SubscriptionExpiry { expired })
                .collect(),
            JobOutcome::FileCleanup { discarded } => cut(discarded, |_| 1)
                .into_iter()
                .map(|discarded| JobOutcome::FileCleanup { discarded })
                .collect(),
            JobOutcome::MissedVisits { day, missed, admins } => cut(missed, |_| 1)
                .into_iter()
                .enumerate()
                .map(|(i, missed)| JobOutcome::MissedVisits {
                    day,
                    missed,
                    admins: first_only(&admins, i),
                })
                .collect(),
            weekly @ JobOutcome::WeeklyReport { .. } => vec![weekly],
        }
    }
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
        /// What the run found, or its first part when `total` is set.
        outcome: JobOutcome,
        /// Set when the outcome is recorded in parts: how many items the
        /// run's list holds in all ([`JobOutcome::items`]); the other parts
        /// follow as `JobRanContinued`, in the same commit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<usize>,
    },
    /// The next part of a run's outcome, of the same kind as `JobRan`'s.
    JobRanContinued { outcome: JobOutcome },
}

impl DomainEvent for JobRunEvent {
    fn event_type(&self) -> String {
        match self {
            JobRunEvent::JobRan { .. } => "JobRan",
            JobRunEvent::JobRanContinued { .. } => "JobRanContinued",
        }
        .into()
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
        let items = outcome.items();
        let parts = outcome.into_parts();
        let total = (parts.len() > 1).then_some(items);
        for (i, outcome) in parts.into_iter().enumerate() {
            let event = match i {
                0 => JobRunEvent::JobRan {
                    job: job.clone(),
                    period: period.clone(),
                    at,
                    outcome,
                    total,
                },
                _ => JobRunEvent::JobRanContinued { outcome },
            };
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: JobRunEvent) {
        match event {
            JobRunEvent::JobRan { job, period, .. } => self.ran = Some((job, period)),
            JobRunEvent::JobRanContinued { .. } => {}
        }
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
            total: None,
        }
    }

    #[test]
    fn it_should_record_the_first_run_of_a_period() {
        T::with(())
            .given_no_previous_events()
            .when(run())
            .then_expect_events(vec![ran()]);
    }

    /// Reminders for `recorders` recorders with `visits` visits each.
    fn reminders(recorders: usize, visits: usize) -> JobOutcome {
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        JobOutcome::VisitReminders {
            day,
            reminders: (0..recorders)
                .map(|r| Reminder {
                    recorder_id: UserId(uuid::Uuid::from_u128(r as u128)),
                    visits: (0..visits)
                        .map(|v| RemindedVisit {
                            visit_id: VisitId(uuid::Uuid::from_u128((r * visits + v) as u128)),
                            patient_id: PatientId(uuid::Uuid::from_u128(v as u128)),
                            date: day,
                            time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The events a run records, as the store would keep them.
    fn recorded(outcome: JobOutcome) -> Vec<JobRunEvent> {
        T::with(())
            .given_no_previous_events()
            .when(JobRunCommand::Run {
                job: "visit_reminders".into(),
                period: "2026-12-03".into(),
                at: at(),
                outcome,
            })
            .inspect_result()
            .unwrap()
    }

    #[test]
    fn it_should_record_a_large_run_in_events_of_bounded_size() {
        // 5,000 recorders with ten visits each: a day at 1,000,000 patients,
        // which made one `JobRan` of 7 MB (over a Kafka broker's default
        // 1 MB message limit, and a 270 MB peak in every follower).
        let whole = reminders(5_000, 10);
        let events = recorded(whole.clone());
        assert!(events.len() > 1, "split into several events");
        for e in &events {
            let bytes = serde_json::to_vec(e).unwrap().len();
            assert!(bytes <= MAX_PART_BYTES, "an event of {bytes} bytes");
        }
        // The parts, in order, are the whole; the first says how many there are in all.
        let JobRunEvent::JobRan { outcome, total, .. } = &events[0] else {
            panic!("the run's first event is JobRan: {:?}", events[0]);
        };
        assert_eq!(*total, Some(5_000));
        let mut joined = match outcome {
            JobOutcome::VisitReminders { reminders, .. } => reminders.clone(),
            other => panic!("{other:?}"),
        };
        for e in &events[1..] {
            match e {
                JobRunEvent::JobRanContinued {
                    outcome: JobOutcome::VisitReminders { reminders, day },
                } => {
                    assert_eq!(day, &NaiveDate::from_ymd_opt(2026, 12, 4).unwrap());
                    joined.extend(reminders.iter().cloned());
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            JobOutcome::VisitReminders {
                day: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
                reminders: joined
            },
            whole
        );
    }

    #[test]
    fn it_should_record_a_small_run_in_one_event() {
        let events = recorded(reminders(3, 10));
        assert_eq!(events.len(), 1);
        assert!(matches!(&events[0], JobRunEvent::JobRan { total: None, .. }));
    }

    #[test]
    fn it_should_tell_the_admins_once_of_the_whole_count() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let admin = UserId(uuid::Uuid::from_u128(u128::MAX));
        let missed: Vec<MissedVisit> = (0..10_000u128)
            .map(|i| MissedVisit {
                visit_id: VisitId(uuid::Uuid::from_u128(i)),
                recorder_id: UserId(uuid::Uuid::from_u128(i % 7)),
                date: day,
            })
            .collect();
        let events = recorded(JobOutcome::MissedVisits {
            day,
            missed: missed.clone(),
            admins: vec![admin],
        });
        assert!(events.len() > 1);
        let mut joined = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let (JobRunEvent::JobRan {
                outcome: JobOutcome::MissedVisits { missed, admins, .. },
                ..
            }
            | JobRunEvent::JobRanContinued {
                outcome: JobOutcome::MissedVisits { missed, admins, .. },
            }) = e
            else {
                panic!("{e:?}");
            };
            assert_eq!(admins.len(), usize::from(i == 0), "the admins in the first part only");
            joined.extend(missed.iter().cloned());
        }
        assert_eq!(joined, missed);
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
