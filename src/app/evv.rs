//! Visit verification exceptions: raising them from the facts as the events
//! arrive (called by the EVV follower and the end-of-day sweep, never only in
//! a request), and the use cases of the people who answer them.
//!
//! Every raise goes to the exception of that visit and code
//! ([`EvvExceptionId::of`]), and the aggregate records nothing when it exists
//! already or when the facts are in order: whoever raises, however often, one
//! exception per visit and code.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use domain::evv::{
    Evidence, EvvCode, EvvException, EvvExceptionCommand, EvvStatus, PositionSource, VisitInterval, VisitRef,
};
use domain::health_record::HealthRecordEvent;
use domain::ids::{EvvExceptionId, VisitId};
use domain::user::Role;
use domain::visit::{Visit, VisitEvent, VisitMark};
use projections::evv::{EvvExceptionView, EvvFilter};
use projections::store::instant;
use projections::{Page, PageParams, StoredEvent};

use crate::app::error::AppError;
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};
use crate::store::CommandContext;

/// The aggregate types and events the EVV follower acts on.
pub fn wants(aggregate_type: &str, event_type: &str) -> bool {
    matches!(
        (aggregate_type, event_type),
        ("appointment", "VisitCheckedIn" | "VisitCheckedOut") | ("health_record", "HealthRecordCreated")
    )
}

/// Raises what `e` shows: away from home and overlapping visits at a check-in,
/// a short visit (and a check-out after the day ended) at a check-out, away
/// from home and a missing signature at a visit's record.
pub async fn react(state: &AppState, e: &StoredEvent, ctx: &CommandContext) -> anyhow::Result<()> {
    match e.aggregate_type.as_str() {
        "appointment" => {
            let visit_id: VisitId = e.aggregate_id.parse()?;
            match e.decode::<VisitEvent>()? {
                VisitEvent::VisitCheckedIn(mark) => on_check_in(state, visit_id, mark, e, ctx).await,
                VisitEvent::VisitCheckedOut(mark) => on_check_out(state, visit_id, mark, ctx).await,
                _ => Ok(()),
            }
        }
        "health_record" => {
            let Ok(HealthRecordEvent::HealthRecordCreated(record)) = e.decode::<HealthRecordEvent>() else {
                return Ok(());
            };
            let Some(visit_id) = record.appointment_id else {
                return Ok(());
            };
            let Some(visit) = visit_ref(state, visit_id).await? else {
                return Ok(());
            };
            let position = Evidence::Position {
                source: PositionSource::Record,
                distance_from_home_m: record.distance_from_home_m,
            };
            raise(state, visit, position, e.recorded_at, ctx).await?;
            let signature = Evidence::Record {
                health_record_id: e.aggregate_id.parse()?,
                signed: record.files.patient_signature.is_some(),
            };
            raise(state, visit, signature, e.recorded_at, ctx).await
        }
        _ => Ok(()),
    }
}

async fn on_check_in(
    state: &AppState,
    visit_id: VisitId,
    mark: VisitMark,
    e: &StoredEvent,
    ctx: &CommandContext,
) -> anyhow::Result<()> {
    let Some(visit) = visit_ref(state, visit_id).await? else {
        return Ok(());
    };
    let position = Evidence::Position {
        source: PositionSource::CheckIn,
        distance_from_home_m: mark.distance_from_home_m,
    };
    raise(state, visit, position, mark.at, ctx).await?;
    // The recorder's other visits as the read model shows them once it has
    // this check-in (it may be further on: intervals are compared by time).
    state.waiter.wait_for(e.position).await;
    let rows = state
        .read()
        .await
        .evv()
        .intervals_open_at(visit.recorder_id, visit_id, &instant(mark.at))
        .await?;
    let mut others = Vec::with_capacity(rows.len());
    for r in rows {
        others.push(VisitInterval {
            visit_id: r.visit_id,
            checked_in_at: parse_instant(&r.checked_in_at)?,
            checked_out_at: r.checked_out_at.as_deref().map(parse_instant).transpose()?,
        });
    }
    let overlap = Evidence::CheckIn { at: mark.at, others };
    raise(state, visit, overlap, mark.at, ctx).await
}

