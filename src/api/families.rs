//! Families and their patients.

use actix_web::{web, HttpRequest};
use domain::family::{Family, FamilyChanges, FamilyCommand, FamilyDetails};
use domain::ids::{FamilyId, PatientId};
use domain::medication::{parse_medications, Medication};
use domain::patient::{Patient, PatientChanges, PatientCommand, PatientDetails};
use domain::user::Role;
use domain::values::{date, optional_text, text, Gender, PhoneNumber, ResidentId};
use domain::Validator;
use projections::families::{FamilyDetail, FamilyListItem, PatientView};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::{path_id, Body, IdVersion, PageQuery};
use crate::auth::Principal;
use crate::error::{created, ok, ok_versioned, ApiError, ApiResult};
use crate::policy::{can_see_family, can_see_patient, recorder_scope};
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

/// Body of `POST /families` and `PATCH /families/{id}` (all optional on PATCH).
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct FamilyInput {
    /// Required on POST; 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub family_name: Option<String>,
    /// Required on POST; 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    pub primary_address: Option<String>,
    #[schema(max_length = 255)]
    pub secondary_address: Option<String>,
    /// Required on POST; a mobile or landline number.
    pub contact_phone: Option<String>,
    #[schema(max_length = 100)]
    pub emergency_contact: Option<String>,
    pub emergency_phone: Option<String>,
    /// The home's latitude (with `home_lng`), -90 to 90.
    #[schema(minimum = -90, maximum = 90)]
    pub home_lat: Option<f64>,
    /// The home's longitude (with `home_lat`), -180 to 180.
    #[schema(minimum = -180, maximum = 180)]
    pub home_lng: Option<f64>,
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

fn parse_family_changes(r: &FamilyInput) -> Result<FamilyChanges, ApiError> {
    let mut v = Validator::new();
    let opt_phone = |v: &mut Validator, field: &str, raw: &Option<String>| {
        raw.as_deref().and_then(|p| v.check(field, PhoneNumber::parse(p)))
    };
    let changes = FamilyChanges {
        family_name: r
            .family_name
            .as_deref()
            .and_then(|s| v.check("family_name", text(s, 100))),
        primary_address: r
            .primary_address
            .as_deref()
            .and_then(|s| v.check("primary_address", text(s, 255))),
        secondary_address: v
            .check("secondary_address", optional_text(r.secondary_address.as_deref(), 255))
            .flatten(),
        contact_phone: opt_phone(&mut v, "contact_phone", &r.contact_phone),
        emergency_contact: v
            .check("emergency_contact", optional_text(r.emergency_contact.as_deref(), 100))
            .flatten(),
        emergency_phone: match r.emergency_phone.as_deref() {
            None | Some("") => None,
            Some(_) => opt_phone(&mut v, "emergency_phone", &r.emergency_phone),
        },
        home_lat: r.home_lat.and_then(|x| v.check("home_lat", range(x, -90.0, 90.0))),
        home_lng: r.home_lng.and_then(|x| v.check("home_lng", range(x, -180.0, 180.0))),
    };
    if r.home_lat.is_some() != r.home_lng.is_some() {
        v.add(
            if r.home_lat.is_some() { "home_lng" } else { "home_lat" },
            "home_lat与home_lng须同时提供",
        );
    }
    v.finish()?;
    Ok(changes)
}

fn range(x: f64, lo: f64, hi: f64) -> Result<f64, String> {
    if x.is_finite() && (lo..=hi).contains(&x) {
        Ok(x)
    } else {
        Err(format!("应在{lo}到{hi}之间"))
    }
}

#[utoipa::path(post, path = "/api/v1/families", tag = "families", request_body = NewFamily, security(("bearer" = [])),
    responses((status = 201, description = "the new family's id", body = crate::api::Envelope<IdVersion>)))]
