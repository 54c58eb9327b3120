//! The authorization matrix: every route of the route table × every role ×
//! owner / non-owner, with the outcome each must get.
//!
//! The table below must name exactly the routes the server serves
//! (`carelog::api::route_table()`): a new route without a row fails this test
//! before anything is sent. Each cell says what one caller gets:
//!
//! - `A` allowed: the request reaches the use case (2xx, or a 400/409/422 of
//!   the business rules: the caller was let in),
//! - `N` 404: the caller may not know the thing exists (not their patient),
//! - `F` 403: the role may never do this,
//! - `U` 401: no credentials (or the wrong kind of token).
//!
//! Columns, in order: admin, the patient's recorder, another recorder, the
//! patient's doctor (linked by a request and an order), another doctor, an
//! auditor, anonymous. Bodies are valid, so a refusal is the policy's, not a
//! validator's. Requests that change state are chosen to leave the world as
//! the next row needs it (no-op status changes, throwaway users and patients);
//! the rows that end sessions run last.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{png, spawn_app, Backend, TestApp, ADMIN_PASSWORD};

dual!(every_route_answers_every_role_as_the_policy_says);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    RecOwn,
    RecOther,
    DocOwn,
    DocOther,
    Auditor,
    Anon,
}

/// Column order of the table.
const COLUMNS: [Who; 7] = [
    Who::Admin,
    Who::RecOwn,
    Who::RecOther,
    Who::DocOwn,
    Who::DocOther,
    Who::Auditor,
    Who::Anon,
];

/// Who asks first: the denied before the allowed, so a refusal is seen on
/// the world as it was set up, and the admin last.
const ORDER: [Who; 7] = [
    Who::Anon,
    Who::Auditor,
    Who::DocOther,
    Who::RecOther,
    Who::DocOwn,
    Who::RecOwn,
    Who::Admin,
];

