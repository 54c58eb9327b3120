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

use crate::ids::{DepartmentId, HospitalBookingId, HospitalDoctorId, HospitalId, PatientId};
use crate::validation::Invalid;

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

/// Whether carelog cooperates with a hospital now (`HospitalActivated` /
/// `HospitalDeactivated`): only active hospitals are searched and booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HospitalStatus {
    #[default]
    Active,
    Inactive,
}

impl HospitalStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
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

/// Every way a hospital refuses a command, or a booking in its catalog. The
/// server's error module gives each its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HospitalError {
    /// A department or doctor named that the catalog does not hold, or a
    /// doctor of another department (400, naming `department_id` or `doctor_id`).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No hospital was registered under this id (404).
    #[error("no such hospital")]
    NotFound,
    /// No such department in this hospital (404).
    #[error("no such department")]
    DepartmentNotFound,
    /// No such doctor in this hospital (404).
    #[error("no such doctor")]
    DoctorNotFound,
    /// A second registration under the same id (409).
    #[error("the hospital already exists")]
    AlreadyExists,
    /// Department names are unique within a hospital (409).
    #[error("a department of that name already exists")]
    DepartmentNameTaken,
    /// A second department under the same id (409).
    #[error("the department already exists")]
    DepartmentExists,
    /// A second doctor under the same id (409).
    #[error("the doctor already exists")]
    DoctorExists,
    /// The hospital no longer takes bookings (409).
    #[error("the hospital is inactive")]
    Inactive,
    /// The department no longer takes bookings (409).
    #[error("the department is inactive")]
    DepartmentInactive,
    /// The doctor no longer takes bookings (409).
    #[error("the doctor is inactive")]
    DoctorInactive,
}

impl Hospital {
    /// Whether new bookings may be taken for this department (and doctor).
    pub fn bookable(&self, department: DepartmentId, doctor: Option<HospitalDoctorId>) -> Result<(), HospitalError> {
        if !self.active {
            return Err(HospitalError::Inactive);
        }
        match self.departments.get(&department) {
            Some((_, true)) => {}
            Some((_, false)) => return Err(HospitalError::DepartmentInactive),
            None => return Err(Invalid::field("department_id", "科室不存在").into()),
        }
        if let Some(d) = doctor {
            match self.doctors.get(&d) {
                Some((dep, true)) if *dep == department => {}
                Some((dep, _)) if *dep != department => {
                    return Err(Invalid::field("doctor_id", "医生不属于该科室").into())
                }
                Some(_) => return Err(HospitalError::DoctorInactive),
                None => return Err(Invalid::field("doctor_id", "医生不存在").into()),
            }
        }
        Ok(())
    }
}

impl Aggregate for Hospital {
    const TYPE: &'static str = "hospital";
    type Command = HospitalCommand;
    type Event = HospitalEvent;
    type Error = HospitalError;
    type Services = ();

