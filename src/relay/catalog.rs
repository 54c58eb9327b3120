//! The catalogue of published events: one realistic example of every event
//! type, and `docs/events.md` generated from them.
//!
//! Every aggregate implements [`Catalogued`], whose `describe` is an
//! exhaustive `match` over the aggregate's event enum: a new variant does not
//! compile until it is named and described here. The tests then check that
//! [`examples`] holds exactly one example of every variant (the variant list
//! is read from the enum's own `Deserialize`), so a variant without an
//! example fails `cargo test`, and that `docs/events.md` is up to date:
//!
//! ```sh
//! UPDATE_DOCS=1 cargo test --lib docs_events_md_is_up_to_date
//! ```

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use cqrs_es::{Aggregate, DomainEvent};
use projections::StoredEvent;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use domain::booking::{BookingDetails, BookingEvent, HospitalBooking};
use domain::family::{Family, FamilyChanges, FamilyDetails, FamilyEvent};
use domain::file::{FileEvent, FileInfo, StoredFile};
use domain::health_record::{
    HealthRecord, HealthRecordEvent, Location, RecordChanges, RecordContent, RecordFiles, VitalSignsChanges,
};
use domain::hospital::{
    DepartmentDetails, DoctorDetails, Hospital, HospitalDetails, HospitalEvent, Slot, SlotDetails, SlotEvent,
};
use domain::ids::{
    DepartmentId, FamilyId, FileId, HealthRecordId, HospitalBookingId, HospitalDoctorId, HospitalId, MedicalOrderId,
    OrderRequestId, PackageId, PatientId, SessionId, SlotId, SubscriptionId, UserId, VisitId,
};
use domain::inbox::{Inbox, InboxEvent};
use domain::order::{
    MedicalOrder, MedicalOrderEvent, OrderDetails, OrderRequest, OrderRequestEvent, OrderType, RequestDetails,
};
use domain::package::{PackageDetails, PackageEvent, ServicePackage};
use domain::patient::{Patient, PatientChanges, PatientDetails, PatientEvent};
use domain::subscription::{PaymentStatus, Subscription, SubscriptionEvent, SubscriptionStatus, SubscriptionTerms};
use domain::user::{NewUser, RecorderChanges, RecorderProfile, Role, User, UserChanges, UserEvent, UserStatus};
use domain::values::{Gender, PhoneNumber, ResidentId};
use domain::visit::{Visit, VisitEvent, VisitPlan, VisitType};
use domain::vitals::{AlertReason, AlertThresholds, BloodPressure, VitalSigns};

use super::envelope::{envelope, topic, HASHED_FIELDS, OMITTED_FIELDS};

/// The key of the keyed hashes in `docs/events.md`.
pub const DOCS_PII_KEY: &[u8] = b"docs-example-key";

/// Personal data of the examples that must never appear in an envelope.
const PATIENT_NAME: &str = "王秀英";
const PATIENT_ID_CARD: &str = "11010519491231002X";
const PATIENT_PHONE: &str = "13800138000";
const FAMILY_PHONE: &str = "13912345678";
const EMERGENCY_PHONE: &str = "13698765432";
const RECORDER_PHONE: &str = "13701370137";
const PATIENT_NEW_PHONE: &str = "13552468013";
const HOME_ADDRESS: &str = "北京市朝阳区和平街十一区3号楼2单元501";

/// An aggregate whose events are published and documented.
pub trait Catalogued: Aggregate {
    /// What one aggregate (and so one topic) is about.
    const SUMMARY: &'static str;
    /// The name (`event_type`) and a one-sentence meaning of an event.
    ///
    /// Keep this an exhaustive `match` without a `_` arm: a new variant must
    /// not compile until it is described (and then given an example).
    fn describe(event: &Self::Event) -> (&'static str, &'static str);
}

