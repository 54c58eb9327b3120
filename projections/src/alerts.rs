//! Alerts of abnormal records: their state, their doctor, their escalation
//! level, and the order request raised with them. The escalation loop reads
//! the alerts whose wait is over from here; the notifications they send are
//! projected by `orders::NotificationsProjector`.

use async_trait::async_trait;
use domain::alert::{AlertEvent, AlertStatus, Outcome};
use domain::ids::{AlertId, HealthRecordId, OrderRequestId, PatientId, UserId};
use domain::order::OrderRequestEvent;
use domain::vitals::Severity;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::page::{ListQuery, Page, PageParams, Where};
use crate::projector::{erase_rows, erased_patient, ProjectionError, Projector, StoredEvent};
use crate::store::{instant, ReadStore, RowExt};

pub struct AlertsProjector;

#[async_trait]
impl Projector for AlertsProjector {
    fn name(&self) -> &'static str {
        "alerts"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["alerts"]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        if let Some(patient) = erased_patient(e) {
            return erase_rows(c, patient, &["UPDATE alerts SET note = NULL WHERE patient_id = ?"]).await;
        }
        let id = e.aggregate_id.as_str();
        let at = e.at();
        match e.aggregate_type.as_str() {
            "order_request" => {
                if let OrderRequestEvent::OrderRequested(d) = e.decode::<OrderRequestEvent>()? {
                    if let Some(alert) = d.alert_id {
                        sqlx::query("UPDATE alerts SET order_request_id = ? WHERE id = ?")
                            .bind(id)
                            .bind(alert.to_string())
                            .execute(&mut *c)
                            .await?;
                    }
                }
                return Ok(());
            }
            "alert" => {}
            _ => return Ok(()),
        }
        let query = match e.decode::<AlertEvent>()? {
            AlertEvent::AlertTriggered(t) => {
                let triggered = instant(t.at);
                sqlx::query(
                    "INSERT INTO alerts (id, patient_id, health_record_id, severity, reasons, status, doctor_id,
                        escalation_level, triggered_at, waiting_since, updated_at, version)
                     VALUES (?, ?, ?, ?, ?, 'triggered', ?, 0, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(t.patient_id.to_string())
                .bind(t.health_record_id.to_string())
                .bind(t.severity.as_str())
                .bind(serde_json::to_string(&t.reasons).unwrap_or_else(|_| "[]".into()))
                .bind(t.doctor_id.to_string())
                .bind(triggered.clone())
                .bind(triggered)
                .bind(at)
                .bind(e.sequence)
            }
            AlertEvent::AlertAcknowledged { by, at: when } => sqlx::query(
                "UPDATE alerts SET status = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?,
                    updated_at = ?, version = ? WHERE id = ?",
            )
            .bind(instant(when))
            .bind(by.to_string())
            .bind(at)
            .bind(e.sequence)
            .bind(id),
            AlertEvent::AlertResolved {
                outcome,
                note,
                by,
                at: when,
            } => sqlx::query(
                "UPDATE alerts SET status = 'resolved', resolved_at = ?, resolved_by = ?, outcome = ?, note = ?,
                    updated_at = ?, version = ? WHERE id = ?",
            )
            .bind(instant(when))
            .bind(by.to_string())
            .bind(outcome.as_str())
            .bind(note)
            .bind(at)
            .bind(e.sequence)
            .bind(id),
            AlertEvent::AlertEscalated {
                level,
                to_doctor,
                at: when,
                ..
            } => sqlx::query(
                "UPDATE alerts SET escalation_level = ?, doctor_id = ?, waiting_since = ?,
                    updated_at = ?, version = ? WHERE id = ?",
            )
            .bind(i64::from(level))
            .bind(to_doctor.to_string())
            .bind(instant(when))
            .bind(at)
            .bind(e.sequence)
            .bind(id),
        };
        query.execute(&mut *c).await?;
        Ok(())
    }
}

/// An alert as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertDetails {
    #[schema(value_type = String, format = Uuid)]
    pub id: AlertId,
    #[schema(value_type = String, format = Uuid)]
    pub patient_id: PatientId,
    pub patient_name: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub health_record_id: HealthRecordId,
    /// The order request raised with it.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub order_request_id: Option<OrderRequestId>,
    /// abnormal | urgent
    #[schema(value_type = String)]
    pub severity: Severity,
    #[schema(value_type = Vec<crate::records::AlertView>)]
    pub reasons: serde_json::Value,
    /// triggered | acknowledged | resolved
    #[schema(value_type = String)]
    pub status: AlertStatus,
    /// The doctor it is with now.
    #[schema(value_type = String, format = Uuid)]
    pub doctor_id: UserId,
    /// 0 until nobody acknowledged it in time; + 1 at each escalation.
    pub escalation_level: i64,
    pub triggered_at: String,
    /// When the wait for an acknowledgement began: the trigger or the last escalation.
    pub waiting_since: String,
    pub acknowledged_at: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub acknowledged_by: Option<UserId>,
    pub resolved_at: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub resolved_by: Option<UserId>,
    /// order_issued | no_action_needed | referred
    #[schema(value_type = Option<String>)]
    pub outcome: Option<Outcome>,
    pub note: Option<String>,
    pub updated_at: String,
    pub version: i64,
}

