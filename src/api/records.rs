//! Health records ("record vitals"): JSON with file ids, or multipart with the
//! files in the same request. Everything is validated before anything is
//! stored; a record for a visit completes it; vitals that cross the alert
//! thresholds raise an alert and an order request by themselves
//! (`app::alerts`).

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest};
use domain::ids::PatientId;
use domain::user::Role;
use projections::records::HealthRecordView;
use serde_json::Value;
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::api::error::{created, ok, ok_versioned, ApiResult};
use crate::api::files::{FileBytes, Form, FormLimits};
use crate::api::{path_id, Body, PageQuery};
use crate::app::error::AppError;
use crate::app::records;
pub use crate::app::records::{
    AmendmentInput, OrderRequestInput, OrderRequestOpened, RecordCreated, RecordInput, UnlockInput, VitalSignsInput,
};
use crate::auth::Principal;
use crate::policy::ensure_sees_patient;
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/health-records", create)
        .get("/health-records/{id}", get)
        .get("/patients/{id}/health-records", list_for_patient)
        .post("/health-records/{id}/order-requests", request_order)
        .post("/health-records/{id}/amendments", amend)
        .post("/health-records/{id}/unlock", unlock);
}

/// The multipart form of `POST /health-records`: the JSON form's fields as
/// text, `vital_signs` as a JSON string, and the files as parts (the schema
/// only; the handler reads the stream itself).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RecordForm {
    #[schema(format = Uuid)]
    patient_id: String,
    #[schema(required = false)]
    appointment_id: String,
    /// `YYYY-MM-DD`, not after today.
    #[schema(format = Date)]
    visit_date: String,
    /// `HH:MM`.
    #[schema(pattern = "^[0-9]{2}:[0-9]{2}$")]
    visit_time: String,
    #[schema(required = false)]
    location_lat: f64,
    #[schema(required = false)]
    location_lng: f64,
    #[schema(required = false)]
    location_address: String,
    /// The vital signs object, as JSON text.
    #[schema(required = false)]
    vital_signs: String,
    #[schema(required = false)]
    symptoms: String,
    #[schema(required = false)]
    notes: String,
    /// An audio note (MP3, M4A, AAC, WAV, AMR or OGG).
    #[schema(required = false)]
    audio_file: FileBytes,
    /// Up to 9 images (JPEG, PNG, GIF or WebP).
    #[schema(required = false, max_items = 9)]
    photos: Vec<FileBytes>,
    /// The patient's signature, an image.
    #[schema(required = false)]
    patient_signature: FileBytes,
}

/// The multipart form's text fields as the JSON form (its files travel apart).
fn input_from_form(form: &Form) -> Result<RecordInput, AppError> {
    let num = |name: &str| -> Result<Option<f64>, AppError> {
        match form.text(name).filter(|s| !s.trim().is_empty()) {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| AppError::field(name, "应为数字")),
        }
    };
    let vital_signs = match form.text("vital_signs").filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(s) => Some(serde_json::from_str::<Value>(&s).map_err(|_| AppError::field("vital_signs", "应为JSON对象"))?),
    };
    Ok(RecordInput {
        patient_id: form.text("patient_id"),
        appointment_id: form.text("appointment_id").filter(|s| !s.is_empty()),
        visit_date: form.text("visit_date"),
        visit_time: form.text("visit_time"),
        location_lat: num("location_lat")?,
        location_lng: num("location_lng")?,
        location_address: form.text("location_address"),
        vital_signs,
        symptoms: form.text("symptoms"),
        notes: form.text("notes"),
        audio_file: None,
        photos: Vec::new(),
        patient_signature: None,
    })
}

