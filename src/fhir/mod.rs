//! FHIR R4 export of one patient's care: the pure mapping from carelog's read
//! models to FHIR resources. No I/O here: [`crate::app::fhir`] reads the read
//! models, checks access and logs the read, then calls [`everything`] or
//! [`patient`].
//!
//! Resource ids are derived from carelog ids, so exporting twice gives the
//! same ids: `Patient/<patient id>`, `Encounter/enc-<visit id>`,
//! `Observation/obs-<record id>-<bp|hr|temp|spo2|weight|glucose>`,
//! `MedicationStatement/med-<patient id>-<index>`,
//! `MedicationRequest/medreq-<order id>`, `ServiceRequest/svcreq-<order id>`,
//! `Appointment/hosp-<booking id>`, `Provenance/prov-<prefix>-<source id>`.
//! Staff (recorders, doctors) appear as logical references to a
//! `Practitioner` (`urn:uuid:<user id>`) with their name as display.

pub mod model;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use domain::ids::VisitId;
use domain::medication::Medication;
use domain::order::OrderType;
use domain::vitals::BloodPressure;
use projections::families::PatientView;
use projections::hospitals::BookingView;
use projections::orders::MedicalOrderView;
use projections::records::HealthRecordView;
use projections::visits::VisitView;

use model::*;

/// The media type of every FHIR answer.
pub const FHIR_JSON: &str = "application/fhir+json";

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const PARTICIPANT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
/// Identifiers that are URIs (`urn:uuid:…`), as FHIR prescribes for them.
const URI_SYSTEM: &str = "urn:ietf:rfc:3986";
/// Names the carelog event behind a resource: `<aggregate type>/<id>/<version>`,
/// the aggregate's version being the sequence of its last event.
pub const EVENT_SYSTEM: &str = "urn:carelog:event";

/// mg/dL per mmol/L of glucose (molar mass 180.16 g/mol).
const GLUCOSE_MG_DL_PER_MMOL_L: f64 = 18.016;

/// Everything read about one patient for an export.
#[derive(Debug, Clone)]
pub struct PatientCare {
    pub patient: PatientView,
    /// The household's address (none once erased).
    pub address: Option<String>,
    pub medications: Vec<Medication>,
    /// Completed visits only.
    pub visits: Vec<VisitView>,
    pub records: Vec<HealthRecordView>,
    pub orders: Vec<MedicalOrderView>,
    pub bookings: Vec<BookingView>,
    /// Staff names by user id, for displays.
    pub staff: HashMap<String, String>,
}

/// What the mapping needs from outside the read models.
#[derive(Debug, Clone)]
pub struct ExportContext {
    /// Absolute base of the FHIR endpoints (`…/api/v1/fhir`), for `fullUrl`.
    pub base_url: String,
    /// Dates and times in read models are local to this timezone.
    pub timezone: Tz,
    pub now: DateTime<Utc>,
}

/// The `Patient` resource alone (`GET /fhir/Patient/{id}`). An erased
/// patient keeps only ids, gender and `active: false`.
pub fn patient(p: &PatientView, address: Option<&str>) -> Patient {
    let mut r = Patient {
        id: p.id.to_string(),
        meta: Meta {
            version_id: Some(p.version.to_string()),
            last_updated: Some(p.updated_at.clone()),
        },
        identifier: vec![Identifier {
            system: URI_SYSTEM.into(),
            value: format!("urn:uuid:{}", p.id),
        }],
        active: !p.erased,
        gender: Some(p.gender.as_str()),
        ..Default::default()
    };
    if p.erased {
        return r;
    }
    r.name = vec![HumanName { text: p.name.clone() }];
    r.birth_date = Some(p.birth_date.clone());
    r.telecom = p
        .phone
        .iter()
        .map(|ph| ContactPoint {
            system: "phone",
            value: ph.clone(),
            purpose: if ph.starts_with('1') { "mobile" } else { "home" },
        })
        .collect();
    r.address = address.map(|a| Address { text: a.into() }).into_iter().collect();
    r
}

