//! Health records ("record vitals"): a recorder records a patient's vitals,
//! symptoms, notes, position and files (uploaded before or with the record);
//! the record completes its visit; vitals that cross the alert thresholds
//! raise an alert and an order request (`app::alerts`). Corrections
//! (amendments) and an admin's unlock; a recorder's own order request.

use chrono::{DateTime, Utc};
use domain::health_record::{
    reason_code, HealthRecord, HealthRecordCommand, Location, NewRecord, RecordChanges, RecordFacts, RecordFiles,
    VitalSignsChanges,
};
use domain::ids::{FileId, HealthRecordId, OrderRequestId, PatientId, UserId, VisitId};
use domain::order::{OrderRequest, OrderRequestCommand, RequestDetails};
use domain::user::Role;
use domain::values::{date, optional_text, time};
use domain::visit::{Visit, VisitCommand, VisitStatus};
use domain::vitals::{RawVitals, VitalSigns};
use domain::{Invalid, Validator};
use projections::records::{AlertView, HealthRecordView};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::files::{blob_keys, discard, prepare, register, store, IncomingFile, PreparedFile};
use crate::app::input::{parse_required, path_id};
use crate::app::refusal::Refusal;
use crate::app::saga::Saga;
use crate::auth::Principal;
use crate::files::FileKind;
use crate::policy::{can_see_patient, ensure_not_erased, ensure_sees_patient};
use crate::state::{AppState, RequestMeta};

/// The JSON form of `POST /health-records`. Multipart sends the same fields as
/// text (with `vital_signs` a JSON string) and the files as parts.
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct RecordInput {
    #[schema(required = true, value_type = String, format = Uuid)]
    pub patient_id: Option<String>,
    /// The visit this record is for (it completes it): the patient's, scheduled or confirmed.
    pub appointment_id: Option<String>,
    /// `YYYY-MM-DD`, not after today.
    #[schema(required = true, value_type = String, format = Date)]
    pub visit_date: Option<String>,
    /// `HH:MM`.
    #[schema(required = true, value_type = String, pattern = "^[0-9]{2}:[0-9]{2}$")]
    pub visit_time: Option<String>,
    /// With `location_lng`.
    #[schema(minimum = -90, maximum = 90)]
    pub location_lat: Option<f64>,
    /// With `location_lat`.
    #[schema(minimum = -180, maximum = 180)]
    pub location_lng: Option<f64>,
    pub location_address: Option<String>,
    #[schema(value_type = Option<VitalSignsInput>)]
    pub vital_signs: Option<Value>,
    /// Up to 2000 characters.
    #[schema(max_length = 2000)]
    pub symptoms: Option<String>,
    /// Up to 5000 characters.
    #[schema(max_length = 5000)]
    pub notes: Option<String>,
    /// File ids from `/files/upload` (of type `audio`; also `audio_file_id`).
    #[serde(alias = "audio_file_id")]
    pub audio_file: Option<String>,
    /// File ids from `/files/upload` (of type `image`; also `photo_ids`), at most 9.
    #[serde(default, alias = "photo_ids")]
    #[schema(max_items = 9)]
    pub photos: Vec<String>,
    /// A file id from `/files/upload` (of type `image`; also `signature_file_id`).
    #[serde(alias = "signature_file_id")]
    pub patient_signature: Option<String>,
}

/// Vital signs as the client sends them; every one optional, each checked
/// against its range (the schema only; the handler validates a JSON object).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VitalSignsInput {
    /// `systolic/diastolic` in mmHg, e.g. `120/80`.
    blood_pressure: Option<String>,
    /// Beats per minute, a whole number from 20 to 250.
    #[schema(minimum = 20, maximum = 250)]
    heart_rate: Option<i64>,
    /// °C, 34 to 43.
    #[schema(minimum = 34, maximum = 43)]
    temperature: Option<f64>,
    /// SpO2 in %, 50 to 100.
    #[schema(minimum = 50, maximum = 100)]
    blood_oxygen: Option<f64>,
    /// mmol/L, 1 to 35.
    #[schema(minimum = 1, maximum = 35)]
    blood_glucose: Option<f64>,
    /// kg, 2 to 300.
    #[schema(minimum = 2, maximum = 300)]
    weight: Option<f64>,
}

