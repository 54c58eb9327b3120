//! Offline sync: a recorder's phone replays the commands it captured offline
//! (`POST /sync/push`).
//!
//! # Exactly once
//! Each command carries the client's `command_id`. Before it runs, a command
//! already applied answers `duplicate` with its first result. While it runs,
//! its [`CommandMark`] (recorder, command id, result) waits in the task (see
//! [`crate::appender::with_mark`]) and the first append of its use case writes
//! it into `sync_commands` in the same transaction as its events: a resend
//! racing the first application hits the primary key and writes nothing. The
//! result is known before the commit because the ids a command creates derive
//! from its command id (the use cases' ids come from the idempotency key
//! `sync:<command_id>`), so the stored first result is the answer.
//!
//! # Order and dependencies
//! Commands run one after another in the given order. A rejected command does
//! not stop the others, except those that refer to what it would have created:
//! a body may name a visit (`appointment_id`) or a record (`health_record_id`)
//! by the `command_id` of the `schedule_visit` or `record_vitals` that created
//! it, in this batch or an earlier one; if that command was rejected in this
//! batch, the dependent one is rejected with `dependency_rejected`.
//!
//! # Time
//! `captured_at` may lie up to 7 days in the past and at most 5 minutes ahead
//! of the server. It is the visit's and the record's time (a visit scheduled
//! offline is judged "in the past" against it; a record's `recorded_at`, its
//! date and time default to it; a check-in happens at it), and it is added to
//! the metadata of the events, which keep the server's `time`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use domain::ids::{FamilyId, MedicalOrderId, PatientId, UserId, VisitId};
use domain::user::Role;
use domain::visit::VisitStatus;
use projections::visits::VisitFilter;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::records::{open_order_request, record_vitals, OrderRequestInput, RecordInput};
use crate::app::schedule;
use crate::app::schedule::{CancelInput, ScheduleInput};
use crate::app::visits::{self, PositionInput, VisitEnd};
use crate::appender::{with_mark, AppendError, CommandMark, MarkOutcome};
use crate::auth::Principal;
use crate::policy::can_see_patient;
use crate::state::{AppState, RequestMeta};

/// How old a captured command may be.
const MAX_AGE: Duration = Duration::days(7);
/// How far ahead of the server's clock a device's may run.
const MAX_SKEW: Duration = Duration::minutes(5);

/// The kinds of command a phone can capture offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandType {
    ScheduleVisit,
    CheckIn,
    CheckOut,
    RecordVitals,
    ConfirmVisit,
    CancelVisit,
    RequestOrder,
    MarkRead,
}

impl CommandType {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "schedule_visit" => Self::ScheduleVisit,
            "check_in" => Self::CheckIn,
            "check_out" => Self::CheckOut,
            "record_vitals" => Self::RecordVitals,
            "confirm_visit" => Self::ConfirmVisit,
            "cancel_visit" => Self::CancelVisit,
            "request_order" => Self::RequestOrder,
            "mark_read" => Self::MarkRead,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ScheduleVisit => "schedule_visit",
            Self::CheckIn => "check_in",
            Self::CheckOut => "check_out",
            Self::RecordVitals => "record_vitals",
            Self::ConfirmVisit => "confirm_visit",
            Self::CancelVisit => "cancel_visit",
            Self::RequestOrder => "request_order",
            Self::MarkRead => "mark_read",
        }
    }

    /// The body field naming what the command acts on, and the field of the
    /// result naming what it creates (for references by command id).
    fn target_field(&self) -> Option<&'static str> {
        match self {
            Self::CheckIn | Self::CheckOut | Self::ConfirmVisit | Self::CancelVisit | Self::RecordVitals => {
                Some("appointment_id")
            }
            Self::RequestOrder => Some("health_record_id"),
            Self::MarkRead => Some("notification_id"),
            Self::ScheduleVisit => None,
        }
    }

    fn creates(&self) -> Option<&'static str> {
        match self {
            Self::ScheduleVisit => Some("appointment_id"),
            Self::RecordVitals => Some("health_record_id"),
            Self::RequestOrder => Some("order_request_id"),
            _ => None,
        }
    }
}

