//! Electronic visit verification (EVV) exceptions: a visit whose facts do not
//! prove it happened as it should — begun away from home, overlapping another
//! of the recorder's visits, recorded without the patient's signature, too
//! short, or never checked out by the end of its day.
//!
//! One aggregate per visit and code ([`EvvExceptionId::of`]), so "one per visit
//! and code" holds by construction. The server's follower observes the facts
//! and sends them as [`Evidence`] in a [`EvvExceptionCommand::Raise`]; the
//! aggregate decides whether they breach the [`EvvPolicy`] (the rules below are
//! its given/when/then tests). A raise of an exception that exists, or whose
//! evidence shows no breach, records nothing: the follower may repeat itself
//! after a crash without doubling anything. The recorder (or an admin)
//! acknowledges with a reason code from [`REASON_CODES`]; an admin resolves.
//!
//! [`EvvExceptionId::of`]: crate::ids::EvvExceptionId::of

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{HealthRecordId, PatientId, UserId, VisitId};
use crate::validation::Invalid;

/// What is wrong with a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvvCode {
    /// A check-in or record farther from home than the radius.
    AwayFromHome,
    /// A check-in while another of the recorder's visits was in progress.
    OverlappingVisits,
    /// The visit's record has no patient signature.
    MissingSignature,
    /// Check-in to check-out shorter than the minimum.
    ShortVisit,
    /// Checked in, not checked out by the end of that day.
    MissingCheckOut,
}

impl EvvCode {
    pub const ALL: [EvvCode; 5] = [
        Self::AwayFromHome,
        Self::OverlappingVisits,
        Self::MissingSignature,
        Self::ShortVisit,
        Self::MissingCheckOut,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AwayFromHome => "away_from_home",
            Self::OverlappingVisits => "overlapping_visits",
            Self::MissingSignature => "missing_signature",
            Self::ShortVisit => "short_visit",
            Self::MissingCheckOut => "missing_check_out",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw).ok_or_else(|| {
            "应为away_from_home、overlapping_visits、missing_signature、short_visit或missing_check_out".into()
        })
    }
}

/// The catalogue of reasons a recorder or admin gives when acknowledging an
/// exception: stable codes (clients store them) with their Chinese labels.
/// Add codes; never rename or remove one.
pub const REASON_CODES: &[(&str, &str)] = &[
    ("gps_inaccurate", "定位信号不准确"),
    ("patient_not_home", "患者不在家（住院、外出或在亲属家）"),
    ("family_request", "应家属要求调整服务地点或时间"),
    ("previous_visit_overran", "上一户服务超时"),
    ("forgot_check_in_out", "忘记签到或签出"),
    ("device_or_network", "设备或网络故障"),
    ("patient_unable_to_sign", "患者无法签字"),
    ("patient_refused_to_sign", "患者拒绝签字"),
    ("emergency", "紧急情况处置"),
    ("other", "其他原因"),
];

/// The label of a catalogue reason code.
pub fn reason_label(code: &str) -> Option<&'static str> {
    REASON_CODES.iter().find(|(c, _)| *c == code).map(|(_, l)| *l)
}

/// The limits the facts are held to (`CARELOG_EVV_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvvPolicy {
    /// Farther than this from home (metres) is away from home.
    pub radius_m: f64,
    /// A visit shorter than this (minutes) is short.
    pub min_minutes: u32,
}

impl Default for EvvPolicy {
    fn default() -> Self {
        Self {
            radius_m: 500.0,
            min_minutes: 15,
        }
    }
}

/// Where a position was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionSource {
    CheckIn,
    Record,
}

/// Another visit's check-in..check-out interval (open while not checked out).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VisitInterval {
    pub visit_id: VisitId,
    pub checked_in_at: DateTime<Utc>,
    pub checked_out_at: Option<DateTime<Utc>>,
}

impl VisitInterval {
    /// Whether the visit was in progress at `at`: an interval not checked out
    /// is open-ended.
    fn covers(&self, at: DateTime<Utc>) -> bool {
        self.checked_in_at <= at && self.checked_out_at.is_none_or(|out| out > at)
    }
}