impl Catalogued for User {
    const SUMMARY: &'static str = "Users of every role (admin, recorder, doctor, auditor) and their login sessions.";
    fn describe(event: &UserEvent) -> (&'static str, &'static str) {
        match event {
            UserEvent::UserCreated(_) => (
                "UserCreated",
                "An admin created a user account, with the recorder's or doctor's professional profile.",
            ),
            UserEvent::UserStatusChanged { .. } => (
                "UserStatusChanged",
                "A user's status changed (`active`, `inactive`, `suspended`); anything but `active` ends all sessions.",
            ),
            UserEvent::UserPasswordChanged { .. } => (
                "UserPasswordChanged",
                "A user's password changed, which ends every session but `kept_session` (the user's own, when they changed it themselves; none after an admin reset). The hash itself is never published.",
            ),
            UserEvent::UserProfileUpdated(_) => (
                "UserProfileUpdated",
                "An admin (or the user, for name and avatar) changed the account or the role's profile: recorder certificate and `is_on_duty`, doctor specialty and `is_available`. Absent fields did not change; a phone number leaves only as a keyed hash.",
            ),
            UserEvent::UserLoggedIn { .. } => (
                "UserLoggedIn",
                "A user logged in and a session began; `expires_at` is when its refresh token expires.",
            ),
            UserEvent::UserLoggedOut { .. } => ("UserLoggedOut", "A user logged out of one session."),
        }
    }
}

impl Catalogued for ServicePackage {
    const SUMMARY: &'static str = "Service packages on sale: price, duration and regular visits per month.";
    fn describe(event: &PackageEvent) -> (&'static str, &'static str) {
        match event {
            PackageEvent::PackageCreated(_) => (
                "PackageCreated",
                "An admin put a new service package on sale; `price` is a decimal string in yuan.",
            ),
        }
    }
}

impl Catalogued for Family {
    const SUMMARY: &'static str =
        "Households under care. Names and addresses are never published; phones only as hashes.";
    fn describe(event: &FamilyEvent) -> (&'static str, &'static str) {
        match event {
            FamilyEvent::FamilyCreated(_) => ("FamilyCreated", "A household was registered, with its contact phone (hashed); its name, address and home coordinates are not published."),
            FamilyEvent::FamilyUpdated(_) => ("FamilyUpdated", "A household's details changed; only the fields that changed are present (and, of those, only the ones that may be published)."),
            FamilyEvent::FamilyErased { .. } => ("FamilyErased", "The household's personal data were erased (its key destroyed) after its last patient was erased; `reason` is the admin's stated reason."),
        }
    }
}

impl Catalogued for Patient {
    const SUMMARY: &'static str = "People cared for, each in one family. Names and health history are never published; the resident ID and phone only as hashes.";
    fn describe(event: &PatientEvent) -> (&'static str, &'static str) {
        match event {
            PatientEvent::PatientRegistered { .. } => ("PatientRegistered", "A patient was registered into a family; `details` keeps gender, birth date, relationship and the hashed identifiers."),
            PatientEvent::PatientUpdated(_) => ("PatientUpdated", "A patient's details changed; only the changed fields that may be published are present (here a new phone, hashed, and allergies, left out), so `data` can be empty."),
            PatientEvent::PatientErased { .. } => ("PatientErased", "An admin erased the patient's personal data on request (PIPL): the patient's key was destroyed, so names, identifiers and free text in every earlier event read as erased from now on. Consumers should drop what they derived from this patient."),
        }
    }
}

impl Catalogued for Subscription {
    const SUMMARY: &'static str = "A patient's subscription to a package, assigned to one recorder.";
    fn describe(event: &SubscriptionEvent) -> (&'static str, &'static str) {
        match event {
            SubscriptionEvent::SubscriptionCreated(_) => ("SubscriptionCreated", "A patient subscribed to a package; the recorder in `recorder_id` now serves the family until `end_date`."),
            SubscriptionEvent::SubscriptionStatusChanged { .. } => ("SubscriptionStatusChanged", "A subscription was paused, resumed or cancelled (`cancelled` is final)."),
            SubscriptionEvent::SubscriptionPaymentChanged { .. } => ("SubscriptionPaymentChanged", "A subscription's payment status changed (`unpaid`, `paid`, `refunded`)."),
        }
    }
}

