//! FHIR R4 export (`/fhir/...`): answers are FHIR resources as
//! `application/fhir+json`, not the envelope; errors keep the envelope.

use actix_web::http::header::{ContentType, ETAG};
use actix_web::{web, HttpRequest, HttpResponse};
use domain::ids::PatientId;
use serde::Serialize;

use crate::access_log::ReadOrigin;
use crate::api::error::ApiResult;
use crate::api::path_id;
use crate::app::error::AppError;
use crate::auth::Principal;
use crate::fhir::FHIR_JSON;
use crate::state::AppState;

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.get("/fhir/Patient/{id}", patient)
        .get("/fhir/Patient/{id}/$everything", everything);
}

/// A FHIR resource (the schema only: the body is the resource itself).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FhirResource {
    /// `Patient` or `Bundle`.
    #[schema(rename = "resourceType")]
    resource_type: String,
    id: String,
}

#[utoipa::path(get, path = "/api/v1/fhir/Patient/{id}", tag = "fhir", security(("bearer" = [])),
    params(("id" = String, Path, description = "patient id")),
    responses((status = 200, description = "the FHIR R4 Patient (an erased patient: ids, gender and `active: false` only); access-logged",
            content_type = "application/fhir+json", body = FhirResource, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such patient, or not the caller's", body = crate::api::ErrorBody)))]
pub async fn patient(state: web::Data<AppState>, p: Principal, origin: ReadOrigin, id: web::Path<String>) -> ApiResult {
    let pid: PatientId = path_id(&id, "patient")?;
    let (resource, version) = crate::app::fhir::patient(&state, &p, &origin, pid).await?;
    let mut r = fhir_json(&resource)?;
    if let Ok(v) = format!("\"{version}\"").parse() {
        r.headers_mut().insert(ETAG, v);
    }
    Ok(r)
}

#[utoipa::path(get, path = "/api/v1/fhir/Patient/{id}/$everything", tag = "fhir", security(("bearer" = [])),
    params(("id" = String, Path, description = "patient id")),
    responses((status = 200, description = "a FHIR R4 Bundle of type `collection`: the Patient, a MedicationStatement per current medication, \
an Encounter (class HH) per completed visit, LOINC-coded vital-sign Observations per health record, a MedicationRequest per medication \
order and a ServiceRequest per other order, an Appointment per hospital booking, and a Provenance per source naming the recorder or \
doctor and the carelog event; access-logged", content_type = "application/fhir+json", body = FhirResource),
        (status = 404, description = "no such patient, or not the caller's", body = crate::api::ErrorBody)))]
pub async fn everything(
    state: web::Data<AppState>,
    p: Principal,
    req: HttpRequest,
    origin: ReadOrigin,
    id: web::Path<String>,
) -> ApiResult {
    let pid: PatientId = path_id(&id, "patient")?;
    let base_url = {
        let info = req.connection_info();
        format!("{}://{}/api/v1/fhir", info.scheme(), info.host())
    };
    let bundle = crate::app::fhir::everything(&state, &p, &origin, pid, base_url).await?;
    fhir_json(&bundle)
}

fn fhir_json<T: Serialize>(resource: &T) -> ApiResult {
    let body = serde_json::to_vec(resource).map_err(AppError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header(ContentType(FHIR_JSON.parse().map_err(AppError::internal)?))
        .body(body))
}
