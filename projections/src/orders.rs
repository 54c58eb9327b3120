//! Order requests, medical orders, and the notifications they send.

use async_trait::async_trait;
use chrono::NaiveDate;
use domain::alert::AlertEvent;
use domain::ids::{AlertId, HealthRecordId, MedicalOrderId, OrderRequestId, PatientId, UserId};
use domain::inbox::{InboxEvent, NotificationStatus};
use domain::job::{JobOutcome, JobRunEvent};
use domain::order::{MedicalOrderEvent, OrderRequestEvent, OrderStatus, OrderType, RequestStatus};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::page::{ListQuery, Page, PageParams, Param, Where};
use crate::projector::{erase_rows, erased_patient, ProjectionError, Projector, StoredEvent};
use crate::store::{ReadStore, RowExt};
use crate::subscriptions::{assigned_params, assigned_sql};

/// A patient's medical orders newest first: `medical_orders_patient`
/// (`patient_id, created_at`, and the id InnoDB appends) read backwards, so
/// MySQL stops at the page instead of sorting every order of the patient, as
/// it did with the id ascending (see `records::RECORDS_NEWEST_FIRST`).
pub const ORDERS_NEWEST_FIRST: &str = "created_at DESC, id DESC";

/// The doctor of a patient's newest medical order (the first of
/// [`ORDERS_NEWEST_FIRST`]).
pub const LATEST_DOCTOR: &str =
    "SELECT doctor_id FROM medical_orders WHERE patient_id = ? ORDER BY created_at DESC, id DESC LIMIT 1";

pub struct OrdersProjector;