impl Catalogued for Visit {
    const SUMMARY: &'static str =
        "Home visits (\"appointments\" in the API): scheduled, confirmed, rescheduled, cancelled or completed.";
    fn describe(event: &VisitEvent) -> (&'static str, &'static str) {
        match event {
            VisitEvent::VisitScheduled(_) => ("VisitScheduled", "A home visit was scheduled for a patient, with the recorder who will go (`recorder_id`), the date and time in Asia/Shanghai, and its type (`regular`, `makeup`, `emergency`)."),
            VisitEvent::VisitConfirmed => ("VisitConfirmed", "The recorder confirmed a scheduled visit."),
            VisitEvent::VisitRescheduled { .. } => ("VisitRescheduled", "A visit moved from `from_date`/`from_time` to `date`/`time`."),
            VisitEvent::VisitCancelled { .. } => ("VisitCancelled", "A visit was cancelled (the reason is free text and is not published)."),
            VisitEvent::VisitCompleted { .. } => ("VisitCompleted", "A visit was completed with the health record taken during it; `actorid` is who completed it, usually the recorder."),
        }
    }
}

impl Catalogued for StoredFile {
    const SUMMARY: &'static str =
        "Uploaded files (photos, audio, signatures, documents): what was stored, where and by whom, never the bytes.";
    fn describe(event: &FileEvent) -> (&'static str, &'static str) {
        match event {
            FileEvent::FileUploaded(_) => ("FileUploaded", "A file was stored (`kind` is `image`, `audio` or `document`), with its size, SHA-256 digest and storage keys."),
        }
    }
}

impl Catalogued for HealthRecord {
    const SUMMARY: &'static str =
        "What a recorder measured during one visit: vital signs, position check, files and the alerts raised.";
    fn describe(event: &HealthRecordEvent) -> (&'static str, &'static str) {
        match event {
            HealthRecordEvent::HealthRecordCreated(_) => ("HealthRecordCreated", "A recorder recorded a patient's vital signs; `alerts` lists the thresholds crossed, and `away_from_home` flags a record taken more than 500 m from the family's home. Symptoms, notes and the address are not published."),
            HealthRecordEvent::HealthRecordAmended { .. } => ("HealthRecordAmended", "The record's recorder corrected it within the amendment window; `changes` holds the corrected fields with their new values (`null` = removed; corrected symptoms and notes are not published), `reason_code` is the client's code for why, and `alerts`, present when vital signs changed, replaces the record's alerts. The original values stay in `HealthRecordCreated`."),
            HealthRecordEvent::HealthRecordUnlocked { .. } => ("HealthRecordUnlocked", "An admin reopened a record whose amendment window had passed, for another window from `at`; the reason is not published."),
        }
    }
}

impl Catalogued for OrderRequest {
    const SUMMARY: &'static str = "Requests for a doctor's order, made by a recorder or raised by abnormal vitals.";
    fn describe(event: &OrderRequestEvent) -> (&'static str, &'static str) {
        match event {
            OrderRequestEvent::OrderRequested(_) => ("OrderRequested", "A doctor was asked for an order about a health record; `requested_by` is null when the alert rules raised it, and `alerts` says why."),
            OrderRequestEvent::OrderRequestFulfilled { .. } => ("OrderRequestFulfilled", "The doctor answered the request with the medical order `order_id`."),
            OrderRequestEvent::OrderRequestCancelled { .. } => ("OrderRequestCancelled", "The request was withdrawn without an order."),
        }
    }
}

