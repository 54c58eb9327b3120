//! What is published, topic by topic: every aggregate implements
//! [`Catalogued`], whose `describe` is an exhaustive `match` over the
//! aggregate's event enum, so a new variant does not compile until it is
//! named and described here; [`streams`] lists every published aggregate type
//! in the order of the documentation.

use cqrs_es::Aggregate;
use projections::StoredEvent;
use serde::de::DeserializeOwned;
use serde_json::json;

use domain::alert::{Alert, AlertEvent};
use domain::booking::{BookingEvent, HospitalBooking};
use domain::evv::{EvvException, EvvExceptionEvent};
use domain::family::{Family, FamilyEvent};
use domain::file::{FileEvent, StoredFile};
use domain::health_record::{HealthRecord, HealthRecordEvent};
use domain::hospital::{Hospital, HospitalEvent, Slot, SlotEvent};
use domain::inbox::{Inbox, InboxEvent};
use domain::job::{JobRun, JobRunEvent};
use domain::order::{MedicalOrder, MedicalOrderEvent, OrderRequest, OrderRequestEvent};
use domain::package::{PackageEvent, ServicePackage};
use domain::patient::{Patient, PatientEvent};
use domain::push::{Push, PushEvent};
use domain::subscription::{Subscription, SubscriptionEvent};
use domain::user::{User, UserEvent};
use domain::visit::{Visit, VisitEvent};

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
            UserEvent::WechatBound { .. } => (
                "WechatBound",
                "A user bound their WeChat account: WeChat login and subscribe messages reach them. `openid_hash` is a keyed hash; the openid itself is never published.",
            ),
            UserEvent::WechatUnbound { .. } => (
                "WechatUnbound",
                "A user's WeChat binding ended (unbound, or replaced by another WeChat account).",
            ),
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
            SubscriptionEvent::SubscriptionExpired { .. } => ("SubscriptionExpired", "The `subscription_expiry` job found the subscription past its `end_date`: it is `expired` (final), and its recorder no longer serves the family through it; `previous` is the status it had."),
        }
    }
}

impl Catalogued for Visit {
    const SUMMARY: &'static str =
        "Home visits (\"appointments\" in the API): scheduled, confirmed, rescheduled, cancelled, checked in and out, completed.";
    fn describe(event: &VisitEvent) -> (&'static str, &'static str) {
        match event {
            VisitEvent::VisitScheduled(_) => ("VisitScheduled", "A home visit was scheduled for a patient, with the recorder who will go (`recorder_id`), the date and time in Asia/Shanghai, and its type (`regular`, `makeup`, `emergency`)."),
            VisitEvent::VisitConfirmed => ("VisitConfirmed", "The recorder confirmed a scheduled visit."),
            VisitEvent::VisitRescheduled { .. } => ("VisitRescheduled", "A visit moved from `from_date`/`from_time` to `date`/`time`."),
            VisitEvent::VisitCancelled { .. } => ("VisitCancelled", "A visit was cancelled (the reason is free text and is not published)."),
            VisitEvent::VisitCompleted { .. } => ("VisitCompleted", "A visit was completed with the health record taken during it; `actorid` is who completed it, usually the recorder."),
            VisitEvent::VisitCheckedIn(_) => ("VisitCheckedIn", "The recorder checked in at the family's door: the visit is `in_progress` from `at` (server time, or the captured time of an offline command); `distance_from_home_m` is how far from the family's home (null when the home has no coordinates). The position itself is not published."),
            VisitEvent::VisitCheckedOut(_) => ("VisitCheckedOut", "The recorder checked out: the visit ended at `at`, `distance_from_home_m` from home. A visit whose record was taken is completed by a `VisitCompleted` in the same commit; otherwise the record completes it when it arrives."),
            VisitEvent::VisitRecordAttached { .. } => ("VisitRecordAttached", "The health record taken during a visit in progress was attached to it; the check-out completes the visit."),
            VisitEvent::VisitMissed { .. } => ("VisitMissed", "The `missed_visits` job found the visit still scheduled or confirmed after its day (`date`) ended: it is `missed` (final)."),
        }
    }
}

