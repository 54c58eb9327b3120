//! Home visits ("appointments" in the API): schedule, confirm, reschedule,
//! cancel, check in, check out, complete. Only legal transitions; the history
//! of reschedules stays in the events.
//!
//! Electronic visit verification: a check-in (server time and position) moves a
//! scheduled or confirmed visit to `in_progress`; the check-out ends it. The
//! health record taken during the visit is attached to it, and the visit is
//! completed by whichever of the two comes last: the check-out of a visit that
//! has its record, or the record of a visit already checked out. A visit
//! without check-in still completes with its record, as before.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::compliance::{NotCompliant, RecorderStanding};
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
    /// Checked in, not yet checked out.
    InProgress,
    /// Checked out before its health record arrived: the record completes it.
    CheckedOut,
    Completed,
    Cancelled,
    /// Neither completed nor cancelled by the end of its day (the `missed_visits` job).
    Missed,
}

impl VisitStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Confirmed => "confirmed",
            Self::InProgress => "in_progress",
            Self::CheckedOut => "checked_out",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Missed => "missed",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "scheduled" => Ok(Self::Scheduled),
            "confirmed" => Ok(Self::Confirmed),
            "in_progress" => Ok(Self::InProgress),
            "checked_out" => Ok(Self::CheckedOut),
            "completed" => Ok(Self::Completed),
            "cancelled" => Ok(Self::Cancelled),
            "missed" => Ok(Self::Missed),
            _ => Err("应为scheduled、confirmed、in_progress、checked_out、completed、cancelled或missed".into()),
        }
    }
}

/// Where the recorder stood at a check-in or check-out (WGS 84 degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    pub lat: f64,
    pub lng: f64,
}

impl Coordinates {
    /// Latitude −90..90 (naming `lat`), longitude −180..180 (naming `lng`).
    pub fn parse(lat: f64, lng: f64) -> Result<Self, Invalid> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(Invalid::field("lat", "纬度应在-90到90之间"));
        }
        if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
            return Err(Invalid::field("lng", "经度应在-180到180之间"));
        }
        Ok(Self { lat, lng })
    }

    /// Metres to `(lat, lng)` along the great circle, to a tenth of a metre.
    pub fn metres_to(&self, (lat, lng): (f64, f64)) -> f64 {
        (crate::values::haversine_m((self.lat, self.lng), (lat, lng)) * 10.0).round() / 10.0
    }
}

/// One end of a visit as verified: when (server time), where, and how far
/// from the family's home (unknown without home coordinates).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VisitMark {
    pub at: DateTime<Utc>,
    /// Sealed as personal data; reads as `None` once the patient is erased.
    pub location: Option<Coordinates>,
    pub distance_from_home_m: Option<f64>,
}

/// What the server saw at a check-in or check-out: the instant (its clock, or
/// the captured time of an offline command), the recorder's position, and the
/// family's home as `(lat, lng)` when it has one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarkFacts {
    pub at: DateTime<Utc>,
    pub position: Coordinates,
    pub home: Option<(f64, f64)>,
}

