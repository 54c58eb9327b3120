//! FHIR R4 export of a patient (`GET /fhir/Patient/{id}` and
//! `GET /fhir/Patient/{id}/$everything`): the same access rule and access
//! log as `GET /patients/{id}`, then the read models mapped by [`crate::fhir`].

use std::collections::{HashMap, HashSet};
use std::future::Future;

use domain::ids::{PatientId, UserId};
use domain::medication::Medication;
use domain::user::Role;
use domain::visit::VisitStatus;
use projections::families::PatientView;
use projections::hospitals::BookingFilter;
use projections::visits::VisitFilter;
use projections::{Page, PageParams};

use crate::access_log::ReadOrigin;
use crate::app::error::AppError;
use crate::auth::Principal;
use crate::fhir::model::{Bundle, Resource};
use crate::fhir::{ExportContext, PatientCare};
use crate::policy::ensure_sees_patient;
use crate::state::AppState;

/// The `Patient` resource (with its `resourceType`); its version for the `ETag`.
pub async fn patient(
    state: &AppState,
    p: &Principal,
    origin: &ReadOrigin,
    id: PatientId,
) -> Result<(Resource, i64), AppError> {
    let view = visible_patient(state, p, id).await?;
    let address = household_address(state, &view).await?;
    state.access.patients(p, origin, [id]).await?;
    Ok((
        Resource::Patient(crate::fhir::patient(&view, address.as_deref())),
        view.version,
    ))
}

/// Everything carelog holds about the patient, as a `collection` Bundle
/// whose entries' `fullUrl`s start with `base_url`.
pub async fn everything(
    state: &AppState,
    p: &Principal,
    origin: &ReadOrigin,
    id: PatientId,
    base_url: String,
) -> Result<Bundle, AppError> {
    let view = visible_patient(state, p, id).await?;
    let care = read_care(state, view).await?;
    state.access.patients(p, origin, [id]).await?;
    let ctx = ExportContext {
        base_url,
        timezone: state.settings.field_work.timezone,
        now: chrono::Utc::now(),
    };
    Ok(crate::fhir::everything(&care, &ctx))
}

/// The patient, if `p` may see them (404 otherwise, as for `GET /patients/{id}`).
async fn visible_patient(state: &AppState, p: &Principal, id: PatientId) -> Result<PatientView, AppError> {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    ensure_sees_patient(state, p, id).await?;
    state
        .read()
        .await
        .patients()
        .get(id, state.today())
        .await?
        .ok_or(AppError::NotFound("patient"))
}

/// The household's address; none for an erased patient.
async fn household_address(state: &AppState, view: &PatientView) -> Result<Option<String>, AppError> {
    if view.erased {
        return Ok(None);
    }
    Ok(state.read().await.families().address(view.family_id).await?)
}

async fn read_care(state: &AppState, patient: PatientView) -> Result<PatientCare, AppError> {
    let patient_id = patient.id;
    let today = state.today();
    let read = &state.read().await;
    let address = household_address(state, &patient).await?;
    let medications: Vec<Medication> =
        serde_json::from_value(patient.current_medications.clone()).map_err(AppError::internal)?;
    let visits = every_page(|page| {
        let f = VisitFilter {
            patient: Some(patient_id),
            status: Some(VisitStatus::Completed),
            ..VisitFilter::new(today)
        };
        async move { read.visits().list(&f, page).await }
    })
    .await?;
    let records = every_page(|page| read.records().of_patient(patient_id, page)).await?;
    let orders = every_page(|page| read.orders().of_patient(patient_id, page)).await?;
    let bookings = every_page(|page| {
        let f = BookingFilter {
            patient: Some(patient_id),
            ..Default::default()
        };
        async move { read.hospitals().bookings(&f, today, page).await }
    })
    .await?;
    let staff_ids: HashSet<UserId> = visits
        .iter()
        .map(|v| v.recorder_id)
        .chain(records.iter().map(|r| r.recorder_id))
        .chain(orders.iter().map(|o| o.doctor_id))
        .chain(bookings.iter().map(|b| b.recorder_id))
        .collect();
    let mut staff = HashMap::new();
    for user in staff_ids {
        if let Some(u) = read.users().get(user).await? {
            staff.insert(u.id.to_string(), u.name);
        }
    }
    Ok(PatientCare {
        patient,
        address,
        medications,
        visits,
        records,
        orders,
        bookings,
        staff,
    })
}

/// Every item of a paged list query, reading 100 at a time.
async fn every_page<T, F, Fut>(mut query: F) -> Result<Vec<T>, sqlx::Error>
where
    F: FnMut(PageParams) -> Fut,
    Fut: Future<Output = Result<Page<T>, sqlx::Error>>,
{
    let mut items = Vec::new();
    for page in 1.. {
        let p = query(PageParams { page, limit: 100 }).await?;
        let last = p.items.len() < 100 || i64::from(page) * 100 >= p.total;
        items.extend(p.items);
        if last {
            break;
        }
    }
    Ok(items)
}
