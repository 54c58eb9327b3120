//! A patient's booking at a partner hospital: pending → confirmed (number, fee)
//! → completed (result notes), or cancelled from pending or confirmed.

use chrono::{NaiveDate, NaiveTime};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{DepartmentId, HospitalDoctorId, HospitalId, PatientId, SlotId, UserId};
use crate::validation::Invalid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingDetails {
    pub slot_id: SlotId,
    pub patient_id: PatientId,
    pub hospital_id: HospitalId,
    pub department_id: DepartmentId,
    pub doctor_id: Option<HospitalDoctorId>,
    pub appointment_date: NaiveDate,
    pub appointment_time: NaiveTime,
    pub notes: Option<String>,
    /// The recorder who booked; told when the hospital confirms.
    pub recorder_id: UserId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    #[default]
    Pending,
    Confirmed,
    Completed,
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BookingCommand {
    Request(BookingDetails),
    Confirm {
        appointment_number: String,
        fee: Option<Decimal>,
    },
    Complete {
        result_notes: String,
    },
    Cancel {
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BookingEvent {
    HospitalBookingRequested(BookingDetails),
    HospitalBookingConfirmed {
        appointment_number: String,
        fee: Option<Decimal>,
        recorder_id: UserId,
    },
    HospitalBookingCompleted {
        result_notes: String,
    },
    HospitalBookingCancelled {
        reason: Option<String>,
    },
}

impl DomainEvent for BookingEvent {
    fn event_type(&self) -> String {
        match self {
            Self::HospitalBookingRequested(_) => "HospitalBookingRequested",
            Self::HospitalBookingConfirmed { .. } => "HospitalBookingConfirmed",
            Self::HospitalBookingCompleted { .. } => "HospitalBookingCompleted",
            Self::HospitalBookingCancelled { .. } => "HospitalBookingCancelled",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct HospitalBooking {
    pub details: Option<BookingDetails>,
    pub status: BookingStatus,
}

/// What a command asks of an existing booking; names the refused step in
/// [`BookingError::IllegalTransition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingAction {
    Confirm,
    Complete,
    Cancel,
}

/// Every way a hospital booking refuses a command. The server's error module
/// gives each its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BookingError {
    /// A negative fee (400, `fee`).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No booking was requested under this id (404).
    #[error("no such hospital booking")]
    NotFound,
    /// A second request under the same id (409).
    #[error("the booking already exists")]
    AlreadyExists,
    /// Pending → confirmed → completed, or cancelled before completion;
    /// nothing else (409).
    #[error("a {from:?} booking cannot take {action:?}")]
    IllegalTransition { from: BookingStatus, action: BookingAction },
}

impl Aggregate for HospitalBooking {
    const TYPE: &'static str = "hospital_appointment";
    type Command = BookingCommand;
    type Event = BookingEvent;
    type Error = BookingError;
    type Services = ();

    async fn handle(&mut self, command: BookingCommand, _: &(), sink: &EventSink<Self>) -> Result<(), BookingError> {
        use BookingStatus::*;
        let Some(details) = &self.details else {
            let BookingCommand::Request(d) = command else {
                return Err(BookingError::NotFound);
            };
            sink.write(BookingEvent::HospitalBookingRequested(d), self).await;
            return Ok(());
        };
        let illegal = |action| {
            Err(BookingError::IllegalTransition {
                from: self.status,
                action,
            })
        };
        let event = match command {
            BookingCommand::Request(_) => return Err(BookingError::AlreadyExists),
            BookingCommand::Confirm {
                appointment_number,
                fee,
            } => match self.status {
                Pending => {
                    if fee.is_some_and(|f| f < Decimal::ZERO) {
                        return Err(Invalid::field("fee", "不能为负数").into());
                    }
                    BookingEvent::HospitalBookingConfirmed {
                        appointment_number,
                        fee,
                        recorder_id: details.recorder_id,
                    }
                }
                _ => return illegal(BookingAction::Confirm),
            },
            BookingCommand::Complete { result_notes } => match self.status {
                Confirmed => BookingEvent::HospitalBookingCompleted { result_notes },
                _ => return illegal(BookingAction::Complete),
            },
            BookingCommand::Cancel { reason } => match self.status {
                Pending | Confirmed => BookingEvent::HospitalBookingCancelled { reason },
                _ => return illegal(BookingAction::Cancel),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: BookingEvent) {
        match event {
            BookingEvent::HospitalBookingRequested(d) => self.details = Some(d),
            BookingEvent::HospitalBookingConfirmed { .. } => self.status = BookingStatus::Confirmed,
            BookingEvent::HospitalBookingCompleted { .. } => self.status = BookingStatus::Completed,
            BookingEvent::HospitalBookingCancelled { .. } => self.status = BookingStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<HospitalBooking>;

    fn details() -> BookingDetails {
        BookingDetails {
            slot_id: SlotId::default(),
            patient_id: PatientId::default(),
            hospital_id: HospitalId::default(),
            department_id: DepartmentId::default(),
            doctor_id: None,
            appointment_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            appointment_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            notes: None,
            recorder_id: UserId::default(),
        }
    }
    fn requested() -> BookingEvent {
        BookingEvent::HospitalBookingRequested(details())
    }
    fn confirm(fee: Option<Decimal>) -> BookingCommand {
        BookingCommand::Confirm {
            appointment_number: "A1".into(),
            fee,
        }
    }
    fn confirmed() -> BookingEvent {
        BookingEvent::HospitalBookingConfirmed {
            appointment_number: "A1".into(),
            fee: None,
            recorder_id: UserId::default(),
        }
    }
    fn completed() -> BookingEvent {
        BookingEvent::HospitalBookingCompleted {
            result_notes: "ok".into(),
        }
    }
    fn illegal(from: BookingStatus, action: BookingAction) -> BookingError {
        BookingError::IllegalTransition { from, action }
    }

    #[test]
    fn it_should_request_a_booking() {
        T::with(())
            .given_no_previous_events()
            .when(BookingCommand::Request(details()))
            .then_expect_events(vec![requested()]);
    }

    #[test]
    fn it_should_not_request_the_same_booking_twice() {
        T::with(())
            .given(vec![requested()])
            .when(BookingCommand::Request(details()))
            .then_expect_error(BookingError::AlreadyExists);
    }

    #[test]
    fn it_should_refuse_every_other_command_for_a_booking_never_requested() {
        for command in [
            confirm(None),
            BookingCommand::Complete {
                result_notes: "ok".into(),
            },
            BookingCommand::Cancel { reason: None },
        ] {
            T::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(BookingError::NotFound);
        }
    }

    #[test]
    fn it_should_confirm_a_pending_booking_and_tell_its_recorder() {
        let fee = Some(Decimal::new(2500, 2));
        T::with(())
            .given(vec![requested()])
            .when(confirm(fee))
            .then_expect_events(vec![BookingEvent::HospitalBookingConfirmed {
                appointment_number: "A1".into(),
                fee,
                recorder_id: details().recorder_id,
            }]);
    }

    #[test]
    fn it_should_refuse_a_negative_fee() {
        let r = T::with(())
            .given(vec![requested()])
            .when(confirm(Some(Decimal::new(-1, 0))))
            .inspect_result();
        assert!(matches!(r, Err(BookingError::Validation(i)) if i.names("fee")));
    }

    #[test]
    fn it_should_not_confirm_a_booking_twice() {
        T::with(())
            .given(vec![requested(), confirmed()])
            .when(confirm(None))
            .then_expect_error(illegal(BookingStatus::Confirmed, BookingAction::Confirm));
    }

    #[test]
    fn it_should_complete_a_confirmed_booking_with_its_result() {
        T::with(())
            .given(vec![requested(), confirmed()])
            .when(BookingCommand::Complete {
                result_notes: "ok".into(),
            })
            .then_expect_events(vec![completed()]);
    }

    #[test]
    fn it_should_not_complete_a_pending_booking() {
        T::with(())
            .given(vec![requested()])
            .when(BookingCommand::Complete {
                result_notes: "ok".into(),
            })
            .then_expect_error(illegal(BookingStatus::Pending, BookingAction::Complete));
    }

    #[test]
    fn it_should_cancel_a_pending_or_confirmed_booking() {
        let cancelled = BookingEvent::HospitalBookingCancelled {
            reason: Some("改期".into()),
        };
        for given in [vec![requested()], vec![requested(), confirmed()]] {
            T::with(())
                .given(given)
                .when(BookingCommand::Cancel {
                    reason: Some("改期".into()),
                })
                .then_expect_events(vec![cancelled.clone()]);
        }
    }

    #[test]
    fn it_should_not_cancel_a_completed_booking() {
        T::with(())
            .given(vec![requested(), confirmed(), completed()])
            .when(BookingCommand::Cancel { reason: None })
            .then_expect_error(illegal(BookingStatus::Completed, BookingAction::Cancel));
    }
}