/// What recording vitals answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordCreated {
    pub record_id: String,
    /// Same as `record_id`.
    pub id: String,
    pub version: i64,
    /// Whether any vital sign crossed an alert threshold.
    pub abnormal: bool,
    #[schema(value_type = Vec<AlertView>)]
    pub alerts: Vec<domain::vitals::AlertReason>,
    /// Metres from the family's home, when both are known.
    pub distance_from_home_m: Option<f64>,
    pub away_from_home: bool,
    /// The order request the alerts raised, if any.
    pub order_request_id: Option<String>,
    /// The alert the abnormal vitals triggered, if any (`GET /alerts/{id}`).
    pub alert_id: Option<String>,
}

/// A record's content checked field by field, before any lookup.
struct Checked {
    patient: PatientId,
    appointment: Option<VisitId>,
    content: NewRecord,
    existing_files: Vec<(FileId, &'static str)>,
}

fn uuid_of<T: std::str::FromStr>(v: &mut Validator, field: &str, raw: &str) -> Option<T> {
    v.check(field, raw.trim().parse::<T>().map_err(|_| "应为UUID".to_string()))
}

/// Vital signs as the client sends them (a JSON object), validated: the one
/// path that records and their amendments share. Errors are keyed
/// `vital_signs.<field>`.
fn parse_vitals(value: Option<&Value>, v: &mut Validator) -> VitalSigns {
    let raw_vitals: RawVitals = match value {
        None | Some(Value::Null) => RawVitals::default(),
        Some(value) => {
            let de = serde_path_to_error::deserialize::<_, RawVitals>(value.clone());
            match de {
                Ok(raw) => raw,
                Err(e) => {
                    let path = e.path().to_string();
                    v.add(
                        &format!(
                            "vital_signs{}",
                            if path == "." { String::new() } else { format!(".{path}") }
                        ),
                        "类型错误",
                    );
                    RawVitals::default()
                }
            }
        }
    };
    raw_vitals.parse(v)
}

fn check(r: &RecordInput, recorder: UserId, today: chrono::NaiveDate) -> Result<Checked, AppError> {
    let mut v = Validator::new();
    let patient: Option<PatientId> = match &r.patient_id {
        None => {
            v.add("patient_id", "必填");
            None
        }
        Some(p) => uuid_of(&mut v, "patient_id", p),
    };
    let appointment: Option<VisitId> = r
        .appointment_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|a| uuid_of(&mut v, "appointment_id", a));
    let visit_date = match &r.visit_date {
        None => {
            v.add("visit_date", "必填");
            None
        }
        Some(d) => v.check("visit_date", date(d)),
    };
    if visit_date.is_some_and(|d| d > today) {
        v.add("visit_date", "不能晚于今天");
    }
    let visit_time = match &r.visit_time {
        None => {
            v.add("visit_time", "必填");
            None
        }
        Some(t) => v.check("visit_time", time(t)),
    };
    let location = match (r.location_lat, r.location_lng) {
        (None, None) => None,
        (Some(lat), Some(lng)) => {
            match Location::parse(lat, lng, r.location_address.clone().filter(|a| !a.trim().is_empty())) {
                Ok(l) => Some(l),
                Err((field, why)) => {
                    v.add(field, why);
                    None
                }
            }
        }
        (Some(_), None) => {
            v.add("location_lng", "location_lat与location_lng须同时提供");
            None
        }
        (None, Some(_)) => {
            v.add("location_lat", "location_lat与location_lng须同时提供");
            None
        }
    };
    let vital_signs = parse_vitals(r.vital_signs.as_ref(), &mut v);
    let symptoms = v
        .check("symptoms", optional_text(r.symptoms.as_deref(), 2000))
        .flatten();
    let notes = v.check("notes", optional_text(r.notes.as_deref(), 5000)).flatten();
    let mut existing_files = Vec::new();
    if let Some(a) = r.audio_file.as_deref().filter(|s| !s.is_empty()) {
        existing_files.extend(uuid_of::<FileId>(&mut v, "audio_file", a).map(|f| (f, "audio")));
    }
    for (i, ph) in r.photos.iter().enumerate() {
        existing_files.extend(uuid_of::<FileId>(&mut v, &format!("photos[{i}]"), ph).map(|f| (f, "photo")));
    }
    if let Some(s) = r.patient_signature.as_deref().filter(|s| !s.is_empty()) {
        existing_files.extend(uuid_of::<FileId>(&mut v, "patient_signature", s).map(|f| (f, "signature")));
    }
    if r.photos.len() > 9 {
        v.add("photos", "最多9张照片");
    }
    v.finish()?;
    let (Some(patient), Some(visit_date), Some(visit_time)) = (patient, visit_date, visit_time) else {
        return Err(AppError::field("body", "缺少必填字段"));
    };
    Ok(Checked {
        patient,
        appointment,
        existing_files,
        content: NewRecord {
            patient_id: patient,
            recorder_id: recorder,
            appointment_id: appointment,
            visit_date,
            visit_time,
            location,
            vital_signs,
            symptoms,
            notes,
            files: RecordFiles::default(),
        },
    })
}

