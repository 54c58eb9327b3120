//! A patient's booking at a partner hospital: pending → confirmed (number, fee)
//! → completed (result notes), or cancelled from pending or confirmed.

use chrono::{NaiveDate, NaiveTime};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{DepartmentId, HospitalDoctorId, HospitalId, PatientId, SlotId, UserId};

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

impl Aggregate for HospitalBooking {
    const TYPE: &'static str = "hospital_appointment";
    type Command = BookingCommand;
    type Event = BookingEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: BookingCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        use BookingStatus::*;
        let Some(details) = &self.details else {
            let BookingCommand::Request(d) = command else {
                return Err(DomainError::NotFound("hospital_appointment"));
            };
            sink.write(BookingEvent::HospitalBookingRequested(d), self).await;
            return Ok(());
        };
        let illegal = |what: &str| {
            Err(DomainError::conflict(format!(
                "当前状态（{}）不能{what}",
                self.status.as_str()
            )))
        };
        let event = match command {
            BookingCommand::Request(_) => return Err(DomainError::conflict("预约已存在")),
            BookingCommand::Confirm {
                appointment_number,
                fee,
            } => match self.status {
                Pending => {
                    if fee.is_some_and(|f| f < Decimal::ZERO) {
                        return Err(DomainError::field("fee", "不能为负数"));
                    }
                    BookingEvent::HospitalBookingConfirmed {
                        appointment_number,
                        fee,
                        recorder_id: details.recorder_id,
                    }
                }
                _ => return illegal("确认"),
            },
            BookingCommand::Complete { result_notes } => match self.status {
                Confirmed => BookingEvent::HospitalBookingCompleted { result_notes },
                _ => return illegal("完成"),
            },
            BookingCommand::Cancel { reason } => match self.status {
                Pending | Confirmed => BookingEvent::HospitalBookingCancelled { reason },
                _ => return illegal("取消"),
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

    fn requested() -> BookingEvent {
        BookingEvent::HospitalBookingRequested(BookingDetails {
            slot_id: SlotId::default(),
            patient_id: PatientId::default(),
            hospital_id: HospitalId::default(),
            department_id: DepartmentId::default(),
            doctor_id: None,
            appointment_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            appointment_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            notes: None,
            recorder_id: UserId::default(),
        })
    }

    #[test]
    fn it_should_not_complete_a_pending_booking() {
        TestFramework::<HospitalBooking>::with(())
            .given(vec![requested()])
            .when(BookingCommand::Complete {
                result_notes: "ok".into(),
            })
            .then_expect_error(DomainError::conflict("当前状态（pending）不能完成"));
    }

    #[test]
    fn it_should_not_cancel_a_completed_booking() {
        TestFramework::<HospitalBooking>::with(())
            .given(vec![
                requested(),
                BookingEvent::HospitalBookingConfirmed {
                    appointment_number: "A1".into(),
                    fee: None,
                    recorder_id: UserId::default(),
                },
                BookingEvent::HospitalBookingCompleted {
                    result_notes: "ok".into(),
                },
            ])
            .when(BookingCommand::Cancel { reason: None })
            .then_expect_error(DomainError::conflict("当前状态（completed）不能取消"));
    }
}
