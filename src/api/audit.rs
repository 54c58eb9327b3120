//! The auditor's history: every stored event with who, from where and when,
//! and any aggregate's state as of a past instant. Auditors and admins only.

use actix_web::{web, HttpRequest};
use chrono::Utc;
use domain::ids::{PatientId, UserId};
use domain::user::Role;
use domain::Validator;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::api::access::instant;
use crate::api::error::{ok, ApiResult};
use crate::api::{uuid_field, PageQuery};
use crate::app::error::AppError;
use crate::audit::{redact, state_as_of, ReplayError, AGGREGATE_TYPES};
use crate::auth::Principal;
use crate::privacy::find_str;
use crate::state::AppState;
use crate::store::{on_backend, Backend, EventFilter};

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
    EventList { events: AuditEvent }
);

/// One event as the auditor sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Global position (commit order).
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Position in the aggregate's own history, from 1.
    pub sequence: i64,
    /// The event type, e.g. `PatientRegistered`.
    pub r#type: String,
    /// Same as `type`.
    pub event_type: String,
    pub event_version: String,
    /// The event as stored: `{"<EventType>": {fields}}`, or the event type's
    /// name alone (a string) for an event without fields. Personal fields of
    /// erased patients read as erased.
    #[schema(value_type = Value)]
    pub payload: Value,
    /// Who caused the event (user id; null for the server's own commands).
    pub actor: Option<String>,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    /// The command that produced the event.
    pub command: Option<String>,
    /// For a command replayed by offline sync: the client's command id, its device,
    /// and when the device captured it (`recorded_at` stays the server's time).
    pub sync_command_id: Option<String>,
    pub device_id: Option<String>,
    pub captured_at: Option<String>,
    pub recorded_at: String,
    /// Same as `recorded_at`.
    pub time: String,
    /// The event's link in the hash chain (null until sealed, milliseconds after commit).
    pub hash: Option<String>,
}

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
    req: HttpRequest,
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
    let paging = PageQuery {
        page: q.page,
        limit: q.limit,
    }
    .params();
    v.finish()?;
    let paging = paging?;
    let total = state.store.count(&filter).await?;
    let raw = state
        .store
        .query_raw(&filter, 0, paging.limit(), paging.offset())
        .await?;
    let hashes = sealed_hashes(&state, raw.first().map(|e| e.position), raw.last().map(|e| e.position)).await?;
    let mut items = Vec::with_capacity(raw.len());
    for e in state.store.open_many(raw).await.map_err(AppError::internal)? {
        let hash = hashes.get(&e.position).cloned();
        let mut payload = e.payload;
        redact(&mut payload);
        let meta = |k: &str| e.metadata.get(k).filter(|s| !s.is_empty()).cloned();
        items.push(AuditEvent {
            position: e.position,
            sequence: e.sequence,
            r#type: e.event_type.clone(),
            event_type: e.event_type.clone(),
            event_version: e.event_version.clone(),
            payload,
            actor: meta("actor_id"),
            actor_id: meta("actor_id"),
            actor_role: meta("actor_role"),
            ip: meta("ip"),
            user_agent: meta("user_agent"),
            request_id: meta("request_id"),
            correlation_id: meta("correlation_id"),
            command: meta("command"),
            sync_command_id: meta("sync_command_id"),
            device_id: meta("device_id"),
            captured_at: meta("captured_at"),
            recorded_at: projections::store::instant(e.recorded_at),
            time: projections::store::instant(e.recorded_at),
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            hash,
        });
    }
    // Auditors' reads of patient data are themselves logged.
    let mut patients: Vec<String> = filter.patient_id.iter().cloned().collect();
    for e in &items {
        if let Some(patient) = patient_of(&state, e).await? {
            patients.push(patient);
        }
    }
    patients.sort();
    patients.dedup();
    state.access.patients(&p, &req, &patients).await?;
    Ok(ok(EventList {
        events: items,
        total,
        page: paging.page,
        limit: paging.limit,
    }))
}

/// The patient an event is about (none for households, files and staff).
async fn patient_of(state: &AppState, e: &AuditEvent) -> Result<Option<String>, AppError> {
    if matches!(e.aggregate_type.as_str(), "family" | "file") {
        return Ok(None);
    }
    state
        .store
        .privacy()
        .subject_of(&e.aggregate_type, &e.aggregate_id, &e.payload)
        .await
        .map_err(AppError::internal)
}

async fn sealed_hashes(
    state: &AppState,
    first: Option<i64>,
    last: Option<i64>,
) -> Result<std::collections::HashMap<i64, String>, AppError> {
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(Default::default());
    };
    let rows: Vec<(i64, String)> = on_backend!(state.store.backend(), |pool| sqlx::query_as(
        "SELECT position, hash FROM event_hashes WHERE position >= $1 AND position <= $2"
    )
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await)?;
    Ok(rows.into_iter().collect())
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
    req: HttpRequest,
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
            state.access.patients(&p, &req, patient).await?;
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