/// One command as the phone sends it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ClientCommand {
    /// The client's id of the command (a UUID): the same id is applied once.
    #[schema(required = true, value_type = String, format = Uuid)]
    pub command_id: Option<String>,
    /// schedule_visit | check_in | check_out | record_vitals | confirm_visit | cancel_visit |
    /// request_order | mark_read
    #[serde(rename = "type")]
    #[schema(required = true, value_type = String)]
    pub kind: Option<String>,
    /// When the device captured it (RFC 3339): at most 7 days ago and 5 minutes ahead.
    #[schema(required = true, value_type = String, format = DateTime)]
    pub captured_at: Option<String>,
    /// The command's fields: those of its HTTP request (schedule_visit: `POST /appointments`;
    /// record_vitals: the JSON form of `POST /health-records`; request_order: `health_record_id`
    /// and those of `POST /health-records/{id}/order-requests`; confirm_visit, cancel_visit
    /// (`reason`), check_in, check_out (`lat`, `lng`): `appointment_id`; mark_read:
    /// `notification_id`), and `expected_version` for If-Match. `appointment_id` and
    /// `health_record_id` may name the `command_id` of the schedule_visit or record_vitals
    /// that created them.
    #[schema(value_type = Object)]
    pub body: Option<Value>,
}

/// applied | duplicate | rejected
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    Applied,
    Duplicate,
    Rejected,
}

/// What became of one command.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandResult {
    pub command_id: String,
    pub status: CommandStatus,
    /// `ok` when applied (a duplicate repeats its first code); when rejected a stable reason:
    /// `validation_failed`, `not_found`, `forbidden`, `patient_not_assigned`, `visit_cancelled`,
    /// `version_conflict`, `conflict`, `dependency_rejected`, `unsupported_type`, `internal`.
    pub code: String,
    /// Why it was rejected, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `validation_failed`: field → why.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    /// What an applied command created or acted on (`appointment_id`, `health_record_id`,
    /// `order_request_id`, `notification_id`); a duplicate gives its first result's.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

impl CommandResult {
    fn rejected(command_id: &str, code: &str, error: impl Into<String>, details: Option<Value>) -> Self {
        CommandResult {
            command_id: command_id.to_string(),
            status: CommandStatus::Rejected,
            code: code.to_string(),
            error: Some(error.into()),
            details,
            data: None,
        }
    }

    /// From a stored first result (`{code, data}`).
    fn stored(command_id: &str, status: CommandStatus, result: &str) -> Self {
        let v: Value = serde_json::from_str(result).unwrap_or(Value::Null);
        CommandResult {
            command_id: command_id.to_string(),
            status,
            code: v["code"].as_str().unwrap_or("ok").to_string(),
            error: None,
            details: None,
            data: Some(v["data"].clone()),
        }
    }
}

/// A command ready to run: checked, its references resolved.
struct Ready {
    id: String,
    kind: CommandType,
    captured_at: DateTime<Utc>,
    body: Value,
}

/// What the commands of this batch created, by command id (`None`: rejected).
type Created = HashMap<String, Option<String>>;

/// Applies `commands` of the calling recorder's device `device_id` in order.
pub async fn push(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    device_id: &str,
    commands: Vec<ClientCommand>,
) -> Result<Vec<CommandResult>, AppError> {
    p.require(&[Role::Recorder])?;
    let mut created = Created::new();
    let mut results = Vec::with_capacity(commands.len());
    for command in commands {
        let result = apply(state, p, meta, device_id, command, &mut created).await?;
        results.push(result);
    }
    Ok(results)
}

