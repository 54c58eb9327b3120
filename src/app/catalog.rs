//! The partner hospitals' catalog (admin): hospitals, their departments and
//! doctors (each active or not), and the slots bookings take places in. A
//! department or doctor is part of its hospital's aggregate, so every change
//! to them is a command on the hospital (and `If-Match` is the hospital's).

use chrono::NaiveDate;
use domain::hospital::{
    DepartmentDetails, DoctorDetails, Hospital, HospitalCommand, HospitalDetails, Slot, SlotCommand, SlotDetails,
};
use domain::ids::{DepartmentId, HospitalDoctorId, HospitalId, SlotId};
use domain::user::Role;
use domain::values::{date, optional_text, text, time, PhoneNumber};
use domain::Validator;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::input::{path_id, required, uuid_field};
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

#[derive(Debug, Deserialize, ToSchema)]
pub struct HospitalInput {
    /// 1 to 200 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// 1 to 255 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 255)]
    pub address: Option<String>,
    pub phone: Option<String>,
    /// e.g. 三级甲等; up to 32 characters.
    #[schema(max_length = 32)]
    pub level: Option<String>,
}

impl HospitalInput {
    /// The hospital's details (400 naming each bad field).
    pub fn parse(&self) -> Result<HospitalDetails, AppError> {
        let r = self;
        let mut v = Validator::new();
        let name = required(&mut v, "name", &r.name).and_then(|n| v.check("name", text(n, 200)));
        let address = required(&mut v, "address", &r.address).and_then(|a| v.check("address", text(a, 255)));
        let phone = r
            .phone
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|ph| v.check("phone", PhoneNumber::parse(ph)));
        let level = v.check("level", optional_text(r.level.as_deref(), 32)).flatten();
        v.finish()?;
        let (Some(name), Some(address)) = (name, address) else {
            return Err(AppError::field("body", "缺少必填字段"));
        };
        Ok(HospitalDetails {
            name,
            address,
            phone: phone.map(|p| p.as_str().to_string()),
            level,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DepartmentInput {
    /// 1 to 100 characters, unique in the hospital.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Up to 1000 characters.
    #[schema(max_length = 1000)]
    pub description: Option<String>,
}

impl DepartmentInput {
    /// The department's details (400 naming each bad field).
    pub fn parse(&self) -> Result<DepartmentDetails, AppError> {
        let mut v = Validator::new();
        let name = required(&mut v, "name", &self.name).and_then(|n| v.check("name", text(n, 100)));
        let description = v
            .check("description", optional_text(self.description.as_deref(), 1000))
            .flatten();
        v.finish()?;
        let name = name.ok_or_else(|| AppError::field("name", "必填"))?;
        Ok(DepartmentDetails { name, description })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct HospitalDoctorInput {
    /// One of the hospital's departments.
    #[schema(required = true, value_type = String, format = Uuid)]
    pub department_id: Option<String>,
    /// 1 to 100 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[schema(max_length = 100)]
    pub title: Option<String>,
    #[schema(max_length = 255)]
    pub specialty: Option<String>,
    /// Yuan, not negative.
    #[schema(value_type = Option<crate::app::input::MoneyInput>)]
    pub consultation_fee: Option<Decimal>,
}

impl HospitalDoctorInput {
    /// The doctor's details (400 naming each bad field).
    pub fn parse(&self) -> Result<DoctorDetails, AppError> {
        let r = self;
        let mut v = Validator::new();
        let raw_dep = required(&mut v, "department_id", &r.department_id);
        let department: Option<DepartmentId> = uuid_field(&mut v, "department_id", raw_dep);
        let name = required(&mut v, "name", &r.name).and_then(|n| v.check("name", text(n, 100)));
        let title = v.check("title", optional_text(r.title.as_deref(), 100)).flatten();
        let specialty = v
            .check("specialty", optional_text(r.specialty.as_deref(), 255))
            .flatten();
        if r.consultation_fee.is_some_and(|f| f < Decimal::ZERO) {
            v.add("consultation_fee", "不能为负数");
        }
        v.finish()?;
        let (Some(department_id), Some(name)) = (department, name) else {
            return Err(AppError::field("body", "缺少必填字段"));
        };
        Ok(DoctorDetails {
            department_id,
            name,
            title,
            specialty,
            consultation_fee: r.consultation_fee,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SlotInput {
    #[schema(required = true, value_type = String, format = Uuid)]
    pub department_id: Option<String>,
    /// One of the department's doctors.
    pub doctor_id: Option<String>,
    /// `YYYY-MM-DD`, not before today.
    #[schema(required = true, value_type = String, format = Date)]
    pub date: Option<String>,
    /// `HH:MM`.
    #[schema(required = true, value_type = String, pattern = "^[0-9]{2}:[0-9]{2}$")]
    pub time: Option<String>,
    /// 1 to 1000 places.
    #[schema(required = true, value_type = i64, minimum = 1, maximum = 1000)]
    pub capacity: Option<i64>,
}

impl SlotInput {
    /// The slot of `hospital` asked for (400 naming each bad field); `today`
    /// bounds its date.
    fn parse(&self, hospital: HospitalId, today: NaiveDate) -> Result<SlotDetails, AppError> {
        let r = self;
        let mut v = Validator::new();
        let raw_dep = required(&mut v, "department_id", &r.department_id);
        let department: Option<DepartmentId> = uuid_field(&mut v, "department_id", raw_dep);
        let doctor: Option<HospitalDoctorId> = uuid_field(&mut v, "doctor_id", r.doctor_id.as_ref());
        let day = required(&mut v, "date", &r.date).and_then(|d| v.check("date", date(d)));
        if day.is_some_and(|d| d < today) {
            v.add("date", "不能早于今天");
        }
        let at = required(&mut v, "time", &r.time).and_then(|t| v.check("time", time(t)));
        let capacity = required(&mut v, "capacity", &r.capacity).and_then(|c| {
            v.check(
                "capacity",
                if (1..=1000).contains(c) {
                    Ok(*c as u32)
                } else {
                    Err("应在1到1000之间".to_string())
                },
            )
        });
        v.finish()?;
        let (Some(department_id), Some(day), Some(at), Some(capacity)) = (department, day, at, capacity) else {
            return Err(AppError::field("body", "缺少必填字段"));
        };
        Ok(SlotDetails {
            hospital_id: hospital,
            department_id,
            doctor_id: doctor,
            date: day,
            time: at,
            capacity,
        })
    }
}

/// What adding a department or a doctor to a hospital answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct HospitalPartAdded {
    /// The new department's or doctor's id.
    pub id: String,
    pub hospital_id: String,
    /// The hospital's version after the command.
    pub version: i64,
}

/// What opening a slot answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotOpened {
    pub id: String,
    pub capacity: u32,
    /// Always 0.
    pub booked: u32,
    pub version: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ActiveInput {
    /// active | inactive
    #[schema(required = true, value_type = String, pattern = "^(active|inactive)$")]
    pub status: Option<String>,
}

impl ActiveInput {
    /// Whether the part becomes active (400 naming `status`).
    pub fn parse(&self) -> Result<bool, AppError> {
        match self.status.as_deref() {
            Some("active") => Ok(true),
            Some("inactive") => Ok(false),
            None => Err(AppError::field("status", "必填")),
            Some(_) => Err(AppError::field("status", "应为active或inactive")),
        }
    }
}

/// What a hospital's status change is about: the hospital, or one of its
/// departments or doctors (by the id in the path).
#[derive(Debug, Clone, Copy)]
pub enum Part<'a> {
    Hospital,
    Department(&'a str),
    Doctor(&'a str),
}

/// Runs an admin's `command` on hospital `id`; the hospital's new version.
async fn on_hospital(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    command: HospitalCommand,
    name: &str,
) -> Result<i64, AppError> {
    p.require(&[Role::Admin])?;
    let hid: HospitalId = path_id(id, "hospital")?;
    Ok(state
        .execute::<Hospital>(&hid.to_string(), command, meta.context(Some(p), name))
        .await?
        .version)
}

/// An admin registers a hospital.
pub async fn register(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    input: &HospitalInput,
) -> Result<crate::app::IdVersion, AppError> {
    p.require(&[Role::Admin])?;
    let details = input.parse()?;
    let id = HospitalId(crate::idempotency::new_id(meta, p)).to_string();
    let ctx = meta.context(Some(p), "RegisterHospital").creating();
    crate::app::id_version::<Hospital>(state, &id, HospitalCommand::Register(details), ctx).await
}

/// An admin adds a department to hospital `id`.
pub async fn add_department(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    input: &DepartmentInput,
) -> Result<HospitalPartAdded, AppError> {
    let details = input.parse()?;
    let dep = DepartmentId(crate::idempotency::new_id(meta, p));
    let command = HospitalCommand::AddDepartment { id: dep, details };
    let version = on_hospital(state, p, meta, id, command, "AddDepartment").await?;
    Ok(HospitalPartAdded {
        id: dep.to_string(),
        hospital_id: id.to_string(),
        version,
    })
}

/// An admin adds a doctor to one of hospital `id`'s departments.
pub async fn add_doctor(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    input: &HospitalDoctorInput,
) -> Result<HospitalPartAdded, AppError> {
    let details = input.parse()?;
    let doc = HospitalDoctorId(crate::idempotency::new_id(meta, p));
    let command = HospitalCommand::AddDoctor { id: doc, details };
    let version = on_hospital(state, p, meta, id, command, "AddHospitalDoctor").await?;
    Ok(HospitalPartAdded {
        id: doc.to_string(),
        hospital_id: id.to_string(),
        version,
    })
}

/// An admin makes hospital `id`, or one of its departments or doctors, active
/// or inactive (inactive ones take no new bookings).
pub async fn set_active(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    part: Part<'_>,
    input: &ActiveInput,
) -> Result<crate::app::StatusChanged, AppError> {
    let active = input.parse()?;
    let (part_id, command, name) = match part {
        Part::Hospital => (
            id.to_string(),
            HospitalCommand::SetActive { active },
            "SetHospitalStatus",
        ),
        Part::Department(dep) => {
            let dep: DepartmentId = path_id(dep, "department")?;
            let command = HospitalCommand::SetDepartmentActive { id: dep, active };
            (dep.to_string(), command, "SetDepartmentStatus")
        }
        Part::Doctor(doc) => {
            let doc: HospitalDoctorId = path_id(doc, "doctor")?;
            let command = HospitalCommand::SetDoctorActive { id: doc, active };
            (doc.to_string(), command, "SetHospitalDoctorStatus")
        }
    };
    let version = on_hospital(state, p, meta, id, command, name).await?;
    Ok(crate::app::StatusChanged {
        id: part_id,
        status: input.status.clone().unwrap_or_default(),
        version,
    })
}

/// An admin opens a slot of hospital `id`: a department's (and maybe one
/// doctor's) places at a date and time.
pub async fn open_slot(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    input: &SlotInput,
) -> Result<SlotOpened, AppError> {
    p.require(&[Role::Admin])?;
    let hid: HospitalId = path_id(id, "hospital")?;
    let details = input.parse(hid, state.today())?;
    let (hospital, _) = state
        .store
        .load::<Hospital>(&hid.to_string())
        .await?
        .ok_or(AppError::NotFound("hospital"))?;
    if !hospital.departments.contains_key(&details.department_id) {
        return Err(AppError::field("department_id", "科室不存在"));
    }
    if let Some(d) = details.doctor_id {
        match hospital.doctors.get(&d) {
            Some((dep, _)) if *dep == details.department_id => {}
            _ => return Err(AppError::field("doctor_id", "医生不存在或不属于该科室")),
        }
    }
    let capacity = details.capacity;
    let sid = SlotId(crate::idempotency::new_id(meta, p));
    let committed = state
        .execute::<Slot>(
            &sid.to_string(),
            SlotCommand::Open(details),
            meta.context(Some(p), "OpenSlot").creating(),
        )
        .await?;
    Ok(SlotOpened {
        id: sid.to_string(),
        capacity,
        booked: 0,
        version: committed.version,
    })
}
