//! The auditor's history: every stored event with who, from where and when,
//! and any aggregate's state as of a past instant. Auditors and admins only.

use actix_web::web;
use chrono::Utc;
use domain::ids::{PatientId, UserId};
use domain::user::Role;
use domain::Validator;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::access_log::ReadOrigin;
use crate::api::access::instant;
use crate::api::error::{ok, ApiResult};
use crate::api::{paging, uuid_field};
use crate::app::error::AppError;
use crate::audit::{state_as_of, ReplayError, AGGREGATE_TYPES};
use crate::auth::Principal;
use crate::privacy::find_str;
use crate::state::AppState;
use crate::store::EventFilter;

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.get("/audit/events", events)
        .get("/audit/{aggregate_type}/{id}/state", state);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// e.g. `patient`, `health_record`, `appointment` (see docs/events.md).
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    /// Only events about this patient: the patient's own and those of their
    /// visits, health records, order requests, medical orders and bookings.
    pub patient_id: Option<String>,
    /// Only events caused by this user (id).
    pub actor: Option<String>,
    /// Recorded at or after this instant (RFC 3339).
    pub from: Option<String>,
    /// Recorded at or before this instant (RFC 3339).
    pub to: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

crate::api::list_page!(
    /// `{events:[...], total, page, limit}`
    EventList { events: crate::app::audit::AuditEvent }
);

fn aggregate_type(v: &mut Validator, raw: Option<&str>) -> Option<String> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    v.check(
        "aggregate_type",
        AGGREGATE_TYPES
            .contains(&raw)
            .then(|| raw.to_string())
            .ok_or_else(|| format!("应为以下之一：{}", AGGREGATE_TYPES.join(", "))),
    )
}

#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(EventsQuery), security(("bearer" = [])),
    responses((status = 200, description = "oldest first", body = crate::api::Envelope<EventList>),
        (status = 400, description = "names the field", body = crate::api::ErrorBody),
        (status = 403, description = "not an auditor or admin", body = crate::api::ErrorBody)))]
pub async fn events(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    q: web::Query<EventsQuery>,
) -> ApiResult {
    p.require(&[Role::Auditor, Role::Admin])?;
    let mut v = Validator::new();
    let actor: Option<UserId> = uuid_field(&mut v, "actor", q.actor.as_ref());
    let patient: Option<PatientId> = uuid_field(&mut v, "patient_id", q.patient_id.as_ref());
    let filter = EventFilter {
        aggregate_type: aggregate_type(&mut v, q.aggregate_type.as_deref()),
        aggregate_id: q
            .aggregate_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        actor_id: actor.map(|a| a.to_string()),
        from: instant(&mut v, "from", q.from.as_deref()),
        to: instant(&mut v, "to", q.to.as_deref()),
        patient_id: patient.map(|p| p.to_string()),
    };
    let paging = paging(q.page, q.limit);
    v.finish()?;
    let paging = paging?;
    let page = crate::app::audit::events(&state, &p, &origin, filter, paging).await?;
    Ok(ok(EventList::from(page)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// The instant (RFC 3339); default now.
    pub as_of: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/audit/{aggregate_type}/{id}/state", tag = "audit",
    params(("aggregate_type" = String, Path, description = "e.g. `patient`, `health_record`, `appointment` (see docs/events.md)"),
        ("id" = String, Path, description = "the aggregate's id"), StateQuery),
    security(("bearer" = [])),
    responses((status = 200, body = crate::api::Envelope<crate::audit::StateAsOf>, description = "the aggregate replayed from its events recorded up to as_of"),
        (status = 400, description = "unknown aggregate type or malformed as_of", body = crate::api::ErrorBody),
        (status = 403, description = "not an auditor or admin", body = crate::api::ErrorBody),
        (status = 404, description = "no events by then", body = crate::api::ErrorBody)))]
pub async fn state(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    path: web::Path<(String, String)>,
    q: web::Query<StateQuery>,
) -> ApiResult {
    p.require(&[Role::Auditor, Role::Admin])?;
    let (aggregate_type, id) = path.into_inner();
    let mut v = Validator::new();
    let as_of = instant(&mut v, "as_of", q.as_of.as_deref()).unwrap_or_else(Utc::now);
    v.finish()?;
    match state_as_of(&state.store, &aggregate_type, &id, as_of).await {
        Ok(Some(s)) => {
            let patient = match s.aggregate_type.as_str() {
                "patient" => Some(s.aggregate_id.clone()),
                _ => find_str(&s.state, "patient_id").map(str::to_string),
            };
            state.access.patients(&p, &origin, patient).await?;
            Ok(ok(s))
        }
        Ok(None) => Err(AppError::NotFound("aggregate").into()),
        Err(ReplayError::UnknownType(_)) => Err(AppError::field(
            "aggregate_type",
            format!("应为以下之一：{}", AGGREGATE_TYPES.join(", ")),
        )
        .into()),
        Err(ReplayError::Other(e)) => Err(AppError::internal(e).into()),
    }
}
