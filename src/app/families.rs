//! Households and their patients (admin): registering and correcting them.

use domain::family::{Family, FamilyChanges, FamilyCommand, FamilyDetails};
use domain::ids::{FamilyId, PatientId};
use domain::medication::{parse_medications, Medication};
use domain::patient::{Patient, PatientChanges, PatientCommand, PatientDetails};
use domain::user::Role;
use domain::values::{date, optional_text, text, Gender, PhoneNumber, ResidentId};
use domain::Validator;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::input::path_id;
use crate::app::{id_version, IdVersion};
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

/// Body of `POST /families` and `PATCH /families/{id}` (all optional on PATCH).
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct FamilyInput {
    /// Required on POST; 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub family_name: Option<String>,
    /// Required on POST; 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    pub primary_address: Option<String>,
    #[schema(max_length = 255)]
    pub secondary_address: Option<String>,
    /// Required on POST; a mobile or landline number.
    pub contact_phone: Option<String>,
    #[schema(max_length = 100)]
    pub emergency_contact: Option<String>,
    pub emergency_phone: Option<String>,
    /// The home's latitude (with `home_lng`), -90 to 90.
    #[schema(minimum = -90, maximum = 90)]
    pub home_lat: Option<f64>,
    /// The home's longitude (with `home_lat`), -180 to 180.
    #[schema(minimum = -180, maximum = 180)]
    pub home_lng: Option<f64>,
}

fn parse_family_changes(r: &FamilyInput) -> Result<FamilyChanges, AppError> {
    let mut v = Validator::new();
    let opt_phone = |v: &mut Validator, field: &str, raw: &Option<String>| {
        raw.as_deref().and_then(|p| v.check(field, PhoneNumber::parse(p)))
    };
    let changes = FamilyChanges {
        family_name: r
            .family_name
            .as_deref()
            .and_then(|s| v.check("family_name", text(s, 100))),
        primary_address: r
            .primary_address
            .as_deref()
            .and_then(|s| v.check("primary_address", text(s, 255))),
        secondary_address: v
            .check("secondary_address", optional_text(r.secondary_address.as_deref(), 255))
            .flatten(),
        contact_phone: opt_phone(&mut v, "contact_phone", &r.contact_phone),
        emergency_contact: v
            .check("emergency_contact", optional_text(r.emergency_contact.as_deref(), 100))
            .flatten(),
        emergency_phone: match r.emergency_phone.as_deref() {
            None | Some("") => None,
            Some(_) => opt_phone(&mut v, "emergency_phone", &r.emergency_phone),
        },
        home_lat: r.home_lat.and_then(|x| v.check("home_lat", range(x, -90.0, 90.0))),
        home_lng: r.home_lng.and_then(|x| v.check("home_lng", range(x, -180.0, 180.0))),
    };
    if r.home_lat.is_some() != r.home_lng.is_some() {
        v.add(
            if r.home_lat.is_some() { "home_lng" } else { "home_lat" },
            "home_lat与home_lng须同时提供",
        );
    }
    v.finish()?;
    Ok(changes)
}

fn range(x: f64, lo: f64, hi: f64) -> Result<f64, String> {
    if x.is_finite() && (lo..=hi).contains(&x) {
        Ok(x)
    } else {
        Err(format!("应在{lo}到{hi}之间"))
    }
}

/// Body of `POST /families/{id}/patients` and `PATCH /patients/{id}` (all
/// optional on PATCH).
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct PatientInput {
    /// Required on POST; 1 to 50 characters.
    #[schema(min_length = 1, max_length = 50)]
    pub name: Option<String>,
    /// Required on POST.
    #[schema(pattern = "^(male|female)$")]
    pub gender: Option<String>,
    /// Required on POST; `YYYY-MM-DD`, not after today.
    #[schema(format = Date)]
    pub birth_date: Option<String>,
    /// An 18-character resident ID (GB 11643 checksum); empty: none.
    #[schema(max_length = 18)]
    pub id_card: Option<String>,
    pub phone: Option<String>,
    /// Required on POST; 1 to 50 characters.
    #[schema(min_length = 1, max_length = 50)]
    pub relationship_to_head: Option<String>,
    /// Up to 100 items of up to 200 characters.
    #[schema(max_items = 100)]
    pub medical_history: Option<Vec<String>>,
    /// Up to 1000 characters.
    #[schema(max_length = 1000)]
    pub allergies: Option<String>,
    /// Up to 100 items, each free text (up to 200 characters) or
    /// `{name, dosage?, frequency?, route?}`; each is read back as it was sent.
    #[schema(max_items = 100, value_type = Option<Vec<projections::families::MedicationEntry>>)]
    pub current_medications: Option<Vec<Medication>>,
    /// An object of the family's own choosing.
    #[schema(value_type = Option<Object>)]
    pub service_preferences: Option<Value>,
}

fn string_list(v: &mut Validator, field: &str, items: &Option<Vec<String>>) -> Option<Vec<String>> {
    let items = items.as_ref()?;
    if items.len() > 100 {
        v.add(field, "不能超过100项");
        return None;
    }
    let cleaned: Vec<String> = items
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if cleaned.iter().any(|s| s.chars().count() > 200) {
        v.add(field, "每项不能超过200个字符");
        return None;
    }
    Some(cleaned)
}

/// No patient alive was born earlier.
const EARLIEST_BIRTH_DATE: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => chrono::NaiveDate::MIN,
};