impl Catalogued for MedicalOrder {
    const SUMMARY: &'static str =
        "Doctors' medical orders. The order's text and notes are not published; dosage, frequency and duration are.";
    fn describe(event: &MedicalOrderEvent) -> (&'static str, &'static str) {
        match event {
            MedicalOrderEvent::MedicalOrderIssued(_) => ("MedicalOrderIssued", "A doctor issued an order (`medication`, `examination`, `lifestyle` or `followup`), answering `request_id` when there was one; the patient's recorder is notified."),
            MedicalOrderEvent::MedicalOrderCompleted => ("MedicalOrderCompleted", "The order was carried out."),
            MedicalOrderEvent::MedicalOrderCancelled { .. } => ("MedicalOrderCancelled", "The order was cancelled before it was carried out."),
        }
    }
}

impl Catalogued for Inbox {
    const SUMMARY: &'static str = "A user's notification inbox (the aggregate id is the user id); notifications themselves are derived from other events.";
    fn describe(event: &InboxEvent) -> (&'static str, &'static str) {
        match event {
            InboxEvent::NotificationRead { .. } => ("NotificationRead", "The user read a notification."),
        }
    }
}

impl Catalogued for Hospital {
    const SUMMARY: &'static str = "Partner hospitals with their departments and doctors.";
    fn describe(event: &HospitalEvent) -> (&'static str, &'static str) {
        match event {
            HospitalEvent::HospitalRegistered(_) => (
                "HospitalRegistered",
                "A partner hospital was registered, with its level; it takes bookings from now on.",
            ),
            HospitalEvent::HospitalActivated => ("HospitalActivated", "A hospital takes bookings again."),
            HospitalEvent::HospitalDeactivated => ("HospitalDeactivated", "A hospital stopped taking bookings."),
            HospitalEvent::DepartmentAdded { .. } => (
                "DepartmentAdded",
                "A department was added to a hospital; `id` is the department id.",
            ),
            HospitalEvent::DepartmentActivityChanged { .. } => (
                "DepartmentActivityChanged",
                "A department stopped (`active: false`) or resumed taking bookings.",
            ),
            HospitalEvent::HospitalDoctorAdded { .. } => (
                "HospitalDoctorAdded",
                "A doctor of the hospital was added to a department; `id` is the hospital doctor id (not a user id).",
            ),
            HospitalEvent::HospitalDoctorActivityChanged { .. } => (
                "HospitalDoctorActivityChanged",
                "A hospital doctor stopped (`active: false`) or resumed seeing patients.",
            ),
        }
    }
}

impl Catalogued for Slot {
    const SUMMARY: &'static str = "Bookable slots at partner hospitals; a slot's places are taken and released by events on the slot, so it can never be overbooked.";
    fn describe(event: &SlotEvent) -> (&'static str, &'static str) {
        match event {
            SlotEvent::SlotOpened(_) => (
                "SlotOpened",
                "A slot was opened: department, optional doctor, date, time and number of places.",
            ),
            SlotEvent::SlotPlaceBooked { .. } => ("SlotPlaceBooked", "One place of the slot was taken for a booking."),
            SlotEvent::SlotPlaceReleased { .. } => {
                ("SlotPlaceReleased", "A booking gave its place back (it was cancelled).")
            }
        }
    }
}

impl Catalogued for HospitalBooking {
    const SUMMARY: &'static str =
        "Patients' bookings at partner hospitals: pending, confirmed, completed or cancelled.";
    fn describe(event: &BookingEvent) -> (&'static str, &'static str) {
        match event {
            BookingEvent::HospitalBookingRequested(_) => (
                "HospitalBookingRequested",
                "A recorder booked a place in a slot for a patient; the booking waits for the hospital's confirmation.",
            ),
            BookingEvent::HospitalBookingConfirmed { .. } => (
                "HospitalBookingConfirmed",
                "The hospital confirmed the booking with its appointment number and fee (decimal string in yuan).",
            ),
            BookingEvent::HospitalBookingCompleted { .. } => (
                "HospitalBookingCompleted",
                "The patient was seen; the result notes are not published, so `data` is empty.",
            ),
            BookingEvent::HospitalBookingCancelled { .. } => (
                "HospitalBookingCancelled",
                "The booking was cancelled and its place released.",
            ),
        }
    }
}

