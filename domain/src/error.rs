//! [`DomainError`]: a refusal from any aggregate, as one type. The server runs
//! every aggregate through one generic command path and needs one error type
//! to carry back from it; each variant holds one aggregate's own error enum,
//! which says exactly why (`VisitError::IllegalTransition { .. }`,
//! `SlotError::Full`, …) and is what the aggregate's tests match.
//!
//! Nothing here is worded for people: the server's error module gives every
//! variant its HTTP status, its stable `error` string and its Chinese message,
//! in one place.

use std::convert::Infallible;

use crate::alert::AlertError;
use crate::booking::BookingError;
use crate::evv::EvvExceptionError;
use crate::family::FamilyError;
use crate::file::FileError;
use crate::health_record::HealthRecordError;
use crate::hospital::{HospitalError, SlotError};
use crate::job::JobRunError;
use crate::order::{MedicalOrderError, OrderRequestError};
use crate::package::PackageError;
use crate::patient::PatientError;
use crate::push::PushError;
use crate::subscription::SubscriptionError;
use crate::user::UserError;
use crate::visit::VisitError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Family(#[from] FamilyError),
    #[error(transparent)]
    Patient(#[from] PatientError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    #[error(transparent)]
    Visit(#[from] VisitError),
    #[error(transparent)]
    HealthRecord(#[from] HealthRecordError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    OrderRequest(#[from] OrderRequestError),
    #[error(transparent)]
    MedicalOrder(#[from] MedicalOrderError),
    #[error(transparent)]
    Hospital(#[from] HospitalError),
    #[error(transparent)]
    Slot(#[from] SlotError),
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    EvvException(#[from] EvvExceptionError),
    #[error(transparent)]
    Alert(#[from] AlertError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    JobRun(#[from] JobRunError),
}

/// What a refusal is about, for callers that treat its kinds alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RefusalKind<'a> {
    /// The command's input: these fields, each with why.
    Invalid(&'a crate::FieldErrors),
    /// The aggregate (or a part of it) does not exist: its resource name.
    NotFound(&'static str),
    /// A business rule of the aggregate turned the command down.
    Rule,
}

impl DomainError {
    /// The kind of this refusal (see [`RefusalKind`]); the resource names are
    /// the API's (`appointment` for a visit, `hospital_appointment` for a booking).
    pub fn kind(&self) -> RefusalKind<'_> {
        use RefusalKind::{Invalid, NotFound, Rule};
        match self {
            DomainError::User(UserError::Validation(i))
            | DomainError::Patient(PatientError::Validation(i))
            | DomainError::Package(PackageError::Validation(i))
            | DomainError::Subscription(SubscriptionError::Validation(i))
            | DomainError::Visit(VisitError::Validation(i))
            | DomainError::HealthRecord(HealthRecordError::Validation(i))
            | DomainError::MedicalOrder(MedicalOrderError::Validation(i))
            | DomainError::Hospital(HospitalError::Validation(i))
            | DomainError::Slot(SlotError::Validation(i))
            | DomainError::Booking(BookingError::Validation(i))
            | DomainError::EvvException(EvvExceptionError::Validation(i))
            | DomainError::Alert(AlertError::Validation(i)) => Invalid(&i.0),

            DomainError::User(UserError::NotFound) => NotFound("user"),
            DomainError::Family(FamilyError::NotFound) => NotFound("family"),
            DomainError::Patient(PatientError::NotFound) => NotFound("patient"),
            DomainError::Subscription(SubscriptionError::NotFound) => NotFound("subscription"),
            DomainError::Visit(VisitError::NotFound) => NotFound("appointment"),
            DomainError::HealthRecord(HealthRecordError::NotFound) => NotFound("health_record"),
            DomainError::OrderRequest(OrderRequestError::NotFound) => NotFound("order_request"),
            DomainError::MedicalOrder(MedicalOrderError::NotFound) => NotFound("medical_order"),
            DomainError::Hospital(HospitalError::NotFound) => NotFound("hospital"),
            DomainError::Hospital(HospitalError::DepartmentNotFound) => NotFound("department"),
            DomainError::Hospital(HospitalError::DoctorNotFound) => NotFound("doctor"),
            DomainError::Slot(SlotError::NotFound) => NotFound("slot"),
            DomainError::Booking(BookingError::NotFound) => NotFound("hospital_appointment"),
            DomainError::EvvException(EvvExceptionError::NotFound) => NotFound("evv_exception"),
            DomainError::Alert(AlertError::NotFound) => NotFound("alert"),
            DomainError::File(FileError::NotFound) => NotFound("file"),
            DomainError::Push(PushError::NotFound) => NotFound("push"),
            _ => Rule,
        }
    }
}

/// For aggregates that refuse nothing (the inbox).
impl From<Infallible> for DomainError {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}
