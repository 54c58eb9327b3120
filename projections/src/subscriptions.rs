//! Subscriptions: which patient is under which package, visited by which recorder.
//! A subscription whose end date has passed reads as `expired` without any
//! event: expiry is a fact of the calendar, computed against "today".

use async_trait::async_trait;
use chrono::NaiveDate;
use domain::ids::{FamilyId, PackageId, PatientId, SubscriptionId, UserId};
use domain::subscription::{PaymentStatus, SubscriptionEvent, SubscriptionStatus};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::bulk::{apply_buffered, Buffer, Rows};
use crate::page::{ListQuery, Page, PageParams, Param, Where};
use crate::projector::{ProjectionError, Projector, StoredEvent};
use crate::store::{ReadStore, RowExt};

pub struct SubscriptionsProjector;

#[async_trait]
impl Projector for SubscriptionsProjector {
    fn name(&self) -> &'static str {
        "subscriptions"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["subscriptions"]
    }

    /// A recorder's and the assignment checks' orders; its writes go by id.
    fn deferred_indexes(&self) -> &'static [&'static str] {
        &["subscriptions_recorder", "subscriptions_assigned"]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        self.apply_all(c, &[e]).await
    }

    /// Subscriptions taken out are written as multi-row inserts.
    async fn apply_all(&self, c: &mut AnyConnection, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        apply_buffered(c, events, &mut SubscriptionRows::default()).await
    }
}

/// The rows of a run of subscriptions taken out.
struct SubscriptionRows(Rows);

impl Default for SubscriptionRows {
    fn default() -> Self {
        SubscriptionRows(Rows::new(
            "INSERT",
            "subscriptions",
            "id, patient_id, package_id, recorder_id, start_date, end_date, status, payment_status, created_at,
             updated_at, version",
            "(?, ?, ?, ?, ?, ?, 'active', 'unpaid', ?, ?, ?)",
        ))
    }
}

#[async_trait]
impl Buffer for SubscriptionRows {
    async fn take(&mut self, _: &mut AnyConnection, e: &StoredEvent) -> Result<bool, ProjectionError> {
        if e.aggregate_type != "subscription" {
            return Ok(true);
        }
        if e.event_type != "SubscriptionCreated" {
            return Ok(false);
        }
        let SubscriptionEvent::SubscriptionCreated(t) = e.decode::<SubscriptionEvent>()? else {
            return Ok(false);
        };
        let at = e.at();
        self.0.push([
            e.aggregate_id.as_str().into(),
            t.patient_id.to_string().into(),
            t.package_id.to_string().into(),
            t.recorder_id.to_string().into(),
            t.start_date.to_string().into(),
            t.end_date.to_string().into(),
            (&at).into(),
            at.into(),
            e.sequence.into(),
        ]);
        Ok(true)
    }

    async fn flush(&mut self, c: &mut AnyConnection) -> Result<(), ProjectionError> {
        Ok(self.0.flush(c).await?)
    }