#[async_trait]
impl Projector for OrdersProjector {
    fn name(&self) -> &'static str {
        "medical_orders"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["order_requests", "medical_orders"]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        if let Some(patient) = erased_patient(e) {
            return erase_rows(c, patient, &[
                "UPDATE order_requests SET reason = NULL WHERE patient_id = ?",
                "UPDATE medical_orders SET content = '[已删除]', notes = NULL, cancel_reason = NULL WHERE patient_id = ?",
            ])
            .await;
        }
        let id = e.aggregate_id.as_str();
        let at = e.at();
        let (table, set, value): (&str, &str, Option<String>) = match e.aggregate_type.as_str() {
            "order_request" => match e.decode::<OrderRequestEvent>()? {
                OrderRequestEvent::OrderRequested(d) => {
                    sqlx::query(
                        "INSERT INTO order_requests (id, health_record_id, patient_id, doctor_id, requested_by, recorder_id,
                            reason, alerts, abnormal, urgent, status, created_at, updated_at, version, alert_id)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)",
                    )
                    .bind(id)
                    .bind(d.health_record_id.to_string())
                    .bind(d.patient_id.to_string())
                    .bind(d.doctor_id.to_string())
                    .bind(d.requested_by.map(|u| u.to_string()))
                    .bind(d.recorder_id.to_string())
                    .bind(&d.reason)
                    .bind(serde_json::to_string(&d.alerts).unwrap_or_else(|_| "[]".into()))
                    .bind(i64::from(d.abnormal()))
                    .bind(i64::from(d.urgent()))
                    .bind(&at)
                    .bind(&at)
                    .bind(e.sequence)
                    .bind(d.alert_id.map(|a| a.to_string()))
                    .execute(&mut *c)
                    .await?;
                    return Ok(());
                }
                OrderRequestEvent::OrderRequestFulfilled { order_id } => {
                    sqlx::query("UPDATE order_requests SET order_id = ? WHERE id = ?")
                        .bind(order_id.to_string())
                        .bind(id)
                        .execute(&mut *c)
                        .await?;
                    ("order_requests", "status", Some("fulfilled".into()))
                }
                OrderRequestEvent::OrderRequestCancelled { .. } => {
                    ("order_requests", "status", Some("cancelled".into()))
                }
            },
            "medical_order" => match e.decode::<MedicalOrderEvent>()? {
                MedicalOrderEvent::MedicalOrderIssued(d) => {
                    sqlx::query(
                        "INSERT INTO medical_orders (id, patient_id, doctor_id, recorder_id, request_id, health_record_id,
                            order_type, content, dosage, frequency, duration, notes, status, created_at, updated_at, version)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)",
                    )
                    .bind(id)
                    .bind(d.patient_id.to_string())
                    .bind(d.doctor_id.to_string())
                    .bind(d.recorder_id.map(|u| u.to_string()))
                    .bind(d.request_id.map(|u| u.to_string()))
                    .bind(d.health_record_id.map(|u| u.to_string()))
                    .bind(d.order_type.as_str())
                    .bind(&d.content)
                    .bind(&d.dosage)
                    .bind(&d.frequency)
                    .bind(&d.duration)
                    .bind(&d.notes)
                    .bind(&at)
                    .bind(&at)
                    .bind(e.sequence)
                    .execute(&mut *c)
                    .await?;
                    return Ok(());
                }
                MedicalOrderEvent::MedicalOrderCompleted => ("medical_orders", "status", Some("completed".into())),
                MedicalOrderEvent::MedicalOrderCancelled { reason } => {
                    sqlx::query("UPDATE medical_orders SET cancel_reason = ? WHERE id = ?")
                        .bind(reason)
                        .bind(id)
                        .execute(&mut *c)
                        .await?;
                    ("medical_orders", "status", Some("cancelled".into()))
                }
            },
            _ => return Ok(()),
        };
        sqlx::query(&format!(
            "UPDATE {table} SET {set} = ?, updated_at = ?, version = ? WHERE id = ?"
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

/// Notifications are derived from events; their id is derived from the event
/// that caused them, so a rebuild gives every notification the same id again.
pub struct NotificationsProjector;

const NOTIFICATION_NS: Uuid = Uuid::from_u128(0x6361_7265_6c6f_6700_0000_0000_0000_0002);

pub fn notification_id(aggregate_id: &str, sequence: i64) -> String {
    Uuid::new_v5(&NOTIFICATION_NS, format!("{aggregate_id}:{sequence}").as_bytes()).to_string()
}

#[async_trait]
impl Projector for NotificationsProjector {
    fn name(&self) -> &'static str {
        "notifications"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["notifications"]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        if let Some(patient) = erased_patient(e) {
            return erase_rows(
                c,
                patient,
                &["UPDATE notifications SET body = '[已删除]' WHERE patient_id = ?"],
            )
            .await;
        }
        if e.aggregate_type == "inbox" {
            let InboxEvent::NotificationRead { notification_id } = e.decode::<InboxEvent>()?;
            sqlx::query("UPDATE notifications SET read_at = ? WHERE id = ? AND user_id = ? AND read_at IS NULL")
                .bind(e.at())
                .bind(notification_id)
                .bind(&e.aggregate_id)
                .execute(&mut *c)
                .await?;
            return Ok(());
        }
        for notice in notices(e)? {
            notify(c, e, notice).await?;
        }
        Ok(())
    }
}

/// A notification an event sends: its id (derived from the event, so a
/// rebuild or a second consumer — the in-app list, the WeChat push — names
/// the same notification), recipient, kind, title, body, what it is about
/// (`ref_type`; the id is the event's aggregate), the patient, and whether it
/// is urgent.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub id: String,
    pub user_id: String,
    pub kind: &'static str,
    pub title: String,
    pub body: String,
    pub ref_type: &'static str,
    pub patient_id: Option<String>,
    pub urgent: bool,
}

