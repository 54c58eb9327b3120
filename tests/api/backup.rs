//! Backup and restore with the real binary: `carelog backup` of a live store,
//! `carelog restore` into a new empty event store with a new empty read store,
//! and a server on the restored store gives the same answers.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use carelog::config::Settings;
use carelog::startup::{Application, Stores};
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{test_vars, Backend, TestApp, ADMIN_PASSWORD};

dual!(a_restored_backup_gives_the_same_answers);

fn carelog(vars: &HashMap<String, String>, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carelog"))
        .args(args)
        .envs(vars)
        .env_remove("CARELOG_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("carelog runs")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn backup(vars: &HashMap<String, String>, file: &Path) -> Output {
    carelog(vars, &["backup".as_ref(), file.as_os_str()])
}

fn restore(vars: &HashMap<String, String>, file: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["restore".as_ref(), file.as_os_str()];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    carelog(vars, &args)
}

/// A server on settings `vars` (no admin created: it is in the restored events;
/// no login either, since a login changes the user's `last_login_at` and version).
async fn start_on(vars: &HashMap<String, String>, dir: tempfile::TempDir) -> TestApp {
    let settings = Settings::from_map(vars).expect("settings");
    let app = Application::build(settings)
        .await
        .expect("app builds on the restored store");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: reqwest::Client::new(),
        state,
        admin_token: String::new(),
        vars: vars.clone(),
        metrics_port: None,
        _dir: dir,
    }
}

/// The GETs compared before and after: (path, which token).
struct Ids {
    family: String,
    patient: String,
    record: String,
    visit: String,
    day: String,
    erased_family: String,
    erased_patient: String,
}

