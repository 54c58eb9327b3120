//! The examples of `docs/events.md`: one story, in the order the events would
//! be recorded, with one realistic example of every event type. Deterministic:
//! fixed ids, times and metadata.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use cqrs_es::{Aggregate, DomainEvent};
use projections::StoredEvent;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use domain::alert::{Alert, AlertEvent, AlertTrigger, Outcome};
use domain::booking::{BookingDetails, BookingEvent, HospitalBooking};
use domain::evv::{EvvCode, EvvDetails, EvvException, EvvExceptionEvent};
use domain::family::{Family, FamilyChanges, FamilyDetails, FamilyEvent};
use domain::file::{FileEvent, FileInfo, StoredFile};
use domain::health_record::{
    HealthRecord, HealthRecordEvent, Location, RecordChanges, RecordContent, RecordFiles, VitalSignsChanges,
};
use domain::hospital::{
    DepartmentDetails, DoctorDetails, Hospital, HospitalDetails, HospitalEvent, Slot, SlotDetails, SlotEvent,
};
use domain::ids::{
    AlertId, DepartmentId, EvvExceptionId, FamilyId, FileId, HealthRecordId, HospitalBookingId, HospitalDoctorId,
    HospitalId, MedicalOrderId, OrderRequestId, PackageId, PatientId, SessionId, SlotId, SubscriptionId, UserId,
    VisitId,
};
use domain::inbox::{Inbox, InboxEvent};
use domain::job::{JobOutcome, JobRun, JobRunEvent, MissedVisit};
use domain::order::{
    MedicalOrder, MedicalOrderEvent, OrderDetails, OrderRequest, OrderRequestEvent, OrderType, RequestDetails,
};
use domain::package::{PackageDetails, PackageEvent, ServicePackage};
use domain::patient::{Patient, PatientChanges, PatientDetails, PatientEvent};
use domain::push::{Push, PushEvent, PushMessage};
use domain::subscription::{PaymentStatus, Subscription, SubscriptionEvent, SubscriptionStatus, SubscriptionTerms};
use domain::user::{NewUser, RecorderChanges, RecorderProfile, Role, User, UserChanges, UserEvent, UserStatus};
use domain::values::{Gender, PhoneNumber, ResidentId};
use domain::visit::{Coordinates, Visit, VisitEvent, VisitMark, VisitPlan, VisitType};
use domain::vitals::{AlertReason, AlertThresholds, BloodPressure, Severity, VitalSigns};

/// Personal data of the examples that must never appear in an envelope.
pub const PATIENT_NAME: &str = "王秀英";
pub const PATIENT_ID_CARD: &str = "11010519491231002X";
pub const PATIENT_PHONE: &str = "13800138000";
pub const FAMILY_PHONE: &str = "13912345678";
pub const EMERGENCY_PHONE: &str = "13698765432";
pub const RECORDER_PHONE: &str = "13701370137";
pub const PATIENT_NEW_PHONE: &str = "13552468013";
pub const HOME_ADDRESS: &str = "北京市朝阳区和平街十一区3号楼2单元501";

/// Who issued a command, and from where.
struct Actor {
    id: Option<Uuid>,
    role: Option<&'static str>,
    ip: &'static str,
    user_agent: &'static str,
}

const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN";
const BROWSER_UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36";

/// The namespace of the examples' fixed ids.
const EXAMPLE_NS: Uuid = Uuid::from_u128(0x6361_7265_6c6f_6700_0000_0000_0000_00e0);

/// A fixed id for a named thing of the story.
fn fixed(name: &str) -> Uuid {
    Uuid::new_v5(&EXAMPLE_NS, name.as_bytes())
}

/// A time of March 2026 in Asia/Shanghai.
fn march(day: u32, hour: u32, minute: u32) -> Result<DateTime<Utc>, String> {
    Shanghai
        .with_ymd_and_hms(2026, 3, day, hour, minute, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("invalid time 2026-03-{day} {hour}:{minute}"))
}

fn date(y: i32, m: u32, d: u32) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| format!("invalid date {y}-{m}-{d}"))
}

fn time(h: u32, m: u32) -> Result<NaiveTime, String> {
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(|| format!("invalid time {h}:{m}"))
}

