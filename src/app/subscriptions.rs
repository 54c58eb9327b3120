//! Subscriptions: an admin subscribes a patient to a service package, served
//! by a recorder in good standing, from a start date for the package's duration.

use domain::ids::{PackageId, PatientId, SubscriptionId, UserId};
use domain::package::ServicePackage;
use domain::patient::Patient;
use domain::subscription::{PaymentStatus, Subscription, SubscriptionCommand, SubscriptionStatus};
use domain::user::{Role, User};
use domain::values::date;
use domain::Validator;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::input::{required, uuid_field};
use crate::app::StatusChanged;
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscriptionInput {
    #[schema(required = true, value_type = String, format = Uuid)]
    pub patient_id: Option<String>,
    #[schema(required = true, value_type = String, format = Uuid)]
    pub package_id: Option<String>,
    /// An active recorder (user id).
    #[schema(required = true, value_type = String, format = Uuid)]
    pub recorder_id: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(required = true, value_type = String, format = Date)]
    pub start_date: Option<String>,
}

/// What creating a subscription answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionCreated {
    pub id: String,
    /// `start_date` + the package's `duration_days`.
    pub end_date: Option<String>,
    /// Always `active`.
    pub status: String,
    pub version: i64,
}

/// An admin subscribes a patient (see the module docs); the referenced
/// patient, package and recorder are read from the event store.
pub async fn subscribe(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    input: &SubscriptionInput,
) -> Result<SubscriptionCreated, AppError> {
    p.require(&[Role::Admin])?;
    let r = input;
    let mut v = Validator::new();
    let raw = required(&mut v, "patient_id", &r.patient_id);
    let patient_id: Option<PatientId> = uuid_field(&mut v, "patient_id", raw);
    let raw = required(&mut v, "package_id", &r.package_id);
    let package_id: Option<PackageId> = uuid_field(&mut v, "package_id", raw);
    let raw = required(&mut v, "recorder_id", &r.recorder_id);
    let recorder_id: Option<UserId> = uuid_field(&mut v, "recorder_id", raw);
    let start_date = required(&mut v, "start_date", &r.start_date).and_then(|d| v.check("start_date", date(d)));
    v.finish()?;
    let (Some(patient_id), Some(package_id), Some(recorder_id), Some(start_date)) =
        (patient_id, package_id, recorder_id, start_date)
    else {
        return Err(AppError::field("body", "缺少必填字段"));
    };
    // The referenced aggregates are read from the event store, not a read model.
    let mut v = Validator::new();
    if state.store.load::<Patient>(&patient_id.to_string()).await?.is_none() {
        v.add("patient_id", "患者不存在");
    }
    let package = state.store.load::<ServicePackage>(&package_id.to_string()).await?;
    let duration = package
        .as_ref()
        .and_then(|(p, _)| p.details.as_ref())
        .map(|d| d.duration_days);
    if duration.is_none() {
        v.add("package_id", "套餐不存在");
    }
    match state.store.load::<User>(&recorder_id.to_string()).await? {
        Some((u, _)) if u.role == Some(Role::Recorder) && u.is_active() => {}
        _ => v.add("recorder_id", "记录员不存在或不可用"),
    }
    v.finish()?;
    crate::policy::ensure_not_erased(state, patient_id).await?;
    let id = SubscriptionId(crate::idempotency::new_id(meta, p));
    let cmd = SubscriptionCommand::Create {
        patient_id,
        package_id,
        recorder_id,
        start_date,
        duration_days: duration.unwrap_or(0),
        recorder: crate::app::compliance::recorder_standing(state, recorder_id).await?,
    };
    let c = state
        .execute::<Subscription>(
            &id.to_string(),
            cmd,
            meta.context(Some(p), "CreateSubscription").creating(),
        )
        .await?;
    let (sub, _) = state
        .store
        .load::<Subscription>(&id.to_string())
        .await?
        .ok_or(AppError::NotFound("subscription"))?;
    let end_date = sub.terms.map(|t| t.end_date.to_string());
    Ok(SubscriptionCreated {
        id: id.to_string(),
        end_date,
        status: "active".into(),
        version: c.version,
    })
}

/// What a payment change answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentChanged {
    pub id: String,
    pub payment_status: String,
    pub version: i64,
}

/// An admin changes a subscription's status (active, paused, cancelled).
pub async fn change_status(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: SubscriptionId,
    status: SubscriptionStatus,
) -> Result<StatusChanged, AppError> {
    let c = state
        .execute::<Subscription>(
            &id.to_string(),
            SubscriptionCommand::ChangeStatus { status },
            meta.context(Some(p), "ChangeSubscriptionStatus"),
        )
        .await?;
    Ok(StatusChanged {
        id: id.to_string(),
        status: status.as_str().to_string(),
        version: c.version,
    })
}

/// An admin records a subscription's payment (paid, unpaid, refunded).
pub async fn change_payment(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: SubscriptionId,
    payment_status: PaymentStatus,
) -> Result<PaymentChanged, AppError> {
    let c = state
        .execute::<Subscription>(
            &id.to_string(),
            SubscriptionCommand::ChangePayment { payment_status },
            meta.context(Some(p), "ChangeSubscriptionPayment"),
        )
        .await?;
    Ok(PaymentChanged {
        id: id.to_string(),
        payment_status: payment_status.as_str().to_string(),
        version: c.version,
    })
}
