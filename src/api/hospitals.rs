//! Partner hospitals: the catalog (admin), search and slots, and bookings
//! (booking a place is `app::hospitals::book`).

use actix_web::web;
use domain::booking::BookingCommand;
use domain::hospital::HospitalStatus;
use domain::ids::HospitalId;
use domain::user::Role;
use domain::values::{date, optional_text, text};
use domain::Validator;
use projections::hospitals::{BookingView, HospitalSearchItem, HospitalView, SlotView};
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::api::error::{created, ok, ok_versioned, ApiResult};
use crate::api::{paging, path_id, required, Body, IdVersion, StatusChanged};
use crate::app::catalog::{self, Part};
pub use crate::app::catalog::{
    ActiveInput, DepartmentInput, HospitalDoctorInput, HospitalInput, HospitalPartAdded, SlotInput, SlotOpened,
};
use crate::app::error::AppError;
use crate::app::hospitals::{self, BookingTransitioned};
pub use crate::app::hospitals::{BookingInput, BookingRequested};
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/hospitals", create_hospital)
        .get("/hospitals", search)
        .get("/hospitals/{id}", get_hospital)
        .post("/hospitals/{id}/status", hospital_status)
        .post("/hospitals/{id}/departments", add_department)
        .post("/hospitals/{id}/departments/{dep}/status", department_status)
        .post("/hospitals/{id}/doctors", add_doctor)
        .post("/hospitals/{id}/doctors/{doc}/status", doctor_status)
        .post("/hospitals/{id}/slots", open_slot)
        .get("/hospitals/{id}/slots", slots)
        .post("/hospital-appointments", book)
        .get("/hospital-appointments", bookings)
        .get("/hospital-appointments/{id}", get_booking)
        .post("/hospital-appointments/{id}/confirm", confirm)
        .post("/hospital-appointments/{id}/complete", complete)
        .post("/hospital-appointments/{id}/cancel", cancel);
}

/// What a booking's transition answers: its state after the command.

#[utoipa::path(post, path = "/api/v1/hospitals", tag = "hospitals", request_body = HospitalInput, security(("bearer" = [])),
    responses((status = 201, description = "the new hospital's id", body = crate::api::Envelope<IdVersion>)))]
pub async fn create_hospital(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    body: Body<HospitalInput>,
) -> ApiResult {
    Ok(created(catalog::register(&state, &p, &meta, &body.0).await?))
}

#[utoipa::path(post, path = "/api/v1/hospitals/{id}/status", tag = "hospitals", request_body = ActiveInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "hospital id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, description = "inactive hospitals are hidden from search and refuse new bookings", body = crate::api::Envelope<StatusChanged>),
        (status = 404, body = crate::api::ErrorBody),
        (status = 409, description = "`version_conflict`: If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn hospital_status(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<ActiveInput>,
) -> ApiResult {
    Ok(ok(
        catalog::set_active(&state, &p, &meta, &id, Part::Hospital, &body.0).await?
    ))
}