async fn on_check_out(
    state: &AppState,
    visit_id: VisitId,
    mark: VisitMark,
    ctx: &CommandContext,
) -> anyhow::Result<()> {
    let Some((visit, _)) = state.store.load::<Visit>(&visit_id.to_string()).await? else {
        return Ok(());
    };
    let (Some(plan), Some(check_in)) = (visit.plan.as_ref(), visit.check_in) else {
        return Ok(());
    };
    let refs = VisitRef {
        visit_id,
        patient_id: plan.patient_id,
        recorder_id: plan.recorder_id,
    };
    let duration = Evidence::Duration {
        checked_in_at: check_in.at,
        checked_out_at: mark.at,
    };
    raise(state, refs, duration, mark.at, ctx).await?;
    // A check-out after the check-in's day ended is a missing check-out too
    // (the sweep may not have run: the server was down that midnight).
    let day_ended_at = day_end(check_in.at, state.settings.field_work.timezone);
    if mark.at > day_ended_at {
        let late = Evidence::DayEnd {
            checked_in_at: check_in.at,
            checked_out_at: Some(mark.at),
            day_ended_at,
        };
        raise(state, refs, late, mark.at, ctx).await?;
    }
    Ok(())
}

/// Raises `missing_check_out` for every visit checked in before today began
/// (as of `now`) and still not checked out: the end-of-day check, run under a
/// leader lock; it catches up on every day missed while no server ran.
/// Returns how many visits it looked at.
pub async fn sweep_missing_check_outs(
    state: &AppState,
    now: DateTime<Utc>,
    ctx: &CommandContext,
) -> anyhow::Result<usize> {
    let tz = state.settings.field_work.timezone;
    let today = now.with_timezone(&tz).date_naive();
    let started = local_midnight(today, tz);
    let open = state
        .read()
        .await
        .evv()
        .open_check_ins_before(&instant(started), 500)
        .await?;
    for &visit_id in &open {
        let Some((visit, _)) = state.store.load::<Visit>(&visit_id.to_string()).await? else {
            continue;
        };
        let (Some(plan), Some(check_in)) = (visit.plan.as_ref(), visit.check_in) else {
            continue;
        };
        let refs = VisitRef {
            visit_id,
            patient_id: plan.patient_id,
            recorder_id: plan.recorder_id,
        };
        let evidence = Evidence::DayEnd {
            checked_in_at: check_in.at,
            checked_out_at: visit.check_out.map(|m| m.at),
            day_ended_at: day_end(check_in.at, tz),
        };
        raise(state, refs, evidence, now, ctx).await?;
    }
    Ok(open.len())
}

/// The visit's patient and recorder, from the visit's own events.
async fn visit_ref(state: &AppState, visit_id: VisitId) -> anyhow::Result<Option<VisitRef>> {
    let visit = state.store.load::<Visit>(&visit_id.to_string()).await?;
    Ok(visit.and_then(|(v, _)| v.plan).map(|plan| VisitRef {
        visit_id,
        patient_id: plan.patient_id,
        recorder_id: plan.recorder_id,
    }))
}

async fn raise(
    state: &AppState,
    visit: VisitRef,
    evidence: Evidence,
    at: DateTime<Utc>,
    ctx: &CommandContext,
) -> anyhow::Result<()> {
    let id = EvvExceptionId::of(visit.visit_id, evidence.code().as_str());
    let command = EvvExceptionCommand::Raise {
        visit,
        evidence,
        policy: state.settings.evv,
        at,
    };
    let mut ctx = ctx.clone();
    ctx.metadata.insert("command".into(), "RaiseEvvException".into());
    state
        .execute::<EvvException>(&id.to_string(), command, ctx)
        .await
        .map_err(|e| anyhow::anyhow!("raising an EVV exception: {e}"))?;
    Ok(())
}

fn parse_instant(raw: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(raw)?.to_utc())
}