impl Catalogued for StoredFile {
    const SUMMARY: &'static str =
        "Uploaded files (photos, audio, signatures, documents): what was stored, where and by whom, never the bytes.";
    fn describe(event: &FileEvent) -> (&'static str, &'static str) {
        match event {
            FileEvent::FileUploaded(_) => ("FileUploaded", "A file was stored (`kind` is `image`, `audio` or `document`), with its size, SHA-256 digest and storage keys."),
            FileEvent::FileDiscarded { .. } => ("FileDiscarded", "The `file_cleanup` job discarded an upload attached to no record for 24 hours; its bytes (the storage keys named) are deleted from storage after this event."),
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
            OrderRequestEvent::OrderRequested(_) => ("OrderRequested", "A doctor was asked for an order about a health record; `requested_by` is null when the alert rules raised it, `alerts` says why and `alert_id` names the alert raised with it."),
            OrderRequestEvent::OrderRequestFulfilled { .. } => ("OrderRequestFulfilled", "The doctor answered the request with the medical order `order_id`."),
            OrderRequestEvent::OrderRequestCancelled { .. } => ("OrderRequestCancelled", "The request was withdrawn without an order."),
        }
    }
}

impl Catalogued for Alert {
    const SUMMARY: &'static str = "Alerts of abnormal vital signs, one per abnormal health record (its id derived from the record's): triggered for a doctor, acknowledged, resolved with an outcome, and escalated while nobody acknowledges them. The resolution note is not published.";
    fn describe(event: &AlertEvent) -> (&'static str, &'static str) {
        match event {
            AlertEvent::AlertTriggered(_) => ("AlertTriggered", "Vital signs crossed the alert thresholds: the alert went to `doctor_id`, with its `severity` (`abnormal` or `urgent`) and `reasons`."),
            AlertEvent::AlertAcknowledged { .. } => ("AlertAcknowledged", "The alert's doctor acknowledged it; it is no longer escalated."),
            AlertEvent::AlertResolved { .. } => ("AlertResolved", "The alert's doctor (or an admin, `by`) closed it with an `outcome`: `order_issued`, `no_action_needed` or `referred`."),
            AlertEvent::AlertEscalated { .. } => ("AlertEscalated", "Nobody acknowledged the alert in time (15 minutes when urgent, 120 when abnormal, by default): it went from `from_doctor` to `to_doctor` (the same doctor when no other was available) at escalation `level`, and the `admins` were notified."),
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
pub struct Stream {
    pub aggregate_type: &'static str,
    pub summary: &'static str,
    /// Name and meaning of a stored event of this aggregate type; `None` if
    /// its payload is not one of the aggregate's events.
    pub describe: fn(&StoredEvent) -> Option<(&'static str, &'static str)>,
    /// Every variant name of the event enum, from its `Deserialize`.
    pub variants: fn() -> Vec<String>,
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
        variants: serde_variants::<A::Event>,
    }
}

/// Every published aggregate type, in the order of the documentation.
impl Catalogued for EvvException {
    const SUMMARY: &'static str = "Visit verification exceptions: one per visit and code, raised by the server from check-ins, check-outs and records, acknowledged with a reason code, resolved by an admin.";
    fn describe(event: &EvvExceptionEvent) -> (&'static str, &'static str) {
        match event {
            EvvExceptionEvent::EvvExceptionRaised { .. } => (
                "EvvExceptionRaised",
                "The server found a visit's facts out of order: `code` is `away_from_home` (check-in or record farther than `CARELOG_EVV_RADIUS_M` from home), `overlapping_visits` (checked in while another of the recorder's visits was in progress, `other_visit_id`), `missing_signature` (the visit's record has no patient signature), `short_visit` (under `CARELOG_EVV_MIN_MINUTES`) or `missing_check_out` (not checked out by the end of the check-in's day); `details` holds the measurements and limits. The aggregate id is derived from the visit and the code, so there is at most one per visit and code.",
            ),
            EvvExceptionEvent::EvvExceptionAcknowledged { .. } => (
                "EvvExceptionAcknowledged",
                "The visit's recorder or an admin (`by`) explained the exception with `reason_code`, a code of `GET /evv/reason-codes`.",
            ),
            EvvExceptionEvent::EvvExceptionResolved { .. } => (
                "EvvExceptionResolved",
                "An admin (`by`) closed the exception; the resolution is free text and is not published.",
            ),
        }
    }
}

impl Catalogued for Push {
    const SUMMARY: &'static str = "WeChat subscribe messages, one per notification and recipient, sent at most once: queued, attempted (recorded before the call), then sent, failed (retried with backoff, or given up) or skipped.";
    fn describe(event: &PushEvent) -> (&'static str, &'static str) {
        match event {
            PushEvent::PushQueued(_) => (
                "PushQueued",
                "A notification with a WeChat template was queued for its recipient (the aggregate id is the notification id).",
            ),
            PushEvent::PushAttempted { .. } => (
                "PushAttempted",
                "Send number `attempt` started; without an outcome after it, the message is never sent again (at most once).",
            ),
            PushEvent::PushSent { .. } => ("PushSent", "WeChat accepted the message."),
            PushEvent::PushFailed { .. } => (
                "PushFailed",
                "The send failed; it is tried again at `retry_at`, or given up when `retry_at` is absent.",
            ),
            PushEvent::PushSkipped { .. } => (
                "PushSkipped",
                "The message will not be sent: the user refused the subscription (43101) or has no WeChat account bound.",
            ),
        }
    }
}

impl Catalogued for JobRun {
    const SUMMARY: &'static str = "Scheduled jobs: one aggregate per job and period (id `{job}:{period}`, e.g. `visit_reminders:2026-03-04`, `weekly_report:2026-W10`), whose first event records the period's run.";
    fn describe(event: &JobRunEvent) -> (&'static str, &'static str) {
        match event {
            JobRunEvent::JobRan { .. } => ("JobRan", "A scheduled job ran for its period, as of `at`; `outcome` (tagged by `job`) holds what it found: the reminders sent per recorder, the expiring certificates, the subscriptions expired, the uploads discarded, the visits missed, or the week reported, and the admins told. A period runs once across all servers. A run that found more than a thousand items records them in parts: `outcome` holds the first, `total` the count of them all, and `JobRanContinued` events the rest."),
            JobRunEvent::JobRanContinued { .. } => ("JobRanContinued", "The next part of a run's outcome (same commit, in order, of the same kind as its `JobRan`): each event stays small enough for any broker's message limit. The admins are in the first part only, told once of the whole count."),
        }
    }
}

pub fn streams() -> Vec<Stream> {
    vec![
        stream::<User>(),
        stream::<ServicePackage>(),
        stream::<Family>(),
        stream::<Patient>(),
        stream::<Subscription>(),
        stream::<Visit>(),
        stream::<StoredFile>(),
        stream::<HealthRecord>(),
        stream::<Alert>(),
        stream::<OrderRequest>(),
        stream::<MedicalOrder>(),
        stream::<Inbox>(),
        stream::<Hospital>(),
        stream::<Slot>(),
        stream::<HospitalBooking>(),
        stream::<EvvException>(),
        stream::<Push>(),
        stream::<JobRun>(),
    ]
}

/// Every variant name of an externally tagged enum, read from its derived
/// `Deserialize`: asked for an unknown variant, serde lists the known ones
/// ("unknown variant `?`, expected one of `A`, `B`").
fn serde_variants<E: DeserializeOwned>() -> Vec<String> {
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