#[utoipa::path(post, path = "/api/v1/hospitals/{id}/departments", tag = "hospitals", request_body = DepartmentInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "hospital id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version of the hospital")),
    responses((status = 201, body = crate::api::Envelope<HospitalPartAdded>),
        (status = 404, description = "no such hospital", body = crate::api::ErrorBody),
        (status = 409, description = "duplicate name, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn add_department(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<DepartmentInput>,
) -> ApiResult {
    Ok(created(catalog::add_department(&state, &p, &meta, &id, &body.0).await?))
}

#[utoipa::path(post, path = "/api/v1/hospitals/{id}/departments/{dep}/status", tag = "hospitals", request_body = ActiveInput,
    params(("id" = String, Path, description = "hospital id"), ("dep" = String, Path, description = "department id"),
        ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version of the hospital")),
    security(("bearer" = [])), responses((status = 200, description = "`id` is the department's; `version` the hospital's", body = crate::api::Envelope<StatusChanged>),
        (status = 404, description = "no such hospital or department", body = crate::api::ErrorBody),
        (status = 409, description = "`version_conflict`: If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn department_status(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    path: web::Path<(String, String)>,
    body: Body<ActiveInput>,
) -> ApiResult {
    let (id, dep) = path.into_inner();
    Ok(ok(catalog::set_active(
        &state,
        &p,
        &meta,
        &id,
        Part::Department(&dep),
        &body.0,
    )
    .await?))
}

#[utoipa::path(post, path = "/api/v1/hospitals/{id}/doctors", tag = "hospitals", request_body = HospitalDoctorInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "hospital id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version of the hospital")),
    responses((status = 201, body = crate::api::Envelope<HospitalPartAdded>),
        (status = 404, description = "no such hospital or department", body = crate::api::ErrorBody),
        (status = 409, description = "the department is inactive, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn add_doctor(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<HospitalDoctorInput>,
) -> ApiResult {
    Ok(created(catalog::add_doctor(&state, &p, &meta, &id, &body.0).await?))
}

#[utoipa::path(post, path = "/api/v1/hospitals/{id}/doctors/{doc}/status", tag = "hospitals", request_body = ActiveInput,
    params(("id" = String, Path, description = "hospital id"), ("doc" = String, Path, description = "the hospital doctor's id"),
        ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version of the hospital")),
    security(("bearer" = [])), responses((status = 200, description = "`id` is the doctor's; `version` the hospital's", body = crate::api::Envelope<StatusChanged>),
        (status = 404, description = "no such hospital or doctor", body = crate::api::ErrorBody),
        (status = 409, description = "`version_conflict`: If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn doctor_status(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    path: web::Path<(String, String)>,
    body: Body<ActiveInput>,
) -> ApiResult {
    let (id, doc) = path.into_inner();
    Ok(ok(catalog::set_active(
        &state,
        &p,
        &meta,
        &id,
        Part::Doctor(&doc),
        &body.0,
    )
    .await?))
}

#[utoipa::path(post, path = "/api/v1/hospitals/{id}/slots", tag = "hospitals", request_body = SlotInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "hospital id")),
    responses((status = 201, body = crate::api::Envelope<SlotOpened>),
        (status = 400, description = "names the field; also a department or doctor not of the hospital", body = crate::api::ErrorBody),
        (status = 404, description = "no such hospital", body = crate::api::ErrorBody)))]
pub async fn open_slot(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<SlotInput>,
) -> ApiResult {
    Ok(created(catalog::open_slot(&state, &p, &meta, &id, &body.0).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Matches the hospital's name or address.
    pub search: Option<String>,
    /// Matches a department's name.
    pub department: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/hospitals", tag = "hospitals", params(SearchQuery), security(("bearer" = [])),
    responses((status = 200, description = "active hospitals with their departments and whether each has a place left from today on", body = crate::api::Envelope<Vec<HospitalSearchItem>>)))]
pub async fn search(state: web::Data<AppState>, p: Principal, q: web::Query<SearchQuery>) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let s = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let d = q.department.as_deref().map(str::trim).filter(|s| !s.is_empty());
    Ok(ok(state.read().await.hospitals().search(s, d, state.today()).await?))
}

#[utoipa::path(get, path = "/api/v1/hospitals/{id}", tag = "hospitals", security(("bearer" = [])),
    params(("id" = String, Path, description = "hospital id")),
    responses((status = 200, body = crate::api::Envelope<HospitalView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such hospital (inactive ones only for admins)", body = crate::api::ErrorBody)))]
pub async fn get_hospital(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let hid: HospitalId = path_id(&id, "hospital")?;
    let h = state.read().await.hospitals().get(hid).await?;
    let h = h
        .filter(|h| p.is(Role::Admin) || h.status == HospitalStatus::Active)
        .ok_or(AppError::NotFound("hospital"))?;
    let version = h.version;
    Ok(ok_versioned(h, version))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotQuery {
    /// Only this department's.
    pub department_id: Option<String>,
    /// `YYYY-MM-DD`: only that day's.
    pub date: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/hospitals/{id}/slots", tag = "hospitals", params(("id" = String, Path, description = "hospital id"), SlotQuery), security(("bearer" = [])),
    responses((status = 200, body = crate::api::Envelope<Vec<SlotView>>),
        (status = 404, body = crate::api::ErrorBody)))]
pub async fn slots(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    q: web::Query<SlotQuery>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let hid: HospitalId = path_id(&id, "hospital")?;
    let day = match q.date.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => Some(date(d).map_err(|e| AppError::field("date", e))?),
    };
    let dep = match q.department_id.as_deref().filter(|d| !d.is_empty()).map(str::parse) {
        None => None,
        Some(Ok(dep)) => Some(dep),
        // No department has that id: no slot is of it.
        Some(Err(_)) => return Ok(ok(Vec::<SlotView>::new())),
    };
    Ok(ok(state.read().await.hospitals().slots(hid, dep, day).await?))
}

#[utoipa::path(post, path = "/api/v1/hospital-appointments", tag = "hospital bookings", request_body = BookingInput, security(("bearer" = [])),
    responses((status = 201, body = crate::api::Envelope<BookingRequested>),
        (status = 400, description = "names the field; also an unknown hospital", body = crate::api::ErrorBody),
        (status = 404, description = "no such patient, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "no open slot with room, the hospital, department or doctor inactive, or the patient already has a booking then", body = crate::api::ErrorBody)))]
pub async fn book(state: web::Data<AppState>, p: Principal, meta: RequestMeta, body: Body<BookingInput>) -> ApiResult {
    Ok(created(hospitals::book(&state, &p, &meta, &body.0).await?))
}

#[utoipa::path(get, path = "/api/v1/hospital-appointments/{id}", tag = "hospital bookings", security(("bearer" = [])),
    params(("id" = String, Path, description = "hospital booking id")),
    responses((status = 200, body = crate::api::Envelope<BookingView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such booking, or its patient is not the caller's", body = crate::api::ErrorBody)))]
pub async fn get_booking(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    id: web::Path<String>,
) -> ApiResult {
    let b = hospitals::booking(&state, &p, &origin, &id).await?;
    let version = b.version;
    Ok(ok_versioned(b, version))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookingQuery {
    /// Only this patient's.
    pub patient_id: Option<String>,
    /// Only this slot's.
    pub slot_id: Option<String>,
    /// pending | confirmed | completed | cancelled
    pub status: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

crate::api::list_page!(
    /// `{appointments:[...], total, page, limit}`
    BookingList { appointments: BookingView }
);

#[utoipa::path(get, path = "/api/v1/hospital-appointments", tag = "hospital bookings", params(BookingQuery), security(("bearer" = [])),
    responses((status = 200, description = "upcoming first; a recorder sees their own, a doctor those with them", body = crate::api::Envelope<BookingList>),
        (status = 404, description = "a recorder asked for a patient not theirs", body = crate::api::ErrorBody)))]
pub async fn bookings(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    q: web::Query<BookingQuery>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let page = paging(q.page, q.limit)?;
    let search = hospitals::BookingSearch {
        patient: q.patient_id.as_deref(),
        slot: q.slot_id.as_deref(),
        status: q.status.as_deref(),
    };
    let list = hospitals::bookings(&state, &p, &origin, search, page).await?;
    Ok(ok(BookingList::from(list)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfirmInput {
    /// The hospital's number for the booking; 1 to 64 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 64)]
    pub appointment_number: Option<String>,
    /// Yuan, not negative.
    #[schema(value_type = Option<crate::api::MoneyInput>)]
    pub fee: Option<Decimal>,
}

#[utoipa::path(post, path = "/api/v1/hospital-appointments/{id}/confirm", tag = "hospital bookings", request_body = ConfirmInput,
    params(("id" = String, Path, description = "hospital booking id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    security(("bearer" = [])), responses((status = 200, body = crate::api::Envelope<BookingTransitioned>),
        (status = 404, description = "no such booking, or its patient is not the caller's", body = crate::api::ErrorBody),
        (status = 409, description = "not pending, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn confirm(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<ConfirmInput>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let mut v = Validator::new();
    let number = required(&mut v, "appointment_number", &body.0.appointment_number)
        .and_then(|n| v.check("appointment_number", text(n, 64)));
    if body.0.fee.is_some_and(|f| f < Decimal::ZERO) {
        v.add("fee", "不能为负数");
    }
    v.finish()?;
    let appointment_number = number.ok_or_else(|| AppError::field("appointment_number", "必填"))?;
    let cmd = BookingCommand::Confirm {
        appointment_number,
        fee: body.0.fee,
    };
    Ok(ok(hospitals::transition(
        &state,
        &p,
        &meta,
        &id,
        cmd,
        "ConfirmHospitalBooking",
    )
    .await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CompleteInput {
    /// 1 to 5000 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 5000)]
    pub result_notes: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/hospital-appointments/{id}/complete", tag = "hospital bookings", request_body = CompleteInput,
    params(("id" = String, Path, description = "hospital booking id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    security(("bearer" = [])), responses((status = 200, body = crate::api::Envelope<BookingTransitioned>),
        (status = 404, description = "no such booking, or its patient is not the caller's", body = crate::api::ErrorBody),
        (status = 409, description = "not confirmed, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn complete(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<CompleteInput>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder])?;
    let mut v = Validator::new();
    let notes =
        required(&mut v, "result_notes", &body.0.result_notes).and_then(|n| v.check("result_notes", text(n, 5000)));
    v.finish()?;
    let result_notes = notes.ok_or_else(|| AppError::field("result_notes", "必填"))?;
    let cmd = BookingCommand::Complete { result_notes };
    Ok(ok(hospitals::transition(
        &state,
        &p,
        &meta,
        &id,
        cmd,
        "CompleteHospitalBooking",
    )
    .await?))
}

#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct CancelInput {
    /// Up to 500 characters.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/hospital-appointments/{id}/cancel", tag = "hospital bookings", request_body = CancelInput,
    params(("id" = String, Path, description = "hospital booking id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    security(("bearer" = [])), responses((status = 200, description = "the place is freed", body = crate::api::Envelope<BookingTransitioned>),
        (status = 404, description = "no such booking, or its patient is not the caller's", body = crate::api::ErrorBody),
        (status = 409, description = "already completed or cancelled, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn cancel(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<CancelInput>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder])?;
    let reason = optional_text(body.0.reason.as_deref(), 500).map_err(|e| AppError::field("reason", e))?;
    Ok(ok(hospitals::cancel(&state, &p, &meta, &id, reason).await?))
}