/// The events of the story, with global positions and per-aggregate sequences.
struct Story {
    events: Vec<StoredEvent>,
    position: i64,
    sequences: HashMap<(&'static str, Uuid), i64>,
    /// The request in progress: (request id, correlation id).
    request: (String, String),
    requests: u32,
}

impl Story {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            position: 1040,
            sequences: HashMap::new(),
            request: (String::new(), String::new()),
            requests: 0,
        }
    }

    /// Starts a new HTTP request; the following events share its request id
    /// (and, unless told otherwise, use it as correlation id).
    fn request(&mut self) {
        self.requests += 1;
        let id = fixed(&format!("request {}", self.requests)).to_string();
        self.request = (id.clone(), id);
    }

    /// `n` earlier events of this aggregate (and some of others) that are not
    /// part of the examples.
    fn earlier<A: Aggregate>(&mut self, id: Uuid, n: i64) {
        *self.sequences.entry((A::TYPE, id)).or_insert(0) += n;
        self.position += n + 3;
    }

    fn record<A: Aggregate>(&mut self, id: Uuid, at: DateTime<Utc>, actor: &Actor, command: &str, event: A::Event) {
        self.record_as::<A>(id, id.to_string(), at, actor, command, event);
    }

    /// [`Story::record`] for an aggregate whose id is not a UUID (`key` stands for it).
    fn record_as<A: Aggregate>(
        &mut self,
        key: Uuid,
        aggregate_id: String,
        at: DateTime<Utc>,
        actor: &Actor,
        command: &str,
        event: A::Event,
    ) {
        let sequence = self.sequences.entry((A::TYPE, key)).or_insert(0);
        *sequence += 1;
        self.position += 1;
        let mut metadata = HashMap::new();
        if let Some(actor_id) = actor.id {
            metadata.insert("actor_id".to_string(), actor_id.to_string());
        }
        if let Some(role) = actor.role {
            metadata.insert("actor_role".to_string(), role.to_string());
        }
        metadata.insert("ip".to_string(), actor.ip.to_string());
        metadata.insert("user_agent".to_string(), actor.user_agent.to_string());
        metadata.insert("request_id".to_string(), self.request.0.clone());
        metadata.insert("correlation_id".to_string(), self.request.1.clone());
        metadata.insert("command".to_string(), command.to_string());
        metadata.insert("time".to_string(), projections::store::instant(at));
        self.events.push(StoredEvent {
            position: self.position,
            aggregate_type: A::TYPE.to_string(),
            aggregate_id,
            sequence: *sequence,
            event_type: event.event_type(),
            event_version: event.event_version(),
            // Serializing the domain's plain data types cannot fail.
            payload: serde_json::to_value(&event).unwrap_or(Value::Null),
            metadata,
            recorded_at: at,
        });
    }
}

fn phone(raw: &str) -> Result<PhoneNumber, String> {
    PhoneNumber::parse(raw)
}

