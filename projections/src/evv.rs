//! Visit verification exceptions (read model of the `evv_exception`
//! aggregate), and the questions the EVV follower asks of the visits read
//! model: the recorder's other intervals, and visits still open at day end.

use async_trait::async_trait;
use domain::evv::{EvvCode, EvvExceptionEvent, EvvStatus};
use domain::ids::{EvvExceptionId, PatientId, UserId, VisitId};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::page::{ListQuery, Page, PageParams, Where};
use crate::projector::{erase_rows, erased_patient, ProjectionError, Projector, StoredEvent};
use crate::store::{instant, ReadStore, RowExt};

/// Replayable: only the event's payload and recorded time.
pub struct EvvExceptionsProjector;

#[async_trait]
impl Projector for EvvExceptionsProjector {
    fn name(&self) -> &'static str {
        "evv_exceptions"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["evv_exceptions"]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        if let Some(patient) = erased_patient(e) {
            return erase_rows(
                c,
                patient,
                &["UPDATE evv_exceptions SET resolution = NULL WHERE patient_id = ?"],
            )
            .await;
        }
        if e.aggregate_type != "evv_exception" {
            return Ok(());
        }
        let id = e.aggregate_id.as_str();
        let query = match e.decode::<EvvExceptionEvent>()? {
            EvvExceptionEvent::EvvExceptionRaised {
                code,
                visit_id,
                patient_id,
                recorder_id,
                raised_at,
                details,
            } => {
                let details = serde_json::to_string(&details).map_err(|source| ProjectionError::Decode {
                    position: e.position,
                    source,
                })?;
                sqlx::query(
                    "INSERT INTO evv_exceptions (id, code, visit_id, patient_id, recorder_id, status, raised_at, details, version)
                     VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?)",
                )
                .bind(id)
                .bind(code.as_str())
                .bind(visit_id.to_string())
                .bind(patient_id.to_string())
                .bind(recorder_id.to_string())
                .bind(instant(raised_at))
                .bind(details)
                .bind(e.sequence)
            }
            EvvExceptionEvent::EvvExceptionAcknowledged { reason_code, by, at } => sqlx::query(
                "UPDATE evv_exceptions SET status = 'acknowledged', reason_code = ?, acknowledged_by = ?, acknowledged_at = ?,
                    version = ? WHERE id = ?",
            )
            .bind(reason_code)
            .bind(by.to_string())
            .bind(instant(at))
            .bind(e.sequence)
            .bind(id),
            EvvExceptionEvent::EvvExceptionResolved { resolution, by, at } => sqlx::query(
                "UPDATE evv_exceptions SET status = 'resolved', resolution = ?, resolved_by = ?, resolved_at = ?, version = ?
                 WHERE id = ?",
            )
            .bind(resolution)
            .bind(by.to_string())
            .bind(instant(at))
            .bind(e.sequence)
            .bind(id),
        };
        query.execute(&mut *c).await?;
        Ok(())
    }
}

/// One exception as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvvExceptionView {
    #[schema(value_type = String, format = Uuid)]
    pub id: EvvExceptionId,
    /// away_from_home | overlapping_visits | missing_signature | short_visit | missing_check_out
    #[schema(value_type = String)]
    pub code: EvvCode,
    #[schema(value_type = String, format = Uuid)]
    pub visit_id: VisitId,
    #[schema(value_type = String, format = Uuid)]
    pub patient_id: PatientId,
    #[schema(value_type = String, format = Uuid)]
    pub recorder_id: UserId,
    /// open | acknowledged | resolved
    #[schema(value_type = String)]
    pub status: EvvStatus,
    /// RFC 3339.
    pub raised_at: String,
    /// The measurements behind it (distance and radius, the other visit,
    /// minutes and minimum, the record, the day's end).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub reason_code: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub acknowledged_by: Option<UserId>,
    pub acknowledged_at: Option<String>,
    pub resolution: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub resolved_by: Option<UserId>,
    pub resolved_at: Option<String>,
    pub version: i64,
}

