//! Health records: what a recorder measured and saw during one visit. A record
//! is written once; corrections come later as amendment events ("corrections,
//! not edits"): the created event is never changed, each amendment says what
//! it changed, why, who and when, and the aggregate shows the amended values.
//!
//! Its recorder may amend a record for `window_days` after writing it; past
//! that an admin must unlock it, which opens another window of the same length
//! (and admits at least the next amendment, however short the window).

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{FileId, PatientId, UserId, VisitId};
use crate::validation::Invalid;
use crate::vitals::{AlertReason, AlertThresholds, BloodPressure, VitalSigns};

/// The default distance from the family's home past which a record is
/// flagged (`CARELOG_EVV_RADIUS_M`; [`RecordFacts::away_radius_m`]).
pub const AWAY_FROM_HOME_METERS: f64 = 500.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lng: f64,
    pub address: Option<String>,
}

impl Location {
    pub fn parse(lat: f64, lng: f64, address: Option<String>) -> Result<Self, (&'static str, String)> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(("location_lat", "纬度应在-90到90之间".into()));
        }
        if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
            return Err(("location_lng", "经度应在-180到180之间".into()));
        }
        Ok(Self { lat, lng, address })
    }

    /// Great-circle distance in metres (haversine).
    pub fn distance_to(&self, lat: f64, lng: f64) -> f64 {
        crate::values::haversine_m((self.lat, self.lng), (lat, lng))
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordFiles {
    pub audio_file: Option<FileId>,
    pub photos: Vec<FileId>,
    pub patient_signature: Option<FileId>,
}

impl RecordFiles {
    pub fn all(&self) -> Vec<(FileId, &'static str)> {
        let mut v: Vec<(FileId, &'static str)> = self.audio_file.iter().map(|f| (*f, "audio")).collect();
        v.extend(self.photos.iter().map(|f| (*f, "photo")));
        v.extend(self.patient_signature.iter().map(|f| (*f, "signature")));
        v
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordContent {
    pub patient_id: PatientId,
    pub recorder_id: UserId,
    pub appointment_id: Option<VisitId>,
    pub visit_date: NaiveDate,
    pub visit_time: NaiveTime,
    pub location: Option<Location>,
    /// Metres from the family's home coordinates, when both are known.
    pub distance_from_home_m: Option<f64>,
    pub away_from_home: bool,
    pub vital_signs: VitalSigns,
    pub symptoms: Option<String>,
    pub notes: Option<String>,
    pub files: RecordFiles,
    /// Alert thresholds the vitals crossed when recorded.
    pub alerts: Vec<AlertReason>,
    /// When the record was written (set by the server), the start of its
    /// amendment window. Records written before this field existed lack it;
    /// their window starts at the visit's date and time, read as UTC.
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
}

/// A record as its recorder writes it: what was measured and seen during the
/// visit. What follows from it (its alerts, its distance from home, the start
/// of its amendment window) the aggregate decides, from [`RecordFacts`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    pub patient_id: PatientId,
    pub recorder_id: UserId,
    pub appointment_id: Option<VisitId>,
    pub visit_date: NaiveDate,
    pub visit_time: NaiveTime,
    pub location: Option<Location>,
    pub vital_signs: VitalSigns,
    pub symptoms: Option<String>,
    pub notes: Option<String>,
    pub files: RecordFiles,
}

/// The facts a new record is judged against, looked up by the caller when it
/// makes the command: the decision's inputs that are not in the record.
///
/// Why a decision input carried by the command (as disintegrate's commands
/// carry theirs, and as `Amend` carries its thresholds) rather than cqrs-es
/// `Services`: `Services` is one value handed to every command of the
/// aggregate type, made for calls out of the process during `handle`; these
/// facts differ per command (this patient's family's home) and the caller has
/// already read them while checking access to the same patient. Carried by
/// the command, they keep `handle` a pure function of state and command: the
/// given/when/then tests state every fact, a command retried after a lost
/// append race decides exactly as before, and the store keeps its one path
/// for every aggregate (`Services = ()`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFacts {
    /// The family's home as (latitude, longitude), when it has one. Only read
    /// when the record has a location, so a caller may leave it out then.
    pub home: Option<(f64, f64)>,
    /// The alert thresholds in force.
    pub thresholds: AlertThresholds,
    /// When the record is written (the server's clock): the start of its
    /// amendment window.
    pub recorded_at: DateTime<Utc>,
    /// A record taken farther than this (metres) from home is flagged
    /// `away_from_home`: the visit verification radius in force.
    pub away_radius_m: f64,
}

impl NewRecord {
    /// The record as stored: the recorder's content and what it means against
    /// `facts`. The distance is kept to a tenth of a metre.
    fn judged(self, facts: RecordFacts) -> RecordContent {
        let distance_from_home_m = match (&self.location, facts.home) {
            (Some(at), Some((lat, lng))) => Some((at.distance_to(lat, lng) * 10.0).round() / 10.0),
            _ => None,
        };
        RecordContent {
            alerts: facts.thresholds.assess(&self.vital_signs),
            distance_from_home_m,
            away_from_home: distance_from_home_m.is_some_and(|d| d > facts.away_radius_m),
            recorded_at: Some(facts.recorded_at),
            patient_id: self.patient_id,
            recorder_id: self.recorder_id,
            appointment_id: self.appointment_id,
            visit_date: self.visit_date,
            visit_time: self.visit_time,
            location: self.location,
            vital_signs: self.vital_signs,
            symptoms: self.symptoms,
            notes: self.notes,
            files: self.files,
        }
    }
}

/// Longest reason code accepted, in characters.
pub const REASON_CODE_MAX: usize = 64;

/// A client's code for why a record is corrected (`typo`, `wrong_patient`,
/// `device_error`…). Clients bring their own codes, so any short code of
/// ASCII letters, digits, `_`, `-` or `.` is accepted.
pub fn reason_code(raw: &str) -> Result<String, String> {
    let code = raw.trim();
    if code.is_empty() {
        return Err("不能为空".into());
    }
    if code.chars().count() > REASON_CODE_MAX {
        return Err(format!("不能超过{REASON_CODE_MAX}个字符"));
    }
    if !code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err("只能包含字母、数字、下划线、连字符或点".into());
    }
    Ok(code.to_string())
}

/// Serde helper for "absent, null or a value": a field that is present
/// deserializes to `Some`, even when it is `null` (`Some(None)` = cleared);
/// with `#[serde(default)]` an absent one stays `None` (unchanged).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Serde helper: `null` reads as the type's default. Erased personal data
/// read as `null` (the server's privacy module seals an amendment's `changes`
/// with the patient's key), and an erased amendment must still replay: as one
/// that changed nothing.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// Vital signs an amendment replaces: a key that is absent keeps the recorded
/// value, `Some(Some(v))` replaces it, `Some(None)` removes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VitalSignsChanges {
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub blood_pressure: Option<Option<BloodPressure>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub heart_rate: Option<Option<u16>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub blood_oxygen: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub blood_glucose: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub weight: Option<Option<f64>>,
}

