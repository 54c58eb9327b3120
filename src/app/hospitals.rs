//! Booking a place at a partner hospital: three steps, each atomic on its
//! own — claim the patient's date and time (unique across bookings), take a
//! place in a slot (the slot aggregate holds the capacity invariant under
//! optimistic concurrency), create the booking. A failing later step undoes
//! the earlier ones ([`Saga`]).

use chrono::{NaiveDate, NaiveTime};
use domain::booking::{BookingCommand, BookingDetails, HospitalBooking};
use domain::hospital::{Hospital, Slot, SlotCommand};
use domain::ids::{DepartmentId, HospitalBookingId, HospitalDoctorId, HospitalId, PatientId, SlotId};
use domain::user::Role;
use domain::values::{date, optional_text, time};
use domain::Validator;
use projections::hospitals::{BookingFilter, BookingView};
use projections::{Page, PageParams};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::app::error::AppError;
use crate::app::input::{path_id, required, uuid_field};
use crate::app::refusal::Refusal;
use crate::app::saga::Saga;
use crate::auth::Principal;
use crate::policy::{can_see_patient, ensure_not_erased, ensure_sees_patient};
use crate::state::{AppState, RequestMeta};

#[derive(Debug, Deserialize, ToSchema)]
pub struct BookingInput {
    #[schema(required = true, value_type = String, format = Uuid)]
    pub patient_id: Option<String>,
    #[schema(required = true, value_type = String, format = Uuid)]
    pub hospital_id: Option<String>,
    #[schema(required = true, value_type = String, format = Uuid)]
    pub department_id: Option<String>,
    /// A hospital doctor; any slot of the department otherwise.
    pub doctor_id: Option<String>,
    /// `YYYY-MM-DD`, not before today.
    #[schema(required = true, value_type = String, format = Date)]
    pub appointment_date: Option<String>,
    /// `HH:MM`: the slot's time.
    #[schema(required = true, value_type = String, pattern = "^[0-9]{2}:[0-9]{2}$")]
    pub appointment_time: Option<String>,
    /// Up to 1000 characters.
    #[schema(max_length = 1000)]
    pub notes: Option<String>,
}

/// What booking a hospital slot answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingRequested {
    pub appointment_id: String,
    /// Same as `appointment_id`.
    pub id: String,
    /// The slot a place was taken in.
    pub slot_id: String,
    /// Always `pending`.
    pub status: String,
    pub version: i64,
}

/// A booking asked for, every field checked.
struct NewBooking {
    patient: PatientId,
    hospital_id: HospitalId,
    department_id: DepartmentId,
    doctor_id: Option<HospitalDoctorId>,
    day: NaiveDate,
    at: NaiveTime,
    notes: Option<String>,
}

impl BookingInput {
    /// The booking asked for (400 naming each bad field); `today` bounds the date.
    fn parse(&self, today: NaiveDate) -> Result<NewBooking, AppError> {
        let r = self;
        let mut v = Validator::new();
        let raw = required(&mut v, "patient_id", &r.patient_id);
        let patient: Option<PatientId> = uuid_field(&mut v, "patient_id", raw);
        let raw = required(&mut v, "hospital_id", &r.hospital_id);
        let hospital_id: Option<HospitalId> = uuid_field(&mut v, "hospital_id", raw);
        let raw = required(&mut v, "department_id", &r.department_id);
        let department_id: Option<DepartmentId> = uuid_field(&mut v, "department_id", raw);
        let doctor_id: Option<HospitalDoctorId> = uuid_field(&mut v, "doctor_id", r.doctor_id.as_ref());
        let day = required(&mut v, "appointment_date", &r.appointment_date)
            .and_then(|d| v.check("appointment_date", date(d)));
        if day.is_some_and(|d| d < today) {
            v.add("appointment_date", "不能早于今天");
        }
        let at = required(&mut v, "appointment_time", &r.appointment_time)
            .and_then(|t| v.check("appointment_time", time(t)));
        let notes = v.check("notes", optional_text(r.notes.as_deref(), 1000)).flatten();
        v.finish()?;
        let (Some(patient), Some(hospital_id), Some(department_id), Some(day), Some(at)) =
            (patient, hospital_id, department_id, day, at)
        else {
            return Err(AppError::field("body", "缺少必填字段"));
        };
        Ok(NewBooking {
            patient,
            hospital_id,
            department_id,
            doctor_id,
            day,
            at,
            notes,
        })
    }
}

const PATIENT_TIME: &str = "patient_hospital_time";

