//! Partner hospitals with their departments and doctors (the catalog), and
//! bookable slots. A slot's capacity is an invariant of the slot aggregate: a
//! booking is an event on the slot, appended under optimistic concurrency, so
//! concurrent bookings can never overbook it.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveTime};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{DepartmentId, HospitalBookingId, HospitalDoctorId, HospitalId, PatientId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HospitalDetails {
    pub name: String,
    pub address: String,
    pub phone: Option<String>,
    pub level: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepartmentDetails {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoctorDetails {
    pub department_id: DepartmentId,
    pub name: String,
    pub title: Option<String>,
    pub specialty: Option<String>,
    pub consultation_fee: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HospitalCommand {
    Register(HospitalDetails),
    SetActive {
        active: bool,
    },
    AddDepartment {
        id: DepartmentId,
        details: DepartmentDetails,
    },
    SetDepartmentActive {
        id: DepartmentId,
        active: bool,
    },
    AddDoctor {
        id: HospitalDoctorId,
        details: DoctorDetails,
    },
    SetDoctorActive {
        id: HospitalDoctorId,
        active: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HospitalEvent {
    HospitalRegistered(HospitalDetails),
    HospitalActivated,
    HospitalDeactivated,
    DepartmentAdded {
        id: DepartmentId,
        details: DepartmentDetails,
    },
    DepartmentActivityChanged {
        id: DepartmentId,
        active: bool,
    },
    HospitalDoctorAdded {
        id: HospitalDoctorId,
        details: DoctorDetails,
    },
    HospitalDoctorActivityChanged {
        id: HospitalDoctorId,
        active: bool,
    },
}

impl DomainEvent for HospitalEvent {
    fn event_type(&self) -> String {
        match self {
            Self::HospitalRegistered(_) => "HospitalRegistered",
            Self::HospitalActivated => "HospitalActivated",
            Self::HospitalDeactivated => "HospitalDeactivated",
            Self::DepartmentAdded { .. } => "DepartmentAdded",
            Self::DepartmentActivityChanged { .. } => "DepartmentActivityChanged",
            Self::HospitalDoctorAdded { .. } => "HospitalDoctorAdded",
            Self::HospitalDoctorActivityChanged { .. } => "HospitalDoctorActivityChanged",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Hospital {
    pub details: Option<HospitalDetails>,
    pub active: bool,
    /// department -> (name, active)
    pub departments: BTreeMap<DepartmentId, (String, bool)>,
    /// doctor -> (department, active)
    pub doctors: BTreeMap<HospitalDoctorId, (DepartmentId, bool)>,
}

impl Hospital {
    /// Whether new bookings may be taken for this department (and doctor).
    pub fn bookable(&self, department: DepartmentId, doctor: Option<HospitalDoctorId>) -> Result<(), DomainError> {
        if !self.active {
            return Err(DomainError::conflict("该医院已停止合作"));
        }
        match self.departments.get(&department) {
            Some((_, true)) => {}
            Some((_, false)) => return Err(DomainError::conflict("该科室已停用")),
            None => return Err(DomainError::field("department_id", "科室不存在")),
        }
        if let Some(d) = doctor {
            match self.doctors.get(&d) {
                Some((dep, true)) if *dep == department => {}
                Some((dep, _)) if *dep != department => {
                    return Err(DomainError::field("doctor_id", "医生不属于该科室"))
                }
                Some(_) => return Err(DomainError::conflict("该医生已停诊")),
                None => return Err(DomainError::field("doctor_id", "医生不存在")),
            }
        }
        Ok(())
    }
}

impl Aggregate for Hospital {
    const TYPE: &'static str = "hospital";
    type Command = HospitalCommand;
    type Event = HospitalEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: HospitalCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        if self.details.is_none() && !matches!(command, HospitalCommand::Register(_)) {
            return Err(DomainError::NotFound("hospital"));
        }
        let event = match command {
            HospitalCommand::Register(_) if self.details.is_some() => return Err(DomainError::conflict("医院已存在")),
            HospitalCommand::Register(d) => HospitalEvent::HospitalRegistered(d),
            HospitalCommand::SetActive { active } if active == self.active => return Ok(()),
            HospitalCommand::SetActive { active: true } => HospitalEvent::HospitalActivated,
            HospitalCommand::SetActive { active: false } => HospitalEvent::HospitalDeactivated,
            HospitalCommand::AddDepartment { id, details } => {
                if self.departments.values().any(|(n, _)| *n == details.name) {
                    return Err(DomainError::conflict("科室名称已存在"));
                }
                if self.departments.contains_key(&id) {
                    return Err(DomainError::conflict("科室已存在"));
                }
                HospitalEvent::DepartmentAdded { id, details }
            }
            HospitalCommand::SetDepartmentActive { id, active } => match self.departments.get(&id) {
                None => return Err(DomainError::NotFound("department")),
                Some((_, a)) if *a == active => return Ok(()),
                Some(_) => HospitalEvent::DepartmentActivityChanged { id, active },
            },
            HospitalCommand::AddDoctor { id, details } => {
                if !self.departments.contains_key(&details.department_id) {
                    return Err(DomainError::field("department_id", "科室不存在"));
                }
                if self.doctors.contains_key(&id) {
                    return Err(DomainError::conflict("医生已存在"));
                }
                HospitalEvent::HospitalDoctorAdded { id, details }
            }
            HospitalCommand::SetDoctorActive { id, active } => match self.doctors.get(&id) {
                None => return Err(DomainError::NotFound("doctor")),
                Some((_, a)) if *a == active => return Ok(()),
                Some(_) => HospitalEvent::HospitalDoctorActivityChanged { id, active },
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: HospitalEvent) {
        match event {
            HospitalEvent::HospitalRegistered(d) => {
                self.details = Some(d);
                self.active = true;
            }
            HospitalEvent::HospitalActivated => self.active = true,
            HospitalEvent::HospitalDeactivated => self.active = false,
            HospitalEvent::DepartmentAdded { id, details } => {
                self.departments.insert(id, (details.name, true));
            }
            HospitalEvent::DepartmentActivityChanged { id, active } => {
                if let Some(d) = self.departments.get_mut(&id) {
                    d.1 = active;
                }
            }
            HospitalEvent::HospitalDoctorAdded { id, details } => {
                self.doctors.insert(id, (details.department_id, true));
            }
            HospitalEvent::HospitalDoctorActivityChanged { id, active } => {
                if let Some(d) = self.doctors.get_mut(&id) {
                    d.1 = active;
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotDetails {
    pub hospital_id: HospitalId,
    pub department_id: DepartmentId,
    pub doctor_id: Option<HospitalDoctorId>,
    pub date: NaiveDate,
    pub time: NaiveTime,
    pub capacity: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SlotCommand {
    Open(SlotDetails),
    Book {
        booking_id: HospitalBookingId,
        patient_id: PatientId,
    },
    Release {
        booking_id: HospitalBookingId,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SlotEvent {
    SlotOpened(SlotDetails),
    SlotPlaceBooked {
        booking_id: HospitalBookingId,
        patient_id: PatientId,
    },
    SlotPlaceReleased {
        booking_id: HospitalBookingId,
    },
}

impl DomainEvent for SlotEvent {
    fn event_type(&self) -> String {
        match self {
            Self::SlotOpened(_) => "SlotOpened",
            Self::SlotPlaceBooked { .. } => "SlotPlaceBooked",
            Self::SlotPlaceReleased { .. } => "SlotPlaceReleased",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Slot {
    pub details: Option<SlotDetails>,
    /// booking -> patient, for the places taken now.
    pub bookings: BTreeMap<HospitalBookingId, PatientId>,
}

impl Aggregate for Slot {
    const TYPE: &'static str = "hospital_slot";
    type Command = SlotCommand;
    type Event = SlotEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: SlotCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        let event = match (&self.details, command) {
            (Some(_), SlotCommand::Open(_)) => return Err(DomainError::conflict("号源已存在")),
            (None, SlotCommand::Open(d)) => {
                if d.capacity == 0 || d.capacity > 1000 {
                    return Err(DomainError::field("capacity", "应在1到1000之间"));
                }
                SlotEvent::SlotOpened(d)
            }
            (None, _) => return Err(DomainError::NotFound("slot")),
            (Some(d), SlotCommand::Book { booking_id, patient_id }) => {
                if self.bookings.contains_key(&booking_id) {
                    return Ok(());
                }
                if self.bookings.values().any(|p| *p == patient_id) {
                    return Err(DomainError::conflict("该患者已预约此号源"));
                }
                if self.bookings.len() as u32 >= d.capacity {
                    return Err(DomainError::conflict("号源已满"));
                }
                SlotEvent::SlotPlaceBooked { booking_id, patient_id }
            }
            (Some(_), SlotCommand::Release { booking_id }) => {
                if !self.bookings.contains_key(&booking_id) {
                    return Ok(());
                }
                SlotEvent::SlotPlaceReleased { booking_id }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: SlotEvent) {
        match event {
            SlotEvent::SlotOpened(d) => self.details = Some(d),
            SlotEvent::SlotPlaceBooked { booking_id, patient_id } => {
                self.bookings.insert(booking_id, patient_id);
            }
            SlotEvent::SlotPlaceReleased { booking_id } => {
                self.bookings.remove(&booking_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn opened(capacity: u32) -> SlotEvent {
        SlotEvent::SlotOpened(SlotDetails {
            hospital_id: HospitalId::default(),
            department_id: DepartmentId::default(),
            doctor_id: None,
            date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            capacity,
        })
    }

    #[test]
    fn it_should_not_book_a_full_slot() {
        TestFramework::<Slot>::with(())
            .given(vec![
                opened(1),
                SlotEvent::SlotPlaceBooked {
                    booking_id: HospitalBookingId::new(),
                    patient_id: PatientId::new(),
                },
            ])
            .when(SlotCommand::Book {
                booking_id: HospitalBookingId::new(),
                patient_id: PatientId::new(),
            })
            .then_expect_error(DomainError::conflict("号源已满"));
    }

    #[test]
    fn it_should_free_a_place_when_a_booking_is_released() {
        let b = HospitalBookingId::new();
        let next = HospitalBookingId::new();
        let p = PatientId::new();
        TestFramework::<Slot>::with(())
            .given(vec![
                opened(1),
                SlotEvent::SlotPlaceBooked {
                    booking_id: b,
                    patient_id: PatientId::new(),
                },
                SlotEvent::SlotPlaceReleased { booking_id: b },
            ])
            .when(SlotCommand::Book {
                booking_id: next,
                patient_id: p,
            })
            .then_expect_events(vec![SlotEvent::SlotPlaceBooked {
                booking_id: next,
                patient_id: p,
            }]);
    }

    #[test]
    fn it_should_refuse_a_booking_in_an_inactive_department() {
        let mut h = Hospital {
            active: true,
            ..Default::default()
        };
        let dep = DepartmentId::new();
        h.departments.insert(dep, ("心内科".into(), false));
        assert!(matches!(h.bookable(dep, None), Err(DomainError::Conflict(_))));
        h.active = false;
        assert!(matches!(h.bookable(dep, None), Err(DomainError::Conflict(_))));
    }
}
