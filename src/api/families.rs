//! Families and their patients.

use actix_web::web;
use domain::ids::{FamilyId, PatientId};
use domain::user::Role;
use projections::families::{FamilyDetail, FamilyListItem, PatientView};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::api::error::{created, ok, ok_versioned, ApiResult};
use crate::api::{paging, path_id, Body, IdVersion};
use crate::app::error::AppError;
use crate::app::families;
pub use crate::app::families::{FamilyInput, PatientInput};
use crate::auth::Principal;
use crate::policy::{ensure_sees_family, ensure_sees_patient, recorder_scope};
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/families", create_family)
        .get("/families", list_families)
        .get("/families/{id}", get_family)
        .patch("/families/{id}", update_family)
        .post("/families/{id}/patients", create_patient)
        .get("/patients/{id}", get_patient)
        .patch("/patients/{id}", update_patient);
}

/// Body of `POST /families`: [`FamilyInput`] with its required fields (the
/// schema only; the handler reads a [`FamilyInput`] and names what is missing).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewFamily {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    family_name: String,
    /// 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    primary_address: String,
    #[schema(max_length = 255)]
    secondary_address: Option<String>,
    /// A mobile or landline number.
    contact_phone: String,
    #[schema(max_length = 100)]
    emergency_contact: Option<String>,
    emergency_phone: Option<String>,
    /// The home's latitude (with `home_lng`), -90 to 90.
    #[schema(minimum = -90, maximum = 90)]
    home_lat: Option<f64>,
    /// The home's longitude (with `home_lat`), -180 to 180.
    #[schema(minimum = -180, maximum = 180)]
    home_lng: Option<f64>,
}

#[utoipa::path(post, path = "/api/v1/families", tag = "families", request_body = NewFamily, security(("bearer" = [])),
    responses((status = 201, description = "the new family's id", body = crate::api::Envelope<IdVersion>)))]
pub async fn create_family(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    body: Body<FamilyInput>,
) -> ApiResult {
    Ok(created(families::create_family(&state, &p, &meta, &body.0).await?))
}

#[utoipa::path(patch, path = "/api/v1/families/{id}", tag = "families", request_body = FamilyInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "family id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, description = "the family's new version", body = crate::api::Envelope<IdVersion>),
        (status = 404, body = crate::api::ErrorBody),
        (status = 409, description = "`version_conflict`: If-Match is stale; `conflict`: the family is erased", body = crate::api::ErrorBody)))]
pub async fn update_family(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<FamilyInput>,
) -> ApiResult {
    Ok(ok(families::update_family(&state, &p, &meta, &id, &body.0).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FamilyListQuery {
    /// Matches the family's name, its address or a patient's name; up to 100 characters.
    #[param(max_length = 100)]
    pub search: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

crate::api::list_page!(
    /// `{families:[...], total, page, limit}`
    FamilyList { families: FamilyListItem }
);

#[utoipa::path(get, path = "/api/v1/families", tag = "families", params(FamilyListQuery), security(("bearer" = [])),
    responses((status = 200, description = "admins see all; a recorder the families of the patients assigned to them", body = crate::api::Envelope<FamilyList>)))]
pub async fn list_families(state: web::Data<AppState>, p: Principal, q: web::Query<FamilyListQuery>) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder])?;
    let page = paging(q.page, q.limit)?;
    let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > 100) {
        return Err(AppError::field("search", "不能超过100个字符").into());
    }
    let families = state
        .read()
        .await
        .families()
        .list(recorder_scope(&p), search, state.today(), page)
        .await?;
    Ok(ok(FamilyList::from(families)))
}

