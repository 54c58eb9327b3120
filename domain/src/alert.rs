//! Alerts: what follows an abnormal health record to its end. Triggered for
//! its doctor, acknowledged by that doctor, resolved with an outcome; while
//! nobody acknowledges it, escalated to another doctor level by level.
//!
//! One alert per abnormal record: its id is derived from the record's
//! ([`AlertId::of_record`]), so whoever triggers it first (the HTTP call that
//! recorded the vitals, or the alert reactor after a crash) is the only one.
//! Escalation is driven by time outside the aggregate, but decided here: an
//! escalation names the level it escalates from, so two servers escalating
//! the same alert at the same level record it once.

use chrono::{DateTime, TimeDelta, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{AlertId, HealthRecordId, PatientId, UserId};
use crate::validation::Invalid;
use crate::vitals::{AlertReason, Severity};

/// Namespace of alert ids derived from health record ids.
const ALERT_NS: Uuid = Uuid::from_u128(0x6361_7265_6c6f_6700_0000_0000_0000_0013);

impl AlertId {
    /// The one alert an abnormal record can have.
    pub fn of_record(record: HealthRecordId) -> Self {
        Self(Uuid::new_v5(&ALERT_NS, record.0.as_bytes()))
    }
}

/// The severity of an alert: the worst of its reasons (`None` without reasons).
pub fn severity_of(reasons: &[AlertReason]) -> Option<Severity> {
    if reasons.iter().any(|r| r.severity == Severity::Urgent) {
        Some(Severity::Urgent)
    } else {
        reasons.first().map(|_| Severity::Abnormal)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    #[default]
    Triggered,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Triggered => "triggered",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }
}

/// How an alert ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The doctor issued a medical order.
    OrderIssued,
    /// The doctor judged that nothing needs doing.
    NoActionNeeded,
    /// The patient was referred (to a hospital, a specialist).
    Referred,
}

impl Outcome {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "order_issued" => Ok(Self::OrderIssued),
            "no_action_needed" => Ok(Self::NoActionNeeded),
            "referred" => Ok(Self::Referred),
            _ => Err("应为order_issued、no_action_needed或referred".into()),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OrderIssued => "order_issued",
            Self::NoActionNeeded => "no_action_needed",
            Self::Referred => "referred",
        }
    }
}

/// How long an alert may wait for its doctor before it is escalated, by
/// severity; each escalation starts the wait again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscalationPolicy {
    pub urgent_after: TimeDelta,
    pub abnormal_after: TimeDelta,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        Self {
            urgent_after: TimeDelta::minutes(15),
            abnormal_after: TimeDelta::minutes(120),
        }
    }
}

impl EscalationPolicy {
    pub fn wait(&self, severity: Severity) -> TimeDelta {
        match severity {
            Severity::Urgent => self.urgent_after,
            Severity::Abnormal => self.abnormal_after,
        }
    }
}

/// What triggers an alert: the abnormal record, why, and the doctor it goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTrigger {
    pub patient_id: PatientId,
    pub health_record_id: HealthRecordId,
    pub severity: Severity,
    pub reasons: Vec<AlertReason>,
    pub doctor_id: UserId,
    pub at: DateTime<Utc>,
}

/// Who resolves an alert: its doctor, or any admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    Doctor(UserId),
    Admin(UserId),
}

