//! Home visits ("appointments" in the API): schedule, confirm, reschedule,
//! cancel, complete. Only legal transitions; the history of reschedules stays
//! in the events.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{HealthRecordId, PatientId, SubscriptionId, UserId};

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

fn check_time(date: NaiveDate, time: NaiveTime, ctx: &ScheduleContext) -> Result<(), DomainError> {
    if date.and_time(time) < ctx.now {
        return Err(DomainError::field("scheduled_time", "预约时间不能早于当前时间"));
    }
    Ok(())
}

fn check_quota(kind: VisitType, ctx: &ScheduleContext) -> Result<(), DomainError> {
    if kind == VisitType::Regular && ctx.regular_visits_that_month >= ctx.monthly_quota {
        return Err(DomainError::conflict(format!(
            "本月常规上门次数已达套餐上限（{}次）",
            ctx.monthly_quota
        )));
    }
    Ok(())
}

impl Aggregate for Visit {
    const TYPE: &'static str = "appointment";
    type Command = VisitCommand;
    type Event = VisitEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: VisitCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        let Some(plan) = &self.plan else {
            let VisitCommand::Schedule { plan, context } = command else {
                return Err(DomainError::NotFound("appointment"));
            };
            check_time(plan.scheduled_date, plan.scheduled_time, &context)?;
            check_quota(plan.appointment_type, &context)?;
            sink.write(VisitEvent::VisitScheduled(plan), self).await;
            return Ok(());
        };
        use VisitStatus::*;
        let illegal = |what: &str| {
            Err(DomainError::conflict(format!(
                "当前状态（{}）不能{what}",
                self.status.as_str()
            )))
        };
        let event = match command {
            VisitCommand::Schedule { .. } => return Err(DomainError::conflict("预约已存在")),
            VisitCommand::Confirm => match self.status {
                Scheduled => VisitEvent::VisitConfirmed,
                Confirmed => return Ok(()),
                _ => return illegal("确认"),
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
                _ => return illegal("改期"),
            },
            VisitCommand::Cancel { reason } => match self.status {
                Scheduled | Confirmed => VisitEvent::VisitCancelled { reason },
                _ => return illegal("取消"),
            },
            VisitCommand::Complete { record } => match self.status {
                Scheduled | Confirmed => match record.or(self.health_record_id) {
                    Some(health_record_id) => VisitEvent::VisitCompleted { health_record_id },
                    None => return Err(DomainError::conflict("完成上门前须先提交健康记录")),
                },
                _ => return illegal("完成"),
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

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }
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

    #[test]
    fn it_should_schedule_a_visit_in_the_future() {
        TestFramework::<Visit>::with(())
            .given_no_previous_events()
            .when(VisitCommand::Schedule {
                plan: plan(VisitType::Regular, "2026-03-02"),
                context: ctx(0),
            })
            .then_expect_events(vec![VisitEvent::VisitScheduled(plan(VisitType::Regular, "2026-03-02"))]);
    }

    #[test]
    fn it_should_not_schedule_a_visit_in_the_past() {
        TestFramework::<Visit>::with(())
            .given_no_previous_events()
            .when(VisitCommand::Schedule {
                plan: plan(VisitType::Regular, "2026-02-28"),
                context: ctx(0),
            })
            .then_expect_error(DomainError::field("scheduled_time", "预约时间不能早于当前时间"));
    }

    #[test]
    fn it_should_refuse_regular_visits_beyond_the_monthly_quota_but_not_emergencies() {
        let r = TestFramework::<Visit>::with(())
            .given_no_previous_events()
            .when(VisitCommand::Schedule {
                plan: plan(VisitType::Regular, "2026-03-02"),
                context: ctx(4),
            })
            .inspect_result();
        assert!(matches!(r, Err(DomainError::Conflict(_))));
        TestFramework::<Visit>::with(())
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
    fn it_should_not_complete_a_cancelled_visit() {
        let r = TestFramework::<Visit>::with(())
            .given(vec![
                VisitEvent::VisitScheduled(plan(VisitType::Regular, "2026-03-02")),
                VisitEvent::VisitCancelled { reason: None },
            ])
            .when(VisitCommand::Complete {
                record: Some(HealthRecordId::new()),
            })
            .inspect_result();
        assert!(matches!(r, Err(DomainError::Conflict(_))));
    }

    #[test]
    fn it_should_not_complete_a_visit_without_a_health_record() {
        TestFramework::<Visit>::with(())
            .given(vec![VisitEvent::VisitScheduled(plan(VisitType::Regular, "2026-03-02"))])
            .when(VisitCommand::Complete { record: None })
            .then_expect_error(DomainError::conflict("完成上门前须先提交健康记录"));
    }

    #[test]
    fn it_should_keep_the_old_time_when_rescheduling() {
        TestFramework::<Visit>::with(())
            .given(vec![VisitEvent::VisitScheduled(plan(VisitType::Regular, "2026-03-02"))])
            .when(VisitCommand::Reschedule {
                date: d("2026-03-05"),
                time: t("15:30"),
                context: ctx(1),
            })
            .then_expect_events(vec![VisitEvent::VisitRescheduled {
                from_date: d("2026-03-02"),
                from_time: t("10:00"),
                date: d("2026-03-05"),
                time: t("15:30"),
            }]);
    }
}