pub async fn create_family(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    body: Body<FamilyInput>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let c = parse_family_changes(&body.0)?;
    let mut v = Validator::new();
    for (field, present) in [
        ("family_name", body.0.family_name.is_some()),
        ("primary_address", body.0.primary_address.is_some()),
        ("contact_phone", body.0.contact_phone.is_some()),
    ] {
        if !present {
            v.add(field, "必填");
        }
    }
    v.finish()?;
    let (Some(family_name), Some(primary_address), Some(contact_phone)) =
        (c.family_name, c.primary_address, c.contact_phone)
    else {
        return Err(ApiError::field("body", "缺少必填字段"));
    };
    let details = FamilyDetails {
        family_name,
        primary_address,
        contact_phone,
        secondary_address: c.secondary_address,
        emergency_contact: c.emergency_contact,
        emergency_phone: c.emergency_phone,
        home_lat: c.home_lat,
        home_lng: c.home_lng,
    };
    let id = crate::idempotency::new_id(&meta, &p);
    let committed = state
        .execute::<Family>(
            &id.to_string(),
            FamilyCommand::Create(details),
            meta.context(Some(&p), "CreateFamily"),
        )
        .await?;
    Ok(created(IdVersion {
        id: FamilyId(id).to_string(),
        version: committed.version,
    }))
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
    p.require(&[Role::Admin])?;
    let fid: FamilyId = path_id(&id, "family")?;
    let changes = parse_family_changes(&body.0)?;
    let c = state
        .execute::<Family>(
            &fid.to_string(),
            FamilyCommand::Update(changes),
            meta.context(Some(&p), "UpdateFamily"),
        )
        .await?;
    Ok(ok(IdVersion {
        id: fid.to_string(),
        version: c.version,
    }))
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
    let page = PageQuery {
        page: q.page,
        limit: q.limit,
    }
    .params()?;
    let recorder = p.is(Role::Recorder).then(|| p.user_id.to_string());
    let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > 100) {
        return Err(ApiError::field("search", "不能超过100个字符"));
    }
    let families = state
        .read
        .families(recorder.as_deref(), search, state.today(), page)
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
    req: HttpRequest,
    id: web::Path<String>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let fid: FamilyId = path_id(&id, "family")?;
    if !can_see_family(&state, &p, &fid.to_string()).await? {
        return Err(ApiError::NotFound("family"));
    }
    let family = state
        .read
        .family_detail(&fid.to_string(), state.today(), recorder_scope(&p).as_deref())
        .await?
        .ok_or(ApiError::NotFound("family"))?;
    state
        .access
        .patients(&p, &req, family.patients.iter().map(|x| &x.id))
        .await?;
    let version = family.version;
    Ok(ok_versioned(family, version))
}

/// Body of `POST /families/{id}/patients` and `PATCH /patients/{id}` (all
/// optional on PATCH).
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct PatientInput {
    /// Required on POST; 1 to 50 characters.
    #[schema(min_length = 1, max_length = 50)]
    pub name: Option<String>,
    /// Required on POST.
    #[schema(pattern = "^(male|female)$")]
    pub gender: Option<String>,
    /// Required on POST; `YYYY-MM-DD`, not after today.
    #[schema(format = Date)]
    pub birth_date: Option<String>,
    /// An 18-character resident ID (GB 11643 checksum); empty: none.
    #[schema(max_length = 18)]
    pub id_card: Option<String>,
    pub phone: Option<String>,
    /// Required on POST; 1 to 50 characters.
    #[schema(min_length = 1, max_length = 50)]
    pub relationship_to_head: Option<String>,
    /// Up to 100 items of up to 200 characters.
    #[schema(max_items = 100)]
    pub medical_history: Option<Vec<String>>,
    /// Up to 1000 characters.
    #[schema(max_length = 1000)]
    pub allergies: Option<String>,
    /// Up to 100 items, each free text (up to 200 characters) or
    /// `{name, dosage?, frequency?, route?}`; each is read back as it was sent.
    #[schema(max_items = 100, value_type = Option<Vec<projections::families::MedicationEntry>>)]
    pub current_medications: Option<Vec<Medication>>,
    /// An object of the family's own choosing.
    #[schema(value_type = Option<Object>)]
    pub service_preferences: Option<Value>,
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

fn string_list(v: &mut Validator, field: &str, items: &Option<Vec<String>>) -> Option<Vec<String>> {
    let items = items.as_ref()?;
    if items.len() > 100 {
        v.add(field, "不能超过100项");
        return None;
    }
    let cleaned: Vec<String> = items
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if cleaned.iter().any(|s| s.chars().count() > 200) {
        v.add(field, "每项不能超过200个字符");
        return None;
    }
    Some(cleaned)
}

/// No patient alive was born earlier.
const EARLIEST_BIRTH_DATE: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => chrono::NaiveDate::MIN,
};