#[utoipa::path(get, path = "/api/v1/families/{id}", tag = "families", security(("bearer" = [])),
    params(("id" = String, Path, description = "family id")),
    responses((status = 200, description = "the family with its patients", body = crate::api::Envelope<FamilyDetail>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such family, or not the caller's", body = crate::api::ErrorBody)))]
pub async fn get_family(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    id: web::Path<String>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let fid: FamilyId = path_id(&id, "family")?;
    ensure_sees_family(&state, &p, fid).await?;
    let family = state
        .read()
        .await
        .families()
        .get(fid, state.today(), recorder_scope(&p))
        .await?
        .ok_or(AppError::NotFound("family"))?;
    state
        .access
        .patients(&p, &origin, family.patients.iter().map(|x| &x.id))
        .await?;
    let version = family.version;
    Ok(ok_versioned(family, version))
}

/// Body of `POST /families/{id}/patients`: [`PatientInput`] with its required
/// fields (the schema only; the handler reads a [`PatientInput`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewPatient {
    /// 1 to 50 characters.
    #[schema(min_length = 1, max_length = 50)]
    name: String,
    #[schema(pattern = "^(male|female)$")]
    gender: String,
    /// `YYYY-MM-DD`, not after today.
    #[schema(format = Date)]
    birth_date: String,
    /// An 18-character resident ID (GB 11643 checksum); empty: none.
    #[schema(max_length = 18)]
    id_card: Option<String>,
    phone: Option<String>,
    /// 1 to 50 characters.
    #[schema(min_length = 1, max_length = 50)]
    relationship_to_head: String,
    /// Up to 100 items of up to 200 characters.
    #[schema(max_items = 100)]
    medical_history: Option<Vec<String>>,
    /// Up to 1000 characters.
    #[schema(max_length = 1000)]
    allergies: Option<String>,
    /// Up to 100 items, each free text (up to 200 characters) or
    /// `{name, dosage?, frequency?, route?}`; each is read back as it was sent.
    #[schema(max_items = 100)]
    current_medications: Option<Vec<projections::families::MedicationEntry>>,
    /// An object of the family's own choosing.
    #[schema(value_type = Option<Object>)]
    service_preferences: Option<Value>,
}

#[utoipa::path(post, path = "/api/v1/families/{id}/patients", tag = "patients", request_body = NewPatient, security(("bearer" = [])),
    params(("id" = String, Path, description = "family id")),
    responses((status = 201, description = "the new patient's id", body = crate::api::Envelope<IdVersion>),
        (status = 400, description = "names the field, e.g. id_card", body = crate::api::ErrorBody),
        (status = 404, description = "no such family", body = crate::api::ErrorBody),
        (status = 409, description = "`conflict`: the family is erased", body = crate::api::ErrorBody)))]
pub async fn create_patient(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<PatientInput>,
) -> ApiResult {
    Ok(created(
        families::register_patient(&state, &p, &meta, &id, &body.0).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/patients/{id}", tag = "patients", security(("bearer" = [])),
    params(("id" = String, Path, description = "patient id")),
    responses((status = 200, body = crate::api::Envelope<PatientView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such patient, or not the caller's", body = crate::api::ErrorBody)))]
pub async fn get_patient(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    id: web::Path<String>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let pid: PatientId = path_id(&id, "patient")?;
    ensure_sees_patient(&state, &p, pid).await?;
    let patient = state
        .read()
        .await
        .patients()
        .get(pid, state.today())
        .await?
        .ok_or(AppError::NotFound("patient"))?;
    state.access.patients(&p, &origin, [pid]).await?;
    let version = patient.version;
    Ok(ok_versioned(patient, version))
}

#[utoipa::path(patch, path = "/api/v1/patients/{id}", tag = "patients", request_body = PatientInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "patient id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, description = "the patient's new version", body = crate::api::Envelope<IdVersion>),
        (status = 404, body = crate::api::ErrorBody),
        (status = 409, description = "`version_conflict`: If-Match is stale; `conflict`: the patient is erased", body = crate::api::ErrorBody)))]
pub async fn update_patient(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<PatientInput>,
) -> ApiResult {
    Ok(ok(families::update_patient(&state, &p, &meta, &id, &body.0).await?))
}
