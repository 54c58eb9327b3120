//! Visit verification exceptions (read model of the `evv_exception`
//! aggregate), and the questions the EVV follower asks of the visits read
//! model: the recorder's other intervals, and visits still open at day end.

use async_trait::async_trait;
use domain::evv::EvvExceptionEvent;
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
    pub id: String,
    /// away_from_home | overlapping_visits | missing_signature | short_visit | missing_check_out
    pub code: String,
    pub visit_id: String,
    pub patient_id: String,
    pub recorder_id: String,
    /// open | acknowledged | resolved
    pub status: String,
    /// RFC 3339.
    pub raised_at: String,
    /// The measurements behind it (distance and radius, the other visit,
    /// minutes and minimum, the record, the day's end).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub reason_code: Option<String>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<String>,
    pub resolution: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<String>,
    pub version: i64,
}

fn exception_view(r: &AnyRow) -> Result<EvvExceptionView, sqlx::Error> {
    Ok(EvvExceptionView {
        id: r.text("id")?,
        code: r.text("code")?,
        visit_id: r.text("visit_id")?,
        patient_id: r.text("patient_id")?,
        recorder_id: r.text("recorder_id")?,
        status: r.text("status")?,
        raised_at: r.text("raised_at")?,
        details: serde_json::from_str(&r.text("details")?).unwrap_or(serde_json::Value::Null),
        reason_code: r.opt_text("reason_code")?,
        acknowledged_by: r.opt_text("acknowledged_by")?,
        acknowledged_at: r.opt_text("acknowledged_at")?,
        resolution: r.opt_text("resolution")?,
        resolved_by: r.opt_text("resolved_by")?,
        resolved_at: r.opt_text("resolved_at")?,
        version: r.int("version")?,
    })
}

/// Filters of the exception list; instants are RFC 3339 UTC text.
#[derive(Debug, Clone, Default)]
pub struct EvvFilter {
    pub status: Option<String>,
    pub code: Option<String>,
    pub recorder: Option<String>,
    /// Raised at or after.
    pub from: Option<String>,
    /// Raised before.
    pub to: Option<String>,
}

/// Another visit's check-in..check-out, as the visits read model holds it.
#[derive(Debug, Clone)]
pub struct IntervalRow {
    pub visit_id: String,
    pub checked_in_at: String,
    pub checked_out_at: Option<String>,
}

impl ReadStore {
    pub async fn evv_exceptions(&self, f: &EvvFilter, page: PageParams) -> Result<Page<EvvExceptionView>, sqlx::Error> {
        let filter = Where::new()
            .and_eq("status = ?", f.status.as_ref())
            .and_eq("code = ?", f.code.as_ref())
            .and_eq("recorder_id = ?", f.recorder.as_ref())
            .and_eq("raised_at >= ?", f.from.as_ref())
            .and_eq("raised_at < ?", f.to.as_ref());
        let list = ListQuery {
            select: "SELECT * FROM evv_exceptions",
            from: "evv_exceptions",
            order_by: "raised_at DESC, id",
        };
        self.page(&list, &filter, page, exception_view).await
    }

    pub async fn evv_exception(&self, id: &str) -> Result<Option<EvvExceptionView>, sqlx::Error> {
        sqlx::query("SELECT * FROM evv_exceptions WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(exception_view)
            .transpose()
    }

    /// The recorder's other visits checked in at or before `at` and not
    /// checked out by then (in progress at `at`, or checked out later).
    pub async fn intervals_open_at(
        &self,
        recorder: &str,
        except: &str,
        at: &str,
    ) -> Result<Vec<IntervalRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, check_in_at, check_out_at FROM appointments
             WHERE recorder_id = ? AND check_in_at IS NOT NULL AND check_in_at <= ? AND id <> ?
               AND (check_out_at IS NULL OR check_out_at > ?)
             ORDER BY check_in_at, id",
        )
        .bind(recorder)
        .bind(at)
        .bind(except)
        .bind(at)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IntervalRow {
                    visit_id: r.text("id")?,
                    checked_in_at: r.text("check_in_at")?,
                    checked_out_at: r.opt_text("check_out_at")?,
                })
            })
            .collect()
    }

    /// Visits checked in before `before` and still not checked out, that have
    /// no `missing_check_out` exception yet (at most `limit`, oldest first).
    pub async fn open_check_ins_before(&self, before: &str, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT a.id FROM appointments a
             WHERE a.check_in_at IS NOT NULL AND a.check_in_at < ? AND a.check_out_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM evv_exceptions x WHERE x.visit_id = a.id AND x.code = 'missing_check_out')
             ORDER BY a.check_in_at, a.id LIMIT ?",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }
}