async fn apply(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    device_id: &str,
    command: ClientCommand,
    created: &mut Created,
) -> Result<CommandResult, AppError> {
    let raw_id = command.command_id.clone().unwrap_or_default();
    let recorder = p.user_id.to_string();
    let Ok(id) = raw_id.trim().parse::<uuid::Uuid>() else {
        return Ok(CommandResult::rejected(
            &raw_id,
            "validation_failed",
            "参数校验失败：command_id",
            Some(json!({"command_id": "应为UUID"})),
        ));
    };
    let id = id.to_string();
    let kind = command.kind.as_deref().and_then(CommandType::parse);
    // Applied before: its first answer, whatever the resend looks like now.
    if let Some((_, first)) = state.store.applied_command(&recorder, &id).await? {
        if let Some(field) = kind.and_then(|k| k.creates()) {
            let v: Value = serde_json::from_str(&first).unwrap_or(Value::Null);
            created.insert(id.clone(), v["data"][field].as_str().map(str::to_string));
        }
        return Ok(CommandResult::stored(&raw_id, CommandStatus::Duplicate, &first));
    }
    let ready = match check(state, p, id.clone(), command, created).await? {
        Ok(ready) => ready,
        Err(rejected) => {
            if kind.is_some_and(|k| k.creates().is_some()) {
                created.insert(id, None);
            }
            return Ok(rejected);
        }
    };
    let meta = RequestMeta {
        idempotency_key: Some(format!("sync:{}", ready.id)),
        if_match: ready.body.get("expected_version").and_then(Value::as_i64),
        ..meta.clone()
    };
    let data = predicted(&ready, &meta, p);
    let result = json!({"code": "ok", "data": data}).to_string();
    let mark = CommandMark {
        recorder_id: recorder.clone(),
        command_id: ready.id.clone(),
        device_id: device_id.to_string(),
        command_type: ready.kind.as_str().to_string(),
        result: result.clone(),
        captured_at: ready.captured_at.to_rfc3339(),
    };
    let (outcome, mark) = with_mark(mark, run(state, p, &meta, &ready)).await;
    let answer = match (outcome, mark) {
        (Ok(()), MarkOutcome::Written) => CommandResult::stored(&raw_id, CommandStatus::Applied, &result),
        // A command that changed nothing (a visit confirmed already) is applied too.
        (Ok(()), MarkOutcome::NotWritten(mark)) => match state.store.record_command(mark).await {
            Ok(()) => CommandResult::stored(&raw_id, CommandStatus::Applied, &result),
            Err(AppendError::Duplicate) => duplicate(state, &recorder, &raw_id, &ready.id).await?,
            Err(e) => return Err(AppError::internal(e)),
        },
        (Err(e), MarkOutcome::Written) => {
            // What the command stands for is committed; a follow-up step failed.
            tracing::warn!(error = %e, command = %ready.id, "synced command applied, a follow-up failed");
            CommandResult::stored(&raw_id, CommandStatus::Applied, &result)
        }
        (_, MarkOutcome::Duplicate) => duplicate(state, &recorder, &raw_id, &ready.id).await?,
        (Err(e), MarkOutcome::NotWritten(_)) => {
            // A twin of this command may have been applied meanwhile (and made it fail).
            if state.store.applied_command(&recorder, &ready.id).await?.is_some() {
                duplicate(state, &recorder, &raw_id, &ready.id).await?
            } else {
                rejection(state, p, &raw_id, &ready, e).await?
            }
        }
    };
    if let Some(field) = ready.kind.creates() {
        let made = answer.data.as_ref().and_then(|d| d[field].as_str()).map(str::to_string);
        created.insert(ready.id.clone(), made);
    }
    Ok(answer)
}

async fn duplicate(state: &AppState, recorder: &str, raw_id: &str, id: &str) -> Result<CommandResult, AppError> {
    let (_, first) = state
        .store
        .applied_command(recorder, id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("command {id} reported applied but not recorded")))?;
    Ok(CommandResult::stored(raw_id, CommandStatus::Duplicate, &first))
}

/// The command's shape, time and references; `Err` is its rejection.
async fn check(
    state: &AppState,
    p: &Principal,
    id: String,
    command: ClientCommand,
    created: &Created,
) -> Result<Result<Ready, CommandResult>, AppError> {
    let raw_id = command.command_id.clone().unwrap_or_default();
    let invalid = |field: &str, why: &str| {
        CommandResult::rejected(
            &raw_id,
            "validation_failed",
            format!("参数校验失败：{field}"),
            Some(json!({ field: why })),
        )
    };
    let Some(raw_kind) = command.kind.as_deref() else {
        return Ok(Err(invalid("type", "必填")));
    };
    let Some(kind) = CommandType::parse(raw_kind) else {
        return Ok(Err(CommandResult::rejected(
            &raw_id,
            "unsupported_type",
            format!("不支持的离线命令类型：{raw_kind}"),
            None,
        )));
    };
    let Some(captured_at) = command
        .captured_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
        .map(|t| t.with_timezone(&Utc))
    else {
        return Ok(Err(invalid("captured_at", "应为RFC 3339时间")));
    };
    let now = Utc::now();
    if captured_at < now - MAX_AGE {
        return Ok(Err(invalid("captured_at", "不能早于7天前")));
    }
    if captured_at > now + MAX_SKEW {
        return Ok(Err(invalid("captured_at", "不能晚于服务器时间5分钟以上")));
    }
    let mut body = command.body.unwrap_or_else(|| json!({}));
    if !body.is_object() {
        return Ok(Err(invalid("body", "应为JSON对象")));
    }
    // A reference by command id: to what that command created.
    for field in [kind.target_field(), Some("appointment_id"), Some("health_record_id")]
        .into_iter()
        .flatten()
    {
        let Some(named) = body.get(field).and_then(Value::as_str).map(str::to_string) else {
            continue;
        };
        match created.get(&named) {
            Some(Some(target)) => body[field] = json!(target),
            Some(None) => {
                return Ok(Err(CommandResult::rejected(
                    &raw_id,
                    "dependency_rejected",
                    format!("所依赖的离线命令{named}被拒绝"),
                    Some(json!({ field: named })),
                )))
            }
            None => {
                if let Some((_, first)) = state.store.applied_command(&p.user_id.to_string(), &named).await? {
                    let v: Value = serde_json::from_str(&first).unwrap_or(Value::Null);
                    if let Some(target) = v["data"][field].as_str() {
                        body[field] = json!(target);
                    }
                }
            }
        }
    }
    Ok(Ok(Ready {
        id,
        kind,
        captured_at,
        body,
    }))
}