fn queries(ids: &Ids) -> Vec<(String, Who)> {
    let Ids {
        family,
        patient,
        record,
        visit,
        day,
        erased_family,
        erased_patient,
    } = ids;
    vec![
        (format!("/families/{family}"), Who::Admin),
        (format!("/families/{family}"), Who::Recorder),
        ("/families?limit=100".into(), Who::Admin),
        (format!("/patients/{patient}"), Who::Admin),
        (format!("/patients/{patient}/health-records"), Who::Admin),
        (format!("/health-records/{record}"), Who::Recorder),
        (format!("/appointments?date={day}"), Who::Recorder),
        ("/appointments".into(), Who::Admin),
        (format!("/appointments/{visit}"), Who::Recorder),
        ("/users?limit=100".into(), Who::Admin),
        ("/service-packages".into(), Who::Admin),
        ("/order-requests?status=open".into(), Who::Doctor),
        ("/notifications".into(), Who::Doctor),
        (format!("/patients/{patient}/medical-orders"), Who::Admin),
        (format!("/patients/{erased_patient}"), Who::Admin),
        (format!("/families/{erased_family}"), Who::Admin),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Admin,
    Recorder,
    Doctor,
}

struct Tokens {
    admin: String,
    recorder: String,
    doctor: String,
}

impl Tokens {
    fn of(&self, who: Who) -> &str {
        match who {
            Who::Admin => &self.admin,
            Who::Recorder => &self.recorder,
            Who::Doctor => &self.doctor,
        }
    }
}

/// Status, envelope and ETag of each query. Nothing is left out: every field of
/// these answers is a function of the events (ages and subscription statuses
/// also of today's date, the same on both sides).
async fn answers(
    app: &TestApp,
    tokens: &Tokens,
    queries: &[(String, Who)],
) -> Vec<(String, u16, Option<String>, Value)> {
    let mut out = Vec::new();
    for (path, who) in queries {
        let r = app.get(path, tokens.of(*who)).await;
        let etag = r
            .headers
            .get("etag")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        out.push((format!("{who:?} GET {path}"), r.status.as_u16(), etag, r.body));
    }
    out
}

async fn erase(app: &TestApp, patient: &str) {
    let r = app
        .post(
            &format!("/patients/{patient}/erase"),
            &app.admin_token,
            json!({"reason": "家属书面申请"}),
        )
        .await
        .ok();
    assert_eq!(r.data()["erased"], true);
}

async fn a_restored_backup_gives_the_same_answers(b: Backend) {
    let app = crate::helpers::spawn_app(b).await;
    let day = (chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        + chrono::Duration::days(2))
    .to_string();

    // Users of every role, a family with patients, a subscription, a visit, a record.
    let (recorder, rtoken) = app.recorder(1).await;
    app.post(
        "/users",
        &app.admin_token,
        json!({"username": "drli", "phone": "13700000001", "password": "doctor-pass", "role": "doctor", "name": "李医生",
               "doctor": {"license_number": "L-1", "specialty": "全科"}}),
    )
    .await
    .ok();
    let dtoken = app.login("drli", "doctor-pass").await;
    let family = app.family("陈家").await;
    let patient = app.patient(&family, "陈奶奶").await;
    app.patient(&family, "陈爷爷").await;
    app.patch(
        &format!("/families/{family}"),
        &app.admin_token,
        json!({"emergency_contact": "陈小明", "emergency_phone": "13911112222"}),
    )
    .await
    .ok();
    let package = app.package().await;
    app.subscribe(&patient, &package, &recorder).await;
    let visit = app
        .post(
            "/appointments",
            &rtoken,
            json!({"patient_id": patient, "scheduled_date": day, "scheduled_time": "09:30", "notes": "测血压"}),
        )
        .await
        .ok()
        .id();
    app.post(&format!("/appointments/{visit}/confirm"), &rtoken, json!({}))
        .await
        .ok();
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let record = app
        .post(
            "/health-records",
            &rtoken,
            json!({"patient_id": patient, "visit_date": today.to_string(), "visit_time": "08:00",
                   "vital_signs": {"blood_pressure": "165/100", "heart_rate": 80, "temperature": 36.7},
                   "symptoms": "头晕", "notes": "血压偏高"}),
        )
        .await
        .ok()
        .data()["record_id"]
        .as_str()
        .expect("record id")
        .to_string();
    // A create under an Idempotency-Key: its stored response is part of the store.
    let idem_body =
        json!({"family_name": "李家", "primary_address": "上海市长宁区1号", "contact_phone": "13912345679"});
    let idem = app
        .send(
            reqwest::Method::POST,
            "/families",
            Some(&app.admin_token),
            Some(idem_body.clone()),
            &[("Idempotency-Key", "backup-test-1")],
        )
        .await
        .ok();

    let tokens = Tokens {
        admin: app.admin_token.clone(),
        recorder: rtoken.clone(),
        doctor: dtoken.clone(),
    };
    // One patient erased before the backup, one after it.
    let erased_family = app.family("王家").await;
    let erased_patient = app.patient(&erased_family, "王奶奶").await;
    erase(&app, &erased_patient).await;
    let late_family = app.family("张家").await;
    let late_patient = app.patient(&late_family, "张爷爷").await;

    let queries = queries(&Ids {
        family: family.clone(),
        patient: patient.clone(),
        record,
        visit,
        day,
        erased_family,
        erased_patient: erased_patient.clone(),
    });
    let before = answers(&app, &tokens, &queries).await;
    assert!(before.iter().all(|(_, status, _, _)| *status == 200), "{before:#?}");
    let erased = app
        .get(&format!("/patients/{erased_patient}"), &tokens.admin)
        .await
        .ok();
    assert_eq!(erased.data()["name"], domain::ERASED);
    let head = app.event_count().await;

    // Backup of the live store (the server keeps running), then one more change
    // that the backup must not contain.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("carelog.backup");
    let out = backup(&app.vars, &file);
    assert!(out.status.success(), "{}", text(&out));
    assert!(file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a backup is readable by its owner only");
    }
    let again = backup(&app.vars, &file);
    assert!(!again.status.success(), "an existing backup is never overwritten");
    app.patch(
        &format!("/families/{family}"),
        &app.admin_token,
        json!({"family_name": "备份之后"}),
    )
    .await
    .ok();
    erase(&app, &late_patient).await;

    // Restore into a new data dir / new databases, with a new empty read store.
    let target_dir = tempfile::tempdir().unwrap();
    let mut target = test_vars(b, target_dir.path()).await;
    for (k, v) in &app.vars {
        // Secrets and every other setting stay those of the original deployment.
        if !matches!(
            k.as_str(),
            "CARELOG_DATA_DIR" | "CARELOG_EVENT_STORE_URL" | "CARELOG_READ_STORE_URL" | "CARELOG_BIND"
        ) {
            target.insert(k.clone(), v.clone());
        }
    }
    if b == Backend::Embedded {
        // The master key is not in the backup: without the original one the
        // restore stops before writing anything, naming what is missing.
        let keyless = restore(&target, &file, &[]);
        assert!(!keyless.status.success(), "{}", text(&keyless));
        assert!(
            String::from_utf8_lossy(&keyless.stderr).contains("master_key"),
            "{}",
            text(&keyless)
        );
        assert!(!target_dir.path().join("events.db").exists());
        // A key of another deployment is refused too.
        std::fs::write(target_dir.path().join("master_key"), "ab".repeat(32)).unwrap();
        let wrong_key = restore(&target, &file, &[]);
        assert!(!wrong_key.status.success(), "{}", text(&wrong_key));
        assert!(
            String::from_utf8_lossy(&wrong_key.stderr).contains("master key"),
            "{}",
            text(&wrong_key)
        );
        assert!(!target_dir.path().join("events.db").exists());
        std::fs::copy(app._dir.path().join("master_key"), target_dir.path().join("master_key")).unwrap();
    }
    // The target is empty but not blank: a server already created its schema.
    {
        let stores = Stores::open(&Settings::from_map(&target).unwrap(), false)
            .await
            .unwrap();
        assert_eq!(stores.store.head().await.unwrap(), 0);
        match stores.store.backend() {
            carelog::store::Backend::Postgres(pool) => pool.close().await,
            carelog::store::Backend::Sqlite(db) => {
                db.read.close().await;
                db.write.close().await
            }
        }
        stores.read.close().await;
    }
    let out = restore(&target, &file, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The hash chain came back with the events.
    let verified = carelog(&target, &["audit".as_ref(), "verify".as_ref()]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("audit verify: ok"),
        "{}",
        text(&verified)
    );
    assert!(
        stdout.contains(&format!("read models rebuilt up to position {head}")),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("erasures"), "the erasure warning is printed: {stdout}");

    // A store that holds events is never overwritten by a restore.
    let refused = restore(&target, &file, &[]);
    assert!(!refused.status.success(), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("already holds"), "{}", text(&refused));
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    if b == Backend::Embedded {
        // --force replaces it, keeping the replaced file aside.
        let forced = restore(&target, &file, &["--force"]);
        assert!(forced.status.success(), "{}", text(&forced));
        let aside = std::fs::read_dir(target_dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("events.db.replaced-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
            .count();
        assert_eq!(aside, 1, "the replaced store is kept");
    } else {
        let forced = restore(&target, &file, &["--force"]);
        assert!(!forced.status.success(), "--force never drops a PostgreSQL database");
    }
    // The wrong kind of backup is named as such.
    let other = if b == Backend::Embedded {
        let pg_like = dir.path().join("pg.backup");
        std::fs::write(&pg_like, b"PGDMP\x01\x0e\x00").unwrap();
        pg_like
    } else {
        let sqlite_like = dir.path().join("sqlite.backup");
        std::fs::write(&sqlite_like, b"SQLite format 3\0").unwrap();
        sqlite_like
    };
    let fresh_dir = tempfile::tempdir().unwrap();
    let mut fresh = test_vars(b, fresh_dir.path()).await;
    fresh.insert("CARELOG_JWT_SECRET".into(), target["CARELOG_JWT_SECRET"].clone());
    let wrong = restore(&fresh, &other, &[]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("is not a"),
        "{}",
        text(&wrong)
    );

    // A server on the restored store: same answers, with the old tokens.
    let mut restored = start_on(&target, target_dir).await;
    // The admin's token from before the backup: same secret, restored session.
    restored.admin_token = tokens.admin.clone();
    let head_now = restored.state.store.head().await.unwrap();
    restored.state.waiter.wait_for(head_now).await;
    let after = answers(&restored, &tokens, &queries).await;
    for (b, a) in before.iter().zip(after.iter()) {
        assert_eq!(b, a, "same answer to {}", b.0);
    }
    assert_eq!(before.len(), after.len());

    // The whole database came back, not only the events: the stored response
    // of an idempotent create is replayed (no new family)...
    let families = restored.get("/families?limit=100", &tokens.admin).await.ok().data()["total"].clone();
    let replay = restored
        .send(
            reqwest::Method::POST,
            "/families",
            Some(&tokens.admin),
            Some(idem_body),
            &[("Idempotency-Key", "backup-test-1")],
        )
        .await
        .ok();
    assert_eq!(replay.id(), idem.id());
    assert_eq!(
        restored.get("/families?limit=100", &tokens.admin).await.ok().data()["total"],
        families
    );
    // ...and the unique claims still hold.
    restored
        .post(
            "/users",
            &tokens.admin,
            json!({"username": "drli", "phone": "13700000009", "password": "doctor-pass", "role": "doctor", "name": "另一个",
                   "doctor": {"license_number": "L-9", "specialty": "全科"}}),
        )
        .await
        .err(409, "conflict");
    // The patient erased before the backup stays erased. The one erased after
    // it is readable again: the backup holds its key. The procedure
    // (docs/operations.md) re-applies such erasures after a restore.
    let late = restored
        .get(&format!("/patients/{late_patient}"), &tokens.admin)
        .await
        .ok();
    assert_eq!(late.data()["name"], "张爷爷");
    erase(&restored, &late_patient).await;
    let late = restored
        .get(&format!("/patients/{late_patient}"), &tokens.admin)
        .await
        .ok();
    assert_eq!(late.data()["name"], domain::ERASED);
    // The passwords came back with the users.
    restored.login("admin", ADMIN_PASSWORD).await;
    restored.login("drli", "doctor-pass").await;
    // The restored store goes on: new commands get positions after the restored ones.
    restored
        .patch(
            &format!("/families/{family}"),
            &tokens.admin,
            json!({"family_name": "恢复之后"}),
        )
        .await
        .ok();
    let f = restored
        .get(&format!("/families/{family}"), &tokens.recorder)
        .await
        .ok();
    assert_eq!(f.data()["family_name"], "恢复之后");
}
