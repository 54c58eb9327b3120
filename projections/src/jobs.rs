//! Scheduled jobs: the runs recorded (`job_runs`, from `JobRan` events), and
//! the read-model queries the jobs and the weekly report ask.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::ids::{FileId, PatientId, SubscriptionId, UserId, VisitId};
use domain::job::{JobOutcome, JobRunEvent};
use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::projector::{ProjectionError, Projector, StoredEvent};
use crate::store::{instant, ReadStore, RowExt};

pub struct JobRunsProjector;

#[async_trait]
impl Projector for JobRunsProjector {
    fn name(&self) -> &'static str {
        "job_runs"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["job_runs"]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != "job_run" {
            return Ok(());
        }
        // A run's later parts (`JobRanContinued`) are counted in its `total`.
        let JobRunEvent::JobRan {
            job,
            period,
            at,
            outcome,
            total,
        } = e.decode::<JobRunEvent>()?
        else {
            return Ok(());
        };
        sqlx::query("INSERT INTO job_runs (id, job, period, ran_at, recorded_at, summary) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&e.aggregate_id)
            .bind(job)
            .bind(period)
            .bind(instant(at))
            .bind(e.at())
            .bind(summary(&outcome, total))
            .execute(&mut *c)
            .await?;
        Ok(())
    }
}

/// One line saying what a run did: of its whole outcome, or of the first part
/// of one recorded in parts with `total` items in all.
pub fn summary(outcome: &JobOutcome, total: Option<usize>) -> String {
    let n = total.unwrap_or_else(|| outcome.items());
    match outcome {
        JobOutcome::VisitReminders { day, .. } => format!("{n} recorders reminded of visits on {day}"),
        JobOutcome::CertificateExpiry { .. } => format!("{n} certificates expiring"),
        JobOutcome::SubscriptionExpiry { .. } => format!("{n} subscriptions expired"),
        JobOutcome::FileCleanup { .. } => format!("{n} unattached uploads deleted"),
        JobOutcome::MissedVisits { day, .. } => format!("{n} visits of {day} missed"),
        JobOutcome::WeeklyReport { week, .. } => format!("report of {week} ready"),
    }
}

/// The latest run of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobRunView {
    pub job: String,
    pub period: String,
    pub ran_at: String,
    pub recorded_at: String,
    pub summary: String,
}

/// A scheduled or confirmed visit of a day, for its recorder's reminder.
#[derive(Debug, Clone)]
pub struct DueVisit {
    pub visit_id: VisitId,
    pub recorder_id: UserId,
    pub patient_id: PatientId,
    pub date: String,
    pub time: String,
}

/// An upload never attached to a record, older than a cut-off.
#[derive(Debug, Clone)]
pub struct UnattachedFile {
    pub id: FileId,
    pub created_at: String,
    pub storage_key: String,
    pub thumbnail_key: Option<String>,
    pub discarded: bool,
}

/// Alerts by where they stand.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct AlertCounts {
    pub triggered: i64,
    pub acknowledged: i64,
    pub resolved: i64,
}

/// What a week held, for the agency or one recorder.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct ReportCounts {
    /// Visits dated in the week (cancelled ones excluded).
    pub visits_scheduled: i64,
    pub visits_completed: i64,
    pub visits_missed: i64,
    /// Health records of visits in the week.
    pub records: i64,
    /// Those records with abnormal vital signs.
    pub abnormal_readings: i64,
    /// Alerts triggered in the week, by their status now.
    pub alerts: AlertCounts,
    /// Medical orders issued in the week.
    pub orders: i64,
    /// Visit verification exceptions raised in the week.
    pub evv_exceptions: i64,
}

