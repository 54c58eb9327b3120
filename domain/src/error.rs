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

/// For aggregates that refuse nothing (the inbox).
impl From<Infallible> for DomainError {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}