fn exception_view(r: &AnyRow) -> Result<EvvExceptionView, sqlx::Error> {
    Ok(EvvExceptionView {
        id: r.id("id")?,
        code: r.status("code")?,
        visit_id: r.id("visit_id")?,
        patient_id: r.id("patient_id")?,
        recorder_id: r.id("recorder_id")?,
        status: r.status("status")?,
        raised_at: r.text("raised_at")?,
        details: serde_json::from_str(&r.text("details")?).unwrap_or(serde_json::Value::Null),
        reason_code: r.opt_text("reason_code")?,
        acknowledged_by: r.opt_id("acknowledged_by")?,
        acknowledged_at: r.opt_text("acknowledged_at")?,
        resolution: r.opt_text("resolution")?,
        resolved_by: r.opt_id("resolved_by")?,
        resolved_at: r.opt_text("resolved_at")?,
        version: r.int("version")?,
    })
}

/// Filters of the exception list; instants are RFC 3339 UTC text.
#[derive(Debug, Clone, Default)]
pub struct EvvFilter {
    pub status: Option<EvvStatus>,
    pub code: Option<EvvCode>,
    pub recorder: Option<UserId>,
    /// Raised at or after.
    pub from: Option<String>,
    /// Raised before.
    pub to: Option<String>,
}

/// Another visit's check-in..check-out, as the visits read model holds it.
#[derive(Debug, Clone)]
pub struct IntervalRow {
    pub visit_id: VisitId,
    pub checked_in_at: String,
    pub checked_out_at: Option<String>,
}

impl ReadStore {
    /// The visit verification exceptions read model.
    pub fn evv(&self) -> Evv<'_> {
        Evv(self)
    }
}

/// Queries of the visit verification exceptions read model (and of the
/// check-ins and check-outs they are judged on).
#[derive(Clone, Copy)]
pub struct Evv<'a>(&'a ReadStore);

impl Evv<'_> {
    pub async fn list(self, f: &EvvFilter, page: PageParams) -> Result<Page<EvvExceptionView>, sqlx::Error> {
        let filter = Where::new()
            .and_eq("status = ?", f.status.map(|s| s.as_str()))
            .and_eq("code = ?", f.code.map(|c| c.as_str()))
            .and_eq("recorder_id = ?", f.recorder.map(|r| r.to_string()))
            .and_eq("raised_at >= ?", f.from.as_ref())
            .and_eq("raised_at < ?", f.to.as_ref());
        let list = ListQuery {
            select: "SELECT * FROM evv_exceptions",
            from: "evv_exceptions",
            order_by: "raised_at DESC, id",
        };
        self.0.page(&list, &filter, page, exception_view).await
    }

    pub async fn get(self, id: EvvExceptionId) -> Result<Option<EvvExceptionView>, sqlx::Error> {
        sqlx::query("SELECT * FROM evv_exceptions WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?
            .as_ref()
            .map(exception_view)
            .transpose()
    }

    /// The recorder's other visits checked in at or before `at` and not
    /// checked out by then (in progress at `at`, or checked out later).
    pub async fn intervals_open_at(
        self,
        recorder: UserId,
        except: VisitId,
        at: &str,
    ) -> Result<Vec<IntervalRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, check_in_at, check_out_at FROM appointments
             WHERE recorder_id = ? AND check_in_at IS NOT NULL AND check_in_at <= ? AND id <> ?
               AND (check_out_at IS NULL OR check_out_at > ?)
             ORDER BY check_in_at, id",
        )
        .bind(recorder.to_string())
        .bind(at)
        .bind(except.to_string())
        .bind(at)
        .fetch_all(self.0.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IntervalRow {
                    visit_id: r.id("id")?,
                    checked_in_at: r.text("check_in_at")?,
                    checked_out_at: r.opt_text("check_out_at")?,
                })
            })
            .collect()
    }

    /// Visits checked in before `before` and still not checked out, that have
    /// no `missing_check_out` exception yet (at most `limit`, oldest first).
    pub async fn open_check_ins_before(self, before: &str, limit: i64) -> Result<Vec<VisitId>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT a.id FROM appointments a
             WHERE a.check_in_at IS NOT NULL AND a.check_in_at < ? AND a.check_out_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM evv_exceptions x WHERE x.visit_id = a.id AND x.code = 'missing_check_out')
             ORDER BY a.check_in_at, a.id LIMIT ?",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.0.pool())
        .await?;
        rows.iter().map(|r| r.id("id")).collect()
    }
}
