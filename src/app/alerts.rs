//! The alert lifecycle (rules in `domain::alert`): raising an abnormal
//! record's alert and its order request, acknowledging and resolving alerts,
//! who sees which, and escalating those nobody acknowledged in time.
//!
//! Raising is called by the request that recorded the vitals (so its answer
//! names the alert) and by the alert reactor (so a crash in between loses
//! nothing); both derive the same ids from the record, so there is one alert
//! and one request whoever comes first. Escalation is called by the
//! escalation loop (`crate::escalation`) with the time it runs at.

use chrono::{DateTime, Utc};
use domain::alert::{severity_of, Alert, AlertCommand, AlertStatus, AlertTrigger, Outcome, Resolver};
use domain::health_record::RecordContent;
use domain::ids::{AlertId, HealthRecordId, OrderRequestId, UserId};
use domain::order::{OrderRequest, OrderRequestCommand, RequestDetails};
use domain::user::Role;
use domain::vitals::Severity;
use projections::alerts::{AlertDetails, AlertFilter};
use projections::store::instant;
use projections::{Page, PageParams};
use uuid::Uuid;

use crate::app::error::AppError;
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};
use crate::store::{CommandContext, Committed};

/// What an abnormal record raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub alert: AlertId,
    /// The order request for the alert's doctor, which links the alert.
    pub request: OrderRequestId,
}

/// The order request an abnormal record raises (the id it has had since
/// before alerts existed).
fn request_of(record: HealthRecordId) -> OrderRequestId {
    OrderRequestId(Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("alert:{record}").as_bytes()))
}

/// `ctx` for another command of the same cause.
fn as_command(ctx: &CommandContext, command: &str) -> CommandContext {
    let mut ctx = ctx.clone();
    ctx.metadata.insert("command".into(), command.into());
    ctx.expected_version = None;
    ctx
}