/// (method, path under /api/v1, outcomes in [`COLUMNS`] order).
#[rustfmt::skip]
const TABLE: &[(&str, &str, &str)] = &[
    // auth: login is public; refresh takes a refresh token, never an access token
    ("POST",  "/auth/login",                                  "AAAAAAA"),
    ("POST",  "/auth/refresh",                                "UUUUUUU"),
    ("GET",   "/auth/me",                                     "AAAAAAU"),
    ("PATCH", "/auth/me",                                     "AAAAAAU"),
    // WeChat login (public) and binding (any role): WeChat is not configured
    // in this world, so each answers 404 `wechat_not_configured` once let in
    ("POST",  "/auth/wechat",                                 "NNNNNNN"),
    ("POST",  "/auth/wechat/bind",                            "NNNNNNU"),
    ("DELETE","/auth/wechat/bind",                            "NNNNNNU"),
    // users: admins; auditors read the staff directory; everyone their own record
    ("POST",  "/users",                                       "AFFFFFU"),
    ("GET",   "/users",                                       "AFFFFAU"),
    ("GET",   "/users/{id}",                                  "AANNNAU"),
    ("PATCH", "/users/{id}",                                  "AFFFFFU"),
    ("PATCH", "/users/{id}/status",                           "AFFFFFU"),
    ("POST",  "/users/{id}/password",                         "AFFFFFU"),
    ("GET",   "/recorders/{id}",                              "AANFFFU"),
    ("GET",   "/doctors/{id}",                                "AAAAAFU"),
    // households and patients
    ("POST",  "/families",                                    "AFFFFFU"),
    ("GET",   "/families",                                    "AAAFFFU"),
    ("GET",   "/families/{id}",                               "AANNNFU"),
    ("PATCH", "/families/{id}",                               "AFFFFFU"),
    ("POST",  "/families/{id}/patients",                      "AFFFFFU"),
    ("GET",   "/patients/{id}",                               "AANANFU"),
    ("PATCH", "/patients/{id}",                               "AFFFFFU"),
    ("POST",  "/patients/{id}/erase",                         "AFFFFFU"),
    // FHIR export: the patient's own rule
    ("GET",   "/fhir/Patient/{id}",                           "AANANFU"),
    ("GET",   "/fhir/Patient/{id}/$everything",               "AANANFU"),
    // packages and subscriptions
    ("POST",  "/service-packages",                            "AFFFFFU"),
    ("GET",   "/service-packages",                            "AAAAAFU"),
    ("POST",  "/subscriptions",                               "AFFFFFU"),
    ("GET",   "/subscriptions",                               "AAAFFFU"),
    ("GET",   "/subscriptions/{id}",                          "AANFFFU"),
    ("POST",  "/subscriptions/{id}/status",                   "AFFFFFU"),
    ("POST",  "/subscriptions/{id}/payment",                  "AFFFFFU"),
    // visits
    ("POST",  "/appointments",                                "AANFFFU"),
    ("GET",   "/appointments",                                "AAAFFFU"),
    ("GET",   "/appointments/today",                          "FAAFFFU"),
    ("GET",   "/appointments/{id}",                           "AANFFFU"),
    ("POST",  "/appointments/{id}/confirm",                   "AANFFFU"),
    ("POST",  "/appointments/{id}/cancel",                    "AANFFFU"),
    ("POST",  "/appointments/{id}/reschedule",                "AANFFFU"),
    ("POST",  "/appointments/{id}/complete",                  "AANFFFU"),
    ("POST",  "/appointments/{id}/check-in",                  "FANFFFU"),
    ("POST",  "/appointments/{id}/check-out",                 "FANFFFU"),
    // visit verification
    ("GET",   "/evv/reason-codes",                            "AAAAAAU"),
    ("GET",   "/evv/exceptions",                              "AAAFFAU"),
    ("POST",  "/evv/exceptions/{id}/acknowledge",             "AANFFFU"),
    ("POST",  "/evv/exceptions/{id}/resolve",                 "AFFFFFU"),
    // reports
    ("GET",   "/reports/weekly",                              "AAAFFFU"),
    // files
    ("POST",  "/files/upload",                                "AAAAAFU"),
    ("GET",   "/files/{id}",                                  "AANANFU"),
    ("GET",   "/files/{id}/thumbnail",                        "AANANFU"),
    // health records
    ("POST",  "/health-records",                              "FANFFFU"),
    ("GET",   "/health-records/{id}",                         "AANANFU"),
    ("GET",   "/patients/{id}/health-records",                "AANANFU"),
    ("POST",  "/health-records/{id}/order-requests",          "FANFFFU"),
    ("POST",  "/health-records/{id}/amendments",              "FANFFFU"),
    ("POST",  "/health-records/{id}/unlock",                  "AFFFFFU"),
    // orders and notifications
    ("GET",   "/order-requests",                              "AFFAAFU"),
    ("GET",   "/order-requests/{id}",                         "AANANFU"),
    ("POST",  "/medical-orders",                              "FFFANFU"),
    ("GET",   "/medical-orders/{id}",                         "AANANFU"),
    ("POST",  "/medical-orders/{id}/complete",                "AFFANFU"),
    ("POST",  "/medical-orders/{id}/cancel",                  "AFFANFU"),
    ("GET",   "/patients/{id}/medical-orders",                "AANANFU"),
    ("GET",   "/notifications",                               "AAAAAFU"),
    ("POST",  "/notifications/{id}/read",                     "NANNNFU"),
    // alerts: doctors their own, admins and auditors all (auditors read only)
    ("GET",   "/alerts",                                      "AFFAAAU"),
    ("GET",   "/alerts/{id}",                                 "AFFANAU"),
    ("POST",  "/alerts/{id}/acknowledge",                     "FFFANFU"),
    ("POST",  "/alerts/{id}/resolve",                         "AFFANFU"),
    // offline sync: recorders' own data only
    ("POST",  "/sync/push",                                   "FAAFFFU"),
    ("GET",   "/sync/pull",                                   "FAAFFFU"),
    // hospitals and bookings
    ("POST",  "/hospitals",                                   "AFFFFFU"),
    ("GET",   "/hospitals",                                   "AAAAAFU"),
    ("GET",   "/hospitals/{id}",                              "AAAAAFU"),
    ("POST",  "/hospitals/{id}/status",                       "AFFFFFU"),
    ("POST",  "/hospitals/{id}/departments",                  "AFFFFFU"),
    ("POST",  "/hospitals/{id}/departments/{dep}/status",     "AFFFFFU"),
    ("POST",  "/hospitals/{id}/doctors",                      "AFFFFFU"),
    ("POST",  "/hospitals/{id}/doctors/{doc}/status",         "AFFFFFU"),
    ("POST",  "/hospitals/{id}/slots",                        "AFFFFFU"),
    ("GET",   "/hospitals/{id}/slots",                        "AAAAAFU"),
    ("POST",  "/hospital-appointments",                       "FANFFFU"),
    ("GET",   "/hospital-appointments",                       "AAAAAFU"),
    ("GET",   "/hospital-appointments/{id}",                  "AANANFU"),
    ("POST",  "/hospital-appointments/{id}/confirm",          "AFFFFFU"),
    ("POST",  "/hospital-appointments/{id}/complete",         "AANFFFU"),
    ("POST",  "/hospital-appointments/{id}/cancel",           "AANFFFU"),
    // audit: auditors and admins only
    ("GET",   "/audit/events",                                "AFFFFAU"),
    ("GET",   "/audit/{aggregate_type}/{id}/state",           "AFFFFAU"),
    ("GET",   "/audit/access",                                "AFFFFAU"),
    ("GET",   "/audit/logins",                                "AFFFFAU"),
    // operations
    ("GET",   "/health",                                      "AAAAAAA"),
    // sessions end last: a password change keeps the caller's session, logout does not
    ("POST",  "/auth/password",                               "AAAAAAU"),
    ("POST",  "/auth/logout",                                 "AAAAAAU"),
];