fn alert_view(r: &AnyRow) -> Result<AlertDetails, sqlx::Error> {
    Ok(AlertDetails {
        id: r.id("id")?,
        patient_id: r.id("patient_id")?,
        patient_name: r.opt_text("patient_name")?,
        health_record_id: r.id("health_record_id")?,
        order_request_id: r.opt_id("order_request_id")?,
        severity: r.status("severity")?,
        reasons: r.json("reasons")?,
        status: r.status("status")?,
        doctor_id: r.id("doctor_id")?,
        escalation_level: r.int("escalation_level")?,
        triggered_at: r.text("triggered_at")?,
        waiting_since: r.text("waiting_since")?,
        acknowledged_at: r.opt_text("acknowledged_at")?,
        acknowledged_by: r.opt_id("acknowledged_by")?,
        resolved_at: r.opt_text("resolved_at")?,
        resolved_by: r.opt_id("resolved_by")?,
        outcome: r.opt_status("outcome")?,
        note: r.opt_text("note")?,
        updated_at: r.text("updated_at")?,
        version: r.int("version")?,
    })
}

/// Which alerts a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertFilter {
    /// Only this doctor's (a doctor's own list).
    pub doctor: Option<UserId>,
    pub status: Option<AlertStatus>,
    pub severity: Option<Severity>,
}

/// A triggered alert whose wait for an acknowledgement is over.
#[derive(Debug, Clone)]
pub struct DueAlert {
    pub id: AlertId,
    pub doctor_id: UserId,
    pub escalation_level: i64,
}

const SELECT_ALERT: &str =
    "SELECT a.*, p.name AS patient_name FROM alerts a LEFT JOIN patients p ON p.id = a.patient_id";

impl ReadStore {
    /// The alerts read model.
    pub fn alerts(&self) -> Alerts<'_> {
        Alerts(self)
    }
}

/// Queries of the alerts read model.
#[derive(Clone, Copy)]
pub struct Alerts<'a>(&'a ReadStore);

impl Alerts<'_> {
    /// A page of alerts: unresolved first, then urgent, then newest.
    pub async fn list(self, f: AlertFilter, page: PageParams) -> Result<Page<AlertDetails>, sqlx::Error> {
        let filter = Where::new()
            .and_eq("a.doctor_id = ?", f.doctor.map(|d| d.to_string()))
            .and_eq("a.status = ?", f.status.map(|s| s.as_str()))
            .and_eq("a.severity = ?", f.severity.map(|s| s.as_str()));
        let list = ListQuery {
            select: SELECT_ALERT,
            from: "alerts a",
            order_by:
                "CASE WHEN a.status = 'resolved' THEN 1 ELSE 0 END, CASE WHEN a.severity = 'urgent' THEN 0 ELSE 1 END,
                a.triggered_at DESC, a.id",
        };
        self.0.page(&list, &filter, page, alert_view).await
    }

    pub async fn get(self, id: AlertId) -> Result<Option<AlertDetails>, sqlx::Error> {
        let row = sqlx::query(&format!("{SELECT_ALERT} WHERE a.id = ?"))
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.as_ref().map(alert_view).transpose()
    }

    /// Triggered alerts whose wait began at or before the cut-off of their
    /// severity (instants as stored), the longest waiting first.
    pub async fn due(
        self,
        urgent_waiting_since: &str,
        abnormal_waiting_since: &str,
        limit: i64,
    ) -> Result<Vec<DueAlert>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, doctor_id, escalation_level FROM alerts
             WHERE status = 'triggered'
               AND ((severity = 'urgent' AND waiting_since <= ?) OR (severity = 'abnormal' AND waiting_since <= ?))
             ORDER BY waiting_since, id LIMIT ?",
        )
        .bind(urgent_waiting_since)
        .bind(abnormal_waiting_since)
        .bind(limit)
        .fetch_all(self.0.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueAlert {
                    id: r.id("id")?,
                    doctor_id: r.id("doctor_id")?,
                    escalation_level: r.int("escalation_level")?,
                })
            })
            .collect()
    }

    /// The active, available doctor other than `except` with the fewest
    /// unresolved alerts (then the longest-standing account): where an
    /// escalated alert goes.
    pub async fn least_loaded_doctor_except(self, except: UserId) -> Result<Option<UserId>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT u.id FROM users u JOIN doctors d ON d.user_id = u.id
             WHERE u.role = 'doctor' AND u.status = 'active' AND d.is_available = 1 AND u.id <> ?
             ORDER BY (SELECT COUNT(*) FROM alerts a WHERE a.doctor_id = u.id AND a.status <> 'resolved'), u.created_at, u.id
             LIMIT 1",
        )
        .bind(except.to_string())
        .fetch_optional(self.0.pool())
        .await?;
        row.map(|r| r.id("id")).transpose()
    }
}