/// Recorder `p` books a place for their patient (see the module docs).
pub async fn book(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    input: &BookingInput,
) -> Result<BookingRequested, AppError> {
    p.require(&[Role::Recorder])?;
    let NewBooking {
        patient,
        hospital_id,
        department_id,
        doctor_id,
        day,
        at,
        notes,
    } = input.parse(state.today())?;
    ensure_sees_patient(state, p, patient).await?;
    ensure_not_erased(state, patient).await?;
    let (hospital, _) = state
        .store
        .load::<Hospital>(&hospital_id.to_string())
        .await?
        .ok_or_else(|| AppError::field("hospital_id", "医院不存在"))?;
    hospital.bookable(department_id, doctor_id)?;
    let time_text = at.format("%H:%M").to_string();
    let candidates = state
        .read()
        .await
        .hospitals()
        .matching_slots(hospital_id, department_id, doctor_id, day, &time_text)
        .await?;
    // A slot whose doctor has stopped seeing patients takes no new bookings.
    let candidates: Vec<_> = candidates
        .into_iter()
        .filter(|s| {
            s.doctor_id
                .is_none_or(|d| hospital.doctors.get(&d).is_some_and(|(_, a)| *a))
        })
        .collect();
    if candidates.is_empty() {
        return Err(Refusal::NoMatchingSlot.into());
    }

    let booking_id = HospitalBookingId(crate::idempotency::new_id(meta, p));
    let owner = booking_id.to_string();
    let claim = format!("{patient}:{day}T{time_text}");
    let mut saga = Saga::new();

    // 1. The patient's date and time.
    if !state.store.claim(PATIENT_TIME, &claim, &owner).await? {
        return Err(Refusal::PatientAlreadyBooked.into());
    }
    saga.done("claim the patient's time", async {
        Ok(state.store.release(PATIENT_TIME, &claim, &owner).await?)
    });

    // 2. A place in the first slot with room; the slot aggregate decides.
    let mut taken: Option<SlotId> = None;
    let mut last_refusal = AppError::from(Refusal::SlotsFull);
    for s in &candidates {
        let sid = s.id;
        let mut ctx = meta.context(Some(p), "BookSlotPlace");
        ctx.expected_version = None;
        let command = SlotCommand::Book {
            booking_id,
            patient_id: patient,
        };
        match state.execute::<Slot>(&sid.to_string(), command, ctx).await {
            Ok(_) => {
                taken = Some(sid);
                break;
            }
            Err(e) if e.is_refusal() => last_refusal = e,
            Err(e) => return saga.fail(e).await,
        }
    }
    let Some(slot_id) = taken else {
        return saga.fail(last_refusal).await;
    };
    saga.done("take a place in the slot", async move {
        let mut ctx = meta.context(Some(p), "ReleaseSlotPlace");
        ctx.expected_version = None;
        state
            .execute::<Slot>(&slot_id.to_string(), SlotCommand::Release { booking_id }, ctx)
            .await
            .map(drop)
    });

    // 3. The booking.
    let details = BookingDetails {
        slot_id,
        patient_id: patient,
        hospital_id,
        department_id,
        doctor_id: doctor_id.or_else(|| candidates.iter().find(|s| s.id == slot_id).and_then(|s| s.doctor_id)),
        appointment_date: day,
        appointment_time: at,
        notes,
        recorder_id: p.user_id,
    };
    let committed = match state
        .execute::<HospitalBooking>(
            &owner,
            BookingCommand::Request(details),
            meta.context(Some(p), "BookHospitalSlot"),
        )
        .await
    {
        Ok(c) => c,
        Err(e) => return saga.fail(e).await,
    };
    saga.commit();
    Ok(BookingRequested {
        appointment_id: booking_id.to_string(),
        id: booking_id.to_string(),
        slot_id: slot_id.to_string(),
        status: "pending".into(),
        version: committed.version,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookingTransitioned {
    pub id: String,
    pub status: String,
    pub appointment_number: Option<String>,
    /// Yuan, as a decimal string.
    pub fee: Option<String>,
    pub version: i64,
}

/// The booking, if the caller may see it.
pub(crate) async fn visible_booking(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> Result<projections::hospitals::BookingView, AppError> {
    let bid: HospitalBookingId = path_id(id, "hospital_appointment")?;
    let b = state
        .read()
        .await
        .hospitals()
        .booking(bid)
        .await?
        .ok_or(AppError::NotFound("hospital_appointment"))?;
    let visible = match p.role {
        Role::Admin => true,
        Role::Recorder | Role::Doctor => can_see_patient(state, p, b.patient_id).await?,
        Role::Auditor => false,
    };
    if !visible {
        return Err(AppError::NotFound("hospital_appointment"));
    }
    Ok(b)
}

/// A booking the caller may see, its read logged.
pub async fn booking(state: &AppState, p: &Principal, origin: &ReadOrigin, id: &str) -> Result<BookingView, AppError> {
    let b = visible_booking(state, p, id).await?;
    state.access.patients(p, origin, [&b.patient_id]).await?;
    Ok(b)
}

/// Which bookings to list, as asked; a value no booking can have (a malformed
/// id, an unknown status) matches none.
#[derive(Debug, Default, Clone, Copy)]
pub struct BookingSearch<'a> {
    pub patient: Option<&'a str>,
    pub slot: Option<&'a str>,
    pub status: Option<&'a str>,
}

/// The bookings the caller may see: a recorder's own and those of patients now
/// assigned to them, a doctor's, or any for an admin; upcoming first, the
/// patients shown logged.
pub async fn bookings(
    state: &AppState,
    p: &Principal,
    origin: &ReadOrigin,
    search: BookingSearch<'_>,
    page: PageParams,
) -> Result<Page<BookingView>, AppError> {
    let patient = search.patient.filter(|s| !s.is_empty());
    let slot = search.slot.filter(|s| !s.is_empty());
    let status = search.status.filter(|s| !s.is_empty());
    let mut f = BookingFilter::default();
    // A value no booking can have (a malformed id, an unknown status) matches none.
    let mut matches_none = false;
    if let Some(raw) = patient {
        f.patient = raw.parse().ok();
        matches_none |= f.patient.is_none();
    }
    if let Some(raw) = slot {
        f.slot = raw.parse().ok();
        matches_none |= f.slot.is_none();
    }
    if let Some(raw) = status {
        f.status = serde_json::from_value(serde_json::Value::from(raw)).ok();
        matches_none |= f.status.is_none();
    }
    match p.role {
        // A recorder's own bookings, and those of patients now assigned to them.
        Role::Recorder => {
            if patient.is_some() {
                // A malformed id is no patient of theirs.
                let visible = match f.patient {
                    Some(pid) => can_see_patient(state, p, pid).await?,
                    None => false,
                };
                if !visible {
                    return Err(AppError::NotFound("patient"));
                }
            } else {
                f.recorder = Some(p.user_id);
            }
        }
        Role::Doctor => f.doctor = Some(p.user_id),
        _ => {}
    }
    let list = if matches_none {
        projections::Page::empty(page)
    } else {
        state.read().await.hospitals().bookings(&f, state.today(), page).await?
    };
    // The patients whose bookings this page shows.
    state
        .access
        .patients(p, origin, list.items.iter().map(|b| &b.patient_id))
        .await?;
    Ok(list)
}

/// Runs a status change of a booking the caller may see; its state after.
pub async fn transition(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    cmd: BookingCommand,
    name: &str,
) -> Result<BookingTransitioned, AppError> {
    let b = visible_booking(state, p, id).await?;
    let c = state
        .execute::<HospitalBooking>(&b.id.to_string(), cmd, meta.context(Some(p), name))
        .await?;
    let after = state
        .read()
        .await
        .hospitals()
        .booking(b.id)
        .await?
        .ok_or(AppError::NotFound("hospital_appointment"))?;
    Ok(BookingTransitioned {
        id: b.id.to_string(),
        status: after.status.as_str().to_string(),
        appointment_number: after.appointment_number,
        fee: after.fee,
        version: c.version,
    })
}

/// Cancels a booking the caller may see and frees its place: the slot's place
/// and the patient's hold on that time.
pub async fn cancel(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    reason: Option<String>,
) -> Result<BookingTransitioned, AppError> {
    let b = visible_booking(state, p, id).await?;
    let response = transition(
        state,
        p,
        meta,
        id,
        BookingCommand::Cancel { reason },
        "CancelHospitalBooking",
    )
    .await?;
    let booking_id = b.id;
    let mut ctx = meta.context(Some(p), "ReleaseSlotPlace");
    ctx.expected_version = None;
    state
        .execute::<Slot>(&b.slot_id.to_string(), SlotCommand::Release { booking_id }, ctx)
        .await?;
    let claim_value = format!("{}:{}T{}", b.patient_id, b.appointment_date, b.appointment_time);
    state
        .store
        .release(PATIENT_TIME, &claim_value, &b.id.to_string())
        .await?;
    Ok(response)
}
