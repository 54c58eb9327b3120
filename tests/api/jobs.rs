//! Scheduled jobs (issue 14): each runs once per period, whoever runs it
//! (the use case, the CLI, two servers on one database), and does its work.

use std::collections::HashMap;
use std::process::{Command, Stdio};

use carelog::app::jobs::{iso_week, run, Job, RunResult};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{png, spawn_app, spawn_app_with, today, Backend, TestApp};

/// `day` at `hh:00` in Shanghai.
fn local(day: NaiveDate, hh: u32) -> DateTime<Utc> {
    Shanghai
        .from_local_datetime(&day.and_hms_opt(hh, 0, 0).unwrap())
        .single()
        .unwrap()
        .to_utc()
}

/// A recorder `n` with one patient subscribed to them; (recorder id, token, patient id).
async fn recorder_with_patient(app: &TestApp, n: u32, package: &str) -> (String, String, String) {
    let (rid, token) = app.recorder(n).await;
    let family = app.family(&format!("家庭{n}")).await;
    let patient = app.patient(&family, &format!("患者{n}")).await;
    app.subscribe(&patient, package, &rid).await;
    (rid, token, patient)
}

async fn schedule(app: &TestApp, token: &str, patient: &str, day: NaiveDate, time: &str) -> String {
    app.post(
        "/appointments",
        token,
        json!({"patient_id": patient, "scheduled_date": day.to_string(), "scheduled_time": time, "appointment_type": "emergency"}),
    )
    .await
    .ok()
    .id()
}

