//! The access policy: whether a caller may see a patient or a household.
//!
//! Every read and every command about a patient asks here, so the rule is
//! written once: admins see everyone; a recorder sees the patients assigned to
//! them today (an `active` subscription with `start_date <= today <=
//! end_date`, see `projections::subscriptions::assigned_sql`); a doctor sees
//! the patients an order request or a medical order links them to; auditors
//! see no patient through the business endpoints.
//!
//! Each check a request passes is also remembered for the request (see
//! [`crate::idempotency`]): a command repeated with the same `Idempotency-Key`
//! is answered from its stored response only after the same checks pass again
//! for the caller of the repeat.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use domain::ids::{FamilyId, PatientId, UserId};
use domain::user::Role;
use serde::{Deserialize, Serialize};

use crate::app::error::AppError;
use crate::auth::Principal;
use crate::state::AppState;

/// Whether `p` may see `patient`'s data today.
pub async fn can_see_patient(state: &AppState, p: &Principal, patient: PatientId) -> Result<bool, AppError> {
    let visible = patient_visible(state, p, patient).await?;
    if visible {
        remember(Guard::Patient(patient));
    }
    Ok(visible)
}

/// As [`can_see_patient`], a patient the caller may not see being absent (404).
pub async fn ensure_sees_patient(state: &AppState, p: &Principal, patient: PatientId) -> Result<(), AppError> {
    match can_see_patient(state, p, patient).await? {
        true => Ok(()),
        false => Err(AppError::NotFound("patient")),
    }
}

/// The rule behind [`can_see_patient`], without remembering the check.
pub(crate) async fn patient_visible(state: &AppState, p: &Principal, patient: PatientId) -> Result<bool, AppError> {
    Ok(match p.role {
        Role::Admin => true,
        Role::Recorder => {
            state
                .read()
                .await
                .subscriptions()
                .assigned(p.user_id, patient, state.today())
                .await?
        }
        Role::Doctor => {
            state
                .read()
                .await
                .orders()
                .doctor_sees_patient(p.user_id, patient)
                .await?
        }
        Role::Auditor => false,
    })
}

/// Whether `p` may see the household `family`: admins always, a recorder when
/// one of its patients is assigned to them; everyone else is told it does not
/// exist. A recorder then sees only their own patients of it.
pub async fn can_see_family(state: &AppState, p: &Principal, family: FamilyId) -> Result<bool, AppError> {
    let visible = family_visible(state, p, family).await?;
    if visible {
        remember(Guard::Family(family));
    }
    Ok(visible)
}

/// As [`can_see_family`], a household the caller may not see being absent (404).
pub async fn ensure_sees_family(state: &AppState, p: &Principal, family: FamilyId) -> Result<(), AppError> {
    match can_see_family(state, p, family).await? {
        true => Ok(()),
        false => Err(AppError::NotFound("family")),
    }
}

pub(crate) async fn family_visible(state: &AppState, p: &Principal, family: FamilyId) -> Result<bool, AppError> {
    Ok(match p.role {
        Role::Admin => true,
        Role::Recorder => {
            state
                .read()
                .await
                .families()
                .sees(p.user_id, family, state.today())
                .await?
        }
        _ => false,
    })
}

/// The recorder whose assignments limit what `p` sees inside a household or
/// an inbox: `Some(own id)` for a recorder, `None` (everything) for admins.
pub fn recorder_scope(p: &Principal) -> Option<UserId> {
    p.is(Role::Recorder).then_some(p.user_id)
}

/// Nothing new is recorded for an erased patient (409), not even what carries
/// no personal field: an erasure ends the patient's care in carelog. Asked by
/// every use case that starts something for a patient (visits, records,
/// subscriptions, orders, bookings); the key store says, not a read model.
pub async fn ensure_not_erased(state: &AppState, patient: PatientId) -> Result<(), AppError> {
    let erased = state
        .store
        .privacy()
        .is_erased(&patient.to_string())
        .await
        .map_err(AppError::internal)?;
    if erased {
        return Err(domain::DomainError::from(domain::patient::PatientError::Erased).into());
    }
    Ok(())
}

/// An access check a request passed, to be passed again before its stored
/// response is replayed. Stored as JSON, `{"kind": "patient", "id": "<uuid>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Guard {
    /// The caller could see this patient.
    Patient(PatientId),
    /// The caller could see this household.
    Family(FamilyId),
}

impl Guard {
    pub(crate) async fn holds(&self, state: &AppState, p: &Principal) -> Result<bool, AppError> {
        match *self {
            Guard::Patient(id) => patient_visible(state, p, id).await,
            Guard::Family(id) => family_visible(state, p, id).await,
        }
    }

    pub(crate) fn refusal(&self) -> AppError {
        match self {
            Guard::Patient(_) => AppError::NotFound("patient"),
            Guard::Family(_) => AppError::NotFound("family"),
        }
    }
}

tokio::task_local! {
    /// The checks passed by the request being served (set by the idempotency middleware through [`remembering`]).
    static GUARDS: Rc<RefCell<Vec<Guard>>>;
}

/// Remembers a passed access check for the current request, if it is an
/// idempotent command (elsewhere this does nothing).
pub fn remember(guard: Guard) {
    let _ = GUARDS.try_with(|guards| {
        let mut guards = guards.borrow_mut();
        if !guards.contains(&guard) {
            guards.push(guard);
        }
    });
}

/// Runs `fut` (the rest of a request) remembering in `guards` every check it passes.
pub(crate) async fn remembering<F: Future>(guards: Rc<RefCell<Vec<Guard>>>, fut: F) -> F::Output {
    GUARDS.scope(guards, fut).await
}