impl Notice {
    /// The one notice an event sends (its id derived from the event).
    fn of(
        e: &StoredEvent,
        user_id: String,
        kind: &'static str,
        title: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Notice {
            id: notification_id(&e.aggregate_id, e.sequence),
            user_id,
            kind,
            title: title.into(),
            body: body.into(),
            ref_type: "",
            patient_id: None,
            urgent: false,
        }
    }
    fn about(mut self, ref_type: &'static str) -> Self {
        self.ref_type = ref_type;
        self
    }
    fn patient(mut self, patient_id: String) -> Self {
        self.patient_id = Some(patient_id).filter(|p| !p.is_empty());
        self
    }
    fn urgent(mut self, urgent: bool) -> Self {
        self.urgent = urgent;
        self
    }
}

/// What `e` tells whom: the notifications derived from one event. Pure, so the
/// in-app notifications and any other channel agree on who gets what.
pub fn notices(e: &StoredEvent) -> Result<Vec<Notice>, ProjectionError> {
    Ok(match e.aggregate_type.as_str() {
        "order_request" => match e.decode::<OrderRequestEvent>()? {
            OrderRequestEvent::OrderRequested(d) => {
                let (kind, title) = if d.urgent() {
                    ("order_request_urgent", "紧急：患者生命体征异常，请尽快处理")
                } else if d.abnormal() {
                    ("order_request_abnormal", "患者生命体征异常，请开具医嘱")
                } else {
                    ("order_request", "新的医嘱申请")
                };
                let body = if d.alerts.is_empty() {
                    d.reason.clone().unwrap_or_else(|| "记录员申请医嘱".into())
                } else {
                    d.alerts
                        .iter()
                        .map(|a| a.message.as_str())
                        .collect::<Vec<_>>()
                        .join("；")
                };
                vec![Notice::of(e, d.doctor_id.to_string(), kind, title, body)
                    .about("order_request")
                    .patient(d.patient_id.to_string())
                    .urgent(d.urgent())]
            }
            _ => vec![],
        },
        "medical_order" => match e.decode::<MedicalOrderEvent>()? {
            MedicalOrderEvent::MedicalOrderIssued(d) => d
                .recorder_id
                .map(|recorder| {
                    Notice::of(
                        e,
                        recorder.to_string(),
                        "medical_order",
                        "医生开具了新医嘱",
                        d.content.clone(),
                    )
                    .about("medical_order")
                    .patient(d.patient_id.to_string())
                })
                .into_iter()
                .collect(),
            _ => vec![],
        },
        "hospital_appointment" => match e.decode::<domain::booking::BookingEvent>()? {
            domain::booking::BookingEvent::HospitalBookingConfirmed {
                appointment_number,
                recorder_id,
                ..
            } => vec![Notice::of(
                e,
                recorder_id.to_string(),
                "hospital_appointment_confirmed",
                "医院预约已确认",
                format!("预约号：{appointment_number}"),
            )
            .about("hospital_appointment")],
            _ => vec![],
        },
        "alert" => alert_notices(e)?,
        "job_run" => job_notices(e)?,
        _ => vec![],
    })
}