#[utoipa::path(post, path = "/api/v1/health-records", tag = "health records", security(("bearer" = [])),
    request_body(content((RecordInput = "application/json"), (RecordForm = "multipart/form-data"))),
    responses((status = 201, body = crate::api::Envelope<RecordCreated>),
        (status = 400, description = "names the field: out-of-range or malformed vitals, unknown or unusable files, a visit not the patient's", body = crate::api::ErrorBody),
        (status = 404, description = "no such patient, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "the visit cannot take a record", body = crate::api::ErrorBody),
        (status = 413, description = "a file over 16 MiB, or the form over its limits", body = crate::api::ErrorBody),
        (status = 415, description = "the body is neither JSON nor multipart, or a file's type does not match", body = crate::api::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult {
    p.require(&[Role::Recorder])?;
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (input, uploads) = if content_type.starts_with("multipart/form-data") {
        let form = Form::read(
            Multipart::new(req.headers(), payload.into_inner()),
            FormLimits::record(&state),
        )
        .await?;
        let input = input_from_form(&form)?;
        (input, form.files)
    } else {
        let mut body = payload.into_inner();
        let Body(input) = <Body<RecordInput> as actix_web::FromRequest>::from_request(&req, &mut body).await?;
        (input, Vec::new())
    };
    let created_record = records::record_vitals(&state, &p, &meta, &input, uploads, chrono::Utc::now()).await?;
    Ok(created(created_record))
}

#[utoipa::path(get, path = "/api/v1/health-records/{id}", tag = "health records", security(("bearer" = [])),
    params(("id" = String, Path, description = "health record id")),
    responses((status = 200, body = crate::api::Envelope<HealthRecordView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such record, or its patient is not the caller's", body = crate::api::ErrorBody)))]
pub async fn get(state: web::Data<AppState>, p: Principal, origin: ReadOrigin, id: web::Path<String>) -> ApiResult {
    let record = records::visible_record(&state, &p, &id).await?;
    state.access.patients(&p, &origin, [&record.patient_id]).await?;
    let version = record.version;
    Ok(ok_versioned(record, version))
}

crate::api::list_page!(
    /// `{records:[...], total, page, limit}`
    RecordList { records: HealthRecordView }
);

#[utoipa::path(get, path = "/api/v1/patients/{id}/health-records", tag = "health records", params(("id" = String, Path, description = "patient id"), PageQuery), security(("bearer" = [])),
    responses((status = 200, description = "newest first", body = crate::api::Envelope<RecordList>),
        (status = 404, description = "no such patient, or not the caller's", body = crate::api::ErrorBody)))]
pub async fn list_for_patient(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    id: web::Path<String>,
    q: web::Query<PageQuery>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let pid: PatientId = path_id(&id, "patient")?;
    ensure_sees_patient(&state, &p, pid).await?;
    let page = state.read().await.records().of_patient(pid, q.params()?).await?;
    state.access.patients(&p, &origin, [pid]).await?;
    Ok(ok(RecordList::from(page)))
}

#[utoipa::path(post, path = "/api/v1/health-records/{id}/order-requests", tag = "medical orders", request_body = OrderRequestInput,
    params(("id" = String, Path, description = "health record id")),
    security(("bearer" = [])), responses((status = 201, description = "the doctor is notified", body = crate::api::Envelope<OrderRequestOpened>),
        (status = 400, description = "names the field, e.g. a doctor_id that is no active doctor", body = crate::api::ErrorBody),
        (status = 404, description = "no such record, or its patient is not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "no doctor available", body = crate::api::ErrorBody)))]
pub async fn request_order(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<OrderRequestInput>,
) -> ApiResult {
    Ok(created(
        records::open_order_request(&state, &p, &meta, &id, &body.0).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/health-records/{id}/amendments", tag = "health records", request_body = AmendmentInput,
    params(("id" = String, Path, description = "health record id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    security(("bearer" = [])),
    responses((status = 200, body = crate::api::Envelope<HealthRecordView>, description = "the amended record, its new version and the correction trail in `amendments`",
            headers(("ETag" = String, description = "the version, quoted"))),
        (status = 400, description = "names the field: `reason_code`, `changes`, `changes.<field>` or `changes.vital_signs.<field>`", body = crate::api::ErrorBody),
        (status = 403, description = "only the record's recorder may amend it", body = crate::api::ErrorBody),
        (status = 404, body = crate::api::ErrorBody),
        (status = 409, description = "`conflict`: past the amendment window (an admin may unlock it); `version_conflict`: If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn amend(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<AmendmentInput>,
) -> ApiResult {
    let record = records::amend(&state, &p, &meta, &id, &body.0).await?;
    let version = record.version;
    Ok(ok_versioned(record, version))
}

#[utoipa::path(post, path = "/api/v1/health-records/{id}/unlock", tag = "health records", request_body = UnlockInput,
    params(("id" = String, Path, description = "health record id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    security(("bearer" = [])),
    responses((status = 200, body = crate::api::Envelope<HealthRecordView>, description = "the record, open for amendments for another window from now",
            headers(("ETag" = String, description = "the version, quoted"))),
        (status = 400, description = "`reason` missing or blank", body = crate::api::ErrorBody),
        (status = 403, description = "admins only", body = crate::api::ErrorBody),
        (status = 404, body = crate::api::ErrorBody),
        (status = 409, description = "`version_conflict`: If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn unlock(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<UnlockInput>,
) -> ApiResult {
    let record = records::unlock(&state, &p, &meta, &id, &body.0).await?;
    let version = record.version;
    Ok(ok_versioned(record, version))
}