/// One topic: an aggregate type and how to describe its events.
struct Stream {
    aggregate_type: &'static str,
    summary: &'static str,
    /// Name and meaning of a stored event of this aggregate type; `None` if
    /// its payload is not one of the aggregate's events.
    describe: fn(&StoredEvent) -> Option<(&'static str, &'static str)>,
    /// Every variant name of the event enum, from its `Deserialize`.
    #[cfg(test)]
    variants: fn() -> Vec<String>,
}

fn describe_stored<A: Catalogued>(e: &StoredEvent) -> Option<(&'static str, &'static str)> {
    serde_json::from_value::<A::Event>(e.payload.clone())
        .ok()
        .map(|ev| A::describe(&ev))
}

fn stream<A: Catalogued>() -> Stream {
    Stream {
        aggregate_type: A::TYPE,
        summary: A::SUMMARY,
        describe: describe_stored::<A>,
        #[cfg(test)]
        variants: tests::serde_variants::<A::Event>,
    }
}

/// Every published aggregate type, in the order of the documentation.
fn streams() -> Vec<Stream> {
    vec![
        stream::<User>(),
        stream::<ServicePackage>(),
        stream::<Family>(),
        stream::<Patient>(),
        stream::<Subscription>(),
        stream::<Visit>(),
        stream::<StoredFile>(),
        stream::<HealthRecord>(),
        stream::<OrderRequest>(),
        stream::<MedicalOrder>(),
        stream::<Inbox>(),
        stream::<Hospital>(),
        stream::<Slot>(),
        stream::<HospitalBooking>(),
    ]
}

// ---------------------------------------------------------------------------
// The examples: one story, in the order the events would be recorded.
// ---------------------------------------------------------------------------

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
        let sequence = self.sequences.entry((A::TYPE, id)).or_insert(0);
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
            aggregate_id: id.to_string(),
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
fn story() -> Result<Vec<StoredEvent>, String> {
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
        "CompleteVisit",
        VisitEvent::VisitCompleted {
            health_record_id: HealthRecordId(record_id),
        },
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
        }),
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

// ---------------------------------------------------------------------------
// docs/events.md
// ---------------------------------------------------------------------------

/// The JSON type of a value, with a hint for strings of a known shape.
fn json_type(v: &Value) -> String {
    match v {
        Value::Null => "null in this example".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(n) if n.is_f64() => "number".into(),
        Value::Number(_) => "integer".into(),
        Value::String(s) => {
            let hint = if s.starts_with("hmac-sha256:") {
                Some("keyed hash")
            } else if Uuid::parse_str(s).is_ok() {
                Some("uuid")
            } else if DateTime::parse_from_rfc3339(s).is_ok() {
                Some("date-time")
            } else if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
                Some("date")
            } else if NaiveTime::parse_from_str(s, "%H:%M:%S").is_ok() {
                Some("time")
            } else if s.contains('.') && s.parse::<Decimal>().is_ok() {
                Some("decimal")
            } else {
                None
            };
            match hint {
                Some(h) => format!("string ({h})"),
                None => "string".into(),
            }
        }
        Value::Array(items) => match items.first() {
            Some(first) => format!("array of {}", json_type(first)),
            None => "array".into(),
        },
        Value::Object(_) => "object".into(),
    }
}

fn code_list(items: &[&str]) -> String {
    items.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
}