/// The `$everything` Bundle (type `collection`): the patient, then per
/// source aggregate its resources followed by their Provenance.
pub fn everything(care: &PatientCare, ctx: &ExportContext) -> Bundle {
    let mut out = Exporter {
        care,
        ctx,
        entries: Vec::new(),
    };
    out.push(Resource::Patient(patient(&care.patient, care.address.as_deref())));
    out.medications();
    let completed: HashMap<VisitId, &VisitView> = care.visits.iter().map(|v| (v.id, v)).collect();
    for v in &care.visits {
        out.encounter(v);
    }
    for r in &care.records {
        let encounter = r
            .appointment_id
            .filter(|a| completed.contains_key(a))
            .map(|a| Reference::to("Encounter", &format!("enc-{a}")));
        out.observations(r, encounter);
    }
    for o in &care.orders {
        out.order(o);
    }
    for b in &care.bookings {
        out.booking(b);
    }
    Bundle {
        resource_type: "Bundle",
        id: format!("everything-{}-{}", care.patient.id, care.patient.version),
        kind: "collection",
        timestamp: projections::store::instant(ctx.now),
        entry: out.entries,
    }
}

struct Exporter<'a> {
    care: &'a PatientCare,
    ctx: &'a ExportContext,
    entries: Vec<BundleEntry>,
}