/// Everything the rows act on.
struct World {
    app: TestApp,
    tokens: Vec<(Who, String)>,
    ids: Ids,
}

struct Ids {
    rec_own: String,
    doc_own: String,
    throwaway: String,
    family: String,
    patient: String,
    erasable: String,
    package: String,
    subscription: String,
    visit: String,
    record: String,
    file: String,
    request: String,
    order: String,
    notification: String,
    alert: String,
    hospital: String,
    department: String,
    hospital_doctor: String,
    slot_date: String,
    booking: String,
    exception: String,
}

fn day(offset: i64) -> String {
    (chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        + chrono::Duration::days(offset))
    .to_string()
}

async fn world(backend: Backend) -> World {
    let app = spawn_app(backend).await;
    let admin = app.admin_token.clone();
    let (rec_own, rec_own_token) = app.recorder(1).await;
    let (_, rec_other_token) = app.recorder(2).await;
    let (throwaway, _) = app.recorder(9).await;
    let (doc_own, doc_own_token) = app.staff("doctor", 1).await;
    let (_, doc_other_token) = app.staff("doctor", 2).await;
    let (_, auditor_token) = app.staff("auditor", 3).await;

    let package = app.package().await;
    let family = app.family("矩阵家").await;
    let patient = app.patient(&family, "矩阵奶奶").await;
    let subscription = app.subscribe(&patient, &package, &rec_own).await;
    // The other recorder has a patient of their own elsewhere.
    let other_family = app.family("别家").await;
    let other_patient = app.patient(&other_family, "别家爷爷").await;
    let (rec_other_id, _) = (app.get("/auth/me", &rec_other_token).await.ok().id(), ());
    app.subscribe(&other_patient, &package, &rec_other_id).await;
    let erasable = app.patient(&other_family, "待删除").await;

    let visit = app
        .post(
            "/appointments",
            &rec_own_token,
            json!({"patient_id": patient, "scheduled_date": day(3), "scheduled_time": "10:00"}),
        )
        .await
        .ok()
        .id();
    // An exception of the visit, raised as the EVV follower raises them.
    let exception = raise_exception(&app, &visit, &patient, &rec_own).await;
    let form = reqwest::multipart::Form::new()
        .text("type", "image")
        .part("file", reqwest::multipart::Part::bytes(png(8, 8)).file_name("p.png"));
    let file = app.multipart("/files/upload", &rec_own_token, form).await.ok().data()["file_id"]
        .as_str()
        .unwrap()
        .to_string();
    let record = app
        .post(
            "/health-records",
            &rec_own_token,
            json!({"patient_id": patient, "visit_date": day(0), "visit_time": "08:00",
                   "vital_signs": {"blood_pressure": "120/80"}, "notes": "矩阵", "photos": [file]}),
        )
        .await
        .ok()
        .data()["record_id"]
        .as_str()
        .unwrap()
        .to_string();
    let request = app
        .post(
            &format!("/health-records/{record}/order-requests"),
            &rec_own_token,
            json!({"doctor_id": doc_own, "reason": "复查"}),
        )
        .await
        .ok()
        .id();
    let order = app
        .post(
            "/medical-orders",
            &doc_own_token,
            json!({"patient_id": patient, "request_id": request, "order_type": "medication", "content": "氨氯地平 5mg"}),
        )
        .await
        .ok()
        .id();
    let notification = app.get("/notifications", &rec_own_token).await.ok().data()["notifications"][0]["id"]
        .as_str()
        .expect("the recorder was notified of the order")
        .to_string();
    // Abnormal vitals after the order: the alert goes to the patient's doctor.
    let alert = app
        .post(
            "/health-records",
            &rec_own_token,
            json!({"patient_id": patient, "visit_date": day(0), "visit_time": "08:30",
                   "vital_signs": {"blood_pressure": "150/95"}}),
        )
        .await
        .ok()
        .data()["alert_id"]
        .as_str()
        .expect("abnormal vitals raise an alert")
        .to_string();

    let hospital = app
        .post(
            "/hospitals",
            &admin,
            json!({"name": "矩阵医院", "address": "矩阵路1号"}),
        )
        .await
        .ok()
        .id();
    let department = app
        .post(
            &format!("/hospitals/{hospital}/departments"),
            &admin,
            json!({"name": "心内科"}),
        )
        .await
        .ok()
        .id();
    let hospital_doctor = app
        .post(
            &format!("/hospitals/{hospital}/doctors"),
            &admin,
            json!({"department_id": department, "name": "张主任"}),
        )
        .await
        .ok()
        .id();
    let slot_date = day(7);
    for time in ["09:00", "10:00"] {
        app.post(
            &format!("/hospitals/{hospital}/slots"),
            &admin,
            json!({"department_id": department, "date": slot_date, "time": time, "capacity": 20}),
        )
        .await
        .ok();
    }
    let booking = app
        .post(
            "/hospital-appointments",
            &rec_own_token,
            json!({"patient_id": patient, "hospital_id": hospital, "department_id": department,
                   "appointment_date": slot_date, "appointment_time": "09:00"}),
        )
        .await
        .ok()
        .data()["appointment_id"]
        .as_str()
        .unwrap()
        .to_string();

    World {
        tokens: vec![
            (Who::Admin, admin),
            (Who::RecOwn, rec_own_token),
            (Who::RecOther, rec_other_token),
            (Who::DocOwn, doc_own_token),
            (Who::DocOther, doc_other_token),
            (Who::Auditor, auditor_token),
        ],
        ids: Ids {
            rec_own,
            doc_own,
            throwaway,
            family,
            patient,
            erasable,
            package,
            subscription,
            visit,
            record,
            file,
            request,
            order,
            notification,
            alert,
            hospital,
            department,
            hospital_doctor,
            slot_date,
            booking,
            exception,
        },
        app,
    }
}