/// What a scheduled job's run tells whom: one notice per recipient, its id
/// derived from the run and the recipient.
fn job_notices(e: &StoredEvent) -> Result<Vec<Notice>, ProjectionError> {
    // A run recorded in parts: each part's recipients are told from it, and
    // the admins (in the first part only) of the whole count.
    let (outcome, total) = match e.decode::<JobRunEvent>()? {
        JobRunEvent::JobRan { outcome, total, .. } => (outcome, total),
        JobRunEvent::JobRanContinued { outcome } => (outcome, None),
    };
    let count = total.unwrap_or_else(|| outcome.items());
    let to = |user: String, kind: &'static str, title: &str, body: String| {
        let mut n = Notice::of(e, user.clone(), kind, title, body).about("job_run");
        n.id = notification_id(&format!("{}:{user}", e.aggregate_id), e.sequence);
        n
    };
    Ok(match outcome {
        JobOutcome::VisitReminders { day, reminders } => reminders
            .into_iter()
            .filter(|r| !r.visits.is_empty())
            .map(|r| {
                let times: Vec<String> = r.visits.iter().map(|v| v.time.format("%H:%M").to_string()).collect();
                to(
                    r.recorder_id.to_string(),
                    "visit_reminder",
                    "明日上门提醒",
                    format!("{day}共有{}个上门：{}", r.visits.len(), times.join("、")),
                )
            })
            .collect(),
        JobOutcome::CertificateExpiry { expiring, admins } => {
            let mut out: Vec<Notice> = expiring
                .iter()
                .map(|c| {
                    to(
                        c.recorder_id.to_string(),
                        "certificate_expiry",
                        "资格证书即将到期",
                        format!("您的资格证书将于{}到期，请及时更新", c.expires_on),
                    )
                })
                .collect();
            if !expiring.is_empty() {
                for admin in admins {
                    out.push(to(
                        admin.to_string(),
                        "certificate_expiry_summary",
                        "记录员资格证书到期提醒",
                        format!("{count}名记录员的资格证书将在30天内到期"),
                    ));
                }
            }
            out
        }
        JobOutcome::MissedVisits { day, missed, admins } if !missed.is_empty() => admins
            .into_iter()
            .map(|admin| {
                to(
                    admin.to_string(),
                    "missed_visits",
                    "未完成的上门",
                    format!("{day}有{count}个上门未完成也未取消"),
                )
            })
            .collect(),
        JobOutcome::WeeklyReport { week, admins } => admins
            .into_iter()
            .map(|admin| {
                to(
                    admin.to_string(),
                    "weekly_report",
                    "周报已生成",
                    format!("{week}的周报已生成"),
                )
            })
            .collect(),
        JobOutcome::MissedVisits { .. } | JobOutcome::SubscriptionExpiry { .. } | JobOutcome::FileCleanup { .. } => {
            vec![]
        }
    })
}

async fn notify(c: &mut AnyConnection, e: &StoredEvent, n: Notice) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, title, body, ref_type, ref_id, patient_id, urgent, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(n.id)
    .bind(n.user_id)
    .bind(n.kind)
    .bind(n.title)
    .bind(n.body)
    .bind(n.ref_type)
    .bind(&e.aggregate_id)
    .bind(n.patient_id)
    .bind(i64::from(n.urgent))
    .bind(e.at())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// What an alert's events tell whom. A new alert tells its doctor through the