/// The result data of `ready` before it runs: the ids it creates derive from
/// its command id, those it acts on are in its body.
fn predicted(ready: &Ready, meta: &RequestMeta, p: &Principal) -> Value {
    let mut data = serde_json::Map::new();
    if let Some(field) = ready.kind.target_field() {
        if let Some(target) = ready.body.get(field) {
            data.insert(field.into(), target.clone());
        }
    }
    if let Some(field) = ready.kind.creates() {
        data.insert(field.into(), json!(crate::idempotency::new_id(meta, p).to_string()));
    }
    Value::Object(data)
}

fn field<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(body.clone()).map_err(|e| {
        let path = e.path().to_string();
        AppError::field(if path == "." { "body" } else { &path }, "类型错误")
    })
}

fn target<'a>(body: &'a Value, name: &str) -> Result<&'a str, AppError> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| AppError::field(name, "必填"))
}

/// Runs the use case of `ready`, the same as its HTTP request's.
async fn run(state: &AppState, p: &Principal, meta: &RequestMeta, ready: &Ready) -> Result<(), AppError> {
    let local: NaiveDateTime = ready
        .captured_at
        .with_timezone(&state.settings.field_work.timezone)
        .naive_local();
    let body = &ready.body;
    match ready.kind {
        CommandType::ScheduleVisit => {
            let visit = field::<ScheduleInput>(body)?.parse()?;
            schedule::schedule(state, p, meta, visit, local).await?;
        }
        CommandType::RecordVitals => {
            let mut input: RecordInput = field(body)?;
            input.visit_date.get_or_insert_with(|| local.date().to_string());
            input
                .visit_time
                .get_or_insert_with(|| local.format("%H:%M").to_string());
            record_vitals(state, p, meta, &input, Vec::new(), ready.captured_at).await?;
        }
        CommandType::ConfirmVisit => {
            schedule::confirm(state, p, meta, target(body, "appointment_id")?).await?;
        }
        CommandType::CancelVisit => {
            let input: CancelInput = field(body)?;
            let reason = domain::values::optional_text(input.reason.as_deref(), 500)
                .map_err(|e| AppError::field("reason", e))?;
            schedule::cancel(state, p, meta, target(body, "appointment_id")?, reason).await?;
        }
        CommandType::RequestOrder => {
            let input: OrderRequestInput = field(body)?;
            open_order_request(state, p, meta, target(body, "health_record_id")?, &input).await?;
        }
        CommandType::MarkRead => {
            crate::app::notifications::read(state, p, meta, target(body, "notification_id")?).await?;
        }
        CommandType::CheckIn | CommandType::CheckOut => {
            let end = if ready.kind == CommandType::CheckIn {
                VisitEnd::CheckIn
            } else {
                VisitEnd::CheckOut
            };
            let position = field::<PositionInput>(body)?.parse()?;
            let visit = target(body, "appointment_id")?;
            visits::mark(state, p, meta, visit, end, position, ready.captured_at).await?;
        }
    }
    Ok(())
}