impl ReportCounts {
    fn add(&mut self, o: &ReportCounts) {
        self.visits_scheduled += o.visits_scheduled;
        self.visits_completed += o.visits_completed;
        self.visits_missed += o.visits_missed;
        self.records += o.records;
        self.abnormal_readings += o.abnormal_readings;
        self.alerts.triggered += o.alerts.triggered;
        self.alerts.acknowledged += o.alerts.acknowledged;
        self.alerts.resolved += o.alerts.resolved;
        self.orders += o.orders;
        self.evv_exceptions += o.evv_exceptions;
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecorderReport {
    #[schema(value_type = String, format = Uuid)]
    pub recorder_id: UserId,
    pub name: Option<String>,
    #[serde(flatten)]
    pub counts: ReportCounts,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WeeklyReport {
    /// ISO week, `YYYY-Www`.
    pub week: String,
    /// Its Monday and Sunday (local dates).
    pub from: String,
    pub to: String,
    /// The agency's totals (a recorder: their own).
    pub totals: ReportCounts,
    pub recorders: Vec<RecorderReport>,
}

impl ReadStore {
    /// The job runs read model, and the queries the jobs and the weekly report run.
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs(self)
    }
}

/// Queries of the job runs read model, and those the jobs and the weekly
/// report run over the other read models.
#[derive(Clone, Copy)]
pub struct Jobs<'a>(&'a ReadStore);

impl Jobs<'_> {
    /// The latest run of each job that ran.
    pub async fn latest_runs(self) -> Result<Vec<JobRunView>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT j.* FROM job_runs j WHERE j.recorded_at = (SELECT MAX(k.recorded_at) FROM job_runs k WHERE k.job = j.job)
             ORDER BY j.job, j.period DESC",
        )
        .fetch_all(self.0.pool())
        .await?;
        let mut out: Vec<JobRunView> = Vec::new();
        for r in &rows {
            let job = r.text("job")?;
            if out.last().is_some_and(|l| l.job == job) {
                continue;
            }
            out.push(JobRunView {
                job,
                period: r.text("period")?,
                ran_at: r.text("ran_at")?,
                recorded_at: r.text("recorded_at")?,
                summary: r.text("summary")?,
            });
        }
        Ok(out)
    }

    /// Scheduled and confirmed visits on `day`, by recorder and time.
    pub async fn due_visits_on(self, day: NaiveDate) -> Result<Vec<DueVisit>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, recorder_id, patient_id, scheduled_date, scheduled_time FROM appointments
             WHERE scheduled_date = ? AND status IN ('scheduled', 'confirmed')
             ORDER BY recorder_id, scheduled_time, id",
        )
        .bind(day.to_string())
        .fetch_all(self.0.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueVisit {
                    visit_id: r.id("id")?,
                    recorder_id: r.id("recorder_id")?,
                    patient_id: r.id("patient_id")?,
                    date: r.text("scheduled_date")?,
                    time: r.text("scheduled_time")?,
                })
            })
            .collect()
    }

    /// Visits still scheduled or confirmed whose day is before `day`.
    pub async fn open_visits_before(self, day: NaiveDate, limit: i64) -> Result<Vec<VisitId>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id FROM appointments WHERE scheduled_date < ? AND status IN ('scheduled', 'confirmed')
             ORDER BY scheduled_date, id LIMIT ?",
        )
        .bind(day.to_string())
        .bind(limit)
        .fetch_all(self.0.pool())
        .await?;
        rows.iter().map(|r| r.id("id")).collect()
    }

    /// Active recorders whose certificate expires between `from` and `to` (inclusive).
    pub async fn certificates_expiring(
        self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(UserId, NaiveDate)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT r.user_id, r.cert_expiry_date FROM recorders r JOIN users u ON u.id = r.user_id
             WHERE u.status = 'active' AND r.cert_expiry_date IS NOT NULL
               AND r.cert_expiry_date >= ? AND r.cert_expiry_date <= ?
             ORDER BY r.cert_expiry_date, r.user_id",
        )
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(self.0.pool())
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            if let Ok(d) = r.text("cert_expiry_date")?.parse::<NaiveDate>() {
                out.push((r.id("user_id")?, d));
            }
        }
        Ok(out)
    }

    /// Active or paused subscriptions whose end date is before `day`.
    pub async fn subscriptions_ended_before(
        self,
        day: NaiveDate,
        limit: i64,
    ) -> Result<Vec<SubscriptionId>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id FROM subscriptions WHERE end_date < ? AND status IN ('active', 'paused') ORDER BY end_date, id LIMIT ?",
        )
        .bind(day.to_string())
        .bind(limit)
        .fetch_all(self.0.pool())
        .await?;
        rows.iter().map(|r| r.id("id")).collect()
    }

    /// Uploads created before `before` and attached to no record: those not
    /// discarded yet, and those discarded after `discarded_since` (whose bytes
    /// a crash may have left in storage).
    pub async fn unattached_files(
        self,
        before: DateTime<Utc>,
        discarded_since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<UnattachedFile>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT f.id, f.created_at, f.storage_key, f.thumbnail_key, f.discarded_at FROM files f
             WHERE f.created_at < ? AND (f.discarded_at IS NULL OR f.discarded_at >= ?)
               AND NOT EXISTS (SELECT 1 FROM health_record_files rf WHERE rf.file_id = f.id)
             ORDER BY f.created_at, f.id LIMIT ?",
        )
        .bind(instant(before))
        .bind(instant(discarded_since))
        .bind(limit)
        .fetch_all(self.0.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UnattachedFile {
                    id: r.id("id")?,
                    created_at: r.text("created_at")?,
                    storage_key: r.text("storage_key")?,
                    thumbnail_key: r.opt_text("thumbnail_key")?,
                    discarded: r.opt_text("discarded_at")?.is_some(),
                })
            })
            .collect()
    }

    /// The week from `monday` to `sunday` (local dates; `[start, end)` the
    /// same as instants), for every recorder or only `recorder`.
    pub async fn weekly_report(
        self,
        week: &str,
        monday: NaiveDate,
        sunday: NaiveDate,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        recorder: Option<UserId>,
    ) -> Result<WeeklyReport, sqlx::Error> {
        let recorder = recorder.map(|r| r.to_string());
        let recorder = recorder.as_deref();
        let (from, to) = (monday.to_string(), sunday.to_string());
        let (start, end) = (instant(start), instant(end));
        let mut by: BTreeMap<String, ReportCounts> = BTreeMap::new();
        let only = if recorder.is_some() {
            " AND x.recorder_id = ?"
        } else {
            ""
        };
        let only_alerts = if recorder.is_some() {
            " AND h.recorder_id = ?"
        } else {
            ""
        };

        let q = format!(
            "SELECT x.recorder_id AS who, COUNT(*) AS n,
                COUNT(CASE WHEN x.status = 'completed' THEN 1 END) AS a,
                COUNT(CASE WHEN x.status = 'missed' THEN 1 END) AS b
             FROM appointments x WHERE x.scheduled_date >= ? AND x.scheduled_date <= ? AND x.status <> 'cancelled'{only}
             GROUP BY x.recorder_id"
        );
        for r in &self.grouped(&q, &from, &to, recorder).await? {
            let c = by.entry(r.0.clone()).or_default();
            c.visits_scheduled = r.1;
            c.visits_completed = r.2;
            c.visits_missed = r.3;
        }
        let q = format!(
            "SELECT x.recorder_id AS who, COUNT(*) AS n, COUNT(CASE WHEN x.abnormal <> 0 THEN 1 END) AS a, 0 AS b
             FROM health_records x WHERE x.visit_date >= ? AND x.visit_date <= ?{only} GROUP BY x.recorder_id"
        );
        for r in &self.grouped(&q, &from, &to, recorder).await? {
            let c = by.entry(r.0.clone()).or_default();
            c.records = r.1;
            c.abnormal_readings = r.2;
        }
        let q = format!(
            "SELECT h.recorder_id AS who, COUNT(CASE WHEN a.status = 'triggered' THEN 1 END) AS n,
                COUNT(CASE WHEN a.status = 'acknowledged' THEN 1 END) AS a,
                COUNT(CASE WHEN a.status = 'resolved' THEN 1 END) AS b
             FROM alerts a JOIN health_records h ON h.id = a.health_record_id
             WHERE a.triggered_at >= ? AND a.triggered_at < ?{only_alerts} GROUP BY h.recorder_id"
        );
        for r in &self.grouped(&q, &start, &end, recorder).await? {
            let c = by.entry(r.0.clone()).or_default();
            c.alerts = AlertCounts {
                triggered: r.1,
                acknowledged: r.2,
                resolved: r.3,
            };
        }
        let q = format!(
            "SELECT x.recorder_id AS who, COUNT(*) AS n, 0 AS a, 0 AS b FROM medical_orders x
             WHERE x.created_at >= ? AND x.created_at < ? AND x.recorder_id IS NOT NULL{only} GROUP BY x.recorder_id"
        );
        for r in &self.grouped(&q, &start, &end, recorder).await? {
            by.entry(r.0.clone()).or_default().orders = r.1;
        }
        let q = format!(
            "SELECT x.recorder_id AS who, COUNT(*) AS n, 0 AS a, 0 AS b FROM evv_exceptions x
             WHERE x.raised_at >= ? AND x.raised_at < ?{only} GROUP BY x.recorder_id"
        );
        for r in &self.grouped(&q, &start, &end, recorder).await? {
            by.entry(r.0.clone()).or_default().evv_exceptions = r.1;
        }

        let mut totals = ReportCounts::default();
        let mut recorders = Vec::new();
        for (recorder_id, counts) in by {
            totals.add(&counts);
            let name = sqlx::query_scalar("SELECT name FROM users WHERE id = ?")
                .bind(&recorder_id)
                .fetch_optional(self.0.pool())
                .await?;
            recorders.push(RecorderReport {
                recorder_id: recorder_id.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                name,
                counts,
            });
        }
        Ok(WeeklyReport {
            week: week.to_string(),
            from,
            to,
            totals,
            recorders,
        })
    }

    /// Runs a report query grouped by recorder: `(who, n, a, b)`.
    async fn grouped(
        self,
        q: &str,
        from: &str,
        to: &str,
        recorder: Option<&str>,
    ) -> Result<Vec<(String, i64, i64, i64)>, sqlx::Error> {
        let mut query = sqlx::query(q).bind(from.to_string()).bind(to.to_string());
        if let Some(r) = recorder {
            query = query.bind(r.to_string());
        }
        let rows = query.fetch_all(self.0.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.text("who")?, r.int("n")?, r.int("a")?, r.int("b")?)))
            .collect()
    }
}
