//! Visit verification use cases: a recorder checks in to and out of their
//! visit. Both take the instant as input (the server's clock for HTTP, the
//! captured time for an offline command replayed by sync), look up the
//! family's home, and let the visit aggregate decide.

use chrono::{DateTime, Utc};
use domain::ids::{FamilyId, VisitId};
use domain::user::Role;
use domain::visit::{Coordinates, MarkFacts, Visit, VisitCommand};
use domain::Validator;
use projections::visits::VisitView;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::input::{path_id, required};
use crate::auth::Principal;
use crate::policy::can_see_patient;
use crate::state::{AppState, RequestMeta};

/// Which end of the visit a mark is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitEnd {
    CheckIn,
    CheckOut,
}

/// The visit after a check-in or check-out, as the read model shows it, with
/// the aggregate's new version.
#[derive(Debug, Clone)]
pub struct Marked {
    pub visit: VisitView,
    pub version: i64,
}

/// Where the recorder stands at a check-in or check-out.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PositionInput {
    /// Latitude, −90 to 90.
    #[schema(required = true, minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    /// Longitude, −180 to 180.
    #[schema(required = true, minimum = -180, maximum = 180)]
    pub lng: Option<f64>,
}

impl PositionInput {
    /// The position, or 400 naming `lat` / `lng`.
    pub fn parse(&self) -> Result<Coordinates, AppError> {
        let mut v = Validator::new();
        let lat = required(&mut v, "lat", &self.lat).copied();
        let lng = required(&mut v, "lng", &self.lng).copied();
        v.finish()?;
        let (Some(lat), Some(lng)) = (lat, lng) else {
            return Err(AppError::field("body", "缺少必填字段"));
        };
        Ok(Coordinates::parse(lat, lng)?)
    }
}

/// Checks `p` in to (or out of) visit `visit_id` at `at`, standing at
/// `position`: the server's clock for HTTP, the captured time for an offline
/// command replayed by sync.
pub async fn mark(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    visit_id: &str,
    end: VisitEnd,
    position: Coordinates,
    at: DateTime<Utc>,
) -> Result<Marked, AppError> {
    let visit = recorders_visit(state, p, visit_id).await?;
    let facts = MarkFacts {
        at,
        position,
        home: family_home(state, visit.patient.family_id).await?,
    };
    let (command, name) = match end {
        VisitEnd::CheckIn => (VisitCommand::CheckIn(facts), "CheckInVisit"),
        VisitEnd::CheckOut => (VisitCommand::CheckOut(facts), "CheckOutVisit"),
    };
    let committed = state
        .execute::<Visit>(&visit.id.to_string(), command, meta.context(Some(p), name))
        .await?;
    let visit = state
        .read()
        .await
        .visits()
        .get(visit.id)
        .await?
        .ok_or(AppError::NotFound("appointment"))?;
    Ok(Marked {
        visit,
        version: committed.version,
    })
}

/// The visit, if `p` is its recorder and its patient is still theirs: only the
/// recorder who stands at the door checks in (admins and others get 403).
async fn recorders_visit(state: &AppState, p: &Principal, id: &str) -> Result<VisitView, AppError> {
    p.require(&[Role::Recorder])?;
    let vid: VisitId = path_id(id, "appointment")?;
    let visit = state
        .read()
        .await
        .visits()
        .get(vid)
        .await?
        .ok_or(AppError::NotFound("appointment"))?;
    if visit.recorder_id != p.user_id || !can_see_patient(state, p, visit.patient.id).await? {
        return Err(AppError::NotFound("appointment"));
    }
    Ok(visit)
}

/// The family's home as `(lat, lng)`, when it has coordinates.
async fn family_home(state: &AppState, family_id: FamilyId) -> Result<Option<(f64, f64)>, AppError> {
    let family = state
        .read()
        .await
        .families()
        .get(family_id, state.today(), None)
        .await?;
    Ok(family.and_then(|f| f.home_lat.zip(f.home_lng)))
}