/// The story of the examples: a recorder, a family, a patient with high blood
/// pressure, a visit, an alert, a doctor's order and a hospital booking.
pub fn story() -> Result<Vec<StoredEvent>, String> {
    let admin = Actor {
        id: Some(fixed("user 张伟 admin")),
        role: Some("admin"),
        ip: "203.0.113.10",
        user_agent: BROWSER_UA,
    };
    let recorder_id = fixed("user 李娜 recorder");
    let recorder = Actor {
        id: Some(recorder_id),
        role: Some("recorder"),
        ip: "198.51.100.23",
        user_agent: WECHAT_UA,
    };
    // Login records the user before the session exists: no role yet.
    let logging_in = Actor {
        id: Some(recorder_id),
        role: None,
        ip: "198.51.100.23",
        user_agent: WECHAT_UA,
    };
    let doctor_id = fixed("user 陈明 doctor");
    let doctor = Actor {
        id: Some(doctor_id),
        role: Some("doctor"),
        ip: "203.0.113.57",
        user_agent: BROWSER_UA,
    };

    let package_id = fixed("package 居家健康守护·标准版");
    let family_id = fixed("family 王建国家");
    let patient_id = fixed("patient 王秀英");
    let subscription_id = fixed("subscription 王秀英 标准版");
    let visit_id = fixed("visit 2026-03-05");
    let other_visit_id = fixed("visit 2026-03-19");
    let file_id = fixed("file 血压计读数.jpg");
    let record_id = fixed("health record 2026-03-05");
    let request_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("alert:{record_id}").as_bytes());
    let alert_id = AlertId::of_record(HealthRecordId(record_id)).0;
    let other_alert_id = fixed("alert 2026-03-06");
    let other_doctor_id = fixed("user 刘洋 doctor");
    // Escalations are the server's own doing: no actor.
    let server = Actor {
        id: None,
        role: None,
        ip: "",
        user_agent: "carelog-cli",
    };
    let other_request_id = fixed("order request 2026-03-06");
    let order_id = fixed("medical order 氨氯地平");
    let other_order_id = fixed("medical order 复查");
    let session_id = fixed("session 2026-03-02");
    let hospital_id = fixed("hospital 北京协和医院");
    let department_id = fixed("department 心内科");
    let hospital_doctor_id = fixed("hospital doctor 张志强");
    let slot_id = fixed("slot 2026-03-12 08:30");
    let booking_id = fixed("booking 2026-03-12");
    let other_booking_id = fixed("booking 2026-03-12 cancelled");

    let home = (39.9652, 116.4229);
    let taken_at = Location::parse(39.9655, 116.4232, Some(HOME_ADDRESS.to_string())).map_err(|(_, e)| e)?;
    let distance = (taken_at.distance_to(home.0, home.1) * 10.0).round() / 10.0;
    let vitals = VitalSigns {
        blood_pressure: Some(BloodPressure::parse("165/98")?),
        heart_rate: Some(78),
        temperature: Some(36.6),
        blood_oxygen: Some(97.0),
        blood_glucose: Some(7.8),
        weight: Some(58.5),
    };
    let alerts: Vec<AlertReason> = AlertThresholds::default().assess(&vitals);

    let mut s = Story::new();

    // 2 March: an admin sets up the recorder, the package, the family and the patient.
    s.request();
    s.record::<User>(
        recorder_id,
        march(2, 9, 0)?,
        &admin,
        "CreateUser",
        UserEvent::UserCreated(NewUser {
            username: "lina".into(),
            phone: phone(RECORDER_PHONE)?,
            password_hash:
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0vD3Xl2qk1mFQ0bW2bq0m1o9M2cY5lGmI1bq0m1o9M2".into(),
            role: Role::Recorder,
            name: "李娜".into(),
            avatar: None,
            recorder: Some(RecorderProfile {
                employee_id: "JL-0042".into(),
                qualification_cert: Some("养老护理员（四级）".into()),
                health_cert: Some("京朝健证字2026第0318号".into()),
                cert_expiry_date: Some(date(2027, 3, 1)?),
                work_area: Some("北京市朝阳区".into()),
            }),
            doctor: None,
        }),
    );
    s.request();
    s.record::<ServicePackage>(
        package_id,
        march(2, 9, 5)?,
        &admin,
        "CreatePackage",
        PackageEvent::PackageCreated(PackageDetails {
            name: "居家健康守护·标准版".into(),
            description: Some("每月四次上门测量生命体征，异常时由医生出具医嘱".into()),
            price: Decimal::new(98000, 2),
            duration_days: 90,
            service_frequency: 4,
            service_items: vec![
                "血压测量".into(),
                "血糖检测".into(),
                "用药提醒".into(),
                "健康档案".into(),
            ],
        }),
    );
    s.request();
    s.record::<User>(
        recorder_id,
        march(2, 9, 20)?,
        &logging_in,
        "Login",
        UserEvent::UserLoggedIn {
            session_id: SessionId(session_id),
            expires_at: march(2, 9, 20)? + chrono::Duration::days(30),
        },
    );
    s.request();
    s.record::<User>(
        doctor_id,
        march(2, 9, 30)?,
        &doctor,
        "BindWechat",
        UserEvent::WechatBound {
            openid_hash: "3f0c5a9e8d2b47c1a6e0f9b8d7c6a5b4e3f2d1c0b9a8f7e6d5c4b3a2f1e0d9c8".into(),
            openid: "oWx7c5GmPq2eLr8sTn4uVy1zKd0A".into(),
        },
    );
    s.request();
    s.record::<Family>(
        family_id,
        march(2, 9, 40)?,
        &admin,
        "CreateFamily",
        FamilyEvent::FamilyCreated(FamilyDetails {
            family_name: "王建国家".into(),
            primary_address: HOME_ADDRESS.into(),
            contact_phone: phone(FAMILY_PHONE)?,
            secondary_address: Some("北京市海淀区学院路20号院7号楼302（女儿家）".into()),
            emergency_contact: None,
            emergency_phone: None,
            home_lat: Some(home.0),
            home_lng: Some(home.1),
        }),
    );
    s.request();
    s.record::<Patient>(
        patient_id,
        march(2, 9, 45)?,
        &admin,
        "RegisterPatient",
        PatientEvent::PatientRegistered {
            family_id: FamilyId(family_id),
            details: PatientDetails {
                name: PATIENT_NAME.into(),
                gender: Gender::Female,
                birth_date: date(1949, 12, 31)?,
                relationship_to_head: "母亲".into(),
                medical_history: vec!["高血压".into(), "2型糖尿病".into()],
                current_medications: vec![
                    "苯磺酸氨氯地平片 5mg 每日一次".into(),
                    "二甲双胍缓释片 0.5g 每日两次".into(),
                ],
                id_card: Some(ResidentId::parse(PATIENT_ID_CARD)?),
                phone: Some(phone(PATIENT_PHONE)?),
                allergies: None,
                service_preferences: Some(json!({"preferred_time": "上午", "language": "普通话"})),
            },
        },
    );
    s.request();
    s.record::<Subscription>(
        subscription_id,
        march(2, 10, 0)?,
        &admin,
        "CreateSubscription",
        SubscriptionEvent::SubscriptionCreated(SubscriptionTerms {
            patient_id: PatientId(patient_id),
            package_id: PackageId(package_id),
            recorder_id: UserId(recorder_id),
            start_date: date(2026, 3, 2)?,
            end_date: date(2026, 5, 31)?,
        }),
    );
    s.request();
    s.record::<Subscription>(
        subscription_id,
        march(2, 10, 5)?,
        &admin,
        "ChangeSubscriptionPayment",
        SubscriptionEvent::SubscriptionPaymentChanged {
            payment_status: PaymentStatus::Paid,
        },
    );
    s.request();
    s.record::<Visit>(
        visit_id,
        march(2, 10, 10)?,
        &admin,
        "ScheduleVisit",
        VisitEvent::VisitScheduled(VisitPlan {
            patient_id: PatientId(patient_id),
            recorder_id: UserId(recorder_id),
            subscription_id: SubscriptionId(subscription_id),
            scheduled_date: date(2026, 3, 4)?,
            scheduled_time: time(9, 30)?,
            appointment_type: VisitType::Regular,
            notes: Some("老人上午在家，请提前电话联系家属".into()),
        }),
    );
    s.request();
    s.record::<Visit>(
        visit_id,
        march(2, 10, 30)?,
        &recorder,
        "ConfirmVisit",
        VisitEvent::VisitConfirmed,
    );

    // 3 March: the visit moves by a day; the family and the patient are updated.
    s.request();
    s.record::<Visit>(
        visit_id,
        march(3, 14, 0)?,
        &recorder,
        "RescheduleVisit",
        VisitEvent::VisitRescheduled {
            from_date: date(2026, 3, 4)?,
            from_time: time(9, 30)?,
            date: date(2026, 3, 5)?,
            time: time(9, 0)?,
        },
    );
    s.request();
    s.record::<Family>(
        family_id,
        march(3, 15, 0)?,
        &admin,
        "UpdateFamily",
        FamilyEvent::FamilyUpdated(FamilyChanges {
            emergency_contact: Some("王建国（儿子）".into()),
            emergency_phone: Some(phone(EMERGENCY_PHONE)?),
            ..Default::default()
        }),
    );
    s.request();
    s.record::<Patient>(
        patient_id,
        march(3, 15, 10)?,
        &admin,
        "UpdatePatient",
        PatientEvent::PatientUpdated(PatientChanges {
            phone: Some(phone(PATIENT_NEW_PHONE)?),
            allergies: Some("青霉素过敏".into()),
            ..Default::default()
        }),
    );

    // 5 March: the visit. High blood pressure raises an order request.
    s.request();
    let at_door = Coordinates::parse(39.9654, 116.4231).map_err(|e| format!("{e:?}"))?;
    s.record::<Visit>(
        visit_id,
        march(5, 9, 2)?,
        &recorder,
        "CheckInVisit",
        VisitEvent::VisitCheckedIn(VisitMark {
            at: march(5, 9, 2)?,
            location: Some(at_door),
            distance_from_home_m: Some(at_door.metres_to(home)),
        }),
    );
    s.request();
    s.record::<StoredFile>(
        file_id,
        march(5, 9, 12)?,
        &recorder,
        "UploadFile",
        FileEvent::FileUploaded(FileInfo {
            kind: "image".into(),
            original_name: "血压计读数.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 184_233,
            sha256: "9f2c4e1a7b3d5f60812a4c6e8b0d2f4163a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3".into(),
            storage_key: format!("files/{file_id}.jpg"),
            thumbnail_key: Some(format!("thumbnails/{file_id}.jpg")),
            uploaded_by: UserId(recorder_id),
        }),
    );
    s.request();
    let record = RecordContent {
        patient_id: PatientId(patient_id),
        recorder_id: UserId(recorder_id),
        appointment_id: Some(VisitId(visit_id)),
        visit_date: date(2026, 3, 5)?,
        visit_time: time(9, 5)?,
        location: Some(taken_at),
        distance_from_home_m: Some(distance),
        away_from_home: distance > domain::health_record::AWAY_FROM_HOME_METERS,
        vital_signs: vitals,
        symptoms: Some("晨起头晕，无胸闷胸痛".into()),
        notes: Some("已提醒按时服药，建议低盐饮食".into()),
        files: RecordFiles {
            audio_file: None,
            photos: vec![FileId(file_id)],
            patient_signature: None,
        },
        alerts: alerts.clone(),
        recorded_at: Some(march(5, 9, 20)?),
    };
    let amended_vitals = VitalSigns {
        heart_rate: Some(88),
        ..record.vital_signs.clone()
    };
    s.record::<HealthRecord>(
        record_id,
        march(5, 9, 20)?,
        &recorder,
        "RecordVitals",
        HealthRecordEvent::HealthRecordCreated(record),
    );
    s.record::<Visit>(
        visit_id,
        march(5, 9, 20)?,
        &recorder,
        "RecordTaken",
        VisitEvent::VisitRecordAttached {
            health_record_id: HealthRecordId(record_id),
        },
    );
    s.record::<Alert>(
        alert_id,
        march(5, 9, 20)?,
        &recorder,
        "TriggerAlert",
        AlertEvent::AlertTriggered(AlertTrigger {
            patient_id: PatientId(patient_id),
            health_record_id: HealthRecordId(record_id),
            severity: Severity::Abnormal,
            reasons: alerts.clone(),
            doctor_id: UserId(doctor_id),
            at: march(5, 9, 20)?,
        }),
    );
    s.record::<OrderRequest>(
        request_id,
        march(5, 9, 20)?,
        &recorder,
        "RaiseAlertRequest",
        OrderRequestEvent::OrderRequested(RequestDetails {
            health_record_id: HealthRecordId(record_id),
            patient_id: PatientId(patient_id),
            doctor_id: UserId(doctor_id),
            requested_by: None,
            recorder_id: UserId(recorder_id),
            reason: None,
            alerts,
            alert_id: Some(AlertId(alert_id)),
        }),
    );
    // The doctor has WeChat bound: the push follower queues the notification
    // and the sender sends it, the first attempt failing.
    let push_id: Uuid = projections::orders::notification_id(&request_id.to_string(), 1)
        .parse()
        .map_err(|e| format!("{e}"))?;
    s.request();
    s.record::<Push>(
        push_id,
        march(5, 9, 20)?,
        &server,
        "QueuePush",
        PushEvent::PushQueued(PushMessage {
            user_id: UserId(doctor_id),
            kind: "order_request_abnormal".into(),
            template_id: "kT3xQ9mB2vL7nR4sW8yZ1cF6hJ0dG5pE".into(),
            data: [
                ("thing1".to_string(), "患者生命体征异常，请开具医嘱".to_string()),
                ("time2".to_string(), "2026-03-05 09:20".to_string()),
            ]
            .into(),
        }),
    );
    s.record::<Push>(
        push_id,
        march(5, 9, 20)?,
        &server,
        "AttemptPush",
        PushEvent::PushAttempted { attempt: 1 },
    );
    s.record::<Push>(
        push_id,
        march(5, 9, 20)?,
        &server,
        "RecordPushOutcome",
        PushEvent::PushFailed {
            attempt: 1,
            error: "WeChat refused: errcode -1: system error".into(),
            retry_at: Some(march(5, 9, 20)? + chrono::Duration::seconds(30)),
        },
    );
    // The second attempt (not shown) is accepted.
    s.earlier::<Push>(push_id, 1);
    s.record::<Push>(
        push_id,
        march(5, 9, 21)?,
        &server,
        "RecordPushOutcome",
        PushEvent::PushSent { attempt: 2 },
    );
    // The recorder's reminder (queued and attempted earlier, not shown): they
    // have refused the subscription, so it is skipped.
    let skipped_id = fixed("push visit reminder 2026-03-05");
    s.earlier::<Push>(skipped_id, 2);
    s.record::<Push>(
        skipped_id,
        march(5, 9, 22)?,
        &server,
        "RecordPushOutcome",
        PushEvent::PushSkipped {
            attempt: 1,
            reason: "not_subscribed (43101)".into(),
        },
    );
    s.request();
    s.record::<Visit>(
        visit_id,
        march(5, 9, 40)?,
        &recorder,
        "CheckOutVisit",
        VisitEvent::VisitCheckedOut(VisitMark {
            at: march(5, 9, 40)?,
            location: Some(at_door),
            distance_from_home_m: Some(at_door.metres_to(home)),
        }),
    );
    s.record::<Visit>(
        visit_id,
        march(5, 9, 40)?,
        &recorder,
        "CheckOutVisit",
        VisitEvent::VisitCompleted {
            health_record_id: HealthRecordId(record_id),
        },
    );
    // The record was not signed by the patient: the server raises the
    // visit's exception; the recorder explains it, an admin closes it.
    let exception_id = EvvExceptionId::of(VisitId(visit_id), EvvCode::MissingSignature.as_str());
    s.record::<EvvException>(
        exception_id.0,
        march(5, 9, 41)?,
        &recorder,
        "RaiseEvvException",
        EvvExceptionEvent::EvvExceptionRaised {
            code: EvvCode::MissingSignature,
            visit_id: VisitId(visit_id),
            patient_id: PatientId(patient_id),
            recorder_id: UserId(recorder_id),
            raised_at: march(5, 9, 41)?,
            details: EvvDetails {
                health_record_id: Some(HealthRecordId(record_id)),
                ..Default::default()
            },
        },
    );
    s.request();
    s.record::<EvvException>(
        exception_id.0,
        march(5, 9, 45)?,
        &recorder,
        "AcknowledgeEvvException",
        EvvExceptionEvent::EvvExceptionAcknowledged {
            reason_code: "patient_unable_to_sign".into(),
            by: UserId(recorder_id),
            at: march(5, 9, 45)?,
        },
    );
    s.request();
    s.record::<EvvException>(
        exception_id.0,
        march(5, 10, 0)?,
        &admin,
        "ResolveEvvException",
        EvvExceptionEvent::EvvExceptionResolved {
            resolution: "已与家属电话确认上门属实，老人手部不便签字".into(),
            by: UserId(fixed("user 张伟 admin")),
            at: march(5, 10, 0)?,
        },
    );
    s.request();
    s.record::<Alert>(
        alert_id,
        march(5, 10, 5)?,
        &doctor,
        "AcknowledgeAlert",
        AlertEvent::AlertAcknowledged {
            by: UserId(doctor_id),
            at: march(5, 10, 5)?,
        },
    );
    s.request();
    s.record::<MedicalOrder>(
        order_id,
        march(5, 10, 40)?,
        &doctor,
        "IssueMedicalOrder",
        MedicalOrderEvent::MedicalOrderIssued(OrderDetails {
            patient_id: PatientId(patient_id),
            doctor_id: UserId(doctor_id),
            recorder_id: Some(UserId(recorder_id)),
            request_id: Some(OrderRequestId(request_id)),
            health_record_id: Some(HealthRecordId(record_id)),
            order_type: OrderType::Medication,
            content: "苯磺酸氨氯地平片加量至10mg，每日一次，晨起服用".into(),
            dosage: Some("10mg".into()),
            frequency: Some("每日一次".into()),
            duration: Some("14天".into()),
            notes: Some("两周后复测血压，如有头痛加重及时就医".into()),
        }),
    );
    s.record::<OrderRequest>(
        request_id,
        march(5, 10, 40)?,
        &doctor,
        "FulfilOrderRequest",
        OrderRequestEvent::OrderRequestFulfilled {
            order_id: MedicalOrderId(order_id),
        },
    );
    s.request();
    s.record::<Alert>(
        alert_id,
        march(5, 10, 45)?,
        &doctor,
        "ResolveAlert",
        AlertEvent::AlertResolved {
            outcome: Outcome::OrderIssued,
            note: Some("已调整降压药剂量，两周后复测".into()),
            by: UserId(doctor_id),
            at: march(5, 10, 45)?,
        },
    );
    s.request();
    s.record::<Inbox>(
        recorder_id,
        march(5, 11, 0)?,
        &recorder,
        "ReadNotification",
        InboxEvent::NotificationRead {
            notification_id: projections::orders::notification_id(&order_id.to_string(), 1),
        },
    );
    s.request();
    s.record::<User>(
        recorder_id,
        march(5, 18, 30)?,
        &recorder,
        "Logout",
        UserEvent::UserLoggedOut {
            session_id: SessionId(session_id),
        },
    );

    // 5 March, evening: the recorder corrects a heart rate typed wrong.
    s.request();
    s.record::<HealthRecord>(
        record_id,
        march(5, 20, 10)?,
        &recorder,
        "AmendHealthRecord",
        HealthRecordEvent::HealthRecordAmended {
            patient_id: PatientId(patient_id),
            reason_code: "typo".into(),
            changes: RecordChanges {
                symptoms: Some(Some("晨起头晕伴轻微头痛，无胸闷胸痛".into())),
                vital_signs: VitalSignsChanges {
                    heart_rate: Some(Some(88)),
                    ..Default::default()
                },
                ..Default::default()
            },
            alerts: Some(AlertThresholds::default().assess(&amended_vitals)),
            amended_by: UserId(recorder_id),
            at: march(5, 20, 10)?,
        },
    );

    // 6 March: another visit, request and order are withdrawn.
    s.request();
    s.earlier::<Visit>(other_visit_id, 1);
    s.record::<Visit>(
        other_visit_id,
        march(6, 8, 15)?,
        &admin,
        "CancelVisit",
        VisitEvent::VisitCancelled {
            reason: Some("家属临时带老人外出就医".into()),
        },
    );
    s.request();
    s.earlier::<OrderRequest>(other_request_id, 1);
    s.record::<OrderRequest>(
        other_request_id,
        march(6, 9, 0)?,
        &admin,
        "CancelOrderRequest",
        OrderRequestEvent::OrderRequestCancelled {
            reason: Some("家属已陪同就医，无需医嘱".into()),
        },
    );
    s.request();
    s.earlier::<MedicalOrder>(other_order_id, 1);
    s.record::<MedicalOrder>(
        other_order_id,
        march(6, 9, 30)?,
        &doctor,
        "CancelMedicalOrder",
        MedicalOrderEvent::MedicalOrderCancelled {
            reason: Some("已在医院完成复查".into()),
        },
    );

    // 6 March, noon: an urgent reading nobody acknowledged within 15 minutes
    // goes to another doctor, and the admins are told.
    s.earlier::<Alert>(other_alert_id, 1);
    s.record::<Alert>(
        other_alert_id,
        march(6, 12, 15)?,
        &server,
        "EscalateAlert",
        AlertEvent::AlertEscalated {
            level: 1,
            from_doctor: UserId(doctor_id),
            to_doctor: UserId(other_doctor_id),
            admins: vec![UserId(fixed("user 张伟 admin"))],
            at: march(6, 12, 15)?,
        },
    );

    // 9 March: a partner hospital, a slot and a booking.
    s.request();
    s.record::<Hospital>(
        hospital_id,
        march(9, 10, 0)?,
        &admin,
        "RegisterHospital",
        HospitalEvent::HospitalRegistered(HospitalDetails {
            name: "北京协和医院".into(),
            address: "北京市东城区帅府园1号".into(),
            phone: Some("010-69156114".into()),
            level: Some("三级甲等".into()),
        }),
    );
    s.request();
    s.record::<Hospital>(
        hospital_id,
        march(9, 10, 5)?,
        &admin,
        "AddDepartment",
        HospitalEvent::DepartmentAdded {
            id: DepartmentId(department_id),
            details: DepartmentDetails {
                name: "心内科".into(),
                description: Some("高血压、冠心病、心力衰竭等心血管疾病的诊治".into()),
            },
        },
    );
    s.request();
    s.record::<Hospital>(
        hospital_id,
        march(9, 10, 10)?,
        &admin,
        "AddHospitalDoctor",
        HospitalEvent::HospitalDoctorAdded {
            id: HospitalDoctorId(hospital_doctor_id),
            details: DoctorDetails {
                department_id: DepartmentId(department_id),
                name: "张志强".into(),
                title: Some("主任医师".into()),
                specialty: Some("高血压及心力衰竭".into()),
                consultation_fee: Some(Decimal::new(10000, 2)),
            },
        },
    );
    s.request();
    s.record::<Slot>(
        slot_id,
        march(9, 10, 20)?,
        &admin,
        "OpenSlot",
        SlotEvent::SlotOpened(SlotDetails {
            hospital_id: HospitalId(hospital_id),
            department_id: DepartmentId(department_id),
            doctor_id: Some(HospitalDoctorId(hospital_doctor_id)),
            date: date(2026, 3, 12)?,
            time: time(8, 30)?,
            capacity: 20,
        }),
    );
    s.request();
    s.record::<Slot>(
        slot_id,
        march(9, 16, 0)?,
        &recorder,
        "BookSlotPlace",
        SlotEvent::SlotPlaceBooked {
            booking_id: HospitalBookingId(booking_id),
            patient_id: PatientId(patient_id),
        },
    );
    s.record::<HospitalBooking>(
        booking_id,
        march(9, 16, 0)?,
        &recorder,
        "BookHospitalSlot",
        BookingEvent::HospitalBookingRequested(BookingDetails {
            slot_id: SlotId(slot_id),
            patient_id: PatientId(patient_id),
            hospital_id: HospitalId(hospital_id),
            department_id: DepartmentId(department_id),
            doctor_id: Some(HospitalDoctorId(hospital_doctor_id)),
            appointment_date: date(2026, 3, 12)?,
            appointment_time: time(8, 30)?,
            notes: Some("需轮椅，女儿陪同".into()),
            recorder_id: UserId(recorder_id),
        }),
    );
    s.request();
    s.record::<HospitalBooking>(
        booking_id,
        march(10, 9, 0)?,
        &admin,
        "ConfirmHospitalBooking",
        BookingEvent::HospitalBookingConfirmed {
            appointment_number: "XN-0312-017".into(),
            fee: Some(Decimal::new(10000, 2)),
            recorder_id: UserId(recorder_id),
        },
    );
    s.request();
    s.earlier::<HospitalBooking>(other_booking_id, 1);
    s.record::<HospitalBooking>(
        other_booking_id,
        march(10, 11, 0)?,
        &recorder,
        "CancelHospitalBooking",
        BookingEvent::HospitalBookingCancelled {
            reason: Some("患者感冒发热，改约下周".into()),
        },
    );
    s.earlier::<Slot>(slot_id, 1);
    s.record::<Slot>(
        slot_id,
        march(10, 11, 0)?,
        &recorder,
        "ReleaseSlotPlace",
        SlotEvent::SlotPlaceReleased {
            booking_id: HospitalBookingId(other_booking_id),
        },
    );
    s.request();
    s.record::<User>(
        recorder_id,
        march(10, 20, 15)?,
        &recorder,
        "ChangePassword",
        UserEvent::UserPasswordChanged {
            password_hash:
                "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdG5ld3NhbHQ$T0p5cXk2dE9wNXF5NnRPcDVxeTZ0T3A1cXk2dE9wNQ".into(),
            kept_session: None,
        },
    );
    s.request();
    s.record::<User>(
        recorder_id,
        march(10, 20, 30)?,
        &admin,
        "UpdateUser",
        UserEvent::UserProfileUpdated(UserChanges {
            recorder: Some(RecorderChanges {
                cert_expiry_date: Some(date(2028, 3, 1)?),
                is_on_duty: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }),
    );
    s.request();
    s.record::<HospitalBooking>(
        booking_id,
        march(12, 11, 30)?,
        &admin,
        "CompleteHospitalBooking",
        BookingEvent::HospitalBookingCompleted {
            result_notes: "动态血压监测，调整降压方案，一个月后复诊".into(),
        },
    );

    // 13 March: past the amendment window, the admin reopens the record.
    s.request();
    s.record::<HealthRecord>(
        record_id,
        march(13, 9, 0)?,
        &admin,
        "UnlockHealthRecord",
        HealthRecordEvent::HealthRecordUnlocked {
            patient_id: PatientId(patient_id),
            reason: "家属反映3月5日的体重记录有误，需记录员更正".into(),
            by: UserId(fixed("user 张伟 admin")),
            at: march(13, 9, 0)?,
        },
    );

    // Later in March.
    s.request();
    s.record::<MedicalOrder>(
        order_id,
        march(19, 10, 0)?,
        &doctor,
        "CompleteMedicalOrder",
        MedicalOrderEvent::MedicalOrderCompleted,
    );
    s.request();
    s.record::<Hospital>(
        hospital_id,
        march(20, 9, 0)?,
        &admin,
        "SetHospitalDoctorStatus",
        HospitalEvent::HospitalDoctorActivityChanged {
            id: HospitalDoctorId(hospital_doctor_id),
            active: false,
        },
    );
    s.request();
    s.record::<Hospital>(
        hospital_id,
        march(20, 9, 5)?,
        &admin,
        "SetDepartmentStatus",
        HospitalEvent::DepartmentActivityChanged {
            id: DepartmentId(department_id),
            active: false,
        },
    );
    s.request();
    s.record::<Hospital>(
        hospital_id,
        march(20, 9, 10)?,
        &admin,
        "SetHospitalStatus",
        HospitalEvent::HospitalDeactivated,
    );
    s.request();
    s.record::<Subscription>(
        subscription_id,
        march(21, 14, 0)?,
        &admin,
        "ChangeSubscriptionStatus",
        SubscriptionEvent::SubscriptionStatusChanged {
            status: SubscriptionStatus::Paused,
            previous: SubscriptionStatus::Active,
        },
    );
    s.request();
    s.record::<Hospital>(
        hospital_id,
        march(27, 9, 0)?,
        &admin,
        "SetHospitalStatus",
        HospitalEvent::HospitalActivated,
    );
    s.request();
    s.record::<User>(
        recorder_id,
        march(31, 17, 0)?,
        &admin,
        "ChangeUserStatus",
        UserEvent::UserStatusChanged {
            status: UserStatus::Inactive,
            previous: UserStatus::Active,
        },
    );

    s.request();
    s.record::<User>(
        doctor_id,
        march(31, 17, 2)?,
        &doctor,
        "UnbindWechat",
        UserEvent::WechatUnbound {
            openid_hash: "3f0c5a9e8d2b47c1a6e0f9b8d7c6a5b4e3f2d1c0b9a8f7e6d5c4b3a2f1e0d9c8".into(),
        },
    );
    // 31 March, afternoon: the scheduled jobs run by hand after a day of downtime.
    let jobs_admin = UserId(fixed("user 张伟 admin"));
    let missed_visit_id = fixed("visit 2026-03-30 missed");
    let old_subscription_id = fixed("subscription 李建国 基础版");
    let unused_file_id = fixed("file 未使用.jpg");
    s.request();
    s.earlier::<Subscription>(old_subscription_id, 1);
    s.record::<Subscription>(
        old_subscription_id,
        march(31, 17, 5)?,
        &server,
        "ExpireSubscription",
        SubscriptionEvent::SubscriptionExpired {
            end_date: date(2026, 3, 30)?,
            previous: SubscriptionStatus::Active,
        },
    );
    s.request();
    s.earlier::<Visit>(missed_visit_id, 1);
    s.record::<Visit>(
        missed_visit_id,
        march(31, 17, 10)?,
        &server,
        "MarkVisitMissed",
        VisitEvent::VisitMissed {
            date: date(2026, 3, 30)?,
        },
    );
    s.record_as::<JobRun>(
        fixed("job missed_visits:2026-03-31"),
        "missed_visits:2026-03-31".into(),
        march(31, 17, 10)?,
        &server,
        "RunJob",
        JobRunEvent::JobRan {
            job: "missed_visits".into(),
            period: "2026-03-31".into(),
            at: march(31, 17, 10)?,
            outcome: JobOutcome::MissedVisits {
                day: date(2026, 3, 30)?,
                missed: vec![MissedVisit {
                    visit_id: VisitId(missed_visit_id),
                    recorder_id: UserId(recorder_id),
                    date: date(2026, 3, 30)?,
                }],
                admins: vec![jobs_admin],
            },
            // Shown in two parts (a run is split past a thousand items).
            total: Some(2),
        },
    );
    s.record_as::<JobRun>(
        fixed("job missed_visits:2026-03-31"),
        "missed_visits:2026-03-31".into(),
        march(31, 17, 10)?,
        &server,
        "RunJob",
        JobRunEvent::JobRanContinued {
            outcome: JobOutcome::MissedVisits {
                day: date(2026, 3, 30)?,
                missed: vec![MissedVisit {
                    visit_id: VisitId(fixed("visit 2026-03-30 missed, second")),
                    recorder_id: UserId(recorder_id),
                    date: date(2026, 3, 30)?,
                }],
                admins: vec![],
            },
        },
    );
    s.request();
    s.earlier::<StoredFile>(unused_file_id, 1);
    s.record::<StoredFile>(
        unused_file_id,
        march(31, 17, 20)?,
        &server,
        "DiscardFile",
        FileEvent::FileDiscarded {
            storage_key: format!("files/{unused_file_id}.jpg"),
            thumbnail_key: Some(format!("thumbnails/{unused_file_id}.jpg")),
        },
    );

    // 31 March: the family asks for the patient's data to be erased.
    s.request();
    let admin_id = UserId(fixed("user 张伟 admin"));
    s.record::<Patient>(
        patient_id,
        march(31, 18, 0)?,
        &admin,
        "ErasePatient",
        PatientEvent::PatientErased {
            reason: "家属书面申请删除个人信息".into(),
            erased_by: admin_id,
        },
    );
    s.record::<Family>(
        family_id,
        march(31, 18, 0)?,
        &admin,
        "ErasePatient",
        FamilyEvent::FamilyErased {
            reason: "家属书面申请删除个人信息".into(),
        },
    );

    Ok(s.events)
}

/// One example of every event of every aggregate, as stored, in the order
/// they would be recorded. Deterministic: fixed ids, times and metadata.
pub fn examples() -> Vec<StoredEvent> {
    // The sample data are constants checked by the tests, so this never fails.
    story().unwrap_or_default()
}
