//! The FHIR R4 (4.0.1) resources and data types carelog exports, as typed
//! serde structs holding only the elements it fills.
//!
//! Why not a FHIR model crate: `fhir-model` (fhir-sdk) models R4B, R5 and STU3
//! but not R4; `fhirbolt` models R4 but is an experimental crate unchanged
//! since 2023 whose generated models are about 1.5 million lines, and the
//! `fhir` crate (R4 among others) is as large and has broken its API across
//! several major versions within months. Compiling either would cost minutes
//! on every clean build for the ten resources we write. These structs follow
//! the R4 element names and cardinalities exactly (a `Vec` is `0..*`, an
//! `Option` `0..1`, a bare field `1..1`), empty elements are never written
//! (FHIR forbids `[]`, `{}` and `null`), and every export is checked by an
//! independent validator in the tests (`scripts/fhir_validate.py`).

use serde::Serialize;

/// `Bundle` of type `collection`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub resource_type: &'static str,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<BundleEntry>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    pub full_url: String,
    pub resource: Resource,
}

#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
}

/// Every resource type carelog exports; serialized with its `resourceType`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "resourceType")]
#[allow(clippy::large_enum_variant)]
pub enum Resource {
    Patient(Patient),
    Encounter(Encounter),
    Observation(Observation),
    MedicationStatement(MedicationStatement),
    MedicationRequest(MedicationRequest),
    ServiceRequest(ServiceRequest),
    Appointment(Appointment),
    Provenance(Provenance),
}

impl Resource {
    pub fn type_name(&self) -> &'static str {
        match self {
            Resource::Patient(_) => "Patient",
            Resource::Encounter(_) => "Encounter",
            Resource::Observation(_) => "Observation",
            Resource::MedicationStatement(_) => "MedicationStatement",
            Resource::MedicationRequest(_) => "MedicationRequest",
            Resource::ServiceRequest(_) => "ServiceRequest",
            Resource::Appointment(_) => "Appointment",
            Resource::Provenance(_) => "Provenance",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Resource::Patient(r) => &r.id,
            Resource::Encounter(r) => &r.id,
            Resource::Observation(r) => &r.id,
            Resource::MedicationStatement(r) => &r.id,
            Resource::MedicationRequest(r) => &r.id,
            Resource::ServiceRequest(r) => &r.id,
            Resource::Appointment(r) => &r.id,
            Resource::Provenance(r) => &r.id,
        }
    }

    /// `Type/id`, how other resources of the export refer to this one.
    pub fn reference(&self) -> Reference {
        Reference::to(self.type_name(), self.id())
    }
}

// ---- data types ----

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Coding {
    pub system: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Coding {
    pub fn new(system: &str, code: &str, display: &str) -> Self {
        Coding {
            system: system.into(),
            code: code.into(),
            display: Some(display.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct CodeableConcept {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CodeableConcept {
    pub fn coded(coding: Vec<Coding>, text: &str) -> Self {
        CodeableConcept {
            coding,
            text: Some(text.into()),
        }
    }
    pub fn text(text: &str) -> Self {
        CodeableConcept {
            coding: Vec::new(),
            text: Some(text.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Identifier {
    pub system: String,
    pub value: String,
}

/// A literal reference (`Type/id`), a logical one (`type` + `identifier`),
/// or a display only.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Reference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Reference {
    pub fn to(kind: &str, id: &str) -> Self {
        Reference {
            reference: Some(format!("{kind}/{id}")),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Quantity {
    pub value: f64,
    pub unit: String,
    pub system: &'static str,
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HumanName {
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContactPoint {
    pub system: &'static str,
    pub value: String,
    #[serde(rename = "use")]
    pub purpose: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Address {
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Annotation {
    pub text: String,
}

/// R4 `Dosage`: carelog knows dosage, frequency and route as free text.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Dosage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<CodeableConcept>,
}

// ---- resources ----

#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    pub id: String,
    pub meta: Meta,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    pub active: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Encounter {
    pub id: String,
    pub status: &'static str,
    pub class: Coding,
    #[serde(rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<CodeableConcept>,
    pub subject: Reference,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub participant: Vec<EncounterParticipant>,
    pub period: Period,
}

#[derive(Debug, Clone, Serialize)]
pub struct EncounterParticipant {
    pub individual: Reference,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub id: String,
    pub status: &'static str,
    pub category: Vec<CodeableConcept>,
    pub code: CodeableConcept,
    pub subject: Reference,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    pub effective_date_time: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub performer: Vec<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_quantity: Option<Quantity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<Annotation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub component: Vec<ObservationComponent>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationComponent {
    pub code: CodeableConcept,
    pub value_quantity: Quantity,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicationStatement {
    pub id: String,
    pub status: &'static str,
    pub medication_codeable_concept: CodeableConcept,
    pub subject: Reference,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dosage: Vec<Dosage>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicationRequest {
    pub id: String,
    pub status: &'static str,
    pub intent: &'static str,
    pub medication_codeable_concept: CodeableConcept,
    pub subject: Reference,
    pub authored_on: String,
    pub requester: Reference,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<Annotation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dosage_instruction: Vec<Dosage>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRequest {
    pub id: String,
    pub status: &'static str,
    pub intent: &'static str,
    pub category: Vec<CodeableConcept>,
    pub code: CodeableConcept,
    pub subject: Reference,
    pub authored_on: String,
    pub requester: Reference,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<Annotation>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    pub id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_type: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub start: String,
    pub end: String,
    pub created: String,
    pub participant: Vec<AppointmentParticipant>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppointmentParticipant {
    pub actor: Reference,
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    pub id: String,
    pub target: Vec<Reference>,
    pub recorded: String,
    pub agent: Vec<ProvenanceAgent>,
    pub entity: Vec<ProvenanceEntity>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceAgent {
    #[serde(rename = "type")]
    pub kind: CodeableConcept,
    pub who: Reference,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProvenanceEntity {
    pub role: &'static str,
    pub what: Reference,
}