/// order request raised with it (one notice per abnormal record:
/// `order_request_abnormal` or `_urgent`, with the reasons); an escalation
/// tells the doctor it goes to and every admin named in the event.
fn alert_notices(e: &StoredEvent) -> Result<Vec<Notice>, ProjectionError> {
    Ok(match e.decode::<AlertEvent>()? {
        AlertEvent::AlertEscalated {
            level,
            from_doctor,
            to_doctor,
            admins,
            ..
        } => {
            let moved = from_doctor != to_doctor;
            let (doctor_body, admin_body) = if moved {
                (
                    "原负责医生未在规定时间内确认该警报，现转由您处理",
                    "负责医生未在规定时间内确认，已转交其他医生",
                )
            } else {
                (
                    "该警报仍未确认，已升级，请立即处理",
                    "负责医生未在规定时间内确认，暂无其他可用医生",
                )
            };
            let mut notices = vec![Notice::of(
                e,
                to_doctor.to_string(),
                "alert_escalated",
                format!("异常警报已升级（第{level}级），请立即确认"),
                doctor_body,
            )
            .about("alert")
            .urgent(true)];
            for admin in admins {
                let mut n = Notice::of(
                    e,
                    admin.to_string(),
                    "alert_escalated_admin",
                    format!("异常警报无人确认，已升级至第{level}级"),
                    admin_body,
                )
                .about("alert")
                .urgent(true);
                n.id = notification_id(&format!("{}:{admin}", e.aggregate_id), e.sequence);
                notices.push(n);
            }
            notices
        }
        AlertEvent::AlertTriggered(_) | AlertEvent::AlertAcknowledged { .. } | AlertEvent::AlertResolved { .. } => {
            vec![]
        }
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderRequestView {
    #[schema(value_type = String, format = Uuid)]
    pub id: OrderRequestId,
    #[schema(value_type = String, format = Uuid)]
    pub health_record_id: HealthRecordId,
    #[schema(value_type = String, format = Uuid)]
    pub patient_id: PatientId,
    pub patient_name: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub doctor_id: UserId,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub requested_by: Option<UserId>,
    #[schema(value_type = String, format = Uuid)]
    pub recorder_id: UserId,
    pub reason: Option<String>,
    pub abnormal: bool,
    pub urgent: bool,
    #[schema(value_type = Vec<crate::records::AlertView>)]
    pub alerts: serde_json::Value,
    #[schema(value_type = String)]
    pub status: RequestStatus,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub order_id: Option<MedicalOrderId>,
    /// The alert it was raised with (abnormal vitals), if any.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub alert_id: Option<AlertId>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

fn request_view(r: &AnyRow) -> Result<OrderRequestView, sqlx::Error> {
    Ok(OrderRequestView {
        id: r.id("id")?,
        health_record_id: r.id("health_record_id")?,
        patient_id: r.id("patient_id")?,
        patient_name: r.opt_text("patient_name")?,
        doctor_id: r.id("doctor_id")?,
        requested_by: r.opt_id("requested_by")?,
        recorder_id: r.id("recorder_id")?,
        reason: r.opt_text("reason")?,
        abnormal: r.int("abnormal")? != 0,
        urgent: r.int("urgent")? != 0,
        alerts: r.json("alerts")?,
        status: r.status("status")?,
        order_id: r.opt_id("order_id")?,
        alert_id: r.opt_id("alert_id")?,
        created_at: r.text("created_at")?,
        updated_at: r.text("updated_at")?,
        version: r.int("version")?,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MedicalOrderView {
    #[schema(value_type = String, format = Uuid)]
    pub id: MedicalOrderId,
    #[schema(value_type = String, format = Uuid)]
    pub patient_id: PatientId,
    #[schema(value_type = String, format = Uuid)]
    pub doctor_id: UserId,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub recorder_id: Option<UserId>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub request_id: Option<OrderRequestId>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub health_record_id: Option<HealthRecordId>,
    #[schema(value_type = String)]
    pub order_type: OrderType,
    pub content: String,
    pub dosage: Option<String>,
    pub frequency: Option<String>,
    pub duration: Option<String>,
    pub notes: Option<String>,
    #[schema(value_type = String)]
    pub status: OrderStatus,
    pub cancel_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

fn order_view(r: &AnyRow) -> Result<MedicalOrderView, sqlx::Error> {
    Ok(MedicalOrderView {
        id: r.id("id")?,
        patient_id: r.id("patient_id")?,
        doctor_id: r.id("doctor_id")?,
        recorder_id: r.opt_id("recorder_id")?,
        request_id: r.opt_id("request_id")?,
        health_record_id: r.opt_id("health_record_id")?,
        order_type: r.status("order_type")?,
        content: r.text("content")?,
        dosage: r.opt_text("dosage")?,
        frequency: r.opt_text("frequency")?,
        duration: r.opt_text("duration")?,
        notes: r.opt_text("notes")?,
        status: r.status("status")?,
        cancel_reason: r.opt_text("cancel_reason")?,
        created_at: r.text("created_at")?,
        updated_at: r.text("updated_at")?,
        version: r.int("version")?,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub ref_type: String,
    pub ref_id: String,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub patient_id: Option<PatientId>,
    pub urgent: bool,
    /// unread | read
    #[schema(value_type = String)]
    pub status: NotificationStatus,
    pub created_at: String,
    pub read_at: Option<String>,
}

impl ReadStore {
    /// The order requests and medical orders read model.
    pub fn orders(&self) -> Orders<'_> {
        Orders(self)
    }

    /// The notifications read model (every user's inbox).
    pub fn notifications(&self) -> Notifications<'_> {
        Notifications(self)
    }
}

/// Queries of the order requests and medical orders read model.
#[derive(Clone, Copy)]
pub struct Orders<'a>(&'a ReadStore);

impl Orders<'_> {
    /// Order requests, urgent first, then newest.
    pub async fn requests(
        self,
        doctor: Option<UserId>,
        status: Option<RequestStatus>,
        page: PageParams,
    ) -> Result<Page<OrderRequestView>, sqlx::Error> {
        let filter = Where::new()
            .and_eq("q.doctor_id = ?", doctor.map(|d| d.to_string()))
            .and_eq("q.status = ?", status.map(|s| s.as_str()));
        let list = ListQuery {
            select:
                "SELECT q.*, p.name AS patient_name FROM order_requests q LEFT JOIN patients p ON p.id = q.patient_id",
            from: "order_requests q",
            order_by: "q.urgent DESC, q.created_at DESC, q.id",
        };
        self.0.page(&list, &filter, page, request_view).await
    }

    pub async fn request(self, id: OrderRequestId) -> Result<Option<OrderRequestView>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT q.*, p.name AS patient_name FROM order_requests q LEFT JOIN patients p ON p.id = q.patient_id WHERE q.id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(self.0.pool())
        .await?;
        row.as_ref().map(request_view).transpose()
    }

    pub async fn get(self, id: MedicalOrderId) -> Result<Option<MedicalOrderView>, sqlx::Error> {
        let row = sqlx::query("SELECT * FROM medical_orders WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.as_ref().map(order_view).transpose()
    }

    /// A patient's medical orders, newest first.
    pub async fn of_patient(self, patient: PatientId, page: PageParams) -> Result<Page<MedicalOrderView>, sqlx::Error> {
        let list = ListQuery {
            select: "SELECT * FROM medical_orders",
            from: "medical_orders",
            order_by: ORDERS_NEWEST_FIRST,
        };
        let filter = Where::new().and_eq("patient_id = ?", Some(patient.to_string()));
        self.0.page(&list, &filter, page, order_view).await
    }

    /// The doctor of the patient's most recent order, if any.
    pub async fn latest_doctor(self, patient: PatientId) -> Result<Option<UserId>, sqlx::Error> {
        let row = sqlx::query(LATEST_DOCTOR)
            .bind(patient.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.map(|r| r.id("doctor_id")).transpose()
    }

    /// An active, available doctor with the fewest open requests.
    pub async fn available_doctor(self) -> Result<Option<UserId>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT u.id FROM users u JOIN doctors d ON d.user_id = u.id
             WHERE u.role = 'doctor' AND u.status = 'active' AND d.is_available = 1
             ORDER BY (SELECT COUNT(*) FROM order_requests q WHERE q.doctor_id = u.id AND q.status = 'open'), u.created_at, u.id
             LIMIT 1",
        )
        .fetch_optional(self.0.pool())
        .await?;
        row.map(|r| r.id("id")).transpose()
    }

    /// A doctor sees a patient once a request, an order or an alert (also
    /// one escalated to them) links them.
    pub async fn doctor_sees_patient(self, doctor: UserId, patient: PatientId) -> Result<bool, sqlx::Error> {
        let (doctor, patient) = (doctor.to_string(), patient.to_string());
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM order_requests WHERE doctor_id = ? AND patient_id = ?)
                  + (SELECT COUNT(*) FROM medical_orders WHERE doctor_id = ? AND patient_id = ?)
                  + (SELECT COUNT(*) FROM alerts WHERE doctor_id = ? AND patient_id = ?)",
        )
        .bind(&doctor)
        .bind(&patient)
        .bind(&doctor)
        .bind(&patient)
        .bind(&doctor)
        .bind(&patient)
        .fetch_one(self.0.pool())
        .await?;
        Ok(n > 0)
    }
}

/// Queries of the notifications read model.
#[derive(Clone, Copy)]
pub struct Notifications<'a>(&'a ReadStore);

impl Notifications<'_> {
    /// A user's inbox. For a recorder (`recorder_today`), a notice about a
    /// patient shows only while that patient is assigned to them: a patient
    /// given to another recorder takes their notices out of the old inbox.
    pub async fn list(
        self,
        user: UserId,
        unread_only: bool,
        recorder_today: Option<NaiveDate>,
        page: PageParams,
    ) -> Result<Page<NotificationView>, sqlx::Error> {
        let list = ListQuery {
            select: "SELECT * FROM notifications n",
            from: "notifications n",
            order_by: "n.urgent DESC, n.created_at DESC, n.id",
        };
        self.0
            .page(
                &list,
                &notification_filter(user, recorder_today, unread_only),
                page,
                notification_view,
            )
            .await
    }

    /// `user`'s notifications among `ids`, or about one of `refs` (order
    /// requests, medical orders), with the assignment rule of
    /// [`Notifications::list`] for a recorder (`recorder_today`).
    pub async fn among(
        self,
        user: UserId,
        ids: &[String],
        refs: &[String],
        recorder_today: Option<NaiveDate>,
    ) -> Result<Vec<NotificationView>, sqlx::Error> {
        let marks = |n: usize| vec!["?"; n].join(", ");
        let mut among = Vec::new();
        if !ids.is_empty() {
            among.push(format!("n.id IN ({})", marks(ids.len())));
        }
        if !refs.is_empty() {
            among.push(format!("n.ref_id IN ({})", marks(refs.len())));
        }
        if among.is_empty() {
            return Ok(Vec::new());
        }
        let filter = notification_filter(user, recorder_today, false).and(
            format!("({})", among.join(" OR ")),
            ids.iter().chain(refs).map(Param::from),
        );
        self.0
            .rows(
                "SELECT * FROM notifications n",
                &filter,
                "ORDER BY n.created_at, n.id",
                notification_view,
            )
            .await
    }

    /// The owner of a notification (its id: a UUID derived from the event).
    pub async fn owner(self, id: Uuid) -> Result<Option<UserId>, sqlx::Error> {
        let row = sqlx::query("SELECT user_id FROM notifications WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.map(|r| r.id("user_id")).transpose()
    }
}

fn notification_view(r: &AnyRow) -> Result<NotificationView, sqlx::Error> {
    let read_at = r.opt_text("read_at")?;
    Ok(NotificationView {
        id: r.text("id")?,
        kind: r.text("kind")?,
        title: r.text("title")?,
        body: r.text("body")?,
        ref_type: r.text("ref_type")?,
        ref_id: r.text("ref_id")?,
        patient_id: r.opt_id("patient_id")?,
        urgent: r.int("urgent")? != 0,
        status: if read_at.is_some() {
            NotificationStatus::Read
        } else {
            NotificationStatus::Unread
        },
        created_at: r.text("created_at")?,
        read_at,
    })
}

/// A user's notifications; for a recorder (`recorder_today`), only those about
/// no patient or a patient assigned to them that day.
fn notification_filter(user: UserId, recorder_today: Option<NaiveDate>, unread_only: bool) -> Where {
    let mut filter = Where::new().and("n.user_id = ?", [Param::from(user.to_string())]);
    if unread_only {
        filter = filter.and("n.read_at IS NULL", []);
    }
    if let Some(today) = recorder_today {
        // A recorder no longer sees notifications about patients taken from them.
        filter = filter.and(
            format!("(n.patient_id IS NULL OR {})", assigned_sql("n.patient_id")),
            assigned_params(user, today),
        );
    }
    filter
}