/// Midnight at the start of `day` in `tz`, as an instant.
pub fn day_start(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    local_midnight(day, tz)
}

fn local_midnight(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    match tz.from_local_datetime(&midnight).earliest() {
        Some(t) => t.to_utc(),
        // A zone whose clocks skip midnight: the day begins an hour later.
        None => tz
            .from_local_datetime(&(midnight + chrono::TimeDelta::hours(1)))
            .earliest()
            .map_or_else(|| midnight.and_utc(), |t| t.to_utc()),
    }
}

/// When the local day of `at` ends in `tz` (the next local midnight).
fn day_end(at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let day = at.with_timezone(&tz).date_naive();
    local_midnight(day.succ_opt().unwrap_or(day), tz)
}

/// The exception list: recorders see their own, admins and auditors all.
pub async fn list(
    state: &AppState,
    p: &Principal,
    mut filter: EvvFilter,
    page: PageParams,
) -> Result<Page<EvvExceptionView>, AppError> {
    match p.role {
        Role::Recorder => filter.recorder = Some(p.user_id),
        Role::Admin | Role::Auditor => {}
        Role::Doctor => return Err(AppError::Forbidden),
    }
    Ok(state.read().await.evv().list(&filter, page).await?)
}

/// An exception as its answerers may act on it: its recorder or an admin.
async fn answerable(state: &AppState, p: &Principal, id: &str, roles: &[Role]) -> Result<EvvExceptionView, AppError> {
    p.require(roles)?;
    let id: EvvExceptionId = crate::app::input::path_id(id, "evv_exception")?;
    let x = state
        .read()
        .await
        .evv()
        .get(id)
        .await?
        .ok_or(AppError::NotFound("evv_exception"))?;
    if p.role == Role::Recorder && x.recorder_id != p.user_id {
        return Err(AppError::NotFound("evv_exception"));
    }
    Ok(x)
}

/// Its recorder or an admin explains an exception with a catalogue reason code.
pub async fn acknowledge(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    reason_code: String,
) -> Result<EvvExceptionView, AppError> {
    let x = answerable(state, p, id, &[Role::Recorder, Role::Admin]).await?;
    let command = EvvExceptionCommand::Acknowledge {
        reason_code,
        by: p.user_id,
        at: Utc::now(),
    };
    answer(state, p, meta, x.id, command, "AcknowledgeEvvException").await
}

/// An admin closes an exception.
pub async fn resolve(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    resolution: String,
) -> Result<EvvExceptionView, AppError> {
    let x = answerable(state, p, id, &[Role::Admin]).await?;
    let command = EvvExceptionCommand::Resolve {
        resolution,
        by: p.user_id,
        at: Utc::now(),
    };
    answer(state, p, meta, x.id, command, "ResolveEvvException").await
}

async fn answer(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: EvvExceptionId,
    command: EvvExceptionCommand,
    name: &str,
) -> Result<EvvExceptionView, AppError> {
    state
        .execute::<EvvException>(&id.to_string(), command, meta.context(Some(p), name))
        .await?;
    state
        .read()
        .await
        .evv()
        .get(id)
        .await?
        .ok_or(AppError::NotFound("evv_exception"))
}

/// Parses the list's query values, naming the offending field.
pub fn status_and_code(
    status: Option<&str>,
    code: Option<&str>,
) -> Result<(Option<EvvStatus>, Option<EvvCode>), AppError> {
    let status = status
        .map(EvvStatus::parse)
        .transpose()
        .map_err(|e| AppError::field("status", e))?;
    let code = code
        .map(EvvCode::parse)
        .transpose()
        .map_err(|e| AppError::field("code", e))?;
    Ok((status, code))
}

/// The instants at which local days `from` and `to` (inclusive) begin and end.
pub fn day_bounds(
    state: &AppState,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> (Option<String>, Option<String>) {
    let tz = state.settings.field_work.timezone;
    (
        from.map(|d| instant(local_midnight(d, tz))),
        to.map(|d| instant(local_midnight(d.succ_opt().unwrap_or(d), tz))),
    )
}
