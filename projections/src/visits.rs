//! Home visits ("appointments") and their history of changes.

use async_trait::async_trait;
use chrono::NaiveDate;
use domain::ids::{FamilyId, HealthRecordId, PatientId, SubscriptionId, UserId, VisitId};
use domain::visit::{VisitEvent, VisitMark, VisitStatus, VisitType};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::bind_assigned;
use crate::bulk::{apply_buffered, Buffer, Rows};
use crate::page::{ListQuery, Page, PageParams, Where};
use crate::projector::{erase_rows, erased_patient, ProjectionError, Projector, StoredEvent};
use crate::store::{hhmm, instant, ReadStore, RowExt};
use crate::subscriptions::{assigned_binds, assigned_params, assigned_sql};

pub struct VisitsProjector;

#[async_trait]
impl Projector for VisitsProjector {
    fn name(&self) -> &'static str {
        "appointments"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["appointment_history", "appointments"]
    }

    /// A recorder's day and check-ins; its writes go by id and (an erasure)
    /// through `appointments_patient`, which stays.
    fn deferred_indexes(&self) -> &'static [&'static str] {
        &["appointments_recorder", "appointments_check_in"]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        self.apply_all(c, &[e]).await
    }

    /// Visits scheduled are written as multi-row inserts.
    async fn apply_all(&self, c: &mut AnyConnection, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        apply_buffered(c, events, &mut VisitRows::default()).await
    }
}

/// The rows of a run of visits scheduled: the visit and its first history line.
struct VisitRows {
    appointments: Rows,
    history: Rows,
}

impl Default for VisitRows {
    fn default() -> Self {
        VisitRows {
            appointments: Rows::new(
                "INSERT",
                "appointments",
                "id, patient_id, recorder_id, subscription_id, scheduled_date, scheduled_time, appointment_type,
                 status, notes, reschedule_count, created_at, updated_at, version",
                "(?, ?, ?, ?, ?, ?, ?, 'scheduled', ?, 0, ?, ?, ?)",
            ),
            history: Rows::new(
                "INSERT",
                "appointment_history",
                "appointment_id, seq, event, from_date, from_time, to_date, to_time, reason, actor_id, at",
                "(?, ?, 'scheduled', NULL, NULL, ?, ?, NULL, ?, ?)",
            ),
        }
    }
}

#[async_trait]
impl Buffer for VisitRows {
    async fn take(&mut self, _: &mut AnyConnection, e: &StoredEvent) -> Result<bool, ProjectionError> {
        if erased_patient(e).is_some() {
            return Ok(false);
        }
        if e.aggregate_type != "appointment" {
            return Ok(true);
        }
        if e.event_type != "VisitScheduled" {
            return Ok(false);
        }
        let VisitEvent::VisitScheduled(p) = e.decode::<VisitEvent>()? else {
            return Ok(false);
        };
        let (id, at) = (e.aggregate_id.as_str(), e.at());
        let (date, time) = (p.scheduled_date.to_string(), hhmm(p.scheduled_time));
        self.appointments.push([
            id.into(),
            p.patient_id.to_string().into(),
            p.recorder_id.to_string().into(),
            p.subscription_id.to_string().into(),
            (&date).into(),
            (&time).into(),
            p.appointment_type.as_str().into(),
            (&p.notes).into(),
            (&at).into(),
            (&at).into(),
            e.sequence.into(),
        ]);
        self.history.push([
            id.into(),
            e.sequence.into(),
            date.into(),
            time.into(),
            e.metadata.get("actor_id").cloned().into(),
            at.into(),
        ]);
        Ok(true)
    }

    async fn flush(&mut self, c: &mut AnyConnection) -> Result<(), ProjectionError> {
        self.appointments.flush(c).await?;
        Ok(self.history.flush(c).await?)
    }

    async fn apply_one(&mut self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        apply_one(c, e).await
    }
}