fn kind_for(role: &str) -> FileKind {
    match role {
        "audio" => FileKind::Audio,
        _ => FileKind::Image,
    }
}

/// Records vitals for the calling recorder: `input` with the files uploaded in
/// the same request (`uploads`) or before (by id). `recorded_at` is when the
/// record was taken: now, or when a device captured it offline (offline sync).
pub async fn record_vitals(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    input: &RecordInput,
    mut uploads: Vec<IncomingFile>,
    recorded_at: DateTime<Utc>,
) -> Result<RecordCreated, AppError> {
    p.require(&[Role::Recorder])?;
    let mut checked = check(input, p.user_id, state.today())?;

    // Files in the request: counted, then every one checked before anything
    // is stored. The limits are those of the JSON form, whichever way the
    // files come (9 photos, one audio note, one signature).
    let mut roles = Vec::with_capacity(uploads.len());
    for f in &uploads {
        roles.push(match f.field.as_str() {
            "audio_file" => "audio",
            "photos" | "photos[]" => "photo",
            "patient_signature" => "signature",
            other => return Err(AppError::field(other, "未知的文件字段")),
        });
    }
    let count = |role: &str| {
        roles
            .iter()
            .chain(checked.existing_files.iter().map(|(_, r)| r))
            .filter(|r| **r == role)
            .count()
    };
    if count("photo") > 9 {
        return Err(AppError::field("photos", "最多9张照片"));
    }
    if count("audio") > 1 {
        return Err(AppError::field("audio_file", "只能有一个录音"));
    }
    if count("signature") > 1 {
        return Err(AppError::field("patient_signature", "只能有一个签名"));
    }
    let mut prepared: Vec<(PreparedFile, &'static str)> = Vec::new();
    for (f, role) in uploads.drain(..).zip(roles) {
        prepared.push((prepare(kind_for(role), f, p).await?, role));
    }

    let patient = checked.patient;
    ensure_sees_patient(state, p, patient).await?;
    ensure_not_erased(state, patient).await?;
    if let Some(visit_id) = checked.appointment {
        let visit = state
            .read()
            .await
            .visits()
            .get(visit_id)
            .await?
            .ok_or_else(|| AppError::field("appointment_id", "预约不存在"))?;
        if visit.patient.id != patient || visit.recorder_id != p.user_id {
            return Err(AppError::field("appointment_id", "预约不属于该患者或记录员"));
        }
        // Before, during or after its check-in/check-out, while it has no record yet.
        let open = matches!(
            visit.status,
            VisitStatus::Scheduled | VisitStatus::Confirmed | VisitStatus::InProgress | VisitStatus::CheckedOut
        );
        if !open || visit.health_record_id.is_some() {
            let status = visit.status.as_str().to_string();
            return Err(Refusal::VisitTakesNoRecord { status }.into());
        }
    }
    for (file, role) in &checked.existing_files {
        let row = state
            .read()
            .await
            .files()
            .get(*file)
            .await?
            .ok_or_else(|| AppError::field(role, "文件不存在"))?;
        if row.uploaded_by != p.user_id || state.read().await.files().attached(row.id).await? {
            return Err(AppError::field(role, "文件不可用"));
        }
        if row.kind != kind_for(role).as_str() {
            return Err(AppError::field(role, "文件类型不符"));
        }
    }

    // The facts the record is judged against (the aggregate decides its
    // alerts and distance). The home is only needed for a located record.
    let mut home = None;
    if let (Some(_), Some(family)) = (
        &checked.content.location,
        state.read().await.patients().family_of(patient).await?,
    ) {
        if let Some(family) = state.read().await.families().get(family, state.today(), None).await? {
            home = family.home_lat.zip(family.home_lng);
        }
    }
    let facts = RecordFacts {
        home,
        thresholds: state.settings.alerts.thresholds.clone(),
        recorded_at,
        away_radius_m: state.settings.evv.radius_m,
    };
    let mut files = RecordFiles::default();
    for (f, role) in checked
        .existing_files
        .iter()
        .copied()
        .chain(prepared.iter().map(|(pf, r)| (pf.id, *r)))
    {
        match role {
            "audio" => files.audio_file = Some(f),
            "photo" => files.photos.push(f),
            _ => files.patient_signature = Some(f),
        }
    }
    checked.content.files = files;

    let record_id = HealthRecordId(crate::idempotency::new_id(meta, p));
    let mut new_files: Vec<PreparedFile> = prepared.into_iter().map(|(f, _)| f).collect();
    let mut saga = Saga::new();
    store(state, &mut new_files).await?;
    let keys = blob_keys(&new_files);
    saga.done("store the files", async move {
        discard(state, &keys).await;
        Ok(())
    });
    if let Err(e) = register(state, &new_files, p, meta).await {
        return saga.fail(e).await;
    }
    let command = HealthRecordCommand::Create {
        record: checked.content.clone(),
        facts,
    };
    let committed = match state
        .execute::<HealthRecord>(&record_id.to_string(), command, meta.context(Some(p), "RecordVitals"))
        .await
    {
        Ok(c) => c,
        Err(e) => return saga.fail(e).await,
    };
    saga.commit();

    // The record as the aggregate wrote it, with its alerts and distance.
    let content = state
        .store
        .load::<HealthRecord>(&record_id.to_string())
        .await?
        .and_then(|(r, _)| r.content)
        .ok_or(AppError::NotFound("health_record"))?;

    // The visit this record was taken for: completed by it, or (in progress)
    // holding it until its check-out.
    if let Some(visit_id) = checked.appointment {
        let cmd = VisitCommand::RecordTaken { record: record_id };
        if let Err(e) = state
            .execute::<Visit>(&visit_id.to_string(), cmd, meta.context(Some(p), "CompleteVisit"))
            .await
        {
            tracing::warn!(error = %e, "record saved but its visit could not be completed");
        }
    }
    let alerts = content.alerts.clone();
    let mut ctx = meta.context(Some(p), "RaiseAlertRequest");
    ctx.expected_version = None;
    let raised = crate::app::alerts::raise(state, record_id, &content, ctx).await?;
    Ok(RecordCreated {
        record_id: record_id.to_string(),
        id: record_id.to_string(),
        version: committed.version,
        abnormal: !alerts.is_empty(),
        alerts,
        distance_from_home_m: content.distance_from_home_m,
        away_from_home: content.away_from_home,
        order_request_id: raised.map(|r| r.request.to_string()),
        alert_id: raised.map(|r| r.alert.to_string()),
    })
}

/// Opens a recorder's own order request.
async fn open_request(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    record: &projections::records::HealthRecordView,
    doctor: Option<UserId>,
    reason: Option<String>,
) -> Result<OrderRequestId, AppError> {
    let doctor_id = crate::app::doctors::for_patient(state, record.patient_id, doctor)
        .await?
        .ok_or(Refusal::NoDoctorAvailable)?;
    let details = RequestDetails {
        health_record_id: record.id,
        patient_id: record.patient_id,
        doctor_id,
        requested_by: Some(p.user_id),
        recorder_id: p.user_id,
        reason,
        alerts: serde_json::from_value(record.alerts.clone()).unwrap_or_default(),
        alert_id: None,
    };
    let id = OrderRequestId(crate::idempotency::new_id(meta, p));
    let mut ctx = meta.context(Some(p), "RequestOrder").creating();
    ctx.expected_version = None;
    state
        .execute::<OrderRequest>(&id.to_string(), OrderRequestCommand::Open(details), ctx)
        .await?;
    Ok(id)
}

/// The record, if the caller may see its patient.
pub async fn visible_record(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> Result<projections::records::HealthRecordView, AppError> {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let rid: HealthRecordId = path_id(id, "health_record")?;
    let record = state
        .read()
        .await
        .records()
        .get(rid)
        .await?
        .ok_or(AppError::NotFound("health_record"))?;
    if !can_see_patient(state, p, record.patient_id).await? {
        return Err(AppError::NotFound("health_record"));
    }
    Ok(record)
}

#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct OrderRequestInput {
    /// An active doctor (user id); default: the patient's latest doctor, else
    /// the available doctor with the fewest open requests.
    pub doctor_id: Option<String>,
    /// Up to 1000 characters.
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// What opening an order request answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderRequestOpened {
    pub id: String,
    /// The doctor it was sent to.
    pub doctor_id: Option<String>,
    /// Always `open`.
    pub status: String,
}

/// A recorder asks a doctor for an order about record `id`.
pub async fn open_order_request(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    input: &OrderRequestInput,
) -> Result<OrderRequestOpened, AppError> {
    p.require(&[Role::Recorder])?;
    let record = visible_record(state, p, id).await?;
    let mut v = Validator::new();
    let doctor: Option<UserId> = input
        .doctor_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|d| uuid_of(&mut v, "doctor_id", d));
    let reason = v
        .check("reason", optional_text(input.reason.as_deref(), 1000))
        .flatten();
    v.finish()?;
    let request = open_request(state, p, meta, &record, doctor, reason).await?;
    let view = state.read().await.orders().request(request).await?;
    Ok(OrderRequestOpened {
        id: request.to_string(),
        doctor_id: view.map(|r| r.doctor_id.to_string()),
        status: "open".into(),
    })
}