impl Resolver {
    fn id(&self) -> UserId {
        match self {
            Self::Doctor(id) | Self::Admin(id) => *id,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlertCommand {
    Trigger(AlertTrigger),
    Acknowledge {
        by: UserId,
        at: DateTime<Utc>,
    },
    Resolve {
        outcome: Outcome,
        note: Option<String>,
        by: Resolver,
        at: DateTime<Utc>,
    },
    /// Escalates from `expected_level` to the next, to `to_doctor` (the
    /// current doctor again when no other is available), telling `admins`.
    Escalate {
        expected_level: u32,
        to_doctor: UserId,
        admins: Vec<UserId>,
        policy: EscalationPolicy,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertEvent {
    AlertTriggered(AlertTrigger),
    AlertAcknowledged {
        by: UserId,
        at: DateTime<Utc>,
    },
    AlertResolved {
        outcome: Outcome,
        note: Option<String>,
        by: UserId,
        at: DateTime<Utc>,
    },
    AlertEscalated {
        level: u32,
        from_doctor: UserId,
        to_doctor: UserId,
        /// The admins told of it.
        admins: Vec<UserId>,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AlertEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AlertTriggered(_) => "AlertTriggered",
            Self::AlertAcknowledged { .. } => "AlertAcknowledged",
            Self::AlertResolved { .. } => "AlertResolved",
            Self::AlertEscalated { .. } => "AlertEscalated",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Alert {
    pub trigger: Option<AlertTrigger>,
    pub status: AlertStatus,
    /// The doctor it is with now (changes on escalation).
    pub doctor_id: Option<UserId>,
    pub level: u32,
    /// When the wait for an acknowledgement began: the trigger, or the last escalation.
    pub waiting_since: Option<DateTime<Utc>>,
}

impl Alert {
    /// When it is to be escalated, if nobody acknowledges it first.
    pub fn escalation_due_at(&self, policy: &EscalationPolicy) -> Option<DateTime<Utc>> {
        let trigger = self.trigger.as_ref()?;
        if self.status != AlertStatus::Triggered {
            return None;
        }
        Some(self.waiting_since? + policy.wait(trigger.severity))
    }
}

/// What a command asks of an alert; names the refused step in
/// [`AlertError::IllegalTransition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAction {
    Acknowledge,
    Resolve,
    Escalate,
}

/// Every way an alert refuses a command. The server's error module gives each
/// its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertError {
    /// A trigger without reasons (400, `reasons`).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No alert was triggered under this id (404).
    #[error("no such alert")]
    NotFound,
    /// A second trigger for the same record (409): how the second raiser
    /// learns the first was there.
    #[error("the alert already exists")]
    AlreadyExists,
    /// Only the alert's current doctor acknowledges it, or resolves it
    /// besides an admin (409: it may have just been escalated away).
    #[error("not the alert's doctor")]
    NotItsDoctor,
    /// Acknowledged only when triggered; resolved once; escalated only while
    /// nobody acknowledged it (409).
    #[error("a {from:?} alert cannot take {action:?}")]
    IllegalTransition { from: AlertStatus, action: AlertAction },
    /// Someone else escalated it from this level already (409).
    #[error("the alert is at level {actual}, not {expected}")]
    LevelMoved { expected: u32, actual: u32 },
    /// Its doctor still has time to acknowledge it (409).
    #[error("the alert is not due for escalation before {due_at}")]
    NotDue { due_at: DateTime<Utc> },
}

impl Aggregate for Alert {
    const TYPE: &'static str = "alert";
    type Command = AlertCommand;
    type Event = AlertEvent;
    type Error = AlertError;
    type Services = ();

    async fn handle(&mut self, command: AlertCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AlertError> {
        let illegal = |action| {
            Err(AlertError::IllegalTransition {
                from: self.status,
                action,
            })
        };
        let event = match (&self.trigger, command) {
            (Some(_), AlertCommand::Trigger(_)) => return Err(AlertError::AlreadyExists),
            (None, AlertCommand::Trigger(t)) => {
                if t.reasons.is_empty() {
                    return Err(Invalid::field("reasons", "异常警报须有原因").into());
                }
                AlertEvent::AlertTriggered(t)
            }
            (None, _) => return Err(AlertError::NotFound),
            (Some(_), AlertCommand::Acknowledge { by, at }) => {
                if self.status != AlertStatus::Triggered {
                    return illegal(AlertAction::Acknowledge);
                }
                if self.doctor_id != Some(by) {
                    return Err(AlertError::NotItsDoctor);
                }
                AlertEvent::AlertAcknowledged { by, at }
            }
            (Some(_), AlertCommand::Resolve { outcome, note, by, at }) => {
                if self.status == AlertStatus::Resolved {
                    return illegal(AlertAction::Resolve);
                }
                if matches!(by, Resolver::Doctor(d) if self.doctor_id != Some(d)) {
                    return Err(AlertError::NotItsDoctor);
                }
                AlertEvent::AlertResolved {
                    outcome,
                    note,
                    by: by.id(),
                    at,
                }
            }
            (
                Some(_),
                AlertCommand::Escalate {
                    expected_level,
                    to_doctor,
                    admins,
                    policy,
                    at,
                },
            ) => {
                if self.status != AlertStatus::Triggered {
                    return illegal(AlertAction::Escalate);
                }
                if self.level != expected_level {
                    return Err(AlertError::LevelMoved {
                        expected: expected_level,
                        actual: self.level,
                    });
                }
                if let Some(due_at) = self.escalation_due_at(&policy).filter(|due| at < *due) {
                    return Err(AlertError::NotDue { due_at });
                }
                AlertEvent::AlertEscalated {
                    level: self.level + 1,
                    from_doctor: self.doctor_id.unwrap_or(to_doctor),
                    to_doctor,
                    admins,
                    at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: AlertEvent) {
        match event {
            AlertEvent::AlertTriggered(t) => {
                self.doctor_id = Some(t.doctor_id);
                self.waiting_since = Some(t.at);
                self.trigger = Some(t);
            }
            AlertEvent::AlertAcknowledged { .. } => self.status = AlertStatus::Acknowledged,
            AlertEvent::AlertResolved { .. } => self.status = AlertStatus::Resolved,
            AlertEvent::AlertEscalated {
                level, to_doctor, at, ..
            } => {
                self.level = level;
                self.doctor_id = Some(to_doctor);
                self.waiting_since = Some(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<Alert>;

    fn doctor() -> UserId {
        UserId(Uuid::from_u128(1))
    }
    fn other_doctor() -> UserId {
        UserId(Uuid::from_u128(2))
    }
    fn admin() -> UserId {
        UserId(Uuid::from_u128(3))
    }
    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default() + TimeDelta::minutes(minutes)
    }
    fn reason(severity: Severity) -> AlertReason {
        AlertReason {
            code: "blood_pressure_urgent".into(),
            severity,
            message: "血压185/100mmHg，达到高血压危象标准".into(),
        }
    }
    fn trigger(severity: Severity) -> AlertTrigger {
        AlertTrigger {
            patient_id: PatientId::default(),
            health_record_id: HealthRecordId::default(),
            severity,
            reasons: vec![reason(severity)],
            doctor_id: doctor(),
            at: at(0),
        }
    }
    fn triggered() -> AlertEvent {
        AlertEvent::AlertTriggered(trigger(Severity::Urgent))
    }
    fn acknowledged() -> AlertEvent {
        AlertEvent::AlertAcknowledged {
            by: doctor(),
            at: at(5),
        }
    }
    fn resolve(by: Resolver) -> AlertCommand {
        AlertCommand::Resolve {
            outcome: Outcome::NoActionNeeded,
            note: Some("电话随访，血压已回落".into()),
            by,
            at: at(30),
        }
    }
    fn resolved(by: UserId) -> AlertEvent {
        AlertEvent::AlertResolved {
            outcome: Outcome::NoActionNeeded,
            note: Some("电话随访，血压已回落".into()),
            by,
            at: at(30),
        }
    }
    fn escalate(expected_level: u32, minutes: i64) -> AlertCommand {
        AlertCommand::Escalate {
            expected_level,
            to_doctor: other_doctor(),
            admins: vec![admin()],
            policy: EscalationPolicy::default(),
            at: at(minutes),
        }
    }
    fn escalated(level: u32, from: UserId, to: UserId, minutes: i64) -> AlertEvent {
        AlertEvent::AlertEscalated {
            level,
            from_doctor: from,
            to_doctor: to,
            admins: vec![admin()],
            at: at(minutes),
        }
    }
    fn illegal(from: AlertStatus, action: AlertAction) -> AlertError {
        AlertError::IllegalTransition { from, action }
    }

    #[test]
    fn it_should_derive_one_alert_id_per_record() {
        let a = HealthRecordId(Uuid::from_u128(10));
        let b = HealthRecordId(Uuid::from_u128(11));
        assert_eq!(AlertId::of_record(a), AlertId::of_record(a));
        assert_ne!(AlertId::of_record(a), AlertId::of_record(b));
        assert_ne!(AlertId::of_record(a).0, a.0);
    }

    #[test]
    fn it_should_rate_an_alert_by_its_worst_reason() {
        assert_eq!(severity_of(&[]), None);
        assert_eq!(severity_of(&[reason(Severity::Abnormal)]), Some(Severity::Abnormal));
        assert_eq!(
            severity_of(&[reason(Severity::Abnormal), reason(Severity::Urgent)]),
            Some(Severity::Urgent)
        );
    }

    #[test]
    fn it_should_trigger_an_alert_for_an_abnormal_record() {
        T::with(())
            .given_no_previous_events()
            .when(AlertCommand::Trigger(trigger(Severity::Urgent)))
            .then_expect_events(vec![triggered()]);
    }

    #[test]
    fn it_should_not_trigger_an_alert_without_reasons() {
        let empty = AlertTrigger {
            reasons: vec![],
            ..trigger(Severity::Abnormal)
        };
        let r = T::with(())
            .given_no_previous_events()
            .when(AlertCommand::Trigger(empty))
            .inspect_result();
        assert!(matches!(r, Err(AlertError::Validation(i)) if i.names("reasons")));
    }

    #[test]
    fn it_should_not_trigger_the_same_alert_twice() {
        T::with(())
            .given(vec![triggered()])
            .when(AlertCommand::Trigger(trigger(Severity::Urgent)))
            .then_expect_error(AlertError::AlreadyExists);
    }

    #[test]
    fn it_should_refuse_every_step_of_an_alert_never_triggered() {
        for command in [
            AlertCommand::Acknowledge {
                by: doctor(),
                at: at(1),
            },
            resolve(Resolver::Admin(admin())),
            escalate(0, 20),
        ] {
            T::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(AlertError::NotFound);
        }
    }

    #[test]
    fn it_should_let_its_doctor_acknowledge_a_triggered_alert() {
        T::with(())
            .given(vec![triggered()])
            .when(AlertCommand::Acknowledge {
                by: doctor(),
                at: at(5),
            })
            .then_expect_events(vec![acknowledged()]);
    }

    #[test]
    fn it_should_not_let_another_doctor_acknowledge_an_alert() {
        T::with(())
            .given(vec![triggered()])
            .when(AlertCommand::Acknowledge {
                by: other_doctor(),
                at: at(5),
            })
            .then_expect_error(AlertError::NotItsDoctor);
    }

    #[test]
    fn it_should_acknowledge_an_alert_only_while_it_is_triggered() {
        for (given, from) in [
            (vec![triggered(), acknowledged()], AlertStatus::Acknowledged),
            (vec![triggered(), resolved(doctor())], AlertStatus::Resolved),
        ] {
            T::with(())
                .given(given)
                .when(AlertCommand::Acknowledge {
                    by: doctor(),
                    at: at(40),
                })
                .then_expect_error(illegal(from, AlertAction::Acknowledge));
        }
    }

    #[test]
    fn it_should_let_its_doctor_resolve_a_triggered_or_acknowledged_alert() {
        for given in [vec![triggered()], vec![triggered(), acknowledged()]] {
            T::with(())
                .given(given)
                .when(resolve(Resolver::Doctor(doctor())))
                .then_expect_events(vec![resolved(doctor())]);
        }
    }

    #[test]
    fn it_should_let_an_admin_resolve_an_alert_of_any_doctor() {
        T::with(())
            .given(vec![triggered(), acknowledged()])
            .when(resolve(Resolver::Admin(admin())))
            .then_expect_events(vec![resolved(admin())]);
    }

    #[test]
    fn it_should_not_let_another_doctor_resolve_an_alert() {
        T::with(())
            .given(vec![triggered()])
            .when(resolve(Resolver::Doctor(other_doctor())))
            .then_expect_error(AlertError::NotItsDoctor);
    }

    #[test]
    fn it_should_not_resolve_an_alert_twice() {
        T::with(())
            .given(vec![triggered(), resolved(doctor())])
            .when(resolve(Resolver::Admin(admin())))
            .then_expect_error(illegal(AlertStatus::Resolved, AlertAction::Resolve));
    }

    #[test]
    fn it_should_escalate_an_unacknowledged_alert_to_another_doctor_once_its_wait_is_over() {
        // Urgent: 15 minutes by default.
        T::with(())
            .given(vec![triggered()])
            .when(escalate(0, 15))
            .then_expect_events(vec![escalated(1, doctor(), other_doctor(), 15)]);
    }

    #[test]
    fn it_should_not_escalate_an_alert_before_its_wait_is_over() {
        T::with(())
            .given(vec![triggered()])
            .when(escalate(0, 14))
            .then_expect_error(AlertError::NotDue { due_at: at(15) });
    }

    #[test]
    fn it_should_wait_longer_for_an_abnormal_alert_than_for_an_urgent_one() {
        T::with(())
            .given(vec![AlertEvent::AlertTriggered(trigger(Severity::Abnormal))])
            .when(escalate(0, 60))
            .then_expect_error(AlertError::NotDue { due_at: at(120) });
        T::with(())
            .given(vec![AlertEvent::AlertTriggered(trigger(Severity::Abnormal))])
            .when(escalate(0, 120))
            .then_expect_events(vec![escalated(1, doctor(), other_doctor(), 120)]);
    }

    #[test]
    fn it_should_not_escalate_the_same_level_twice() {
        T::with(())
            .given(vec![triggered(), escalated(1, doctor(), other_doctor(), 15)])
            .when(escalate(0, 16))
            .then_expect_error(AlertError::LevelMoved { expected: 0, actual: 1 });
    }

    #[test]
    fn it_should_measure_the_next_wait_from_the_last_escalation() {
        let again = |minutes| AlertCommand::Escalate {
            expected_level: 1,
            to_doctor: doctor(),
            admins: vec![admin()],
            policy: EscalationPolicy::default(),
            at: at(minutes),
        };
        T::with(())
            .given(vec![triggered(), escalated(1, doctor(), other_doctor(), 20)])
            .when(again(34))
            .then_expect_error(AlertError::NotDue { due_at: at(35) });
        T::with(())
            .given(vec![triggered(), escalated(1, doctor(), other_doctor(), 20)])
            .when(again(35))
            .then_expect_events(vec![escalated(2, other_doctor(), doctor(), 35)]);
    }

    #[test]
    fn it_should_raise_the_level_even_when_no_other_doctor_can_take_the_alert() {
        T::with(())
            .given(vec![triggered()])
            .when(AlertCommand::Escalate {
                expected_level: 0,
                to_doctor: doctor(),
                admins: vec![admin()],
                policy: EscalationPolicy::default(),
                at: at(15),
            })
            .then_expect_events(vec![escalated(1, doctor(), doctor(), 15)]);
    }

    #[test]
    fn it_should_not_escalate_an_alert_someone_acknowledged_or_resolved() {
        for (given, from) in [
            (vec![triggered(), acknowledged()], AlertStatus::Acknowledged),
            (vec![triggered(), resolved(doctor())], AlertStatus::Resolved),
        ] {
            T::with(())
                .given(given)
                .when(escalate(0, 60))
                .then_expect_error(illegal(from, AlertAction::Escalate));
        }
    }

    #[test]
    fn it_should_hand_the_alert_to_the_new_doctor_when_it_is_escalated() {
        let after = vec![triggered(), escalated(1, doctor(), other_doctor(), 15)];
        T::with(())
            .given(after.clone())
            .when(AlertCommand::Acknowledge {
                by: doctor(),
                at: at(16),
            })
            .then_expect_error(AlertError::NotItsDoctor);
        T::with(())
            .given(after)
            .when(AlertCommand::Acknowledge {
                by: other_doctor(),
                at: at(16),
            })
            .then_expect_events(vec![AlertEvent::AlertAcknowledged {
                by: other_doctor(),
                at: at(16),
            }]);
    }
}