async fn notices(app: &TestApp, token: &str, kind: &str) -> Vec<Value> {
    let inbox = app.get("/notifications?limit=100", token).await.ok();
    inbox.data()["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == kind)
        .cloned()
        .collect()
}

fn carelog(vars: &HashMap<String, String>, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_carelog"))
        .args(args)
        .envs(vars)
        .env_remove("CARELOG_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("carelog runs")
}

dual!(visit_reminders_once_per_recorder_and_period);
async fn visit_reminders_once_per_recorder_and_period(b: Backend) {
    let app = spawn_app(b).await;
    let package = app.package().await;
    let (_, t1, p1) = recorder_with_patient(&app, 1, &package).await;
    let (_, t2, p2) = recorder_with_patient(&app, 2, &package).await;
    let (_, t3, p3) = recorder_with_patient(&app, 3, &package).await;
    let tomorrow = today() + Duration::days(1);
    schedule(&app, &t1, &p1, tomorrow, "09:00").await;
    schedule(&app, &t1, &p1, tomorrow, "15:30").await;
    let confirmed = schedule(&app, &t2, &p2, tomorrow, "10:00").await;
    app.post(&format!("/appointments/{confirmed}/confirm"), &t2, json!({}))
        .await
        .ok();
    // Recorder 3's only visit is the day after tomorrow: no reminder.
    schedule(&app, &t3, &p3, tomorrow + Duration::days(1), "10:00").await;

    let at = Shanghai
        .from_local_datetime(&today().and_hms_opt(20, 0, 0).unwrap())
        .single()
        .unwrap();
    let at_arg = at.to_rfc3339();
    let first = carelog(&app.vars, &["jobs", "run", "visit_reminders", "--at", &at_arg]);
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(out.contains("ran for"), "{out}");
    let second = carelog(&app.vars, &["jobs", "run", "visit_reminders", "--at", &at_arg]);
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{out}");
    assert!(out.contains("already ran"), "{out}");
    // The use case agrees.
    let again = run(&app.state, Job::VisitReminders, at.to_utc()).await.unwrap();
    assert_eq!(
        again,
        RunResult::AlreadyRan {
            period: today().to_string()
        }
    );
    app.state.waiter.wait_for(app.event_count().await).await;
    // Whatever the CLI projected, the server's read models follow.
    let mut r1 = Vec::new();
    for _ in 0..200 {
        r1 = notices(&app, &t1, "visit_reminder").await;
        if !r1.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(r1.len(), 1, "{r1:?}");
    let body = r1[0]["body"].as_str().unwrap();
    assert!(body.contains("09:00") && body.contains("15:30"), "{body}");
    assert_eq!(notices(&app, &t2, "visit_reminder").await.len(), 1);
    assert!(notices(&app, &t3, "visit_reminder").await.is_empty());

    let list = carelog(&app.vars, &["jobs", "list"]);
    let out = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{out}");
    assert!(out.contains("visit_reminders") && out.contains("0 20 * * *"), "{out}");
    assert!(out.contains(&today().to_string()), "{out}");
    assert!(out.contains("weekly_report") && out.contains("never"), "{out}");
}

#[tokio::test]
async fn two_servers_on_one_database_run_a_period_once() {
    let app = spawn_app(Backend::Servers).await;
    let package = app.package().await;
    let (_, t1, p1) = recorder_with_patient(&app, 1, &package).await;
    let tomorrow = today() + Duration::days(1);
    schedule(&app, &t1, &p1, tomorrow, "09:00").await;
    let other = crate::helpers::second_instance(&app).await;
    let other_state = other.state.clone();

    let at = local(today(), 20);
    let (a, b) = tokio::join!(
        run(&app.state, Job::VisitReminders, at),
        run(&other_state, Job::VisitReminders, at)
    );
    let results = [a.unwrap(), b.unwrap()];
    let ran = results.iter().filter(|r| matches!(r, RunResult::Ran { .. })).count();
    assert_eq!(ran, 1, "{results:?}");
    app.state.waiter.wait_for(app.event_count().await).await;
    assert_eq!(notices(&app, &t1, "visit_reminder").await.len(), 1);
}

dual!(subscriptions_past_their_end_date_expire);
async fn subscriptions_past_their_end_date_expire(b: Backend) {
    let app = spawn_app(b).await;
    let package = app.package().await; // 90 days
    let (rid, _, patient) = recorder_with_patient(&app, 1, &package).await;
    let list = app
        .get(&format!("/subscriptions?patient_id={patient}"), &app.admin_token)
        .await
        .ok();
    let sub = list.data()["subscriptions"][0]["id"].as_str().unwrap().to_string();
    // On its end date it is still active.
    let end = today() + Duration::days(90);
    let r = run(&app.state, Job::SubscriptionExpiry, local(end, 1)).await.unwrap();
    assert!(matches!(r, RunResult::Ran { .. }), "{r:?}");
    let s = app.get(&format!("/subscriptions/{sub}"), &app.admin_token).await.ok();
    assert_eq!(s.data()["status"], "active");
    // The day after, it reads expired.
    run(&app.state, Job::SubscriptionExpiry, local(end + Duration::days(1), 1))
        .await
        .unwrap();
    let s = app.get(&format!("/subscriptions/{sub}"), &app.admin_token).await.ok();
    assert_eq!(s.data()["status"], "expired", "{}", s.body);
    assert_eq!(s.data()["recorder_id"], rid.as_str());
    // An expired subscription does not come back.
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        json!({"status": "active"}),
    )
    .await
    .err(409, "conflict");
}

async fn upload(app: &TestApp, token: &str) -> String {
    let form = Form::new()
        .text("type", "image")
        .part("file", Part::bytes(png(40, 40)).file_name("a.png"));
    app.multipart("/files/upload", token, form).await.ok().data()["file_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Where the file's bytes are stored (from its read model).
async fn storage_key(app: &TestApp, file: &str) -> String {
    let file = app.state.read().await.files().get(file.parse().unwrap()).await.unwrap();
    file.unwrap().storage_key
}

dual!(file_cleanup_deletes_unattached_uploads_only);
async fn file_cleanup_deletes_unattached_uploads_only(b: Backend) {
    let app = spawn_app(b).await;
    let package = app.package().await;
    let (_, token, patient) = recorder_with_patient(&app, 1, &package).await;
    let left = upload(&app, &token).await;
    let kept = upload(&app, &token).await;
    app.post(
        "/health-records",
        &token,
        json!({"patient_id": patient, "visit_date": today().to_string(), "visit_time": "08:00",
               "vital_signs": {"blood_pressure": "120/80"}, "photos": [kept]}),
    )
    .await
    .ok();
    let left_key = storage_key(&app, &left).await;
    let kept_key = storage_key(&app, &kept).await;
    // Within the day nothing goes.
    run(&app.state, Job::FileCleanup, Utc::now() + Duration::hours(1))
        .await
        .unwrap();
    assert!(app.state.blobs.get(&left_key).await.unwrap().is_some());
    // A day later the unattached one is gone, from storage and the API.
    run(&app.state, Job::FileCleanup, Utc::now() + Duration::hours(25))
        .await
        .unwrap();
    assert!(app.state.blobs.get(&left_key).await.unwrap().is_none());
    app.get(&format!("/files/{left}"), &token).await.err(404, "not_found");
    assert!(app.state.blobs.get(&kept_key).await.unwrap().is_some());
    app.client
        .get(app.url(&format!("/files/{kept}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}

dual!(missed_visits_are_flagged_and_admins_told);
async fn missed_visits_are_flagged_and_admins_told(b: Backend) {
    let app = spawn_app(b).await;
    let package = app.package().await;
    let (_, token, patient) = recorder_with_patient(&app, 1, &package).await;
    let tomorrow = today() + Duration::days(1);
    let missed = schedule(&app, &token, &patient, tomorrow, "09:00").await;
    let cancelled = schedule(&app, &token, &patient, tomorrow, "10:00").await;
    app.post(
        &format!("/appointments/{cancelled}/cancel"),
        &token,
        json!({"reason": "家属外出"}),
    )
    .await
    .ok();
    // On its own day it is not missed yet.
    run(&app.state, Job::MissedVisits, local(tomorrow, 12)).await.unwrap();
    let v = app.get(&format!("/appointments/{missed}"), &token).await.ok();
    assert_eq!(v.data()["status"], "scheduled");
    run(&app.state, Job::MissedVisits, local(tomorrow + Duration::days(1), 0))
        .await
        .unwrap();
    let v = app.get(&format!("/appointments/{missed}"), &token).await.ok();
    assert_eq!(v.data()["status"], "missed");
    let v = app.get(&format!("/appointments/{cancelled}"), &token).await.ok();
    assert_eq!(v.data()["status"], "cancelled");
    let told = notices(&app, &app.admin_token, "missed_visits").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0]["body"].as_str().unwrap().contains('1'));
}

dual!(weekly_report_counts_match_a_scripted_week);
async fn weekly_report_counts_match_a_scripted_week(b: Backend) {
    let app = spawn_app(b).await;
    let package = app.package().await;
    let (r1, t1, p1) = recorder_with_patient(&app, 1, &package).await;
    let (r2, t2, p2) = recorder_with_patient(&app, 2, &package).await;
    let tomorrow = today() + Duration::days(1);
    let week = iso_week(tomorrow);
    // Recorder 1: two visits tomorrow, both missed; one cancelled (not counted).
    schedule(&app, &t1, &p1, tomorrow, "09:00").await;
    schedule(&app, &t1, &p1, tomorrow, "11:00").await;
    let c = schedule(&app, &t1, &p1, tomorrow, "13:00").await;
    app.post(&format!("/appointments/{c}/cancel"), &t1, json!({}))
        .await
        .ok();
    // Recorder 2: one visit tomorrow, and an abnormal record today (an alert, for the doctor on duty).
    let (_, doctor) = app.staff("doctor", 1).await;
    schedule(&app, &t2, &p2, tomorrow, "09:00").await;
    app.post(
        "/health-records",
        &t2,
        json!({"patient_id": p2, "visit_date": today().to_string(), "visit_time": "08:00",
               "vital_signs": {"blood_pressure": "190/120", "heart_rate": 70}}),
    )
    .await
    .ok();
    run(&app.state, Job::MissedVisits, local(tomorrow + Duration::days(1), 0))
        .await
        .unwrap();
    // The alert is raised with the record (or by the alert reactor right after).
    let mut alerts = 0;
    for _ in 0..200 {
        alerts = app.get("/alerts", &app.admin_token).await.ok().data()["total"]
            .as_i64()
            .unwrap();
        if alerts > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(alerts, 1);
    // The doctor answers the alert's order request with an order.
    let open = app.get("/order-requests?status=open", &doctor).await.ok();
    let request = open.data()["requests"][0]["id"].as_str().unwrap().to_string();
    app.post(
        "/medical-orders",
        &doctor,
        json!({"patient_id": p2, "request_id": request, "order_type": "medication", "content": "氨氯地平片 5mg"}),
    )
    .await
    .ok();
    let same_week = iso_week(today()) == week;
    let records = i64::from(same_week);
    let alerts = records;

    let report = app
        .get(&format!("/reports/weekly?week={week}"), &app.admin_token)
        .await
        .ok();
    let d = report.data();
    assert_eq!(d["week"], week.as_str());
    let t = &d["totals"];
    assert_eq!(t["visits_scheduled"], 3, "{d}");
    assert_eq!(t["visits_completed"], 0, "{d}");
    assert_eq!(t["visits_missed"], 3, "{d}");
    assert_eq!(t["records"], records, "{d}");
    assert_eq!(t["abnormal_readings"], records, "{d}");
    assert_eq!(t["alerts"]["triggered"], alerts, "{d}");
    assert_eq!(t["orders"], records, "{d}");
    assert_eq!(t["evv_exceptions"], 0, "{d}");
    let of = |id: &str| {
        d["recorders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["recorder_id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(of(&r1)["visits_scheduled"], 2, "{d}");
    assert_eq!(of(&r1)["visits_missed"], 2, "{d}");
    assert_eq!(of(&r2)["visits_scheduled"], 1, "{d}");

    // A recorder sees their own only; a doctor nothing; a bad week is named.
    let own = app.get(&format!("/reports/weekly?week={week}"), &t1).await.ok();
    assert_eq!(own.data()["totals"]["visits_scheduled"], 2);
    assert_eq!(own.data()["recorders"].as_array().unwrap().len(), 1);
    app.get(&format!("/reports/weekly?week={week}"), &doctor)
        .await
        .err(403, "forbidden");
    for bad in ["2026-53", "2026-W60", "W49", "x"] {
        let r = app
            .get(&format!("/reports/weekly?week={bad}"), &app.admin_token)
            .await
            .err(400, "validation_failed");
        assert!(r.body["details"]["week"].is_string(), "{}", r.body);
    }

    // The job records the week's run and tells the admins, once.
    let sunday = NaiveDate::from_isoywd_opt(
        tomorrow.iso_week().year(),
        tomorrow.iso_week().week(),
        chrono::Weekday::Sun,
    )
    .unwrap();
    let at = local(sunday, 8);
    assert!(matches!(
        run(&app.state, Job::WeeklyReport, at).await.unwrap(),
        RunResult::Ran { .. }
    ));
    assert!(matches!(
        run(&app.state, Job::WeeklyReport, at).await.unwrap(),
        RunResult::AlreadyRan { .. }
    ));
    assert_eq!(notices(&app, &app.admin_token, "weekly_report").await.len(), 1);
}

dual!(certificate_expiry_tells_the_recorder_and_the_admins);
async fn certificate_expiry_tells_the_recorder_and_the_admins(b: Backend) {
    let app = spawn_app(b).await;
    let soon = today() + Duration::days(10);
    let later = today() + Duration::days(60);
    let mut tokens = Vec::new();
    for (n, expiry) in [(1u32, soon), (2, later)] {
        let username = format!("cert{n}");
        app.post(
            "/users",
            &app.admin_token,
            json!({
                "username": username, "phone": format!("1370000{n:04}"), "password": "recorder-pass",
                "role": "recorder", "name": format!("记录员{n}"),
                "recorder": {"employee_id": format!("C{n:04}"), "cert_expiry_date": expiry.to_string()}
            }),
        )
        .await
        .ok();
        tokens.push(app.login(&username, "recorder-pass").await);
    }
    run(&app.state, Job::CertificateExpiry, local(today(), 9))
        .await
        .unwrap();
    let mine = notices(&app, &tokens[0], "certificate_expiry").await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert!(mine[0]["body"].as_str().unwrap().contains(&soon.to_string()));
    assert!(notices(&app, &tokens[1], "certificate_expiry").await.is_empty());
    assert_eq!(
        notices(&app, &app.admin_token, "certificate_expiry_summary")
            .await
            .len(),
        1
    );
}

dual!(a_run_recorded_in_parts_tells_each_recipient_once);
/// A run with more than a thousand items is recorded in parts (`JobRan`, then
/// `JobRanContinued`): each recipient is still told once, the admins once of
/// the whole count, and the run's summary counts every part.
async fn a_run_recorded_in_parts_tells_each_recipient_once(b: Backend) {
    use carelog::state::RequestMeta;
    use domain::ids::{PatientId, UserId, VisitId};
    use domain::job::{ExpiringCertificate, JobOutcome, JobRun, JobRunCommand, RemindedVisit, Reminder};

    let app = spawn_app(b).await;
    let (r1, t1) = app.recorder(1).await;
    let (r2, t2) = app.recorder(2).await;
    let user = |id: &str| UserId(id.parse().unwrap());
    let day = NaiveDate::from_ymd_opt(2099, 1, 2).unwrap();
    let visits = |n: usize| -> Vec<RemindedVisit> {
        (0..n)
            .map(|i| RemindedVisit {
                visit_id: VisitId(uuid::Uuid::now_v7()),
                patient_id: PatientId(uuid::Uuid::now_v7()),
                date: day,
                time: chrono::NaiveTime::from_hms_opt(8 + (i / 60) as u32 % 12, (i % 60) as u32, 0).unwrap(),
            })
            .collect()
    };
    let before = app.event_count().await;
    let run_as = |id: &str, outcome: JobOutcome| {
        let (state, id) = (app.state.clone(), id.to_string());
        async move {
            let (job, period) = id.split_once(':').unwrap();
            let command = JobRunCommand::Run {
                job: job.into(),
                period: period.into(),
                at: Utc::now(),
                outcome,
            };
            let committed = state
                .store
                .execute::<JobRun>(&id, command, &RequestMeta::system("RunJob"))
                .await
                .unwrap();
            state.waiter.wait_for(committed.position).await;
        }
    };
    // Two reminders of 600 visits each: two parts, one reminder in each.
    run_as(
        "visit_reminders:2099-01-01",
        JobOutcome::VisitReminders {
            day,
            reminders: vec![
                Reminder {
                    recorder_id: user(&r1),
                    visits: visits(600),
                },
                Reminder {
                    recorder_id: user(&r2),
                    visits: visits(600),
                },
            ],
        },
    )
    .await;
    assert_eq!(app.event_count().await - before, 2, "JobRan and one JobRanContinued");
    for token in [&t1, &t2] {
        let mine = notices(&app, token, "visit_reminder").await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert!(mine[0]["body"].as_str().unwrap().contains("共有600个上门"), "{mine:?}");
    }
    // 1,500 certificates (two of real recorders): the admins told once, of all of them.
    let admins = app.state.read().await.users().active_admins().await.unwrap();
    let mut expiring: Vec<ExpiringCertificate> = (0..1_498)
        .map(|_| ExpiringCertificate {
            recorder_id: UserId(uuid::Uuid::now_v7()),
            expires_on: day,
        })
        .collect();
    expiring.push(ExpiringCertificate {
        recorder_id: user(&r2),
        expires_on: day,
    });
    expiring.insert(
        0,
        ExpiringCertificate {
            recorder_id: user(&r1),
            expires_on: day,
        },
    );
    run_as(
        "certificate_expiry:2099-01-01",
        JobOutcome::CertificateExpiry { expiring, admins },
    )
    .await;
    let summary = notices(&app, &app.admin_token, "certificate_expiry_summary").await;
    assert_eq!(summary.len(), 1, "{summary:?}");
    assert!(summary[0]["body"].as_str().unwrap().contains("1500名"), "{summary:?}");
    for token in [&t1, &t2] {
        assert_eq!(notices(&app, token, "certificate_expiry").await.len(), 1);
    }
    let runs = app.state.read().await.jobs().latest_runs().await.unwrap();
    let run = runs.iter().find(|r| r.job == "certificate_expiry").unwrap();
    assert_eq!(run.summary, "1500 certificates expiring");
    let run = runs.iter().find(|r| r.job == "visit_reminders").unwrap();
    assert_eq!(run.summary, "2 recorders reminded of visits on 2099-01-02");
}

dual!(a_run_larger_than_a_followers_batch_is_followed_to_its_end);
/// A day's reminders of ten recorders with 900 visits each: ten parts of about
/// 130 KB, more text than one batch of a follower holds (about 1 MB,
/// `store::batch_bytes`). The followers read the run in several batches and
/// go on to its end without waiting for another commit: every recorder is
/// told, and the sealer hashes every event.
async fn a_run_larger_than_a_followers_batch_is_followed_to_its_end(b: Backend) {
    use carelog::state::RequestMeta;
    use carelog::store::{batch_bytes, event_bytes};
    use domain::ids::{PatientId, UserId, VisitId};
    use domain::job::{JobOutcome, JobRun, JobRunCommand, RemindedVisit, Reminder};

    let app = spawn_app(b).await;
    let day = NaiveDate::from_ymd_opt(2099, 1, 2).unwrap();
    let mut recorders = Vec::new();
    for n in 1..=10 {
        recorders.push(app.recorder(n).await);
    }
    let reminders = recorders
        .iter()
        .map(|(id, _)| Reminder {
            recorder_id: UserId(id.parse().unwrap()),
            visits: (0..900)
                .map(|i| RemindedVisit {
                    visit_id: VisitId(uuid::Uuid::now_v7()),
                    patient_id: PatientId(uuid::Uuid::now_v7()),
                    date: day,
                    time: chrono::NaiveTime::from_hms_opt(8 + i / 100, i % 60, 0).unwrap(),
                })
                .collect(),
        })
        .collect();
    let before = app.state.store.head().await.unwrap();
    let command = JobRunCommand::Run {
        job: "visit_reminders".into(),
        period: "2099-01-01".into(),
        at: Utc::now(),
        outcome: JobOutcome::VisitReminders { day, reminders },
    };
    let committed = app
        .state
        .store
        .execute::<JobRun>("visit_reminders:2099-01-01", command, &RequestMeta::system("RunJob"))
        .await
        .unwrap();
    let run = app.state.store.read_raw_after(before, 100).await.unwrap();
    assert_eq!(run.len(), 10, "one part a reminder");
    let text: usize = run.iter().map(event_bytes).sum();
    assert!(text > batch_bytes(500), "{text} bytes fit in one batch of the pipeline");
    // What every follower relies on: stepping while a batch says `more`
    // reaches the run's end, in more than one batch.
    for raw in [false, true] {
        let (mut at, mut batches) = (before, 0);
        loop {
            let (last, more) = if raw {
                let b = app.state.store.next_raw_batch(at, 500).await.unwrap();
                (b.events.last().map(|e| e.position), b.more)
            } else {
                let b = app.state.store.next_batch(at, 500).await.unwrap();
                (b.events.last().map(|e| e.position), b.more)
            };
            at = last.unwrap_or(at);
            batches += 1;
            if !more {
                break;
            }
        }
        assert!(at >= committed.position, "stopped at {at} of {}", committed.position);
        assert!(batches > 1, "{batches} batch");
    }
    assert!(
        app.state.waiter.wait_for(committed.position).await,
        "the read models reach the run's end"
    );
    for (_, token) in &recorders {
        let mine = notices(&app, token, "visit_reminder").await;
        assert_eq!(mine.len(), 1, "{mine:?}");
    }
    assert_eq!(app.sealed().await.broken, None);
}

dual!(metrics_show_each_jobs_last_run);
async fn metrics_show_each_jobs_last_run(b: Backend) {
    let app = spawn_app(b).await;
    run(&app.state, Job::WeeklyReport, Utc::now()).await.unwrap();
    let body = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("carelog_job_last_run_timestamp_seconds{job=\"weekly_report\"}"),
        "{body}"
    );
    assert!(body.contains("carelog_job_runs_total{job=\"weekly_report\"}"), "{body}");
}

dual!(the_server_runs_each_jobs_latest_period_once);
async fn the_server_runs_each_jobs_latest_period_once(b: Backend) {
    let app = spawn_app_with(b, &[("CARELOG_JOBS_ENABLED", "true".into())]).await;
    let tz = app.state.settings.field_work.timezone;
    let mut runs = Vec::new();
    for _ in 0..400 {
        runs = app.state.read().await.jobs().latest_runs().await.unwrap();
        if runs.len() == Job::ALL.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(runs.len(), Job::ALL.len(), "{runs:?}");
    for job in Job::ALL {
        let run = runs.iter().find(|r| r.job == job.name()).unwrap();
        let due = carelog::scheduler::due(job, Utc::now(), tz, None);
        assert_eq!(run.period, job.period(due[0], tz), "{job}");
        // Once: the run is the first and only event of its aggregate.
        let again = carelog::app::jobs::run(&app.state, job, due[0]).await.unwrap();
        assert!(matches!(again, RunResult::AlreadyRan { .. }), "{job}: {again:?}");
    }
}