    async fn apply_one(&mut self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        let id = e.aggregate_id.as_str();
        let at = e.at();
        let (column, value) = match e.decode::<SubscriptionEvent>()? {
            // Taken by `take`, every one.
            SubscriptionEvent::SubscriptionCreated(_) => return Ok(()),
            SubscriptionEvent::SubscriptionStatusChanged { status, .. } => ("status", status.as_str()),
            SubscriptionEvent::SubscriptionPaymentChanged { payment_status } => {
                ("payment_status", payment_status.as_str())
            }
            SubscriptionEvent::SubscriptionExpired { .. } => ("status", "expired"),
        };
        sqlx::query(&format!(
            "UPDATE subscriptions SET {column} = ?, updated_at = ?, version = ? WHERE id = ?"
        ))
        .bind(value)
        .bind(&at)
        .bind(e.sequence)
        .bind(id)
        .execute(&mut *c)
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionView {
    #[schema(value_type = String, format = Uuid)]
    pub id: SubscriptionId,
    #[schema(value_type = String, format = Uuid)]
    pub patient_id: PatientId,
    #[schema(value_type = String, format = Uuid)]
    pub package_id: PackageId,
    pub package_name: String,
    #[schema(value_type = String, format = Uuid)]
    pub recorder_id: UserId,
    pub start_date: String,
    pub end_date: String,
    /// active | paused | cancelled | expired
    #[schema(value_type = String)]
    pub status: SubscriptionStatus,
    #[schema(value_type = String)]
    pub payment_status: PaymentStatus,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

/// What the family detail shows of a patient's current subscription.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionSummary {
    #[schema(value_type = String, format = Uuid)]
    pub id: SubscriptionId,
    pub package_name: String,
    #[schema(value_type = String)]
    pub status: SubscriptionStatus,
    pub start_date: String,
    pub end_date: String,
    #[schema(value_type = String, format = Uuid)]
    pub recorder_id: UserId,
}

/// The status a client sees: `expired` once the end date has passed.
pub fn effective_status(status: SubscriptionStatus, end_date: &str, today: NaiveDate) -> SubscriptionStatus {
    if status == SubscriptionStatus::Active && end_date < today.to_string().as_str() {
        SubscriptionStatus::Expired
    } else {
        status
    }
}

/// The subscription that describes a patient now: an active one first, then a
/// paused one, then the most recent expired one; cancelled ones never.
pub fn current_subscription<'a>(
    subs: impl Iterator<Item = &'a SubscriptionView>,
    today: NaiveDate,
) -> Option<SubscriptionSummary> {
    let rank = |s: &SubscriptionView| match effective_status(s.status, &s.end_date, today) {
        SubscriptionStatus::Active => 3,
        SubscriptionStatus::Paused => 2,
        SubscriptionStatus::Expired => 1,
        SubscriptionStatus::Cancelled => 0,
    };
    subs.filter(|s| rank(s) > 0)
        .max_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.start_date.cmp(&b.start_date)))
        .map(|s| SubscriptionSummary {
            id: s.id,
            package_name: s.package_name.clone(),
            status: effective_status(s.status, &s.end_date, today),
            start_date: s.start_date.clone(),
            end_date: s.end_date.clone(),
            recorder_id: s.recorder_id,
        })
}

/// The one rule of who may see a patient's data as their recorder: a
/// subscription of the patient assigned to the recorder, `active`, and running
/// today (`start_date <= today <= end_date`). A subscription that starts
/// tomorrow gives nothing today; one that ended yesterday gives nothing either.
///
/// Returns an `EXISTS (...)` condition over the SQL expression `patient` (a
/// column such as `p.id`); it takes three binds, in order: the recorder's id,
/// today, today ([`bind_assigned`] binds them).
pub fn assigned_sql(patient: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM subscriptions s_asg WHERE s_asg.patient_id = {patient} AND s_asg.recorder_id = ?
            AND s_asg.status = 'active' AND s_asg.start_date <= ? AND s_asg.end_date >= ?)"
    )
}

/// The values [`assigned_sql`] takes: the recorder, today, today.
pub fn assigned_binds(recorder: UserId, today: NaiveDate) -> (String, String, String) {
    (recorder.to_string(), today.to_string(), today.to_string())
}

/// The values [`assigned_sql`] takes, as the params of a [`Where`] condition.
pub(crate) fn assigned_params(recorder: UserId, today: NaiveDate) -> [Param; 3] {
    let (r, from, to) = assigned_binds(recorder, today);
    [r.into(), from.into(), to.into()]
}

/// Binds the three values of [`assigned_sql`] on a query.
#[macro_export]
macro_rules! bind_assigned {
    ($q:expr, $binds:expr) => {
        $q.bind($binds.0.clone()).bind($binds.1.clone()).bind($binds.2.clone())
    };
}

const SUB_SELECT: &str = "SELECT s.*, k.name AS package_name FROM subscriptions s
    JOIN service_packages k ON k.id = s.package_id";

fn sub_view(r: &AnyRow) -> Result<SubscriptionView, sqlx::Error> {
    Ok(SubscriptionView {
        id: r.id("id")?,
        patient_id: r.id("patient_id")?,
        package_id: r.id("package_id")?,
        package_name: r.text("package_name")?,
        recorder_id: r.id("recorder_id")?,
        start_date: r.text("start_date")?,
        end_date: r.text("end_date")?,
        status: r.status("status")?,
        payment_status: r.status("payment_status")?,
        created_at: r.text("created_at")?,
        updated_at: r.text("updated_at")?,
        version: r.int("version")?,
    })
}

/// As [`sub_view`], with the status a client sees on `today`.
fn effective_view(r: &AnyRow, today: NaiveDate) -> Result<SubscriptionView, sqlx::Error> {
    let mut v = sub_view(r)?;
    v.status = effective_status(v.status, &v.end_date, today);
    Ok(v)
}

impl ReadStore {
    /// The subscriptions read model.
    pub fn subscriptions(&self) -> Subscriptions<'_> {
        Subscriptions(self)
    }
}