const ENVELOPE_FIELDS: &[(&str, &str, &str)] = &[
    ("specversion", "string", "Always `\"1.0\"` (CloudEvents 1.0, structured mode)."),
    ("id", "string (uuid)", "Stable event id: UUID v5 of `<aggregate_type>:<aggregate_id>:<sequence>`. The same event always has the same id, also when re-published: **consumers deduplicate on it**."),
    ("source", "string", "`carelog/<aggregate_type>`."),
    ("type", "string", "`carelog.<aggregate_type>.<EventType>`, e.g. `carelog.appointment.VisitCompleted`."),
    ("subject", "string (uuid)", "The aggregate id (also the Kafka message key)."),
    ("time", "string (date-time)", "When the event was recorded, UTC with milliseconds (`2026-03-05T01:20:00.000Z`). Convert to Asia/Shanghai for local days."),
    ("datacontenttype", "string", "Always `application/json`."),
    ("dataschemaversion", "string", "Version of the event's schema (`1.0` for all events today); a breaking change of `data` gets a new version."),
    ("aggregatetype", "string", "The aggregate type, as in the topic name."),
    ("sequence", "integer", "Position of the event in its aggregate's history, from 1, without gaps."),
    ("position", "integer", "Global position in the event store; increases with commit order across all aggregates (may have gaps)."),
    ("actorid", "string (uuid) or null", "User id of who issued the command; null for commands of the server itself."),
    ("actorrole", "string or null", "`admin`, `recorder`, `doctor` or `auditor`; null when unknown (login, server commands)."),
    ("correlationid", "string or null", "Ties together the events caused by one request (the `X-Correlation-Id` header, else the request id)."),
    ("command", "string or null", "The command that produced the event, e.g. `RecordVitals`."),
    ("data", "object", "The event's own fields, sanitised (see *Personal data*). For events without fields it is the event name as a string."),
];