/// Drops a change that would leave the value as it is.
fn keep_if_changed<T: PartialEq>(change: &mut Option<T>, current: &T) {
    if change.as_ref() == Some(current) {
        *change = None;
    }
}

impl VitalSignsChanges {
    /// The names of the vital signs the client may correct, as in the API.
    pub const FIELDS: [&'static str; 6] = [
        "blood_pressure",
        "heart_rate",
        "temperature",
        "blood_oxygen",
        "blood_glucose",
        "weight",
    ];

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Takes `name` from `parsed` (the values the client sent, validated), or
    /// removes it when `parsed` has none. `false` for an unknown name.
    pub fn set(&mut self, name: &str, parsed: &VitalSigns) -> bool {
        match name {
            "blood_pressure" => self.blood_pressure = Some(parsed.blood_pressure),
            "heart_rate" => self.heart_rate = Some(parsed.heart_rate),
            "temperature" => self.temperature = Some(parsed.temperature),
            "blood_oxygen" => self.blood_oxygen = Some(parsed.blood_oxygen),
            "blood_glucose" => self.blood_glucose = Some(parsed.blood_glucose),
            "weight" => self.weight = Some(parsed.weight),
            _ => return false,
        }
        true
    }

    fn against(mut self, v: &VitalSigns) -> Self {
        keep_if_changed(&mut self.blood_pressure, &v.blood_pressure);
        keep_if_changed(&mut self.heart_rate, &v.heart_rate);
        keep_if_changed(&mut self.temperature, &v.temperature);
        keep_if_changed(&mut self.blood_oxygen, &v.blood_oxygen);
        keep_if_changed(&mut self.blood_glucose, &v.blood_glucose);
        keep_if_changed(&mut self.weight, &v.weight);
        self
    }

    pub fn apply_to(&self, v: &mut VitalSigns) {
        if let Some(x) = self.blood_pressure {
            v.blood_pressure = x;
        }
        if let Some(x) = self.heart_rate {
            v.heart_rate = x;
        }
        if let Some(x) = self.temperature {
            v.temperature = x;
        }
        if let Some(x) = self.blood_oxygen {
            v.blood_oxygen = x;
        }
        if let Some(x) = self.blood_glucose {
            v.blood_glucose = x;
        }
        if let Some(x) = self.weight {
            v.weight = x;
        }
    }
}

