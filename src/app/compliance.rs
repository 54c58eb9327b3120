//! A recorder's standing (certificate, duty) as the subscription and visit
//! aggregates need it to decide whether the recorder may be given new work.

use domain::compliance::RecorderStanding;
use domain::ids::UserId;

use crate::app::error::AppError;
use crate::state::AppState;

/// The standing today of recorder `recorder_id`, from the users read model
/// (where `PATCH /users/{id}` edits it). A user without a recorder profile
/// has no certificate on file and counts as on duty; whether they may be
/// assigned at all is the caller's check.
pub async fn recorder_standing(state: &AppState, recorder_id: UserId) -> Result<RecorderStanding, AppError> {
    let today = state.today();
    let profile = state
        .read()
        .await
        .users()
        .get(recorder_id)
        .await?
        .and_then(|u| u.recorder);
    let Some(profile) = profile else {
        return Ok(RecorderStanding::good(today));
    };
    Ok(RecorderStanding {
        // Stored as `YYYY-MM-DD` by the projector; anything else is no date.
        cert_expiry_date: profile.cert_expiry_date.and_then(|d| d.parse().ok()),
        on_duty: profile.is_on_duty,
        today,
    })
}
