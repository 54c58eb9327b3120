//! Scheduling home visits: schedule, confirm, reschedule, cancel, complete.
//! Shared by the HTTP handlers (`api::visits`) and offline sync (`app::sync`),
//! which passes the instant the device captured the command as `now`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use domain::ids::{PackageId, PatientId, UserId, VisitId};
use domain::subscription::SubscriptionStatus;
use domain::user::Role;
use domain::values::{date, optional_text, time};
use domain::visit::{ScheduleContext, Visit, VisitCommand, VisitPlan, VisitStatus, VisitType};
use domain::Validator;
use projections::visits::VisitView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::input::{path_id, required};
use crate::app::refusal::Refusal;
use crate::auth::Principal;
use crate::policy::{can_see_patient, ensure_not_erased, ensure_sees_patient};
use crate::state::{AppState, RequestMeta};

/// Claims scope of the numbered monthly places of regular visits.
const QUOTA_SCOPE: &str = "visit_quota";

#[derive(Debug, Deserialize, ToSchema)]
pub struct ScheduleInput {
    #[schema(required = true, value_type = String, format = Uuid)]
    pub patient_id: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(required = true, value_type = String, format = Date)]
    pub scheduled_date: Option<String>,
    /// `HH:MM`; date and time not in the past.
    #[schema(required = true, value_type = String, pattern = "^[0-9]{2}:[0-9]{2}$")]
    pub scheduled_time: Option<String>,
    /// regular (default) | makeup | emergency
    pub appointment_type: Option<String>,
    /// Up to 1000 characters.
    #[schema(max_length = 1000)]
    pub notes: Option<String>,
    /// Admins schedule for the patient's recorder; a recorder always for themselves.
    pub recorder_id: Option<String>,
}