    async fn handle(&mut self, command: HospitalCommand, _: &(), sink: &EventSink<Self>) -> Result<(), HospitalError> {
        if self.details.is_none() && !matches!(command, HospitalCommand::Register(_)) {
            return Err(HospitalError::NotFound);
        }
        let event = match command {
            HospitalCommand::Register(_) if self.details.is_some() => return Err(HospitalError::AlreadyExists),
            HospitalCommand::Register(d) => HospitalEvent::HospitalRegistered(d),
            HospitalCommand::SetActive { active } if active == self.active => return Ok(()),
            HospitalCommand::SetActive { active: true } => HospitalEvent::HospitalActivated,
            HospitalCommand::SetActive { active: false } => HospitalEvent::HospitalDeactivated,
            HospitalCommand::AddDepartment { id, details } => {
                if self.departments.values().any(|(n, _)| *n == details.name) {
                    return Err(HospitalError::DepartmentNameTaken);
                }
                if self.departments.contains_key(&id) {
                    return Err(HospitalError::DepartmentExists);
                }
                HospitalEvent::DepartmentAdded { id, details }
            }
            HospitalCommand::SetDepartmentActive { id, active } => match self.departments.get(&id) {
                None => return Err(HospitalError::DepartmentNotFound),
                Some((_, a)) if *a == active => return Ok(()),
                Some(_) => HospitalEvent::DepartmentActivityChanged { id, active },
            },
            HospitalCommand::AddDoctor { id, details } => {
                if !self.departments.contains_key(&details.department_id) {
                    return Err(Invalid::field("department_id", "科室不存在").into());
                }
                if self.doctors.contains_key(&id) {
                    return Err(HospitalError::DoctorExists);
                }
                HospitalEvent::HospitalDoctorAdded { id, details }
            }
            HospitalCommand::SetDoctorActive { id, active } => match self.doctors.get(&id) {
                None => return Err(HospitalError::DoctorNotFound),
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

/// Every way a slot refuses a command. The server's error module gives each
/// its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SlotError {
    /// A capacity outside 1 to 1000 (400, `capacity`).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No slot was opened under this id (404).
    #[error("no such slot")]
    NotFound,
    /// A second opening under the same id (409).
    #[error("the slot already exists")]
    AlreadyExists,
    /// One place per patient in a slot (409).
    #[error("the patient already holds a place in this slot")]
    PatientAlreadyBooked,
    /// Every place is taken (409).
    #[error("the slot is full")]
    Full,
}

impl Aggregate for Slot {
    const TYPE: &'static str = "hospital_slot";
    type Command = SlotCommand;
    type Event = SlotEvent;
    type Error = SlotError;
    type Services = ();

    async fn handle(&mut self, command: SlotCommand, _: &(), sink: &EventSink<Self>) -> Result<(), SlotError> {
        let event = match (&self.details, command) {
            (Some(_), SlotCommand::Open(_)) => return Err(SlotError::AlreadyExists),
            (None, SlotCommand::Open(d)) => {
                if d.capacity == 0 || d.capacity > 1000 {
                    return Err(Invalid::field("capacity", "应在1到1000之间").into());
                }
                SlotEvent::SlotOpened(d)
            }
            (None, _) => return Err(SlotError::NotFound),
            (Some(d), SlotCommand::Book { booking_id, patient_id }) => {
                if self.bookings.contains_key(&booking_id) {
                    return Ok(());
                }
                if self.bookings.values().any(|p| *p == patient_id) {
                    return Err(SlotError::PatientAlreadyBooked);
                }
                if self.bookings.len() as u32 >= d.capacity {
                    return Err(SlotError::Full);
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

    type H = TestFramework<Hospital>;
    type S = TestFramework<Slot>;

    fn dep() -> DepartmentId {
        DepartmentId(uuid::Uuid::from_u128(1))
    }
    fn other_dep() -> DepartmentId {
        DepartmentId(uuid::Uuid::from_u128(2))
    }
    fn doc() -> HospitalDoctorId {
        HospitalDoctorId(uuid::Uuid::from_u128(3))
    }
    fn hospital_details() -> HospitalDetails {
        HospitalDetails {
            name: "瑞金医院".into(),
            address: "上海市瑞金二路197号".into(),
            phone: None,
            level: Some("三甲".into()),
        }
    }
    fn registered() -> HospitalEvent {
        HospitalEvent::HospitalRegistered(hospital_details())
    }
    fn cardiology() -> DepartmentDetails {
        DepartmentDetails {
            name: "心内科".into(),
            description: None,
        }
    }
    fn department_added() -> HospitalEvent {
        HospitalEvent::DepartmentAdded {
            id: dep(),
            details: cardiology(),
        }
    }
    fn doctor(department_id: DepartmentId) -> DoctorDetails {
        DoctorDetails {
            department_id,
            name: "张医生".into(),
            title: None,
            specialty: None,
            consultation_fee: None,
        }
    }
    fn doctor_added() -> HospitalEvent {
        HospitalEvent::HospitalDoctorAdded {
            id: doc(),
            details: doctor(dep()),
        }
    }
    fn names(r: Result<(), HospitalError>, field: &str) -> bool {
        matches!(r, Err(HospitalError::Validation(i)) if i.names(field))
    }
    /// The hospital after `events`.
    fn hospital(events: Vec<HospitalEvent>) -> Hospital {
        let mut h = Hospital::default();
        for e in events {
            h.apply(e);
        }
        h
    }

    #[test]
    fn it_should_register_a_hospital_as_active() {
        H::with(())
            .given_no_previous_events()
            .when(HospitalCommand::Register(hospital_details()))
            .then_expect_events(vec![registered()]);
        assert!(hospital(vec![registered()]).active);
    }

    #[test]
    fn it_should_not_register_a_hospital_twice() {
        H::with(())
            .given(vec![registered()])
            .when(HospitalCommand::Register(hospital_details()))
            .then_expect_error(HospitalError::AlreadyExists);
    }

    #[test]
    fn it_should_refuse_every_other_command_for_a_hospital_never_registered() {
        H::with(())
            .given_no_previous_events()
            .when(HospitalCommand::SetActive { active: false })
            .then_expect_error(HospitalError::NotFound);
        H::with(())
            .given_no_previous_events()
            .when(HospitalCommand::AddDepartment {
                id: dep(),
                details: cardiology(),
            })
            .then_expect_error(HospitalError::NotFound);
    }

    #[test]
    fn it_should_deactivate_and_reactivate_a_hospital() {
        H::with(())
            .given(vec![registered()])
            .when(HospitalCommand::SetActive { active: false })
            .then_expect_events(vec![HospitalEvent::HospitalDeactivated]);
        H::with(())
            .given(vec![registered(), HospitalEvent::HospitalDeactivated])
            .when(HospitalCommand::SetActive { active: true })
            .then_expect_events(vec![HospitalEvent::HospitalActivated]);
    }

    #[test]
    fn it_should_record_nothing_when_the_hospital_is_already_so() {
        H::with(())
            .given(vec![registered()])
            .when(HospitalCommand::SetActive { active: true })
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_add_a_department() {
        H::with(())
            .given(vec![registered()])
            .when(HospitalCommand::AddDepartment {
                id: dep(),
                details: cardiology(),
            })
            .then_expect_events(vec![department_added()]);
    }

    #[test]
    fn it_should_refuse_a_second_department_of_the_same_name() {
        H::with(())
            .given(vec![registered(), department_added()])
            .when(HospitalCommand::AddDepartment {
                id: other_dep(),
                details: cardiology(),
            })
            .then_expect_error(HospitalError::DepartmentNameTaken);
    }

    #[test]
    fn it_should_refuse_a_second_department_under_the_same_id() {
        H::with(())
            .given(vec![registered(), department_added()])
            .when(HospitalCommand::AddDepartment {
                id: dep(),
                details: DepartmentDetails {
                    name: "骨科".into(),
                    description: None,
                },
            })
            .then_expect_error(HospitalError::DepartmentExists);
    }

    #[test]
    fn it_should_deactivate_a_department_once() {
        let deactivated = HospitalEvent::DepartmentActivityChanged {
            id: dep(),
            active: false,
        };
        H::with(())
            .given(vec![registered(), department_added()])
            .when(HospitalCommand::SetDepartmentActive {
                id: dep(),
                active: false,
            })
            .then_expect_events(vec![deactivated.clone()]);
        H::with(())
            .given(vec![registered(), department_added(), deactivated])
            .when(HospitalCommand::SetDepartmentActive {
                id: dep(),
                active: false,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_not_change_a_department_the_hospital_does_not_have() {
        H::with(())
            .given(vec![registered()])
            .when(HospitalCommand::SetDepartmentActive {
                id: dep(),
                active: false,
            })
            .then_expect_error(HospitalError::DepartmentNotFound);
    }

    #[test]
    fn it_should_add_a_doctor_to_one_of_its_departments() {
        H::with(())
            .given(vec![registered(), department_added()])
            .when(HospitalCommand::AddDoctor {
                id: doc(),
                details: doctor(dep()),
            })
            .then_expect_events(vec![doctor_added()]);
    }

    #[test]
    fn it_should_not_add_a_doctor_to_a_department_it_does_not_have() {
        let r = H::with(())
            .given(vec![registered(), department_added()])
            .when(HospitalCommand::AddDoctor {
                id: doc(),
                details: doctor(other_dep()),
            })
            .inspect_result();
        assert!(matches!(r, Err(HospitalError::Validation(i)) if i.names("department_id")));
    }

    #[test]
    fn it_should_not_add_a_doctor_twice() {
        H::with(())
            .given(vec![registered(), department_added(), doctor_added()])
            .when(HospitalCommand::AddDoctor {
                id: doc(),
                details: doctor(dep()),
            })
            .then_expect_error(HospitalError::DoctorExists);
    }

    #[test]
    fn it_should_take_a_doctor_off_duty() {
        H::with(())
            .given(vec![registered(), department_added(), doctor_added()])
            .when(HospitalCommand::SetDoctorActive {
                id: doc(),
                active: false,
            })
            .then_expect_events(vec![HospitalEvent::HospitalDoctorActivityChanged {
                id: doc(),
                active: false,
            }]);
    }

    #[test]
    fn it_should_not_change_a_doctor_the_hospital_does_not_have() {
        H::with(())
            .given(vec![registered(), department_added()])
            .when(HospitalCommand::SetDoctorActive {
                id: doc(),
                active: false,
            })
            .then_expect_error(HospitalError::DoctorNotFound);
    }

    #[test]
    fn it_should_take_bookings_for_an_active_department_and_doctor() {
        let h = hospital(vec![registered(), department_added(), doctor_added()]);
        assert_eq!(h.bookable(dep(), None), Ok(()));
        assert_eq!(h.bookable(dep(), Some(doc())), Ok(()));
    }

    #[test]
    fn it_should_refuse_a_booking_in_an_inactive_hospital_or_department() {
        let off = HospitalEvent::DepartmentActivityChanged {
            id: dep(),
            active: false,
        };
        let h = hospital(vec![registered(), department_added(), off]);
        assert_eq!(h.bookable(dep(), None), Err(HospitalError::DepartmentInactive));
        let h = hospital(vec![
            registered(),
            department_added(),
            HospitalEvent::HospitalDeactivated,
        ]);
        assert_eq!(h.bookable(dep(), None), Err(HospitalError::Inactive));
    }

    #[test]
    fn it_should_refuse_a_booking_with_an_inactive_doctor() {
        let off = HospitalEvent::HospitalDoctorActivityChanged {
            id: doc(),
            active: false,
        };
        let h = hospital(vec![registered(), department_added(), doctor_added(), off]);
        assert_eq!(h.bookable(dep(), Some(doc())), Err(HospitalError::DoctorInactive));
    }

    #[test]
    fn it_should_refuse_a_booking_naming_a_department_or_doctor_it_does_not_have() {
        let second = HospitalEvent::DepartmentAdded {
            id: other_dep(),
            details: DepartmentDetails {
                name: "骨科".into(),
                description: None,
            },
        };
        let h = hospital(vec![registered(), department_added(), doctor_added(), second]);
        assert!(names(h.bookable(DepartmentId::new(), None), "department_id"));
        assert!(names(h.bookable(dep(), Some(HospitalDoctorId::new())), "doctor_id"));
        assert!(
            names(h.bookable(other_dep(), Some(doc())), "doctor_id"),
            "a doctor of another department"
        );
    }

    fn details(capacity: u32) -> SlotDetails {
        SlotDetails {
            hospital_id: HospitalId::default(),
            department_id: DepartmentId::default(),
            doctor_id: None,
            date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            capacity,
        }
    }
    fn opened(capacity: u32) -> SlotEvent {
        SlotEvent::SlotOpened(details(capacity))
    }
    fn booked(booking_id: HospitalBookingId, patient_id: PatientId) -> SlotEvent {
        SlotEvent::SlotPlaceBooked { booking_id, patient_id }
    }
    fn book(booking_id: HospitalBookingId, patient_id: PatientId) -> SlotCommand {
        SlotCommand::Book { booking_id, patient_id }
    }

    #[test]
    fn it_should_open_a_slot() {
        S::with(())
            .given_no_previous_events()
            .when(SlotCommand::Open(details(2)))
            .then_expect_events(vec![opened(2)]);
    }

    #[test]
    fn it_should_refuse_a_slot_without_places_or_with_too_many() {
        for capacity in [0, 1001] {
            let r = S::with(())
                .given_no_previous_events()
                .when(SlotCommand::Open(details(capacity)))
                .inspect_result();
            assert!(matches!(r, Err(SlotError::Validation(i)) if i.names("capacity")));
        }
    }

    #[test]
    fn it_should_not_open_a_slot_twice() {
        S::with(())
            .given(vec![opened(1)])
            .when(SlotCommand::Open(details(1)))
            .then_expect_error(SlotError::AlreadyExists);
    }

    #[test]
    fn it_should_refuse_to_book_or_release_a_slot_never_opened() {
        let b = HospitalBookingId::new();
        for command in [book(b, PatientId::new()), SlotCommand::Release { booking_id: b }] {
            S::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(SlotError::NotFound);
        }
    }

    #[test]
    fn it_should_book_a_place() {
        let (b, p) = (HospitalBookingId::new(), PatientId::new());
        S::with(())
            .given(vec![opened(1)])
            .when(book(b, p))
            .then_expect_events(vec![booked(b, p)]);
    }

    #[test]
    fn it_should_record_nothing_when_the_same_booking_books_again() {
        let (b, p) = (HospitalBookingId::new(), PatientId::new());
        S::with(())
            .given(vec![opened(1), booked(b, p)])
            .when(book(b, p))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_not_book_one_patient_twice_into_a_slot() {
        let p = PatientId::new();
        S::with(())
            .given(vec![opened(2), booked(HospitalBookingId::new(), p)])
            .when(book(HospitalBookingId::new(), p))
            .then_expect_error(SlotError::PatientAlreadyBooked);
    }

    #[test]
    fn it_should_not_book_a_full_slot() {
        S::with(())
            .given(vec![opened(1), booked(HospitalBookingId::new(), PatientId::new())])
            .when(book(HospitalBookingId::new(), PatientId::new()))
            .then_expect_error(SlotError::Full);
    }

    #[test]
    fn it_should_free_a_place_when_a_booking_is_released() {
        let b = HospitalBookingId::new();
        let (next, p) = (HospitalBookingId::new(), PatientId::new());
        S::with(())
            .given(vec![opened(1), booked(b, PatientId::new())])
            .when(SlotCommand::Release { booking_id: b })
            .then_expect_events(vec![SlotEvent::SlotPlaceReleased { booking_id: b }]);
        S::with(())
            .given(vec![
                opened(1),
                booked(b, PatientId::new()),
                SlotEvent::SlotPlaceReleased { booking_id: b },
            ])
            .when(book(next, p))
            .then_expect_events(vec![booked(next, p)]);
    }

    #[test]
    fn it_should_record_nothing_when_releasing_a_booking_it_does_not_hold() {
        S::with(())
            .given(vec![opened(1)])
            .when(SlotCommand::Release {
                booking_id: HospitalBookingId::new(),
            })
            .then_expect_events(vec![]);
    }
}