/// The concrete path of a route in this world.
fn concrete(w: &World, path: &str) -> String {
    let i = &w.ids;
    let id = match path {
        // A user's own record for the directory rows; the recorder profile of
        // the patient's recorder; the doctor's profile.
        // The patient's recorder: their own account, someone else's for the rest.
        "/users/{id}" => &i.rec_own,
        "/users/{id}/status" | "/users/{id}/password" => &i.throwaway,
        "/recorders/{id}" => &i.rec_own,
        "/doctors/{id}" => &i.doc_own,
        p if p.starts_with("/families/{id}") => &i.family,
        "/patients/{id}/erase" => &i.erasable,
        p if p.starts_with("/patients/{id}") || p.starts_with("/fhir/Patient/{id}") => &i.patient,
        p if p.starts_with("/subscriptions/{id}") => &i.subscription,
        p if p.starts_with("/appointments/{id}") => &i.visit,
        p if p.starts_with("/files/{id}") => &i.file,
        p if p.starts_with("/health-records/{id}") => &i.record,
        p if p.starts_with("/order-requests/{id}") => &i.request,
        p if p.starts_with("/medical-orders/{id}") => &i.order,
        p if p.starts_with("/notifications/{id}") => &i.notification,
        p if p.starts_with("/alerts/{id}") => &i.alert,
        p if p.starts_with("/hospitals/{id}") => &i.hospital,
        p if p.starts_with("/hospital-appointments/{id}") => &i.booking,
        p if p.starts_with("/evv/exceptions/{id}") => &i.exception,
        "/audit/{aggregate_type}/{id}/state" => &i.patient,
        _ => "",
    };
    path.replace("{id}", id)
        .replace("{dep}", &i.department)
        .replace("{doc}", &i.hospital_doctor)
        .replace("{aggregate_type}", "patient")
}