/// What one amendment changes. Absent fields keep their value; free text set
/// to `None` inside `Some` is removed. Location, files and the visit are not
/// amendable: they are facts of the visit, not readings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_time: Option<NaiveTime>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub symptoms: Option<Option<String>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub notes: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "VitalSignsChanges::is_empty")]
    pub vital_signs: VitalSignsChanges,
}

impl RecordChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Keeps only what differs from `current`.
    fn against(mut self, current: &RecordContent) -> Self {
        if self.visit_date == Some(current.visit_date) {
            self.visit_date = None;
        }
        if self.visit_time == Some(current.visit_time) {
            self.visit_time = None;
        }
        keep_if_changed(&mut self.symptoms, &current.symptoms);
        keep_if_changed(&mut self.notes, &current.notes);
        self.vital_signs = self.vital_signs.against(&current.vital_signs);
        self
    }

    /// The amended values. Alerts are not recomputed here: the amendment
    /// event carries them, computed with the thresholds in force when amended.
    pub fn apply_to(&self, c: &mut RecordContent) {
        if let Some(d) = self.visit_date {
            c.visit_date = d;
        }
        if let Some(t) = self.visit_time {
            c.visit_time = t;
        }
        if let Some(s) = &self.symptoms {
            c.symptoms = s.clone();
        }
        if let Some(n) = &self.notes {
            c.notes = n.clone();
        }
        self.vital_signs.apply_to(&mut c.vital_signs);
    }
}

/// Whether a record says anything at all: creation and amendments both refuse
/// a record without vitals, symptoms or notes.
fn has_observations(c: &RecordContent) -> bool {
    c.vital_signs != VitalSigns::default() || c.symptoms.is_some() || c.notes.is_some()
}