/// A create that the other raiser may have made first: its refusal (the only
/// conflict a create has) means the aggregate is there, which is all the
/// caller needs; let the read models show it too.
async fn created_or_there(state: &AppState, result: Result<Committed, AppError>) -> Result<(), AppError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_refusal() => {
            state.waiter.wait_for(state.store.head().await?).await;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Triggers the alert of an abnormal record and opens its order request, for
/// the same doctor; nothing for a normal one. `None` too when no doctor is
/// active (logged: an admin has to add one).
pub async fn raise(
    state: &AppState,
    record: HealthRecordId,
    content: &RecordContent,
    ctx: CommandContext,
) -> Result<Option<Raised>, AppError> {
    let Some(severity) = severity_of(&content.alerts) else {
        return Ok(None);
    };
    let alert = AlertId::of_record(record);
    let request = request_of(record);
    // The doctor the alert went to if the other raiser was first, else one picked now.
    let existing = state.store.load::<Alert>(&alert.to_string()).await?;
    let doctor = match existing.and_then(|(a, _)| a.trigger).map(|t| t.doctor_id) {
        Some(d) => d,
        None => match crate::app::doctors::for_patient(state, content.patient_id, None).await? {
            Some(d) => d,
            None => {
                tracing::warn!(record = %record, "abnormal vitals but no active doctor to alert");
                return Ok(None);
            }
        },
    };
    let trigger = AlertTrigger {
        patient_id: content.patient_id,
        health_record_id: record,
        severity,
        reasons: content.alerts.clone(),
        doctor_id: doctor,
        at: Utc::now(),
    };
    let triggered = state
        .execute::<Alert>(
            &alert.to_string(),
            AlertCommand::Trigger(trigger),
            as_command(&ctx, "TriggerAlert"),
        )
        .await;
    created_or_there(state, triggered).await?;
    let details = RequestDetails {
        health_record_id: record,
        patient_id: content.patient_id,
        doctor_id: doctor,
        requested_by: None,
        recorder_id: content.recorder_id,
        reason: None,
        alerts: content.alerts.clone(),
        alert_id: Some(alert),
    };
    let opened = state
        .execute::<OrderRequest>(
            &request.to_string(),
            OrderRequestCommand::Open(details),
            as_command(&ctx, "RaiseAlertRequest"),
        )
        .await;
    created_or_there(state, opened).await?;
    Ok(Some(Raised { alert, request }))
}

/// Which alerts `p` may see: admins and auditors all (auditors only read),
/// a doctor those with them now; recorders none.
fn may_see(p: &Principal, alert: &AlertDetails) -> bool {
    match p.role {
        Role::Admin | Role::Auditor => true,
        Role::Doctor => alert.doctor_id == p.user_id,
        Role::Recorder => false,
    }
}

/// The alert, if `p` may see it (404 otherwise).
pub async fn get(state: &AppState, p: &Principal, id: AlertId) -> Result<AlertDetails, AppError> {
    p.require(&[Role::Admin, Role::Auditor, Role::Doctor])?;
    state
        .read()
        .await
        .alerts()
        .get(id)
        .await?
        .filter(|a| may_see(p, a))
        .ok_or(AppError::NotFound("alert"))
}

/// A page of the alerts `p` may see.
pub async fn list(
    state: &AppState,
    p: &Principal,
    status: Option<AlertStatus>,
    severity: Option<Severity>,
    page: PageParams,
) -> Result<Page<AlertDetails>, AppError> {
    p.require(&[Role::Admin, Role::Auditor, Role::Doctor])?;
    let filter = AlertFilter {
        doctor: p.is(Role::Doctor).then_some(p.user_id),
        status,
        severity,
    };
    Ok(state.read().await.alerts().list(filter, page).await?)
}

/// The alert after a command on it (past the bounded read-your-writes wait
/// the view may lag; the version answered is the one the command produced).
async fn after(state: &AppState, id: AlertId, committed: Committed) -> Result<AlertDetails, AppError> {
    let mut alert = state
        .read()
        .await
        .alerts()
        .get(id)
        .await?
        .ok_or(AppError::NotFound("alert"))?;
    alert.version = alert.version.max(committed.version);
    Ok(alert)
}

/// Its doctor acknowledges an alert: it stops escalating.
pub async fn acknowledge(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: AlertId,
) -> Result<AlertDetails, AppError> {
    p.require(&[Role::Doctor])?;
    get(state, p, id).await?;
    let command = AlertCommand::Acknowledge {
        by: p.user_id,
        at: Utc::now(),
    };
    let committed = state
        .execute::<Alert>(&id.to_string(), command, meta.context(Some(p), "AcknowledgeAlert"))
        .await?;
    after(state, id, committed).await
}

/// Its doctor, or an admin, resolves an alert with its outcome.
pub async fn resolve(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: AlertId,
    outcome: Outcome,
    note: Option<String>,
) -> Result<AlertDetails, AppError> {
    p.require(&[Role::Doctor, Role::Admin])?;
    get(state, p, id).await?;
    let by = if p.is(Role::Admin) {
        Resolver::Admin(p.user_id)
    } else {
        Resolver::Doctor(p.user_id)
    };
    let command = AlertCommand::Resolve {
        outcome,
        note,
        by,
        at: Utc::now(),
    };
    let committed = state
        .execute::<Alert>(&id.to_string(), command, meta.context(Some(p), "ResolveAlert"))
        .await?;
    after(state, id, committed).await
}

/// How many alerts one escalation pass takes on (the rest wait for the next).
const ESCALATION_BATCH: i64 = 100;

/// Escalates every alert whose wait for an acknowledgement is over at `now`:
/// to the least loaded other available doctor (the same one if there is
/// none), telling every active admin. Each escalation names the level it
/// escalates from, so an alert escalated meanwhile (by another instance), or
/// acknowledged or resolved, is left alone. Returns the alerts escalated.
pub async fn escalate_due(state: &AppState, now: DateTime<Utc>) -> Result<Vec<AlertId>, AppError> {
    let policy = state.settings.alerts.escalation;
    let due = state
        .read()
        .await
        .alerts()
        .due(
            &instant(now - policy.urgent_after),
            &instant(now - policy.abnormal_after),
            ESCALATION_BATCH,
        )
        .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let admins: Vec<UserId> = state.read().await.users().active_admins().await?;
    let mut escalated = Vec::new();
    for alert in due {
        let (id, current) = (alert.id, alert.doctor_id);
        let to_doctor = state
            .read()
            .await
            .alerts()
            .least_loaded_doctor_except(current)
            .await?
            .unwrap_or(current);
        let command = AlertCommand::Escalate {
            expected_level: u32::try_from(alert.escalation_level).unwrap_or_default(),
            to_doctor,
            admins: admins.clone(),
            policy,
            at: now,
        };
        match state
            .execute::<Alert>(&id.to_string(), command, RequestMeta::system("EscalateAlert"))
            .await
        {
            Ok(_) => escalated.push(id),
            // Acknowledged, resolved or escalated meanwhile, or (by the
            // clock's last milliseconds) not due yet: the aggregate said no.
            Err(e) if e.is_refusal() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(escalated)
}