/// Raises a `missing_signature` exception of `visit` through the store; its id.
async fn raise_exception(app: &TestApp, visit: &str, patient: &str, recorder: &str) -> String {
    use domain::evv::{Evidence, EvvCode, EvvException, EvvExceptionCommand, EvvPolicy, VisitRef};
    let visit_id: domain::ids::VisitId = visit.parse().unwrap();
    let id = domain::ids::EvvExceptionId::of(visit_id, EvvCode::MissingSignature.as_str()).to_string();
    let command = EvvExceptionCommand::Raise {
        visit: VisitRef {
            visit_id,
            patient_id: patient.parse().unwrap(),
            recorder_id: recorder.parse().unwrap(),
        },
        evidence: Evidence::Record {
            health_record_id: domain::ids::HealthRecordId::new(),
            signed: false,
        },
        policy: EvvPolicy::default(),
        at: chrono::Utc::now(),
    };
    let ctx = carelog::state::RequestMeta::system("RaiseEvvException");
    app.state.execute::<EvvException>(&id, command, ctx).await.unwrap();
    id
}

fn password_of(who: Who) -> &'static str {
    match who {
        Who::Admin => ADMIN_PASSWORD,
        Who::RecOwn | Who::RecOther => "recorder-pass",
        _ => "staff-pass-1",
    }
}

/// A valid body for the route (None: no body).
fn body(w: &World, who: Who, method: &str, path: &str) -> Option<Value> {
    let i = &w.ids;
    if method == "GET" {
        return None;
    }
    Some(match path {
        "/auth/login" => json!({"username": "admin", "password": ADMIN_PASSWORD}),
        "/auth/refresh" | "/auth/logout" => return None,
        "/auth/wechat/bind" if method == "DELETE" => return None,
        "/auth/wechat" | "/auth/wechat/bind" => json!({"code": "matrix-code"}),
        "/auth/me" => json!({"avatar": "https://cdn.example/avatar.png"}),
        "/auth/password" => json!({"old_password": password_of(who), "new_password": "matrix-pass-2026"}),
        "/users" => json!({"username": "matrix-new", "phone": "13600009999", "password": "matrix-pass-1",
                            "role": "auditor", "name": "新审计"}),
        "/users/{id}" => json!({"recorder": {"work_area": "黄浦区"}}),
        "/users/{id}/status" => json!({"status": "active"}),
        "/users/{id}/password" => json!({"new_password": "reset-pass-2026"}),
        "/families" => json!({"family_name": "新家", "primary_address": "新路1号", "contact_phone": "13912345678"}),
        "/families/{id}" => json!({"emergency_contact": "张先生"}),
        "/families/{id}/patients" => json!({"name": "新成员", "gender": "male", "birth_date": "1950-01-01",
                                             "relationship_to_head": "配偶"}),
        "/patients/{id}" => json!({"allergies": "青霉素"}),
        "/patients/{id}/erase" => json!({"reason": "家属申请删除"}),
        "/service-packages" => json!({"name": "矩阵包", "price": "99.00", "duration_days": 30, "service_frequency": 4}),
        "/subscriptions" => json!({"patient_id": i.erasable, "package_id": i.package, "recorder_id": i.throwaway,
                                   "start_date": day(30)}),
        "/subscriptions/{id}/status" => json!({"status": "active"}),
        "/subscriptions/{id}/payment" => json!({"payment_status": "paid"}),
        "/appointments" => json!({"patient_id": i.patient, "scheduled_date": day(4), "scheduled_time": "15:00",
                                  "appointment_type": "makeup"}),
        "/appointments/{id}/confirm" | "/appointments/{id}/complete" => json!({}),
        "/appointments/{id}/cancel" => json!({"reason": "矩阵"}),
        "/appointments/{id}/reschedule" => json!({"scheduled_date": day(5), "scheduled_time": "11:00"}),
        "/appointments/{id}/check-in" | "/appointments/{id}/check-out" => json!({"lat": 31.2304, "lng": 121.4737}),
        "/evv/exceptions/{id}/acknowledge" => json!({"reason_code": "other"}),
        "/evv/exceptions/{id}/resolve" => json!({"resolution": "矩阵"}),
        "/files/upload" => json!({}),
        "/health-records" => json!({"patient_id": i.patient, "visit_date": day(0), "visit_time": "09:30",
                                    "vital_signs": {"heart_rate": 72}}),
        "/health-records/{id}/order-requests" => json!({"doctor_id": i.doc_own, "reason": "矩阵"}),
        "/health-records/{id}/amendments" => json!({"reason_code": "typo", "changes": {"notes": "矩阵更正"}}),
        "/health-records/{id}/unlock" => json!({"reason": "矩阵"}),
        "/medical-orders" => json!({"patient_id": i.patient, "order_type": "lifestyle", "content": "低盐饮食"}),
        "/medical-orders/{id}/complete" | "/medical-orders/{id}/cancel" => json!({}),
        "/notifications/{id}/read" => json!({}),
        "/alerts/{id}/acknowledge" => json!({}),
        "/alerts/{id}/resolve" => json!({"outcome": "no_action_needed", "note": "矩阵"}),
        "/sync/push" => json!({"device_id": "matrix-phone", "commands": []}),
        "/hospitals" => json!({"name": "新医院", "address": "新路2号"}),
        "/hospitals/{id}/status"
        | "/hospitals/{id}/departments/{dep}/status"
        | "/hospitals/{id}/doctors/{doc}/status" => {
            json!({"status": "active"})
        }
        "/hospitals/{id}/departments" => json!({"name": format!("科室{}", rand_suffix())}),
        "/hospitals/{id}/doctors" => json!({"department_id": i.department, "name": "李医生"}),
        "/hospitals/{id}/slots" => json!({"department_id": i.department, "date": i.slot_date, "time": "14:00",
                                         "capacity": 5}),
        "/hospital-appointments" => json!({"patient_id": i.patient, "hospital_id": i.hospital,
                                           "department_id": i.department, "appointment_date": i.slot_date,
                                           "appointment_time": "10:00"}),
        "/hospital-appointments/{id}/confirm" => json!({"appointment_number": "MX-1"}),
        "/hospital-appointments/{id}/complete" => json!({"result_notes": "矩阵"}),
        "/hospital-appointments/{id}/cancel" => json!({"reason": "矩阵"}),
        other => panic!("no body for {method} {other}"),
    })
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_string()
}

