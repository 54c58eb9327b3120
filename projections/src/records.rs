//! Health records, the files attached to them, and uploaded files.

use async_trait::async_trait;
use domain::file::FileEvent;
use domain::health_record::{HealthRecordEvent, RecordChanges};
use domain::ids::{FileId, HealthRecordId, PatientId, UserId, VisitId};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::bulk::{apply_buffered, Buffer, Cell, Rows};
use crate::page::{ListQuery, Page, PageParams, Where};
use crate::projector::{erase_rows, erased_patient, ProjectionError, Projector, StoredEvent};
use crate::store::{hhmm, instant, ReadStore, RowExt};

/// A patient's records newest first: the order of `health_records_patient`
/// backwards, the id (which InnoDB keeps at the end of every secondary
/// index) included, so MySQL reads the index in order with no sort. (With
/// the id ascending after three descending columns it sorted every record
/// of the patient on each read.) Records alike in all three come newest id
/// first: ids are time-ordered (UUIDv7).
pub const RECORDS_NEWEST_FIRST: &str = "visit_date DESC, visit_time DESC, created_at DESC, id DESC";

/// The id of the newest record of the patient `p` (a correlated subquery:
/// `p` is the outer query's `patients` row), as the family detail shows it:
/// the first of [`RECORDS_NEWEST_FIRST`], the last entry of
/// `health_records_patient` for that patient.
pub const LATEST_RECORD_ID: &str = "SELECT r.id FROM health_records r WHERE r.patient_id = p.id
     ORDER BY r.visit_date DESC, r.visit_time DESC, r.created_at DESC, r.id DESC LIMIT 1";

pub struct RecordsProjector;

#[async_trait]
impl Projector for RecordsProjector {
    fn name(&self) -> &'static str {
        "health_records"
    }
    fn tables(&self) -> &'static [&'static str] {
        &[
            "health_record_amendments",
            "health_record_files",
            "health_records",
            "files",
        ]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        self.apply_all(c, &[e]).await
    }

    /// Records written are inserted as multi-row statements.
    async fn apply_all(&self, c: &mut AnyConnection, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        apply_buffered(c, events, &mut RecordRows::default()).await
    }
}

/// The rows of a run of records written: the record and its files.
struct RecordRows {
    records: Rows,
    files: Rows,
}

impl Default for RecordRows {
    fn default() -> Self {
        RecordRows {
            records: Rows::new(
                "INSERT",
                "health_records",
                "id, patient_id, recorder_id, appointment_id, visit_date, visit_time, location_lat, location_lng,
                 location_address, distance_from_home_m, away_from_home, blood_pressure, heart_rate, temperature,
                 blood_oxygen, blood_glucose, weight, symptoms, notes, alerts, abnormal, created_at, updated_at,
                 version",
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ),
            files: Rows::new(
                "INSERT",
                "health_record_files",
                "record_id, file_id, role, ord",
                "(?, ?, ?, ?)",
            ),
        }
    }
}

#[async_trait]
impl Buffer for RecordRows {
    async fn take(&mut self, _: &mut AnyConnection, e: &StoredEvent) -> Result<bool, ProjectionError> {
        if erased_patient(e).is_some() {
            return Ok(false);
        }
        match (e.aggregate_type.as_str(), e.event_type.as_str()) {
            ("health_record", "HealthRecordCreated") => {}
            ("health_record" | "file", _) => return Ok(false),
            _ => return Ok(true),
        }
        let HealthRecordEvent::HealthRecordCreated(r) = e.decode::<HealthRecordEvent>()? else {
            return Ok(false);
        };
        let (id, at) = (e.aggregate_id.as_str(), e.at());
        let v = &r.vital_signs;
        self.records.push([
            id.into(),
            r.patient_id.to_string().into(),
            r.recorder_id.to_string().into(),
            r.appointment_id.map(|a| a.to_string()).into(),
            r.visit_date.to_string().into(),
            r.visit_time.format("%H:%M").to_string().into(),
            r.location.as_ref().map(|l| l.lat).into(),
            r.location.as_ref().map(|l| l.lng).into(),
            r.location.as_ref().and_then(|l| l.address.clone()).into(),
            r.distance_from_home_m.into(),
            i64::from(r.away_from_home).into(),
            v.blood_pressure.map(|b| b.text()).into(),
            v.heart_rate.map(i64::from).into(),
            v.temperature.into(),
            v.blood_oxygen.into(),
            v.blood_glucose.into(),
            v.weight.into(),
            (&r.symptoms).into(),
            (&r.notes).into(),
            serde_json::to_string(&r.alerts).unwrap_or_else(|_| "[]".into()).into(),
            i64::from(!r.alerts.is_empty()).into(),
            (&at).into(),
            at.into(),
            e.sequence.into(),
        ]);
        for (ord, (file, role)) in r.files.all().into_iter().enumerate() {
            self.files
                .push([id.into(), file.to_string().into(), role.into(), (ord as i64).into()]);
        }
        Ok(true)
    }

