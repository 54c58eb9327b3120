//! Which doctor a request or an alert goes to.

use domain::ids::UserId;

use crate::error::ApiError;
use crate::state::AppState;

/// The doctor for a patient's request or alert: the one named, else the
/// doctor of the patient's latest order, else the available doctor with the
/// fewest open requests. `None` when no doctor can take it.
pub async fn for_patient(state: &AppState, patient: &str, named: Option<UserId>) -> Result<Option<UserId>, ApiError> {
    if let Some(d) = named {
        let user = state.read.user(&d.to_string()).await?;
        return match user {
            Some(u) if u.role == "doctor" && u.status == "active" => Ok(Some(d)),
            _ => Err(ApiError::field("doctor_id", "医生不存在或不可用")),
        };
    }
    let id = match state.read.latest_order_doctor(patient).await? {
        Some(d) => {
            let active = state.read.user(&d).await?.is_some_and(|u| u.status == "active");
            if active {
                Some(d)
            } else {
                state.read.available_doctor().await?
            }
        }
        None => state.read.available_doctor().await?,
    };
    Ok(id.and_then(|d| d.parse().ok()))
}
