//! Which doctor a request or an alert goes to. Only doctors who take new
//! work are picked: active accounts marked available (`doctor.is_available`,
//! set by admins through `PATCH /users/{id}`).

use domain::ids::{PatientId, UserId};
use domain::user::{Role, UserStatus};
use projections::users::UserView;

use crate::app::error::AppError;
use crate::state::AppState;

/// Whether a user is a doctor who takes new requests and alerts.
fn takes_new_work(user: &UserView) -> bool {
    user.role == Role::Doctor
        && user.status == UserStatus::Active
        && user.doctor.as_ref().is_some_and(|d| d.is_available)
}

/// The doctor for a patient's request or alert: the one named (400 naming
/// `doctor_id` unless they take new work), else the doctor of the patient's
/// latest order if they take new work, else the available doctor with the
/// fewest open requests. `None` when no doctor can take it.
pub async fn for_patient(
    state: &AppState,
    patient: PatientId,
    named: Option<UserId>,
) -> Result<Option<UserId>, AppError> {
    if let Some(d) = named {
        let user = state.read().await.users().get(d).await?;
        return match user {
            Some(u) if takes_new_work(&u) => Ok(Some(d)),
            _ => Err(AppError::field("doctor_id", "医生不存在或不可用")),
        };
    }
    let latest = match state.read().await.orders().latest_doctor(patient).await? {
        Some(d) => state
            .read()
            .await
            .users()
            .get(d)
            .await?
            .filter(takes_new_work)
            .map(|u| u.id),
        None => None,
    };
    let id = match latest {
        Some(d) => Some(d),
        None => state.read().await.orders().available_doctor().await?,
    };
    Ok(id)
}