/// The stable code of a refusal, more precise than its HTTP error where the
/// client can act on it.
async fn rejection(
    state: &AppState,
    p: &Principal,
    raw_id: &str,
    ready: &Ready,
    e: AppError,
) -> Result<CommandResult, AppError> {
    let details = match &e {
        AppError::Validation(fields) => Some(json!(fields)),
        AppError::VersionConflict { actual, .. } => Some(json!({ "current_version": actual })),
        _ => None,
    };
    let code = match &e {
        AppError::Internal(cause) => {
            tracing::error!(error = ?cause, command = %ready.id, "synced command failed");
            return Ok(CommandResult::rejected(raw_id, "internal", "服务器内部错误", None));
        }
        AppError::NotFound(_) if !assigned(state, p, ready).await? => "patient_not_assigned",
        _ if e.is_refusal() && visit_status(state, ready).await? == Some(VisitStatus::Cancelled) => "visit_cancelled",
        other => other.code(),
    };
    let message = match code {
        "patient_not_assigned" => "该患者已不再分配给您".to_string(),
        "visit_cancelled" => "该上门预约已取消".to_string(),
        _ => e.message(),
    };
    Ok(CommandResult::rejected(raw_id, code, message, details))
}

/// Whether the patient the command is about (named, or the visit's) is still
/// assigned to the recorder; `true` when the command names no known patient of theirs.
async fn assigned(state: &AppState, p: &Principal, ready: &Ready) -> Result<bool, AppError> {
    let patient = match body_id::<VisitId>(ready, "appointment_id") {
        Some(visit) => match state.read().await.visits().get(visit).await? {
            Some(v) if v.recorder_id == p.user_id => Some(v.patient.id),
            _ => None,
        },
        None => body_id::<PatientId>(ready, "patient_id"),
    };
    let Some(patient) = patient else {
        return Ok(true);
    };
    if state
        .read()
        .await
        .patients()
        .get(patient, state.today())
        .await?
        .is_none()
    {
        return Ok(true);
    }
    Ok(state
        .read()
        .await
        .subscriptions()
        .assigned(p.user_id, patient, state.today())
        .await?)
}

/// The status of the visit the command acts on, if any.
async fn visit_status(state: &AppState, ready: &Ready) -> Result<Option<VisitStatus>, AppError> {
    match body_id(ready, "appointment_id") {
        Some(visit) => Ok(state.read().await.visits().get(visit).await?.map(|v| v.status)),
        None => Ok(None),
    }
}

/// The id the command's body names in `field`, if it is one.
fn body_id<T: std::str::FromStr>(ready: &Ready, field: &str) -> Option<T> {
    ready.body.get(field).and_then(Value::as_str)?.parse().ok()
}

/// What changed for the recorder after a cursor (`GET /sync/pull`).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Changes {
    /// Households with a patient assigned to the recorder, each with those patients.
    #[schema(value_type = Vec<Object>)]
    pub families: Vec<projections::families::FamilyDetail>,
    #[schema(value_type = Vec<Object>)]
    pub patients: Vec<projections::families::PatientView>,
    #[schema(value_type = Vec<Object>)]
    pub appointments: Vec<projections::visits::VisitView>,
    #[schema(value_type = Vec<Object>)]
    pub medical_orders: Vec<projections::orders::MedicalOrderView>,
    #[schema(value_type = Vec<Object>)]
    pub notifications: Vec<projections::orders::NotificationView>,
    /// Ids of what the phone holds but may no longer see (a patient assigned to another
    /// recorder, their household and visits): delete them.
    pub removed: Removed,
}

/// Ids to delete on the phone.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Removed {
    #[schema(value_type = Vec<String>)]
    pub families: Vec<FamilyId>,
    #[schema(value_type = Vec<String>)]
    pub patients: Vec<PatientId>,
    #[schema(value_type = Vec<String>)]
    pub appointments: Vec<VisitId>,
}

/// A pull's answer: the changes, and the cursor to pull from next time.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pulled {
    /// The store position these changes reach (opaque to clients: send it back as `cursor`).
    pub cursor: String,
    pub changes: Changes,
}