/// Every event [`VisitRows::take`] does not write.
async fn apply_one(c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
    if let Some(patient) = erased_patient(e) {
        return erase_rows(c, patient, &[
            "UPDATE appointments SET notes = NULL, cancel_reason = NULL, check_in_lat = NULL, check_in_lng = NULL,
                check_out_lat = NULL, check_out_lng = NULL WHERE patient_id = ?",
            "UPDATE appointment_history SET reason = NULL WHERE appointment_id IN (SELECT id FROM appointments WHERE patient_id = ?)",
        ])
        .await;
    }
    if e.aggregate_type != "appointment" {
        return Ok(());
    }
    let id = e.aggregate_id.as_str();
    let at = e.at();
    let actor = e.metadata.get("actor_id").cloned();
    let history = |event: &'static str,
                   from: Option<(String, String)>,
                   to: Option<(String, String)>,
                   reason: Option<String>| {
        let (fd, ft) = from.unzip();
        let (td, tt) = to.unzip();
        sqlx::query(
            "INSERT INTO appointment_history (appointment_id, seq, event, from_date, from_time, to_date, to_time, reason, actor_id, at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(e.sequence)
        .bind(event)
        .bind(fd)
        .bind(ft)
        .bind(td)
        .bind(tt)
        .bind(reason)
        .bind(actor.clone())
        .bind(at.clone())
    };
    match e.decode::<VisitEvent>()? {
        // Taken by `VisitRows::take`, every one.
        VisitEvent::VisitScheduled(_) => return Ok(()),
        VisitEvent::VisitConfirmed => {
            sqlx::query("UPDATE appointments SET status = 'confirmed' WHERE id = ?")
                .bind(id)
                .execute(&mut *c)
                .await?;
            history("confirmed", None, None, None).execute(&mut *c).await?;
        }
        VisitEvent::VisitRescheduled {
            from_date,
            from_time,
            date,
            time,
        } => {
            sqlx::query(
                "UPDATE appointments SET scheduled_date = ?, scheduled_time = ?, reschedule_count = reschedule_count + 1
                 WHERE id = ?",
            )
            .bind(date.to_string())
            .bind(hhmm(time))
            .bind(id)
            .execute(&mut *c)
            .await?;
            history(
                "rescheduled",
                Some((from_date.to_string(), hhmm(from_time))),
                Some((date.to_string(), hhmm(time))),
                None,
            )
            .execute(&mut *c)
            .await?;
        }
        VisitEvent::VisitCancelled { reason } => {
            sqlx::query("UPDATE appointments SET status = 'cancelled', cancel_reason = ? WHERE id = ?")
                .bind(&reason)
                .bind(id)
                .execute(&mut *c)
                .await?;
            history("cancelled", None, None, reason).execute(&mut *c).await?;
        }
        VisitEvent::VisitCompleted { health_record_id } => {
            sqlx::query("UPDATE appointments SET status = 'completed', health_record_id = ? WHERE id = ?")
                .bind(health_record_id.to_string())
                .bind(id)
                .execute(&mut *c)
                .await?;
            history("completed", None, None, None).execute(&mut *c).await?;
        }
        VisitEvent::VisitCheckedIn(mark) => {
            set_mark(c, id, "check_in", &mark).await?;
            history("checked_in", None, None, None).execute(&mut *c).await?;
        }
        VisitEvent::VisitCheckedOut(mark) => {
            set_mark(c, id, "check_out", &mark).await?;
            history("checked_out", None, None, None).execute(&mut *c).await?;
        }
        VisitEvent::VisitRecordAttached { health_record_id } => {
            sqlx::query("UPDATE appointments SET health_record_id = ? WHERE id = ?")
                .bind(health_record_id.to_string())
                .bind(id)
                .execute(&mut *c)
                .await?;
            history("record_attached", None, None, None).execute(&mut *c).await?;
        }
        VisitEvent::VisitMissed { .. } => {
            sqlx::query("UPDATE appointments SET status = 'missed' WHERE id = ?")
                .bind(id)
                .execute(&mut *c)
                .await?;
            history("missed", None, None, None).execute(&mut *c).await?;
        }
    }
    sqlx::query("UPDATE appointments SET updated_at = ?, version = ? WHERE id = ?")
        .bind(&at)
        .bind(e.sequence)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Writes a check-in or check-out (`end` is `check_in` or `check_out`) and the
/// status it leads to.
async fn set_mark(c: &mut AnyConnection, id: &str, end: &str, mark: &VisitMark) -> Result<(), ProjectionError> {
    let status = if end == "check_in" {
        "in_progress"
    } else {
        "checked_out"
    };
    let sql = format!(
        "UPDATE appointments SET status = ?, {end}_at = ?, {end}_lat = ?, {end}_lng = ?, {end}_distance_m = ? WHERE id = ?"
    );
    sqlx::query(&sql)
        .bind(status)
        .bind(instant(mark.at))
        .bind(mark.location.map(|l| l.lat))
        .bind(mark.location.map(|l| l.lng))
        .bind(mark.distance_from_home_m)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// One end of a visit as verified: when, where, and how far from home (null
/// when the family has no home coordinates).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitMarkView {
    /// RFC 3339, server time.
    pub at: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub distance_from_home_m: Option<f64>,
}

fn mark_view(r: &AnyRow, end: &str) -> Result<Option<VisitMarkView>, sqlx::Error> {
    let Some(at) = r.opt_text(&format!("{end}_at"))? else {
        return Ok(None);
    };
    Ok(Some(VisitMarkView {
        at,
        lat: r.opt_f64(&format!("{end}_lat"))?,
        lng: r.opt_f64(&format!("{end}_lng"))?,
        distance_from_home_m: r.opt_f64(&format!("{end}_distance_m"))?,
    }))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitPatient {
    #[schema(value_type = String, format = Uuid)]
    pub id: PatientId,
    pub name: String,
    #[schema(value_type = String, format = Uuid)]
    pub family_id: FamilyId,
    pub family_name: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitChange {
    pub event: String,
    pub from_date: Option<String>,
    pub from_time: Option<String>,
    pub to_date: Option<String>,
    pub to_time: Option<String>,
    pub reason: Option<String>,
    pub actor_id: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitView {
    #[schema(value_type = String, format = Uuid)]
    pub id: VisitId,
    pub patient: VisitPatient,
    #[schema(value_type = String, format = Uuid)]
    pub recorder_id: UserId,
    #[schema(value_type = String, format = Uuid)]
    pub subscription_id: SubscriptionId,
    pub scheduled_date: String,
    pub scheduled_time: String,
    #[schema(value_type = String)]
    pub appointment_type: VisitType,
    #[schema(value_type = String)]
    pub status: VisitStatus,
    pub notes: Option<String>,
    pub cancel_reason: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub health_record_id: Option<HealthRecordId>,
    /// The check-in, or null before it.
    pub check_in: Option<VisitMarkView>,
    /// The check-out, or null before it.
    pub check_out: Option<VisitMarkView>,
    pub reschedule_count: i64,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<VisitChange>>,
}

const VISIT_SELECT: &str = "SELECT a.*, p.name AS patient_name, p.family_id, f.family_name, f.primary_address
    FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN families f ON f.id = p.family_id";

fn visit_view(r: &AnyRow) -> Result<VisitView, sqlx::Error> {
    Ok(VisitView {
        id: r.id("id")?,
        patient: VisitPatient {
            id: r.id("patient_id")?,
            name: r.text("patient_name")?,
            family_id: r.id("family_id")?,
            family_name: r.text("family_name")?,
            address: r.text("primary_address")?,
        },
        recorder_id: r.id("recorder_id")?,
        subscription_id: r.id("subscription_id")?,
        scheduled_date: r.text("scheduled_date")?,
        scheduled_time: r.text("scheduled_time")?,
        appointment_type: r.status("appointment_type")?,
        status: r.status("status")?,
        notes: r.opt_text("notes")?,
        cancel_reason: r.opt_text("cancel_reason")?,
        health_record_id: r.opt_id("health_record_id")?,
        check_in: mark_view(r, "check_in")?,
        check_out: mark_view(r, "check_out")?,
        reschedule_count: r.int("reschedule_count")?,
        created_at: r.text("created_at")?,
        updated_at: r.text("updated_at")?,
        version: r.int("version")?,
        history: None,
    })
}

/// Filters of the visit list.
#[derive(Debug, Clone)]
pub struct VisitFilter {
    /// A recorder's own visits, of the patients assigned to them today (a
    /// visit of a patient since given to another recorder is no longer theirs
    /// to read).
    pub recorder: Option<UserId>,
    /// What "today" is for the assignment rule.
    pub today: NaiveDate,
    pub patient: Option<PatientId>,
    pub date: Option<NaiveDate>,
    pub status: Option<VisitStatus>,
}

impl VisitFilter {
    /// Every visit, as of `today` (add the conditions wanted).
    pub fn new(today: NaiveDate) -> Self {
        Self {
            recorder: None,
            today,
            patient: None,
            date: None,
            status: None,
        }
    }
}

impl ReadStore {
    /// The visits read model.
    pub fn visits(&self) -> Visits<'_> {
        Visits(self)
    }
}

/// Queries of the visits read model.
#[derive(Clone, Copy)]
pub struct Visits<'a>(&'a ReadStore);

impl Visits<'_> {
    /// One recorder's visits on `date` (today), by time (cancelled ones left
    /// out), of the patients assigned to them today.
    pub async fn on(self, recorder: UserId, date: NaiveDate) -> Result<Vec<VisitView>, sqlx::Error> {
        let sql = format!(
            "{VISIT_SELECT} WHERE a.recorder_id = ? AND a.scheduled_date = ? AND a.status <> 'cancelled' AND {}
             ORDER BY a.scheduled_time, a.id",
            assigned_sql("a.patient_id")
        );
        let q = sqlx::query(&sql).bind(recorder.to_string()).bind(date.to_string());
        let rows = bind_assigned!(q, assigned_binds(recorder, date))
            .fetch_all(self.0.pool())
            .await?;
        rows.iter().map(visit_view).collect()
    }

    /// Visits, latest scheduled first.
    pub async fn list(self, f: &VisitFilter, page: PageParams) -> Result<Page<VisitView>, sqlx::Error> {
        let mut filter = Where::new();
        if let Some(recorder) = f.recorder {
            filter = filter
                .and("a.recorder_id = ?", [recorder.to_string().into()])
                .and(assigned_sql("a.patient_id"), assigned_params(recorder, f.today));
        }
        let filter = filter
            .and_eq("a.patient_id = ?", f.patient.map(|p| p.to_string()))
            .and_eq("a.scheduled_date = ?", f.date)
            .and_eq("a.status = ?", f.status.map(|s| s.as_str()));
        let list = ListQuery {
            select: VISIT_SELECT,
            from: "appointments a",
            order_by: "a.scheduled_date DESC, a.scheduled_time DESC, a.id",
        };
        self.0.page(&list, &filter, page, visit_view).await
    }

    /// A visit with its history of changes.
    pub async fn get(self, id: VisitId) -> Result<Option<VisitView>, sqlx::Error> {
        let id = id.to_string();
        let Some(r) = sqlx::query(&format!("{VISIT_SELECT} WHERE a.id = ?"))
            .bind(&id)
            .fetch_optional(self.0.pool())
            .await?
        else {
            return Ok(None);
        };
        let mut v = visit_view(&r)?;
        let rows = sqlx::query("SELECT * FROM appointment_history WHERE appointment_id = ? ORDER BY seq")
            .bind(&id)
            .fetch_all(self.0.pool())
            .await?;
        let history = rows
            .iter()
            .map(|h| {
                Ok(VisitChange {
                    event: h.text("event")?,
                    from_date: h.opt_text("from_date")?,
                    from_time: h.opt_text("from_time")?,
                    to_date: h.opt_text("to_date")?,
                    to_time: h.opt_text("to_time")?,
                    reason: h.opt_text("reason")?,
                    actor_id: h.opt_text("actor_id")?,
                    at: h.text("at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        v.history = Some(history);
        Ok(Some(v))
    }

    /// Regular, not cancelled visits of a patient in the month of `day`,
    /// leaving out `except` (the visit being rescheduled).
    pub async fn regular_in_month(
        self,
        patient: PatientId,
        day: NaiveDate,
        except: Option<VisitId>,
    ) -> Result<i64, sqlx::Error> {
        // The condition on `except` only when there is one (no `? IS NULL OR …`).
        let mut sql = "SELECT COUNT(*) FROM appointments WHERE patient_id = ? AND appointment_type = 'regular'
               AND status <> 'cancelled' AND scheduled_date LIKE ?"
            .to_string();
        if except.is_some() {
            sql.push_str(" AND id <> ?");
        }
        let mut q = sqlx::query_scalar(&sql)
            .bind(patient.to_string())
            .bind(format!("{}-%", day.format("%Y-%m")));
        if let Some(visit) = except {
            q = q.bind(visit.to_string());
        }
        q.fetch_one(self.0.pool()).await
    }
}