/// `docs/events.md`: the envelope, topics, privacy rules and every event type
/// with its fields and a full example envelope hashed with `pii_key`.
pub fn markdown(pii_key: &[u8]) -> String {
    let (events, problem) = match story() {
        Ok(events) => (events, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let streams = streams();
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };

    line("# Events on Kafka");
    line("");
    line("<!-- Generated from src/relay/catalog.rs by `UPDATE_DOCS=1 cargo test --lib docs_events_md_is_up_to_date`. Do not edit by hand. -->");
    line("");
    line(
        "carelog publishes every event of its event store to Kafka, so that other systems (analytics, reporting, \
          messaging) can follow what happens without querying the API. The relay reads the store in global \
          order and publishes each event as a CloudEvents 1.0 JSON \
          envelope (structured mode). It runs when `CARELOG_KAFKA_BROKERS` is set.",
    );
    if let Some(p) = &problem {
        line("");
        line(&format!("> **The example data are invalid: {p}**"));
    }
    line("");
    line("## Topics and delivery");
    line("");
    line(
        "- **One topic per aggregate type**: `carelog.<aggregate_type>` (the prefix `carelog.` is \
          `CARELOG_KAFKA_TOPIC_PREFIX`). Subscribe only to the streams you need.",
    );
    line(
        "- **Key = aggregate id** (the envelope's `subject`). All events of one aggregate go to the same \
          partition, so they arrive **in order** (by `sequence`). There is no order between different \
          aggregates or topics; use `position` or `time` if you need one.",
    );
    line(
        "- **Delivery is at-least-once.** The relay moves its checkpoint only over events the broker \
          acknowledged, so after a crash or a broker outage the unacknowledged tail is published again, with \
          the same `id`s. Deduplicate on `id`.",
    );
    line(
        "- Headers: `ce_id` (= `id`), `ce_type` (= `type`) and `content-type: application/cloudevents+json`, \
          so a consumer can filter without parsing the body.",
    );
    line("- Publishing never blocks the API: when the broker is down, commands go on and the relay catches up later.");
    line("");
    line("| topic | events | what it carries |");
    line("|---|---|---|");
    for st in &streams {
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e.aggregate_type == st.aggregate_type)
            .map(|e| e.event_type.as_str())
            .collect();
        let links = names
            .iter()
            .map(|n| format!("[{n}](#{})", anchor(st.aggregate_type, n)))
            .collect::<Vec<_>>()
            .join(", ");
        line(&format!(
            "| `{}` | {links} | {} |",
            topic("carelog.", st.aggregate_type),
            st.summary
        ));
    }
    line("");
    line("## Envelope");
    line("");
    line("| field | type | meaning |");
    line("|---|---|---|");
    for (field, ty, meaning) in ENVELOPE_FIELDS {
        line(&format!("| `{field}` | {ty} | {meaning} |"));
    }
    line("");
    line("## Personal data");
    line("");
    line(
        "Whatever reaches Kafka cannot be recalled, so personal data are kept out from the start. \
          The rule applies to `data` at any depth, by field name:",
    );
    line("");
    line(&format!(
        "- **Hashed**: {}. Published as `hmac-sha256:<64 hex digits>`, an HMAC-SHA256 keyed with \
         `CARELOG_KAFKA_PII_KEY` combined with a secret of the event's data subject (the patient, or the \
         household for the family's own phones; derived from the key that encrypts their data in the event \
         store). Within one subject the same value always gives the same hash, so consumers can see that an \
         identifier changed or not without seeing it; without the keys the value cannot be recovered by trying \
         candidates, and once the subject is erased nobody can compute or confirm those hashes any more. \
         Staff phones are keyed with `CARELOG_KAFKA_PII_KEY` alone.",
        code_list(HASHED_FIELDS)
    ));
    line(&format!(
        "- **Left out**: {}. Names, addresses, positions, free text about health, secrets and file names \
         never leave carelog; ids, dates, codes, measured values and statuses do.",
        code_list(OMITTED_FIELDS)
    ));
    line("");
    line(&format!(
        "The examples below are hashed with the key `{}`, so their hashes differ from production ones.",
        String::from_utf8_lossy(pii_key)
    ));
    line("");
    line("## Event types");
    for st in &streams {
        let of_stream: Vec<&StoredEvent> = events
            .iter()
            .filter(|e| e.aggregate_type == st.aggregate_type)
            .collect();
        line("");
        line(&format!("### Topic `{}`", topic("carelog.", st.aggregate_type)));
        line("");
        line(st.summary);
        for e in of_stream {
            let sentence = (st.describe)(e).map(|(_, s)| s).unwrap_or("");
            let env = envelope(e, pii_key);
            line("");
            line(&format!("<a id=\"{}\"></a>", anchor(st.aggregate_type, &e.event_type)));
            line(&format!("#### `carelog.{}.{}`", e.aggregate_type, e.event_type));
            line("");
            line(sentence);
            line("");
            match env.get("data") {
                Some(Value::Object(fields)) if fields.is_empty() => {
                    line("`data` has no fields that may be published: it is `{}`.");
                }
                Some(Value::Object(fields)) => {
                    line("| `data` field | type |");
                    line("|---|---|");
                    for (k, v) in fields {
                        line(&format!("| `{k}` | {} |", json_type(v)));
                    }
                }
                Some(other) => line(&format!("`data` has no fields: it is `{other}`.")),
                None => line("The envelope has no `data`."),
            }
            line("");
            line("```json");
            line(&serde_json::to_string_pretty(&env).unwrap_or_default());
            line("```");
        }
    }
    out
}