impl Pulled {
    /// The patients whose data the answer carries (for the access log).
    pub fn patients(&self) -> Vec<PatientId> {
        let c = &self.changes;
        let mut ids: Vec<PatientId> = c
            .patients
            .iter()
            .map(|p| p.id)
            .chain(c.families.iter().flat_map(|f| f.patients.iter().map(|p| p.id)))
            .chain(c.appointments.iter().map(|v| v.patient.id))
            .chain(c.medical_orders.iter().map(|o| o.patient_id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Events read per round trip while collecting what changed.
const PULL_PAGE: i64 = 1000;
/// Rows per page while taking a snapshot.
const SNAPSHOT_PAGE: u32 = 100;

/// What the events after a cursor touched.
#[derive(Default)]
struct Touched {
    families: BTreeSet<FamilyId>,
    patients: BTreeSet<PatientId>,
    appointments: BTreeSet<VisitId>,
    medical_orders: BTreeSet<MedicalOrderId>,
    notifications: BTreeSet<String>,
    /// Order requests and medical orders whose notifications may have changed.
    notification_refs: BTreeSet<String>,
    /// Patients (and so their households) the recorder was or is assigned to by a
    /// subscription that changed: reported as removed if no longer visible.
    assignments: BTreeSet<PatientId>,
}

/// The recorder's data changed after `cursor` (a store position), or all of it
/// without one.
///
/// The cursor is a position of the event store: the events after it, up to
/// the head, say which entities changed (positions follow commit order, see
/// `docs/architecture.md`, so an event committed later never has a smaller
/// position: the projectors rely on the same). The answer waits until the read
/// models reached that head, then reads the current rows of those entities with
/// the access rules of the single-resource reads. Entities the recorder can no
/// longer see are listed in `removed` when the recorder's own assignment or
/// visit changed; others' changes are left out. The new cursor is that head.
pub async fn pull(state: &AppState, p: &Principal, cursor: Option<i64>) -> Result<Pulled, AppError> {
    p.require(&[Role::Recorder])?;
    let head = state.store.head().await?;
    let from = cursor.unwrap_or(0).min(head);
    // Wait for the read models, so the rows below show every event up to `head`.
    state.waiter.wait_for(head).await;
    let changes = match cursor {
        None => snapshot(state, p.user_id).await?,
        Some(_) => {
            let touched = touched(state, p.user_id, from, head).await?;
            changed(state, p, touched).await?
        }
    };
    Ok(Pulled {
        cursor: head.to_string(),
        changes,
    })
}

async fn touched(state: &AppState, me: UserId, mut from: i64, head: i64) -> Result<Touched, AppError> {
    let me_key = me.to_string();
    let mut t = Touched::default();
    while from < head {
        let events = state
            .store
            .read_after(from, PULL_PAGE)
            .await
            .map_err(AppError::internal)?;
        let Some(last) = events.last() else { break };
        from = last.position;
        for e in events.iter().filter(|e| e.position <= head) {
            let id = e.aggregate_id.clone();
            // Every aggregate of these types has a UUID id.
            let uuid = id.parse::<uuid::Uuid>().ok();
            match (e.aggregate_type.as_str(), uuid) {
                ("family", Some(u)) => {
                    t.families.insert(u.into());
                }
                ("patient", Some(u)) => {
                    t.patients.insert(u.into());
                }
                ("appointment", Some(u)) => {
                    t.appointments.insert(u.into());
                }
                ("medical_order", Some(u)) => {
                    t.medical_orders.insert(u.into());
                    t.notification_refs.insert(id);
                }
                ("order_request", _) => {
                    t.notification_refs.insert(id);
                }
                ("inbox", _) if id == me_key => {
                    if let Some(n) = e
                        .payload
                        .pointer("/NotificationRead/notification_id")
                        .and_then(Value::as_str)
                    {
                        t.notifications.insert(n.to_string());
                    }
                }
                ("subscription", Some(u)) => {
                    if let Some(s) = state.read().await.subscriptions().get(u.into(), state.today()).await? {
                        if s.recorder_id == me {
                            t.assignments.insert(s.patient_id);
                        }
                    }
                }
                // A new record shows as its household's patient's last record.
                ("health_record", Some(u)) => {
                    if let Some(r) = state.read().await.records().get(u.into()).await? {
                        t.patients.insert(r.patient_id);
                    }
                }
                _ => {}
            }
        }
        if events.len() < PULL_PAGE as usize {
            break;
        }
    }
    Ok(t)
}

async fn changed(state: &AppState, p: &Principal, t: Touched) -> Result<Changes, AppError> {
    let me = p.user_id;
    let today = state.today();
    let mut c = Changes::default();
    let mut families = t.families;
    for &patient in t.patients.iter().chain(&t.assignments) {
        let visible = can_see_patient(state, p, patient).await?;
        if let Some(view) = state.read().await.patients().get(patient, today).await? {
            // A household shows its patients: it changed with them.
            families.insert(view.family_id);
            if visible {
                c.patients.push(view);
            } else if t.assignments.contains(&patient) {
                c.removed.patients.push(patient);
            }
        }
    }
    let unassigned: BTreeSet<FamilyId> = households_of(state, &t.assignments).await?;
    for &family in &families {
        if state.read().await.families().sees(me, family, today).await? {
            if let Some(detail) = state.read().await.families().get(family, today, Some(me)).await? {
                c.families.push(detail);
            }
        } else if unassigned.contains(&family) {
            c.removed.families.push(family);
        }
    }
    for &visit in &t.appointments {
        let Some(view) = state.read().await.visits().get(visit).await? else {
            continue;
        };
        if view.recorder_id != me {
            continue;
        }
        if can_see_patient(state, p, view.patient.id).await? {
            c.appointments.push(view);
        } else {
            c.removed.appointments.push(visit);
        }
    }
    // A patient given to another recorder takes their visits along.
    for &patient in &c.removed.patients {
        let filter = VisitFilter {
            patient: Some(patient),
            ..VisitFilter::new(today)
        };
        let read = state.read().await;
        for v in all_pages(|page| read.visits().list(&filter, page)).await? {
            if v.recorder_id == me && !c.removed.appointments.contains(&v.id) {
                c.removed.appointments.push(v.id);
            }
        }
    }
    for &order in &t.medical_orders {
        if let Some(view) = state.read().await.orders().get(order).await? {
            if can_see_patient(state, p, view.patient_id).await? {
                c.medical_orders.push(view);
            }
        }
    }
    let ids: Vec<String> = t.notifications.into_iter().collect();
    let refs: Vec<String> = t.notification_refs.into_iter().collect();
    c.notifications = state
        .read()
        .await
        .notifications()
        .among(p.user_id, &ids, &refs, Some(today))
        .await?;
    Ok(c)
}

/// The households of `patients`.
async fn households_of(state: &AppState, patients: &BTreeSet<PatientId>) -> Result<BTreeSet<FamilyId>, AppError> {
    let mut out = BTreeSet::new();
    for &patient in patients {
        if let Some(family) = state.read().await.patients().family_of(patient).await? {
            out.insert(family);
        }
    }
    Ok(out)
}

/// Every page of a paged read model query.
async fn all_pages<T, F, Fut>(mut query: F) -> Result<Vec<T>, AppError>
where
    F: FnMut(projections::PageParams) -> Fut,
    Fut: std::future::Future<Output = Result<projections::Page<T>, sqlx::Error>>,
{
    let mut out = Vec::new();
    for page in 1.. {
        let got = query(projections::PageParams {
            page,
            limit: SNAPSHOT_PAGE,
        })
        .await?;
        let n = got.items.len();
        out.extend(got.items);
        if n < SNAPSHOT_PAGE as usize || out.len() as i64 >= got.total {
            break;
        }
    }
    Ok(out)
}

/// Everything of the recorder's: their households, patients, visits, the
/// medical orders of their patients, their notifications.
async fn snapshot(state: &AppState, user: UserId) -> Result<Changes, AppError> {
    let today = state.today();
    let mut c = Changes::default();
    let read = state.read().await;
    for item in all_pages(|page| read.families().list(Some(user), None, today, page)).await? {
        if let Some(detail) = read.families().get(item.id, today, Some(user)).await? {
            for patient in &detail.patients {
                if let Some(view) = read.patients().get(patient.id, today).await? {
                    c.patients.push(view);
                }
            }
            c.families.push(detail);
        }
    }
    let filter = VisitFilter {
        recorder: Some(user),
        ..VisitFilter::new(today)
    };
    c.appointments = all_pages(|page| read.visits().list(&filter, page)).await?;
    for patient in &c.patients {
        let patient = patient.id;
        let orders = all_pages(|page| read.orders().of_patient(patient, page)).await?;
        c.medical_orders.extend(orders);
    }
    c.notifications = all_pages(|page| read.notifications().list(user, false, Some(today), page)).await?;
    Ok(c)
}