/// `POST /health-records/{id}/amendments`.
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct AmendmentInput {
    /// The client's own code for why (`typo`, `wrong_value`, …): letters,
    /// digits, `_`, `-` or `.`, at most 64 characters.
    #[schema(required = true, value_type = String, pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub reason_code: Option<String>,
    /// The fields to correct and their new values: `symptoms`, `notes` (`null`
    /// or `""` removes them), `visit_date`, `visit_time`, and `vital_signs`, an
    /// object whose keys replace those vital signs (`null` removes one),
    /// validated as when recording.
    #[schema(required = true, value_type = Object)]
    pub changes: Option<Value>,
}

/// A corrected free-text field: `null` or blank removes it.
fn text_change(v: &mut Validator, field: &str, value: &Value, max_chars: usize) -> Option<Option<String>> {
    match value {
        Value::Null => Some(None),
        Value::String(s) => v.check(field, optional_text(Some(s), max_chars)),
        _ => {
            v.add(field, "应为字符串");
            None
        }
    }
}

/// Corrected vital signs, validated by the same code as a new record's; the
/// object's keys say which values are replaced.
fn vitals_change(v: &mut Validator, value: &Value) -> VitalSignsChanges {
    let mut changes = VitalSignsChanges::default();
    let Value::Object(given) = value else {
        v.add("changes.vital_signs", "应为对象");
        return changes;
    };
    let mut inner = Validator::new();
    let parsed = parse_vitals(Some(value), &mut inner);
    if let Err(Invalid(errors)) = inner.finish() {
        for (field, why) in errors {
            v.add(&format!("changes.{field}"), why);
        }
    }
    for key in given.keys() {
        if !changes.set(key, &parsed) {
            v.add(
                &format!("changes.vital_signs.{key}"),
                format!("未知的生命体征，可更正：{}", VitalSignsChanges::FIELDS.join("、")),
            );
        }
    }
    changes
}