fn parse_patient_changes(r: &PatientInput, today: chrono::NaiveDate) -> Result<PatientChanges, AppError> {
    let mut v = Validator::new();
    let birth_date = r.birth_date.as_deref().and_then(|d| v.check("birth_date", date(d)));
    if birth_date.is_some_and(|d| d > today) {
        v.add("birth_date", "不能晚于今天");
    }
    if birth_date.is_some_and(|d| d < EARLIEST_BIRTH_DATE) {
        v.add("birth_date", "不能早于1900-01-01");
    }
    if r.service_preferences.as_ref().is_some_and(|p| !p.is_object()) {
        v.add("service_preferences", "应为对象");
    }
    let changes = PatientChanges {
        name: r.name.as_deref().and_then(|s| v.check("name", text(s, 50))),
        gender: r.gender.as_deref().and_then(|g| v.check("gender", Gender::parse(g))),
        birth_date,
        id_card: match r.id_card.as_deref() {
            None | Some("") => None,
            Some(id) => v.check("id_card", ResidentId::parse(id)),
        },
        phone: match r.phone.as_deref() {
            None | Some("") => None,
            Some(ph) => v.check("phone", PhoneNumber::parse(ph)),
        },
        relationship_to_head: r
            .relationship_to_head
            .as_deref()
            .and_then(|s| v.check("relationship_to_head", text(s, 50))),
        medical_history: string_list(&mut v, "medical_history", &r.medical_history),
        current_medications: r
            .current_medications
            .clone()
            .and_then(|items| parse_medications("current_medications", items, &mut v)),
        allergies: v
            .check("allergies", optional_text(r.allergies.as_deref(), 1000))
            .flatten(),
        service_preferences: r.service_preferences.clone().filter(Value::is_object),
    };
    v.finish()?;
    Ok(changes)
}

/// An admin registers a household.
pub async fn create_family(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    input: &FamilyInput,
) -> Result<IdVersion, AppError> {
    p.require(&[Role::Admin])?;
    let c = parse_family_changes(input)?;
    let mut v = Validator::new();
    for (field, present) in [
        ("family_name", input.family_name.is_some()),
        ("primary_address", input.primary_address.is_some()),
        ("contact_phone", input.contact_phone.is_some()),
    ] {
        if !present {
            v.add(field, "必填");
        }
    }
    v.finish()?;
    let (Some(family_name), Some(primary_address), Some(contact_phone)) =
        (c.family_name, c.primary_address, c.contact_phone)
    else {
        return Err(AppError::field("body", "缺少必填字段"));
    };
    let details = FamilyDetails {
        family_name,
        primary_address,
        contact_phone,
        secondary_address: c.secondary_address,
        emergency_contact: c.emergency_contact,
        emergency_phone: c.emergency_phone,
        home_lat: c.home_lat,
        home_lng: c.home_lng,
    };
    let id = FamilyId(crate::idempotency::new_id(meta, p)).to_string();
    let ctx = meta.context(Some(p), "CreateFamily").creating();
    id_version::<Family>(state, &id, FamilyCommand::Create(details), ctx).await
}

/// An admin corrects a household's details.
pub async fn update_family(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    input: &FamilyInput,
) -> Result<IdVersion, AppError> {
    p.require(&[Role::Admin])?;
    let fid: FamilyId = path_id(id, "family")?;
    let changes = parse_family_changes(input)?;
    let ctx = meta.context(Some(p), "UpdateFamily");
    id_version::<Family>(state, &fid.to_string(), FamilyCommand::Update(changes), ctx).await
}

/// An admin registers a patient of household `id`.
pub async fn register_patient(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    input: &PatientInput,
) -> Result<IdVersion, AppError> {
    p.require(&[Role::Admin])?;
    let fid: FamilyId = path_id(id, "family")?;
    let c = parse_patient_changes(input, state.today())?;
    let mut v = Validator::new();
    for (field, present) in [
        ("name", c.name.is_some()),
        ("gender", c.gender.is_some()),
        ("birth_date", c.birth_date.is_some()),
        ("relationship_to_head", c.relationship_to_head.is_some()),
    ] {
        if !present {
            v.add(field, "必填");
        }
    }
    v.finish()?;
    if state.store.load::<Family>(&fid.to_string()).await?.is_none() {
        return Err(AppError::NotFound("family"));
    }
    let (Some(name), Some(gender), Some(birth_date), Some(relationship_to_head)) =
        (c.name, c.gender, c.birth_date, c.relationship_to_head)
    else {
        return Err(AppError::field("body", "缺少必填字段"));
    };
    let details = PatientDetails {
        name,
        gender,
        birth_date,
        relationship_to_head,
        medical_history: c.medical_history.unwrap_or_default(),
        current_medications: c.current_medications.unwrap_or_default(),
        id_card: c.id_card,
        phone: c.phone,
        allergies: c.allergies,
        service_preferences: c.service_preferences,
    };
    let pid = PatientId(crate::idempotency::new_id(meta, p)).to_string();
    let command = PatientCommand::Register {
        family_id: fid,
        details,
    };
    id_version::<Patient>(
        state,
        &pid,
        command,
        meta.context(Some(p), "RegisterPatient").creating(),
    )
    .await
}

/// An admin corrects patient `id`'s details.
pub async fn update_patient(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    input: &PatientInput,
) -> Result<IdVersion, AppError> {
    p.require(&[Role::Admin])?;
    let pid: PatientId = path_id(id, "patient")?;
    let changes = parse_patient_changes(input, state.today())?;
    let ctx = meta.context(Some(p), "UpdatePatient");
    id_version::<Patient>(state, &pid.to_string(), PatientCommand::Update(changes), ctx).await
}
