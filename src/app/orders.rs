//! Medical orders: a doctor issues an order for their patient, answering an
//! open order request addressed to them (which it fulfils) or on their own;
//! the patient's recorder is told.

use domain::ids::{HealthRecordId, MedicalOrderId, OrderRequestId, PatientId, UserId};
use domain::order::{
    MedicalOrder, MedicalOrderCommand, OrderDetails, OrderRequest, OrderRequestCommand, OrderType, RequestStatus,
};
use domain::subscription::SubscriptionStatus;
use domain::user::Role;
use domain::values::{optional_text, text};
use domain::Validator;
use projections::orders::MedicalOrderView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::app::error::AppError;
use crate::app::input::{path_id, required, uuid_field};
use crate::app::refusal::Refusal;
use crate::app::StatusChanged;
use crate::auth::Principal;
use crate::policy::{can_see_patient, ensure_not_erased, ensure_sees_patient};
use crate::state::{AppState, RequestMeta};

#[derive(Debug, Deserialize, ToSchema)]
pub struct OrderInput {
    #[schema(required = true, value_type = String, format = Uuid)]
    pub patient_id: Option<String>,
    /// The open request (addressed to the caller) this order answers.
    pub request_id: Option<String>,
    pub health_record_id: Option<String>,
    /// medication | examination | lifestyle | followup
    #[schema(required = true, value_type = String, pattern = "^(medication|examination|lifestyle|followup)$")]
    pub order_type: Option<String>,
    /// 1 to 2000 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 2000)]
    pub content: Option<String>,
    #[schema(max_length = 255)]
    pub dosage: Option<String>,
    #[schema(max_length = 255)]
    pub frequency: Option<String>,
    #[schema(max_length = 255)]
    pub duration: Option<String>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

/// What issuing a medical order answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderIssued {
    pub id: String,
    /// Always `active`.
    pub status: String,
    pub version: i64,
}

/// Doctor `p` issues the order `input` (see the module docs).
pub async fn issue(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    input: &OrderInput,
) -> Result<OrderIssued, AppError> {
    p.require(&[Role::Doctor])?;
    let r = input;
    let mut v = Validator::new();
    let raw_patient = required(&mut v, "patient_id", &r.patient_id);
    let patient: Option<PatientId> = uuid_field(&mut v, "patient_id", raw_patient);
    let request: Option<OrderRequestId> = uuid_field(&mut v, "request_id", r.request_id.as_ref());
    let record: Option<HealthRecordId> = uuid_field(&mut v, "health_record_id", r.health_record_id.as_ref());
    let raw_type = required(&mut v, "order_type", &r.order_type);
    let order_type = raw_type.and_then(|t| v.check("order_type", OrderType::parse(t)));
    let raw_content = required(&mut v, "content", &r.content);
    let content = raw_content.and_then(|c| v.check("content", text(c, 2000)));
    let mut opt = |field: &str, value: &Option<String>, max: usize| {
        v.check(field, optional_text(value.as_deref(), max)).flatten()
    };
    let dosage = opt("dosage", &r.dosage, 255);
    let frequency = opt("frequency", &r.frequency, 255);
    let duration = opt("duration", &r.duration, 255);
    let notes = opt("notes", &r.notes, 2000);
    v.finish()?;
    let (Some(patient), Some(order_type), Some(content)) = (patient, order_type, content) else {
        return Err(AppError::field("body", "缺少必填字段"));
    };
    ensure_sees_patient(state, p, patient).await?;
    ensure_not_erased(state, patient).await?;
    let mut recorder: Option<UserId> = None;
    let mut record = record;
    if let Some(req) = request {
        let view = state.read().await.orders().request(req).await?;
        let view = view
            .filter(|q| q.doctor_id == p.user_id && q.patient_id == patient)
            .ok_or_else(|| AppError::field("request_id", "医嘱申请不存在或不属于该患者"))?;
        if view.status != RequestStatus::Open {
            return Err(Refusal::RequestHandled.into());
        }
        recorder = Some(view.recorder_id);
        record = record.or(Some(view.health_record_id));
    }
    if recorder.is_none() {
        // The recorder currently responsible for the patient is told.
        let subs = state
            .read()
            .await
            .subscriptions()
            .list(
                Some(patient),
                None,
                state.today(),
                projections::PageParams { page: 1, limit: 100 },
            )
            .await?;
        recorder = subs
            .items
            .iter()
            .find(|s| s.status == SubscriptionStatus::Active)
            .map(|s| s.recorder_id);
    }
    let details = OrderDetails {
        patient_id: patient,
        doctor_id: p.user_id,
        recorder_id: recorder,
        request_id: request,
        health_record_id: record,
        order_type,
        content,
        dosage,
        frequency,
        duration,
        notes,
    };
    let id = MedicalOrderId(crate::idempotency::new_id(meta, p));
    let c = state
        .execute::<MedicalOrder>(
            &id.to_string(),
            MedicalOrderCommand::Issue(details),
            meta.context(Some(p), "IssueMedicalOrder").creating(),
        )
        .await?;
    if let Some(req) = request {
        let mut ctx = meta.context(Some(p), "FulfilOrderRequest");
        ctx.expected_version = None;
        state
            .execute::<OrderRequest>(&req.to_string(), OrderRequestCommand::Fulfil { order_id: id }, ctx)
            .await?;
    }
    Ok(OrderIssued {
        id: id.to_string(),
        status: "active".into(),
        version: c.version,
    })
}

/// The order, if the caller may see it: an admin any, a doctor their own, a
/// recorder those of patients assigned to them.
pub(crate) async fn own_order(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> Result<projections::orders::MedicalOrderView, AppError> {
    let oid: MedicalOrderId = path_id(id, "medical_order")?;
    let order = state
        .read()
        .await
        .orders()
        .get(oid)
        .await?
        .ok_or(AppError::NotFound("medical_order"))?;
    let visible = match p.role {
        Role::Admin => true,
        Role::Doctor => order.doctor_id == p.user_id,
        Role::Recorder => can_see_patient(state, p, order.patient_id).await?,
        Role::Auditor => false,
    };
    if !visible {
        return Err(AppError::NotFound("medical_order"));
    }
    Ok(order)
}

/// An order the caller may see, its read logged.
pub async fn order(
    state: &AppState,
    p: &Principal,
    origin: &ReadOrigin,
    id: &str,
) -> Result<MedicalOrderView, AppError> {
    let order = own_order(state, p, id).await?;
    state.access.patients(p, origin, [&order.patient_id]).await?;
    Ok(order)
}

/// A doctor (or an admin) completes or cancels an order they may see.
pub async fn finish(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    cmd: MedicalOrderCommand,
    name: &str,
) -> Result<StatusChanged, AppError> {
    p.require(&[Role::Doctor, Role::Admin])?;
    let order = own_order(state, p, id).await?;
    let c = state
        .execute::<MedicalOrder>(&order.id.to_string(), cmd, meta.context(Some(p), name))
        .await?;
    let after = state
        .read()
        .await
        .orders()
        .get(order.id)
        .await?
        .ok_or(AppError::NotFound("medical_order"))?;
    Ok(StatusChanged {
        id: order.id.to_string(),
        status: after.status.as_str().to_string(),
        version: c.version,
    })
}