impl Exporter<'_> {
    fn push(&mut self, resource: Resource) -> Reference {
        let reference = resource.reference();
        self.entries.push(BundleEntry {
            full_url: format!("{}/{}/{}", self.ctx.base_url, resource.type_name(), resource.id()),
            resource,
        });
        reference
    }

    fn subject(&self) -> Reference {
        Reference::to("Patient", &self.care.patient.id.to_string())
    }

    /// A logical reference to a staff member (recorder or doctor).
    fn practitioner(&self, user: impl std::fmt::Display) -> Reference {
        let user = user.to_string();
        Reference {
            kind: Some("Practitioner".into()),
            identifier: Some(Identifier {
                system: URI_SYSTEM.into(),
                value: format!("urn:uuid:{user}"),
            }),
            display: self.care.staff.get(&user).cloned(),
            ..Default::default()
        }
    }

    /// Who did it, and which event of which aggregate, for `targets`.
    #[allow(clippy::too_many_arguments)]
    fn provenance(
        &mut self,
        prefix: &str,
        aggregate: &str,
        id: impl std::fmt::Display,
        version: i64,
        recorded: &str,
        role: (&str, &str),
        who: impl std::fmt::Display,
        targets: Vec<Reference>,
    ) {
        let agent = ProvenanceAgent {
            kind: CodeableConcept::coded(vec![Coding::new(PARTICIPANT_TYPE, role.0, role.1)], role.1),
            who: self.practitioner(who),
        };
        let entity = ProvenanceEntity {
            role: "source",
            what: Reference {
                identifier: Some(Identifier {
                    system: EVENT_SYSTEM.into(),
                    value: format!("{aggregate}/{id}/{version}"),
                }),
                display: Some(format!("carelog {aggregate} {id}, version {version}")),
                ..Default::default()
            },
        };
        self.push(Resource::Provenance(Provenance {
            id: format!("prov-{prefix}-{id}"),
            target: targets,
            recorded: recorded.into(),
            agent: vec![agent],
            entity: vec![entity],
        }));
    }

    fn medications(&mut self) {
        for (i, m) in self.care.medications.iter().enumerate() {
            let dosage = match m {
                Medication::Text(_) => Vec::new(),
                Medication::Structured(s) => {
                    let text = [s.dosage.as_deref(), s.frequency.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    let d = Dosage {
                        text: (!text.is_empty()).then_some(text),
                        route: s.route.as_deref().map(CodeableConcept::text),
                    };
                    if d == Dosage::default() {
                        Vec::new()
                    } else {
                        vec![d]
                    }
                }
            };
            self.push(Resource::MedicationStatement(MedicationStatement {
                id: format!("med-{}-{i}", self.care.patient.id),
                status: "active",
                medication_codeable_concept: CodeableConcept::text(m.name()),
                subject: self.subject(),
                dosage,
            }));
        }
    }

    fn encounter(&mut self, v: &VisitView) {
        let start = local_date_time(&v.scheduled_date, &v.scheduled_time, self.ctx.timezone);
        let reference = self.push(Resource::Encounter(Encounter {
            id: format!("enc-{}", v.id),
            status: "finished",
            class: Coding::new(ACT_CODE, "HH", "home health"),
            kind: vec![CodeableConcept::text(v.appointment_type.as_str())],
            subject: self.subject(),
            participant: vec![EncounterParticipant {
                individual: self.practitioner(v.recorder_id),
            }],
            period: Period {
                start: Some(start),
                end: None,
            },
        }));
        self.provenance(
            "visit",
            "visit",
            v.id,
            v.version,
            &v.updated_at,
            ("performer", "Performer"),
            v.recorder_id,
            vec![reference],
        );
    }

    fn observations(&mut self, r: &HealthRecordView, encounter: Option<Reference>) {
        let effective = local_date_time(&r.visit_date, &r.visit_time, self.ctx.timezone);
        let status = if r.amendment_count > 0 { "amended" } else { "final" };
        let mut targets = Vec::new();
        for (suffix, vital) in vital_signs(r) {
            let observation = Observation {
                id: format!("obs-{}-{suffix}", r.id),
                status,
                category: vec![CodeableConcept::coded(
                    vec![Coding::new(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
                    "Vital Signs",
                )],
                code: vital.code,
                subject: self.subject(),
                encounter: encounter.clone(),
                effective_date_time: effective.clone(),
                performer: vec![self.practitioner(r.recorder_id)],
                value_quantity: vital.value,
                note: vital.note.into_iter().map(|text| Annotation { text }).collect(),
                component: vital.components,
            };
            targets.push(self.push(Resource::Observation(observation)));
        }
        if !targets.is_empty() {
            self.provenance(
                "record",
                "health_record",
                r.id,
                r.version,
                &r.updated_at,
                ("performer", "Performer"),
                r.recorder_id,
                targets,
            );
        }
    }

    fn order(&mut self, o: &MedicalOrderView) {
        let notes: Vec<Annotation> = o.notes.iter().map(|t| Annotation { text: t.clone() }).collect();
        let (resource, prefix) = if o.order_type == OrderType::Medication {
            let text = [o.dosage.as_deref(), o.frequency.as_deref(), o.duration.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let request = MedicationRequest {
                id: format!("medreq-{}", o.id),
                status: match o.status.as_str() {
                    "completed" => "completed",
                    "cancelled" => "cancelled",
                    _ => "active",
                },
                intent: "order",
                medication_codeable_concept: CodeableConcept::text(&o.content),
                subject: self.subject(),
                authored_on: o.created_at.clone(),
                requester: self.practitioner(o.doctor_id),
                note: notes,
                dosage_instruction: if text.is_empty() {
                    Vec::new()
                } else {
                    vec![Dosage {
                        text: Some(text),
                        route: None,
                    }]
                },
            };
            (Resource::MedicationRequest(request), "medreq")
        } else {
            let request = ServiceRequest {
                id: format!("svcreq-{}", o.id),
                status: match o.status.as_str() {
                    "completed" => "completed",
                    "cancelled" => "revoked",
                    _ => "active",
                },
                intent: "order",
                category: vec![CodeableConcept::text(o.order_type.as_str())],
                code: CodeableConcept::text(&o.content),
                subject: self.subject(),
                authored_on: o.created_at.clone(),
                requester: self.practitioner(o.doctor_id),
                note: notes,
            };
            (Resource::ServiceRequest(request), "svcreq")
        };
        let reference = self.push(resource);
        self.provenance(
            prefix,
            "medical_order",
            o.id,
            o.version,
            &o.updated_at,
            ("author", "Author"),
            o.doctor_id,
            vec![reference],
        );
    }

    fn booking(&mut self, b: &BookingView) {
        let start = local_date_time(&b.appointment_date, &b.appointment_time, self.ctx.timezone);
        let mut participant = vec![AppointmentParticipant {
            actor: self.subject(),
            status: "accepted",
        }];
        if let Some(doctor) = &b.doctor_name {
            participant.push(AppointmentParticipant {
                actor: Reference {
                    kind: Some("Practitioner".into()),
                    display: Some(doctor.clone()),
                    ..Default::default()
                },
                status: "accepted",
            });
        }
        let place = [b.hospital_name.as_deref(), b.department_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let reference = self.push(Resource::Appointment(Appointment {
            id: format!("hosp-{}", b.id),
            status: match b.status.as_str() {
                "confirmed" => "booked",
                "completed" => "fulfilled",
                "cancelled" => "cancelled",
                _ => "pending",
            },
            service_type: b
                .department_name
                .as_deref()
                .map(CodeableConcept::text)
                .into_iter()
                .collect(),
            description: (!place.is_empty()).then_some(place),
            // A hospital slot has a time, not a length: the booking is for
            // that instant, so it starts and ends there.
            end: start.clone(),
            start,
            created: b.created_at.clone(),
            participant,
        }));
        self.provenance(
            "booking",
            "hospital_appointment",
            b.id,
            b.version,
            &b.updated_at,
            ("enterer", "Enterer"),
            b.recorder_id,
            vec![reference],
        );
    }
}

/// One vital sign's coded parts.
struct Vital {
    code: CodeableConcept,
    value: Option<Quantity>,
    components: Vec<ObservationComponent>,
    note: Option<String>,
}

fn loinc(code: &str, display: &str) -> Coding {
    Coding::new(LOINC, code, display)
}

fn quantity(value: f64, unit: &str, code: &str) -> Quantity {
    Quantity {
        value,
        unit: unit.into(),
        system: UCUM,
        code: code.into(),
    }
}

fn simple(coding: Vec<Coding>, text: &str, value: Quantity) -> Vital {
    Vital {
        code: CodeableConcept::coded(coding, text),
        value: Some(value),
        components: Vec::new(),
        note: None,
    }
}

/// The record's vital signs as (id suffix, observation parts), in a fixed order.
fn vital_signs(r: &HealthRecordView) -> Vec<(&'static str, Vital)> {
    let v = &r.vital_signs;
    let mut out = Vec::new();
    if let Some(bp) = v.blood_pressure.as_deref().and_then(|t| BloodPressure::parse(t).ok()) {
        let component = |code: &str, display: &str, value: u16| ObservationComponent {
            code: CodeableConcept::coded(vec![loinc(code, display)], display),
            value_quantity: quantity(f64::from(value), "mmHg", "mm[Hg]"),
        };
        out.push((
            "bp",
            Vital {
                code: CodeableConcept::coded(
                    vec![loinc("85354-9", "Blood pressure panel with all children optional")],
                    "Blood pressure",
                ),
                value: None,
                components: vec![
                    component("8480-6", "Systolic blood pressure", bp.systolic),
                    component("8462-4", "Diastolic blood pressure", bp.diastolic),
                ],
                note: None,
            },
        ));
    }
    if let Some(hr) = v.heart_rate {
        out.push((
            "hr",
            simple(
                vec![loinc("8867-4", "Heart rate")],
                "Heart rate",
                quantity(hr as f64, "beats/minute", "/min"),
            ),
        ));
    }
    if let Some(t) = v.temperature {
        out.push((
            "temp",
            simple(
                vec![loinc("8310-5", "Body temperature")],
                "Body temperature",
                quantity(t, "°C", "Cel"),
            ),
        ));
    }
    if let Some(o) = v.blood_oxygen {
        out.push((
            "spo2",
            simple(
                vec![
                    loinc("2708-6", "Oxygen saturation in Arterial blood"),
                    loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
                ],
                "Oxygen saturation",
                quantity(o, "%", "%"),
            ),
        ));
    }
    if let Some(w) = v.weight {
        out.push((
            "weight",
            simple(
                vec![loinc("29463-7", "Body weight")],
                "Body weight",
                quantity(w, "kg", "kg"),
            ),
        ));
    }
    if let Some(g) = v.blood_glucose {
        // carelog records glucose in mmol/L; 2339-0 is a mass concentration,
        // so the value is converted to mg/dL and the measured one kept in a note.
        let mg_dl = (g * GLUCOSE_MG_DL_PER_MMOL_L * 10.0).round() / 10.0;
        let mut vital = simple(
            vec![loinc("2339-0", "Glucose [Mass/volume] in Blood")],
            "Blood glucose",
            quantity(mg_dl, "mg/dL", "mg/dL"),
        );
        vital.note = Some(format!("measured {g} mmol/L"));
        out.push(("glucose", vital));
    }
    out
}

/// A read model's local `YYYY-MM-DD` and `HH:MM` as a FHIR dateTime with the
/// timezone's offset; the date alone if the time cannot be read.
pub fn local_date_time(date: &str, time: &str, tz: Tz) -> String {
    let Ok(d) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
        return date.to_string();
    };
    let Ok(t) = NaiveTime::parse_from_str(time, "%H:%M") else {
        return d.to_string();
    };
    let local = NaiveDateTime::new(d, t);
    match tz.from_local_datetime(&local).earliest() {
        Some(at) => at.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        // A time skipped by a daylight-saving change: read it as UTC.
        None => Utc.from_utc_datetime(&local).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1: &str = "5e1f0c3e-0000-4000-8000-000000000001";

    fn view(erased: bool) -> PatientView {
        PatientView {
            id: P1.parse().unwrap(),
            family_id: "5e1f0c3e-0000-4000-8000-0000000000f1".parse().unwrap(),
            name: if erased {
                domain::ERASED.into()
            } else {
                "王大爷".into()
            },
            gender: domain::values::Gender::Male,
            birth_date: "1949-12-31".into(),
            age: 76,
            id_card: None,
            phone: (!erased).then(|| "13800138000".into()),
            relationship_to_head: "本人".into(),
            medical_history: serde_json::json!([]),
            allergies: None,
            current_medications: serde_json::json!([]),
            service_preferences: serde_json::Value::Null,
            current_subscription: None,
            erased,
            erased_at: erased.then(|| "2026-12-01T00:00:00.000Z".into()),
            created_at: "2026-11-01T00:00:00.000Z".into(),
            updated_at: "2026-11-02T00:00:00.000Z".into(),
            version: 2,
        }
    }

    #[test]
    fn local_times_carry_the_timezones_offset() {
        let tz = chrono_tz::Asia::Shanghai;
        assert_eq!(local_date_time("2026-12-03", "09:30", tz), "2026-12-03T09:30:00+08:00");
        assert_eq!(local_date_time("2026-12-03", "bad", tz), "2026-12-03");
    }

    #[test]
    fn an_erased_patient_exports_no_personal_field() {
        let p = serde_json::to_value(Resource::Patient(patient(&view(true), Some("上海市")))).unwrap();
        assert_eq!(
            p,
            serde_json::json!({"resourceType": "Patient", "id": P1,
                "meta": {"versionId": "2", "lastUpdated": "2026-11-02T00:00:00.000Z"},
                "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{P1}")}],
                "active": false, "gender": "male"})
        );
        let p = serde_json::to_value(Resource::Patient(patient(&view(false), Some("上海市")))).unwrap();
        assert_eq!(p["name"][0]["text"], "王大爷");
        assert_eq!(p["telecom"][0]["use"], "mobile");
        assert_eq!(p["address"][0]["text"], "上海市");
    }
}