impl ScheduleInput {
    /// The visit asked for, every field checked (400 naming each bad one).
    pub fn parse(&self) -> Result<NewVisit, AppError> {
        let r = self;
        let mut v = Validator::new();
        let raw_patient = required(&mut v, "patient_id", &r.patient_id);
        let patient: Option<PatientId> =
            raw_patient.and_then(|s| v.check("patient_id", s.parse().map_err(|_| "应为UUID".to_string())));
        let raw_date = required(&mut v, "scheduled_date", &r.scheduled_date);
        let day = raw_date.and_then(|d| v.check("scheduled_date", date(d)));
        let raw_time = required(&mut v, "scheduled_time", &r.scheduled_time);
        let at = raw_time.and_then(|t| v.check("scheduled_time", time(t)));
        let kind = match r.appointment_type.as_deref() {
            None | Some("") => Some(VisitType::Regular),
            Some(k) => v.check("appointment_type", VisitType::parse(k)),
        };
        let notes = v.check("notes", optional_text(r.notes.as_deref(), 1000)).flatten();
        let recorder: Option<UserId> = r
            .recorder_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| v.check("recorder_id", s.parse().map_err(|_| "应为UUID".to_string())));
        v.finish()?;
        let (Some(patient), Some(date), Some(time), Some(kind)) = (patient, day, at, kind) else {
            return Err(AppError::field("body", "缺少必填字段"));
        };
        Ok(NewVisit {
            patient,
            date,
            time,
            kind,
            notes,
            recorder,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct CancelInput {
    /// Up to 500 characters.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RescheduleInput {
    /// `YYYY-MM-DD`, within the subscription.
    #[schema(required = true, value_type = String, format = Date)]
    pub scheduled_date: Option<String>,
    /// `HH:MM`; date and time not in the past.
    #[schema(required = true, value_type = String, pattern = "^[0-9]{2}:[0-9]{2}$")]
    pub scheduled_time: Option<String>,
}

impl RescheduleInput {
    /// The new date and time, each checked (400 naming each bad one).
    pub fn parse(&self) -> Result<(NaiveDate, NaiveTime), AppError> {
        let mut v = Validator::new();
        let raw_date = required(&mut v, "scheduled_date", &self.scheduled_date);
        let day = raw_date.and_then(|d| v.check("scheduled_date", date(d)));
        let raw_time = required(&mut v, "scheduled_time", &self.scheduled_time);
        let at = raw_time.and_then(|t| v.check("scheduled_time", time(t)));
        v.finish()?;
        let (Some(day), Some(at)) = (day, at) else {
            return Err(AppError::field("body", "缺少必填字段"));
        };
        Ok((day, at))
    }
}

/// A visit to schedule, its fields checked.
#[derive(Debug, Clone)]
pub struct NewVisit {
    pub patient: PatientId,
    pub date: NaiveDate,
    pub time: NaiveTime,
    pub kind: VisitType,
    pub notes: Option<String>,
    /// Admins may name the patient's recorder; a recorder always schedules for themselves.
    pub recorder: Option<UserId>,
}

/// What scheduling a visit answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitScheduled {
    pub id: String,
    /// Always `scheduled`.
    pub status: String,
    pub version: i64,
}

/// What a visit's transition answers: its state after the command.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitTransitioned {
    #[schema(value_type = String, format = Uuid)]
    pub id: VisitId,
    #[schema(value_type = String)]
    pub status: VisitStatus,
    pub scheduled_date: String,
    pub scheduled_time: String,
    pub version: i64,
}

/// The local time now, in the configured timezone.
pub fn now_local(state: &AppState) -> NaiveDateTime {
    chrono::Utc::now()
        .with_timezone(&state.settings.field_work.timezone)
        .naive_local()
}

/// Takes one of the numbered places of `day`'s month for visit `owner`.
async fn claim_place(
    state: &AppState,
    patient: PatientId,
    day: NaiveDate,
    quota: u32,
    owner: VisitId,
) -> Result<(), AppError> {
    let month = day.format("%Y-%m");
    let owner = owner.to_string();
    for n in 1..=quota {
        if state
            .store
            .claim(QUOTA_SCOPE, &format!("{patient}:{month}:{n}"), &owner)
            .await?
        {
            return Ok(());
        }
    }
    Err(Refusal::MonthlyQuotaReached { quota }.into())
}

/// The quota facts for a regular visit of `patient` in the month of `date`, as of `now`.
async fn schedule_context(
    state: &AppState,
    patient: PatientId,
    package_id: PackageId,
    date: NaiveDate,
    except: Option<VisitId>,
    now: NaiveDateTime,
) -> Result<ScheduleContext, AppError> {
    let package = state
        .read()
        .await
        .packages()
        .get(package_id)
        .await?
        .ok_or(AppError::NotFound("service_package"))?;
    let used = state
        .read()
        .await
        .visits()
        .regular_in_month(patient, date, except)
        .await?;
    Ok(ScheduleContext {
        now,
        monthly_quota: u32::try_from(package.service_frequency).unwrap_or(0),
        regular_visits_that_month: u32::try_from(used).unwrap_or(u32::MAX),
    })
}

/// Schedules `visit` as of `now` (local time: the server's clock, or when a
/// device captured the command offline). The visit's id derives from the
/// request's idempotency key, so a retry hits the same visit.
pub async fn schedule(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    visit: NewVisit,
    now: NaiveDateTime,
) -> Result<VisitScheduled, AppError> {
    p.require(&[Role::Recorder, Role::Admin])?;
    let patient = visit.patient;
    ensure_sees_patient(state, p, patient).await?;
    ensure_not_erased(state, patient).await?;
    if visit.date.and_time(visit.time) < now {
        return Err(AppError::field("scheduled_time", "预约时间不能早于当前时间"));
    }
    // The subscription that covers the visit date, active and not expired.
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
    let day = visit.date.to_string();
    let sub = subs
        .items
        .into_iter()
        .find(|s| s.status == SubscriptionStatus::Active && s.start_date <= day && s.end_date >= day)
        .ok_or(Refusal::NoSubscriptionOnDate)?;
    let recorder: UserId = match p.role {
        Role::Recorder => {
            if sub.recorder_id != p.user_id {
                return Err(AppError::NotFound("patient"));
            }
            p.user_id
        }
        _ => match visit.recorder {
            Some(r) if r != sub.recorder_id => {
                return Err(AppError::field("recorder_id", "该记录员未负责此患者"));
            }
            _ => sub.recorder_id,
        },
    };
    let context = schedule_context(state, patient, sub.package_id, visit.date, None, now).await?;
    let standing = crate::app::compliance::recorder_standing(state, recorder).await?;
    let plan = VisitPlan {
        patient_id: visit.patient,
        recorder_id: recorder,
        subscription_id: sub.id,
        scheduled_date: visit.date,
        scheduled_time: visit.time,
        appointment_type: visit.kind,
        notes: visit.notes,
    };
    let id = VisitId(crate::idempotency::new_id(meta, p));
    // The read-model count above can be stale by a concurrent request: a regular
    // visit also takes one of the month's numbered places, claimed atomically.
    if visit.kind == VisitType::Regular {
        claim_place(state, patient, visit.date, context.monthly_quota, id).await?;
    }
    let result = state
        .execute::<Visit>(
            &id.to_string(),
            VisitCommand::Schedule {
                plan,
                context,
                recorder: standing,
            },
            meta.context(Some(p), "ScheduleVisit").creating(),
        )
        .await;
    let c = match result {
        Ok(c) => c,
        // A retry of a visit that exists: its places are its own, keep them.
        Err(e) if e.is_refusal() && state.store.load::<Visit>(&id.to_string()).await?.is_some() => {
            return Err(e);
        }
        Err(e) => {
            state.store.release_all(QUOTA_SCOPE, &id.to_string(), "").await?;
            return Err(e);
        }
    };
    Ok(VisitScheduled {
        id: id.to_string(),
        status: "scheduled".into(),
        version: c.version,
    })
}

/// The visit, if the caller may act on it: its recorder, or an admin.
pub async fn own_visit(state: &AppState, p: &Principal, id: &str) -> Result<VisitView, AppError> {
    let vid: VisitId = path_id(id, "appointment")?;
    let visit = state
        .read()
        .await
        .visits()
        .get(vid)
        .await?
        .ok_or(AppError::NotFound("appointment"))?;
    match p.role {
        Role::Admin => Ok(visit),
        // Their own visit, of a patient still assigned to them.
        Role::Recorder if visit.recorder_id == p.user_id && can_see_patient(state, p, visit.patient.id).await? => {
            Ok(visit)
        }
        Role::Recorder => Err(AppError::NotFound("appointment")),
        _ => Err(AppError::Forbidden),
    }
}

async fn transition(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    cmd: VisitCommand,
    name: &str,
) -> Result<VisitTransitioned, AppError> {
    let visit = own_visit(state, p, id).await?;
    let c = state
        .execute::<Visit>(&visit.id.to_string(), cmd, meta.context(Some(p), name))
        .await?;
    let after = state
        .read()
        .await
        .visits()
        .get(visit.id)
        .await?
        .ok_or(AppError::NotFound("appointment"))?;
    Ok(VisitTransitioned {
        id: visit.id,
        status: after.status,
        scheduled_date: after.scheduled_date,
        scheduled_time: after.scheduled_time,
        version: c.version,
    })
}

pub async fn confirm(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
) -> Result<VisitTransitioned, AppError> {
    transition(state, p, meta, id, VisitCommand::Confirm, "ConfirmVisit").await
}

/// Cancels the visit and gives back its monthly place.
pub async fn cancel(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    reason: Option<String>,
) -> Result<VisitTransitioned, AppError> {
    let done = transition(state, p, meta, id, VisitCommand::Cancel { reason }, "CancelVisit").await?;
    state.store.release_all(QUOTA_SCOPE, &done.id.to_string(), "").await?;
    Ok(done)
}

pub async fn complete(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
) -> Result<VisitTransitioned, AppError> {
    transition(
        state,
        p,
        meta,
        id,
        VisitCommand::Complete { record: None },
        "CompleteVisit",
    )
    .await
}

/// Moves the visit to `day` at `at`; a regular visit moving to another month
/// takes a place there and gives back its place in the old month.
pub async fn reschedule(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    day: NaiveDate,
    at: NaiveTime,
) -> Result<VisitTransitioned, AppError> {
    let visit = own_visit(state, p, id).await?;
    let sub = state
        .read()
        .await
        .subscriptions()
        .get(visit.subscription_id, state.today())
        .await?
        .ok_or(AppError::NotFound("subscription"))?;
    if day.to_string() > sub.end_date || day.to_string() < sub.start_date {
        return Err(Refusal::OutsideSubscription.into());
    }
    let now = now_local(state);
    let context = schedule_context(state, visit.patient.id, sub.package_id, day, Some(visit.id), now).await?;
    let old_month = visit.scheduled_date.get(..7).unwrap_or_default().to_string();
    let new_month = day.format("%Y-%m").to_string();
    let moves = visit.appointment_type == VisitType::Regular
        && old_month != new_month
        && visit.status != VisitStatus::Cancelled;
    if moves {
        claim_place(state, visit.patient.id, day, context.monthly_quota, visit.id).await?;
    }
    let cmd = VisitCommand::Reschedule {
        date: day,
        time: at,
        context,
    };
    let result = transition(state, p, meta, id, cmd, "RescheduleVisit").await;
    if moves {
        let month = if result.is_ok() { &old_month } else { &new_month };
        let prefix = format!("{}:{month}:", visit.patient.id);
        state
            .store
            .release_all(QUOTA_SCOPE, &visit.id.to_string(), &prefix)
            .await?;
    }
    result
}