fn outcome(status: u16) -> char {
    match status {
        401 => 'U',
        403 => 'F',
        404 => 'N',
        s if s >= 500 => '!',
        _ => 'A',
    }
}

async fn every_route_answers_every_role_as_the_policy_says(backend: Backend) {
    // 1. The table covers the route table exactly.
    let served: BTreeSet<(String, String)> = carelog::api::route_table()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let tabled: BTreeSet<(String, String)> = TABLE.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let missing: Vec<_> = served.difference(&tabled).collect();
    let stale: Vec<_> = tabled.difference(&served).collect();
    assert!(missing.is_empty(), "routes without a row in the matrix: {missing:?}");
    assert!(stale.is_empty(), "rows for routes that do not exist: {stale:?}");
    assert_eq!(served.len(), TABLE.len(), "a route is listed twice");

    // 2. Every cell.
    let w = world(backend).await;
    let mut wrong = Vec::new();
    for (method, path, expected) in TABLE {
        let expected: Vec<char> = expected.chars().collect();
        assert_eq!(expected.len(), COLUMNS.len(), "{method} {path}");
        for who in ORDER {
            let column = COLUMNS.iter().position(|c| *c == who).unwrap_or(0);
            let token = w.tokens.iter().find(|(t, _)| *t == who).map(|(_, t)| t.as_str());
            let url = w.app.url(&concrete(&w, path));
            let mut req = w
                .app
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body(&w, who, method, path) {
                req = req.json(&b);
            }
            let r = req.send().await.expect("request sent");
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            let got = outcome(status.as_u16());
            if got != expected[column] {
                let text: String = text.chars().take(300).collect();
                wrong.push(format!(
                    "{method} {path} as {who:?}: expected {} got {status} ({text})",
                    expected[column]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} cells differ:\n{}", wrong.len(), wrong.join("\n"));
}