/// The facts observed about one visit, one kind per code.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// A check-in's or a record's distance from home (unknown without home
    /// coordinates or a position).
    Position {
        source: PositionSource,
        distance_from_home_m: Option<f64>,
    },
    /// The visit's check-in, and the recorder's other visits checked in by then.
    CheckIn {
        at: DateTime<Utc>,
        others: Vec<VisitInterval>,
    },
    /// The visit's record, signed by the patient or not.
    Record {
        health_record_id: HealthRecordId,
        signed: bool,
    },
    /// The visit's check-in and check-out.
    Duration {
        checked_in_at: DateTime<Utc>,
        checked_out_at: DateTime<Utc>,
    },
    /// The visit's check-in, its check-out if any, and when the check-in's
    /// day ended (the configured timezone's midnight).
    DayEnd {
        checked_in_at: DateTime<Utc>,
        checked_out_at: Option<DateTime<Utc>>,
        day_ended_at: DateTime<Utc>,
    },
}

/// Why an exception was raised: the measurements that breached the policy
/// and the limits they breached. No personal data (no positions, no text).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvvDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PositionSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance_from_home_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius_m: Option<f64>,
    /// The visit in progress when this one was checked in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_visit_id: Option<VisitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_record_id: Option<HealthRecordId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_ended_at: Option<DateTime<Utc>>,
}

impl Evidence {
    /// The code this evidence is about.
    pub fn code(&self) -> EvvCode {
        match self {
            Self::Position { .. } => EvvCode::AwayFromHome,
            Self::CheckIn { .. } => EvvCode::OverlappingVisits,
            Self::Record { .. } => EvvCode::MissingSignature,
            Self::Duration { .. } => EvvCode::ShortVisit,
            Self::DayEnd { .. } => EvvCode::MissingCheckOut,
        }
    }

    /// What breaches `policy`, or `None` when the facts are in order.
    pub fn breach(&self, policy: &EvvPolicy) -> Option<EvvDetails> {
        match *self {
            Self::Position {
                source,
                distance_from_home_m: Some(d),
            } if d > policy.radius_m => Some(EvvDetails {
                source: Some(source),
                distance_from_home_m: Some(d),
                radius_m: Some(policy.radius_m),
                ..Default::default()
            }),
            Self::Position { .. } => None,
            Self::CheckIn { at, ref others } => others.iter().find(|o| o.covers(at)).map(|o| EvvDetails {
                other_visit_id: Some(o.visit_id),
                checked_in_at: Some(at),
                ..Default::default()
            }),
            Self::Record {
                health_record_id,
                signed,
            } => (!signed).then(|| EvvDetails {
                health_record_id: Some(health_record_id),
                ..Default::default()
            }),
            Self::Duration {
                checked_in_at,
                checked_out_at,
            } => {
                let seconds = (checked_out_at - checked_in_at).num_seconds();
                (seconds < i64::from(policy.min_minutes) * 60).then(|| EvvDetails {
                    minutes: Some(seconds / 60),
                    min_minutes: Some(policy.min_minutes),
                    checked_in_at: Some(checked_in_at),
                    ..Default::default()
                })
            }
            Self::DayEnd {
                checked_in_at,
                checked_out_at,
                day_ended_at,
            } => {
                let open_at_day_end = checked_out_at.is_none_or(|out| out > day_ended_at);
                // Only once the day has ended is a missing check-out known.
                (open_at_day_end && checked_in_at < day_ended_at).then(|| EvvDetails {
                    checked_in_at: Some(checked_in_at),
                    day_ended_at: Some(day_ended_at),
                    ..Default::default()
                })
            }
        }
    }
}

