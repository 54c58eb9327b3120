//! Partner hospitals (catalog and slots) and hospital bookings.

use async_trait::async_trait;
use chrono::NaiveDate;
use domain::booking::{BookingEvent, BookingStatus};
use domain::hospital::{HospitalEvent, HospitalStatus, SlotEvent};
use domain::ids::{DepartmentId, HospitalBookingId, HospitalDoctorId, HospitalId, PatientId, SlotId, UserId};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::page::{ListQuery, Page, PageParams, Where};
use crate::projector::{erase_rows, erased_patient, ProjectionError, Projector, StoredEvent};
use crate::store::{hhmm, like_pattern, ReadStore, RowExt};
use crate::subscriptions::{assigned_params, assigned_sql};

pub struct HospitalsProjector;

#[async_trait]
impl Projector for HospitalsProjector {
    fn name(&self) -> &'static str {
        "hospitals"
    }
    fn tables(&self) -> &'static [&'static str] {
        &[
            "hospital_appointments",
            "hospital_slots",
            "hospital_doctors",
            "hospital_departments",
            "hospitals",
        ]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        if let Some(patient) = erased_patient(e) {
            return erase_rows(c, patient, &[
                "UPDATE hospital_appointments SET notes = NULL, result_notes = NULL, cancel_reason = NULL WHERE patient_id = ?",
            ])
            .await;
        }
        let id = e.aggregate_id.as_str();
        let at = e.at();
        match e.aggregate_type.as_str() {
            "hospital" => {
                match e.decode::<HospitalEvent>()? {
                    HospitalEvent::HospitalRegistered(d) => {
                        sqlx::query(
                            "INSERT INTO hospitals (id, name, address, phone, level, status, created_at, updated_at, version)
                             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        )
                        .bind(id)
                        .bind(&d.name)
                        .bind(&d.address)
                        .bind(&d.phone)
                        .bind(&d.level)
                        .bind(HospitalStatus::Active.as_str())
                        .bind(&at)
                        .bind(&at)
                        .bind(e.sequence)
                        .execute(&mut *c)
                        .await?;
                        return Ok(());
                    }
                    event @ (HospitalEvent::HospitalActivated | HospitalEvent::HospitalDeactivated) => {
                        let status = if event == HospitalEvent::HospitalActivated {
                            HospitalStatus::Active
                        } else {
                            HospitalStatus::Inactive
                        };
                        sqlx::query("UPDATE hospitals SET status = ? WHERE id = ?")
                            .bind(status.as_str())
                            .bind(id)
                            .execute(&mut *c)
                            .await?;
                    }
                    HospitalEvent::DepartmentAdded { id: dep, details } => {
                        sqlx::query(
                            "INSERT INTO hospital_departments (id, hospital_id, name, description, active, created_at)
                             VALUES (?, ?, ?, ?, 1, ?)",
                        )
                        .bind(dep.to_string())
                        .bind(id)
                        .bind(&details.name)
                        .bind(&details.description)
                        .bind(&at)
                        .execute(&mut *c)
                        .await?;
                    }
                    HospitalEvent::DepartmentActivityChanged { id: dep, active } => {
                        sqlx::query("UPDATE hospital_departments SET active = ? WHERE id = ?")
                            .bind(i64::from(active))
                            .bind(dep.to_string())
                            .execute(&mut *c)
                            .await?;
                    }
                    HospitalEvent::HospitalDoctorAdded { id: doc, details } => {
                        sqlx::query(
                            "INSERT INTO hospital_doctors (id, hospital_id, department_id, name, title, specialty,
                                consultation_fee, active, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
                        )
                        .bind(doc.to_string())
                        .bind(id)
                        .bind(details.department_id.to_string())
                        .bind(&details.name)
                        .bind(&details.title)
                        .bind(&details.specialty)
                        .bind(details.consultation_fee.map(|f| f.to_string()))
                        .bind(&at)
                        .execute(&mut *c)
                        .await?;
                    }
                    HospitalEvent::HospitalDoctorActivityChanged { id: doc, active } => {
                        sqlx::query("UPDATE hospital_doctors SET active = ? WHERE id = ?")
                            .bind(i64::from(active))
                            .bind(doc.to_string())
                            .execute(&mut *c)
                            .await?;
                    }
                }
                sqlx::query("UPDATE hospitals SET updated_at = ?, version = ? WHERE id = ?")
                    .bind(&at)
                    .bind(e.sequence)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
            }
            "hospital_slot" => {
                let delta = match e.decode::<SlotEvent>()? {
                    SlotEvent::SlotOpened(d) => {
                        sqlx::query(
                            "INSERT INTO hospital_slots (id, hospital_id, department_id, doctor_id, date, time, capacity, booked,
                                created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                        )
                        .bind(id)
                        .bind(d.hospital_id.to_string())
                        .bind(d.department_id.to_string())
                        .bind(d.doctor_id.map(|x| x.to_string()))
                        .bind(d.date.to_string())
                        .bind(hhmm(d.time))
                        .bind(i64::from(d.capacity))
                        .bind(&at)
                        .bind(&at)
                        .bind(e.sequence)
                        .execute(&mut *c)
                        .await?;
                        return Ok(());
                    }
                    SlotEvent::SlotPlaceBooked { .. } => 1,
                    SlotEvent::SlotPlaceReleased { .. } => -1,
                };
                sqlx::query("UPDATE hospital_slots SET booked = booked + ?, updated_at = ?, version = ? WHERE id = ?")
                    .bind(delta)
                    .bind(&at)
                    .bind(e.sequence)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
            }
            "hospital_appointment" => {
                let (status, column, value): (&str, &str, Option<String>) = match e.decode::<BookingEvent>()? {
                    BookingEvent::HospitalBookingRequested(d) => {
                        sqlx::query(
                            "INSERT INTO hospital_appointments (id, slot_id, patient_id, hospital_id, department_id, doctor_id,
                                appointment_date, appointment_time, notes, recorder_id, status, created_at, updated_at, version)
                             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                        )
                        .bind(id)
                        .bind(d.slot_id.to_string())
                        .bind(d.patient_id.to_string())
                        .bind(d.hospital_id.to_string())
                        .bind(d.department_id.to_string())
                        .bind(d.doctor_id.map(|x| x.to_string()))
                        .bind(d.appointment_date.to_string())
                        .bind(hhmm(d.appointment_time))
                        .bind(&d.notes)
                        .bind(d.recorder_id.to_string())
                        .bind(&at)
                        .bind(&at)
                        .bind(e.sequence)
                        .execute(&mut *c)
                        .await?;
                        return Ok(());
                    }
                    BookingEvent::HospitalBookingConfirmed {
                        appointment_number,
                        fee,
                        ..
                    } => {
                        sqlx::query("UPDATE hospital_appointments SET fee = ? WHERE id = ?")
                            .bind(fee.map(|f| f.to_string()))
                            .bind(id)
                            .execute(&mut *c)
                            .await?;
                        ("confirmed", "appointment_number", Some(appointment_number))
                    }
                    BookingEvent::HospitalBookingCompleted { result_notes } => {
                        ("completed", "result_notes", Some(result_notes))
                    }
                    BookingEvent::HospitalBookingCancelled { reason } => ("cancelled", "cancel_reason", reason),
                };
                sqlx::query(&format!(
                    "UPDATE hospital_appointments SET status = ?, {column} = ?, updated_at = ?, version = ? WHERE id = ?"
                ))
                .bind(status)
                .bind(value)
                .bind(&at)
                .bind(e.sequence)
                .bind(id)
                .execute(&mut *c)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DepartmentAvailability {
    #[schema(value_type = String, format = Uuid)]
    pub id: DepartmentId,
    pub name: String,
    /// Has a slot from today on with a free place.
    pub available: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HospitalSearchItem {
    #[schema(value_type = String, format = Uuid)]
    pub id: HospitalId,
    pub name: String,
    pub address: String,
    pub level: Option<String>,
    pub phone: Option<String>,
    pub departments: Vec<DepartmentAvailability>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HospitalDoctorView {
    #[schema(value_type = String, format = Uuid)]
    pub id: HospitalDoctorId,
    #[schema(value_type = String, format = Uuid)]
    pub department_id: DepartmentId,
    pub name: String,
    pub title: Option<String>,
    pub specialty: Option<String>,
    pub consultation_fee: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DepartmentView {
    #[schema(value_type = String, format = Uuid)]
    pub id: DepartmentId,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HospitalView {
    #[schema(value_type = String, format = Uuid)]
    pub id: HospitalId,
    pub name: String,
    pub address: String,
    pub phone: Option<String>,
    pub level: Option<String>,
    /// active | inactive (cooperation status)
    #[schema(value_type = String)]
    pub status: HospitalStatus,
    pub departments: Vec<DepartmentView>,
    pub doctors: Vec<HospitalDoctorView>,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlotView {
    #[schema(value_type = String, format = Uuid)]
    pub id: SlotId,
    #[schema(value_type = String, format = Uuid)]
    pub hospital_id: HospitalId,
    #[schema(value_type = String, format = Uuid)]
    pub department_id: DepartmentId,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub doctor_id: Option<HospitalDoctorId>,
    pub date: String,
    pub time: String,
    pub capacity: i64,
    pub booked: i64,
    pub version: i64,
}

fn slot_view(r: &AnyRow) -> Result<SlotView, sqlx::Error> {
    Ok(SlotView {
        id: r.id("id")?,
        hospital_id: r.id("hospital_id")?,
        department_id: r.id("department_id")?,
        doctor_id: r.opt_id("doctor_id")?,
        date: r.text("date")?,
        time: r.text("time")?,
        capacity: r.int("capacity")?,
        booked: r.int("booked")?,
        version: r.int("version")?,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BookingView {
    #[schema(value_type = String, format = Uuid)]
    pub id: HospitalBookingId,
    #[schema(value_type = String, format = Uuid)]
    pub slot_id: SlotId,
    #[schema(value_type = String, format = Uuid)]
    pub patient_id: PatientId,
    pub patient_name: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub hospital_id: HospitalId,
    pub hospital_name: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub department_id: DepartmentId,
    pub department_name: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub doctor_id: Option<HospitalDoctorId>,
    pub doctor_name: Option<String>,
    pub appointment_date: String,
    pub appointment_time: String,
    pub notes: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub recorder_id: UserId,
    #[schema(value_type = String)]
    pub status: BookingStatus,
    pub appointment_number: Option<String>,
    pub fee: Option<String>,
    pub result_notes: Option<String>,
    pub cancel_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

const BOOKING_SELECT: &str = "SELECT b.*, p.name AS patient_name, h.name AS hospital_name, d.name AS department_name,
        doc.name AS doctor_name
    FROM hospital_appointments b
    LEFT JOIN patients p ON p.id = b.patient_id
    LEFT JOIN hospitals h ON h.id = b.hospital_id
    LEFT JOIN hospital_departments d ON d.id = b.department_id
    LEFT JOIN hospital_doctors doc ON doc.id = b.doctor_id";

fn booking_view(r: &AnyRow) -> Result<BookingView, sqlx::Error> {
    Ok(BookingView {
        id: r.id("id")?,
        slot_id: r.id("slot_id")?,
        patient_id: r.id("patient_id")?,
        patient_name: r.opt_text("patient_name")?,
        hospital_id: r.id("hospital_id")?,
        hospital_name: r.opt_text("hospital_name")?,
        department_id: r.id("department_id")?,
        department_name: r.opt_text("department_name")?,
        doctor_id: r.opt_id("doctor_id")?,
        doctor_name: r.opt_text("doctor_name")?,
        appointment_date: r.text("appointment_date")?,
        appointment_time: r.text("appointment_time")?,
        notes: r.opt_text("notes")?,
        recorder_id: r.id("recorder_id")?,
        status: r.status("status")?,
        appointment_number: r.opt_text("appointment_number")?,
        fee: r.opt_text("fee")?,
        result_notes: r.opt_text("result_notes")?,
        cancel_reason: r.opt_text("cancel_reason")?,
        created_at: r.text("created_at")?,
        updated_at: r.text("updated_at")?,
        version: r.int("version")?,
    })
}

/// Filters of the booking lists.
#[derive(Debug, Clone, Default)]
pub struct BookingFilter {
    pub patient: Option<PatientId>,
    /// Bookings of the patients assigned to this recorder today, whoever booked them.
    pub recorder: Option<UserId>,
    pub slot: Option<SlotId>,
    /// Only patients linked to this doctor by a request or an order.
    pub doctor: Option<UserId>,
    pub status: Option<BookingStatus>,
}

impl ReadStore {
    /// The partner hospitals read model (catalog, slots, bookings).
    pub fn hospitals(&self) -> Hospitals<'_> {
        Hospitals(self)
    }
}

/// Queries of the partner hospitals read model.
#[derive(Clone, Copy)]
pub struct Hospitals<'a>(&'a ReadStore);

impl Hospitals<'_> {
    /// Active hospitals matching `search` (name or address) with their active
    /// departments (only those matching `department`, when given).
    pub async fn search(
        self,
        search: Option<&str>,
        department: Option<&str>,
        today: NaiveDate,
    ) -> Result<Vec<HospitalSearchItem>, sqlx::Error> {
        let s = search.map(like_pattern);
        let d = department.map(like_pattern);
        let mut filter = Where::new().and("h.status = 'active'", []);
        if let Some(s) = &s {
            filter = filter.and(
                "(h.name LIKE ? ESCAPE '!' OR h.address LIKE ? ESCAPE '!')",
                [s.into(), s.into()],
            );
        }
        if let Some(d) = &d {
            filter = filter.and(
                "EXISTS (SELECT 1 FROM hospital_departments d
                    WHERE d.hospital_id = h.id AND d.active = 1 AND d.name LIKE ? ESCAPE '!')",
                [d.into()],
            );
        }
        let hospitals = self
            .0
            .rows(
                "SELECT h.* FROM hospitals h",
                &filter,
                "ORDER BY h.name, h.id LIMIT 200",
                |r| Ok(r.clone()),
            )
            .await?;
        let mut out = Vec::with_capacity(hospitals.len());
        for h in &hospitals {
            let hid: HospitalId = h.id("id")?;
            let filter = Where::new()
                .and("d.hospital_id = ? AND d.active = 1", [hid.to_string().into()])
                .and_eq("d.name LIKE ? ESCAPE '!'", d.as_ref());
            // The open-slot count's date comes first in the SQL: a date's text
            // form is only digits and dashes, so it is written in.
            let select = format!(
                "SELECT d.id, d.name,
                    (SELECT COUNT(*) FROM hospital_slots s
                      LEFT JOIN hospital_doctors doc ON doc.id = s.doctor_id
                      WHERE s.department_id = d.id AND s.date >= '{today}' AND s.booked < s.capacity
                        AND (s.doctor_id IS NULL OR doc.active = 1)) AS open_slots
                 FROM hospital_departments d"
            );
            let deps = self
                .0
                .rows(&select, &filter, "ORDER BY d.name, d.id", |r| Ok(r.clone()))
                .await?;
            let departments = deps
                .iter()
                .map(|r| {
                    Ok(DepartmentAvailability {
                        id: r.id("id")?,
                        name: r.text("name")?,
                        available: r.int("open_slots")? > 0,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?;
            out.push(HospitalSearchItem {
                id: hid,
                name: h.text("name")?,
                address: h.text("address")?,
                level: h.opt_text("level")?,
                phone: h.opt_text("phone")?,
                departments,
            });
        }
        Ok(out)
    }

    pub async fn get(self, id: HospitalId) -> Result<Option<HospitalView>, sqlx::Error> {
        let id = id.to_string();
        let Some(h) = sqlx::query("SELECT * FROM hospitals WHERE id = ?")
            .bind(&id)
            .fetch_optional(self.0.pool())
            .await?
        else {
            return Ok(None);
        };
        let deps = sqlx::query("SELECT * FROM hospital_departments WHERE hospital_id = ? ORDER BY name, id")
            .bind(&id)
            .fetch_all(self.0.pool())
            .await?;
        let docs = sqlx::query("SELECT * FROM hospital_doctors WHERE hospital_id = ? ORDER BY name, id")
            .bind(&id)
            .fetch_all(self.0.pool())
            .await?;
        Ok(Some(HospitalView {
            id: h.id("id")?,
            name: h.text("name")?,
            address: h.text("address")?,
            phone: h.opt_text("phone")?,
            level: h.opt_text("level")?,
            status: h.status("status")?,
            version: h.int("version")?,
            departments: deps
                .iter()
                .map(|r| {
                    Ok(DepartmentView {
                        id: r.id("id")?,
                        name: r.text("name")?,
                        description: r.opt_text("description")?,
                        active: r.int("active")? != 0,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?,
            doctors: docs
                .iter()
                .map(|r| {
                    Ok(HospitalDoctorView {
                        id: r.id("id")?,
                        department_id: r.id("department_id")?,
                        name: r.text("name")?,
                        title: r.opt_text("title")?,
                        specialty: r.opt_text("specialty")?,
                        consultation_fee: r.opt_text("consultation_fee")?,
                        active: r.int("active")? != 0,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?,
        }))
    }

    /// A hospital's slots, optionally of one department and date, by date and time.
    pub async fn slots(
        self,
        hospital: HospitalId,
        department: Option<DepartmentId>,
        date: Option<NaiveDate>,
    ) -> Result<Vec<SlotView>, sqlx::Error> {
        let filter = Where::new()
            .and("hospital_id = ?", [hospital.to_string().into()])
            .and_eq("department_id = ?", department.map(|d| d.to_string()))
            .and_eq("date = ?", date);
        self.0
            .rows(
                "SELECT * FROM hospital_slots",
                &filter,
                "ORDER BY date, time, id LIMIT 500",
                slot_view,
            )
            .await
    }

    /// Slots matching a booking request, those with room first.
    pub async fn matching_slots(
        self,
        hospital: HospitalId,
        department: DepartmentId,
        doctor: Option<HospitalDoctorId>,
        date: NaiveDate,
        time: &str,
    ) -> Result<Vec<SlotView>, sqlx::Error> {
        let filter = Where::new()
            .and(
                "hospital_id = ? AND department_id = ? AND date = ? AND time = ?",
                [
                    hospital.to_string().into(),
                    department.to_string().into(),
                    date.into(),
                    time.into(),
                ],
            )
            .and_eq("doctor_id = ?", doctor.map(|d| d.to_string()));
        self.0
            .rows(
                "SELECT * FROM hospital_slots",
                &filter,
                "ORDER BY (capacity - booked) DESC, id",
                slot_view,
            )
            .await
    }

    pub async fn slot(self, id: SlotId) -> Result<Option<SlotView>, sqlx::Error> {
        let row = sqlx::query("SELECT * FROM hospital_slots WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.as_ref().map(slot_view).transpose()
    }

    pub async fn booking(self, id: HospitalBookingId) -> Result<Option<BookingView>, sqlx::Error> {
        let row = sqlx::query(&format!("{BOOKING_SELECT} WHERE b.id = ?"))
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.as_ref().map(booking_view).transpose()
    }

    /// Bookings, upcoming first (then the most recent past ones).
    pub async fn bookings(
        self,
        f: &BookingFilter,
        today: NaiveDate,
        page: PageParams,
    ) -> Result<Page<BookingView>, sqlx::Error> {
        let mut filter = Where::new().and_eq("b.patient_id = ?", f.patient.map(|p| p.to_string()));
        if let Some(recorder) = f.recorder {
            filter = filter.and(assigned_sql("b.patient_id"), assigned_params(recorder, today));
        }
        let mut filter = filter
            .and_eq("b.slot_id = ?", f.slot.map(|s| s.to_string()))
            .and_eq("b.status = ?", f.status.map(|s| s.as_str()));
        if let Some(doctor) = f.doctor.map(|d| d.to_string()) {
            filter = filter.and(
                "b.patient_id IN (SELECT patient_id FROM order_requests WHERE doctor_id = ?
                                  UNION SELECT patient_id FROM medical_orders WHERE doctor_id = ?)",
                [(&doctor).into(), doctor.into()],
            );
        }
        // A date's text form is only digits and dashes: safe to write into the SQL.
        let order_by = format!(
            "CASE WHEN b.appointment_date >= '{today}' THEN 0 ELSE 1 END,
             CASE WHEN b.appointment_date >= '{today}' THEN b.appointment_date END ASC,
             CASE WHEN b.appointment_date >= '{today}' THEN b.appointment_time END ASC,
             b.appointment_date DESC, b.appointment_time DESC, b.id"
        );
        let list = ListQuery {
            select: BOOKING_SELECT,
            from: "hospital_appointments b",
            order_by: &order_by,
        };
        self.0.page(&list, &filter, page, booking_view).await
    }
}