/// The HTML anchor of an event type's section.
fn anchor(aggregate_type: &str, event_type: &str) -> String {
    format!("{}-{}", aggregate_type.replace('_', "-"), event_type.to_lowercase())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde::de::DeserializeOwned;

    use super::*;

    /// Every variant name of an externally tagged enum, read from its derived
    /// `Deserialize`: asked for an unknown variant, serde lists the known ones
    /// ("unknown variant `?`, expected one of `A`, `B`").
    pub(crate) fn serde_variants<E: DeserializeOwned>() -> Vec<String> {
        let probe = "\u{1}no such variant";
        let err = match serde_json::from_value::<E>(json!({ probe: null })) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("the probe variant exists"),
        };
        assert!(err.starts_with("unknown variant"), "unexpected serde error: {err}");
        err.split('`')
            .skip(1)
            .step_by(2)
            .filter(|v| *v != probe)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_sample_data_are_valid() {
        assert!(story().is_ok(), "{:?}", story().err());
    }

    #[test]
    fn every_event_variant_has_exactly_one_example() {
        let examples = examples();
        let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for e in &examples {
            let st = streams().into_iter().find(|s| s.aggregate_type == e.aggregate_type);
            let st = st.unwrap_or_else(|| panic!("aggregate type {} is not in streams()", e.aggregate_type));
            let (name, sentence) =
                (st.describe)(e).unwrap_or_else(|| panic!("{} payload does not decode: {}", e.event_type, e.payload));
            assert_eq!(name, e.event_type, "describe() and event_type() disagree");
            assert!(!sentence.is_empty());
            seen.entry(st.aggregate_type).or_default().push(e.event_type.clone());
        }
        for st in streams() {
            let mut all = (st.variants)();
            all.sort();
            let mut with_examples = seen.remove(st.aggregate_type).unwrap_or_default();
            with_examples.sort();
            assert_eq!(
                with_examples, all,
                "examples of {} (one per variant)",
                st.aggregate_type
            );
        }
        assert!(seen.is_empty(), "examples of unknown aggregate types: {seen:?}");
        let types: BTreeSet<&str> = streams().iter().map(|s| s.aggregate_type).collect();
        assert_eq!(types.len(), streams().len(), "an aggregate type is listed twice");
    }

    #[test]
    fn examples_are_deterministic_and_consistent() {
        let (a, b) = (examples(), examples());
        let canonical = |events: &[StoredEvent]| -> Vec<String> {
            events
                .iter()
                .map(|e| {
                    let meta: BTreeMap<_, _> = e.metadata.iter().collect();
                    format!(
                        "{} {} {} {} {} {meta:?} {}",
                        e.position, e.aggregate_id, e.sequence, e.event_type, e.payload, e.recorded_at
                    )
                })
                .collect()
        };
        assert!(canonical(&a) == canonical(&b), "examples() differ between calls");
        for pair in a.windows(2) {
            assert!(pair[0].position < pair[1].position, "positions increase");
            assert!(pair[0].recorded_at <= pair[1].recorded_at, "times follow positions");
        }
        let mut last: HashMap<(&str, &str), i64> = HashMap::new();
        for e in &a {
            let prev = last
                .insert((&e.aggregate_type, &e.aggregate_id), e.sequence)
                .unwrap_or(0);
            assert!(e.sequence > prev, "sequence of {} {}", e.aggregate_type, e.event_type);
            for k in [
                "actor_id",
                "ip",
                "user_agent",
                "request_id",
                "correlation_id",
                "command",
                "time",
            ] {
                assert!(e.metadata.contains_key(k), "{} lacks {k}", e.event_type);
            }
        }
    }

    #[test]
    fn no_example_envelope_contains_personal_data() {
        let personal = [
            PATIENT_NAME,
            PATIENT_ID_CARD,
            PATIENT_PHONE,
            PATIENT_NEW_PHONE,
            FAMILY_PHONE,
            EMERGENCY_PHONE,
            RECORDER_PHONE,
            HOME_ADDRESS,
            "010-69156114",
        ];
        for e in examples() {
            let json = envelope(&e, DOCS_PII_KEY).to_string();
            for p in personal {
                assert!(!json.contains(p), "{} publishes {p}: {json}", e.event_type);
            }
        }
        // The data are in the examples, so the check above is not vacuous.
        let stored: String = examples().iter().map(|e| e.payload.to_string()).collect();
        for p in personal {
            assert!(stored.contains(p), "no example holds {p}");
        }
    }

    #[test]
    fn docs_events_md_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.md");
        let expected = markdown(DOCS_PII_KEY);
        if std::env::var("UPDATE_DOCS").as_deref() == Ok("1") {
            std::fs::write(&path, &expected).unwrap();
            return;
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "{} is out of date; regenerate it with: UPDATE_DOCS=1 cargo test --lib docs_events_md_is_up_to_date",
            path.display()
        );
    }
}
