//! Health records: what a recorder measured and saw during one visit. A record
//! is written once; corrections come later as amendment events.

use chrono::{NaiveDate, NaiveTime};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{FileId, PatientId, UserId, VisitId};
use crate::vitals::{AlertReason, VitalSigns};

/// Records taken farther than this from the family's home are flagged.
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
        let r = 6_371_000.0_f64;
        let (p1, p2) = (self.lat.to_radians(), lat.to_radians());
        let dp = (lat - self.lat).to_radians();
        let dl = (lng - self.lng).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * r * a.sqrt().asin()
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
}

#[derive(Debug, Clone, PartialEq)]
pub enum HealthRecordCommand {
    Create(RecordContent),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HealthRecordEvent {
    HealthRecordCreated(RecordContent),
}

impl DomainEvent for HealthRecordEvent {
    fn event_type(&self) -> String {
        "HealthRecordCreated".into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct HealthRecord {
    pub content: Option<RecordContent>,
}

impl Aggregate for HealthRecord {
    const TYPE: &'static str = "health_record";
    type Command = HealthRecordCommand;
    type Event = HealthRecordEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(
        &mut self,
        command: HealthRecordCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), DomainError> {
        match command {
            HealthRecordCommand::Create(_) if self.content.is_some() => Err(DomainError::conflict("健康记录已存在")),
            HealthRecordCommand::Create(c) => {
                if c.vital_signs == VitalSigns::default() && c.symptoms.is_none() && c.notes.is_none() {
                    return Err(DomainError::field("vital_signs", "至少填写一项生命体征、症状或备注"));
                }
                sink.write(HealthRecordEvent::HealthRecordCreated(c), self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: HealthRecordEvent) {
        match event {
            HealthRecordEvent::HealthRecordCreated(c) => self.content = Some(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
