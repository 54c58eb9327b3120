//! Home visits ("appointments" in the API): schedule, confirm, reschedule,
//! cancel, complete. Only legal transitions; the history of reschedules stays
//! in the events.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{HealthRecordId, PatientId, SubscriptionId, UserId};
use crate::validation::Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VisitType {
    #[default]
    Regular,
    Makeup,
    Emergency,
}

impl VisitType {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "regular" => Ok(Self::Regular),
            "makeup" => Ok(Self::Makeup),
            "emergency" => Ok(Self::Emergency),
            _ => Err("应为regular、makeup或emergency".into()),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Regular => "regular",
            Self::Makeup => "makeup",
            Self::Emergency => "emergency",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VisitStatus {
    #[default]
    Scheduled,
    Confirmed,
    Completed,
    Cancelled,
}

impl VisitStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Confirmed => "confirmed",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "scheduled" => Ok(Self::Scheduled),
            "confirmed" => Ok(Self::Confirmed),
            "completed" => Ok(Self::Completed),
            "cancelled" => Ok(Self::Cancelled),
            _ => Err("应为scheduled、confirmed、completed或cancelled".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitPlan {
    pub patient_id: PatientId,
    pub recorder_id: UserId,
    pub subscription_id: SubscriptionId,
    pub scheduled_date: NaiveDate,
    pub scheduled_time: NaiveTime,
    pub appointment_type: VisitType,
    pub notes: Option<String>,
}

/// The facts the server looked up for a schedule command: the local time now,
/// and how many regular visits the package allows and already has that month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleContext {
    pub now: NaiveDateTime,
    pub monthly_quota: u32,
    pub regular_visits_that_month: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VisitCommand {
    Schedule {
        plan: VisitPlan,
        context: ScheduleContext,
    },
    Confirm,
    Reschedule {
        date: NaiveDate,
        time: NaiveTime,
        context: ScheduleContext,
    },
    Cancel {
        reason: Option<String>,
    },
    /// Completes the visit; `record` is the health record taken during it
    /// (`None` uses the one already attached).
    Complete {
        record: Option<HealthRecordId>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VisitEvent {
    VisitScheduled(VisitPlan),
    VisitConfirmed,
    VisitRescheduled {
        from_date: NaiveDate,
        from_time: NaiveTime,
        date: NaiveDate,
        time: NaiveTime,
    },
    VisitCancelled {
        reason: Option<String>,
    },
    VisitCompleted {
        health_record_id: HealthRecordId,
    },
}

impl DomainEvent for VisitEvent {
    fn event_type(&self) -> String {
        match self {
            Self::VisitScheduled(_) => "VisitScheduled",
            Self::VisitConfirmed => "VisitConfirmed",
            Self::VisitRescheduled { .. } => "VisitRescheduled",
            Self::VisitCancelled { .. } => "VisitCancelled",
            Self::VisitCompleted { .. } => "VisitCompleted",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Visit {
    pub plan: Option<VisitPlan>,
    pub status: VisitStatus,
    pub health_record_id: Option<HealthRecordId>,
}

/// What a command asks of an existing visit; names the refused step in
/// [`VisitError::IllegalTransition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitAction {
    Confirm,
    Reschedule,
    Cancel,
    Complete,
}

/// Every way a visit refuses a command. The server's error module gives each
/// its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VisitError {
    /// A time in the past (400, naming `scheduled_time`).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No visit was scheduled under this id (404).
    #[error("no such visit")]
    NotFound,
    /// A second schedule for the same id (409).
    #[error("the visit is already scheduled")]
    AlreadyScheduled,
    /// Only scheduled or confirmed visits move on; cancelled and completed
    /// ones are final (409).
    #[error("a {from:?} visit cannot take {action:?}")]
    IllegalTransition { from: VisitStatus, action: VisitAction },
    /// The package's regular visits for that month are all taken (409);
    /// emergency and make-up visits do not count.
    #[error("the package's {quota} regular visits that month are taken")]
    MonthlyQuotaReached { quota: u32 },
    /// A visit is completed by the health record taken during it (409).
    #[error("a visit cannot be completed without its health record")]
    NoHealthRecord,
}

fn check_time(date: NaiveDate, time: NaiveTime, ctx: &ScheduleContext) -> Result<(), VisitError> {
    if date.and_time(time) < ctx.now {
        return Err(Invalid::field("scheduled_time", "预约时间不能早于当前时间").into());
    }
    Ok(())
}

fn check_quota(kind: VisitType, ctx: &ScheduleContext) -> Result<(), VisitError> {
    if kind == VisitType::Regular && ctx.regular_visits_that_month >= ctx.monthly_quota {
        return Err(VisitError::MonthlyQuotaReached {
            quota: ctx.monthly_quota,
        });
    }
    Ok(())
}

impl Aggregate for Visit {
    const TYPE: &'static str = "appointment";
    type Command = VisitCommand;
    type Event = VisitEvent;
    type Error = VisitError;
    type Services = ();

    async fn handle(&mut self, command: VisitCommand, _: &(), sink: &EventSink<Self>) -> Result<(), VisitError> {
        let Some(plan) = &self.plan else {
            let VisitCommand::Schedule { plan, context } = command else {
                return Err(VisitError::NotFound);
            };
            check_time(plan.scheduled_date, plan.scheduled_time, &context)?;
            check_quota(plan.appointment_type, &context)?;
            sink.write(VisitEvent::VisitScheduled(plan), self).await;
            return Ok(());
        };
        use VisitStatus::*;
        let illegal = |action| {
            Err(VisitError::IllegalTransition {
                from: self.status,
                action,
            })
        };
        let event = match command {
            VisitCommand::Schedule { .. } => return Err(VisitError::AlreadyScheduled),
            VisitCommand::Confirm => match self.status {
                Scheduled => VisitEvent::VisitConfirmed,
                Confirmed => return Ok(()),
                _ => return illegal(VisitAction::Confirm),
            },
            VisitCommand::Reschedule { date, time, context } => match self.status {
                Scheduled | Confirmed => {
                    check_time(date, time, &context)?;
                    let moves_month = (date.year_month()) != plan.scheduled_date.year_month();
                    if moves_month {
                        check_quota(plan.appointment_type, &context)?;
                    }
                    VisitEvent::VisitRescheduled {
                        from_date: plan.scheduled_date,
                        from_time: plan.scheduled_time,
                        date,
                        time,
                    }
                }
                _ => return illegal(VisitAction::Reschedule),
            },
            VisitCommand::Cancel { reason } => match self.status {
                Scheduled | Confirmed => VisitEvent::VisitCancelled { reason },
                _ => return illegal(VisitAction::Cancel),
            },
            VisitCommand::Complete { record } => match self.status {
                Scheduled | Confirmed => match record.or(self.health_record_id) {
                    Some(health_record_id) => VisitEvent::VisitCompleted { health_record_id },
                    None => return Err(VisitError::NoHealthRecord),
                },
                _ => return illegal(VisitAction::Complete),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: VisitEvent) {
        match event {
            VisitEvent::VisitScheduled(plan) => self.plan = Some(plan),
            VisitEvent::VisitConfirmed => self.status = VisitStatus::Confirmed,
            VisitEvent::VisitRescheduled { date, time, .. } => {
                if let Some(p) = self.plan.as_mut() {
                    p.scheduled_date = date;
                    p.scheduled_time = time;
                }
            }
            VisitEvent::VisitCancelled { .. } => self.status = VisitStatus::Cancelled,
            VisitEvent::VisitCompleted { health_record_id } => {
                self.status = VisitStatus::Completed;
                self.health_record_id = Some(health_record_id);
            }
        }
    }
}

trait YearMonth {
    fn year_month(&self) -> (i32, u32);
}

impl YearMonth for NaiveDate {
    fn year_month(&self) -> (i32, u32) {
        use chrono::Datelike;
        (self.year(), self.month())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<Visit>;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }
    /// Now is 2026-03-01 09:00; the package allows 4 regular visits a month.
    fn ctx(used: u32) -> ScheduleContext {
        ScheduleContext {
            now: d("2026-03-01").and_time(t("09:00")),
            monthly_quota: 4,
            regular_visits_that_month: used,
        }
    }
    fn plan(kind: VisitType, date: &str) -> VisitPlan {
        VisitPlan {
            patient_id: PatientId::default(),
            recorder_id: UserId::default(),
            subscription_id: SubscriptionId::default(),
            scheduled_date: d(date),
            scheduled_time: t("10:00"),
            appointment_type: kind,
            notes: None,
        }
    }
    fn scheduled() -> VisitEvent {
        VisitEvent::VisitScheduled(plan(VisitType::Regular, "2026-03-02"))
    }
    fn cancelled() -> VisitEvent {
        VisitEvent::VisitCancelled { reason: None }
    }
    fn completed() -> VisitEvent {
        VisitEvent::VisitCompleted {
            health_record_id: HealthRecordId::default(),
        }
    }
    fn reschedule(date: &str, used: u32) -> VisitCommand {
        VisitCommand::Reschedule {
            date: d(date),
            time: t("15:30"),
            context: ctx(used),
        }
    }
    fn illegal(from: VisitStatus, action: VisitAction) -> VisitError {
        VisitError::IllegalTransition { from, action }
    }
    fn names(r: Result<Vec<VisitEvent>, VisitError>, field: &str) -> bool {
        matches!(r, Err(VisitError::Validation(i)) if i.names(field))
    }

    #[test]
    fn it_should_schedule_a_visit_in_the_future() {
        T::with(())
            .given_no_previous_events()
            .when(VisitCommand::Schedule {
                plan: plan(VisitType::Regular, "2026-03-02"),
                context: ctx(0),
            })
            .then_expect_events(vec![scheduled()]);
    }

    #[test]
    fn it_should_not_schedule_a_visit_in_the_past() {
        let r = T::with(())
            .given_no_previous_events()
            .when(VisitCommand::Schedule {
                plan: plan(VisitType::Regular, "2026-02-28"),
                context: ctx(0),
            })
            .inspect_result();
        assert!(names(r, "scheduled_time"));
    }

    #[test]
    fn it_should_refuse_regular_visits_beyond_the_monthly_quota() {
        T::with(())
            .given_no_previous_events()
            .when(VisitCommand::Schedule {
                plan: plan(VisitType::Regular, "2026-03-02"),
                context: ctx(4),
            })
            .then_expect_error(VisitError::MonthlyQuotaReached { quota: 4 });
    }

    #[test]
    fn it_should_schedule_an_emergency_visit_beyond_the_monthly_quota() {
        T::with(())
            .given_no_previous_events()
            .when(VisitCommand::Schedule {
                plan: plan(VisitType::Emergency, "2026-03-02"),
                context: ctx(4),
            })
            .then_expect_events(vec![VisitEvent::VisitScheduled(plan(
                VisitType::Emergency,
                "2026-03-02",
            ))]);
    }

    #[test]
    fn it_should_not_schedule_the_same_visit_twice() {
        T::with(())
            .given(vec![scheduled()])
            .when(VisitCommand::Schedule {
                plan: plan(VisitType::Regular, "2026-03-03"),
                context: ctx(0),
            })
            .then_expect_error(VisitError::AlreadyScheduled);
    }

    #[test]
    fn it_should_refuse_every_other_command_for_a_visit_never_scheduled() {
        for command in [
            VisitCommand::Confirm,
            reschedule("2026-03-05", 0),
            VisitCommand::Cancel { reason: None },
            VisitCommand::Complete {
                record: Some(HealthRecordId::default()),
            },
        ] {
            T::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(VisitError::NotFound);
        }
    }

    #[test]
    fn it_should_confirm_a_scheduled_visit() {
        T::with(())
            .given(vec![scheduled()])
            .when(VisitCommand::Confirm)
            .then_expect_events(vec![VisitEvent::VisitConfirmed]);
    }

    #[test]
    fn it_should_record_nothing_when_confirming_a_confirmed_visit_again() {
        T::with(())
            .given(vec![scheduled(), VisitEvent::VisitConfirmed])
            .when(VisitCommand::Confirm)
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_refuse_to_confirm_a_cancelled_visit() {
        T::with(())
            .given(vec![scheduled(), cancelled()])
            .when(VisitCommand::Confirm)
            .then_expect_error(illegal(VisitStatus::Cancelled, VisitAction::Confirm));
    }

    #[test]
    fn it_should_keep_the_old_time_when_rescheduling() {
        T::with(())
            .given(vec![scheduled()])
            .when(reschedule("2026-03-05", 1))
            .then_expect_events(vec![VisitEvent::VisitRescheduled {
                from_date: d("2026-03-02"),
                from_time: t("10:00"),
                date: d("2026-03-05"),
                time: t("15:30"),
            }]);
    }

    #[test]
    fn it_should_reschedule_within_the_month_even_when_its_quota_is_used_up() {
        // The visit already holds one of the month's places.
        T::with(())
            .given(vec![scheduled(), VisitEvent::VisitConfirmed])
            .when(reschedule("2026-03-20", 4))
            .then_expect_events(vec![VisitEvent::VisitRescheduled {
                from_date: d("2026-03-02"),
                from_time: t("10:00"),
                date: d("2026-03-20"),
                time: t("15:30"),
            }]);
    }

    #[test]
    fn it_should_refuse_to_reschedule_into_a_month_whose_quota_is_used_up() {
        T::with(())
            .given(vec![scheduled()])
            .when(reschedule("2026-04-02", 4))
            .then_expect_error(VisitError::MonthlyQuotaReached { quota: 4 });
    }

    #[test]
    fn it_should_refuse_to_reschedule_into_the_past() {
        let r = T::with(())
            .given(vec![scheduled()])
            .when(reschedule("2026-02-27", 0))
            .inspect_result();
        assert!(names(r, "scheduled_time"));
    }

    #[test]
    fn it_should_refuse_to_reschedule_a_completed_visit() {
        T::with(())
            .given(vec![scheduled(), completed()])
            .when(reschedule("2026-03-05", 0))
            .then_expect_error(illegal(VisitStatus::Completed, VisitAction::Reschedule));
    }

    #[test]
    fn it_should_cancel_a_confirmed_visit_with_its_reason() {
        T::with(())
            .given(vec![scheduled(), VisitEvent::VisitConfirmed])
            .when(VisitCommand::Cancel {
                reason: Some("家属外出".into()),
            })
            .then_expect_events(vec![VisitEvent::VisitCancelled {
                reason: Some("家属外出".into()),
            }]);
    }

    #[test]
    fn it_should_refuse_to_cancel_a_completed_visit() {
        T::with(())
            .given(vec![scheduled(), completed()])
            .when(VisitCommand::Cancel { reason: None })
            .then_expect_error(illegal(VisitStatus::Completed, VisitAction::Cancel));
    }

    #[test]
    fn it_should_refuse_to_cancel_a_cancelled_visit_again() {
        T::with(())
            .given(vec![scheduled(), cancelled()])
            .when(VisitCommand::Cancel { reason: None })
            .then_expect_error(illegal(VisitStatus::Cancelled, VisitAction::Cancel));
    }

    #[test]
    fn it_should_complete_a_visit_with_its_health_record() {
        let record = HealthRecordId::new();
        T::with(())
            .given(vec![scheduled(), VisitEvent::VisitConfirmed])
            .when(VisitCommand::Complete { record: Some(record) })
            .then_expect_events(vec![VisitEvent::VisitCompleted {
                health_record_id: record,
            }]);
    }

    #[test]
    fn it_should_refuse_to_complete_a_cancelled_visit() {
        T::with(())
            .given(vec![scheduled(), cancelled()])
            .when(VisitCommand::Complete {
                record: Some(HealthRecordId::new()),
            })
            .then_expect_error(illegal(VisitStatus::Cancelled, VisitAction::Complete));
    }

    #[test]
    fn it_should_refuse_to_complete_a_completed_visit_again() {
        T::with(())
            .given(vec![scheduled(), completed()])
            .when(VisitCommand::Complete {
                record: Some(HealthRecordId::new()),
            })
            .then_expect_error(illegal(VisitStatus::Completed, VisitAction::Complete));
    }

    #[test]
    fn it_should_not_complete_a_visit_without_a_health_record() {
        T::with(())
            .given(vec![scheduled()])
            .when(VisitCommand::Complete { record: None })
            .then_expect_error(VisitError::NoHealthRecord);
    }
}