#[derive(Debug, Clone, PartialEq)]
pub enum HealthRecordCommand {
    /// Writes a record; its alerts, distance from home and whether it was
    /// taken away from home are decided from `facts`.
    Create { record: NewRecord, facts: RecordFacts },
    /// A correction by the record's recorder, within `window_days` of the
    /// record's writing or of its last unlock. Changed vitals get their alerts
    /// recomputed with `thresholds`.
    Amend {
        reason_code: String,
        changes: RecordChanges,
        amended_by: UserId,
        at: DateTime<Utc>,
        window_days: u32,
        thresholds: AlertThresholds,
    },
    /// An admin reopens a record for amendments, for another window from `at`.
    Unlock {
        reason: String,
        by: UserId,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HealthRecordEvent {
    HealthRecordCreated(RecordContent),
    HealthRecordAmended {
        /// The data subject (every event about a patient names them).
        patient_id: PatientId,
        reason_code: String,
        #[serde(deserialize_with = "null_as_default")]
        changes: RecordChanges,
        /// The record's alerts after the amendment; present when vitals changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alerts: Option<Vec<AlertReason>>,
        amended_by: UserId,
        at: DateTime<Utc>,
    },
    HealthRecordUnlocked {
        patient_id: PatientId,
        reason: String,
        by: UserId,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for HealthRecordEvent {
    fn event_type(&self) -> String {
        match self {
            Self::HealthRecordCreated(_) => "HealthRecordCreated",
            Self::HealthRecordAmended { .. } => "HealthRecordAmended",
            Self::HealthRecordUnlocked { .. } => "HealthRecordUnlocked",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct HealthRecord {
    /// The record as amended so far.
    pub content: Option<RecordContent>,
    /// Start of the first amendment window (see [`RecordContent::recorded_at`]).
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// The last admin unlock, which opens a new window.
    #[serde(default)]
    pub unlocked_at: Option<DateTime<Utc>>,
    /// An unlock not yet used by an amendment: it admits one amendment even
    /// after its window (so an unlock is never void, whatever the window).
    #[serde(default)]
    pub unlock_pending: bool,
    #[serde(default)]
    pub amendments: u32,
}

/// Every way a health record refuses a command. The server's error module
/// gives each its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HealthRecordError {
    /// A record that observes nothing, an amendment that changes nothing or
    /// leaves the record empty, a bad reason code, an unlock without a reason
    /// (400, naming the field).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// No record was written under this id (404).
    #[error("no such health record")]
    NotFound,
    /// A second record under the same id (409).
    #[error("the health record already exists")]
    AlreadyExists,
    /// Only the recorder who wrote a record corrects it (409; the server
    /// answers 403 before asking).
    #[error("only the record's recorder may amend it")]
    NotTheRecorder,
    /// The amendment window has passed and no unlock is pending (409).
    #[error("the {window_days}-day amendment window has closed")]
    AmendmentWindowClosed { window_days: u32 },
}

/// Whether `at` falls within `days` after `from`. A window too long to
/// represent never closes.
fn within(from: DateTime<Utc>, days: u32, at: DateTime<Utc>) -> bool {
    TimeDelta::try_days(i64::from(days))
        .and_then(|w| from.checked_add_signed(w))
        .is_none_or(|end| at <= end)
}

impl HealthRecord {
    /// Whether the recorder may still amend at `at`.
    pub fn amendable_at(&self, at: DateTime<Utc>, window_days: u32) -> bool {
        self.created_at.is_some_and(|c| within(c, window_days, at))
            || self
                .unlocked_at
                .is_some_and(|u| self.unlock_pending || within(u, window_days, at))
    }
}

impl Aggregate for HealthRecord {
    const TYPE: &'static str = "health_record";
    type Command = HealthRecordCommand;
    type Event = HealthRecordEvent;
    type Error = HealthRecordError;
    type Services = ();

    async fn handle(
        &mut self,
        command: HealthRecordCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), HealthRecordError> {
        let event = match command {
            HealthRecordCommand::Create { .. } if self.content.is_some() => {
                return Err(HealthRecordError::AlreadyExists)
            }
            HealthRecordCommand::Create { record, facts } => {
                let content = record.judged(facts);
                if !has_observations(&content) {
                    return Err(Invalid::field("vital_signs", "至少填写一项生命体征、症状或备注").into());
                }
                HealthRecordEvent::HealthRecordCreated(content)
            }
            HealthRecordCommand::Amend {
                reason_code: code,
                changes,
                amended_by,
                at,
                window_days,
                thresholds,
            } => {
                let content = self.content.as_ref().ok_or(HealthRecordError::NotFound)?;
                let reason_code = reason_code(&code).map_err(|why| Invalid::field("reason_code", why))?;
                let changes = changes.against(content);
                if changes.is_empty() {
                    return Err(Invalid::field("changes", "没有需要更正的内容").into());
                }
                // The server answers 403 before asking; this keeps the rule true
                // for any other caller of the domain.
                if amended_by != content.recorder_id {
                    return Err(HealthRecordError::NotTheRecorder);
                }
                if !self.amendable_at(at, window_days) {
                    return Err(HealthRecordError::AmendmentWindowClosed { window_days });
                }
                let mut amended = content.clone();
                changes.apply_to(&mut amended);
                if !has_observations(&amended) {
                    return Err(Invalid::field("changes", "更正后至少保留一项生命体征、症状或备注").into());
                }
                let alerts = (!changes.vital_signs.is_empty()).then(|| thresholds.assess(&amended.vital_signs));
                HealthRecordEvent::HealthRecordAmended {
                    patient_id: content.patient_id,
                    reason_code,
                    changes,
                    alerts,
                    amended_by,
                    at,
                }
            }
            HealthRecordCommand::Unlock { reason, by, at } => {
                let content = self.content.as_ref().ok_or(HealthRecordError::NotFound)?;
                let reason = crate::values::text(&reason, 500).map_err(|why| Invalid::field("reason", why))?;
                HealthRecordEvent::HealthRecordUnlocked {
                    patient_id: content.patient_id,
                    reason,
                    by,
                    at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: HealthRecordEvent) {
        match event {
            HealthRecordEvent::HealthRecordCreated(c) => {
                self.created_at = Some(
                    c.recorded_at
                        .unwrap_or_else(|| c.visit_date.and_time(c.visit_time).and_utc()),
                );
                self.content = Some(c);
            }
            HealthRecordEvent::HealthRecordAmended { changes, alerts, .. } => {
                if let Some(c) = self.content.as_mut() {
                    changes.apply_to(c);
                    if let Some(a) = alerts {
                        c.alerts = a;
                    }
                }
                self.amendments += 1;
                self.unlock_pending = false;
            }
            HealthRecordEvent::HealthRecordUnlocked { at, .. } => {
                self.unlocked_at = Some(at);
                self.unlock_pending = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    const WINDOW: u32 = 7;

    fn recorder() -> UserId {
        UserId(Uuid::from_u128(1))
    }
    fn admin() -> UserId {
        UserId(Uuid::from_u128(2))
    }
    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn written() -> RecordContent {
        RecordContent {
            patient_id: PatientId(Uuid::from_u128(3)),
            recorder_id: recorder(),
            appointment_id: None,
            visit_date: NaiveDate::from_ymd_opt(2026, 3, 5).unwrap(),
            visit_time: NaiveTime::from_hms_opt(9, 5, 0).unwrap(),
            location: None,
            distance_from_home_m: None,
            away_from_home: false,
            vital_signs: VitalSigns {
                heart_rate: Some(72),
                ..Default::default()
            },
            symptoms: Some("头晕".into()),
            notes: None,
            files: RecordFiles::default(),
            alerts: Vec::new(),
            recorded_at: Some(t("2026-03-05T01:20:00Z")),
        }
    }
    fn new_notes() -> RecordChanges {
        RecordChanges {
            notes: Some(Some("已嘱低盐饮食".into())),
            ..Default::default()
        }
    }
    fn amend(changes: RecordChanges, at: &str) -> HealthRecordCommand {
        HealthRecordCommand::Amend {
            reason_code: "typo".into(),
            changes,
            amended_by: recorder(),
            at: t(at),
            window_days: WINDOW,
            thresholds: AlertThresholds::default(),
        }
    }
    fn amended(changes: RecordChanges, alerts: Option<Vec<AlertReason>>, at: &str) -> HealthRecordEvent {
        HealthRecordEvent::HealthRecordAmended {
            patient_id: written().patient_id,
            reason_code: "typo".into(),
            changes,
            alerts,
            amended_by: recorder(),
            at: t(at),
        }
    }
    fn unlocked(at: &str) -> HealthRecordEvent {
        HealthRecordEvent::HealthRecordUnlocked {
            patient_id: written().patient_id,
            reason: "家属要求更正".into(),
            by: admin(),
            at: t(at),
        }
    }
    fn names(r: Result<Vec<HealthRecordEvent>, HealthRecordError>, field: &str) -> bool {
        matches!(r, Err(HealthRecordError::Validation(i)) if i.names(field))
    }
    fn window_closed() -> HealthRecordError {
        HealthRecordError::AmendmentWindowClosed { window_days: WINDOW }
    }

    /// What the recorder wrote for [`written`], before the aggregate judged it.
    fn new_record() -> NewRecord {
        let w = written();
        NewRecord {
            patient_id: w.patient_id,
            recorder_id: w.recorder_id,
            appointment_id: w.appointment_id,
            visit_date: w.visit_date,
            visit_time: w.visit_time,
            location: w.location,
            vital_signs: w.vital_signs,
            symptoms: w.symptoms,
            notes: w.notes,
            files: w.files,
        }
    }
    /// No home on file, the default thresholds, written when [`written`] was.
    fn facts() -> RecordFacts {
        RecordFacts {
            home: None,
            thresholds: AlertThresholds::default(),
            recorded_at: t("2026-03-05T01:20:00Z"),
            away_radius_m: AWAY_FROM_HOME_METERS,
        }
    }
    fn create(record: NewRecord, facts: RecordFacts) -> HealthRecordCommand {
        HealthRecordCommand::Create { record, facts }
    }
    /// A home in Shanghai, and places about 95 m and 504 m east of it.
    const HOME: (f64, f64) = (31.2304, 121.4737);
    fn taken_at(lng: f64) -> NewRecord {
        NewRecord {
            location: Some(Location::parse(HOME.0, lng, None).unwrap()),
            ..new_record()
        }
    }
    fn high_blood_pressure() -> NewRecord {
        NewRecord {
            vital_signs: VitalSigns {
                blood_pressure: BloodPressure::parse("150/95").ok(),
                heart_rate: Some(72),
                ..Default::default()
            },
            ..new_record()
        }
    }

    #[test]
    fn it_should_create_a_record_and_start_its_amendment_window_when_written() {
        TestFramework::<HealthRecord>::with(())
            .given_no_previous_events()
            .when(create(new_record(), facts()))
            .then_expect_events(vec![HealthRecordEvent::HealthRecordCreated(written())]);
    }

    #[test]
    fn it_should_create_a_record_with_the_alerts_its_vitals_raise() {
        let mut expected = written();
        expected.vital_signs = high_blood_pressure().vital_signs;
        expected.alerts = vec![AlertReason {
            code: "blood_pressure_high".into(),
            severity: crate::vitals::Severity::Abnormal,
            message: "血压150/95mmHg偏高".into(),
        }];
        TestFramework::<HealthRecord>::with(())
            .given_no_previous_events()
            .when(create(high_blood_pressure(), facts()))
            .then_expect_events(vec![HealthRecordEvent::HealthRecordCreated(expected)]);
    }

    #[test]
    fn it_should_judge_alerts_by_the_thresholds_in_force() {
        let lenient = RecordFacts {
            thresholds: AlertThresholds {
                systolic_high: 160,
                diastolic_high: 100,
                ..AlertThresholds::default()
            },
            ..facts()
        };
        let mut expected = written();
        expected.vital_signs = high_blood_pressure().vital_signs;
        TestFramework::<HealthRecord>::with(())
            .given_no_previous_events()
            .when(create(high_blood_pressure(), lenient))
            .then_expect_events(vec![HealthRecordEvent::HealthRecordCreated(expected)]);
    }

    /// Writes a record taken at `lng` for a family living at [`HOME`].
    fn when_taken_at(lng: f64) -> cqrs_es::test::AggregateResultValidator<HealthRecord> {
        TestFramework::<HealthRecord>::with(())
            .given_no_previous_events()
            .when(create(taken_at(lng), with_home()))
    }
    fn with_home() -> RecordFacts {
        RecordFacts {
            home: Some(HOME),
            ..facts()
        }
    }
    fn written_at(lng: f64, distance_from_home_m: Option<f64>, away_from_home: bool) -> HealthRecordEvent {
        HealthRecordEvent::HealthRecordCreated(RecordContent {
            location: taken_at(lng).location,
            distance_from_home_m,
            away_from_home,
            ..written()
        })
    }

    #[test]
    fn it_should_flag_a_record_taken_more_than_500_metres_from_home() {
        when_taken_at(121.4790).then_expect_events(vec![written_at(121.4790, Some(503.9), true)]);
    }

    #[test]
    fn it_should_flag_a_record_by_the_radius_in_force() {
        let strict = RecordFacts {
            away_radius_m: 90.0,
            ..with_home()
        };
        TestFramework::<HealthRecord>::with(())
            .given_no_previous_events()
            .when(create(taken_at(121.4747), strict))
            .then_expect_events(vec![written_at(121.4747, Some(95.1), true)]);
    }

    #[test]
    fn it_should_not_flag_a_record_taken_near_home_but_keep_its_distance() {
        when_taken_at(121.4747).then_expect_events(vec![written_at(121.4747, Some(95.1), false)]);
    }

    #[test]
    fn it_should_leave_the_distance_unknown_without_a_home_or_a_location() {
        TestFramework::<HealthRecord>::with(())
            .given_no_previous_events()
            .when(create(taken_at(121.4790), facts()))
            .then_expect_events(vec![written_at(121.4790, None, false)]);
        TestFramework::<HealthRecord>::with(())
            .given_no_previous_events()
            .when(create(new_record(), with_home()))
            .then_expect_events(vec![HealthRecordEvent::HealthRecordCreated(written())]);
    }

    #[test]
    fn it_should_refuse_a_record_without_vitals_symptoms_or_notes() {
        let empty = NewRecord {
            vital_signs: VitalSigns::default(),
            symptoms: None,
            notes: None,
            ..new_record()
        };
        let r = TestFramework::<HealthRecord>::with(())
            .given_no_previous_events()
            .when(create(empty, facts()))
            .inspect_result();
        assert!(names(r, "vital_signs"));
    }

    #[test]
    fn it_should_not_create_a_record_twice() {
        TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(create(new_record(), facts()))
            .then_expect_error(HealthRecordError::AlreadyExists);
    }

    #[test]
    fn it_should_amend_a_record_within_the_window() {
        TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(amend(new_notes(), "2026-03-12T01:20:00Z"))
            .then_expect_events(vec![amended(new_notes(), None, "2026-03-12T01:20:00Z")]);
    }

    #[test]
    fn it_should_not_amend_a_record_after_the_window() {
        TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(amend(new_notes(), "2026-03-12T01:20:01Z"))
            .then_expect_error(window_closed());
    }

    #[test]
    fn it_should_amend_a_record_again_after_an_admin_unlock() {
        TestFramework::<HealthRecord>::with(())
            .given(vec![
                HealthRecordEvent::HealthRecordCreated(written()),
                unlocked("2026-04-01T08:00:00Z"),
            ])
            .when(amend(new_notes(), "2026-04-08T08:00:00Z"))
            .then_expect_events(vec![amended(new_notes(), None, "2026-04-08T08:00:00Z")]);
    }

    #[test]
    fn it_should_close_an_unlocked_record_again_one_window_after_the_unlock() {
        TestFramework::<HealthRecord>::with(())
            .given(vec![
                HealthRecordEvent::HealthRecordCreated(written()),
                unlocked("2026-04-01T08:00:00Z"),
                amended(new_notes(), None, "2026-04-02T08:00:00Z"),
            ])
            .when(amend(
                RecordChanges {
                    notes: Some(Some("再次更正".into())),
                    ..Default::default()
                },
                "2026-04-08T08:00:01Z",
            ))
            .then_expect_error(window_closed());
    }

    #[test]
    fn an_unlock_admits_the_next_amendment_however_short_the_window() {
        let late = "2026-05-01T08:00:00Z";
        let mut zero_window = amend(new_notes(), late);
        if let HealthRecordCommand::Amend { window_days, .. } = &mut zero_window {
            *window_days = 0;
        }
        TestFramework::<HealthRecord>::with(())
            .given(vec![
                HealthRecordEvent::HealthRecordCreated(written()),
                unlocked("2026-04-01T08:00:00Z"),
            ])
            .when(zero_window)
            .then_expect_events(vec![amended(new_notes(), None, late)]);
    }

    #[test]
    fn it_should_unlock_a_record_with_a_reason() {
        TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(HealthRecordCommand::Unlock {
                reason: "  家属要求更正 ".into(),
                by: admin(),
                at: t("2026-04-01T08:00:00Z"),
            })
            .then_expect_events(vec![unlocked("2026-04-01T08:00:00Z")]);
    }

    #[test]
    fn it_should_not_unlock_without_a_reason() {
        let r = TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(HealthRecordCommand::Unlock {
                reason: "   ".into(),
                by: admin(),
                at: t("2026-04-01T08:00:00Z"),
            })
            .inspect_result();
        assert!(names(r, "reason"));
    }

    #[test]
    fn it_should_not_unlock_or_amend_a_record_that_does_not_exist() {
        TestFramework::<HealthRecord>::with(())
            .given_no_previous_events()
            .when(HealthRecordCommand::Unlock {
                reason: "x".into(),
                by: admin(),
                at: t("2026-04-01T08:00:00Z"),
            })
            .then_expect_error(HealthRecordError::NotFound);
        TestFramework::<HealthRecord>::with(())
            .given_no_previous_events()
            .when(amend(new_notes(), "2026-03-06T00:00:00Z"))
            .then_expect_error(HealthRecordError::NotFound);
    }

    #[test]
    fn it_should_refuse_an_amendment_without_changes() {
        let r = TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(amend(RecordChanges::default(), "2026-03-06T00:00:00Z"))
            .inspect_result();
        assert!(names(r, "changes"));
        // Values equal to the recorded ones change nothing either.
        let same = RecordChanges {
            symptoms: Some(Some("头晕".into())),
            vital_signs: VitalSignsChanges {
                heart_rate: Some(Some(72)),
                ..Default::default()
            },
            ..Default::default()
        };
        let r = TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(amend(same, "2026-03-06T00:00:00Z"))
            .inspect_result();
        assert!(names(r, "changes"));
    }

    #[test]
    fn it_should_refuse_a_bad_reason_code_but_accept_the_clients_own_codes() {
        let r = TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(HealthRecordCommand::Amend {
                reason_code: " ".into(),
                changes: new_notes(),
                amended_by: recorder(),
                at: t("2026-03-06T00:00:00Z"),
                window_days: WINDOW,
                thresholds: AlertThresholds::default(),
            })
            .inspect_result();
        assert!(names(r, "reason_code"));
        assert!(reason_code("wrong_patient").is_ok());
        assert!(reason_code("DeviceError2").is_ok());
        assert!(reason_code("笔误").is_err());
        assert!(reason_code("two words").is_err());
        assert!(reason_code(&"x".repeat(65)).is_err());
        assert_eq!(reason_code(&"x".repeat(64)).unwrap().len(), 64);
    }

    #[test]
    fn it_should_not_let_anyone_but_the_records_recorder_amend() {
        TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(HealthRecordCommand::Amend {
                reason_code: "typo".into(),
                changes: new_notes(),
                amended_by: admin(),
                at: t("2026-03-06T00:00:00Z"),
                window_days: WINDOW,
                thresholds: AlertThresholds::default(),
            })
            .then_expect_error(HealthRecordError::NotTheRecorder);
    }

    #[test]
    fn it_should_recompute_alerts_when_vitals_are_amended() {
        let high = RecordChanges {
            vital_signs: VitalSignsChanges {
                blood_pressure: Some(Some(BloodPressure::parse("150/95").unwrap())),
                ..Default::default()
            },
            ..Default::default()
        };
        let expected = AlertThresholds::default().assess(&VitalSigns {
            blood_pressure: BloodPressure::parse("150/95").ok(),
            heart_rate: Some(72),
            ..Default::default()
        });
        assert_eq!(expected[0].code, "blood_pressure_high");
        TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(amend(high.clone(), "2026-03-06T00:00:00Z"))
            .then_expect_events(vec![amended(high, Some(expected), "2026-03-06T00:00:00Z")]);
    }

    #[test]
    fn it_should_refuse_an_amendment_that_leaves_the_record_empty() {
        let empty = RecordChanges {
            symptoms: Some(None),
            vital_signs: VitalSignsChanges {
                heart_rate: Some(None),
                ..Default::default()
            },
            ..Default::default()
        };
        let r = TestFramework::<HealthRecord>::with(())
            .given(vec![HealthRecordEvent::HealthRecordCreated(written())])
            .when(amend(empty, "2026-03-06T00:00:00Z"))
            .inspect_result();
        assert!(names(r, "changes"));
    }

    #[test]
    fn amendments_show_in_the_state_and_the_created_event_is_untouched() {
        let mut record = HealthRecord::default();
        let created = HealthRecordEvent::HealthRecordCreated(written());
        record.apply(created.clone());
        let changes = RecordChanges {
            symptoms: Some(None),
            visit_time: NaiveTime::from_hms_opt(9, 30, 0),
            vital_signs: VitalSignsChanges {
                temperature: Some(Some(38.5)),
                ..Default::default()
            },
            ..Default::default()
        };
        let alerts = Some(vec![AlertReason {
            code: "temperature_high".into(),
            severity: crate::vitals::Severity::Abnormal,
            message: "体温38.5°C，发热".into(),
        }]);
        record.apply(amended(changes, alerts.clone(), "2026-03-06T00:00:00Z"));
        let c = record.content.as_ref().unwrap();
        assert_eq!(c.symptoms, None);
        assert_eq!(c.visit_time, NaiveTime::from_hms_opt(9, 30, 0).unwrap());
        assert_eq!(c.vital_signs.temperature, Some(38.5));
        assert_eq!(c.vital_signs.heart_rate, Some(72), "vitals not named keep their value");
        assert_eq!(Some(c.alerts.clone()), alerts);
        assert_eq!(record.amendments, 1);
        assert_eq!(created, HealthRecordEvent::HealthRecordCreated(written()));
    }

    #[test]
    fn records_stored_before_recorded_at_existed_still_load_and_use_the_visit_time() {
        let mut json = serde_json::to_value(HealthRecordEvent::HealthRecordCreated(written())).unwrap();
        json["HealthRecordCreated"]
            .as_object_mut()
            .unwrap()
            .remove("recorded_at");
        let old: HealthRecordEvent = serde_json::from_value(json).unwrap();
        let mut record = HealthRecord::default();
        record.apply(old);
        assert_eq!(record.created_at, Some(t("2026-03-05T09:05:00Z")));
        assert!(record.amendable_at(t("2026-03-12T09:05:00Z"), WINDOW));
        assert!(!record.amendable_at(t("2026-03-12T09:05:01Z"), WINDOW));
    }

    #[test]
    fn an_amendment_whose_changes_were_erased_replays_as_changing_nothing() {
        let mut json = serde_json::to_value(amended(new_notes(), None, "2026-03-06T00:00:00Z")).unwrap();
        json["HealthRecordAmended"]["changes"] = serde_json::Value::Null;
        let erased: HealthRecordEvent = serde_json::from_value(json).unwrap();
        assert_eq!(erased, amended(RecordChanges::default(), None, "2026-03-06T00:00:00Z"));
        let mut record = HealthRecord::default();
        record.apply(HealthRecordEvent::HealthRecordCreated(written()));
        record.apply(erased);
        assert_eq!(record.content, Some(written()));
        assert_eq!(record.amendments, 1);
    }

    #[test]
    fn changes_round_trip_with_cleared_values_distinct_from_absent_ones() {
        let c = RecordChanges {
            notes: Some(None),
            symptoms: Some(Some("咳嗽".into())),
            vital_signs: VitalSignsChanges {
                weight: Some(None),
                heart_rate: Some(Some(80)),
                ..Default::default()
            },
            ..Default::default()
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"notes": null, "symptoms": "咳嗽", "vital_signs": {"weight": null, "heart_rate": 80}})
        );
        assert_eq!(serde_json::from_value::<RecordChanges>(json).unwrap(), c);
    }

    #[test]
    fn distance_is_in_metres() {
        let home = Location::parse(31.2304, 121.4737, None).unwrap();
        let d = home.distance_to(31.2304, 121.4790);
        assert!((490.0..520.0).contains(&d), "{d}");
        assert!(home.distance_to(31.2304, 121.4737) < 0.001);
    }

    #[test]
    fn coordinates_out_of_range_are_refused() {
        assert_eq!(Location::parse(91.0, 0.0, None).unwrap_err().0, "location_lat");
        assert_eq!(Location::parse(0.0, 181.0, None).unwrap_err().0, "location_lng");
    }
}