/// The `changes` object as typed corrections; errors are keyed `changes.<field>`.
fn parse_changes(raw: Option<&Value>, v: &mut Validator, today: chrono::NaiveDate) -> RecordChanges {
    let mut changes = RecordChanges::default();
    let given = match raw {
        None | Some(Value::Null) => {
            v.add("changes", "必填");
            return changes;
        }
        Some(Value::Object(given)) => given,
        Some(_) => {
            v.add("changes", "应为对象");
            return changes;
        }
    };
    for (key, value) in given {
        let field = format!("changes.{key}");
        let text = value.as_str();
        match key.as_str() {
            "symptoms" => changes.symptoms = text_change(v, &field, value, 2000),
            "notes" => changes.notes = text_change(v, &field, value, 5000),
            "visit_date" => {
                changes.visit_date = v.check(&field, text.ok_or_else(|| "必填".to_string()).and_then(date));
                if changes.visit_date.is_some_and(|d| d > today) {
                    v.add(&field, "不能晚于今天");
                }
            }
            "visit_time" => changes.visit_time = v.check(&field, text.ok_or_else(|| "必填".to_string()).and_then(time)),
            "vital_signs" => changes.vital_signs = vitals_change(v, value),
            _ => v.add(
                &field,
                "不可更正的字段，可更正：symptoms、notes、visit_date、visit_time、vital_signs",
            ),
        }
    }
    changes
}