    async fn flush(&mut self, c: &mut AnyConnection) -> Result<(), ProjectionError> {
        self.records.flush(c).await?;
        Ok(self.files.flush(c).await?)
    }

    async fn apply_one(&mut self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        apply_one(c, e).await
    }
}

/// Every event [`RecordRows::take`] does not write.
async fn apply_one(c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
    if let Some(patient) = erased_patient(e) {
        return erase_rows(c, patient, &[
            "UPDATE health_records SET symptoms = NULL, notes = NULL, location_lat = NULL, location_lng = NULL, location_address = NULL, distance_from_home_m = NULL WHERE patient_id = ?",
            "UPDATE files SET original_name = '[已删除]' WHERE id IN (SELECT f.file_id FROM health_record_files f JOIN health_records r ON r.id = f.record_id WHERE r.patient_id = ?)",
            "UPDATE health_record_amendments SET changes = '{}' WHERE record_id IN (SELECT id FROM health_records WHERE patient_id = ?)",
        ])
        .await;
    }
    let id = e.aggregate_id.as_str();
    let at = e.at();
    match e.aggregate_type.as_str() {
        "health_record" => match e.decode::<HealthRecordEvent>()? {
            // Taken by `RecordRows::take`, every one.
            HealthRecordEvent::HealthRecordCreated(_) => {}
            HealthRecordEvent::HealthRecordAmended {
                reason_code,
                changes,
                alerts,
                amended_by,
                at: amended_at,
                ..
            } => {
                let amended_at = instant(amended_at);
                let mut update = RowUpdate::default();
                amended_columns(&changes, &mut update);
                if let Some(alerts) = &alerts {
                    update.text(
                        "alerts",
                        Some(serde_json::to_string(alerts).unwrap_or_else(|_| "[]".into())),
                    );
                    update.int("abnormal", Some(i64::from(!alerts.is_empty())));
                }
                update.text("amended_at", Some(amended_at.clone()));
                update.text("updated_at", Some(at.clone()));
                update.int("version", Some(e.sequence));
                update.run(&mut *c, "amendment_count = amendment_count + 1", id).await?;
                sqlx::query(
                    "INSERT INTO health_record_amendments (record_id, seq, reason_code, changes, amended_by, at)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(e.sequence)
                .bind(&reason_code)
                .bind(changes_json(&changes).to_string())
                .bind(amended_by.to_string())
                .bind(&amended_at)
                .execute(&mut *c)
                .await?;
            }
            HealthRecordEvent::HealthRecordUnlocked { at: unlocked_at, .. } => {
                sqlx::query("UPDATE health_records SET unlocked_at = ?, updated_at = ?, version = ? WHERE id = ?")
                    .bind(instant(unlocked_at))
                    .bind(&at)
                    .bind(e.sequence)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
            }
        },
        "file" => match e.decode::<FileEvent>()? {
            FileEvent::FileUploaded(f) => {
                sqlx::query(
                    "INSERT INTO files (id, kind, original_name, content_type, size, sha256, storage_key, thumbnail_key,
                        uploaded_by, created_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(&f.kind)
                .bind(&f.original_name)
                .bind(&f.content_type)
                .bind(f.size as i64)
                .bind(&f.sha256)
                .bind(&f.storage_key)
                .bind(&f.thumbnail_key)
                .bind(f.uploaded_by.to_string())
                .bind(&at)
                .bind(e.sequence)
                .execute(&mut *c)
                .await?;
            }
            FileEvent::FileDiscarded { .. } => {
                sqlx::query("UPDATE files SET discarded_at = ?, version = ? WHERE id = ?")
                    .bind(&at)
                    .bind(e.sequence)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
            }
        },
        _ => {}
    }
    Ok(())
}

/// `UPDATE health_records SET <only the given columns> WHERE id = ?`.
#[derive(Default)]
struct RowUpdate {
    cells: Vec<(&'static str, Cell)>,
}

impl RowUpdate {
    fn text(&mut self, col: &'static str, v: Option<String>) {
        self.cells.push((col, Cell::Text(v)));
    }
    fn int(&mut self, col: &'static str, v: Option<i64>) {
        self.cells.push((col, Cell::Int(v)));
    }
    fn real(&mut self, col: &'static str, v: Option<f64>) {
        self.cells.push((col, Cell::Real(v)));
    }

    /// Runs the update; `extra` is a fixed SQL assignment added to the set.
    async fn run(self, c: &mut AnyConnection, extra: &str, id: &str) -> Result<(), sqlx::Error> {
        let mut sets: Vec<String> = self.cells.iter().map(|(col, _)| format!("{col} = ?")).collect();
        sets.push(extra.to_string());
        let sql = format!("UPDATE health_records SET {} WHERE id = ?", sets.join(", "));
        let mut q = sqlx::query(&sql);
        for (_, cell) in self.cells {
            q = match cell {
                Cell::Text(v) => q.bind(v),
                Cell::Shared(v) => q.bind(v.to_string()),
                Cell::Int(v) => q.bind(v),
                Cell::Real(v) => q.bind(v),
            };
        }
        q.bind(id).execute(c).await?;
        Ok(())
    }
}

/// The columns an amendment sets (a cleared value becomes NULL).
fn amended_columns(ch: &RecordChanges, u: &mut RowUpdate) {
    if let Some(d) = ch.visit_date {
        u.text("visit_date", Some(d.to_string()));
    }
    if let Some(t) = ch.visit_time {
        u.text("visit_time", Some(hhmm(t)));
    }
    if let Some(s) = &ch.symptoms {
        u.text("symptoms", s.clone());
    }
    if let Some(n) = &ch.notes {
        u.text("notes", n.clone());
    }
    let v = &ch.vital_signs;
    if let Some(bp) = v.blood_pressure {
        u.text("blood_pressure", bp.map(|b| b.text()));
    }
    if let Some(hr) = v.heart_rate {
        u.int("heart_rate", hr.map(i64::from));
    }
    for (col, value) in [
        ("temperature", v.temperature),
        ("blood_oxygen", v.blood_oxygen),
        ("blood_glucose", v.blood_glucose),
        ("weight", v.weight),
    ] {
        if let Some(x) = value {
            u.real(col, x);
        }
    }
}

/// An amendment's changes as the API shows them: the fields the recorder
/// corrected, with their new values in the same form as the record itself
/// (blood pressure as "120/80", times as HH:MM); `null` = removed.
fn changes_json(ch: &RecordChanges) -> Value {
    let mut m = Map::new();
    if let Some(d) = ch.visit_date {
        m.insert("visit_date".into(), json!(d.to_string()));
    }
    if let Some(t) = ch.visit_time {
        m.insert("visit_time".into(), json!(hhmm(t)));
    }
    if let Some(s) = &ch.symptoms {
        m.insert("symptoms".into(), json!(s));
    }
    if let Some(n) = &ch.notes {
        m.insert("notes".into(), json!(n));
    }
    let v = &ch.vital_signs;
    let mut vitals = Map::new();
    if let Some(bp) = v.blood_pressure {
        vitals.insert("blood_pressure".into(), json!(bp.map(|b| b.text())));
    }
    if let Some(hr) = v.heart_rate {
        vitals.insert("heart_rate".into(), json!(hr));
    }
    for (name, value) in [
        ("temperature", v.temperature),
        ("blood_oxygen", v.blood_oxygen),
        ("blood_glucose", v.blood_glucose),
        ("weight", v.weight),
    ] {
        if let Some(x) = value {
            vitals.insert(name.into(), json!(x));
        }
    }
    if !vitals.is_empty() {
        m.insert("vital_signs".into(), Value::Object(vitals));
    }
    Value::Object(m)
}

/// One reason a record is abnormal, as `alerts` lists them (the schema of the
/// domain's `AlertReason`, which `alerts` holds as JSON).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertView {
    /// A stable code, e.g. `blood_pressure_high`.
    pub code: String,
    #[schema(pattern = "^(abnormal|urgent)$")]
    pub severity: String,
    /// For people, in Chinese.
    pub message: String,
}

/// One correction of a record, oldest first in `amendments`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AmendmentView {
    pub reason_code: String,
    /// The corrected fields and their new values (`null` = removed).
    #[schema(value_type = Object)]
    pub changes: Value,
    #[schema(value_type = String, format = Uuid)]
    pub amended_by: UserId,
    pub at: String,
    /// The record's version this amendment produced.
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordFileView {
    #[schema(value_type = String, format = Uuid)]
    pub file_id: FileId,
    /// audio | photo | signature
    pub role: String,
    pub file_url: String,
    pub thumbnail_url: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VitalSignsView {
    pub blood_pressure: Option<String>,
    pub heart_rate: Option<i64>,
    pub temperature: Option<f64>,
    pub blood_oxygen: Option<f64>,
    pub blood_glucose: Option<f64>,
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthRecordView {
    #[schema(value_type = String, format = Uuid)]
    pub id: HealthRecordId,
    #[schema(value_type = String, format = Uuid)]
    pub patient_id: PatientId,
    #[schema(value_type = String, format = Uuid)]
    pub recorder_id: UserId,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub appointment_id: Option<VisitId>,
    pub visit_date: String,
    pub visit_time: String,
    pub location_lat: Option<f64>,
    pub location_lng: Option<f64>,
    pub location_address: Option<String>,
    pub distance_from_home_m: Option<f64>,
    pub away_from_home: bool,
    pub vital_signs: VitalSignsView,
    pub symptoms: Option<String>,
    pub notes: Option<String>,
    pub abnormal: bool,
    #[schema(value_type = Vec<AlertView>)]
    pub alerts: serde_json::Value,
    pub files: Vec<RecordFileView>,
    /// Corrections, oldest first; the values above include them.
    pub amendments: Vec<AmendmentView>,
    pub amendment_count: i64,
    /// When the last correction was made.
    pub amended_at: Option<String>,
    /// When an admin last reopened the record for corrections.
    pub unlocked_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

fn record_view(r: &AnyRow) -> Result<HealthRecordView, sqlx::Error> {
    Ok(HealthRecordView {
        id: r.id("id")?,
        patient_id: r.id("patient_id")?,
        recorder_id: r.id("recorder_id")?,
        appointment_id: r.opt_id("appointment_id")?,
        visit_date: r.text("visit_date")?,
        visit_time: r.text("visit_time")?,
        location_lat: r.opt_f64("location_lat")?,
        location_lng: r.opt_f64("location_lng")?,
        location_address: r.opt_text("location_address")?,
        distance_from_home_m: r.opt_f64("distance_from_home_m")?,
        away_from_home: r.int("away_from_home")? != 0,
        vital_signs: VitalSignsView {
            blood_pressure: r.opt_text("blood_pressure")?,
            heart_rate: r.opt_int("heart_rate")?,
            temperature: r.opt_f64("temperature")?,
            blood_oxygen: r.opt_f64("blood_oxygen")?,
            blood_glucose: r.opt_f64("blood_glucose")?,
            weight: r.opt_f64("weight")?,
        },
        symptoms: r.opt_text("symptoms")?,
        notes: r.opt_text("notes")?,
        abnormal: r.int("abnormal")? != 0,
        alerts: r.json("alerts")?,
        files: Vec::new(),
        amendments: Vec::new(),
        amendment_count: r.int("amendment_count")?,
        amended_at: r.opt_text("amended_at")?,
        unlocked_at: r.opt_text("unlocked_at")?,
        created_at: r.text("created_at")?,
        updated_at: r.text("updated_at")?,
        version: r.int("version")?,
    })
}

#[derive(Debug, Clone)]
pub struct FileRow {
    pub id: FileId,
    pub kind: String,
    pub original_name: String,
    pub content_type: String,
    pub size: i64,
    pub storage_key: String,
    pub thumbnail_key: Option<String>,
    pub uploaded_by: UserId,
}

impl ReadStore {
    /// The health records read model.
    pub fn records(&self) -> Records<'_> {
        Records(self)
    }

    /// The uploaded files read model.
    pub fn files(&self) -> Files<'_> {
        Files(self)
    }
}

/// Queries of the health records read model.
#[derive(Clone, Copy)]
pub struct Records<'a>(&'a ReadStore);

impl Records<'_> {
    async fn files_of(self, record: HealthRecordId) -> Result<Vec<RecordFileView>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT rf.file_id, rf.role, f.content_type, f.thumbnail_key FROM health_record_files rf
             LEFT JOIN files f ON f.id = rf.file_id WHERE rf.record_id = ? ORDER BY rf.ord",
        )
        .bind(record.to_string())
        .fetch_all(self.0.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let id: FileId = r.id("file_id")?;
                Ok(RecordFileView {
                    file_url: format!("/api/v1/files/{id}"),
                    thumbnail_url: r
                        .opt_text("thumbnail_key")?
                        .map(|_| format!("/api/v1/files/{id}/thumbnail")),
                    content_type: r.opt_text("content_type")?,
                    role: r.text("role")?,
                    file_id: id,
                })
            })
            .collect()
    }

    async fn amendments_of(self, record: HealthRecordId) -> Result<Vec<AmendmentView>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT seq, reason_code, changes, amended_by, at FROM health_record_amendments
             WHERE record_id = ? ORDER BY seq",
        )
        .bind(record.to_string())
        .fetch_all(self.0.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AmendmentView {
                    reason_code: r.text("reason_code")?,
                    changes: r.json("changes")?,
                    amended_by: r.id("amended_by")?,
                    at: r.text("at")?,
                    version: r.int("seq")?,
                })
            })
            .collect()
    }

    pub async fn get(self, id: HealthRecordId) -> Result<Option<HealthRecordView>, sqlx::Error> {
        let Some(r) = sqlx::query("SELECT * FROM health_records WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?
        else {
            return Ok(None);
        };
        let mut v = record_view(&r)?;
        v.files = self.files_of(id).await?;
        v.amendments = self.amendments_of(id).await?;
        Ok(Some(v))
    }

    /// A patient's records, newest first.
    pub async fn of_patient(self, patient: PatientId, page: PageParams) -> Result<Page<HealthRecordView>, sqlx::Error> {
        let list = ListQuery {
            select: "SELECT * FROM health_records",
            from: "health_records",
            order_by: RECORDS_NEWEST_FIRST,
        };
        let filter = Where::new().and_eq("patient_id = ?", Some(patient.to_string()));
        let mut page = self.0.page(&list, &filter, page, record_view).await?;
        for v in &mut page.items {
            v.files = self.files_of(v.id).await?;
            if v.amendment_count > 0 {
                v.amendments = self.amendments_of(v.id).await?;
            }
        }
        Ok(page)
    }
}