/// The visit an exception is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitRef {
    pub visit_id: VisitId,
    pub patient_id: PatientId,
    pub recorder_id: UserId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EvvExceptionCommand {
    /// Raises the exception if `evidence` breaches `policy` and it is not
    /// raised yet; otherwise records nothing.
    Raise {
        visit: VisitRef,
        evidence: Evidence,
        policy: EvvPolicy,
        at: DateTime<Utc>,
    },
    /// The visit's recorder or an admin explains it with a catalogue code.
    Acknowledge {
        reason_code: String,
        by: UserId,
        at: DateTime<Utc>,
    },
    /// An admin closes it.
    Resolve {
        resolution: String,
        by: UserId,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EvvExceptionEvent {
    EvvExceptionRaised {
        code: EvvCode,
        visit_id: VisitId,
        patient_id: PatientId,
        recorder_id: UserId,
        raised_at: DateTime<Utc>,
        details: EvvDetails,
    },
    EvvExceptionAcknowledged {
        reason_code: String,
        by: UserId,
        at: DateTime<Utc>,
    },
    EvvExceptionResolved {
        /// Free text: sealed as personal data, never published.
        resolution: String,
        by: UserId,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for EvvExceptionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::EvvExceptionRaised { .. } => "EvvExceptionRaised",
            Self::EvvExceptionAcknowledged { .. } => "EvvExceptionAcknowledged",
            Self::EvvExceptionResolved { .. } => "EvvExceptionResolved",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvvStatus {
    #[default]
    Open,
    Acknowledged,
    Resolved,
}

impl EvvStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "open" => Ok(Self::Open),
            "acknowledged" => Ok(Self::Acknowledged),
            "resolved" => Ok(Self::Resolved),
            _ => Err("应为open、acknowledged或resolved".into()),
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct EvvException {
    pub visit: Option<VisitRef>,
    pub code: Option<EvvCode>,
    pub status: EvvStatus,
}

/// Longest resolution accepted, in characters.
pub const RESOLUTION_MAX_CHARS: usize = 500;

/// Every way an exception refuses a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvvExceptionError {
    /// A reason code not in the catalogue, or an empty resolution (400).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No exception was raised under this id (404).
    #[error("no such exception")]
    NotFound,
    /// Already acknowledged (409).
    #[error("the exception is already acknowledged")]
    AlreadyAcknowledged,
    /// Resolved exceptions are closed (409).
    #[error("the exception is resolved")]
    AlreadyResolved,
}

impl Aggregate for EvvException {
    const TYPE: &'static str = "evv_exception";
    type Command = EvvExceptionCommand;
    type Event = EvvExceptionEvent;
    type Error = EvvExceptionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: EvvExceptionCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), EvvExceptionError> {
        let event = match command {
            EvvExceptionCommand::Raise {
                visit,
                evidence,
                policy,
                at,
            } => {
                if self.visit.is_some() {
                    return Ok(());
                }
                let Some(details) = evidence.breach(&policy) else {
                    return Ok(());
                };
                EvvExceptionEvent::EvvExceptionRaised {
                    code: evidence.code(),
                    visit_id: visit.visit_id,
                    patient_id: visit.patient_id,
                    recorder_id: visit.recorder_id,
                    raised_at: at,
                    details,
                }
            }
            _ if self.visit.is_none() => return Err(EvvExceptionError::NotFound),
            _ if self.status == EvvStatus::Resolved => return Err(EvvExceptionError::AlreadyResolved),
            EvvExceptionCommand::Acknowledge { reason_code, by, at } => {
                if reason_label(&reason_code).is_none() {
                    return Err(Invalid::field("reason_code", "不在原因代码目录中").into());
                }
                if self.status == EvvStatus::Acknowledged {
                    return Err(EvvExceptionError::AlreadyAcknowledged);
                }
                EvvExceptionEvent::EvvExceptionAcknowledged { reason_code, by, at }
            }
            EvvExceptionCommand::Resolve { resolution, by, at } => {
                let resolution = crate::values::text(&resolution, RESOLUTION_MAX_CHARS)
                    .map_err(|e| Invalid::field("resolution", e))?;
                EvvExceptionEvent::EvvExceptionResolved { resolution, by, at }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: EvvExceptionEvent) {
        match event {
            EvvExceptionEvent::EvvExceptionRaised {
                code,
                visit_id,
                patient_id,
                recorder_id,
                ..
            } => {
                self.code = Some(code);
                self.visit = Some(VisitRef {
                    visit_id,
                    patient_id,
                    recorder_id,
                });
            }
            EvvExceptionEvent::EvvExceptionAcknowledged { .. } => self.status = EvvStatus::Acknowledged,
            EvvExceptionEvent::EvvExceptionResolved { .. } => self.status = EvvStatus::Resolved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<EvvException>;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }
    fn visit() -> VisitRef {
        VisitRef {
            visit_id: VisitId::default(),
            patient_id: PatientId::default(),
            recorder_id: UserId::default(),
        }
    }
    fn raise(evidence: Evidence) -> EvvExceptionCommand {
        EvvExceptionCommand::Raise {
            visit: visit(),
            evidence,
            policy: EvvPolicy::default(),
            at: at(9, 0),
        }
    }
    fn raised(code: EvvCode, details: EvvDetails) -> EvvExceptionEvent {
        EvvExceptionEvent::EvvExceptionRaised {
            code,
            visit_id: VisitId::default(),
            patient_id: PatientId::default(),
            recorder_id: UserId::default(),
            raised_at: at(9, 0),
            details,
        }
    }
    fn from_check_in(distance: Option<f64>) -> Evidence {
        Evidence::Position {
            source: PositionSource::CheckIn,
            distance_from_home_m: distance,
        }
    }
    fn away(distance: f64) -> EvvExceptionEvent {
        raised(
            EvvCode::AwayFromHome,
            EvvDetails {
                source: Some(PositionSource::CheckIn),
                distance_from_home_m: Some(distance),
                radius_m: Some(500.0),
                ..Default::default()
            },
        )
    }
    fn other(h_in: u32, out: Option<(u32, u32)>) -> VisitInterval {
        VisitInterval {
            visit_id: VisitId(uuid::Uuid::from_u128(7)),
            checked_in_at: at(h_in, 0),
            checked_out_at: out.map(|(h, m)| at(h, m)),
        }
    }
    fn acknowledge(code: &str) -> EvvExceptionCommand {
        EvvExceptionCommand::Acknowledge {
            reason_code: code.into(),
            by: UserId::default(),
            at: at(10, 0),
        }
    }
    fn acknowledged() -> EvvExceptionEvent {
        EvvExceptionEvent::EvvExceptionAcknowledged {
            reason_code: "gps_inaccurate".into(),
            by: UserId::default(),
            at: at(10, 0),
        }
    }
    fn resolve(text: &str) -> EvvExceptionCommand {
        EvvExceptionCommand::Resolve {
            resolution: text.into(),
            by: UserId::default(),
            at: at(11, 0),
        }
    }

    #[test]
    fn it_should_raise_away_from_home_when_a_check_in_is_farther_than_the_radius() {
        T::with(())
            .given_no_previous_events()
            .when(raise(from_check_in(Some(800.0))))
            .then_expect_events(vec![away(800.0)]);
    }

    #[test]
    fn it_should_not_raise_away_from_home_within_the_radius_or_without_a_distance() {
        for distance in [Some(500.0), Some(120.0), None] {
            T::with(())
                .given_no_previous_events()
                .when(raise(from_check_in(distance)))
                .then_expect_events(vec![]);
        }
    }

    #[test]
    fn it_should_raise_one_exception_per_visit_and_code_however_often_it_is_raised() {
        T::with(())
            .given(vec![away(800.0)])
            .when(raise(from_check_in(Some(900.0))))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_raise_overlapping_visits_when_two_check_ins_of_one_recorder_overlap() {
        let evidence = Evidence::CheckIn {
            at: at(9, 30),
            others: vec![other(9, Some((10, 0)))],
        };
        T::with(())
            .given_no_previous_events()
            .when(raise(evidence))
            .then_expect_events(vec![raised(
                EvvCode::OverlappingVisits,
                EvvDetails {
                    other_visit_id: Some(VisitId(uuid::Uuid::from_u128(7))),
                    checked_in_at: Some(at(9, 30)),
                    ..Default::default()
                },
            )]);
    }

    #[test]
    fn it_should_count_a_visit_not_checked_out_as_open_ended_when_checking_overlaps() {
        let evidence = Evidence::CheckIn {
            at: at(15, 0),
            others: vec![other(9, None)],
        };
        let r = T::with(())
            .given_no_previous_events()
            .when(raise(evidence))
            .inspect_result();
        assert!(matches!(
            r.as_deref(),
            Ok([EvvExceptionEvent::EvvExceptionRaised {
                code: EvvCode::OverlappingVisits,
                ..
            }])
        ));
    }

    #[test]
    fn it_should_not_raise_overlapping_visits_after_the_other_visit_was_checked_out() {
        let evidence = Evidence::CheckIn {
            at: at(10, 0),
            others: vec![other(9, Some((10, 0)))],
        };
        T::with(())
            .given_no_previous_events()
            .when(raise(evidence))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_raise_missing_signature_when_the_visits_record_is_not_signed() {
        let record = HealthRecordId::default();
        T::with(())
            .given_no_previous_events()
            .when(raise(Evidence::Record {
                health_record_id: record,
                signed: false,
            }))
            .then_expect_events(vec![raised(
                EvvCode::MissingSignature,
                EvvDetails {
                    health_record_id: Some(record),
                    ..Default::default()
                },
            )]);
        T::with(())
            .given_no_previous_events()
            .when(raise(Evidence::Record {
                health_record_id: record,
                signed: true,
            }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_raise_short_visit_when_check_out_comes_before_the_minimum_minutes() {
        T::with(())
            .given_no_previous_events()
            .when(raise(Evidence::Duration {
                checked_in_at: at(9, 0),
                checked_out_at: at(9, 14),
            }))
            .then_expect_events(vec![raised(
                EvvCode::ShortVisit,
                EvvDetails {
                    minutes: Some(14),
                    min_minutes: Some(15),
                    checked_in_at: Some(at(9, 0)),
                    ..Default::default()
                },
            )]);
        T::with(())
            .given_no_previous_events()
            .when(raise(Evidence::Duration {
                checked_in_at: at(9, 0),
                checked_out_at: at(9, 15),
            }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_raise_missing_check_out_when_the_day_ended_without_one() {
        let day_end = at(16, 0);
        let details = EvvDetails {
            checked_in_at: Some(at(9, 0)),
            day_ended_at: Some(day_end),
            ..Default::default()
        };
        for checked_out_at in [None, Some(at(17, 0))] {
            T::with(())
                .given_no_previous_events()
                .when(raise(Evidence::DayEnd {
                    checked_in_at: at(9, 0),
                    checked_out_at,
                    day_ended_at: day_end,
                }))
                .then_expect_events(vec![raised(EvvCode::MissingCheckOut, details.clone())]);
        }
        T::with(())
            .given_no_previous_events()
            .when(raise(Evidence::DayEnd {
                checked_in_at: at(9, 0),
                checked_out_at: Some(at(9, 40)),
                day_ended_at: day_end,
            }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_acknowledge_with_a_reason_code_from_the_catalogue() {
        T::with(())
            .given(vec![away(800.0)])
            .when(acknowledge("gps_inaccurate"))
            .then_expect_events(vec![acknowledged()]);
    }

    #[test]
    fn it_should_refuse_a_reason_code_not_in_the_catalogue_naming_the_field() {
        let r = T::with(())
            .given(vec![away(800.0)])
            .when(acknowledge("because"))
            .inspect_result();
        assert!(matches!(r, Err(EvvExceptionError::Validation(i)) if i.names("reason_code")));
    }

    #[test]
    fn it_should_refuse_to_acknowledge_twice_or_after_resolution() {
        T::with(())
            .given(vec![away(800.0), acknowledged()])
            .when(acknowledge("other"))
            .then_expect_error(EvvExceptionError::AlreadyAcknowledged);
        let resolved = EvvExceptionEvent::EvvExceptionResolved {
            resolution: "已核实".into(),
            by: UserId::default(),
            at: at(11, 0),
        };
        T::with(())
            .given(vec![away(800.0), resolved])
            .when(acknowledge("other"))
            .then_expect_error(EvvExceptionError::AlreadyResolved);
    }

    #[test]
    fn it_should_resolve_with_its_resolution() {
        T::with(())
            .given(vec![away(800.0), acknowledged()])
            .when(resolve(" 已电话核实，定位漂移 "))
            .then_expect_events(vec![EvvExceptionEvent::EvvExceptionResolved {
                resolution: "已电话核实，定位漂移".into(),
                by: UserId::default(),
                at: at(11, 0),
            }]);
        let r = T::with(())
            .given(vec![away(800.0)])
            .when(resolve("  "))
            .inspect_result();
        assert!(matches!(r, Err(EvvExceptionError::Validation(i)) if i.names("resolution")));
    }

    #[test]
    fn it_should_refuse_to_acknowledge_or_resolve_an_exception_never_raised() {
        T::with(())
            .given_no_previous_events()
            .when(acknowledge("other"))
            .then_expect_error(EvvExceptionError::NotFound);
        T::with(())
            .given_no_previous_events()
            .when(resolve("x"))
            .then_expect_error(EvvExceptionError::NotFound);
    }

    #[test]
    fn every_code_and_reason_code_round_trips() {
        for c in EvvCode::ALL {
            assert_eq!(EvvCode::parse(c.as_str()), Ok(c));
        }
        assert!(EvvCode::parse("late").is_err());
        let mut codes: Vec<_> = REASON_CODES.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), REASON_CODES.len(), "reason codes are unique");
    }
}