impl MarkFacts {
    fn mark(self) -> VisitMark {
        VisitMark {
            at: self.at,
            location: Some(self.position),
            distance_from_home_m: self.home.map(|h| self.position.metres_to(h)),
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
        /// The recorder's standing today: only a compliant recorder is given
        /// a new visit.
        recorder: RecorderStanding,
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
    /// The recorder arrives: a scheduled or confirmed visit begins.
    CheckIn(MarkFacts),
    /// The recorder leaves: a visit in progress ends (and completes, if its
    /// record was taken).
    CheckOut(MarkFacts),
    /// A health record was written for this visit: it completes a visit not in
    /// progress, and is attached to one in progress (its check-out completes it).
    RecordTaken {
        record: HealthRecordId,
    },
    /// The end-of-day check: a scheduled or confirmed visit whose day ended
    /// before `today` (a local date) was missed.
    MarkMissed {
        today: NaiveDate,
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
    VisitCheckedIn(VisitMark),
    VisitCheckedOut(VisitMark),
    /// The record taken while the visit was in progress.
    VisitRecordAttached {
        health_record_id: HealthRecordId,
    },
    /// Not completed or cancelled by the end of `date`, its day.
    VisitMissed {
        date: NaiveDate,
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
            Self::VisitCheckedIn(_) => "VisitCheckedIn",
            Self::VisitCheckedOut(_) => "VisitCheckedOut",
            Self::VisitRecordAttached { .. } => "VisitRecordAttached",
            Self::VisitMissed { .. } => "VisitMissed",
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
    pub check_in: Option<VisitMark>,
    pub check_out: Option<VisitMark>,
}

/// What a command asks of an existing visit; names the refused step in
/// [`VisitError::IllegalTransition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitAction {
    Confirm,
    Reschedule,
    Cancel,
    Complete,
    CheckIn,
    CheckOut,
    MarkMissed,
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
    /// A check-out earlier than its check-in (409; only a captured time can be).
    #[error("a check-out cannot precede its check-in")]
    CheckOutBeforeCheckIn,
    /// The visit already has its health record (409).
    #[error("the visit already has its health record")]
    RecordAlreadyTaken,
    /// The recorder's certificate expired or they are off duty (409, naming why).
    #[error(transparent)]
    RecorderNotCompliant(#[from] NotCompliant),
    /// A visit is missed only once its day is over (409).
    #[error("the visit's day is not over")]
    DayNotOver,
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
            let VisitCommand::Schedule {
                plan,
                context,
                recorder,
            } = command
            else {
                return Err(VisitError::NotFound);
            };
            recorder.ensure_compliant()?;
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
                Scheduled | Confirmed | CheckedOut => match record.or(self.health_record_id) {
                    Some(health_record_id) => VisitEvent::VisitCompleted { health_record_id },
                    None => return Err(VisitError::NoHealthRecord),
                },
                _ => return illegal(VisitAction::Complete),
            },
            VisitCommand::CheckIn(facts) => match self.status {
                Scheduled | Confirmed => VisitEvent::VisitCheckedIn(facts.mark()),
                _ => return illegal(VisitAction::CheckIn),
            },
            VisitCommand::CheckOut(facts) => match (self.status, self.check_in) {
                (InProgress, Some(check_in)) => {
                    if facts.at < check_in.at {
                        return Err(VisitError::CheckOutBeforeCheckIn);
                    }
                    sink.write(VisitEvent::VisitCheckedOut(facts.mark()), self).await;
                    if let Some(health_record_id) = self.health_record_id {
                        sink.write(VisitEvent::VisitCompleted { health_record_id }, self).await;
                    }
                    return Ok(());
                }
                _ => return illegal(VisitAction::CheckOut),
            },
            VisitCommand::RecordTaken { record } => match self.status {
                _ if self.health_record_id.is_some() => return Err(VisitError::RecordAlreadyTaken),
                Scheduled | Confirmed | CheckedOut => VisitEvent::VisitCompleted {
                    health_record_id: record,
                },
                InProgress => VisitEvent::VisitRecordAttached {
                    health_record_id: record,
                },
                _ => return illegal(VisitAction::Complete),
            },
            VisitCommand::MarkMissed { today } => match self.status {
                Missed => return Ok(()),
                Scheduled | Confirmed if plan.scheduled_date < today => VisitEvent::VisitMissed {
                    date: plan.scheduled_date,
                },
                Scheduled | Confirmed => return Err(VisitError::DayNotOver),
                _ => return illegal(VisitAction::MarkMissed),
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
            VisitEvent::VisitCheckedIn(mark) => {
                self.status = VisitStatus::InProgress;
                self.check_in = Some(mark);
            }
            VisitEvent::VisitCheckedOut(mark) => {
                self.status = VisitStatus::CheckedOut;
                self.check_out = Some(mark);
            }
            VisitEvent::VisitRecordAttached { health_record_id } => self.health_record_id = Some(health_record_id),
            VisitEvent::VisitMissed { .. } => self.status = VisitStatus::Missed,
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
    fn schedule(kind: VisitType, date: &str, used: u32) -> VisitCommand {
        VisitCommand::Schedule {
            plan: plan(kind, date),
            context: ctx(used),
            recorder: RecorderStanding::good(d("2026-03-01")),
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

    fn missed() -> VisitEvent {
        VisitEvent::VisitMissed { date: d("2026-03-02") }
    }

    #[test]
    fn it_should_flag_a_scheduled_visit_missed_once_its_day_is_over() {
        T::with(())
            .given(vec![scheduled()])
            .when(VisitCommand::MarkMissed { today: d("2026-03-03") })
            .then_expect_events(vec![missed()]);
    }

    #[test]
    fn it_should_flag_a_confirmed_visit_missed_once_its_day_is_over() {
        T::with(())
            .given(vec![scheduled(), VisitEvent::VisitConfirmed])
            .when(VisitCommand::MarkMissed { today: d("2026-03-03") })
            .then_expect_events(vec![missed()]);
    }

    #[test]
    fn it_should_not_flag_a_visit_missed_on_its_own_day() {
        T::with(())
            .given(vec![scheduled()])
            .when(VisitCommand::MarkMissed { today: d("2026-03-02") })
            .then_expect_error(VisitError::DayNotOver);
    }

    #[test]
    fn it_should_not_flag_a_completed_or_cancelled_visit_missed() {
        for (end, from) in [
            (completed(), VisitStatus::Completed),
            (cancelled(), VisitStatus::Cancelled),
        ] {
            T::with(())
                .given(vec![scheduled(), end])
                .when(VisitCommand::MarkMissed { today: d("2026-03-03") })
                .then_expect_error(illegal(from, VisitAction::MarkMissed));
        }
    }

    #[test]
    fn it_should_record_nothing_when_flagging_a_missed_visit_again() {
        T::with(())
            .given(vec![scheduled(), missed()])
            .when(VisitCommand::MarkMissed { today: d("2026-03-04") })
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_not_check_in_to_a_missed_visit() {
        let r = T::with(())
            .given(vec![scheduled(), missed()])
            .when(VisitCommand::Confirm)
            .inspect_result();
        assert_eq!(r, Err(illegal(VisitStatus::Missed, VisitAction::Confirm)));
    }

    #[test]
    fn it_should_schedule_a_visit_in_the_future() {
        T::with(())
            .given_no_previous_events()
            .when(schedule(VisitType::Regular, "2026-03-02", 0))
            .then_expect_events(vec![scheduled()]);
    }

    #[test]
    fn it_should_not_schedule_a_visit_in_the_past() {
        let r = T::with(())
            .given_no_previous_events()
            .when(schedule(VisitType::Regular, "2026-02-28", 0))
            .inspect_result();
        assert!(names(r, "scheduled_time"));
    }

    #[test]
    fn it_should_not_give_a_new_visit_to_a_recorder_whose_certificate_expired() {
        let recorder = RecorderStanding {
            cert_expiry_date: Some(d("2026-02-28")),
            on_duty: true,
            today: d("2026-03-01"),
        };
        T::with(())
            .given_no_previous_events()
            .when(VisitCommand::Schedule {
                plan: plan(VisitType::Regular, "2026-03-02"),
                context: ctx(0),
                recorder,
            })
            .then_expect_error(VisitError::RecorderNotCompliant(NotCompliant::CertificateExpired {
                expired_on: d("2026-02-28"),
            }));
    }

    #[test]
    fn it_should_not_give_a_new_visit_to_a_recorder_off_duty() {
        let recorder = RecorderStanding {
            on_duty: false,
            ..RecorderStanding::good(d("2026-03-01"))
        };
        T::with(())
            .given_no_previous_events()
            .when(VisitCommand::Schedule {
                plan: plan(VisitType::Emergency, "2026-03-02"),
                context: ctx(0),
                recorder,
            })
            .then_expect_error(VisitError::RecorderNotCompliant(NotCompliant::OffDuty));
    }

    #[test]
    fn it_should_refuse_regular_visits_beyond_the_monthly_quota() {
        T::with(())
            .given_no_previous_events()
            .when(schedule(VisitType::Regular, "2026-03-02", 4))
            .then_expect_error(VisitError::MonthlyQuotaReached { quota: 4 });
    }

    #[test]
    fn it_should_schedule_an_emergency_visit_beyond_the_monthly_quota() {
        T::with(())
            .given_no_previous_events()
            .when(schedule(VisitType::Emergency, "2026-03-02", 4))
            .then_expect_events(vec![VisitEvent::VisitScheduled(plan(
                VisitType::Emergency,
                "2026-03-02",
            ))]);
    }

    #[test]
    fn it_should_not_schedule_the_same_visit_twice() {
        T::with(())
            .given(vec![scheduled()])
            .when(schedule(VisitType::Regular, "2026-03-03", 0))
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

    /// A home in Shanghai, a place about 95 m east of it (95.1 m), and 09:00 / 09:40 UTC.
    const HOME: (f64, f64) = (31.2304, 121.4737);
    fn at(hm: &str) -> DateTime<Utc> {
        d("2026-03-02").and_time(t(hm)).and_utc()
    }
    fn facts(hm: &str, home: Option<(f64, f64)>) -> MarkFacts {
        MarkFacts {
            at: at(hm),
            position: Coordinates::parse(HOME.0, 121.4747).unwrap(),
            home,
        }
    }
    fn mark(hm: &str, distance_from_home_m: Option<f64>) -> VisitMark {
        VisitMark {
            at: at(hm),
            location: Some(Coordinates::parse(HOME.0, 121.4747).unwrap()),
            distance_from_home_m,
        }
    }
    fn checked_in() -> VisitEvent {
        VisitEvent::VisitCheckedIn(mark("09:00", Some(95.1)))
    }
    fn checked_out() -> VisitEvent {
        VisitEvent::VisitCheckedOut(mark("09:40", Some(95.1)))
    }

    #[test]
    fn it_should_check_in_a_scheduled_visit_with_its_distance_from_home() {
        T::with(())
            .given(vec![scheduled()])
            .when(VisitCommand::CheckIn(facts("09:00", Some(HOME))))
            .then_expect_events(vec![checked_in()]);
    }

    #[test]
    fn it_should_check_in_a_confirmed_visit() {
        T::with(())
            .given(vec![scheduled(), VisitEvent::VisitConfirmed])
            .when(VisitCommand::CheckIn(facts("09:00", Some(HOME))))
            .then_expect_events(vec![checked_in()]);
    }

    #[test]
    fn it_should_leave_the_distance_unknown_when_the_family_has_no_home_coordinates() {
        T::with(())
            .given(vec![scheduled()])
            .when(VisitCommand::CheckIn(facts("09:00", None)))
            .then_expect_events(vec![VisitEvent::VisitCheckedIn(mark("09:00", None))]);
    }

    #[test]
    fn it_should_refuse_a_second_check_in() {
        T::with(())
            .given(vec![scheduled(), checked_in()])
            .when(VisitCommand::CheckIn(facts("09:05", Some(HOME))))
            .then_expect_error(illegal(VisitStatus::InProgress, VisitAction::CheckIn));
    }

    #[test]
    fn it_should_refuse_to_check_in_a_cancelled_visit() {
        T::with(())
            .given(vec![scheduled(), cancelled()])
            .when(VisitCommand::CheckIn(facts("09:00", Some(HOME))))
            .then_expect_error(illegal(VisitStatus::Cancelled, VisitAction::CheckIn));
    }

    #[test]
    fn it_should_refuse_a_check_out_without_a_check_in() {
        T::with(())
            .given(vec![scheduled()])
            .when(VisitCommand::CheckOut(facts("09:40", Some(HOME))))
            .then_expect_error(illegal(VisitStatus::Scheduled, VisitAction::CheckOut));
    }

    #[test]
    fn it_should_refuse_a_check_out_before_its_check_in() {
        T::with(())
            .given(vec![scheduled(), checked_in()])
            .when(VisitCommand::CheckOut(facts("08:59", Some(HOME))))
            .then_expect_error(VisitError::CheckOutBeforeCheckIn);
    }

    #[test]
    fn it_should_check_out_a_visit_in_progress_and_wait_for_its_record() {
        T::with(())
            .given(vec![scheduled(), checked_in()])
            .when(VisitCommand::CheckOut(facts("09:40", Some(HOME))))
            .then_expect_events(vec![checked_out()]);
    }

    #[test]
    fn it_should_refuse_a_second_check_out() {
        T::with(())
            .given(vec![scheduled(), checked_in(), checked_out()])
            .when(VisitCommand::CheckOut(facts("09:45", Some(HOME))))
            .then_expect_error(illegal(VisitStatus::CheckedOut, VisitAction::CheckOut));
    }

    #[test]
    fn it_should_attach_a_record_taken_during_the_visit_without_completing_it() {
        let record = HealthRecordId::new();
        T::with(())
            .given(vec![scheduled(), checked_in()])
            .when(VisitCommand::RecordTaken { record })
            .then_expect_events(vec![VisitEvent::VisitRecordAttached {
                health_record_id: record,
            }]);
    }

    #[test]
    fn it_should_complete_a_visit_at_check_out_when_its_record_was_taken() {
        let record = HealthRecordId::new();
        T::with(())
            .given(vec![
                scheduled(),
                checked_in(),
                VisitEvent::VisitRecordAttached {
                    health_record_id: record,
                },
            ])
            .when(VisitCommand::CheckOut(facts("09:40", Some(HOME))))
            .then_expect_events(vec![
                checked_out(),
                VisitEvent::VisitCompleted {
                    health_record_id: record,
                },
            ]);
    }

    #[test]
    fn it_should_complete_a_checked_out_visit_with_the_record_created_after() {
        let record = HealthRecordId::new();
        T::with(())
            .given(vec![scheduled(), checked_in(), checked_out()])
            .when(VisitCommand::RecordTaken { record })
            .then_expect_events(vec![VisitEvent::VisitCompleted {
                health_record_id: record,
            }]);
    }

    #[test]
    fn it_should_complete_a_visit_never_checked_in_with_its_record() {
        let record = HealthRecordId::new();
        T::with(())
            .given(vec![scheduled()])
            .when(VisitCommand::RecordTaken { record })
            .then_expect_events(vec![VisitEvent::VisitCompleted {
                health_record_id: record,
            }]);
    }

    #[test]
    fn it_should_refuse_a_second_record_for_one_visit() {
        T::with(())
            .given(vec![
                scheduled(),
                checked_in(),
                VisitEvent::VisitRecordAttached {
                    health_record_id: HealthRecordId::new(),
                },
            ])
            .when(VisitCommand::RecordTaken {
                record: HealthRecordId::new(),
            })
            .then_expect_error(VisitError::RecordAlreadyTaken);
    }

    #[test]
    fn it_should_not_complete_a_visit_in_progress_before_its_check_out() {
        T::with(())
            .given(vec![scheduled(), checked_in()])
            .when(VisitCommand::Complete {
                record: Some(HealthRecordId::new()),
            })
            .then_expect_error(illegal(VisitStatus::InProgress, VisitAction::Complete));
    }

    #[test]
    fn it_should_refuse_to_cancel_or_reschedule_a_visit_in_progress() {
        T::with(())
            .given(vec![scheduled(), checked_in()])
            .when(VisitCommand::Cancel { reason: None })
            .then_expect_error(illegal(VisitStatus::InProgress, VisitAction::Cancel));
        T::with(())
            .given(vec![scheduled(), checked_in()])
            .when(reschedule("2026-03-05", 0))
            .then_expect_error(illegal(VisitStatus::InProgress, VisitAction::Reschedule));
    }

    #[test]
    fn it_should_name_the_field_of_a_position_out_of_range() {
        assert!(Coordinates::parse(90.5, 0.0).unwrap_err().names("lat"));
        assert!(Coordinates::parse(0.0, -180.5).unwrap_err().names("lng"));
        assert!(Coordinates::parse(f64::NAN, 0.0).unwrap_err().names("lat"));
    }
}