/// Queries of the uploaded files read model.
#[derive(Clone, Copy)]
pub struct Files<'a>(&'a ReadStore);

impl Files<'_> {
    /// A file not discarded.
    pub async fn get(self, id: FileId) -> Result<Option<FileRow>, sqlx::Error> {
        let row = sqlx::query("SELECT * FROM files WHERE id = ? AND discarded_at IS NULL")
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.map(|r| {
            Ok(FileRow {
                id: r.id("id")?,
                kind: r.text("kind")?,
                original_name: r.text("original_name")?,
                content_type: r.text("content_type")?,
                size: r.int("size")?,
                storage_key: r.text("storage_key")?,
                thumbnail_key: r.opt_text("thumbnail_key")?,
                uploaded_by: r.id("uploaded_by")?,
            })
        })
        .transpose()
    }

    /// The patients whose records include the file.
    pub async fn patients(self, file: FileId) -> Result<Vec<PatientId>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.patient_id FROM health_record_files rf JOIN health_records r ON r.id = rf.record_id
             WHERE rf.file_id = ?",
        )
        .bind(file.to_string())
        .fetch_all(self.0.pool())
        .await?;
        rows.iter().map(|r| r.id("patient_id")).collect()
    }

    /// Whether the file is already attached to a record.
    pub async fn attached(self, file: FileId) -> Result<bool, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM health_record_files WHERE file_id = ?")
            .bind(file.to_string())
            .fetch_one(self.0.pool())
            .await?;
        Ok(n > 0)
    }
}