fn parse_patient_changes(r: &PatientInput, today: chrono::NaiveDate) -> Result<PatientChanges, ApiError> {
    let mut v = Validator::new();
    let birth_date = r.birth_date.as_deref().and_then(|d| v.check("birth_date", date(d)));
    if birth_date.is_some_and(|d| d > today) {
        v.add("birth_date", "不能晚于今天");
    }
    if birth_date.is_some_and(|d| d < EARLIEST_BIRTH_DATE) {
        v.add("birth_date", "不能早于1900-01-01");
    }
    if r.service_preferences.as_ref().is_some_and(|p| !p.is_object()) {
        v.add("service_preferences", "应为对象");
    }
    let changes = PatientChanges {
        name: r.name.as_deref().and_then(|s| v.check("name", text(s, 50))),
        gender: r.gender.as_deref().and_then(|g| v.check("gender", Gender::parse(g))),
        birth_date,
        id_card: match r.id_card.as_deref() {
            None | Some("") => None,
            Some(id) => v.check("id_card", ResidentId::parse(id)),
        },
        phone: match r.phone.as_deref() {
            None | Some("") => None,
            Some(ph) => v.check("phone", PhoneNumber::parse(ph)),
        },
        relationship_to_head: r
            .relationship_to_head
            .as_deref()
            .and_then(|s| v.check("relationship_to_head", text(s, 50))),
        medical_history: string_list(&mut v, "medical_history", &r.medical_history),
        current_medications: r
            .current_medications
            .clone()
            .and_then(|items| parse_medications("current_medications", items, &mut v)),
        allergies: v
            .check("allergies", optional_text(r.allergies.as_deref(), 1000))
            .flatten(),
        service_preferences: r.service_preferences.clone().filter(Value::is_object),
    };
    v.finish()?;
    Ok(changes)
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
    p.require(&[Role::Admin])?;
    let fid: FamilyId = path_id(&id, "family")?;
    let c = parse_patient_changes(&body.0, state.today())?;
    let mut v = Validator::new();
    for (field, present) in [
        ("name", c.name.is_some()),
        ("gender", c.gender.is_some()),
        ("birth_date", c.birth_date.is_some()),
        ("relationship_to_head", c.relationship_to_head.is_some()),
    ] {
        if !present {
            v.add(field, "必填");
        }
    }
    v.finish()?;
    if state.store.load::<Family>(&fid.to_string()).await?.is_none() {
        return Err(ApiError::NotFound("family"));
    }
    let (Some(name), Some(gender), Some(birth_date), Some(relationship_to_head)) =
        (c.name, c.gender, c.birth_date, c.relationship_to_head)
    else {
        return Err(ApiError::field("body", "缺少必填字段"));
    };
    let details = PatientDetails {
        name,
        gender,
        birth_date,
        relationship_to_head,
        medical_history: c.medical_history.unwrap_or_default(),
        current_medications: c.current_medications.unwrap_or_default(),
        id_card: c.id_card,
        phone: c.phone,
        allergies: c.allergies,
        service_preferences: c.service_preferences,
    };
    let pid = crate::idempotency::new_id(&meta, &p);
    let committed = state
        .execute::<Patient>(
            &pid.to_string(),
            PatientCommand::Register {
                family_id: fid,
                details,
            },
            meta.context(Some(&p), "RegisterPatient"),
        )
        .await?;
    Ok(created(IdVersion {
        id: PatientId(pid).to_string(),
        version: committed.version,
    }))
}

#[utoipa::path(get, path = "/api/v1/patients/{id}", tag = "patients", security(("bearer" = [])),
    params(("id" = String, Path, description = "patient id")),
    responses((status = 200, body = crate::api::Envelope<PatientView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such patient, or not the caller's", body = crate::api::ErrorBody)))]
pub async fn get_patient(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    id: web::Path<String>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let pid: PatientId = path_id(&id, "patient")?;
    if !can_see_patient(&state, &p, &pid.to_string()).await? {
        return Err(ApiError::NotFound("patient"));
    }
    let patient = state
        .read
        .patient(&pid.to_string(), state.today())
        .await?
        .ok_or(ApiError::NotFound("patient"))?;
    state.access.patients(&p, &req, [pid]).await?;
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
    p.require(&[Role::Admin])?;
    let pid: PatientId = path_id(&id, "patient")?;
    let changes = parse_patient_changes(&body.0, state.today())?;
    let c = state
        .execute::<Patient>(
            &pid.to_string(),
            PatientCommand::Update(changes),
            meta.context(Some(&p), "UpdatePatient"),
        )
        .await?;
    Ok(ok(IdVersion {
        id: pid.to_string(),
        version: c.version,
    }))
}
