//! The recorder's day: today's visits, by time or as a route between the
//! families' homes (`domain::route` plans it; this module looks up the homes).

use std::collections::HashMap;

use domain::ids::FamilyId;
use domain::route::{self, GeoPoint, Stop};
use projections::visits::VisitView;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::auth::Principal;
use crate::state::AppState;

/// Why a visit of the route kept its time slot (`route_note`).
pub const NO_HOME_COORDINATES: &str = "no_home_coordinates";

/// One visit of the route: the visit as in the list, and its leg.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutedVisit {
    #[serde(flatten)]
    pub visit: VisitView,
    /// Metres from the previous located home (or the start point; 0 for the first without one);
    /// null when this family has no home coordinates.
    pub leg_m: Option<f64>,
    /// `no_home_coordinates`: the family has no home coordinates, so the visit keeps its place
    /// in the order by time.
    pub route_note: Option<String>,
}

/// Today's visits as a route, with its length beside that of the order by time.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutedDay {
    pub appointments: Vec<RoutedVisit>,
    /// Metres along the route.
    pub total_m: f64,
    /// Metres along the same visits in the order of their times.
    pub by_time_total_m: f64,
}

/// The calling recorder's visits today, by time (cancelled ones left out).
pub async fn today(state: &AppState, p: &Principal) -> Result<Vec<VisitView>, AppError> {
    Ok(state.read().await.visits().on(p.user_id, state.today()).await?)
}

/// Today's visits of the calling recorder in the order that travels least from `start`
/// (see `domain::route` for the model and the time window).
pub async fn today_route(state: &AppState, p: &Principal, start: Option<GeoPoint>) -> Result<RoutedDay, AppError> {
    let visits = today(state, p).await?;
    let mut families: Vec<FamilyId> = visits.iter().map(|v| v.patient.family_id).collect();
    families.sort_unstable();
    families.dedup();
    let homes: HashMap<FamilyId, GeoPoint> = state
        .read()
        .await
        .families()
        .homes(&families)
        .await?
        .into_iter()
        .filter_map(|(id, lat, lng)| GeoPoint::parse(lat, lng).ok().map(|g| (id, g)))
        .collect();
    let stops = visits
        .iter()
        .map(|v| {
            let scheduled_time = domain::values::time(&v.scheduled_time)
                .map_err(|e| AppError::internal(anyhow::anyhow!("visit {}: {e}", v.id)))?;
            Ok(Stop {
                scheduled_time,
                home: homes.get(&v.patient.family_id).copied(),
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    let planned = route::plan(&stops, start, state.settings.sync.route_window_min);
    let mut visits: Vec<Option<VisitView>> = visits.into_iter().map(Some).collect();
    let appointments = planned
        .legs
        .iter()
        .filter_map(|leg| {
            let visit = visits[leg.stop].take()?;
            Some(RoutedVisit {
                visit,
                leg_m: leg.leg_m.map(whole_metres),
                route_note: leg.leg_m.is_none().then(|| NO_HOME_COORDINATES.to_string()),
            })
        })
        .collect();
    Ok(RoutedDay {
        appointments,
        total_m: whole_metres(planned.total_m),
        by_time_total_m: whole_metres(planned.by_time_total_m),
    })
}

/// Distances are answered to the metre: GPS and a straight line promise no more.
fn whole_metres(m: f64) -> f64 {
    m.round()
}