/// `POST /health-records/{id}/unlock`.
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct UnlockInput {
    /// Why the record is reopened (kept in the history, never published); 1 to 500 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 500)]
    pub reason: Option<String>,
}

/// A record as `GET /health-records/{id}` shows it, after a command on it.
async fn record_after(state: &AppState, id: HealthRecordId, version: i64) -> Result<HealthRecordView, AppError> {
    let mut record = state
        .read()
        .await
        .records()
        .get(id)
        .await?
        .ok_or(AppError::NotFound("health_record"))?;
    // Past the bounded read-your-writes wait the view may lag; the version
    // answered is the one the command produced.
    record.version = record.version.max(version);
    Ok(record)
}

/// A recorder corrects their record within the amendment window; corrected
/// vitals that cross the thresholds alert the doctor as a new record would.
pub async fn amend(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    input: &AmendmentInput,
) -> Result<HealthRecordView, AppError> {
    p.require(&[Role::Recorder])?;
    let rid: HealthRecordId = path_id(id, "health_record")?;
    let content = state
        .store
        .load::<HealthRecord>(&rid.to_string())
        .await?
        .and_then(|(r, _)| r.content)
        .ok_or(AppError::NotFound("health_record"))?;
    // Its recorder, while the patient is still theirs: the answer is the record.
    if !can_see_patient(state, p, content.patient_id).await? {
        return Err(AppError::NotFound("health_record"));
    }
    if content.recorder_id != p.user_id {
        return Err(AppError::Forbidden);
    }
    let mut v = Validator::new();
    let code = match input.reason_code.as_deref() {
        None => {
            v.add("reason_code", "必填");
            None
        }
        Some(c) => v.check("reason_code", reason_code(c)),
    };
    let changes = parse_changes(input.changes.as_ref(), &mut v, state.today());
    v.finish()?;
    let vitals_changed = !changes.vital_signs.is_empty();
    let command = HealthRecordCommand::Amend {
        reason_code: code.unwrap_or_default(),
        changes,
        amended_by: p.user_id,
        at: chrono::Utc::now(),
        window_days: state.settings.field_work.amendment_window_days,
        thresholds: state.settings.alerts.thresholds.clone(),
    };
    let committed = state
        .execute::<HealthRecord>(&rid.to_string(), command, meta.context(Some(p), "AmendHealthRecord"))
        .await?;

    // Corrected vitals that cross the thresholds alert the doctor as a new
    // record would (at most one request per record).
    if vitals_changed {
        if let Some(content) = state
            .store
            .load::<HealthRecord>(&rid.to_string())
            .await?
            .and_then(|(r, _)| r.content)
        {
            let ctx = meta.context(Some(p), "RaiseAlertRequest");
            if let Err(e) = crate::app::alerts::raise(state, rid, &content, ctx).await {
                tracing::warn!(error = %e, "record amended but its alert request could not be raised");
            }
        }
    }
    record_after(state, rid, committed.version).await
}

/// An admin reopens a record for another amendment window.
pub async fn unlock(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    input: &UnlockInput,
) -> Result<HealthRecordView, AppError> {
    p.require(&[Role::Admin])?;
    let rid: HealthRecordId = path_id(id, "health_record")?;
    let reason = parse_required("reason", &input.reason, |r| domain::values::text(r, 500))?;
    let command = HealthRecordCommand::Unlock {
        reason,
        by: p.user_id,
        at: chrono::Utc::now(),
    };
    let committed = state
        .execute::<HealthRecord>(&rid.to_string(), command, meta.context(Some(p), "UnlockHealthRecord"))
        .await?;
    record_after(state, rid, committed.version).await
}