/// Queries of the subscriptions read model. Statuses read as of `today`
/// ([`effective_status`]) where a query takes it.
#[derive(Clone, Copy)]
pub struct Subscriptions<'a>(&'a ReadStore);

impl Subscriptions<'_> {
    pub async fn get(self, id: SubscriptionId, today: NaiveDate) -> Result<Option<SubscriptionView>, sqlx::Error> {
        let row = sqlx::query(&format!("{SUB_SELECT} WHERE s.id = ?"))
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.as_ref().map(|r| effective_view(r, today)).transpose()
    }

    /// Subscriptions, newest first, of `patient` and of `recorder` when given.
    pub async fn list(
        self,
        patient: Option<PatientId>,
        recorder: Option<UserId>,
        today: NaiveDate,
        page: PageParams,
    ) -> Result<Page<SubscriptionView>, sqlx::Error> {
        let filter = Where::new()
            .and_eq("s.patient_id = ?", patient.map(|p| p.to_string()))
            .and_eq("s.recorder_id = ?", recorder.map(|r| r.to_string()));
        let list = ListQuery {
            select: SUB_SELECT,
            from: "subscriptions s",
            order_by: "s.created_at DESC, s.id",
        };
        self.0.page(&list, &filter, page, |r| effective_view(r, today)).await
    }

    /// Every subscription of a patient, statuses as stored.
    pub(crate) async fn of_patient(
        self,
        conn: &mut sqlx::AnyConnection,
        patient: PatientId,
    ) -> Result<Vec<SubscriptionView>, sqlx::Error> {
        let rows = sqlx::query(&format!("{SUB_SELECT} WHERE s.patient_id = ?"))
            .bind(patient.to_string())
            .fetch_all(conn)
            .await?;
        rows.iter().map(sub_view).collect()
    }

    /// Every subscription of the patients of a family, statuses as stored.
    pub(crate) async fn of_family(
        self,
        conn: &mut sqlx::AnyConnection,
        family: FamilyId,
    ) -> Result<Vec<SubscriptionView>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "{SUB_SELECT} WHERE s.patient_id IN (SELECT id FROM patients WHERE family_id = ?)"
        ))
        .bind(family.to_string())
        .fetch_all(conn)
        .await?;
        rows.iter().map(sub_view).collect()
    }

    /// Whether `recorder` may see `patient` today (see [`assigned_sql`]).
    pub async fn assigned(self, recorder: UserId, patient: PatientId, today: NaiveDate) -> Result<bool, sqlx::Error> {
        let sql = format!(
            "SELECT COUNT(*) FROM patients p WHERE p.id = ? AND {}",
            assigned_sql("p.id")
        );
        let n: i64 = bind_assigned!(
            sqlx::query_scalar(&sql).bind(patient.to_string()),
            assigned_binds(recorder, today)
        )
        .fetch_one(self.0.pool())
        .await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use SubscriptionStatus::{Active, Cancelled, Expired, Paused};

    fn sub(status: SubscriptionStatus, start: &str, end: &str) -> SubscriptionView {
        SubscriptionView {
            id: SubscriptionId::new(),
            patient_id: PatientId::new(),
            package_id: PackageId::new(),
            package_name: "基础".into(),
            recorder_id: UserId::new(),
            start_date: start.into(),
            end_date: end.into(),
            status,
            payment_status: PaymentStatus::Paid,
            created_at: String::new(),
            updated_at: String::new(),
            version: 1,
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_subscription_past_its_end_date_reads_as_expired() {
        assert_eq!(effective_status(Active, "2026-01-31", day("2026-02-01")), Expired);
        assert_eq!(effective_status(Active, "2026-01-31", day("2026-01-31")), Active);
        assert_eq!(effective_status(Paused, "2026-01-31", day("2026-02-01")), Paused);
    }

    #[test]
    fn the_current_subscription_prefers_active_then_paused_and_never_cancelled() {
        let today = day("2026-03-01");
        let subs = [
            sub(Cancelled, "2026-02-01", "2026-12-31"),
            sub(Active, "2025-01-01", "2025-12-31"),
            sub(Paused, "2026-02-15", "2026-05-01"),
        ];
        assert_eq!(current_subscription(subs.iter(), today).unwrap().status, Paused);
        let with_active = [subs[1].clone(), sub(Active, "2026-02-20", "2026-05-20")];
        assert_eq!(current_subscription(with_active.iter(), today).unwrap().status, Active);
        assert!(current_subscription([subs[0].clone()].iter(), today).is_none());
    }
}
